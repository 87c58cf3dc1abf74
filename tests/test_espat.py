"""The ESP-AT 2.x dialect (profile esp-at-2): the bytes LwESP sends at reset and on a connection,
and the answers in the shapes LwESP's parser takes (spec §10.3, §12.2)."""

import re

import pytest

from atmodem.lab.pki import key_pem
from atmodem.world import AccessPoint, World, format_mac
from support import Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"

# LwESP's reset sequence with its default options (station + SoftAP, manual TCP receive),
# as lwespi_get_reset_sub_cmd sends it after AT+RST and "ready".
LWESP_RESET = [
    b"ATE0", b"AT+GMR", b"AT+SYSMSG=7", b"AT+SYSLOG=1", b"AT+RFPOWER=40", b"AT+CWMODE=3,1", b"AT+CWDHCP?",
    b"AT+CIPMUX=1", b"AT+CIPRECVMODE=1", b"AT+CWLAPOPT=1,0x7FF", b"AT+CIPSTATUS", b"AT+CIPSTATE?", b"AT+CIPAP?",
    b"AT+CIPAPMAC?", b"AT+CIPDINFO=1",
]


@pytest.fixture
def h():
    harness = Harness("esp-at-2")
    yield harness
    harness.close()



def final_result(reply: bytes) -> bytes:
    """What LwESP's line parser sees as the end of a command: a line that is exactly OK, ERROR or FAIL."""
    lines = reply.split(b"\r\n")
    finals = [line for line in lines if line in (b"OK", b"ERROR", b"FAIL")]
    assert finals, f"no final result in {reply!r}"
    return finals[-1]


def test_lwesp_reset_sequence(h):
    reset = h.send(b"AT+RST\r\n")
    assert reset.startswith(b"AT+RST\r\n" + OK) and reset.endswith(b"\r\nready\r\n")
    answers = {command: h.send(command + b"\r\n") for command in LWESP_RESET}
    assert answers[b"ATE0"] == b"ATE0\r\n" + OK
    gmr = answers[b"AT+GMR"]
    version_line = next(line for line in gmr.split(b"\r\n") if line.startswith(b"AT version"))
    assert b"- ESP8266 -" in version_line
    major, minor, patch = map(int, re.match(rb"(\d+)\.(\d+)\.(\d+)", version_line[11:]).groups())
    assert (major, minor, patch) >= (2, 2, 1)  # LwESP's minimum for the ESP8266
    assert gmr.endswith(b"\r\n" + OK)
    for command in (b"AT+SYSMSG=7", b"AT+SYSLOG=1", b"AT+RFPOWER=40", b"AT+CWMODE=3,1", b"AT+CIPMUX=1",
                    b"AT+CIPRECVMODE=1", b"AT+CIPSTATE?", b"AT+CIPDINFO=1"):
        assert answers[command] == OK, command
    for command in LWESP_RESET:  # every step needs a final result to move on
        final_result(answers[command])
    assert h.send(b"AT+SYSMSG?\r\n") == b"+SYSMSG:7\r\n" + OK
    assert h.send(b"AT+CWMODE?\r\n") == b"+CWMODE:3\r\n" + OK


def test_lwesp_connection_with_link_conn_and_passive_receive(h, peer):
    for command in (b"ATE0", b"AT+SYSMSG=7", b"AT+CIPMUX=1", b"AT+CIPRECVMODE=1", b"AT+CIPDINFO=1"):
        h.send(command + b"\r\n")
    h.join()
    reply = h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d,0\r\n' % peer.port)
    link_conn = re.fullmatch(rb'\+LINK_CONN:0,0,"TCP",0,"127\.0\.0\.1",%d,(\d+)\r\n' % peer.port + re.escape(OK),
                             reply)
    assert link_conn and len(reply.split(b"\r\n")[0]) > 20  # LwESP's own length check
    conn = peer.accept()
    assert h.send(b"AT+CIPSTATE?\r\n") == b'+CIPSTATE:0,"TCP","127.0.0.1",%d,%s,0\r\n' % (
        peer.port, link_conn.group(1)) + OK
    prompt = h.send(b"AT+CIPSEND=0,5\r\n")
    assert b"\n>" in prompt  # LwESP wants the '>' straight after a line feed
    h.modem.feed(b"hello")
    assert h.wait_for(b"SEND OK\r\n").endswith(b"SEND OK\r\n")
    assert peer.recv_exactly(5) == b"hello"
    conn.sendall(b"world")
    assert h.wait_for(b"+IPD") + h.wait_for(b"\r\n") == b"\r\n+IPD,0,5\r\n"
    assert h.send(b"AT+CIPRECVLEN?\r\n") == b"+CIPRECVLEN:5,-1,-1,-1,-1\r\n" + OK
    assert h.send(b"AT+CIPRECVDATA=0,5\r\n") == b'+CIPRECVDATA:5,"127.0.0.1",%d,world' % peer.port + OK
    conn.close()
    assert h.wait_for(b"CLOSED\r\n").endswith(b"0,CLOSED\r\n")


def test_without_sysmsg_links_report_connect(h, peer):
    h.send(b"ATE0\r\n")
    h.send(b"AT+CIPMUX=1\r\n")
    h.join()
    assert h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d\r\n' % peer.port) == b"0,CONNECT\r\n" + OK
    assert h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d\r\n' % peer.port) == b"1,CONNECT\r\n" + OK  # lowest free


def test_active_receive_quotes_the_address(h, peer):
    for command in (b"ATE0", b"AT+CIPMUX=1", b"AT+CIPDINFO=1"):
        h.send(command + b"\r\n")
    h.join()
    h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d\r\n' % peer.port)
    peer.accept().sendall(b"hi")
    assert h.wait_for(b"hi") == b'\r\n+IPD,0,2,"127.0.0.1",%d:hi' % peer.port


@pytest.mark.parametrize("command", [
    b"AT+SYSMSG=8", b"AT+SYSLOG=2", b"AT+RFPOWER=39", b"AT+RFPOWER=83", b"AT+SYSSTORE=2", b"AT+CWMODE=4",
    b"AT+CWMODE=1,2", b"AT+CIPSTARTEX=\"TCP\",\"127.0.0.1\",0", b"AT+CIPSTARTEX=\"TCP\",127.0.0.1,80",
    b"AT+SYSMSG=1,2", b"AT+RFPOWER=40,1",
])
def test_bad_input_is_error(h, command):
    h.send(b"ATE0\r\n")
    assert h.send(command + b"\r\n") == ERR


def test_no_free_link_is_error(h, peer):
    h.send(b"ATE0\r\n")
    h.join()
    assert h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d\r\n' % peer.port) == b"CONNECT\r\n" + OK  # mux 0: link 0
    assert h.send(b'AT+CIPSTARTEX="TCP","127.0.0.1",%d\r\n' % peer.port) == ERR


# ---------------------------------------------------------------- certificates and mutual TLS

class TestSysmfg:
    def test_write_read_list_and_erase(self, h):
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+SYSMFG=2,"client_ca","client_ca.0",8,5\r\n') == OK + b"\r\n>"
        h.modem.feed(b"ab\0cd")
        assert h.wait_for(b"OK\r\n") == OK
        assert h.send(b'AT+SYSMFG=1,"client_ca","client_ca.0"\r\n') == b'+SYSMFG:"client_ca","client_ca.0",8,5,ab\0cd' + OK
        assert h.send(b'AT+SYSMFG=1,"client_ca","client_ca.0",1,3\r\n') == b'+SYSMFG:"client_ca","client_ca.0",8,3,b\0c' + OK
        assert h.send(b'AT+SYSMFG=1,"client_ca"\r\n') == b'+SYSMFG:"client_ca","client_ca.0",8\r\n' + OK
        assert h.send(b"AT+SYSMFG?\r\n") == b'+SYSMFG:"client_ca"\r\n' + OK
        assert h.send(b'AT+SYSMFG=2,"factory_param","max_tx_power",1,78\r\n') == OK
        assert h.send(b'AT+SYSMFG=1,"factory_param","max_tx_power"\r\n') == (
            b'+SYSMFG:"factory_param","max_tx_power",1,2,78' + OK)
        assert h.send(b'AT+SYSMFG=0,"client_ca","client_ca.0"\r\n') == OK
        assert h.send(b'AT+SYSMFG=1,"client_ca","client_ca.0"\r\n') == ERR

    def test_it_survives_a_reset(self, h):
        h.send(b"ATE0\r\n")
        h.send(b'AT+SYSMFG=2,"client_key","client_key.0",7,3\r\n')
        h.modem.feed(b"xyz")
        h.wait_for(b"OK\r\n")
        h.send(b"AT+RST\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+SYSMFG=1,"client_key","client_key.0"\r\n') == b'+SYSMFG:"client_key","client_key.0",7,3,xyz' + OK

    @pytest.mark.parametrize("command", [
        b'AT+SYSMFG=2,"nowhere","k",8,4', b'AT+SYSMFG=2,"client_ca","k",9,4', b'AT+SYSMFG=2,"client_ca","k",8,0',
        b'AT+SYSMFG=2,"client_ca","k",8,99999', b'AT+SYSMFG=2,"factory_param","k",1,256',
        b'AT+SYSMFG=2,"factory_param","k",2,-129', b'AT+SYSMFG=3,"client_ca"', b'AT+SYSMFG=1,"client_ca","none"',
        b'AT+SYSMFG=2,"client_ca"', b"AT+SYSMFG=1,client_ca",
    ])
    def test_bad_input(self, h, command):
        h.send(b"ATE0\r\n")
        assert h.send(command + b"\r\n") == ERR


class TestSslConfig:
    def test_per_link_and_all_links(self, h):
        for command in (b"ATE0", b"AT+CIPMUX=1"):
            h.send(command + b"\r\n")
        assert h.send(b"AT+CIPSSLCCONF=5,2,0,1\r\n") == OK
        assert h.send(b"AT+CIPSSLCCONF=3,3,1,0\r\n") == OK
        assert h.send(b"AT+CIPSSLCCONF?\r\n") == (b"+CIPSSLCCONF:0,2,0,1\r\n+CIPSSLCCONF:1,2,0,1\r\n"
                                                  b"+CIPSSLCCONF:2,2,0,1\r\n+CIPSSLCCONF:3,3,1,0\r\n"
                                                  b"+CIPSSLCCONF:4,2,0,1\r\n" + OK)
        assert h.send(b'AT+CIPSSLCSNI=1,"sni.test"\r\n') == OK
        assert h.send(b"AT+CIPSSLCSNI?\r\n") == b'+CIPSSLCSNI:1,"sni.test"\r\n' + OK
        assert h.send(b"AT+CIPSSLCCONF=6,1\r\n") == ERR
        assert h.send(b"AT+CIPSSLCCONF=0,4\r\n") == ERR

    def test_single_link_mode_has_no_id(self, h):
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPSSLCCONF=2\r\n") == OK
        assert h.send(b"AT+CIPSSLCCONF?\r\n") == b"+CIPSSLCCONF:2,0,0\r\n" + OK


def write_mfg(h, namespace: bytes, key: bytes, value: bytes) -> None:
    assert h.send(b'AT+SYSMFG=2,"%s","%s",8,%d\r\n' % (namespace, key, len(value))).endswith(b"\r\n>")
    h.modem.feed(value)
    assert h.wait_for(b"OK\r\n") == OK


def ssl_modem(sntp) -> Harness:
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")], hosts={"tls.test": "127.0.0.1"},
                  sntp_port=sntp.port)
    world.hosts["pool.ntp.org"] = "127.0.0.1"
    h = Harness("esp-at-2", world=world)
    for command in (b"ATE0", b"AT+CIPMUX=1"):
        h.send(command + b"\r\n")
    h.join()
    h.pump(lambda: h.modem.runtime["sntp"].now() > 57600)
    return h


def test_mutual_tls_with_nvs_certificates(mutual):
    pki, server, client, sntp = mutual
    h = ssl_modem(sntp)
    try:
        write_mfg(h, b"client_ca", b"client_ca.0", pki.root.pem)
        write_mfg(h, b"client_cert", b"client_cert.0", client.der)   # DER works as well as PEM
        write_mfg(h, b"client_key", b"client_key.0", key_pem(client.key))
        assert h.send(b"AT+CIPSSLCCONF=0,3,0,0\r\n") == OK
        assert h.send(b'AT+CIPSTARTEX="SSL","tls.test",%d\r\n' % server.port) == b"0,CONNECT\r\n" + OK
        assert h.wait_for(b"hello") == b"\r\n+IPD,0,5:hello"
        assert (server.handshakes, server.failures) == (1, 0)

        # Without the client certificate the server refuses, and the link fails cleanly.
        assert h.send(b"AT+CIPSSLCCONF=1,2,0,0\r\n") == OK
        reply = h.send(b'AT+CIPSTART=1,"SSL","tls.test",%d\r\n' % server.port)
        assert reply.endswith(ERR + b"CLOSED\r\n") and b"CONNECT" not in reply
        h.pump(lambda: server.failures >= 1, timeout=5)
        assert server.handshakes == 1
        assert h.send(b"AT\r\n") == OK
    finally:
        h.close()


def test_a_missing_certificate_fails_the_link(mutual):
    pki, server, client, sntp = mutual
    h = ssl_modem(sntp)
    try:
        assert h.send(b"AT+CIPSSLCCONF=0,3,0,0\r\n") == OK
        reply = h.send(b'AT+CIPSTARTEX="SSL","tls.test",%d\r\n' % server.port)
        assert reply.endswith(ERR + b"CLOSED\r\n")
        assert server.handshakes == 0
    finally:
        h.close()



# ---------------------------------------------------------------- AT+SYSLOG error codes and bad input

def coded(code: int) -> bytes:
    """ESP-AT's error with AT+SYSLOG=1: the code line, then the usual ERROR."""
    return b"ERR CODE:0x%08x\r\n" % code + ERR


@pytest.mark.parametrize("line, code", [
    (b"AT+FAKE\r\n", 0x01090000),                  # the command is not supported
    (b"AT+GMR?\r\n", 0x01090000),                  # nor is a form the command lacks
    (b"at\r\n", 0x01030000),                       # no upper-case AT at the start
    (b"\x00\xfe\x13noise\r\n", 0x01030000),        # binary garbage
    (b"AT\n", 0x01020000),                         # LF without CR: no terminator
    (b"AT+CWMODE=9\r\n", 0x01070000),              # parameter 0 invalid
    (b"AT+CWLAPOPT=1,0x800\r\n", 0x01070001),      # parameter 1 invalid: the ESP8266 has 11 fields
    (b"AT+CWLAPOPT=1,0x7FF,-101\r\n", 0x01070002),
    (b"AT+CWDHCP=1,4\r\n", 0x01070001),
    (b"AT+CWDHCP=2,1\r\n", 0x01070000),
])
def test_syslog_puts_the_error_code_before_error(h, line, code):
    h.send(b"ATE0\r\n")
    assert h.send(line) == ERR
    assert h.send(b"AT+SYSLOG=1\r\n") == OK
    assert h.send(line) == coded(code)
    assert h.send(b"AT\r\n") == OK


def test_a_command_that_fails_to_run_is_exec_fail(h):
    for command in (b"ATE0", b"AT+SYSLOG=1", b"AT+CWMODE=2"):
        h.send(command + b"\r\n")
    assert h.send(b"AT+CWLAP\r\n") == coded(0x010A0000)  # no station in SoftAP-only mode


def test_syslog_is_not_saved(h):
    h.send(b"ATE0\r\n")
    h.send(b"AT+SYSLOG=1\r\n")
    h.send(b"AT+RST\r\n")
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+SYSLOG?\r\n") == b"+SYSLOG:0\r\n" + OK
    assert h.send(b"AT+FAKE\r\n") == ERR


def test_over_long_line_and_busy(h):
    h.send(b"ATE0\r\n")
    h.send(b"AT+SYSLOG=1\r\n")
    # The 256-byte line buffer overflows (ERROR), and the rest is a line of its own without AT.
    assert h.send(b"AT+" + b"X" * 300 + b"\r\n") == ERR + coded(0x01030000)
    assert h.send(b"AT\r\n") == OK
    reply = h.send(b'AT+CWJAP="atmodem-lab","atmodem-pass"\r\nAT\r\n')
    assert reply == b"\r\nbusy p...\r\nWIFI CONNECTED\r\nWIFI GOT IP\r\n" + OK  # the AT came during the join


# ---------------------------------------------------------------- Wi-Fi in the AT 2.x shapes

@pytest.fixture
def air():
    world = World(access_points=[AccessPoint("Strong", "", rssi=-40, channel=1, encryption="open"),
                                 AccessPoint("Weak", "password1", rssi=-70, channel=11),
                                 AccessPoint("Secret", "password2", rssi=-55, channel=6, hidden=True)])
    harness = Harness("esp-at-2", world=world)
    harness.send(b"ATE0\r\n")
    yield harness
    harness.close()


def scan_lines(h) -> list[bytes]:
    reply = h.send(b"AT+CWLAP\r\n")
    assert reply.endswith(OK)
    return reply[:-len(OK)].split(b"\r\n")[:-1]


def test_cwlap_quotes_ssid_and_bssid_and_sorts_by_rssi(air):
    assert air.send(b"AT+CWLAPOPT=1,0x7FF\r\n") == OK
    bssids = {ap.ssid: format_mac(ap.bssid_bytes, upper=False) for ap in air.world.access_points}
    assert scan_lines(air) == [
        b'+CWLAP:(0,"Strong",-40,"%s",1,0,0,0,0,7,0)' % bssids["Strong"].encode(),
        b'+CWLAP:(3,"",-55,"%s",6,0,0,4,4,7,0)' % bssids["Secret"].encode(),
        b'+CWLAP:(3,"Weak",-70,"%s",11,0,0,4,4,7,0)' % bssids["Weak"].encode(),
    ]


def test_cwlapopt_mask_rssi_and_auth_filters(air):
    assert air.send(b"AT+CWLAPOPT=1,6,-60\r\n") == OK   # ssid and rssi; nothing at -60 or weaker
    assert scan_lines(air) == [b'+CWLAP:("Strong",-40)', b'+CWLAP:("",-55)']
    assert air.send(b"AT+CWLAPOPT=0,0x3,-100,0x8\r\n") == OK  # authmode bit 3: WPA2_PSK only
    assert sorted(scan_lines(air)) == [b'+CWLAP:(3,"")', b'+CWLAP:(3,"Weak")']


@pytest.mark.parametrize("command", [
    b"AT+CWLAPOPT=2,0x7FF", b"AT+CWLAPOPT=1", b"AT+CWLAPOPT=1,0x", b"AT+CWLAPOPT=1,0xFFF", b"AT+CWLAPOPT=1,7,41",
    b"AT+CWLAPOPT=1,7,-50,0x10000", b"AT+CWLAPOPT=1,7,-50,1,2", b"AT+CWLAPOPT=1,0x7FG",
])
def test_cwlapopt_bad_input(air, command):
    assert air.send(command + b"\r\n") == ERR


def test_cwdhcp_operate_and_mode_bits(h):
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK
    assert h.send(b"AT+CWDHCP=0,1\r\n") == OK          # station off: bit 0
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:2\r\n" + OK
    assert h.send(b"AT+CWDHCP=0,2\r\n") == OK          # SoftAP off: bit 1
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:0\r\n" + OK
    assert h.send(b"AT+CWDHCP=1,3\r\n") == OK
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK
    for command in (b"AT+CWDHCP=1", b"AT+CWDHCP=1,0", b"AT+CWDHCP=2,1", b"AT+CWDHCP=1,1,1", b"AT+CWDHCP=a,1"):
        assert h.send(command + b"\r\n") == ERR, command


@pytest.mark.parametrize("store, after_reset", [(1, 2), (0, 3)])
def test_cwdhcp_follows_sysstore(h, store, after_reset):
    h.send(b"ATE0\r\n")
    h.send(b"AT+SYSSTORE=%d\r\n" % store)
    h.send(b"AT+CWDHCP=0,1\r\n")
    h.send(b"AT+RST\r\n")
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:%d\r\n" % after_reset + OK

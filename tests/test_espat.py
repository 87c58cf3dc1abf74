"""The ESP-AT 2.x dialect (profile esp-at-2): the bytes LwESP sends at reset and on a connection,
and the answers in the shapes LwESP's parser takes (spec §10.3, §12.2)."""

import re

import pytest

from support import Harness, Peer

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


@pytest.fixture
def peer():
    server = Peer()
    yield server
    server.close()


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

"""LwESP against the ESP-AT 2.x dialect (profile esp-at-2): its reset and SSL command sequences,
byte for byte as lwesp_int.c builds them, each answer checked with LwESP's own parsing rules
(lwespi_parse_received and lwesp_parser.c, ported to the small checks below).

Options are lwesp_opt.h's defaults: LWESP_CFG_AT_ECHO 0 (ATE0), LWESP_CFG_LIST_CMD 0 (no AT+CMD?),
LWESP_CFG_FLASH without LWESP_DEV (no AT+SYSFLASH?/AT+SYSMFG? in the reset), station and access
point both on (AT+CWMODE=3,1, AT+CIPAP?, AT+CIPAPMAC?), LWESP_CFG_IPV6 0, and
LWESP_CFG_CONN_MANUAL_TCP_RECEIVE 0 (AT+CIPRECVMODE=0); the reset is also replayed with 1, as
LwESP's development options set it. No hardware reset function: the reset starts with AT+RST.
"""

import re

import pytest

from atmodem.lab.pki import key_pem
from atmodem.world import DEFAULT_PASSWORD, DEFAULT_SSID, AccessPoint, World
from support import Harness

MIN_ESP8266 = (2, 2, 1)   # LWESP_MIN_AT_VERSION_ESP8266
FINALS = (b"OK\r\n", b"ERROR\r\n", b"FAIL\r\n")


def reset_sequence(manual_receive: int) -> list[bytes]:
    """lwespi_get_reset_sub_cmd's order after AT+RST and 'ready', with the bytes lwespi_initiate_cmd sends."""
    return [b"ATE0", b"AT+GMR", b"AT+SYSMSG=7", b"AT+SYSLOG=1", b"AT+RFPOWER=40", b"AT+CWMODE=3,1", b"AT+CWDHCP?",
            b"AT+CIPMUX=1", b"AT+CIPRECVMODE=%d" % manual_receive, b"AT+CWLAPOPT=1,0x7FF", b"AT+CIPSTATUS",
            b"AT+CIPSTATE?", b"AT+CIPAP?", b"AT+CIPAPMAC?", b"AT+CIPDINFO=1"]


def lines(reply: bytes) -> list[bytes]:
    """LwESP's receive buffer: a line is complete at '\\n', CR LF kept; lone CR LF lines are dropped."""
    found = re.findall(rb"[^\n]*\n", reply)
    return [line for line in found if line != b"\r\n"]


def outcome(reply: bytes) -> bytes:
    """The line that releases LwESP's command: exactly OK, ERROR or FAIL (with its CR LF)."""
    finals = [line for line in lines(reply) if line in FINALS]
    assert len(finals) == 1, f"want one final result in {reply!r}"
    return finals[0]


def not_supported(reply: bytes) -> bool:
    """lwespERRCMDNOTSUPPORTED: LwESP keys on this exact code after AT+SYSLOG=1."""
    return any(line.startswith(b"ERR CODE:0x01090000") for line in lines(reply))


def parse_number(text: bytes, pos: int) -> tuple[int, int]:
    """lwespi_parse_number: skips a leading quote, comma, quote; digits; one trailing comma."""
    for skip in b'",\"':
        if text[pos:pos + 1] == bytes((skip,)):
            pos += 1
    match = re.match(rb"-?\d*", text[pos:])
    digits = match.group()
    pos += len(digits)
    if text[pos:pos + 1] == b",":
        pos += 1
    return (int(digits) if digits.strip(b"-") else 0), pos


def parse_ip(text: bytes, pos: int) -> tuple[str, int]:
    """lwespi_parse_ip (IPv4): optional quotes around four numbers."""
    if text[pos:pos + 1] == b'"':
        pos += 1
    octets = []
    for _ in range(4):
        value, pos = parse_number(text, pos)
        octets.append(value)
        if text[pos:pos + 1] != b".":
            break
        pos += 1
    if text[pos:pos + 1] == b'"':
        pos += 1
    return ".".join(map(str, octets)), pos


def parse_mac(text: bytes, pos: int) -> bytes:
    """lwespi_parse_mac: optional quotes, six hex numbers each followed by one separator."""
    if text[pos:pos + 1] == b'"':
        pos += 1
    return bytes(int(part, 16) for part in re.findall(rb"[0-9a-fA-F]+", text[pos:pos + 17]))


def parse_link_conn(line: bytes) -> dict:
    """lwespi_parse_link_conn, after LwESP's 'len > 20' and strstr checks."""
    assert len(line) > 20 and b"+LINK_CONN:" in line
    text = line[line.index(b"+LINK_CONN:") + 11:]
    failed, pos = parse_number(text, 0)
    num, pos = parse_number(text, pos)
    kind = text[pos:pos + 5]
    assert kind in (b'"TCP"', b'"UDP"', b'"SSL"'), line
    is_server, pos = parse_number(text, pos + 6)
    ip, pos = parse_ip(text, pos)
    remote_port, pos = parse_number(text, pos)
    local_port, pos = parse_number(text, pos)
    return dict(failed=failed, num=num, kind=kind.strip(b'"'), server=is_server, ip=ip, remote_port=remote_port,
                local_port=local_port)


def parse_ipd(head: bytes) -> dict:
    """lwespi_parse_ipd on '+IPD,...' up to ':' (data) or CR LF (a passive notice)."""
    conn, pos = parse_number(head, 5)
    length, pos = parse_number(head, pos)
    found = dict(conn=conn, length=length, data=head.endswith(b":"))
    if found["data"] and head[pos:pos + 1] != b":":
        found["ip"], pos = parse_ip(head, pos)
        found["port"], pos = parse_number(head, pos)
    return found


@pytest.fixture
def h():
    harness = Harness("esp-at-2")
    yield harness
    harness.close()


@pytest.mark.parametrize("manual_receive", [0, 1])
def test_reset_sequence_gets_what_lwesp_parses(h, manual_receive):
    reset = h.send(b"AT+RST\r\n")
    assert b"OK\r\n" in lines(reset)[:2] and lines(reset)[-1] == b"ready\r\n"  # OK alone is not enough: 'ready'
    answers = {}
    for command in reset_sequence(manual_receive):
        reply = h.send(command + b"\r\n")
        assert outcome(reply) == b"OK\r\n", (command, reply)
        assert not not_supported(reply), command
        answers[command] = lines(reply)

    version = next(line for line in answers[b"AT+GMR"] if line.startswith(b"AT version"))
    assert b"- ESP8266 -" in version
    major, pos = parse_number(version, 11)
    minor, pos = parse_number(version, pos + 1)
    patch, _ = parse_number(version, pos + 1)
    assert (major, minor, patch) >= MIN_ESP8266
    assert any(line.startswith(b"SDK version") for line in answers[b"AT+GMR"])

    dhcp = next(line for line in answers[b"AT+CWDHCP?"] if line.startswith(b"+CWDHCP"))
    assert parse_number(dhcp, 8)[0] & 0x03 == 0x03  # lwespi_parse_cwdhcp: both DHCPs on

    for command, prefix in ((b"AT+CIPSTATUS", b"+CIPSTATUS"), (b"AT+CIPSTATE?", b"+CIPSTATE")):
        assert not [line for line in answers[command] if line.startswith(prefix)]  # no links yet

    ap = {line[7:8]: parse_ip(line, 10 if line[7:8] == b"i" else 15)[0]
          for line in answers[b"AT+CIPAP?"] if line.startswith(b"+CIPAP") and line[6:7] == b":"}
    assert ap == {b"i": "192.168.4.1", b"g": "192.168.4.1", b"n": "255.255.255.0"}
    mac_line = next(line for line in answers[b"AT+CIPAPMAC?"] if line.startswith(b"+CIPAPMAC"))
    assert mac_line[9:10] == b":" and parse_mac(mac_line, 10) == h.modem.interfaces.ap.mac


def test_scan_with_lwesp_options(h):
    for command in reset_sequence(0):
        h.send(command + b"\r\n")
    reply = h.send(b"AT+CWLAP\r\n")
    assert outcome(reply) == b"OK\r\n"
    entries = [line for line in lines(reply) if line.startswith(b"+CWLAP")]
    assert len(entries) == 1
    entry = entries[0]
    assert entry[7:8] == b"(" and entry.endswith(b")\r\n")
    ecn, pos = parse_number(entry, 8)
    ssid = re.match(rb'"([^"]*)",', entry[pos:]).group(1)
    rssi, pos = parse_number(entry, pos + len(ssid) + 3)
    assert (ecn, ssid) == (3, DEFAULT_SSID.encode())  # AT ecn 3: WPA2_PSK
    assert parse_mac(entry, pos) == h.world.access_points[0].bssid_bytes
    assert len(entry[8:-3].split(b",")) == 11  # AT+CWLAPOPT mask 0x7FF: all eleven ESP8266 fields


def lwesp_mfg_write(h, namespace: bytes, key: bytes, value: bytes) -> None:
    """LWESP_CMD_SYSMFG_WRITE of a blob: the first OK is swallowed, '>' after '\\n' sends the value,
    the second OK ends the command."""
    first = h.send(b'AT+SYSMFG=2,"%s","%s",8,%d\r\n' % (namespace, key, len(value)))
    assert lines(first) == [b"OK\r\n"] and first.endswith(b"\n>")
    h.modem.feed(value)
    second = h.wait_for(b"OK\r\n")
    assert outcome(second) == b"OK\r\n"


def lwesp_start(h, kind: bytes, host: bytes, port: int) -> tuple[bytes, list[bytes]]:
    """LWESP_CMD_TCPIP_CIPSTART: AT+CIPSTATUS, AT+CIPSTARTEX (keep-alive 0), AT+CIPSTATUS again."""
    assert outcome(h.send(b"AT+CIPSTATUS\r\n")) == b"OK\r\n"
    reply = h.send(b'AT+CIPSTARTEX="%s","%s",%d,0\r\n' % (kind, host, port))
    status = h.send(b"AT+CIPSTATUS\r\n")
    assert outcome(status) == b"OK\r\n"
    return reply, [line for line in lines(status) if line.startswith(b"+CIPSTATUS")]


def test_lwesp_ssl_session_with_mutual_tls(mutual):
    pki, server, client, sntp = mutual
    world = World(access_points=[AccessPoint(DEFAULT_SSID, DEFAULT_PASSWORD)],
                  hosts={"tls.test": "127.0.0.1", "pool.ntp.org": "127.0.0.1"}, sntp_port=sntp.port)
    h = Harness("esp-at-2", world=world)
    try:
        h.send(b"AT+RST\r\n")
        for command in reset_sequence(0):
            h.send(command + b"\r\n")
        # lwesp_sta_join: escaped strings; then LWESP_CMD_WIFI_CWDHCP_GET, CIPSTA?, CIPSTAMAC?
        joined = h.send(b'AT+CWJAP="%s","%s"\r\n' % (DEFAULT_SSID.encode(), DEFAULT_PASSWORD.encode()))
        assert outcome(joined) == b"OK\r\n" and b"WIFI GOT IP\r\n" in lines(joined)
        for command in (b"AT+CWDHCP?", b"AT+CIPSTA?", b"AT+CIPSTAMAC?"):
            assert outcome(h.send(command + b"\r\n")) == b"OK\r\n", command
        assert outcome(h.send(b'AT+CIPSNTPCFG=1,0,"pool.ntp.org"\r\n')) == b"OK\r\n"
        h.pump(lambda: h.modem.runtime["sntp"].now() > 57600)  # the chain is checked at the modem's clock

        lwesp_mfg_write(h, b"client_ca", b"client_ca.0", pki.root.pem)
        lwesp_mfg_write(h, b"client_cert", b"client_cert.0", client.der)
        lwesp_mfg_write(h, b"client_key", b"client_key.0", key_pem(client.key))
        assert outcome(h.send(b"AT+CIPSSLCCONF=0,3,0,0\r\n")) == b"OK\r\n"  # link 0: mutual authentication

        reply, status = lwesp_start(h, b"SSL", b"tls.test", server.port)
        assert outcome(reply) == b"OK\r\n"
        link = parse_link_conn(next(line for line in lines(reply) if b"+LINK_CONN:" in line))
        assert link == dict(failed=0, num=0, kind=b"SSL", server=0, ip="127.0.0.1", remote_port=server.port,
                            local_port=link["local_port"])
        assert len(status) == 1 and parse_number(status[0], 11)[0] == 0

        greeting = h.wait_for(b"hello")
        head = greeting[greeting.index(b"+IPD"):greeting.index(b":") + 1]
        assert parse_ipd(head) == dict(conn=0, length=5, data=True, ip="127.0.0.1", port=server.port)

        prompt = h.send(b"AT+CIPSEND=0,5\r\n")
        assert b"\n>" in prompt  # LwESP sends the data on '>' right after '\n'
        h.modem.feed(b"howdy")
        assert any(line.startswith(b"SEND OK") for line in lines(h.wait_for(b"SEND OK\r\n")))
        echo = h.wait_for(b"howdy")
        assert parse_ipd(echo[echo.index(b"+IPD"):echo.index(b":") + 1])["length"] == 5
        assert (server.handshakes, server.failures) == (1, 0)

        # Link 1 presents no certificate: the server refuses it, LwESP sees ERROR, link 0 lives on.
        assert outcome(h.send(b"AT+CIPSSLCCONF=1,2,0,0\r\n")) == b"OK\r\n"
        reply, status = lwesp_start(h, b"SSL", b"tls.test", server.port)
        assert outcome(reply) == b"ERROR\r\n" and b"+LINK_CONN:" not in reply
        assert [parse_number(line, 11)[0] for line in status] == [0]
        h.pump(lambda: server.failures >= 1, timeout=5)

        closed = h.send(b"AT+CIPCLOSE=0\r\n")
        assert b"0,CLOSED\r\n" in lines(closed) and outcome(closed) == b"OK\r\n"
    finally:
        h.close()

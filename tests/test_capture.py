"""The pcapng capture of the modem's network side, read back by a real tshark: an HTTPS session
decrypted with the TLS links' key log, plain TCP byte for byte both ways, a refused dial, a client
of the modem's server, SNTP and DNS over UDP; all between the modem's simulated addresses and the
remote it dialled (a name's address in the world, never the loopback server behind the forwarding)."""

import re
import shutil
import socket

import pytest

from atmodem_tcpip import server_ports
from atmodem.capture import STAND_INS, PacketCapture, ipv4
from atmodem.lab import EchoServer, Page, SntpServer, WebServer, server_context
from atmodem.world import DEFAULT_PASSWORD, DEFAULT_SSID, AccessPoint, World
from pki import Pki
from captures import flawless, tshark
from support import Harness

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (make setup-test-tools installs it)")

OK = b"\r\nOK\r\n"
# What the modem dials: a public address of the simulated internet, forwarded to a loopback server.
REMOTE = "93.184.216.34"
HOST = "www.capture.test"
# Several TCP segments (and TLS records spanning them): tshark must reassemble them.
BODY = b"".join(b"line %04d of a page longer than one segment\n" % n for n in range(120))


class Captured:
    """A modem joined to a world whose ``HOST`` is ``REMOTE`` (port 443 forwarded to ``forward_to``),
    its capture and TLS key log in ``folder``; with ``sntp`` its clock asks that server."""

    def __init__(self, folder, forward_to: int = 0, sntp: SntpServer | None = None):
        hosts = {HOST: REMOTE}
        if sntp is not None:
            hosts["pool.ntp.org"] = "127.0.0.1"
        self.world = World(access_points=[AccessPoint(DEFAULT_SSID, DEFAULT_PASSWORD)], hosts=hosts,
                           sntp_port=sntp.port if sntp else 123)
        if forward_to:
            self.world.forward_port(REMOTE, 443, "127.0.0.1", forward_to)
        self.h = Harness(world=self.world)
        self.path, self.keys = folder / "modem.pcapng", folder / "keys.log"
        self.h.network.keylog = self.keys
        self.capture = PacketCapture(self.path, self.h.modem)
        self.h.modem.observers.append(self.capture)
        self.h.join()

    @property
    def station(self) -> str:
        """The address the AP's DHCP gave the modem."""
        return str(self.world.access_points[0].lease(self.world.mac_bytes))

    def send(self, data: bytes) -> None:
        assert self.h.send(b"AT+CIPSEND=%d\r\n" % len(data)) == b"OK\r\n> "
        assert self.h.send(data).endswith(b"SEND OK\r\n")

    def finish(self):
        self.h.close()
        self.capture.close()
        return self.path


@pytest.fixture(scope="module")
def pki():
    return Pki()


def test_an_https_request_decrypts_with_the_key_log(pki, tmp_path):
    web = WebServer({"/hello": Page(BODY)}, server_context(pki.leaf, tmp_path))
    try:
        session = Captured(tmp_path, web.port)
        assert session.h.send(b'AT+CIPSTART="SSL","%s",443\r\n' % HOST.encode()) == b"CONNECT\r\n" + OK
        session.send(b"GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % HOST.encode())
        session.h.wait_for(b"CLOSED\r\n")
        capture = session.finish()
    finally:
        web.close()
    decrypted = ("-o", f"tls.keylog_file:{session.keys}")
    assert tshark(capture, *decrypted, "-Y", "http.request", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                  "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.host") == [
        [session.station, REMOTE, "GET", "/hello", HOST]]
    [[code, body]] = tshark(capture, *decrypted, "-Y", "http.response", "-T", "fields",
                            "-e", "http.response.code", "-e", "http.file_data")
    assert code == "200" and body == BODY.decode().replace("\n", "\\n")   # tshark shows text, escaped
    assert tshark(capture, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "eth.src",
                  "-e", "tls.handshake.extensions_server_name") == [[session.world.mac, HOST]]
    assert tshark(capture, "-Y", "ip.addr == 127.0.0.1") == []   # the host's side of the forwarding stays out
    assert tshark(capture, "-Y", "tcp.flags.fin == 1", "-T", "fields", "-e", "ip.src") == [[REMOTE], [session.station]]
    assert flawless(capture)


def test_plain_tcp_carries_exactly_the_bytes_both_ways(tmp_path):
    echo = EchoServer()
    upload = bytes(range(256)) * 8    # 2048 bytes, AT+CIPSEND's most: two segments
    try:
        session = Captured(tmp_path, echo.port)
        assert session.h.send(b'AT+CIPSTART="TCP","%s",443\r\n' % REMOTE.encode()) == b"CONNECT\r\n" + OK
        session.send(upload)
        session.h.pump(lambda: sum(map(int, re.findall(rb"\+IPD,(\d+):", session.h.out))) == len(upload))
        session.h.take()
        assert session.h.send(b"AT+CIPCLOSE\r\n") == b"CLOSED\r\n" + OK
        capture = session.finish()
    finally:
        echo.close()
    streams = {}
    for source, payload in tshark(capture, "-Y", "tcp.len > 0", "-T", "fields", "-e", "ip.src", "-e", "tcp.payload"):
        streams[source] = streams.get(source, b"") + bytes.fromhex(payload)
    assert streams == {session.station: upload, REMOTE: upload}
    assert max(int(length) for [length] in tshark(capture, "-T", "fields", "-e", "tcp.len")) == 1460
    # The modem closed: its FIN comes first.
    assert tshark(capture, "-Y", "tcp.flags.fin == 1", "-T", "fields", "-e", "ip.src") == [[session.station], [REMOTE]]
    assert flawless(capture)


def test_a_refused_dial_is_a_syn_answered_by_a_reset(tmp_path):
    echo = EchoServer()
    closed_port = echo.port
    echo.close()    # nothing listens there now
    session = Captured(tmp_path, closed_port)
    assert session.h.send(b'AT+CIPSTART="TCP","%s",443\r\n' % HOST.encode()).endswith(b"ERROR\r\nCLOSED\r\n")
    capture = session.finish()
    assert tshark(capture, "-Y", "tcp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.flags.str") == [
        [session.station, REMOTE, "··········S·"], [REMOTE, session.station, "·······A·R··"]]
    assert tshark(capture, "-Y", "dns.a", "-T", "fields", "-e", "dns.qry.name", "-e", "dns.a") == [
        [HOST, REMOTE]]


def test_only_names_reach_the_dns_server(tmp_path):
    session = Captured(tmp_path)
    unfit = b"a" * 64 + b".test"    # a label DNS cannot carry: lwIP refuses it without asking
    for host in (unfit, b"missing.test", b"127.0.0.1"):
        session.h.send(b'AT+CIPSTART="TCP","%s",9\r\n' % host)
    capture = session.finish()
    assert tshark(capture, "-Y", 'dns.qry.name != "pool.ntp.org" && dns.qry.name != "time.nist.gov"',
                  "-T", "fields", "-e", "dns.qry.name", "-e", "dns.flags.rcode") == [
        ["missing.test", ""], ["missing.test", "3"]]    # the query, then NXDOMAIN


def test_a_client_dials_the_modems_server_and_the_lost_ap_resets_the_link(tmp_path):
    session = Captured(tmp_path)
    session.h.send(b"AT+CIPMUX=1\r\n")
    assert session.h.send(b"AT+CIPSERVER=1\r\n") == OK
    client = socket.create_connection(("127.0.0.1", server_ports(session.h.modem)[333][1]))
    # The client is where the modem says it is (AT+CIPSTATUS): at its host address.
    client_port = str(client.getsockname()[1])
    try:
        session.h.wait_for(b"0,CONNECT\r\n")
        client.sendall(b"ping")
        session.h.wait_for(b"ping")
        session.world.remove_ap(DEFAULT_SSID)
        session.h.wait_for(b"0,CLOSED\r\n")
        capture = session.finish()
    finally:
        client.close()
    assert tshark(capture, "-Y", "tcp", "-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.flags.str",
                  "-e", "tcp.payload") == [
        ["127.0.0.1", client_port, "··········S·", ""],
        [session.station, "333", "·······A··S·", ""],
        ["127.0.0.1", client_port, "·······A····", ""],
        ["127.0.0.1", client_port, "·······AP···", b"ping".hex()],
        [session.station, "333", "·······A····", ""],
        [session.station, "333", "·······A·R··", ""]]
    assert flawless(capture)


def test_sntp_and_its_lookup_are_udp(tmp_path):
    sntp = SntpServer()
    try:
        session = Captured(tmp_path, sntp=sntp)    # joining starts SNTP
        session.h.pump(lambda: session.h.modem.runtime["sntp"].now() > 57600)
        capture = session.finish()
    finally:
        sntp.close()
    dns_server = session.world.access_points[0].dns[0]
    assert tshark(capture, "-Y", 'dns.qry.name == "pool.ntp.org"', "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                  "-e", "dns.a") == [
        [session.station, dns_server, ""], [dns_server, session.station, "127.0.0.1"]]
    assert tshark(capture, "-d", f"udp.port=={sntp.port},ntp", "-Y", "ntp", "-T", "fields",
                  "-e", "ip.src", "-e", "ip.dst", "-e", "ntp.flags.mode") == [
        [session.station, "127.0.0.1", "3"], ["127.0.0.1", session.station, "4"]]
    assert flawless(capture)


def test_remotes_that_are_not_ipv4_get_a_stable_stand_in():
    assert ipv4("93.184.216.34") == bytes((93, 184, 216, 34))
    stand_in = ipv4("::1")
    assert stand_in == ipv4("::1") != ipv4("::2")
    assert STAND_INS.network_address.packed <= stand_in <= STAND_INS.broadcast_address.packed

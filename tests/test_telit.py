"""The Telit #SSL dialect (profiles telit and telit-he910): the example transcripts of the Telit
SSL/TLS user guide (seed 004) replayed byte for byte, real TLS against servers on 127.0.0.1
(server authentication, mutual TLS, session resumption seen from the server), and bad input in
the dialect's error forms.

A transcript is a list of (command, response lines) as the guide prints them; the last line is
the result code. Where the guide shows a placeholder (an address, a cipher suite, data) the
model's plausible value stands in its place, with the guide's placeholder in a comment.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from atmodem.lab import TcpServer
from atmodem.lab.pki import issue, key_pem, utc
from atmodem.world import World
from support import Harness

GUIDE_SERVER = "123.124.125.126"     # the guide's SSL server, forwarded to a server on 127.0.0.1
CLOCK = b'AT+CCLK="26/06/01,12:00:00+00"'   # inside the test certificates' validity


def framed(*lines: str) -> bytes:
    """Response lines as a Telit module sends them in verbose mode: information lines, then the result code."""
    *information, final = [line.encode("latin-1") for line in lines]
    body = b"".join(b"\r\n" + line for line in information) + b"\r\n" if information else b""
    return body + b"\r\n" + final + b"\r\n"


def replay(h: Harness, transcript) -> None:
    """Type each command with CR and compare the answer (echo on: the command comes back first)."""
    for command, response in transcript:
        line = command.encode("latin-1") + b"\r"
        expected = (line if h.modem.echo else b"") + framed(*response)
        assert h.send(line) == expected, command


def boot(profile: str = "telit", world: World | None = None) -> Harness:
    h = Harness(profile, ready=False, world=world)
    h.settle()
    assert h.take() == b""   # a Telit module says nothing at power-on
    return h


@pytest.fixture
def h():
    harness = boot()
    yield harness
    harness.close()


@pytest.fixture
def he910():
    harness = boot("telit-he910")
    yield harness
    harness.close()


# ---------------------------------------------------------------- PKI and servers


class Pki:
    """A root, an RSA server certificate for the guide's server and tls.test, a client certificate."""

    def __init__(self, folder: Path):
        self.folder = folder
        start, end = utc(2025), utc(2030)
        self.root = issue("atmodem Telit Root", None, ca=True, start=start, end=end)
        hosts = ("tls.test", GUIDE_SERVER, "127.0.0.1")
        self.server = issue("tls.test", self.root, ca=False, start=start, end=end, hosts=hosts, rsa=True)
        self.client = issue("atmodem telit client", self.root, ca=False, start=start, end=end, rsa=True)
        self.stranger = issue("Someone Else Root", None, ca=True, start=start, end=end)

    def context(self, require_client: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.server.write(self.folder))
        context.set_ciphers("ALL:@SECLEVEL=1")   # the module's RSA suites (3, 5) besides the modern ones
        context.maximum_version = ssl.TLSVersion.TLSv1_2   # session ids, as the module's TLS 1.2
        if require_client:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.root.pem.decode())
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("telit-pki"))


class ScriptedServer(TcpServer):
    """A TLS server whose connections run ``script(tls_socket)``; records whether each resumed a session."""

    def __init__(self, context: ssl.SSLContext, script):
        self.script = script
        self.resumed: list[bool] = []
        super().__init__(context)

    def handle(self, peer) -> None:
        self.resumed.append(peer.session_reused)
        self.script(peer)


def echo(peer) -> None:
    while data := peer.recv(65536):
        peer.sendall(data)


@pytest.fixture
def servers(pki):
    started = []

    def start(script=echo, require_client=False) -> ScriptedServer:
        server = ScriptedServer(pki.context(require_client), script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def online(server: ScriptedServer, profile: str = "telit") -> Harness:
    """A module with context 1 active, SSId 1 enabled and the guide's server on 127.0.0.1:<port>."""
    world = World.default()
    world.forward_port(GUIDE_SERVER, 443, "127.0.0.1", server.port)
    world.hosts["tls.test"] = "127.0.0.1"
    h = boot(profile, world)
    replay(h, [
        ('AT+CGDCONT=1,"IP","Access_Point_Name"', ["OK"]),
        ("AT#SGACT=1,1", ["#SGACT: 10.7.125.7", "OK"]),
        ("AT#SSLEN=1,1", ["OK"]),
        (CLOCK.decode(), ["OK"]),
    ])
    return h


def store(h: Harness, ssid: int, data_type: int, data: bytes, pem: bool = True) -> None:
    """AT#SSLSECDATA=<SSId>,1,<DataType>,<size>: the prompt, the data (Ctrl-Z after PEM), OK."""
    line = b"AT#SSLSECDATA=%d,1,%d,%d\r" % (ssid, data_type, len(data))
    assert h.send(line) == (line if h.modem.echo else b"") + b"\r\n> "
    echoed = data if pem and h.modem.echo else b""
    assert h.send(data + (b"\x1a" if pem else b"")) == echoed + framed("OK")


# ---------------------------------------------------------------- §5 PDP context


def test_pdp_context_transcript():
    world = World.default()
    world.cellular.addresses[1] = "212.195.45.65"   # what the guide's network handed out in §5
    h = boot(world=world)
    replay(h, [
        ('AT+CGDCONT=1,"IP","Access_Point_Name"', ["OK"]),
        ("AT#SGACT=1,1", ["#SGACT: 212.195.45.65", "OK"]),
        ("AT#SGACT?", ["#SGACT: 1,1", "#SGACT: 2,0", "#SGACT: 3,0", "#SGACT: 4,0", "#SGACT: 5,0", "OK"]),
        ('AT+CGDCONT?', ['+CGDCONT: 1,"IP","Access_Point_Name","0.0.0.0",0,0', "OK"]),
        ("AT#SGACT=1,0", ["OK"]),
        ("AT#SGACT=?", ["#SGACT: (1-5),(0-1)", "OK"]),
    ])
    h.close()


def test_socket_configuration(h):
    """#SCFG, read in seed 004 §8.2 and §9.1: its defaults, a change, its ranges, bad values."""
    defaults = ["#SCFG: %d,%d,300,90,600,50" % (conn_id, 1 if conn_id <= 3 else 2) for conn_id in range(1, 7)]
    replay(h, [
        ("AT#SCFG?", [*defaults, "OK"]),
        ("AT#SCFG=4,1,512,30,100,10", ["OK"]),
        ("AT#SCFG?", [*defaults[:3], "#SCFG: 4,1,512,30,100,10", *defaults[4:], "OK"]),
        ("AT#SCFG=?", ["#SCFG: (1-6),(0-5),(0-1500),(0-65535),(10-1200),(0-255)", "OK"]),
        ("AT+CMEE=1", ["OK"]),
        ("AT#SCFG=7,1,300,90,600,50", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,6,300,90,600,50", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,1,1501,90,600,50", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,1,300,90,9,50", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,1,300,90,600,256", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,1,300,90,600", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,1,300,90,600,50,1", ["+CME ERROR: 4"]),
        ("AT#SCFG=1,x,300,90,600,50", ["+CME ERROR: 4"]),
        ("AT#SCFG?", [*defaults[:3], "#SCFG: 4,1,512,30,100,10", *defaults[4:], "OK"]),
    ])


def test_no_coverage_fails_the_activation():
    world = World.default()
    world.cellular.coverage = False
    h = boot(world=world)
    replay(h, [("AT+CMEE=1", ["OK"]), ('AT+CGDCONT=1,"IP","apn"', ["OK"])])
    assert h.send(b"AT#SGACT=1,1\r") == b"AT#SGACT=1,1\r" + framed("+CME ERROR: 555")
    replay(h, [("AT#SGACT?", ["#SGACT: 1,0", "#SGACT: 2,0", "#SGACT: 3,0", "#SGACT: 4,0", "#SGACT: 5,0", "OK"])])
    h.close()


def test_activation_takes_time_and_errors_follow_cmee(h):
    h.send(b"ATE0\r")
    assert h.send(b'AT+CGDCONT=2,"IP", "apn"\r') == framed("OK")   # the guide's space after a comma
    h.modem.feed(b"AT#SGACT=2,1\r")
    assert h.advance(0.4) == b""
    assert h.advance(0.2) == framed("#SGACT: 10.7.125.8", "OK")
    replay(h, [
        ("AT#SGACT=2,1", ["ERROR"]),
        ("AT+CMEE=1", ["OK"]),
        ("AT#SGACT=2,1", ["+CME ERROR: 553"]),
        ("AT#SGACT=3,1", ["+CME ERROR: 555"]),    # never defined
        ("AT+CMEE=2", ["OK"]),
        ("AT#SGACT=9,1", ["+CME ERROR: operation not supported"]),
        ('AT+CGDCONT=1,"X25","apn"', ["+CME ERROR: operation not supported"]),
    ])


# ---------------------------------------------------------------- §6.8 #SSLEN and the configuration


def test_sslen_one_socket_module(he910):
    """Guide §6.8.1, COM1 (the second AT instance of the guide is not modelled: one UART)."""
    replay(he910, [
        ("AT+CGMM", ["HE910", "OK"]),
        ("AT#PORTCFG?", ["#PORTCFG: 0,0", "OK"]),
        ("AT#SSLCFG=?", ["#SSLCFG: (1),(1),(0-1500),(0-65535),(10-5000),(0-255),(0-2),(0),(0)", "OK"]),
        ("AT+CMEE=2", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "OK"]),
        ("AT#SSLEN=1,1", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,1", "OK"]),
        ("AT+CMEE?", ["+CMEE: 2", "OK"]),
        ("AT#SSLEN=1,0", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "OK"]),
    ])


def test_sslen_several_sockets_module(h):
    """Guide §6.8.2 on one instance: the enable states the two COM ports saw."""
    replay(h, [
        ("AT+CGMM", ["LE866-SV1", "OK"]),
        ("AT#PORTCFG?", ["#PORTCFG: 1,1", "OK"]),
        ("AT#SSLCFG=?", ["#SSLCFG: (1-6),(1-5),(0-1500),(0-65535),(10-5000),(0-255),(0-2),(0),(0)", "OK"]),
        ("AT+CMEE?", ["+CMEE: 0", "OK"]),
        ("AT+CMEE=2", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "#SSLEN: 2,0", "#SSLEN: 3,0", "#SSLEN: 4,0", "#SSLEN: 5,0", "#SSLEN: 6,0", "OK"]),
        ("AT#SSLEN=1,1", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,1", "#SSLEN: 2,0", "#SSLEN: 3,0", "#SSLEN: 4,0", "#SSLEN: 5,0", "#SSLEN: 6,0", "OK"]),
        ("AT#SSLEN=2,1", ["OK"]),
        ("AT#SSLEN=1,0", ["OK"]),
        ("AT#SSLEN=3,1", ["OK"]),
        ("AT#SSLEN=4,1", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "#SSLEN: 2,1", "#SSLEN: 3,1", "#SSLEN: 4,1", "#SSLEN: 5,0", "#SSLEN: 6,0", "OK"]),
        ("AT#SSLEN=1,1", ["OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,1", "#SSLEN: 2,1", "#SSLEN: 3,1", "#SSLEN: 4,1", "#SSLEN: 5,0", "#SSLEN: 6,0", "OK"]),
        ("AT#SSLEN=1,1", ["+CME ERROR: SSL already activated"]),
    ])


def test_sslen_and_the_other_ssl_commands(he910):
    """Guide §6.8.3 (3G, ID 12). The guide types AT#SSELEN=1,1, a misprint of AT#SSLEN (which
    a module answers with ERROR, as this one does)."""
    replay(he910, [
        ("AT+CGMM", ["HE910", "OK"]),
        ("AT+CMEE=2", ["OK"]),
        ("AT#SSLEN=?", ["#SSLEN: (1),(0,1)", "OK"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "OK"]),
        ("AT#SSLSECCFG2?", ["+CME ERROR: SSL not activated"]),
        ("AT#SSLSECCFG?", ["+CME ERROR: SSL not activated"]),
        ("AT#SSLCFG?", ["+CME ERROR: SSL not activated"]),
        ("AT#SSELEN=1,1", ["ERROR"]),
        ("AT#SSLEN=1,1", ["OK"]),
        ("AT#SSLSECCFG2?", ["#SSLSECCFG2: 1,1,0,0,0,0", "OK"]),
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,0", "OK"]),
        ("AT#SSLCFG?", ["#SSLCFG: 1,1,300,90,100,50,0,0,0,0", "OK"]),
    ])


def test_security_configuration_forms(h):
    """Guide §6.2.2: <cert_format> shows in the read form only once it was given."""
    replay(h, [
        ("AT#SSLEN=1,1", ["OK"]),
        ("AT#SSLSECCFG=1,0,0", ["OK"]),      # §6.8.4 verify none
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,0", "OK"]),
        ("AT#SSLSECCFG=1,0,1,0", ["OK"]),    # §6.8.5.2 DER
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,1,0", "OK"]),
        ("AT#SSLSECCFG=1,0,2", ["OK"]),
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,2,0", "OK"]),
        ("AT#SSLSECCFG=1,0,1,1", ["OK"]),    # §6.8.5.2 PEM
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,1,1", "OK"]),
        ("AT#SSLSECCFG=?", ["#SSLSECCFG: (1-6),(0-5),(0-2),(0,1)", "OK"]),
        ("AT#SSLSECCFG2=1,3,1", ["OK"]),
        ("AT#SSLSECCFG2?", ["#SSLSECCFG2: 1,3,1,0,0,0", "OK"]),
        ("AT#SSLSECCFG2=?", ["#SSLSECCFG2: (1-6),(0-3),(0,1),(0),(0),(0)", "OK"]),
        ("AT#SSLCFG=1,1,300,90,100,50,2", ["OK"]),
        ("AT#SSLCFG?", ["#SSLCFG: 1,1,300,90,100,50,2,0,0,0", "OK"]),
    ])


def test_cipher_suites_this_openssl_cannot_offer_are_refused_clearly(h, caplog):
    from atmodem_telit.ssl import openssl_cipher
    replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLEN=1,1", ["OK"])])
    for number, iana in ((1, 0x0004), (2, 0x0005), (3, 0x002F), (4, 0x0002), (5, 0x0035)):
        available = openssl_cipher(iana) is not None
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            answer = ["OK"] if available else ["+CME ERROR: operation not supported"]
            replay(h, [("AT#SSLSECCFG=1,%d,0" % number, answer)])
        assert ("not offered by this machine's OpenSSL" in caplog.text) != available
    assert openssl_cipher(0x002F) == "AES128-SHA"   # the suites a server of the test PKI answers with


def test_security_data_store_read_delete(h):
    """Guide §6.5, §6.8.5.2, §6.8.6.2: PEM ended by Ctrl-Z (backspace edits, ESC abandons), DER by size."""
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLEN=1,1", ["OK"])])
    store(h, 1, 1, pem)
    replay(h, [("AT#SSLSECDATA=1,2,1", ["#SSLSECDATA: 1,1", *pem.decode().rstrip("\n").split("\n"), "OK"])])
    # Backspace removes a typo; ESC leaves the stored data alone.
    assert h.send(b"AT#SSLSECDATA=1,1,1,5\r").endswith(b"\r\n> ")
    h.send(b"AB\x08C\x1b")
    replay(h, [("AT#SSLSECDATA=1,2,1", ["#SSLSECDATA: 1,1", *pem.decode().rstrip("\n").split("\n"), "OK"])])
    # More than the module's 4096 bytes before Ctrl-Z (here 1 MB of noise): ERROR, nothing stored.
    assert h.send(b"AT#SSLSECDATA=1,1,1,5\r").endswith(b"\r\n> ")
    h.send(bytes(range(0x20, 0x100)) * 4600)
    assert h.send(b"\x1a").endswith(framed("ERROR"))
    replay(h, [("AT#SSLSECDATA=1,2,1", ["#SSLSECDATA: 1,1", *pem.decode().rstrip("\n").split("\n"), "OK"])])
    # DER: exactly <size> bytes, Ctrl-Z and CR among them.
    replay(h, [("AT#SSLSECCFG=1,0,2,0", ["OK"])])
    h.send(b"ATE0\r")
    store(h, 1, 0, b"\x30\x1a\x0d\x82", pem=False)
    assert h.send(b"AT\r") == framed("OK")
    replay(h, [
        ("AT#SSLSECDATA=1,2,2", ["+CME ERROR: operation not allowed"]),   # a private key is never read
        ("AT#SSLSECDATA=1,0,1", ["OK"]),
        ("AT#SSLSECDATA=1,2,1", ["+CME ERROR: SSL certs and keys wrong or not stored"]),
        ("AT#SSLSECDATA=1,1,1,0", ["+CME ERROR: operation not supported"]),
        ("AT#SSLSECDATA=1,1,1,4097", ["+CME ERROR: operation not supported"]),
        ("AT#SSLSECDATA=2,1,1,100", ["+CME ERROR: SSL not activated"]),
        ("AT#SSLSECDATA=?", ["#SSLSECDATA: (1-6),(0-3),(0-2),(1-4096)", "OK"]),
    ])


def test_security_data_survives_a_reset_unless_in_ram(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    first = Harness("telit", ready=False, state_dir=tmp_path)
    first.settle()
    try:
        first.send(b"ATE0\rAT#SSLEN=1,1\r")
        store(first, 1, 1, pem)
        assert first.send(b"AT#SSLSECDATA=1,3,0,%d\r" % len(pem)) == b"\r\n> "
        assert first.send(pem + b"\x1a") == framed("OK")
    finally:
        first.close()
    second = Harness("telit", ready=False, state_dir=tmp_path)
    second.settle()
    try:
        second.send(b"ATE0\rAT+CMEE=1\rAT#SSLEN=1,1\r")
        second.take()
        lines = pem.decode().rstrip("\n").split("\n")
        assert second.send(b"AT#SSLSECDATA=1,2,1\r") == framed("#SSLSECDATA: 1,1", *lines, "OK")
        assert second.send(b"AT#SSLSECDATA=1,2,0\r") == framed("+CME ERROR: 837")
    finally:
        second.close()


# ---------------------------------------------------------------- §7.4 sockets


def cipher_3(h: Harness) -> None:
    """The security configuration the §7.4 examples suppose: verify none, TLS_RSA_WITH_AES_128_CBC_SHA."""
    replay(h, [("AT#SSLSECCFG=1,3,0", ["OK"])])


def test_online_mode(servers):
    """Guide §7.4.1: CONNECT, data both ways, +++ and #SSLO, #SSLH; #SSLS before and after."""
    server = servers()
    h = online(server)
    try:
        cipher_3(h)
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",0,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.advance(1.1)                  # the guard time before +++
        h.modem.feed(b"GET / HTTP/1.0\r\n\r\n")
        assert h.wait_for(b"\r\n\r\n") == b"GET / HTTP/1.0\r\n\r\n"   # echoed by the server, straight to the UART
        h.advance(1.1)
        h.modem.feed(b"+++")
        assert h.advance(0.9) == b""    # the guard time after +++ has not passed yet
        assert h.advance(0.2) == framed("OK")
        replay(h, [("AT#SSLS=1", ["#SSLS: 1,2,3", "OK"])])   # guide: #SSLS: 1,2,<cipher_suite>
        assert h.send(b"AT#SSLO=1\r") == framed("CONNECT")
        h.modem.feed(b"more")
        assert h.wait_for(b"more") == b"more"
        h.advance(1.1)
        h.modem.feed(b"+++")
        assert h.advance(1.1) == framed("OK")
        replay(h, [
            ("AT#SSLH=1", ["OK"]),
            ("AT#SSLS=1", ["#SSLS: 1,1", "OK"]),
            ("AT#SSLEN=1,0", ["OK"]),
            ("AT#SSLS=1", ["#SSLS: 1,0", "OK"]),
        ])
    finally:
        h.close()


def test_escape_needs_the_guard_time_on_both_sides(servers):
    server = servers()
    h = online(server)
    try:
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",0,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.advance(0.5)
        h.modem.feed(b"+++")            # too soon after CONNECT: data
        h.advance(0.3)
        h.modem.feed(b"x")
        assert h.wait_for(b"+++x") == b"+++x"
        h.advance(1.5)
        h.modem.feed(b"+++")
        h.advance(0.5)
        h.modem.feed(b"y")              # too soon after +++: data
        assert h.wait_for(b"+++y") == b"+++y"
        h.advance(1.5)
        h.modem.feed(b"++")             # two are data once the guard time passes
        assert h.wait_for(b"++") == b"++"
        h.send(b"ATS12=5\r")            # still online: this too is data
        assert h.wait_for(b"ATS12=5\r") == b"ATS12=5\r"
        h.advance(1.5)
        h.modem.feed(b"+++")
        assert h.advance(1.1) == framed("OK")
        replay(h, [("ATS12=10", ["OK"]), ("ATS12?", ["010", "OK"])])   # 200 ms
        assert h.send(b"AT#SSLO=1\r") == framed("CONNECT")
        h.advance(0.3)
        h.modem.feed(b"+++")
        assert h.advance(0.3) == framed("OK")
    finally:
        h.close()


def test_online_packets_and_idle_timeout(servers):
    """#SSLCFG <pktSz> and <txTo> shape what reaches the server; <maxTo> ends an idle link."""
    received = queue.Queue()

    def record(peer):
        while data := peer.recv(65536):
            received.put(data)

    server = servers(record)
    h = online(server)
    try:
        replay(h, [("AT#SSLCFG=1,1,10,3,100,20", ["OK"])])
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",0,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.modem.feed(b"0123456789abc")
        assert arrival(h, received) == b"0123456789"      # a full packet at once, the rest waits
        assert h.advance(1.9) == b"" and received.empty()
        assert h.advance(0.2) == b""                      # <txTo> = 2 s sends the rest
        assert arrival(h, received) == b"abc"
        assert h.advance(0.8) == b""
        assert h.advance(0.2) == framed("NO CARRIER")      # <maxTo> = 3 s without traffic
        replay(h, [("AT#SSLS=1", ["#SSLS: 1,1", "OK"])])
    finally:
        h.close()


def arrival(h: Harness, received: queue.Queue) -> bytes:
    """The next data the server got, waiting in real time only (the modem's clock stands still)."""
    for _ in range(500):
        h.reactor.poll(0.01)
        if not received.empty():
            return received.get()
    raise TimeoutError("the server received nothing")


def test_command_mode(servers):
    """Guide §7.4.2: #SSLSEND, #SSLRECV with TIMEOUT, then the server's answer in two reads.
    The guide types AT#SSLRCV and prints #SSLRCV: here (and in §7.1.2.2), but #SSLRECV in §3's
    command list, §7.1.2.2's syntax and §7.4.3-7.4.4: a misprint; the module knows no #SSLRCV."""
    go = threading.Event()

    def script(peer):
        assert peer.recv(100) == b"Send this string to the SSL server!"
        go.wait(10)
        peer.sendall(b"Response of the")
        peer.sendall(b"Server")
        peer.recv(100)

    server = servers(script)
    h = online(server)
    try:
        cipher_3(h)
        replay(h, [
            ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["OK"]),
            ("AT#SSLS=1", ["#SSLS: 1,2,3", "OK"]),
            ("AT#SSLRCV=1,15", ["ERROR"]),            # the misprint as typed
        ])
        assert h.send(b"AT#SSLSEND=1\r") == b"AT#SSLSEND=1\r\r\n> "
        request = b"Send this string to the SSL server!"
        assert h.send(request + b"\x1a") == request + framed("OK")   # echoed as typed
        h.modem.feed(b"AT#SSLRECV=1,15\r")
        assert h.advance(9.9) == b"AT#SSLRECV=1,15\r"
        assert h.advance(0.2) == framed("#SSLRECV: 0", "TIMEOUT", "OK")   # <defTo> 100: 10 s
        go.set()
        h.pump(lambda: len(h.modem.runtime["telit.sockets"].get(1).link.inbox) == 21)
        replay(h, [
            ("AT#SSLRECV=1,15", ["#SSLRECV: 15", "Response of the", "OK"]),
            ("AT#SSLRECV=1,15", ["#SSLRECV: 6", "Server", "OK"]),
            ("AT#SSLH=1", ["OK"]),
        ])
    finally:
        h.close()


def test_online_then_command_mode(servers):
    """Guide §7.4.3: after +++ the socket stays connected and #SSLSEND/#SSLRECV carry on."""
    def script(peer):
        assert peer.recv(100) == b"online"
        assert peer.recv(100) == b"Send data in command mode"
        peer.sendall(b"Response in command mode")
        peer.recv(100)

    server = servers(script)
    h = online(server)
    try:
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",0,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.modem.feed(b"online")
        h.advance(1.1)
        h.modem.feed(b"+++")
        assert h.advance(1.1) == framed("OK")
        replay(h, [("AT#SSLS=1", ["#SSLS: 1,2,0", "OK"])])   # suite 0: one outside the table (ECDHE-RSA-AES256-GCM)
        assert h.send(b"AT#SSLSEND=1\r") == b"\r\n> "
        assert h.send(b"Send data in command mode\x1a") == framed("OK")
        h.pump(lambda: h.modem.runtime["telit.sockets"].get(1).pending == 24)
        replay(h, [
            ("AT#SSLRECV=1,100", ["#SSLRECV: 24", "Response in command mode", "OK"]),
            ("AT#SSLH=1", ["OK"]),
        ])
    finally:
        h.close()


def test_sslsring_mode_1(servers):
    """Guide §7.4.4.1: SSLSRING announces what waits, again after a partial read; NO CARRIER last."""
    answer = bytes(range(32, 132)) * 4

    def script(peer):
        assert peer.recv(100) == b"Make a request to the server"
        peer.sendall(answer)

    server = servers(script)
    h = online(server)
    try:
        replay(h, [
            ("AT#SSLCFG=1,1,300,90,100,50,1", ["OK"]),
            ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["OK"]),
        ])
        h.send(b"ATE0\r")
        assert h.send(b"AT#SSLSEND=1\r") == b"\r\n> "
        h.modem.feed(b"Make a request to the server\x1a")
        assert h.wait_for(b"SSLSRING: 1,400\r\n") == framed("OK") + b"\r\nSSLSRING: 1,400\r\n"
        assert h.send(b"AT#SSLRECV=1,300\r") == (framed("#SSLRECV: 300", answer[:300].decode("latin-1"), "OK") +
                                                  b"\r\nSSLSRING: 1,100\r\n")
        h.pump(lambda: h.modem.runtime["telit.sockets"].get(1).link.peer_closed)   # the server has left
        assert h.send(b"AT#SSLRECV=1,100\r") == (framed("#SSLRECV: 100", answer[300:].decode("latin-1"), "OK") +
                                                  framed("NO CARRIER"))
        replay(h, [("AT#SSLS=1", ["#SSLS: 1,1", "OK"]), ("AT#SSLRECV=1,10", ["ERROR"])])
    finally:
        h.close()


def test_sslsring_mode_2(servers):
    """Guide §7.4.4.2: the data comes in the URCs, 256 + 144 bytes, then NO CARRIER."""
    first, second = b"a" * 256, b"b" * 144

    def script(peer):
        assert peer.recv(100) == b"Make the same request of the example 1"
        peer.sendall(first)
        peer.sendall(second)

    server = servers(script)
    h = online(server)
    try:
        replay(h, [
            ("AT#SSLCFG=1,1,300,90,100,50,2", ["OK"]),
            ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["OK"]),
        ])
        h.send(b"ATE0\r")
        assert h.send(b"AT#SSLSEND=1\r") == b"\r\n> "
        h.modem.feed(b"Make the same request of the example 1\x1a")
        assert h.wait_for(b"NO CARRIER\r\n") == framed("OK") + (b"\r\nSSLSRING: 1,256," + first + b"\r\n" +
                                                   b"\r\nSSLSRING: 1,144," + second + b"\r\n" + framed("NO CARRIER"))
    finally:
        h.close()


def test_fast_dial_resumes_the_session(servers):
    """Guide §7.4.5: <ClosureType> 1 keeps the session, #SSLFASTD resumes it (the server says so)."""
    server = servers()
    h = online(server)
    try:
        cipher_3(h)
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",1,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.modem.feed(b"one")
        assert h.wait_for(b"one") == b"one"
        h.advance(1.1)
        h.modem.feed(b"+++")
        assert h.advance(1.1) == framed("OK")
        assert h.send(b"AT#SSLH=1\r") == framed("OK")
        assert h.send(b"AT#SSLFASTD=1,0\r") == framed("CONNECT")   # the guide shows "..." here
        h.modem.feed(b"two")
        assert h.wait_for(b"two") == b"two"
        h.advance(1.1)
        h.modem.feed(b"+++")
        assert h.advance(1.1) == framed("OK")
        assert h.send(b"AT#SSLH=1,0\r") == framed("OK")
        h.pump(lambda: len(server.resumed) == 2)
        assert server.resumed == [False, True]
        assert server.context.session_stats()["hits"] == 1
        # The definitive closure forgot the session.
        replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLFASTD=1,0", ["+CME ERROR: SSL invalid state"])])
    finally:
        h.close()


def test_closure_type_0_keeps_no_session(servers):
    server = servers()
    h = online(server)
    try:
        replay(h, [
            ("AT+CMEE=1", ["OK"]),
            ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["OK"]),
            ("AT#SSLH=1", ["OK"]),
            ("AT#SSLFASTD=1", ["+CME ERROR: 841"]),
            ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["OK"]),
            ("AT#SSLH=1,1", ["OK"]),      # <ClosureType> of #SSLH keeps it
            ("AT#SSLFASTD=1", ["OK"]),
            ("AT#SSLH=1,0", ["OK"]),
        ])
        h.pump(lambda: len(server.resumed) == 3)
        assert server.resumed == [False, False, True]
    finally:
        h.close()


# ---------------------------------------------------------------- authentication


def test_server_authentication_at_the_module_clock(servers, pki):
    """Guide §8.1: the root CA in PEM, the server verified; a wrong CA or a clock outside the
    certificate's dates fails the handshake (+CME ERROR: 839)."""
    server = servers()
    h = online(server)
    try:
        replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLSECCFG=1,0,1", ["OK"]), ("AT#SSLSECCFG2=1,3,1", ["OK"])])
        no_ca = "+CME ERROR: SSL certs and keys wrong or not stored"
        replay(h, [('AT#SSLD=1,%d,"tls.test",0,1' % server.port, [no_ca])])
        store(h, 1, 1, pki.stranger.pem)
        replay(h, [('AT#SSLD=1,%d,"tls.test",0,1' % server.port, ["+CME ERROR: SSL error during handshake"])])
        store(h, 1, 1, pki.root.pem)
        replay(h, [
            ('AT#SSLD=1,%d,"tls.test",0,1' % server.port, ["OK"]),
            ("AT#SSLH=1", ["OK"]),
            ('AT#SSLD=1,%d,"127.0.0.1",0,1' % server.port, ["OK"]),   # the name checked is the one dialled
            ("AT#SSLH=1", ["OK"]),
            ('AT#SSLD=1,%d,"localhost",0,1' % server.port, ["+CME ERROR: SSL error during handshake"]),
            ('AT+CCLK="35/01/01,00:00:00+00"', ["OK"]),
            ('AT#SSLD=1,%d,"tls.test",0,1' % server.port, ["+CME ERROR: SSL error during handshake"]),
            (CLOCK.decode(), ["OK"]),
            ('AT#SSLD=1,%d,"tls.test",0,1' % server.port, ["OK"]),
        ])
        h.pump(lambda: server.handshakes + server.failures == 6)
        assert (server.handshakes, server.failures) == (3, 3)   # the stranger CA, localhost, the clock
    finally:
        h.close()


@pytest.mark.parametrize("pem", [True, False], ids=["PEM", "DER"])
def test_mutual_tls(servers, pki, pem):
    """Guide §6.8.6.2 against a server that requires a client certificate: the module's
    certificate and key (PEM or DER) get it through; without them the handshake fails cleanly."""
    server = servers(require_client=True)
    h = online(server)
    try:
        replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLSECCFG=1,0,2,%d" % pem, ["OK"])])
        h.send(b"ATE0\r")
        if pem:
            store(h, 1, 0, pki.client.pem)
            store(h, 1, 1, pki.root.pem)
            store(h, 1, 2, key_pem(pki.client.key))
        else:
            key = pki.client.key.private_bytes(serialization.Encoding.DER,   # PKCS#1, "RSA private key"
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption())
            for data_type, data in ((0, pki.client.der), (1, pki.root.der), (2, key)):
                store(h, 1, data_type, data, pem=False)
        assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed("OK")
        assert h.send(b"AT#SSLSEND=1\r") == b"\r\n> "
        assert h.send(b"mutual\x1a") == framed("OK")
        h.pump(lambda: h.modem.runtime["telit.sockets"].get(1).pending == 6)
        assert h.send(b"AT#SSLRECV=1,10\r") == framed("#SSLRECV: 6", "mutual", "OK")
        assert h.send(b"AT#SSLH=1\r") == framed("OK")
        assert (server.handshakes, server.failures) == (1, 0)
        # Server authentication only: no certificate to show, the server refuses (in TLS 1.2
        # before its Finished, so the handshake itself fails).
        assert h.send(b"AT#SSLSECCFG=1,0,1\r") == framed("OK")
        assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed(
            "+CME ERROR: SSL error during handshake")
        h.pump(lambda: server.failures == 1)
        assert (server.handshakes, server.failures) == (1, 1)
        assert h.send(b"AT#SSLS=1\r") == framed("#SSLS: 1,1", "OK")
        assert h.send(b"AT\r") == framed("OK")
    finally:
        h.close()


def test_mutual_tls_without_key_is_refused_before_dialling(servers, pki):
    server = servers(require_client=True)
    h = online(server)
    try:
        replay(h, [("AT+CMEE=1", ["OK"]), ("AT#SSLSECCFG=1,0,2", ["OK"])])
        h.send(b"ATE0\r")
        store(h, 1, 0, pki.client.pem)
        store(h, 1, 1, pki.root.pem)
        assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed("+CME ERROR: 837")
        store(h, 1, 2, b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed("+CME ERROR: 837")
        # DER formats: a key with a password the module has no way to give is no key either.
        replay(h, [("AT#SSLSECCFG=1,0,2,0", ["OK"])])
        for data_type, data in ((0, pki.client.der), (1, pki.root.der)):
            store(h, 1, data_type, data, pem=False)
        encrypted = pki.client.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                 serialization.BestAvailableEncryption(b"secret"))
        store(h, 1, 2, encrypted, pem=False)
        assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed("+CME ERROR: 837")
        assert server.connections == 0
    finally:
        h.close()


# ---------------------------------------------------------------- framing and bad input


def test_line_syntax(h):
    """CR ends a line, LF after it is ignored, names in any case, ATE0/ATV0, blank lines answer nothing."""
    assert h.send(b"at\r\n") == b"at\r" + framed("OK") + b"\n"   # the LF starts the next line, echoed
    assert h.send(b"\nAt+cgmm\r") == b"\nAt+cgmm\r" + framed("LE866-SV1", "OK")
    assert h.send(b"\r") == b"\r"
    assert h.send(b"ATE0\r") == b"ATE0\r" + framed("OK")
    assert h.send(b"at#sslen=1,1\r") == framed("OK")
    assert h.send(b"ATV0\r") == b"0\r"
    assert h.send(b"AT#SSLEN?\r").startswith(b"#SSLEN: 1,1\r\n#SSLEN: 2,0\r\n")
    assert h.send(b"AT+CMEE=1\r") == b"0\r"
    assert h.send(b"AT#SSLCFG=9,1,1,1,1,1\r") == b"+CME ERROR: 4\r\n"
    assert h.send(b"ATX\r") == b"4\r"
    assert h.send(b"ATV1\r") == framed("OK")
    assert h.send(b"ATE\r") == framed("OK")     # ATE is ATE0
    assert h.send(b'AT #SSLSECCFG2 = 1, 3, 1\r') == framed("OK")   # V.250: spaces are formatting
    assert h.send(b'AT+CGDCONT=1,"IP","a p n"\r') == framed("OK")    # but not inside a string
    assert h.send(b"AT+CGDCONT?\r") == framed('+CGDCONT: 1,"IP","a p n","0.0.0.0",0,0', "OK")


BAD_COMMANDS = [
    (b"AT#SSLEN=7,1", 4), (b"AT#SSLEN=1,2", 4), (b"AT#SSLEN=1", 4), (b"AT#SSLEN=a,1", 4), (b"AT#SSLEN=1,1,1", 4),
    (b"AT#SSLSECCFG=1,6,0", 4), (b"AT#SSLSECCFG=1,0,3", 4), (b"AT#SSLSECCFG=1,0,0,2", 4),
    (b"AT#SSLSECCFG2=1,4", 4), (b"AT#SSLSECCFG2=1,3,2", 4), (b"AT#SSLSECCFG2=1,3,0,1", 4),
    (b"AT#SSLCFG=1,6,300,90,100,50", 4), (b"AT#SSLCFG=1,1,1501,90,100,50", 4), (b"AT#SSLCFG=1,1,300,90,9,50", 4),
    (b"AT#SSLCFG=1,1,300,90,100,50,3", 4), (b"AT#SSLCFG=1,1,300,90,100,50,0,1", 4), (b"AT#SSLCFG=1,1,300", 4),
    (b"AT#SSLSECDATA=1,4,1,10", 4), (b"AT#SSLSECDATA=1,1,3,10", 4),
    (b'AT#SSLD=1,0,"host",0,1', 4), (b'AT#SSLD=1,443,"",0,1', 4), (b'AT#SSLD=1,443,host,0,1', 4),
    (b'AT#SSLD=1,443,"host",2,1', 4), (b'AT#SSLD=1,443,"host",0,2', 4), (b'AT#SSLD=1,443,"host",0,1,0', 4),
    (b'AT#SSLD=1,443,"host",0,1', 556),              # no active PDP context
    (b"AT#SSLSEND=1", 833), (b"AT#SSLSENDEXT=1,10", 833), (b"AT#SSLRECV=1,10", 833), (b"AT#SSLO=1", 833),
    (b"AT#SSLH=1", 833), (b"AT#SSLS=0", 4), (b"AT#SSLFASTD=1", 841), (b"AT#SSLRECV=1", 4),
    (b"AT+CMEE=3", 4), (b'AT+CCLK="26/13/01,00:00:00+00"', 4), (b"AT+CCLK=1", 4), (b"ATE2", 4),
    (b"AT#SGACT=1", 4), (b"AT+CGDCONT=0", 4), (b'AT+CGDCONT=1,"IP",apn', 4),
]


@pytest.mark.parametrize("cmee", [0, 1, 2])
def test_bad_input_gets_the_error_form_of_cmee(h, cmee):
    h.send(b"ATE0\rAT#SSLEN=1,1\rAT+CMEE=%d\r" % cmee)
    h.take()
    for command, code in BAD_COMMANDS:
        from atmodem_telit.framing import CME_TEXTS
        expected = {0: "ERROR", 1: "+CME ERROR: %d" % code, 2: "+CME ERROR: " + CME_TEXTS[code]}[cmee]
        assert h.send(command + b"\r") == framed(expected), command
    for unknown in (b"AT#SSLX", b"ATD", b"AT#SSLEN", b"hello", b"AT#SSLEN?x", b"\x00\xff\x1a"):
        assert h.send(unknown + b"\r") == framed("ERROR"), unknown   # no such command: ERROR whatever +CMEE says
    assert h.send(b"AT\r") == framed("OK")


def test_over_long_lines_and_binary_garbage(h):
    h.send(b"ATE0\r")
    assert h.send(b"AT" + b"X" * 2000 + b"\r").endswith(framed("ERROR"))
    assert h.send(bytes(range(256)) + b"\r") .endswith(framed("ERROR"))
    assert h.send(b"AT\r") == framed("OK")


def test_a_reset_of_the_server_mid_session_is_no_carrier(servers):
    def script(peer):
        peer.recv(100)
        peer.sendall(b"bye")

    server = servers(script)
    h = online(server)
    try:
        h.send(b"ATE0\r")
        assert h.send(b'AT#SSLD=1,443,"%s",0,0\r' % GUIDE_SERVER.encode()) == framed("CONNECT")
        h.modem.feed(b"hi")
        assert h.wait_for(b"NO CARRIER\r\n") == b"bye" + framed("NO CARRIER")
        replay(h, [("AT#SSLS=1", ["#SSLS: 1,1", "OK"]), ("AT#SSLO=1", ["ERROR"])])
    finally:
        h.close()


def test_unreachable_server_and_refused_connection():
    world = World.default()
    world.hosts["gone.test"] = "127.0.0.1"
    h = boot(world=world)
    try:
        h.send(b'ATE0\rAT+CMEE=2\rAT+CGDCONT=1,"IP","apn"\rAT#SGACT=1,1\rAT#SSLEN=1,1\r')
        h.take()
        assert h.send(b'AT#SSLD=1,1,"gone.test",0,1\r') == framed("+CME ERROR: SSL socket error")
        assert h.send(b'AT#SSLD=1,443,"nowhere.test",0,1\r') == framed("+CME ERROR: SSL socket error")
        # The world lets the module reach 127.0.0.0/8 only.
        assert h.send(b'AT#SSLD=1,443,"8.8.8.8",0,1\r') == framed("+CME ERROR: SSL socket error")
    finally:
        h.close()


def test_a_failed_dial_leaves_the_next_dial_alone(peer):
    """The first dial's timer must not end a later dial on the same SSId: a TLS server slow to
    answer gets the whole of the second dial's timeout, and that timeout is a handshake error."""
    h = boot()
    try:
        h.send(b'ATE0\rAT+CMEE=1\rAT+CGDCONT=1,"IP","apn"\rAT#SGACT=1,1\rAT#SSLEN=1,1\r')
        h.take()
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()[1]
        closed.close()
        assert h.send(b'AT#SSLD=1,%d,"127.0.0.1",0,1\r' % refused) == framed("+CME ERROR: 832")
        h.modem.feed(b'AT#SSLD=1,%d,"127.0.0.1",0,1,5000\r' % peer.port)   # 500 s to connect
        server_side = peer.accept()
        assert h.advance(20.0) == b""                  # well past the first dial's 10 s
        server_side.settimeout(0.5)
        assert server_side.recv(5)[:1] == b"\x16"     # the ClientHello, on a connection still open
        assert h.advance(470.0) == b""
        assert h.advance(20.0) == framed("+CME ERROR: 839")   # 500 s after the second dial
    finally:
        h.close()


def test_ssl_is_one_resource_shared_with_the_services(h):
    """Seed 004 §6.1's warning and §10.1.1: a service that turned SSL on (here MQTT, as #MQCFG does)
    holds the SSId; the #SSL configuration commands work on it, #SSLEN and #SSLD do not."""
    from atmodem_telit.ssl import ssl_claims
    replay(h, [("AT+CMEE=2", ["OK"]), ("AT#SSLSECCFG=1,0,2", ["+CME ERROR: SSL not activated"])])
    ssl_claims(h.modem).claim(1, "MQTT")
    replay(h, [
        ("AT#SSLSECCFG=1,0,2", ["OK"]),
        ("AT#SSLSECCFG?", ["#SSLSECCFG: 1,0,2", "OK"]),
        ("AT#SSLEN=1,1", ["+CME ERROR: SSL already activated"]),
        ("AT#SSLEN?", ["#SSLEN: 1,0", "#SSLEN: 2,0", "#SSLEN: 3,0", "#SSLEN: 4,0", "#SSLEN: 5,0", "#SSLEN: 6,0", "OK"]),
        ('AT#SSLD=1,443,"%s",0,1' % GUIDE_SERVER, ["+CME ERROR: SSL not activated"]),
    ])
    ssl_claims(h.modem).release(1)
    replay(h, [("AT#SSLEN=1,1", ["OK"])])
    with pytest.raises(Exception) as refused:
        ssl_claims(h.modem).claim(1, "HTTP")
    assert refused.value.code == 835


def test_versions_follow_sslseccfg2(servers, pki):
    """The HE910 speaks TLS 1.0 unless #SSLSECCFG2 says otherwise (seed 004 §6.8.3's 1,1,...)."""
    def script(peer):
        peer.sendall(peer.version().encode())
        peer.recv(10)

    context = pki.context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    server = ScriptedServer(context, script)
    h = online(server, "telit-he910")
    try:
        h.send(b"ATE0\r")
        for version, name in ((None, "TLSv1"), (2, "TLSv1.1"), (3, "TLSv1.2")):
            if version is not None:
                assert h.send(b"AT#SSLSECCFG2=1,%d\r" % version) == framed("OK")
            assert h.send(b'AT#SSLD=1,443,"%s",0,1\r' % GUIDE_SERVER.encode()) == framed("OK")
            h.pump(lambda: h.modem.runtime["telit.sockets"].get(1).pending == len(name))
            assert h.send(b"AT#SSLRECV=1,10\r") == framed("#SSLRECV: %d" % len(name), name, "OK")
            assert h.send(b"AT#SSLH=1\r") == framed("OK")
        assert h.send(b"AT#SSLSECCFG2=1,3,1\r") == framed("ERROR")   # no SNI parameter on the HE910
    finally:
        server.close()
        h.close()

"""Telit's services over SSL (seed 004 §8.2 HTTPS, §9 FTPS, §10 MQTT) against real servers on
127.0.0.1: the lab's web server, and an explicit-TLS FTP server and an MQTT 3.1.1 broker written
here on the standard library's ssl (both verify what a real one would: AUTH TLS before the login,
TLS on each data connection, a client certificate when the broker asks for one).

Each guide example is a list of (command, expected answer) to read side by side with the guide:
the guide's values where it shows them, plausible ones of the right form for its placeholders
(``server_address`` is ``tls.test``, ``<size>`` the certificate's length, ...).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Optional

import pytest

from pki import Pki
from support import Harness
from atmodem.lab import TcpServer, WebServer, server_context
from atmodem.lab.pki import issue, key_pem, utc
from atmodem.lab.servers import Page
from atmodem.world import World

SERVER = "tls.test"            # the guide's "server_address" / "mqtt_broker_address"
CLOCK = b'AT+CCLK="26/06/01,12:00:00+00"\r'   # certificates are checked at the module's clock (§6.2 note)
PAGE = b"<!doctype html>\n<html>\n<body>Hello from the atmodem lab</body>\n</html>\n"
FILE = bytes(range(256)) * 40 + b"end of file.txt\n"


class FtpsServer(TcpServer):
    """An FTP server with explicit TLS (RFC 4217): AUTH TLS, PBSZ, PROT, USER/PASS, TYPE, PASV,
    RETR and QUIT, one thread per client; passive data connections are TLS when PROT P was given.

    It serves ``files`` to ``user``/``password`` and records the commands it got, so a test can
    tell that the modem upgraded the control connection before it logged in. With ``stall_after``
    a transfer stops after that many bytes and the server says nothing more until it is closed.
    """

    def __init__(self, context: ssl.SSLContext, files: dict[str, bytes], user: str = "user",
                 password: str = "secret", stall_after: int | None = None):
        self.tls = context   # for AUTH TLS and PROT P: the control connection starts in the clear
        self.files = files
        self.stall_after = stall_after
        self.closed = threading.Event()
        self.user, self.password = user, password
        self.commands: list[str] = []
        self.secured_data = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        control = conn
        protected = False
        passive = None
        try:
            control.sendall(b"220 atmodem lab FTPS\r\n")
            reader = control.makefile("rb")
            while line := reader.readline():
                verb, _, argument = line.decode("latin-1").strip().partition(" ")
                verb = verb.upper()
                self.commands.append(verb)
                if verb == "AUTH" and argument.upper() == "TLS":
                    control.sendall(b"234 AUTH TLS successful\r\n")
                    control = self.tls.wrap_socket(conn, server_side=True)
                    reader = control.makefile("rb")
                elif verb == "PBSZ":
                    control.sendall(b"200 PBSZ=0\r\n")
                elif verb == "PROT":
                    protected = argument.upper() == "P"
                    control.sendall(b"200 Protection set\r\n")
                elif verb == "USER":
                    user = argument
                    control.sendall(b"331 Password required\r\n")
                elif verb == "PASS":
                    if user == self.user and argument == self.password:
                        control.sendall(b"230 Logged in\r\n")
                    else:
                        control.sendall(b"530 Login incorrect\r\n")
                elif verb == "TYPE":
                    control.sendall(b"200 Type set\r\n")
                elif verb == "PASV":
                    passive = socket.create_server(("127.0.0.1", 0))
                    port = passive.getsockname()[1]
                    control.sendall(b"227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n" % divmod(port, 256))
                elif verb == "RETR":
                    body = self.files.get(argument)
                    if body is None or passive is None:
                        control.sendall(b"550 No such file\r\n")
                        continue
                    control.sendall(b"150 Opening data connection\r\n")
                    passive.settimeout(10)
                    data, _ = passive.accept()
                    passive.close()
                    passive = None
                    if protected:
                        data = self.tls.wrap_socket(data, server_side=True)
                        self.secured_data += 1
                    if self.stall_after is not None:
                        data.sendall(body[:self.stall_after])
                        self.closed.wait()
                        return
                    data.sendall(body)
                    data.close()
                    control.sendall(b"226 Transfer complete\r\n")
                elif verb == "QUIT":
                    control.sendall(b"221 Goodbye\r\n")
                    return
                else:
                    control.sendall(b"502 Not implemented\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            control.close()

    def close(self) -> None:
        self.closed.set()
        super().close()


class MqttBroker(TcpServer):
    """An MQTT 3.1.1 broker over TLS that knows CONNECT, PINGREQ and DISCONNECT: enough to see a
    client log in, stay alive and leave. ``sessions`` records each CONNECT (client id, user,
    password, keep-alive, clean session, the client certificate's subject if one was shown),
    ``pings`` and ``disconnects`` count the rest; ``refuse`` answers CONNACK with that code."""

    def __init__(self, context: ssl.SSLContext, refuse: int = 0):
        self.refuse = refuse
        self.sessions: list[dict] = []
        self.pings = 0
        self.disconnects = 0
        self.server_names: list[Optional[str]] = []    # the SNI of each handshake
        context.sni_callback = lambda _sock, name, _context: self.server_names.append(name)
        super().__init__(context)

    def handle(self, client) -> None:
        while packet := _read_packet(client):
            kind, body = packet
            if kind == 0x10:
                self.sessions.append(_parse_connect(body, client.getpeercert()))
                client.sendall(bytes([0x20, 2, 0, self.refuse]))
            elif kind == 0xC0:
                self.pings += 1
                client.sendall(b"\xd0\x00")
            elif kind == 0xE0:
                self.disconnects += 1
                return


def _read_packet(sock) -> Optional[tuple[int, bytes]]:
    header = sock.recv(1)
    if not header:
        return None
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return header[0] & 0xF0, body


def _parse_connect(body: bytes, peer_certificate) -> dict:
    fields = []
    position = 10  # protocol name (2 + 4), level, flags, keep-alive (2)
    flags, keep_alive = body[7], int.from_bytes(body[8:10], "big")
    while position < len(body):
        size = int.from_bytes(body[position:position + 2], "big")
        fields.append(body[position + 2:position + 2 + size].decode())
        position += 2 + size
    subject = dict(item[0] for item in peer_certificate["subject"]) if peer_certificate else {}
    return {"protocol": body[:7], "client_id": fields[0],
            "user": fields[1] if flags & 0x80 else None,
            "password": fields[2 if flags & 0x80 else 1] if flags & 0x40 else None,
            "keep_alive": keep_alive, "clean": bool(flags & 0x02), "certificate": subject.get("commonName")}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture(scope="module")
def client_identity(pki):
    """The module's own certificate (RSA, as the guide's "RSA Private key"), from the test CA."""
    return issue("telit-module", pki.root, ca=False, start=utc(2026), end=utc(2027), rsa=True)


@pytest.fixture
def folder(tmp_path):
    return tmp_path


@pytest.fixture
def world():
    world = World.default()
    world.map_host(SERVER, "127.0.0.1")
    return world


@pytest.fixture
def modem(world):
    harness = Harness("telit", world=world, ready=False)
    harness.settle()
    assert harness.send(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert harness.send(CLOCK) == b"\r\nOK\r\n"
    yield harness
    harness.close()


@pytest.fixture
def web(pki, folder, world):
    server = WebServer({"/": Page(PAGE, content_type="text/html")}, context=server_context(pki.leaf, folder))
    world.forward_port("127.0.0.1", 443, "127.0.0.1", server.port)
    yield server
    server.close()


@pytest.fixture
def ftps(pki, folder, world):
    server = FtpsServer(server_context(pki.leaf, folder), {"file.txt": FILE})
    world.forward_port("127.0.0.1", 21, "127.0.0.1", server.port)
    yield server
    server.close()


def broker_context(pki, folder, client_ca: bool) -> ssl.SSLContext:
    context = server_context(pki.leaf, folder)
    if client_ca:
        context.load_verify_locations(cadata=pki.root.pem.decode())
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def broker(pki, folder, world):
    server = MqttBroker(broker_context(pki, folder, client_ca=True))
    world.forward_port("127.0.0.1", 8883, "127.0.0.1", server.port)
    yield server
    server.close()


def replay(modem: Harness, transcript) -> None:
    """Send each command and compare all it answers, URCs that follow it included (the modem
    may need the servers to answer first)."""
    for command, expected in transcript:
        got = modem.send(command + b"\r")
        if len(got) < len(expected) and expected.startswith(got):
            modem.pump(lambda: len(modem.out) >= len(expected) - len(got))
            got += modem.take()
        assert got == expected, f"{command!r}: {got!r}"


def upload(modem: Harness, ssid: int, data_type: int, pem: bytes) -> None:
    """AT#SSLSECDATA=<SSId>,1,<DataType>,<size>, the PEM with LF line ends and Ctrl-Z, then OK."""
    assert modem.send(b"AT#SSLSECDATA=%d,1,%d,%d\r" % (ssid, data_type, len(pem))) == b"\r\n> "
    assert modem.send(pem + b"\x1a").endswith(b"\r\nOK\r\n")


OK = b"\r\nOK\r\n"


def lines(*texts: bytes) -> bytes:
    return b"".join(b"\r\n" + text for text in texts) + b"\r\n" + OK


PDP = [
    (b'AT+CGDCONT=1,"IP", "Access_Point_Name"', OK),
    (b"AT#SGACT=1,1", lines(b"#SGACT: 10.7.125.7")),
]

# §8.2 and §9.1 check the socket configuration (the defaults) between the two PDP commands.
PDP_WITH_SCFG = [
    PDP[0],
    (b"AT#SCFG?", lines(b"#SCFG: 1,1,300,90,600,50", b"#SCFG: 2,1,300,90,600,50", b"#SCFG: 3,1,300,90,600,50",
                        b"#SCFG: 4,2,300,90,600,50", b"#SCFG: 5,2,300,90,600,50", b"#SCFG: 6,2,300,90,600,50")),
    PDP[1],
]


# ---------------------------------------------------------------- §8.1 #SSLD to an HTTPS server


def test_ssld_https_example(modem, web, pki):
    """Seed §8.1: server authentication with the root CA, #SSLD online to port 443, a request, the
    server's answer, and NO CARRIER when the server closes after it ("www.---" is tls.test)."""
    replay(modem, PDP + [
        (b"AT#SSLEN=1,1", OK),
        (b"AT#SSLSECCFG=1,0,1", OK),
    ])
    upload(modem, 1, 1, pki.root.pem)
    replay(modem, [(b'AT#SSLD=1,443,"tls.test",0,0', b"\r\nCONNECT\r\n")])
    modem.modem.feed(b"GET / HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n")
    assert modem.advance(4.9) == b""       # <txTo> 50: the request waits 5 s for a full packet
    answer = modem.advance(0.1)
    if not answer.endswith(b"NO CARRIER\r\n"):
        answer += modem.wait_for(b"NO CARRIER\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n" + PAGE + b"\r\nNO CARRIER\r\n")
    replay(modem, [(b"AT#SSLS=1", lines(b"#SSLS: 1,1"))])
    assert web.handshakes == 1 and web.requests[0].path == "/"


# ---------------------------------------------------------------- §8.2 HTTPS


def test_http_get_example(modem, web, pki):
    """Seed §8.2, HTTP GET over SSL: configure SSId 1, hand SSL from the socket service to HTTP,
    GET "/", read the #HTTPRING URC and the page."""
    replay(modem, PDP_WITH_SCFG + [
        (b"AT#SSLEN=1,1", OK),            # the guide has AT#SSELEN here, a typo for #SSLEN
        (b"AT#SSLSECCFG=1,0,1,1", OK),
    ])
    upload(modem, 1, 1, pki.root.pem)
    replay(modem, [
        (b"AT#SSLEN=1,0", OK),
        (b"AT#FTPCFG?", lines(b"#FTPCFG: 100,0,0")),
        (b'AT#HTTPCFG=0,"tls.test",443,0,,,1,120,1', OK),
        (b'AT#HTTPQRY=0,0,"/"', OK + b'\r\n#HTTPRING: 0,200,"text/html",%d\r\n' % len(PAGE)),
        (b"AT#HTTPRCV=0", b"\r\n<<<" + PAGE + OK),
    ])
    assert web.handshakes == 1
    request = web.requests[0]
    assert (request.method, request.path, request.headers["Connection"]) == ("GET", "/", "close")


# ---------------------------------------------------------------- §9.1 FTPS


def test_ftpopen_ftpget_example(modem, ftps, pki):
    """Seed §9.1: SSL moves from the socket service and HTTP to FTP, #FTPOPEN upgrades the control
    connection with AUTH TLS before logging in, #FTPGET's data connection is TLS too."""
    replay(modem, PDP_WITH_SCFG + [
        (b"AT#SSLEN=1,1", OK),
        (b"AT#SSLSECCFG=1,0,1,1", OK),
    ])
    upload(modem, 1, 1, pki.root.pem)
    replay(modem, [
        (b"AT#SSLEN=1,0", OK),            # AT#SSELEN in the guide
        (b'AT#HTTPCFG=0,"tls.test",443,0,,,0,120,1', OK),
        (b"AT#FTPCFG=100,0,1", OK),       # <tout>,<IPPIgnoring>: the defaults
        (b'AT#FTPOPEN="tls.test:21","user","secret",1', OK),
        (b'AT#FTPGET="file.txt"', b"\r\nCONNECT\r\n" + FILE + b"\r\nNO CARRIER\r\n"),
        (b"AT#FTPCLOSE", OK),
    ])
    assert ftps.commands == ["AUTH", "PBSZ", "PROT", "USER", "PASS", "TYPE", "PASV", "RETR", "QUIT"]
    assert ftps.secured_data == 1


# ---------------------------------------------------------------- §10.1 MQTT


def test_mqtt_client_connection_secured_example(modem, broker, pki, client_identity):
    """Seed §10.1.1: MQTT over TLS with client authentication on instance 1 (SSId 1)."""
    modem.world.cellular.addresses[1] = "37.176.124.199"   # what the guide's network handed out
    replay(modem, [
        (b"AT+CMEE=2", OK),
        (b"AT+CGDCONT?", OK),
        (b'AT+CGDCONT=1,"IP", "Access_Point_Name"', OK),
        (b"AT+CGDCONT?", lines(b'+CGDCONT: 1,"IP","Access_Point_Name","0.0.0.0",0,0')),
        (b"AT#SGACT=1,1", lines(b"#SGACT: 37.176.124.199")),
        (b"AT#MQEN=1,1", OK),
        (b"AT#MQEN?", lines(b"#MQEN: 1,1", b"#MQEN: 2,0")),
        (b'AT#MQCFG=1,"tls.test",8883,1,1', OK),
        (b"AT#SSLSECCFG=1,0,2", OK),
    ])
    upload(modem, 1, 1, pki.root.pem)
    upload(modem, 1, 0, client_identity.pem)
    upload(modem, 1, 2, key_pem(client_identity.key))
    replay(modem, [
        (b"AT#MQCFG2=1,60,1", OK),
        (b"AT#MQTCFG=1,30", OK),
        (b'AT#MQCONN=1,"client_id","", ""', OK),
        (b"AT#MQCONN?", lines(b"#MQCONN: 1,1")),
    ])
    assert modem.advance(60) == b""      # .. Perform MQTT operations ..: a keep-alive goes by
    modem.pump(lambda: broker.pings == 1)
    replay(modem, [
        (b"AT#MQDISC=1", OK),
        (b"AT#MQCONN?", lines(b"#MQCONN: 1,0")),
        (b"AT#MQEN =1,0", OK),            # as the guide types it: V.250 ignores the space
        (b"AT#MQEN?", lines(b"#MQEN: 1,0", b"#MQEN: 2,0")),
    ])
    session, = broker.sessions
    assert session == {"protocol": b"\x00\x04MQTT\x04", "client_id": "client_id", "user": None, "password": None,
                       "keep_alive": 60, "clean": True, "certificate": "telit-module"}
    modem.pump(lambda: broker.disconnects == 1)


def mqtt_module(world, profile: str) -> Harness:
    """A module of ``profile`` whose network hands out §10.1's address."""
    world.cellular.addresses[1] = "37.176.124.199"
    harness = Harness(profile, world=world, ready=False)
    harness.settle()
    assert harness.send(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert harness.send(CLOCK) == OK
    return harness


MQTT_OPENING = [      # §10.1.1-3 alike up to #MQCFG
    (b"AT+CMEE=2", OK),
    (b"AT+CGDCONT?", OK),
    (b'AT+CGDCONT=1,"IP", "Access_Point_Name"', OK),
    (b"AT+CGDCONT?", lines(b'+CGDCONT: 1,"IP","Access_Point_Name","0.0.0.0",0,0')),
    (b"AT#SGACT=1,1", lines(b"#SGACT: 37.176.124.199")),
    (b"AT#MQEN=1,1", OK),
]


def mqtt_credentials(modem: Harness, pki, client_identity) -> None:
    """The three #SSLSECDATA uploads of §10.1, in the guide's order: CA, client certificate, key."""
    replay(modem, [(b"AT#SSLSECCFG=1,0,2", OK)])
    upload(modem, 1, 1, pki.root.pem)
    upload(modem, 1, 0, client_identity.pem)
    upload(modem, 1, 2, key_pem(client_identity.key))


@pytest.mark.parametrize("profile", ["telit-me910c1", "telit-me310g1"])
def test_mqtt_example_on_its_platforms(world, broker, pki, client_identity, profile):
    """Seed §10.1.1 names platforms ID 30, 37 and 52: the same replay on ID 30 and ID 37; no SNI."""
    modem = mqtt_module(world, profile)
    try:
        replay(modem, MQTT_OPENING + [
            (b"AT#MQEN?", lines(b"#MQEN: 1,1", b"#MQEN: 2,0")),
            (b'AT#MQCFG=1,"tls.test",8883,1,1', OK),
        ])
        mqtt_credentials(modem, pki, client_identity)
        replay(modem, [
            (b"AT#MQCFG2=1,60,1", OK),
            (b"AT#MQTCFG=1,30", OK),
            (b'AT#MQCONN=1,"client_id","", ""', OK),
            (b"AT#MQCONN?", lines(b"#MQCONN: 1,1")),
            (b"AT#MQDISC=1", OK),
            (b"AT#MQCONN?", lines(b"#MQCONN: 1,0")),
            (b"AT#MQEN =1,0", OK),
            (b"AT#MQEN?", lines(b"#MQEN: 1,0", b"#MQEN: 2,0")),
        ])
        assert broker.server_names == [None]
        assert broker.sessions[0]["certificate"] == "telit-module"
    finally:
        modem.close()


AWS_EXAMPLES = {
    # §10.1.2, ID 30: <SSLSRingMode>,<noCarrierMode>,<skipHostMismatch>,<equalizeTx>; SNI and TLS 1.2
    "telit-me910c1": [
        (b"AT#SSLCFG=1,1,300,90,100,50,0,0,1,0", OK),
        (b"AT#SSLCFG?", lines(b"#SSLCFG: 1,1,300,90,100,50,0,0,1,0")),        # not in the guide
        (b"AT#SSLSECCFG2=1,3,1", OK),
        (b"AT#SSLSECCFG2?", lines(b"#SSLSECCFG2: 1,3,1,0,0,0")),             # not in the guide
    ],
    # §10.1.3, ID 37: ... <connTo>,<Unused1>; SNI, custom CA 1 and preloaded CA 1
    "telit-me310g1": [
        (b"AT#SSLCFG=1,1,300,90,100,50,0,0,1,0,0,0", OK),
        (b"AT#SSLCFG?", lines(b"#SSLCFG: 1,1,300,90,100,50,0,0,1,0,0,0")),    # not in the guide
        (b"AT#SSLSECCFG2=1,3,1,1,1", OK),
        (b"AT#SSLSECCFG2?", lines(b"#SSLSECCFG2: 1,3,1,1,1,0")),             # not in the guide
    ],
}


@pytest.mark.parametrize("profile", sorted(AWS_EXAMPLES))
def test_mqtt_aws_examples(world, broker, pki, client_identity, profile):
    """Seed §10.1.2 (ID 30) and §10.1.3 (ID 37): the AWS broker is tls.test here; SNI is on, so the
    broker is told the name; <skipHostMismatch> 1 would accept a certificate for another name."""
    modem = mqtt_module(world, profile)
    try:
        replay(modem, MQTT_OPENING + [(b'AT#MQCFG=1,"tls.test",8883,1,1', OK)])
        mqtt_credentials(modem, pki, client_identity)
        replay(modem, AWS_EXAMPLES[profile] + [
            (b"AT#MQCFG2=1,60,1", OK),
            (b"AT#MQTCFG=1,30", OK),
            (b'AT#MQCONN=1,"client_id","", ""', OK),
            (b"AT#MQCONN?", lines(b"#MQCONN: 1,1")),
        ])
        assert broker.server_names == ["tls.test"]
        session, = broker.sessions
        assert (session["client_id"], session["keep_alive"], session["certificate"]) == ("client_id", 60, "telit-module")
    finally:
        modem.close()


def test_sni_checks_the_name_unless_told_to_skip_the_mismatch(world, broker, pki, client_identity):
    """ID 30 with SNI: a broker whose certificate is for another name fails the handshake (839),
    until <skipHostMismatch> is 1; a misfit #SSLCFG or #SSLSECCFG2 is +CME ERROR: 4."""
    world.map_host("broker.example.test", "127.0.0.1")
    modem = mqtt_module(world, "telit-me910c1")
    try:
        replay(modem, MQTT_OPENING + [(b'AT#MQCFG=1,"broker.example.test",8883,1,1', OK)])
        mqtt_credentials(modem, pki, client_identity)
        replay(modem, [
            (b"AT+CMEE=1", OK),
            (b"AT#SSLSECCFG=1,0,2,1", cme(4)),                    # no <cert_format> on ID 30 (§6.2.5)
            (b"AT#SSLSECCFG2=1,3,1,1", cme(4)),                   # <unused_A> is 0
            (b"AT#SSLSECCFG2=1,3,2", cme(4)),
            (b"AT#SSLCFG=1,1,300,90,100,50,0,0,2,0", cme(4)),
            (b"AT#SSLCFG=1,1,300,90,100,50,0,0,1,0,0", cme(4)),   # ID 37's <connTo> is not ID 30's
            (b"AT#SSLCFG=?", lines(b"#SSLCFG: (1-6),(1-5),(0-1500),(0-65535),(10-5000),(0-255),(0-2),(0),(0-1),(0)")),
            (b"AT#SSLSECCFG2=?", lines(b"#SSLSECCFG2: (1-6),(0-3),(0,1),(0),(0),(0)")),
            (b"AT#SSLSECCFG2=1,3,1", OK),
            (b'AT#MQCONN=1,"client_id","",""', cme(839)),
            (b"AT#SSLCFG=1,1,300,90,100,50,0,0,1,0", OK),
            (b'AT#MQCONN=1,"client_id","",""', OK),
        ])
        assert broker.server_names == ["broker.example.test", "broker.example.test"]
        assert len(broker.sessions) == 1
    finally:
        modem.close()


def test_id_37_version_range(world):
    modem = mqtt_module(world, "telit-me310g1")
    try:
        replay(modem, [
            (b"AT+CMEE=1", OK),
            (b"AT#MQEN=1,1", OK),
            (b'AT#MQCFG=1,"tls.test",8883,1,1', OK),
            (b"AT#SSLSECCFG2=?", lines(b"#SSLSECCFG2: (1-6),(0-3),(0,1),(0,1),(0,1),(0-3)")),
            (b"AT#SSLSECCFG2=1,2,1,1,1,3", cme(4)),               # <MinVersion> above <version>
            (b"AT#SSLSECCFG2=1,3,1,1,1,2", OK),
            (b"AT#SSLSECCFG2?", lines(b"#SSLSECCFG2: 1,3,1,1,1,2")),
            (b"AT#SSLSECCFG2=1,3,1,2", cme(4)),
            (b"AT#SSLCFG=?", lines(b"#SSLCFG: (1-6),(1-5),(0-1500),(0-65535),(10-5000),(0-255),(0-2),(0),(0-1),(0),(0),(0)")),
        ])
    finally:
        modem.close()


# ---------------------------------------------------------------- rules and failures


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def cme(code: int) -> bytes:
    return b"\r\n+CME ERROR: %d\r\n" % code


def test_ssl_is_used_by_one_service_at_a_time(modem):
    """Seed §6.1 warning, §8.2, §9.1, §10.1.1: 835 "SSL already activated" for a second claim."""
    replay(modem, [
        (b"AT+CMEE=1", OK),
        (b"AT#SSLEN=1,1", OK),
        (b'AT#HTTPCFG=0,"tls.test",443,0,,,1,120,1', cme(835)),
        (b"AT#FTPCFG=100,0,1", cme(835)),
        (b"AT#SSLEN=1,0", OK),
        (b'AT#HTTPCFG=0,"tls.test",443,0,,,1,120,1', OK),
        (b"AT#SSLEN=1,1", cme(835)),
        (b"AT#FTPCFG=100,0,1", cme(835)),
        (b"AT#MQEN=1,1", OK),
        (b'AT#MQCFG=1,"tls.test",8883,1,1', cme(835)),
        (b'AT#MQCFG=1,"tls.test",8883,1,0', OK),
        (b'AT#HTTPCFG=0,"tls.test",443,0,,,0,120,1', OK),   # HTTP lets go
        (b"AT#FTPCFG=100,0,1", OK),
        (b"AT#FTPCFG?", lines(b"#FTPCFG: 100,0,1")),
    ])


def test_https_failures(modem, pki, folder, world):
    """A server the stored CA does not vouch for fails the handshake (839); no context, no query
    (556); nothing received, nothing to read; a server that never answers rings with status 0."""
    stranger = WebServer({"/": Page(PAGE)}, context=server_context(pki.unknown_ca, folder))
    world.forward_port("127.0.0.1", 443, "127.0.0.1", stranger.port)
    silent = socket.create_server(("127.0.0.1", 0))
    world.forward_port("127.0.0.1", 80, "127.0.0.1", silent.getsockname()[1])
    try:
        replay(modem, [(b"AT+CMEE=1", OK), (b"AT#SSLEN=1,1", OK), (b"AT#SSLSECCFG=1,0,1", OK)])
        upload(modem, 1, 1, pki.root.pem)
        replay(modem, [
            (b"AT#SSLEN=1,0", OK),
            (b'AT#HTTPCFG=0,"tls.test",443,0,,,1,120,1', OK),
            (b'AT#HTTPQRY=0,0,"/"', cme(556)),
        ] + PDP + [
            (b'AT#HTTPQRY=0,0,"/"', cme(839)),
            (b"AT#HTTPRCV=0", cme(3)),
            (b'AT#HTTPCFG=1,"tls.test",80,0,,,0,5,1', OK),
            (b'AT#HTTPQRY=1,0,"/"', OK),
        ])
        assert modem.advance(5) == b'\r\n#HTTPRING: 1,0,"",0\r\n'
        assert stranger.failures == 1
    finally:
        stranger.close()
        silent.close()


@pytest.mark.parametrize("line", [
    b'AT#HTTPCFG=3,"tls.test"', b'AT#HTTPCFG=0,tls.test', b'AT#HTTPQRY=0,3,"/"', b"AT#HTTPQRY=0,0",
    b"AT#HTTPRCV=0,63", b"AT#HTTPRCV=x", b"AT#FTPCFG=99,0,0", b"AT#FTPCFG=100,0,2", b'AT#FTPOPEN="h:x","u","p"',
    b'AT#FTPGET=file.txt', b"AT#MQEN=3,1", b"AT#MQEN=1,2", b"AT#MQEN=1", b'AT#MQCFG=1,"h",0,1',
    b"AT#MQCFG2=1,60", b"AT#MQTCFG=1,0", b'AT#MQCONN=1,"id"', b"AT#MQDISC=1,", b"AT#HTTPQRY=\xff\x00",
])
def test_malformed_parameters_are_cme_4(modem, line):
    replay(modem, [(b"AT+CMEE=1", OK), (b"AT#MQEN=1,1", OK), (line, cme(4)), (b"AT", OK)])


def test_ftp_failures(modem, ftps, pki):
    """607 without a session, 606 for a refused login or a missing file, 608 for a second open;
    plain FTP (FTPSEn 0) to an FTPS server still logs in in the clear."""
    replay(modem, [(b"AT+CMEE=1", OK)] + PDP + [
        (b'AT#FTPGET="file.txt"', cme(607)),
        (b"AT#FTPCLOSE", cme(607)),
        (b'AT#FTPOPEN="tls.test:21","user","wrong",1', cme(606)),
        (b'AT#FTPOPEN="nowhere.test:21","user","secret",1', cme(603)),
        (b'AT#FTPOPEN="tls.test","user","secret",1', OK),
        (b'AT#FTPOPEN="tls.test","user","secret",1', cme(608)),
        (b'AT#FTPGET="missing.txt"', cme(606)),
        (b'AT#FTPGET="file.txt"', b"\r\nCONNECT\r\n" + FILE + b"\r\nNO CARRIER\r\n"),
        (b"AT#FTPCLOSE", OK),
    ])
    assert "AUTH" not in ftps.commands and ftps.secured_data == 0


def test_a_stalled_transfer_ends_in_no_carrier(modem, pki, folder, world):
    """A server that stops mid-file and never sends 226: after the session's timeout for the
    control reply and again for the silent data connection, NO CARRIER, and the module is back."""
    stalled = FtpsServer(server_context(pki.leaf, folder), {"file.txt": FILE}, stall_after=100)
    world.forward_port("127.0.0.1", 21, "127.0.0.1", stalled.port)
    try:
        replay(modem, [(b"AT+CMEE=1", OK)] + PDP + [
            (b"AT#FTPCFG=100,0,1", OK),   # <tout> in hundreds of ms: 10 s
            (b'AT#FTPOPEN="tls.test","user","secret",1', OK),
        ])
        modem.modem.feed(b'AT#FTPGET="file.txt"\r')
        assert modem.wait_for(FILE[:100]) == b"\r\nCONNECT\r\n" + FILE[:100]
        assert modem.advance(60.0) == b"\r\nNO CARRIER\r\n"
        assert modem.send(b"AT\r") == OK
    finally:
        stalled.close()


def connect_to_plain_broker(modem, listener, client_id: bytes) -> socket.socket:
    """#MQCONN instance 1 to a broker played by hand on ``listener``: it takes the CONNECT and
    accepts it, the module answers OK; the broker's end of the connection is returned."""
    modem.modem.feed(b'AT#MQCONN=1,"%s","",""\r' % client_id)
    modem.pump(lambda: readable(listener))
    conn, _ = listener.accept()
    modem.pump(lambda: readable(conn))
    assert conn.recv(64)[:1] == b"\x10"
    conn.sendall(b"\x20\x02\x00\x00")
    assert modem.wait_for(OK) == OK
    return conn


def test_mqtt_failures(modem, pki, folder, world):
    """A disabled instance takes no configuration (3); a broker refusing the CONNECT, or one that
    wants a certificate the module does not have, fails #MQCONN; a broker that goes away leaves
    the instance disconnected."""
    refusing = MqttBroker(broker_context(pki, folder, client_ca=False), refuse=5)
    world.forward_port("127.0.0.1", 8883, "127.0.0.1", refusing.port)
    demanding = MqttBroker(broker_context(pki, folder, client_ca=True))
    world.forward_port("127.0.0.1", 8884, "127.0.0.1", demanding.port)
    plain = socket.create_server(("127.0.0.1", 0))
    world.forward_port("127.0.0.1", 1883, "127.0.0.1", plain.getsockname()[1])
    try:
        replay(modem, [(b"AT+CMEE=1", OK)] + PDP + [
            (b'AT#MQCFG=1,"tls.test",8883,1,1', cme(3)),
            (b"AT#MQEN=1,1", OK),
            (b"AT#MQDISC=1", cme(3)),
            (b"AT#SSLEN=1,1", OK),
            (b"AT#SSLSECCFG=1,0,0", OK),
            (b"AT#SSLEN=1,0", OK),
            (b'AT#MQCFG=1,"tls.test",8883,1,1', OK),
            (b'AT#MQCONN=1,"refused","user","pass"', cme(3)),
            (b"AT#MQCONN?", lines(b"#MQCONN: 1,0")),
            (b'AT#MQCFG=1,"tls.test",8884,1,1', OK),
            (b'AT#MQCONN=1,"no-certificate","",""', cme(839)),
        ])
        assert refusing.sessions[0]["user"] == "user" and refusing.sessions[0]["password"] == "pass"
        replay(modem, [(b'AT#MQCFG=1,"tls.test",1883,1,0', OK)])
        connect_to_plain_broker(modem, plain, b"gone").close()
        modem.pump(lambda: b"1,0" in modem.send(b"AT#MQCONN?\r"))
        # Connecting again closes what the broker left of the old session on this side.
        from atmodem_telit.services import services
        left_over = services(modem.modem).mqtt[1].link
        connect_to_plain_broker(modem, plain, b"back").close()
        assert left_over.closed
    finally:
        for server in (refusing, demanding, plain):
            server.close()

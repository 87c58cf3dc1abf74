"""The Inventek eS-WiFi dialect (profile eswifi): the transcripts of seed 002 (certificate sets,
the three TLS client examples) replayed as bytes against real TLS servers on 127.0.0.1, the
join and socket commands as the drivers parse them, and bad input in the module's error form."""

import ssl

import pytest

from atmodem.lab import EchoServer, LabPki, server_context
from atmodem.lab.pki import VALID_FROM, VALID_UNTIL, issue, key_pem, utc
from atmodem.world import AccessPoint, World
from support import Harness

PROMPT = b"> "
SSID, PASSPHRASE = b"atmodem-lab", b"atmodem-pass"
HOST = "tls.test"            # what D0 looks up; the world maps it to 127.0.0.1
TLS_PORT = 443               # what the firmware dials; the world forwards it to the test server
PG_USAGE = b"PG=0,<0 root CA|1 certificate|2 key>,<length>,<data>"


def ok(data: bytes = b"") -> bytes:
    return b"\r\n" + data + b"\r\nOK\r\n> "


def error(what: bytes, usage: bytes = b"") -> bytes:
    return b"\r\nERROR: " + what + (b"\r\nUsage: " + usage if usage else b"") + b"\r\n> "


def replay(h, transcript) -> None:
    for command, expected in transcript:
        assert h.send(command + b"\r") == expected, command


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eswifi-pki")
    lab = LabPki(folder)
    client = issue("eswifi client", lab.root, ca=False, start=VALID_FROM, end=VALID_UNTIL)
    return lab, client, folder


def modem(state_dir=None) -> Harness:
    world = World(access_points=[AccessPoint(SSID.decode(), PASSPHRASE.decode(), rssi=-48)],
                  hosts={HOST: "127.0.0.1"})
    h = Harness("eswifi", world=world, state_dir=state_dir, ready=False)
    assert h.wait_for(PROMPT) == b"\r\n" + PROMPT
    return h


def joined(state_dir=None) -> Harness:
    h = modem(state_dir)
    replay(h, [(b"C1=" + SSID, ok()), (b"C2=" + PASSPHRASE, ok()), (b"C3=4", ok())])
    assert h.send(b"C0\r").startswith(b"\r\n[JOIN   ] atmodem-lab,")
    return h


@pytest.fixture
def h():
    harness = modem()
    yield harness
    harness.close()


@pytest.fixture
def lab(h):
    h.world.access_points[0].join_delay = 0.5
    replay(h, [(b"C1=" + SSID, ok()), (b"C2=" + PASSPHRASE, ok()), (b"C3=4", ok())])
    h.send(b"C0\r")
    return h


def serve(h, pki, *, certificate=None, client_ca=False) -> EchoServer:
    """A TLS echo server greeting with 'hello', reached as tls.test:443."""
    lab, _, folder = pki
    context = server_context(certificate or lab.server(HOST), folder)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(lab.ca_file))
    server = EchoServer(context, greeting=b"hello")
    h.world.forward_port("127.0.0.1", TLS_PORT, "127.0.0.1", server.port)
    return server


def program(h, kind: int, data: bytes, separator: bytes = b",") -> bytes:
    """PG as seed 002 writes it (``PG=0,<kind>,<length>,<data>``), or with ``separator=b"\\r"`` as
    Zephyr's driver sends it."""
    h.modem.feed(b"PG=0,%d,%d" % (kind, len(data)) + separator + data)
    h.settle()
    return h.take()


def read_until(h, wanted: bytes) -> bytes:
    """R0 until ``wanted`` has come, each read waiting up to R2 for the server's thread."""
    assert h.send(b"R2=2000\r") == ok()
    data = b""
    for _ in range(20):
        reply = h.send(b"R0\r")
        assert reply.startswith(b"\r\n") and reply.endswith(b"\r\nOK\r\n> ")
        data += reply[2:-8]
        if wanted in data:
            return data
    raise AssertionError(f"never read {wanted!r}, got {data!r}")


# ---------------------------------------------------------------- framing and the module itself


def test_boot_shows_the_prompt_and_nothing_is_echoed(h):
    assert h.type(b"I?\r") == ok(
        b"ISM43362-M3G-L44-UART,C3.5.2.5.STM,v3.5.2,v1.4.0.rc1,v8.2.1,120000000,Inventek eS-WiFi")
    assert h.send(b"Z5\r") == ok(b"5C:CF:7F:A0:B1:C2")
    assert h.send(b"ZR\r") == b"\r\n" + PROMPT           # a reset answers with the boot prompt only
    assert h.send(b"\n\r") == b"\r\n" + PROMPT   # an empty line (an LF left by CR LF hosts) only re-prompts
    assert h.send(b"CS\r\n") == ok(b"0")


def test_join_scan_and_settings_as_the_drivers_parse_them(h):
    ap = h.world.access_points[0]
    ip = ap.lease(h.world.mac_bytes)
    replay(h, [
        (b"C1=atmodem-lab", ok()), (b"C2=atmodem-pass", ok()), (b"C3=4", ok()), (b"C4=1", ok()),
        (b"C0", ok(b"[JOIN   ] atmodem-lab,%s,0,0" % str(ip).encode())),
        (b"CS", ok(b"1")), (b"CR", ok(b"-48")),
        (b"C?", ok(b"atmodem-lab,atmodem-pass,4,1,0,%s,255.255.255.0,192.168.1.1,192.168.1.1,0.0.0.0,5,0"
                   % str(ip).encode())),
        (b"F0", ok(b'#001,"atmodem-lab",%s,-48,72.2,Infrastructure,WPA2 AES,2.4GHz,6' % ap.bssid.upper().encode())),
        (b"D0=tls.test", ok(b"127.0.0.1")),
        (b"CD", ok()), (b"CS", ok(b"0")),
    ])


def test_static_addressing(h):
    replay(h, [(b"C1=atmodem-lab", ok()), (b"C2=atmodem-pass", ok()), (b"C4=0", ok()),
               (b"C6=10.0.0.7", ok()), (b"C7=255.0.0.0", ok()), (b"C8=10.0.0.1", ok()),
               (b"C0", ok(b"[JOIN   ] atmodem-lab,10.0.0.7,0,0"))])


def test_a_failed_join_prints_what_the_module_prints(h):
    replay(h, [(b"C1=atmodem-lab", ok()), (b"C2=wrong", ok()), (b"C3=4", ok())])
    # The bytes of a real ISM43362 (ARMmbed/wifi-ism43362 pull request 13).
    assert h.send(b"C0\r") == (b"\r\n[JOIN   ] atmodem-lab\r\n[JOIN   ] Failed\r\nERROR: Unknown Error\r\n"
                               b"Usage: C0 \r\n> ")
    assert h.send(b"C1=nowhere\rC2=atmodem-pass\rC0\r").endswith(b"[JOIN   ] Failed" + error(b"Unknown Error", b"C0 "))
    assert h.send(b"CS\r") == ok(b"0")
    assert h.send(b"D0=tls.test\r") == error(b"Not connected", b"D0=<domain name>")


# ---------------------------------------------------------------- seed 002: certificate sets


def test_certificate_programming_example_and_the_one_time_rule(pki, tmp_path):
    lab, client, _ = pki
    h = modem(tmp_path)
    try:
        root, certificate, key = lab.root.pem, client.pem, key_pem(client.key)
        assert h.send(b"PF=0\r") == ok()                                     # certificate set 0
        assert program(h, 0, root) == ok()                                   # root CA
        assert program(h, 1, certificate) == ok()                            # certificate
        assert program(h, 2, key) == ok()                                    # key
        # The seed: writing the same again verifies it (a match), anything else is an error.
        assert program(h, 0, root) == ok(b"Match")
        assert program(h, 2, key + b"\0") == error(b"Certificate set already programmed", PG_USAGE)
        # One-time programmable: a reset keeps the set; the next set is still blank.
        assert h.send(b"ZR\r") == b"\r\n" + PROMPT
        assert program(h, 1, certificate, b"\r") == ok(b"Match")
        assert h.send(b"PF=1,0\r") == ok()                                   # Zephyr's spelling
        assert program(h, 1, certificate, b"\r") == ok()
        # The seed's form one byte at a time, with CR LF line ends inside the PEM: all of it is data.
        crlf = key.replace(b"\n", b"\r\n")
        assert h.type(b"PG=0,2,%d," % len(crlf) + crlf) == ok()
        assert program(h, 2, crlf, b"\r") == ok(b"Match")
        assert program(h, 2, crlf) == ok(b"Match")          # ... and all in one piece
    finally:
        h.close()


# ---------------------------------------------------------------- seed 002: the TLS client examples


def client_example(verification: int):
    return [(b"P1=3", ok()),                          # TCP SSL/TLS
            (b"D0=tls.test", ok(b"127.0.0.1")),       # get the IP address of the server
            (b"P4=443", ok()),                        # server port
            (b"P9=%d" % verification, ok()),
            (b"P6=1", ok())]                          # start


def talk(h, server) -> None:
    assert read_until(h, b"hello") == b"hello"
    assert h.send(b"S3=5\rping\r") == ok()               # a CR inside the data is data
    assert read_until(h, b"ping\r") == b"ping\r"
    assert h.send(b"S3=0004\rpong") == ok()              # ST's driver pads the length: S3=%04d
    assert read_until(h, b"pong") == b"pong"
    assert h.send(b"S3=3\rzep\0") == ok()                # Zephyr's driver sends one byte more ...
    assert read_until(h, b"zep") == b"zep"               # ... and the next command still works
    assert h.send(b"P?\r").endswith(b",127.0.0.1,443,0,1" + ok()[-8:])
    assert h.send(b"P6=0\r") == ok()
    assert h.send(b"R0\r") == ok(b"-1")
    assert (server.handshakes, server.failures) == (1, 0)


def test_example_1_no_verification(lab, pki):
    # The server's chain is unknown to the module, and it does not matter.
    server = serve(lab, pki, certificate=LabPki.stranger(HOST))
    try:
        replay(lab, client_example(0))
        talk(lab, server)
    finally:
        server.close()


def test_example_2_root_ca_verification(lab, pki):
    lab_pki = pki[0]
    server = serve(lab, pki)
    stranger = serve(lab, pki, certificate=LabPki.stranger(HOST))   # now the one on :443
    try:
        replay(lab, [(b"PF=0", ok())])
        assert program(lab, 0, lab_pki.root.pem) == ok()
        # With the root CA programmed, a server it did not sign is refused ...
        replay(lab, client_example(1)[:-1])
        assert lab.send(b"P6=1\r") == error(b"Connection failed", b"P6=<0|1>")
        assert stranger.handshakes == 0
        # ... and one it did sign is accepted.
        lab.world.forward_port("127.0.0.1", TLS_PORT, "127.0.0.1", server.port)
        assert lab.send(b"P6=1\r") == ok()
        talk(lab, server)
        # "If programmed": set 1 has no root CA, so the stranger is accepted there.
        replay(lab, [(b"PF=1", ok())])
        lab.world.forward_port("127.0.0.1", TLS_PORT, "127.0.0.1", stranger.port)
        replay(lab, client_example(1))
        assert read_until(lab, b"hello") == b"hello"
    finally:
        server.close()
        stranger.close()


def test_the_module_has_no_clock_so_dates_do_not_count(lab, pki):
    lab_pki, _, folder = pki
    expired = issue(HOST, lab_pki.root, ca=False, start=utc(2015), end=utc(2016), hosts=(HOST,))
    server = serve(lab, pki, certificate=expired)
    try:
        assert program(lab, 0, lab_pki.root.pem) == ok()
        replay(lab, client_example(1))
        assert read_until(lab, b"hello") == b"hello"
    finally:
        server.close()


def test_example_3_certificate_verification_is_mutual_tls(lab, pki):
    lab_pki, client, _ = pki
    server = serve(lab, pki, client_ca=True)
    try:
        # Set 0 has a root CA only: P9=2 needs the certificate and key too.
        assert program(lab, 0, lab_pki.root.pem) == ok()
        replay(lab, client_example(2)[:-1])
        assert lab.send(b"P6=1\r") == error(b"Connection failed", b"P6=<0|1>")
        # Set 1, complete (PEMs counted with a closing NUL, as mbedTLS hosts do).
        replay(lab, [(b"PF=1", ok())])
        for kind, data in ((0, lab_pki.root.pem), (1, client.pem), (2, key_pem(client.key))):
            assert program(lab, kind, data + b"\0") == ok()
        assert lab.send(b"P6=1\r") == ok()
        talk(lab, server)
    finally:
        server.close()


def test_example_1_against_a_server_that_wants_a_client_certificate_fails_cleanly(lab, pki):
    server = serve(lab, pki, client_ca=True)
    try:
        replay(lab, client_example(0)[:-1])
        assert lab.send(b"P6=1\r") == error(b"Connection failed", b"P6=<0|1>")
        lab.pump(lambda: server.failures >= 1, timeout=5)
        assert server.handshakes == 0
        assert lab.send(b"CS\r") == ok(b"1")
    finally:
        server.close()


# ---------------------------------------------------------------- plain TCP and socket life


def test_tcp_socket_and_a_peer_that_leaves(lab, peer):
    replay(lab, [(b"P0=2", ok()), (b"P1=0", ok()), (b"P3=127.0.0.1", ok()), (b"P4=%d" % peer.port, ok()),
                 (b"R1=3", ok()), (b"R2=0", ok()), (b"P6=1", ok())])
    conn = peer.accept()
    assert lab.send(b"R0\r") == ok()                    # nothing yet, and R2=0 does not wait
    conn.sendall(b"abcdef")
    lab.advance(0.05)
    assert lab.send(b"R0\r") == ok(b"abc")              # at most R1 bytes
    conn.close()
    lab.advance(0.05)
    assert lab.send(b"R0=\r") == ok(b"def")             # ST's spelling
    assert lab.send(b"R0\r") == ok(b"-1")
    assert lab.send(b"S3=2\rhi") == error(b"Socket not connected", b"S3=<length 1-1460> CR <data>")
    assert lab.send(b"P0=0\r") == ok()
    assert lab.send(b"R0\r") == ok(b"-1")               # a socket never opened


def test_r0_waits_up_to_r2_for_data(lab, peer):
    replay(lab, [(b"P3=127.0.0.1", ok()), (b"P4=%d" % peer.port, ok()), (b"P6=1", ok()), (b"R2=5000", ok())])
    conn = peer.accept()
    lab.modem.feed(b"R0\r")
    assert lab.advance(1.0) == b""
    conn.sendall(b"late")
    assert lab.wait_for(b"> ") == ok(b"late")
    started = lab.clock.now()
    assert lab.send(b"R0\r") == ok()                    # nothing came: empty after the timeout
    assert lab.clock.now() - started == pytest.approx(5.0)


def test_connection_refused_and_a_second_start(lab, peer):
    replay(lab, [(b"P3=127.0.0.1", ok()), (b"P4=1", ok())])
    assert lab.send(b"P6=1\r") == error(b"Connection failed", b"P6=<0|1>")
    replay(lab, [(b"P4=%d" % peer.port, ok()), (b"P6=1", ok())])
    assert lab.send(b"P6=1\r") == error(b"Socket already connected", b"P6=<0|1>")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("command, usage", [
    (b"C1", b"C1=<SSID>"), (b"C1=" + b"x" * 33, b"C1=<SSID>"), (b"C3=5", b"C3=<0-4>"), (b"C3=a", b"C3=<0-4>"),
    (b"C4=2", b"C4=<0|1>"), (b"C6=1.2.3", b"C6=<IP address>"), (b"C0=1", b"C0 "), (b"CS=x", b"CS"),
    (b"D0", b"D0=<domain name>"), (b"D0=", b"D0=<domain name>"), (b"P0=4", b"P0=<0-3>"), (b"P0=-1", b"P0=<0-3>"),
    (b"P1=4", b"P1=<0 TCP|3 TCP-SSL>"), (b"P3=localhost", b"P3=<IP address>"), (b"P3=1.2.3.256", b"P3=<IP address>"),
    (b"P4=65536", b"P4=<port>"), (b"P6=2", b"P6=<0|1>"), (b"P6", b"P6=<0|1>"), (b"P9=3", b"P9=<0|1|2>"),
    (b"PF=3", b"PF=<0-2>"), (b"PF=0,", b"PF=<0-2>"), (b"PG=1,0,10", PG_USAGE),
    (b"PG=0,3,10", PG_USAGE), (b"PG=0,0,0", PG_USAGE), (b"PG=0,0,4097", PG_USAGE),
    (b"PG=0,0", PG_USAGE), (b"S3=0", b"S3=<length 1-1460> CR <data>"), (b"S3=1461", b"S3=<length 1-1460> CR <data>"),
    (b"S3", b"S3=<length 1-1460> CR <data>"), (b"R1=0", b"R1=<1-1460>"), (b"R2=30001", b"R2=<0-30000>"),
    (b"R0=1", b"R0"), (b"P1=1", None), (b"CR", None), (b"P6=1", None),
])
def test_bad_input_gets_the_error_form(h, command, usage):
    reply = h.send(command + b"\r")
    assert reply.startswith(b"\r\nERROR: ") and reply.endswith(b"\r\n> ")
    if usage is not None:
        assert reply == error(b"Invalid usage", usage)
    assert h.send(b"CS\r") == ok(b"0")


@pytest.mark.parametrize("line", [b"XX", b"c1=lower", b"C", b"AT", b"ATC1=x", b"C1X=1", b"\x00\xff\x80", b"P?x"])
def test_unknown_commands(h, line):
    assert h.send(line + b"\r") == error(b"Command not found")


def test_an_over_long_line_is_an_error_and_the_module_carries_on(h):
    reply = h.send(b"C1=" + b"a" * 300 + b"\r")
    assert reply.startswith(error(b"Unknown Error"))
    assert h.send(b"CS\r") == ok(b"0")


def test_garbage_never_hangs_the_module(h):
    garbage = bytes(range(256)) * 4
    reply = h.send(garbage + b"\r")
    assert reply.endswith(b"\r\n> ")
    assert h.send(b"CS\r") == ok(b"0")


def test_send_data_split_across_writes_and_a_reset_in_the_middle(lab, peer):
    replay(lab, [(b"P3=127.0.0.1", ok()), (b"P4=%d" % peer.port, ok()), (b"P6=1", ok())])
    peer.accept()
    lab.modem.feed(b"S3=6\rab")
    assert lab.advance(0.1) == b""                       # the module waits for all six bytes
    lab.modem.feed(b"cd\rZ")
    assert lab.wait_for(b"> ") == ok()
    assert peer.recv_exactly(6) == b"abcd\rZ"
    lab.modem.feed(b"PG=0,0,100\rpartial")               # a reset drops what PG collected
    lab.modem.reboot()
    assert lab.wait_for(PROMPT) == b"\r\n" + PROMPT
    assert lab.send(b"CS\r") == ok(b"0")

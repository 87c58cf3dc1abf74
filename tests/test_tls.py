"""Secure links with real TLS against servers on 127.0.0.1 (spec §8, §6.4), verified at the
modem's SNTP clock, whatever the host's clock says."""

import calendar
import hashlib
import re
import ssl

import pytest

from atmodem.world import AccessPoint, World
from pki import Pki
from atmodem.lab import EchoServer, SntpServer, server_context
from support import Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"
FAIL = b"connect fail\r\n" + ERR + b"CLOSED\r\n"
INSIDE = calendar.timegm((2026, 6, 1, 12, 0, 0))


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("pki")


@pytest.fixture
def sntp():
    server = SntpServer(INSIDE)
    yield server
    server.close()


@pytest.fixture
def serve(pki, folder):
    servers = []

    def start(issued, **options):
        context = options.pop("context", None) or server_context(issued, folder)
        servers.append(EchoServer(context, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def modem(sntp, synced=True) -> Harness:
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")],
                  hosts={"tls.test": "127.0.0.1", "other.test": "127.0.0.1", "pool.ntp.org": "127.0.0.1"},
                  sntp_port=sntp.port)
    h = Harness(world=world)
    h.join()  # AT+CWJAP starts SNTP
    if synced:
        h.pump(lambda: h.modem.runtime["sntp"].now() > 57600)
    return h


def upload(h: Harness, pem: bytes) -> bytes:
    assert h.send(b"AT+CIPSSLCERT\r\n") == b"\r\nOK\r\n>"
    return h.send(pem)


def connect(h: Harness, port: int, host: bytes = b"tls.test") -> bytes:
    return h.send(b'AT+CIPSTART="SSL","%s",%d\r\n' % (host, port))


class TestModes:
    def test_mode_0_connects_to_anything_and_moves_data(self, pki, sntp, serve):
        h = modem(sntp)
        for issued in (pki.leaf, pki.expired, pki.self_signed, pki.unknown_ca):
            server = serve(issued, greeting=b"hello")
            assert connect(h, server.port) == b"CONNECT\r\n" + OK
            assert h.wait_for(b"hello") == b"\r\n+IPD,5:hello"
            assert h.send(b"AT+CIPSEND=4\r\n") == b"OK\r\n> "
            assert h.send(b"ping") == b"\r\nRecv 4 bytes\r\n\r\nSEND OK\r\n"
            assert h.wait_for(b"ping") == b"\r\n+IPD,4:ping"
            assert h.send(b"AT+CIPSTATUS\r\n").startswith(b'STATUS:3\r\n+CIPSTATUS:0,"SSL","127.0.0.1",')
            assert h.send(b"AT+CIPCLOSE\r\n") == b"CLOSED\r\n" + OK

    def test_mode_1_fingerprint(self, pki, sntp, serve):
        h = modem(sntp)
        server = serve(pki.leaf)
        digest = hashlib.sha1(pki.leaf.der).hexdigest()
        assert h.send(b"AT+CIPSSLAUTH=1\r\n") == b"fp not valid\r\n" + ERR
        assert h.send(b'AT+CIPSSLFP="%s"\r\n' % digest.upper().encode()) == OK
        assert h.send(b"AT+CIPSSLFP?\r\n") == b'+CIPSSLFP:"%s"\r\n' % ":".join(
            digest[i:i + 2] for i in range(0, 40, 2)).encode() + OK   # lower case, with colons
        assert h.send(b"AT+CIPSSLAUTH=1\r\n") == OK
        assert connect(h, server.port) == b"CONNECT\r\n" + OK
        h.send(b"AT+CIPCLOSE\r\n")
        other = hashlib.sha1(pki.expired.der).hexdigest()
        colons = ":".join(other[i:i + 2] for i in range(0, 40, 2))
        assert h.send(b'AT+CIPSSLFP="%s"\r\n' % colons.encode()) == OK
        assert connect(h, server.port) == FAIL

    def test_mode_2_chain_name_and_dates(self, pki, sntp, serve):
        h = modem(sntp)
        assert h.send(b"AT+CIPSSLAUTH=2\r\n") == b"CA cert not loaded\r\n" + ERR
        assert upload(h, pki.root.pem).endswith(OK)
        assert h.send(b"AT+CIPSSLAUTH=2\r\n") == OK
        assert h.send(b"AT+CIPSSLAUTH?\r\n") == b"+CIPSSLAUTH:2\r\n" + OK
        good = serve(pki.leaf, greeting=b"ok")
        assert connect(h, good.port) == b"CONNECT\r\n" + OK
        assert h.wait_for(b"ok") == b"\r\n+IPD,2:ok"
        h.send(b"AT+CIPCLOSE\r\n")
        for issued in (pki.expired, pki.future, pki.unknown_ca, pki.self_signed):
            assert connect(h, serve(issued).port) == FAIL
        assert connect(h, serve(pki.wrong_host).port) == FAIL
        assert connect(h, good.port, b"127.0.0.1") == b"CONNECT\r\n" + OK  # the IP is in the SAN

    def test_mode_2_wrong_name(self, pki, sntp, serve):
        h = modem(sntp)
        upload(h, pki.root.pem)
        h.send(b"AT+CIPSSLAUTH=2\r\n")
        assert connect(h, serve(pki.leaf).port, b"other.test") == FAIL

    def test_an_intermediate_is_a_trust_anchor(self, pki, sntp, serve):
        h = modem(sntp)
        upload(h, pki.intermediate.pem)
        h.send(b"AT+CIPSSLAUTH=2\r\n")
        assert connect(h, serve(pki.leaf).port) == b"CONNECT\r\n" + OK

    def test_requirement_gone_at_cipstart_is_plain_error(self, pki, sntp, serve):
        h = modem(sntp)
        upload(h, pki.root.pem)
        h.send(b"AT+CIPSSLAUTH=2\r\n")
        assert h.send(b"AT+CIPSSLCERT=DELETE,1\r\n") == b"+CIPSSLCERT,1:deleted\r\n" + OK
        assert connect(h, serve(pki.leaf).port) == ERR


class TestModemClock:
    @pytest.mark.parametrize("when,expected", [
        (calendar.timegm((2025, 6, 1, 0, 0, 0)), FAIL),          # before the leaf's validity
        (INSIDE, b"CONNECT\r\n" + OK),
        (calendar.timegm((2028, 6, 1, 0, 0, 0)), FAIL),          # after it
    ])
    def test_validity_at_the_sntp_time(self, pki, serve, when, expected):
        sntp = SntpServer(when)
        try:
            h = modem(sntp)
            upload(h, pki.root.pem)
            h.send(b"AT+CIPSSLAUTH=2\r\n")
            assert connect(h, serve(pki.leaf).port) == expected
        finally:
            sntp.close()

    def test_before_sntp_everything_fails_in_mode_2(self, pki, serve):
        sntp = SntpServer(INSIDE)
        sntp.close()  # never answers: the modem stays in 1970
        h = modem(sntp, synced=False)
        upload(h, pki.root.pem)
        h.send(b"AT+CIPSSLAUTH=2\r\n")
        assert connect(h, serve(pki.leaf).port) == FAIL


class TestLinks:
    def test_sni_is_the_cipstart_host(self, pki, sntp, folder):
        seen = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki.leaf.write(folder))
        context.sni_callback = lambda tls, name, ctx: seen.append(name)
        server = EchoServer(context)
        h = modem(sntp)
        assert connect(h, server.port) == b"CONNECT\r\n" + OK
        h.send(b"AT+CIPCLOSE\r\n")
        assert connect(h, server.port, b"127.0.0.1") == b"CONNECT\r\n" + OK
        assert seen == ["tls.test", None]  # no SNI for an IP literal
        server.close()

    def test_mode_2_passive(self, pki, sntp, serve):
        h = modem(sntp)
        upload(h, pki.root.pem)
        h.send(b"AT+CIPSSLAUTH=2\r\n")
        h.send(b"AT+CIPRECVMODE=1\r\n")
        assert connect(h, serve(pki.leaf, greeting=b"secret").port) == b"CONNECT\r\n" + OK
        assert h.wait_for(b"+IPD,6\r\n") == b"\r\n+IPD,6\r\n"
        assert h.send(b"AT+CIPRECVDATA=100\r\n") == b"\r\n+CIPRECVDATA,6:secret" + OK

    def test_world_can_make_handshakes_instant(self, pki, sntp, serve):
        h = modem(sntp)
        h.world.tls_time_scale = 0
        server = serve(pki.leaf)
        h.modem.feed(b'AT+CIPSTART="SSL","tls.test",%d\r\n' % server.port)
        h.pump(lambda: server.handshakes == 1, horizon=0)
        assert h.advance(0.15) == b"CONNECT\r\n" + OK

    def test_passive_mode_and_mux(self, pki, sntp, serve):
        h = modem(sntp)
        h.send(b"AT+CIPMUX=1\r\n")
        h.send(b"AT+CIPRECVMODE=1\r\n")
        server = serve(pki.leaf, greeting=b"x" * 3000)
        assert h.send(b'AT+CIPSTART=3,"SSL","tls.test",%d\r\n' % server.port) == b"3,CONNECT\r\n" + OK
        h.pump(lambda: b"+IPD,3,3000\r\n" in h.out)
        h.take()
        assert h.send(b"AT+CIPRECVDATA=3,2048\r\n") == b"\r\n+CIPRECVDATA,2048:" + b"x" * 2048 + OK
        assert h.send(b"AT+CIPRECVLEN?\r\n") == b"+CIPRECVLEN:0,0,0,952,0\r\n" + OK

    def test_handshake_takes_the_spec_time(self, pki, sntp, serve):
        h = modem(sntp)
        server = serve(pki.leaf)
        h.modem.feed(b'AT+CIPSTART="SSL","tls.test",%d\r\n' % server.port)
        h.pump(lambda: server.handshakes == 1, horizon=0)
        assert h.advance(1.55) == b""       # 0.1 s connect + 1.5 s handshake at 80 MHz
        assert h.advance(0.1) == b"CONNECT\r\n" + OK
        h.send(b"AT+CIPCLOSE\r\n")
        h.send(b"AT+SYSCPUFREQ=160\r\n")
        h.modem.feed(b'AT+CIPSTART="SSL","tls.test",%d\r\n' % server.port)
        h.pump(lambda: server.handshakes == 2, horizon=0)
        assert h.advance(0.85) == b""
        assert h.advance(0.1) == b"CONNECT\r\n" + OK

    def test_heap_one_link_at_full_buffer_five_at_512(self, pki, sntp, serve):
        h = modem(sntp)
        h.send(b"AT+CIPMUX=1\r\n")
        server = serve(pki.leaf)
        idle = int(h.send(b"AT+SYSRAM?\r\n").split(b":")[1].split(b"\r")[0])
        assert h.send(b'AT+CIPSTART=0,"SSL","tls.test",%d\r\n' % server.port) == b"0,CONNECT\r\n" + OK
        used = idle - int(h.send(b"AT+SYSRAM?\r\n").split(b":")[1].split(b"\r")[0])
        assert used > 16384
        assert h.send(b'AT+CIPSTART=1,"SSL","tls.test",%d\r\n' % server.port) == b"connect fail\r\n" + ERR + b"CLOSED\r\n"
        h.send(b"AT+CIPCLOSE=0\r\n")
        h.send(b"AT+CIPSSLSIZE=512\r\n")
        for index in range(5):
            assert h.send(b'AT+CIPSTART=%d,"SSL","tls.test",%d\r\n' % (index, server.port)) == \
                b"%d,CONNECT\r\n" % index + OK


class TestMfln:
    @pytest.mark.parametrize("size", [512, 1024, 2048, 4096])
    def test_small_buffers_negotiate_and_get_small_records(self, pki, sntp, serve, size):
        h = modem(sntp)
        assert h.send(b"AT+CIPSSLSTA\r\n") == b"NOT OPENED\r\n" + ERR
        h.send(b"AT+CIPSSLSIZE=%d\r\n" % size)
        server = serve(pki.leaf, greeting=b"y" * 10000)
        assert connect(h, server.port) == b"CONNECT\r\n" + OK
        assert h.send(b"AT+CIPSSLSTA\r\n").startswith(b"+CIPSSLSTA:1\r\n")
        h.pump(lambda: h.out.count(b"y") >= 10000)
        sizes = [int(n) for n in re.findall(rb"\+IPD,(\d+):", h.take())]
        assert sum(sizes) == 10000 and max(sizes) <= size  # one +IPD per record, none beyond the buffer

    def test_full_buffer_asks_for_nothing(self, pki, sntp, serve):
        h = modem(sntp)
        assert connect(h, serve(pki.leaf).port) == b"CONNECT\r\n" + OK
        assert h.send(b"AT+CIPSSLSTA\r\n") == b"+CIPSSLSTA:0\r\n" + OK

    def test_without_the_openssl_extensions_mfln_is_unsupported(self, pki, sntp, serve, monkeypatch):
        from atmodem_tls import openssl
        monkeypatch.setattr(openssl, "available", False)
        h = modem(sntp)
        h.send(b"AT+CIPSSLSIZE=4096\r\n")
        assert connect(h, serve(pki.leaf).port) == b"CONNECT\r\n" + OK
        assert h.send(b"AT+CIPSSLSTA\r\n") == b"+CIPSSLSTA:0\r\n" + OK

    def test_status_errors(self, pki, sntp, serve):
        h = modem(sntp)
        assert h.send(b"AT+CIPSSLSTA=0\r\n") == b"MUX=0\r\n" + ERR
        h.send(b"AT+CIPMUX=1\r\n")
        assert h.send(b"AT+CIPSSLSTA\r\n") == b"MUX=1\r\n" + ERR
        from support import Peer
        peer = Peer()
        h.send(b'AT+CIPSTART=1,"TCP","127.0.0.1",%d\r\n' % peer.port)
        assert h.send(b"AT+CIPSSLSTA=1\r\n") == b"NOT A SSL\r\n" + ERR
        assert h.send(b"AT+CIPSSLSTA=?\r\n") == ERR
        peer.close()
        h.send(b"AT+CWQAP\r\n")
        assert h.send(b"AT+CIPSSLSTA=1\r\n") == b"NOT CONNECTED\r\n" + ERR


class TestBadInput:
    @pytest.mark.parametrize("value", [b'"%s"' % (b"0" * 39 + b"g"), b'"%s"' % (b"0" * 39), b"0" * 40,
                                       b'"%s"' % b":".join([b"00"] * 19 + [b"0g"]), b'"%s"x' % (b"0" * 40)])
    def test_bad_fingerprints(self, sntp, value):
        h = modem(sntp, synced=False)
        assert h.send(b"AT+CIPSSLFP=" + value + b"\r\n") == ERR
        assert h.send(b"AT+CIPSSLFP?\r\n") == b"not valid\r\n" + ERR

    def test_server_resetting_mid_handshake(self, sntp):
        import socket
        import threading
        listener = socket.create_server(("127.0.0.1", 0))

        def reset():
            conn, _ = listener.accept()
            conn.recv(100)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

        threading.Thread(target=reset, daemon=True).start()
        h = modem(sntp, synced=False)
        assert connect(h, listener.getsockname()[1]) == FAIL
        assert h.send(b"AT\r\n") == OK
        listener.close()

    def test_server_sending_an_alert(self, pki, sntp, serve, folder):
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki.leaf.write(folder))
        context.minimum_version = ssl.TLSVersion.TLSv1_3  # the modem offers 1.2 at most: protocol_version alert
        server = serve(pki.leaf, context=context)
        h = modem(sntp, synced=False)
        assert connect(h, server.port) == FAIL
        assert server.failures == 1
        assert h.send(b"AT\r\n") == OK


@pytest.fixture(scope="module")
def rsa_leaf(pki):
    from pki import issue, utc
    return issue("tls.test", pki.intermediate, ca=False, start=utc(2026), end=utc(2027),
                 hosts=("tls.test", "127.0.0.1"), rsa=True)


class TestMflnProbe:

    def test_openssl_server_accepts(self, pki, sntp, serve):
        h = modem(sntp, synced=False)
        server = serve(pki.leaf)
        for size in (512, 1024, 2048, 4096):
            assert h.send(b'AT+CIPSSLMFLN="tls.test",%d,%d\r\n' % (server.port, size)) == b"+CIPSSLMFLN:TRUE\r\n" + OK

    def test_tlslite_server_does_not(self, pki, sntp, rsa_leaf):
        from servers import TlsliteServer
        server = TlsliteServer(rsa_leaf, greeting=b"z" * 3000)
        try:
            h = modem(sntp, synced=False)
            assert h.send(b'AT+CIPSSLMFLN="tls.test",%d,512\r\n' % server.port) == b"+CIPSSLMFLN:FALSE\r\n" + OK
            # full buffer: fine, records of any size fit
            assert connect(h, server.port) == b"CONNECT\r\n" + OK
            assert h.wait_for(b"z" * 3000).endswith(b"z" * 3000)
            assert h.send(b"AT+CIPSSLSTA\r\n") == b"+CIPSSLSTA:0\r\n" + OK
            h.send(b"AT+CIPCLOSE\r\n")
            # 512 bytes without MFLN: the server's large records cannot be received
            h.send(b"AT+CIPSSLSIZE=512\r\n")
            assert connect(h, server.port) == FAIL
        finally:
            server.close()

    def test_unreachable_is_false(self, sntp):
        h = modem(sntp, synced=False)
        import socket
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        assert h.send(b'AT+CIPSSLMFLN="tls.test",%d,512\r\n' % port) == b"+CIPSSLMFLN:FALSE\r\n" + OK
        assert h.send(b'AT+CIPSSLMFLN="nowhere.test",443,512\r\n') == b"+CIPSSLMFLN:FALSE\r\n" + OK

    @pytest.mark.parametrize("args,reply", [
        (b'tls.test,443,512', ERR), (b'"tls.test,443,512', b"HOSTNAME ERROR\r\n\r\n" + ERR),
        (b'"tls.test",x,512', ERR), (b'"tls.test",443', b"SIZE ERROR\r\n\r\n" + ERR),
        (b'"tls.test",443,300', b"SIZE ERROR\r\n\r\n" + ERR), (b'"tls.test",443,512x', b"SIZE ERROR\r\n\r\n" + ERR),
    ])
    def test_errors(self, sntp, args, reply):
        h = modem(sntp, synced=False)
        assert h.send(b"AT+CIPSSLMFLN=" + args + b"\r\n") == reply

    def test_no_ap(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CIPSSLMFLN="tls.test",443,512\r\n') == b"NO AP\r\n" + ERR


class TestReviewedEdges:
    @pytest.fixture
    def silent(self):
        import socket
        import threading
        listener = socket.create_server(("127.0.0.1", 0))
        accepted = []

        def hold():
            while True:
                try:
                    accepted.append(listener.accept()[0])  # and never say a word
                except OSError:
                    return

        threading.Thread(target=hold, daemon=True).start()
        yield listener.getsockname()[1], accepted
        listener.close()
        for conn in accepted:
            conn.close()

    def test_a_silent_tls_server_gives_connect_fail(self, sntp, silent):
        port, _ = silent
        h = modem(sntp, synced=False)
        h.modem.feed(b'AT+CIPSTART="SSL","tls.test",%d\r\n' % port)
        assert h.advance(6.5) == b""          # 0.1 connect + 1.5 handshake + 5 s of waiting
        assert h.advance(0.2) == FAIL
        assert h.send(b"AT\r\n") == OK

    def test_a_reset_mid_handshake_closes_the_connection(self, sntp, silent):
        port, accepted = silent
        h = modem(sntp, synced=False)
        h.modem.feed(b'AT+CIPSTART="SSL","tls.test",%d\r\n' % port)
        h.pump(lambda: accepted, horizon=0)
        h.reactor.poll(0.05)
        h.modem.power_on()  # a power cycle: the UART is not read during the command
        h.wait_for(b"ready\r\n")
        accepted[0].settimeout(5)
        data = accepted[0].recv(4096)  # the ClientHello, then the end: FIN from the reset
        while data:
            data = accepted[0].recv(4096)
        assert data == b""

    def test_malformed_server_hello_is_false(self, sntp):
        import socket
        import threading
        listener = socket.create_server(("127.0.0.1", 0))

        def answer():
            conn, _ = listener.accept()
            conn.recv(4096)
            body = b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x10" + b"\x00\x01"
            message = b"\x02" + len(body).to_bytes(3, "big") + body
            conn.sendall(b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message)
            conn.close()

        threading.Thread(target=answer, daemon=True).start()
        h = modem(sntp, synced=False)
        reply = h.send(b'AT+CIPSSLMFLN="tls.test",%d,512\r\n' % listener.getsockname()[1])
        assert reply == b"+CIPSSLMFLN:FALSE\r\n" + OK
        listener.close()

    def test_host_names_openssl_refuses_go_without_sni(self, pki, sntp, serve):
        long_label = b"a" * 64 + b".test"
        h = modem(sntp)
        h.world.map_host(long_label.decode(), "127.0.0.1")
        server = serve(pki.leaf)
        assert connect(h, server.port, long_label) == b"CONNECT\r\n" + OK
        h.send(b"AT+CIPCLOSE\r\n")
        assert h.send(b'AT+CIPSSLMFLN="%s",%d,512\r\n' % (long_label, server.port)) == b"+CIPSSLMFLN:TRUE\r\n" + OK

    def test_certificates_count_against_the_heap(self, pki, sntp, serve):
        from pki import issue, utc
        h = modem(sntp)
        h.send(b"AT+CIPSSLCERTMAX=12\r\n")
        for n in range(12):  # about 10 KB of certificates
            assert h.send(b"AT+CIPSSLCERT\r\n") == b"\r\nOK\r\n>"
            h.send(issue("Heavy Root %d" % n, None, ca=True, start=utc(2025), end=utc(2035), rsa=True).pem)
        h.send(b"AT+CIPMUX=1\r\n")
        h.send(b"AT+CIPSSLSIZE=512\r\n")
        server = serve(pki.leaf)
        replies = [h.send(b'AT+CIPSTART=%d,"SSL","tls.test",%d\r\n' % (i, server.port)) for i in range(5)]
        free = int(h.send(b"AT+SYSRAM?\r\n").split(b":")[1].split(b"\r")[0])
        assert free >= 0
        assert replies[-1] == FAIL and replies[0] == b"0,CONNECT\r\n" + OK

"""The lab: its CA, web and echo servers over real sockets, and the internet a firmware expects."""

import http.client
import socket
import ssl
import time

import pytest

from atmodem.lab import EchoServer, Internet, LabPki, Page, WebServer, server_context
from atmodem.lab.internet import PAGE, TIME_HOST, WEB_HOST
from atmodem.world import World


def client_context(pki: LabPki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def test_the_root_is_made_once_and_kept(tmp_path):
    first = LabPki(tmp_path / "pki")
    again = LabPki(tmp_path / "pki")
    assert again.root.cert == first.root.cert
    assert (tmp_path / "pki" / "ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_https_page_chains_to_the_lab_root(tmp_path):
    pki = LabPki(tmp_path)
    server = WebServer({"/": Page(b"hi\n")}, server_context(pki.server("web.test"), tmp_path))
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            with client_context(pki).wrap_socket(raw, server_hostname="web.test") as tls:
                tls.sendall(b"GET /?x=1 HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nhi\n")
        assert b"Connection: close" in answer
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/?x=1")]
        assert (server.handshakes, server.failures) == (1, 0)
    finally:
        server.close()


def test_an_untrusted_certificate_is_refused_and_counted(tmp_path):
    pki = LabPki(tmp_path)
    server = WebServer({}, server_context(LabPki.stranger("web.test"), tmp_path))
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                client_context(pki).wrap_socket(raw, server_hostname="web.test")
        deadline = time.monotonic() + 5
        while not server.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (server.handshakes, server.failures) == (0, 1)
    finally:
        server.close()


def test_posts_are_recorded_and_unknown_paths_are_404(tmp_path):
    server = WebServer({"/": Page(b"x")})
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/report", body=b"board=uno bytes=3")
        assert connection.getresponse().status == 204
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/missing")
        assert connection.getresponse().status == 404
        assert [(r.method, r.path, r.body) for r in server.requests] == [
            ("POST", "/report", b"board=uno bytes=3"), ("GET", "/missing", b"")]
    finally:
        server.close()


def test_echo_server_greets_then_echoes():
    server = EchoServer(greeting=b"hello ")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"ping")
            received = b""
            while len(received) < 10:
                received += conn.recv(64)
        assert received == b"hello ping" and server.connections == 1
    finally:
        server.close()


def test_the_internet_needs_the_firmware_s_ca(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lab CA in .* \\(make firmware creates it\\)"):
        Internet(tmp_path)


def test_internet_points_the_world_at_its_servers(tmp_path):
    LabPki(tmp_path)
    internet = Internet(tmp_path)
    world = World.default()
    try:
        internet.attach(world)
        assert world.lookup(WEB_HOST) == world.lookup(TIME_HOST) == "127.0.0.1"
        assert world.route("127.0.0.1", 443) == ("127.0.0.1", internet.https.port)
        assert world.route("127.0.0.1", 80) == ("127.0.0.1", internet.http.port)
        assert world.sntp_port == internet.sntp.port
        internet.sntp.time = 1780000000.0
        connection = http.client.HTTPConnection(*world.route("127.0.0.1", 80), timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.read() == PAGE
        assert response.headers["Date"] == "Thu, 28 May 2026 20:26:40 GMT"  # the lab's one clock
    finally:
        internet.close()

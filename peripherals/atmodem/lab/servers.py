"""Loopback servers: SNTP with a settable clock, a TCP/TLS echo, and an HTTP/HTTPS web server.

Each runs on daemon threads, binds ``address`` on a free port (``.port``) and stops with
``close()``. TLS is on when a server gets an ``ssl.SSLContext``; ``handshakes`` and
``failures`` count its outcomes, so a test can tell a rejected chain from a silent peer.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

NTP_TO_UNIX = 2208988800


class SntpServer:
    """Answers SNTP requests with ``self.time`` (Unix seconds), or the host's clock while that is None."""

    def __init__(self, when: Optional[float] = None, address: str = "127.0.0.1"):
        self.time = when
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, name="sntp-server", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, client = self.sock.recvfrom(512)
            except OSError:
                return
            if len(data) < 48 or data[0] & 0x07 != 3:
                continue
            self.requests += 1
            seconds = self.now() + NTP_TO_UNIX
            stamp = struct.pack("!II", int(seconds), int((seconds % 1) * 2**32))
            reply = bytes([0x24, 2, 6, 0xEC]) + bytes(20) + data[40:48] + stamp + stamp
            try:
                self.sock.sendto(reply, client)
            except OSError:
                return

    def now(self) -> float:
        """The time this server hands out, Unix seconds."""
        return time.time() if self.time is None else self.time

    def close(self) -> None:
        self.sock.close()


class _TlsCounting:
    """The handshake bookkeeping the lab's servers share (connections run on threads of their own)."""

    def __init__(self, context: Optional[ssl.SSLContext]):
        self.context = context
        self.handshakes = 0
        self.failures = 0
        self._count_lock = threading.Lock()

    def _count(self, handshake: bool) -> None:
        with self._count_lock:
            if handshake:
                self.handshakes += 1
            else:
                self.failures += 1

    def _secure(self, conn: socket.socket) -> Optional[socket.socket]:
        if self.context is None:
            return conn
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self._count(False)
            conn.close()
            return None
        self._count(True)
        return tls


class TcpServer(_TlsCounting):
    """A server on a free loopback port, TLS with ``context``, one thread per connection.

    Subclasses serve a connection in ``handle(peer)`` (the TLS socket when there is a context);
    errors in ``peer_errors`` end that connection quietly, and the peer is closed afterwards.
    ``connections``, ``handshakes`` and ``failures`` count what came.
    """

    peer_errors: tuple = (OSError,)   # ssl.SSLError is an OSError
    timeout = 10.0                    # seconds a connection may sit idle

    def __init__(self, context: Optional[ssl.SSLContext] = None, address: str = "127.0.0.1"):
        super().__init__(context)
        self.connections = 0
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, name=type(self).__name__, daemon=True).start()

    def handle(self, peer: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._count_lock:
                self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        peer = self._secure(conn)
        if peer is None:
            return
        try:
            self.handle(peer)
        except self.peer_errors:
            pass
        finally:
            peer.close()

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept() on Linux.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


class EchoServer(TcpServer):
    """Sends ``greeting`` (if any) to each connection, then echoes what it receives."""

    def __init__(self, context: Optional[ssl.SSLContext] = None, greeting: bytes = b"", address: str = "127.0.0.1"):
        self.greeting = greeting
        super().__init__(context, address)

    def handle(self, peer: socket.socket) -> None:
        if self.greeting:
            peer.sendall(self.greeting)
        while data := peer.recv(65536):
            peer.sendall(data)


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes = b""


@dataclass
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/plain"


class WebServer(_TlsCounting):
    """HTTP/1.1 (HTTPS with a context): serves ``pages`` by path and records every request.

    Any POST is answered ``204`` and kept in ``requests`` with its body, so a device
    can report what it received.
    """

    def __init__(self, pages: Optional[dict[str, Page]] = None, context: Optional[ssl.SSLContext] = None,
                 address: str = "127.0.0.1", clock: Callable[[], float] = time.time):
        super().__init__(context)
        self.pages = dict(pages or {})
        self.clock = clock  # for the Date header: the lab's clock, so a run can repeat byte for byte
        self.requests: list[Request] = []
        self.httpd = _Httpd((address, 0), _handler_for(self))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name="web-server", daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


def _handler_for(server: WebServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def setup(self):
            self.request.settimeout(self.timeout)  # a client that never says hello must not hold a thread
            secured = server._secure(self.request)
            if secured is None:
                self.request = None
                self.rfile = self.wfile = None
                return
            self.request = self.connection = secured
            super().setup()

        def handle(self):
            if self.request is not None:
                super().handle()

        def finish(self):
            if self.request is not None:
                super().finish()
                self.request.close()  # the TLS socket: the server only closes the one it accepted

        def do_GET(self):
            server.requests.append(Request("GET", self.path, dict(self.headers)))
            page = server.pages.get(self.path.split("?")[0])
            if page is None:
                page = Page(b"not found\n", 404)
            self._answer(page)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.requests.append(Request("POST", self.path, dict(self.headers), body))
            self._answer(Page(b"", 204))

        def _answer(self, page: Page) -> None:
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(page.body)))
            if self.headers.get("Connection", "").lower() == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(page.body)

        def date_time_string(self, timestamp=None):
            return email.utils.formatdate(server.clock() if timestamp is None else timestamp, usegmt=True)

        def log_message(self, format, *args):
            pass

    return Handler

"""TCP and TLS data throughput through the modem, against plain Python sockets in the same run.

One modem on a manual clock with real loopback sockets (as the tests run it).
The host side is this process feeding AT commands straight into the engine;
the far end is a server thread on 127.0.0.1.

* upload: AT+CIPSEND=2048, wait for "> ", 2048 bytes, wait for SEND OK; repeat.
* download, active: the server streams; the modem pushes +IPD blocks.
* download, passive: AT+CIPRECVDATA=2048 in a loop (CIPRECVMODE=1).
* baseline: the same bytes over a plain loopback socket (2048-byte sends;
  receives of the modem's 5840-byte window) in this process.

* TLS: the same over AT+CIPSTART="SSL" (TLS 1.2, auth mode 0) against a Python ``ssl``
  server, next to a plain ``ssl`` client socket; and the wall time of one TLS
  AT+CIPSTART next to a plain ``ssl`` handshake.

Targets: at least 20 MB/s each way over TCP and 10 MB/s over TLS (a real ESP8266's UART
tops out below 0.5 MB/s).
"""

from __future__ import annotations

import math
import re
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from atmodem.clock import ManualClock  # noqa: E402
from atmodem.engine import Modem, Timing  # noqa: E402
from atmodem.lab import LabPki, TcpServer, server_context  # noqa: E402
from atmodem.net import TCP_WINDOW, Network, SelectorReactor  # noqa: E402
from atmodem.plugins import plugin_set  # noqa: E402
from atmodem.profiles import DEFAULT_PROFILE  # noqa: E402
from atmodem.world import World  # noqa: E402
from support import JOIN, run_until  # noqa: E402

TARGET_MB_S = 20.0
TARGET_TLS_MB_S = 10.0
CHUNK = 2048
MB = 1024 * 1024
STUCK = 120.0  # real seconds one wait may take before the bench gives up on the modem


class Server(TcpServer):
    """Drains what each connection sends, or first streams ``stream`` bytes to it and closes its side."""

    def __init__(self, stream: int = 0, tls: ssl.SSLContext | None = None):
        self.stream = stream
        self.received = 0
        self.served = threading.Semaphore(0)  # released as each connection ends
        super().__init__(tls)

    def handle(self, peer: socket.socket) -> None:
        # An OSError (a reader that left without its own close_notify) ends the connection: done anyway.
        try:
            if self.stream:
                block = bytes(range(256)) * 256
                left = self.stream
                while left:
                    left -= peer.send(block[:min(left, len(block))])
                if isinstance(peer, ssl.SSLSocket):
                    peer = peer.unwrap()  # close_notify, then FIN
                peer.shutdown(socket.SHUT_WR)
            while chunk := peer.recv(1 << 16):
                self.received += len(chunk)
        finally:
            self.served.release()


def tls_server_context(folder: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 from a lab CA made in ``folder`` (the modem
    connects in auth mode 0, so no one checks the chain)."""
    return server_context(LabPki(folder).server("127.0.0.1"), folder)


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # as the modem
    return context


class Bench:
    """A joined modem and a way to run it until something has been said.

    Modems given one ``clock`` and ``reactor`` run side by side on one loop; a reactor
    passed in is closed by whoever made it."""

    def __init__(self, clock: ManualClock | None = None, reactor: SelectorReactor | None = None,
                 timing: Timing = Timing()):
        self.out = bytearray()
        self.clock = clock or ManualClock()
        self._owns_reactor = reactor is None
        self.reactor = reactor or SelectorReactor()
        world = World.default()
        self.modem = Modem(plugin_set(DEFAULT_PROFILE), self.clock, timing=timing, world=world,
                           network=Network(self.reactor, world), sink=self.out.extend)
        self.modem.power_on()
        self.until(lambda: b"ready" in self.out)
        self.command(b"ATE0")
        self.command(JOIN.rstrip())

    def until(self, done) -> None:
        """The tests' loop (I/O first, then the next timer, real peers given a moment before long
        jumps), with no horizon: a bench runs as far in simulated time as its data takes."""
        run_until(self.reactor, self.clock, done, STUCK, math.inf,
                  lambda: f"the modem is {self.modem.mode.value}; it said {bytes(self.out[-300:])!r}")

    def wait(self) -> None:
        """Handle whatever I/O is ready, then let the simulated network latency pass."""
        while self.reactor.poll(0.001):
            pass
        self.clock.advance(self.modem.world.latency)

    def command(self, line: bytes, token: bytes = b"OK\r\n") -> bytes:
        self.out.clear()
        self.modem.feed(line + b"\r\n")
        self.until(lambda: token in self.out)
        return bytes(self.out)

    def connect(self, server: Server) -> None:
        kind = b"SSL" if server.context is not None else b"TCP"
        self.command(b'AT+CIPSTART="%s","127.0.0.1",%d' % (kind, server.port), b"CONNECT\r\n\r\nOK\r\n")

    def close(self) -> None:
        self.modem.power_off()
        if self._owns_reactor:
            self.reactor.close()


def upload(size: int, tls: ssl.SSLContext | None = None) -> float:
    bench, server = Bench(), Server(tls=tls)
    bench.connect(server)
    data = bytes(range(256)) * (CHUNK // 256)
    start = time.perf_counter()
    for _ in range(size // CHUNK):
        bench.command(b"AT+CIPSEND=%d" % CHUNK, b"> ")
        bench.out.clear()
        bench.modem.feed(data)
        bench.until(lambda: b"SEND OK\r\n" in bench.out)
    bench.command(b"AT+CIPCLOSE")
    server.served.acquire()
    elapsed = time.perf_counter() - start
    assert server.received == size // CHUNK * CHUNK, "upload lost data"
    bench.close()
    server.close()
    return size / elapsed / MB


def download_active(size: int, tls: ssl.SSLContext | None = None) -> float:
    bench, server = Bench(), Server(stream=size, tls=tls)
    start = time.perf_counter()
    bench.connect(server)  # the server streams at once: +IPD blocks may precede the OK
    bench.until(lambda: bench.out.endswith(b"CLOSED\r\n"))
    elapsed = time.perf_counter() - start
    framing = b"".join(re.findall(rb"\r\n\+IPD,\d+:", bench.out)) + b"CONNECT\r\n\r\nOK\r\nCLOSED\r\n"
    payload = len(bench.out) - len(framing)
    assert payload == size, "download lost data"
    bench.close()
    server.close()
    return size / elapsed / MB


def download_passive(size: int, tls: ssl.SSLContext | None = None) -> float:
    bench, server = Bench(), Server(stream=size, tls=tls)
    bench.command(b"AT+CIPRECVMODE=1")
    bench.connect(server)
    got = 0
    header = re.compile(rb"\+CIPRECVDATA,(\d+):")
    start = time.perf_counter()
    def answered() -> bool:
        # a passive notice may follow the answer, so look for the answer's end, not the output's
        match = header.search(bench.out)
        if match:
            return len(bench.out) >= match.end() + int(match.group(1)) + len(b"\r\nOK\r\n")
        return b"\r\nERROR\r\n" in bench.out

    while got < size:
        bench.out.clear()
        bench.modem.feed(b"AT+CIPRECVDATA=%d\r\n" % CHUNK)
        bench.until(answered)
        match = header.search(bench.out)
        if match:
            got += int(match.group(1))
        else:
            bench.wait()  # nothing yet: give the network a moment, as a host would
    elapsed = time.perf_counter() - start
    bench.close()
    server.close()
    return size / elapsed / MB


def baseline_upload(size: int, tls: ssl.SSLContext | None = None) -> float:
    server = Server(tls=tls)
    client = socket.create_connection(("127.0.0.1", server.port))
    if tls is not None:
        client = client_context().wrap_socket(client)
    data = bytes(range(256)) * (CHUNK // 256)
    start = time.perf_counter()
    for _ in range(size // CHUNK):
        client.sendall(data)
    client.close()
    server.served.acquire()
    elapsed = time.perf_counter() - start
    server.close()
    return size / elapsed / MB


def baseline_download(size: int, tls: ssl.SSLContext | None = None) -> float:
    server = Server(stream=size, tls=tls)
    client = socket.create_connection(("127.0.0.1", server.port))
    if tls is not None:
        client = client_context().wrap_socket(client)
    got = 0
    start = time.perf_counter()
    while chunk := client.recv(TCP_WINDOW):
        got += len(chunk)
    elapsed = time.perf_counter() - start
    client.close()
    server.close()
    assert got == size
    return size / elapsed / MB


def handshakes(count: int, tls: ssl.SSLContext) -> tuple[float, float]:
    """Mean wall milliseconds of a TLS AT+CIPSTART through the modem, and of a plain ssl handshake.

    The modem's simulated delays (the spec's 1.5 s handshake) are zero here: what is left is
    the real handshake over loopback and the engine's own work."""
    bench, server = Bench(timing=Timing.instant()), Server(tls=tls)
    start = time.perf_counter()
    for _ in range(count):
        bench.connect(server)
        bench.command(b"AT+CIPCLOSE")
    modem = (time.perf_counter() - start) / count * 1000
    bench.close()
    start = time.perf_counter()
    for _ in range(count):
        client_context().wrap_socket(socket.create_connection(("127.0.0.1", server.port))).close()
    plain = (time.perf_counter() - start) / count * 1000
    server.close()
    return modem, plain


"""10 MB each way through real TCP links: nothing lost, duplicated or reordered.

Servers are real sockets served by threads; the host side is ``host.Host`` on
the manual-clock harness. Uploads go in 2048-byte AT+CIPSEND chunks while the
servers stream random bytes back, so +IPD data interleaves with the send
dialogue exactly as it does on the wire.
"""

import hashlib
import random
import socket
import threading

import pytest

from host import Host
from support import Harness

TOTAL = 10 * 1024 * 1024
CHUNK = 2048


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Server:
    """Accepts one link; streams ``outgoing`` (then closes if ``close_after``), hashes what arrives."""

    def __init__(self, outgoing: bytes, close_after: bool = False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.outgoing = outgoing
        self.close_after = close_after
        self.incoming = hashlib.sha256()
        self.incoming_size = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(30)
        conn, _ = self.listener.accept()
        conn.settimeout(60)
        sender = threading.Thread(target=self._send, args=(conn,), daemon=True)
        sender.start()
        try:
            while chunk := conn.recv(65536):
                self.incoming.update(chunk)
                self.incoming_size += len(chunk)
        except OSError:
            pass
        sender.join()
        conn.close()
        self.listener.close()
        self.done.set()

    def _send(self, conn) -> None:
        try:
            conn.sendall(self.outgoing)
            if self.close_after:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def transfer(links: int, passive: bool, mux: bool):
    share = TOTAL // links
    h = Harness()
    h.join()
    host = Host(h, mux=mux)
    if mux:
        host.command(b"AT+CIPMUX=1")
    if passive:
        host.command(b"AT+CIPRECVMODE=1")
    servers = {}
    for link in range(links):
        servers[link] = Server(payload(100 + link, share))
        prefix = b"%d," % link if mux else b""
        host.command(b'AT+CIPSTART=%s"TCP","127.0.0.1",%d' % (prefix, servers[link].port),
                     b"CONNECT\r\n\r\nOK\r\n")
    uploads = {link: payload(200 + link, share) for link in range(links)}
    offsets = dict.fromkeys(range(links), 0)
    while any(offsets[link] < share for link in range(links)) or \
            any(len(host.received[link]) < share for link in range(links)):
        for link in range(links):
            if offsets[link] < share:
                chunk = uploads[link][offsets[link]:offsets[link] + CHUNK]
                assert host.send(link, chunk) == b"\r\nSEND OK\r\n"
                offsets[link] += len(chunk)
        if passive:
            for link, waiting in enumerate(host.lengths()[:links]):
                if waiting:
                    host.read(link, min(CHUNK, waiting))
        else:
            host.wait(0.001)
    for link in range(links):
        assert len(host.received[link]) == share, link
        assert hashlib.sha256(host.received[link]).digest() == hashlib.sha256(payload(100 + link, share)).digest()
    for link in range(links):
        host.command(b"AT+CIPCLOSE=%d" % link if mux else b"AT+CIPCLOSE")
    for link, server in servers.items():
        assert server.done.wait(30)
        assert server.incoming_size == share
        assert server.incoming.digest() == hashlib.sha256(uploads[link]).digest()
    h.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
@pytest.mark.parametrize("links,mux", [(1, False), (5, True)], ids=["mux0", "mux1-five-links"])
def test_ten_megabytes_each_way(links, mux, passive):
    transfer(links, passive, mux)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
def test_server_closing_mid_stream(passive):
    """The server sends part of a stream and closes: every byte arrives, then CLOSED."""
    size = 3 * 1024 * 1024 + 17
    h = Harness()
    h.join()
    host = Host(h, mux=True)
    host.command(b"AT+CIPMUX=1")
    if passive:
        host.command(b"AT+CIPRECVMODE=1")
    server = Server(payload(7, size), close_after=True)
    host.command(b'AT+CIPSTART=2,"TCP","127.0.0.1",%d' % server.port, b"CONNECT\r\n\r\nOK\r\n")
    while 2 not in host.closed:
        if passive:
            waiting = host.lengths()[2]
            if waiting:
                host.read(2, min(CHUNK, waiting))
            else:
                host.wait(0.05)
        else:
            host.wait(0.01)
    assert host.received[2] == payload(7, size)
    # CLOSED came only once the host had everything (in passive mode: after it read it all)
    assert host.closed[2] == size
    assert host.command(b"AT+CIPSTATUS").startswith(b"STATUS:4\r\n")

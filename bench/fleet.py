"""Memory per idle modem and per TLS link, and how many modems with one TLS link each fit in one process.

A fleet is modems on one reactor and one manual clock (as a host program runs many modems on
one loop), each with its own world, booted and joined (the idle modem), then each opening one
TLS link (AT+CIPSTART="SSL", auth mode 0) to a TLS echo server in another process, so the
server's memory and CPU are not the fleet's. Every link then echoes 16 bytes, to show that all
of them still work. The baseline fleet is plain ``ssl`` client sockets to the same server.

Each measurement runs in a fresh process (``python bench/fleet.py --measure ...``), so memory
one run freed cannot flatter the next. Memory is reported two ways: Python's heap as
``tracemalloc`` sees it (a run of its own, since tracing slows and swells the process) and
the growth of the resident set (RSS, from /proc), which also counts OpenSSL's buffers.
The modem runs with zero simulated delays: the times are the real work of booting, joining
and a real TLS handshake.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from atmodem.clock import ManualClock
from atmodem.engine import Timing
from atmodem.lab import EchoServer
from atmodem.net import SelectorReactor

from throughput import Bench, client_context, tls_server_context

PROBE = b"0123456789abcdef"
SOCKETS_PER_MODEM = 2  # its SNTP client's UDP socket, and its link
SPARE_FILES = 64       # the interpreter's own, the reactor's, the server's listener


_STATM = open("/proc/self/statm")  # opened once: a fleet that ran out of descriptors is still measured


def resident_bytes() -> int:
    _STATM.seek(0)
    return int(_STATM.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heap_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0


def raise_file_limit(needed: int) -> int:
    """Lift the soft limit on open files towards the hard one when ``needed`` descriptors would not
    fit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return needed if soft == resource.RLIM_INFINITY else soft


# ---------------------------------------------------------------- the far end


class FleetEchoServer(EchoServer):
    """The lab's echo server, with no idle timeout: the first modems' links wait while the rest of
    the fleet opens theirs."""

    timeout = None


def serve(folder: str) -> None:
    """A TLS echo server on 127.0.0.1 (a lab CA in ``folder``) that prints its port and runs until
    its stdin closes."""
    server = FleetEchoServer(tls_server_context(Path(folder)))
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()


class EchoProcess:
    """``serve`` in a child process, for as long as the ``with`` block runs."""

    def __init__(self, folder: Path, connections: int):
        raise_file_limit(connections + SPARE_FILES)  # the child inherits the limit
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(folder)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def __enter__(self) -> "EchoProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------- the fleets


def open_tls(bench: Bench, port: int) -> bool:
    bench.out.clear()
    bench.modem.feed(b'AT+CIPSTART="SSL","127.0.0.1",%d\r\n' % port)
    bench.until(lambda: b"OK\r\n" in bench.out or b"ERROR\r\n" in bench.out)
    return b"CONNECT" in bench.out


def modem_fleet(port: int, limit: int) -> dict:
    """Boot up to ``limit`` modems (fewer where the open-file limit leaves less room), then give each
    one TLS link, stopping at the first that fails."""
    error = None
    room = (raise_file_limit(limit * SOCKETS_PER_MODEM + SPARE_FILES) - SPARE_FILES) // SOCKETS_PER_MODEM
    if room < limit:
        error, limit = f"the open-file limit leaves room for {room} modems", room
    clock, reactor = ManualClock(), SelectorReactor()
    # What every modem shares (the plugin set, the client TLS context, imports) is made first, off the books.
    first = Bench(clock, reactor, timing=Timing.instant())
    assert open_tls(first, port), bytes(first.out)
    first.close()
    fleet: list[Bench] = []
    heap, rss = heap_bytes(), resident_bytes()
    start = time.perf_counter()
    try:
        for _ in range(limit):
            fleet.append(Bench(clock, reactor, timing=Timing.instant()))
    except OSError as exc:
        error = f"booting modem {len(fleet) + 1}: {exc}"
    booted = time.perf_counter()
    idle_heap, idle_rss = heap_bytes(), resident_bytes()
    linked = 0
    for bench in fleet:
        if not open_tls(bench, port):
            error = f"modem {linked + 1}: {bytes(bench.out)!r}"
            break
        linked += 1
    connected = time.perf_counter()
    link_heap, link_rss = heap_bytes(), resident_bytes()
    echoed = 0
    for bench in fleet[:linked]:
        bench.command(b"AT+CIPSEND=%d" % len(PROBE), b"> ")
        bench.out.clear()
        bench.modem.feed(PROBE)
        bench.until(lambda: b"+IPD,%d:%s" % (len(PROBE), PROBE) in bench.out)
        echoed += 1
    for bench in fleet:
        bench.close()
    reactor.close()
    return {"modems": len(fleet), "linked": linked, "echoed": echoed, "error": error,
            "boot_seconds": booted - start, "link_seconds": connected - booted,
            "idle_heap": idle_heap - heap, "link_heap": link_heap - idle_heap,
            "idle_rss": idle_rss - rss, "link_rss": link_rss - idle_rss, "rss": link_rss}


def socket_fleet(port: int, count: int) -> dict:
    """The baseline: ``count`` plain ssl client sockets to the same server."""
    raise_file_limit(count + SPARE_FILES)
    context = client_context()
    context.wrap_socket(socket.create_connection(("127.0.0.1", port))).close()  # off the books, as above
    heap, rss = heap_bytes(), resident_bytes()
    start = time.perf_counter()
    links = [context.wrap_socket(socket.create_connection(("127.0.0.1", port))) for _ in range(count)]
    connected = time.perf_counter()
    link_heap, link_rss = heap_bytes(), resident_bytes()
    for link in links:
        link.sendall(PROBE)
        assert link.recv(len(PROBE)) == PROBE
    for link in links:
        link.close()
    return {"linked": count, "echoed": count, "link_seconds": connected - start,
            "link_heap": link_heap - heap, "link_rss": link_rss - rss, "rss": link_rss}


def measure(kind: str, port: int, count: int, traced: bool) -> dict:
    """One fleet in a fresh interpreter: its figures as a dict."""
    command = [sys.executable, __file__, "--measure", kind, "--port", str(port), "--count", str(count)]
    result = subprocess.run(command + (["--traced"] if traced else []), capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the {kind} fleet failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", metavar="FOLDER", help="run the TLS echo server, its lab CA in FOLDER")
    parser.add_argument("--measure", choices=("modems", "sockets"), help="run one fleet, print JSON")
    parser.add_argument("--port", type=int)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--traced", action="store_true", help="count the Python heap with tracemalloc")
    options = parser.parse_args()
    if options.serve:
        serve(options.serve)
        return
    if options.traced:
        tracemalloc.start()
    fleet = modem_fleet if options.measure == "modems" else socket_fleet
    print(json.dumps(fleet(options.port, options.count)))


if __name__ == "__main__":
    main()

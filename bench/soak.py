"""Soak: 100 MB through five simultaneous TCP and TLS links, in both receive modes, with zero
lost, duplicated or reordered bytes and flat memory.

    python bench/soak.py [--megabytes 100] [--mode active|passive|both] [--seed N] [--no-faults]

One modem on the tests' manual-clock ``Harness`` (real sockets on 127.0.0.1); the host side
is ``tests/host.py``'s AT client, which splits the UART output as a firmware would. Five
servers, three plain TCP and two TLS (``AT+CIPSTART="SSL"``, chains checked in auth mode 2
against the lab CA uploaded with AT+CIPSSLCERT), each stream a deterministic sequence of
256-byte records to their link. A record starts with a magic, the link and its index, so
every received byte can be placed in its stream: bytes that skip ahead make a gap (lost),
bytes placed twice are duplicated, bytes that fill an earlier gap are reordered (``Ledger``).

A link that ends before its share is complete must be reported by the modem (``<id>,CLOSED``);
only the bytes the server had sent past the host's count at that report are excused. The
host then reopens the link and tells the server where its count stands (8 bytes, big-endian,
the first thing sent on every link), and the server resumes from there.

Faults (``atmodem.faults``, from a seeded RNG): before a link opens it may get one of
``reset``, ``truncate`` or ``stall`` after a random number of bytes, ``refuse``, or on TLS
``tls_alert``; commands get ``latency``; and a few times a run the access point drops for
some seconds (``drop_ap``), which ends every open link. Stalls and latency must lose nothing;
everything else must end in the link's CLOSED, after which the host rejoins if it has to
(AT+CIPSTATUS says STATUS:5) and reopens.

Memory: tracemalloc (Python objects of this whole process: modem, host and servers) and RSS,
sampled 200 times over the run; the growth per MB is the least-squares slope after the warm-up
(the first ``WARM_UP`` of the run). Flat means under ``FLAT_BYTES_PER_MB``: a modem that kept
even 0.1 % of what passed through it, or one small object per +IPD block, exceeds it.
"""

from __future__ import annotations

import argparse
import random
import socket
import ssl
import struct
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from atmodem.faults import Fault  # noqa: E402
from atmodem.lab import LabPki, SntpServer, TcpServer, server_context  # noqa: E402
from atmodem.world import AccessPoint, World  # noqa: E402
from host import Host  # noqa: E402
from support import Harness  # noqa: E402

MB = 1024 * 1024
RECORD = 256
MAGIC = b"\xa5\x5a"
HEADER = len(MAGIC) + 1 + 5          # magic, link, record index (40 bits)
VERIFY = 32                           # bytes that must match before a header is believed
MIN_RUN = 8                           # a continuation shorter than this (and not all there is) is no proof
READ = 2048                           # AT+CIPRECVDATA's limit
SERVER_CHUNK = 16384
WARM_UP = 0.2
SAMPLES = 200
FLAT_BYTES_PER_MB = 1024
# Payload that a careless parser would take for the modem's own output.
TRAPS = (b"\r\n+IPD,0,5:", b"0,CLOSED\r\n", b"\r\nOK\r\n", b"+CIPRECVDATA,2048:", b"\r\nERROR\r\n", b"SEND OK")
LINKS = (("TCP", 0), ("SSL", 1), ("TCP", 2), ("SSL", 3), ("TCP", 4))
HOST_NAME = "soak.test"
SSID, PASSWORD = "soak-net", "soak-pass"
LINK_FAULT_CHANCE = 0.6
LATENCY_CHANCE = 0.02            # per command the loop sends
AP_DROPS = 2                     # per run
ENDING = ("reset", "truncate", "drop_ap")   # faults that may end an open link
NETWORK_WIDE = ("drop_ap",)
UNEXPLAINED = "unexplained"
LATENCY_COMMANDS = ("+CIPSTART", "+CIPSEND", "+CIPRECVDATA", "+CIPRECVLEN")


class Stream:
    """The bytes one link's server sends: record k is a header and 248 bytes of a seeded pool."""

    POOL = 65536

    def __init__(self, link: int, seed: int):
        self.link = link
        self.prefix = MAGIC + bytes([link])
        pool = bytearray(random.Random(seed * 31 + link).randbytes(self.POOL + RECORD))
        for index, trap in enumerate(TRAPS):
            spot = 1000 + index * 9973
            pool[spot:spot + len(trap)] = trap
        self.pool = bytes(pool)

    def record(self, index: int) -> bytes:
        start = index * 97 % self.POOL
        return self.prefix + index.to_bytes(5, "big") + self.pool[start:start + RECORD - HEADER]

    def read(self, offset: int, size: int) -> bytes:
        first, last = offset // RECORD, (offset + size - 1) // RECORD
        records = b"".join(self.record(index) for index in range(first, last + 1))
        skip = offset - first * RECORD
        return records[skip:skip + size]


def matching_prefix(data: bytes, expected: bytes) -> int:
    """How many leading bytes of ``data`` equal ``expected``'s."""
    size = min(len(data), len(expected))
    if data[:size] == expected[:size]:
        return size
    low, high = 0, size   # data[:low] matches, data[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if data[:middle] == expected[:middle]:
            low = middle
        else:
            high = middle
    return low


class Ledger:
    """Places every byte one link delivers in its stream and counts what is wrong.

    ``position`` is the stream offset the next byte should have (the host's count of bytes
    in order). ``missing`` holds the ranges skipped over: lost, unless they turn up later
    (then reordered); a byte for a position already held is duplicated; bytes that fit no
    position are garbled.
    """

    def __init__(self, stream: Stream):
        self.stream = stream
        self.position = 0
        self.pending = bytearray()
        self.missing: list[list[int]] = []
        self.duplicated = self.reordered = self.garbled = 0

    @property
    def lost(self) -> int:
        return sum(end - start for start, end in self.missing)

    def feed(self, data: bytes) -> None:
        self.pending += data
        self._settle(final=False)

    def finish(self) -> None:
        """The link's last byte is in: nothing more will complete what is pending."""
        self._settle(final=True)

    def _settle(self, final: bool) -> None:
        while self.pending:
            run = matching_prefix(self.pending, self.stream.read(self.position, len(self.pending)))
            if run == len(self.pending) or run >= MIN_RUN:
                self._place(self.position, run)
                continue
            found = self._header()
            if found is None:
                if not final and len(self.pending) < RECORD + HEADER:
                    return  # the next header is still on its way
                cut, index = (len(self.pending) if final else len(self.pending) - HEADER + 1), None
            else:
                cut, index = found
            head = bytes(self.pending[:cut])
            run = cut if head == self.stream.read(self.position, cut) else 0   # shorter runs prove nothing
            tail = 0
            if index is not None and cut > run:
                # the end of the record before the header, if that is what these bytes are
                before = self.stream.read(index * RECORD - (cut - run), cut - run)
                tail = matching_prefix(head[run:][::-1], before[::-1])
            self.garbled += cut - run - tail
            self._place(self.position, run, consume=False)
            if tail:
                self._place(index * RECORD - tail, tail, consume=False)
            del self.pending[:cut]
            if index is not None:
                start = index * RECORD
                self._place(start, matching_prefix(self.pending, self.stream.read(start, len(self.pending))))

    def _header(self) -> Optional[tuple[int, int]]:
        """The first believable record header in ``pending``: (where, record index)."""
        at = 0
        while (at := self.pending.find(self.stream.prefix, at)) >= 0:
            if len(self.pending) - at < HEADER:
                return None
            index = int.from_bytes(self.pending[at + 3:at + HEADER], "big")
            check = bytes(self.pending[at:at + VERIFY])
            if check == self.stream.read(index * RECORD, len(check)):
                return at, index
            at += 1
        return None

    def _place(self, start: int, size: int, consume: bool = True) -> None:
        if consume:
            del self.pending[:size]
        end = start + size
        if start > self.position:
            self.missing.append([self.position, start])
        overlap = max(0, min(end, self.position) - start)
        if overlap:
            refilled = self._refill(start, min(end, self.position))
            self.reordered += refilled
            self.duplicated += overlap - refilled
        self.position = max(self.position, end)

    def _refill(self, start: int, end: int) -> int:
        """Take [start, end) out of the gaps; return how many of its bytes were in one."""
        filled, kept = 0, []
        for low, high in self.missing:
            a, b = max(low, start), min(high, end)
            if a >= b:
                kept.append([low, high])
                continue
            filled += b - a
            kept += [r for r in ([low, a], [b, high]) if r[0] < r[1]]
        self.missing = kept
        return filled


class StreamServer(TcpServer):
    """Serves one link's stream: each connection names its start offset (8 bytes), then gets
    the stream from there to ``size`` and an orderly close. ``sent`` records, per connection,
    where it started and how far the socket took bytes."""

    timeout = 60.0

    def __init__(self, stream: Stream, size: int, context: Optional[ssl.SSLContext] = None):
        self.stream = stream
        self.size = size
        self.sent: list[list[int]] = []
        super().__init__(context)

    def handle(self, peer: socket.socket) -> None:
        # An OSError (the link was reset or cut) ends the connection; the host reopens it.
        request = b""
        while len(request) < 8 and (chunk := peer.recv(8 - len(request))):
            request += chunk
        if len(request) < 8:
            return
        offset = struct.unpack(">Q", request)[0]
        progress = [offset, offset]
        self.sent.append(progress)
        while progress[1] < self.size:
            data = self.stream.read(progress[1], min(SERVER_CHUNK, self.size - progress[1]))
            peer.sendall(data)
            progress[1] += len(data)
        if isinstance(peer, ssl.SSLSocket):
            peer = peer.unwrap()
        peer.shutdown(socket.SHUT_WR)
        while peer.recv(4096):
            pass


@dataclass
class Failure:
    link: int
    at: int              # the host's count when the modem reported CLOSED
    sent: int            # how far the server had sent on that connection
    cause: str

    @property
    def excused(self) -> tuple[int, int]:
        return self.at, max(self.at, self.sent)


@dataclass
class Link:
    index: int
    kind: str
    server: StreamServer
    ledger: Ledger
    share: int
    open: bool = False
    done: bool = False
    after_close: int = 0      # bytes delivered while the link stood reported closed
    fault: Optional[Fault] = None   # the network fault armed for its current connection
    since: int = 0                  # the number of the first firing of the world's faults after that connection opened


@dataclass
class Memory:
    samples: list[tuple[float, int, int]] = field(default_factory=list)   # (MB delivered, traced, RSS)

    def sample(self, megabytes: float) -> None:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * PAGE
        self.samples.append((megabytes, tracemalloc.get_traced_memory()[0], rss))

    def slope(self, column: int) -> float:
        """Bytes per MB after the warm-up (least squares)."""
        total = self.samples[-1][0]
        points = [(s[0], s[column]) for s in self.samples if s[0] >= total * WARM_UP]
        if len(points) < 2:
            return 0.0
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0

    def at(self, fraction: float) -> tuple[float, int, int]:
        return self.samples[min(len(self.samples) - 1, int(fraction * (len(self.samples) - 1)))]


PAGE = 4096


@dataclass
class Result:
    mode: str
    megabytes: float
    seconds: float
    links: list[Link]
    failures: list[Failure]
    memory: Memory
    fired: dict[str, int]     # fault kind -> how often the modem's world applied it

    @property
    def lost(self) -> int:
        return sum(link.ledger.lost + link.share - link.ledger.position for link in self.links)

    @property
    def duplicated(self) -> int:
        return sum(link.ledger.duplicated for link in self.links)

    @property
    def reordered(self) -> int:
        return sum(link.ledger.reordered for link in self.links)

    @property
    def garbled(self) -> int:
        return sum(link.ledger.garbled + link.after_close for link in self.links)

    @property
    def unexplained(self) -> int:
        return sum(failure.cause == UNEXPLAINED for failure in self.failures)

    @property
    def flat(self) -> bool:
        return self.memory.slope(1) < FLAT_BYTES_PER_MB

    def report(self) -> str:
        lines = [f"soak, {self.mode} receive mode: {self.megabytes:.1f} MB through {len(self.links)} links "
                 f"in {self.seconds:.1f} s ({self.megabytes / self.seconds:.2f} MB/s)"]
        for link in self.links:
            ledger = link.ledger
            lines.append(f"  link {link.index} {link.kind}: {ledger.position:>10} of {link.share} bytes, "
                         f"lost {ledger.lost + link.share - ledger.position}, duplicated {ledger.duplicated}, "
                         f"reordered {ledger.reordered}, garbled {ledger.garbled}, after CLOSED {link.after_close}, "
                         f"connections {len(link.server.sent)}")
        lines.append(f"  lost {self.lost}, duplicated {self.duplicated}, reordered {self.reordered}, "
                     f"garbled {self.garbled} bytes")
        lines.append("  faults fired: " + (", ".join(f"{kind} {count}" for kind, count in sorted(self.fired.items()))
                                          or "none"))
        lines.append(f"  failures reported by the modem: {len(self.failures)} ({self.unexplained} without a fault to explain them)")
        for failure in self.failures:
            low, high = failure.excused
            lines.append(f"    link {failure.link} {failure.cause}: CLOSED at byte {failure.at}, "
                         f"excused [{low}, {high}) = {high - low} bytes, resumed at {failure.at}")
        for label, fraction in (("start", WARM_UP), ("middle", 0.5), ("end", 1.0)):
            megabytes, traced, rss = self.memory.at(fraction)
            lines.append(f"  memory at {label:<6} ({megabytes:6.1f} MB): traced {traced / MB:7.2f} MB, RSS {rss / MB:7.1f} MB")
        lines.append(f"  growth after warm-up: traced {self.memory.slope(1):+.0f} B/MB, RSS {self.memory.slope(2):+.0f} B/MB "
                     f"(flat: under {FLAT_BYTES_PER_MB} B/MB traced): {'flat' if self.flat else 'GROWS'}")
        return "\n".join(lines)


class Soak:
    """Five links through one modem until every share has arrived."""

    def __init__(self, megabytes: float, passive: bool, seed: int = 1, faults: bool = True,
                 workdir: Optional[Path] = None):
        self.total = int(megabytes * MB)
        self.passive = passive
        self.rng = random.Random(seed) if faults else None
        self.ap_drops = sorted(self.rng.uniform(0.1, 0.9) * self.total for _ in range(AP_DROPS)) if faults else []
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="atmodem-soak-"))
        self.failures: list[Failure] = []
        self.latency: Optional[Fault] = None
        self.memory = Memory()
        self.sntp = SntpServer()
        pki = LabPki(self.workdir / "pki")
        self.ca = pki.root.pem
        context = server_context(pki.server(HOST_NAME), self.workdir)
        share = self.total // len(LINKS)
        self.links = []
        for kind, index in LINKS:
            stream = Stream(index, seed)
            server = StreamServer(stream, share, context if kind == "SSL" else None)
            self.links.append(Link(index, kind, server, Ledger(stream), share))
        world = World(access_points=[AccessPoint(SSID, PASSWORD)], hosts={HOST_NAME: "127.0.0.1", "pool.ntp.org": "127.0.0.1"},
                      sntp_port=self.sntp.port)
        self.h = Harness(world=world)
        self.host = Host(self.h, mux=True, on_data=self._data, on_closed=self._closed)

    def _data(self, index: int, data: bytes) -> None:
        link = self.links[index]
        if not link.open:
            link.after_close += len(data)
        link.ledger.feed(data)

    def _closed(self, index: int) -> None:
        link = self.links[index]
        link.open = False
        if link.ledger.position >= link.share:
            link.ledger.finish()
            link.done = True
            return
        sent = link.server.sent[-1][1] if link.server.sent else 0
        self.failures.append(Failure(index, link.ledger.position, sent, self._cause(link)))

    def _cause(self, link: Link) -> str:
        """The faults that fired on this connection or on the whole network since it opened;
        stalls and latency end nothing, so a link they alone preceded ended unexplained."""
        kinds = [firing.fault.kind for firing in self.h.world.faults.since(link.since)
                 if firing.fault.kind in ENDING and (firing.fault.kind in NETWORK_WIDE
                                                     or firing.details.get("remote", (0, 0))[1] == link.server.port)]
        return "+".join(dict.fromkeys(kinds)) or UNEXPLAINED

    def prepare(self) -> None:
        host = self.host
        host.command(b"ATE0")
        self.join()
        self.h.pump(lambda: self.h.modem.runtime["sntp"].now() > 57600)   # chains are checked at this clock
        host.command(b"AT+CIPMUX=1")
        host.command(b"AT+CIPRECVMODE=%d" % self.passive)
        host.command(b"AT+CIPSSLSIZE=4096")
        host.command(b"AT+CIPSSLCERT", b"\r\nOK\r\n>")
        self.h.modem.feed(self.ca)
        host.expect(b"\r\nOK\r\n")
        host.command(b"AT+CIPSSLAUTH=2")

    def join(self) -> None:
        """AT+CWJAP until it succeeds (the access point may be away for a while)."""
        while True:
            self.h.modem.feed(b'AT+CWJAP="%s","%s"\r\n' % (SSID.encode(), PASSWORD.encode()))
            if self.host.expect(b"\r\nOK\r\n", b"FAIL\r\n").endswith(b"OK\r\n"):
                return

    def open(self, link: Link) -> None:
        self._maybe_fault(link)
        self._maybe_latency()
        self.h.modem.feed(b'AT+CIPSTART=%d,"%s","%s",%d\r\n' % (
            link.index, link.kind.encode(), HOST_NAME.encode(), link.server.port))
        reply = self.host.expect(b"CONNECT\r\n\r\nOK\r\n", b"ERROR\r\n")
        if not reply.endswith(b"CONNECT\r\n\r\nOK\r\n"):
            # refused, alert, or no network: a firmware asks why before it tries again
            if self.host.command(b"AT+CIPSTATUS").startswith(b"STATUS:5"):
                self.join()
            return
        link.open = True
        self._maybe_latency()
        if not self.host.send(link.index, struct.pack(">Q", link.ledger.position)).endswith(b"SEND OK\r\n"):
            return  # ended already; its CLOSED comes (or came) and the link is opened again

    def _maybe_fault(self, link: Link) -> None:
        """Perhaps give the connection about to open a network fault of its own."""
        faults = self.h.world.faults
        if link.fault is not None:
            faults.remove(link.fault)   # the last connection's, if it never fired
            link.fault = None
        link.since = faults.total
        if self.rng is None or self.rng.random() > LINK_FAULT_CHANCE:
            return
        kinds = ("reset", "truncate", "stall", "refuse") + (("tls_alert",) if link.kind == "SSL" else ())
        kind = self.rng.choice(kinds)
        options = {"port": link.server.port, "times": 1}
        if kind in ("reset", "truncate", "stall"):
            span = max(link.share // 4, 64 * 1024)
            options["after_bytes"] = self.rng.randrange(1, span)
        if kind == "stall":
            options["seconds"] = round(self.rng.uniform(0.1, 3.0), 2)
        link.fault = faults.add(Fault(kind, **options))

    def _maybe_latency(self) -> None:
        """One latency fault at a time, gone from the registry once spent (so it cannot grow)."""
        faults = self.h.world.faults
        if self.latency is not None and not self.latency.spent:
            return
        if self.latency is not None:
            faults.remove(self.latency)
            self.latency = None
        if self.rng is not None and self.rng.random() < LATENCY_CHANCE:
            self.latency = faults.add(Fault("latency", command=self.rng.choice(LATENCY_COMMANDS),
                                            seconds=round(self.rng.uniform(0.01, 1.0), 3), times=1))

    def _maybe_drop_ap(self) -> None:
        if self.ap_drops and self.delivered() >= self.ap_drops[0]:
            self.ap_drops.pop(0)
            self.h.world.faults.add(Fault("drop_ap", ssid=SSID, seconds=round(self.rng.uniform(1.0, 8.0), 1),
                                          times=1))

    def delivered(self) -> int:
        return sum(link.ledger.position for link in self.links)

    def run(self) -> Result:
        tracemalloc.start()
        self.prepare()
        start = time.perf_counter()
        next_sample, every = 0, max(self.total // SAMPLES, 1)
        while not all(link.done for link in self.links):
            for link in self.links:
                if not link.open and not link.done:
                    self.open(link)
            self._maybe_drop_ap()
            if self.passive:
                self._read()
            else:
                self.host.wait(0.001)
            if self.delivered() >= next_sample:
                self.memory.sample(self.delivered() / MB)
                next_sample += every
        seconds = time.perf_counter() - start
        tracemalloc.stop()
        return Result("passive" if self.passive else "active", self.delivered() / MB, seconds,
                      self.links, self.failures, self.memory, dict(self.h.world.faults.counts))

    def _read(self) -> None:
        self._maybe_latency()
        waiting = self.host.lengths()
        if not any(waiting):
            self.host.wait(self.h.world.latency)
            return
        for link in self.links:
            if waiting[link.index]:
                self._maybe_latency()
                self.host.read(link.index, min(READ, waiting[link.index]))

    def close(self) -> None:
        self.h.close()
        for link in self.links:
            link.server.close()
        self.sntp.close()


def soak(megabytes: float, passive: bool, seed: int = 1, faults: bool = True) -> Result:
    run = Soak(megabytes, passive, seed, faults)
    try:
        return run.run()
    finally:
        run.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--mode", choices=("active", "passive", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-faults", dest="faults", action="store_false", help="a clean run")
    options = parser.parse_args()
    modes = {"active": (False,), "passive": (True,), "both": (False, True)}[options.mode]
    clean = True
    for passive in modes:
        result = soak(options.megabytes, passive, options.seed, options.faults)
        print(result.report(), flush=True)
        clean &= not (result.lost or result.duplicated or result.reordered or result.garbled
                      or result.unexplained) and result.flat
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()

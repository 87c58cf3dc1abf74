"""A modem on a manual clock, for byte-exact tests in simulated time.

Its links are real sockets on a ``SelectorReactor`` that the harness polls
itself: socket events are handled first, and simulated time jumps to the next
timer only when no I/O is ready, so a test reads like a conversation and
still runs in milliseconds.
"""

from __future__ import annotations

import socket
import time

from atmodem.clock import ManualClock
from atmodem.engine import Mode, Modem, Timing
from atmodem.net import Network, SelectorReactor
from atmodem.plugins import PluginSet, get_profile
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings
from atmodem.world import DEFAULT_PASSWORD, DEFAULT_SSID, World

# One byte at 115200 Bd, 8N1: how far apart bytes sent "one at a time" arrive.
BYTE_TIME = 10 / 115200
# How far simulated time may jump while waiting for an answer: past any join or scan,
# short of AT+CIPSTO's 180 s, which tests reach on purpose with advance().
HORIZON = 60.0
LONG_JUMP = 0.5


def grace(jump: float) -> float:
    """Real seconds to let peers in other threads answer before simulated time jumps ``jump``.

    Long jumps are where a late answer would turn into a timeout (SNTP, connect, send).
    """
    return min(0.05, jump / 100) if jump > LONG_JUMP else 0.0


def run_until(reactor: SelectorReactor, clock: ManualClock, until, timeout: float = 10.0, horizon: float = HORIZON,
              describe=lambda: "") -> None:
    """Handle the reactor's socket events and the clock's timers until ``until()`` holds.

    Socket events come first; simulated time jumps to the next timer only when no I/O is ready,
    and no further than ``horizon`` from now. ``TimeoutError`` (saying ``describe()``) when
    nothing is left to do below the horizon ``timeout`` real seconds after the call.
    Modems sharing the clock and reactor run side by side.
    """
    deadline = time.monotonic() + timeout
    limit = clock.now() + horizon
    while not until():
        if reactor.poll(0):
            continue
        due = clock.next_due()
        if due is not None and due <= limit:
            # Before a long jump, real peers (threads, other processes) get a moment to answer.
            wait = grace(due - clock.now())
            if wait and reactor.poll(wait):
                continue
            clock.advance(due - clock.now())
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(describe())
        reactor.poll(0.002)


JOIN = b'AT+CWJAP="%s","%s"\r\n' % (DEFAULT_SSID.encode(), DEFAULT_PASSWORD.encode())


class Harness:
    def __init__(self, profile=DEFAULT_PROFILE, *, state_dir=None, extra=(), disabled=(), world=None,
                 ready=True, **modem_options):
        self.clock = ManualClock()
        self.out = bytearray()
        self.world = world if world is not None else World.default()
        self.reactor = SelectorReactor()
        self.network = Network(self.reactor, self.world)
        self.plugins = PluginSet(get_profile(profile), disabled=disabled, extra=extra)
        self.modem = Modem(self.plugins, self.clock, Settings(Flash(state_dir)), sink=self.out.extend,
                           world=self.world, network=self.network, **modem_options)
        self.modem.power_on()
        if ready:
            self.pump(lambda: b"ready\r\n" in self.out)
            assert self.take() == b"\r\nready\r\n"

    def close(self) -> None:
        self.modem.power_off()
        self.reactor.close()

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    @property
    def idle(self) -> bool:
        """The modem reads the UART: no command executing, not BUSY, not booting."""
        return self.modem.mode in (Mode.COMMAND, Mode.RAW)

    def pump(self, until, timeout: float = 10.0, horizon: float = HORIZON) -> None:
        """Handle socket events and timers until ``until()`` holds."""
        run_until(self.reactor, self.clock, until, timeout, horizon,
                  lambda: f"modem still {self.modem.mode.value}; it said {bytes(self.out)!r}")

    def settle(self) -> None:
        self.pump(lambda: self.idle)
        self.reactor.poll(0)
        self.clock.advance(0)

    def send(self, data: bytes) -> bytes:
        """Send a burst, let the modem answer everything it started, return what it said."""
        self.modem.feed(data)
        self.settle()
        return self.take()

    def type(self, data: bytes, gap: float = BYTE_TIME) -> bytes:
        """Send one byte at a time, ``gap`` seconds apart, then let the modem finish."""
        for i in range(len(data)):
            self.modem.feed(data[i:i + 1])
            self.clock.advance(gap)
        self.settle()
        return self.take()

    def wait_for(self, pattern: bytes, timeout: float = 10.0) -> bytes:
        """Run until the output contains ``pattern``; return (and take) everything up to its end."""
        self.pump(lambda: pattern in self.out, timeout)
        end = self.out.index(pattern) + len(pattern)
        data = bytes(self.out[:end])
        del self.out[:end]
        return data

    def advance(self, seconds: float) -> bytes:
        """Let simulated time pass (handling I/O as it goes); return what the modem said."""
        target = self.clock.now() + seconds

        def no_timer_before_target() -> bool:
            self.reactor.poll(0)  # what arrives now may set a timer inside the span
            due = self.clock.next_due()
            return due is None or due > target

        self.pump(no_timer_before_target, horizon=seconds)
        self.clock.advance(target - self.clock.now())
        return self.take()

    def join(self) -> None:
        """ATE0 and join the default world's AP."""
        assert self.send(b"ATE0\r\n").endswith(b"OK\r\n")
        assert self.send(JOIN) == b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n"


# The longest raw block the modem can be in: a certificate upload ends only at 4096 bytes
# (spec §8.4); a CIPSEND takes at most 2048.
LONGEST_RAW_BLOCK = 4096


def recovers(h: Harness) -> bool:
    """After a storm: finish what runs, fill any raw block, end a partial line; AT must answer OK."""
    h.settle()
    if h.modem.mode is Mode.RAW:
        h.send(b"\x00" * LONGEST_RAW_BLOCK)
    h.send(b"\r\n")
    h.take()
    return h.send(b"AT\r\n").endswith(b"\r\nOK\r\n") and h.modem.mode is Mode.COMMAND


def instant(**options) -> Harness:
    return Harness(timing=Timing.instant(), **options)


class Peer:
    """A TCP server on 127.0.0.1 that a test drives by hand (accept, send, read, close)."""

    def __init__(self, address: str = "127.0.0.1"):
        self.server = socket.create_server((address, 0))
        self.port = self.server.getsockname()[1]
        self.conn = None

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(timeout)
        return self.conn

    def recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()

"""A modem with its transport, world and transcript, for programs that are not asyncio code.

``atmodem serve`` runs a ``Station`` on its own loop. ``ModemSession`` runs one on a
private loop thread, so a launcher or a Robot Framework keyword library can start a
modem, edit its world and read its transcript from ordinary synchronous code:
every call into the modem or the world is carried to the loop thread (the engine,
the world and the sockets belong to that thread alone).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from atmodem.clock import LoopClock
from atmodem.engine import Modem
from atmodem.net import Network
from atmodem.plugins import plugin_set
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings
from atmodem.trace import TraceWriter
from atmodem.transports import Pty, SerialPort, TcpConnect, TcpListen, Transport
from atmodem.world import World


@dataclass(frozen=True)
class Chunk:
    time: float        # wall clock, Unix seconds
    clock: float       # the modem's clock
    direction: str     # "in": host to modem; "out": modem to host
    data: bytes


class Transcript:
    """Every UART byte both ways, as the modem saw it; thread-safe to read while it grows."""

    def __init__(self):
        self.chunks: list[Chunk] = []
        self._lock = threading.Lock()

    def __call__(self, direction: str, data: bytes, clock: float) -> None:
        with self._lock:
            self.chunks.append(Chunk(time.time(), clock, direction, data))

    def stream(self, direction: str) -> bytes:
        with self._lock:
            return b"".join(c.data for c in self.chunks if c.direction == direction)

    def lines(self, direction: str) -> list[str]:
        """One direction's bytes cut into lines at LF, CR and LF stripped (data blocks included)."""
        text = self.stream(direction).decode("latin-1")
        return [line.rstrip("\r") for line in text.split("\n") if line.strip("\r")]

    def commands(self) -> list[str]:
        """The AT command lines the host sent."""
        return [line for line in self.lines("in") if line[:2].upper() == "AT"]

    def render(self, limit: int = 0, width: int = 72) -> str:
        """A short readable transcript: one row per line of text, stamped with when the line began."""
        with self._lock:
            chunks = list(self.chunks)
        start = chunks[0].time if chunks else 0.0
        rows: list[tuple[float, str, str]] = []
        pending: dict[str, tuple[float, str]] = {}
        for chunk in chunks:
            began, text = pending.get(chunk.direction, (chunk.time, ""))
            *complete, rest = (text + chunk.data.decode("latin-1")).split("\n")
            for line in complete:
                rows.append((began, chunk.direction, line.rstrip("\r")))
                began = chunk.time
            if rest:
                pending[chunk.direction] = (began, rest)
            else:
                pending.pop(chunk.direction, None)
        rows += [(began, direction, rest) for direction, (began, rest) in pending.items()]
        rows = sorted((row for row in rows if row[2].strip("\r")), key=lambda row: row[0])
        shown = [_row(began - start, direction, line, width) for began, direction, line in rows]
        return "\n".join(shown[-limit:] if limit else shown)


def _row(offset: float, direction: str, line: str, width: int) -> str:
    arrow = "host>" if direction == "in" else "modem<"
    shown = "".join(ch if " " <= ch <= "~" else "." for ch in line)
    if len(shown) > width:
        shown = f"{shown[:width - 12]}... ({len(line)} bytes)"
    return f"{offset:8.3f}  {arrow:<6} {shown}"


class Station:
    """A powered modem on one transport, on the running asyncio loop."""

    def __init__(self, transport_spec: tuple, *, world: Optional[World] = None, profile: str = DEFAULT_PROFILE,
                 state_dir: Path, disabled: frozenset = frozenset(), trace: Optional[Path] = None,
                 pace: bool = False):
        loop = asyncio.get_running_loop()
        self.world = world if world is not None else World.default()
        self.plugins = plugin_set(profile, disabled)
        self.modem = Modem(self.plugins, LoopClock(loop), Settings(Flash(state_dir)), world=self.world,
                           network=Network(loop, self.world))
        self.transcript = Transcript()
        self.events: Counter = Counter()
        self.modem.taps.append(self.transcript)
        self.modem.observers.append(lambda kind, details: self.events.update([kind]))
        self.trace = TraceWriter(trace) if trace else None
        if self.trace:
            self.modem.taps.append(self.trace)
            self.modem.observers.append(lambda kind, details: self.trace.event(kind, details, self.modem.clock.now()))
        self.transport = make_transport(self.modem, *transport_spec, pace=pace)

    async def start(self) -> None:
        await self.transport.start()
        self.modem.power_on()

    async def stop(self) -> None:
        self.modem.power_off()
        await self.transport.stop()
        if self.trace:
            self.trace.close()


def make_transport(modem: Modem, kind: str, *where, pace: bool = False) -> Transport:
    """``("listen", host, port)``, ``("connect", host, port)``, ``("pty", link or None)``, ``("serial", url)``.

    With ``pace`` the modem's output leaves at its UART's baud rate on the loop's clock.
    """
    makers: dict[str, Callable[..., Transport]] = {
        "listen": TcpListen, "connect": TcpConnect, "pty": Pty, "serial": SerialPort}
    if kind not in makers:
        raise ValueError(f"unknown transport {kind!r}: one of {', '.join(makers)}")
    return makers[kind](modem, *where, pace=pace)


class ModemSession:
    """A ``Station`` on a private loop thread. Start it, use it, stop it; safe to stop twice."""

    def __init__(self, transport_spec: tuple = ("listen", "127.0.0.1", 0), **station_options):
        self._spec = transport_spec
        self._options = station_options
        self._loop = asyncio.new_event_loop()
        self._thread: Optional[threading.Thread] = None
        self.station: Optional[Station] = None

    def start(self) -> "ModemSession":
        self._thread = threading.Thread(target=self._loop.run_forever, name="atmodem-loop", daemon=True)
        self._thread.start()

        async def begin():
            self.station = Station(self._spec, **self._options)
            await self.station.start()

        try:
            asyncio.run_coroutine_threadsafe(begin(), self._loop).result(timeout=30)
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            if self.station is not None:
                asyncio.run_coroutine_threadsafe(self.station.stop(), self._loop).result(timeout=30)
        finally:
            self._halt()

    def _halt(self) -> None:
        thread, self._thread = self._thread, None
        self._loop.call_soon_threadsafe(self._loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():  # a loop still running cannot be closed; the daemon thread dies with us
            self._loop.close()

    def call(self, function: Callable, *args, timeout: float = 30):
        """Run ``function(*args)`` on the loop thread and return what it returns (or raise what it raises)."""
        if threading.current_thread() is self._thread:  # already there (a world listener, an observer)
            return function(*args)
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=timeout)

    # ------------------------------------------------------------- shortcuts

    @property
    def modem(self) -> Modem:
        return self.station.modem

    @property
    def world(self) -> World:
        return self.station.world

    @property
    def transcript(self) -> Transcript:
        return self.station.transcript

    @property
    def endpoint(self) -> str:
        return self.station.transport.endpoint

    @property
    def port(self) -> int:
        """The TCP port of a ``listen`` or ``connect`` transport."""
        return self.station.transport.port

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait until the modem's output (as Latin-1 text) matches ``pattern``; returns the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.transcript.stream("out").decode("latin-1"))
            if found:
                return found.group(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the modem did not send {pattern!r} within {timeout} s")
            time.sleep(0.02)

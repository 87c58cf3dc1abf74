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
from pathlib import Path
from typing import Callable, Optional

from atmodem.capture import PacketCapture
from atmodem.clock import LoopClock
from atmodem.engine import Modem
from atmodem.net import Network
from atmodem.plugins import plugin_set
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings
from atmodem.trace import TraceWriter
from atmodem.transcript import Transcript, follow
from atmodem.transports import Pty, SerialPort, TcpConnect, TcpListen, Transport
from atmodem.world import World


class Station:
    """A powered modem on one transport, on the running asyncio loop."""

    def __init__(self, transport_spec: tuple, *, world: Optional[World] = None, profile: str = DEFAULT_PROFILE,
                 state_dir: Path, disabled: frozenset = frozenset(), trace: Optional[Path] = None,
                 pcap: Optional[Path] = None, keylog: Optional[Path] = None, pace: bool = False,
                 transcript: bool = True):
        """``trace``: a JSON-lines file of the session (``atmodem.trace``); ``pcap``: a pcapng
        capture of the modem's network side; ``keylog``: the TLS links' secrets for decrypting it.
        ``transcript``: keep the session in memory (``self.transcript``) for whoever asks later;
        ``atmodem serve``, which may run for days and never asks, does not."""
        loop = asyncio.get_running_loop()
        self.world = world if world is not None else World.default()
        self.plugins = plugin_set(profile, disabled)
        network = Network(loop, self.world)
        if keylog is not None:
            open(keylog, "a").close()  # a path TLS could not write would fail every dial: fail now
        network.keylog = keylog
        self.modem = Modem(self.plugins, LoopClock(loop), Settings(Flash(state_dir)), world=self.world,
                           network=network)
        self.transcript = Transcript() if transcript else None
        self.events: Counter = Counter()
        if self.transcript is not None:
            follow(self.modem, self.transcript)
        self.modem.observers.append(lambda kind, details: self.events.update([kind]))
        self.trace = TraceWriter(trace) if trace else None
        if self.trace:
            follow(self.modem, self.trace)
        self.capture = PacketCapture(pcap, self.modem) if pcap else None
        if self.capture:
            self.modem.observers.append(self.capture)
        self.transport = make_transport(self.modem, *transport_spec, pace=pace)

    async def start(self) -> None:
        await self.transport.start()
        self.modem.power_on()

    async def stop(self) -> None:
        self.modem.power_off()
        await self.transport.stop()
        for recorder in (self.trace, self.capture):
            if recorder:
                recorder.close()


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

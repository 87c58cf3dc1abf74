"""A modem inside an emulator's time domain: its clock, its network and its UART on virtual time.

An emulator such as Renode runs the firmware on its own thread and its own (virtual)
clock. A modem that lives there must be touched only on that thread, and only at
virtual instants, or two runs of the same firmware would not see the same bytes at
the same times. This module holds that logic, free of any emulator API:

* ``TimeDomain`` is what the emulator offers: the virtual time, ``schedule`` (run an
  action later, from the emulation thread) and ``post`` (from any thread: run an
  action at the domain's next instant). ``renode.RenodeTimeDomain`` is Renode's;
  ``ManualTimeDomain`` runs on the engine's ``ManualClock``, for tests and for
  driving a modem in virtual time without an emulator.
* ``VirtualClock`` is the engine's clock on a time domain.
* ``TimeDomainReactor`` is the network's reactor: a host thread waits on the sockets,
  and every callback is carried into the time domain, so socket data and SNTP answers
  reach the modem at virtual instants, never from a foreign thread.
* ``LockstepReactor`` polls the sockets on the emulation thread at virtual instants and
  waits for the host's answers, so a run with real servers repeats exactly.
* ``UartAdapter`` joins a modem to an emulated UART, optionally pacing the modem's
  output at its configured baud rate in virtual time.
"""

from __future__ import annotations

import collections
import logging
import select
import selectors
import threading
import time
from typing import Callable, Optional, Protocol

from atmodem.clock import ManualClock
from atmodem.engine import Modem, UartConfig
from atmodem.net import SelectorReactor

log = logging.getLogger(__name__)


class TimeDomain(Protocol):
    def now(self) -> float:
        """Virtual seconds since the emulation started."""

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the emulation thread ``delay`` virtual seconds from now (emulation thread only)."""

    def post(self, action: Callable[[], None]) -> None:
        """From any thread: run ``action`` on the emulation thread at the domain's next instant."""


class OneAtATime:
    """Runs the modem's entry points one at a time, and keeps their failures out of the emulator.

    An emulator may run an action that is already due inside the very call that scheduled it
    (Renode does, for a zero delay scheduled from a CPU callback), so engine code would be
    re-entered halfway through. Here such an action waits until the running one returns. An
    exception is logged and kept in ``error`` (the first one) instead of unwinding into the
    emulator's threads.
    """

    def __init__(self):
        self._running = False
        self._waiting: collections.deque = collections.deque()
        self.error: Optional[BaseException] = None

    def __call__(self, action: Callable[[], None]) -> None:
        self._waiting.append(action)
        if self._running:
            return
        self._running = True
        try:
            while self._waiting:
                try:
                    self._waiting.popleft()()
                except Exception as exc:  # an emulator thread must never see it
                    log.exception("modem action failed inside the emulation")
                    if self.error is None:
                        self.error = exc
        finally:
            self._running = False


class ManualTimeDomain:
    """A time domain on a ``ManualClock``: virtual time moves only when its owner advances it.

    ``post`` may be called from any thread; posted actions run, in order, the next time
    the owner calls ``run_posted`` (or ``advance``), as an emulator runs them at its next
    synchronisation point.
    """

    def __init__(self, clock: Optional[ManualClock] = None):
        self.clock = clock or ManualClock()
        self._posted: collections.deque = collections.deque()
        self._arrived = threading.Condition()

    def now(self) -> float:
        return self.clock.now()

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        self.clock.call_later(delay, action)

    def post(self, action: Callable[[], None]) -> None:
        with self._arrived:
            self._posted.append(action)
            self._arrived.notify_all()

    def run_posted(self, wait: float = 0.0) -> int:
        """Run what other threads posted (waiting up to ``wait`` seconds for the first); how many ran."""
        with self._arrived:
            if not self._posted and wait:
                self._arrived.wait(wait)
            actions, self._posted = list(self._posted), collections.deque()
        for action in actions:
            action()
        return len(actions)

    def advance(self, seconds: float) -> None:
        self.run_posted()
        self.clock.advance(seconds)


class _Scheduled:
    """A pending ``call_later``; emulators cannot take a scheduled action back, so it is disarmed."""

    def __init__(self, callback: Callable, args: tuple):
        self.callback, self.args = callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __call__(self) -> None:
        if not self.cancelled:
            self.callback(*self.args)


class VirtualClock:
    """The engine's ``Clock`` on a time domain."""

    def __init__(self, domain: TimeDomain):
        self.domain = domain

    def now(self) -> float:
        return self.domain.now()

    def call_later(self, delay: float, callback: Callable, *args) -> _Scheduled:
        scheduled = _Scheduled(callback, args)
        self.domain.schedule(max(0.0, delay), scheduled)
        return scheduled


class TimeDomainReactor:
    """The network's reactor for a modem in a time domain.

    Registrations come from the emulation thread; a host thread mirrors them onto a
    selector. When a socket is ready the host thread stops watching it and posts the
    callback into the time domain; once the callback has run there, the socket is
    watched again if it is still wanted. So a callback runs once per readiness, on the
    emulation thread, at a virtual instant.
    """

    def __init__(self, domain: TimeDomain):
        self.domain = domain
        self._host = SelectorReactor()
        # (fd, side) -> (generation, callback, args). A generation per registration: an event
        # for a socket that was closed (and its number reused) since never reaches the new one.
        self._wanted: dict[tuple[int, int], tuple[int, Callable, tuple]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="atmodem-time-domain-io", daemon=True)
        self._thread.start()

    # ------------------------------------------------ the Reactor protocol (emulation thread)

    def add_reader(self, fd, callback: Callable, *args) -> None:
        self._want(fd, 0, (callback, args))

    def remove_reader(self, fd) -> bool:
        return self._want(fd, 0, None)

    def add_writer(self, fd, callback: Callable, *args) -> None:
        self._want(fd, 1, (callback, args))

    def remove_writer(self, fd) -> bool:
        return self._want(fd, 1, None)

    def call_soon_threadsafe(self, callback: Callable, *args) -> None:
        self.domain.post(lambda: callback(*args))

    def close(self) -> None:
        self._closed.set()
        self._host.call_soon_threadsafe(lambda: None)  # wakes the host thread's poll
        self._thread.join(timeout=5)
        self._host.close()

    # ------------------------------------------------------------------------ internals

    def _want(self, fd, side: int, entry) -> bool:
        key = (_fileno(fd), side)
        with self._lock:
            present = key in self._wanted
            if entry is None:
                self._wanted.pop(key, None)
            else:
                self._generation += 1
                self._wanted[key] = (self._generation, *entry)
        self._host.call_soon_threadsafe(self._mirror, key)
        return present

    def _mirror(self, key: tuple[int, int]) -> None:
        """Host thread: watch ``key`` exactly while the emulation side wants it."""
        fd, side = key
        with self._lock:
            entry = self._wanted.get(key)
        try:
            if entry is not None:
                (self._host.add_reader if side == 0 else self._host.add_writer)(fd, self._ready, key, entry[0])
            else:
                (self._host.remove_reader if side == 0 else self._host.remove_writer)(fd)
        except (KeyError, ValueError, OSError):
            pass  # closed meanwhile: its removal is on its way

    def _ready(self, key: tuple[int, int], generation: int) -> None:
        """Host thread: ``key`` is ready. Stop watching until the emulation side has handled it."""
        fd, side = key
        (self._host.remove_reader if side == 0 else self._host.remove_writer)(fd)
        self.domain.post(lambda: self._dispatch(key, generation))

    def _dispatch(self, key: tuple[int, int], generation: int) -> None:
        """Emulation thread: run the callback if the registration is still the one that was ready."""
        with self._lock:
            entry = self._wanted.get(key)
        if entry is None or entry[0] != generation:
            return
        entry[1](*entry[2])
        self._host.call_soon_threadsafe(self._mirror, key)

    def _watch(self) -> None:
        while not self._closed.is_set():
            self._host.poll(0.5)


class LockstepReactor:
    """The network's reactor for runs that must repeat exactly, in virtual time.

    Sockets are polled only at virtual instants, every ``step`` seconds while any is
    registered, on the emulation thread. When the modem has sent something (or started a
    connection), the next poll waits in wall time for the host's answer: until the socket
    is ready (``patience`` seconds at most), then ``quiet`` seconds more for the rest of the
    reply. So a reply that comes in one burst within ``patience`` is handed to the modem at
    the same virtual instant in every run, however fast or slow the host answered. Data a
    server sends unasked, a reply slower than ``patience``, or the part of a reply that
    comes after ``quiet``, arrives at the first poll after it came.
    """

    def __init__(self, domain: TimeDomain, step: float = 0.001, quiet: float = 0.02, patience: float = 5.0):
        self.domain = domain
        self.step, self.quiet, self.patience = step, quiet, patience
        self._selector = selectors.DefaultSelector()
        self._entries: dict[tuple[int, int], tuple[int, Callable, tuple]] = {}
        self._sequence = 0
        self._expecting: set[int] = set()
        self._polling = False
        self._closed = False

    # ------------------------------------------------ the Reactor protocol (emulation thread)

    def add_reader(self, fd, callback: Callable, *args) -> None:
        self._set(_fileno(fd), 0, (callback, args))

    def remove_reader(self, fd) -> bool:
        return self._set(_fileno(fd), 0, None)

    def add_writer(self, fd, callback: Callable, *args) -> None:
        self._set(_fileno(fd), 1, (callback, args))

    def remove_writer(self, fd) -> bool:
        return self._set(_fileno(fd), 1, None)

    def call_soon_threadsafe(self, callback: Callable, *args) -> None:
        self.domain.post(lambda: callback(*args))

    def expect_reply(self, fd: int) -> None:
        if fd in self._registered():  # a socket we do not watch can answer nothing we would see
            self._expecting.add(fd)

    def close(self) -> None:
        """Stop (a poll already scheduled in the emulator still comes, and does nothing)."""
        self._closed = True
        self._entries.clear()
        self._expecting.clear()
        self._selector.close()

    # ------------------------------------------------------------------------ internals

    def _set(self, fd: int, side: int, entry) -> bool:
        present = (fd, side) in self._entries
        if entry is None:
            self._entries.pop((fd, side), None)
        else:
            self._sequence += 1  # dispatch order: registration order, the same in every run
            self._entries[(fd, side)] = (self._sequence, *entry)
        events = (selectors.EVENT_READ if (fd, 0) in self._entries else 0) | \
                 (selectors.EVENT_WRITE if (fd, 1) in self._entries else 0)
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass
        if events:
            self._selector.register(fd, events)
        else:
            self._expecting.discard(fd)
        if self._entries and not self._polling:
            self._polling = True
            self.domain.schedule(self.step, self._poll)
        return present

    def _poll(self) -> None:
        if self._closed:
            return
        waiting = self._expecting and self._expecting & self._registered()  # polls come every virtual ms
        if waiting:
            self._settle(waiting)
        ready = []
        for key, events in self._selector.select(0):
            for side, flag in ((0, selectors.EVENT_READ), (1, selectors.EVENT_WRITE)):
                entry = self._entries.get((key.fd, side))
                if events & flag and entry is not None:
                    ready.append((entry[0], key.fd, side))
        for _, fd, side in sorted(ready):
            entry = self._entries.get((fd, side))
            if entry is not None:  # an earlier callback of this poll may have removed it
                if side == 0 or (fd, 0) not in self._entries:  # the answer: data, or a finished connect
                    self._expecting.discard(fd)
                entry[1](*entry[2])
        self._polling = bool(self._entries)
        if self._polling:
            self.domain.schedule(self.step, self._poll)

    def _registered(self) -> set[int]:
        return {fd for fd, _ in self._entries}

    def _settle(self, waiting: set[int]) -> None:
        """Wait (wall time) for an answer on the sockets the modem expects one from, then for quiet.

        Only those sockets are watched, and only for their answer: data to read, or (while
        connecting, with no reader yet) the end of the connect."""
        watch = select.poll()
        for fd in waiting:
            watch.register(fd, select.POLLIN if (fd, 0) in self._entries else select.POLLOUT)
        if watch.poll(self.patience * 1000):
            time.sleep(self.quiet)
        else:
            self._expecting -= waiting  # a silent peer: stop holding virtual time for it


def _fileno(fd) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


class EmulatedUart(Protocol):
    """What the adapter needs of an emulator's UART (``renode.RenodeUart`` is Renode's)."""

    def on_byte(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(byte)`` for every byte the firmware transmits (on the emulation thread)."""

    def write_byte(self, byte: int) -> None:
        """Put ``byte`` into the firmware's receive path (emulation thread only)."""


def byte_time(config: UartConfig) -> float:
    """Seconds one character takes on the wire: start bit, data bits, parity bit, stop bits."""
    stop_bits = {1: 1.0, 2: 1.5, 3: 2.0}.get(config.stop_bits, 1.0)
    parity = 1 if config.parity == 2 else 0  # only 2 enables parity on the chip (spec §6.1)
    return (1 + config.data_bits + parity + stop_bits) / config.baud


class UartPacer:
    """The chip's UART transmitter: the modem's output leaves at the baud rate of ``AT+UART``.

    Call it with the modem's output (it is a ``modem.sink``); ``deliver`` gets the bytes
    whose last stop bit has gone out by then, on ``clock``: one character per byte time
    at the settings in force when the modem wrote it (so an ``OK`` flushed before a baud
    change still goes out at the old rate). ``slice_time`` groups what falls due within
    it into one delivery: 0 for one byte per tick (virtual time), a few milliseconds on
    the wall clock so a transport makes one write per slice, not one per byte. A tick
    that comes late delivers everything due by then: the wire kept running while the
    host was busy. ``pause()`` holds the line (a receiver that does not keep up, as a full
    TX FIFO holds the chip's firmware); nothing is dropped and nothing overtakes.
    ``when_sent(callback)`` runs ``callback`` once everything written so far has gone out,
    before any later byte is delivered (a host port switching its baud rate in between).
    """

    def __init__(self, modem: Modem, clock, deliver: Callable[[bytes], None], slice_time: float = 0.0):
        self.modem = modem
        self.clock = clock
        self.deliver = deliver
        self.slice_time = slice_time
        self._byte_time = byte_time(modem.uart)
        self._queue: collections.deque = collections.deque()   # [bytearray, byte time], oldest first
        self._written = 0   # bytes the modem has written since the pacer began
        self._sent = 0      # of those, bytes delivered
        self._when_sent: collections.deque = collections.deque()   # (bytes written by then, callback)
        self._line_free = clock.now()   # when the last character handed to the wire has gone out
        self._timer = None
        self._paused = False
        modem.uart_listeners.append(self._reconfigure)

    @property
    def backlog(self) -> int:
        """Bytes written by the modem that have not left the UART yet."""
        return self._written - self._sent

    def __call__(self, data: bytes) -> None:
        if not data:
            return
        self._written += len(data)
        if self._queue and self._queue[-1][1] == self._byte_time:
            self._queue[-1][0].extend(data)
        else:
            if not self._queue:  # an idle line starts the first character now
                self._line_free = max(self._line_free, self.clock.now())
            self._queue.append([bytearray(data), self._byte_time])
        self._schedule()

    def when_sent(self, callback: Callable[[], None]) -> None:
        if self.backlog:
            self._when_sent.append((self._written, callback))
        else:
            callback()

    def pause(self) -> None:
        self._paused = True
        self._cancel()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._line_free = max(self._line_free, self.clock.now())  # the line stood still meanwhile
            self._schedule()

    def close(self) -> None:
        """Stop sending (what is queued is lost, as when the chip powers off)."""
        self._cancel()
        self._queue.clear()
        self._when_sent.clear()
        self._written = self._sent
        if self._reconfigure in self.modem.uart_listeners:
            self.modem.uart_listeners.remove(self._reconfigure)

    def _reconfigure(self, config: UartConfig) -> None:
        self._byte_time = byte_time(config)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._timer is not None or self._paused or not self._queue:
            return
        data, each = self._queue[0]
        count = min(len(data), max(1, int(self.slice_time / each)), self._room())
        due = self._line_free + count * each
        self._timer = self.clock.call_later(due - self.clock.now(), self._send)

    def _room(self) -> int:
        """Bytes the next delivery may hold: it ends where a ``when_sent`` callback is due."""
        return self._when_sent[0][0] - self._sent if self._when_sent else self.backlog

    def _send(self) -> None:
        self._timer = None
        now = self.clock.now()
        room = self._room()
        out = bytearray()
        while self._queue and len(out) < room:
            data, each = self._queue[0]
            # The small allowance keeps float rounding from holding a character one tick too long.
            count = min(len(data), int((now - self._line_free) / each + 1e-6), room - len(out))
            if count <= 0:
                break
            out += data[:count]
            del data[:count]
            self._line_free += count * each
            if data:
                break
            self._queue.popleft()
        if out:
            self._sent += len(out)
            self.deliver(bytes(out))
        while self._when_sent and self._when_sent[0][0] <= self._sent:
            self._when_sent.popleft()[1]()
        self._schedule()


class UartAdapter:
    """A modem on an emulated UART, in virtual time.

    With ``pace`` the modem's output leaves one character per byte time at its current
    ``AT+UART`` settings, as the chip's UART sends it (each byte reaches the firmware when
    its stop bit has gone out), so a firmware meets the timing it would on hardware
    (whether a slow reader then loses bytes is up to the emulated UART: Renode's STM32
    UART queues without bound). Without, each write reaches the UART at once.
    """

    def __init__(self, modem: Modem, uart: EmulatedUart, domain: TimeDomain, pace: bool = False):
        self.modem = modem
        self.uart = uart
        self.domain = domain
        uart.on_byte(self._from_firmware)
        modem.sink = UartPacer(modem, VirtualClock(domain), self._to_firmware) if pace else self._to_firmware

    def _from_firmware(self, byte: int) -> None:
        self.modem.feed(bytes([byte]))

    def _to_firmware(self, data: bytes) -> None:
        for byte in data:
            self.uart.write_byte(byte)

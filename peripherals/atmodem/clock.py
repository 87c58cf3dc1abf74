"""Clocks the engine runs on: every delay in the model goes through one of these.

A clock has ``now()`` (seconds as a float) and ``call_later(delay, callback, *args)``
returning a handle with ``cancel()``. ``ManualClock`` is advanced by tests and
benchmarks; ``LoopClock`` follows an asyncio event loop's monotonic time.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable, Protocol


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle: ...


class _Timer:
    __slots__ = ("when", "seq", "callback", "args", "cancelled")

    def __init__(self, when, seq, callback, args):
        self.when, self.seq, self.callback, self.args = when, seq, callback, args
        self.cancelled = False

    def __lt__(self, other: "_Timer") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Simulated time that moves only when told to; timers run in time order."""

    def __init__(self, start: float = 0.0):
        self._now = start
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(self._now + max(0.0, delay), next(self._seq), callback, args)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every timer that falls due."""
        self._run_until(self._now + seconds)

    def run_until_idle(self, limit: float = 3600.0) -> float:
        """Run timers until none is left or ``limit`` simulated seconds have gone by.

        Returns the simulated time that passed.
        """
        start = self._now
        deadline = start + limit
        while self.next_due() is not None and self.next_due() <= deadline:
            self._run_until(self.next_due())
        return self._now - start

    def next_due(self) -> float | None:
        """When the earliest pending timer falls due, or None."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def _run_until(self, target: float) -> None:
        while (due := self.next_due()) is not None and due <= target:
            timer = heapq.heappop(self._timers)
            self._now = timer.when
            timer.callback(*timer.args)
        self._now = max(self._now, target)


class LoopClock:
    """Wall-clock time of a running asyncio loop (monotonic, in seconds)."""

    def __init__(self, loop):
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any):
        return self._loop.call_later(max(0.0, delay), callback, *args)

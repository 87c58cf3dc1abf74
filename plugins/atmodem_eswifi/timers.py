"""Timers a per-boot object owns, so that a reset cancels what the old boot still had pending."""

from __future__ import annotations


class Timers:
    def __init__(self, clock):
        self.clock = clock
        self.pending: set = set()

    def later(self, delay: float, callback, *args):
        def run() -> None:
            self.pending.discard(timer)
            callback(*args)

        timer = self.clock.call_later(delay, run)
        self.pending.add(timer)
        return timer

    def cancel(self, timer) -> None:
        timer.cancel()
        self.pending.discard(timer)

    def shutdown(self) -> None:
        for timer in self.pending:
            timer.cancel()
        self.pending.clear()

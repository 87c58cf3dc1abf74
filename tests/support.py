"""A modem on a manual clock, for byte-exact tests in simulated time."""

from __future__ import annotations

from atmodem.clock import ManualClock
from atmodem.engine import Modem, Timing
from atmodem.plugins import PluginSet, get_profile
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings

# One byte at 115200 Bd, 8N1: how far apart bytes sent "one at a time" arrive.
BYTE_TIME = 10 / 115200


class Harness:
    def __init__(self, profile=DEFAULT_PROFILE, *, state_dir=None, extra=(), disabled=(), **modem_options):
        self.clock = ManualClock()
        self.out = bytearray()
        self.plugins = PluginSet(get_profile(profile), disabled=disabled, extra=extra)
        self.modem = Modem(self.plugins, self.clock, Settings(Flash(state_dir)), sink=self.out.extend, **modem_options)
        self.modem.power_on()
        self.clock.run_until_idle()
        assert self.take() == b"\r\nready\r\n"

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    def send(self, data: bytes) -> bytes:
        """Send a burst, let the modem finish everything it started, return what it said."""
        self.modem.feed(data)
        self.clock.run_until_idle()
        return self.take()

    def type(self, data: bytes, gap: float = BYTE_TIME) -> bytes:
        """Send one byte at a time, ``gap`` seconds apart, then let the modem finish."""
        for i in range(len(data)):
            self.modem.feed(data[i:i + 1])
            self.clock.advance(gap)
        self.clock.run_until_idle()
        return self.take()


def instant(**options) -> Harness:
    return Harness(timing=Timing.instant(), **options)

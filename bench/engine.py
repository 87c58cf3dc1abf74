"""Engine throughput and latency for simple commands, in one process.

    python bench/engine.py [--commands N]

Each row feeds N command lines into one modem on a manual clock and counts the
answers. "latency" is the mean wall time from handing a line to ``feed`` until
its answer has left through the sink (the engine answers synchronously when the
command time is zero; with the spec's 1 ms command time the clock is advanced
by it, which costs a timer). Target: at least 50,000 AT commands/s.
"""

from __future__ import annotations

import argparse
import time

from atmodem.clock import ManualClock
from atmodem.engine import Modem, Timing
from atmodem.plugins import plugin_set
from atmodem.profiles import DEFAULT_PROFILE

TARGET = 50_000


def modem(timing: Timing, echo: bool):
    """A booted modem whose sink only counts bytes, so the sink costs next to nothing."""
    said = [0]
    clock = ManualClock()
    m = Modem(plugin_set(DEFAULT_PROFILE), clock, timing=timing, sink=lambda data: said.__setitem__(0, said[0] + len(data)))
    m.power_on()
    clock.run_until_idle()
    m.echo = echo
    return m, clock, said


def run(line: bytes, n: int, *, timing: Timing = Timing.instant(), echo: bool = False, per_byte: bool = False):
    m, clock, said = modem(timing, echo)
    pieces = [line[i:i + 1] for i in range(len(line))] if per_byte else [line]
    step = timing.command

    def one():
        for piece in pieces:
            m.feed(piece)
        if step:
            clock.advance(step)

    before = said[0]
    one()
    reply = said[0] - before  # the bytes every repetition must produce
    assert reply > 0
    before = said[0]
    start = time.perf_counter()
    for _ in range(n):
        one()
    elapsed = time.perf_counter() - start
    assert said[0] - before == n * reply, "some commands were not answered in full"
    return n / elapsed, elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200_000)
    n = parser.parse_args().commands
    rows = [
        ("AT, echo off, command time 0", dict(line=b"AT\r\n")),
        ("AT, echo on, command time 0", dict(line=b"AT\r\n", echo=True)),
        ("AT, echo off, one byte per feed", dict(line=b"AT\r\n", per_byte=True)),
        ("AT, echo off, 1 ms command time (spec)", dict(line=b"AT\r\n", timing=Timing())),
        ("AT+UART_CUR?, echo off, command time 0", dict(line=b"AT+UART_CUR?\r\n")),
        ("AT+GMR, echo off, command time 0", dict(line=b"AT+GMR\r\n")),
    ]
    print(f"{'case':<42} {'commands/s':>12} {'latency µs':>11}")
    first = None
    for label, options in rows:
        rate, latency = run(n=n, **options)
        first = first or rate
        print(f"{label:<42} {rate:>12,.0f} {latency:>11.2f}")
    verdict = "meets" if first >= TARGET else "MISSES"
    print(f"\nAT echo off: {first:,.0f} commands/s, {first / TARGET:.1f}x the {TARGET:,}/s target ({verdict} it)")


if __name__ == "__main__":
    main()

"""Simple commands through the engine, in one process, next to the least a Python responder does.

Each case feeds N command lines into one modem on a manual clock and counts the answers
(the engine answers synchronously when the command time is zero; with the spec's 1 ms
command time the clock is advanced by it, which costs a timer). The baseline is a bare
Python loop that buffers the same lines, splits them at CR LF, looks each up in a dict
and hands the modem's own reply bytes to a sink: what any Python AT responder must do.
"""

from __future__ import annotations

import time

from atmodem.clock import ManualClock
from atmodem.engine import Modem, Timing
from atmodem.plugins import plugin_set
from atmodem.profiles import DEFAULT_PROFILE

TARGET = 50_000  # AT commands/s


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



def bare_responder(line: bytes, n: int) -> float:
    """Commands/s of the baseline loop, answering ``line`` with the bytes the modem answers it with."""
    m, clock, said = modem(Timing.instant(), echo=False)
    captured = bytearray()
    m.sink = captured.extend
    m.feed(line)
    answers = {line.rstrip(b"\r\n"): bytes(captured)}
    buffer = bytearray()
    sent = [0]

    def feed(data: bytes) -> None:
        buffer.extend(data)
        while (end := buffer.find(b"\r\n")) >= 0:
            reply = answers.get(bytes(buffer[:end]), b"\r\nERROR\r\n")
            del buffer[:end + 2]
            sent[0] += len(reply)

    start = time.perf_counter()
    for _ in range(n):
        feed(line)
    elapsed = time.perf_counter() - start
    assert sent[0] == n * len(captured)
    return n / elapsed

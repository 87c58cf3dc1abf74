"""``--trace FILE``: every UART byte, both ways, and the modem's events, as JSON lines.

One object per chunk: ``{"time": unix seconds, "clock": modem clock seconds,
"dir": "in"|"out", "data": text}``, where ``data`` holds the bytes as Latin-1
code points, so the JSON stays readable and ``data.encode("latin-1")`` gives the
exact bytes back. Events (a server listening on a host port, a link opened)
are ``{"time", "clock", "event": kind, ...details}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class TraceWriter:
    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8", buffering=1)

    def __call__(self, direction: str, data: bytes, clock: float) -> None:
        record = {"time": round(time.time(), 6), "clock": round(clock, 6), "dir": direction, "data": data.decode("latin-1")}
        self._file.write(json.dumps(record) + "\n")

    def event(self, kind: str, details: dict, clock: float) -> None:
        record = {"time": round(time.time(), 6), "clock": round(clock, 6), "event": kind, **details}
        self._file.write(json.dumps(record, default=list) + "\n")

    def close(self) -> None:
        self._file.close()


def read_trace(path: Path):
    """Yield ``(direction, bytes, clock)`` for the UART chunks of a trace file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if "dir" in record:
                yield record["dir"], record["data"].encode("latin-1"), record["clock"]


def read_events(path: Path):
    """Yield the event records of a trace file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if "event" in record:
                yield record

"""``--trace FILE``: every UART byte, both ways, and the modem's events, as JSON lines.

One object per UART chunk: ``{"time": unix seconds, "clock": modem clock seconds,
"dir": "in"|"out", "data": text}``, where ``data`` holds the bytes as Latin-1
code points, so the JSON stays readable and ``data.encode("latin-1")`` gives the
exact bytes back. One object per event: ``{"time", "clock", "event": kind, ...details}``.
``clock`` is the modem's clock: Renode's virtual time when the modem runs in Renode
(the first event, ``session``, says which). ``atmodem trace FILE`` prints a file readably.

The events (``modem.report(kind, **details)``; observers get ``(kind, details)``):

- ``session``: profile, timebase ("wall" or "virtual": what ``clock`` is): where a transcript starts
- ``command``: line (the command line as received, Latin-1), label (the command's name, or
  None for a line no command takes): the modem starts executing a line
- ``raw``: offset (in the host's byte stream), length: bytes a command took as data
  (``AT+CIPSEND`` payload, a certificate upload) rather than as command lines
- ``dns``: name, address (None: the lookup failed)
- ``connect``: flow (the connection's number), remote [address, port] as dialled, ok, and
  local_port when ok, reason ("refused", "unreachable", "policy", "fault", "abandoned": the modem gave up) when not
- ``accept``: flow, remote, local_port (the modem's server port)
- ``tls``: flow, ok, version, cipher, verified, server_name, resumed, and error when not ok
- ``wire``: flow, direction ("out": to the network), data (the socket's bytes: TLS
  ciphertext); in files and transcripts, length instead of data
- ``datagram``: direction, local_port, remote, data (UDP, as ``wire``)
- ``read``: flow, length, head (the first bytes, Latin-1), crc (CRC-32 of them all): a link
  handed data to the firmware (transcripts find it in the modem's next write by these)
- ``close``: flow, by ("modem", "peer", "route", "fault")
- ``link``: id (the AT link number), flow, remote, local_port, server_port
- ``server_started`` / ``server_stopped``: modem_port, host_address
- ``fault``: fault (its kind) and what it hit (``atmodem.faults``)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from atmodem.transcript import Chunk, Entry, Event, stored

log = logging.getLogger(__name__)


class TraceWriter:
    """A modem tap and event sink (see ``atmodem.transcript.follow``) that appends to a file."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1)

    def __call__(self, direction: str, data: bytes, clock: float) -> None:
        self._write({"time": round(time.time(), 6), "clock": round(clock, 6), "dir": direction,
                     "data": data.decode("latin-1")})

    def event(self, kind: str, details: dict, clock: float) -> None:
        self._write({"time": round(time.time(), 6), "clock": round(clock, 6), "event": kind, **stored(kind, details)})

    def _write(self, record: dict) -> None:
        if self._file.closed:
            return  # a modem still powering off after its session was closed, or a failed file
        try:
            self._file.write(json.dumps(record, default=list) + "\n")
        except OSError as exc:  # a full disk: the trace ends, the modem goes on
            log.error("trace %s stopped: %s", self.path, exc)
            self.close()

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # what the full disk would not take is lost either way


def read_entries(path: Path) -> list[Entry]:
    """A trace file's chunks and events, in order (a line cut short by a crash ends the list)."""
    entries: list[Entry] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == 1:
                    raise ValueError(f"{path} is not an atmodem trace (line 1 is not JSON)") from None
                break
            try:
                when, clock = record.pop("time"), record.pop("clock")
                if "dir" in record:
                    entries.append(Chunk(when, clock, record["dir"], record["data"].encode("latin-1")))
                else:
                    entries.append(Event(when, clock, record.pop("event"), record))
            except (KeyError, AttributeError, TypeError, UnicodeEncodeError):
                raise ValueError(f"{path}, line {number}: not an atmodem trace record") from None
    return entries


def read_trace(path: Path):
    """Yield ``(direction, bytes, clock)`` for the UART chunks of a trace file."""
    for entry in read_entries(path):
        if isinstance(entry, Chunk):
            yield entry.direction, entry.data, entry.clock


def read_events(path: Path):
    """Yield the event records of a trace file as dicts (``event`` is the kind)."""
    for entry in read_entries(path):
        if isinstance(entry, Event):
            yield {"time": entry.time, "clock": entry.clock, "event": entry.kind, **entry.details}

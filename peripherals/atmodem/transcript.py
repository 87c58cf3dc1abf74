"""A modem session as a person reads it: who said what, when, over the UART and the network.

A ``Transcript`` records what a modem's taps and observers see, in the order it happens:
UART chunks both ways and the events of ``atmodem.trace``. ``rows()`` turns that record
(or a trace file's, read with ``atmodem.trace.read_entries``) into ``Row``\\ s: the host's
command lines, the modem's answers and URCs, data blocks cut out whole (what a command took
as raw input, what a link handed to the firmware), and the network's events. Each row knows
the command exchange it belongs to and, where one is involved, the AT link number, so
``atmodem trace`` can filter by either, and ``atmodem.diagram`` can draw the session.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Iterable, Optional, Union

# Bytes of a data block shown in a preview, and what is a text line's longest shown form.
PREVIEW = 16
WIDTH = 100

# Lines that report a failure in any dialect the project models.
_FAILURE = re.compile(r"^(ERROR|FAIL|SEND FAIL|NO CARRIER|DNS Fail|ERR CODE:|\+CME ERROR|"
                      r"\d*,?CONNECT FAIL|.*connect fail|.*link is not valid|no ip|busy [ps])")
# ESP-AT family lines that name their link, whatever exchange they arrive in.
_LINK_IN_TEXT = re.compile(r"^(?:(\d),(?:CONNECT|CLOSED|CONNECT FAIL)\b|\+IPD,(\d),)")


@dataclass(frozen=True)
class Chunk:
    time: float        # wall clock, Unix seconds
    clock: float       # the modem's clock (Renode's virtual time in Renode)
    direction: str     # "in": host to modem; "out": modem to host
    data: bytes


@dataclass(frozen=True)
class Event:
    time: float
    clock: float
    kind: str
    details: dict


Entry = Union[Chunk, Event]


def stored(kind: str, details: dict) -> dict:
    """An event's details as transcripts keep them: payload bytes (``wire``, ``datagram``) as a length."""
    data = details.get("data")
    if isinstance(data, (bytes, bytearray)):
        details = {key: value for key, value in details.items() if key != "data"}
        details["length"] = len(data)
    return details


class Transcript:
    """Every UART byte both ways and every event, as the modem saw them; thread-safe to read while it grows.

    It is a modem tap (``transcript(direction, data, clock)``) and takes events through
    ``event(kind, details, clock)``; ``follow(modem, transcript)`` connects both.
    """

    def __init__(self):
        self.entries: list[Entry] = []
        self._lock = threading.Lock()

    def __call__(self, direction: str, data: bytes, clock: float) -> None:
        with self._lock:
            self.entries.append(Chunk(time.time(), clock, direction, data))

    def event(self, kind: str, details: dict, clock: float) -> None:
        with self._lock:
            self.entries.append(Event(time.time(), clock, kind, stored(kind, details)))

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return [entry for entry in self.entries if isinstance(entry, Chunk)]

    def stream(self, direction: str) -> bytes:
        return b"".join(c.data for c in self.chunks if c.direction == direction)

    def lines(self, direction: str) -> list[str]:
        """One direction's bytes cut into lines at LF, CR and LF stripped (data blocks included)."""
        text = self.stream(direction).decode("latin-1")
        return [line.rstrip("\r") for line in text.split("\n") if line.strip("\r")]

    def commands(self) -> list[str]:
        """The AT command lines the host sent."""
        return [line for line in self.lines("in") if line[:2].upper() == "AT"]

    def rows(self) -> list["Row"]:
        with self._lock:
            entries = list(self.entries)
        return rows(entries)

    def render(self, limit: int = 0, width: int = WIDTH, wire: bool = False) -> str:
        """The readable transcript (``atmodem trace``'s form), the last ``limit`` rows if given."""
        return render(select(self.rows(), wire=wire), limit=limit, width=width)


def follow(modem, recorder, timebase: str = "wall") -> None:
    """Give ``recorder`` (a ``Transcript`` or an ``atmodem.trace.TraceWriter``) all of ``modem``'s
    bytes and events; first a ``session`` event saying what the ``clock`` column is (``timebase``)."""
    modem.taps.append(recorder)
    modem.observers.append(lambda kind, details: recorder.event(kind, details, modem.clock.now()))
    recorder.event("session", {"profile": modem.profile.name, "timebase": timebase}, modem.clock.now())


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    time: float            # wall clock when its first byte (or the event) came, Unix seconds
    clock: float           # the modem's clock then
    lane: str              # "host" (host to modem), "modem" (modem to host), "net" (the network)
    text: str              # what a person reads: the line, the event, a data block's summary
    data: Optional[bytes] = None   # a data block's bytes
    toward: str = ""       # "net" rows: "out" (modem to network) or "in" (network to modem)
    link: Optional[int] = None     # the AT link number, where one is involved
    command: Optional[str] = None  # the command exchange it belongs to ("AT+CIPSTART")
    failure: bool = False  # an error answer, a failed connection or handshake, a fault
    echo: bool = False     # the modem echoing the host's line back


def rows(entries: Iterable[Entry]) -> list[Row]:
    """The rows of a record; a trace file appended to by several sessions gives each its own."""
    found: list[Row] = []
    session: list[Entry] = []
    for entry in entries:
        if isinstance(entry, Event) and entry.kind == "session" and session:
            found += _Reader(session).read()
            session = []
        session.append(entry)
    return found + _Reader(session).read()


class _Reader:
    """Cuts one session's record into rows. Data blocks are found first, from the events that
    say where they are (``raw``: an offset in the host's stream; ``read``: what a link handed
    over, found in the modem output written next), so their bytes never turn into text lines."""

    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self.flow_link = {e.details["flow"]: e.details["id"] for e in entries
                          if isinstance(e, Event) and e.kind == "link" and "flow" in e.details}
        # Per direction, block start -> (end, link).
        self.blocks: dict[str, dict[int, tuple[int, Optional[int]]]] = {"in": {}, "out": {}}
        self._find_blocks()
        self.starts = {direction: sorted(found) for direction, found in self.blocks.items()}

    def _find_blocks(self) -> None:
        position = {"in": 0, "out": 0}
        reads: list[dict] = []     # link reads whose bytes the next output shows
        growing: Optional[int] = None  # the raw block the host is still filling
        for entry in self.entries:
            if isinstance(entry, Chunk):
                if entry.direction == "out":
                    growing = None  # the modem answered: later raw bytes are another block
                    self._place_reads(reads, entry.data, position["out"])
                    reads = []
                position[entry.direction] += len(entry.data)
            elif entry.kind == "raw":
                offset, length = entry.details["offset"], entry.details["length"]
                if growing is not None and self.blocks["in"][growing][0] == offset:
                    self.blocks["in"][growing] = (offset + length, None)
                else:
                    growing = offset
                    self.blocks["in"][offset] = (offset + length, None)
            elif entry.kind == "read" and entry.details.get("head"):
                reads.append(entry.details)

    def _place_reads(self, reads: list[dict], data: bytes, offset: int) -> None:
        """Find each read's bytes in one write of the modem's: after the dialect's header, which
        ends in ``:`` (``+IPD,0,5:``) or a line end (``#SSLRECV: 5``), or at the write's start
        (online mode). The last such place with the read's bytes wins: a header may hold them too
        (``+IPD,0,1:1``), the data after the header never precedes it."""
        searched = 0
        for details in reads:
            head, length = details["head"].encode("latin-1"), details["length"]
            found, at = -1, data.find(head, searched)
            while 0 <= at <= len(data) - length:
                if (at == searched or data[at - 1] in b":\n") and zlib.crc32(data[at:at + length]) == details["crc"]:
                    found = at
                at = data.find(head, at + 1)
            if found >= 0:
                self.blocks["out"][offset + found] = (offset + found + length, self.flow_link.get(details["flow"]))
                searched = found + length

    # ------------------------------------------------------------------ the walk

    def read(self) -> list[Row]:
        self.rows: list[Row] = []
        self.exchange = 0
        self.exchanges: list[int] = []       # per row
        self.command: Optional[str] = None
        self.position = {"in": 0, "out": 0}
        self.partial: dict[str, tuple[Chunk, bytearray]] = {}
        self.pieces: dict[int, list[bytes]] = {}  # a data block's row -> its bytes so far
        self.block_rows: dict[tuple, int] = {}    # (direction, block start) -> its row
        self.unexecuted: list[int] = []           # host line rows no command event has claimed yet
        self.unechoed: list[str] = []             # host lines the modem may still echo, oldest first
        self.dns_rows: dict[int, Optional[str]] = {}  # a lookup's row -> the address it found
        self.dialled: dict[int, set] = {}         # exchange -> addresses it connected to
        wire: Optional[list] = None               # [(flow, direction), first event, total] being summed
        for entry in self.entries:
            if isinstance(entry, Event) and entry.kind == "wire":
                key = (entry.details["flow"], entry.details["direction"])
                if wire is not None and wire[0] == key:
                    wire[2] += entry.details["length"]
                    continue
                self._end_wire(wire)
                wire = [key, entry, entry.details["length"]]
                continue
            self._end_wire(wire)
            wire = None
            if isinstance(entry, Chunk):
                self._chunk(entry)
            else:
                self._event(entry)
        self._end_wire(wire)
        for direction in list(self.partial):
            self._flush(direction)
        for index, pieces in self.pieces.items():
            data = b"".join(pieces)
            self.rows[index] = _replace(self.rows[index], data=data, text=_data_text(data))
        return self._links_of_exchanges()

    def _end_wire(self, wire: Optional[list]) -> None:
        if wire is not None:
            (flow, direction), event, total = wire
            arrow = "sent" if direction == "out" else "received"
            self._add(Row(event.time, event.clock, "net", f"{arrow} {total} bytes on the wire", toward=direction,
                          link=self.flow_link.get(flow)))

    def _add(self, row: Row) -> int:
        """Append ``row``; all but the host's lines belong to the exchange running (a host's line
        to the one its command event opens)."""
        if row.command is None and self.command is not None and not (row.lane == "host" and row.data is None):
            row = _replace(row, command=self.command)
        self.rows.append(row)
        self.exchanges.append(self.exchange)
        return len(self.rows) - 1

    def _chunk(self, chunk: Chunk) -> None:
        direction, data = chunk.direction, chunk.data
        start = self.position[direction]
        self.position[direction] += len(data)
        blocks, starts = self.blocks[direction], self.starts[direction]
        offset = 0
        while offset < len(data):
            here = start + offset
            at = bisect.bisect_right(starts, here)
            if at and here < blocks[starts[at - 1]][0]:
                block_start = starts[at - 1]
                end, link = blocks[block_start]
                self._flush(direction)
                take = min(end, start + len(data)) - here
                self._data(chunk, data[offset:offset + take], block_start, link)
                offset += take
                continue
            following = starts[at] if at < len(starts) else None
            stop = len(data) if following is None else min(len(data), following - start)
            self._text(chunk, data[offset:stop])
            offset = stop

    def _data(self, chunk: Chunk, data: bytes, block_start: int, link: Optional[int]) -> None:
        key = (chunk.direction, block_start)
        index = self.block_rows.get(key)
        if index is not None:  # the block's next chunk
            self.pieces[index].append(data)
            return
        self._flush(_OTHER[chunk.direction])  # a prompt before the data: it came first
        index = self.block_rows[key] = self._add(Row(chunk.time, chunk.clock, _LANES[chunk.direction],
                                                     "", data=b"", link=link))
        self.pieces[index] = [data]

    def _text(self, chunk: Chunk, data: bytes) -> None:
        direction = chunk.direction
        began, pending = self.partial.get(direction, (chunk, bytearray()))
        for byte in data:
            pending.append(byte)
            # Host lines end at CR (V.250) or LF; the modem's at LF (CR LF).
            if byte == 0x0A or (byte == 0x0D and direction == "in"):
                self.partial[direction] = (began, pending)
                self._flush(direction)
                began, pending = chunk, bytearray()
        if pending:
            self.partial[direction] = (began, pending)

    def _flush(self, direction: str) -> None:
        began, pending = self.partial.pop(direction, (None, b""))
        text = bytes(pending).decode("latin-1").strip("\r\n")
        if began is None or not text.strip():
            return
        self._flush(_OTHER[direction])
        if direction == "in":
            self.unechoed.append(text)
            self.unexecuted.append(self._add(Row(began.time, began.clock, "host", text)))
            return
        echo = bool(self.unechoed) and text == self.unechoed[0]
        if echo:
            self.unechoed.pop(0)
        linked = _LINK_IN_TEXT.match(text)
        link = int(linked.group(1) or linked.group(2)) if linked else None
        # An echo comes before its command runs: it joins that exchange when the command does.
        self._add(Row(began.time, began.clock, "modem", text, link=link, failure=bool(_FAILURE.match(text)),
                      echo=echo, command="" if echo else None))

    def _event(self, event: Event) -> None:
        d = event.details
        if event.kind == "command":
            self._open_exchange(d)
            return
        text, toward, failure = describe(event.kind, d)
        if text is None:
            return
        link = d.get("id") if event.kind == "link" else self.flow_link.get(d.get("flow"))
        index = self._add(Row(event.time, event.clock, "net", text, toward=toward, link=link, failure=failure))
        if event.kind == "dns":
            self.dns_rows[index] = d.get("address")
        elif event.kind == "connect" and d.get("remote"):
            self.dialled.setdefault(self.exchange, set()).add(d["remote"][0])

    def _open_exchange(self, d: dict) -> None:
        """A command starts: it claims the oldest host line not yet executed (lines sent
        together run one after the other), and the echo of it."""
        self.exchange += 1
        self.command = d.get("label") or d["line"].strip()
        line = d["line"].strip("\r\n")
        if line in self.unechoed:  # it runs, and was not echoed before: echo is off
            self.unechoed.remove(line)
        while self.unexecuted:
            index = self.unexecuted.pop(0)
            if self.rows[index].text == line or not self.unexecuted:
                self.rows[index] = _replace(self.rows[index], command=self.command)
                self.exchanges[index] = self.exchange
                break
        for index in range(len(self.rows) - 1, max(-1, len(self.rows) - 8), -1):
            row = self.rows[index]
            if row.echo and row.command == "" and row.text == line:
                self.rows[index] = _replace(row, command=self.command)
                self.exchanges[index] = self.exchange
                break

    def _links_of_exchanges(self) -> list[Row]:
        """A command row and its answers belong to the link its exchange's connection, data and
        network events name (AT+CIPSTART, AT+CIPSEND), when they name exactly one; a lookup
        only when the exchange then dialled what it found (not SNTP's, which just happened then)."""
        found: dict[int, set] = {}
        for row, exchange in zip(self.rows, self.exchanges):
            if row.link is not None and (row.lane == "net" or row.data is not None):
                found.setdefault(exchange, set()).add(row.link)
        result = []
        for index, (row, exchange) in enumerate(zip(self.rows, self.exchanges)):
            links = found.get(exchange, ())
            if row.command == "":
                row = _replace(row, command=None)  # an echo no command claimed (a line no command takes)
            if row.link is None and exchange and len(links) == 1 \
                    and (index not in self.dns_rows or self.dns_rows[index] in self.dialled.get(exchange, ())):
                row = _replace(row, link=next(iter(links)))
            result.append(row)
        return result


def describe(kind: str, d: dict) -> tuple[Optional[str], str, bool]:
    """An event as a row: (text or None for events that are no row, toward, failure)."""
    remote = _address(d.get("remote"))
    if kind == "dns":
        if d.get("address"):
            return f"DNS {d['name']} -> {d['address']}", "out", False
        return f"DNS {d['name']} failed", "out", True
    if kind == "connect":
        if d.get("ok"):
            return f"TCP connected to {remote} from port {d.get('local_port')}", "out", False
        return f"TCP connection to {remote} failed ({d.get('reason')})", "out", True
    if kind == "accept":
        return f"TCP connection from {remote} to port {d.get('local_port')}", "in", False
    if kind == "tls":
        if not d.get("ok"):
            return f"TLS handshake failed: {d.get('error')}", "in", True
        checked = "certificate verified" if d.get("verified") else "certificate not verified"
        extras = "".join(f", {item}" for item in (
            f"SNI {d['server_name']}" if d.get("server_name") else "", "resumed" if d.get("resumed") else "") if item)
        return f"TLS {d.get('version')} {d.get('cipher')}, {checked}{extras}", "in", False
    if kind == "close":
        by = d.get("by")
        return f"TCP closed by the {by}", "out" if by == "modem" else "in", by in ("fault", "route")
    if kind == "datagram":
        arrow = "to" if d.get("direction") == "out" else "from"
        return f"UDP {d.get('length', 0)} bytes {arrow} {remote}", d.get("direction", "out"), False
    if kind == "fault":
        rest = ", ".join(f"{key}={value}" for key, value in d.items() if key != "fault")
        return f"FAULT {d.get('fault')}" + (f" ({rest})" if rest else ""), "in", True
    if kind == "server_started":
        return f"server on port {d.get('modem_port')}, host address {_address(d.get('host_address'))}", "out", False
    if kind == "server_stopped":
        return f"server on port {d.get('modem_port')} stopped", "out", False
    if kind in ("link", "read", "raw", "session", "wire"):
        return None, "", False
    return f"{kind} " + ", ".join(f"{key}={value}" for key, value in d.items()), "in", False


def _address(value) -> str:
    return ":".join(str(part) for part in value) if value else ""


def _replace(row: Row, **changes) -> Row:
    return Row(**{**row.__dict__, **changes})


def preview(data: bytes, size: int = PREVIEW) -> tuple[str, str]:
    """The first ``size`` bytes as hex and as printable ASCII (dots for the rest)."""
    head = data[:size]
    return " ".join(f"{byte:02x}" for byte in head), "".join(chr(b) if 32 <= b < 127 else "." for b in head)


def _data_text(data: bytes) -> str:
    hexes, text = preview(data)
    more = " ..." if len(data) > PREVIEW else ""
    return f"data {len(data)} bytes: {hexes}{more} |{text}|"


# ---------------------------------------------------------------------------- text


_OTHER = {"in": "out", "out": "in"}
_LANES = {"in": "host", "out": "modem"}
_ARROWS = {"host": "H>M", "modem": "M>H", ("net", "out"): "M>N", ("net", "in"): "N>M"}


def select(found: list[Row], link: Optional[int] = None, command: Optional[str] = None,
           wire: bool = True) -> list[Row]:
    """The rows of one AT link, of the exchanges whose command contains ``command`` (case
    ignored, ``CIPSTART`` finds ``AT+CIPSTART``), and without wire byte counts unless ``wire``."""
    wanted = command.upper() if command else None
    return [row for row in found
            if (link is None or row.link == link)
            and (wanted is None or (row.command is not None and wanted in row.command.upper()))
            and (wire or not row.text.endswith("bytes on the wire"))]


def render(found: list[Row], *, limit: int = 0, width: int = WIDTH, virtual: bool = False) -> str:
    """One line per row: seconds since the first row (and on the modem's clock, when that is a
    virtual one), link, direction, text. Failures are marked with ``!``."""
    if not found:
        return ""
    start, clock_start = found[0].time, found[0].clock
    shown = found[-limit:] if limit else found
    lines = []
    for row in shown:
        arrow = _ARROWS[row.lane] if row.lane != "net" else _ARROWS[("net", row.toward or "in")]
        clock = f"{row.clock - clock_start:10.6f}  " if virtual else ""
        link = "" if row.link is None else str(row.link)
        text = "".join(ch if " " <= ch <= "~" else "." for ch in row.text)
        if len(text) > width:
            text = f"{text[:width - 16]}... ({len(row.text)} chars)"
        lines.append(f"{'!' if row.failure else ' '}{row.time - start:9.3f}  {clock}{link:>2}  {arrow}  {text}")
    return "\n".join(lines)

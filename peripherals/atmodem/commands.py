"""How plugins declare AT commands, and how a line is matched to one (spec §1.3).

A plugin returns ``Command`` objects from its ``atmodem_commands`` hook. Each has
the name typed after ``AT`` (``"+GMR"``, ``"E0"``, ``""`` for bare ``AT``), a match
mode, and a handler per form. A handler is called as ``handler(modem, request)``
and returns the response bytes, or a ``Pending`` from ``modem.block()`` /
``modem.busy()`` for commands that finish later. It may raise ``AtError`` to
answer an error block.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from atmodem.responses import ERROR


class AtError(Exception):
    """Answer ``{text}`` followed by the dialect's error atom (``text`` may be empty).

    A dialect with numbered errors (``+CME ERROR: <n>``) raises a subclass that overrides
    ``response``.
    """

    def __init__(self, text: bytes = b""):
        super().__init__(text)
        self.text = text

    def response(self, modem) -> bytes:
        return self.text + modem.syntax.error(modem)


class Match(enum.Enum):
    """The firmware's three ways of matching a table entry against a line."""

    EXACT = "exact"          # nothing may follow the name
    QUERY_SET = "query_set"  # name must be followed by '=' or by '?' ending the line
    NO_CHECK = "no_check"    # name must not be followed by an ASCII letter


class Form(enum.Enum):
    EXECUTE = "execute"  # AT+X
    QUERY = "query"      # AT+X?...
    SET = "set"          # AT+X=...
    TEST = "test"        # AT+X=?  (only for commands that declare a test handler)
    OTHER = "other"      # anything else a NO_CHECK entry let through


Handler = Callable[..., object]


@dataclass(frozen=True)
class Command:
    """One entry of the command table.

    ESP_ATMod has no test form: ``AT+X=?`` reaches the ``set`` handler with
    ``?`` as its argument unless the command declares ``test``. ``fallback``
    answers every form that has no handler of its own; with neither, the
    answer is ERROR.
    """

    name: str
    match: Match
    execute: Optional[Handler] = None
    query: Optional[Handler] = None
    set: Optional[Handler] = None
    test: Optional[Handler] = None
    fallback: Optional[Handler] = None
    summary: str = field(default="", compare=False)

    def handler(self, form: Form) -> Optional[Handler]:
        return getattr(self, form.value, None) or self.fallback


SUFFIXES = ("", "_CUR", "_DEF")


def with_suffixes(name: str, summary: str = "", **handlers) -> list[Command]:
    """The three AT 1.7 spellings of a setting command: ``name``, ``name_CUR``, ``name_DEF``.

    Handlers tell them apart with ``request.suffix``.
    """
    return [Command(name + suffix, Match.QUERY_SET, summary=summary, **handlers) for suffix in SUFFIXES]


@dataclass(frozen=True, slots=True)
class Request:
    """A command line matched to a table entry."""

    line: bytes          # the whole line, CR LF included
    command: Command
    form: Form
    args: bytes          # what follows '=', '?' or '=?' (or the name, for OTHER), CR LF excluded

    @property
    def suffix(self) -> str:
        """``"_CUR"``, ``"_DEF"`` or ``""`` as typed: it is echoed into the response prefix."""
        name = self.command.name
        return name[-4:] if name.endswith(SUFFIXES[1:]) else ""

    @property
    def saves(self) -> bool:
        """AT 1.7 rule: a set without ``_CUR`` is saved to flash (spec §5)."""
        return self.suffix != "_CUR"


def _is_letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


@dataclass(frozen=True)
class TableEntry:
    command: Command
    plugin: str
    overrides: tuple[str, ...] = ()  # plugins whose command of the same name this one replaced


class CommandTable:
    """Commands in the order the firmware searches them.

    A later declaration of a name already in the table replaces that entry in
    place: this is how a plugin overrides a built-in command without changing
    the search order.
    """

    def __init__(self, declarations: Iterable[tuple[str, Command]]):
        entries: list[TableEntry] = []
        index: dict[str, int] = {}
        for plugin, command in declarations:
            if command.name in index:
                old = entries[index[command.name]]
                entries[index[command.name]] = TableEntry(command, plugin, old.overrides + (old.plugin,))
            else:
                index[command.name] = len(entries)
                entries.append(TableEntry(command, plugin))
        self.entries = tuple(entries)
        self._search = tuple((e.command.name.encode("ascii"), e.command) for e in entries)

    def match(self, line: bytes) -> Optional[Request]:
        """Find the entry for a line that already passed the length, ``AT`` and CR LF checks."""
        end = len(line) - 2
        for name, command in self._search:
            if not line.startswith(name, 2):
                continue
            after = 2 + len(name)
            mode = command.match
            if mode is Match.EXACT:
                if after != end:
                    continue
            elif mode is Match.QUERY_SET:
                nxt = line[after]
                if not (nxt == 0x3D or (nxt == 0x3F and after + 1 == end)):  # '=' or a bare '?'
                    continue
            elif after < end and _is_letter(line[after]):
                continue
            return _request(line, command, after, end)
        return None


class Syntax:
    """How a firmware frames its command lines, and how it answers lines no command takes.

    ESP_ATMod's own (spec §1.3, §1.5, §1.7) is this class as it stands; a dialect plugin
    returns its own from ``atmodem_syntax`` (Telit ends lines with CR and ignores case,
    eS-WiFi has no ``AT`` at all).
    """

    terminator = b"\n"               # the byte that completes a line
    discard_after_command = True      # spec §1.7: input waiting when a command ends is eaten up to 'A'
    # For a dialect whose data may follow a command on the same line (eS-WiFi's
    # ``PG=0,0,<length>,<data>``): ``ends_early(line_so_far)`` gives the length of a complete
    # line without terminator, or None. Asked after every chunk of a line, so None when unused.
    ends_early: Optional[Callable[[bytes], Optional[int]]] = None

    def request(self, table: "CommandTable", line: bytes) -> Optional[Request]:
        """The command a complete line asks for, or None."""
        if len(line) >= 4 and line.startswith(b"AT") and line.endswith(b"\r\n"):
            return table.match(line)
        return None

    def error(self, modem) -> bytes:
        """The generic failure: an over-long line, a failed plugin, a command's plain ``AtError``."""
        return ERROR

    def unmatched(self, modem, line: bytes) -> bytes:
        """The answer to a line ``request`` found no command for."""
        return self.error(modem)

    def label(self, command: Command) -> str:
        """How a host types the command's name (listings, transcripts)."""
        return "AT" + command.name


def _request(line: bytes, command: Command, after: int, end: int) -> Request:
    tail = line[after:end]
    if not tail:
        return Request(line, command, Form.EXECUTE, b"")
    if tail[:1] == b"?":
        return Request(line, command, Form.QUERY, tail[1:])
    if tail[:2] == b"=?" and command.test is not None:
        return Request(line, command, Form.TEST, tail[2:])
    if tail[:1] == b"=":
        return Request(line, command, Form.SET, tail[1:])
    return Request(line, command, Form.OTHER, tail)

"""Parameter parsing with the firmware's rules (spec §1.3).

Numbers are unsigned decimal digit runs (no sign, no hex, no ``+``); strings are
double-quoted, optionally with ``\\`` escaping the next byte; no white space is
tolerated anywhere. Every failure raises ``AtError`` so a handler can parse
straight-line and let the engine answer ``ERROR``.
"""

from __future__ import annotations

from atmodem.commands import AtError

_DIGITS = b"0123456789"


class Params:
    """A cursor over the bytes after ``=`` (or ``?``) of one command line."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def number(self) -> int:
        """A non-empty run of decimal digits."""
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1
        if self.pos == start:
            raise AtError()
        return int(self.data[start:self.pos])

    def string(self, max_len: int, escapes: bool = True) -> bytes:
        """A double-quoted string of at most ``max_len`` content bytes."""
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise AtError()
            byte = data[self.pos]
            self.pos += 1
            if byte == 0x22:  # closing quote
                break
            if escapes and byte == 0x5C:  # backslash: next byte is literal
                if self.pos >= len(data):
                    raise AtError()
                byte = data[self.pos]
                self.pos += 1
            out.append(byte)
            if len(out) > max_len:
                raise AtError()
        return bytes(out)

    def expect(self, token: bytes) -> None:
        if not self.data.startswith(token, self.pos):
            raise AtError()
        self.pos += len(token)

    def comma(self) -> None:
        self.expect(b",")

    def end(self) -> None:
        """The line must end here (the firmware's end-of-line check)."""
        if not self.at_end():
            raise AtError()

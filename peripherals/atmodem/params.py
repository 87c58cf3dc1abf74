"""Parameter parsing with the firmware's rules (spec §1.3).

Numbers are unsigned decimal digit runs (no sign, no hex, no ``+``); strings are
double-quoted, optionally with ``\\`` escaping the next byte; no white space is
tolerated anywhere. Every failure raises ``AtError`` so a handler can parse
straight-line and let the engine answer ``ERROR``.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Optional

from atmodem.commands import AtError
from atmodem.responses import OK

_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"


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

    def single_number(self) -> int:
        """The whole parameter list is one number (the common ``AT+X=n`` form)."""
        value = self.number()
        self.end()
        return value

    def signed(self) -> int:
        """A number that may start with ``-`` (the few places the firmware allows it)."""
        negative = self.data.startswith(b"-", self.pos)
        if negative:
            self.pos += 1
        value = self.number()
        return -value if negative else value

    def peek_digit(self) -> bool:
        return self.pos < len(self.data) and self.data[self.pos] in _DIGITS

    def skip(self, count: int = 1) -> None:
        """Step over bytes without looking at them (the firmware's unchecked separators)."""
        self.pos += count

    def ip(self) -> ipaddress.IPv4Address:
        """A quoted dotted quad, each octet at most 255."""
        text = self.string(15, escapes=False)
        octets = text.split(b".")
        if len(octets) != 4 or not all(o and len(o) <= 3 and o.isdigit() and int(o) <= 255 for o in octets):
            raise AtError()
        return ipaddress.IPv4Address(".".join(str(int(o)) for o in octets))

    def mac(self) -> bytes:
        """A quoted ``xx:xx:xx:xx:xx:xx`` of hex digits in either case."""
        text = self.string(17, escapes=False)
        parts = text.split(b":")
        if len(text) != 17 or len(parts) != 6 or not all(len(p) == 2 and all(c in _HEX for c in p) for p in parts):
            raise AtError()
        return bytes(int(p, 16) for p in parts)

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


def number_setting(setting, label: bytes, valid: range, changed: Optional[Callable] = None):
    """The query and set handlers of a setting that is one number: ``AT+X?`` answers
    ``{label}:{n}`` and OK, ``AT+X=n`` takes a value in ``valid`` (RAM only), then calls
    ``changed(modem)`` if given."""

    def query(modem, request):
        return b"%s:%d\r\n" % (label, modem.settings.get(setting)) + OK

    def set_(modem, request):
        value = Params(request.args).single_number()
        if value not in valid:
            raise AtError()
        modem.settings.set(setting, value)
        if changed is not None:
            changed(modem)
        return OK

    return query, set_

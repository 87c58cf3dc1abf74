"""How the eS-WiFi frames commands and answers over its UART.

No seed says; these come from the module's vendor and the drivers that talk to it:

* A command is two characters, ``=`` and its parameters (unquoted), ended by CR, with no ``AT``
  (ST's ``es_wifi.c``: ``SUFFIX_CMD "\\r"``; Zephyr's ``eswifi`` driver: ``"C1=%s\\r"``).
* Every answer is ``\\r\\n<data>\\r\\nOK\\r\\n> `` and ends in the prompt ``> `` (Inventek's "How to
  send data" note; ``AT_OK_STRING`` in ``es_wifi.c``; Zephyr's ``eswifi_at_cmd_rsp``), so an answer
  without data is ``\\r\\n\\r\\nOK\\r\\n> `` (Zephyr only takes an OK found after the leading CR LF).
* A failure is ``\\r\\nERROR: <what>\\r\\nUsage: <syntax>\\r\\n> `` (Inventek's note: error type, usage,
  prompt; the bytes of a real ISM43362 in ARMmbed/wifi-ism43362 pull request 13:
  ``ERROR: Unknown Error`` / ``Usage: C0 `` / ``> ``).
* Nothing is echoed: Zephyr's UART driver reads the answer from the first byte after the command
  and requires it to start with CR LF.
"""

from __future__ import annotations

import re
from typing import Callable

from atmodem import AtError, Command, Form, Match, Syntax
from atmodem.params import Params

PROMPT = b"> "
UNKNOWN_ERROR = b"Unknown Error"
INVALID = b"Invalid usage"


def answer(data: bytes = b"") -> bytes:
    return b"\r\n" + data + b"\r\nOK\r\n" + PROMPT


def failure(what: bytes, usage: bytes = b"") -> bytes:
    return b"\r\nERROR: " + what + (b"\r\nUsage: " + usage if usage else b"") + b"\r\n" + PROMPT


class Refused(Exception):
    """A command the module turns down; ``what`` is the text after ``ERROR: ``."""

    def __init__(self, what: bytes):
        super().__init__(what)
        self.what = what


def eswifi_command(name: str, usage: bytes, handler: Callable, summary: str) -> Command:
    """A table entry whose handler returns the data of the answer (framed here), a ``Pending``
    that finishes with framed bytes, or None when raw input follows and answers for itself.

    Bad parameters (``AtError`` from ``Params``) and refusals become the failure with this
    command's usage line.
    """

    def run(modem, request):
        try:
            reply = handler(modem, request)
        except AtError:
            return failure(INVALID, usage)
        except Refused as refused:
            return failure(refused.what, usage)
        if reply is None:
            return b""
        return answer(reply) if isinstance(reply, bytes) else reply

    return Command(name, Match.NO_CHECK, fallback=run, summary=summary)


def set_args(request) -> bytes:
    """The parameters of ``XY=...``; any other form is a usage error."""
    if request.form is not Form.SET:
        raise AtError()
    return request.args


def no_args(request) -> None:
    """``XY`` alone (``XY=`` with nothing after it is the same to the module's parser)."""
    if request.args or request.form not in (Form.EXECUTE, Form.SET):
        raise AtError()


class EsWifiSyntax(Syntax):
    """Lines end with CR and carry no ``AT``; nothing is eaten after a command, because the data
    of ``S3`` and ``PG`` follows its CR at once."""

    terminator = b"\r"
    discard_after_command = False

    def ends_early(self, line: bytes):
        # Seed 002 writes the certificate right after the length: PG=0,0,<length>,<data>.
        match = _DATA_AFTER_COMMA.match(line)
        return match.end() if match else None

    def request(self, table, line: bytes):
        body = _body(line)
        if len(body) < 2:
            return None
        return table.match(b"AT" + body + b"\r\n")

    def label(self, command) -> str:
        return command.name

    def error(self, modem) -> bytes:
        return failure(UNKNOWN_ERROR)

    def unmatched(self, modem, line: bytes) -> bytes:
        # An empty line only brings the prompt back (assumed: no source shows one).
        return b"\r\n" + PROMPT if not _body(line) else failure(b"Command not found")


_DATA_AFTER_COMMA = re.compile(rb"[\n\0]*PG=\d+,\d+,\d+,")


def _body(line: bytes) -> bytes:
    # What hosts leave before a command: the LF of a CR LF ending, and the NUL that Zephyr's
    # driver sends after S3 and PG data (it writes the data length plus one byte).
    return line.removesuffix(b"\r").lstrip(b"\n\0")


def number_in(args: bytes, allowed: range) -> int:
    """The parameters as one decimal number in ``allowed`` (leading zeros allowed: ST's driver
    sends ``S3=%04d``)."""
    value = Params(args).single_number()
    if value not in allowed:
        raise AtError()
    return value

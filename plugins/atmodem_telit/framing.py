"""How a Telit module frames lines and answers: the public helpers every Telit command uses.

Lines end with CR (S3); the ``AT`` prefix and command names are case-insensitive, parameters
keep their case; what precedes ``AT`` on a line (the LF of a host's CR LF, spaces) is ignored,
as V.250 asks. Answers follow V.250 and the guide's transcripts: in verbose mode (``ATV1``,
the default) an information response is ``\\r\\n<line>\\r\\n`` per line and a result code is
``\\r\\n<text>\\r\\n``, so ``AT#SSLEN?`` answers ``\\r\\n#SSLEN: 1,0\\r\\n\\r\\nOK\\r\\n``; with
``ATV0`` lines end in CR LF alone and results are digits and CR (``0\\r``).

Errors of a command that exists follow ``+CMEE`` (seed 004 §12.2): 0 ``ERROR``, 1
``+CME ERROR: <n>``, 2 ``+CME ERROR: <text>``. A line no command takes is always ``ERROR``.

For plugins building on the dialect (the services module): raise ``CmeError(code)`` from a
handler made with ``command()``; finish a ``Pending`` with ``cme_error(modem, code)``; build
answers with ``info(modem, ...)`` and ``ok(modem)``.
"""

from __future__ import annotations

import functools
from typing import Optional

from atmodem import AtError, Command, Match
from atmodem.commands import Request, Syntax

# Result codes of V.250 with their ATV0 digits.
RESULTS = {b"OK": b"0", b"CONNECT": b"1", b"NO CARRIER": b"3", b"ERROR": b"4"}

# +CME ERROR texts (AT+CMEE=2). 3/4/100 are 3GPP TS 27.007 §9.2; 550-558 Telit's IP Easy
# codes; 830-841 seed 004 §12.2, word for word.
OPERATION_NOT_ALLOWED = 3
OPERATION_NOT_SUPPORTED = 4
UNKNOWN = 100
CONTEXT_ALREADY_ACTIVATED = 553
ACTIVATION_FAILED = 555
CONTEXT_NOT_OPENED = 556
SSL_GENERIC = 830
SSL_CANNOT_ACTIVATE = 831
SSL_SOCKET_ERROR = 832
SSL_NOT_CONNECTED = 833
SSL_ALREADY_CONNECTED = 834
SSL_ALREADY_ACTIVATED = 835
SSL_NOT_ACTIVATED = 836
SSL_CERTS_WRONG = 837
SSL_ENC_DEC = 838
SSL_HANDSHAKE = 839
SSL_DISCONNECTED = 840
SSL_INVALID_STATE = 841

CME_TEXTS = {
    OPERATION_NOT_ALLOWED: "operation not allowed",
    OPERATION_NOT_SUPPORTED: "operation not supported",
    UNKNOWN: "unknown",
    550: "generic undocumented error",
    551: "wrong state",
    552: "wrong mode",
    CONTEXT_ALREADY_ACTIVATED: "context already activated",
    554: "stack already active",
    ACTIVATION_FAILED: "activation failed",
    CONTEXT_NOT_OPENED: "context not opened",
    557: "cannot setup socket",
    558: "cannot resolve DN",
    SSL_GENERIC: "SSL generic error",
    SSL_CANNOT_ACTIVATE: "SSL cannot activate",
    SSL_SOCKET_ERROR: "SSL socket error",
    SSL_NOT_CONNECTED: "SSL not connected",
    SSL_ALREADY_CONNECTED: "SSL already connected",
    SSL_ALREADY_ACTIVATED: "SSL already activated",
    SSL_NOT_ACTIVATED: "SSL not activated",
    SSL_CERTS_WRONG: "SSL certs and keys wrong or not stored",
    SSL_ENC_DEC: "SSL error enc/dec data",
    SSL_HANDSHAKE: "SSL error during handshake",
    SSL_DISCONNECTED: "SSL disconnected",
    SSL_INVALID_STATE: "SSL invalid state",
}

NAMESPACE = "telit"
GUARD_DEFAULT = 50     # S12, in 20 ms units: the +++ guard time is 1 s


class CmeError(Exception):
    """A command that exists failed: ``+CME ERROR: <code>`` (or its text, or ERROR) per +CMEE."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Dialect:
    """The per-boot result-code settings: ATV, +CMEE and S12 (ATE lives in ``modem.echo``)."""

    def __init__(self, modem):
        self.verbose = True
        self.cmee = 0
        self.guard = GUARD_DEFAULT

    @property
    def guard_seconds(self) -> float:
        return self.guard * 0.02


def dialect(modem) -> Dialect:
    return modem.runtime_of(NAMESPACE, Dialect)


def result(modem, code: bytes) -> bytes:
    """A final or intermediate result code (``OK``, ``CONNECT``, ``NO CARRIER``, ``ERROR``)."""
    if dialect(modem).verbose:
        return b"\r\n" + code + b"\r\n"
    return RESULTS[code] + b"\r"


def ok(modem) -> bytes:
    return result(modem, b"OK")


def lines(modem, *texts: bytes) -> bytes:
    """Information text without a result code (URCs such as ``SSLSRING:``, a response's lines)."""
    if dialect(modem).verbose:
        return b"".join(b"\r\n" + text for text in texts) + b"\r\n" if texts else b""
    return b"".join(text + b"\r\n" for text in texts)


def info(modem, *texts: bytes) -> bytes:
    """Information lines followed by OK: the usual answer of a read or test command."""
    return lines(modem, *texts) + ok(modem)


def cme_error(modem, code: int) -> bytes:
    """The error answer for ``code`` in the form +CMEE asks for."""
    mode = dialect(modem).cmee
    if mode == 0:
        return result(modem, b"ERROR")
    detail = str(code) if mode == 1 else CME_TEXTS.get(code, CME_TEXTS[UNKNOWN])
    return lines(modem, b"+CME ERROR: " + detail.encode("ascii"))


def _guarded(handler):
    @functools.wraps(handler)
    def run(modem, request):
        try:
            return handler(modem, request)
        except CmeError as exc:
            return cme_error(modem, exc.code)
        except AtError:  # a malformed parameter list (atmodem.params)
            return cme_error(modem, OPERATION_NOT_SUPPORTED)

    return run


def command(name: str, match: Match = Match.QUERY_SET, summary: str = "", **handlers) -> Command:
    """A Telit command: ``CmeError`` and parameter errors from its handlers answer per +CMEE."""
    return Command(name, match, summary=summary,
                   **{form: _guarded(handler) for form, handler in handlers.items() if handler is not None})


def ranges(*values) -> bytes:
    """A test command's ranges: ``(1-6)``, ``(0,1)``, ``(1)`` from ranges, tuples and numbers."""
    parts = []
    for value in values:
        if isinstance(value, range):
            first, last = value.start, value.stop - 1
            parts.append(b"(%d)" % first if first == last else b"(%d-%d)" % (first, last))
        elif isinstance(value, tuple):
            parts.append(b"(" + b",".join(b"%d" % v for v in value) + b")")
        else:
            parts.append(value)
    return b",".join(parts)


_BLANKS = b" \t\r\n\0"


def _unquoted_spaces_dropped(text: bytes) -> bytes:
    """V.250 §5.2.1: spaces outside string constants are for formatting only (``AT#MQEN =1,0``)."""
    parts = text.split(b'"')
    parts[::2] = [part.replace(b" ", b"") for part in parts[::2]]
    return b'"'.join(parts)


class TelitSyntax(Syntax):
    """CR ends a line; ``at``/``AT`` and command names in any case; no discard after a command."""

    terminator = b"\r"
    discard_after_command = False   # a V.250 modem keeps what the host typed ahead

    def error(self, modem) -> bytes:
        return result(modem, b"ERROR")   # never +CME ERROR: no command took the line

    def unmatched(self, modem, line: bytes) -> bytes:
        # An empty line (a lone CR, the LF of a CR LF, spaces): V.250 answers nothing.
        return b"" if not line.strip(_BLANKS) else self.error(modem)

    def request(self, table, line: bytes) -> Optional[Request]:
        start = len(line) - len(line.lstrip(_BLANKS))
        body = line[start:].rstrip(b"\r")
        if len(body) < 2 or body[:2].upper() != b"AT":
            return None
        rest = _unquoted_spaces_dropped(body[2:])
        cut = min((i for i in (rest.find(b"="), rest.find(b"?")) if i >= 0), default=len(rest))
        return table.match(b"AT" + rest[:cut].upper() + rest[cut:] + b"\r\n")


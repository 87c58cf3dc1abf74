"""In-process plugins that drive the engine's BUSY, RAW, URC and override paths.

They stand in for the network commands of later plugins (AT+CWJAP's BUSY,
AT+CIPSEND's raw data), so the engine rules of spec §1 can be tested on their own.
"""

from atmodem import AtError, Command, Match, hookimpl
from atmodem.params import Params
from atmodem.responses import OK


class BusyProbe:
    """AT+TESTBUSY=<seconds>: BUSY (like AT+CWJAP) for that long, then OK."""

    @hookimpl
    def atmodem_commands(self):
        return [Command("+TESTBUSY", Match.QUERY_SET, set=self.start)]

    def start(self, modem, request):
        p = Params(request.args)
        seconds = p.number()
        p.end()
        operation = modem.busy()
        operation.later(seconds, operation.finish, OK)
        return operation


class RawProbe:
    """AT+TESTRAW=<n>: prompt, take n bytes unechoed (like AT+CIPSEND), report them."""

    def __init__(self):
        self.received = []

    @hookimpl
    def atmodem_commands(self):
        return [Command("+TESTRAW", Match.QUERY_SET, set=self.start)]

    def start(self, modem, request):
        p = Params(request.args)
        length = p.number()
        p.end()
        modem.start_raw(_Collector(modem, length, self.received))
        return b"OK\r\n> "


class _Collector:
    def __init__(self, modem, length, sink):
        self.modem, self.length, self.sink = modem, length, sink
        self.data = bytearray()

    def take(self, data: bytes) -> int:
        taken = data[:self.length - len(self.data)]
        self.data += taken
        if len(self.data) == self.length:
            self.sink.append(bytes(self.data))
            self.modem.end_raw()
            self.modem.write(b"\r\nRecv %d bytes\r\n\r\nSEND OK\r\n" % self.length)
        return len(taken)


class UrcProbe:
    """AT+TESTURC=<text>: raise a URC while the command itself is still executing."""

    @hookimpl
    def atmodem_commands(self):
        return [Command("+TESTURC", Match.QUERY_SET, set=self.start)]

    def start(self, modem, request):
        modem.urc(Params(request.args).string(200) + b"\r\n")
        return OK


class FaultyProbe:
    """Handlers that break: they must cost one ERROR, never the modem."""

    @hookimpl
    def atmodem_commands(self):
        return [
            Command("+TESTRAISE", Match.EXACT, execute=self.explode),
            Command("+TESTNONE", Match.EXACT, execute=lambda modem, request: None),
            Command("+TESTTEXT", Match.EXACT, execute=lambda modem, request: "OK"),
            Command("+TESTREJECT", Match.EXACT, execute=self.reject),
            Command("+TESTLATER", Match.EXACT, execute=self.explode_later),
            Command("+TESTBADRAW", Match.EXACT, execute=self.explode_on_data),
        ]

    def explode(self, modem, request):
        raise RuntimeError("plugin bug")

    def explode_later(self, modem, request):
        operation = modem.block()
        operation.later(0.1, self.explode, modem, request)
        return operation

    def explode_on_data(self, modem, request):
        modem.start_raw(self)
        return b"OK\r\n> "

    def take(self, data):
        raise RuntimeError("raw reader bug")

    def reject(self, modem, request):
        raise AtError(b"no change\r\n")


class Override:
    """Answers one exact line instead of its command (the before_command hook)."""

    def __init__(self, line: bytes, answer: bytes):
        self.line, self.answer = line, answer
        self.seen = []

    @hookimpl
    def atmodem_before_command(self, line, request):
        self.seen.append((line, "AT" + request.command.name if request else None))
        return self.answer if line == self.line else None

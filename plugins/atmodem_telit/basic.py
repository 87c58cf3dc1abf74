"""The V.250 and 27.007 commands the guide's transcripts use: AT, ATE, ATV, ATS12, +CMEE, +CGMM,
#PORTCFG, and +CCLK, the clock certificates are checked against (seed 004 §6.2 note)."""

from __future__ import annotations

import calendar
import re
import time

from atmodem import Match
from atmodem.params import Params

from atmodem_telit.framing import OPERATION_NOT_SUPPORTED, CmeError, command, dialect, info, ok, ranges

CLOCK = "telit.clock"
# A module without network time or +CCLK starts its real-time clock at 2000-01-01 00:00:00.
CLOCK_EPOCH = calendar.timegm((2000, 1, 1, 0, 0, 0))
_CCLK = re.compile(rb'"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d\d)"')


class RealTimeClock:
    """Unix time as the module believes it: its epoch at boot, then whatever +CCLK set."""

    def __init__(self, modem):
        self.modem = modem
        self.offset = CLOCK_EPOCH - modem.clock.now()
        self.quarters = 0     # the time zone +CCLK was given, in quarter hours

    def now(self) -> float:
        return self.offset + self.modem.clock.now()

    def set(self, unix: float, quarters: int) -> None:
        self.offset = unix - self.modem.clock.now()
        self.quarters = quarters


def modem_time(modem) -> float:
    """The module's idea of the time (Unix seconds): what certificate dates are checked against."""
    return modem.runtime_of(CLOCK, RealTimeClock).now()


def at(modem, request):
    return ok(modem)


def echo(modem, request):
    modem.echo = _flag(request)
    return ok(modem)


def verbose(modem, request):
    dialect(modem).verbose = _flag(request)
    return ok(modem)


def _flag(request) -> bool:
    """``ATE``/``ATE0``/``ATE1`` (and ATV): a missing value is 0."""
    value = request.args or b"0"
    if value not in (b"0", b"1"):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return value == b"1"


def query_guard(modem, request):
    if request.args:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return info(modem, b"%03d" % dialect(modem).guard)


def set_guard(modem, request):
    value = Params(request.args).single_number()
    if value > 255:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    dialect(modem).guard = value
    return ok(modem)


def query_cmee(modem, request):
    return info(modem, b"+CMEE: %d" % dialect(modem).cmee)


def set_cmee(modem, request):
    value = Params(request.args).single_number()
    if value > 2:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    dialect(modem).cmee = value
    return ok(modem)


def test_cmee(modem, request):
    return info(modem, b"+CMEE: " + ranges(range(0, 3)))


def model(modem, request):
    return info(modem, modem.profile.constants["model"].encode())


def query_portcfg(modem, request):
    return info(modem, b"#PORTCFG: " + modem.profile.constants["portcfg"].encode())


def query_clock(modem, request):
    rtc = modem.runtime_of(CLOCK, RealTimeClock)
    local = time.gmtime(rtc.now() + rtc.quarters * 900)
    stamp = time.strftime("%y/%m/%d,%H:%M:%S", local).encode()
    return info(modem, b'+CCLK: "%s%+03d"' % (stamp, rtc.quarters))


def set_clock(modem, request):
    match = _CCLK.fullmatch(request.args)
    if match is None:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    year, month, day, hour, minute, second, zone = (int(group) for group in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60 and -96 <= zone <= 96):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    local = calendar.timegm((2000 + year, month, day, hour, minute, second))
    modem.runtime_of(CLOCK, RealTimeClock).set(local - zone * 900, zone)
    return ok(modem)


def commands():
    return [
        command("", Match.EXACT, execute=at, summary="attention"),
        command("E", Match.NO_CHECK, fallback=echo, summary="echo on/off"),
        command("V", Match.NO_CHECK, fallback=verbose, summary="verbose or numeric result codes"),
        command("S12", query=query_guard, set=set_guard, summary="escape guard time (20 ms units)"),
        command("+CMEE", query=query_cmee, set=set_cmee, test=test_cmee, summary="error report format"),
        command("+CGMM", Match.EXACT, execute=model, summary="model"),
        command("#PORTCFG", query=query_portcfg, summary="port configuration (read only here)"),
        command("+CCLK", query=query_clock, set=set_clock, summary="real-time clock"),
    ]


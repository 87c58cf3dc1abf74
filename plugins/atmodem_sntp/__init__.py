"""SNTP of ESP_ATMod (spec §6.3 CIPSNTPCFG / CIPSNTPTIME / SNTPTIME, §8.7) and the modem's clock.

The chip's clock starts at the epoch (1970) at every boot and runs with the modem's
clock; SNTP sets it. The client sends real SNTPv4 packets over UDP to the configured
servers, resolved through the world's DNS, on the world's ``sntp_port`` (tests cannot
bind 123). It starts only at the end of a successful AT+CWJAP while the clock is still
before 57600 s, or on AT+CIPSNTPCFG=1,… — never after a boot auto-join (spec §8.7 ⚠).
TLS verifies certificates against ``modem_time``.
"""

from __future__ import annotations

import struct
import time
from typing import Optional

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.params import Params
from atmodem.responses import ERROR, OK, OK_LINE

NAMESPACE = "sntp"
NTP_TO_UNIX = 2208988800
SNTP_PORT = 123   # what the chip dials; the world may send it elsewhere (sntp_port)
# The core's test for "the clock has been set": past 16 hours after the epoch (spec §6.3).
SET_AFTER = 57600
ANSWER_TIMEOUT = 2.0      # per server, before the next is tried
RETRY = 15.0              # after every server failed
REFRESH = 3600.0          # lwIP's poll interval once synchronised

ENABLED = Setting(NAMESPACE, "enabled", default=1)
TIMEZONE = Setting(NAMESPACE, "timezone", default=0)
SERVERS = Setting(NAMESPACE, "servers", default=["pool.ntp.org", "time.nist.gov"])


def client(modem) -> "SntpClient":
    return modem.runtime_of(NAMESPACE, SntpClient)


def modem_time(modem) -> float:
    """Unix time as the chip believes it: seconds since boot until SNTP set it."""
    return client(modem).now()


class SntpClient:
    def __init__(self, modem):
        self.modem = modem
        self.offset = -modem.clock.now()   # the clock reads 0 (1970) at boot
        self.started = False
        self.servers: list[str] = []       # what the running client was configured with
        self.socket = None
        self._pending: Optional[tuple[bytes, int]] = None  # (originate timestamp, server index)
        self._timer = None

    def now(self) -> float:
        return self.modem.clock.now() + self.offset

    def start(self) -> None:
        self.servers = [s for s in self.modem.settings.get(SERVERS) if s]
        self.started = True
        if self.socket is None and self.modem.network is not None:
            self.socket = self.modem.network.datagrams(self._answer)
        self._schedule(self.modem.timing.sntp_start, 0)

    def _schedule(self, delay: float, index: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.modem.clock.call_later(delay, self._ask, index)

    def _ask(self, index: int) -> None:
        self._timer = None
        if not self.servers or self.socket is None:
            return
        if index >= len(self.servers):
            self._schedule(RETRY, 0)
            return
        name = self.servers[index]
        self.modem.network.resolve(name, lambda address: self._send(address, index))
        self._timer = self.modem.clock.call_later(ANSWER_TIMEOUT, self._ask, index + 1)

    def _send(self, address: Optional[str], index: int) -> None:
        if address is None or self.socket is None:
            return
        originate = struct.pack("!d", time.time())  # any unique 8 bytes; the answer must echo them
        request = bytes([0x23]) + bytes(39) + originate  # LI 0, version 4, mode 3 (client)
        if self.socket.send(request, (address, self.modem.world.sntp_port), dialled=(address, SNTP_PORT)):
            self._pending = (originate, index)

    def _answer(self, data: bytes, sender) -> None:
        if self._pending is None or len(data) < 48:
            return
        originate, _ = self._pending
        mode, stratum = data[0] & 0x07, data[1]
        if mode != 4 or stratum == 0 or data[24:32] != originate:
            return  # not an answer to us, or a kiss-o'-death
        seconds, fraction = struct.unpack("!II", data[40:48])
        self._pending = None
        server_time = seconds - NTP_TO_UNIX + fraction / 2**32
        self.offset = server_time - self.modem.clock.now()
        self._schedule(REFRESH, 0)

    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def _int32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _shifted(modem) -> int:
    """The modem's time plus the time zone, as the firmware's 32-bit arithmetic computes it."""
    return int(modem_time(modem)) + _int32(modem.settings.get(TIMEZONE) * 3600)


def _gmtime(seconds: int) -> time.struct_time:
    try:
        return time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):
        return time.gmtime(0)  # beyond what a calendar can show: the model shows the epoch


def _clock_set(modem) -> bool:
    return bool(modem.settings.get(ENABLED)) and modem_time(modem) > SET_AFTER


def _local(modem) -> time.struct_time:
    return _gmtime(_shifted(modem) if _clock_set(modem) else 0)


# ---------------------------------------------------------------- AT+CIPSNTPCFG


def query_config(modem, request):
    if not modem.settings.get(ENABLED):
        return b"+CIPSNTPCFG:0\r\n" + OK
    line = b"+CIPSNTPCFG:1,%d" % modem.settings.get(TIMEZONE)
    running = client(modem)
    for name in running.servers if running.started else ():
        line += b',"%s"' % name.encode("latin-1")
    return line + b"\r\n" + OK


def set_config(modem, request):
    p = Params(request.args)
    enable = p.number()
    if enable == 0:
        p.end()
        modem.settings.set(ENABLED, 0)  # a running client is not stopped
        return OK
    if enable != 1:
        raise AtError()
    p.comma()
    timezone = _int32(p.signed())  # ⚠ no range check (spec §6.3): the C int just wraps
    servers = []
    while not p.at_end() and len(servers) < 3:
        p.comma()
        name = p.string(modem.profile.constants.get("string_max", 200), escapes=False)
        if not name:
            raise AtError()
        servers.append(name.decode("latin-1"))
    p.end()
    modem.settings.set(ENABLED, 1)
    modem.settings.set(TIMEZONE, timezone)
    modem.settings.set(SERVERS, servers)
    client(modem).start()
    return OK


# ---------------------------------------------------------------- AT+CIPSNTPTIME? / AT+SNTPTIME?


def query_time(modem, request):
    text = time.strftime("%a %b %d %H:%M:%S %Y", _local(modem))
    day = text[8:10]
    text = text[:8] + (" " + day[1] if day[0] == "0" else day) + text[10:]  # asctime pads the day with a space
    return b"+CIPSNTPTIME:%s\n" % text.encode() + OK_LINE  # ⚠ bare LF, then OK without a blank line


def query_lobo_time(modem, request):
    if not _clock_set(modem):
        return b"+SNTPTIME:Enable SNTP first (AT+CIPSNTPCFG)\r\n" + ERROR
    seconds = _shifted(modem)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", _gmtime(seconds))
    return b"+SNTPTIME:%d,%s\r\n" % (seconds, stamp.encode()) + OK_LINE


@hookimpl
def atmodem_commands(profile):
    return [
        Command("+CIPSNTPCFG", Match.QUERY_SET, query=query_config, set=set_config, summary="SNTP configuration"),
        Command("+CIPSNTPTIME?", Match.EXACT, execute=query_time, summary="SNTP time"),
        Command("+SNTPTIME?", Match.EXACT, execute=query_lobo_time, summary="SNTP time, LoBo format"),
    ]


@hookimpl
def atmodem_boot(modem):
    client(modem)  # the clock starts at the epoch now


@hookimpl
def atmodem_station_joined(modem, by_command):
    if by_command and modem.settings.get(ENABLED) and modem_time(modem) < SET_AFTER:
        client(modem).start()


"""Joining an access point of the world, and what the module tells about itself and the air:
``C1``–``C4``, ``C6``–``C8``, ``C0``, ``CD``, ``CS``, ``CR``, ``C?``, ``F0``, ``D0``, ``I?``, ``Z5``, ``ZR``.

Answers are shaped as the drivers parse them: ``C0`` as ``[JOIN   ] <ssid>,<ip>,0,0`` (Zephyr's
``__parse_ipv4_address``) and, when it fails, with the lines a real module printed (ARMmbed
wifi-ism43362 pull request 13); ``C?`` as ST's ``AT_ParseConnSettings`` and mbed's ``getIPAddress``
read it; ``F0`` lines as ``#001,"SSID",MAC,RSSI,BITRATE,MODE,SECURITY,BAND,CHANNEL`` (Zephyr's
``__parse_scan_res``, ST's ``AT_ParseAP``); ``I?`` as ST's ``AT_ParseInfo``; ``CS`` as ``0``/``1`` and
``CR`` as a number (Zephyr's status work).
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from atmodem import AtError
from atmodem.world import AccessPoint, format_mac

from atmodem_eswifi.framing import Refused, answer, failure, no_args, number_in, set_args
from atmodem_eswifi.timers import Timers
from atmodem_eswifi.transport import transport

NAMESPACE = "eswifi"
SSID_MAX = 32
PASSPHRASE_MAX = 63
SECURITY_TYPES = range(0, 5)   # open, WEP, WPA, WPA2 AES, WPA/WPA2 (Zephyr's eswifi_security_type)
OPEN = 0
JOIN_RETRIES = 5
JOIN_USAGE = b"C0 "            # as the module printed it, trailing space included
# How F0 names a world's encryption.
SECURITY_NAMES = {"open": b"Open", "wep": b"WEP", "wpa": b"WPA", "wpa2": b"WPA2 AES", "wpa_wpa2": b"WPA WPA2",
                  "wpa2_enterprise": b"WPA2 Enterprise", "wpa3": b"WPA3"}


class Station:
    """The module's network settings and its association, for one boot (nothing is saved: the
    ``Z1`` save command is not modelled)."""

    def __init__(self, modem):
        self.modem = modem
        self.ssid = b""
        self.passphrase = b""
        self.security = 4
        self.dhcp = 1
        self.static = {"ip": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "0.0.0.0"}
        self.ap: Optional[AccessPoint] = None
        self.timers = Timers(modem.clock)

    def shutdown(self) -> None:
        self.timers.shutdown()

    def accepts(self, ap: Optional[AccessPoint]) -> bool:
        if ap is None or ap.join_outcome != "ok":
            return False
        if ap.encryption == "open":
            return self.security == OPEN
        return self.security != OPEN and self.passphrase == ap.password.encode()

    def associate(self, ap: AccessPoint) -> None:
        sta = self.modem.interfaces.sta
        if self.dhcp:
            sta.assign(ap.lease(self.modem.world.mac_bytes), ipaddress.IPv4Address(ap.gateway),
                       ipaddress.IPv4Address(ap.netmask))
            self.modem.interfaces.dns = [ipaddress.IPv4Address(a) for a in ap.dns]
        else:
            sta.assign(*(ipaddress.IPv4Address(self.static[k]) for k in ("ip", "gateway", "netmask")))
        sta.up = True
        self.ap = ap

    def leave(self) -> None:
        self.modem.interfaces.sta.clear()
        self.ap = None


def station(modem) -> Station:
    return modem.runtime_of(NAMESPACE, Station)


# ---------------------------------------------------------------- settings (C1-C4, C6-C8)


def set_ssid(modem, request):
    value = set_args(request)
    if not 0 < len(value) <= SSID_MAX:
        raise AtError()
    station(modem).ssid = value
    return b""


def set_passphrase(modem, request):
    value = set_args(request)
    if len(value) > PASSPHRASE_MAX:
        raise AtError()
    station(modem).passphrase = value
    return b""


def set_security(modem, request):
    station(modem).security = number_in(set_args(request), SECURITY_TYPES)
    return b""


def set_dhcp(modem, request):
    station(modem).dhcp = number_in(set_args(request), range(2))
    return b""


def address_setter(key: str):
    def set_address(modem, request):
        try:
            value = ipaddress.IPv4Address(set_args(request).decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise AtError() from None
        station(modem).static[key] = str(value)
        return b""
    return set_address


# ---------------------------------------------------------------- C0, CD, CS, CR, C?


def join(modem, request):
    no_args(request)
    state = station(modem)
    if not state.ssid:
        raise Refused(b"SSID not set")
    ap = modem.world.find_ap(state.ssid.decode("latin-1"))
    operation = modem.block()
    head = b"\r\n[JOIN   ] " + state.ssid

    def joined(ap: AccessPoint) -> None:
        state.associate(ap)
        sta = modem.interfaces.sta
        operation.finish(answer(b"[JOIN   ] %s,%s,0,0" % (state.ssid, str(sta.ip).encode())))

    if state.accepts(ap):
        state.timers.later(ap.join_delay if ap.join_delay is not None else modem.timing.join, joined, ap)
    else:
        state.timers.later(modem.timing.join_fail, operation.finish,
                    head + b"\r\n[JOIN   ] Failed" + failure(b"Unknown Error", JOIN_USAGE))
    return operation


def disconnect(modem, request):
    no_args(request)
    transport(modem).drop_all()
    station(modem).leave()
    return b""


def connection_status(modem, request):
    no_args(request)
    return b"1" if modem.interfaces.sta.up else b"0"


def signal(modem, request):
    no_args(request)
    ap = station(modem).ap
    if ap is None:
        raise Refused(b"Not connected")
    return b"%d" % ap.rssi


def settings(modem, request):
    no_args(request)
    state = station(modem)
    sta = modem.interfaces.sta
    dns = [str(a).encode() for a in modem.interfaces.dns[:2]] + [b"0.0.0.0"] * 2
    fields = [state.ssid, state.passphrase, b"%d" % state.security, b"%d" % state.dhcp, b"0",
              str(sta.ip).encode(), str(sta.netmask).encode(), str(sta.gateway).encode(), dns[0], dns[1],
              b"%d" % JOIN_RETRIES, b"0"]
    return b",".join(fields)


# ---------------------------------------------------------------- F0, D0


def scan(modem, request):
    no_args(request)
    operation = modem.block()
    lines = [b'#%03d,"%s",%s,%d,72.2,Infrastructure,%s,2.4GHz,%d' % (
        number, ap.ssid.encode(), format_mac(ap.bssid_bytes, upper=True).encode(), ap.rssi,
        SECURITY_NAMES[ap.encryption], ap.channel) for number, ap in enumerate(modem.world.on_air(), 1)]
    station(modem).timers.later(modem.timing.scan, operation.finish, answer(b"\r\n".join(lines)))
    return operation


def lookup(modem, request):
    name = set_args(request)
    if not name:
        raise AtError()
    if not modem.interfaces.sta.up or modem.network is None:
        raise Refused(b"Not connected")
    operation = modem.block()
    started = modem.clock.now()

    def resolved(address: Optional[str]) -> None:
        if address is None:
            reply = failure(b"DNS lookup failed", b"D0=<domain name>")
        else:
            # The seed's examples go from D0 straight to P4 and P6: the answer is the socket's host.
            transport(modem).current.aim(address, name.decode("latin-1"))
            reply = answer(address.encode())
        wait = max(0.0, started + modem.timing.resolve - modem.clock.now())
        station(modem).timers.later(wait, operation.finish, reply)

    modem.network.resolve(name.decode("latin-1"), resolved)
    return operation


# ---------------------------------------------------------------- I?, Z5, ZR


def info(modem, request):
    no_args(request)
    return modem.profile.constants["info"]


def mac(modem, request):
    no_args(request)
    return format_mac(modem.world.mac_bytes, upper=True).encode()


def reset(modem, request):
    no_args(request)
    modem.reboot()
    return None   # the boot prompt is all the host sees

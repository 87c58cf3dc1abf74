"""Espressif's ESP-AT 2.x on the ESP8266, as a dialect (spec §10.3 and §12.2): what LwESP needs.

It rides on the same plugins as ESP_ATMod (Wi-Fi, TCP/IP, TLS, SNTP) and changes only what
differs: AT 2.x's version lines, its housekeeping commands (AT+SYSMSG, AT+SYSLOG, AT+RFPOWER,
AT+SYSSTORE), AT+CWMODE with its auto-connect flag, AT+CIPSTATE? and AT+CIPSTARTEX, and how
data and links look (``AT2Format``: quoted addresses, ``+CIPRECVDATA:<len>,``, ``-1`` for
empty links, ``+LINK_CONN`` when AT+SYSMSG asks for it).

Still to come in this dialect: AT+SYSMFG (certificates), AT+CIPSSLCCONF / AT+CIPSSLCSNI and
mutual TLS, AT+SYSLOG's error codes.
"""

from __future__ import annotations

from typing import Optional

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.params import Params
from atmodem.profiles import ESP_ATMOD_050, Profile
from atmodem.responses import OK
from atmodem_tcpip import SLOTS, DataFormat, links, open_link
from atmodem_wifi import MODE, apply_mode, query_mode

NAMESPACE = "espat"
SYSMSG = Setting(NAMESPACE, "sysmsg", 0)
SYSLOG = Setting(NAMESPACE, "syslog", 0)
RFPOWER = Setting(NAMESPACE, "rfpower", 78)
SYSSTORE = Setting(NAMESPACE, "sysstore", 1)

LINK_CONN = 0b010   # AT+SYSMSG bit 1: +LINK_CONN instead of <id>,CONNECT

ESP_AT_2 = Profile(
    name="esp-at-2",
    description="Espressif ESP-AT 2.2.1 for the ESP8266 (the dialect LwESP speaks)",
    plugins=("basic", "wifi", "tcpip", "tls", "certs", "sntp", "espat"),
    line_buffer=256,
    features=frozenset({"mode_checks", "empty_password", "mac_query", "cipdomain", "ip_without_station",
                        "long_hosts"}),
    constants={
        **ESP_ATMOD_050.constants,
        # LwESP looks for "- ESP8266 -" and reads the version from character 11 on.
        "gmr": (
            "AT version:2.2.1.0(46d6c26 - ESP8266 - Aug  6 2021 06:50:15)",
            "SDK version:v3.4-37-gd92d00e",
            "compile time(ede72af):Aug  6 2021 12:28:15",
            "Bin version:2.2.1(WROOM-02)",
        ),
    },
)


class AT2Format(DataFormat):
    """How ESP-AT 2.x shows data and links."""

    def __init__(self, modem):
        self.modem = modem

    def ipd(self, index: Optional[int], data: bytes, remote: Optional[tuple[str, int]]) -> bytes:
        head = b"\r\n+IPD," + (b"%d," % index if index is not None else b"") + b"%d" % len(data)
        if remote:
            head += b',"%s",%d' % (remote[0].encode(), remote[1])  # quoted, unlike AT 1.7
        return head + b":" + data

    def opened(self, index: Optional[int], link, by_server: bool) -> bytes:
        if index is None or not self.modem.settings.get(SYSMSG) & LINK_CONN:
            return super().opened(index, link, by_server)
        remote_ip, remote_port = link.remote
        return b'+LINK_CONN:0,%d,"%s",%d,"%s",%d,%d\r\n' % (
            index, link.kind.encode(), int(by_server), remote_ip.encode(), remote_port, link.local_port)

    def received(self, data: bytes, remote: Optional[tuple[str, int]]) -> bytes:
        address = b'"%s",%d,' % (remote[0].encode(), remote[1]) if remote else b""
        return b"+CIPRECVDATA:%d," % len(data) + address + data

    def lengths(self, counts: list[Optional[int]]) -> bytes:
        return b"+CIPRECVLEN:" + b",".join(b"%d" % (-1 if c is None else c) for c in counts) + b"\r\n"


# ---------------------------------------------------------------- housekeeping


def _number_setting(setting: Setting, label: bytes, valid: range):
    def query(modem, request):
        return b"%s:%d\r\n" % (label, modem.settings.get(setting)) + OK

    def set_(modem, request):
        value = Params(request.args).single_number()  # the ESP8266 takes no BLE/power-class values
        if value not in valid:
            raise AtError()
        modem.settings.set(setting, value, save=False)
        return OK

    return query, set_


def version(modem, request):
    return b"".join(line.encode("ascii") + b"\r\n" for line in modem.profile.constants["gmr"]) + OK


def set_mode(modem, request):
    p = Params(request.args)
    mode = p.number()
    if mode > 3:
        raise AtError()
    if not p.at_end():
        p.comma()
        if p.number() > 1:  # <auto_connect>: whether to join the saved AP at once
            raise AtError()
    p.end()
    modem.settings.set(MODE, mode, save=bool(modem.settings.get(SYSSTORE)))
    apply_mode(modem)
    return OK


def query_state(modem, request):
    table = links(modem)
    lines = b""
    for index, slot in enumerate(table.slots):
        if slot is not None and slot.link.connected:
            remote_ip, remote_port = slot.link.remote
            lines += b'+CIPSTATE:%d,"%s","%s",%d,%d,%d\r\n' % (
                index, slot.link.kind.encode(), remote_ip.encode(), remote_port, slot.link.local_port,
                int(table.is_server_link(slot)))
    return lines + OK


def start_ex(modem, request):
    """AT+CIPSTARTEX="TYPE","host",port[,keepalive]: AT+CIPSTART on the lowest free link id."""
    p = Params(request.args)
    kind = p.string(3)
    p.comma()
    host = p.string(modem.profile.constants.get("string_max", 200))
    p.comma()
    port = p.number()
    if not 0 < port <= 65535:
        raise AtError()
    if not p.at_end():
        p.comma()
        p.number()
    p.end()
    table = links(modem)
    free = [i for i in range(SLOTS if table.mux() else 1) if table.slots[i] is None]
    if not free:
        raise AtError()
    return open_link(modem, free[0], kind, host, port)


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_profiles():
    return [ESP_AT_2]


@hookimpl
def atmodem_data_format(modem):
    return AT2Format(modem)


@hookimpl
def atmodem_commands(profile):
    query_sysmsg, set_sysmsg = _number_setting(SYSMSG, b"+SYSMSG", range(0, 8))
    query_syslog, set_syslog = _number_setting(SYSLOG, b"+SYSLOG", range(0, 2))
    query_power, set_power = _number_setting(RFPOWER, b"+RFPOWER", range(40, 83))
    query_store, set_store = _number_setting(SYSSTORE, b"+SYSSTORE", range(0, 2))
    return [
        Command("+GMR", Match.EXACT, execute=version, summary="version information (AT 2.x lines)"),
        Command("+SYSMSG", Match.QUERY_SET, query=query_sysmsg, set=set_sysmsg, summary="system message options"),
        Command("+SYSLOG", Match.QUERY_SET, query=query_syslog, set=set_syslog, summary="error code logging"),
        Command("+RFPOWER", Match.QUERY_SET, query=query_power, set=set_power, summary="RF transmit power"),
        Command("+SYSSTORE", Match.QUERY_SET, query=query_store, set=set_store, summary="save settings to flash"),
        Command("+CWMODE", Match.QUERY_SET, query=query_mode, set=set_mode, summary="Wi-Fi mode (AT 2.x)"),
        Command("+CIPSTATE?", Match.EXACT, execute=query_state, summary="link list"),
        Command("+CIPSTARTEX", Match.NO_CHECK, set=start_ex, summary="open a link on a free id"),
    ]

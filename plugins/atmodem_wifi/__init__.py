"""Wi-Fi commands of ESP_ATMod (spec §6.2, §3, §4 step 3 and 8, §5): the station,
the SoftAP and their addresses, against the access points of the modem's world.

The station is a small state machine (idle → connecting → associated →
connected) driven by the modem's clock, so joins take the time the spec gives
and AT+CWJAP keeps the modem BUSY meanwhile. World events (an AP switched
off, back on) reach it through ``atmodem_world_event``.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.commands import with_suffixes
from atmodem.interfaces import ZERO
from atmodem.params import Params
from atmodem.responses import OK
from atmodem.state import EEPROM, SDK
from atmodem.world import AccessPoint, format_mac

NAMESPACE = "wifi"
IPv4 = ipaddress.IPv4Address

OFF, STA, AP, AP_STA = 0, 1, 2, 3

MODE = Setting(NAMESPACE, "mode", default=STA, region=SDK)
STATION = Setting(NAMESPACE, "station", default=None, region=SDK)       # {"ssid", "password", "bssid"}
SOFTAP = Setting(NAMESPACE, "softap", default=None, region=SDK)         # None: the SDK's default AP
AUTOCONNECT = Setting(NAMESPACE, "autoconnect", default=1, region=SDK)
# DHCP bit mask (1 SoftAP server, 2 station client, 4 Ethernet client), shared with the Ethernet plugin.
DHCP = Setting(NAMESPACE, "dhcp", default=3, region=EEPROM)
STA_STATIC = Setting(NAMESPACE, "sta_static", default=None, region=EEPROM)  # [ip, gateway, netmask]
AP_ADDRESS = Setting(NAMESPACE, "ap_address", default=None, region=EEPROM)  # [ip, gateway, netmask]
DNS = Setting(NAMESPACE, "dns", default=None, region=EEPROM)               # [dns1, dns2] or None
SCAN_OPTIONS = Setting(NAMESPACE, "scan_options", default=[0, 0x7FF, -100, 0xFFFF])
HOSTNAME = Setting(NAMESPACE, "hostname", default=None)

DHCP_AP, DHCP_STA, DHCP_ETH = 1, 2, 4
DEFAULT_DNS = IPv4("64.6.64.6")
DEFAULT_AP_ADDRESS = ("192.168.4.1", "192.168.4.1", "255.255.255.0")

# SDK disconnect reasons (spec §3).
LEAVE, BEACON_TIMEOUT, NO_AP_FOUND, AUTH_FAIL, ASSOC_FAIL, HANDSHAKE_TIMEOUT = 8, 200, 201, 202, 203, 15
# +CWJAP:n failure codes (spec §6.2), by reason.
FAIL_CODE = {NO_AP_FOUND: 3, AUTH_FAIL: 2, HANDSHAKE_TIMEOUT: 2, 204: 2}

# Arduino wl_enc_type codes (spec §6.2: ESP_ATMod prints these, not the AT ones).
ARDUINO_ENC = {"open": 7, "wep": 5, "wpa": 2, "wpa2": 4, "wpa_wpa2": 8}


def station(modem) -> "Station":
    return modem.runtime_of(NAMESPACE, Station)


def has_sta(mode: int) -> bool:
    return mode in (STA, AP_STA)


def has_ap(mode: int) -> bool:
    return mode in (AP, AP_STA)


def _mode_check(modem, refuse: int) -> None:
    """0.5.0 refuses station commands in AP-only mode and AP commands in STA-only mode."""
    if modem.profile.has("mode_checks") and modem.settings.get(MODE) == refuse:
        raise AtError()


def _string_max(modem) -> int:
    return modem.profile.constants.get("string_max", 200)


def _quoted_ip(ip) -> bytes:
    return b'"%s"' % str(ip).encode()


class Station:
    """The station interface of one boot: association, address, automatic reconnection."""

    def __init__(self, modem):
        self.modem = modem
        self.interface = modem.interfaces.sta
        self.state = "idle"                 # idle | connecting | associated | connected
        self.ap: Optional[AccessPoint] = None
        self.config: Optional[dict] = None  # the current (RAM) station configuration
        self.auto_reconnect = True          # until the first AT+CWJAP of this boot (spec §6.2 ⚠)
        self.join: Optional[object] = None  # the BUSY Pending of an AT+CWJAP
        self._timers: list = []

    # ------------------------------------------------------------ timers

    def _after(self, delay: float, callback, *args) -> None:
        self._timers.append(self.modem.clock.call_later(delay, callback, *args))

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------------ joining

    @property
    def linked(self) -> bool:
        return self.state in ("associated", "connected")

    def start(self, config: dict, join=None) -> None:
        """Begin associating with ``config``; ``join`` is the AT+CWJAP waiting for the outcome."""
        self._cancel_timers()
        self.config = config
        self.join = join
        self.state = "connecting"
        bssid = bytes.fromhex(config["bssid"].replace(":", "")) if config.get("bssid") else None
        ap = self.modem.world.find_ap(config["ssid"], bssid)
        timing = self.modem.timing
        if ap is None:
            self._after(timing.join_fail, self._failed, NO_AP_FOUND)
        elif ap.encryption in ("wpa2_enterprise", "wpa3") or ap.join_outcome == "fail":
            self._after(timing.join_fail, self._failed, ASSOC_FAIL)
        elif ap.encryption != "open" and config["password"] != ap.password:
            self._after(timing.join_fail, self._failed, HANDSHAKE_TIMEOUT)
        else:
            delay = ap.join_delay if ap.join_delay is not None else timing.join
            self._after(delay / 2, self._associated, ap)
            if ap.join_outcome == "ok":
                self._after(delay, self._got_ip, ap)

    def _associated(self, ap: AccessPoint) -> None:
        if not ap.present:
            self._failed(NO_AP_FOUND)
            return
        self.state, self.ap = "associated", ap
        self.modem.urc(b"WIFI CONNECTED\r\n")

    def address(self) -> None:
        """DHCP from the AP, or the stored static address if DHCP is off and one is complete."""
        static = self.modem.settings.get(STA_STATIC)
        if self.modem.settings.get(DHCP) & DHCP_STA or not static:
            ap = self.ap
            self.interface.assign(ap.lease(self.interface.mac), IPv4(ap.gateway), IPv4(ap.netmask))
            if not self.modem.settings.get(DNS):
                self.modem.interfaces.dns = [IPv4(d) for d in ap.dns]
        else:
            self.interface.assign(*(IPv4(a) for a in static))

    def _got_ip(self, ap: AccessPoint) -> None:
        if self.state != "associated" or self.ap is not ap:
            return
        self.address()
        apply_dns(self.modem)
        self.state = "connected"
        self.interface.up = True
        self.modem.urc(b"WIFI GOT IP\r\n")
        by_command = self.join is not None
        self._outcome(OK)
        self.modem.interface_changed(self.interface)
        self.modem.hook.atmodem_station_joined(modem=self.modem, by_command=by_command)

    def _failed(self, reason: int) -> None:
        self.state, self.ap = "idle", None
        self.modem.urc(b"WIFI DISCONNECT (%d)\r\n" % reason)
        self._outcome(b"\r\n+CWJAP:%d\r\nFAIL\r\n" % FAIL_CODE.get(reason, 4))
        self._retry_later()

    def _outcome(self, reply: bytes) -> None:
        join, self.join = self.join, None
        if join is not None:
            self.auto_reconnect = False  # spec §6.2 ⚠: after the first CWJAP outcome, for good
            join.finish(reply)

    def retry(self) -> None:
        """The SDK's next attempt: automatic reconnection, or a pending AT+CWJAP trying again."""
        if self.state == "idle" and self.config and (self.auto_reconnect or self.join) \
                and has_sta(self.modem.settings.get(MODE)):
            self.start(self.config, self.join)

    # ------------------------------------------------------------ leaving

    def leave(self, reason: int) -> None:
        """Drop the association (AT+CWQAP, a new CWJAP, AP gone, mode change)."""
        self._cancel_timers()
        was_linked = self.linked
        was_up = self.interface.up
        self.state, self.ap = "idle", None
        self.interface.clear()
        if was_linked:
            self.modem.urc(b"WIFI DISCONNECT (%d)\r\n" % reason)
        if was_up:
            self.modem.interface_changed(self.interface)

    def lost(self, reason: int) -> None:
        """The AP went away under us; the SDK retries while auto-reconnect is on."""
        self.leave(reason)
        self._retry_later()

    def _retry_later(self) -> None:
        """The SDK tries again while auto-reconnect is on or an AT+CWJAP still waits."""
        if (self.auto_reconnect or self.join) and self.config:
            self._after(self.modem.timing.reconnect, self.retry)

    def shutdown(self) -> None:
        self._cancel_timers()


def apply_dns(modem) -> None:
    """Stored CIPDNS servers win over DHCP's; with neither the firmware forces 64.6.64.6 (spec §4)."""
    stored = modem.settings.get(DNS)
    if stored:
        modem.interfaces.dns = [IPv4(d) for d in stored]
    elif not modem.interfaces.dns:
        modem.interfaces.dns = [DEFAULT_DNS]


def softap_config(modem, saved: bool) -> dict:
    value = modem.settings.stored(SOFTAP) if saved else modem.settings.get(SOFTAP)
    if value is None:
        mac = modem.interfaces.ap.mac
        value = {"ssid": "ESP_%02X%02X%02X" % tuple(mac[3:]), "password": "", "channel": 1, "maxconn": 4,
                 "hidden": 0}
    return value


def apply_mode(modem, boot: bool = False) -> None:
    """Bring the interfaces in line with CWMODE (boot, AT+CWMODE=).

    At boot the station settings apply in every mode but AP-only, mode 0 included (spec §16.10).
    """
    mode = modem.settings.get(MODE)
    interfaces = modem.interfaces
    if has_sta(mode) or (boot and mode == OFF):
        apply_dns(modem)
    if not has_sta(mode) and station(modem).state != "idle":
        station(modem).leave(LEAVE)
    ap = interfaces.ap
    if has_ap(mode) and not ap.up:
        ap.assign(*(IPv4(a) for a in modem.settings.get(AP_ADDRESS) or DEFAULT_AP_ADDRESS))
        ap.up = True
        modem.interface_changed(ap)
    elif not has_ap(mode) and ap.up:
        ap.clear()
        modem.interface_changed(ap)


# ---------------------------------------------------------------- AT+CWMODE


def query_mode(modem, request):
    return b"+CWMODE%s:%d\r\n" % (request.suffix.encode(), modem.settings.get(MODE)) + OK


def set_mode(modem, request):
    mode = Params(request.args).single_number()
    if mode > AP_STA:
        raise AtError()
    modem.settings.set(MODE, mode, save=request.saves)
    apply_mode(modem)
    return OK


# ---------------------------------------------------------------- AT+CWJAP


def query_join(modem, request):
    _mode_check(modem, AP)
    sta = station(modem)
    if sta.state != "connected":
        return b"No AP\r\n" + OK
    ssid, bssid = sta.ap.ssid.encode(), sta.ap.bssid_bytes
    if request.suffix == "_DEF":
        saved = modem.settings.stored(STATION) or {}
        ssid = saved.get("ssid", "").encode()
        bssid = bytes.fromhex(saved["bssid"].replace(":", "")) if saved.get("bssid") else bssid
    return b'+CWJAP%s:"%s","%s",%d,%d\r\n' % (
        request.suffix.encode(), ssid, format_mac(bssid, upper=False).encode(), sta.ap.channel, sta.ap.rssi) + OK


def set_join(modem, request):
    _mode_check(modem, AP)
    limit = _string_max(modem)
    p = Params(request.args)
    ssid = p.string(limit)
    p.comma()
    password = p.string(limit)
    bssid = None
    if not p.at_end():
        p.comma()
        bssid = p.mac()
    p.end()
    if not ssid or (not password and not modem.profile.has("empty_password")):
        raise AtError()
    config = {"ssid": ssid.decode("latin-1"), "password": password.decode("latin-1"),
              "bssid": format_mac(bssid, upper=False) if bssid else None}
    if request.saves:
        modem.settings.set(STATION, config, save=True)
    sta = station(modem)
    if sta.linked:
        sta.leave(LEAVE)
    join = modem.busy()
    sta.start(config, join)
    return join


# ---------------------------------------------------------------- AT+CWQAP


def quit_ap(modem, request):
    sta = station(modem)
    if sta.linked:
        sta.leave(LEAVE)
        sta.config = None  # only when connected: otherwise auto-reconnect goes on (spec §16.10)
    return OK


# ---------------------------------------------------------------- AT+CWLAPOPT / AT+CWLAP


def set_scan_options(modem, request):
    """Parsed over the line buffer's memory, stale bytes included (spec §6.2, §16.6)."""
    start = len("AT+CWLAPOPT=")
    p = Params(bytes(modem.line_image[start:]))
    options = modem.settings.get(SCAN_OPTIONS)
    options[0] = p.number()
    modem.settings.set(SCAN_OPTIONS, options)  # sort sticks even if the mask is bad
    p.skip()
    options[1] = p.number()
    p.skip()
    if p.peek_digit() or p.data.startswith(b"-", p.pos):
        options[2] = p.signed()
    p.skip()
    if p.peek_digit():
        options[3] = p.number()
    modem.settings.set(SCAN_OPTIONS, options)
    return OK


class ScanFormat:
    """How AT+CWLAP shows an access point: ESP_ATMod's own (spec §6.2) is this class; a dialect
    with other encryption codes or quoting passes its own to ``scan``."""

    def code(self, ap: AccessPoint) -> Optional[int]:
        """The encryption code the line shows and the auth mask filters on; None: always listed."""
        return ARDUINO_ENC.get(ap.encryption)

    def line(self, ap: AccessPoint, mask: int) -> bytes:
        fields = []
        values = (
            b"%d" % ARDUINO_ENC.get(ap.encryption, 255),
            b"" if ap.hidden else ap.ssid.encode("latin-1"),
            b"%d" % ap.rssi,
            format_mac(ap.bssid_bytes, upper=True).encode(),
            b"%d" % ap.channel,
        )
        for bit, value in enumerate(values):
            if mask & (1 << bit):
                fields.append(value)
        fields += [b"0" for bit in range(5, 11) if mask & (1 << bit)]
        return b"+CWLAP:(" + b",".join(fields) + b")\n"


ATMOD_SCAN = ScanFormat()


def scan(modem, request, form: ScanFormat = ATMOD_SCAN):
    _mode_check(modem, AP)
    sort, mask, min_rssi, auth_mask = modem.settings.get(SCAN_OPTIONS)
    operation = modem.busy()
    if sort >= 2:
        return operation  # ⚠ the firmware never finishes this scan: BUSY for good

    def listed(ap: AccessPoint) -> bool:
        code = form.code(ap)
        return ap.rssi > min_rssi and (code is None or bool(auth_mask & (1 << code)))

    def done():
        found = [ap for ap in modem.world.on_air() if listed(ap)]
        if sort == 1:
            found.sort(key=lambda ap: ap.rssi, reverse=True)
        operation.finish(b"".join(form.line(ap, mask) for ap in found) + OK)

    operation.later(modem.timing.scan, done)
    return operation


# ---------------------------------------------------------------- AT+CWSAP


def query_softap(modem, request):
    _mode_check(modem, STA)
    config = softap_config(modem, saved=request.suffix != "_CUR")  # ⚠ unsuffixed shows the saved one
    return b'+CWSAP%s:"%s","%s",%d,%d,%d,%d\r\n' % (
        request.suffix.encode(), config["ssid"].encode("latin-1"), config["password"].encode("latin-1"),
        config["channel"], 4 if config["password"] else 0, config["maxconn"], config["hidden"]) + OK


def set_softap(modem, request):
    _mode_check(modem, STA)
    limit = _string_max(modem)
    p = Params(request.args)
    ssid = p.string(limit)
    p.comma()
    password = p.string(limit)
    p.skip()  # the firmware steps over this byte without checking it is a comma (spec §16.8)
    channel = p.number()
    p.comma()
    encryption = p.number()
    maxconn, hidden = 4, 0
    if not p.at_end():
        p.comma()
        maxconn = p.number()
        if not p.at_end():
            p.comma()
            hidden = p.number()
    p.end()
    if (not ssid or channel > 14 or encryption not in (0, 2, 3, 4) or maxconn > 4 or hidden > 1
            or len(ssid) > 32 or (password and not 8 <= len(password) <= 64)):
        raise AtError()
    config = {"ssid": ssid.decode("latin-1"), "password": password.decode("latin-1"), "channel": channel,
              "maxconn": maxconn, "hidden": hidden}
    modem.settings.set(SOFTAP, config, save=request.saves)
    return OK


# ---------------------------------------------------------------- AT+CWDHCP


def query_dhcp(modem, request):
    bits = modem.settings.stored(DHCP) if request.suffix == "_DEF" else modem.settings.get(DHCP)
    return b"+CWDHCP%s:%d\r\n" % (request.suffix.encode(), bits) + OK


def set_dhcp(modem, request):
    p = Params(request.args)
    which = p.number()
    p.comma()
    enable = p.number()
    p.end()
    if enable > 1:
        raise AtError()
    wifi_mode = modem.settings.get(MODE)
    if not modem.profile.has("dhcp_bits"):
        # 0.3.4: the mode's interfaces must be exactly CWMODE's, and only the STA bit counts.
        if which > 2 or (AP, STA, AP_STA)[which] != wifi_mode:
            raise AtError()
        bits = 1 | (enable << 1)
    else:
        masks = {0: DHCP_AP, 1: DHCP_STA, 2: DHCP_AP | DHCP_STA, 3: DHCP_ETH}
        if which not in masks:
            raise AtError()
        if (which == 0 and not has_ap(wifi_mode)) or (which == 1 and not has_sta(wifi_mode)) or \
                (which == 2 and wifi_mode == OFF):
            raise AtError()
        bits = modem.settings.get(DHCP)
        bits = bits | masks[which] if enable else bits & ~masks[which]
    store_dhcp(modem, bits, save=request.saves)
    return OK


def store_dhcp(modem, bits: int, save: bool) -> None:
    """Set the DHCP bits (1 SoftAP, 2 station, 4 Ethernet) and readdress a joined station."""
    before = modem.settings.get(DHCP)
    modem.settings.set(DHCP, bits, save=save)
    if (before ^ bits) & DHCP_STA and station(modem).state == "connected":
        station(modem).address()  # DHCP on: renew; off: the stored static address, if complete


# ---------------------------------------------------------------- AT+CWAUTOCONN


def query_autoconnect(modem, request):
    return b"+CWAUTOCONN:%d\r\n" % modem.settings.get(AUTOCONNECT) + OK


def set_autoconnect(modem, request):
    value = Params(request.args).single_number()
    if value > 1:
        raise AtError()
    modem.settings.set(AUTOCONNECT, value, save=True)
    return OK


# ---------------------------------------------------------------- AT+CIPSTAMAC / AT+CIPAPMAC


def _mac_commands(name: str, interface: str) -> list[Command]:
    def query(modem, request):
        mac = getattr(modem.interfaces, interface).mac
        return b'%s%s:"%s"\r\n' % (name.encode(), request.suffix.encode(), format_mac(mac, upper=True).encode()) + OK

    def set_(modem, request):
        p = Params(request.args)
        p.mac()
        p.end()
        raise AtError(b"NOT IMPLEMENTED\r\n")

    return with_suffixes(name, f"{interface} MAC address", query=query, set=set_)


# ---------------------------------------------------------------- AT+CIPSTA / AT+CIPAP


def address_lines(prefix: bytes, ip, gateway, netmask) -> bytes:
    return b"".join(b'%s:%s:%s\r\n' % (prefix, label, _quoted_ip(value))
                    for label, value in ((b"ip", ip), (b"gateway", gateway), (b"netmask", netmask)))


def parse_address(modem, args: bytes) -> list[str]:
    """``"ip"`` (gateway .1, /24) or ``"ip","gateway","netmask"`` (spec §6.2)."""
    p = Params(args)
    ip = p.ip()
    if p.at_end():
        gateway = IPv4((int(ip) & 0xFFFFFF00) | 1)
        return [str(ip), str(gateway), "255.255.255.0"]
    p.comma()
    gateway = p.ip()
    p.comma()
    netmask = p.ip()
    p.end()
    return [str(ip), str(gateway), str(netmask)]


def address_report(request, name: bytes, interface, usable: bool, stored) -> bytes:
    """AT+CIPSTA? / AT+CIPETH?: zeros unless the interface is up with an address; _DEF the saved one."""
    prefix = name + request.suffix.encode()
    if not usable or interface.ip == ZERO:
        return address_lines(prefix, ZERO, ZERO, ZERO) + OK
    if request.suffix == "_DEF":
        return address_lines(prefix, *(stored or ["0.0.0.0"] * 3)) + OK
    return address_lines(prefix, interface.ip, interface.gateway, interface.netmask) + OK


def query_sta_address(modem, request):
    _mode_check(modem, AP)
    return address_report(request, b"+CIPSTA", modem.interfaces.sta, station(modem).state == "connected",
                          modem.settings.stored(STA_STATIC))


def set_sta_address(modem, request):
    _mode_check(modem, AP)
    address = parse_address(modem, request.args)
    if modem.profile.has("dhcp_bits"):
        bits = modem.settings.get(DHCP) & ~DHCP_STA
    else:
        bits = 1  # 0.3.4 stores DHCP mode 1 (spec §12.1)
    modem.settings.set(DHCP, bits, save=request.saves)
    modem.settings.set(STA_STATIC, address, save=request.saves)
    if station(modem).state == "connected":
        modem.interfaces.sta.assign(*(IPv4(a) for a in address))
    return OK


def query_ap_address(modem, request):
    _mode_check(modem, STA)
    interface = modem.interfaces.ap
    if request.suffix == "_DEF":
        ip, gateway, netmask = modem.settings.stored(AP_ADDRESS) or DEFAULT_AP_ADDRESS
    else:
        ip, gateway, netmask = interface.ip, interface.gateway, interface.netmask
    if IPv4(ip) == ZERO:
        # ⚠ the firmware prints the zero lines with the station's prefix (spec §6.2)
        return address_lines(b"+CIPSTA" + request.suffix.encode(), ZERO, ZERO, ZERO) + OK
    return address_lines(b"+CIPAP" + request.suffix.encode(), ip, gateway, netmask) + OK


def set_ap_address(modem, request):
    _mode_check(modem, STA)
    address = parse_address(modem, request.args)
    modem.settings.set(AP_ADDRESS, address, save=request.saves)
    if modem.interfaces.ap.up:
        modem.interfaces.ap.assign(*(IPv4(a) for a in address))
    return OK


# ---------------------------------------------------------------- AT+CWHOSTNAME


def hostname(modem) -> bytes:
    name = modem.settings.get(HOSTNAME)
    if name is None:
        return b"ESP-%02X%02X%02X" % tuple(modem.interfaces.sta.mac[3:])
    return name.encode("latin-1")


def query_hostname(modem, request):
    return b"+CWHOSTNAME:%s\r\n" % hostname(modem) + OK


def set_hostname(modem, request):
    _mode_check(modem, AP)
    # No end-of-line check: what follows the closing quote is ignored.
    name = Params(request.args).string(_string_max(modem))
    if not name or len(name) > 32:
        raise AtError()
    modem.settings.set(HOSTNAME, name.decode("latin-1"))
    return OK


# ---------------------------------------------------------------- AT+CIFSR


def addresses(modem, request):
    interface = modem.interfaces.sta
    ip = interface.ip if station(modem).state == "connected" else ZERO
    return (b'+CISFR:STAIP,%s\r\n' % _quoted_ip(ip)  # sic: the firmware's typo (spec §6.3)
            + b'+CIFSR:STAMAC,"%s"\r\n' % format_mac(interface.mac, upper=True).encode() + OK)


# ---------------------------------------------------------------- AT+CIPDNS


def query_dns(modem, request):
    if request.suffix == "_DEF":
        servers = [IPv4(d) for d in modem.settings.stored(DNS) or ()]
    else:
        servers = list(modem.interfaces.dns)
    out = b""
    dns1 = servers[0] if servers else ZERO
    dns2 = servers[1] if len(servers) > 1 else ZERO
    if dns1 != ZERO:
        out += b"+CIPDNS%s:%s\r\n" % (request.suffix.encode(), str(dns1).encode())
    if dns2 not in (ZERO, dns1):
        out += b"+CIPDNS%s:%s\r\n" % (request.suffix.encode(), str(dns2).encode())
    return out + OK


def set_dns(modem, request):
    p = Params(request.args)
    enable = p.number()
    if enable == 0:
        p.end()
        modem.settings.set(DNS, None, save=request.saves)
        modem.interfaces.dns = [DEFAULT_DNS]
        return OK
    if enable != 1:
        raise AtError()
    p.comma()
    servers = [p.ip()]
    if servers[0] == ZERO:
        raise AtError(b"IP1 invalid\r\n")  # checked before anything after it is parsed
    if not p.at_end():
        p.comma()
        servers.append(p.ip())
    p.end()
    if len(servers) > 1 and servers[1] == ZERO:
        raise AtError(b"IP2 invalid\r\n")
    modem.settings.set(DNS, [str(s) for s in servers], save=request.saves)
    modem.interfaces.dns = servers
    return OK


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_commands(profile):
    commands = [
        *with_suffixes("+CWMODE", "Wi-Fi mode", query=query_mode, set=set_mode),
        *with_suffixes("+CWJAP", "join an access point", query=query_join, set=set_join),
        Command("+CWLAPOPT", Match.QUERY_SET, set=set_scan_options, summary="AT+CWLAP options"),
        Command("+CWLAP", Match.EXACT, execute=scan, summary="list access points"),
        Command("+CWQAP", Match.EXACT, execute=quit_ap, summary="leave the access point"),
        *with_suffixes("+CWSAP", "SoftAP configuration", query=query_softap, set=set_softap),
        *with_suffixes("+CWDHCP", "DHCP", query=query_dhcp, set=set_dhcp),
        Command("+CWAUTOCONN", Match.QUERY_SET, query=query_autoconnect, set=set_autoconnect,
                summary="join the saved AP at boot"),
    ]
    if profile.has("mac_query"):
        commands += _mac_commands("+CIPSTAMAC", "sta") + _mac_commands("+CIPAPMAC", "ap")
    commands += [
        *with_suffixes("+CIPSTA", "station address", query=query_sta_address, set=set_sta_address),
        *with_suffixes("+CIPAP", "SoftAP address", query=query_ap_address, set=set_ap_address),
        Command("+CWHOSTNAME", Match.QUERY_SET, query=query_hostname, set=set_hostname, summary="host name"),
        Command("+CIFSR", Match.EXACT, execute=addresses, summary="local addresses"),
        *with_suffixes("+CIPDNS", "DNS servers", query=query_dns, set=set_dns),
    ]
    return commands


@hookimpl
def atmodem_boot(modem):
    interfaces = modem.interfaces
    interfaces.sta.mac = modem.world.mac_bytes
    # The ESP8266's SoftAP MAC is the station's with the locally-administered bit set.
    interfaces.ap.mac = bytes((modem.world.mac_bytes[0] | 0x02,)) + modem.world.mac_bytes[1:]
    apply_mode(modem, boot=True)
    sta = station(modem)
    saved = modem.settings.get(STATION)
    if saved and modem.settings.get(AUTOCONNECT) and has_sta(modem.settings.get(MODE)):
        # The SDK joins on its own after boot (spec §4 step 8); the URCs come after 'ready'.
        sta.config = saved
        sta.start(saved)



@hookimpl
def atmodem_world_event(modem, event):
    sta = station(modem)
    if event.kind == "ap_removed" and sta.ap is event.subject:
        sta.lost(BEACON_TIMEOUT)

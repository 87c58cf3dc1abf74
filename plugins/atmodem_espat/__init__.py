"""Espressif's ESP-AT 2.x on the ESP8266, as a dialect (spec §10.3 and §12.2): what LwESP needs.

It rides on the same plugins as ESP_ATMod (Wi-Fi, TCP/IP, TLS, SNTP) and changes only what
differs: AT 2.x's version lines (profile data), its housekeeping commands (AT+SYSMSG, AT+SYSLOG, AT+RFPOWER,
AT+SYSSTORE), AT+CWMODE with its auto-connect flag, AT+CIPSTATE? and AT+CIPSTARTEX, and how
data and links look (``AT2Format``: quoted addresses, ``+CIPRECVDATA:<len>,``, ``-1`` for
empty links, ``+LINK_CONN`` when AT+SYSMSG asks for it).

TLS is configured the ESP-AT way: certificates and keys live in the manufacturing NVS
(``AT+SYSMFG``, namespaces ``client_ca``, ``client_cert``, ``client_key`` …, PEM or DER), and
``AT+CIPSSLCCONF`` chooses per link what to check and what to present (0 nothing, 1 the client
certificate, 2 the server against a CA, 3 both); ``AT+CIPSSLCSNI`` sets a link's SNI.

Wi-Fi in the AT 2.x shapes: ``+CWLAP`` with quoted SSID and BSSID, AT encryption codes and the
eleven fields of the ESP8266 build, ``AT+CWLAPOPT`` with hex masks, ``AT+CWDHCP=<operate>,<mode>``
with bit 0 for the station. With ``AT+SYSLOG=1`` every error the firmware tags gets its
``ERR CODE:0x%08x`` line before ERROR (Espressif's ``esp_at.h`` layout: category 0x01, subcategory,
extension).
"""

from __future__ import annotations

import base64
from typing import Optional

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.commands import Form
from atmodem.engine import ExactBytes
from atmodem.params import Params, number_setting
from atmodem.profiles import ESP_ATMOD_050, Profile
from atmodem.responses import OK
from atmodem.world import AccessPoint, format_mac
from atmodem_tcpip import SLOTS, DataFormat, links, open_link
from atmodem_tls import SecureLinks, Verification, as_pem, pem_key
from atmodem_wifi import (DHCP, DHCP_AP, DHCP_STA, MODE, SCAN_OPTIONS, ScanFormat, apply_mode, query_mode, scan,
                          store_dhcp)

NAMESPACE = "espat"
SYSMSG = Setting(NAMESPACE, "sysmsg", 0)
SYSLOG = Setting(NAMESPACE, "syslog", 0)
RFPOWER = Setting(NAMESPACE, "rfpower", 78)
SYSSTORE = Setting(NAMESPACE, "sysstore", 1)

LINK_CONN = 0b010   # AT+SYSMSG bit 1: +LINK_CONN instead of <id>,CONNECT

# AT+SYSLOG's error codes (ESP-AT docs, AT+SYSLOG; esp_at.h): 0x01 <subcategory> <16-bit extension>.
NO_TERMINATOR, NO_AT, PARA_INVALID, UNSUPPORTED, EXEC_FAIL = 0x02, 0x03, 0x07, 0x09, 0x0A

# The manufacturing NVS partition: {namespace: {key: [type, base64 value]}}; AT+RESTORE keeps it.
MFG = Setting(NAMESPACE, "mfg_nvs", {}, region="mfg_nvs")
MFG_NAMESPACES = ("server_cert", "server_key", "server_ca", "client_cert", "client_key", "client_ca",
                  "mqtt_cert", "mqtt_key", "mqtt_ca", "factory_param")
STRING, BLOB = 7, 8
NUMERIC = {1: (0, 0xFF), 2: (-0x80, 0x7F), 3: (0, 0xFFFF), 4: (-0x8000, 0x7FFF), 5: (0, 0xFFFFFFFF),
           6: (-0x80000000, 0x7FFFFFFF)}
MFG_VALUE_MAX = 8192
# Per link: [auth mode, PKI number, CA number] (AT+CIPSSLCCONF) and the SNI (AT+CIPSSLCSNI).
SSL_CONF = Setting(NAMESPACE, "ssl_conf", [[0, 0, 0]] * SLOTS)
SSL_SNI = Setting(NAMESPACE, "ssl_sni", [""] * SLOTS)

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
            "",   # AT 2.x leaves a blank line before OK
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


# ---------------------------------------------------------------- AT+SYSLOG error codes


def error_code(subcategory: int, extension: int = 0) -> int:
    return 0x01 << 24 | subcategory << 16 | extension


class EspAtError(AtError):
    """An error whose AT+SYSLOG code the handler knows (e.g. which parameter was invalid)."""

    def __init__(self, code: int, text: bytes = b""):
        super().__init__(text)
        self.code = code


def _tagged(modem, code: int, response: Optional[bytes] = None) -> bytes:
    """An error answer (the dialect's ERROR by default) with the code line just before its ERROR."""
    error = modem.syntax.error(modem)
    response = error if response is None else response
    at = response.rfind(error)
    if at < 0:
        return response
    return response[:at] + b"ERR CODE:0x%08x\r\n" % code + response[at:]


def _unmatched_code(line: bytes) -> int:
    if not line.startswith(b"AT"):
        return error_code(NO_AT)  # "at", "At", noise
    if not line.endswith(b"\r\n"):
        return error_code(NO_TERMINATOR)
    return error_code(UNSUPPORTED)


def _default_code(request) -> int:
    """A handler's plain AtError: a set command refused a parameter, anything else failed to run."""
    if request.form is Form.SET:
        return error_code(PARA_INVALID)
    return error_code(EXEC_FAIL)


def answer_with_codes(modem, line: bytes, request):
    """The engine's dispatch, with the ERR CODE line AT+SYSLOG=1 puts before every ERROR."""
    if request is None:
        return _tagged(modem, _unmatched_code(line))
    handler = request.command.handler(request.form)
    if handler is None:
        return _tagged(modem, error_code(UNSUPPORTED))
    try:
        return handler(modem, request)
    except EspAtError as exc:
        return _tagged(modem, exc.code, exc.response(modem))
    except AtError as exc:
        return _tagged(modem, _default_code(request), exc.response(modem))


# ---------------------------------------------------------------- housekeeping


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


# ---------------------------------------------------------------- Wi-Fi in the AT 2.x shapes

# AT encryption codes (wifi_auth_mode_t) and the ciphers the ESP8266 build reports (wifi_cipher_type_t).
AT_ECN = {"open": 0, "wep": 1, "wpa": 2, "wpa2": 3, "wpa_wpa2": 4, "wpa2_enterprise": 5, "wpa3": 6}
NO_CIPHER, WEP40, TKIP, CCMP, TKIP_CCMP = 0, 1, 3, 4, 5
PAIRWISE = {"open": NO_CIPHER, "wep": WEP40, "wpa": TKIP, "wpa_wpa2": TKIP_CCMP}
BGN = 7           # 802.11 b, g and n
SCAN_FIELDS = 11  # ecn, ssid, rssi, mac, channel, freq_offset, freqcal_val, pairwise, group, bgn, wps
# AT+CWLAPOPT's <sort>, <print mask>, <rssi filter>, <authmode mask>
SCAN_OPTION_RANGES = (range(0, 2), range(0, 1 << SCAN_FIELDS), range(-100, 41), range(0, 0x10000))


class AT2Scan(ScanFormat):
    def code(self, ap: AccessPoint) -> Optional[int]:
        return AT_ECN[ap.encryption]

    def line(self, ap: AccessPoint, mask: int) -> bytes:
        pairwise = PAIRWISE.get(ap.encryption, CCMP)
        group = TKIP if pairwise == TKIP_CCMP else pairwise
        values = (
            b"%d" % AT_ECN[ap.encryption],
            b'"%s"' % (b"" if ap.hidden else ap.ssid.encode("latin-1")),
            b"%d" % ap.rssi,
            b'"%s"' % format_mac(ap.bssid_bytes, upper=False).encode(),
            b"%d" % ap.channel,
            b"0", b"0",  # frequency offset and calibration: a simulated radio has neither
            b"%d" % pairwise,
            b"%d" % group,
            b"%d" % BGN,
            b"0",
        )
        return b"+CWLAP:(" + b",".join(v for bit, v in enumerate(values) if mask & (1 << bit)) + b")\r\n"


AT2_SCAN = AT2Scan()


HEX_DIGITS = b"0123456789abcdefABCDEF"


def _integer(p: Params) -> int:
    """A decimal number, or hexadecimal after ``0x`` (AT+CWLAPOPT's masks)."""
    if p.data.startswith((b"0x", b"0X"), p.pos):
        p.skip(2)
        start = p.pos
        while not p.at_end() and p.data[p.pos] in HEX_DIGITS:
            p.skip()
        if p.pos == start:
            raise AtError()
        return int(p.data[start:p.pos], 16)
    return p.signed()


def set_scan_options(modem, request):
    """AT+CWLAPOPT=<sort>,<print mask>[,<rssi filter>][,<authmode mask>]"""
    p = Params(request.args)
    values = []
    for index, valid in enumerate(SCAN_OPTION_RANGES):
        if index >= 2 and p.at_end():
            break
        if index:
            p.comma()
        value = _integer(p)
        if value not in valid:
            raise EspAtError(error_code(PARA_INVALID, index))
        values.append(value)
    p.end()
    options = modem.settings.get(SCAN_OPTIONS)
    options[:len(values)] = values
    modem.settings.set(SCAN_OPTIONS, options)
    return OK


def scan_at2(modem, request):
    return scan(modem, request, AT2_SCAN)


def query_dhcp(modem, request):
    bits = modem.settings.get(DHCP)
    return b"+CWDHCP:%d\r\n" % ((bits & DHCP_STA) >> 1 | (bits & DHCP_AP) << 1) + OK


def set_dhcp(modem, request):
    """AT+CWDHCP=<operate>,<mode>: <mode> bit 0 the station, bit 1 the SoftAP."""
    p = Params(request.args)
    operate = p.number()
    p.comma()
    which = p.number()
    p.end()
    if operate > 1:
        raise EspAtError(error_code(PARA_INVALID, 0))
    if not 0 < which <= 3:
        raise EspAtError(error_code(PARA_INVALID, 1))
    mask = (DHCP_STA if which & 1 else 0) | (DHCP_AP if which & 2 else 0)
    bits = modem.settings.get(DHCP)
    store_dhcp(modem, bits | mask if operate else bits & ~mask, save=bool(modem.settings.get(SYSSTORE)))
    return OK


# ---------------------------------------------------------------- AT+SYSMFG


def _mfg(modem) -> dict:
    return modem.settings.get(MFG)


def mfg_value(modem, namespace: str, key: str) -> Optional[bytes]:
    entry = _mfg(modem).get(namespace, {}).get(key)
    return base64.b64decode(entry[1]) if entry else None


def _store(modem, namespace: str, key: str, kind: int, value: bytes) -> None:
    store = _mfg(modem)
    store.setdefault(namespace, {})[key] = [kind, base64.b64encode(value).decode()]
    modem.settings.set(MFG, store, save=True)


def query_mfg(modem, request):
    return b"".join(b'+SYSMFG:"%s"\r\n' % ns.encode() for ns in MFG_NAMESPACES if _mfg(modem).get(ns)) + OK


def set_mfg(modem, request):
    p = Params(request.args)
    operation = p.number()
    p.comma()
    namespace = p.string(32).decode("latin-1")
    if namespace not in MFG_NAMESPACES:
        raise AtError()
    key = None
    if not p.at_end():
        p.comma()
        key = p.string(64).decode("latin-1")
    if operation == 0:
        p.end()
        return _erase(modem, namespace, key)
    if operation == 1:
        return _read(modem, p, namespace, key)
    if operation == 2 and key is not None:
        return _write(modem, p, namespace, key)
    raise AtError()


def _optional_pair(p: Params, first: int, second: int) -> tuple[int, int]:
    """``[,<a>,<b>]`` at the end of the parameters: both or neither."""
    if not p.at_end():
        p.comma()
        first = p.number()
        p.comma()
        second = p.number()
    p.end()
    return first, second


def _erase(modem, namespace: str, key: Optional[str]) -> bytes:
    store = _mfg(modem)
    if key is None:
        store.pop(namespace, None)
    elif store.get(namespace, {}).pop(key, None) is None:
        raise AtError()
    modem.settings.set(MFG, store, save=True)
    return OK


def _read(modem, p: Params, namespace: str, key: Optional[str]) -> bytes:
    entries = _mfg(modem).get(namespace, {})
    if key is None:
        p.end()
        return b"".join(b'+SYSMFG:"%s","%s",%d\r\n' % (namespace.encode(), k.encode(), entry[0])
                        for k, entry in entries.items()) + OK
    if key not in entries:
        raise AtError()
    kind, value = entries[key][0], base64.b64decode(entries[key][1])
    offset, length = _optional_pair(p, 0, len(value))
    if kind in NUMERIC:
        shown = value
    else:
        if offset > len(value):
            raise AtError()
        shown = value[offset:offset + length]
    return b'+SYSMFG:"%s","%s",%d,%d,' % (namespace.encode(), key.encode(), kind, len(shown)) + shown + OK


def _write(modem, p: Params, namespace: str, key: str):
    p.comma()
    kind = p.number()
    p.comma()
    if kind in NUMERIC:
        value = p.signed()
        p.end()
        low, high = NUMERIC[kind]
        if not low <= value <= high:
            raise AtError()
        _store(modem, namespace, key, kind, str(value).encode())
        return OK
    if kind not in (STRING, BLOB):
        raise AtError()
    length = p.number()
    p.end()
    if not 0 < length <= MFG_VALUE_MAX:
        raise AtError()
    def stored(value: bytes) -> None:
        _store(modem, namespace, key, kind, value)
        modem.write(OK)
        modem.end_raw()

    modem.start_raw(ExactBytes(length, stored))
    return OK + b"\r\n>"


# ---------------------------------------------------------------- AT+CIPSSLCCONF / AT+CIPSSLCSNI


def _link_ids(modem, p: Params) -> list[int]:
    """``<link>,`` in multiple-link mode (5: every link), nothing in single-link mode (link 0)."""
    if not links(modem).mux():
        return [0]
    index = p.number()
    p.comma()
    if index > SLOTS:
        raise AtError()
    return list(range(SLOTS)) if index == SLOTS else [index]


def set_ssl_conf(modem, request):
    p = Params(request.args)
    ids = _link_ids(modem, p)
    auth = p.number()
    if auth > 3:
        raise AtError()
    pki, ca = _optional_pair(p, 0, 0)
    conf = modem.settings.get(SSL_CONF)
    for index in ids:
        conf[index] = [auth, pki, ca]
    modem.settings.set(SSL_CONF, conf)
    return OK


def query_ssl_conf(modem, request):
    conf = modem.settings.get(SSL_CONF)
    if not links(modem).mux():
        return b"+CIPSSLCCONF:%d,%d,%d\r\n" % tuple(conf[0]) + OK
    return b"".join(b"+CIPSSLCCONF:%d,%d,%d,%d\r\n" % (i, *conf[i]) for i in range(SLOTS)) + OK


def set_sni(modem, request):
    p = Params(request.args)
    ids = _link_ids(modem, p)
    name = p.string(64).decode("latin-1")
    p.end()
    sni = modem.settings.get(SSL_SNI)
    for index in ids:
        sni[index] = name
    modem.settings.set(SSL_SNI, sni)
    return OK


def query_sni(modem, request):
    sni = modem.settings.get(SSL_SNI)
    if not links(modem).mux():
        return b'+CIPSSLCSNI:"%s"\r\n' % sni[0].encode() + OK
    return b"".join(b'+CIPSSLCSNI:%d,"%s"\r\n' % (i, sni[i].encode()) for i in range(SLOTS) if sni[i]) + OK


class EspAtSecureLinks(SecureLinks):
    """``"SSL"`` links configured per link by AT+CIPSSLCCONF, with the NVS certificates."""

    def check(self, modem) -> None:
        pass  # what a link needs depends on its id: see verification()

    def verification(self, modem, index: int) -> Verification:
        auth, pki, ca = modem.settings.get(SSL_CONF)[index]
        trusted, client = "", None
        if auth in (2, 3):
            trusted = as_pem(mfg_value(modem, "client_ca", f"client_ca.{ca}"))
            if not trusted:
                raise OSError(f"no client_ca.{ca} for link {index}")
        if auth in (1, 3):
            cert = mfg_value(modem, "client_cert", f"client_cert.{pki}")
            key = mfg_value(modem, "client_key", f"client_key.{pki}")
            if not cert or not key:
                raise OSError(f"no client_cert.{pki} / client_key.{pki} for link {index}")
            client = (as_pem(cert).encode(), pem_key(key))
        return Verification(trusted=trusted, client=client)

    def factory(self, modem, host: str, index: int):
        sni = modem.settings.get(SSL_SNI)[index]
        try:
            return super().factory(modem, sni or host, index)
        except OSError as exc:  # a missing certificate fails the connection, as the handshake would
            failure = exc

            def refuse(network, sock, remote):
                raise failure
            return refuse


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_profiles():
    return [ESP_AT_2]


@hookimpl
def atmodem_data_format(modem):
    return AT2Format(modem)


@hookimpl
def atmodem_link_type(modem, kind):
    return EspAtSecureLinks() if kind == b"SSL" else None


@hookimpl
def atmodem_before_command(modem, line, request):
    return answer_with_codes(modem, line, request) if modem.settings.get(SYSLOG) else None


@hookimpl
def atmodem_commands(profile):
    query_sysmsg, set_sysmsg = number_setting(SYSMSG, b"+SYSMSG", range(0, 8))
    query_syslog, set_syslog = number_setting(SYSLOG, b"+SYSLOG", range(0, 2))
    query_power, set_power = number_setting(RFPOWER, b"+RFPOWER", range(40, 83))
    query_store, set_store = number_setting(SYSSTORE, b"+SYSSTORE", range(0, 2))
    return [
        Command("+SYSMSG", Match.QUERY_SET, query=query_sysmsg, set=set_sysmsg, summary="system message options"),
        Command("+SYSLOG", Match.QUERY_SET, query=query_syslog, set=set_syslog, summary="error code logging"),
        Command("+RFPOWER", Match.QUERY_SET, query=query_power, set=set_power, summary="RF transmit power"),
        Command("+SYSSTORE", Match.QUERY_SET, query=query_store, set=set_store, summary="save settings to flash"),
        Command("+CWMODE", Match.QUERY_SET, query=query_mode, set=set_mode, summary="Wi-Fi mode (AT 2.x)"),
        Command("+CWLAPOPT", Match.QUERY_SET, set=set_scan_options, summary="AT+CWLAP options (AT 2.x)"),
        Command("+CWLAP", Match.EXACT, execute=scan_at2, summary="list access points (AT 2.x)"),
        Command("+CWDHCP", Match.QUERY_SET, query=query_dhcp, set=set_dhcp, summary="DHCP (AT 2.x)"),
        Command("+CIPSTATE?", Match.EXACT, execute=query_state, summary="link list"),
        Command("+CIPSTARTEX", Match.NO_CHECK, set=start_ex, summary="open a link on a free id"),
        Command("+SYSMFG", Match.QUERY_SET, query=query_mfg, set=set_mfg, summary="manufacturing NVS data"),
        Command("+CIPSSLCCONF", Match.QUERY_SET, query=query_ssl_conf, set=set_ssl_conf,
                summary="TLS checks per link"),
        Command("+CIPSSLCSNI", Match.QUERY_SET, query=query_sni, set=set_sni, summary="TLS SNI per link"),
    ]

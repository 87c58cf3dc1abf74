"""The SSL configuration of each secure socket (SSId), seed 004 §6: #SSLEN, #SSLSECCFG,
#SSLSECCFG2, #SSLSECDATA, #SSLCFG; and ``client_context``, which turns an SSId's configuration into
the ``ssl.SSLContext`` every Telit service (socket, HTTPS, FTPS, MQTT) dials with.

Cipher suites: a non-zero ``<CipherSuite>`` names one suite of the profile's table (seed 004
§6.2.2, §12.1.2-4) by its IANA id; the model offers exactly that suite through the host's
OpenSSL, found by the id OpenSSL reports for it. A suite this OpenSSL cannot offer (RC4, NULL
on most builds) is refused at ``AT#SSLSECCFG`` with ``+CME ERROR: 4`` and a log line naming it,
since no handshake could ever use it. ``0`` offers OpenSSL's default list for the version.

Versions (``AT#SSLSECCFG2`` ``<version>``): 0 SSL 3.0, 1 TLS 1.0, 2 TLS 1.1, 3 TLS 1.2; the
module speaks exactly that version. SSL 3.0 is refused as an unavailable suite is.
``<SNI>`` 1 sends the host name and checks the server certificate against it; 0 sends no
SNI and checks the chain and dates only (OpenSSL cannot check a name it does not send).
``<skipHostMismatch>`` 1 (ID 30, 37) sends SNI but accepts a certificate for another name. ID 37's
``<CustomCA>`` and ``<PreloadedCA>`` masks are kept and shown; the model has one CA store, the
#SSLSECDATA one, and no preloaded roots. ``<MinVersion>`` lets the server pick down to it.

Security data (``AT#SSLSECDATA``) lives in the module's NVM (the ``nvm`` flash region: it
survives resets), action 3 in RAM (gone at the next boot). Everything else is per boot.
Dates are checked at the module's clock (``+CCLK``), through ``atmodem_tls.openssl``.
"""

from __future__ import annotations

import base64
import functools
import logging
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Optional

from atmodem import Setting
from atmodem.engine import ExactBytes
from atmodem.params import Params
from atmodem_tls import as_pem, load_client_identity, openssl, pem_key

from atmodem_telit.basic import modem_time
from atmodem_telit.framing import (OPERATION_NOT_ALLOWED, OPERATION_NOT_SUPPORTED, SSL_ALREADY_ACTIVATED,
                                   SSL_ALREADY_CONNECTED, SSL_CERTS_WRONG, SSL_NOT_ACTIVATED,
                                   CmeError, command, info, ok, ranges, result)
from atmodem_telit.pdp import cids

log = logging.getLogger(__name__)

NAMESPACE = "telit.ssl"
NVM = "nvm"
CTRL_Z, ESC, BACKSPACE = 0x1A, 0x1B, 0x08

CLIENT_CERT, CA_CERT, CLIENT_KEY = 0, 1, 2
DELETE, STORE, READ, STORE_RAM = 0, 1, 2, 3
DER, PEM = 0, 1

VERSIONS = {
    0: ssl.TLSVersion.SSLv3,
    1: ssl.TLSVersion.TLSv1,
    2: ssl.TLSVersion.TLSv1_1,
    3: ssl.TLSVersion.TLSv1_2,
}

# #SSLCFG: the fields every family has after <SSId> (seed 004 §6.7), with defaults from §6.8.3's read
# response (1,1,300,90,100,50,0,0,0,0). The optional ones after them differ by family: the profile's
# ``sslcfg_tail`` names them with the values the model takes, ``sslcfg_shown`` is how many values
# the read form shows after <SSId> (zeros pad it).
SSLCFG_FIELDS = ("cid", "packet_size", "idle_timeout", "default_timeout", "tx_timeout", "ring_mode")
SSLCFG_REQUIRED = 5     # <cid> to <txTo>


@dataclass
class SslConfig:
    """One SSId's configuration as the commands set it."""

    cipher_suite: int = 0
    auth_mode: int = 0
    cert_format: int = PEM
    format_given: bool = False        # the read form shows <cert_format> only once it was typed
    version: int = 3
    sni: int = 0
    cid: int = 1
    packet_size: int = 300            # bytes per packet in online mode (0: the default 300)
    idle_timeout: int = 90            # seconds without traffic before an online link closes (0: never)
    default_timeout: int = 100        # 100 ms units: #SSLSEND/#SSLRECV when they give none
    tx_timeout: int = 50              # 100 ms units: online data waits this long for a full packet (0: no)
    ring_mode: int = 0                # SSLSRING: 0 off, 1 length, 2 length and data
    no_carrier_mode: int = 0
    skip_host_mismatch: int = 0       # ID 30, 37: 1 sends SNI but accepts a certificate for another name
    equalize_tx: int = 0
    connect_timeout: int = 0
    unused: int = 0
    custom_ca: int = 0                # ID 37 #SSLSECCFG2 masks: recorded; the CA is always #SSLSECDATA's
    preloaded_ca: int = 0
    min_version: int = 0              # ID 37: the lowest version accepted (0: exactly <version>)
    ram_data: dict = field(default_factory=dict)   # AT#SSLSECDATA action 3, by data type

    @property
    def send_packet(self) -> int:
        return self.packet_size or 300


# The service #SSLEN enables: the secure socket commands themselves.
SOCKETS = "SSL"


class SslClaims:
    """Which service uses each SSId's SSL now: SSL is one shared resource, enabled for one of
    the socket commands (#SSLEN), HTTP, FTP or MQTT at a time (seed 004 §6.1 warning, §8.2, §9.1)."""

    def __init__(self):
        self._holders: dict[int, str] = {}

    def holder(self, ssid: int) -> Optional[str]:
        return self._holders.get(ssid)

    def claim(self, ssid: int, service: str) -> None:
        """``CmeError(835)`` "SSL already activated" if another service holds ``ssid``."""
        if self._holders.get(ssid, service) != service:
            raise CmeError(SSL_ALREADY_ACTIVATED)
        self._holders[ssid] = service

    def release(self, ssid: int) -> None:
        self._holders.pop(ssid, None)


class SslStore:
    """Every SSId's configuration for this boot, and the claims on them."""

    def __init__(self, modem):
        default_version = modem.profile.constants["ssl_version"]
        self.configs = {ssid: SslConfig(version=default_version) for ssid in ssids(modem)}
        self.claims = SslClaims()

    def enabled(self, ssid: int) -> bool:
        """#SSLEN enabled ``ssid`` for the secure socket commands."""
        return self.claims.holder(ssid) == SOCKETS

    def activated(self, ssid: int) -> bool:
        """Some service (#SSLEN's sockets, or HTTP, FTP, MQTT) uses ``ssid``'s SSL: it may be configured."""
        return self.claims.holder(ssid) is not None


def ssl_store(modem) -> SslStore:
    return modem.runtime_of(NAMESPACE, SslStore)


def ssl_claims(modem) -> SslClaims:
    """The modem's ``SslClaims`` (``holder(ssid)``, ``claim(ssid, service)``, ``release(ssid)``)."""
    return ssl_store(modem).claims


def ssids(modem) -> range:
    """The profile's secure socket ids (1 or 1-6)."""
    return modem.profile.constants["ssids"]


def ssl_config(modem, ssid: int) -> SslConfig:
    """The configuration of ``ssid`` (raises ``CmeError(4)`` for an id the profile does not have)."""
    config = ssl_store(modem).configs.get(ssid)
    if config is None:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return config


def activated_config(modem, ssid: int) -> SslConfig:
    """The configuration of an SSId some service activated SSL on (#SSLEN, or #MQCFG with SSL
    and the like: seed 004 §10.1.1); ``CmeError(836)`` "SSL not activated" if none did."""
    config = ssl_config(modem, ssid)
    if not ssl_store(modem).activated(ssid):
        raise CmeError(SSL_NOT_ACTIVATED)
    return config


# ---------------------------------------------------------------- security data


def _data_setting(ssid: int, data_type: int) -> Setting:
    return Setting(NAMESPACE, f"secdata.{ssid}.{data_type}", default=None, region=NVM)


def security_data(modem, ssid: int, data_type: int) -> Optional[bytes]:
    """What #SSLSECDATA stored for ``ssid`` (``CLIENT_CERT``, ``CA_CERT``, ``CLIENT_KEY``): RAM first, then NVM."""
    config = ssl_config(modem, ssid)
    if data_type in config.ram_data:
        return config.ram_data[data_type]
    stored = modem.settings.get(_data_setting(ssid, data_type))
    return base64.b64decode(stored) if stored is not None else None


def _store_data(modem, ssid: int, data_type: int, value: bytes, in_ram: bool) -> None:
    config = ssl_config(modem, ssid)
    if in_ram:
        config.ram_data[data_type] = value
    else:
        config.ram_data.pop(data_type, None)
        modem.settings.set(_data_setting(ssid, data_type), base64.b64encode(value).decode("ascii"), save=True)


def _delete_data(modem, ssid: int, data_type: int) -> None:
    ssl_config(modem, ssid).ram_data.pop(data_type, None)
    modem.settings.set(_data_setting(ssid, data_type), None, save=True)


# ---------------------------------------------------------------- the SSL context


@functools.cache
def _openssl_names() -> dict[int, str]:
    """OpenSSL's cipher names by IANA id (the low 16 bits of OpenSSL's id), for every suite this
    OpenSSL can offer at all."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return {entry["id"] & 0xFFFF: entry["name"] for entry in probe.get_ciphers()}


def openssl_cipher(iana_id: int) -> Optional[str]:
    """The OpenSSL name of the suite with this IANA id, or None if this OpenSSL cannot offer it."""
    return _openssl_names().get(iana_id)


def cipher_table(modem) -> dict[int, tuple[int, str]]:
    """<CipherSuite> number -> (IANA id, IANA name) for the profile."""
    return modem.profile.constants["cipher_suites"]


def suite_number(modem, openssl_name: str) -> int:
    """The <CipherSuite> number of a negotiated suite (what #SSLS shows); 0 for one outside the table."""
    for number, (iana, _name) in cipher_table(modem).items():
        if openssl_cipher(iana) == openssl_name:
            return number
    return 0


def client_context(modem, ssid: int) -> ssl.SSLContext:
    """The client context ``ssid``'s configuration asks for, ready for ``TlsLink``.

    Raises ``CmeError(837)`` when the authentication mode needs security data that is missing
    or unusable.
    """
    config = ssl_config(modem, ssid)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    version = VERSIONS[config.version]
    with warnings.catch_warnings():   # TLS 1.0 and 1.1 are deprecated in Python, not in the module
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
        if config.min_version:
            context.minimum_version = VERSIONS[config.min_version]
    # The module offers what it was told to, whatever the host's OpenSSL policy thinks of it.
    if config.cipher_suite:
        context.set_ciphers(openssl_cipher(cipher_table(modem)[config.cipher_suite][0]) + ":@SECLEVEL=0")
    elif version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if config.auth_mode == 0:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            context.load_verify_locations(cadata=as_pem(security_data(modem, ssid, CA_CERT)) or None)
        except (ssl.SSLError, ValueError, TypeError):   # TypeError: nothing stored
            raise CmeError(SSL_CERTS_WRONG) from None
        context.check_hostname = bool(config.sni) and not config.skip_host_mismatch
        if not openssl.set_verify_time(context, int(modem_time(modem))):
            log.warning("verifying at the host's clock: OpenSSL extensions unavailable")
    if config.auth_mode == 2:
        certificate, key = security_data(modem, ssid, CLIENT_CERT), security_data(modem, ssid, CLIENT_KEY)
        if not certificate or not key:
            raise CmeError(SSL_CERTS_WRONG)
        try:
            load_client_identity(context, as_pem(certificate).encode("latin-1"), pem_key(key))
        except (OSError, ValueError) as exc:
            log.info("SSId %d: client certificate or key unusable: %s", ssid, exc)
            raise CmeError(SSL_CERTS_WRONG) from None
    return context


def server_name(modem, ssid: int, host: str) -> Optional[str]:
    """The name to send as SNI (and check) when dialling ``host`` on ``ssid``; None without SNI."""
    return host if ssl_config(modem, ssid).sni else None


# ---------------------------------------------------------------- #SSLEN


def _ssid(modem, p: Params) -> int:
    ssid = p.number()
    ssl_config(modem, ssid)
    return ssid


def set_sslen(modem, request):
    p = Params(request.args)
    ssid = _ssid(modem, p)
    p.comma()
    enable = p.single_number()
    if enable > 1:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    store = ssl_store(modem)
    if enable:
        if store.claims.holder(ssid) is not None:
            raise CmeError(SSL_ALREADY_ACTIVATED)
        store.claims.claim(ssid, SOCKETS)
    elif store.enabled(ssid):
        if secure_socket_open(modem, ssid):
            raise CmeError(SSL_ALREADY_CONNECTED)
        store.claims.release(ssid)
    return ok(modem)


def query_sslen(modem, request):
    store = ssl_store(modem)
    return info(modem, *(b"#SSLEN: %d,%d" % (ssid, store.enabled(ssid)) for ssid in ssids(modem)))


def test_sslen(modem, request):
    return info(modem, b"#SSLEN: " + ranges(ssids(modem), (0, 1)))


def _enabled_lines(modem, render) -> bytes:
    """A read form over the activated SSIds; none: 836 "SSL not activated" (seed 004 §6.8.3)."""
    store = ssl_store(modem)
    found = [ssid for ssid in ssids(modem) if store.activated(ssid)]
    if not found:
        raise CmeError(SSL_NOT_ACTIVATED)
    return info(modem, *(render(ssid, store.configs[ssid]) for ssid in found))


def _settable(modem, ssid: int) -> SslConfig:
    config = activated_config(modem, ssid)
    if secure_socket_open(modem, ssid):
        raise CmeError(SSL_ALREADY_CONNECTED)
    return config


def secure_socket_open(modem, ssid: int) -> bool:
    """#SSLD has a connection on ``ssid`` (open or suspended)."""
    from atmodem_telit.sockets import sockets
    return sockets(modem).get(ssid) is not None


# ---------------------------------------------------------------- #SSLSECCFG


def set_seccfg(modem, request):
    p = Params(request.args)
    ssid = _ssid(modem, p)
    p.comma()
    suite = p.number()
    p.comma()
    auth = p.number()
    cert_format = None
    if not p.at_end() and modem.profile.has("cert_format"):
        p.comma()
        cert_format = p.number()
    p.end()
    if suite not in (0, *cipher_table(modem)) or auth > 2 or cert_format not in (None, DER, PEM):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    config = _settable(modem, ssid)
    if suite:
        iana, name = cipher_table(modem)[suite]
        if openssl_cipher(iana) is None:
            log.warning("cipher suite %d (%s, 0x%04X) is not offered by this machine's OpenSSL (%s)",
                        suite, name, iana, ssl.OPENSSL_VERSION)
            raise CmeError(OPERATION_NOT_SUPPORTED)
    config.cipher_suite, config.auth_mode = suite, auth
    if cert_format is not None:
        config.cert_format, config.format_given = cert_format, True
    return ok(modem)


def query_seccfg(modem, request):
    def render(ssid, c):
        line = b"#SSLSECCFG: %d,%d,%d" % (ssid, c.cipher_suite, c.auth_mode)
        return line + (b",%d" % c.cert_format if c.format_given else b"")
    return _enabled_lines(modem, render)


def test_seccfg(modem, request):
    return info(modem, b"#SSLSECCFG: " + ranges(ssids(modem), range(0, max(cipher_table(modem)) + 1), range(0, 3),
                                               (DER, PEM)))


# ---------------------------------------------------------------- #SSLSECCFG2


def set_seccfg2(modem, request):
    p = Params(request.args)
    ssid = _ssid(modem, p)
    p.comma()
    version = p.number()
    given = []
    while not p.at_end():
        p.comma()
        given.append(p.number())
    p.end()
    tail = modem.profile.constants["seccfg2_tail"]
    if (version not in VERSIONS or len(given) > len(tail)
            or any(value not in valid for value, (_name, valid) in zip(given, tail))):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    values = {name: value for (name, _valid), value in zip(tail, given + [0] * (len(tail) - len(given))) if name}
    if values.get("min_version", 0) > version:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    config = _settable(modem, ssid)
    if version == 0 and not ssl.HAS_SSLv3:
        log.warning("SSL 3.0 is not offered by this machine's OpenSSL (%s)", ssl.OPENSSL_VERSION)
        raise CmeError(OPERATION_NOT_SUPPORTED)
    config.version = version
    for name, value in values.items():
        setattr(config, name, value)
    return ok(modem)


def query_seccfg2(modem, request):
    tail = modem.profile.constants["seccfg2_tail"]

    def render(ssid, c):
        return b"#SSLSECCFG2: %d,%d," % (ssid, c.version) + b",".join(
            b"%d" % (getattr(c, name) if name else 0) for name, _valid in tail)
    return _enabled_lines(modem, render)


def test_seccfg2(modem, request):
    tail = modem.profile.constants["seccfg2_tail"]
    return info(modem, b"#SSLSECCFG2: " + ranges(ssids(modem), range(0, 4), *(valid for _name, valid in tail)))


# ---------------------------------------------------------------- #SSLSECDATA


def set_secdata(modem, request):
    p = Params(request.args)
    ssid = _ssid(modem, p)
    p.comma()
    action = p.number()
    p.comma()
    data_type = p.number()
    size = None
    if not p.at_end():
        p.comma()
        size = p.number()
    p.end()
    actions = (DELETE, STORE, READ, STORE_RAM) if modem.profile.has("secdata_ram") else (DELETE, STORE, READ)
    if action not in actions or data_type > CLIENT_KEY:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    config = activated_config(modem, ssid)
    if action == DELETE:
        _delete_data(modem, ssid, data_type)
        return ok(modem)
    if action == READ:
        if data_type == CLIENT_KEY:
            raise CmeError(OPERATION_NOT_ALLOWED)   # a private key never leaves the module
        value = security_data(modem, ssid, data_type)
        if value is None:
            raise CmeError(SSL_CERTS_WRONG)
        return info(modem, b"#SSLSECDATA: %d,%d" % (ssid, data_type), value.rstrip(b"\n").replace(b"\n", b"\r\n"))
    if size is None or not 1 <= size <= modem.profile.constants["secdata_max"]:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    def store(data: bytes) -> None:
        _store_data(modem, ssid, data_type, data, action == STORE_RAM)
        modem.write(ok(modem))

    if config.cert_format == PEM:
        modem.start_raw(TextInput(modem, modem.profile.constants["secdata_max"], store))
    else:
        modem.start_raw(sized_input(modem, size, store))
    return prompt(modem)


def test_secdata(modem, request):
    actions = range(0, 4 if modem.profile.has("secdata_ram") else 3)
    return info(modem, b"#SSLSECDATA: " + ranges(ssids(modem), actions, range(0, 3),
                                                range(1, modem.profile.constants["secdata_max"] + 1)))


def prompt(modem) -> bytes:
    """The data prompt of #SSLSECDATA, #SSLSEND, #SSLSENDEXT."""
    return b"\r\n> "


class TextInput:
    """Bytes after a ``>`` prompt up to Ctrl-Z (seed 004 §6.5, §7.1.2.1): backspace deletes the
    byte before it, ESC abandons the input (OK, nothing done); echoed when echo is on. More than
    ``limit`` bytes is ERROR. ``done(data)`` answers; it may return a ``modem.raw_work()`` the
    modem stays deaf for (a socket write)."""

    def __init__(self, modem, limit: int, done):
        self.modem = modem
        self.limit = limit
        self.done = done
        self.data = bytearray()
        self.overflow = False   # more than ``limit`` came: kept no further, ERROR at Ctrl-Z

    def take(self, data: bytes) -> int:
        for position, byte in enumerate(data):
            if byte == CTRL_Z or byte == ESC:
                self._echo(data[:position])
                then = None
                if byte == ESC:
                    self.modem.write(ok(self.modem))
                elif self.overflow:
                    self.modem.write(result(self.modem, b"ERROR"))
                else:
                    then = self.done(bytes(self.data))
                _leave(self.modem, then)
                return position + 1
            if byte == BACKSPACE:
                del self.data[-1:]
            elif len(self.data) < self.limit:
                self.data.append(byte)
            else:
                self.overflow = True
        self._echo(data)
        return len(data)

    def _echo(self, data: bytes) -> None:
        if self.modem.echo:
            self.modem.write(data)


def sized_input(modem, size: int, done) -> ExactBytes:
    """Exactly ``size`` binary bytes after a ``>`` prompt, not echoed; then ``done(data)`` as for ``TextInput``."""
    return ExactBytes(size, lambda data: _leave(modem, done(data)))


def _leave(modem, then) -> None:
    """Back to commands once the data is handled; deaf while ``then`` (a socket write) runs."""
    modem.end_raw(then)
    if then is not None and then.done:
        modem.write(then.output)   # it finished before the modem started waiting for it


# ---------------------------------------------------------------- #SSLCFG


def set_sslcfg(modem, request):
    p = Params(request.args)
    ssid = _ssid(modem, p)
    values = []
    while not p.at_end():
        p.comma()
        values.append(p.number())
    names, limits = zip(*_sslcfg_fields(modem))
    if not SSLCFG_REQUIRED <= len(values) <= len(limits) or any(v not in limit for v, limit in zip(values, limits)):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    config = _settable(modem, ssid)
    for name, value in zip(names, values):
        setattr(config, name, value)
    return ok(modem)


def _sslcfg_fields(modem) -> tuple[tuple[str, range], ...]:
    """(field, valid values) of #SSLCFG after <SSId>: the common ones, then the profile's tail."""
    common = (cids(modem), range(0, 1501), range(0, 65536), range(10, 5001), range(0, 256), range(0, 3))
    return tuple(zip(SSLCFG_FIELDS, common)) + modem.profile.constants["sslcfg_tail"]


def query_sslcfg(modem, request):
    names = [name for name, _valid in _sslcfg_fields(modem)]
    padding = modem.profile.constants["sslcfg_shown"] - len(names)

    def render(ssid, c):
        return b"#SSLCFG: %d," % ssid + b",".join([b"%d" % getattr(c, name) for name in names] + [b"0"] * padding)
    return _enabled_lines(modem, render)


def test_sslcfg(modem, request):
    return info(modem, b"#SSLCFG: " + ranges(ssids(modem), *(valid for _name, valid in _sslcfg_fields(modem))))


def commands():
    return [
        command("#SSLEN", query=query_sslen, set=set_sslen, test=test_sslen, summary="enable a secure socket"),
        command("#SSLSECCFG2", query=query_seccfg2, set=set_seccfg2, test=test_seccfg2,
                summary="TLS version and SNI"),
        command("#SSLSECCFG", query=query_seccfg, set=set_seccfg, test=test_seccfg,
                summary="cipher suite, authentication, certificate format"),
        command("#SSLSECDATA", set=set_secdata, test=test_secdata, summary="store, read, delete security data"),
        command("#SSLCFG", query=query_sslcfg, set=set_sslcfg, test=test_sslcfg, summary="secure socket configuration"),
    ]


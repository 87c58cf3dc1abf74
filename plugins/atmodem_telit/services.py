"""Telit's services over SSL (seed 004 §8.2 HTTPS, §9 FTPS, §10 MQTT): #HTTPCFG, #HTTPQRY, #HTTPRCV
and the #HTTPRING URC; #FTPCFG, #FTPOPEN, #FTPGET, #FTPCLOSE; #MQEN, #MQCFG, #MQCFG2, #MQTCFG,
#MQCONN, #MQDISC.

Every service runs over real sockets through the world (names, forwarded ports) and, with SSL on,
real TLS configured by the #SSL commands of the SSL socket the service uses: SSId 1 for HTTP and
FTP, the instance number for MQTT (seed §10.1.1). SSL "can be used only by one service at a
time" (seed §8.2, §9.1, §6.1's warning): a service that turns SSL on claims it, and a second
claim is ``SSL already activated``.

FTPS is explicit (AUTH TLS, RFC 4217, seed §9): the control connection starts in the clear and
is upgraded before the user name is sent; each passive data connection is a new TLS session
(no session reuse, seed §9). HTTP answers OK once the request is on its way, then #HTTPRING
reports status, content type and Content-Length; #HTTPRCV prints ``<<<`` and the body (Telit's
AT reference). MQTT is 3.1.1: CONNECT, CONNACK, PINGREQ every keep-alive, DISCONNECT.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass, field
from typing import Callable, Optional

from atmodem import Match, hookimpl
from atmodem.net import Link
from atmodem.params import Params
from atmodem_tls import TlsLink

from atmodem_telit.framing import (CONTEXT_NOT_OPENED, OPERATION_NOT_ALLOWED, OPERATION_NOT_SUPPORTED,
                                   SSL_HANDSHAKE, CmeError, cme_error, command, info,
                                   lines, ok, result)
from atmodem_telit.pdp import context_address
from atmodem_telit.ssl import client_context, server_name, ssl_claims

log = logging.getLogger(__name__)

NAMESPACE = "telit.services"
TLS_RECORD_BUFFER = 16384      # the module takes full-size records

# Telit's FTP error codes (AT reference, "FTP error codes"); 558/562 are IP Easy's.
FTP_WRONG_STATE = 601
FTP_CANNOT_RESOLVE = 603
FTP_CANNOT_CONNECT = 605
FTP_BAD_RESPONSE = 606
FTP_NOT_CONNECTED = 607
FTP_ALREADY_CONNECTED = 608
CANNOT_RESOLVE = 558
CONNECTION_FAILED = 562


class ExplicitTlsLink(TlsLink):
    """A TLS link that stays plain TCP until ``start_tls``: FTP's AUTH TLS (RFC 4217)."""

    secured = False

    @property
    def available(self) -> int:
        return super().available if self.secured else len(self.inbox)

    def read(self, size: int) -> bytes:
        return super().read(size) if self.secured else Link.read(self, size)

    def establish(self, done: Callable[[bool], None]) -> None:
        if self.secured:
            super().establish(done)
        else:
            done(True)

    def start_tls(self, done: Callable[[bool], None]) -> None:
        self.secured = True
        self.establish(done)

    def _received(self, data: bytes) -> None:
        if self.secured:
            super()._received(data)
        else:
            self.inbox += data

    def _transmitted(self, data: bytes) -> bytes:
        return super()._transmitted(data) if self.secured else data


class Dial:
    """Resolve, connect and (with a context) shake hands; then ``done(link)``, or
    ``failed(stage)`` with stage ``"resolve"``, ``"connect"``, ``"handshake"`` or ``"timeout"``."""

    def __init__(self, modem, host: str, port: int, context: Optional[ssl.SSLContext], timeout: float,
                 done: Callable[[Link], None], failed: Callable[[str], None], *, explicit: bool = False,
                 sni: Optional[str] = None):
        self.modem = modem
        self.host, self.port = host, port
        self.sni = sni    # what TLS sends and checks (None: no SNI, #SSLSECCFG2)
        self.context = context
        self.explicit = explicit
        self.done, self.failed = done, failed
        self.attempt = None
        self.link: Optional[Link] = None
        self.timer = modem.clock.call_later(timeout, self._fail, "timeout")
        # Started from the clock, so that a failure never finishes a command before its handler returned.
        self.starting = modem.clock.call_later(0, modem.network.resolve, host, self._resolved)

    def _factory(self):
        if self.context is None:
            return Link
        kind = ExplicitTlsLink if self.explicit else TlsLink

        def make(network, sock, remote):
            return kind(network, sock, remote, context=self.context, host=self.sni, buffer=TLS_RECORD_BUFFER,
                        fingerprint=None)

        return make

    def _resolved(self, address: Optional[str]) -> None:
        if self.timer is None:
            return
        if address is None:
            self._fail("resolve")
            return
        self.attempt = self.modem.network.connect(address, self.port, self._connected, self._factory())

    def _connected(self, link: Optional[Link]) -> None:
        self.attempt = None
        if self.timer is None:
            if link is not None:
                link.close()
            return
        if link is None:
            self._fail("connect")
            return
        self.link = link
        link.establish(self._established)

    def _established(self, secure: bool) -> None:
        if self.timer is None:
            return
        if not secure:
            self._fail("handshake")
            return
        self.timer.cancel()
        self.timer = None
        self.done(self.link)

    def _fail(self, stage: str) -> None:
        if self.timer is None:
            return
        self.timer.cancel()
        self.timer = None
        self.cancel()
        self.failed(stage)

    def cancel(self) -> None:
        self.starting.cancel()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for work in (self.attempt, self.link):
            if work is not None:
                work.cancel()
        self.attempt = self.link = None


def drain(link: Link) -> bytes:
    """Everything the link holds now (a TLS link offers one record at a time)."""
    data = bytearray()
    while link.available:
        data += link.read(link.available)
    return bytes(data)


def _claim(modem, ssid: int, service: str) -> None:
    """Take SSL for ``service``: 835 "SSL already activated" while another service holds it."""
    ssl_claims(modem).claim(ssid, service)


def _release(modem, ssid: int, service: str) -> None:
    if ssl_claims(modem).holder(ssid) == service:
        ssl_claims(modem).release(ssid)


def _skip_spaces(p: Params) -> None:
    # The guide writes AT#MQCONN=1,"client_id","", "": a space after a comma is taken.
    while p.data[p.pos:p.pos + 1] == b" ":
        p.skip()


def _optional_number(p: Params, default: int, valid: range) -> int:
    """``,<n>`` or ``,`` (the default) at the cursor, or nothing left: the default."""
    if p.at_end():
        return default
    p.comma()
    if p.at_end() or p.data[p.pos:p.pos + 1] == b",":
        return default
    value = p.number()
    if value not in valid:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return value


def _optional_string(p: Params, default: bytes, limit: int) -> bytes:
    if p.at_end():
        return default
    p.comma()
    _skip_spaces(p)
    if p.at_end() or p.data[p.pos:p.pos + 1] == b",":
        return default
    return p.string(limit)


def _number(p: Params, valid: range) -> int:
    value = p.number()
    if value not in valid:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return value


# ================================================================ HTTP

HTTP_PROFILES = range(0, 3)
HTTP_SSID = 1
HTTP_SERVICE = "HTTP"
HTTP_COMMANDS = {0: b"GET", 1: b"HEAD", 2: b"DELETE"}
RCV_CHUNKS = range(64, 1501)     # #HTTPRCV <maxByte>: 0 (no limit) or 64-1500
STRING_MAX = 256


@dataclass
class HttpProfile:
    server: bytes = b""
    port: int = 80
    auth_type: int = 0
    username: bytes = b""
    password: bytes = b""
    ssl_enabled: int = 0
    timeout: int = 120
    cid: int = 1
    pkt_size: int = 0
    query: Optional["HttpQuery"] = None
    body: bytes = b""               # what #HTTPRCV has still to print

    def line(self, prof_id: int) -> bytes:
        return b'#HTTPCFG: %d,"%s",%d,%d,"%s","%s",%d,%d,%d,%d' % (
            prof_id, self.server, self.port, self.auth_type, self.username, self.password, self.ssl_enabled,
            self.timeout, self.cid, self.pkt_size)


def set_httpcfg(modem, request):
    p = Params(request.args)
    prof_id = _number(p, HTTP_PROFILES)
    current = services(modem).http[prof_id]
    if current.query is not None:
        raise CmeError(OPERATION_NOT_ALLOWED)
    server = _optional_string(p, current.server, STRING_MAX)
    port = _optional_number(p, current.port, range(1, 65536))
    auth_type = _optional_number(p, current.auth_type, range(0, 2))
    username = _optional_string(p, current.username, STRING_MAX)
    password = _optional_string(p, current.password, STRING_MAX)
    ssl_enabled = _optional_number(p, current.ssl_enabled, range(0, 2))
    timeout = _optional_number(p, current.timeout, range(1, 121))
    cid = _optional_number(p, current.cid, modem.profile.constants["cids"])
    pkt_size = _optional_number(p, current.pkt_size, range(0, 1501))
    p.end()
    if pkt_size and pkt_size < 64:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    if ssl_enabled:
        _claim(modem, HTTP_SSID, HTTP_SERVICE)
    elif not any(other.ssl_enabled for i, other in services(modem).http.items() if i != prof_id):
        _release(modem, HTTP_SSID, HTTP_SERVICE)
    current.server, current.port, current.auth_type = server, port, auth_type
    current.username, current.password, current.ssl_enabled = username, password, ssl_enabled
    current.timeout, current.cid, current.pkt_size = timeout, cid, pkt_size
    return ok(modem)


def query_httpcfg(modem, request):
    profiles = services(modem).http
    return info(modem, *(profiles[i].line(i) for i in HTTP_PROFILES))


class HttpQuery:
    """One request of a profile: connect, send, collect the answer, announce it with #HTTPRING."""

    def __init__(self, modem, prof_id: int, profile: HttpProfile, request: bytes, operation):
        self.modem = modem
        self.prof_id = prof_id
        self.profile = profile
        self.request = request
        self.operation = operation
        self.answer = bytearray()
        self.link: Optional[Link] = None
        context = client_context(modem, HTTP_SSID) if profile.ssl_enabled else None
        host = profile.server.decode("latin-1")
        self.dial = Dial(modem, host, profile.port, context, profile.timeout, self._connected, self._failed,
                         sni=server_name(modem, HTTP_SSID, host))
        self.deadline = None

    def _failed(self, stage: str) -> None:
        self.profile.query = None
        code = {"resolve": CANNOT_RESOLVE, "handshake": SSL_HANDSHAKE}.get(stage, CONNECTION_FAILED)
        self.operation.finish(cme_error(self.modem, code))

    def _connected(self, link: Link) -> None:
        self.link = link
        link.on_change = self._changed
        link.send(self.request, self._sent)

    def _sent(self, ok_: bool) -> None:
        if not ok_:
            self._close()
            self.operation.finish(cme_error(self.modem, CONNECTION_FAILED))
            return
        self.operation.finish(ok(self.modem))
        self.deadline = self.modem.clock.call_later(self.profile.timeout, self._ring)
        self._changed(self.link)

    def _changed(self, link: Link) -> None:
        self.answer += drain(link)
        if self.deadline is not None and (link.peer_closed or _http_complete(bytes(self.answer))):
            self._ring()

    def _ring(self) -> None:
        if self.profile.query is not self:
            return
        status, content_type, size, body = _parse_http(bytes(self.answer))
        self.profile.body = body
        self._close()
        self.modem.urc(lines(self.modem, b'#HTTPRING: %d,%d,"%s",%d' % (self.prof_id, status, content_type, size)))

    def _close(self) -> None:
        self.profile.query = None
        if self.deadline is not None:
            self.deadline.cancel()
        self.dial.cancel()
        if self.link is not None:
            self.link.close()

    cancel = _close


_STATUS = re.compile(rb"HTTP/\d\.\d (\d{3})")


def _split_http(answer: bytes) -> Optional[tuple[bytes, bytes]]:
    head, separator, body = answer.partition(b"\r\n\r\n")
    return (head, body) if separator else None


def _headers(head: bytes) -> dict[bytes, bytes]:
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return fields


def _content_length(fields: dict[bytes, bytes]) -> int:
    value = fields.get(b"content-length", b"")
    return int(value) if value.isdigit() else 0


def _http_complete(answer: bytes) -> bool:
    parts = _split_http(answer)
    if parts is None:
        return False
    fields = _headers(parts[0])
    return b"content-length" in fields and len(parts[1]) >= _content_length(fields)


def _parse_http(answer: bytes) -> tuple[int, bytes, int, bytes]:
    """Status, Content-Type, Content-Length (0 when absent, as the AT reference says) and body;
    a server that said nothing usable is status 0 (the AT reference's no-answer case)."""
    parts = _split_http(answer)
    status = _STATUS.match(answer)
    if parts is None or status is None:
        return 0, b"", 0, b""
    fields = _headers(parts[0])
    return int(status.group(1)), fields.get(b"content-type", b""), _content_length(fields), parts[1]


def set_httpqry(modem, request):
    p = Params(request.args)
    prof_id = _number(p, HTTP_PROFILES)
    p.comma()
    method = HTTP_COMMANDS.get(p.number())
    if method is None:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    p.comma()
    resource = p.string(STRING_MAX)
    extra = _optional_string(p, b"", STRING_MAX)
    p.end()
    profile = services(modem).http[prof_id]
    if profile.query is not None or not profile.server:
        raise CmeError(OPERATION_NOT_ALLOWED)
    if context_address(modem, profile.cid) is None:
        raise CmeError(CONTEXT_NOT_OPENED)
    host = profile.server
    if profile.port != (443 if profile.ssl_enabled else 80):
        host += b":%d" % profile.port
    # The module always sends "Connection: close" (Telit's AT reference, #HTTPQRY note).
    head = b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, resource or b"/", host)
    if extra:
        head += extra.rstrip(b"\r\n") + b"\r\n"
    operation = modem.block()
    profile.body = b""
    profile.query = HttpQuery(modem, prof_id, profile, head + b"\r\n", operation)
    return operation


def set_httprcv(modem, request):
    p = Params(request.args)
    prof_id = _number(p, HTTP_PROFILES)
    limit = _optional_number(p, 0, range(0, 1501))
    p.end()
    if limit and limit not in RCV_CHUNKS:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    profile = services(modem).http[prof_id]
    if not profile.body:
        raise CmeError(OPERATION_NOT_ALLOWED)
    chunk = profile.body[:limit] if limit else profile.body
    profile.body = profile.body[len(chunk):]
    return b"\r\n<<<" + chunk + ok(modem)


# ================================================================ FTP

FTP_SSID = 1
FTP_SERVICE = "FTP"
FTP_PORT = 21
FTP_CID = 1
_REPLY = re.compile(rb"(\d{3}) [^\r\n]*\r\n", re.M)
_PASV = re.compile(rb"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)")


class FtpSession:
    """The control connection and its conversation: each step sends a line (or nothing) and
    waits for a final reply, which goes to the step's ``then``."""

    def __init__(self, modem, host: str, secure: bool, timeout: float):
        self.modem = modem
        self.host = host
        self.secure = secure
        self.timeout = timeout
        self.link: Optional[ExplicitTlsLink | Link] = None
        self.replies = bytearray()
        self.waiting: Optional[Callable[[int, bytes], None]] = None
        self.timer = None
        self.dial: Optional[Dial] = None
        self.data: Optional[Dial | Link] = None
        self.logged_in = False

    def converse(self, line: Optional[bytes], then: Callable[[int, bytes], None]) -> None:
        self.waiting = then
        self.timer = self.modem.clock.call_later(self.timeout, self._answer, 0, b"")
        if line is not None:
            self.link.send(line + b"\r\n", lambda sent: sent or self._answer(0, b""))
        self._changed(self.link)

    def _changed(self, link: Link) -> None:
        self.replies += drain(link)
        found = _final_reply(self.replies)
        if found is not None:
            code, text, end = found
            del self.replies[:end]
            self._answer(code, text)
        elif link.peer_closed:
            self._answer(0, b"")

    def _answer(self, code: int, text: bytes) -> None:
        then, self.waiting = self.waiting, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if then is not None:
            then(code, text)

    def abandon(self) -> None:
        """Stop waiting for a reply and drop the data connection (a transfer that failed)."""
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.data is not None:
            self.data.cancel()
            self.data = None

    def close(self) -> None:
        self.abandon()
        for work in (self.dial, self.link):
            if work is not None:
                work.cancel()
        self.dial = self.link = None


def _final_reply(replies: bytearray) -> Optional[tuple[int, bytes, int]]:
    """The first complete final reply line (``ddd text``; ``ddd-`` lines continue it)."""
    match = _REPLY.search(replies)
    return (int(match.group(1)), match.group(0), match.end()) if match else None


@dataclass
class FtpConfig:
    tout: int = 100              # hundreds of ms
    ipp_ignoring: int = 0
    ftps: int = 0


def set_ftpcfg(modem, request):
    p = Params(request.args)
    config = services(modem).ftp_config
    tout = _number(p, range(100, 5001))
    ipp_ignoring = _optional_number(p, config.ipp_ignoring, range(0, 2))
    ftps = _optional_number(p, config.ftps, range(0, 2))
    p.end()
    if services(modem).ftp is not None:
        raise CmeError(FTP_ALREADY_CONNECTED)
    if ftps:
        _claim(modem, FTP_SSID, FTP_SERVICE)
    else:
        _release(modem, FTP_SSID, FTP_SERVICE)
    config.tout, config.ipp_ignoring, config.ftps = tout, ipp_ignoring, ftps
    return ok(modem)


def query_ftpcfg(modem, request):
    config = services(modem).ftp_config
    return info(modem, b"#FTPCFG: %d,%d,%d" % (config.tout, config.ipp_ignoring, config.ftps))


def set_ftpopen(modem, request):
    p = Params(request.args)
    endpoint = p.string(STRING_MAX)
    p.comma()
    user = p.string(STRING_MAX)
    p.comma()
    password = p.string(STRING_MAX)
    _optional_number(p, 0, range(0, 2))   # <mode>: taken; every transfer here is passive (PASV)
    p.end()
    host, _, port_text = endpoint.rpartition(b":") if b":" in endpoint else (endpoint, b"", b"")
    if port_text and not port_text.isdigit() or not host:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    port = int(port_text) if port_text else FTP_PORT
    state = services(modem)
    if state.ftp is not None:
        raise CmeError(FTP_ALREADY_CONNECTED)
    if context_address(modem, FTP_CID) is None:
        raise CmeError(CONTEXT_NOT_OPENED)
    secure = bool(state.ftp_config.ftps)
    context = client_context(modem, FTP_SSID) if secure else None
    session = state.ftp = FtpSession(modem, host.decode("latin-1"), secure, state.ftp_config.tout / 10)
    operation = modem.block()

    def fail(code: int) -> None:
        session.close()
        state.ftp = None
        operation.finish(cme_error(modem, code))

    def expect(wanted: int, then: Callable[[], None], code: int = FTP_BAD_RESPONSE):
        return lambda got, text: then() if got == wanted else fail(code)

    def connected(link) -> None:
        session.link = link
        link.on_change = session._changed
        session.converse(None, expect(220, authenticate if secure else login))

    def authenticate() -> None:
        session.converse(b"AUTH TLS", expect(234, handshake))

    def handshake() -> None:
        session.link.start_tls(lambda secured: protect() if secured else fail(SSL_HANDSHAKE))

    def protect() -> None:
        session.converse(b"PBSZ 0", expect(200, lambda: session.converse(b"PROT P", expect(200, login))))

    def login() -> None:
        session.converse(b"USER " + user, lambda got, text: (password_step() if got == 331 else
                                                           logged_in() if got == 230 else fail(FTP_BAD_RESPONSE)))

    def password_step() -> None:
        session.converse(b"PASS " + password, expect(230, logged_in))

    def logged_in() -> None:
        session.converse(b"TYPE I", expect(200, done))

    def done() -> None:
        session.logged_in = True
        operation.finish(ok(modem))

    def failed(stage: str) -> None:
        fail({"resolve": FTP_CANNOT_RESOLVE, "handshake": SSL_HANDSHAKE}.get(stage, FTP_CANNOT_CONNECT))

    session.dial = Dial(modem, session.host, port, context, session.timeout, connected, failed, explicit=secure,
                        sni=server_name(modem, FTP_SSID, session.host))
    return operation


def set_ftpget(modem, request):
    p = Params(request.args)
    name = p.string(STRING_MAX)
    p.end()
    session = services(modem).ftp
    if session is None or not session.logged_in:
        raise CmeError(FTP_NOT_CONNECTED)
    if session.waiting is not None or session.data is not None:
        raise CmeError(FTP_WRONG_STATE)
    operation = modem.block()
    transfer = {"connect": False, "ended": False, "reply": None, "quiet": None}

    def fail(code: int) -> None:
        session.abandon()
        operation.finish(cme_error(modem, code) if not transfer["connect"] else result(modem, b"NO CARRIER"))

    def entered(code: int, text: bytes) -> None:
        match = _PASV.search(text)
        if code != 227 or match is None:
            fail(FTP_BAD_RESPONSE)
            return
        numbers = [int(n) for n in match.groups()]
        address = ".".join(str(n) for n in numbers[:4])
        # The data connection is a TLS session of its own (no reuse, seed §9), for the same server.
        context = client_context(modem, FTP_SSID) if session.secure else None
        session.data = Dial(modem, address, numbers[4] * 256 + numbers[5], context, session.timeout,
                            opened, lambda stage: fail(FTP_CANNOT_CONNECT),
                            sni=server_name(modem, FTP_SSID, session.host))
        session.converse(b"RETR " + name, retrieving)

    def retrieving(code: int, text: bytes) -> None:
        if code not in (125, 150):
            fail(FTP_BAD_RESPONSE)
            return
        transfer["connect"] = True
        operation.write(result(modem, b"CONNECT"))
        session.converse(None, completed)
        if isinstance(session.data, Link):
            arrived(session.data)

    def opened(link: Link) -> None:
        session.data = link
        link.on_change = arrived
        arrived(link)

    def arrived(link: Link) -> None:
        if not transfer["connect"]:
            return   # the file follows CONNECT, which waits for the server's 150
        operation.write(drain(link))
        if link.peer_closed:
            end_of_data()
        elif transfer["reply"] is not None:
            watch_data()

    def end_of_data() -> None:
        if transfer["ended"]:
            return
        if transfer["quiet"] is not None:
            transfer["quiet"].cancel()
        if isinstance(session.data, Link):
            session.data.close()
        session.data = None
        transfer["ended"] = True
        conclude()

    def watch_data() -> None:
        """The control connection has had its say: a data connection silent for the session's
        timeout is given up (a stalled server must not hold the module)."""
        if transfer["quiet"] is not None:
            transfer["quiet"].cancel()
        transfer["quiet"] = operation.later(session.timeout, end_of_data)

    def completed(code: int, text: bytes) -> None:
        transfer["reply"] = code
        if not transfer["ended"]:
            watch_data()
        conclude()

    def conclude() -> None:
        if transfer["ended"] and transfer["reply"] is not None:
            operation.finish(result(modem, b"NO CARRIER"))

    session.converse(b"PASV", entered)
    return operation


def execute_ftpclose(modem, request):
    state = services(modem)
    session = state.ftp
    if session is None:
        raise CmeError(FTP_NOT_CONNECTED)
    operation = modem.block()

    def closed(code: int, text: bytes) -> None:
        session.close()
        state.ftp = None
        operation.finish(ok(modem))

    if session.waiting is None and session.link is not None:
        session.converse(b"QUIT", closed)
    else:
        closed(0, b"")
    return operation


# ================================================================ MQTT

MQTT_INSTANCES = range(1, 3)
MQTT_SERVICE = "MQTT"
MQTT_FIELD_MAX = 256


@dataclass
class MqttClient:
    enabled: int = 0
    host: bytes = b""
    port: int = 1883
    cid: int = 1
    ssl_enabled: int = 0
    keep_alive: int = 60
    clean_session: int = 1
    packet_timeout: int = 10
    link: Optional[Link] = None
    dial: Optional[Dial] = None
    timers: list = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.link is not None and not self.link.peer_closed and not self.link.closed

    def drop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        for work in (self.dial, self.link):
            if work is not None:
                work.cancel()
        self.dial = self.link = None


def _instance(modem, p: Params, enabled: bool = True) -> tuple[int, MqttClient]:
    number = _number(p, MQTT_INSTANCES)
    client = services(modem).mqtt[number]
    if enabled and not client.enabled:
        raise CmeError(OPERATION_NOT_ALLOWED)
    return number, client


def set_mqen(modem, request):
    p = Params(request.args)
    number, client = _instance(modem, p, enabled=False)
    p.comma()
    enable = _number(p, range(0, 2))
    p.end()
    client.enabled = enable
    if not enable:
        client.drop()
        if client.ssl_enabled:
            _release(modem, number, MQTT_SERVICE)
            client.ssl_enabled = 0
    return ok(modem)


def query_mqen(modem, request):
    clients = services(modem).mqtt
    return info(modem, *(b"#MQEN: %d,%d" % (n, clients[n].enabled) for n in MQTT_INSTANCES))


def set_mqcfg(modem, request):
    p = Params(request.args)
    number, client = _instance(modem, p)
    p.comma()
    host = p.string(MQTT_FIELD_MAX)
    p.comma()
    port = _number(p, range(1, 65536))
    p.comma()
    cid = _number(p, modem.profile.constants["cids"])
    ssl_enabled = _optional_number(p, 0, range(0, 2))
    p.end()
    if client.connected:
        raise CmeError(OPERATION_NOT_ALLOWED)
    if ssl_enabled:
        _claim(modem, number, MQTT_SERVICE)
    elif client.ssl_enabled:
        _release(modem, number, MQTT_SERVICE)
    client.host, client.port, client.cid, client.ssl_enabled = host, port, cid, ssl_enabled
    return ok(modem)


def query_mqcfg(modem, request):
    clients = services(modem).mqtt
    return info(modem, *(b'#MQCFG: %d,"%s",%d,%d,%d' % (n, c.host, c.port, c.cid, c.ssl_enabled)
                         for n, c in clients.items() if c.enabled))


def set_mqcfg2(modem, request):
    p = Params(request.args)
    _, client = _instance(modem, p)
    p.comma()
    keep_alive = _number(p, range(0, 3601))
    p.comma()
    clean = _number(p, range(0, 2))
    p.end()
    client.keep_alive, client.clean_session = keep_alive, clean
    return ok(modem)


def query_mqcfg2(modem, request):
    clients = services(modem).mqtt
    return info(modem, *(b"#MQCFG2: %d,%d,%d" % (n, c.keep_alive, c.clean_session)
                         for n, c in clients.items() if c.enabled))


def set_mqtcfg(modem, request):
    p = Params(request.args)
    _, client = _instance(modem, p)
    p.comma()
    client_timeout = _number(p, range(1, 61))
    p.end()
    client.packet_timeout = client_timeout
    return ok(modem)


def query_mqtcfg(modem, request):
    clients = services(modem).mqtt
    return info(modem, *(b"#MQTCFG: %d,%d" % (n, c.packet_timeout) for n, c in clients.items() if c.enabled))


def _utf8_field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _packet(kind: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        length, digit = length >> 7, length & 0x7F
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            break
    return bytes([kind]) + bytes(encoded) + body


def connect_packet(client_id: bytes, user: bytes, password: bytes, keep_alive: int, clean: bool) -> bytes:
    """An MQTT 3.1.1 CONNECT; an empty user name or password is left out (seed §10.1.1)."""
    flags = (0x02 if clean else 0) | (0x80 if user else 0) | (0x40 if password else 0)
    body = _utf8_field(b"MQTT") + bytes([4, flags]) + keep_alive.to_bytes(2, "big") + _utf8_field(client_id)
    body += (_utf8_field(user) if user else b"") + (_utf8_field(password) if password else b"")
    return _packet(0x10, body)


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


def set_mqconn(modem, request):
    p = Params(request.args)
    number, client = _instance(modem, p)
    p.comma()
    client_id = p.string(MQTT_FIELD_MAX)
    p.comma()
    _skip_spaces(p)
    user = p.string(MQTT_FIELD_MAX)
    p.comma()
    _skip_spaces(p)
    password = p.string(MQTT_FIELD_MAX)
    p.end()
    if client.connected or client.dial is not None or not client.host:
        raise CmeError(OPERATION_NOT_ALLOWED)
    if context_address(modem, client.cid) is None:
        raise CmeError(CONTEXT_NOT_OPENED)
    context = client_context(modem, number) if client.ssl_enabled else None
    client.drop()   # what is left of a session the broker ended: its link is still open on this side
    operation = modem.block()
    answer = bytearray()

    def fail(code: int) -> None:
        client.drop()
        operation.finish(cme_error(modem, code))

    def connected(link: Link) -> None:
        client.dial = None
        client.link = link
        link.on_change = acknowledged
        timer = modem.clock.call_later(client.packet_timeout, fail, CONNECTION_FAILED)
        client.timers.append(timer)
        link.send(connect_packet(client_id, user, password, client.keep_alive, bool(client.clean_session)),
                  lambda sent: sent or fail(CONNECTION_FAILED))

    def acknowledged(link: Link) -> None:
        answer.extend(drain(link))
        if len(answer) >= 4 and answer[0] == 0x20:
            for timer in client.timers:
                timer.cancel()
            client.timers.clear()
            if answer[3] != 0:
                fail(OPERATION_NOT_ALLOWED)   # the broker refused: return code in CONNACK
                return
            link.on_change = lambda link: drain(link)
            _keep_alive(modem, client)
            operation.finish(ok(modem))
        elif link.peer_closed or len(answer) >= 4:
            fail(CONNECTION_FAILED)

    def failed(stage: str) -> None:
        client.dial = None
        fail({"resolve": CANNOT_RESOLVE, "handshake": SSL_HANDSHAKE}.get(stage, CONNECTION_FAILED))

    host = client.host.decode("latin-1")
    client.dial = Dial(modem, host, client.port, context, client.packet_timeout, connected, failed,
                       sni=server_name(modem, number, host))
    return operation


def _keep_alive(modem, client: MqttClient) -> None:
    """PINGREQ every keep-alive interval while connected (0: none, MQTT 3.1.1 §3.1.2.10)."""
    if not client.keep_alive:
        return

    def ping() -> None:
        client.timers.clear()
        if client.connected:
            client.link.send(PINGREQ, lambda sent: None)
            client.timers.append(modem.clock.call_later(client.keep_alive, ping))

    client.timers.append(modem.clock.call_later(client.keep_alive, ping))


def query_mqconn(modem, request):
    clients = services(modem).mqtt
    return info(modem, *(b"#MQCONN: %d,%d" % (n, c.connected) for n, c in clients.items() if c.enabled))


def set_mqdisc(modem, request):
    p = Params(request.args)
    _, client = _instance(modem, p)
    p.end()
    if not client.connected:
        raise CmeError(OPERATION_NOT_ALLOWED)
    operation = modem.block()
    link = client.link

    def sent(_delivered: bool) -> None:
        client.drop()
        operation.finish(ok(modem))

    link.send(DISCONNECT, sent)
    return operation


# ================================================================ state and hooks


class Services:
    """The services' state during one boot."""

    def __init__(self, modem):
        self.http = {i: HttpProfile() for i in HTTP_PROFILES}
        self.ftp_config = FtpConfig()
        self.ftp: Optional[FtpSession] = None
        self.mqtt = {i: MqttClient() for i in MQTT_INSTANCES}

    def shutdown(self) -> None:
        for profile in self.http.values():
            if profile.query is not None:
                profile.query.cancel()
        if self.ftp is not None:
            self.ftp.close()
        for client in self.mqtt.values():
            client.drop()


def services(modem) -> Services:
    return modem.runtime_of(NAMESPACE, Services)


@hookimpl
def atmodem_commands(profile):
    return [
        command("#HTTPCFG", query=query_httpcfg, set=set_httpcfg, summary="HTTP profile"),
        command("#HTTPQRY", set=set_httpqry, summary="HTTP GET/HEAD/DELETE request"),
        command("#HTTPRCV", set=set_httprcv, summary="read the HTTP answer"),
        command("#FTPCFG", query=query_ftpcfg, set=set_ftpcfg, summary="FTP timeout and FTPS"),
        command("#FTPOPEN", set=set_ftpopen, summary="open an FTP(S) session"),
        command("#FTPGET", set=set_ftpget, summary="download a file"),
        command("#FTPCLOSE", execute=execute_ftpclose, match=Match.EXACT, summary="close the FTP session"),
        command("#MQEN", query=query_mqen, set=set_mqen, summary="MQTT client on/off"),
        command("#MQCFG", query=query_mqcfg, set=set_mqcfg, summary="MQTT broker and SSL"),
        command("#MQCFG2", query=query_mqcfg2, set=set_mqcfg2, summary="MQTT keep-alive and clean session"),
        command("#MQTCFG", query=query_mqtcfg, set=set_mqtcfg, summary="MQTT packet timeout"),
        command("#MQCONN", query=query_mqconn, set=set_mqconn, summary="connect to the MQTT broker"),
        command("#MQDISC", set=set_mqdisc, summary="disconnect from the MQTT broker"),
    ]

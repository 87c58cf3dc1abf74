"""Secure sockets (seed 004 §7): #SSLD opens one per SSId over the SSId's PDP context and SSL
configuration; then data moves in ONLINE mode (the UART is the socket until ``+++``) or in
COMMAND mode (#SSLSEND, #SSLSENDEXT, #SSLRECV, SSLSRING URCs); #SSLO goes back online, #SSLH
closes, #SSLS reports, #SSLFASTD dials again resuming the last TLS session.

ONLINE mode: UART bytes are sent in packets of ``<pktSz>`` bytes, or whatever waits when
``<txTo>`` (100 ms units; 0: none) passes; what the server sends goes straight to the UART.
``+++`` with the S12 guard time of silence before and after it (1 s by default, measured on the
modem's clock) suspends the connection: ``OK``, and commands again. ``<maxTo>`` seconds without
traffic, or the server closing, end it with ``NO CARRIER``.

COMMAND mode: with ``<sslSRingMode>`` 1 each arrival is announced as ``SSLSRING: <SSId>,<n>``
with the bytes waiting (again after an #SSLRECV that left some); with 2 the data comes in the
URC, ``SSLSRING: <SSId>,<n>,<data>``, one TLS record (at most ``ring_chunk`` bytes) each. A
server that closed is announced with ``NO CARRIER`` once its data has been read.

#SSLFASTD: ``<ClosureType>`` 1 on #SSLD or #SSLH keeps the TLS session when the socket closes;
#SSLFASTD dials the same server offering it, and the server resumes it without a full
handshake. ``#SSLH=<SSId>,0`` forgets it.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Callable, Optional

from atmodem.params import Params
from atmodem_tls import TlsLink

from atmodem_telit.framing import (CONTEXT_NOT_OPENED, OPERATION_NOT_SUPPORTED, SSL_ALREADY_CONNECTED,
                                   SSL_DISCONNECTED, SSL_HANDSHAKE, SSL_INVALID_STATE, SSL_NOT_ACTIVATED,
                                   SSL_NOT_CONNECTED, SSL_SOCKET_ERROR, CmeError, command, cme_error, dialect, info,
                                   lines, ok, result)
from atmodem_telit.pdp import contexts
from atmodem_telit.ssl import (SslConfig, TextInput, client_context, prompt, server_name, sized_input,
                               ssl_config, ssl_store, suite_number)

log = logging.getLogger(__name__)

NAMESPACE = "telit.sockets"
TLS_RECORD_BUFFER = 16384      # the module takes full-size records
SEND_MAX = 1500                # #SSLSEND bytes before Ctrl-Z, #SSLSENDEXT's <bytestosend>
RECV_MAX = 1000                # #SSLRECV's <MaxNumByte>
ONLINE, COMMAND = 0, 1


@dataclass
class Session:
    """A TLS session kept for #SSLFASTD, and where it was made."""

    session: ssl.SSLSession
    context: ssl.SSLContext    # a session resumes only from the context that made it
    host: str
    port: int


class SecureSocket:
    """One connected secure socket."""

    def __init__(self, modem, ssid: int, link: TlsLink, config: SslConfig, host: str, port: int, closure: int):
        self.modem, self.ssid, self.link, self.config = modem, ssid, link, config
        self.host, self.port, self.closure = host, port, closure
        self.online: Optional[OnlineReader] = None
        self.announced = 0             # bytes an SSLSRING (mode 1) has reported
        self.waiter: Optional[Callable[[], None]] = None   # an #SSLRECV waiting for data
        link.on_change = self._changed
        link.numbered(ssid)

    @property
    def pending(self) -> int:
        return len(self.link.inbox)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, across TLS records."""
        data = bytearray()
        while len(data) < size and self.link.available:
            data += self.link.read(min(self.link.available, size - len(data)))
        return bytes(data)

    def _changed(self, link) -> None:
        if self.online is not None:
            self.online.deliver()
        elif self.waiter is not None:
            self.waiter()
        else:
            self.modem.when_polling(self.notify)

    def notify(self) -> None:
        """Command mode: announce new data (SSLSRING) and a server that left (NO CARRIER)."""
        if self.online is not None or self.waiter is not None or sockets(self.modem).get(self.ssid) is not self:
            return
        mode = self.config.ring_mode
        if mode == 1 and self.pending > self.announced:
            self.announced = self.pending
            self.modem.write(lines(self.modem, b"SSLSRING: %d,%d" % (self.ssid, self.pending)))
        elif mode == 2:
            chunk = self.modem.profile.constants["ring_chunk"]
            while self.link.available:
                data = self.link.read(min(self.link.available, chunk))
                self.modem.write(lines(self.modem, b"SSLSRING: %d,%d," % (self.ssid, len(data)) + data))
        if self.link.peer_closed and not self.pending:
            sockets(self.modem).drop(self)
            self.modem.write(result(self.modem, b"NO CARRIER"))

    def close(self, keep_session: bool) -> None:
        table = sockets(self.modem)
        if keep_session and self.link.handshaken and self.link.tls.session is not None:
            table.sessions[self.ssid] = Session(self.link.tls.session, self.link.context, self.host, self.port)
        else:
            table.sessions.pop(self.ssid, None)
        self.link.close_notify()
        table.drop(self)


class SecureSockets:
    """The connected secure sockets and the kept TLS sessions of one boot, by SSId."""

    def __init__(self, modem):
        self.modem = modem
        self.by_ssid: dict[int, SecureSocket] = {}
        self.sessions: dict[int, Session] = {}
        self.dialling: dict[int, object] = {}   # SSId -> connection attempt or link in its handshake

    def get(self, ssid: int) -> Optional[SecureSocket]:
        return self.by_ssid.get(ssid)

    def drop(self, socket: SecureSocket) -> None:
        if self.by_ssid.get(socket.ssid) is socket:
            del self.by_ssid[socket.ssid]
        if socket.online is not None:
            socket.online.stop()
        socket.link.close()

    def shutdown(self) -> None:
        for socket in list(self.by_ssid.values()):
            self.drop(socket)
        for attempt in self.dialling.values():
            attempt.cancel()
        self.dialling.clear()


def sockets(modem) -> SecureSockets:
    return modem.runtime_of(NAMESPACE, SecureSockets)


def _connected(modem, ssid: int) -> SecureSocket:
    ssl_config(modem, ssid)
    socket = sockets(modem).get(ssid)
    if socket is None:
        raise CmeError(SSL_NOT_CONNECTED)
    return socket


def _timeout(p: Params) -> Optional[int]:
    """An optional trailing ``<Timeout>`` in 100 ms units (1-5000); None: the socket's <defTo>."""
    if p.at_end():
        return None
    p.comma()
    value = p.single_number()
    if not 1 <= value <= 5000:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return value


def _seconds(socket: SecureSocket, timeout: Optional[int]) -> float:
    return (socket.config.default_timeout if timeout is None else timeout) / 10


# ---------------------------------------------------------------- ONLINE mode


class OnlineReader:
    """The UART while a socket is online: data for the server, and the ``+++`` escape."""

    def __init__(self, socket: SecureSocket):
        self.socket = socket
        self.modem = socket.modem
        self.outgoing = bytearray()
        self.pluses = 0                 # '+' held back: they may be the escape sequence
        self.last_input = self.modem.clock.now()
        self.last_plus = 0.0
        self.escape_timer = self.flush_timer = self.idle_timer = None
        self._idle()

    def take(self, data: bytes) -> int:
        now = self.modem.clock.now()
        guard = dialect(self.modem).guard_seconds
        for byte in data:
            if byte == 0x2B and self.pluses < 3 and (
                    now - self.last_plus <= guard if self.pluses else now - self.last_input >= guard):
                self.pluses += 1
                self.last_plus = now
            else:
                self._release_pluses()
                self.outgoing.append(byte)
            self.last_input = now
        self._cancel("escape_timer")
        if self.pluses:
            self.escape_timer = self.modem.clock.call_later(guard, self._guard_passed)
        self._packets()
        self._idle()
        return len(data)

    def _release_pluses(self) -> None:
        """Held '+' that turned out to be data."""
        self.outgoing += b"+" * self.pluses
        self.pluses = 0

    def _packets(self) -> None:
        size = self.socket.config.send_packet
        while len(self.outgoing) >= size:
            self._send(bytes(self.outgoing[:size]))
            del self.outgoing[:size]
        if self.outgoing and self.flush_timer is None and self.socket.config.tx_timeout:
            self.flush_timer = self.modem.clock.call_later(self.socket.config.tx_timeout / 10, self._flush)

    def _flush(self) -> None:
        self.flush_timer = None
        if self.outgoing:
            self._send(bytes(self.outgoing))
            self.outgoing.clear()

    def _send(self, data: bytes) -> None:
        self.socket.link.send(data, lambda sent: None)   # a broken link shows as the peer gone

    def _guard_passed(self) -> None:
        """Silence after held '+': three of them are the escape; fewer were data."""
        self.escape_timer = None
        if self.pluses < 3:
            self._release_pluses()
            self._packets()
            return
        self.pluses = 0
        self._flush()
        self.stop()
        self.socket.online = None
        self.modem.end_raw()
        self.modem.write(ok(self.modem))
        self.socket.notify()

    def deliver(self) -> None:
        """What the server sent goes to the UART as it comes; its leaving is NO CARRIER."""
        link = self.socket.link
        while link.available:
            self.modem.write(link.read(link.available))
        self._idle()
        if link.peer_closed:
            self._hang_up()

    def _idle(self) -> None:
        self._cancel("idle_timer")
        seconds = self.socket.config.idle_timeout
        if seconds:
            self.idle_timer = self.modem.clock.call_later(seconds, self._hang_up)

    def _hang_up(self) -> None:
        self.idle_timer = None
        sockets(self.modem).drop(self.socket)
        self.modem.end_raw()
        self.modem.write(result(self.modem, b"NO CARRIER"))

    def _cancel(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def stop(self) -> None:
        for name in ("escape_timer", "flush_timer", "idle_timer"):
            self._cancel(name)
        self.socket.online = None


def _go_online(modem, socket: SecureSocket) -> bytes:
    """CONNECT, and the UART belongs to the socket (anything already received follows CONNECT)."""
    socket.online = OnlineReader(socket)
    modem.start_raw(socket.online)
    modem.when_polling(socket.online.deliver)
    return result(modem, b"CONNECT")


# ---------------------------------------------------------------- #SSLD / #SSLFASTD


def set_ssld(modem, request):
    p = Params(request.args)
    ssid = p.number()
    p.comma()
    port = p.number()
    p.comma()
    host = p.string(255).decode("latin-1")
    p.comma()
    closure = p.number()
    mode = COMMAND
    timeout = 100
    if not p.at_end():
        p.comma()
        mode = p.number()
        if not p.at_end():
            p.comma()
            timeout = p.single_number()
    if not 1 <= port <= 65535 or closure > 1 or mode > 1 or not 1 <= timeout <= 5000 or not host:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return _dial(modem, ssid, host, port, closure, mode, timeout / 10, context=None, session=None)


def set_fastd(modem, request):
    p = Params(request.args)
    ssid = p.number()
    mode = COMMAND
    timeout = 100
    if not p.at_end():
        p.comma()
        mode = p.number()
        if not p.at_end():
            p.comma()
            timeout = p.single_number()
    if mode > 1 or not 1 <= timeout <= 5000:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    ssl_config(modem, ssid)
    kept = sockets(modem).sessions.get(ssid)
    if kept is None:
        raise CmeError(SSL_INVALID_STATE)   # no session was kept to restore
    return _dial(modem, ssid, kept.host, kept.port, 1, mode, timeout / 10, kept.context, session=kept.session)


def _dial(modem, ssid: int, host: str, port: int, closure: int, mode: int, timeout: float,
          context: Optional[ssl.SSLContext], session: Optional[ssl.SSLSession]):
    """Open ``ssid``'s socket: with ``context`` and ``session`` #SSLFASTD's, else a new context."""
    config = ssl_config(modem, ssid)
    if not ssl_store(modem).enabled(ssid):
        raise CmeError(SSL_NOT_ACTIVATED)   # #SSLEN, not a service, gives SSL to the sockets
    table = sockets(modem)
    if table.get(ssid) is not None or ssid in table.dialling:
        raise CmeError(SSL_ALREADY_CONNECTED)
    if not contexts(modem).active(config.cid) or modem.network is None:
        raise CmeError(CONTEXT_NOT_OPENED)
    if context is None:
        context = client_context(modem, ssid)
    name = server_name(modem, ssid, host)
    operation = modem.block()
    own: list = []   # this dial's connection attempt, then its link in the handshake

    def claim(attempt) -> None:
        own[:] = [attempt]
        table.dialling[ssid] = attempt

    def release():
        """This dial's entry in ``dialling``, taken out; a later dial's entry is left alone."""
        attempt = own.pop() if own else None
        if attempt is not None and table.dialling.get(ssid) is attempt:
            del table.dialling[ssid]
        return attempt

    def fail(code: int) -> None:
        timer.cancel()
        attempt = release()
        if attempt is not None:
            attempt.cancel()
        if not operation.done:
            operation.finish(cme_error(modem, code))

    def make(network, sock, remote):
        link = TlsLink(network, sock, remote, context=context, host=name, buffer=TLS_RECORD_BUFFER,
                       fingerprint=None, session=session)
        claim(link)
        return link

    def shaken(link: TlsLink, good: bool) -> None:
        if operation.done:
            return
        release()
        timer.cancel()
        if not good:
            link.close()
            operation.finish(cme_error(modem, SSL_HANDSHAKE))
            return
        socket = table.by_ssid[ssid] = SecureSocket(modem, ssid, link, config, host, port, closure)
        if session is not None and not link.tls.session_reused:
            log.info("SSId %d: the server did not resume the session; a full handshake was made", ssid)
        operation.finish(_go_online(modem, socket) if mode == ONLINE else ok(modem))
        if mode == COMMAND:
            modem.when_polling(socket.notify)

    def connected(link) -> None:
        if link is None:
            fail(SSL_SOCKET_ERROR)
        elif not operation.done:
            link.establish(lambda good: shaken(link, good))

    def resolved(address) -> None:
        if operation.done:
            return
        if address is None:
            fail(SSL_SOCKET_ERROR)
            return
        attempt = modem.network.connect(address, port, connected, factory=make)
        if attempt is not None and not own:
            claim(attempt)

    def expired() -> None:
        fail(SSL_HANDSHAKE if own and isinstance(own[0], TlsLink) else SSL_SOCKET_ERROR)

    timer = modem.clock.call_later(timeout, expired)
    modem.network.resolve(host, resolved)
    return operation


# ---------------------------------------------------------------- #SSLO, #SSLH, #SSLS


def set_sslo(modem, request):
    socket = _connected(modem, Params(request.args).single_number())
    return _go_online(modem, socket)


def set_sslh(modem, request):
    p = Params(request.args)
    ssid = p.number()
    closure = None
    if not p.at_end():
        p.comma()
        closure = p.single_number()
        if closure > 1:
            raise CmeError(OPERATION_NOT_SUPPORTED)
    socket = sockets(modem).get(ssid)
    if socket is None:
        ssl_config(modem, ssid)
        if closure == 0 and sockets(modem).sessions.pop(ssid, None) is not None:
            return ok(modem)   # #SSLH=<SSId>,0 after #SSLFASTD's peer left: forget the session
        raise CmeError(SSL_NOT_CONNECTED)
    socket.close(keep_session=(socket.closure if closure is None else closure) == 1)
    return ok(modem)


def set_ssls(modem, request):
    ssid = Params(request.args).single_number()
    ssl_config(modem, ssid)
    socket = sockets(modem).get(ssid)
    if socket is not None:
        cipher = socket.link.tls.cipher()
        return info(modem, b"#SSLS: %d,2,%d" % (ssid, suite_number(modem, cipher[0] if cipher else "")))
    return info(modem, b"#SSLS: %d,%d" % (ssid, 1 if ssl_store(modem).enabled(ssid) else 0))


# ---------------------------------------------------------------- #SSLSEND, #SSLSENDEXT, #SSLRECV


def _sender(modem, socket: SecureSocket, timeout: float):
    """What #SSLSEND and #SSLSENDEXT do with their data: write it, OK once the socket took it."""

    def send(data: bytes):
        work = modem.raw_work()
        if not data:
            work.finish(ok(modem))
            return work

        def sent(good: bool) -> None:
            timer.cancel()
            if not work.done:
                work.finish(ok(modem) if good else cme_error(modem, SSL_DISCONNECTED))

        def expired() -> None:
            socket.link.abandon_send()
            if not work.done:
                work.finish(cme_error(modem, SSL_DISCONNECTED))

        timer = modem.clock.call_later(timeout, expired)
        socket.link.send(data, sent)
        return work

    return send


def set_sslsend(modem, request):
    p = Params(request.args)
    ssid = p.number()
    timeout = _timeout(p)
    socket = _connected(modem, ssid)
    modem.start_raw(TextInput(modem, SEND_MAX, _sender(modem, socket, _seconds(socket, timeout))))
    return prompt(modem)


def set_sslsendext(modem, request):
    p = Params(request.args)
    ssid = p.number()
    p.comma()
    size = p.number()
    timeout = _timeout(p)
    if not 1 <= size <= SEND_MAX:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    socket = _connected(modem, ssid)
    modem.start_raw(sized_input(modem, size, _sender(modem, socket, _seconds(socket, timeout))))
    return prompt(modem)


def set_sslrecv(modem, request):
    p = Params(request.args)
    ssid = p.number()
    p.comma()
    most = p.number()
    timeout = _timeout(p)
    if not 1 <= most <= RECV_MAX:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    socket = _connected(modem, ssid)
    if socket.pending or socket.link.peer_closed:
        return _received(modem, socket, most)
    operation = modem.block()

    def arrived() -> None:
        if socket.pending or socket.link.peer_closed:
            finish(_received(modem, socket, most))

    def expired() -> None:
        finish(info(modem, b"#SSLRECV: 0", b"TIMEOUT"))

    def finish(answer: bytes) -> None:
        socket.waiter = None
        timer.cancel()
        operation.finish(answer)
        modem.when_polling(socket.notify)

    socket.waiter = arrived
    timer = modem.clock.call_later(_seconds(socket, timeout), expired)
    return operation


def _received(modem, socket: SecureSocket, most: int) -> bytes:
    data = socket.read(most)
    socket.announced = 0   # what is left is announced again (seed 004 §7.4.4.1)
    if not data:   # the server left and everything was read
        sockets(modem).drop(socket)
        return cme_error(modem, SSL_NOT_CONNECTED)
    modem.when_polling(socket.notify)
    return info(modem, b"#SSLRECV: %d" % len(data), data)


def commands():
    return [
        command("#SSLD", set=set_ssld, summary="open a secure socket"),
        command("#SSLO", set=set_sslo, summary="resume ONLINE mode"),
        command("#SSLH", set=set_sslh, summary="close a secure socket"),
        command("#SSLS", set=set_ssls, summary="secure socket status"),
        command("#SSLSENDEXT", set=set_sslsendext, summary="send a number of bytes"),
        command("#SSLSEND", set=set_sslsend, summary="send data up to Ctrl-Z"),
        command("#SSLRECV", set=set_sslrecv, summary="read received data"),
        command("#SSLFASTD", set=set_fastd, summary="dial again resuming the TLS session"),
    ]

"""The eS-WiFi's client sockets and their TLS options: ``P0``, ``P1``, ``P3``, ``P4``, ``P6``, ``P9``,
``PF``, ``PG``, ``P?``, ``S3``, ``R0``, ``R1``, ``R2``.

Commands act on the socket ``P0`` chose. Links are real TCP connections (``atmodem.net``); with
``P1=3`` they are the TLS plugin's ``TlsLink`` set up from the active certificate set (seed 002):

* ``PF=<set>`` chooses one of three certificate sets, for the next TLS connection and for ``PG``.
* ``PG=0,<kind>,<length>`` CR (Zephyr's ``eswifi`` driver) or ``,`` (seed 002), then ``length``
  bytes, programs the set's root CA (0), certificate (1) or key (2). The sets are one-time
  programmable (seed): a written entry takes the same bytes again (answer ``Match``) and nothing
  else (an error). They live in flash of their own that nothing erases.
* ``P9`` is the verification: 0 none; 1 the set's root CA if one is programmed, else none; 2 the
  root CA, and the certificate and key as client identity, all required.

The module has no clock (no command sets one): chains are checked without validity dates.
``S3=<length>`` CR and the data (Inventek's note, Zephyr, ST) sends at most 1460 bytes; ``R0``
answers what came (at most ``R1`` bytes), after waiting up to ``R2`` ms if nothing did, and
``-1`` once the peer has closed and everything is read (ST's ``ES_WIFI_ReceiveData``).
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Callable, Optional

from atmodem import AtError, Setting
from atmodem.engine import ExactBytes
from atmodem.net import Link
from atmodem.params import Params
from atmodem_tls import SecureLinks, Verification

from atmodem_eswifi.framing import Refused, answer, failure, no_args, number_in, set_args
from atmodem_eswifi.timers import Timers

NAMESPACE = "eswifi_transport"
SOCKETS = 4                    # P0=0..3 (mbed's ISM43362::open: "IDs only 0-3")
TCP, TLS = 0, 3                # P1; 1 (UDP) and 2 (UDP-Lite) are not modelled
PAYLOAD_MAX = 1460             # S3 and R1 (Inventek: 1-1460 bytes a packet)
READ_TIMEOUT_MAX = 30000       # R2, in ms (ST's driver: 0 to 30000)
CLOSED = b"-1"                 # R0 on a socket whose peer has gone
CERTIFICATE_SETS = 3
ROOT_CA, CERTIFICATE, KEY = 0, 1, 2
CERTIFICATE_MAX = 4096         # assumed size of one entry of a set
NO_CHECKS, OPTIONAL, REQUIRED = 0, 1, 2

# {set: {kind: base64 bytes}}, with string keys (JSON); the module's one-time-programmable flash.
PROGRAMMED = Setting(NAMESPACE, "certificate_sets", default={}, region="otp")

CONNECT_FAILED = b"Connection failed"
P6_USAGE = b"P6=<0|1>"
S3_USAGE = b"S3=<length 1-1460> CR <data>"
PG_USAGE = b"PG=0,<0 root CA|1 certificate|2 key>,<length>,<data>"


class Socket:
    def __init__(self):
        self.protocol = TCP
        self.address = "0.0.0.0"          # P3, or what D0 found
        self.name: Optional[str] = None   # the name D0 looked up: SNI and the name TLS checks
        self.port = 0                     # P4
        self.link: Optional[Link] = None
        self.attempt = None               # a connection in progress (atmodem.net.Connecting)
        self.opening: Optional[Link] = None   # connected, TLS handshake in progress
        self.reader: Optional[Callable[[], None]] = None   # an R0 waiting for data

    def aim(self, address: str, name: Optional[str] = None) -> None:
        self.address, self.name = address, name

    def install(self, link: Link) -> None:
        self.link = link
        link.on_change = self._changed

    def _changed(self, link: Link) -> None:
        if self.reader is not None and (link.available or link.peer_closed):
            self.reader()

    def receive(self, size: int) -> bytes:
        """What R0 answers now: data, nothing yet, or ``-1`` (and the socket is free again)."""
        link = self.link
        if link is None:
            return CLOSED
        if link.available:
            return link.read(size)
        if link.peer_closed:
            self.close()
            return CLOSED
        return b""

    def close(self) -> None:
        for work in (self.link, self.opening, self.attempt):
            if work is not None:
                work.cancel()
        self.link = self.opening = self.attempt = None


class Transport:
    """The sockets and the P-, R- and S-settings of one boot."""

    def __init__(self, modem):
        self.modem = modem
        self.sockets = [Socket() for _ in range(SOCKETS)]
        self.index = 0                 # P0
        self.read_size = PAYLOAD_MAX   # R1
        self.read_timeout = 1          # R2, ms
        self.verification = NO_CHECKS  # P9
        self.certificate_set = 0       # PF
        self.timers = Timers(modem.clock)

    @property
    def current(self) -> Socket:
        return self.sockets[self.index]

    def drop_all(self) -> None:
        for socket in self.sockets:
            socket.close()

    def shutdown(self) -> None:
        self.timers.shutdown()
        self.drop_all()


def transport(modem) -> Transport:
    return modem.runtime_of(NAMESPACE, Transport)


# ---------------------------------------------------------------- certificate sets


def programmed(modem, number: int) -> dict[int, bytes]:
    entries = modem.settings.get(PROGRAMMED).get(str(number), {})
    return {int(kind): base64.b64decode(value) for kind, value in entries.items()}


def program(modem, number: int, kind: int, value: bytes) -> bytes:
    """Write an entry of a certificate set, under the one-time-programmable rule."""
    existing = programmed(modem, number).get(kind)
    if existing is not None:
        return answer(b"Match") if existing == value else failure(b"Certificate set already programmed", PG_USAGE)
    sets = modem.settings.get(PROGRAMMED)
    sets.setdefault(str(number), {})[str(kind)] = base64.b64encode(value).decode()
    modem.settings.set(PROGRAMMED, sets, save=True)
    return answer()


class CertificateSetLinks(SecureLinks):
    """TLS links as ``P9`` and the active certificate set make them."""

    def __init__(self, mode: int, entries: dict[int, bytes]):
        self.mode = mode
        self.entries = entries

    def verification(self, modem, index: int) -> Verification:
        root = _pem_text(self.entries.get(ROOT_CA))
        if self.mode == NO_CHECKS or (self.mode == OPTIONAL and not root):
            return Verification()
        if self.mode == OPTIONAL:
            return Verification(trusted=root, check_dates=False)
        certificate, key = self.entries.get(CERTIFICATE), self.entries.get(KEY)
        if not (root and certificate and key):
            raise OSError("P9=2 needs the root CA, certificate and key of the certificate set")
        return Verification(trusted=root, client=(_unterminated(certificate), _unterminated(key)),
                            check_dates=False)


def _unterminated(value: bytes) -> bytes:
    # mbedTLS-minded hosts (Zephyr) count a PEM's closing NUL in its length.
    return value.rstrip(b"\0")


def _pem_text(value: Optional[bytes]) -> str:
    return _unterminated(value).decode("latin-1") if value else ""


# ---------------------------------------------------------------- P0, P1, P3, P4, P9, PF, PG, P?


def choose_socket(modem, request):
    transport(modem).index = number_in(set_args(request), range(SOCKETS))
    return b""


def set_protocol(modem, request):
    protocol = number_in(set_args(request), range(4))
    if protocol not in (TCP, TLS):
        raise Refused(b"Protocol not supported")
    transport(modem).current.protocol = protocol
    return b""


def set_host(modem, request):
    try:
        address = ipaddress.IPv4Address(set_args(request).decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise AtError() from None
    transport(modem).current.aim(str(address))
    return b""


def set_port(modem, request):
    transport(modem).current.port = number_in(set_args(request), range(65536))
    return b""


def set_verification(modem, request):
    transport(modem).verification = number_in(set_args(request), range(3))
    return b""


def choose_certificate_set(modem, request):
    p = Params(set_args(request))
    number = p.number()
    if not p.at_end():  # Zephyr sends PF=0,0; what the second field means is not documented
        p.comma()
        p.number()
    p.end()
    if number >= CERTIFICATE_SETS:
        raise AtError()
    transport(modem).certificate_set = number
    return b""


def program_certificate(modem, request):
    p = Params(set_args(request))
    if p.number() != 0:
        raise AtError()
    p.comma()
    kind = p.number()
    p.comma()
    length = p.number()
    if not p.at_end():   # seed 002's form: the data follows a comma instead of the CR
        p.comma()
    p.end()
    if kind not in (ROOT_CA, CERTIFICATE, KEY) or not 0 < length <= CERTIFICATE_MAX:
        raise AtError()
    number = transport(modem).certificate_set

    def received(value: bytes) -> None:
        modem.write(program(modem, number, kind, value))
        modem.end_raw()

    modem.start_raw(ExactBytes(length, received))
    return None


def socket_settings(modem, request):
    no_args(request)
    socket = transport(modem).current
    local_port = socket.link.local_port if socket.link is not None else 0
    return b"%d,0.0.0.0,%d,%s,%d,0,%d" % (socket.protocol, local_port, socket.address.encode(), socket.port,
                                          socket.link is not None)


# ---------------------------------------------------------------- P6


def client(modem, request):
    start = number_in(set_args(request), range(2))
    state = transport(modem)
    if not start:
        state.current.close()
        return b""
    return _connect(modem, state, state.current)


def _connect(modem, state: Transport, socket: Socket):
    if socket.link is not None or socket.attempt is not None or socket.opening is not None:
        raise Refused(b"Socket already connected")
    if not modem.interfaces.sta.up or modem.network is None:
        raise Refused(b"Not connected")
    if socket.address == "0.0.0.0" or not socket.port:
        raise Refused(b"No remote host")
    takes = modem.timing.connect
    number = state.index
    factory = Link
    if socket.protocol == TLS:
        links = CertificateSetLinks(state.verification, programmed(modem, state.certificate_set))
        try:
            factory = links.factory(modem, socket.name or socket.address, number)
        except (OSError, ValueError):   # an incomplete set, or entries that are not PEM
            raise Refused(CONNECT_FAILED) from None
        takes += links.delay(modem)
    operation = modem.block()
    started = modem.clock.now()
    outcome = {"answered": False}

    def finish(reply: bytes) -> None:
        if outcome["answered"]:
            return
        outcome["answered"] = True
        state.timers.cancel(deadline)
        state.timers.later(max(0.0, started + takes - modem.clock.now()), operation.finish, reply)

    def give_up() -> None:
        socket.close()
        finish(failure(CONNECT_FAILED, P6_USAGE))

    def connected(link: Optional[Link]) -> None:
        socket.attempt = None
        if link is None:
            finish(failure(CONNECT_FAILED, P6_USAGE))
            return
        socket.opening = link
        link.establish(lambda ok: established(link, ok))

    def established(link: Link, ok: bool) -> None:
        socket.opening = None
        if not ok or outcome["answered"]:
            link.close()
            finish(failure(CONNECT_FAILED, P6_USAGE))
            return
        socket.install(link)
        link.numbered(number)
        finish(answer())

    deadline = state.timers.later(modem.timing.connect_timeout, give_up)
    socket.attempt = modem.network.connect(socket.address, socket.port, connected, factory)
    return operation


# ---------------------------------------------------------------- S3


def _send_on(modem, socket: Socket, data: bytes) -> None:
    """The bytes after ``S3=<length>`` CR, all of them taken whatever the socket's state."""
    link = socket.link
    if link is None or not link.connected:
        modem.write(failure(b"Socket not connected", S3_USAGE))
        modem.end_raw()
        return
    work = modem.end_raw(modem.raw_work())
    timers = transport(modem).timers
    timeout = timers.later(modem.timing.send_timeout, link.abandon_send)

    def sent(ok: bool) -> None:
        timers.cancel(timeout)
        work.finish(answer() if ok else failure(b"Send failed", S3_USAGE))

    link.send(data, sent)


def send(modem, request):
    length = number_in(set_args(request), range(1, PAYLOAD_MAX + 1))
    socket = transport(modem).current
    modem.start_raw(ExactBytes(length, lambda data: _send_on(modem, socket, data)))
    return None


# ---------------------------------------------------------------- R0, R1, R2


def receive(modem, request):
    no_args(request)
    state = transport(modem)
    socket, size = state.current, state.read_size
    reply = socket.receive(size)
    if reply or socket.link is None or not state.read_timeout:
        return reply
    operation = modem.block()

    def done() -> None:
        socket.reader = None
        state.timers.cancel(timer)
        operation.finish(answer(socket.receive(size)))

    socket.reader = done
    timer = state.timers.later(state.read_timeout / 1000, done)
    return operation


def set_read_size(modem, request):
    transport(modem).read_size = number_in(set_args(request), range(1, PAYLOAD_MAX + 1))
    return b""


def set_read_timeout(modem, request):
    transport(modem).read_timeout = number_in(set_args(request), range(READ_TIMEOUT_MAX + 1))
    return b""

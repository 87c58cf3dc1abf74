"""Real host sockets for the modem's links, driven by a reactor.

The engine never touches a socket; plugins ask a ``Network`` for connections
and listeners. A ``Network`` runs on a *reactor*: anything with asyncio's
``add_reader/remove_reader/add_writer/remove_writer/call_soon_threadsafe``.
An asyncio loop is one (``atmodem serve``); ``SelectorReactor`` is one that
tests and benchmarks poll themselves, next to a manual clock.

A ``Link`` is one non-blocking TCP connection with a receive buffer that
stops reading from the socket once ``window`` bytes wait unread, so a host
that reads slowly (passive mode) pushes back on the peer exactly as the
chip's TCP window does. TLS wraps the same class (it overrides the byte
hooks), so the TCP/IP plugin never cares which kind it reads.

The world's network faults (``atmodem.faults``) are applied here: a failed
lookup, a refused connection, and per link a reset, a stall, a truncation or
a TLS alert. Their byte counts are of the bytes the modem's client gets (TLS:
decrypted application data). A link without a fault pays one attribute test per
socket read.

Everything that happens here is reported to the modem's observers (``atmodem.trace``
lists the kinds): lookups, connections (each a numbered *flow*), the bytes each puts on
the wire and takes off it, TLS handshakes and closes. Transcripts and packet captures are
made from those reports.
"""

from __future__ import annotations

import collections
import errno
import itertools
import logging
import selectors
import socket
import struct
import threading
import zlib
from pathlib import Path
from typing import Callable, Optional, Protocol

from atmodem.faults import Fault
from atmodem.world import World

log = logging.getLogger(__name__)

# lwIP's default TCP window on the ESP8266 Arduino core (4 x 1460-byte segments).
TCP_WINDOW = 5840
_RECV_CHUNK = 65536
_HEAD = 16   # bytes of a read reported with it, for finding the data in the modem's output


class Reactor(Protocol):
    def add_reader(self, fd, callback: Callable, *args) -> None: ...
    def remove_reader(self, fd) -> bool: ...
    def add_writer(self, fd, callback: Callable, *args) -> None: ...
    def remove_writer(self, fd) -> bool: ...
    def call_soon_threadsafe(self, callback: Callable, *args) -> object: ...


class SelectorReactor:
    """A reactor its owner drives with ``poll()``; for tests and benchmarks on a manual clock."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._calls: collections.deque = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.add_reader(self._wake_r, self._drain_wakeups)

    def _update(self, fd, index: int, entry) -> None:
        key = self._selector.get_map().get(fd)
        pair = list(key.data) if key else [None, None]
        pair[index] = entry
        if key:
            self._selector.unregister(fd)
        events = (selectors.EVENT_READ if pair[0] else 0) | (selectors.EVENT_WRITE if pair[1] else 0)
        if events:
            self._selector.register(fd, events, tuple(pair))

    def add_reader(self, fd, callback, *args):
        self._update(fd, 0, (callback, args))

    def remove_reader(self, fd):
        present = fd in self._selector.get_map()
        self._update(fd, 0, None)
        return present

    def add_writer(self, fd, callback, *args):
        self._update(fd, 1, (callback, args))

    def remove_writer(self, fd):
        present = fd in self._selector.get_map()
        self._update(fd, 1, None)
        return present

    def call_soon_threadsafe(self, callback, *args):
        self._calls.append((callback, args))
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # already awake

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def poll(self, timeout: float = 0.0) -> int:
        """Wait up to ``timeout`` seconds for I/O, run what is ready; return how many callbacks ran."""
        ran = 0
        registrations = self._selector.get_map()
        for key, events in self._selector.select(0 if self._calls else timeout):
            # An earlier callback of this round may have unregistered (or closed) this one.
            for flag, side in ((selectors.EVENT_READ, 0), (selectors.EVENT_WRITE, 1)):
                current = registrations.get(key.fd)
                if events & flag and current is not None and current.data[side]:
                    callback, args = current.data[side]
                    callback(*args)
                    ran += 1
        while self._calls:
            callback, args = self._calls.popleft()
            callback(*args)
            ran += 1
        return ran

    def close(self) -> None:
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _noop(*args, **details) -> None:
    pass


class Link:
    """One TCP connection of the modem, with the chip's receive buffer in front of the socket."""

    kind = "TCP"

    def __init__(self, network: "Network", sock: socket.socket, remote: tuple[str, int], *, server_port: int = 0):
        self.network = network
        self.sock = sock
        self.flow = network.new_flow()        # its number in reports (transcripts, captures)
        self.remote = remote                  # (address, port) as the modem reports it
        self.local_port = sock.getsockname()[1] if not server_port else server_port
        self.server_port = server_port        # the modem's server port for accepted links, else 0
        self.inbox = bytearray()
        self.window = network.window
        self.peer_closed = False              # EOF or reset from the peer: nothing more will arrive
        self.closed = False                   # we closed it
        self.on_change: Callable[["Link"], None] = _noop
        self._outbox = bytearray()
        self._send_done: Optional[Callable[[bool], None]] = None
        self._reading = False
        self._fd = sock.fileno()
        self._tripwire: Optional[list] = None   # [fault, bytes still to receive before it fires]
        self._held: Optional[list] = None      # while stalled: what arrived meanwhile (TLS: by record)
        self._ended = False                   # its close was reported
        self._resume_reading()

    def numbered(self, number: int) -> None:
        """Report the number the firmware knows this link by (AT link id, socket, SSId)."""
        self.network.report("link", id=number, flow=self.flow, remote=self.remote, local_port=self.local_port,
                            server_port=self.server_port)

    def establish(self, done: Callable[[bool], None]) -> None:
        """Finish opening the link (TLS: the handshake); ``done(ok)``."""
        done(True)

    # ------------------------------------------------------------- reading

    @property
    def available(self) -> int:
        return len(self.inbox)

    @property
    def connected(self) -> bool:
        """What the chip's client reports: established, or closed by the peer with data left unread."""
        return not self.closed and (not self.peer_closed or bool(self.inbox))

    def read(self, size: int) -> bytes:
        data = bytes(self.inbox[:size])
        del self.inbox[:size]
        if data:
            self.network.report("read", flow=self.flow, length=len(data), head=data[:_HEAD].decode("latin-1"),
                                crc=zlib.crc32(data))
        if not self._reading and not self.peer_closed and not self.closed and len(self.inbox) < self.window:
            self._resume_reading()
        return data

    def _resume_reading(self) -> None:
        if self._held is not None:
            return  # stalled: the socket keeps what comes, as a stuck route would
        self._reading = True
        self.network.reactor.add_reader(self._fd, self._readable)

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self.network.reactor.remove_reader(self._fd)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(min(_RECV_CHUNK, max(1, self.window - len(self.inbox))))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("link to %s failed: %s", self.remote, exc)
            data = b""
        if data:
            self.network.report("wire", flow=self.flow, direction="in", data=data)
            self._received(data)
        else:
            self._eof()
        if len(self.inbox) >= self.window:
            self._pause_reading()
        self.on_change(self)

    def _eof(self, by: str = "peer") -> None:
        """The peer closed (or reset) the connection."""
        self._pause_reading()
        self.peer_closed = True
        self.ended(by)
        self._fail_send()

    def ended(self, by: str) -> None:
        """Report the end of the connection once: ``by`` the modem, the peer, the route or a fault."""
        if not self._ended:
            self._ended = True
            self.network.report("close", flow=self.flow, by=by)

    def _received(self, data: bytes) -> None:
        """Bytes from the socket; TLS overrides this to decrypt records."""
        if self._tripwire is not None:
            self._approach_fault(data)
        else:
            self.inbox += data

    def _take(self, data: bytes) -> None:
        """Application bytes (TLS: decrypted) into the receive buffer; TLS also notes the record."""
        self.inbox += data

    # ------------------------------------------------------------- writing

    def send(self, data: bytes, done: Callable[[bool], None]) -> None:
        """Write all of ``data``; ``done(True)`` once the kernel has it, ``done(False)`` if the link broke."""
        if self.closed or self.peer_closed:
            done(False)
            return
        self._outbox += self._transmitted(data)
        self._send_done = done
        self._writable()

    def _transmitted(self, data: bytes) -> bytes:
        """Bytes to put on the socket for ``data``; TLS overrides this to encrypt."""
        return data

    def _writable(self) -> None:
        try:
            while self._outbox:
                sent = self.sock.send(self._outbox)
                self.network.report("wire", flow=self.flow, direction="out", data=bytes(self._outbox[:sent]))
                del self._outbox[:sent]
                self.network.expect_reply(self._fd)
        except (BlockingIOError, InterruptedError):
            self.network.reactor.add_writer(self._fd, self._writable)
            return
        except OSError as exc:
            log.debug("send to %s failed: %s", self.remote, exc)
            self.network.reactor.remove_writer(self._fd)
            self.peer_closed = True
            self._pause_reading()
            self._fail_send()
            self.on_change(self)
            return
        self.network.reactor.remove_writer(self._fd)
        done, self._send_done = self._send_done, None
        if done:
            done(True)

    def abandon_send(self) -> None:
        """Give up on what the peer would not take (the write timed out)."""
        if self._send_done is not None:
            self.network.reactor.remove_writer(self._fd)
            self._fail_send()

    def _fail_send(self) -> None:
        self._outbox.clear()
        done, self._send_done = self._send_done, None
        if done:
            done(False)

    # ------------------------------------------------------------- closing

    def close(self) -> None:
        """Close from the modem's side (AT+CIPCLOSE, reset); the peer sees FIN."""
        if self.closed:
            return
        self.closed = True
        self._pause_reading()
        self.network.reactor.remove_writer(self._fd)
        self._fail_send()
        self.sock.close()
        self.ended("modem")

    cancel = close  # abandoning a link is closing it (as Connecting.cancel abandons an attempt)

    def break_off(self) -> None:
        """The route went away (AP lost, cable pulled): the link dies as if reset."""
        if not self.closed and not self.peer_closed:
            self.peer_closed = True
            self._pause_reading()
            self.ended("route")
            self._fail_send()
            self.on_change(self)

    # ------------------------------------------------------------- faults

    def arm_fault(self, fault: Fault) -> None:
        """Apply ``fault`` once ``fault.after_bytes`` application bytes have arrived (0: as soon as
        the link is handed over; TLS arms its faults after the handshake, but a TLS alert in it)."""
        if fault.after_bytes:
            self._tripwire = [fault, fault.after_bytes]
        else:
            self.network.reactor.call_soon_threadsafe(self._apply_fault, fault, b"")

    def _approach_fault(self, data: bytes) -> None:
        """Application bytes while a fault waits for its byte count."""
        fault, left = self._tripwire
        if len(data) < left:
            self._tripwire[1] -= len(data)
            self._take(data)
            return
        self._tripwire = None
        if left:
            self._take(data[:left])
        self._apply_fault(fault, data[left:])

    def _apply_fault(self, fault: Fault, rest: bytes) -> None:
        """``rest``: what arrived beyond the fault's byte count, in the same read."""
        if self.closed or self.peer_closed:
            return
        if not self.network.world.faults.holds(fault):
            if rest:  # another link spent it meanwhile, or it was removed: this link goes on unharmed
                self._take(rest)
            return
        self.network.fired(fault, remote=self.remote, link=self.kind)
        if fault.kind == "stall":
            self._stall(fault.seconds, rest)
            return
        if fault.kind == "reset":
            # Our close then sends RST too, so the server sees the reset the modem saw.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault.kind == "tls_alert":
            self.receive_alert(fault.alert_code)
            self.on_change(self)
            return
        self._eof(by="fault")  # reset and truncate: the peer's stream ends here
        self.on_change(self)

    def receive_alert(self, description: int) -> None:
        """A fatal TLS alert from the server; a plain TCP link has no TLS to fail."""

    def _stall(self, seconds: float, rest: bytes) -> None:
        self._pause_reading()
        self._held = [rest] if rest else []
        self.network.clock.call_later(seconds, self._unstall)

    def _unstall(self) -> None:
        held, self._held = self._held, None
        if self.closed or held is None:
            return
        for data in held:
            self._take(data)
        if not self.peer_closed and len(self.inbox) < self.window:
            self._resume_reading()
        self.on_change(self)


class Listener:
    """A modem server port (AT+CIPSERVER), listening on a host port."""

    def __init__(self, network: "Network", modem_port: int, on_pending: Callable[["Listener"], None]):
        self.network = network
        self.modem_port = modem_port
        self.on_pending = on_pending
        world = network.world
        self.sock = socket.create_server((world.server_bind, world.server_ports.get(modem_port, 0)), backlog=8)
        self.sock.setblocking(False)
        self.host_address = self.sock.getsockname()[:2]
        self._watching = False
        self.watch()

    @property
    def host_port(self) -> int:
        return self.host_address[1]

    def watch(self) -> None:
        """Tell ``on_pending`` when a connection waits (again, after ``accept`` took one)."""
        if not self._watching:
            self._watching = True
            self.network.reactor.add_reader(self.sock.fileno(), self._ready)

    def _ready(self) -> None:
        # Connections wait in the backlog until the modem takes them: stop watching till then.
        self._watching = False
        self.network.reactor.remove_reader(self.sock.fileno())
        self.on_pending(self)

    def accept(self) -> Optional[Link]:
        try:
            sock, address = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return None
        _prepare(sock)
        link = Link(self.network, sock, address[:2], server_port=self.modem_port)
        self.network.report("accept", flow=link.flow, remote=link.remote, local_port=self.modem_port)
        return link

    def close(self) -> None:
        if self._watching:
            self.network.reactor.remove_reader(self.sock.fileno())
            self._watching = False
        self.sock.close()


def _prepare(sock: socket.socket) -> None:
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Connecting:
    """An outgoing connection in progress; ``cancel()`` abandons it."""

    def __init__(self, network: "Network", remote: tuple[str, int], target: tuple[str, int],
                 done: Callable[[Optional[Link]], None], factory: Callable[..., Link]):
        self.network = network
        self.done = done
        self.factory = factory
        self.remote = remote   # what the modem dialled, and reports; ``target`` is where it really goes
        self.failure = "unreachable"
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        _prepare(self.sock)
        code = self.sock.connect_ex(target)
        if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            network.reactor.add_writer(self.sock.fileno(), self._writable)
            network.expect_reply(self.sock.fileno())
        else:
            network.reactor.call_soon_threadsafe(self._finish, None)

    def _writable(self) -> None:
        self.network.reactor.remove_writer(self.sock.fileno())
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            log.debug("connect to %s failed: %s", self.remote, errno.errorcode.get(error, error))
            if error == errno.ECONNREFUSED:
                self.failure = "refused"
            self._finish(None)
            return
        try:
            link = self.factory(self.network, self.sock, self.remote)
        except (ValueError, OSError) as exc:  # e.g. a host name TLS will not take
            log.info("cannot open a link to %s: %s", self.remote, exc)
            link = None
        if link is not None and self.network.world.faults:
            self.network.arm_faults(link)
        self._finish(link)

    def _finish(self, link: Optional[Link]) -> None:
        done, self.done = self.done, None
        if link is None:
            self.sock.close()
            self.network.dial_failed(self.remote, self.failure)
        else:
            self.network.report("connect", flow=link.flow, remote=self.remote, local_port=link.local_port,
                                ok=True)
        if done:
            done(link)
        elif link is not None:
            link.close()

    def cancel(self) -> None:
        """The modem gave up (its connect timeout, a reset)."""
        if self.done is not None:
            self.done = None
            self.network.reactor.remove_writer(self.sock.fileno())
            self.sock.close()
            self.network.dial_failed(self.remote, "abandoned")


class Datagrams:
    """A UDP socket of the modem (SNTP); ``on_datagram(data, (address, port))`` for each one received."""

    def __init__(self, network: "Network", on_datagram: Callable[[bytes, tuple], None]):
        self.network = network
        self.on_datagram = on_datagram
        self._dialled: dict[tuple, tuple] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        # Loopback when the world reaches nothing else, so a modem's port is never open to the LAN.
        self.sock.bind(("127.0.0.1" if network.world.loopback_only else "0.0.0.0", 0))
        network.reactor.add_reader(self.sock.fileno(), self._readable)

    def send(self, data: bytes, address: tuple[str, int], dialled: Optional[tuple[str, int]] = None) -> bool:
        """Send one datagram; False (nothing sent) if the policy forbids the address.

        ``dialled``: where the modem believes it sent it, when the world sent it elsewhere
        (SNTP to a test server's port); reports show that, and answers as coming from it.
        """
        if not self.network.world.may_reach(address[0]):
            log.info("policy: %s is not reachable from the modem", address[0])
            return False
        try:
            self.sock.sendto(data, address)
        except OSError as exc:
            log.debug("datagram to %s failed: %s", address, exc)
            return False
        if dialled is not None:
            self._dialled[tuple(address)] = tuple(dialled)
        self.network.report("datagram", direction="out", local_port=self.sock.getsockname()[1],
                            remote=tuple(dialled or address), data=data)
        self.network.expect_reply(self.sock.fileno())
        return True

    def _readable(self) -> None:
        try:
            data, sender = self.sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError, OSError):
            return
        if self.network.world.may_reach(sender[0]):   # what the policy forbids cannot answer either
            self.network.report("datagram", direction="in", local_port=self.sock.getsockname()[1],
                                remote=self._dialled.get(sender[:2], sender[:2]), data=data)
            self.on_datagram(data, sender[:2])

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.network.reactor.remove_reader(self.sock.fileno())
            self.sock.close()


class Network:
    """Names, connections and listeners for the modems of one reactor, under a world's rules."""

    def __init__(self, reactor: Reactor, world: World, window: int = TCP_WINDOW):
        self.reactor = reactor
        self.world = world
        self.window = window
        # Looked up once: every socket write asks, and only a lockstep reactor answers.
        self._expect = getattr(reactor, "expect_reply", None)
        # The modem's clock and observers (``attach``), for faults that last a while (stall) and
        # for reports; seconds since power-on, for faults live from a time on (the faults plugin).
        self.clock = None
        self.report: Callable[..., None] = _noop
        self.uptime: Callable[[], float] = lambda: 0.0
        # SSLKEYLOGFILE-format file the TLS links append their secrets to (Wireshark decrypts with it).
        self.keylog: Optional[Path] = None
        self._flows = itertools.count()

    def attach(self, clock, report: Callable[..., None]) -> None:
        """Serve one modem: its clock, and its ``report`` for what happens on the network."""
        self.clock = clock
        self.report = report

    def new_flow(self) -> int:
        return next(self._flows)

    def fired(self, fault: Fault, **details) -> None:
        """Count a firing of ``fault`` and tell the observers."""
        now = self.clock.now() if self.clock is not None else 0.0
        self.world.faults.take(fault, now, self.report, **details)

    def arm_faults(self, link: Link) -> None:
        """Give a fresh outgoing link the first live fault for its endpoint (TLS alerts: TLS links only)."""
        kinds = ("reset", "truncate") + (("stall",) if self.clock is not None else ()) \
            + (("tls_alert",) if link.kind == "SSL" else ())
        fault = self.world.faults.for_link(kinds, self.world.lookup, *link.remote, self.uptime())
        if fault is not None:
            link.arm_fault(fault)

    def expect_reply(self, fd: int) -> None:
        """The modem just sent on ``fd`` (or started connecting): a reactor that keeps virtual time
        in step with the host (``timedomain.LockstepReactor``) waits for the answer."""
        if self._expect is not None:
            self._expect(fd)

    def resolve(self, name: str, done: Callable[[Optional[str]], None]) -> None:
        """Look a host name up: the world's map, an IP literal, then (if allowed) the host's resolver."""
        faults = self.world.faults
        def answer(address: Optional[str]) -> None:
            self.report("dns", name=name, address=address)
            done(address)

        if faults and (fault := faults.dns_failure(name, self.uptime())) is not None:
            self.fired(fault, name=name)
            answer(None)
            return
        address = self.world.lookup(name)
        if address is not None or not self.world.dns_fallback or not name:
            answer(address)
            return

        def ask_host():
            try:
                infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
                result = infos[0][4][0] if infos else None
            except (OSError, UnicodeError):
                result = None
            self.reactor.call_soon_threadsafe(answer, result)

        # getaddrinfo blocks; it must not stall every other modem on the reactor.
        threading.Thread(target=ask_host, name="atmodem-resolve", daemon=True).start()

    def connect(self, address: str, port: int, done: Callable[[Optional[Link]], None],
                factory: Callable[..., Link] = Link) -> Optional[Connecting]:
        """Open a TCP connection; ``done(link)`` or ``done(None)``. Addresses the policy forbids fail.

        ``factory(network, sock, remote)`` makes the link once connected (TLS passes its own).
        """
        faults = self.world.faults
        if faults and (fault := faults.for_link(("refuse",), self.world.lookup, address, port, self.uptime())) is not None:
            self.fired(fault, remote=(address, port))
            self._refuse(address, port, "fault", done)
            return None
        target = self.world.route(address, port)
        if not self.world.may_reach(target[0]):
            log.info("policy: %s is not reachable from the modem", target[0])
            self._refuse(address, port, "policy", done)
            return None
        return Connecting(self, (address, port), target, done, factory)

    def _refuse(self, address: str, port: int, reason: str, done: Callable[[Optional[Link]], None]) -> None:
        self.dial_failed((address, port), reason)
        self.reactor.call_soon_threadsafe(done, None)

    def dial_failed(self, remote: tuple[str, int], reason: str) -> None:
        """Report a connection that never came up; it gets a flow number of its own all the same."""
        self.report("connect", flow=self.new_flow(), remote=remote, ok=False, reason=reason)

    def listen(self, modem_port: int, on_pending: Callable[[Listener], None]) -> Listener:
        return Listener(self, modem_port, on_pending)

    def datagrams(self, on_datagram: Callable[[bytes, tuple], None]) -> Datagrams:
        return Datagrams(self, on_datagram)

"""TCP/IP commands of ESP_ATMod (spec §6.3, §7, §3): five link slots over real
host sockets, servers, active and passive receive.

Each slot holds an ``atmodem.net.Link``. Socket events do not print anything
themselves: they schedule a *poll pass* in the firmware's main loop
(``modem.when_polling``), which, as on the chip, walks the slots in order —
pushes ``+IPD`` data (active) or notifications (passive), prints ``CLOSED`` for
links that are closed and fully read, expires idle server links — and then
accepts at most one waiting connection per server. A pass never runs while a
blocking command executes; it runs right after it.
"""

from __future__ import annotations

import logging
from typing import Optional

from atmodem import AtError, Command, Form, Match, Setting, hookimpl
from atmodem.net import Link
from atmodem.params import Params, number_setting
from atmodem.responses import ERROR, OK

NAMESPACE = "tcpip"
SLOTS = 5
MAX_SEND = 2048
DEFAULT_SERVER_PORT = 333

MUX = Setting(NAMESPACE, "mux", default=0)
DINFO = Setting(NAMESPACE, "dinfo", default=0)
RECV_MODE = Setting(NAMESPACE, "recv_mode", default=0)
MAX_CONN = Setting(NAMESPACE, "max_conn", default=5)
SERVER_TIMEOUT = Setting(NAMESPACE, "server_timeout", default=180)

log = logging.getLogger(__name__)


class DataFormat:
    """How ESP_ATMod (the AT 1.7 dialect) shows received data; a dialect plugin returns its own
    from ``atmodem_data_format``. ``index`` is None in single-link mode, ``remote`` None unless
    AT+CIPDINFO=1."""

    def ipd(self, index: Optional[int], data: bytes, remote: Optional[tuple[str, int]]) -> bytes:
        head = b"\r\n+IPD," + (b"%d," % index if index is not None else b"") + b"%d" % len(data)
        if remote:
            head += b",%s,%d" % (remote[0].encode(), remote[1])  # unquoted (spec §7.2)
        return head + b":" + data

    def opened(self, index: Optional[int], link, by_server: bool) -> bytes:
        """A link came up: AT+CIPSTART's answer before its OK, or a server's accept (always mux 1)."""
        return b"%d,CONNECT\r\n" % index if index is not None else b"CONNECT\r\n"

    def passive_notice(self, index: Optional[int], available: int) -> bytes:
        if index is not None:
            return b"\r\n+IPD,%d,%d\r\n" % (index, available)
        return b"\r\n+IPD,%d\r\n" % available

    def received(self, data: bytes, remote: Optional[tuple[str, int]]) -> bytes:
        """The answer to AT+CIPRECVDATA before its OK: no id, and no address even with CIPDINFO (spec §7.3)."""
        return b"\r\n+CIPRECVDATA,%d:" % len(data) + data

    def lengths(self, counts: list[Optional[int]]) -> bytes:
        """AT+CIPRECVLEN? before its OK; ``None`` for an empty slot (0 here, spec §7.3)."""
        return b"+CIPRECVLEN:" + b",".join(b"%d" % (c or 0) for c in counts) + b"\r\n"


def links(modem) -> "Links":
    return modem.runtime_of(NAMESPACE, Links)


def server_ports(modem) -> dict[int, tuple[str, int]]:
    """Where each running AT+CIPSERVER listens on the host: modem port -> (address, port)."""
    return {listener.modem_port: listener.host_address for listener in links(modem).running()}


class Slot:
    """A link in one of the five slots, with what the firmware remembers about it."""

    def __init__(self, table: "Links", index: int, link, via: str):
        self.table = table
        self.index = index
        self.link = link
        self.via = via                 # the interface it went out through (sta, ap, eth)
        self.reported = 0              # the unread count last announced (passive) or pushed (active)
        self.last_activity = table.modem.clock.now()  # for AT+CIPSTO
        link.on_change = self._changed

    def _changed(self, link) -> None:
        self.touch()
        self.table.schedule_poll(delay=self.table.modem.world.latency)

    def touch(self) -> None:
        self.last_activity = self.table.modem.clock.now()


class Links:
    """The slots, servers and pending work of one boot."""

    def __init__(self, modem):
        self.modem = modem
        self.slots: list[Optional[Slot]] = [None] * SLOTS
        self.servers: list = [None] * SLOTS   # Listeners, in the firmware's five server slots
        self.pending_servers: set = set()  # listeners with a connection waiting to be accepted
        self.connecting = set()            # outgoing connections and lookups in progress
        self.send_timer = None             # AT+CIPSEND's write timeout
        self.sending: Optional[Slot] = None  # the slot AT+CIPSEND data is collected for
        self.ever_linked = False           # STATUS:4 once any link existed since boot
        self._poll_timer = None
        self._idle_timer = None            # the next AT+CIPSTO deadline
        self.format: DataFormat = modem.hook.atmodem_data_format(modem=modem) or DataFormat()

    # ------------------------------------------------------------ slots

    def mux(self) -> int:
        return self.modem.settings.get(MUX)

    def get(self, index: int) -> Optional[Slot]:
        return self.slots[index] if 0 <= index < SLOTS else None

    def install(self, index: int, link) -> Slot:
        slot = self.slots[index] = Slot(self, index, link, self.modem.interfaces.route())
        self.ever_linked = True
        link.numbered(index)
        return slot

    def running(self) -> list:
        return [listener for listener in self.servers if listener is not None]

    def is_server_link(self, slot: Slot) -> bool:
        """The firmware's test: the link's local port is a running server's port."""
        return any(listener.modem_port == slot.link.local_port for listener in self.running())

    def free(self, slot: Slot) -> None:
        if self.slots[slot.index] is slot:
            self.slots[slot.index] = None
        slot.link.close()
        if self.sending is slot:
            # Spec §16.2: collecting CIPSEND data ends silently; the rest goes to the parser.
            self.sending = None
            self.modem.end_raw()
        if self.pending_servers:
            self.schedule_poll()

    def closed_text(self, slot: Slot) -> bytes:
        return b"%d,CLOSED\r\n" % slot.index if self.mux() else b"CLOSED\r\n"

    # ------------------------------------------------------------ the poll pass

    def schedule_poll(self, delay: float = 0.0) -> None:
        if self._poll_timer is None:
            self._poll_timer = self.modem.clock.call_later(delay, self._poll_due)

    def _poll_due(self) -> None:
        self.modem.when_polling(self.poll)

    def poll(self) -> None:
        self._poll_timer = None
        passive = self.modem.settings.get(RECV_MODE) == 1
        now = self.modem.clock.now()
        timeout = self.modem.settings.get(SERVER_TIMEOUT)
        for slot in list(self.slots):
            if slot is None:
                continue
            link = slot.link
            # Only a count beyond the last one reported is news (spec §7.3, last point).
            if link.available > slot.reported:
                if passive:
                    slot.reported = link.available
                    self.modem.write(self._passive_notice(slot))
                else:
                    slot.reported = 0
                    self.modem.write(self._ipd(slot, link.read(link.available)))
            if not link.available and not link.connected:
                self.modem.write(self.closed_text(slot))
                self.free(slot)
            elif timeout and not link.available and now - slot.last_activity >= timeout \
                    and self.is_server_link(slot):
                self.modem.write(self.closed_text(slot))
                self.free(slot)
        self._accept()
        self._arm_idle_timer(timeout)
        if any(slot is not None and slot.link.available > slot.reported for slot in self.slots):
            self.schedule_poll()  # a TLS link offers its next record on the next pass

    def _arm_idle_timer(self, timeout: int) -> None:
        """Wake the poll at the next AT+CIPSTO deadline of a server link."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        # Links with unread data cannot expire; reading them schedules a poll anyway.
        deadlines = [s.last_activity + timeout for s in self.slots
                     if s is not None and not s.link.available and self.is_server_link(s)]
        if timeout and deadlines:
            delay = max(0.0, min(deadlines) - self.modem.clock.now())
            self._idle_timer = self.modem.clock.call_later(delay, self._idle_due)

    def _idle_due(self) -> None:
        self._idle_timer = None
        self.schedule_poll()

    def _ipd(self, slot: Slot, data: bytes) -> bytes:
        return self.format.ipd(self._shown_id(slot), data, self._shown_remote(slot))

    def _passive_notice(self, slot: Slot) -> bytes:
        return self.format.passive_notice(self._shown_id(slot), slot.link.available)

    def _shown_id(self, slot: Slot) -> Optional[int]:
        return slot.index if self.mux() else None

    def _shown_remote(self, slot: Slot) -> Optional[tuple[str, int]]:
        return slot.link.remote if self.modem.settings.get(DINFO) else None

    # ------------------------------------------------------------ servers

    def connection_waiting(self, listener) -> None:
        self.pending_servers.add(listener)
        self.schedule_poll()

    def _accept(self) -> None:
        limit = self.modem.settings.get(MAX_CONN)
        for listener in self.running():  # in server-slot order, as the firmware walks them
            if listener not in self.pending_servers:
                continue
            server_links = sum(1 for s in self.slots if s is not None and self.is_server_link(s))
            free = next((i for i, s in enumerate(self.slots) if s is None), None)
            if server_links >= limit or free is None:
                continue  # stays in the host's backlog until a slot frees
            self.pending_servers.discard(listener)
            link = listener.accept()
            listener.watch()
            if link is None:
                continue
            self.install(free, link)
            self.modem.write(self.format.opened(free, link, by_server=True))
            # The poll pass also delivers what the new link may already hold.
            self.schedule_poll(delay=self.modem.world.latency)

    def stop_server(self, listener) -> None:
        self.servers[self.servers.index(listener)] = None
        self.pending_servers.discard(listener)
        listener.close()
        self.modem.report("server_stopped", modem_port=listener.modem_port)

    # ------------------------------------------------------------ reset and routes

    def shutdown(self) -> None:
        for work in list(self.connecting):
            work.cancel()
        for slot in self.slots:
            if slot is not None:
                slot.link.close()
        for listener in self.running():
            self.stop_server(listener)
        for timer in (self._poll_timer, self._idle_timer, self.send_timer):
            if timer is not None:
                timer.cancel()

    def interface_down(self, name: str) -> None:
        for slot in self.slots:
            if slot is not None and slot.via == name:
                slot.link.break_off()


# ---------------------------------------------------------------- parsing helpers


def _link_prefix(modem, p: Params) -> int:
    """CIPSEND / CIPRECVDATA: ``{digit 0-5},`` selects a link in mux 1; otherwise link 0 (spec §7.1 ⚠)."""
    data = p.data
    if len(data) >= p.pos + 2 and data[p.pos] in b"012345" and data[p.pos + 1] == 0x2C:
        if not links(modem).mux():
            raise AtError(b"MUX=0\r\n")
        index = data[p.pos] - 0x30
        p.skip(2)
        return index
    return 0


def _valid_slot(modem, index: int) -> Slot:
    slot = links(modem).get(index)
    if slot is None or not slot.link.connected:
        raise AtError(b"link is not valid\r\n")
    return slot


def _length(p: Params) -> int:
    length = p.number()
    p.end()
    if length > MAX_SEND:
        raise AtError(b"too long\r\n")
    return length


def _flag(args: bytes) -> int:
    value = Params(args).single_number()
    if value > 1:
        raise AtError()
    return value


def _recheck_links(modem) -> None:
    links(modem).schedule_poll()  # a higher limit takes a waiting client, a new timeout re-arms


# ---------------------------------------------------------------- AT+CIPSTART


class _ParseFail(AtError):
    """A CIPSTART parameter error after the host: ERROR, then CLOSED (spec §6.3)."""

    def response(self, modem) -> bytes:
        return modem.syntax.error(modem) + b"CLOSED\r\n"


def _parse_start(modem, args: bytes) -> tuple[int, bytes, bytes, int]:
    p = Params(args)
    index = 0
    if links(modem).mux():
        data = p.data
        if not (len(data) >= 2 and data[0] in b"01234" and data[1] == 0x2C):
            raise AtError()
        index = data[0] - 0x30
        p.skip(2)
    if not p.data.startswith(b'"', p.pos) or p.data[p.pos + 1:p.pos + 4] not in (b"TCP", b"UDP", b"SSL"):
        raise AtError(b"Link type ERROR\r\n\r\n")
    kind = p.data[p.pos + 1:p.pos + 4]
    p.skip(4)
    if not p.data.startswith(b'","', p.pos):
        raise AtError(b"IP ERROR\r\n\r\n")
    p.skip(3)
    end = p.data.find(b'",', p.pos)
    host = p.data[p.pos:end] if end >= 0 else p.data[p.pos:]
    if end < 0 or any(b <= 0x20 or b == 0x7F for b in host) or b'"' in host:
        raise AtError(b"IP ERROR\r\n\r\n")
    if not modem.profile.has("long_hosts") and len(host) > 40:
        raise AtError(b"IP ERROR\r\n\r\n")
    p.pos = end + 2
    try:
        port = p.number()
        if port > 65535:
            raise AtError()
        if not p.at_end():
            p.comma()
            p.number()  # keep-alive: accepted and ignored
        p.end()
    except AtError:
        raise _ParseFail() from None
    return index, kind, host, port


def start(modem, request):
    return open_link(modem, *_parse_start(modem, request.args))


def open_link(modem, index: int, kind: bytes, host: bytes, port: int):
    """AT+CIPSTART's work once parsed: link ``index`` of type ``kind`` (``b"TCP"``, ``b"SSL"`` …) to
    ``host:port``; a ``Pending`` that answers as the chip does. Dialects' own connect commands use it."""
    table = links(modem)
    interfaces = modem.interfaces
    has_ip = interfaces.has_ip() if modem.profile.has("ip_without_station") else interfaces.sta.up
    if not has_ip:
        raise AtError(b"no ip\r\n")
    if table.slots[index] is not None:
        raise AtError(b"ALREADY CONNECTED\r\n\r\n")
    link_type = None if kind == b"TCP" else modem.hook.atmodem_link_type(modem=modem, kind=kind)
    if (kind != b"TCP" and link_type is None) or modem.network is None:
        raise AtError()  # UDP does not exist in ESP_ATMod
    if link_type is not None:
        link_type.check(modem)
    operation = modem.block()
    started = modem.clock.now()
    takes = modem.timing.connect + (link_type.delay(modem) if link_type else 0.0)
    fail = b"connect fail\r\n" + ERROR + b"CLOSED\r\n"
    opening = {"link": None, "answered": False}

    def finish(reply: bytes) -> None:
        if opening["answered"]:
            return
        opening["answered"] = True
        deadline.cancel()
        operation.later(max(0.0, started + takes - modem.clock.now()), operation.finish, reply)

    def give_up() -> None:
        # Nothing answered in time: the chip's client gives up with "connect fail" (spec §6.3).
        for work in (attempt, lookup):
            if work is not None:
                work.cancel()
                table.connecting.discard(work)
        if opening["link"] is not None:
            opening["link"].close()
        finish(fail)

    def connected(link) -> None:
        table.connecting.discard(attempt)
        if link is None:
            finish(fail)
        elif opening["answered"]:
            link.close()
        else:
            opening["link"] = link
            link.establish(lambda ok: established(link, ok))

    def established(link, ok: bool) -> None:
        if not ok or opening["answered"] or table.slots[index] is not None:
            link.close()
            finish(fail)
            return
        table.install(index, link)
        finish(table.format.opened(index if table.mux() else None, link, by_server=False) + OK)

    def resolved(address: Optional[str]) -> None:
        table.connecting.discard(lookup)
        if opening["answered"]:
            return
        if address is None:
            finish(b"DNS Fail\r\n" + ERROR + b"CLOSED\r\n")
            return
        nonlocal attempt
        factory = link_type.factory(modem, host.decode("latin-1"), index) if link_type else Link
        attempt = modem.network.connect(address, port, connected, factory)
        if attempt is not None:
            table.connecting.add(attempt)

    attempt = None
    lookup = _Lookup()
    table.connecting.add(lookup)
    deadline = modem.clock.call_later(modem.timing.connect_timeout + takes, give_up)
    modem.network.resolve(host.decode("latin-1"), lookup.guard(resolved))
    return operation


class _Lookup:
    """A name lookup that a reset can abandon (its answer is then ignored)."""

    def __init__(self):
        self.cancelled = False

    def guard(self, callback):
        def answer(address):
            if not self.cancelled:
                callback(address)
        return answer

    def cancel(self) -> None:
        self.cancelled = True


# ---------------------------------------------------------------- AT+CIPSEND


class _SendData:
    """SEND_DATA mode: exactly ``length`` raw bytes for one link (spec §7.1)."""

    def __init__(self, modem, slot: Slot, length: int):
        self.modem = modem
        self.slot = slot
        self.length = length
        self.data = bytearray()

    def take(self, data: bytes) -> int:
        # Length 0 still swallows the next byte (spec §7.1).
        want = max(1, self.length) if not self.data and self.length == 0 else self.length - len(self.data)
        chunk = data[:want]
        self.data += chunk
        if len(self.data) >= max(1, self.length):
            self._complete()
        return len(chunk)

    def _complete(self) -> None:
        modem, slot = self.modem, self.slot
        payload = bytes(self.data[:self.length])
        table = links(modem)
        table.sending = None
        modem.write(b"\r\nRecv %d bytes\r\n" % self.length)
        work = modem.end_raw(modem.raw_work())

        def sent(ok: bool) -> None:
            if table.send_timer is not None:
                table.send_timer.cancel()
                table.send_timer = None
            if ok:
                slot.touch()
                work.finish(b"\r\nSEND OK\r\n")
            else:
                slot.link.close()  # the firmware stops the client; CLOSED follows from the poll
                table.schedule_poll()
                work.finish(b"\r\nSEND FAIL\r\n")

        if payload:
            # A peer that stops reading fills the window: the core's write gives up (spec §7.1).
            table.send_timer = modem.clock.call_later(modem.timing.send_timeout, slot.link.abandon_send)
            slot.link.send(payload, sent)
        else:
            sent(True)


def send(modem, request):
    p = Params(request.args)
    index = _link_prefix(modem, p)
    slot = _valid_slot(modem, index)
    length = _length(p)
    table = links(modem)
    table.sending = slot
    modem.start_raw(_SendData(modem, slot, length))
    return b"OK\r\n> "


# ---------------------------------------------------------------- AT+CIPRECVDATA / AT+CIPRECVLEN


def receive_data(modem, request):
    p = Params(request.args)
    index = _link_prefix(modem, p)
    slot = links(modem).get(index)
    if slot is None:
        raise AtError(b"link is not valid\r\n")
    length = _length(p)
    link = slot.link
    table = links(modem)
    if not link.available:
        raise AtError()
    size = link.available if length == 0 else min(length, link.available)  # 0: all there is
    if modem.settings.get(RECV_MODE) == 0:
        # Spec §16.7: in active mode the firmware prints the data the +IPD way and drops the link.
        reply = table._ipd(slot, link.read(size)) + OK
        if table.slots[index] is slot:
            table.slots[index] = None
        link.close()
        return reply
    data = link.read(size)
    slot.reported = max(0, slot.reported - len(data))
    table.schedule_poll()  # a fully read, closed link gets its CLOSED now
    return table.format.received(data, table._shown_remote(slot)) + OK


def silent(modem, request):
    return b""  # ⚠ AT+CIPRECVLEN=... prints nothing at all (spec §7.3)


def receive_lengths(modem, request):
    table = links(modem)
    return table.format.lengths([slot.link.available if slot else None for slot in table.slots]) + OK


# ---------------------------------------------------------------- AT+CIPCLOSE / AT+CIPCLOSEMODE


def close(modem, request):
    table = links(modem)
    if request.form is Form.EXECUTE:
        if table.mux():
            raise AtError(b"MUX=1\r\n")
        slot = table.slots[0]
        if slot is None:
            raise AtError()
        table.free(slot)
        return b"CLOSED\r\n" + OK
    if request.form is not Form.SET:
        raise AtError()
    index = Params(request.args).single_number()
    if index > SLOTS:
        raise AtError()
    if not table.mux():
        raise AtError(b"MUX=0\r\n")
    if index == SLOTS:
        out = b""
        for slot in list(table.slots):
            if slot is not None:
                table.free(slot)
                out += b"%d,CLOSED\r\n" % slot.index
        return out + OK
    slot = table.slots[index]
    if slot is None:
        raise AtError(b"UNLINK\r\n")
    table.free(slot)
    return b"%d,CLOSED\r\n" % index + OK


def set_close_mode(modem, request):
    p = Params(request.args)
    if links(modem).mux():
        if p.number() > SLOTS:
            raise AtError()
        p.comma()
    if p.number() > 1:
        raise AtError()
    p.end()
    return OK


# ---------------------------------------------------------------- AT+CIPSTATUS


def status(modem, request):
    table = links(modem)
    station_up = modem.interfaces.sta.up
    listed = [s for s in (table.slots if table.mux() else table.slots[:1]) if s is not None and s.link.connected]
    if not station_up:
        if not modem.profile.has("ip_without_station"):
            return b"STATUS:5\r\n" + OK
        code = 5
    else:
        code = 3 if listed else 4 if table.ever_linked else 2
    out = b"STATUS:%d\r\n" % code
    for slot in listed:
        remote_ip, remote_port = slot.link.remote
        out += b'+CIPSTATUS:%d,"%s","%s",%d,%d,0\r\n' % (
            slot.index, slot.link.kind.encode(), remote_ip.encode(), remote_port, slot.link.local_port)
    return out + OK


# ---------------------------------------------------------------- AT+CIPDOMAIN


def domain(modem, request):
    if request.form is not Form.SET:
        raise AtError()
    p = Params(request.args)
    try:
        name = p.string(modem.profile.constants.get("string_max", 200), escapes=False)
        p.end()
    except AtError:
        raise AtError(b"IP ERROR\r\n") from None
    operation = modem.block()
    started = modem.clock.now()

    def resolved(address: Optional[str]) -> None:
        reply = b"+CIPDOMAIN:%s\r\n" % address.encode() + OK if address else b"DNS Fail\r\n" + ERROR
        operation.later(max(0.0, started + modem.timing.resolve - modem.clock.now()), operation.finish, reply)

    if modem.network is None or not modem.interfaces.has_ip():
        resolved(None)
    else:
        lookup = _Lookup()
        links(modem).connecting.add(lookup)
        modem.network.resolve(name.decode("latin-1"), lookup.guard(resolved))
    return operation


# ---------------------------------------------------------------- AT+CIPMUX / AT+CIPDINFO / AT+CIPRECVMODE


def query_mux(modem, request):
    return b"+CIPMUX:%d\r\n" % modem.settings.get(MUX) + OK


def set_mux(modem, request):
    value = _flag(request.args)
    table = links(modem)
    text = b""
    if any(s is not None for s in table.slots):
        text += b"link is builded\r\n"
    if table.running():
        text += b"CIPSERVER must be 0\r\n"
    if text:
        raise AtError(text)
    modem.settings.set(MUX, value)
    return OK


def query_dinfo(modem, request):
    return b"+CIPDINFO:%s\r\n" % (b"TRUE" if modem.settings.get(DINFO) else b"FALSE") + OK


def set_dinfo(modem, request):
    modem.settings.set(DINFO, _flag(request.args))
    return OK


def query_recv_mode(modem, request):
    return b"+CIPRECVMODE:%d\r\n" % modem.settings.get(RECV_MODE) + OK


def set_recv_mode(modem, request):
    modem.settings.set(RECV_MODE, _flag(request.args))
    return OK


# ---------------------------------------------------------------- AT+CIPSERVER


def server(modem, request):
    table = links(modem)
    if not table.mux() or request.form is not Form.SET:
        raise AtError()
    p = Params(request.args)
    mode = p.number()
    port = None
    if not p.at_end():
        p.comma()
        port = p.number()
    p.end()
    if mode > 1 or (port is not None and not 0 < port <= 65535):
        raise AtError()
    if mode == 1:
        port = DEFAULT_SERVER_PORT if port is None else port
        if any(s.modem_port == port for s in table.running()):
            raise AtError(b"no change\r\n")
        if None not in table.servers or modem.network is None:
            return OK  # ⚠ a sixth server: OK, and nothing starts (spec §6.3)
        try:
            listener = modem.network.listen(port, table.connection_waiting)
        except OSError as exc:
            log.warning("cannot listen for modem port %d on the host: %s", port, exc)
            raise AtError() from None
        table.servers[table.servers.index(None)] = listener
        modem.report("server_started", modem_port=port, host_address=listener.host_address)
        return OK
    matching = [s for s in table.running() if port is None or s.modem_port == port]
    if not matching:
        raise AtError(b"no change\r\n")
    table.stop_server(matching[0])  # accepted links stay open
    return OK


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_commands(profile):
    query_max, set_max = number_setting(MAX_CONN, b"+CIPSERVERMAXCONN", range(1, SLOTS + 1), _recheck_links)
    query_sto, set_sto = number_setting(SERVER_TIMEOUT, b"+CIPSTO", range(0, 7201), _recheck_links)
    commands = [
        Command("+CIPSTATUS", Match.EXACT, execute=status, summary="link status"),
        Command("+CIPSTART", Match.NO_CHECK, set=start, summary="open a link"),
        Command("+CIPSEND", Match.NO_CHECK, set=send, summary="send data"),
        Command("+CIPCLOSEMODE", Match.QUERY_SET, set=set_close_mode, summary="close mode (no effect)"),
        Command("+CIPCLOSE", Match.NO_CHECK, fallback=close, summary="close links"),
        Command("+CIPMUX", Match.QUERY_SET, query=query_mux, set=set_mux, summary="multiple links"),
        Command("+CIPDINFO", Match.QUERY_SET, query=query_dinfo, set=set_dinfo, summary="+IPD with address"),
        Command("+CIPSERVERMAXCONN", Match.QUERY_SET, query=query_max, set=set_max,
                summary="server link limit"),
        Command("+CIPSERVER", Match.NO_CHECK, fallback=server, summary="TCP servers"),
        Command("+CIPSTO", Match.QUERY_SET, query=query_sto, set=set_sto, summary="server link timeout"),
        Command("+CIPRECVMODE", Match.QUERY_SET, query=query_recv_mode, set=set_recv_mode,
                summary="active or passive receive"),
        Command("+CIPRECVDATA", Match.NO_CHECK, set=receive_data, summary="read passive data"),
        Command("+CIPRECVLEN", Match.QUERY_SET, query=receive_lengths, set=silent, summary="unread byte counts"),
    ]
    if profile.has("cipdomain"):
        commands.append(Command("+CIPDOMAIN", Match.NO_CHECK, fallback=domain, summary="resolve a name"))
    return commands



@hookimpl
def atmodem_interface_changed(modem, interface):
    if not interface.up and NAMESPACE in modem.runtime:
        links(modem).interface_down(interface.name)

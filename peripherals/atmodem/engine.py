"""The sans-I/O modem: bytes in through ``feed``, bytes out through ``sink``.

It implements the input state machine of spec §1 and nothing else: line
assembly, echo, the line-buffer overflow rule, BUSY, the post-command discard
rule and raw input for plugins. Every command comes from a plugin; every delay
goes through the injected clock. It never sleeps, opens a socket or starts a
thread, so one process can run many modems and tests run in simulated time.

Input modes (spec §1.2, plus the two a real chip has around them):

* COMMAND: bytes build a line (echoed if echo is on); LF (the syntax's terminator) completes it.
* BLOCKED: a command is executing; the UART is not read, bytes wait in the
  FIFO. When the command completes, waiting bytes are dropped up to the next
  ``A`` (spec §1.7). Simple commands are BLOCKED for ``Timing.command``.
* BUSY: a plugin's ``modem.busy()`` operation runs; bytes are echoed and each
  pass of the main loop that read any answers ``busy p...``.
* RAW: a plugin's reader takes the bytes unechoed (CIPSEND data, PEM upload).
* BOOTING: after a reset, until the boot hooks have run; input is lost.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, fields
from typing import Any, Callable, NamedTuple, Optional, Protocol

from atmodem.clock import Clock
from atmodem.commands import AtError, Request
from atmodem.interfaces import Interfaces
from atmodem.plugins import PluginSet
from atmodem.responses import BUSY
from atmodem.state import Flash, Settings
from atmodem.world import World, WorldEvent

log = logging.getLogger(__name__)


class Mode(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    COMMAND = "command"
    BLOCKED = "blocked"
    BUSY = "busy"
    RAW = "raw"


@dataclass(frozen=True)
class Timing:
    """How long things take (spec §9), in seconds of the modem's clock."""

    command: float = 0.001      # any command line, from its LF to its answer
    reset: float = 0.5          # AT+RST / AT+RESTORE / power-on until 'ready'
    uart_change: float = 0.25   # AT+UART: the port settles, nothing is read
    join: float = 3.0           # AT+CWJAP until WIFI GOT IP (an AP's join_delay overrides it)
    join_fail: float = 5.0      # AT+CWJAP until +CWJAP:n FAIL
    reconnect: float = 5.0      # between the SDK's automatic join attempts
    scan: float = 2.0           # AT+CWLAP
    connect: float = 0.1        # AT+CIPSTART (TCP), at least
    send_timeout: float = 5.0   # AT+CIPSEND: a peer not taking the data gives SEND FAIL
    connect_timeout: float = 5.0  # AT+CIPSTART: a peer (or TLS server) that never answers: connect fail
    resolve: float = 0.05       # AT+CIPDOMAIN, at least
    eth_link: float = 0.5       # Ethernet cable to +ETH_CONNECTED, and again to +ETH_GOT_IP
    handshake: float = 1.5      # AT+CIPSTART="SSL": the TLS handshake at 80 MHz, on top of connect
    handshake_fast: float = 0.8  # the same at AT+SYSCPUFREQ=160
    mfln_probe: float = 1.0     # AT+CIPSSLMFLN, at least
    sntp_start: float = 1.0     # SNTP started until its first request

    @classmethod
    def instant(cls) -> "Timing":
        """Everything at once (timeouts, which end waits rather than make them, stay)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if not f.name.endswith("_timeout")})


class UartConfig(NamedTuple):
    """The UART as the firmware's registers hold it (what AT+UART? reports)."""

    baud: int = 115200
    data_bits: int = 8
    stop_bits: int = 1   # 1 = 1 bit, 2 = 1.5 bits, 3 = 2 bits
    parity: int = 0      # 0 none, 1 odd-select without parity enable (= none), 2 even
    flow: int = 0


class RawReader(Protocol):
    def take(self, data: bytes) -> int:
        """Consume a prefix of ``data`` and return its length.

        Call ``modem.end_raw()`` when the data is complete; bytes not taken
        then go to the command parser.
        """


class ExactBytes:
    """A raw reader for exactly ``length`` bytes (data after a prompt or a length field).

    ``done(data)`` runs on the last byte; it answers and calls ``modem.end_raw()``.
    """

    def __init__(self, length: int, done: Callable[[bytes], None]):
        self.missing = length
        self.data = bytearray()
        self.done = done

    def take(self, data: bytes) -> int:
        chunk = data[:self.missing]
        self.data += chunk
        self.missing -= len(chunk)
        if not self.missing:
            self.done(bytes(self.data))
        return len(chunk)


class Pending:
    """A command that finishes later: from ``modem.block()`` or ``modem.busy()``."""

    __slots__ = ("_modem", "busy", "done", "output", "eat", "_generation")

    def __init__(self, modem: "Modem", busy: bool, eat: bool = True):
        self._modem = modem
        self.busy = busy
        self.done = False
        self.output = b""
        self.eat = eat  # apply the post-command discard rule (spec §1.7) when it finishes
        self._generation = modem._boot_generation  # a reset or power-off since makes it stale

    def write(self, data: bytes) -> None:
        """Send part of the answer now (e.g. the OK before a UART switch)."""
        if not self.done:
            self._modem.write(data)

    def finish(self, data: bytes = b"") -> None:
        """Send the rest of the answer and end the command."""
        self._modem._finish(self, data)

    def later(self, delay: float, callback: Callable, *args) -> object:
        """Run a step of this command after ``delay`` on the modem's clock.

        If the step raises, the command ends with ERROR instead of holding the modem.
        """
        return self._modem.clock.call_later(delay, self._step, callback, args)

    def _step(self, callback: Callable, args: tuple) -> None:
        if self._generation != self._modem._boot_generation:
            return  # the chip was reset or switched off since: this command's work died with it
        try:
            callback(*args)
        except Exception:
            log.exception("plugin step %r failed", callback)
            self.finish(self._modem.syntax.error(self._modem))


def _drop(data: bytes) -> None:
    pass


class Modem:
    """One modem. Give it a plugin set and a clock, set ``sink``, call ``power_on()``."""

    def __init__(
        self,
        plugins: PluginSet,
        clock: Clock,
        settings: Optional[Settings] = None,
        *,
        timing: Timing = Timing(),
        busy_per_byte: bool = False,
        sink: Callable[[bytes], None] = _drop,
        world: Optional[World] = None,
        network=None,
    ):
        self.plugins = plugins
        self.profile = plugins.profile
        self.syntax = plugins.syntax
        self.hook = plugins.hook
        self.clock = clock
        self.settings = settings if settings is not None else Settings(Flash())
        self.timing = timing
        self.busy_per_byte = busy_per_byte
        self.sink = sink
        self.world = world if world is not None else World.default()
        self.network = network  # an atmodem.net.Network, or None for a modem without sockets
        if network is not None:
            network.attach(clock, self.report)
        self.interfaces = Interfaces()
        # Per-boot objects of plugins (links, station state), by plugin; emptied at every reset.
        self.runtime: dict[str, Any] = {}
        # Observers of what the modem does besides bytes (server ports, links): observer(kind, details).
        self.observers: list[Callable[[str, dict], None]] = []
        # Observers of every byte: tap(direction "in"/"out", data, clock time). They must not feed the modem.
        self.taps: list[Callable[[str, bytes, float], None]] = []
        # Called with the new UartConfig whenever the firmware reprograms its UART.
        self.uart_listeners: list[Callable[[UartConfig], None]] = []
        self.uart = UartConfig()
        self.echo = True
        self._mode = Mode.OFF
        self._rx = bytearray()          # the UART receive FIFO
        self._received = 0              # bytes the host ever sent: where the FIFO's end is in its stream
        self._line = bytearray()        # the firmware's line buffer
        # Its memory as the firmware sees it: never cleared, each line overwrites the start (spec §16.6).
        self.line_image = bytearray(self.profile.line_buffer)
        self._op: Optional[Pending] = None        # the command executing (BLOCKED)
        self._busy_op: Optional[Pending] = None   # the operation keeping the modem BUSY
        self._raw: Optional[RawReader] = None
        self._deferred: list[Callable[[], None]] = []  # main-loop work raised while BLOCKED
        self._reboot_requested = False
        self._boot_generation = 0
        self._pumping = False

    # ----------------------------------------------------------------- adapters

    @property
    def mode(self) -> Mode:
        return self._mode

    def power_on(self) -> None:
        self.world.subscribe(self._world_event)
        self._start_boot()

    def power_off(self) -> None:
        """Stop the chip for good: plugins release their sockets and timers, what ran is dropped."""
        self.world.unsubscribe(self._world_event)
        self._forget_boot()
        self._mode = Mode.OFF

    def feed(self, data: bytes) -> None:
        """Bytes from the host, in any fragments."""
        if not data:
            return
        self._tap("in", data)
        self._received += len(data)
        if self._mode in (Mode.OFF, Mode.BOOTING):
            return
        self._rx += data
        self._pump()

    # ------------------------------------------------------------------ plugins

    def write(self, data: bytes) -> None:
        """Send bytes to the host now."""
        if not data:
            return
        self._tap("out", data)
        self.sink(data)

    def urc(self, data: bytes) -> None:
        """An unsolicited message: sent now, or when the executing command completes."""
        self.when_polling(self.write, data)

    def when_polling(self, callback: Callable, *args) -> None:
        """Run ``callback`` in the firmware's main loop: now, or after the executing command.

        This is where socket polling and SDK events are handled; while a blocking
        command runs the chip does neither, so the work waits for it (in order).
        Dropped while the chip is off or booting.
        """
        if self._mode is Mode.BLOCKED:
            self._deferred.append(lambda: callback(*args))
        elif self._mode not in (Mode.OFF, Mode.BOOTING):
            callback(*args)

    def report(self, kind: str, **details) -> None:
        """Tell observers (CLI, trace, tests) about something that is not UART bytes.

        The kinds and their details are listed in ``atmodem.trace``.
        """
        for observer in self.observers:
            try:
                observer(kind, details)
            except Exception:  # watching must never change what the modem does
                log.exception("observer %r failed on %s", observer, kind)

    def _tap(self, direction: str, data: bytes) -> None:
        for tap in self.taps:
            try:
                tap(direction, data, self.clock.now())
            except Exception:  # a full disk under a trace file must not cost the firmware a byte
                log.exception("tap %r failed", tap)

    def interface_changed(self, interface) -> None:
        """A plugin brought an interface up or down; let every plugin react."""
        self.hook.atmodem_interface_changed(modem=self, interface=interface)

    def block(self) -> Pending:
        """Return this from a handler whose command completes later; the UART is not read meanwhile."""
        return Pending(self, busy=False)

    def runtime_of(self, name: str, factory: Callable[["Modem"], Any]) -> Any:
        """A plugin's per-boot object, made by ``factory(modem)`` on first use after a reset.

        At the next reset (or ``power_off``) its ``shutdown()``, if it has one, is called.
        """
        obj = self.runtime.get(name)
        if obj is None:
            obj = self.runtime[name] = factory(self)
        return obj

    def busy(self) -> Pending:
        """Return this from a handler to keep the modem BUSY until ``finish``."""
        return Pending(self, busy=True)

    def start_raw(self, reader: RawReader) -> None:
        """Hand the following input bytes to ``reader`` (after the current command's answer)."""
        self._raw = reader
        if self._mode is Mode.COMMAND:
            self._mode = Mode.RAW
            self._pump()

    def end_raw(self, then: Optional[Pending] = None) -> Pending | None:
        """Leave raw input. With ``then`` (from ``raw_work()``), stay deaf until it finishes.

        Bytes the reader did not take go to the command parser.
        """
        self._raw = None
        if self._mode is Mode.RAW:
            if then is not None and not then.done:
                self._mode = Mode.BLOCKED
                self._op = then
                return then
            self._mode = Mode.COMMAND
            self._pump()
        return then

    def raw_work(self) -> Pending:
        """Work a raw reader starts on its last byte (a socket write) during which the UART is not read.

        Unlike a command, finishing it does not apply the discard rule.
        """
        return Pending(self, busy=False, eat=False)

    def reboot(self) -> None:
        """Reset the chip as AT+RST does: inside a command, right after its answer."""
        if self._mode is Mode.BLOCKED:
            self._reboot_requested = True
        else:
            self._start_boot()

    def reset_now(self) -> None:
        """Reset the chip at once, whatever it is doing (a watchdog, a brown-out, an injected fault)."""
        if self._mode is not Mode.OFF:
            self._start_boot()

    def set_uart(self, config: UartConfig) -> None:
        if config != self.uart:
            self.uart = config
            for listener in self.uart_listeners:
                listener(config)

    # ----------------------------------------------------------------- internals

    def _pump(self) -> None:
        if self._pumping:
            return  # the outer loop picks up whatever a nested call changed
        self._pumping = True
        try:
            while self._rx:
                mode = self._mode
                if mode is Mode.COMMAND:
                    line = self._assemble()
                    if line is not None:
                        self._process(line)
                elif mode is Mode.BUSY:
                    self._assemble(limit=1 if self.busy_per_byte else None)
                    self._line.clear()
                    self.write(BUSY)
                elif mode is Mode.RAW:
                    try:
                        taken = self._raw.take(bytes(self._rx))
                    except Exception:
                        log.exception("raw reader %r failed", self._raw)
                        self.end_raw()
                        self.write(self.syntax.error(self))
                        continue
                    if taken and self.observers:
                        self.report("raw", offset=self._received - len(self._rx), length=taken)
                    del self._rx[:taken]
                    if not taken and self._mode is Mode.RAW:
                        break
                else:
                    break
        finally:
            self._pumping = False

    def _assemble(self, limit: Optional[int] = None) -> Optional[bytes]:
        """Move bytes from the FIFO into the line buffer; return the line once the terminator
        arrives (or the syntax says a line without one is complete)."""
        rx, line, capacity, terminator = self._rx, self._line, self.profile.line_buffer, self.syntax.terminator
        ends_early = self.syntax.ends_early
        stop = len(rx) if limit is None else min(limit, len(rx))
        pos = 0
        try:
            while pos < stop:
                space = capacity - len(line)
                if space <= 0:
                    # Spec §1.5: the byte that finds the buffer full is dropped unechoed.
                    pos += 1
                    line.clear()
                    self.write(self.syntax.error(self))
                    continue
                end = min(stop, pos + space)
                lf = rx.find(terminator, pos, end)
                if lf >= 0:
                    end = lf + 1
                chunk = bytes(rx[pos:end])
                line += chunk
                length = ends_early(line) if ends_early is not None else None
                if length is not None:
                    # the rest of the chunk (terminator included) is data that follows the command
                    chunk = chunk[:len(chunk) - (len(line) - length)]
                    del line[length:]
                    end = pos + len(chunk)
                pos = end
                if self.echo:
                    self.write(chunk)
                if lf >= 0 or length is not None:
                    complete = bytes(line)
                    self.line_image[:len(complete)] = complete
                    line.clear()
                    return complete
            return None
        finally:
            del rx[:pos]

    def _process(self, line: bytes) -> None:
        self._mode = Mode.BLOCKED
        request = self.syntax.request(self.plugins.table, line)
        if self.observers:
            self.report("command", line=line.decode("latin-1"),
                        label=self.syntax.label(request.command) if request else None)
        reply = self._answer(line, request)
        if isinstance(reply, Pending):
            if reply.busy:
                self._busy_op, reply = reply, b""  # BUSY begins once this command phase ends
            elif reply.done:
                reply = reply.output  # the handler finished it before returning
            else:
                self._op = reply
                return
        op = self._op = Pending(self, busy=False)
        if self.timing.command > 0:
            self.clock.call_later(self.timing.command, op.finish, reply)
        else:
            op.finish(reply)

    def _answer(self, line: bytes, request: Optional[Request]):
        try:
            reply = self.hook.atmodem_before_command(modem=self, line=line, request=request)
            if reply is None:
                if request is None:
                    return self.syntax.unmatched(self, line)
                handler = request.command.handler(request.form)
                if handler is None:
                    return self.syntax.error(self)
                reply = handler(self, request)
            if not isinstance(reply, (bytes, Pending)):
                raise TypeError(f"handler returned {type(reply).__name__}, not bytes or Pending")
            return reply
        except AtError as exc:
            return exc.response(self)
        except Exception:
            log.exception("plugin failed on %r", line)
            return self.syntax.error(self)

    def _finish(self, op: Pending, data: bytes) -> None:
        if op.done:
            return
        op.done = True
        op.output = data
        if op is self._busy_op:
            if self._mode is Mode.BUSY:
                self._busy_op = None
                self.write(data)
                self._mode = Mode.COMMAND
                self._pump()
            return  # finished during its own command phase: answered when that completes
        if op is not self._op:
            return  # stale: the modem was reset since
        self._op = None
        if op.eat and self.syntax.discard_after_command:
            # Spec §1.7: what already waits is eaten up to the next 'A'. Before the reply goes
            # out, because a host that reacts to the reply is always later than the eater.
            first_a = self._rx.find(b"A")
            del self._rx[:first_a if first_a >= 0 else len(self._rx)]
        self.write(data)
        if self._reboot_requested:
            self._start_boot()
            return
        busy = self._busy_op
        if busy is not None and busy.done:
            self._busy_op = None
            self.write(busy.output)
            busy = None
        self._mode = Mode.BUSY if busy else Mode.RAW if self._raw else Mode.COMMAND
        deferred, self._deferred = self._deferred, []
        for work in deferred:
            if self._mode is Mode.BLOCKED:  # deferred work started another blocking step
                self._deferred.append(work)
            else:
                work()
        self._pump()

    def _world_event(self, event: WorldEvent) -> None:
        if self._mode is not Mode.OFF:
            self.hook.atmodem_world_event(modem=self, event=event)

    def _shutdown(self) -> None:
        try:
            self.hook.atmodem_shutdown(modem=self)
        except Exception:
            log.exception("shutdown hook failed")
        for name, obj in self.runtime.items():
            stop = getattr(obj, "shutdown", None)
            try:
                if stop is not None:
                    stop()
            except Exception:
                log.exception("shutting down %s failed", name)
        self.runtime.clear()
        self.interfaces = Interfaces()

    def _forget_boot(self) -> None:
        """Everything of this boot goes: plugins' runtime, the FIFO, the command running."""
        self._shutdown()
        self._rx.clear()
        self._line.clear()
        self._deferred.clear()
        self._op = self._busy_op = self._raw = None
        self._reboot_requested = False
        self._boot_generation += 1

    def _start_boot(self) -> None:
        self._forget_boot()
        self._mode = Mode.BOOTING
        self.clock.call_later(self.timing.reset, self._boot, self._boot_generation)

    def _boot(self, generation: int) -> None:
        if generation != self._boot_generation:
            return  # a newer reset overtook this one
        self.settings.boot()
        self.echo = True
        try:
            self.hook.atmodem_boot(modem=self)
        except Exception:
            log.exception("boot hook failed")
        self._mode = Mode.COMMAND
        self._pump()

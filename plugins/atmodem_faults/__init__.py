"""Fault injection: the world's faults (``atmodem.faults``) that act on the modem itself.

An add-on: no profile claims it, so every modem runs it. It answers commands with other
bytes (``response``), starts them late (``latency``), and at their time switches access
points off, pulls the Ethernet cable, reboots the chip or corrupts its flash file
(``drop_ap``, ``unplug_cable``, ``reboot``, ``corrupt_state``). It also lends the modem's
time since power-on to ``modem.network``, which applies the network faults. Every firing is
counted in ``world.faults`` and reported as ``modem.report("fault", kind=…, …)``. Reboots and corruption reset the chip at once, whatever
it is doing, as a watchdog or a brown-out does.
"""

from __future__ import annotations

import logging
import weakref

from atmodem import AtError, hookimpl
from atmodem.engine import Mode, Pending
from atmodem.faults import COMMAND_KINDS, Fault

log = logging.getLogger(__name__)

# Where "seconds since power-on" starts, per modem; and which timed faults each has scheduled
# since. Both outlive resets (a reboot is not a power-on), so they cannot live in modem.runtime.
_powered_on: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_scheduled: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# Garbage the state file gets: what a write cut short by a power loss leaves (no JSON).
CORRUPTION = b'{"format": 1, "regions": {"eeprom": {"uart.co\xff\xff\xff\xff\x00\x00'


def fire(modem, fault: Fault, **details) -> None:
    """Count a firing and tell the modem's observers (traces, tests, the CLI)."""
    modem.world.faults.take(fault, modem.clock.now(), modem.report, **details)


# ------------------------------------------------------------------ scheduling


def uptime(modem) -> float:
    """Seconds since the modem's power-on, on its clock."""
    return modem.clock.now() - _powered_on[modem]


@hookimpl
def atmodem_shutdown(modem):
    if modem.mode is Mode.OFF:  # a power-on (a reset finds the chip running, or booting)
        _powered_on[modem] = modem.clock.now()
        _scheduled[modem] = weakref.WeakSet()


@hookimpl
def atmodem_boot(modem):
    if modem.network is not None:
        modem.network.uptime = lambda: uptime(modem)
    for fault in modem.world.faults:
        schedule(modem, fault)


@hookimpl
def atmodem_world_event(modem, event):
    if event.kind == "fault_added":
        schedule(modem, event.subject)


def schedule(modem, fault: Fault) -> None:
    """A timed fault happens at its time, once per power-on (other kinds are live from theirs)."""
    if not fault.timed or modem not in _scheduled:
        return  # never powered on: its power-on schedules it
    scheduled = _scheduled[modem]
    if fault in scheduled:
        return
    scheduled.add(fault)
    delay = 0.0 if fault.at is None else max(0.0, _powered_on[modem] + fault.at - modem.clock.now())
    modem.clock.call_later(delay, _due, weakref.ref(modem), scheduled, fault)


def _due(modem_ref, scheduled, fault: Fault) -> None:
    modem = modem_ref()
    if modem is None or modem.mode is Mode.OFF or _scheduled.get(modem) is not scheduled \
            or not modem.world.faults.holds(fault):
        return  # off, or powered on again since (it counts afresh), or the fault is gone or spent
    fire(modem, fault)
    world = modem.world
    if fault.kind == "drop_ap":
        world.remove_ap(fault.ssid)
        if fault.seconds:
            modem.clock.call_later(fault.seconds, world.restore_ap, fault.ssid)
    elif fault.kind == "unplug_cable":
        world.unplug_cable()
        if fault.seconds:
            modem.clock.call_later(fault.seconds, world.plug_cable)
    elif fault.kind == "corrupt_state":
        corrupt(modem)
        modem.reset_now()
    elif fault.kind == "reboot":
        modem.reset_now()


def corrupt(modem) -> None:
    """Garbage in the flash: in the state file if there is one, and in the flash in memory, so
    nothing the running firmware still holds can write the old settings back."""
    flash = modem.settings.flash
    flash.load_bytes(CORRUPTION)
    if flash.path is not None:
        flash.path.parent.mkdir(parents=True, exist_ok=True)
        flash.path.write_bytes(CORRUPTION)


# ------------------------------------------------------------------ commands


@hookimpl
def atmodem_before_command(modem, line, request):
    faults = modem.world.faults
    if request is None or not faults:
        return None
    fault = next((f for f in faults.live(COMMAND_KINDS, uptime(modem)) if f.matches_command(request.command.name)),
                 None)
    if fault is None:
        return None
    fire(modem, fault, line=line.decode("latin-1"))
    if fault.kind == "response":
        return fault.response
    outer = modem.block()
    outer.later(fault.seconds, _run_late, modem, request, outer)  # a reset meanwhile drops it
    return outer


def _run_late(modem, request, outer: Pending) -> None:
    """The command's own handler, ``seconds`` late; its answer (however late) ends ``outer``."""
    late = _LateModem(modem, outer)
    handler = request.command.handler(request.form)
    if handler is None:
        outer.finish(modem.syntax.error(modem))
        return
    try:
        reply = handler(late, request)
    except AtError as exc:
        reply = exc.response(modem)
    except Exception:
        log.exception("plugin failed on %r", request.line)
        reply = modem.syntax.error(modem)
    if isinstance(reply, Pending) and not reply.done:
        late.answer = reply  # its finish() ends outer
    else:
        outer.finish(reply.output if isinstance(reply, Pending) else reply)


class _LateModem:
    """The modem as a delayed handler sees it: the same in every way, except that the
    ``Pending`` the handler answers with ends the command the fault already holds open."""

    def __init__(self, modem, outer: Pending):
        object.__setattr__(self, "_modem", modem)
        object.__setattr__(self, "_outer", outer)
        object.__setattr__(self, "answer", None)

    def __getattr__(self, name):
        return getattr(self._modem, name)

    def __setattr__(self, name, value):
        if name == "answer":
            object.__setattr__(self, name, value)
        else:
            setattr(self._modem, name, value)

    def block(self) -> Pending:
        return Pending(self, busy=False)

    def busy(self) -> Pending:
        # The command phase is already over for the engine: BUSY input is held (BLOCKED) instead.
        return Pending(self, busy=False)

    def raw_work(self) -> Pending:
        return Pending(self, busy=False, eat=False)

    def _finish(self, op: Pending, data: bytes) -> None:
        if op is not self.answer:
            self._modem._finish(op, data)  # e.g. an AT+CIPSEND write the engine holds
        elif not op.done:
            op.done = True
            op.output = data
            self._outer.finish(data)

"""Fault injection: the world's faults (``atmodem.faults``) that act on the modem itself.

An add-on: no profile claims it, so every modem runs it. It answers commands with other
bytes (``response``), starts them late (``latency``), and at their time switches access
points off, pulls the Ethernet cable, reboots the chip or corrupts its flash file
(``drop_ap``, ``unplug_cable``, ``reboot``, ``corrupt_state``). It also lends the modem's
clock and observers to ``modem.network``, which applies the network faults. Every firing is
counted in ``world.faults.fired`` and reported as ``modem.report("fault", kind=…, …)``.
"""

from __future__ import annotations

import logging
import weakref

from atmodem import AtError, hookimpl
from atmodem.engine import Mode, Pending
from atmodem.faults import COMMAND_KINDS, Fault

log = logging.getLogger(__name__)

# Where "seconds since power-on" starts, per modem; and which timed faults each has scheduled.
# Both outlive resets (a reboot is not a power-on), so they cannot live in modem.runtime.
_powered_on: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_scheduled: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# Garbage the state file gets: what a write cut short by a power loss leaves (no JSON).
CORRUPTION = b'{"format": 1, "regions": {"eeprom": {"uart.co\xff\xff\xff\xff\x00\x00'


def fire(modem, fault: Fault, **details) -> None:
    """Count a firing and tell the modem's observers (traces, tests, the CLI)."""
    modem.world.faults.take(fault, modem.clock.now(), modem.report, **details)


# ------------------------------------------------------------------ scheduling


@hookimpl
def atmodem_boot(modem):
    if modem not in _powered_on:
        _powered_on[modem] = modem.clock.now() - modem.timing.reset
        _scheduled[modem] = weakref.WeakSet()
    if modem.network is not None:
        modem.network.clock = modem.clock
        modem.network.report = modem.report
    for fault in modem.world.faults:
        schedule(modem, fault)


@hookimpl
def atmodem_world_event(modem, event):
    if event.kind == "fault_added":
        schedule(modem, event.subject)


def schedule(modem, fault: Fault) -> None:
    """A timed fault happens at its time, another kind goes live then; each once per power-on."""
    if (fault.at is None and not fault.timed) or modem not in _scheduled:
        return  # live at once; or the modem's first boot, still to come, will schedule it
    scheduled = _scheduled[modem]
    if fault in scheduled:
        return
    scheduled.add(fault)
    delay = 0.0 if fault.at is None else max(0.0, _powered_on[modem] + fault.at - modem.clock.now())
    modem.clock.call_later(delay, _due, weakref.ref(modem), fault)


def _due(modem_ref, fault: Fault) -> None:
    modem = modem_ref()
    if modem is None or modem.mode is Mode.OFF or fault not in modem.world.faults:
        return
    if not fault.timed:
        fault.armed = True
        return
    if fault.spent:
        return
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
        modem.reboot()
    elif fault.kind == "reboot":
        modem.reboot()


def corrupt(modem) -> None:
    """Overwrite the flash file with garbage; without a state directory there is no file to hurt,
    so the flash in memory is what is lost."""
    path = modem.settings.flash.path
    if path is None:
        modem.settings.flash.load_bytes(CORRUPTION)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CORRUPTION)


# ------------------------------------------------------------------ commands


@hookimpl
def atmodem_before_command(modem, line, request):
    faults = modem.world.faults
    if request is None or not faults:
        return None
    fault = next((f for f in faults.live(COMMAND_KINDS) if f.matches_command(request.command.name)), None)
    if fault is None:
        return None
    fire(modem, fault, line=line.decode("latin-1"))
    if fault.kind == "response":
        return fault.response
    outer = modem.block()
    modem.clock.call_later(fault.seconds, _run_late, modem, request, outer)
    return outer


def _run_late(modem, request, outer: Pending) -> None:
    """The command's own handler, ``seconds`` late; its answer (however late) ends ``outer``."""
    if outer.done:
        return  # the chip was reset meanwhile
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

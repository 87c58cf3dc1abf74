"""Renode: a modem on an emulated UART inside Renode's virtual time (in-process, through pyrenode3).

Nothing here imports pyrenode3 or .NET types at module level: ``renode_missing()`` tells
whether Renode can be used without loading it, and ``attach`` runs where pyrenode3 is
already loaded (it loads Renode's whole runtime when imported).

Written against pyrenode3 and Renode 1.15's API: ``Machine.ScheduleAction`` for timers
(virtual time), ``TimeSourceBase.ExecuteInNearestSyncedState`` to hand host-side events to
the emulation, ``IUART.CharReceived`` / ``IUART.WriteChar`` for the bytes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from atmodem.emulators import ConsoleLog
from atmodem.engine import Modem
from atmodem.net import Network
from atmodem.plugins import plugin_set
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.transcript import Transcript, follow
from atmodem.state import Flash, Settings
from atmodem.timedomain import LockstepReactor, OneAtATime, TimeDomainReactor, UartAdapter, VirtualClock
from atmodem.world import World

SELECTORS = ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN")


def renode_missing(binary: str = "renode", in_process: bool = False) -> Optional[str]:
    """Why Renode cannot be used here, or None. Cheap: neither Renode nor pyrenode3 is loaded.

    ``binary`` is the Renode to start as a process; ``in_process`` asks for pyrenode3 too,
    which finds Renode through ``PYRENODE_*`` or ``renode`` on ``PATH``.
    """
    chosen = [name for name in SELECTORS if os.environ.get(name)]
    if len(chosen) > 1:
        return f"set only one of {', '.join(SELECTORS)} (now: {', '.join(chosen)})"
    if not shutil.which(binary) and not (in_process and chosen):
        return (f"Renode is not installed ({binary!r} not found): no package registry this project reaches ships "
                "it. Install Renode 1.15 (README, 'Renode') and name it with RENODE, PATH or PYRENODE_*")
    if in_process and importlib.util.find_spec("pyrenode3") is None:
        return "pyrenode3 is not installed in this Python (pip install it from its git repository; README, 'Renode')"
    return None


class RenodeTimeDomain:
    """A Renode machine's time domain (see ``atmodem.timedomain.TimeDomain``).

    Everything Renode calls back goes through ``enter`` (a ``OneAtATime``): one modem action
    at a time, and a failure is kept in ``enter.error`` instead of reaching Renode's threads.
    ``now()`` has the granularity of Renode's synchronisation: it may trail the CPU by up to
    a quantum inside a CPU callback, the same in every run.
    """

    def __init__(self, machine):
        from System import Action  # noqa: import of a .NET namespace, present once pyrenode3 has loaded Renode
        from Antmicro.Renode.Time import TimeInterval, TimeStamp
        self._machine = getattr(machine, "internal", machine)
        self._interval = TimeInterval
        self._on_interval = Action[TimeInterval]
        self._on_stamp = Action[TimeStamp]
        self.enter = OneAtATime()

    def now(self) -> float:
        return self._machine.ElapsedVirtualTime.TimeElapsed.TotalSeconds

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        # Nanosecond ticks, at least one: Renode runs a zero-delay action inside this very call.
        interval = self._interval.FromTicks(max(1, round(delay * 1e9)))
        self._machine.ScheduleAction(interval, self._on_interval(lambda _when: self.enter(action)), "atmodem")

    def post(self, action: Callable[[], None]) -> None:
        self._machine.LocalTimeSource.ExecuteInNearestSyncedState(self._on_stamp(lambda _when: self.enter(action)))


class RenodeUart:
    """An emulated UART (any ``IUART``: ``mach.sysbus.usart2`` or its ``.internal``) in ``domain``."""

    def __init__(self, uart, domain: RenodeTimeDomain):
        from System import Byte  # noqa: a .NET namespace, present once pyrenode3 has loaded Renode
        self._uart = getattr(uart, "internal", uart)
        self._byte = Byte
        self._domain = domain

    def on_byte(self, callback: Callable[[int], None]) -> None:
        self._uart.CharReceived += lambda byte: self._domain.enter(lambda: callback(int(byte)))

    def write_byte(self, byte: int) -> None:
        self._uart.WriteChar(self._byte(byte))


def peripheral(machine, path: str):
    """``peripheral(mach, "sysbus.usart2")`` is ``mach.sysbus.usart2`` of a pyrenode3 machine."""
    found = machine
    for name in path.split("."):
        found = getattr(found, name)
    return found


@dataclass
class InProcessModem:
    modem: Modem
    transcript: Transcript
    reactor: "LockstepReactor | TimeDomainReactor"
    domain: RenodeTimeDomain

    def close(self) -> None:
        """Power off; call it with the emulation paused (the modem belongs to its thread)."""
        self.modem.power_off()
        self.reactor.close()


def attach(machine, uart: str = "sysbus.usart2", *, world: Optional[World] = None, profile: str = DEFAULT_PROFILE,
           state_dir: Path, pace: bool = False, lockstep: bool = True) -> InProcessModem:
    """Put a powered modem on ``uart`` of a pyrenode3 ``machine``, on the machine's virtual time.

    Timers are Renode scheduled actions, so replies reach the firmware at the same virtual
    instants in every run. With ``lockstep`` (the default) the sockets are polled at virtual
    instants and the emulation waits for the host's answers, so runs against real servers
    repeat exactly; without, socket events reach the emulation at its next synced state,
    whenever the host produced them. With ``pace`` the modem's output takes its baud rate's
    byte time per character.
    """
    world = world if world is not None else World.default()
    domain = RenodeTimeDomain(machine)
    reactor = LockstepReactor(domain) if lockstep else TimeDomainReactor(domain)
    modem = Modem(plugin_set(profile), VirtualClock(domain), Settings(Flash(state_dir)), world=world,
                  network=Network(reactor, world))
    transcript = Transcript()
    follow(modem, transcript, timebase="virtual")
    UartAdapter(modem, RenodeUart(peripheral(machine, uart), domain), domain, pace=pace)
    domain.post(modem.power_on)  # the modem lives on the emulation thread from its first instant
    return InProcessModem(modem, transcript, reactor, domain)


class UartConsole:
    """The firmware's console UART as lines (``log``), and the virtual time each line's first byte
    left (``times``)."""

    def __init__(self, uart, domain: RenodeTimeDomain):
        self.log = ConsoleLog()
        self.times: list[float] = []
        self._partial = bytearray()
        self._started = 0.0
        self._domain = domain
        RenodeUart(uart, domain).on_byte(self._byte)

    def _byte(self, byte: int) -> None:
        if not self._partial:
            self._started = self._domain.now()
        if byte == 0x0A:
            self.times.append(self._started)
            self.log.add(self._partial.decode("latin-1").rstrip("\r"))
            self._partial.clear()
        else:
            self._partial.append(byte)


class InProcessRun:
    """One Renode machine in this process, running a firmware with the modem on its modem UART.

    ``platform`` is a ``.repl`` file, ``firmware`` an ELF; the console UART is collected in
    ``console``. The ELF is loaded with the ``sysbus LoadELF`` monitor command, which
    every Renode has: pyrenode3's own ``load_elf`` called a loader Renode 1.15 lacks when the
    project's research ran them together. Start it with the emulation paused, close it so too.
    """

    def __init__(self, platform: Path, firmware: Path, *, modem_uart: str = "sysbus.usart2",
                 console_uart: str = "sysbus.usart1", world: Optional[World] = None, state_dir: Path,
                 profile: str = DEFAULT_PROFILE, pace: bool = False, name: str = "atmodem"):
        from pyrenode3.wrappers import Emulation, Monitor  # loads Renode's runtime on first import
        self.emulation = Emulation()
        self.machine = self.emulation.add_mach(name)
        if self.machine is None:
            raise RuntimeError(f"Renode already has a machine named {name!r}")
        try:
            monitor = Monitor()
            for command in (f"mach set \"{name}\"", f"machine LoadPlatformDescription @{Path(platform).resolve()}",
                            f"sysbus LoadELF @{Path(firmware).resolve()}"):
                _, error = monitor.execute(command)
                if error:
                    raise RuntimeError(f"Renode refused {command!r}: {error.strip()}")
            self.attached = attach(self.machine, modem_uart, world=world, profile=profile, state_dir=state_dir,
                                   pace=pace)
            self.console = UartConsole(peripheral(self.machine, console_uart), self.attached.domain)
        except BaseException:
            self.emulation.clear()  # the machine's name is free again for the next run
            raise

    @property
    def error(self) -> Optional[BaseException]:
        """The first exception modem code raised inside the emulation, if any."""
        return self.attached.domain.enter.error

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0) -> tuple[int, str]:
        """``ConsoleLog.wait_for`` on the console; gives up when the modem failed inside Renode."""
        def modem_alive() -> None:
            if self.error is not None:
                raise RuntimeError(f"the modem failed inside Renode: {self.error!r}")

        return self.console.log.wait_for(pattern, timeout, start, check=modem_alive)

    def start(self) -> None:
        self.emulation.StartAll()

    def close(self) -> None:
        self.emulation.PauseAll()
        self.attached.close()
        self.emulation.clear()

"""Host firmware in an emulator, wired to a modem: QEMU for STM32 boards, simavr for Arduino AVR boards.

A machine is described by a TOML file in ``platforms/qemu`` or ``platforms/simavr``
(the file name is the machine name). ``Emulator`` starts the emulator with the
firmware, its modem UART on a TCP connection to the modem's port and its console on
our stdout pipe, collects console lines, and stops it for sure (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPOSITORY = Path(__file__).resolve().parents[2]
PLATFORMS = Path(os.environ.get("ATMODEM_PLATFORMS", REPOSITORY / "platforms"))
BUILD = Path(os.environ.get("ATMODEM_BUILD", REPOSITORY / "build"))
STOP_GRACE = 3.0


class EmulatorError(RuntimeError):
    """The emulator cannot be started (missing binary, wrong version, unknown machine)."""


class EmulatorExited(EmulatorError):
    """The emulator ended before what was awaited happened."""


def exit_text(code: Optional[int]) -> str:
    """``exit code N`` or, for a process a signal ended, ``killed by SIGNAME``."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(frozen=True)
class Machine:
    name: str
    emulator: str                  # "qemu" | "simavr"
    options: dict

    @property
    def firmware(self) -> Path:
        """The project's own firmware for this machine (``make firmware`` builds it)."""
        return BUILD / self.options["firmware"]

    def command(self, firmware: Path, modem_port: int) -> list[str]:
        """The emulator's command line; ``EmulatorError`` if the emulator or the firmware is missing."""
        if not Path(firmware).is_file():
            raise EmulatorError(f"firmware {firmware} does not exist (make firmware builds the project's own)")
        if self.emulator == "qemu":
            return self._qemu(firmware, modem_port)
        return self._simavr(firmware, modem_port)

    def _qemu(self, firmware: Path, modem_port: int) -> list[str]:
        binary = _find("qemu-system-arm", "ATMODEM_QEMU")
        _require_qemu(binary, self.options.get("min_version", 0), self.name)
        # nodelay: the guest writes a byte per segment, and Nagle would hold each reply ~40 ms.
        modem = f"socket,id=modem,host=127.0.0.1,port={modem_port},nodelay=on"
        serials = {"console": "stdio", "modem": "chardev:modem"}
        command = [binary, "-M", self.options["machine"], "-kernel", str(firmware), "-display", "none",
                   "-monitor", "none", "-chardev", modem]
        for role in self.options["serials"]:
            command += ["-serial", serials.get(role, "null")]
        return command

    def _simavr(self, firmware: Path, modem_port: int) -> list[str]:
        bridge = _find("atmodem-avr-bridge", "ATMODEM_AVR_BRIDGE", BUILD / "bin" / "atmodem-avr-bridge")
        return [bridge, "-m", self.options["mcu"], "-f", str(self.options.get("frequency", 16000000)),
                "-u", str(self.options["modem_uart"]), "-c", str(self.options.get("console_uart", -1)),
                "-C", f"127.0.0.1:{modem_port}", str(firmware)]


def machines() -> dict[str, Machine]:
    found = {}
    for path in sorted(PLATFORMS.glob("*/*.toml")):
        with open(path, "rb") as f:
            options = tomllib.load(f)
        found[path.stem] = Machine(path.stem, options.pop("emulator"), options)
    return found


def machine(name: str) -> Machine:
    known = machines()
    if name not in known:
        raise EmulatorError(f"unknown machine {name!r}; known: {', '.join(sorted(known)) or 'none'} "
                            f"(descriptions in {PLATFORMS})")
    return known[name]


def _find(program: str, variable: str, built: Optional[Path] = None) -> str:
    candidates = [os.environ.get(variable), str(built) if built else None, shutil.which(program)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EmulatorError(f"{program} not found: run `make setup-emulators` (or set {variable})")


def _require_qemu(binary: str, minimum: int, machine_name: str) -> None:
    version = _qemu_major(binary)
    if version is not None and version < minimum:
        raise EmulatorError(f"machine {machine_name} needs QEMU {minimum} or newer; {binary} is version {version}"
                            " (make setup-emulators installs it from the release's backports)")


@functools.cache
def _qemu_major(binary: str) -> Optional[int]:
    """QEMU's major version (asked once per binary: a run checks its machine before and at start)."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+)\.", output)
    return int(found.group(1)) if found else None


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ConsoleLog:
    """A firmware's console lines as they arrive, from any thread, and a wait for the one that matters."""

    def __init__(self):
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def add(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wake(self) -> None:
        """The source has something to say (it ended): waiters run their ``check`` now."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float, start: int = 0, label: str = "",
                 check: Optional[Callable[[], None]] = None) -> tuple[int, str]:
        """The first line from index ``start`` on that ``re.search``-matches ``pattern``.

        ``check()`` runs while waiting and raises to give up (the source ended or failed);
        ``TimeoutError`` after ``timeout`` seconds. Messages name ``label`` (default: the pattern).
        """
        label = label or repr(pattern)
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self._changed:
            while True:
                for index in range(index, len(self.lines)):
                    if regex.search(self.lines[index]):
                        return index, self.lines[index]
                index = len(self.lines)
                if check is not None:
                    check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no console line matching {label} within {timeout:g} s")
                self._changed.wait(min(left, 0.5))


class Emulator:
    """One emulator process; console lines (and the emulator's own messages) arrive in ``console``."""

    def __init__(self, machine: Machine, firmware: Path, modem_port: int,
                 on_line: Optional[Callable[[str], None]] = None):
        self.machine = machine
        self.command = machine.command(Path(firmware), modem_port)
        self.on_line = on_line
        self.console = ConsoleLog()
        self._process: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None

    def start(self) -> "Emulator":
        # Its own session: a Ctrl-C meant for us reaches it only through stop(). And it dies with
        # us, however we die: an emulator left running would hold the firmware's UART for ever.
        self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, name="emulator-console", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.console.add(line)
            if self.on_line:
                self.on_line(line)
        self.console.wake()

    @property
    def returncode(self) -> Optional[int]:
        return self._process.poll() if self._process else None

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0, label: str = "") -> tuple[int, str]:
        """``ConsoleLog.wait_for``; ``EmulatorExited`` when the emulator ends before the line came."""
        label = label or repr(pattern)

        def still_running() -> None:
            if self._reader is not None and not self._reader.is_alive():
                raise EmulatorExited(f"{self.describe()} ended ({exit_text(self._process.wait())}) "
                                     f"before its console showed {label}")

        return self.console.wait_for(pattern, timeout, start, label, still_running)

    def wait_for_exit(self, timeout: float) -> int:
        """The emulator's exit code once it ends; ``TimeoutError`` if it runs longer than ``timeout``."""
        try:
            return self._process.wait(None if timeout == float("inf") else timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"timed out after {timeout:g} s") from None

    def describe(self) -> str:
        return f"{Path(self.command[0]).name} ({self.machine.name})"

    def stop(self) -> Optional[int]:
        """Stop the emulator (SIGTERM, SIGKILL after a grace period); its exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            except ProcessLookupError:
                pass
        if self._reader is not None:
            self._reader.join(STOP_GRACE)
        return self._process.returncode

"""pytest fixtures: a running modem on a pseudo-terminal, for testing host libraries in CPython.

atmodem installs this module as a pytest plugin (entry point ``pytest11``), so every test run in
the environment has the fixtures below; a test that asks for none of them starts nothing.

``atmodem``
    A booted modem on a pseudo-terminal, with a flash folder of its own, stopped after the test:

    - ``atmodem.port``: the terminal's device path, for your library or pyserial;
    - ``atmodem.serial(**options)``: that port opened with pyserial (115200 Bd, ``timeout=10``
      unless given) and closed after the test;
    - ``atmodem.world``: the ``atmodem.world.World`` it runs in. The world belongs to the modem's
      thread: change it while the modem runs through the session,
      ``atmodem.session.call(atmodem.world.remove_ap, "atmodem-lab")``;
    - ``atmodem.transcript``: every UART byte both ways (``commands()``, ``lines("out")``,
      ``render()``);
    - ``atmodem.session``: the ``atmodem.session.ModemSession``.

``atmodem_echo``
    A TCP echo server on loopback that the modem reaches as ``echo.test`` port 7
    (``AT+CIPSTART="TCP","echo.test",7``): ``.host``, ``.port`` and the ``server``
    (``atmodem.lab.EchoServer``, which counts its ``connections``). Asking for it starts the modem.

``atmodem_world``, ``atmodem_profile``
    What the modem starts with: ``World.default()`` (the WPA2 network ``atmodem-lab`` with password
    ``atmodem-pass``, ``localhost`` resolving to 127.0.0.1) and the default profile
    (``esp_atmod-0.5.0``). To start from something else, override them as any pytest fixture: a
    fixture of the same name in your test module or ``conftest.py``, or a parametrization::

        @pytest.mark.parametrize("atmodem_profile", ["esp_atmod-0.5.0", "esp_atmod-0.3.4"])
        def test_both_releases(atmodem): ...

When a test that used the modem fails, its report gets the modem's AT transcript in a section
named ``atmodem transcript``: what was said on the UART, and when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import pytest
import serial

from atmodem.engine import Mode
from atmodem.lab import EchoServer
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.session import ModemSession
from atmodem.transcript import Transcript
from atmodem.world import World

ECHO_HOST = "echo.test"
ECHO_PORT = 7          # the echo service's own port number
BOOT_TIMEOUT = 10.0    # seconds

TRANSCRIPT = pytest.StashKey[Transcript]()


class RunningModem:
    """What the ``atmodem`` fixture gives a test."""

    def __init__(self, session: ModemSession):
        self.session = session
        self.port: str = session.station.transport.path
        self.world: World = session.world
        self.transcript: Transcript = session.transcript
        self._opened: list[serial.Serial] = []

    def serial(self, **options) -> serial.Serial:
        """The modem's port opened with pyserial; closed when the test ends."""
        port = serial.Serial(self.port, **{"baudrate": 115200, "timeout": 10, **options})
        self._opened.append(port)
        return port

    def _close_ports(self) -> None:
        for port in self._opened:
            port.close()


@dataclass(frozen=True)
class Echo:
    host: str
    port: int
    server: EchoServer


@pytest.fixture
def atmodem_world() -> World:
    return World.default()


@pytest.fixture
def atmodem_profile() -> str:
    return DEFAULT_PROFILE


@pytest.fixture
def atmodem(request, atmodem_world, atmodem_profile, tmp_path_factory) -> Iterator[RunningModem]:
    session = ModemSession(("pty", None), world=atmodem_world, profile=atmodem_profile,
                           state_dir=tmp_path_factory.mktemp("atmodem-flash")).start()
    modem = RunningModem(session)
    request.node.stash[TRANSCRIPT] = session.transcript
    try:
        _wait_for_boot(session)
        yield modem
    finally:
        modem._close_ports()
        session.stop()


def _wait_for_boot(session: ModemSession) -> None:
    # Input sent while the chip boots is lost, as on hardware; a test should not race that.
    deadline = time.monotonic() + BOOT_TIMEOUT
    while session.modem.mode in (Mode.OFF, Mode.BOOTING):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the modem did not boot within {BOOT_TIMEOUT} s")
        time.sleep(0.01)


@pytest.fixture
def atmodem_echo(atmodem) -> Iterator[Echo]:
    server = EchoServer()
    try:
        atmodem.session.call(atmodem.world.map_host, ECHO_HOST, "127.0.0.1")
        atmodem.session.call(atmodem.world.forward_port, "127.0.0.1", ECHO_PORT, "127.0.0.1", server.port)
        yield Echo(ECHO_HOST, ECHO_PORT, server)
    finally:
        server.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    transcript = item.stash.get(TRANSCRIPT, None)
    if report.failed and transcript is not None:
        report.sections.append(("atmodem transcript", transcript.render() or "(nothing either way)"))
    return report

"""The time-domain logic the Renode adapter runs on, on the engine's manual clock.

Nothing here is Renode: ``ManualTimeDomain`` is a time domain of its own, and
``StandInUart`` stands in for an emulated UART (it records what reaches the firmware).
These tests are not Renode tests; the Renode suites are in robot/suites/renode_*.robot.
"""

import socket
import threading
import time

import pytest

from atmodem.engine import Modem, UartConfig
from atmodem.net import Network
from atmodem.plugins import PluginSet, get_profile
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings
from atmodem.timedomain import (LockstepReactor, ManualTimeDomain, OneAtATime, TimeDomainReactor, UartAdapter,
                                VirtualClock, byte_time)
from atmodem.world import World
from support import JOIN, Peer


class StandInUart:
    """Stands in for an emulated UART: records (virtual time, byte) for each byte the firmware receives."""

    def __init__(self, domain):
        self.domain = domain
        self.received: list[tuple[float, int]] = []
        self.threads: set = set()   # the threads that wrote to the firmware
        self.transmit = None

    def on_byte(self, callback):
        self.transmit = callback

    def write_byte(self, byte):
        self.threads.add(threading.current_thread())
        self.received.append((self.domain.now(), byte))

    def firmware_sends(self, data: bytes, spacing: float = 10 / 115200) -> None:
        """The firmware transmits ``data``, one byte per ``spacing`` virtual seconds."""
        for byte in data:
            self.transmit(byte)
            self.domain.advance(spacing)

    def text(self) -> bytes:
        return bytes(byte for _, byte in self.received)


def modem_in(domain, world=None, reactor=None, pace=False, tmp=None):
    world = world or World.default()
    network = Network(reactor, world) if reactor else None
    modem = Modem(PluginSet(get_profile(DEFAULT_PROFILE)), VirtualClock(domain), Settings(Flash(tmp)),
                  world=world, network=network)
    uart = StandInUart(domain)
    UartAdapter(modem, uart, domain, pace=pace)
    modem.power_on()
    domain.advance(2.0)  # boot: ready
    return modem, uart


def run(pace=False):
    domain = ManualTimeDomain()
    modem, uart = modem_in(domain, pace=pace)
    uart.firmware_sends(b"ATE0\r\nAT+GMR\r\n")
    domain.advance(1.0)
    modem.power_off()
    return uart.received


def test_replies_land_at_virtual_instants_and_runs_repeat_exactly():
    first = run()
    assert bytes(b for _, b in first).startswith(b"\r\nready\r\n")
    assert b"ATE0\r\n\r\nOK\r\n" in bytes(b for _, b in first)
    assert first == run()  # the same bytes at the same virtual times, byte for byte


def test_paced_output_takes_the_byte_time_of_the_modem_s_uart():
    domain = ManualTimeDomain()
    modem, uart = modem_in(domain, pace=True)
    uart.received.clear()
    start = domain.now()
    modem.write(b"x" * 11520)
    domain.advance(2.0)
    times = [t for t, _ in uart.received]
    assert len(times) == 11520
    assert times[-1] - start == pytest.approx(1.0, rel=0.05)  # 11,520 bytes at 115200 Bd, 8N1
    assert times[1] - times[0] == pytest.approx(10 / 115200)


def test_pacing_follows_at_uart():
    assert byte_time(UartConfig(9600, 8, 1, 0)) == pytest.approx(10 / 9600)
    assert byte_time(UartConfig(115200, 8, 3, 2)) == pytest.approx(12 / 115200)  # 2 stop bits, even parity
    assert byte_time(UartConfig(115200, 7, 2, 1)) == pytest.approx(9.5 / 115200)  # parity 1 enables nothing


def test_a_cancelled_timer_never_fires():
    domain = ManualTimeDomain()
    clock = VirtualClock(domain)
    fired = []
    clock.call_later(0.5, fired.append, "kept")
    clock.call_later(0.5, fired.append, "cancelled").cancel()
    domain.advance(1.0)
    assert fired == ["kept"] and clock.now() == 1.0


def test_posted_actions_run_in_order_on_the_thread_that_runs_the_domain():
    domain = ManualTimeDomain()
    seen = []
    workers = [threading.Thread(target=domain.post, args=(lambda n=n: seen.append((n, threading.current_thread())),))
               for n in range(5)]
    for worker in workers:
        worker.start()
        worker.join()
    assert seen == []  # nothing runs until the domain's next instant
    assert domain.run_posted() == 5
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert {thread for _, thread in seen} == {threading.current_thread()}


def test_socket_data_reaches_the_modem_only_inside_the_time_domain(tmp_path):
    domain = ManualTimeDomain()
    reactor = TimeDomainReactor(domain)
    world = World.default()
    world.latency = 0.0
    modem, uart = modem_in(domain, world=world, reactor=reactor, tmp=tmp_path)
    peer = Peer()
    try:
        open_link(domain, uart, peer.port)
        conn = peer.accept()
        uart.received.clear()
        conn.sendall(b"hello")
        time.sleep(0.2)
        assert uart.text() == b""  # ready on the host, but the emulation has not reached an instant yet
        uart.threads.clear()
        _run_until(domain, lambda: b"hello" in uart.text())
        assert uart.text() == b"\r\n+IPD,5:hello"
        conn.close()
        _run_until(domain, lambda: b"CLOSED" in uart.text())
        assert uart.text().endswith(b"CLOSED\r\n")
        assert uart.threads == {threading.current_thread()}  # the one running the domain, never the I/O thread
    finally:
        modem.power_off()
        reactor.close()
        peer.close()


def open_link(domain, uart, port: int) -> None:
    """The firmware joins the AP and opens link 0 to 127.0.0.1:``port``."""
    uart.firmware_sends(b"ATE0\r\n" + JOIN)
    domain.advance(10.0)
    uart.firmware_sends(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % port)
    _run_until(domain, lambda: b"CONNECT\r\n" in uart.text())


def _run_until(domain, condition, limit: float = 30.0) -> None:
    """Run the domain as an emulator would, a virtual millisecond at a time, until ``condition``:
    host events posted meanwhile run at the next instant, the lockstep reactor's polls wait for the host."""
    start = domain.now()
    while not condition():
        assert domain.now() - start < limit, "the condition never held in virtual time"
        domain.run_posted(wait=0.001)
        domain.advance(0.001)


class SlowEcho:
    """A TCP server on 127.0.0.1 that echoes each chunk after a random wall-clock delay (0-80 ms)."""

    def __init__(self, seed: int):
        import random
        self.random = random.Random(seed)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(4096):
                time.sleep(self.random.uniform(0, 0.08))
                conn.sendall(data.upper())

    def close(self):
        self.server.close()


def lockstep_run(seed: int, tmp_path) -> list:
    domain = ManualTimeDomain()
    reactor = LockstepReactor(domain)
    modem, uart = modem_in(domain, reactor=reactor, tmp=tmp_path / str(seed))
    server = SlowEcho(seed)
    try:
        open_link(domain, uart, server.port)
        for word in (b"alpha", b"bravo", b"charlie"):
            uart.firmware_sends(b"AT+CIPSEND=%d\r\n" % len(word))
            _run_until(domain, lambda: uart.text().endswith(b"> "))
            uart.firmware_sends(word)
            _run_until(domain, lambda: word.upper() in uart.text())
        domain.advance(0.5)
        return uart.received
    finally:
        modem.power_off()
        reactor.close()
        server.close()


def test_lockstep_runs_repeat_exactly_whatever_the_host_s_timing(tmp_path):
    # The echo server answers after different random delays in each run; the modem's side of the
    # story (bytes and their virtual times) must not change.
    first, second = lockstep_run(1, tmp_path), lockstep_run(2, tmp_path)
    assert b"+IPD,5:ALPHA" in bytes(b for _, b in first) and b"+IPD,7:CHARLIE" in bytes(b for _, b in first)
    assert first == second


def test_a_silent_peer_holds_virtual_time_only_once(tmp_path):
    domain = ManualTimeDomain()
    reactor = LockstepReactor(domain, patience=0.2)
    modem, uart = modem_in(domain, reactor=reactor, tmp=tmp_path)
    peer = Peer()
    try:
        open_link(domain, uart, peer.port)
        peer.accept()
        uart.firmware_sends(b"AT+CIPSEND=4\r\n")
        _run_until(domain, lambda: uart.text().endswith(b"> "))
        uart.firmware_sends(b"ping")
        started = time.monotonic()
        _run_until(domain, lambda: b"SEND OK" in uart.text())
        domain.advance(0.5)  # 500 polls, none of which may wait for the silent peer again
        assert time.monotonic() - started < 2.0
        assert peer.recv_exactly(4) == b"ping"
    finally:
        modem.power_off()
        reactor.close()
        peer.close()


def test_one_at_a_time_defers_reentry_and_keeps_failures():
    enter = OneAtATime()
    order = []

    def outer():
        order.append("outer begins")
        enter(lambda: order.append("due inside"))  # an emulator firing a due action mid-call
        order.append("outer ends")

    enter(outer)
    assert order == ["outer begins", "outer ends", "due inside"]
    enter(lambda: 1 / 0)
    enter(lambda: order.append("still runs"))
    assert isinstance(enter.error, ZeroDivisionError) and order[-1] == "still runs"

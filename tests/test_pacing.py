"""UART pacing: the modem's output leaves at the baud rate ``AT+UART`` set, in virtual time and on
the wall clock (over a real TCP socket, and a pyserial port that follows ``AT+UART``), as the chip's
UART sends it.

Acceptance: 11,520 bytes at 115200 Bd 8N1 take 1.0 s. In virtual time that holds exactly; on the
wall clock within 5 %, from the modem's write to the last byte's arrival at the host.
"""

import asyncio
import contextlib
import os
import socket
import termios
import time
import tty

import pytest

from AtModemLibrary import AtModemLibrary
from atmodem.clock import LoopClock, ManualClock
from atmodem.engine import Modem, UartConfig
from atmodem.plugins import plugin_set
from atmodem.session import ModemSession
from atmodem.timedomain import ManualTimeDomain, UartPacer, byte_time
from atmodem.transports import SerialPort
from atmodem.world import DEFAULT_PASSWORD, DEFAULT_SSID, World
from support import JOIN, Peer
from test_session import read_until
from test_timedomain import modem_in

BYTE_115200 = 10 / 115200
ACCEPTANCE = 11_520


class Recorder:
    """A sink that notes (clock time, bytes) of every delivery."""

    def __init__(self, clock):
        self.clock = clock
        self.deliveries: list[tuple[float, bytes]] = []

    def __call__(self, data: bytes) -> None:
        self.deliveries.append((self.clock.now(), data))

    def data(self) -> bytes:
        return b"".join(data for _, data in self.deliveries)


class FakeModem:
    """What the pacer needs of a modem: its UART settings and their listeners."""

    def __init__(self, config: UartConfig = UartConfig()):
        self.uart = config
        self.uart_listeners = []

    def set_uart(self, config: UartConfig) -> None:
        self.uart = config
        for listener in self.uart_listeners:
            listener(config)


# ------------------------------------------------------------------------------- virtual time

def test_11520_bytes_at_115200_take_exactly_one_virtual_second():
    domain = ManualTimeDomain()
    modem, uart = modem_in(domain, pace=True)
    uart.received.clear()
    start = domain.now()
    modem.write(b"x" * ACCEPTANCE)
    domain.advance(2.0)
    times = [t for t, _ in uart.received]
    assert uart.text() == b"x" * ACCEPTANCE
    # Each byte reaches the firmware when its stop bit is out: the first one byte time after the write.
    assert times[0] - start == pytest.approx(BYTE_115200, abs=1e-12)
    assert times[-1] - start == pytest.approx(1.0, abs=1e-9)
    gaps = {round((b - a) / BYTE_115200, 6) for a, b in zip(times, times[1:])}
    assert gaps == {1.0}


@pytest.mark.parametrize("setting, per_second", [
    (b"9600,8,1,0,0", 960),        # 10 bits a character
    (b"115200,8,3,2,0", 9600),     # 8E2: 12 bits
    (b"110000,8,1,2,0", 10000),    # 8E1: 11 bits
    (b"105000,8,2,0,0", 10000),    # 8N1.5: 10.5 bits
    (b"115000,8,2,2,0", 10000),    # 8E1.5: 11.5 bits
    (b"90000,7,1,1,0", 10000),     # 7 bits, parity 1 (odd-select only: no parity bit on the chip): 9 bits
])
def test_pacing_follows_at_uart_cur(setting, per_second):
    domain = ManualTimeDomain()
    modem, uart = modem_in(domain, pace=True)
    uart.firmware_sends(b"ATE0\r\n")
    domain.advance(0.1)
    uart.received.clear()
    uart.firmware_sends(b"AT+UART_CUR=%s\r\n" % setting)
    domain.advance(1.0)
    # 0.5.0 flushes its OK at the old rate before it reprograms the UART (spec §6.1).
    ok_times = [t for t, _ in uart.received]
    assert uart.text() == b"\r\nOK\r\n"
    assert {round((b - a) / BYTE_115200, 6) for a, b in zip(ok_times, ok_times[1:])} == {1.0}
    uart.received.clear()
    start = domain.now()
    modem.write(b"y" * per_second)
    domain.advance(2.0)
    assert len(uart.received) == per_second
    assert uart.received[-1][0] - start == pytest.approx(1.0, abs=1e-9)


def test_bytes_written_before_a_baud_change_keep_their_rate():
    clock = ManualClock()
    modem = FakeModem()
    sink = Recorder(clock)
    pacer = UartPacer(modem, clock, sink)
    pacer(b"a" * 10)
    modem.set_uart(UartConfig(9600))
    pacer(b"b" * 10)
    clock.run_until_idle()
    assert sink.data() == b"a" * 10 + b"b" * 10
    last_a, last_b = sink.deliveries[9][0], sink.deliveries[19][0]
    assert last_a == pytest.approx(10 * BYTE_115200)
    assert last_b - last_a == pytest.approx(10 * byte_time(UartConfig(9600)))


def test_a_held_line_keeps_every_byte_in_order_and_resumes_at_the_baud_rate():
    clock = ManualClock()
    sink = Recorder(clock)
    pacer = UartPacer(FakeModem(), clock, sink)
    pacer(b"0123456789")
    clock.advance(3.5 * BYTE_115200)
    pacer.pause()
    pacer(b"abcdef")
    clock.advance(1.0)
    assert sink.data() == b"012" and pacer.backlog == 13
    resumed = clock.now()
    pacer.resume()
    clock.run_until_idle()
    assert sink.data() == b"0123456789abcdef"
    assert sink.deliveries[3][0] - resumed == pytest.approx(BYTE_115200)  # no burst to make up for the pause
    assert clock.now() - resumed == pytest.approx(13 * BYTE_115200)


def test_what_follows_a_when_sent_point_waits_for_its_callback():
    loop = LateLoop()
    events = []
    pacer = UartPacer(FakeModem(), loop, lambda data: events.append(bytes(data)), slice_time=0.002)
    pacer.when_sent(lambda: events.append("idle"))  # nothing queued: at once
    pacer(b"a" * 10)
    pacer.when_sent(lambda: events.append("switch"))
    pacer(b"b" * 10)
    loop.tick(lateness=0.050)  # everything is due by now, yet the callback comes in between
    late = loop.time
    while loop.timers:
        loop.tick()
    assert events == ["idle", b"a" * 10, "switch", b"b" * 10]
    assert loop.time == late  # what was due went right after the callback, in the same instant
    assert pacer.backlog == 0


class LateLoop:
    """A clock whose timers fire only when the test says, as late as it says (a loaded event loop)."""

    def __init__(self):
        self.time = 0.0
        self.timers: list[tuple[float, object]] = []

    def now(self) -> float:
        return self.time

    def call_later(self, delay, callback):
        self.timers.append((self.time + max(0.0, delay), callback))
        return self

    def cancel(self) -> None:
        self.timers.clear()

    def tick(self, lateness: float = 0.0) -> None:
        (due, callback), = self.timers
        self.timers.clear()
        self.time = due + lateness
        callback()


def test_wall_clock_slices_and_late_ticks_keep_the_schedule():
    loop = LateLoop()
    sink = Recorder(loop)
    pacer = UartPacer(FakeModem(), loop, sink, slice_time=0.002)
    pacer(b"z" * 1000)
    for _ in range(5):
        loop.tick()
    assert [len(data) for _, data in sink.deliveries] == [23] * 5  # 23 characters fit in 2 ms
    loop.tick(lateness=0.050)  # the loop stalled: what the wire sent meanwhile goes in one write
    assert len(sink.deliveries[-1][1]) == int(loop.time / BYTE_115200 + 1e-6) - 5 * 23
    while loop.timers:
        loop.tick()
    assert sink.data() == b"z" * 1000
    assert loop.time == pytest.approx(1000 * BYTE_115200)  # the stall cost the schedule nothing


# ---------------------------------------------------------------------------------- wall clock

@contextlib.contextmanager
def paced_link(tmp_path):
    """A paced modem on TCP, joined, with an open link to a peer: (host connection, peer)."""
    world = World.from_dict({
        "access_point": [{"ssid": DEFAULT_SSID, "password": DEFAULT_PASSWORD, "join_delay": 0.05}],
        "network": {"latency": 0.0},
    })
    session = ModemSession(state_dir=tmp_path, world=world, pace=True).start()
    peer = Peer()
    try:
        with socket.create_connection(("127.0.0.1", session.port), timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            read_until(conn, b"ready\r\n")
            conn.sendall(b"ATE0\r\n")
            read_until(conn, b"OK\r\n")
            conn.sendall(JOIN)
            read_until(conn, b"\r\nOK\r\n")
            conn.sendall(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port)
            assert read_until(conn, b"\r\nOK\r\n").endswith(b"CONNECT\r\n\r\nOK\r\n")
            peer.accept()
            yield session, conn, peer
    finally:
        peer.close()
        session.stop()


def note_deliveries(pacer: UartPacer, note) -> None:
    """Call ``note(data)`` with every delivery of ``pacer`` (on its loop), just before it goes on."""
    forward = pacer.deliver

    def noting(data: bytes) -> None:
        note(data)
        forward(data)

    pacer.deliver = noting


def output_mark(session) -> int:
    return session.call(lambda: len(session.transcript.chunks))


def first_write_since(session, mark: int) -> float:
    """When (on the loop's clock, ``time.monotonic``) the modem first wrote to its UART after ``mark``."""
    return session.call(lambda: next(chunk.clock for chunk in session.transcript.chunks[mark:]
                                     if chunk.direction == "out"))


def paced_download(session, conn, peer, size: int, config: UartConfig) -> tuple[float, float]:
    """The peer sends enough that ``size`` bytes of +IPD output follow; (seconds measured, seconds due).

    Measured from the modem's write to the arrival of the ``size``-th byte at the host: the line is
    idle before, so that byte's stop bit is out ``size`` byte times after the write, and however late
    the host wakes up to read the burst, it cannot see it sooner."""
    mark = output_mark(session)
    peer.conn.sendall(b"p" * (size + 100))
    conn.settimeout(10)
    received = 0
    while received < size:
        chunk = conn.recv(65536)
        assert chunk, "the modem closed the UART"
        received += len(chunk)
    arrived = time.monotonic()
    measured = arrived - first_write_since(session, mark)
    deadline = time.monotonic() + 10  # the rest of the burst, so that the next one starts on a quiet line
    while session.call(lambda: session.station.transport.pacer.backlog) and time.monotonic() < deadline:
        time.sleep(0.02)
    conn.settimeout(0.2)
    with contextlib.suppress(socket.timeout):
        while conn.recv(65536):
            pass
    return measured, size * byte_time(config)


def within_tolerance(measure, attempts: int = 5) -> float:
    """Seconds for the acceptance burst, within 5 % of its wire time. Pacing may never be early: every
    burst must take at least that long. A loaded machine may hold a burst back (a late tick, a late
    write), so up to ``attempts`` bursts get the chance to land no later than 5 % over."""
    results = []
    for _ in range(attempts):
        measured, due = measure()
        assert measured >= due * 0.95, f"{measured:.4f} s for what takes {due:.4f} s on the wire"
        results.append(measured)
        if measured <= due * 1.05:
            return measured
    pytest.fail(f"bursts took {results} s; {due:.4f} s + 5 % at most expected")


@pytest.mark.timeout(60)
def test_11520_bytes_at_115200_arrive_over_tcp_in_one_second(tmp_path):
    assert ACCEPTANCE * byte_time(UartConfig()) == pytest.approx(1.0)
    with paced_link(tmp_path) as (session, conn, peer):
        within_tolerance(lambda: paced_download(session, conn, peer, ACCEPTANCE, UartConfig()))


@pytest.mark.timeout(60)
def test_wall_clock_pacing_follows_at_uart_cur(tmp_path):
    with paced_link(tmp_path) as (session, conn, peer):
        conn.sendall(b"AT+UART_CUR=9600,8,1,0,0\r\n")
        read_until(conn, b"OK\r\n")
        time.sleep(0.3)  # the chip reads nothing while its UART settles
        assert session.call(lambda: session.modem.uart) == UartConfig(9600)
        within_tolerance(lambda: paced_download(session, conn, peer, 960, UartConfig(9600)))


def test_start_modem_paces_when_asked(tmp_path):
    library = AtModemLibrary(pki=str(tmp_path / "pki"))
    try:
        library.start_modem(pace=True)
        session = library._modem()  # the keywords' own session: its pacer and transcript
        with socket.create_connection(("127.0.0.1", library.get_modem_port()), timeout=10) as conn:
            read_until(conn, b"ready\r\n")
            conn.sendall(b"ATE0\r\n")
            read_until(conn, b"ATE0\r\n\r\nOK\r\n")
            pacer = session.station.transport.pacer
            deliveries = []
            session.call(note_deliveries, pacer, lambda data: deliveries.append((pacer.clock.now(), data)))
            mark = output_mark(session)
            conn.sendall(b"AT+GMR\r\n")
            answer = read_until(conn, b"OK\r\n")
        written = first_write_since(session, mark)
        delivered = session.call(lambda: list(deliveries))
        assert b"".join(data for _, data in delivered) == answer and answer.endswith(b"OK\r\n")
        # Each delivery only once the stop bit of its last byte is out (the line was idle before the
        # write); unpaced, the whole answer would go in the very instant it was written.
        sent = 0
        for when, data in delivered:
            sent += len(data)
            assert when - written >= sent * BYTE_115200 * (1 - 1e-6)
    finally:
        library.stop_everything()


async def pty_exchange(master: int, line: bytes, until: bytes = b"OK\r\n", timeout: float = 5.0) -> bytes:
    """Write ``line`` into the modem's pseudo-terminal and read until ``until`` (or the timeout)."""
    os.write(master, line)
    answer = b""
    deadline = time.monotonic() + timeout
    while not answer.endswith(until) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        with contextlib.suppress(BlockingIOError):
            answer += os.read(master, 4096)
    return answer


@pytest.mark.parametrize("profile, ok_speed", [
    ("esp_atmod-0.5.0", termios.B115200),   # flushes its OK, then reprograms the UART (spec §6.1)
    ("esp_atmod-0.3.4", termios.B9600),     # reprograms first: the OK comes at the new rate
])
def test_a_paced_serial_port_switches_when_the_old_rate_output_is_out(profile, ok_speed):
    """Each write of a paced pyserial port, with the rate the port ran at when it went out."""
    async def scenario():
        master, slave = os.openpty()
        tty.setraw(master)
        os.set_blocking(master, False)
        modem = Modem(plugin_set(profile), LoopClock(asyncio.get_running_loop()))
        port = SerialPort(modem, os.ttyname(slave), pace=True)
        await port.start()
        writes = []
        note_deliveries(port.pacer, lambda data: writes.append((termios.tcgetattr(slave)[5], data)))
        modem.power_on()
        try:
            # Until the boot is over and the port open, nothing answers.
            while not (await pty_exchange(master, b"ATE0\r\n", timeout=0.3)).endswith(b"OK\r\n"):
                pass
            writes.clear()
            assert await pty_exchange(master, b"AT+UART_CUR=9600,8,1,0,0\r\n") == b"\r\nOK\r\n"
            await asyncio.sleep(0.3)  # the chip reads nothing while its UART settles
            assert await pty_exchange(master, b"AT\r\n") == b"\r\nOK\r\n"
        finally:
            await port.stop()
            os.close(master)
            os.close(slave)
        return writes

    rate_of_each_byte = [(speed, byte) for speed, data in asyncio.run(scenario()) for byte in data]
    assert rate_of_each_byte == [(ok_speed, byte) for byte in b"\r\nOK\r\n"] + \
                                [(termios.B9600, byte) for byte in b"\r\nOK\r\n"]

"""`atmodem serve` as a real process on real TCP sockets, a PTY and a pyserial URL."""

import asyncio
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import tty

import pytest
import serial

from atmodem.clock import LoopClock
from atmodem.engine import Modem
from atmodem.plugins import plugin_set
from atmodem.trace import read_trace
from atmodem.transports import SerialPort
from conftest import cli_env
from conversation import GMR_034, GMR_050, OK, script
from processes import BOOT
from support import Harness

def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Wire:
    """Both ends of a byte pipe to the modem, for a socket or a serial port."""

    def __init__(self, send, recv, fileno):
        self._send, self._recv, self._fileno = send, recv, fileno

    def read_exactly(self, n: int, timeout: float = 5.0) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < n:
            data += self.read_for(max(0.0, deadline - time.monotonic()), n - len(data))
            if time.monotonic() >= deadline:
                break
        return data

    def read_for(self, seconds: float, limit: int = 1 << 16) -> bytes:
        ready, _, _ = select.select([self._fileno], [], [], seconds)
        return self._recv(limit) if ready else b""

    def quiet(self, seconds: float = 0.3) -> bytes:
        data, deadline = b"", time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            data += self.read_for(left)
        return data

    def say(self, data: bytes, one_at_a_time: bool = True) -> None:
        if not one_at_a_time:
            self._send(data)
            return
        for i in range(len(data)):
            self._send(data[i:i + 1])

    def transact(self, data: bytes, expected: bytes) -> None:
        """Send one byte at a time; the reply must be exactly ``expected``."""
        self.say(data)
        assert self.read_exactly(len(expected)) == expected


def socket_wire(sock):
    return Wire(sock.sendall, sock.recv, sock.fileno())


def serial_wire(port):
    return Wire(port.write, port.read, port.fileno())


def run_conversation(wire: Wire) -> None:
    for exchange, echo in script():
        expected = exchange.expected(echo)
        wire.say(exchange.send, one_at_a_time=not exchange.burst)
        assert wire.read_exactly(len(expected)) == expected, exchange.send
    assert wire.quiet() == b""


def test_listen_one_byte_at_a_time(serve):
    """Acceptance: the spec's §1 and §6.1 bytes, one at a time, echo on and off."""
    modem = serve("--listen", "tcp:127.0.0.1:0")
    assert modem.profile == "esp_atmod-0.5.0"
    with connect(modem.port) as sock:  # well inside the boot time, so 'ready' reaches us
        wire = socket_wire(sock)
        assert wire.read_exactly(9) == b"\r\nready\r\n"
        run_conversation(wire)


@pytest.mark.parametrize("profile,greeting,line,answer", [
    ("esp-at-2", b"\r\nready\r\n", b"AT+CIPSTATE?\r\n", b"AT+CIPSTATE?\r\n\r\nOK\r\n"),
    ("telit", b"", b"at#sslen?\r", b"at#sslen?\r\r\n#SSLEN: 1,0\r\n#SSLEN: 2,0\r\n#SSLEN: 3,0\r\n"
                                        b"#SSLEN: 4,0\r\n#SSLEN: 5,0\r\n#SSLEN: 6,0\r\n\r\nOK\r\n"),
    ("eswifi", b"\r\n> ", b"CS\r", b"\r\n0\r\nOK\r\n> "),
])
def test_serve_runs_every_dialect(serve, profile, greeting, line, answer):
    modem = serve("--listen", "tcp:127.0.0.1:0", "--profile", profile)
    assert modem.profile == profile
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        assert wire.read_exactly(len(greeting), timeout=BOOT + 2) == greeting
        modem.wait_booted()  # a dialect with no greeting says nothing when it is ready
        wire.transact(line, answer)
        assert wire.quiet() == b""


def test_serve_injects_faults_from_the_command_line(serve):
    modem = serve("--listen", "tcp:127.0.0.1:0", "--fault", r'kind=response,command=+GMR,response="\r\nbusy p...\r\n",times=1',
                  "--fault", "kind=dns_fail,host=nowhere.test")
    modem.wait_booted()
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.transact(b"ATE0\r\n", b"ATE0\r\n" + OK)
        wire.transact(b"AT+GMR\r\n", b"\r\nbusy p...\r\n")
        wire.transact(b"AT+GMR\r\n", GMR_050)   # once only
        wire.transact(b'AT+CIPDOMAIN="nowhere.test"\r\n', b"DNS Fail\r\n\r\nERROR\r\n")


def test_a_bad_fault_spec_is_a_usage_error(tmp_path):
    run = subprocess.run([sys.executable, "-m", "atmodem", "serve", "--listen", "tcp:127.0.0.1:0",
                          "--fault", "kind=latency,command=+CIPSTART"], capture_output=True, text=True, env=cli_env())
    assert run.returncode == 2 and "--fault" in run.stderr and "seconds" in run.stderr


def test_listen_reconnect_keeps_the_modem_state(serve):
    modem = serve("--listen", "tcp:127.0.0.1:0")
    modem.wait_booted()
    with connect(modem.port) as sock:
        socket_wire(sock).transact(b"ATE0\r\n", b"ATE0\r\n" + OK)
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.transact(b"AT\r\n", OK)  # echo is still off
        wire.say(b"AT+G")
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.transact(b"MR\r\n", GMR_050)  # the half line was kept, as in a UART's buffer


def test_a_new_connection_replaces_a_stale_one(serve):
    modem = serve("--listen", "tcp:127.0.0.1:0")
    modem.wait_booted()
    with connect(modem.port) as old, connect(modem.port) as new:
        time.sleep(0.2)
        assert old.recv(10) == b""  # closed by the modem
        socket_wire(new).transact(b"AT\r\n", b"AT\r\n" + OK)


def test_connect_waits_for_the_emulator_and_reconnects(serve):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        modem = serve("--connect", f"tcp:127.0.0.1:{port}")
        time.sleep(BOOT + 0.3)  # the modem retries while nothing listens
        listener.listen()
        listener.settimeout(5)
        peer, _ = listener.accept()
        with peer:
            wire = socket_wire(peer)
            wire.quiet(0.1)
            wire.transact(b"ATE0\r\n", b"ATE0\r\n" + OK)
        peer, _ = listener.accept()  # the emulator restarted; the modem comes back
        with peer:
            socket_wire(peer).transact(b"AT+SYSRAM?\r\n", b"+SYSRAM:40960\r\nOK\r\n")
    assert modem.endpoint == f"tcp:127.0.0.1:{port}"


def test_pty(serve, tmp_path):
    link = tmp_path / "modem"
    modem = serve("--pty", str(link))
    assert modem.endpoint.startswith("pty:/dev/pts/")
    assert link.is_symlink()
    modem.wait_booted()
    with serial.Serial(str(link), 115200, timeout=0) as port:
        port.reset_input_buffer()
        wire = serial_wire(port)
        wire.transact(b"AT+GMR\r\n", b"AT+GMR\r\n" + GMR_050)
    with serial.Serial(str(link), 115200, timeout=0) as port:  # another program opens it later
        serial_wire(port).transact(b"AT\r\n", b"AT\r\n" + OK)
    modem.interrupt()
    assert not link.exists()


@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_right_after_the_announcement(serve, attempt):
    assert serve("--listen", "tcp:127.0.0.1:0").interrupt() == "atmodem: stopped\n"


def test_pty_prints_how_to_talk_to_it(serve):
    modem = serve("--pty")
    line = modem.proc.stdout.readline()
    assert "serial.tools.miniterm --eol CRLF /dev/pts/" in line and line.rstrip().endswith(" 115200")


def test_serial_url(serve):
    """pyserial's socket:// stands for a USB-UART: the modem is the client, and comes back after a loss."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        modem = serve("--serial", f"socket://127.0.0.1:{listener.getsockname()[1]}")
        peer, _ = listener.accept()
        with peer:
            wire = socket_wire(peer)
            modem.wait_booted()
            wire.quiet(0.1)
            wire.transact(b"ATE0\r\n", b"ATE0\r\n" + OK)
        peer, _ = listener.accept()
        with peer:
            time.sleep(0.2)  # opening a port flushes its input: bytes sent meanwhile are gone
            socket_wire(peer).transact(b"AT\r\n", OK)


def test_serial_url_sockets_send_without_delay():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = SerialPort(Harness().modem, f"socket://127.0.0.1:{listener.getsockname()[1]}")._open()
        with port:
            assert port._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_port_that_refuses_a_uart_setting_keeps_the_modem_alive(caplog):
    """A pseudo-terminal rejects 7 data bits: the modem must still answer afterwards."""
    async def scenario():
        master, slave = os.openpty()
        tty.setraw(master)
        modem = Modem(plugin_set("esp_atmod-0.5.0"), LoopClock(asyncio.get_running_loop()))
        port = SerialPort(modem, os.ttyname(slave))
        await port.start()
        modem.power_on()

        async def exchange(line, seconds):
            os.write(master, line)
            await asyncio.sleep(seconds)
            return os.read(master, 4096)

        try:
            await asyncio.sleep(0.8)
            os.read(master, 4096)  # 'ready'
            assert await exchange(b"AT+UART_CUR=115200,7,1,0,0\r\n", 0.5) == b"AT+UART_CUR=115200,7,1,0,0\r\n" + OK
            assert await exchange(b"AT\r\n", 0.2) == b"AT\r\n" + OK
        finally:
            await port.stop()
            os.close(master)
            os.close(slave)

    asyncio.run(scenario())
    assert "cannot switch the port" in caplog.text


def test_trace_records_every_byte_both_ways(serve, tmp_path):
    trace = tmp_path / "trace.jsonl"
    modem = serve("--listen", "tcp:127.0.0.1:0", "--trace", str(trace))
    modem.wait_booted()
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.say(b"AT\r\n", one_at_a_time=False)
        assert wire.read_exactly(10) == b"AT\r\n" + OK
    modem.interrupt()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert set(records[0]) == {"time", "clock", "event", "profile", "timebase"}
    assert set(next(r for r in records if "dir" in r)) == {"time", "clock", "dir", "data"}
    records = list(read_trace(trace))
    sent = b"".join(data for direction, data, _ in records if direction == "in")
    said = b"".join(data for direction, data, _ in records if direction == "out")
    assert (sent, said) == (b"AT\r\n", b"\r\nready\r\n" + b"AT\r\n" + OK)
    clocks = [clock for _, _, clock in records]
    assert clocks == sorted(clocks)


def test_flash_survives_a_process_restart(serve, tmp_path):
    first = serve("--listen", "tcp:127.0.0.1:0", state_dir=tmp_path / "flash")
    first.wait_booted()
    with connect(first.port) as sock:
        save = b"AT+UART_DEF=57600,8,1,0,0\r\n"
        socket_wire(sock).transact(save, save + OK)
    first.interrupt()
    second = serve("--listen", "tcp:127.0.0.1:0", state_dir=tmp_path / "flash")
    second.wait_booted()
    with connect(second.port) as sock:
        socket_wire(sock).transact(b"AT+UART_DEF?\r\n", b"AT+UART_DEF?\r\n+UART_DEF:57600,8,1,0,0\r\nOK\r\n")


def test_profile_0_3_4(serve):
    modem = serve("--listen", "tcp:127.0.0.1:0", "--profile", "esp_atmod-0.3.4")
    modem.wait_booted()
    with connect(modem.port) as sock:
        socket_wire(sock).transact(b"AT+GMR\r\n", b"AT+GMR\r\n" + GMR_034)


def test_third_party_plugin_over_tcp(serve, hello_site):
    modem = serve("--listen", "tcp:127.0.0.1:0", env=cli_env(hello_site))
    modem.wait_booted()
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.transact(b'AT+HELLO="qemu"\r\n', b'AT+HELLO="qemu"\r\n+HELLO:qemu\r\n' + OK)


def test_binary_garbage_and_a_disconnect_mid_line(serve):
    modem = serve("--listen", "tcp:127.0.0.1:0")
    modem.wait_booted()
    with connect(modem.port) as sock:
        wire = socket_wire(sock)
        wire.transact(b"ATE0\r\n", b"ATE0\r\n" + OK)
        wire.say(bytes(range(256)) * 40 + b"\r\n", one_at_a_time=False)
        assert set(wire.quiet(0.5).split(b"\r\nERROR\r\n")) == {b""}
        wire.say(b"AT+UART_CUR=1152")  # and the host goes away
    with connect(modem.port) as sock:
        socket_wire(sock).transact(b"00,8,1,0,0\r\n", OK)


class TestCli:
    def run(self, *args):
        return subprocess.run([sys.executable, "-m", "atmodem", *args], capture_output=True, text=True, timeout=30)

    def test_version(self):
        result = self.run("--version")
        assert result.returncode == 0 and re.fullmatch(r"atmodem \d+\.\d+\.\d+\n", result.stdout)

    def test_unknown_profile(self, tmp_path):
        result = self.run("serve", "--pty", "--profile", "nope", "--state-dir", str(tmp_path))
        assert result.returncode == 2 and "unknown profile 'nope'" in result.stderr

    @pytest.mark.parametrize("spec", ["tcp:127.0.0.1", "udp:127.0.0.1:1", "tcp::80", "tcp:h:70000"])
    def test_bad_endpoint(self, spec):
        result = self.run("serve", "--listen", spec)
        assert result.returncode == 2 and "expected tcp:HOST:PORT" in result.stderr

    def test_one_transport_only(self):
        result = self.run("serve", "--pty", "--listen", "tcp:127.0.0.1:0")
        assert result.returncode == 2 and "not allowed with" in result.stderr

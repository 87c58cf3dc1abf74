"""AtModemLibrary called as Python, for what the emulator suites do not reach: the other
transports, world edits, the loopback servers and the transcript keywords."""

import datetime
import re
import socket
import time

import pytest
import serial

from AtModemLibrary import AtModemLibrary
from atmodem.lab import LabPki


@pytest.fixture
def library(tmp_path):
    library = AtModemLibrary(pki=str(tmp_path / "pki"))
    yield library
    library.stop_everything()


def exchange(port: serial.SerialBase, command: bytes, until: bytes = b"OK\r\n") -> bytes:
    port.write(command)
    data = b""
    deadline = time.monotonic() + 10
    while until not in data and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    return data


def test_pty_transport_and_transcript_keywords(library, tmp_path):
    link = tmp_path / "modem"
    library.start_modem("pty", str(link))
    with serial.Serial(str(link), 115200, timeout=0.1) as port:
        assert exchange(port, b"", b"ready\r\n").endswith(b"ready\r\n")
        assert exchange(port, b"AT+GMR\r\n").endswith(b"OK\r\n")
    assert library.modem_should_have_received("AT+GMR") == "AT+GMR"
    assert library.modem_should_have_sent(r"^AT version:\d", regexp=True).startswith("AT version:")
    with pytest.raises(AssertionError, match=re.escape("no line the host sent contains 'AT+CWJAP'")):
        library.modem_should_have_received("AT+CWJAP")
    library.modem_should_not_have_received("AT+RST")
    counters = library.get_modem_counters()
    assert counters["commands"] == 1 and counters["bytes_in"] == len(b"AT+GMR\r\n")
    assert "H>M  AT+GMR" in library.log_at_transcript()


def test_a_modem_started_with_a_trace_and_a_capture_keeps_them(library, tmp_path):
    where = {name: tmp_path / name for name in ("trace", "pcap", "keylog")}
    port = int(library.start_modem(**{name: str(path) for name, path in where.items()}).split(":")[-1].split()[0])
    echo = library.start_tcp_echo_server(tls=True)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as uart:
        answer = b""
        for command, until in ((b"", b"ready\r\n"), (b'AT+CWJAP="atmodem-lab","atmodem-pass"\r\n', b"OK\r\n"),
                               (b'AT+CIPSTART="SSL","localhost",%d\r\n' % echo, b"OK\r\n")):
            uart.sendall(command)
            while until not in answer:
                answer += uart.recv(1000)
            answer = answer[answer.index(until) + len(until):]
    library.stop_modem()
    trace = where["trace"].read_text()
    assert '"event": "tls"' in trace and '"ok": true' in trace
    assert where["pcap"].read_bytes()[:4] == bytes.fromhex("0a0d0d0a")   # a pcapng section header
    assert re.search(r"^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$", where["keylog"].read_text(), re.M)


def test_connect_transport_reaches_a_listening_emulator(library):
    with socket.create_server(("127.0.0.1", 0)) as emulator:
        library.start_modem("connect", f"127.0.0.1:{emulator.getsockname()[1]}")
        emulator.settimeout(10)
        conn, _ = emulator.accept()
        with conn:
            conn.settimeout(10)
            answer = b""
            while b"ready\r\n" not in answer:  # input before the boot ends is lost, as on the chip
                answer += conn.recv(100)
            conn.sendall(b"AT\r\n")
            while b"OK\r\n" not in answer:
                answer += conn.recv(100)
    assert library.modem_should_have_received("AT") == "AT"


def test_world_keywords_and_servers(library):
    library.start_modem()
    library.add_access_point("Cafe")
    assert library._world_now().find_ap("Cafe").encryption == "open"
    library.remove_access_point("Cafe")
    assert library._world_now().find_ap("Cafe") is None
    library.restore_access_point("Cafe")
    library.map_host_name("api.example.test", "127.0.0.7")
    library.forward_port("127.0.0.7:443", "127.0.0.1:4443")
    world = library._world_now()
    assert world.lookup("api.example.test") == "127.0.0.7"
    assert world.route("127.0.0.7", 443) == ("127.0.0.1", 4443)

    port = library.start_http_server("page\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"POST /report HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        assert conn.recv(100).startswith(b"HTTP/1.1 204")
    assert library.web_server_should_have_received("POST", "/report", body_contains="ell") == "hello"
    with pytest.raises(AssertionError, match=r"no GET / request; requests seen: POST /report"):
        library.web_server_should_have_received("GET", "/")

    sntp_port = library.start_sntp_server("2030-01-02T03:04:05Z")
    assert world.sntp_port == sntp_port
    assert library.start_tcp_echo_server(tls=True) > 0
    assert library.get_tls_handshake_counts() == {"handshakes": 0, "failures": 0}


def test_sntp_time_of_the_lab(library, tmp_path):
    LabPki(tmp_path / "pki")  # what make firmware does
    library.start_lab()
    library.set_sntp_server_time("2031-05-06 07:08:09")
    expected = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc).timestamp()
    assert library._lab().sntp.time == expected
    library.set_sntp_server_time("host")
    assert library._lab().sntp.time is None


def test_keywords_say_what_is_missing(library):
    with pytest.raises(RuntimeError, match="no modem is running: Start Modem first"):
        library.remove_access_point("atmodem-lab")
    with pytest.raises(RuntimeError, match="no firmware is running"):
        library.wait_for_console_line("x")
    with pytest.raises(FileNotFoundError, match="no lab CA in"):
        library.start_lab()
    with pytest.raises(ValueError, match="unknown transport 'carrier-pigeon'"):
        library.start_modem("carrier-pigeon")

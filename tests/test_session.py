"""ModemSession: a modem on its own loop thread, driven from plain code as the launcher and the
Robot library drive it; and what a firmware's garbage or a vanished UART peer leaves behind."""

import os
import socket
import time

import pytest

from atmodem.session import ModemSession


def read_until(conn: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    conn.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def session(tmp_path):
    session = ModemSession(state_dir=tmp_path).start()
    yield session
    session.stop()


def connect(session) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", session.port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def test_commands_and_transcript(session):
    with connect(session) as conn:
        session.wait_for_output(r"ready\r\n")
        conn.sendall(b"ATE0\r\n")
        assert read_until(conn, b"OK\r\n").endswith(b"ATE0\r\n\r\nOK\r\n")
        conn.sendall(b"AT+GMR\r\n")
        read_until(conn, b"OK\r\n")
    assert session.transcript.commands() == ["ATE0", "AT+GMR"]
    assert "OK" in session.transcript.lines("out")
    rendered = session.transcript.render()
    assert "H>M  ATE0" in rendered and "M>H  ready" in rendered


def test_world_edits_run_on_the_loop_thread(session):
    seen = []
    session.call(session.world.subscribe, lambda event: seen.append(event.kind))
    session.call(session.world.map_host, "x.test", "127.0.0.5")
    assert seen == ["host_mapped"] and session.world.lookup("x.test") == "127.0.0.5"
    with pytest.raises(KeyError):
        session.call(session.world.remove_ap, "no such network")  # raised in the caller's thread


def test_garbage_then_a_vanished_peer_mid_command(session):
    # A firmware crashes: binary noise, an over-long line, then half a command, then its UART is gone.
    with connect(session) as conn:
        session.wait_for_output(r"ready\r\n")
        conn.sendall(bytes(range(256)) + os.urandom(2000).replace(b"\n", b"") + b"\r\n")
        conn.sendall(b"A" * 500 + b"\r\n")
        conn.sendall(b"AT+CIPSEN")
        time.sleep(0.2)
    # It restarts and talks again: the chip never noticed, so the half line is still in its buffer.
    with connect(session) as conn:
        conn.sendall(b"D\r\n")
        assert read_until(conn, b"ERROR\r\n").endswith(b"\r\nERROR\r\n")  # AT+CIPSEND without '='
        conn.sendall(b"AT\r\n")
        assert read_until(conn, b"OK\r\n").endswith(b"AT\r\n\r\nOK\r\n")


def test_stop_is_idempotent_and_start_failures_are_clean(tmp_path):
    session = ModemSession(("listen", "127.0.0.1", 0), state_dir=tmp_path).start()
    busy_port = session.port
    second = ModemSession(("listen", "127.0.0.1", busy_port), state_dir=tmp_path)
    with pytest.raises(OSError):
        second.start()
    session.stop()
    session.stop()

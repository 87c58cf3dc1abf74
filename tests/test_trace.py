"""Transcripts: what the host said, what the modem answered, what happened on the network,
read back from a session in memory and from a ``--trace`` file by ``atmodem trace``."""

import json
import socket
from pathlib import Path

import pytest

from atmodem.cli import main
from atmodem.lab import EchoServer, SntpServer, server_context
from atmodem.trace import TraceWriter, read_entries
from atmodem.transcript import Transcript, follow, render, rows, select
from atmodem.world import AccessPoint, World
from pki import Pki
from support import Harness

SECRET = bytes(range(256)) * 2   # binary data, CR and LF included, must never become "lines"


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def session(pki, tmp_path):
    """A modem that joined, verified a TLS server (link 0) and used a plain TCP one (link 1), recorded
    both in memory and in a trace file."""
    sntp = SntpServer(1780315200)  # 2026-06-01
    tls = EchoServer(server_context(pki.leaf, tmp_path), greeting=b"hello over TLS")
    plain = EchoServer()
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")],
                  hosts={"tls.test": "127.0.0.1", "echo.test": "127.0.0.1", "pool.ntp.org": "127.0.0.1"},
                  sntp_port=sntp.port)
    h = Harness(world=world, ready=False)
    transcript, trace = Transcript(), tmp_path / "session.trace"
    writer = TraceWriter(trace)
    follow(h.modem, transcript)
    follow(h.modem, writer)
    h.pump(lambda: b"ready\r\n" in h.out)
    h.join()
    h.pump(lambda: h.modem.runtime["sntp"].now() > 57600)
    ca = pki.root.pem
    assert h.send(b"AT+CIPSSLCERT\r\n").endswith(b">")
    h.send(ca)
    assert h.send(b"AT+CIPSSLAUTH=2\r\n").endswith(b"OK\r\n")
    assert h.send(b"AT+CIPMUX=1\r\n").endswith(b"OK\r\n")
    assert h.send(b'AT+CIPSTART=0,"SSL","tls.test",%d\r\n' % tls.port).endswith(b"OK\r\n")
    h.wait_for(b"hello over TLS")
    assert h.send(b'AT+CIPSTART=1,"TCP","echo.test",%d\r\n' % plain.port).endswith(b"OK\r\n")
    assert h.send(b"AT+CIPSEND=1,%d\r\n" % len(SECRET)).endswith(b"> ")
    assert h.send(SECRET).endswith(b"SEND OK\r\n")
    h.pump(lambda: h.out.count(b"+IPD,1,") and SECRET in h.out)
    assert h.send(b'AT+CIPSTART=2,"TCP","nowhere.test",80\r\n').endswith(b"ERROR\r\nCLOSED\r\n")
    assert h.send(b"AT+CIPCLOSE=0\r\n").endswith(b"OK\r\n")
    writer.close()
    yield transcript, trace
    h.close()
    for server in (sntp, tls, plain):
        server.close()


def texts(found, lane=None):
    return [row.text for row in found if lane is None or row.lane == lane]


def test_rows_tell_the_session(session):
    transcript, _ = session
    found = transcript.rows()
    net = texts(found, "net")
    assert "DNS tls.test -> 127.0.0.1" in net
    assert "DNS nowhere.test failed" in net
    tls = next(row for row in found if row.text.startswith("TLS "))
    assert tls.text.startswith("TLS TLSv1.2 ") and "certificate verified" in tls.text and "SNI tls.test" in tls.text
    assert tls.link == 0 and tls.command == "AT+CIPSTART" and not tls.failure
    connected = [row for row in found if row.text.startswith("TCP connected to 127.0.0.1:")]
    assert [row.link for row in connected] == [0, 1]
    closed = next(row for row in found if row.text == "TCP closed by the modem")
    assert closed.link == 0 and closed.command == "AT+CIPCLOSE"
    # The CIPSEND payload is one data block from the host, and comes back in one from the modem.
    blocks = [row for row in found if row.data is not None]
    sent = next(row for row in blocks if row.lane == "host" and row.link == 1)
    assert sent.data == SECRET and sent.command == "AT+CIPSEND"
    assert sent.text.startswith("data 512 bytes: 00 01 02 03") and sent.text.endswith("|................|")
    echoed = b"".join(row.data for row in blocks if row.lane == "modem" and row.link == 1)
    assert echoed == SECRET
    greeting = next(row for row in blocks if row.lane == "modem" and row.link == 0)
    assert greeting.data == b"hello over TLS"
    # Binary data never leaks into text lines, and the certificate upload is a block too.
    assert not any("\x00" in row.text or "\x7f" in row.text for row in found if row.data is None)
    assert any(row.data is not None and row.data.startswith(b"-----BEGIN CERTIFICATE") for row in blocks)


def test_answers_and_failures(session):
    transcript, _ = session
    found = transcript.rows()
    host = texts(found, "host")
    assert 'AT+CWJAP="atmodem-lab","atmodem-pass"' in host and "AT+CIPMUX=1" in host
    failures = [row for row in found if row.failure]
    assert [row.text for row in failures if row.lane == "modem"] == ["DNS Fail", "ERROR"]
    assert failures[0].command == "AT+CIPSTART" and failures[-1].command == "AT+CIPSTART"
    # Spec §7.1: a failed AT+CIPSTART says CLOSED without the link number, even in mux 1.
    assert [row.text for row in found if row.command == "AT+CIPSTART" and row.lane == "modem"][-3:] == \
        ["DNS Fail", "ERROR", "CLOSED"]
    assert any(row.text == "WIFI GOT IP" and row.lane == "modem" for row in found)
    # ATE0 came first; before it, the modem echoed: the echo is marked as one.
    echo = next(row for row in found if row.lane == "modem" and row.text == "ATE0")
    assert echo.echo


def test_file_and_memory_agree(session):
    transcript, trace = session
    def content(found):  # each recorder reads the wall clock itself
        return [(round(row.clock, 6), row.lane, row.text, row.data, row.link, row.command, row.failure) for row in found]

    assert content(rows(read_entries(trace))) == content(transcript.rows())
    # Payload bytes are never in the file: the wire events carry lengths.
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    wire = [r for r in records if r.get("event") == "wire"]
    assert wire and all("data" not in r and r["length"] > 0 for r in wire)
    assert records[0]["event"] == "session" and records[0]["clock"] == 0.0


def test_filters(session):
    transcript, _ = session
    found = transcript.rows()
    link1 = select(found, link=1)
    assert link1 and all(row.link == 1 for row in link1)
    assert any(row.text.startswith('AT+CIPSTART=1,"TCP"') for row in link1)
    assert any(row.text.startswith("AT+CIPSEND=1,512") for row in link1)
    assert not any("TLS" in row.text for row in link1)
    starts = select(found, command="cipstart")
    assert {row.command for row in starts} == {"AT+CIPSTART"}
    assert any(row.text.startswith("TLS TLSv1.2") for row in starts)
    assert any(row.text.endswith("on the wire") for row in starts)
    assert [row for row in starts if not row.text.endswith("on the wire")] == \
        select(found, command="CIPSTART", wire=False)


def test_atmodem_trace_prints_and_filters(session, capsys):
    _, trace = session
    assert main(["trace", str(trace), "--link", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["wall", "link", "dir", "what"]
    assert any(" 0  M>N  DNS tls.test -> 127.0.0.1" in line for line in out)
    assert any(" 0  N>M  TLS TLSv1.2 " in line for line in out)
    assert any(" 0  M>H  data 14 bytes: 68 65 6c 6c 6f 20 6f 76 65 72 20 54 4c 53 |hello over TLS|" in line
               for line in out)
    assert not any("echo.test" in line for line in out)
    assert main(["trace", str(trace), "--command", "CIPSTART", "--last", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("M>H  ")[-1] for line in out[1:]] == ["DNS Fail", "ERROR", "CLOSED"]
    assert [line[0] for line in out[1:]] == ["!", "!", " "]


def test_a_trace_cut_short_reads_up_to_the_cut(session, tmp_path):
    _, trace = session
    cut = tmp_path / "cut.trace"
    text = trace.read_text()
    cut.write_text(text[:len(text) // 2])
    assert 0 < len(read_entries(cut)) < len(read_entries(trace))
    assert main(["trace", str(cut)]) == 0


def test_render_marks_failures_and_shortens_long_lines():
    transcript = Transcript()
    transcript("in", b"AT+CIPSEND=3\r\n", 0.0)
    transcript.event("command", {"line": "AT+CIPSEND=3\r\n", "label": "AT+CIPSEND"}, 0.0)
    transcript("out", b"OK\r\n> ", 0.01)
    transcript("in", b"x" * 300 + b"\r\n", 0.02)
    transcript("out", b"\r\nERROR\r\n", 0.03)
    lines = render(transcript.rows(), width=60).splitlines()
    assert lines[0].endswith("H>M  AT+CIPSEND=3")
    assert lines[1].endswith("M>H  OK")
    assert lines[2].endswith("M>H  > ")   # the prompt has no line end, and came before the data
    assert lines[3].endswith("... (300 chars)")
    assert lines[4].startswith("!") and lines[4].endswith("M>H  ERROR")


def test_virtual_clock_column(tmp_path):
    transcript = Transcript()
    transcript.event("session", {"profile": "esp_atmod", "timebase": "virtual"}, 5.0)
    transcript("out", b"ready\r\n", 5.25)
    lines = render(transcript.rows(), virtual=True).splitlines()
    assert lines[0].split()[:3] == ["0.000", "0.000000", "M>H"]


# ---------------------------------------------------------------- what the review found


def recorded(**options) -> tuple[Harness, Transcript]:
    h = Harness(**options)
    transcript = Transcript()
    follow(h.modem, transcript)
    return h, transcript


@pytest.mark.parametrize("mux", [0, 1])
@pytest.mark.parametrize("payload", [b"1", b"0", b",", b"+IPD", b"+IPD,0,4:"])
def test_data_that_looks_like_its_own_header_is_cut_where_it_starts(mux, payload):
    h, transcript = recorded()
    h.join()
    echo = EchoServer()
    try:
        h.send(b"AT+CIPMUX=%d\r\n" % mux)
        link = b"0," if mux else b""
        assert h.send(b'AT+CIPSTART=%s"TCP","127.0.0.1",%d\r\n' % (link, echo.port)).endswith(b"OK\r\n")
        h.send(b"AT+CIPSEND=%s%d\r\n" % (link, len(payload)))
        h.send(payload)
        header = b"+IPD,%s%d:" % (link, len(payload))
        h.wait_for(header + payload)
    finally:
        echo.close()
        h.close()
    found = transcript.rows()
    assert [(row.lane, row.data) for row in found if row.data is not None] == [("host", payload), ("modem", payload)]
    assert header.decode() in texts(found, "modem")


def test_passive_receive_data_is_cut_after_its_header():
    h, transcript = recorded()
    h.join()
    echo = EchoServer()
    try:
        h.send(b"AT+CIPRECVMODE=1\r\n")
        h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % echo.port)
        h.send(b"AT+CIPSEND=12\r\n")
        h.send(b"+CIPRECVDATA")
        h.wait_for(b"+IPD,12\r\n")
        assert h.send(b"AT+CIPRECVDATA=12\r\n") == b"\r\n+CIPRECVDATA,12:+CIPRECVDATA\r\nOK\r\n"
    finally:
        echo.close()
        h.close()
    found = transcript.rows()
    assert [row.data for row in found if row.lane == "modem" and row.data is not None] == [b"+CIPRECVDATA"]
    assert "+CIPRECVDATA,12:" in texts(found, "modem")


def test_lines_sent_together_join_the_exchanges_of_their_own_commands():
    h, transcript = recorded()
    h.send(b"AT+CWMODE?\r\nAT+CIPMUX?\r\n")
    found = transcript.rows()
    assert [(row.lane, row.text, row.command) for row in found if row.text in
            ("AT+CWMODE?", "AT+CIPMUX?", "+CWMODE:1", "+CIPMUX:0")] == [
        ("host", "AT+CWMODE?", "AT+CWMODE"), ("host", "AT+CIPMUX?", "AT+CIPMUX"),
        ("modem", "AT+CWMODE?", "AT+CWMODE"), ("modem", "+CWMODE:1", "AT+CWMODE"),
        ("modem", "AT+CIPMUX?", "AT+CIPMUX"), ("modem", "+CIPMUX:0", "AT+CIPMUX")]
    assert all(row.echo for row in found if row.lane == "modem" and row.text.startswith("AT+"))


def test_each_session_of_an_appended_trace_stands_alone(tmp_path):
    trace = tmp_path / "two.trace"
    for payload in (b"first-session", b"SECOND"):
        h = Harness(ready=False)
        writer = TraceWriter(trace)
        follow(h.modem, writer)
        h.pump(lambda: b"ready\r\n" in h.out)
        h.send(b"AT+CIPSSLCERT\r\n")
        h.send(payload + b"\x00" * (4096 - len(payload)))   # a certificate upload's raw block
        h.close()
        writer.close()
    blocks = [row.data for row in rows(read_entries(trace)) if row.data is not None]
    assert [block.rstrip(b"\x00") for block in blocks] == [b"first-session", b"SECOND"]


def test_a_lookup_the_exchange_did_not_dial_stays_off_its_link(pki, tmp_path):
    h, transcript = recorded()
    echo = EchoServer()
    try:
        h.join()   # SNTP starts: its lookups of pool.ntp.org fail in the default world
        h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % echo.port)
        h.advance(20)
    finally:
        echo.close()
        h.close()
    lookups = [row for row in transcript.rows() if row.text.startswith("DNS ")]
    assert any(row.text == "DNS 127.0.0.1 -> 127.0.0.1" and row.link == 0 for row in lookups)
    assert all(row.link is None for row in lookups if "ntp" in row.text or "nist" in row.text)


def test_a_dial_the_modem_gives_up_on_is_reported():
    h, transcript = recorded()
    h.join()
    # A TCP port nobody answers: a listening socket whose backlog is full never completes a SYN.
    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(quiet.getsockname())
        h.modem.feed(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % quiet.getsockname()[1])
        assert h.advance(30).endswith(b"ERROR\r\nCLOSED\r\n")
        for filler in fillers:
            filler.close()
    h.close()
    failed = [row for row in transcript.rows() if row.text.startswith("TCP connection to")]
    assert failed and failed[-1].failure and failed[-1].text.endswith("failed (abandoned)")


def test_a_trace_on_a_full_disk_costs_the_modem_nothing(caplog):
    h = Harness()
    writer = TraceWriter(Path("/dev/full"))
    follow(h.modem, writer)
    assert h.send(b"AT\r\n") == b"AT\r\n\r\nOK\r\n"
    assert h.send(b"AT+GMR\r\n").endswith(b"OK\r\n")
    assert "trace /dev/full stopped" in caplog.text
    h.close()


def test_atmodem_trace_names_a_file_that_is_not_a_trace(tmp_path, capsys):
    for text in ("hello\n", '{"time": 1}\n'):
        (tmp_path / "bad").write_text(text)
        assert main(["trace", str(tmp_path / "bad")]) == 2
        assert "not an atmodem trace" in capsys.readouterr().err


def test_a_key_log_nobody_can_write_stops_the_modem_before_it_starts(tmp_path):
    assert main(["serve", "--listen", "tcp:127.0.0.1:0", "--state-dir", str(tmp_path),
                 "--keylog", str(tmp_path / "no" / "such" / "keys.log")]) == 2

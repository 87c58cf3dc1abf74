"""Random mixes of network commands, data and garbage against a joined modem with live links.

Invariants: no plugin ever raises (the engine would log it and answer ERROR),
the modem always comes back to answer AT with OK, and after a reset no socket
of the old boot is left open.
"""

import logging
import socket
import socketserver
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from support import Harness, recovers

OK = b"\r\nOK\r\n"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture(scope="module")
def echo_port():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class _Failures(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def commands(port: int) -> list[bytes]:
    start = b'"TCP","127.0.0.1",%d' % port
    return [
        b"AT+CIPMUX=1", b"AT+CIPMUX=0", b"AT+CIPSTART=" + start, b"AT+CIPSTART=0," + start,
        b"AT+CIPSTART=3," + start, b"AT+CIPSEND=5", b"AT+CIPSEND=0,5", b"AT+CIPSEND=3,2048", b"AT+CIPCLOSE",
        b"AT+CIPCLOSE=5", b"AT+CIPCLOSE=3", b"AT+CIPRECVMODE=1", b"AT+CIPRECVMODE=0", b"AT+CIPRECVDATA=0,100",
        b"AT+CIPRECVDATA=100", b"AT+CIPRECVLEN?", b"AT+CIPSTATUS", b"AT+CIPSERVER=1", b"AT+CIPSERVER=0",
        b"AT+CIPSTO=1", b"AT+CIPDINFO=1", b'AT+CIPDOMAIN="localhost"', b"AT+CWQAP", b"AT+CWLAP", b"AT+CIFSR",
        b'AT+CWJAP="atmodem-lab","atmodem-pass"', b"AT+CWMODE=2", b"AT+CWMODE=1", b"AT+RST", b"AT+CWLAPOPT=1,31",
        b'AT+CIPSTA="192.168.1.5"', b"AT+CWDHCP=1,1", b"AT+CIPSERVERMAXCONN=1",
    ]


def storm(port: int):
    return st.lists(
        st.one_of(
            st.sampled_from(commands(port)).map(lambda c: c + b"\r\n"),
            st.binary(max_size=200),
            st.sampled_from([b"\r\n", b"hello", b"\x00" * 64, b"AT\r\n"]),
            st.floats(0, 2).map(lambda dt: dt),  # let time pass
            st.just("peer"),                      # a client connects to server port 333
        ),
        max_size=30,
    )


@pytest.mark.timeout(300)
def test_network_storms(echo_port):
    failures = _Failures()
    logging.getLogger("atmodem").addHandler(failures)
    logging.getLogger("atmodem_tcpip").addHandler(failures)
    logging.getLogger("atmodem_wifi").addHandler(failures)
    try:
        run_storms(echo_port)
    finally:
        for name in ("atmodem", "atmodem_tcpip", "atmodem_wifi"):
            logging.getLogger(name).removeHandler(failures)
    assert failures.records == [], [r.getMessage() for r in failures.records]


def run_storms(port: int):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=storm(port))
    def one(steps):
        h = Harness()
        h.join()
        clients = []
        try:
            for step in steps:
                if isinstance(step, float):
                    h.advance(step)
                elif step == "peer":
                    from atmodem_tcpip import server_ports
                    ports = server_ports(h.modem)
                    if 333 in ports:
                        clients.append(socket.create_connection(ports[333]))
                else:
                    h.modem.feed(step)
                    h.reactor.poll(0)
            assert recovers(h)
            old = [s.link.sock for s in h.modem.runtime.get("tcpip").slots if s] if "tcpip" in h.modem.runtime else []
            h.modem.feed(b"AT+RST\r\n")
            h.wait_for(b"ready\r\n")
            assert all(sock.fileno() == -1 for sock in old)  # every link of the old boot is closed
        finally:
            for client in clients:
                client.close()
            h.close()

    one()

"""A real, unmodified host library drives the modem: Adafruit's CircuitPython ESP_ATcontrol
(PyPI `adafruit-circuitpython-esp-atcontrol`, on CPython through Adafruit-Blinka) talks to
`atmodem serve --pty` through pyserial, joins the simulated AP and fetches a page from an
HTTP server on 127.0.0.1 with the library's own socket API.

`adafruit_requests` cannot sit on top: the library's socket has no `recv_into`, which
requests needs (adafruit/Adafruit_CircuitPython_ESP_ATcontrol issue #74). So the HTTP
request is written by hand over `adafruit_espatcontrol_socket`.
"""

import http.server
import threading

import pytest
import serial

from adafruit_espatcontrol import adafruit_espatcontrol_socket as pool
from adafruit_espatcontrol.adafruit_espatcontrol import ESP_ATcontrol
from atmodem.trace import read_trace
from conversation import GMR_050

SSID, PASSWORD = "atmodem-lab", "atmodem-pass"  # the default world's access point
# ~600 bytes: more than one read of the library, less than one +IPD block
BODY = b"".join(b"line %02d of a page served on 127.0.0.1\n" % i for i in range(16))
REQUEST = b"GET /page.txt HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"


class _Page(http.server.BaseHTTPRequestHandler):
    seen: list

    def do_GET(self):
        self.seen.append(self.requestline)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def _refused(trace) -> list[bytes]:
    """The command lines the modem has answered with ERROR so far, for a failure message."""
    refused, line = [], b""
    for direction, chunk, _ in read_trace(trace):
        if direction == "in":
            line += chunk
        else:
            if b"ERROR" in chunk:
                refused.append(line.strip())
            line = b""
    return refused


@pytest.fixture
def http_server():
    """(port, request lines seen) of an HTTP/1.0 server on 127.0.0.1 that closes after each page."""
    seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), type("Page", (_Page,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.timeout(120)
def test_esp_atcontrol_fetches_a_page(serve, http_server, tmp_path):
    http_port, seen = http_server
    trace = tmp_path / "trace.jsonl"
    modem = serve("--pty", str(tmp_path / "modem"), "--trace", str(trace))
    assert modem.endpoint.startswith("pty:/dev/pts/")
    modem.wait_booted()

    with serial.Serial(str(tmp_path / "modem"), 115200, timeout=0.1) as uart:
        esp = ESP_ATcontrol(uart, 115200, reset_pin=None, rts_pin=None)
        esp.begin()
        # begin() swallows its OKErrors and gives up silently after three rounds, e.g. when
        # AT+CIPSSLSIZE=4096, which ESP_ATMod accepts (spec §6.3), is answered with ERROR.
        assert esp._initialized, f"begin() gave up; answered ERROR: {_refused(trace)}"
        assert esp.version == "AT version:1.7.0.0 (partial)"
        assert esp._versionstrings == GMR_050.decode().split("\r\n")[:-2]  # once, without the OK
        # ESP_ATMod speaks the AT 1.7 dialect: AT+CWSTATE? is ERROR, so the library uses CIPSTATUS
        assert esp._use_cipstatus

        # Not esp.connect(): it prints esp.local_ip, which cannot work against ESP_ATMod (below).
        esp.join_AP(SSID, PASSWORD, timeout=15, retries=1)
        assert esp.status == esp.STATUS_APCONNECTED
        # Fidelity: ESP_ATMod prints its address as "+CISFR:STAIP,..." (a firmware typo, spec
        # §6.3), so a host looking for "+CIFSR:STAIP" finds none, as on the real chip.
        with pytest.raises(RuntimeError, match="Couldn't find IP address"):
            esp.local_ip

        pool.set_interface(esp)
        address = pool.getaddrinfo("127.0.0.1", http_port)[0][-1]  # AT+CIPDOMAIN
        assert address == ("127.0.0.1", http_port)
        sock = pool.socket(pool.AF_INET, pool.SOCK_STREAM)
        sock.settimeout(3)
        sock.connect(address, esp.TYPE_TCP)
        assert esp.status == esp.STATUS_SOCKETOPEN
        sock.send(REQUEST)
        data = b""
        while not data.endswith(BODY):
            chunk = bytes(sock.recv())
            if not chunk:
                break
            data += chunk
        sock.settimeout(0.5)
        sock.close()  # the server has closed already: the modem's CLOSED, then AT+CIPCLOSE is ERROR
        assert esp.status == esp.STATUS_SOCKETCLOSED  # a link was opened since boot: STATUS:4

    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.0 200 OK"
    assert b"Content-Length: %d" % len(BODY) in lines
    assert body == BODY
    assert seen == ["GET /page.txt HTTP/1.0"]

    modem.interrupt()
    wire = {"in": b"", "out": b""}
    for direction, chunk, _ in read_trace(trace):
        wire[direction] += chunk
    assert b"AT+CWJAP=\"atmodem-lab\",\"atmodem-pass\"\r\n" in wire["in"]
    assert REQUEST in wire["in"]
    assert b'+CISFR:STAIP,"' in wire["out"] and b"+CIFSR:STAIP" not in wire["out"]
    assert b"OK\r\n> \r\nRecv %d bytes\r\n\r\nSEND OK\r\n" % len(REQUEST) in wire["out"]
    # active receive: "+IPD,n:" and the data without a line end; CLOSED right behind the last byte
    rest = wire["out"].split(b"\r\nSEND OK\r\n", 1)[1]
    received = b""
    while rest.startswith(b"\r\n+IPD,"):
        count, rest = rest[len(b"\r\n+IPD,"):].split(b":", 1)
        received, rest = received + rest[:int(count)], rest[int(count):]
    assert received == data
    assert rest == b"CLOSED\r\n" + b"\r\nERROR\r\n" + b"STATUS:4\r\n\r\nOK\r\n"  # CIPCLOSE, CIPSTATUS

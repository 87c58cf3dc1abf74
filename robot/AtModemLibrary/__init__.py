"""Robot Framework keywords for atmodem: modems, their world, lab servers and host firmware."""

from __future__ import annotations

import contextlib
import datetime
import re
import socket
import tempfile
from pathlib import Path
from typing import Optional

from robot.api import SkipExecution, logger
from robot.api.deco import keyword, library
from robot.result import TestCase
from robot.utils import timestr_to_secs

from atmodem import __version__
from atmodem.diagram import DEFAULT_LIMIT, Step, render
from atmodem.emulators import BUILD, PLATFORMS, Emulator, machine
from atmodem.faults import parse_spec
from atmodem.lab import EchoServer, Internet, LabPki, Page, SntpServer, WebServer, server_context
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.renode import renode_missing
from atmodem.session import ModemSession
from atmodem.transcript import Transcript
from atmodem.world import AccessPoint, World, parse_endpoint


@library(scope="SUITE", version=__version__, doc_format="ROBOT", listener="SELF")
class AtModemLibrary:
    """AtModemLibrary runs atmodem modems for Robot Framework suites.

    A suite starts a modem on a transport, lets host firmware talk to it (in QEMU or simavr,
    or anything on a TCP socket, pseudo-terminal or serial port), edits the simulated world
    while the firmware runs, and checks what happened on the firmware's console and in the
    AT transcript. Everything runs on this machine: the lab servers bind loopback addresses
    on free ports, so suites can run side by side.

    = Example =

    | *** Settings ***
    | Library    AtModemLibrary
    |
    | *** Test Cases ***
    | HTTPS GET From The STM32 Firmware
    |     Start Lab
    |     Start Modem
    |     Start Firmware    netduinoplus2
    |     Wait For Console Line    result: OK    timeout=60s
    |     Modem Should Have Received    AT+CIPSTART="SSL","www.atmodem.test",443

    Everything a suite started is stopped when the suite ends (or with `Stop Everything`).
    Time arguments take Robot Framework's time format (``10s``, ``1 min 30 s``).

    When a test that used a modem fails, the library logs the session as a sequence diagram
    (`Log Session Diagram`) at the end of the test, its teardown included, with the failed step
    marked, unless the test logged one itself after the failure.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, pki: str = str(BUILD / "pki")):
        """``pki`` is the folder of the lab's root CA: the one the project's firmware is built with."""
        self._pki_folder = Path(pki)
        self._session: Optional[ModemSession] = None
        self._world: Optional[World] = None
        self._internet: Optional[Internet] = None
        self._emulator: Optional[Emulator] = None
        self._renode = None   # an atmodem.renode.InProcessRun
        self._servers: list = []
        self._scratch: list[tempfile.TemporaryDirectory] = []
        # A failed test's diagram is drawn after its teardown, which usually stops the modem: the
        # transcript of the last modem started stays readable until a test begins without one running.
        self._last_transcript: Optional[Transcript] = None
        self._steps: list[Step] = []
        self._failure_drawn = False

    def _end_suite(self, data, result) -> None:
        self.stop_everything()

    def _start_test(self, data, result) -> None:
        if self._session is not None:
            self._last_transcript = self._session.transcript
        elif self._renode is not None:
            self._last_transcript = self._renode.attached.transcript
        else:
            self._last_transcript = None
        self._steps = []
        self._failure_drawn = False

    def _end_body_item(self, data, result) -> None:
        if isinstance(result.parent, TestCase):   # a top-level step: setup, body item or teardown
            kind = f"{result.type.title()}: " if result.type in (result.SETUP, result.TEARDOWN) else ""
            self._steps.append(Step(result.start_time.timestamp(), result.end_time.timestamp(),
                                    kind + str(data), result.status, result.message))

    def _end_test(self, data, result) -> None:
        if result.failed and self._last_transcript is not None and not self._failure_drawn:
            self.log_session_diagram()

    # ------------------------------------------------------------------ modem

    @keyword
    def start_modem(self, transport: str = "listen", address: Optional[str] = None, profile: str = DEFAULT_PROFILE,
                    world: Optional[str] = None, state_dir: Optional[str] = None, trace: Optional[str] = None,
                    pcap: Optional[str] = None, keylog: Optional[str] = None, pace: bool = False) -> str:
        """Starts a modem and returns where its UART is.

        ``transport`` is ``listen`` (a TCP server at ``address``, default ``127.0.0.1:0``:
        port 0 picks a free one),
        ``connect`` (a TCP client of ``address``, reconnecting), ``pty`` (``address``, if given,
        becomes a symlink to the pseudo-terminal) or ``serial`` (``address`` is a pyserial URL).
        ``world`` is a TOML world file (default: the built-in world with the access point
        ``atmodem-lab``). ``state_dir`` holds the modem's flash (default: a fresh one).
        ``trace`` appends every UART byte and network event to a JSON-lines file (``atmodem trace``
        prints it), ``pcap`` writes a pcapng capture of the modem's network side, and ``keylog``
        the TLS links' secrets that decrypt it (``tshark -o tls.keylog_file:...``). ``pace`` sends the modem's output
        at its UART's baud rate (``AT+UART``) instead of as fast as the transport takes it.
        """
        if self._session is not None:
            raise RuntimeError("a modem is already running: Stop Modem first")
        self._world = World.load(Path(world)) if world else World.default()
        if state_dir is None:
            self._scratch.append(tempfile.TemporaryDirectory(prefix="atmodem-robot-"))
            state_dir = self._scratch[-1].name
        spec = _transport_spec(transport, address)
        session = ModemSession(spec, world=self._world, profile=profile, state_dir=Path(state_dir),
                               pace=pace, **{name: Path(value) for name, value in
                                             (("trace", trace), ("pcap", pcap), ("keylog", keylog)) if value})
        session.start()
        self._session = session
        self._last_transcript = session.transcript
        if self._internet is not None:
            session.call(self._internet.attach, self._world)
        logger.info(f"modem ({profile}) on {session.endpoint}")
        return session.endpoint

    @keyword
    def get_modem_port(self) -> int:
        """The TCP port of a modem started with the ``listen`` or ``connect`` transport."""
        return self._modem().port

    @keyword
    def stop_modem(self) -> None:
        """Powers the modem off and closes its transport. The firmware, if running, loses its UART peer."""
        if self._session is not None:
            session, self._session = self._session, None
            session.stop()

    @keyword
    def stop_everything(self) -> None:
        """Stops the firmware, the modem and every lab server this library started.

        Each is stopped even if stopping another failed; the first failure is raised then."""
        servers, self._servers = self._servers, []
        internet, self._internet = self._internet, None
        scratch, self._scratch = self._scratch, []
        with contextlib.ExitStack() as stack:  # runs every callback, last registered first
            for folder in scratch:
                stack.callback(folder.cleanup)
            if internet is not None:
                stack.callback(internet.close)
            for server in servers:
                stack.callback(server.close)
            stack.callback(self.stop_modem)
            stack.callback(self.stop_firmware)

    # ------------------------------------------------------------------ world

    @keyword
    def add_access_point(self, ssid: str, password: str = "", encryption: Optional[str] = None,
                         rssi: int = -60, channel: int = 6) -> None:
        """Switches a new access point on. An empty ``password`` means an open network."""
        ap = AccessPoint(ssid, password, encryption=encryption or ("wpa2" if password else "open"),
                         rssi=rssi, channel=channel)
        self._edit_world(self._world_now().add_ap, ap)

    @keyword
    def remove_access_point(self, ssid: str) -> None:
        """Switches an access point off: stations on it lose their link as on a beacon timeout."""
        self._edit_world(self._world_now().remove_ap, ssid)

    @keyword
    def restore_access_point(self, ssid: str) -> None:
        """Switches a removed access point on again."""
        self._edit_world(self._world_now().restore_ap, ssid)

    @keyword
    def unplug_ethernet_cable(self) -> None:
        self._edit_world(self._world_now().unplug_cable)

    @keyword
    def plug_ethernet_cable(self) -> None:
        self._edit_world(self._world_now().plug_cable)

    @keyword
    def map_host_name(self, name: str, address: str = "127.0.0.1") -> None:
        """Makes the modem's DNS answer ``address`` for ``name``."""
        self._edit_world(self._world_now().map_host, name, address)

    @keyword
    def forward_port(self, destination: str, to: str) -> None:
        """Sends later links to ``destination`` (``ADDRESS:PORT``) to ``to`` (``ADDRESS:PORT``) instead."""
        (address, port), (to_address, to_port) = parse_endpoint(destination), parse_endpoint(to)
        self._edit_world(self._world_now().forward_port, address, port, to_address, to_port)

    @keyword
    def inject_fault(self, spec: str) -> None:
        """Adds a fault to the running modem's world, in the one-line form of ``atmodem serve
        --fault``: ``kind=latency,command=+CIPSTART,seconds=2``, ``kind=drop_ap,ssid=atmodem-lab``,
        ``kind=reset,port=80,after_bytes=100``, ``kind=dns_fail,host=www.atmodem.test`` …
        (every kind and key: the ``atmodem.faults`` module). ``at`` is modem-clock seconds since
        power-on; without it the fault acts at once."""
        self._edit_world(self._world_now().faults.add, parse_spec(spec))

    @keyword
    def clear_faults(self) -> None:
        """Forgets every fault of the modem's world, and what fired."""
        self._edit_world(self._world_now().faults.clear)

    @keyword
    def fault_should_have_fired(self, kind: str, times: Optional[int] = None) -> int:
        """Fails unless a fault of ``kind`` fired (exactly ``times`` times, if given); returns how often."""
        faults = self._world_now().faults
        count, firings = self._modem().call(lambda: (faults.counts.get(kind, 0), faults.have_fired(kind)))
        for firing in firings:   # the latest ones: the registry keeps a bounded history
            logger.info(f"{firing.time:.3f}: {firing.summary()}")
        if not count or (times is not None and count != int(times)):
            raise AssertionError(f"a {kind} fault fired {count} times, expected {times or 'at least once'}")
        return count

    @keyword
    def set_sntp_server_time(self, when: str) -> None:
        """Sets the time the lab's SNTP server answers with: an ISO 8601 date (UTC unless
        it says otherwise), Unix seconds, or ``host`` for this machine's clock again."""
        sntp = self._lab().sntp
        sntp.time = None if when == "host" else _unix_time(when)

    # -------------------------------------------------------------- lab servers

    @keyword
    def start_lab(self, wrong_ca: bool = False) -> None:
        """Starts the lab's little internet and points the modem's world at it.

        ``www.atmodem.test`` serves a page on port 80 (HTTP) and 443 (HTTPS), and
        ``time.atmodem.test`` answers SNTP, all from loopback servers. The HTTPS certificate
        chains to the lab root the project's firmware is built with; ``wrong_ca=True`` uses
        a certificate from a CA nobody trusts instead.
        """
        if self._internet is not None:
            raise RuntimeError("the lab is already running")
        self._internet = Internet(self._pki_folder, wrong_ca=wrong_ca)
        if self._session is not None:
            self._session.call(self._internet.attach, self._world)

    @keyword
    def start_http_server(self, body: str = "hello\n", tls: bool = False, host: str = "localhost") -> int:
        """Starts a web server on 127.0.0.1 serving ``body`` at ``/`` and returns its port.

        With ``tls=True`` it speaks HTTPS with a certificate for ``host`` from the lab CA.
        Every request is recorded (see `Web Server Should Have Received`).
        """
        context = self._context(host) if tls else None
        return self._keep(WebServer({"/": Page(body.encode())}, context)).port

    @keyword
    def start_tcp_echo_server(self, tls: bool = False, host: str = "localhost", greeting: str = "") -> int:
        """Starts a TCP (or, with ``tls=True``, TLS) echo server on 127.0.0.1 and returns its port."""
        context = self._context(host) if tls else None
        return self._keep(EchoServer(context, greeting.encode())).port

    @keyword
    def start_sntp_server(self, when: Optional[str] = None) -> int:
        """Starts an SNTP server on 127.0.0.1 (answering ``when``, or the host clock) and
        makes it the modem's time server. Returns its port."""
        server = self._keep(SntpServer(_unix_time(when) if when else None))
        self._edit_world(setattr, self._world_now(), "sntp_port", server.port)
        return server.port

    @keyword
    def web_server_should_have_received(self, method: str, path: str, body_contains: Optional[str] = None) -> str:
        """Fails unless a lab or `Start HTTP Server` web server got ``method path`` (with a body
        containing ``body_contains``, if given). Returns the body of the matching request."""
        requests = [r for server in self._web_servers() for r in server.requests]
        for request in requests:
            body = request.body.decode("latin-1")
            if request.method == method and request.path == path and (body_contains is None or body_contains in body):
                return body
        seen = ", ".join(f"{r.method} {r.path} {r.body[:80]!r}" for r in requests) or "none"
        raise AssertionError(f"no {method} {path} request{' with ' + repr(body_contains) if body_contains else ''}; "
                             f"requests seen: {seen}")

    @keyword
    def get_tls_handshake_counts(self) -> dict:
        """``{"handshakes": n, "failures": n}`` over every TLS server of this library."""
        servers = [s for s in [*self._servers, *self._lab_servers()] if getattr(s, "context", None) is not None]
        return {"handshakes": sum(s.handshakes for s in servers), "failures": sum(s.failures for s in servers)}

    # ----------------------------------------------------------------- firmware

    @keyword
    def start_firmware(self, machine_name: str, firmware: Optional[str] = None) -> None:
        """Starts host firmware in its emulator with its modem UART on the running modem.

        ``machine_name`` is ``netduinoplus2`` or ``b-l475e-iot01a`` (QEMU), ``mega2560`` or
        ``uno`` (simavr). ``firmware`` defaults to the project's own build for the machine.
        The modem must use the ``listen`` transport.
        """
        if self._emulator is not None:
            raise RuntimeError("firmware is already running: Stop Firmware first")
        chosen = machine(machine_name)
        self._emulator = Emulator(chosen, Path(firmware) if firmware else chosen.firmware, self._modem().port)
        self._emulator.start()
        self._console_mark = 0
        logger.info(" ".join(self._emulator.command))

    @keyword
    def wait_for_console_line(self, pattern: str, timeout: str = "30s") -> str:
        """Waits for a firmware console line matching the regular expression ``pattern``
        (after the line the previous wait matched) and returns it.

        Fails on the timeout, or at once if the emulator exits."""
        source = self._renode if self._renode is not None else self._firmware()
        index, line = source.wait_for_line(pattern, timestr_to_secs(timeout), self._console_mark)
        self._console_mark = index + 1
        return line

    @keyword
    def get_console_lines(self) -> list:
        """Everything the firmware printed so far, one line per item."""
        return list(self._firmware().console.lines)

    @keyword
    def stop_firmware(self) -> Optional[int]:
        """Stops the emulator (its console is logged) and returns its exit code."""
        if self._renode is not None:
            run, self._renode = self._renode, None
            run.close()
            lines = zip(run.console.times, run.console.log.lines)
            logger.info("console:\n" + "\n".join(f"{t:10.6f}  {line}" for t, line in lines))
            return None
        if self._emulator is None:
            return None
        emulator, self._emulator = self._emulator, None
        code = emulator.stop()
        logger.info("console:\n" + "\n".join(emulator.console.lines))
        return code

    # ------------------------------------------------------------------- Renode

    @keyword
    def skip_unless_renode_is_available(self, binary: str = "renode", in_process: bool = False) -> None:
        """Skips the test (or, in a suite set-up, the suite) with the reason when Renode cannot be
        used here: ``binary`` (a path or a name on ``PATH``) for Renode as a process, and with
        ``in_process`` pyrenode3 too, which finds Renode through ``PYRENODE_PKG``,
        ``PYRENODE_BUILD_DIR``, ``PYRENODE_BIN`` or ``renode`` on ``PATH``."""
        missing = renode_missing(binary, in_process)
        if missing:
            raise SkipExecution(missing)

    @keyword
    def get_free_tcp_port(self) -> int:
        """A TCP port on 127.0.0.1 that nothing listens on (for Renode's server socket terminal)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    @keyword
    def start_firmware_in_renode(self, firmware: str, platform: str = str(PLATFORMS / "renode" /
                                 "stm32f4_discovery-atmodem.repl"), pace: bool = False,
                                 world: Optional[str] = None) -> None:
        """Runs ``firmware`` on ``platform`` in Renode inside this process (pyrenode3), with a
        modem on ``sysbus.usart2`` on the machine's virtual time; the console is ``sysbus.usart1``.

        `Wait For Console Line` then waits on that console; `Get Virtual Transcript` returns the
        modem's UART bytes with their virtual times. The lab, if started, is attached to its world."""
        if self._renode is not None or self._emulator is not None:
            raise RuntimeError("firmware is already running: Stop Firmware first")
        from atmodem.renode import InProcessRun  # loads Renode's runtime
        self._world = World.load(Path(world)) if world else World.default()
        if self._internet is not None:
            self._internet.attach(self._world)  # before the emulation runs: no other thread yet
        self._scratch.append(tempfile.TemporaryDirectory(prefix="atmodem-renode-"))
        self._renode = InProcessRun(Path(platform), Path(firmware), world=self._world,
                                    state_dir=Path(self._scratch[-1].name), pace=pace)
        self._renode.start()
        self._last_transcript = self._renode.attached.transcript
        self._console_mark = 0

    @keyword
    def get_virtual_transcript(self) -> list:
        """The modem's UART chunks of the in-process Renode run as ``(virtual seconds, direction, bytes)``."""
        return [(round(c.clock, 9), c.direction, c.data) for c in self._in_renode().attached.transcript.chunks]

    # --------------------------------------------------------------- transcript

    @keyword
    def modem_should_have_received(self, text: str, regexp: bool = False) -> str:
        """Fails unless a line the host sent contains ``text`` (or, with ``regexp=True``,
        matches it as a regular expression). Returns the first such line."""
        return self._find_line("in", text, regexp)

    @keyword
    def modem_should_have_sent(self, text: str, regexp: bool = False) -> str:
        """Like `Modem Should Have Received`, for the lines the modem sent."""
        return self._find_line("out", text, regexp)

    @keyword
    def modem_should_not_have_received(self, text: str) -> None:
        lines = [line for line in self._modem().transcript.lines("in") if text in line]
        if lines:
            raise AssertionError(f"the modem received {lines[0]!r}")

    @keyword
    def get_modem_counters(self) -> dict:
        """Counters of the running modem: ``bytes_in``, ``bytes_out``, ``commands`` (AT lines
        received) and one per modem event seen (``link``, ``server_started`` …)."""
        session = self._modem()
        transcript = session.transcript
        counters = {"bytes_in": len(transcript.stream("in")), "bytes_out": len(transcript.stream("out")),
                    "commands": len(transcript.commands())}
        counters.update(session.station.events)
        return counters

    @keyword
    def log_at_transcript(self, lines: int = 0) -> str:
        """Logs the AT transcript (the last ``lines`` lines; 0: all) and returns it."""
        text = self._modem().transcript.render(lines)
        logger.info(text)
        return text

    @keyword
    def log_session_diagram(self, rows: int = DEFAULT_LIMIT) -> str:
        """Logs the modem session as a sequence diagram (Host | Modem | Network) and returns its HTML.

        The last ``rows`` rows are drawn (0: all); failures are red. The running test's steps so
        far form a band on the left, a failed one boxed in red with its message and the rows of its
        time span outlined. The modem is the last one started (`Start Modem`, `Start Firmware In
        Renode`, whose rows also show Renode's virtual time), so a teardown may log it after `Stop Modem`."""
        if self._last_transcript is None:
            raise RuntimeError("no modem has run: Start Modem first")
        html = render(self._last_transcript.rows(), self._steps, limit=int(rows))
        self._failure_drawn = any(step.status == "FAIL" for step in self._steps)
        logger.info(html, html=True)
        return html

    # ------------------------------------------------------------------ helpers

    def _find_line(self, direction: str, text: str, regexp: bool) -> str:
        lines = self._modem().transcript.lines(direction)
        for line in lines:
            if (re.search(text, line) if regexp else text in line):
                return line
        who = "host sent" if direction == "in" else "modem sent"
        raise AssertionError(f"no line the {who} {'matches' if regexp else 'contains'} {text!r}; "
                             f"the last lines were: {lines[-8:]}")

    def _modem(self) -> ModemSession:
        if self._session is None:
            raise RuntimeError("no modem is running: Start Modem first")
        return self._session

    def _firmware(self) -> Emulator:
        if self._emulator is None:
            raise RuntimeError("no firmware is running: Start Firmware first")
        return self._emulator

    def _in_renode(self):
        if self._renode is None:
            raise RuntimeError("no firmware runs in Renode: Start Firmware In Renode first")
        return self._renode

    def _lab(self) -> Internet:
        if self._internet is None:
            raise RuntimeError("the lab is not running: Start Lab first")
        return self._internet

    def _world_now(self) -> World:
        return self._modem().world

    def _edit_world(self, function, *args) -> None:
        self._modem().call(function, *args)  # the world belongs to the modem's loop thread

    def _context(self, host: str):
        self._scratch.append(tempfile.TemporaryDirectory(prefix="atmodem-robot-"))
        return server_context(LabPki(self._pki_folder).server(host), Path(self._scratch[-1].name))

    def _keep(self, server):
        self._servers.append(server)
        return server

    def _lab_servers(self) -> list:
        lab = self._internet
        return [lab.https, lab.http] if lab else []

    def _web_servers(self) -> list:
        return [s for s in [*self._servers, *self._lab_servers()] if isinstance(s, WebServer)]


def _transport_spec(transport: str, address: Optional[str]) -> tuple:
    if transport in ("listen", "connect"):
        return (transport, *parse_endpoint(address or "127.0.0.1:0"))
    if transport == "pty":
        return ("pty", Path(address) if address else None)
    if transport == "serial" and address:
        return ("serial", address)
    raise ValueError(f"unknown transport {transport!r} (listen, connect, pty, or serial with a URL)")


def _unix_time(when: str) -> float:
    try:
        return float(when)
    except ValueError:
        stamp = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.timezone.utc)
        return stamp.timestamp()

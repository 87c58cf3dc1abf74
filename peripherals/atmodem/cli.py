"""The ``atmodem`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import platformdirs

from atmodem import __version__
from atmodem.emulators import BUILD, Emulator, EmulatorError, EmulatorExited, exit_text, machine
from atmodem.lab import Internet
from atmodem.plugins import available_profiles, plugin_set
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.session import ModemSession, Station
from atmodem.trace import read_entries
from atmodem.transcript import Event, render, rows, select
from atmodem.transports import Pty, parse_tcp
from atmodem.faults import Fault, parse_spec
from atmodem.world import World


def _tcp(spec: str) -> tuple[str, int]:
    try:
        return parse_tcp(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atmodem", description="A model of an ESP8266 running ESP_ATMod, on a UART.")
    parser.add_argument("--version", action="version", version=f"atmodem {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a modem on a TCP socket, a pseudo-terminal or a serial port")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", type=_tcp, metavar="tcp:HOST:PORT", help="wait for the emulator to connect (port 0: any)")
    where.add_argument("--connect", type=_tcp, metavar="tcp:HOST:PORT", help="connect to the emulator, reconnecting as needed")
    where.add_argument("--pty", nargs="?", const="", metavar="LINK", help="create a pseudo-terminal (LINK: symlink to it)")
    where.add_argument("--serial", metavar="URL", help="a serial port or pyserial URL (socket://, rfc2217://)")
    serve.add_argument("--profile", default=DEFAULT_PROFILE, help=f"firmware profile (default {DEFAULT_PROFILE})")
    serve.add_argument("--state-dir", type=Path, default=platformdirs.user_data_path("atmodem"),
                       help="where the modem's flash lives (default: %(default)s)")
    serve.add_argument("--world", type=Path, metavar="FILE",
                       help="access points, Ethernet, DNS map and policy (TOML); default: one WPA2 network "
                            "'atmodem-lab' with password 'atmodem-pass'")
    _modem_options(serve)
    serve.add_argument("--disable-plugin", action="append", default=[], metavar="NAME", help="leave a plugin out")
    serve.add_argument("-v", "--verbose", action="count", default=0, help="log more (twice: debug)")

    run = commands.add_parser("run", help="run host firmware in an emulator against a modem")
    run.add_argument("--machine", required=True, help="netduinoplus2, b-l475e-iot01a (QEMU), mega2560, uno (simavr)")
    run.add_argument("--firmware", required=True, type=Path, metavar="ELF")
    run.add_argument("--world", type=Path, metavar="FILE", help="as for serve (default: the built-in world)")
    run.add_argument("--lab", type=Path, nargs="?", const=BUILD / "pki", metavar="PKI_DIR",
                     help="serve www.atmodem.test (HTTP, HTTPS) and time.atmodem.test (SNTP) from this machine, "
                          "with the CA in PKI_DIR (default %(const)s)")
    run.add_argument("--profile", default=DEFAULT_PROFILE)
    run.add_argument("--state-dir", type=Path, help="the modem's flash (default: a fresh temporary one)")
    _modem_options(run)
    run.add_argument("--expect", type=_regex, metavar="REGEX", help="stop with success once a console line matches")
    run.add_argument("--fail", type=_regex, metavar="REGEX", help="stop with failure once a console line matches")
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="stop with failure after this long")
    run.add_argument("--transcript", type=int, nargs="?", const=40, default=0, metavar="LINES",
                     help="print the end of the AT transcript when done (default 40 lines)")
    run.add_argument("-v", "--verbose", action="count", default=0, help="log more (twice: debug)")

    plugins = commands.add_parser("plugins", help="list profiles, plugins and the commands each provides")
    plugins.add_argument("--profile", default=DEFAULT_PROFILE)

    trace = commands.add_parser("trace", help="print a --trace file readably")
    trace.add_argument("file", type=Path, metavar="FILE")
    trace.add_argument("--link", type=int, metavar="N", help="only what concerns AT link N")
    trace.add_argument("--command", dest="exchange", metavar="NAME",
                       help="only the exchanges of commands whose name contains NAME (e.g. CIPSTART)")
    trace.add_argument("--wire", action="store_true", help="also the byte counts of each link's socket")
    trace.add_argument("--last", type=int, default=0, metavar="ROWS", help="only the last ROWS rows")
    return parser


def _transport_spec(args) -> tuple:
    if args.listen:
        return ("listen", *args.listen)
    if args.connect:
        return ("connect", *args.connect)
    if args.pty is not None:
        return ("pty", Path(args.pty) if args.pty else None)
    return ("serial", args.serial)


def _modem_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--trace", type=Path, metavar="FILE",
                         help="append every UART byte and network event to FILE as JSON lines (atmodem trace FILE)")
    command.add_argument("--pcap", type=Path, metavar="FILE",
                         help="write a pcapng capture of the modem's network side to FILE")
    command.add_argument("--keylog", type=Path, metavar="FILE",
                         help="append the TLS links' secrets to FILE (SSLKEYLOGFILE format, for Wireshark)")
    command.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC",
                         help="inject a fault, e.g. kind=latency,command=+CIPSTART,seconds=2 (repeatable)")
    command.add_argument("--pace", action="store_true",
                         help="send the modem's output at its UART's baud rate, as the chip's UART does")


def _recording(args) -> dict:
    return dict(trace=args.trace, pcap=args.pcap, keylog=args.keylog, pace=args.pace)


def _fault(spec: str) -> Fault:
    try:
        return parse_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _world(args) -> World:
    """The world file (or the built-in world) with the command line's faults."""
    world = World.load(args.world) if args.world else World.default()
    for fault in args.fault:
        world.faults.add(fault)
    return world


async def _serve(args) -> None:
    loop = asyncio.get_running_loop()
    # Before anything is announced: whoever reads the announcement may press Ctrl-C at once.
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    station = Station(_transport_spec(args), world=_world(args), profile=args.profile, state_dir=args.state_dir,
                      disabled=frozenset(args.disable_plugin), transcript=False, **_recording(args))
    modem, transport = station.modem, station.transport
    modem.observers.append(_announce)
    await transport.start()
    print(f"atmodem: {station.plugins.profile.name} modem on {transport.endpoint}", flush=True)
    if isinstance(transport, Pty):
        print(f"atmodem: talk to it with: {sys.executable} -m serial.tools.miniterm --eol CRLF "
              f"{transport.link or transport.path} {modem.uart.baud}", flush=True)
    modem.power_on()
    await stop.wait()
    await station.stop()
    print("atmodem: stopped", flush=True)


def _announce(kind: str, details: dict) -> None:
    if kind == "server_started":
        host, port = details["host_address"]
        print(f"atmodem: modem port {details['modem_port']} listens on {host}:{port}", flush=True)


# Signals that end a run the way Ctrl-C does: emulator and modem are stopped on the way out.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _run(args) -> int:
    chosen = machine(args.machine)
    chosen.command(args.firmware, 0)  # a missing emulator or firmware is a usage error: before any start
    world = _world(args)
    internet = Internet(args.lab) if args.lab else None
    scratch = tempfile.TemporaryDirectory(prefix="atmodem-run-")
    session = ModemSession(("listen", "127.0.0.1", 0), world=world, profile=args.profile,
                           state_dir=args.state_dir or Path(scratch.name), **_recording(args))
    emulator = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *ENDING_SIGNALS)}
    for sig in ENDING_SIGNALS:
        signal.signal(sig, _interrupt)
    try:
        session.start()
        if internet:
            session.call(internet.attach, world)
        emulator = Emulator(chosen, args.firmware, session.port, on_line=_say)
        _say(f"atmodem: {emulator.describe()} runs {args.firmware}; its modem UART goes to {session.endpoint}")
        emulator.start()
        code = _watch(emulator, args)
    except KeyboardInterrupt:
        _say("atmodem: interrupted")
        code = 130
    except (EmulatorError, TimeoutError) as exc:
        _say(f"atmodem: {exc}")
        code = 1
    finally:
        # A second signal must not cut this short: the emulator would outlive us.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            stopped = emulator.stop() if emulator else None
            session.stop()
        finally:
            if internet:
                internet.close()
            scratch.cleanup()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if emulator and stopped is not None:
        _say(f"atmodem: stopped {emulator.describe()} ({exit_text(stopped)}) and the modem")
    if args.transcript and session.station:
        _say(f"atmodem: AT transcript (last {args.transcript} lines):\n{session.transcript.render(args.transcript)}")
    return code


def _say(text: str) -> None:
    """One write per line: the console thread and the launcher print side by side."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _watch(emulator: Emulator, args) -> int:
    """Until the console shows ``--expect`` or ``--fail``, the emulator exits, or ``--timeout`` runs out."""
    timeout = args.timeout if args.timeout is not None else float("inf")
    wanted = [pattern for pattern in (args.expect, args.fail) if pattern]
    try:
        if wanted:
            either = "|".join(f"(?:{pattern.pattern})" for pattern in wanted)
            _, line = emulator.wait_for_line(either, timeout, label=" or ".join(repr(p.pattern) for p in wanted))
            failed = bool(args.fail and args.fail.search(line))
            _say(f"atmodem: the console showed {line!r}{' (a failure)' if failed else ''}")
            return 1 if failed else 0
        emulator.wait_for_exit(timeout)
    except EmulatorExited:
        if args.expect:
            raise
    code = emulator.returncode
    _say(f"atmodem: {emulator.describe()} ended ({exit_text(code)})")
    return 0 if code == 0 else 1


def _regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {text!r} ({exc})") from None


def _list_plugins(args) -> None:
    profiles = available_profiles()
    chosen = plugin_set(args.profile)
    print("profiles:")
    for name, profile in sorted(profiles.items()):
        marks = " (default)" if name == DEFAULT_PROFILE else ""
        print(f"  {name}{marks}: {profile.description}")
    print(f"plugins of {chosen.profile.name}:")
    for plugin in chosen.plugins:
        print(f"  {plugin.name}  [{plugin.distribution} {plugin.version}, module {plugin.module.__name__}]")
        for entry in chosen.commands_of(plugin.name):
            note = f"  (overrides {', '.join(entry.overrides)})" if entry.overrides else ""
            print(f"      {chosen.syntax.label(entry.command):<18} {entry.command.summary}{note}")


def _print_trace(args) -> None:
    entries = read_entries(args.file)
    virtual = any(isinstance(e, Event) and e.kind == "session" and e.details.get("timebase") == "virtual"
                  for e in entries)
    found = select(rows(entries), link=args.link, command=args.exchange, wire=args.wire)
    columns = "      wall  " + ("   virtual  " if virtual else "") + "link dir  what"
    print(columns)
    print(render(found, limit=args.last, virtual=virtual))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(getattr(args, "verbose", 0), 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "plugins":
            _list_plugins(args)
        elif args.command == "trace":
            _print_trace(args)
        elif args.command == "run":
            return _run(args)
        else:
            asyncio.run(_serve(args))
    except BrokenPipeError:
        # A reader that stopped early (atmodem plugins | head): as quiet as any Unix tool.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (LookupError, ValueError, OSError, EmulatorError) as exc:
        print(f"atmodem: {exc}", file=sys.stderr)
        return 2
    return 0

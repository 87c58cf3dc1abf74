"""The ``atmodem`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import platformdirs

from atmodem import __version__
from atmodem.clock import LoopClock
from atmodem.engine import Modem
from atmodem.net import Network
from atmodem.plugins import available_profiles, plugin_set
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.state import Flash, Settings
from atmodem.trace import TraceWriter
from atmodem.transports import Pty, SerialPort, TcpConnect, TcpListen, parse_tcp
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
    serve.add_argument("--trace", type=Path, metavar="FILE", help="append every UART byte to FILE as JSON lines")
    serve.add_argument("--disable-plugin", action="append", default=[], metavar="NAME", help="leave a plugin out")
    serve.add_argument("-v", "--verbose", action="count", default=0, help="log more (twice: debug)")

    plugins = commands.add_parser("plugins", help="list profiles, plugins and the commands each provides")
    plugins.add_argument("--profile", default=DEFAULT_PROFILE)
    return parser


def _transport(args, modem):
    if args.listen:
        return TcpListen(modem, *args.listen)
    if args.connect:
        return TcpConnect(modem, *args.connect)
    if args.pty is not None:
        return Pty(modem, Path(args.pty) if args.pty else None)
    return SerialPort(modem, args.serial)


async def _serve(args) -> None:
    loop = asyncio.get_running_loop()
    # Before anything is announced: whoever reads the announcement may press Ctrl-C at once.
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    plugins = plugin_set(args.profile, frozenset(args.disable_plugin))
    world = World.load(args.world) if args.world else World.default()
    modem = Modem(plugins, LoopClock(loop), Settings(Flash(args.state_dir)), world=world,
                  network=Network(loop, world))
    modem.observers.append(_announce)
    trace = TraceWriter(args.trace) if args.trace else None
    if trace:
        modem.taps.append(trace)
        modem.observers.append(lambda kind, details: trace.event(kind, details, modem.clock.now()))
    transport = _transport(args, modem)
    await transport.start()
    print(f"atmodem: {plugins.profile.name} modem on {transport.endpoint}", flush=True)
    if isinstance(transport, Pty):
        print(f"atmodem: talk to it with: {sys.executable} -m serial.tools.miniterm --eol CRLF "
              f"{transport.link or transport.path} {modem.uart.baud}", flush=True)
    modem.power_on()
    await stop.wait()
    modem.power_off()
    await transport.stop()
    if trace:
        trace.close()
    print("atmodem: stopped", flush=True)


def _announce(kind: str, details: dict) -> None:
    if kind == "server_started":
        host, port = details["host_address"]
        print(f"atmodem: modem port {details['modem_port']} listens on {host}:{port}", flush=True)


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
            print(f"      {entry.command.label:<18} {entry.command.summary}{note}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(getattr(args, "verbose", 0), 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "plugins":
            _list_plugins(args)
        else:
            asyncio.run(_serve(args))
    except (LookupError, ValueError, OSError) as exc:
        print(f"atmodem: {exc}", file=sys.stderr)
        return 2
    return 0

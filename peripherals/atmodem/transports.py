"""Adapters that carry a modem's UART over real I/O, on one asyncio loop.

Each transport owns one host-side connection and nothing else: it feeds what it
reads into ``modem.feed`` and installs its writer as ``modem.sink``. While no
peer is connected the modem's output is lost, as on a UART with nothing on the
other end; the modem itself keeps its state across reconnections.

* ``TcpListen``: we listen, the emulator connects (QEMU ``-chardev socket`` as client).
* ``TcpConnect``: we connect, and reconnect (QEMU ``server=on,wait=off``, Renode's
  server socket terminal).
* ``Pty``: a pseudo-terminal any terminal program or serial library can open.
* ``SerialPort``: any pyserial URL (``/dev/ttyUSB0``, ``socket://``, ``rfc2217://``).

With ``pace`` a transport sends the modem's output no faster than its UART would, at the
``AT+UART`` settings in force (``timedomain.UartPacer`` on the loop's clock), so firmware
timeouts and receive buffers meet the timing of hardware. A TCP peer that does not keep up
holds the line back (asyncio's write flow control) instead of letting bytes pile up in the
socket's buffer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import termios
import threading
import tty
from pathlib import Path
from typing import Optional

import serial

from atmodem.clock import LoopClock
from atmodem.engine import Modem, UartConfig
from atmodem.timedomain import UartPacer
from atmodem.world import parse_endpoint

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 0.5
# Paced output is written in slices of about this much wire time: a few segments per
# millisecond-scale firmware timeout, without a system call per byte.
PACE_SLICE = 0.002
# Output held for a pseudo-terminal nobody reads, before the oldest bytes go.
PTY_BACKLOG_LIMIT = 1 << 20


def _lost(data: bytes) -> None:
    pass


def parse_tcp(spec: str) -> tuple[str, int]:
    """``tcp:HOST:PORT`` (``HOST`` may be ``[v6]``) to ``(host, port)``."""
    scheme, _, rest = spec.partition(":")
    if scheme != "tcp":
        raise ValueError(f"expected tcp:HOST:PORT, got {spec!r}")
    try:
        return parse_endpoint(rest)
    except ValueError:
        raise ValueError(f"expected tcp:HOST:PORT, got {spec!r}") from None


class Transport:
    endpoint = ""

    def __init__(self, modem: Modem, pace: bool = False):
        self.modem = modem
        self.pace = pace
        self.pacer: Optional[UartPacer] = None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def _output_to(self, write) -> None:
        """Send the modem's output to ``write`` from now on (through the pacer, with ``pace``)."""
        if not self.pace:
            self.modem.sink = write
        elif self.pacer is None:
            self.pacer = UartPacer(self.modem, LoopClock(asyncio.get_running_loop()), write, PACE_SLICE)
            self.modem.sink = self.pacer
        else:
            self.pacer.deliver = write

    def _output_off(self) -> None:
        """The transport is gone: the modem's output, and what the pacer still held, is lost."""
        self.modem.sink = _lost
        if self.pacer is not None:
            self.pacer.close()
            self.pacer = None

    def _hold_output(self, held: bool) -> None:
        """The host side cannot take more now (or can again)."""
        if self.pacer is not None:
            self.pacer.pause() if held else self.pacer.resume()


class _Peer(asyncio.Protocol):
    """One TCP connection to the host side."""

    def __init__(self, owner: "_TcpTransport"):
        self.owner = owner
        self.transport: Optional[asyncio.Transport] = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        # Emulators send one byte per segment; Nagle would add ~40 ms to every reply.
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.owner._attach(self)

    def data_received(self, data: bytes) -> None:
        self.owner.modem.feed(data)

    def connection_lost(self, exc) -> None:
        self.owner._detach(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        if self.owner._peer is self:
            self.owner._hold_output(True)

    def resume_writing(self) -> None:
        if self.owner._peer is self:
            self.owner._hold_output(False)

    def write(self, data: bytes) -> None:
        self.transport.write(data)


class _TcpTransport(Transport):
    def __init__(self, modem: Modem, host: str, port: int, pace: bool = False):
        super().__init__(modem, pace)
        self.host, self.port = host, port
        self._peer: Optional[_Peer] = None

    def _attach(self, peer: _Peer) -> None:
        if self._peer is not None:
            # A UART has one other end: the newest connection replaces a stale one.
            self._peer.transport.close()
        self._peer = peer
        self._output_to(peer.write)
        self._hold_output(False)  # a stale peer's flow control is not the new one's
        log.info("%s: peer connected", self.endpoint)

    def _detach(self, peer: _Peer) -> None:
        if self._peer is peer:
            self._peer = None
            self._output_to(_lost)
            self._hold_output(False)  # the line runs on into nothing, as a UART with no one attached
            log.info("%s: peer disconnected", self.endpoint)

    def _close_peer(self) -> None:
        if self._peer is not None:
            self._peer.transport.close()


class TcpListen(_TcpTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Peer(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.endpoint = f"tcp:{self.host}:{self.port} (listening)"

    async def stop(self) -> None:
        self._server.close()
        self._close_peer()
        self._output_off()
        await self._server.wait_closed()


class TcpConnect(_TcpTransport):
    async def start(self) -> None:
        self.endpoint = f"tcp:{self.host}:{self.port} (connecting)"
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                _, peer = await loop.create_connection(lambda: _Peer(self), self.host, self.port)
            except OSError as exc:
                log.debug("%s: %s; retrying", self.endpoint, exc)
            else:
                await peer.closed
            await asyncio.sleep(RECONNECT_INTERVAL)

    async def stop(self) -> None:
        self._task.cancel()
        self._close_peer()
        self._output_off()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


class Pty(Transport):
    """A pseudo-terminal in raw mode; ``link``, if given, becomes a symlink to it."""

    def __init__(self, modem: Modem, link: Optional[Path] = None, pace: bool = False):
        super().__init__(modem, pace)
        self.link = link
        self._backlog = bytearray()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        # Raw: no echo, no CR/LF translation; the modem does its own echo.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        # Holding the slave open keeps the master readable while host programs come and go.
        self.path = os.ttyname(self._slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self.path)
        self.endpoint = f"pty:{self.path}" + (f" (link {self.link})" if self.link else "")
        self._loop.add_reader(self._master, self._readable)
        self._output_to(self._write)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("%s: read failed: %s", self.endpoint, exc)
            return
        self.modem.feed(data)

    def _write(self, data: bytes) -> None:
        self._backlog += data
        if len(self._backlog) > PTY_BACKLOG_LIMIT:
            log.warning("%s: nobody reads the terminal; dropping old output", self.endpoint)
            del self._backlog[:len(self._backlog) - PTY_BACKLOG_LIMIT]
        self._drain()

    def _drain(self) -> None:
        while self._backlog:
            try:
                written = os.write(self._master, self._backlog)
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._master, self._drain)
                return
            except OSError as exc:
                log.warning("%s: write failed (%s); output dropped", self.endpoint, exc)
                self._backlog.clear()
                break
            del self._backlog[:written]
        self._loop.remove_writer(self._master)

    async def stop(self) -> None:
        self._loop.remove_reader(self._master)
        self._loop.remove_writer(self._master)
        self._output_off()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
        os.close(self._master)
        os.close(self._slave)


def _serial_settings(config: UartConfig) -> dict:
    return {
        "baudrate": config.baud,
        "bytesize": config.data_bits,
        "stopbits": {1: serial.STOPBITS_ONE, 2: serial.STOPBITS_ONE_POINT_FIVE, 3: serial.STOPBITS_TWO}[config.stop_bits],
        # Only "2" enables parity on the chip (spec §6.1): 0 and 1 both mean none.
        "parity": serial.PARITY_EVEN if config.parity == 2 else serial.PARITY_NONE,
    }


class SerialPort(Transport):
    """A pyserial port, read by a thread of its own, reopened if it goes away.

    It follows ``AT+UART``: after the modem reprograms its UART the port is
    switched to the same parameters, as a real host board would have to be. With
    ``pace`` the switch waits until what the modem wrote before it has left the pacer,
    so an ``OK`` sent before the change (ESP_ATMod 0.5.0) still goes out at the old rate.
    """

    def __init__(self, modem: Modem, url: str, pace: bool = False):
        super().__init__(modem, pace)
        self.url = url
        self.endpoint = f"serial:{url}"
        self._port: Optional[serial.SerialBase] = None
        # The settings the port runs at (or opens with): the modem's, once its older output is out.
        self._line = modem.uart
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._output_to(self._write)
        self.modem.uart_listeners.append(self._reconfigure)
        self._thread = threading.Thread(target=self._read_forever, name=f"atmodem {self.endpoint}", daemon=True)
        self._thread.start()

    def _open(self) -> Optional[serial.SerialBase]:
        try:
            port = serial.serial_for_url(self.url, timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as exc:
            log.debug("%s: %s; retrying", self.endpoint, exc)
            return None
        # socket:// and rfc2217:// keep their socket here and leave Nagle on, which would
        # hold back every short reply until the peer's delayed ACK.
        sock = getattr(port, "_socket", None)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return port

    def _read_forever(self) -> None:
        while not self._stopping.is_set():
            port = self._open()
            if port is None:
                self._stopping.wait(RECONNECT_INTERVAL)
                continue
            with self._lock:  # in one step, so that a switch either comes after or finds the port
                self._apply(port, self._line)
                self._port = port
            log.info("%s: open", self.endpoint)
            try:
                while not self._stopping.is_set():
                    data = port.read(max(1, port.in_waiting))
                    if data:
                        self._loop.call_soon_threadsafe(self.modem.feed, data)
            except (serial.SerialException, OSError) as exc:
                log.info("%s: lost (%s)", self.endpoint, exc)
            with self._lock:
                self._port = None
            port.close()

    def _write(self, data: bytes) -> None:
        with self._lock:
            port = self._port
            if port is None:
                return
            try:
                port.write(data)
            except (serial.SerialException, OSError) as exc:
                log.info("%s: write failed (%s)", self.endpoint, exc)

    def _reconfigure(self, config: UartConfig) -> None:
        if self.pacer is not None:
            self.pacer.when_sent(lambda: self._switch(config))
        else:
            self._switch(config)

    def _switch(self, config: UartConfig) -> None:
        with self._lock:
            self._line = config
            if self._port is not None:
                self._port.flush()  # what was said at the old rate goes out at the old rate
                self._apply(self._port, config)

    def _apply(self, port: serial.SerialBase, config: UartConfig) -> None:
        try:
            port.apply_settings(_serial_settings(config))
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            # e.g. a pseudo-terminal refuses 7 data bits: the modem's side has switched anyway
            log.warning("%s: cannot switch the port to %s (%s); it stays as it was", self.endpoint, config, exc)

    async def stop(self) -> None:
        self._stopping.set()
        self._output_off()
        self.modem.uart_listeners.remove(self._reconfigure)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 2.0)

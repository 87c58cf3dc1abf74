"""Basic commands of ESP_ATMod (spec §6.1 and §6.4): AT, ATE, AT+RST, AT+RESTORE,
AT+GMR, AT+SYSRAM?, AT+UART[_CUR|_DEF], AT+SYSCPUFREQ, AT+RFMODE, and the
boot banner.
"""

import logging

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.commands import with_suffixes
from atmodem.engine import UartConfig
from atmodem.params import Params
from atmodem.responses import OK, OK_LINE, READY
from atmodem.state import EEPROM

NAMESPACE = "basic"

UART = Setting(NAMESPACE, "uart", default=list(UartConfig()), region=EEPROM)
CPU_FREQ = Setting(NAMESPACE, "cpu_freq", default=80)
RF_MODE = Setting(NAMESPACE, "rf_mode", default=3)

_BAUD_RANGE = range(110, 921600 + 1)

log = logging.getLogger(__name__)


def at(modem, request):
    return OK


def echo_off(modem, request):
    modem.echo = False
    return OK


def echo_on(modem, request):
    modem.echo = True
    return OK


def reset(modem, request):
    modem.reboot()
    return OK


def restore(modem, request):
    # Only the ESP_ATMod block: Wi-Fi credentials and certificates survive (spec §4).
    modem.settings.flash.erase(EEPROM)
    modem.reboot()
    return OK


def version(modem, request):
    lines = modem.profile.constants["gmr"]
    return b"".join(line.encode("ascii") + b"\r\n" for line in lines) + OK_LINE


def free_heap(modem) -> int:
    """What the chip's heap has left: idle free heap less what plugins hold (TLS buffers, certificates)."""
    return modem.profile.constants["free_heap"] - sum(modem.hook.atmodem_heap_used(modem=modem))


def free_ram(modem, request):
    return b"+SYSRAM:%d\r\n" % free_heap(modem) + OK_LINE


def _stored_uart(modem) -> UartConfig:
    """The saved UART parameters; a value that makes no sense reads as the default, like a bad EEPROM CRC."""
    stored = modem.settings.stored(UART)
    try:
        return _validate_uart(UartConfig(*stored))
    except (TypeError, AtError):
        log.warning("saved UART parameters %r are invalid: using defaults", stored)
        return UartConfig()


def query_uart(modem, request):
    suffix = request.suffix
    config = _stored_uart(modem) if suffix == "_DEF" else modem.uart
    fields = (config.baud, config.data_bits, config.stop_bits, config.parity, 0)
    return b"+UART%s:%s\r\n" % (suffix.encode(), b",".join(b"%d" % f for f in fields)) + OK_LINE


def _parse_uart(args: bytes) -> UartConfig:
    p = Params(args)
    values = [p.number()]
    for _ in range(4):
        p.comma()
        values.append(p.number())
    p.end()
    return _validate_uart(UartConfig(*values))


def _validate_uart(config: UartConfig) -> UartConfig:
    if not all(type(v) is int for v in config):
        raise AtError()
    if (
        config.baud not in _BAUD_RANGE
        or not 5 <= config.data_bits <= 8
        or not 1 <= config.stop_bits <= 3
        or not 0 <= config.parity <= 2
    ):
        raise AtError()
    if 1 <= config.flow <= 3:
        raise AtError(b"NOT IMPLEMENTED\r\n")
    if config.flow:
        raise AtError()
    # Parity 1 only sets the odd-select bit without enabling parity: the port runs
    # without parity and the query shows the raw 1 (spec §6.1, §16.3).
    return config


def set_uart(modem, request):
    config = _parse_uart(request.args)
    if request.saves:
        modem.settings.save(UART, list(config))
    operation = modem.block()
    if modem.profile.constants["uart_ok_at_new_baud"]:
        modem.set_uart(config)
        operation.write(OK)
    else:
        operation.write(OK)  # 0.5.0 flushes its OK at the old rate, then reprograms the port
        modem.set_uart(config)
    # then the firmware waits for the port to settle, reading nothing (spec §9)
    operation.later(modem.timing.uart_change, operation.finish)
    return operation


def query_cpu_freq(modem, request):
    return b"+SYSCPUFREQ:%d\r\n" % modem.settings.get(CPU_FREQ) + OK


def set_cpu_freq(modem, request):
    # No end-of-line check in the firmware: "AT+SYSCPUFREQ=160xyz" is accepted.
    value = Params(request.args).number()
    if value not in (80, 160):
        raise AtError()
    modem.settings.set(CPU_FREQ, value)
    return OK


def query_rf_mode(modem, request):
    return b"+RFMODE:%d\r\n" % modem.settings.get(RF_MODE) + OK_LINE


def set_rf_mode(modem, request):
    value = Params(request.args).single_number()
    if not 1 <= value <= 3:
        raise AtError()
    modem.settings.set(RF_MODE, value)
    return OK


@hookimpl
def atmodem_commands():
    uart = with_suffixes("+UART", "UART configuration", query=query_uart, set=set_uart)
    return [
        Command("", Match.EXACT, execute=at, summary="attention"),
        Command("E0", Match.EXACT, execute=echo_off, summary="echo off"),
        Command("E1", Match.EXACT, execute=echo_on, summary="echo on"),
        Command("+RST", Match.EXACT, execute=reset, summary="restart"),
        Command("+GMR", Match.EXACT, execute=version, summary="version information"),
        Command("+RESTORE", Match.EXACT, execute=restore, summary="factory defaults"),
        Command("+SYSRAM?", Match.EXACT, execute=free_ram, summary="free heap"),
        *uart,
        Command("+SYSCPUFREQ", Match.QUERY_SET, query=query_cpu_freq, set=set_cpu_freq, summary="CPU clock"),
        Command("+RFMODE", Match.QUERY_SET, query=query_rf_mode, set=set_rf_mode, summary="802.11 b/g/n"),
    ]


@hookimpl(tryfirst=True, specname="atmodem_boot")
def open_uart(modem):
    """The firmware opens its UART with the saved parameters before anything else (spec §4)."""
    modem.set_uart(_stored_uart(modem))


@hookimpl(trylast=True, specname="atmodem_boot")
def announce_ready(modem):
    """'ready' ends the boot, after every other plugin's boot messages."""
    modem.write(READY)

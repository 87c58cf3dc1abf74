"""Spec §4, §6.1 and §6.4: the basic plugin's commands, byte for byte."""

import pytest

from atmodem.engine import Mode, UartConfig
from conversation import ERR, GMR_034, GMR_050, OK, READY
from support import Harness


@pytest.fixture
def h():
    harness = Harness()
    harness.send(b"ATE0\r\n")
    return harness


def test_at(h):
    assert h.send(b"AT\r\n") == OK


class TestReset:
    def test_rst_answers_ok_then_ready_after_the_boot_time(self, h):
        h.modem.feed(b"AT+RST\r\n")
        h.clock.advance(0.001)
        assert h.take() == OK
        h.clock.advance(0.498)
        assert h.take() == b""
        h.clock.advance(0.002)
        assert h.take() == READY

    def test_trailing_characters(self, h):
        assert h.send(b"AT+RST1\r\n") == ERR
        assert h.send(b"AT+RST=1\r\n") == ERR

    def test_echo_is_on_again_after_a_reset(self, h):
        h.send(b"AT+RST\r\n")
        assert h.send(b"AT\r\n") == b"AT\r\n" + OK

    def test_input_during_the_reboot_is_lost(self, h):
        h.modem.feed(b"AT+RST\r\n")
        h.clock.advance(0.1)
        assert h.modem.mode is Mode.BOOTING
        h.modem.feed(b"AT+GMR\r\n")
        h.clock.run_until_idle()
        assert h.take() == OK + READY

    def test_ram_settings_return_to_their_boot_values(self, h):
        h.send(b"AT+SYSCPUFREQ=160\r\n")
        h.send(b"AT+RFMODE=1\r\n")
        h.send(b"AT+UART_CUR=9600,8,1,0,0\r\n")
        h.send(b"AT+RST\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+SYSCPUFREQ?\r\n") == b"+SYSCPUFREQ:80\r\n" + OK
        assert h.send(b"AT+RFMODE?\r\n") == b"+RFMODE:3\r\nOK\r\n"
        assert h.send(b"AT+UART_CUR?\r\n") == b"+UART_CUR:115200,8,1,0,0\r\nOK\r\n"

    def test_restore_erases_the_eeprom_block_only(self, h):
        h.modem.settings.flash.put("sdk", "wifi.ssid", "HomeNet")  # the SDK's Wi-Fi config
        h.send(b"AT+UART_DEF=57600,8,1,0,0\r\n")
        assert h.send(b"AT+RESTORE\r\n") == OK + READY
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+UART_DEF?\r\n") == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"
        assert h.modem.settings.flash.get("sdk", "wifi.ssid") == "HomeNet"

    def test_echo_is_on_again_after_restore(self, h):
        h.send(b"AT+RESTORE\r\n")
        assert h.send(b"AT\r\n") == b"AT\r\n" + OK

    def test_restore_takes_no_parameters(self, h):
        assert h.send(b"AT+RESTORE=1\r\n") == ERR


class TestGmr:
    def test_0_5_0(self, h):
        assert h.send(b"AT+GMR\r\n") == GMR_050

    def test_0_3_4_has_four_lines(self):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+GMR\r\n") == GMR_034

    def test_what_host_libraries_parse(self, h):
        said = h.send(b"AT+GMR\r\n")
        version = said.split(b"AT version:")[1]
        # WiFiEspAT copies up to the first '(' into a 10-byte buffer
        assert len(version[:version.index(b"(")]) < 10
        assert said.split(b"SDK version:")[1][:2] == b"2."  # WiFiEsp warns unless 1. or 2.
        assert not said.startswith(b"\r\n") and not said.endswith(b"\r\n\r\nOK\r\n")

    @pytest.mark.parametrize("line", [b"AT+GMR?\r\n", b"AT+GMR=1\r\n", b"AT+GMRX\r\n"])
    def test_other_forms(self, h, line):
        assert h.send(line) == ERR


class TestSysram:
    def test_query(self, h):
        assert h.send(b"AT+SYSRAM?\r\n") == b"+SYSRAM:40960\r\nOK\r\n"

    @pytest.mark.parametrize("line", [b"AT+SYSRAM\r\n", b"AT+SYSRAM?1\r\n", b"AT+SYSRAM=1\r\n"])
    def test_other_forms(self, h, line):
        assert h.send(line) == ERR


class TestUart:
    @pytest.mark.parametrize("suffix", [b"", b"_CUR", b"_DEF"])
    def test_default_query(self, h, suffix):
        assert h.send(b"AT+UART%s?\r\n" % suffix) == b"+UART%s:115200,8,1,0,0\r\nOK\r\n" % suffix

    def test_cur_changes_the_live_port_only(self, h):
        assert h.send(b"AT+UART_CUR=9600,7,3,2,0\r\n") == OK
        assert h.modem.uart == UartConfig(9600, 7, 3, 2, 0)
        assert h.send(b"AT+UART?\r\n") == b"+UART:9600,7,3,2,0\r\nOK\r\n"
        assert h.send(b"AT+UART_CUR?\r\n") == b"+UART_CUR:9600,7,3,2,0\r\nOK\r\n"
        assert h.send(b"AT+UART_DEF?\r\n") == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"

    @pytest.mark.parametrize("suffix", [b"", b"_DEF"])
    def test_unsuffixed_and_def_save(self, h, suffix):
        assert h.send(b"AT+UART%s=230400,8,2,0,0\r\n" % suffix) == OK
        assert h.send(b"AT+UART_DEF?\r\n") == b"+UART_DEF:230400,8,2,0,0\r\nOK\r\n"
        assert h.send(b"AT+UART_CUR?\r\n") == b"+UART_CUR:230400,8,2,0,0\r\nOK\r\n"
        h.send(b"AT+RST\r\n")
        assert h.modem.uart == UartConfig(230400, 8, 2, 0, 0)

    def test_parity_1_shows_as_1_and_means_none(self, h):
        # spec §6.1 and §16.3: odd cannot be set; 1 only sets the odd-select bit
        assert h.send(b"AT+UART_CUR=115200,8,1,1,0\r\n") == OK
        assert h.send(b"AT+UART_CUR?\r\n") == b"+UART_CUR:115200,8,1,1,0\r\nOK\r\n"

    def test_0_5_0_answers_at_the_old_rate_switches_then_settles(self, h):
        switches = []
        h.modem.uart_listeners.append(lambda config: switches.append((config, bytes(h.out))))
        h.modem.feed(b"AT+UART_CUR=9600,8,1,0,0\r\n")
        assert switches == [(UartConfig(9600, 8, 1, 0, 0), OK)]  # the OK left before the switch
        h.clock.advance(0.2499)
        assert h.modem.mode is Mode.BLOCKED  # the port settles; nothing is read
        h.clock.advance(0.0002)
        assert h.modem.mode is Mode.COMMAND
        assert h.take() == OK

    def test_0_3_4_switches_before_its_ok(self):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        switches = []
        h.modem.uart_listeners.append(lambda config: switches.append(bytes(h.out)))
        assert h.send(b"AT+UART_CUR=9600,8,1,0,0\r\n") == OK
        assert switches == [b""]

    def test_setting_the_same_parameters_switches_nothing(self, h):
        switches = []
        h.modem.uart_listeners.append(switches.append)
        assert h.send(b"AT+UART_CUR=115200,8,1,0,0\r\n") == OK
        assert switches == []

    @pytest.mark.parametrize("params", [
        b"110,5,1,0,0", b"921600,8,3,2,0", b"115200,6,2,1,0",
    ])
    def test_range_ends(self, h, params):
        assert h.send(b"AT+UART_CUR=%s\r\n" % params) == OK

    @pytest.mark.parametrize("params", [
        b"109,8,1,0,0", b"921601,8,1,0,0", b"115200,4,1,0,0", b"115200,9,1,0,0",
        b"115200,8,0,0,0", b"115200,8,4,0,0", b"115200,8,1,3,0", b"115200,8,1,0,4",
        b"115200,8,1,0", b"115200,8,1,0,0,0", b"115200,8,1,0,0x", b"115200, 8,1,0,0",
        b"-115200,8,1,0,0", b"+115200,8,1,0,0", b"0x1C200,8,1,0,0", b"", b"?",
        b"99999999999999999999999,8,1,0,0", b"115200,,1,0,0",
    ])
    def test_bad_parameters(self, h, params):
        assert h.send(b"AT+UART_CUR=%s\r\n" % params) == ERR
        assert h.modem.uart == UartConfig()

    @pytest.mark.parametrize("flow", [b"1", b"2", b"3"])
    def test_flow_control_is_not_implemented(self, h, flow):
        assert h.send(b"AT+UART_DEF=115200,8,1,0,%s\r\n" % flow) == b"NOT IMPLEMENTED\r\n" + ERR

    def test_a_bad_range_is_reported_before_flow_control(self, h):
        assert h.send(b"AT+UART_CUR=50,8,1,0,1\r\n") == ERR

    @pytest.mark.parametrize("line", [b"AT+UART\r\n", b"AT+UART_CUR\r\n", b"AT+UART_XYZ?\r\n", b"AT+UART_DEF?1\r\n"])
    def test_other_forms(self, h, line):
        assert h.send(line) == ERR


class TestSysCpuFreq:
    def test_query_and_set(self, h):
        assert h.send(b"AT+SYSCPUFREQ?\r\n") == b"+SYSCPUFREQ:80\r\n" + OK
        assert h.send(b"AT+SYSCPUFREQ=160\r\n") == OK
        assert h.send(b"AT+SYSCPUFREQ?\r\n") == b"+SYSCPUFREQ:160\r\n" + OK

    def test_no_end_of_line_check(self, h):
        assert h.send(b"AT+SYSCPUFREQ=160,junk\r\n") == OK
        assert h.send(b"AT+SYSCPUFREQ?\r\n") == b"+SYSCPUFREQ:160\r\n" + OK

    @pytest.mark.parametrize("value", [b"0", b"8", b"100", b"1600", b"", b"x80", b"-80"])
    def test_bad_values(self, h, value):
        assert h.send(b"AT+SYSCPUFREQ=%s\r\n" % value) == ERR

    @pytest.mark.parametrize("line", [b"AT+SYSCPUFREQ\r\n", b"AT+SYSCPUFREQ?x\r\n"])
    def test_other_forms(self, h, line):
        assert h.send(line) == ERR


class TestRfMode:
    @pytest.mark.parametrize("mode", [1, 2, 3])
    def test_set_and_query(self, h, mode):
        assert h.send(b"AT+RFMODE=%d\r\n" % mode) == OK
        assert h.send(b"AT+RFMODE?\r\n") == b"+RFMODE:%d\r\nOK\r\n" % mode

    @pytest.mark.parametrize("value", [b"0", b"4", b"1x", b"", b"01x"])
    def test_bad_values(self, h, value):
        assert h.send(b"AT+RFMODE=%s\r\n" % value) == ERR

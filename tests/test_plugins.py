"""The plugin system: entry points, profiles, overrides, and a third-party package."""

import subprocess
import sys

import pytest

from atmodem import Command, Match, Syntax, hookimpl
from atmodem.engine import Mode
from atmodem.plugins import PluginSet, get_profile, installed, plugin_set
from conftest import cli_env
from conversation import GMR_050, OK
from support import Harness


def test_built_in_plugins_come_through_the_entry_point_group():
    basic = installed()["basic"]
    assert (basic.distribution, basic.module.__name__) == ("atmodem", "atmodem_basic")
    # Every profile's own plugins, then the add-ons no profile claims (the fault injector).
    assert [p.name for p in plugin_set("esp_atmod-0.5.0").plugins] == [
        "basic", "wifi", "ethernet", "tcpip", "tls", "certs", "sntp", "faults"]
    assert [p.name for p in plugin_set("esp_atmod-0.3.4").plugins] == [
        "basic", "wifi", "tcpip", "tls", "certs", "sntp", "faults"]
    assert [p.name for p in plugin_set("telit").plugins] == ["telit", "telit_services", "faults"]


def test_an_unknown_profile_is_named():
    with pytest.raises(LookupError, match="unknown profile 'esp_atmod-9'"):
        get_profile("esp_atmod-9")


def test_a_disabled_plugin_takes_its_commands_with_it():
    plugins = PluginSet(get_profile("esp_atmod-0.5.0"), disabled={"basic", "tcpip"})
    assert {e.plugin for e in plugins.table.entries} == {"wifi", "ethernet", "tls", "certs", "sntp"}
    assert plugins.table.match(b"AT+GMR\r\n") is None and plugins.table.match(b"AT+CIPSTATUS\r\n") is None


def test_hooks_of_a_plugin_are_checked_against_the_specs():
    class Misspelled:
        @hookimpl
        def atmodem_comands(self):
            return []

    with pytest.raises(Exception, match="unknown hook"):
        PluginSet(get_profile("esp_atmod-0.5.0"), extra=[("typo", Misspelled())])


class SlowCommand:
    """AT+SLOW: answers after 2 s through a later step, as plugins' slow commands do."""

    @hookimpl
    def atmodem_commands(self, profile):
        def slow(modem, request):
            pending = modem.block()
            pending.later(2.0, pending.finish, b"\r\nLATE\r\n")
            return pending

        return [Command("+SLOW", Match.EXACT, execute=slow)]


class CarriageReturnDialect:
    """A made-up dialect: lines end in CR, names ignore case, errors say so, nothing is discarded."""

    class Syntax(Syntax):
        terminator = b"\r"
        discard_after_command = False

        def error(self, modem):
            return b"\r\nNOPE\r\n"

        def request(self, table, line):
            name, sep, args = line.rstrip(b"\r").partition(b"=")
            return table.match(name.upper() + sep + args + b"\r\n") if name[:2].upper() == b"AT" else None

        def unmatched(self, modem, line):
            return b"" if line == b"\r" else self.error(modem)

    @hookimpl
    def atmodem_syntax(self, profile):
        return self.Syntax()


def test_a_dialect_plugin_frames_lines_its_own_way():
    h = Harness(extra=[("cr", CarriageReturnDialect())])
    assert h.send(b"ate0\r") == b"ate0\r" + OK
    assert h.send(b"at+cipmux=1\r") == OK
    assert h.send(b"AT+CIPMUX?\r") == b"+CIPMUX:1\r\n" + OK
    assert h.send(b"\r") == b""
    assert h.send(b"AT+NOSUCH\r") == b"\r\nNOPE\r\n"
    assert h.send(b"AT+CIPMUX=1\n") == b""   # LF is an ordinary byte here; the line goes on
    assert h.send(b"\r") == b"\r\nNOPE\r\n"
    assert h.send(b"AT+CIPMUX=" + b"1" * 300 + b"\r").startswith(b"\r\nNOPE\r\n")  # over-long: the dialect's error


def test_a_dialect_without_the_discard_rule_keeps_bytes_sent_during_a_command():
    h = Harness(extra=[("cr", CarriageReturnDialect()), ("slow", SlowCommand())])
    h.send(b"ATE0\r")
    h.modem.feed(b"AT+SLOW\r" + b"xyzAT\r")   # ESP_ATMod would drop "xyz" (spec §1.7); this dialect reads it
    assert h.wait_for(b"NOPE\r\n") == b"\r\nLATE\r\n\r\nNOPE\r\n"


def test_power_off_drops_the_command_running():
    h = Harness(extra=[("slow", SlowCommand())])
    h.modem.feed(b"AT+SLOW\r\n")
    h.advance(1.0)
    h.modem.power_off()
    h.take()
    assert h.advance(5.0) == b"" and h.modem.mode is Mode.OFF


def test_reset_now_interrupts_a_command_and_reboot_waits_for_it():
    h = Harness(extra=[("slow", SlowCommand())])
    h.send(b"ATE0\r\n")
    h.modem.feed(b"AT+SLOW\r\n")
    h.advance(1.0)
    h.modem.reset_now()                      # a watchdog: at once, the command's answer never comes
    assert h.advance(5.0) == b"\r\nready\r\n"
    h.send(b"ATE0\r\n")
    h.modem.feed(b"AT+SLOW\r\n")
    h.advance(1.0)
    h.modem.reboot()                         # AT+RST's way: after the running command's answer
    assert h.advance(5.0) == b"\r\nLATE\r\n\r\nready\r\n"


class TestThirdPartyPackage:
    def test_it_adds_a_command_and_overrides_gmr(self, hello_installed):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+HELLO="world"\r\n') == b"+HELLO:world\r\n" + OK
        assert h.send(b"AT+GMR\r\n") == b"AT version:1.7.0.0 (hello)\r\nOK\r\n"
        assert h.send(b"AT+SYSRAM?\r\n") == b"+SYSRAM:40960\r\nOK\r\n"  # the rest is untouched

    def test_it_is_an_add_on_after_the_profile_plugins(self, hello_installed):
        plugins = PluginSet(get_profile("esp_atmod-0.5.0"))
        version = plugins.plugins[0].version
        assert [(p.name, p.distribution, p.version) for p in plugins.plugins] == [
            *((name, "atmodem", version) for name in ("basic", "wifi", "ethernet", "tcpip", "tls", "certs", "sntp",
                                                      "faults")),
            ("hello", "atmodem-hello", "1.2.3")]
        gmr = next(e for e in plugins.table.entries if e.command.name == "+GMR")
        assert (gmr.plugin, gmr.overrides) == ("hello", ("basic",))
        # the override keeps the firmware's search order
        names = [e.command.name for e in plugins.table.entries]
        assert names.index("+GMR") < names.index("+RESTORE") and names[-1] == "+HELLO"

    def test_disabling_it_restores_the_built_in(self, hello_installed):
        h = Harness(disabled={"hello"})
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+GMR\r\n") == GMR_050

    def test_atmodem_plugins_lists_it(self, hello_site):
        out = subprocess.run([sys.executable, "-m", "atmodem", "plugins"], env=cli_env(hello_site),
                             capture_output=True, text=True, check=True).stdout
        assert "hello  [atmodem-hello 1.2.3, module atmodem_hello]" in out
        assert "AT+HELLO" in out
        assert "AT+GMR             version, the hello way  (overrides basic)" in out

    def test_without_it_the_listing_has_only_the_built_ins(self):
        out = subprocess.run([sys.executable, "-m", "atmodem", "plugins"], capture_output=True, text=True,
                             check=True).stdout
        assert "hello" not in out and "basic  [atmodem" in out
        assert "esp_atmod-0.5.0 (default)" in out and "esp_atmod-0.3.4" in out

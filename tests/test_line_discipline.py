"""Spec §1: the input state machine, byte for byte, in simulated time."""

import pytest

from atmodem.engine import Mode
from conversation import ERR, OK, script
from probes import BusyProbe, FaultyProbe, Override, RawProbe, UrcProbe
from support import BYTE_TIME, Harness

BUSY = b"\r\nbusy p...\r\n"


@pytest.mark.parametrize("step", range(len(script())))
def test_conversation(step):
    """Each exchange of the shared conversation, after all the ones before it."""
    h = Harness()
    for exchange, echo in script()[:step]:
        (h.send if exchange.burst else h.type)(exchange.send)
    exchange, echo = script()[step]
    said = (h.send if exchange.burst else h.type)(exchange.send)
    assert said == exchange.expected(echo)


def test_echo_is_immediate_and_the_answer_waits_for_the_command_time():
    h = Harness()
    h.modem.feed(b"AT")
    assert h.take() == b"AT"  # echoed as it arrives, nothing else yet
    h.modem.feed(b"\r\n")
    assert h.take() == b"\r\n"
    h.clock.advance(0.0009)
    assert h.take() == b""
    h.clock.advance(0.0002)
    assert h.take() == OK


def test_ate0_line_itself_is_echoed():
    h = Harness()
    assert h.send(b"ATE0\r\n") == b"ATE0\r\n" + OK
    assert h.send(b"AT\r\n") == OK
    assert h.send(b"ATE1\r\n") == OK
    assert h.send(b"AT\r\n") == b"AT\r\n" + OK


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_any_fragmentation_gives_the_same_bytes(cut):
    line = b"AT+UART_DEF?\r\n"
    h = Harness()
    for i in range(0, len(line), cut):
        h.modem.feed(line[i:i + cut])
    h.clock.run_until_idle()
    assert h.take() == line + b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"


def test_cr_alone_does_not_end_a_line():
    h = Harness()
    assert h.send(b"ATE0\r\n") == b"ATE0\r\n" + OK
    assert h.send(b"AT\r") == b""
    assert h.send(b"\n") == OK


def test_overflow_starts_a_new_line_with_the_following_bytes():
    h = Harness()
    h.send(b"ATE0\r\n")
    assert h.send(b"x" * 201 + b"AT\r\n") == ERR + OK


def test_ten_kilobyte_line():
    h = Harness()
    h.send(b"ATE0\r\n")
    # every 201st byte finds the buffer full; the last 153 bytes form a line without "AT"
    assert h.send(b"A" * 10_000 + b"\r\n") == ERR * 50
    assert h.send(b"AT\r\n") == OK


def test_line_buffer_of_0_3_4_is_100_bytes():
    h = Harness("esp_atmod-0.3.4")
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+SYSCPUFREQ=80" + b"x" * 82 + b"\r\n") == OK
    assert h.send(b"AT+SYSCPUFREQ=80" + b"x" * 83 + b"\r\n") == ERR


def test_nul_bytes_are_ordinary_bytes():
    h = Harness()
    assert h.send(b"\x00\x00\r\n") == b"\x00\x00\r\n" + ERR
    assert h.send(b"AT\x00\r\n") == b"AT\x00\r\n" + ERR
    assert h.send(b"AT\r\n") == b"AT\r\n" + OK


class TestDiscardRule:
    def test_bytes_arriving_after_the_answer_are_not_eaten(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b"AT\r\n") == OK
        assert h.send(b"\r\n") == ERR

    def test_bytes_arriving_while_a_command_executes_are_eaten_up_to_the_next_A(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.modem.feed(b"AT\r\n")
        h.clock.advance(0.0005)  # the command is still executing
        h.modem.feed(b"?\r\nxAT\r\n")
        h.clock.run_until_idle()
        assert h.take() == OK + OK

    def test_probes_during_a_uart_switch_get_no_answer(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.modem.feed(b"AT+UART_CUR=115200,8,1,0,0\r\n")
        assert h.take() == OK  # answered at the old rate, then 250 ms of not reading
        for _ in range(3):
            h.clock.advance(0.05)
            h.modem.feed(b"?\r\n")
        h.clock.run_until_idle()
        assert h.take() == b""
        assert h.send(b"?\r\n") == ERR  # once the port is back, a probe is a bad line

    def test_a_host_reacting_to_the_reply_at_once_is_not_eaten(self):
        probe = RawProbe()
        h = Harness(extra=[("raw", probe)])
        h.send(b"ATE0\r\n")
        said = bytearray()

        def host(data):  # an in-process host that writes as soon as it sees the prompt
            said.extend(data)
            if data.endswith(b"> "):
                h.modem.feed(b"hello")

        h.modem.sink = host
        h.send(b"AT+TESTRAW=5\r\n")
        assert probe.received == [b"hello"]
        assert said == b"OK\r\n> \r\nRecv 5 bytes\r\n\r\nSEND OK\r\n"

    def test_bytes_arriving_while_a_busy_command_starts_are_eaten(self):
        h = Harness(extra=[("busy", BusyProbe())])
        h.send(b"ATE0\r\n")
        h.modem.feed(b"AT+TESTBUSY=1\r\n")
        h.clock.advance(0.0005)  # the command itself is still executing
        h.modem.feed(b"?\r\n")
        h.clock.advance(0.001)
        assert h.modem.mode is Mode.BUSY and h.take() == b""  # eaten: no busy p... for them
        h.clock.run_until_idle()
        assert h.take() == OK

    def test_a_line_failing_syntax_also_eats_what_waits(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b"\r\n\r\n") == ERR


class TestBusy:
    def busy(self, **options):
        h = Harness(extra=[("busy", BusyProbe())], **options)
        h.send(b"ATE0\r\n")
        h.modem.feed(b"AT+TESTBUSY=5\r\n")
        h.clock.advance(0.01)
        assert h.take() == b""  # nothing is printed when BUSY starts, not even OK
        assert h.modem.mode is Mode.BUSY
        return h

    def test_one_busy_per_line_when_a_line_arrives_in_one_burst(self):
        h = self.busy()
        h.modem.feed(b"AT\r\n")
        assert h.take() == BUSY
        h.modem.feed(b"AT\r\nAT\r\n")
        assert h.take() == BUSY + BUSY

    def test_one_busy_per_byte_when_bytes_trickle_in(self):
        h = self.busy()
        for byte in b"AT\r\n":
            h.modem.feed(bytes([byte]))
            h.clock.advance(BYTE_TIME)
        assert h.take() == BUSY * 4

    def test_an_operation_over_before_its_command_phase_ends_never_shows_busy(self):
        h = Harness(extra=[("busy", BusyProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+TESTBUSY=0\r\n") == OK
        assert h.modem.mode is Mode.COMMAND

    def test_per_byte_option(self):
        h = self.busy(busy_per_byte=True)
        h.modem.feed(b"AT\r\n")
        assert h.take() == BUSY * 4

    def test_echo_comes_first(self):
        h = self.busy()
        h.modem.echo = True
        h.modem.feed(b"AT\r\n")
        assert h.take() == b"AT\r\n" + BUSY

    def test_lines_sent_while_busy_are_discarded_and_the_result_follows(self):
        h = self.busy()
        h.modem.feed(b"ATE1\r\n")
        h.clock.run_until_idle()
        assert h.take() == BUSY + OK
        assert h.modem.mode is Mode.COMMAND
        assert h.send(b"AT\r\n") == OK  # ATE1 was never executed

    def test_a_partial_line_sent_while_busy_does_not_survive(self):
        h = self.busy()
        h.modem.feed(b"AT+G")
        h.clock.run_until_idle()
        assert h.take() == BUSY + OK
        assert h.send(b"MR\r\n") == ERR

    def test_binary_garbage_while_busy(self):
        h = self.busy()
        garbage = bytes(range(256)) * 4
        h.modem.feed(garbage)
        # Passes end at each LF: 11 bytes, three 256-byte spans, a 245-byte tail. The
        # line-buffer overflow rule holds in BUSY too: spans over 200 bytes cost an ERROR.
        assert h.take() == BUSY + (ERR + BUSY) * 3 + ERR + BUSY
        h.clock.run_until_idle()
        assert h.take() == OK


class TestRaw:
    def raw(self):
        probe = RawProbe()
        h = Harness(extra=[("raw", probe)])
        h.send(b"ATE0\r\n")
        return h, probe

    def test_raw_bytes_are_not_echoed_or_parsed(self):
        h, probe = self.raw()
        h.modem.echo = True
        assert h.send(b"AT+TESTRAW=8\r\n") == b"AT+TESTRAW=8\r\nOK\r\n> "
        assert h.type(b"AT\r\nAT\r\n") == b"\r\nRecv 8 bytes\r\n\r\nSEND OK\r\n"
        assert probe.received == [b"AT\r\nAT\r\n"]

    def test_bytes_after_the_data_go_to_the_parser(self):
        h, probe = self.raw()
        h.send(b"AT+TESTRAW=3\r\n")
        assert h.send(b"\x00\xffzAT\r\n") == b"\r\nRecv 3 bytes\r\n\r\nSEND OK\r\n" + OK
        assert probe.received == [b"\x00\xffz"]

    def test_raw_input_has_no_timeout(self):
        h, probe = self.raw()
        h.send(b"AT+TESTRAW=2\r\n")
        h.clock.advance(7200)
        assert h.modem.mode is Mode.RAW
        assert h.send(b"ok") == b"\r\nRecv 2 bytes\r\n\r\nSEND OK\r\n"

    def test_data_sent_before_the_prompt_is_eaten_up_to_an_A(self):
        h, probe = self.raw()
        # the danger of spec §1.7: not waiting for "> " loses data up to the first 'A'
        said = h.send(b"AT+TESTRAW=4\r\nxyzABCD")
        assert said == b"OK\r\n> " + b"\r\nRecv 4 bytes\r\n\r\nSEND OK\r\n"
        assert probe.received == [b"ABCD"]


class TestUrcs:
    def test_a_urc_raised_during_a_command_follows_its_answer(self):
        h = Harness(extra=[("urc", UrcProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+TESTURC="WIFI CONNECTED"\r\n') == OK + b"WIFI CONNECTED\r\n"

    def test_urcs_go_out_at_once_when_idle_busy_or_raw(self):
        h = Harness(extra=[("busy", BusyProbe()), ("raw", RawProbe())])
        h.send(b"ATE0\r\n")
        h.modem.urc(b"WIFI GOT IP\r\n")
        assert h.take() == b"WIFI GOT IP\r\n"
        h.modem.feed(b"AT+TESTRAW=2\r\n")
        h.clock.run_until_idle()
        h.modem.urc(b"0,CLOSED\r\n")
        assert h.take() == b"OK\r\n> 0,CLOSED\r\n"


class TestPluginFailures:
    @pytest.mark.parametrize("line", [b"AT+TESTRAISE\r\n", b"AT+TESTNONE\r\n", b"AT+TESTTEXT\r\n"])
    def test_a_broken_handler_costs_one_error(self, line, caplog):
        h = Harness(extra=[("faulty", FaultyProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(line) == ERR
        assert "plugin failed" in caplog.text
        assert h.send(b"AT\r\n") == OK

    def test_a_failing_step_ends_its_command_with_error(self, caplog):
        h = Harness(extra=[("faulty", FaultyProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+TESTLATER\r\n") == ERR
        assert "plugin step" in caplog.text
        assert h.send(b"AT\r\n") == OK

    def test_a_failing_raw_reader_ends_raw_mode_with_error(self, caplog):
        h = Harness(extra=[("faulty", FaultyProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+TESTBADRAW\r\n") == b"OK\r\n> "
        assert h.send(b"xyz\r\nAT\r\n") == ERR + ERR + OK  # the data falls through to the parser
        assert h.modem.mode is Mode.COMMAND and "raw reader" in caplog.text

    def test_at_error_carries_its_text(self):
        h = Harness(extra=[("faulty", FaultyProbe())])
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+TESTREJECT\r\n") == b"no change\r\n" + ERR


class TestBeforeCommand:
    def test_an_override_answers_instead_of_the_command(self):
        override = Override(b"AT+GMR\r\n", b"\r\nERROR\r\n")
        h = Harness(extra=[("override", override)])
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+GMR\r\n") == ERR
        assert h.send(b"AT+SYSRAM?\r\n") == b"+SYSRAM:40960\r\nOK\r\n"

    def test_it_sees_every_line_with_its_match(self):
        override = Override(b"", b"")
        h = Harness(extra=[("override", override)])
        h.send(b"ATE0\r\n")
        h.send(b"AT+UART_CUR?\r\n")
        h.send(b"at\r\n")
        assert override.seen == [
            (b"ATE0\r\n", "ATE0"), (b"AT+UART_CUR?\r\n", "AT+UART_CUR"), (b"at\r\n", None)
        ]

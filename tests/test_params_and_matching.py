"""Spec §1.3: the matcher's three modes and the parameter rules."""

import pytest

from atmodem import AtError, Command, Form, Match
from atmodem.commands import CommandTable
from atmodem.params import Params


def table(*commands):
    return CommandTable(("test", c) for c in commands)


def handler(modem, request):
    return b""


class TestMatching:
    def test_query_set_falls_through_to_a_longer_name(self):
        t = table(Command("+UART", Match.QUERY_SET, query=handler), Command("+UART_CUR", Match.QUERY_SET, query=handler))
        assert t.match(b"AT+UART_CUR?\r\n").command.name == "+UART_CUR"
        assert t.match(b"AT+UART?\r\n").command.name == "+UART"
        assert t.match(b"AT+UART?x\r\n") is None
        assert t.match(b"AT+UART\r\n") is None

    def test_no_check_skips_names_continued_by_a_letter(self):
        t = table(Command("+CIPSEND", Match.NO_CHECK, set=handler), Command("+CIPSENDEX", Match.NO_CHECK, set=handler))
        assert t.match(b"AT+CIPSENDEX=1\r\n").command.name == "+CIPSENDEX"
        assert t.match(b"AT+CIPSEND=1\r\n").command.name == "+CIPSEND"
        assert t.match(b"AT+CIPSEND_1\r\n").form is Form.OTHER
        assert t.match(b"AT+CIPSEND\r\n").form is Form.EXECUTE

    def test_exact(self):
        t = table(Command("", Match.EXACT, execute=handler), Command("+RST", Match.EXACT, execute=handler))
        assert t.match(b"AT\r\n").command.name == ""
        assert t.match(b"AT+RST\r\n").command.name == "+RST"
        assert t.match(b"AT+RST \r\n") is None

    @pytest.mark.parametrize("line, form, args", [
        (b"AT+X\r\n", Form.EXECUTE, b""),
        (b"AT+X?\r\n", Form.QUERY, b""),
        (b"AT+X?12\r\n", Form.QUERY, b"12"),
        (b"AT+X=1,2\r\n", Form.SET, b"1,2"),
        (b"AT+X=?\r\n", Form.SET, b"?"),  # ESP_ATMod has no test form
    ])
    def test_forms(self, line, form, args):
        request = table(Command("+X", Match.NO_CHECK, set=handler)).match(line)
        assert (request.form, request.args) == (form, args)

    def test_a_declared_test_handler_gets_the_test_form(self):
        t = table(Command("+X", Match.QUERY_SET, set=handler, test=handler))
        assert t.match(b"AT+X=?\r\n").form is Form.TEST

    def test_fallback_answers_forms_without_a_handler(self):
        command = Command("+X", Match.NO_CHECK, query=handler, fallback=print)
        assert command.handler(Form.QUERY) is handler
        assert command.handler(Form.SET) is print
        assert Command("+X", Match.NO_CHECK).handler(Form.SET) is None

    def test_a_later_declaration_replaces_the_entry_in_place(self):
        first = Command("+A", Match.EXACT, execute=handler)
        replacement = Command("+A", Match.EXACT, execute=print)
        t = CommandTable([("one", first), ("one", Command("+B", Match.EXACT)), ("two", replacement)])
        assert [e.command.name for e in t.entries] == ["+A", "+B"]
        assert (t.entries[0].plugin, t.entries[0].overrides) == ("two", ("one",))
        assert t.match(b"AT+A\r\n").command is replacement


class TestParams:
    def test_numbers(self):
        p = Params(b"12,0,7x")
        assert p.number() == 12
        p.comma()
        assert p.number() == 0
        p.comma()
        assert p.number() == 7
        with pytest.raises(AtError):
            p.end()

    @pytest.mark.parametrize("data", [b"", b"-1", b"+1", b" 1", b"x"])
    def test_not_a_number(self, data):
        with pytest.raises(AtError):
            Params(data).number()

    def test_strings_with_escapes(self):
        p = Params(b'"a\\"b\\\\c",""')
        assert p.string(10) == b'a"b\\c'
        p.comma()
        assert p.string(10) == b""
        p.end()

    def test_strings_without_escapes(self):
        assert Params(b'"a\\"').string(10, escapes=False) == b"a\\"

    @pytest.mark.parametrize("data", [b"abc", b'"abc', b'"abc\\', b'"' + b"x" * 11 + b'"'])
    def test_bad_strings(self, data):
        with pytest.raises(AtError):
            Params(data).string(10)

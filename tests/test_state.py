"""Spec §5: RAM and flash values; the state directory survives resets and restarts."""

import json
import logging

import pytest

from atmodem.state import Flash, Setting, Settings
from conversation import OK
from support import Harness

SAVED = b"+UART_DEF:57600,8,1,0,0\r\nOK\r\n"


def saved_uart(state_dir):
    h = Harness(state_dir=state_dir)
    h.send(b"ATE0\r\n")
    return h.send(b"AT+UART_DEF?\r\n")


def test_flash_survives_a_reset_and_a_process_restart(tmp_path):
    h = Harness(state_dir=tmp_path)
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+UART_DEF=57600,8,1,0,0\r\n") == OK
    h.send(b"AT+RST\r\n")
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+UART_DEF?\r\n") == SAVED
    # a new modem on the same directory is the chip powered up again
    assert saved_uart(tmp_path) == SAVED


def test_cur_values_are_not_saved(tmp_path):
    h = Harness(state_dir=tmp_path)
    h.send(b"AT+UART_CUR=57600,8,1,0,0\r\n")
    assert saved_uart(tmp_path) == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"


def test_the_file_is_replaced_atomically(tmp_path):
    flash = Flash(tmp_path)
    flash.put("eeprom", "basic.uart", [9600, 8, 1, 0, 0])
    flash.put("eeprom", "basic.uart", [19200, 8, 1, 0, 0])
    assert [p.name for p in tmp_path.iterdir()] == ["flash.json"]  # no temporary file left behind
    assert json.loads((tmp_path / "flash.json").read_text())["regions"]["eeprom"]["basic.uart"][0] == 19200


@pytest.mark.parametrize("content", [
    b"", b"{", b"\xff\xfe\x00garbage", b"[]", b"null", b'{"format": 1}', b'{"format": 99, "regions": {}}',
    b'{"format": 1, "regions": {"eeprom": 5}}',
])
def test_a_corrupt_file_boots_with_defaults(tmp_path, caplog, content):
    (tmp_path / "flash.json").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert saved_uart(tmp_path) == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"
    assert "booting with defaults" in caplog.text


def test_nonsense_values_in_a_valid_file_read_as_defaults(tmp_path, caplog):
    (tmp_path / "flash.json").write_text(json.dumps(
        {"format": 1, "regions": {"eeprom": {"basic.uart": ["fast", 8, 1, 0, 0]}}}))
    assert saved_uart(tmp_path) == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"
    assert "invalid" in caplog.text


def test_an_unreadable_file_boots_with_defaults(tmp_path, caplog):
    (tmp_path / "flash.json").mkdir()  # a directory where the file should be
    assert saved_uart(tmp_path) == b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"
    assert "booting with defaults" in caplog.text


def test_a_corrupt_file_is_replaced_by_the_next_save(tmp_path):
    (tmp_path / "flash.json").write_bytes(b"{")
    h = Harness(state_dir=tmp_path)
    h.send(b"AT+UART_DEF=57600,8,1,0,0\r\n")
    assert saved_uart(tmp_path) == SAVED


def test_settings_ram_and_flash():
    ram_only = Setting("t", "ram", 1)
    saved = Setting("t", "saved", "a", region="r")
    settings = Settings(Flash())
    settings.set(ram_only, 2)
    settings.set(saved, "b", save=True)
    settings.set(saved, "c")
    assert (settings.get(ram_only), settings.get(saved), settings.stored(saved)) == (2, "c", "b")
    settings.boot()
    assert (settings.get(ram_only), settings.get(saved)) == (1, "b")
    with pytest.raises(ValueError):
        settings.save(ram_only, 3)


def test_stored_values_are_copies():
    saved = Setting("t", "list", [1, 2], region="r")
    settings = Settings(Flash())
    settings.stored(saved).append(3)
    assert settings.stored(saved) == [1, 2]

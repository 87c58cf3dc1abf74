"""The plugin in a running modem, over its UART: `pip install -e .`, then `pytest`.

The `atmodem` fixture comes from atmodem's pytest plugin; the modem runs every installed plugin.
"""


def test_it_greets_and_remembers_whom(atmodem):
    uart = atmodem.serial()
    uart.write(b'AT+HELLO="Ada"\r\n')
    assert uart.read_until(b"OK\r\n") == b'AT+HELLO="Ada"\r\n+HELLO:Ada\r\n\r\nOK\r\n'
    uart.write(b"AT+HELLO?\r\n")
    assert uart.read_until(b"OK\r\n") == b"AT+HELLO?\r\n+HELLO:Ada\r\n\r\nOK\r\n"


def test_it_refuses_an_empty_name(atmodem):
    uart = atmodem.serial()
    uart.write(b'AT+HELLO=""\r\n')
    assert uart.read_until(b"\r\nERROR\r\n") == b'AT+HELLO=""\r\nNAME ERROR\r\n\r\nERROR\r\n'


def test_it_answers_at_gmr(atmodem):
    uart = atmodem.serial()
    uart.write(b"AT+GMR\r\n")
    assert uart.read_until(b"OK\r\n") == b"AT+GMR\r\nAT version:1.7.0.0 (hello)\r\nOK\r\n"

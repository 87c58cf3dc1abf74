"""atmodem's pytest plugin: user test files run by pytest in a subprocess, which loads the plugin
through its installed ``pytest11`` entry point, as it does in a user's environment."""

import re
from pathlib import Path

import pytest

from atmodem.world import DEFAULT_PASSWORD, DEFAULT_SSID, AccessPoint, World

pytest_plugins = ["pytester"]

# The README's example, verbatim: join the AP, open a link to the echo server, exchange data.
USER_TEST = '''
def test_the_modem_joins_and_echoes(atmodem, atmodem_echo):
    uart = atmodem.serial()
    uart.write(b'AT+CWJAP="atmodem-lab","atmodem-pass"\\r\\n')
    assert uart.read_until(b"OK\\r\\n").endswith(b"WIFI GOT IP\\r\\n\\r\\nOK\\r\\n")
    uart.write(b'AT+CIPSTART="TCP","echo.test",7\\r\\n')
    assert uart.read_until(b"OK\\r\\n").endswith(b"CONNECT\\r\\n\\r\\nOK\\r\\n")
    uart.write(b"AT+CIPSEND=5\\r\\n")
    assert uart.read_until(b"> ").endswith(b"> ")
    uart.write(b"hello")
    assert uart.read_until(b"+IPD,5:hello").endswith(b"SEND OK\\r\\n\\r\\n+IPD,5:hello")
'''


def test_a_user_test_joins_an_ap_and_opens_a_link_in_under_ten_lines(pytester):
    body = USER_TEST.strip().splitlines()[1:]
    assert len(body) < 10
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "atmodem transcript" not in result.stdout.str()


def test_the_readme_shows_the_user_test():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("### pytest plugin"):]
    assert USER_TEST.strip() in section[:section.index("\n## ")]


def test_a_failing_test_reports_the_modems_transcript(pytester):
    pytester.makepyfile('''
        def test_expects_the_wrong_version(atmodem):
            uart = atmodem.serial()
            uart.write(b"AT+GMR\\r\\n")
            assert b"Version ESP_ATMod:9.9.9" in uart.read_until(b"OK\\r\\n")
    ''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    section = re.search(r"^-+ atmodem transcript -+$(.*?)^=+ short test summary", output, re.M | re.S).group(1)
    said = [line for line in section.splitlines() if line.strip()]
    heard = [next(i for i, line in enumerate(said) if text in line)
             for text in ("ready", "AT+GMR", "AT version:1.7.0.0 (partial)", "Version ESP_ATMod:0.5.0")]
    assert heard == sorted(heard), said


def test_the_profile_and_world_fixtures_override_what_the_modem_starts_with(pytester):
    pytester.makepyfile('''
        import pytest
        from atmodem.world import AccessPoint, World


        @pytest.fixture
        def atmodem_world():
            return World(access_points=[AccessPoint("Workshop", "workshop-pass", join_delay=0.1)])


        @pytest.mark.parametrize("atmodem_profile", ["esp_atmod-0.3.4"])
        def test_an_older_release_in_a_workshop(atmodem):
            uart = atmodem.serial()
            uart.write(b"AT+GMR\\r\\n")
            assert b"Version ESP_ATMod:0.3.4" in uart.read_until(b"OK\\r\\n")
            uart.write(b'AT+CWJAP="Workshop","workshop-pass"\\r\\n')
            assert uart.read_until(b"OK\\r\\n").endswith(b"WIFI GOT IP\\r\\n\\r\\nOK\\r\\n")
    ''')
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


# In this process too (the plugin is loaded here as everywhere): a fast join, for the world edit below.
@pytest.fixture
def atmodem_world():
    return World(access_points=[AccessPoint(DEFAULT_SSID, DEFAULT_PASSWORD, join_delay=0.05)],
                 hosts={"localhost": "127.0.0.1"})


def test_the_world_is_the_running_modems(atmodem):
    uart = atmodem.serial()
    uart.write(b'AT+CWJAP="%s","%s"\r\n' % (DEFAULT_SSID.encode(), DEFAULT_PASSWORD.encode()))
    assert uart.read_until(b"OK\r\n").endswith(b"WIFI GOT IP\r\n\r\nOK\r\n")
    atmodem.session.call(atmodem.world.remove_ap, DEFAULT_SSID)
    assert uart.read_until(b"WIFI DISCONNECT (200)\r\n") == b"WIFI DISCONNECT (200)\r\n"
    assert atmodem.transcript.commands() == ['AT+CWJAP="atmodem-lab","atmodem-pass"']

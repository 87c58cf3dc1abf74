"""SNTP over real UDP and the modem's clock (spec §6.3, §8.7)."""

import calendar

import pytest

from atmodem.world import AccessPoint, World
from atmodem.lab import SntpServer
from support import JOIN, Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"
WHEN = calendar.timegm((2026, 6, 1, 12, 0, 0))   # a Monday


@pytest.fixture
def server():
    s = SntpServer(WHEN)
    yield s
    s.close()


def modem(server, **world_options) -> Harness:
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")],
                  hosts={"pool.ntp.org": "127.0.0.1", "time.nist.gov": "127.0.0.1", "ntp.test": "127.0.0.1"},
                  sntp_port=server.port, **world_options)
    h = Harness(world=world)
    h.send(b"ATE0\r\n")
    return h


def test_epoch_before_any_sync(server):
    h = modem(server)
    assert h.send(b"AT+CIPSNTPTIME?\r\n") == b"+CIPSNTPTIME:Thu Jan  1 00:00:00 1970\nOK\r\n"
    assert h.send(b"AT+SNTPTIME?\r\n") == b"+SNTPTIME:Enable SNTP first (AT+CIPSNTPCFG)\r\n" + ERR
    assert h.send(b"AT+CIPSNTPCFG?\r\n") == b"+CIPSNTPCFG:1,0\r\n" + OK  # no servers until started


def test_cwjap_starts_sntp(server):
    h = modem(server)
    assert h.send(JOIN).endswith(OK)
    h.pump(lambda: server.requests > 0 and h.modem.runtime["sntp"].now() > 57600)
    assert h.send(b"AT+CIPSNTPCFG?\r\n") == b'+CIPSNTPCFG:1,0,"pool.ntp.org","time.nist.gov"\r\n' + OK
    reply = h.send(b"AT+CIPSNTPTIME?\r\n")
    assert reply.startswith(b"+CIPSNTPTIME:Mon Jun  1 12:00:0") and reply.endswith(b" 2026\nOK\r\n")
    reply = h.send(b"AT+SNTPTIME?\r\n")
    seconds = int(reply.split(b":")[1].split(b",")[0])
    assert abs(seconds - WHEN) <= 2 and reply.endswith(b"\r\nOK\r\n") and b",2026-06-01 12:00:0" in reply
    # The default world reaches 127.0.0.0/8 only: the modem's UDP port is not open beyond it.
    assert h.modem.runtime["sntp"].socket.sock.getsockname()[0] == "127.0.0.1"


def test_cipsntpcfg_with_timezone_and_server(server):
    h = modem(server)
    h.send(JOIN)
    assert h.send(b'AT+CIPSNTPCFG=1,-5,"ntp.test"\r\n') == OK
    h.pump(lambda: h.modem.runtime["sntp"].now() > 57600)
    assert h.send(b"AT+CIPSNTPCFG?\r\n") == b'+CIPSNTPCFG:1,-5,"ntp.test"\r\n' + OK
    assert h.send(b"AT+CIPSNTPTIME?\r\n").startswith(b"+CIPSNTPTIME:Mon Jun  1 07:00:0")
    assert h.send(b'AT+CIPSNTPCFG=1,99\r\n') == OK  # no range check on the time zone


def test_no_sntp_after_boot_auto_join(server, tmp_path):
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")],
                  hosts={"pool.ntp.org": "127.0.0.1"}, sntp_port=server.port)
    h = Harness(world=world, state_dir=tmp_path)
    h.join()
    h.pump(lambda: server.requests > 0)
    before = server.requests
    h.modem.feed(b"AT+RST\r\n")
    h.wait_for(b"ready\r\n")
    assert h.wait_for(b"WIFI GOT IP\r\n")
    h.advance(30)
    assert server.requests == before  # spec §8.7 ⚠: the auto-join never starts SNTP
    assert h.send(b"AT+CIPSNTPTIME?\r\n").endswith(b"1970\nOK\r\n")


@pytest.mark.parametrize("line", [b'AT+CIPSNTPCFG=1,0,""', b"AT+CIPSNTPCFG=2", b"AT+CIPSNTPCFG=1",
                                  b"AT+CIPSNTPCFG=1,x", b"AT+CIPSNTPTIME", b"AT+SNTPTIME", b"AT+SYSTIME?",
                                  b'AT+CIPSNTPCFG=1,0,"a","b","c","d"'])
def test_errors(server, line):
    h = modem(server)
    assert h.send(line + b"\r\n") == ERR


def test_disable_keeps_flag_only(server):
    h = modem(server)
    assert h.send(b"AT+CIPSNTPCFG=0\r\n") == OK
    assert h.send(b"AT+CIPSNTPCFG?\r\n") == b"+CIPSNTPCFG:0\r\n" + OK
    assert h.send(b"AT+SNTPTIME?\r\n").endswith(ERR)


def test_unanswered_servers_leave_the_clock_alone():
    dead = SntpServer(WHEN)
    port = dead.port
    dead.close()  # nobody answers on this port
    world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")],
                  hosts={"pool.ntp.org": "127.0.0.1"}, sntp_port=port)
    h = Harness(world=world)
    h.join()
    h.advance(60)
    assert h.send(b"AT+CIPSNTPTIME?\r\n").endswith(b"1970\nOK\r\n")


def test_huge_time_zones_wrap_like_a_c_int(server):
    h = modem(server)
    assert h.send(b"AT+CIPSNTPCFG=1,99999999999999\r\n") == OK
    assert h.send(b"AT+CIPSNTPCFG?\r\n").startswith(b"+CIPSNTPCFG:1,276447231")
    assert h.send(b"AT+CIPSNTPTIME?\r\n").endswith(b"\nOK\r\n")


def test_server_names_take_no_escapes(server):
    h = modem(server)
    assert h.send(b'AT+CIPSNTPCFG=1,0,"a\\"b"\r\n') == ERR

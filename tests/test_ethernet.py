"""The Ethernet build (spec §11): commands, URCs on cable events, and 'no ip'."""

import pytest

from atmodem.world import Ethernet, World
from support import Harness, Peer

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"


def booted(profile="esp_atmod-0.5.0-eth", world=None) -> Harness:
    h = Harness(profile, world=world)
    assert h.send(b"ATE0\r\n") == b"ATE0\r\n" + OK
    return h


@pytest.fixture
def eth():
    h = booted()
    assert h.advance(0.5) == b"+ETH_CONNECTED\r\n"
    assert h.advance(0.5) == b'+ETH_GOT_IP="192.168.2.50"\r\n'
    yield h
    h.close()


def test_absent_in_the_default_build():
    h = booted("esp_atmod-0.5.0")
    assert h.advance(5) == b""
    for line in (b"AT+CIPETH?", b"AT+CIPETHMAC?", b"AT+CEHOSTNAME?", b'AT+CIPETH="1.2.3.4"'):
        assert h.send(line + b"\r\n") == ERR
    assert h.send(b"AT+CWDHCP=3,0\r\n") == OK  # only flips bit 4
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK


def test_the_world_can_fit_a_w5500():
    h = booted("esp_atmod-0.5.0", World(ethernet=Ethernet(present=True)))
    assert h.advance(1) == b'+ETH_CONNECTED\r\n+ETH_GOT_IP="192.168.2.50"\r\n'


def test_queries(eth):
    assert eth.send(b"AT+CIPETH?\r\n") == (b'+CIPETH:ip:"192.168.2.50"\r\n+CIPETH:gateway:"192.168.2.1"\r\n'
                                           b'+CIPETH:netmask:"255.255.255.0"\r\n' + OK)
    assert eth.send(b"AT+CIPETHMAC_CUR?\r\n") == b'+CIPETHMAC_CUR:"02:08:DC:00:00:01"\r\n' + OK
    assert eth.send(b"AT+CEHOSTNAME?\r\n") == b"+CEHOSTNAME:ESP-A0B1C2\r\n" + OK


def test_mac_is_zero_until_started():
    h = Harness("esp_atmod-0.5.0-eth", ready=False)
    h.pump(lambda: b"ready" in h.out)
    h.take()
    assert h.send(b"AT+CIPETHMAC?\r\n").startswith(b"AT+CIPETHMAC?\r\n+CIPETHMAC:\"02:08:DC")


def test_cable_events(eth):
    eth.world.unplug_cable()
    assert eth.advance(0) == b"+ETH_DISCONNECTED\r\n"
    assert eth.send(b"AT+CIPETH?\r\n").startswith(b'+CIPETH:ip:"0.0.0.0"')
    eth.world.plug_cable()
    assert eth.advance(0) == b"+ETH_CONNECTED\r\n"
    assert eth.advance(5) == b""  # the same address again: not news (spec §11)
    assert eth.send(b"AT+CIPETH?\r\n").startswith(b'+CIPETH:ip:"192.168.2.50"')


def test_ethernet_satisfies_no_ip(eth):
    peer = Peer()
    assert eth.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"CONNECT\r\n" + OK
    conn = peer.accept()
    eth.world.unplug_cable()
    assert eth.wait_for(b"CLOSED\r\n") == b"+ETH_DISCONNECTED\r\nCLOSED\r\n"
    assert eth.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"no ip\r\n" + ERR
    conn.close()
    peer.close()


def test_static_address_clears_the_dhcp_bit(eth, tmp_path):
    assert eth.send(b"AT+CWDHCP_CUR=3,1\r\n") == OK
    assert eth.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:7\r\n" + OK
    assert eth.send(b'AT+CIPETH_CUR="192.168.2.77"\r\n') == OK + b'+ETH_GOT_IP="192.168.2.77"\r\n'
    assert eth.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK
    assert eth.send(b"AT+CIPETH_CUR?\r\n").startswith(b'+CIPETH_CUR:ip:"192.168.2.77"')
    assert eth.send(b'AT+CIPETH="192.168.2.1"\r\n').startswith(OK)
    assert eth.send(b"AT+CWDHCP_DEF?\r\n") == b"+CWDHCP_DEF:3\r\n" + OK
    assert eth.send(b'AT+CIPETH="192.168.2.1",\r\n') == ERR


def test_mac_set_is_for_the_next_start(eth):
    assert eth.send(b'AT+CIPETHMAC_DEF="02:00:00:aa:bb:cc"\r\n') == OK
    assert eth.send(b"AT+CIPETHMAC?\r\n") == b'+CIPETHMAC:"02:08:DC:00:00:01"\r\n' + OK
    assert eth.send(b'AT+CIPETHMAC="02:00:00:aa:bb"\r\n') == ERR


def test_hostname(eth):
    assert eth.send(b'AT+CEHOSTNAME="wired"x\r\n') == OK
    assert eth.send(b"AT+CEHOSTNAME?\r\n") == b"+CEHOSTNAME:wired\r\n" + OK
    assert eth.send(b'AT+CEHOSTNAME=""\r\n') == ERR


def test_dhcp_bit_4_and_static_from_eeprom(tmp_path):
    h = Harness("esp_atmod-0.5.0-eth", state_dir=tmp_path)
    h.send(b"ATE0\r\n")
    h.advance(1)
    h.send(b'AT+CIPETH="192.168.2.9"\r\n')
    assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK
    h.modem.feed(b"AT+RST\r\n")
    h.wait_for(b"ready\r\n")
    assert h.advance(1) == b'+ETH_CONNECTED\r\n+ETH_GOT_IP="192.168.2.9"\r\n'

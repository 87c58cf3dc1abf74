"""The Ethernet build of ESP_ATMod 0.5.0 (spec §11): a W5500 on SPI.

Present when the profile is the Ethernet build (``esp_atmod-0.5.0-eth``) or
the world has ``[ethernet] present = true``; otherwise every command here
answers ERROR exactly as an unknown command does, and no ``+ETH_*`` URC is
ever sent. The DHCP bit for Ethernet (``AT+CWDHCP=3,…``) belongs to the
Wi-Fi plugin's AT+CWDHCP and is read here when the interface gets an address.
"""

from __future__ import annotations

import ipaddress

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.commands import with_suffixes
from atmodem.interfaces import ZERO
from atmodem.params import Params
from atmodem.responses import OK
from atmodem.state import EEPROM
from atmodem.world import format_mac, parse_mac
from atmodem_wifi import DHCP, DHCP_ETH, address_report, parse_address

NAMESPACE = "ethernet"
IPv4 = ipaddress.IPv4Address

STATIC = Setting(NAMESPACE, "static", default=None, region=EEPROM)   # [ip, gateway, netmask]
MAC = Setting(NAMESPACE, "mac", default=None)                        # AT+CIPETHMAC=, RAM only
HOSTNAME = Setting(NAMESPACE, "hostname", default=None)


def built_in(modem) -> bool:
    return bool(modem.profile.constants.get("ethernet")) or modem.world.ethernet.present


def _require(modem) -> None:
    if not built_in(modem):
        raise AtError()  # the command does not exist in this build


def port(modem) -> "EthernetPort":
    return modem.runtime_of(NAMESPACE, EthernetPort)


class EthernetPort:
    """The W5500 interface of one boot: started, cable, address."""

    def __init__(self, modem):
        self.modem = modem
        self.interface = modem.interfaces.eth
        self.linked = False
        self.announced = None  # the last address +ETH_GOT_IP reported this boot
        self._timers: list = []

    def _after(self, delay, callback) -> None:
        self._timers.append(self.modem.clock.call_later(delay, callback))

    def shutdown(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def start(self) -> None:
        """(Re)start the interface with the MAC set by AT+CIPETHMAC, or the chip's own."""
        override = self.modem.settings.get(MAC)
        self.interface.mac = parse_mac(override or self.modem.world.ethernet.mac)
        if self.modem.world.ethernet.plugged:
            self._after(self.modem.timing.eth_link, self.cable_in)

    def cable_in(self) -> None:
        self.shutdown()
        self.linked = True
        self.modem.urc(b"+ETH_CONNECTED\r\n")
        self._after(self.modem.timing.eth_link, self.address)

    def address(self) -> None:
        world = self.modem.world.ethernet
        static = self.modem.settings.get(STATIC)
        if self.modem.settings.get(DHCP) & DHCP_ETH or not static:
            self.interface.assign(IPv4(world.address), IPv4(world.gateway), IPv4(world.netmask))
        else:
            self.interface.assign(*(IPv4(a) for a in static))
        self.announce()

    def announce(self) -> None:
        self.interface.up = True
        if self.interface.ip != ZERO and self.interface.ip != self.announced:
            # Only a new address is announced (spec §11: the firmware remembers the last one).
            self.announced = self.interface.ip
            self.modem.urc(b'+ETH_GOT_IP="%s"\r\n' % str(self.interface.ip).encode())
        self.modem.interface_changed(self.interface)

    def cable_out(self) -> None:
        self.shutdown()
        was_up = self.interface.up
        if self.linked:
            self.linked = False
            self.modem.urc(b"+ETH_DISCONNECTED\r\n")
        self.interface.clear()
        if was_up:
            self.modem.interface_changed(self.interface)


# ---------------------------------------------------------------- AT+CIPETHMAC


def query_mac(modem, request):
    _require(modem)
    mac = format_mac(modem.interfaces.eth.mac, upper=True).encode()
    return b'+CIPETHMAC%s:"%s"\r\n' % (request.suffix.encode(), mac) + OK


def set_mac(modem, request):
    _require(modem)
    p = Params(request.args)
    mac = p.mac()
    p.end()
    # Kept for the next start of the interface; never saved, _DEF or not (spec §11).
    modem.settings.set(MAC, format_mac(mac, upper=False))
    return OK


# ---------------------------------------------------------------- AT+CIPETH


def query_address(modem, request):
    _require(modem)
    interface = modem.interfaces.eth
    return address_report(request, b"+CIPETH", interface, interface.up, modem.settings.stored(STATIC))


def set_address(modem, request):
    _require(modem)
    address = parse_address(modem, request.args)
    modem.settings.set(DHCP, modem.settings.get(DHCP) & ~DHCP_ETH, save=request.saves)
    modem.settings.set(STATIC, address, save=request.saves)
    eth = port(modem)
    if eth.linked:
        # The firmware restarts the interface with the new address.
        eth.interface.assign(*(IPv4(a) for a in address))
        eth.announce()
    return OK


# ---------------------------------------------------------------- AT+CEHOSTNAME


def query_hostname(modem, request):
    _require(modem)
    name = modem.settings.get(HOSTNAME)
    if name is None:
        return b"+CEHOSTNAME:ESP-%02X%02X%02X\r\n" % tuple(modem.interfaces.sta.mac[3:]) + OK
    return b"+CEHOSTNAME:%s\r\n" % name.encode("latin-1") + OK


def set_hostname(modem, request):
    _require(modem)
    name = Params(request.args).string(modem.profile.constants.get("string_max", 200))  # no end-of-line check
    if not name or len(name) > 32:
        raise AtError()
    modem.settings.set(HOSTNAME, name.decode("latin-1"))
    return OK


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_commands(profile):
    return [
        *with_suffixes("+CIPETHMAC", "Ethernet MAC address", query=query_mac, set=set_mac),
        *with_suffixes("+CIPETH", "Ethernet address", query=query_address, set=set_address),
        Command("+CEHOSTNAME", Match.QUERY_SET, query=query_hostname, set=set_hostname,
                summary="Ethernet host name"),
    ]


@hookimpl
def atmodem_boot(modem):
    if built_in(modem):
        port(modem).start()



@hookimpl
def atmodem_world_event(modem, event):
    if not built_in(modem) or NAMESPACE not in modem.runtime:
        return
    if event.kind == "cable_unplugged":
        port(modem).cable_out()
    elif event.kind == "cable_plugged":
        port(modem).cable_in()

"""The modem's network interfaces as every plugin sees them.

The Wi-Fi plugin brings the station and SoftAP interfaces up and down, the
Ethernet plugin the wired one; the TCP/IP plugin (and any dialect plugin)
only reads them: whether the modem has an IP at all (the ``no ip`` check),
and which interface a link went out through, so that losing the interface
breaks exactly those links. Changes are announced through the
``atmodem_interface_changed`` hook.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPv4 = ipaddress.IPv4Address
ZERO = IPv4(0)


@dataclass
class Interface:
    name: str             # "sta", "ap", "eth"
    mac: bytes = bytes(6)
    up: bool = False      # usable: link up and an address assigned
    ip: IPv4 = ZERO
    gateway: IPv4 = ZERO
    netmask: IPv4 = ZERO

    def assign(self, ip: IPv4, gateway: IPv4, netmask: IPv4) -> None:
        self.ip, self.gateway, self.netmask = ip, gateway, netmask

    def clear(self) -> None:
        self.up = False
        self.assign(ZERO, ZERO, ZERO)


class Interfaces:
    """Station, SoftAP and Ethernet, plus the resolver's servers."""

    def __init__(self):
        self.sta = Interface("sta")
        self.ap = Interface("ap")
        self.eth = Interface("eth")
        self.dns: list[IPv4] = []

    def has_ip(self) -> bool:
        return self.sta.up or self.ap.up or self.eth.up

    def route(self) -> str:
        """The interface an outgoing link leaves through (the station first, as lwIP's default netif)."""
        for interface in (self.sta, self.eth, self.ap):
            if interface.up:
                return interface.name
        return ""

    def __iter__(self):
        return iter((self.sta, self.ap, self.eth))

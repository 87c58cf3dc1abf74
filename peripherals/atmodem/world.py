"""The simulated world around a modem: access points, an Ethernet cable, a cellular network, DNS, reachability.

The world is plain data, loaded from TOML (``atmodem serve --world FILE``) or
built in Python, plus a small event API (``remove_ap``, ``unplug_cable``,
``set_rssi`` …) that tests, the CLI and Robot keywords share. Modems subscribe
to it and react to each event through their plugins' ``atmodem_world_event``
hook. Connections themselves are real host sockets; the world only decides
names, addresses and which host addresses a modem may reach.

TOML layout (every key optional)::

    [modem]
    mac = "5c:cf:7f:a0:b1:c2"           # station MAC; the SoftAP's is derived from it

    [[access_point]]
    ssid = "HomeNet"
    password = "secret123"              # "" for an open network
    encryption = "wpa2"                 # open | wep | wpa | wpa2 | wpa_wpa2 | wpa2_enterprise | wpa3
    bssid = "9c:53:22:01:02:03"
    channel = 6
    rssi = -58
    hidden = false
    gateway = "192.168.1.1"
    netmask = "255.255.255.0"
    dhcp_pool = ["192.168.1.100", "192.168.1.199"]
    dns = ["192.168.1.1"]
    join_delay = 3.0                    # seconds until WIFI GOT IP
    join_outcome = "ok"                 # ok | fail (+CWJAP:4) | no_ip (connecting for ever)

    [ethernet]
    present = true                      # a W5500 on the SPI bus (the Ethernet build)
    plugged = true
    dhcp = true
    address = "192.168.2.50"            # what DHCP hands out
    gateway = "192.168.2.1"
    netmask = "255.255.255.0"
    dns = ["192.168.2.1"]
    mac = "02:08:dc:00:00:01"           # the W5500's own address

    [cellular]
    coverage = true                     # false: no PDP context activates (Telit #SGACT fails)
    addresses = { 1 = "212.195.45.65" } # what the network gives context <cid> (default 10.7.125.<6+cid>)

    [dns]
    hosts = { "api.example.test" = "127.0.0.10" }   # names (and IP literals) to host addresses
    fallback = false                    # ask the host's resolver for names not in the map

    [policy]
    reachable = ["127.0.0.0/8", "::1/128"]   # host addresses links may connect to

    [network]
    latency = 0.02                      # seconds from data on a socket to the chip noticing it
    sntp_port = 123                     # where the modem sends SNTP (tests cannot bind 123)
    tls_time_scale = 1.0                # times the spec's handshake and probe durations (0: instant)
    forward = { "127.0.0.1:443" = "127.0.0.1:40443" }   # where a TCP/SSL link to address:port really goes

    [servers]
    bind = "127.0.0.1"                  # where AT+CIPSERVER listens on the host
    ports = { 333 = 0 }                 # modem port -> host port (0 or absent: any free port)

    [[fault]]                           # faults to inject (atmodem.faults has every kind and key)
    kind = "drop_ap"
    ssid = "HomeNet"
    at = 30.0                           # modem-clock seconds since power-on
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Optional

from atmodem.faults import Faults

IPv4 = ipaddress.IPv4Address
LOOPBACK = {4: ipaddress.ip_network("127.0.0.0/8"), 6: ipaddress.ip_network("::1/128")}
ENCRYPTIONS = ("open", "wep", "wpa", "wpa2", "wpa_wpa2", "wpa2_enterprise", "wpa3")
JOIN_OUTCOMES = ("ok", "fail", "no_ip")


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def format_mac(mac: bytes, upper: bool) -> str:
    text = ":".join(f"{b:02x}" for b in mac)
    return text.upper() if upper else text


@dataclass
class AccessPoint:
    ssid: str
    password: str = ""
    encryption: Optional[str] = None      # None: wpa2 with a password, open without
    bssid: Optional[str] = None           # None: derived from the SSID
    channel: int = 6
    rssi: int = -55
    hidden: bool = False
    gateway: str = "192.168.1.1"
    netmask: str = "255.255.255.0"
    dhcp_pool: tuple[str, str] = ("192.168.1.100", "192.168.1.199")
    dns: tuple[str, ...] = ("192.168.1.1",)
    join_delay: Optional[float] = None    # None: the modem's Timing.join
    join_outcome: str = "ok"
    present: bool = True                  # False while the AP is switched off

    def __post_init__(self):
        if self.encryption is None:
            self.encryption = "wpa2" if self.password else "open"
        if self.encryption not in ENCRYPTIONS:
            raise ValueError(f"unknown encryption {self.encryption!r} (one of {', '.join(ENCRYPTIONS)})")
        if self.join_outcome not in JOIN_OUTCOMES:
            raise ValueError(f"unknown join_outcome {self.join_outcome!r} (one of {', '.join(JOIN_OUTCOMES)})")
        if self.bssid is None:
            # Stable per SSID, locally administered, so several APs never collide.
            digest = sum((i + 1) * b for i, b in enumerate(self.ssid.encode())) & 0xFFFFFF
            self.bssid = format_mac(bytes((0x02, 0x1A, 0x11)) + digest.to_bytes(3, "big"), upper=False)
        self.bssid_bytes = parse_mac(self.bssid)
        self.dhcp_pool = tuple(self.dhcp_pool)
        self.dns = tuple(self.dns)

    def lease(self, mac: bytes) -> IPv4:
        """The address this AP's DHCP server hands to ``mac`` (stable per MAC)."""
        first, last = (int(IPv4(a)) for a in self.dhcp_pool)
        return IPv4(first + int.from_bytes(mac[-2:], "big") % (last - first + 1))


@dataclass
class Ethernet:
    present: bool = False
    plugged: bool = True
    dhcp: bool = True
    address: str = "192.168.2.50"
    gateway: str = "192.168.2.1"
    netmask: str = "255.255.255.0"
    dns: tuple[str, ...] = ("192.168.2.1",)
    mac: str = "02:08:dc:00:00:01"


@dataclass
class Cellular:
    """The mobile network a cellular dialect (Telit) attaches to; its sockets are still the host's."""

    coverage: bool = True
    addresses: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        self.addresses = {int(cid): address for cid, address in self.addresses.items()}

    def address(self, cid: int) -> str:
        """The address the network hands PDP context ``cid``."""
        return self.addresses.get(cid, f"10.7.125.{6 + cid}")


@dataclass(frozen=True)
class WorldEvent:
    kind: str          # ap_removed, ap_restored, rssi_changed, cable_unplugged, cable_plugged, host_mapped,
                       # port_forwarded, fault_added
    subject: object = None


DEFAULT_SSID = "atmodem-lab"
DEFAULT_PASSWORD = "atmodem-pass"


@dataclass
class World:
    access_points: list[AccessPoint] = field(default_factory=list)
    ethernet: Ethernet = field(default_factory=Ethernet)
    cellular: Cellular = field(default_factory=Cellular)
    hosts: dict[str, str] = field(default_factory=dict)
    dns_fallback: bool = False
    reachable: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    server_bind: str = "127.0.0.1"
    server_ports: dict[int, int] = field(default_factory=dict)
    mac: str = "5c:cf:7f:a0:b1:c2"
    # Loopback answers in microseconds; a Wi-Fi network does not. Host libraries race on
    # this (a reply glued to SEND OK), so the chip sees socket events this much later.
    latency: float = 0.02
    sntp_port: int = 123
    tls_time_scale: float = 1.0
    # A firmware dials the port it was built for (443); a test server cannot own that port.
    forward: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self):
        self._listeners: list[Callable[[WorldEvent], None]] = []
        self.faults.on_added = lambda fault: self._emit("fault_added", fault)
        self.hosts = {name.lower(): address for name, address in self.hosts.items()}
        self._reachable = [ipaddress.ip_network(n) for n in self.reachable]
        self.mac_bytes = parse_mac(self.mac)

    @classmethod
    def default(cls) -> "World":
        """What ``atmodem serve`` uses without ``--world``: one WPA2 network and ``localhost``."""
        return cls(access_points=[AccessPoint(DEFAULT_SSID, DEFAULT_PASSWORD, rssi=-52)],
                   hosts={"localhost": "127.0.0.1"})

    @classmethod
    def load(cls, path: Path) -> "World":
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f))

    @classmethod
    def from_dict(cls, data: dict) -> "World":
        known = {"modem", "access_point", "ethernet", "cellular", "dns", "policy", "servers", "network", "fault"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown world section(s): {', '.join(sorted(unknown))}")
        dns, policy, servers = data.get("dns", {}), data.get("policy", {}), data.get("servers", {})
        options = dict(
            access_points=[_build(AccessPoint, ap) for ap in data.get("access_point", [])],
            ethernet=_build(Ethernet, data.get("ethernet", {})),
            cellular=_build(Cellular, data.get("cellular", {})),
            hosts=dict(dns.get("hosts", {})),
            dns_fallback=bool(dns.get("fallback", False)),
            server_ports={int(k): int(v) for k, v in servers.get("ports", {}).items()},
            faults=Faults(data.get("fault", [])),
        )
        if "reachable" in policy:
            options["reachable"] = tuple(policy["reachable"])
        if "bind" in servers:
            options["server_bind"] = servers["bind"]
        network = data.get("network", {})
        unknown = set(network) - {"latency", "sntp_port", "tls_time_scale", "forward"}
        if unknown:
            raise ValueError(f"unknown network key(s): {', '.join(sorted(unknown))}")
        if "latency" in network:
            options["latency"] = float(network["latency"])
        if "sntp_port" in network:
            options["sntp_port"] = int(network["sntp_port"])
        if "tls_time_scale" in network:
            options["tls_time_scale"] = float(network["tls_time_scale"])
        if "forward" in network:
            options["forward"] = {parse_endpoint(k): parse_endpoint(v) for k, v in network["forward"].items()}
        if "mac" in data.get("modem", {}):
            options["mac"] = data["modem"]["mac"]
        return cls(**options)

    # ------------------------------------------------------------ queries

    def find_ap(self, ssid: str, bssid: Optional[bytes] = None) -> Optional[AccessPoint]:
        """The AP a station joining ``ssid`` (and ``bssid``) would find on air, if any."""
        for ap in self.access_points:
            if ap.present and ap.ssid == ssid and (bssid is None or ap.bssid_bytes == bssid):
                return ap
        return None

    def on_air(self) -> list[AccessPoint]:
        return [ap for ap in self.access_points if ap.present]

    def lookup(self, name: str) -> Optional[str]:
        """The host address a name maps to: the map first, then an IP literal as itself."""
        mapped = self.hosts.get(name.lower())
        if mapped is not None:
            return mapped
        try:
            return str(ipaddress.IPv4Address(name))  # the ESP8266 build has no IPv6
        except ValueError:
            return None

    def route(self, address: str, port: int) -> tuple[str, int]:
        """Where a link the modem opens to ``address:port`` really connects."""
        return self.forward.get((address, port), (address, port))

    @property
    def loopback_only(self) -> bool:
        """Whether every address links may reach is on this machine."""
        return all(net.subnet_of(LOOPBACK[net.version]) for net in self._reachable)

    def may_reach(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._reachable if net.version == ip.version)

    # ------------------------------------------------------------- events
    # Events reach modems in the caller's thread, synchronously: call these from the thread
    # that runs the modems (from elsewhere, through its loop's call_soon_threadsafe).

    def subscribe(self, listener: Callable[[WorldEvent], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[WorldEvent], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, kind: str, subject: object = None) -> None:
        event = WorldEvent(kind, subject)
        for listener in list(self._listeners):
            listener(event)

    def _ap(self, ssid: str) -> AccessPoint:
        for ap in self.access_points:
            if ap.ssid == ssid:
                return ap
        raise KeyError(f"no access point {ssid!r} in the world")

    def add_ap(self, ap: AccessPoint) -> AccessPoint:
        self.access_points.append(ap)
        if ap.present:
            self._emit("ap_restored", ap)
        return ap

    def remove_ap(self, ssid: str) -> None:
        """Switch an AP off: stations on it lose their link (beacon timeout)."""
        ap = self._ap(ssid)
        if ap.present:
            ap.present = False
            self._emit("ap_removed", ap)

    def restore_ap(self, ssid: str) -> None:
        ap = self._ap(ssid)
        if not ap.present:
            ap.present = True
            self._emit("ap_restored", ap)

    def set_rssi(self, ssid: str, rssi: int) -> None:
        ap = self._ap(ssid)
        ap.rssi = rssi
        self._emit("rssi_changed", ap)

    def unplug_cable(self) -> None:
        if self.ethernet.plugged:
            self.ethernet.plugged = False
            self._emit("cable_unplugged", self.ethernet)

    def plug_cable(self) -> None:
        if not self.ethernet.plugged:
            self.ethernet.plugged = True
            self._emit("cable_plugged", self.ethernet)

    def map_host(self, name: str, address: str) -> None:
        self.hosts[name.lower()] = address
        self._emit("host_mapped", name)

    def forward_port(self, address: str, port: int, to_address: str, to_port: int) -> None:
        """Send later links to ``address:port`` to ``to_address:to_port`` instead."""
        self.forward[(address, port)] = (to_address, to_port)
        self._emit("port_forwarded", (address, port))


def parse_endpoint(text: str) -> tuple[str, int]:
    """``ADDRESS:PORT`` (``[v6]:PORT`` too) to ``(address, port)``."""
    address, _, port = text.rpartition(":")
    if not address or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected ADDRESS:PORT, got {text!r}")
    return address.strip("[]"), int(port)


def _build(cls, values: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s): {', '.join(sorted(unknown))}")
    return cls(**values)


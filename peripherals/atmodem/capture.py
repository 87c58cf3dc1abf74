"""``--pcap FILE``: the modem's network side as a pcapng file that Wireshark and tshark read.

The modem's links are host sockets, mostly to 127.0.0.1 through the world's forwarding, so
a capture of the host's loopback shows nothing a firmware developer recognises. This one is
synthesised from the modem's session events instead: Ethernet II, IPv4 and TCP or UDP frames
between the modem as it is simulated (the MAC and IP of the interface a link leaves by,
``modem.interfaces.route()``, taken when the link opens; ``0.0.0.0`` and a zero MAC while no
interface has an address) and the remote as the modem dialled it, behind a gateway whose MAC
is ``GATEWAY_MAC``. Addresses that are not IPv4 literals (an IPv6 address from the world's
map) are mapped, deterministically, into 198.18.0.0/15 (RFC 2544's benchmark range), so the
same address always gets the same stand-in.

TCP is shown as a well-behaved stack would send it: the three-way handshake when a link opens
(a dial refused, by the peer or a ``refuse`` fault: SYN, then the peer's RST; one the policy
forbids or that finds no route: a SYN left unanswered); what went on the socket in segments of
at most ``MSS`` bytes, each burst acknowledged by the other side; FIN, FIN and ACK when the
modem or the peer closes; a RST when a fault resets the link (from the peer) or its route goes
away (from the modem). TLS links carry their real ciphertext, so with the key log the TLS links
write (``network.keylog``, SSLKEYLOGFILE format) Wireshark decrypts them:
``tshark -r FILE -o tls.keylog_file:KEYS``. DNS lookups of names (a literal never leaves the
stack) become a query and its answer over UDP to the modem's DNS server
(``modem.interfaces.dns[0]``, else the gateway); datagrams (SNTP) become UDP frames.

Timestamps are the wall clock at each event; records go to the file as they come, so a
capture is readable up to the last event even after a crash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import dpkt

from atmodem.net import TCP_WINDOW

# A locally administered address: the gateway's, for every frame to or from the remote side.
GATEWAY_MAC = bytes.fromhex("02a70d000001")
# Ethernet's payload less the IPv4 and TCP headers: the chip's and a typical server's segment.
MSS = 1460
# The stand-in range for remotes that are not IPv4 literals (RFC 2544 benchmarking, 198.18.0.0/15).
STAND_INS = ipaddress.IPv4Network("198.18.0.0/15")
# lwIP's local ports start here; DNS queries and failed dials (which report none) use them.
EPHEMERAL = 0xC000
PEER_WINDOW = 65535
DNS_PORT = 53
DNS_TTL = 300

_MASK = 0xFFFFFFFF
_SNAPLEN = 65535
_ACK, _SYN, _FIN, _RST, _PSH = dpkt.tcp.TH_ACK, dpkt.tcp.TH_SYN, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, dpkt.tcp.TH_PUSH
_MSS_OPTION = bytes((dpkt.tcp.TCP_OPT_MSS, 4)) + MSS.to_bytes(2, "big")


def ipv4(address: str) -> bytes:
    """The four bytes shown for ``address``: itself if an IPv4 literal, else its stand-in."""
    try:
        return ipaddress.IPv4Address(address).packed
    except ValueError:
        offset = int.from_bytes(hashlib.sha256(address.encode()).digest()[:4], "big") % STAND_INS.num_addresses
        return (STAND_INS.network_address + offset).packed


@dataclass
class Endpoint:
    """One end of a conversation: where it is and, for TCP, the next sequence number it sends."""
    mac: bytes
    ip: bytes
    port: int
    seq: int
    window: int


def _queryable(name: str) -> bool:
    """Whether a lookup of ``name`` puts a query on the air: lwIP answers a literal itself and
    refuses a name that DNS cannot carry (an empty label, one over 63 bytes, over 253 in all)."""
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        encoded = name.encode()
        return len(encoded) <= 253 and all(0 < len(label) <= 63 for label in encoded.split(b"."))


def _ephemeral(serial: int) -> int:
    return EPHEMERAL + serial % 0x4000


def _initial_sequence(flow: int, side: str) -> int:
    # Stable per flow, so two captures of the same session compare equal apart from times.
    return int.from_bytes(hashlib.sha256(f"{flow}/{side}".encode()).digest()[:4], "big")


class PacketCapture:
    """A modem observer (``modem.observers.append(capture)``) writing a pcapng file."""

    def __init__(self, path: Path, modem) -> None:
        self.modem = modem
        self._file = open(path, "wb")
        self._writer = dpkt.pcapng.Writer(self._file, snaplen=_SNAPLEN)
        self._file.flush()
        self._flows: dict[int, tuple[Endpoint, Endpoint]] = {}   # flow: (modem side, peer side)
        self._ip_ids = itertools.count(1)
        self._queries = itertools.count(1)
        self._last_time = 0.0

    def __call__(self, kind: str, details: dict) -> None:
        if self._file.closed:
            return  # a link closed at power-off, after the session's capture ended
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(details)
            self._file.flush()

    def close(self) -> None:
        self._file.close()

    # ------------------------------------------------------------- events

    def _on_connect(self, details: dict) -> None:
        flow = details["flow"]
        modem, peer = self._open(flow, details["remote"], details.get("local_port") or _ephemeral(flow))
        self._segment(modem, peer, _SYN, options=_MSS_OPTION)
        if details["ok"]:
            self._segment(peer, modem, _SYN | _ACK, options=_MSS_OPTION)
            self._segment(modem, peer, _ACK)
            return
        del self._flows[flow]
        if details.get("reason") in ("refused", "fault"):   # a fault at dial time is a ``refuse``
            peer.seq = 0  # a RST answering a SYN carries no sequence number of its own
            self._segment(peer, modem, _RST | _ACK)

    def _on_accept(self, details: dict) -> None:
        modem, peer = self._open(details["flow"], details["remote"], details["local_port"])
        self._segment(peer, modem, _SYN, options=_MSS_OPTION)
        self._segment(modem, peer, _SYN | _ACK, options=_MSS_OPTION)
        self._segment(peer, modem, _ACK)

    def _on_wire(self, details: dict) -> None:
        data = details["data"]
        if details["flow"] not in self._flows or not data:
            return
        modem, peer = self._flows[details["flow"]]
        sender, receiver = (modem, peer) if details["direction"] == "out" else (peer, modem)
        for start in range(0, len(data), MSS):
            last = start + MSS >= len(data)
            self._segment(sender, receiver, _ACK | (_PSH if last else 0), data[start:start + MSS])
        self._segment(receiver, sender, _ACK)

    def _on_close(self, details: dict) -> None:
        if details["flow"] not in self._flows:
            return
        modem, peer = self._flows.pop(details["flow"])
        by = details["by"]
        if by in ("modem", "peer"):
            closer, other = (modem, peer) if by == "modem" else (peer, modem)
            self._segment(closer, other, _FIN | _ACK)
            self._segment(other, closer, _FIN | _ACK)
            self._segment(closer, other, _ACK)
        else:
            resetter, other = (peer, modem) if by == "fault" else (modem, peer)
            self._segment(resetter, other, _RST | _ACK)

    def _on_datagram(self, details: dict) -> None:
        modem = self._modem_side(details["local_port"])
        peer = self._peer_side(*details["remote"])
        sender, receiver = (modem, peer) if details["direction"] == "out" else (peer, modem)
        self._datagram(sender, receiver, details["data"])

    def _on_dns(self, details: dict) -> None:
        name, address = details["name"].removesuffix("."), details["address"]
        if not _queryable(name):
            return
        query_id = next(self._queries)
        modem = self._modem_side(_ephemeral(query_id))
        server = self._peer_side(self._dns_server(), DNS_PORT)
        question = dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN)
        query = dpkt.dns.DNS(id=query_id, qd=[question])
        query.rd = 1
        self._datagram(modem, server, bytes(query))
        reply = dpkt.dns.DNS(id=query_id, qd=[question])
        reply.qr, reply.rd, reply.ra = dpkt.dns.DNS_R, 1, 1
        if address is None:
            reply.rcode = dpkt.dns.DNS_RCODE_NXDOMAIN
        else:
            reply.an = [dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_A, cls=dpkt.dns.DNS_IN, ttl=DNS_TTL,
                                        rdata=ipv4(address))]
        self._datagram(server, modem, bytes(reply))

    # ------------------------------------------------------------- addresses

    def _route(self):
        name = self.modem.interfaces.route()
        return getattr(self.modem.interfaces, name) if name else None

    def _modem_side(self, port: int) -> Endpoint:
        interface = self._route()
        mac, ip = (interface.mac, interface.ip.packed) if interface is not None else (bytes(6), bytes(4))
        return Endpoint(mac, ip, port, 0, TCP_WINDOW)

    def _peer_side(self, address: str, port: int) -> Endpoint:
        return Endpoint(GATEWAY_MAC, ipv4(address), port, 0, PEER_WINDOW)

    def _dns_server(self) -> str:
        servers = self.modem.interfaces.dns
        if servers:
            return str(servers[0])
        interface = self._route()
        return str(interface.gateway) if interface is not None else "0.0.0.0"

    def _open(self, flow: int, remote, local_port: int) -> tuple[Endpoint, Endpoint]:
        modem, peer = self._modem_side(local_port), self._peer_side(*remote)
        modem.seq, peer.seq = _initial_sequence(flow, "modem"), _initial_sequence(flow, "peer")
        self._flows[flow] = (modem, peer)
        return modem, peer

    # ------------------------------------------------------------- frames

    def _segment(self, sender: Endpoint, receiver: Endpoint, flags: int, data: bytes = b"",
                 options: bytes = b"") -> None:
        """One TCP segment; every one but the first SYN acknowledges all the receiver sent."""
        segment = dpkt.tcp.TCP(sport=sender.port, dport=receiver.port, seq=sender.seq,
                               ack=receiver.seq if flags & _ACK else 0, flags=flags, win=sender.window,
                               opts=options, data=data)
        segment.off = 5 + len(options) // 4
        sender.seq = (sender.seq + len(data) + (1 if flags & (_SYN | _FIN) else 0)) & _MASK
        self._frame(sender, receiver, dpkt.ip.IP_PROTO_TCP, segment)

    def _datagram(self, sender: Endpoint, receiver: Endpoint, data: bytes) -> None:
        datagram = dpkt.udp.UDP(sport=sender.port, dport=receiver.port, ulen=8 + len(data), data=data)
        self._frame(sender, receiver, dpkt.ip.IP_PROTO_UDP, datagram)

    def _frame(self, sender: Endpoint, receiver: Endpoint, protocol: int, payload: dpkt.Packet) -> None:
        packet = dpkt.ip.IP(src=sender.ip, dst=receiver.ip, p=protocol, id=next(self._ip_ids) & 0xFFFF,
                            data=payload)
        frame = dpkt.ethernet.Ethernet(src=sender.mac, dst=receiver.mac, type=dpkt.ethernet.ETH_TYPE_IP,
                                       data=packet)
        # Strictly increasing, so the frames of one event keep their order in any viewer.
        self._last_time = max(time.time(), self._last_time + 1e-6)
        self._writer.writepkt_time(bytes(frame), self._last_time)

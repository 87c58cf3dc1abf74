"""AT+CIPSSLMFLN: does a server accept the max_fragment_length extension?

Like BearSSL's ``probeMaxFragmentLength``: a bare TLS 1.2 ClientHello carrying the
extension, and a look at the ServerHello's extensions. No handshake is completed.
"""

from __future__ import annotations

import os
import struct
from typing import Optional

MFLN_CODES = {512: 1, 1024: 2, 2048: 3, 4096: 4}
_SUITES = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009C, 0x002F)
_GROUPS = (0x001D, 0x0017, 0x0018)
_SIGNATURES = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0201)


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _u16_list(values) -> bytes:
    data = b"".join(struct.pack("!H", v) for v in values)
    return struct.pack("!H", len(data)) + data


def client_hello(host: str, size: int) -> bytes:
    extensions = b""
    if host and not host.replace(".", "").isdigit():
        name = host.encode("latin-1")  # the host string as typed, as BearSSL sends it
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        extensions += _extension(0, struct.pack("!H", len(entry)) + entry)
    extensions += _extension(1, bytes([MFLN_CODES[size]]))
    extensions += _extension(10, _u16_list(_GROUPS))
    extensions += _extension(11, b"\x01\x00")
    extensions += _extension(13, _u16_list(_SIGNATURES))
    extensions += _extension(0xFF01, b"\x00")
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + _u16_list(_SUITES) + b"\x01\x00"
            + struct.pack("!H", len(extensions)) + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def server_accepts(data: bytes) -> Optional[bool]:
    """True/False once ``data`` holds the server's first answer; None while it is incomplete."""
    if len(data) < 5:
        return None
    kind, length = data[0], struct.unpack("!H", data[3:5])[0]
    if kind != 0x16:
        return False  # an alert, or not TLS at all
    if len(data) < 5 + length:
        return None
    message = data[5:5 + length]
    if len(message) < 4 or message[0] != 0x02:
        return False
    try:
        position = 4 + 2 + 32
        position += 1 + message[position]          # session id
        position += 2 + 1                          # cipher suite, compression
        if position + 2 > len(message):
            return False                           # no extensions at all
        end = min(len(message), position + 2 + struct.unpack("!H", message[position:position + 2])[0])
        position += 2
        while position + 4 <= end:
            kind, size = struct.unpack("!HH", message[position:position + 4])
            if kind == 1:
                return True
            position += 4 + size
    except (IndexError, struct.error):
        return False
    return False

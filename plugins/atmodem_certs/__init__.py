"""CA certificates of ESP_ATMod (spec §8.4, §4 step 5, §6.4 CIPSSLCERTMAX).

Certificates live in RAM; at boot every ``*.pem`` in the state directory's ``certs/``
folder (the chip's LittleFS) is loaded, with the firmware's boot messages for files it
cannot take. ``AT+CIPSSLCERT`` uploads one more through the firmware's byte filter; a
failed parse leaves the chip stuck in upload mode (§8.4 ⚠, §16.4). The name shown for a
certificate is its issuer's Common Name by the firmware's narrow rule (§16.9).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography import x509

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.params import Params
from atmodem.responses import ERROR, OK, OK_LINE
from atmodem.state import EEPROM

NAMESPACE = "certs"
FOLDER = "certs"
SIZE_LIMIT = 4096
END_MARKER = b"-----END CERTIFICATE-----"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
_ALLOWED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=- \\")

MAX_CERTS = Setting(NAMESPACE, "max", default=5, region=EEPROM)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Certificate:
    der: bytes
    name: bytes

    @property
    def pem(self) -> str:
        body = base64.encodebytes(self.der).decode("ascii")
        return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def parse_one(text: bytes) -> Optional[Certificate]:
    """The certificate of a PEM text holding exactly one, else None (BearSSL's X509List rule)."""
    blocks = _PEM.findall(text)
    if len(blocks) != 1:
        return None
    try:
        der = base64.b64decode(re.sub(rb"\s", b"", blocks[0]), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        return None
    return Certificate(der, issuer_name(cert))


def issuer_name(cert: x509.Certificate) -> bytes:
    """The issuer CN as ESP_ATMod finds it, or ``cert ok`` (spec §8.4, §16.9)."""
    if cert.version is not x509.Version.v3:
        return b"cert ok"
    name = cert.issuer.public_bytes()
    if len(name) < 2 or name[0] != 0x30 or name[1] == 0x81 or name[1] > 0x81:
        return b"cert ok"  # only short-form lengths (below 128 bytes) are walked
    position, end = 2, 2 + name[1]
    while position + 2 <= end and name[position] == 0x31:  # SET: one name component
        set_end = position + 2 + name[position + 1]
        attribute = name[position + 2:set_end]  # its first attribute only
        # SEQUENCE { OID 2.5.4.3, PrintableString }
        if attribute[:7] == b"\x30" + attribute[1:2] + b"\x06\x03\x55\x04\x03" and attribute[7:8] == b"\x13":
            length = attribute[8]
            return bytes(attribute[9:9 + length])
        position = set_end
    return b"cert ok"


class CertStore:
    """The loaded certificates of one boot."""

    def __init__(self, modem):
        self.modem = modem
        self.certs: list[Certificate] = []

    def folder(self) -> Optional[Path]:
        flash = self.modem.settings.flash.path
        return flash.parent / FOLDER if flash is not None else None

    def load_folder(self) -> None:
        """Boot: every file of LittleFS's root, with the firmware's messages (spec §4 step 5)."""
        folder = self.folder()
        if folder is None or not folder.is_dir():
            return
        limit = self.modem.settings.get(MAX_CERTS)
        for path in sorted(folder.iterdir()):
            name = path.name
            if name == ".gitkeep" or not path.is_file():
                continue
            if len(self.certs) >= limit:  # for every remaining file, .pem or not (spec §16.10)
                self._boot_error(f"Could not load {name}. Reached the maximum of {limit} certificates")
                continue
            if not name.endswith(".pem"):
                self._boot_error(f"{name} is not a .pem file")
                continue
            data = path.read_bytes()
            if not data:
                self._boot_error(f"{name} is empty")
                continue
            cert = parse_one(data)
            if cert is None:
                # On the chip this also ends setup early, without 'ready' (spec §4). The model
                # carries on; a fault-injection plugin is the place for the early end.
                self._boot_error(f"Failed to add {name} to the certificates list")
            elif cert in self.certs:
                self.modem.write(b"\nTried to load already existing certificate\r\n" + ERROR)
            else:
                self.certs.append(cert)

    def _boot_error(self, text: str) -> None:
        self.modem.write(b"\n" + text.encode("latin-1") + ERROR)


def store(modem) -> CertStore:
    return modem.runtime_of(NAMESPACE, CertStore)


def certificates(modem) -> list[Certificate]:
    return store(modem).certs


class Upload:
    """CERT_LOAD: the byte filter of spec §8.4."""

    def __init__(self, modem):
        self.modem = modem
        self.stored = bytearray()
        self.received = 0

    def take(self, data: bytes) -> int:
        for position, byte in enumerate(data):
            self.received += 1
            outcome = self._byte(byte)
            if outcome is None:
                continue
            reply, stuck = outcome
            self.modem.write(reply)
            if not stuck:
                self.modem.end_raw()
                return len(data)  # what already waits in the UART is dropped
            # stuck in upload mode: the rest keeps going through the filter
        return len(data)

    def _byte(self, byte: int):
        stored = self.stored
        if byte in (0x0D, 0x0A):
            byte = 0x0A
        elif byte == 0x6E and stored.endswith(b"\\"):  # backslash-n: one LF
            del stored[-1]
            byte = 0x0A
        elif byte < 0x20 and byte != 0x00:
            return None  # other control bytes are ignored (a NUL is stored: spec §16.4)
        elif byte not in _ALLOWED and byte != 0x00:
            return ERROR, False
        if byte == 0x0A:
            if not stored or stored.endswith(b"\n"):
                return None
        stored.append(byte)
        if len(stored) >= SIZE_LIMIT:
            return ERROR, False
        if byte == 0x2D and len(stored) > 100 and stored.endswith(END_MARKER):
            return self._complete()
        return None

    def _complete(self):
        read = b"\r\nRead %d bytes\r\n" % self.received
        cert = parse_one(bytes(self.stored).split(b"\0", 1)[0])  # a NUL ends the C string (spec §16.4)
        if cert is None:
            return read + b"Loading certificate failed\r\n" + ERROR, True  # ⚠ stays in upload mode
        certs = certificates(self.modem)
        if cert in certs:
            return read + b"Tried to load already existing certificate\r\n" + ERROR, False
        certs.append(cert)
        return read + OK, False


# ---------------------------------------------------------------- AT+CIPSSLCERT


def certificate_command(modem, request):
    line = request.line
    certs = certificates(modem)
    if line == b"AT+CIPSSLCERT\r\n":
        limit = modem.settings.get(MAX_CERTS)
        if len(certs) >= limit:
            raise AtError(b"Reached the maximum of %d certificates\r\n" % limit)
        modem.start_raw(Upload(modem))
        return b"\r\nOK\r\n>"
    if line == b"AT+CIPSSLCERT?\r\n":
        if not certs:
            return b"+CIPSSLCERT:no certs loaded\r\n" + OK
        return b"".join(b"+CIPSSLCERT,%d:%s\r\n" % (i, c.name) for i, c in enumerate(certs, 1)) + OK
    if line.startswith(b"AT+CIPSSLCERT?") and len(line) in (17, 18):
        index = _index(line[14:-2])
        if index > len(certs):
            raise AtError(b"+CIPSSLCERT,%d:no certificate\r\n" % index)
        return b"+CIPSSLCERT,%d:%s\r\n" % (index, certs[index - 1].name) + OK
    if line.startswith(b"AT+CIPSSLCERT=DELETE,"):
        digits = line[21:-2]
        if not certs:
            raise AtError(b"+CIPSSLCERT:no certificates\r\n")
        index = _index(digits[:2])
        if index > len(certs):
            raise AtError(b"+CIPSSLCERT=DELETE:no certificate\r\n")
        del certs[index - 1]  # RAM only: the LittleFS file comes back at the next boot
        return b"+CIPSSLCERT,%d:deleted\r\n" % index + OK
    raise AtError()


def _index(text: bytes) -> int:
    """One or two digits, then anything (no end-of-line check: spec §16.8); 0 is an error."""
    match = re.match(rb"\d{1,2}", text)
    if not match or int(match.group()) == 0:
        raise AtError()
    return int(match.group())


# ---------------------------------------------------------------- AT+CIPSSLCERTMAX


def query_max(modem, request):
    return b"+CIPSSLCERTMAX:%d\r\n" % modem.settings.get(MAX_CERTS) + OK_LINE


def set_max(modem, request):
    # Any number, no range or end-of-line check, always saved (spec §6.4).
    modem.settings.set(MAX_CERTS, Params(request.args).number(), save=True)
    return OK


@hookimpl
def atmodem_commands(profile):
    return [
        Command("+CIPSSLCERTMAX", Match.QUERY_SET, query=query_max, set=set_max, summary="certificate limit"),
        Command("+CIPSSLCERT", Match.NO_CHECK, fallback=certificate_command, summary="CA certificates"),
    ]


@hookimpl
def atmodem_boot(modem):
    store(modem).load_folder()


@hookimpl
def atmodem_heap_used(modem):
    loaded = modem.runtime.get(NAMESPACE)
    return sum(len(c.der) for c in loaded.certs) if loaded is not None else 0

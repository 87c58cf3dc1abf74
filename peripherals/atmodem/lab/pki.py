"""Test certificates made with `cryptography`, and the lab's own certificate authority.

``issue`` makes any certificate a test needs. ``LabPki`` is the CA a host firmware is
built with: its root lives in a folder (``build/pki`` for the project's firmware) so
the firmware embeds the same root that later signs the lab servers' certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa as rsa_keys
from cryptography.x509.oid import NameOID


def utc(year, month=1, day=1) -> datetime.datetime:
    return datetime.datetime(year, month, day, tzinfo=datetime.timezone.utc)


@dataclass
class Issued:
    cert: x509.Certificate
    key: object
    chain: tuple = ()   # the certificates a server sends after this one

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def write(self, folder) -> tuple[str, str]:
        """cert chain and key files for ssl.SSLContext.load_cert_chain."""
        name = self.cert.serial_number
        chain, key = folder / f"{name}.chain.pem", folder / f"{name}.key.pem"
        chain.write_bytes(self.pem + b"".join(c.pem for c in self.chain))
        key.write_bytes(key_pem(self.key))
        return str(chain), str(key)


def issue(common_name: str, issuer: Issued | None, *, ca: bool, start, end, hosts=(),
          printable: bool = True, rsa: bool = False) -> Issued:
    key = rsa_keys.generate_private_key(65537, 2048) if rsa else ec.generate_private_key(ec.SECP256R1())
    name_attr = x509.NameAttribute(NameOID.COMMON_NAME, common_name,
                                   x509.name._ASN1Type.PrintableString if printable else x509.name._ASN1Type.UTF8String)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "atmodem tests"), name_attr])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if hosts:
        names = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    signer = issuer.key if issuer else key
    chain = (issuer, *issuer.chain) if issuer and not _is_root(issuer) else ()
    return Issued(builder.sign(signer, hashes.SHA256()), key, chain)


def _is_root(issued: Issued) -> bool:
    return issued.cert.issuer == issued.cert.subject


class LabPki:
    """A root CA kept in ``folder``, and server certificates it signs.

    With ``create`` a missing CA is made; without, a missing CA is an error, since a firmware
    built with another root would only fail later with a puzzling ``connect fail``.
    """

    def __init__(self, folder: Path, create: bool = True):
        self.folder = Path(folder)
        cert_file, key_file = self.folder / "ca.pem", self.folder / "ca.key.pem"
        if not cert_file.exists():
            if not create:
                raise FileNotFoundError(f"no lab CA in {self.folder} (make firmware creates it)")
            self._create(cert_file, key_file)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        self.root = Issued(cert, key)
        self.ca_file = cert_file

    def _create(self, cert_file: Path, key_file: Path) -> None:
        root = issue("atmodem Lab Root", None, ca=True, start=VALID_FROM, end=VALID_UNTIL)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Each file appears whole (rename), the key first: a CA certificate on disk always has its key.
        for path, data in ((key_file, key_pem(root.key)), (cert_file, root.pem)):
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            temporary.write_bytes(data)
            os.replace(temporary, path)

    def server(self, *hosts: str) -> Issued:
        """A server certificate for ``hosts`` that chains to this root."""
        return issue(hosts[0], self.root, ca=False, start=VALID_FROM, end=VALID_UNTIL - _YEAR, hosts=hosts)

    @staticmethod
    def stranger(*hosts: str) -> Issued:
        """A server certificate for ``hosts`` from a CA no firmware trusts."""
        root = issue("Someone Else Root", None, ca=True, start=VALID_FROM, end=VALID_UNTIL)
        return issue(hosts[0], root, ca=False, start=VALID_FROM, end=VALID_UNTIL - _YEAR, hosts=hosts)


def server_context(issued: Issued, folder: Path) -> ssl.SSLContext:
    """A TLS server context presenting ``issued`` and its chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*issued.write(Path(folder)))
    return context


def key_pem(key) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# Wide windows: the lab's SNTP server follows the host clock unless a test sets its time.
VALID_FROM = utc(2025)
VALID_UNTIL = utc(2045)
_YEAR = datetime.timedelta(days=365)

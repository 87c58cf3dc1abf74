"""A test PKI made with `cryptography`: root, intermediate and leaves with fixed validity
windows, so certificate checks at the modem's (SNTP) clock are deterministic."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

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
        key.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
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


class Pki:
    """Everything the TLS tests need, valid around the modem epoch 2026-06-01."""

    def __init__(self):
        self.root = issue("atmodem Test Root", None, ca=True, start=utc(2025), end=utc(2035))
        self.intermediate = issue("atmodem Test Intermediate", self.root, ca=True, start=utc(2025), end=utc(2034))
        hosts = ("tls.test", "127.0.0.1")
        self.leaf = issue("tls.test", self.intermediate, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)
        self.expired = issue("tls.test", self.intermediate, ca=False, start=utc(2020), end=utc(2021), hosts=hosts)
        self.future = issue("tls.test", self.intermediate, ca=False, start=utc(2030), end=utc(2031), hosts=hosts)
        self.wrong_host = issue("other.test", self.intermediate, ca=False, start=utc(2026), end=utc(2027),
                                hosts=("other.test",))
        self.other_root = issue("Someone Else Root", None, ca=True, start=utc(2025), end=utc(2035))
        self.unknown_ca = issue("tls.test", self.other_root, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)
        self.self_signed = issue("tls.test", None, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)

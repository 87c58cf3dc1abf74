"""TLS of ESP_ATMod (spec §6.4, §8): secure links with real TLS, authentication,
the receive buffer and max-fragment-length, and the heap they cost.

A secure link is an ``ssl.SSLObject`` over two ``MemoryBIO``s on top of the TCP
``Link``, so the model sees every record: a server that ignores MFLN and sends a
record larger than a reduced buffer breaks the link as on the chip. TLS 1.2 at most
(BearSSL has no 1.3); the SNI and the name checked in mode 2 are the AT+CIPSTART host
string; mode 2 verifies the chain against the loaded certificates as trust anchors at
the *modem's* clock (SNTP), not the host's.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from atmodem import AtError, Command, Form, Match, Setting, hookimpl
from atmodem.net import Link
from atmodem.params import Params
from atmodem.responses import OK
from atmodem_basic import CPU_FREQ, free_heap
from atmodem_certs import certificates
from atmodem_sntp import modem_time
from atmodem_tls import openssl, probe

NAMESPACE = "tls"
SIZES = (512, 1024, 2048, 4096, 16384)
BOOT_DEFAULT = 16384
RECORD_OVERHEAD = 325        # BearSSL's receive buffer holds a record plus this (spec §8.5)
_ALERT_RECORD, _FATAL = 21, 2  # TLS content type "alert", alert level "fatal" (RFC 5246 §7.2)

# None until AT+CIPSSLSIZE was used this boot: the full 16384 bytes. An explicit 16384 is
# stored as 0, which the TLS library clamps to its 512-byte minimum (spec §6.3 ⚠).
BUFFER_SIZE = Setting(NAMESPACE, "buffer_size", default=None)
AUTH_MODE = Setting(NAMESPACE, "auth_mode", default=0)
FINGERPRINT = Setting(NAMESPACE, "fingerprint", default=None)   # 40 lower-case hex digits

# The heap model (spec §8.5): about 40 KB free when idle; one link at the full buffer fits,
# five at 512 do. Per link: receive buffer + record overhead + transmit buffer + contexts;
# once: the crypto stack allocated at the first TLS use.
TX_BUFFER = 597
CONTEXTS = 4096
CRYPTO_STACK = 6144
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME, which the ssl module has no name for.
NO_CHECK_TIME = 0x200000

log = logging.getLogger(__name__)


def receive_buffer(modem) -> int:
    """The receive buffer a new TLS link gets, in bytes."""
    value = modem.settings.get(BUFFER_SIZE)
    if value is None:
        return BOOT_DEFAULT
    return value or 512


def link_cost(buffer: int) -> int:
    return buffer + RECORD_OVERHEAD + TX_BUFFER + CONTEXTS


class TlsState:
    """What TLS holds on the heap during one boot."""

    def __init__(self, modem):
        self.modem = modem
        self.used_once = False
        self.links: list["TlsLink"] = []
        self.probes: set = set()   # AT+CIPSSLMFLN connections and attempts in progress

    def shutdown(self) -> None:
        """A reset: links still in their handshake belong to no slot yet; close them here."""
        for link in self.links:
            link.close()
        for work in list(self.probes):
            work.cancel()
        self.probes.clear()

    def live(self) -> list["TlsLink"]:
        self.links = [link for link in self.links if not link.closed]
        return self.links

    def add(self, link: "TlsLink") -> None:
        # Pruned here too: a dialect without AT+SYSRAM never asks for heap() in a long run.
        self.live().append(link)
        self.used_once = True

    def heap(self) -> int:
        return (CRYPTO_STACK if self.used_once else 0) + sum(link_cost(link.buffer) for link in self.live())


def tls_state(modem) -> TlsState:
    return modem.runtime_of(NAMESPACE, TlsState)


class TlsLink(Link):
    """A TLS client connection over a TCP link."""

    kind = "SSL"

    def __init__(self, network, sock, remote, *, context: ssl.SSLContext, host: str, buffer: int,
                 fingerprint: Optional[str], session: Optional[ssl.SSLSession] = None):
        self.context = context
        self.buffer = buffer
        self.fingerprint = fingerprint
        self.mfln = False
        self.handshaken = False
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        if network.keylog is not None:
            context.keylog_filename = str(network.keylog)
        try:
            self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host, session=session)
        except ValueError:
            if context.check_hostname:
                raise  # mode 2 cannot check a name OpenSSL will not take: connect fail
            # The chip passes any host string on; OpenSSL refuses some (IDNA): go without SNI.
            self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=None, session=session)
        self._established: Optional[Callable[[bool], None]] = None
        self._header = bytearray()     # the next record header, as it arrives
        self._record_left = 0          # bytes of the current record still to come
        self._plain = collections.deque()  # sizes of the decrypted records waiting in the inbox
        self._fault_after_handshake = None  # a network fault counts application bytes: armed once up
        super().__init__(network, sock, remote)

    # The chip's client offers one decrypted record at a time (spec §7.2: a TLS +IPD is at
    # most one record), so "available" is what is left of the first record.

    @property
    def available(self) -> int:
        return self._plain[0] if self._plain else 0

    def read(self, size: int) -> bytes:
        size = min(size, self.available)
        if size:
            self._plain[0] -= size
            if not self._plain[0]:
                self._plain.popleft()
        return super().read(size)

    # ---------------------------------------------------------------- handshake

    def establish(self, done: Callable[[bool], None]) -> None:
        self._established = done
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            log.info("TLS handshake with %s failed: %s", self.remote, exc)
            self._flush()
            self._report_handshake(str(getattr(exc, "verify_message", "") or exc))
            self._conclude(False)
            return
        self._flush()
        self.handshaken = True
        self.mfln = openssl.negotiated_mfln(self.tls, self.context)
        if self.fingerprint is not None:
            leaf = self.tls.getpeercert(binary_form=True) or b""
            if hashlib.sha1(leaf).hexdigest() != self.fingerprint:
                log.info("TLS fingerprint of %s does not match", self.remote)
                self._report_handshake("certificate fingerprint does not match")
                self._conclude(False)
                return
        self._report_handshake(None)
        if self._fault_after_handshake is not None:
            super().arm_fault(self._fault_after_handshake)
            self._fault_after_handshake = None
        self._conclude(True)
        self._decrypt()

    def _report_handshake(self, error: Optional[str]) -> None:
        cipher = self.tls.cipher()
        details = dict(flow=self.flow, ok=error is None, version=self.tls.version(),
                       cipher=cipher[0] if cipher else None, server_name=self.tls.server_hostname,
                       verified=error is None and (self.context.verify_mode != ssl.CERT_NONE
                                                   or self.fingerprint is not None),
                       resumed=self.tls.session_reused)
        if error is not None:
            details["error"] = error
        self.network.report("tls", **details)

    def arm_fault(self, fault) -> None:
        if fault.kind == "tls_alert" or self.handshaken:
            super().arm_fault(fault)
        else:
            self._fault_after_handshake = fault

    def _conclude(self, ok: bool) -> None:
        done, self._established = self._established, None
        if done is not None:
            done(ok)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and not self.closed:
            self._outbox += data
            self._writable()

    # ---------------------------------------------------------------- records in

    def _received(self, data: bytes) -> None:
        if not self._records_fit(data):
            log.info("TLS record from %s larger than the %d-byte buffer: link broken", self.remote, self.buffer)
            self.break_off()
            self._conclude(False)
            return
        self._incoming.write(data)
        if not self.handshaken:
            if self._established is not None:
                self._handshake()
        else:
            self._decrypt()

    def _records_fit(self, data: bytes) -> bool:
        """Walk the record headers: without MFLN, a record beyond the buffer cannot be received."""
        position = 0
        while position < len(data):
            if self._record_left:
                step = min(self._record_left, len(data) - position)
                self._record_left -= step
                position += step
                continue
            need = 5 - len(self._header)
            self._header += data[position:position + need]
            position += need
            if len(self._header) == 5:
                length = int.from_bytes(self._header[3:5], "big")
                self._header.clear()
                self._record_left = length
                if length > self.buffer + RECORD_OVERHEAD:
                    return False
        return True

    def _decrypt(self) -> None:
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                self._peer_gone()
                return
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS link to %s broke: %s", self.remote, exc)
                self._peer_gone()
                return
            if not chunk:
                self._peer_gone()
                return
            if self._tripwire is not None:
                self._approach_fault(chunk)
                if self.peer_closed:
                    return  # reset or truncated: the records after it never arrive
            elif self._held is not None:
                self._held.append(chunk)  # stalled: delivered when the stall ends
            else:
                self._take(chunk)

    def _take(self, data: bytes) -> None:
        self.inbox += data
        self._plain.append(len(data))

    def receive_alert(self, description: int) -> None:
        """A fatal alert record from the server (an injected fault): OpenSSL fails on it exactly as
        on a real one. In the handshake it is plaintext, as a server sends it there."""
        self._incoming.write(bytes((_ALERT_RECORD, 3, 3, 0, 2, _FATAL, description)))
        if self.handshaken:
            self._decrypt()
        else:
            self._handshake()

    def _peer_gone(self) -> None:
        self.peer_closed = True
        self._pause_reading()
        self.ended("peer")

    def _eof(self, by: str = "peer") -> None:
        super()._eof(by)
        self._conclude(False)  # a peer that leaves mid-handshake

    # ---------------------------------------------------------------- records out

    def _transmitted(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self._outgoing.read()

    def close_notify(self) -> None:
        """Say goodbye the TLS way before ``close()``: a server drops a session from its cache
        when a connection ends without close_notify, and resuming it needs it kept."""
        if self.handshaken and not self.closed and not self.peer_closed:
            try:
                self.tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError, OSError):
                pass  # our close_notify is written either way; the peer's is not awaited
            self._flush()


class SecureLinks:
    """The ``atmodem_link_type`` answer for ``"SSL"``."""

    def check(self, modem) -> None:
        mode = modem.settings.get(AUTH_MODE)
        if (mode == 1 and modem.settings.get(FINGERPRINT) is None) or (mode == 2 and not certificates(modem)):
            raise AtError()  # the requirement went away since AT+CIPSSLAUTH (spec §8.2)

    def delay(self, modem) -> float:
        fast = modem.settings.get(CPU_FREQ) == 160  # AT+SYSCPUFREQ=160 nearly halves the handshake
        return (modem.timing.handshake_fast if fast else modem.timing.handshake) * modem.world.tls_time_scale

    def verification(self, modem, index: int) -> "Verification":
        """What link ``index`` checks: ESP_ATMod's AT+CIPSSLAUTH, the same for every link."""
        mode = modem.settings.get(AUTH_MODE)
        if mode == 2:
            return Verification(trusted="".join(c.pem for c in certificates(modem)))
        return Verification(fingerprint=modem.settings.get(FINGERPRINT) if mode == 1 else None)

    def factory(self, modem, host: str, index: int):
        buffer = receive_buffer(modem)
        checks = self.verification(modem, index)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.maximum_version = ssl.TLSVersion.TLSv1_2   # BearSSL: TLS 1.0-1.2
        if checks.trusted:
            context.load_verify_locations(cadata=checks.trusted)
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # every loaded cert is a trust anchor
            if not checks.check_dates:
                context.verify_flags |= NO_CHECK_TIME
            elif not openssl.set_verify_time(context, int(modem_time(modem))):
                log.warning("verifying at the host's clock: OpenSSL extensions unavailable")
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        unusable: Optional[OSError] = None
        if checks.client is not None:
            try:
                load_client_identity(context, *checks.client)
            except OSError as exc:  # the chip stores anything; the handshake is where it fails
                unusable = exc
        if buffer < BOOT_DEFAULT:
            openssl.request_mfln(context, buffer)
        tls = tls_state(modem)

        def make(network, sock, remote):
            if unusable is not None:
                raise unusable
            if link_cost(buffer) + (0 if tls.used_once else CRYPTO_STACK) > free_heap(modem):
                log.info("TLS link to %s does not fit in the heap", remote)
                raise OSError("out of heap for TLS buffers")
            link = TlsLink(network, sock, remote, context=context, host=host, buffer=buffer,
                           fingerprint=checks.fingerprint)
            tls.add(link)
            return link

        return make


@dataclass(frozen=True)
class Verification:
    """What a secure link checks and shows: CA certificates to trust (PEM text; none: the server
    is not verified), whether their validity dates count, a leaf fingerprint to match, and a
    client certificate and key (PEM) to present when the server asks for one."""

    trusted: str = ""
    fingerprint: Optional[bytes] = None
    client: Optional[tuple[bytes, bytes]] = None
    check_dates: bool = True   # False: a chip without a clock, whose TLS stack skips validity dates


def load_client_identity(context: ssl.SSLContext, certificate: bytes, key: bytes) -> None:
    """Present ``certificate`` and ``key`` (PEM) when a server asks; OSError if they are unusable."""
    # The ssl module reads a certificate chain only from files; they live as long as this call.
    with tempfile.TemporaryDirectory(prefix="atmodem-client-") as folder:
        cert_file, key_file = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert_file.write_bytes(certificate)
        key_file.write_bytes(key)
        try:
            context.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, ValueError) as exc:
            raise OSError(f"unusable client certificate or key: {exc}") from None


def as_pem(value: Optional[bytes]) -> str:
    """A certificate as stored (PEM text, or DER bytes) as PEM text; "" if there is none."""
    if not value:
        return ""
    if value.lstrip().startswith(b"-----BEGIN"):
        return value.decode("latin-1")
    return ssl.DER_cert_to_PEM_cert(value)


def pem_key(value: bytes) -> bytes:
    """A private key as stored (PEM, or PKCS#8/traditional DER) as PEM; ValueError if it is neither."""
    if value.lstrip().startswith(b"-----BEGIN"):
        return value
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    try:
        key = serialization.load_der_private_key(value, password=None)
    except (TypeError, UnsupportedAlgorithm) as exc:   # encrypted, or a key type OpenSSL lacks
        raise ValueError(f"unusable private key: {exc}") from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# ---------------------------------------------------------------- AT+CIPSSLSIZE


def set_buffer_size(modem, request):
    size = Params(request.args).single_number()
    if size not in SIZES:
        raise AtError()
    modem.settings.set(BUFFER_SIZE, 0 if size == BOOT_DEFAULT else size)
    return OK


# ---------------------------------------------------------------- AT+CIPSSLAUTH


def query_auth(modem, request):
    return b"+CIPSSLAUTH:%d\r\n" % modem.settings.get(AUTH_MODE) + OK


def set_auth(modem, request):
    mode = Params(request.args).single_number()
    if mode > 2:
        raise AtError()
    if mode == 1 and modem.settings.get(FINGERPRINT) is None:
        raise AtError(b"fp not valid\r\n")
    if mode == 2 and not certificates(modem):
        raise AtError(b"CA cert not loaded\r\n")
    modem.settings.set(AUTH_MODE, mode)
    return OK


# ---------------------------------------------------------------- AT+CIPSSLFP


def query_fingerprint(modem, request):
    value = modem.settings.get(FINGERPRINT)
    if value is None:
        raise AtError(b"not valid\r\n")
    pairs = ":".join(value[i:i + 2] for i in range(0, 40, 2))
    return b'+CIPSSLFP:"%s"\r\n' % pairs.encode() + OK


def set_fingerprint(modem, request):
    # The firmware checks the whole line's length: 56 bytes for 40 digits, 75 with colons.
    line = len(request.line)
    text = request.args
    if line == 56 and len(text) == 42 and text[:1] == b'"' and text[-1:] == b'"':
        digits = text[1:-1]
    elif line == 75 and len(text) == 61 and text[:1] == b'"' and text[-1:] == b'"':
        body = text[1:-1]
        if any(body[i] != 0x3A for i in range(2, 59, 3)):
            raise AtError()
        digits = bytes(b for i, b in enumerate(body) if i % 3 != 2)
    else:
        raise AtError()
    try:
        value = bytes.fromhex(digits.decode("ascii")).hex()
    except (ValueError, UnicodeDecodeError):
        raise AtError() from None
    if len(value) != 40:
        raise AtError()
    modem.settings.set(FINGERPRINT, value)
    return OK


# ---------------------------------------------------------------- AT+CIPSSLSTA


def query_mfln_status(modem, request):
    from atmodem_tcpip import links
    if not modem.interfaces.sta.up:
        raise AtError(b"NOT CONNECTED\r\n")
    table = links(modem)
    if request.form not in (Form.EXECUTE, Form.SET):
        raise AtError()
    if table.mux():
        if request.form is not Form.SET:
            raise AtError(b"MUX=1\r\n")
        index = Params(request.args).single_number()
        if index > 4:
            raise AtError()
    else:
        if request.form is not Form.EXECUTE:
            raise AtError(b"MUX=0\r\n")
        index = 0
    slot = table.get(index)
    if slot is None or not slot.link.connected:
        raise AtError(b"NOT OPENED\r\n")
    if not isinstance(slot.link, TlsLink):
        raise AtError(b"NOT A SSL\r\n")
    return b"+CIPSSLSTA:%d\r\n" % slot.link.mfln + OK


# ---------------------------------------------------------------- AT+CIPSSLMFLN


PROBE_TIMEOUT = 5.0


def probe_mfln(modem, request):
    args = request.args
    if request.form is not Form.SET or not args.startswith(b'"'):
        raise AtError()
    end = args.find(b'",', 1)
    if end < 0:
        raise AtError(b"HOSTNAME ERROR\r\n\r\n")
    host = args[1:end].decode("latin-1")
    p = Params(args[end + 2:])
    port = p.number()
    if port > 65535:
        raise AtError()
    try:
        p.comma()
        size = p.single_number()
    except AtError:
        raise AtError(b"SIZE ERROR\r\n\r\n") from None
    if size not in probe.MFLN_CODES:
        raise AtError(b"SIZE ERROR\r\n\r\n")
    if not modem.interfaces.sta.up or modem.interfaces.eth.up:
        raise AtError(b"NO AP\r\n")  # ⚠ the firmware's inverted Ethernet test (spec §11)
    operation = modem.block()
    started = modem.clock.now()
    least = modem.timing.mfln_probe * modem.world.tls_time_scale
    answer = bytearray()
    state = {"link": None, "timer": None, "answered": False, "attempt": None}
    probes = tls_state(modem).probes

    def finish(accepted: bool) -> None:
        if state["answered"]:
            return
        state["answered"] = True
        if state["timer"] is not None:
            state["timer"].cancel()
        for work in (state["link"], state["attempt"]):
            if work is not None:
                probes.discard(work)
                work.cancel()
        if not operation.done:
            reply = b"+CIPSSLMFLN:%s\r\n" % (b"TRUE" if accepted else b"FALSE") + OK
            operation.later(max(0.0, started + least - modem.clock.now()), operation.finish, reply)

    def changed(link) -> None:
        answer.extend(link.read(link.available))
        verdict = probe.server_accepts(bytes(answer))
        if verdict is not None or link.peer_closed:
            finish(bool(verdict))

    def connected(link) -> None:
        probes.discard(state["attempt"])
        state["attempt"] = None
        if link is not None and state["answered"]:
            link.close()  # too late: the answer is given
            return
        if link is None:
            finish(False)
            return
        state["link"] = link
        probes.add(link)
        link.on_change = changed
        link.send(probe.client_hello(host, size), lambda ok: ok or finish(False))

    def resolved(address) -> None:
        if state["answered"]:
            return
        if address is None:
            finish(False)  # unreachable counts as FALSE
        else:
            state["attempt"] = modem.network.connect(address, port, connected)
            if state["attempt"] is not None:
                probes.add(state["attempt"])

    state["timer"] = modem.clock.call_later(PROBE_TIMEOUT, finish, False)
    if modem.network is None:
        finish(False)
    else:
        modem.network.resolve(host, resolved)
    return operation


# ---------------------------------------------------------------- hooks


@hookimpl
def atmodem_commands(profile):
    return [
        Command("+CIPSSLSIZE", Match.QUERY_SET, set=set_buffer_size, summary="TLS receive buffer size"),
        Command("+CIPSSLAUTH", Match.QUERY_SET, query=query_auth, set=set_auth, summary="TLS authentication mode"),
        Command("+CIPSSLFP", Match.QUERY_SET, query=query_fingerprint, set=set_fingerprint,
                summary="server certificate SHA-1"),
        Command("+CIPSSLSTA", Match.NO_CHECK, fallback=query_mfln_status, summary="MFLN accepted on a link"),
        Command("+CIPSSLMFLN", Match.QUERY_SET, set=probe_mfln, summary="probe a server for MFLN"),
    ]


@hookimpl
def atmodem_link_type(modem, kind):
    return SecureLinks() if kind == b"SSL" else None



@hookimpl
def atmodem_heap_used(modem):
    tls = modem.runtime.get(NAMESPACE)
    return tls.heap() if tls is not None else 0

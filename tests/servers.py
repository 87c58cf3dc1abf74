"""Real servers on 127.0.0.1 for network tests: SNTP with a settable clock, TLS with a test PKI."""

from __future__ import annotations

import socket
import struct
import threading

NTP_TO_UNIX = 2208988800


class SntpServer:
    """Answers SNTP requests with ``self.time`` (Unix seconds), whatever the host's clock says."""

    def __init__(self, when: float):
        self.time = when
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, client = self.sock.recvfrom(512)
            except OSError:
                return
            if len(data) < 48 or data[0] & 0x07 != 3:
                continue
            self.requests += 1
            seconds = self.time + NTP_TO_UNIX
            stamp = struct.pack("!II", int(seconds), int((seconds % 1) * 2**32))
            reply = bytes([0x24, 2, 6, 0xEC]) + bytes(20) + data[40:48] + stamp + stamp
            try:
                self.sock.sendto(reply, client)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


class TlsServer:
    """A TLS echo server on 127.0.0.1 presenting ``issued`` (and its chain).

    Every connection first receives ``greeting`` (if any), then gets back what it sends.
    ``handshakes`` counts completed handshakes, ``failures`` the failed ones.
    """

    def __init__(self, issued, folder, greeting: bytes = b"", context=None):
        import ssl
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*issued.write(folder))
        self.context = context
        self.greeting = greeting
        self.handshakes = 0
        self.failures = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        import ssl
        conn.settimeout(10)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.failures += 1
            conn.close()
            return
        self.handshakes += 1
        try:
            if self.greeting:
                tls.sendall(self.greeting)
            while data := tls.recv(65536):
                tls.sendall(data)
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()

    def close(self) -> None:
        self.listener.close()


class TlsliteServer:
    """A TLS server without max-fragment-length support (tlslite-ng ignores the extension).

    Sends ``greeting`` in one record after the handshake, then echoes.
    """

    def __init__(self, issued, greeting: bytes = b""):
        from tlslite.api import X509, X509CertChain, parsePEMKey
        from cryptography.hazmat.primitives import serialization
        chain = [X509().parse(c.pem.decode()) for c in (issued, *issued.chain)]
        self.chain = X509CertChain(chain)
        key_pem = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode()
        self.key = parsePEMKey(key_pem, private=True)
        self.greeting = greeting
        self.handshakes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        from tlslite.api import TLSConnection
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(10)
            tls = TLSConnection(conn)
            try:
                tls.handshakeServer(certChain=self.chain, privateKey=self.key)
                self.handshakes += 1
                if self.greeting:
                    tls.write(self.greeting)
                while data := tls.read():
                    tls.write(data)
            except Exception:  # tlslite raises its own hierarchy; the modem's side is what is tested
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.listener.close()

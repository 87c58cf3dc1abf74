"""A TLS server without max-fragment-length support, for the MFLN tests (the lab's servers
are in ``atmodem.lab``)."""

from __future__ import annotations

import socket
import threading


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

"""A TLS server without max-fragment-length support, for the MFLN tests (the lab's servers
are in ``atmodem.lab``)."""

from __future__ import annotations

from tlslite.api import X509, TLSConnection, TLSError, X509CertChain, parsePEMKey

from atmodem.lab import EchoServer
from atmodem.lab.pki import key_pem


class TlsliteServer(EchoServer):
    """The lab's echo server over tlslite-ng, which ignores the max-fragment-length extension.

    Sends ``greeting`` in one record after the handshake, then echoes.
    """

    peer_errors = (OSError, TLSError)

    def __init__(self, issued, greeting: bytes = b""):
        self.chain = X509CertChain([X509().parse(c.pem.decode()) for c in (issued, *issued.chain)])
        self.key = parsePEMKey(key_pem(issued.key).decode(), private=True)
        super().__init__(greeting=greeting)

    def _secure(self, conn):
        tls = TLSConnection(conn)
        try:
            tls.handshakeServer(certChain=self.chain, privateKey=self.key)
        except (TLSError, OSError):
            self._count(False)
            conn.close()
            return None
        self._count(True)
        return tls

"""The little internet a host firmware expects: a web site on ports 80 and 443 and a time server.

``www.atmodem.test`` serves one page over HTTP and HTTPS (its certificate chains to the
lab root the firmware was built with, or, with ``wrong_ca``, to a root nobody trusts),
``time.atmodem.test`` answers SNTP. ``attach(world)`` points the world's DNS map and
port forwarding at these loopback servers, so an unmodified firmware finds them where
it would on a real network.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from atmodem.lab.pki import LabPki, server_context
from atmodem.lab.servers import Page, SntpServer, WebServer
from atmodem.world import World

WEB_HOST = "www.atmodem.test"
TIME_HOST = "time.atmodem.test"
PAGE = (b"Hello from the atmodem lab!\n"
        b"This page came from a server on your own machine.\n")


class Internet:
    def __init__(self, pki_folder: Path, *, wrong_ca: bool = False, page: bytes = PAGE, address: str = "127.0.0.1"):
        self.address = address
        self.pki = LabPki(pki_folder, create=False)  # the root the firmware was built with, or nothing
        issued = LabPki.stranger(WEB_HOST) if wrong_ca else self.pki.server(WEB_HOST)
        self._keys = tempfile.TemporaryDirectory(prefix="atmodem-lab-")
        pages = {"/": Page(page)}
        self.sntp = SntpServer(address=address)
        # One clock for the whole lab: a test that sets the time server's time sets the Date headers too.
        self.https = WebServer(pages, server_context(issued, Path(self._keys.name)), address=address,
                               clock=self.sntp.now)
        self.http = WebServer(pages, address=address, clock=self.sntp.now)

    def attach(self, world: World) -> None:
        """Make ``world`` lead to these servers (call it on the world's loop thread)."""
        world.map_host(WEB_HOST, self.address)
        world.map_host(TIME_HOST, self.address)
        world.forward_port(self.address, 443, self.address, self.https.port)
        world.forward_port(self.address, 80, self.address, self.http.port)
        world.sntp_port = self.sntp.port

    def close(self) -> None:
        for server in (self.https, self.http, self.sntp):
            server.close()
        self._keys.cleanup()

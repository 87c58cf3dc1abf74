"""The lab: real servers on this machine for a modem to talk to, and the certificates they use.

Everything binds to a loopback address on a free port; a world's DNS map and port
forwarding (``World.map_host``, ``World.forward_port``) send a firmware's links here.
"""

from atmodem.lab.pki import LabPki, server_context
from atmodem.lab.servers import EchoServer, Page, SntpServer, TcpServer, WebServer
from atmodem.lab.internet import Internet

__all__ = ["EchoServer", "Internet", "LabPki", "Page", "SntpServer", "TcpServer", "WebServer", "server_context"]

import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # support, probes, conversation, processes

from processes import serve  # noqa: E402,F401  (the fixture, for every test module)
from support import Peer  # noqa: E402


@pytest.fixture
def peer():
    """A TCP server on 127.0.0.1 the test drives by hand."""
    server = Peer()
    yield server
    server.close()

EXAMPLE_PLUGIN = Path(__file__).parent.parent / "docs" / "example_plugin"


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory):
    """The 'atmodem-hello' distribution (docs/example_plugin), installed by pip into a directory of
    its own (``site``); its source tree, with its tests, is copied beside it (``site.parent / "src"``)."""
    root = tmp_path_factory.mktemp("hello")
    source = shutil.copytree(EXAMPLE_PLUGIN, root / "src",
                             ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
        check=True,
    )
    return site


@pytest.fixture
def hello_installed(hello_site, monkeypatch):
    """The hello plugin visible to this process, as if pip had installed it into the environment."""
    from atmodem.plugins import rescan

    monkeypatch.syspath_prepend(str(hello_site))
    rescan()
    yield hello_site
    monkeypatch.undo()
    sys.modules.pop("atmodem_hello", None)
    rescan()


def cli_env(extra_path=None):
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def mutual(tmp_path):
    """A TLS echo server on 127.0.0.1 that requires a client certificate from the lab CA; the lab
    PKI, a client certificate it issued, and an SNTP server for the modem's clock."""
    from atmodem.lab import EchoServer, LabPki, SntpServer, server_context
    from atmodem.lab.pki import VALID_FROM, VALID_UNTIL, issue
    pki = LabPki(tmp_path / "pki")
    context = server_context(pki.server("tls.test"), tmp_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(pki.ca_file))
    server = EchoServer(context, greeting=b"hello")
    client = issue("atmodem client", pki.root, ca=False, start=VALID_FROM, end=VALID_UNTIL)
    sntp = SntpServer()
    yield pki, server, client, sntp
    server.close()
    sntp.close()

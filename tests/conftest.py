import os
import ssl
import subprocess
import sys
import textwrap
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

HELLO_PLUGIN = '''
"""A third-party plugin: one new command, and its own AT+GMR."""
from atmodem import Command, Match, hookimpl
from atmodem.params import Params
from atmodem.responses import OK, OK_LINE


def hello(modem, request):
    return b"+HELLO:" + Params(request.args).string(32) + b"\\r\\n" + OK


def version(modem, request):
    return b"AT version:1.7.0.0 (hello)\\r\\n" + OK_LINE


@hookimpl
def atmodem_commands(profile):
    return [
        Command("+HELLO", Match.QUERY_SET, set=hello, summary="greets"),
        Command("+GMR", Match.EXACT, execute=version, summary="version, the hello way"),
    ]
'''


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory):
    """The 'atmodem-hello' distribution, installed by pip into a directory of its own."""
    root = tmp_path_factory.mktemp("hello")
    source = root / "src"
    (source / "atmodem_hello").mkdir(parents=True)
    (source / "atmodem_hello" / "__init__.py").write_text(HELLO_PLUGIN)
    (source / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=70.1"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "atmodem-hello"
        version = "1.2.3"

        [project.entry-points."atmodem.plugins"]
        hello = "atmodem_hello"

        [tool.setuptools]
        packages = ["atmodem_hello"]
    """))
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

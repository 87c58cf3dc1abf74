"""The generated documentation: docs/build.py's libdoc page and plugin guide, and the example plugin it shows."""

import html
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from robot.libdocpkg import LibraryDocumentation

from atmodem import hookspecs
from conftest import cli_env
from conversation import ERR, OK
from support import Harness

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "example_plugin"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The documentation as `make docs` builds it."""
    out = tmp_path_factory.mktemp("docs")
    subprocess.run([sys.executable, str(DOCS / "build.py"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def guide(built):
    return (built / "plugin-guide.html").read_text(encoding="utf-8")


def hooks():
    return [(name, spec) for name, spec in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("atmodem_")]


def words(text: str) -> str:
    """Text as the page reads: reST literals unmarked, white space folded."""
    return " ".join(text.replace("``", "").split())


def test_libdoc_documents_every_keyword_with_its_arguments(built):
    page = (built / "AtModemLibrary.html").read_text(encoding="utf-8")
    library = LibraryDocumentation("AtModemLibrary")
    assert library.keywords
    for keyword in library.keywords:
        assert f'"name": {json.dumps(keyword.name)}' in page, keyword.name
        for argument in keyword.args:
            assert f'"repr": {json.dumps(str(argument))}' in page, (keyword.name, str(argument))


def test_the_guide_documents_every_hook_with_its_signature_flags_and_docstring(guide):
    for name, spec in hooks():
        params = ", ".join(inspect.signature(spec).parameters)
        section = guide[guide.index(f'<div class="hook" id="{name}">'):]
        section = section[:section.index("</div>")]
        assert f"<h3><code>{name}({params})</code></h3>" in section, name
        firstresult = getattr(spec, "atmodem_spec")["firstresult"]
        assert ('<span class="flag">firstresult</span>' in section) == firstresult, name
        shown = words(html.unescape(re.sub(r"<[^>]+>", "", section)))
        for text in re.split(r":(?:param \w+|returns?):", inspect.getdoc(spec)):
            for paragraph in text.split("\n\n"):
                assert words(paragraph) in shown, (name, paragraph)


def test_the_guide_shows_the_example_plugin_source(guide):
    sources = [EXAMPLE / "pyproject.toml", *EXAMPLE.rglob("*.py")]
    assert EXAMPLE / "tests" / "test_hello.py" in sources
    for path in sources:
        assert html.escape(path.read_text(encoding="utf-8")) in guide, path


def test_the_guide_is_the_same_for_the_same_sources(guide):
    build = load(DOCS / "build.py", "docs_build")
    assert build.plugin_guide() == guide


def test_the_example_plugin_works():
    h = Harness(extra=[("hello", load(EXAMPLE / "atmodem_hello" / "__init__.py", "atmodem_hello_example"))])
    h.send(b"ATE0\r\n")
    assert h.send(b'AT+HELLO="Ada"\r\n') == b"+HELLO:Ada\r\n" + OK
    assert h.send(b'AT+HELLO=""\r\n') == b"NAME ERROR\r\n" + ERR
    assert h.send(b'AT+HELLO="Ada",1\r\n') == ERR
    assert h.send(b"AT+HELLO?\r\n") == b"+HELLO:Ada\r\n" + OK
    assert h.send(b"AT+GMR\r\n") == b"AT version:1.7.0.0 (hello)\r\nOK\r\n"
    assert h.send(b"AT+RST\r\n").endswith(b"ready\r\n")
    h.send(b"ATE0\r\n")
    assert h.send(b"AT+HELLO?\r\n") == b"+HELLO:\r\n" + OK  # a RAM setting: the reset forgot it


def test_the_example_plugins_own_tests_pass_through_its_entry_point(hello_site):
    source, site = hello_site.parent / "src", hello_site
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=source,
                            env=cli_env(site), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout

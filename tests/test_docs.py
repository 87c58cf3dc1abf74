"""The README's plugin example runs, and every hook is in its table."""

import inspect
import re
import types
from pathlib import Path

from atmodem import hookspecs
from conversation import ERR, OK
from support import Harness

README = (Path(__file__).parent.parent / "README.md").read_text()


def readme_plugin():
    source = re.search(r"```python\n(# atmodem_hello/__init__.py\n.*?)```", README, re.S).group(1)
    module = types.ModuleType("atmodem_hello_readme")
    exec(compile(source, "README.md", "exec"), module.__dict__)
    return module


def test_the_plugin_example_works():
    h = Harness(extra=[("hello", readme_plugin())])
    h.send(b"ATE0\r\n")
    assert h.send(b'AT+HELLO="Ada"\r\n') == b"+HELLO:Ada\r\n" + OK
    assert h.send(b'AT+HELLO=""\r\n') == b"NAME ERROR\r\n" + ERR
    assert h.send(b'AT+HELLO="Ada",1\r\n') == ERR
    assert h.send(b"AT+GMR\r\n") == b"AT version:1.7.0.0 (hello)\r\nOK\r\n"


def test_every_hook_is_documented_with_its_signature():
    for name, spec in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("atmodem_"):
            params = ", ".join(inspect.signature(spec).parameters)
            assert f"`{name}({params})`" in README, name

"""Runs every Robot Framework suite in robot/suites with real `robot`, one pytest test per suite.

The suites need the emulators and the project's firmware (`make test` builds them first).
Where they are missing a suite is skipped with the reason, except in CI, where that is a failure.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from atmodem.emulators import BUILD, EmulatorError, machines

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "robot" / "suites").glob("*.robot"))


def _missing(suite: Path) -> list[str]:
    """What the machines a suite names need and this machine lacks."""
    missing = []
    text = suite.read_text()
    for name, found in machines().items():
        if name not in text:
            continue
        try:
            found.command(found.firmware, 1)
        except EmulatorError as exc:
            missing.append(str(exc))
    return missing


@pytest.mark.timeout(900)
@pytest.mark.parametrize("suite", SUITES, ids=lambda path: path.stem)
def test_suite(suite):
    missing = _missing(suite)
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    out = BUILD / "robot" / suite.stem
    result = subprocess.run([sys.executable, "-m", "robot", "--outputdir", str(out), "--consolecolors", "off",
                             "--consolewidth", "100", str(suite)], capture_output=True, text=True)
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert result.returncode == 0, f"{suite.name} failed; log: {out / 'log.html'}\n{result.stdout[-3000:]}"
    output = ElementTree.parse(out / "output.xml")
    stats = output.find("statistics/total/stat")
    assert int(stats.get("fail")) == 0
    if int(stats.get("pass")) == 0 and int(stats.get("skip")) > 0:
        reasons = [status.text for status in output.iter("status") if status.get("status") == "SKIP" and status.text]
        pytest.skip(f"{suite.name}: {reasons[0] if reasons else 'skipped'}")
    assert int(stats.get("pass")) >= 1

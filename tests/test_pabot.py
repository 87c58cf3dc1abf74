"""Two Robot Framework suites at once under pabot, the standard parallel executor: nothing they use
(modem ports, lab servers, state folders, output files) is shared, so both pass side by side.

Each suite gets its own robot process and output folder; ``--no-pabotlib`` leaves out pabot's
lock server (which listens on a fixed port, 8270) since no suite needs a lock, and the run
happens in its own folder, where pabot keeps its ``.pabotsuitenames``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult

from test_robot_suites import _missing

ROOT = Path(__file__).resolve().parents[1]
# One QEMU suite and one simavr suite: different emulators, both with the lab and a modem each.
SUITES = [ROOT / "robot" / "suites" / name for name in ("stm32_wrong_ca.robot", "arduino_http.robot")]


def pabot(folder: Path, *arguments) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pabot.pabot", "--no-pabotlib",
               "--command", sys.executable, "-m", "robot", "--end-command",
               "--outputdir", str(folder / "out"), "--consolecolors", "off", *map(str, arguments)]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=240)


@pytest.mark.timeout(300)
def test_two_suites_pass_side_by_side(tmp_path):
    missing = [reason for suite in SUITES for reason in _missing(suite)]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    result = pabot(tmp_path, "--processes", "2", *SUITES)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    suites = ExecutionResult(str(tmp_path / "out" / "output.xml")).suite.suites
    assert sorted(suite.source.name for suite in suites) == sorted(suite.name for suite in SUITES)
    for suite in suites:
        assert suite.status == "PASS" and suite.statistics.passed >= 2 and suite.statistics.failed == 0, suite.name
    first, second = suites
    assert first.start_time < second.end_time and second.start_time < first.end_time, \
        "the suites ran one after the other, not side by side"
    for index in range(2):  # each robot process wrote its own output
        assert (tmp_path / "out" / "pabot_results" / str(index) / "output.xml").is_file()

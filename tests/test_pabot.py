"""Robot Framework suites side by side under pabot, the standard parallel executor: nothing they use
(modem ports, lab servers, state folders, output files) is shared, so they pass together.

Each suite (or, with ``--testlevelsplit``, each test) gets its own robot process and output
folder; ``--no-pabotlib`` leaves out pabot's lock server (it listens on a fixed port, 8270)
since no suite takes a lock, and the run happens in its own folder, where pabot keeps its
``.pabotsuitenames``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult

from test_robot_suites import _missing

ROOT = Path(__file__).resolve().parents[1]
# faults.robot needs no emulator; the other two need QEMU and simavr with the project's firmware.
SUITES = [ROOT / "robot" / "suites" / name for name in ("faults.robot", "stm32_wrong_ca.robot", "arduino_http.robot")]


def pabot(folder: Path, *arguments) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pabot.pabot", "--no-pabotlib",
               "--command", sys.executable, "-m", "robot", "--end-command",
               "--outputdir", str(folder / "out"), "--consolecolors", "off", *map(str, arguments)]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=240)


def overlapped(first, second) -> bool:
    return first.start_time < second.end_time and second.start_time < first.end_time


@pytest.mark.timeout(300)
def test_suites_pass_side_by_side(tmp_path):
    missing = {suite: _missing(suite) for suite in SUITES}
    reasons = [reason for found in missing.values() for reason in found]
    if reasons and os.environ.get("CI") == "true":
        pytest.fail("; ".join(reasons))
    runnable = [suite for suite in SUITES if not missing[suite]]
    # Without emulators one suite is left: its tests then run side by side instead.
    split = [] if len(runnable) >= 2 else ["--testlevelsplit"]
    result = pabot(tmp_path, "--processes", "2", *split, *runnable)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    run = ExecutionResult(str(tmp_path / "out" / "output.xml")).suite
    suites = list(run.suites) if len(runnable) > 1 else [run]  # one suite is the top of its own result
    assert sorted(suite.source.name for suite in suites) == sorted(suite.name for suite in runnable)
    for suite in suites:
        assert suite.status == "PASS" and suite.statistics.failed == 0 and suite.statistics.passed >= 2, suite.name
    units = list(run.all_tests) if split else suites
    assert any(overlapped(a, b) for a in units for b in units if a is not b), \
        f"nothing ran side by side: {[(unit.name, unit.start_time, unit.end_time) for unit in units]}"
    processes = [folder for folder in (tmp_path / "out" / "pabot_results").iterdir() if (folder / "output.xml").is_file()]
    assert len(processes) == (len(list(run.all_tests)) if split else len(runnable)), "one robot process, one output each"

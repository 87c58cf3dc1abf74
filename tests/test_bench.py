"""The benchmark suite's entry point runs every row end to end (tiny sizes, so it cannot rot).

Speed and memory targets are judged by ``bench/run.py`` itself, not here: this checks that
each figure is measured and sane, not how fast the machine is.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_run_measures_every_row(tmp_path):
    report = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(report)],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["figure"]: row for row in json.loads(report.read_text())["rows"]}
    for row in rows.values():
        # Resident-set growth comes in whole pages: a five-modem smoke fleet may not fill one.
        assert row["value"] > 0 or ("RSS growth" in row["figure"] and row["value"] == 0), row
        assert row["figure"] in result.stdout
    figures = " | ".join(rows)
    for expected in ("AT, echo off", "AT+GMR", "TCP host→modem", "TCP modem→host, active", "TCP modem→host, passive",
                     "TLS host→modem", "TLS modem→host, active", "TLS modem→host, passive", "TLS AT+CIPSTART",
                     "idle modem", "TLS link, RSS", "working TLS link", "time per modem"):
        assert expected in figures, f"no {expected!r} row in: {figures}"
    for name, row in rows.items():
        if name.startswith(("TCP", "TLS host", "TLS modem", "TLS AT+CIPSTART", "AT")):
            assert row["baseline"] > 0 and row["ratio"] > 0, row
    fleet = next(row for name, row in rows.items() if name.startswith("modems with a working TLS link"))
    assert fleet["value"] == 5, "every modem of the smoke fleet opened its TLS link and echoed through it"
    assert "not judged (smoke)" in result.stdout

"""atmodem's benchmark suite: every figure in one table, each next to a raw-Python baseline from the same run.

    python bench/run.py [--commands N] [--megabytes N] [--fleet N] [--json FILE] [--smoke]

Rows, and what each is measured against (details in engine.py, throughput.py and fleet.py):

* simple commands/s through the engine, against a bare Python loop answering the same lines
  with the same bytes;
* data throughput host→modem (AT+CIPSEND) and modem→host (+IPD in active mode,
  AT+CIPRECVDATA in passive mode) over real TCP and TLS links to 127.0.0.1 servers,
  against a plain socket (or ssl socket) moving the same bytes;
* the wall time of a TLS AT+CIPSTART with the modem's simulated delays at zero (the real
  handshake plus the engine's work; the spec's 1.5 s is simulated time and costs none),
  against a bare ssl handshake with the same server;
* memory per idle modem and per TLS link, as Python heap (tracemalloc) and as resident set
  growth (RSS), against bare ssl sockets;
* how many modems with one open TLS link each run in one process (up to ``--fleet``), with
  the process's RSS and the wall time per modem, against the same number of ssl sockets.

Targets are printed with each figure and whether it was met; ``--smoke`` runs every row
with tiny sizes (seconds) to show the suite works, and judges no target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import engine
import fleet
import throughput
from atmodem.engine import Timing

KB = 1024


@dataclass
class Row:
    figure: str
    value: float
    unit: str
    baseline: Optional[float] = None
    baseline_name: str = ""
    target: Optional[float] = None
    higher_is_better: bool = True
    digits: int = 1

    @property
    def ratio(self) -> Optional[float]:
        """The modem's figure divided by the baseline's."""
        return self.value / self.baseline if self.baseline else None

    @property
    def met(self) -> Optional[bool]:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


@dataclass
class Sizes:
    commands: int
    megabytes: int
    handshakes: int
    fleet: int
    traced: int


def command_rows(sizes: Sizes) -> list[Row]:
    cases = [
        ("AT, echo off", dict(line=b"AT\r\n"), engine.TARGET),
        ("AT, echo on", dict(line=b"AT\r\n", echo=True), None),
        ("AT, one byte per feed (as emulators send)", dict(line=b"AT\r\n", per_byte=True), None),
        ("AT, the spec's 1 ms command time", dict(line=b"AT\r\n", timing=Timing()), None),
        ("AT+UART_CUR?", dict(line=b"AT+UART_CUR?\r\n"), None),
        ("AT+GMR", dict(line=b"AT+GMR\r\n"), None),
    ]
    rows = []
    for label, options, target in cases:
        rate, _ = engine.run(n=sizes.commands, **options)
        bare = engine.bare_responder(options["line"], sizes.commands)
        rows.append(Row(label, rate, "commands/s", bare, "bare Python loop", target, digits=0))
    return rows


def data_rows(sizes: Sizes) -> list[Row]:
    size = sizes.megabytes * throughput.MB
    with tempfile.TemporaryDirectory(prefix="atmodem-bench-") as folder:
        tls = throughput.tls_server_context(Path(folder))  # loaded: the files may go
    cases = [
        ("TCP host→modem, AT+CIPSEND=2048", throughput.upload, throughput.baseline_upload, None),
        ("TCP modem→host, active +IPD", throughput.download_active, throughput.baseline_download, None),
        ("TCP modem→host, passive AT+CIPRECVDATA=2048", throughput.download_passive, throughput.baseline_download, None),
        ("TLS host→modem, AT+CIPSEND=2048", throughput.upload, throughput.baseline_upload, tls),
        ("TLS modem→host, active +IPD", throughput.download_active, throughput.baseline_download, tls),
        ("TLS modem→host, passive AT+CIPRECVDATA=2048", throughput.download_passive, throughput.baseline_download, tls),
    ]
    rows = []
    for label, modem, plain, context in cases:
        target = throughput.TARGET_TLS_MB_S if context else throughput.TARGET_MB_S
        # A plain socket moves the bytes in tens of milliseconds, so its figure is the best of three.
        baseline = max(plain(size, context) for _ in range(3))
        rows.append(Row(label, modem(size, context), "MB/s", baseline, "ssl socket" if context else "socket", target))
    modem_ms, plain_ms = throughput.handshakes(sizes.handshakes, tls)
    rows.append(Row("TLS AT+CIPSTART, wall time (real handshake)", modem_ms, "ms", plain_ms, "ssl handshake",
                    higher_is_better=False, digits=2))
    return rows


def fleet_rows(sizes: Sizes) -> list[Row]:
    with (tempfile.TemporaryDirectory(prefix="atmodem-bench-") as folder,
          fleet.EchoProcess(Path(folder), sizes.fleet) as server):
        traced = fleet.measure("modems", server.port, sizes.traced, traced=True)
        traced_sockets = fleet.measure("sockets", server.port, sizes.traced, traced=True)
        modems = fleet.measure("modems", server.port, sizes.fleet, traced=False)
        sockets = fleet.measure("sockets", server.port, sizes.fleet, traced=False)
    if modems["error"]:
        print(f"the fleet stopped: {modems['error']}", file=sys.stderr)
    working = min(modems["linked"], modems["echoed"])
    per_traced, per_fleet = max(traced["linked"], 1), max(modems["linked"], 1)
    return [
        Row("idle modem, Python heap (tracemalloc)", traced["idle_heap"] / traced["modems"] / KB, "KB", higher_is_better=False),
        Row("idle modem, RSS growth", modems["idle_rss"] / modems["modems"] / KB, "KB", higher_is_better=False),
        Row("TLS link, Python heap (tracemalloc)", traced["link_heap"] / per_traced / KB, "KB",
            traced_sockets["link_heap"] / traced_sockets["linked"] / KB, "ssl socket", higher_is_better=False),
        Row("TLS link, RSS growth", modems["link_rss"] / per_fleet / KB, "KB",
            sockets["link_rss"] / sockets["linked"] / KB, "ssl socket", higher_is_better=False),
        Row(f"modems with a working TLS link, one process (of {sizes.fleet})", working, "modems",
            sockets["echoed"], "ssl sockets", 200, digits=0),
        Row(f"process RSS with {modems['linked']} modems and links", modems["rss"] / throughput.MB, "MB",
            sockets["rss"] / throughput.MB, "ssl sockets", higher_is_better=False),
        Row("time per modem: boot, join, TLS link", (modems["boot_seconds"] + modems["link_seconds"]) / per_fleet * 1000,
            "ms", sockets["link_seconds"] / sockets["linked"] * 1000, "ssl connect", higher_is_better=False, digits=2),
    ]


SECTIONS = {
    "simple commands (one modem, manual clock)": command_rows,
    "data and TLS over 127.0.0.1 (one link, {megabytes} MB each way)": data_rows,
    "memory and scale ({fleet} modems on one reactor, TLS echo server in another process)": fleet_rows,
}


def render(row: Row, smoke: bool) -> str:
    def number(value: float) -> str:
        return f"{value:,.{row.digits}f}"

    baseline = f"{number(row.baseline)} {row.baseline_name}" if row.baseline is not None else "—"
    ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
    if row.target is None:
        target = ""
    else:
        verdict = "not judged (smoke)" if smoke else ("met" if row.met else "MISSED")
        target = f"{'≥' if row.higher_is_better else '≤'} {number(row.target)}: {verdict}"
    return f"  {row.figure:<52} {number(row.value):>11} {row.unit:<11} {baseline:>28} {ratio:>6}  {target}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200_000, help="command lines per case")
    parser.add_argument("--megabytes", type=int, default=32, help="data per direction and link")
    parser.add_argument("--fleet", type=int, default=1000, help="modems to open at most, one TLS link each")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to show every row still runs")
    options = parser.parse_args()
    if options.smoke:
        sizes = Sizes(commands=2_000, megabytes=1, handshakes=3, fleet=5, traced=3)
    else:
        sizes = Sizes(options.commands, options.megabytes, handshakes=50, fleet=options.fleet, traced=100)
    print(f"{'figure':<54} {'value':>11} {'unit':<11} {'raw-Python baseline':>28} {'ratio':>6}  target")
    results = []
    for title, measure in SECTIONS.items():
        print(title.format(**asdict(sizes)))
        for row in measure(sizes):
            print(render(row, options.smoke), flush=True)
            results.append({**asdict(row), "ratio": row.ratio, "met": row.met})
    print("ratio: the modem's figure divided by the baseline's")
    if options.json:
        with open(options.json, "w") as out:
            json.dump({"sizes": asdict(sizes), "smoke": options.smoke, "rows": results}, out, indent=1)


if __name__ == "__main__":
    main()

"""Modem processes for tests: `atmodem serve ...` as a subprocess, and the `serve` fixture."""

import re
import signal
import subprocess
import sys
import time

import pytest

ANNOUNCE = re.compile(r"atmodem: (\S+) modem on (\S+)")
BOOT = 0.5  # the modem says "ready" this long after announcing itself


class Serve:
    """`atmodem serve ...` in a subprocess; stopped with Ctrl-C, which must end it cleanly."""

    def __init__(self, *args, state_dir, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atmodem", "serve", "--state-dir", str(state_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        line = self.proc.stdout.readline()
        match = ANNOUNCE.match(line)
        assert match, line + self.proc.stderr.read()
        self.profile, self.endpoint = match.groups()
        self.started = time.monotonic()

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def wait_booted(self):
        time.sleep(max(0.0, self.started + BOOT + 0.2 - time.monotonic()))

    def interrupt(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err, err
        return out


@pytest.fixture
def serve(tmp_path):
    running = []

    def start(*args, **kwargs):
        kwargs.setdefault("state_dir", tmp_path / "state")
        running.append(Serve(*args, **kwargs))
        return running[-1]

    yield start
    for s in running:
        if s.proc.poll() is None:
            assert s.interrupt().endswith("atmodem: stopped\n")

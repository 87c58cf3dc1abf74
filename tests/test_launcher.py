"""`atmodem run`: the launcher's exit codes and messages when firmware, emulator or user end a run
badly, with real QEMU and simavr where the machine has them."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from atmodem.emulators import BUILD, EmulatorError, machine
from captures import flawless, tshark

LAUNCHER = [sys.executable, "-m", "atmodem", "run"]
HTTPS_ELF = BUILD / "firmware" / "stm32" / "netduinoplus2" / "atmodem-https.elf"
UNO_ELF = BUILD / "firmware" / "arduino" / "uno" / "WebClient.ino.elf"


def needs(*files):
    missing = [str(f) for f in files if not f.is_file()]
    try:
        machine("netduinoplus2").command(HTTPS_ELF, 1)
    except EmulatorError as exc:
        missing.append(str(exc))
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"needs {', '.join(missing)} (make firmware)")


class Run:
    """`atmodem run` in a subprocess, its output read line by line."""

    def __init__(self, *args):
        self.process = subprocess.Popen([*LAUNCHER, *map(str, args)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines = []

    def read_until(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError(f"{text!r} never came; output:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        rest, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, "\n".join(self.lines) + "\n" + rest

    def emulator_pid(self) -> int:
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return int(children.split()[0])


def test_unknown_machine_and_missing_firmware_are_named(tmp_path):
    result = subprocess.run([*LAUNCHER, "--machine", "pdp11", "--firmware", "x.elf"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown machine 'pdp11'; known: b-l475e-iot01a, mega2560" in result.stderr
    result = subprocess.run([*LAUNCHER, "--machine", "uno", "--firmware", tmp_path / "none.elf"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and f"firmware {tmp_path / 'none.elf'} does not exist" in result.stderr


def test_an_emulator_killed_mid_session(tmp_path):
    needs(HTTPS_ELF)
    run = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF, "--lab", BUILD / "pki",
              "--expect", "^result: OK", "--timeout", "60")
    run.read_until("https: GET")
    qemu = run.emulator_pid()
    os.kill(qemu, signal.SIGKILL)  # the firmware's UART vanishes in the middle of AT+CIPSTART
    code, output = run.finish()
    assert code == 1
    assert "atmodem: qemu-system-arm (netduinoplus2) ended (killed by SIGKILL) before its console showed" in output
    assert "and the modem" in output.splitlines()[-1]


def test_firmware_for_another_architecture(tmp_path):
    needs(HTTPS_ELF, UNO_ELF)
    code, output = Run("--machine", "netduinoplus2", "--firmware", UNO_ELF, "--expect", "never",
                       "--timeout", "30").finish()
    assert code == 1 and "qemu: fatal:" in output  # QEMU's own words, passed on
    assert re.search(r"qemu-system-arm \(netduinoplus2\) ended \((exit code \d+|killed by SIG\w+)\) "
                     r"before its console showed 'never'", output)


def test_timeout_and_sigterm_stop_emulator_and_modem(tmp_path):
    needs(HTTPS_ELF)
    code, output = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF, "--expect", "^never$",
                       "--timeout", "2").finish()
    assert code == 1 and "atmodem: no console line matching '^never$' within 2 s" in output
    assert "atmodem: stopped qemu-system-arm (netduinoplus2)" in output

    for ending in (signal.SIGTERM, signal.SIGHUP):
        run = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF, "--lab", BUILD / "pki")
        run.read_until("modem: ready")
        qemu = run.emulator_pid()
        run.process.send_signal(ending)
        run.process.send_signal(ending)  # a second one must not cut the clean-up short
        code, output = run.finish()
        assert code == 130 and "atmodem: interrupted" in output and "Traceback" not in output
        with pytest.raises(ProcessLookupError):
            os.kill(qemu, 0)  # gone, not left behind


def test_an_emulator_dies_with_a_killed_launcher():
    needs(HTTPS_ELF)
    run = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF)
    run.read_until("modem: ready")
    qemu = run.emulator_pid()
    run.process.kill()  # no clean-up can run: the kernel ends the emulator with it
    run.process.wait()
    deadline = time.monotonic() + 10
    while _alive(qemu) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(qemu)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"  # a zombie waits for init to reap it: gone
    except FileNotFoundError:
        return False


def test_bad_patterns_and_a_fail_pattern_alone(tmp_path):
    result = subprocess.run([*LAUNCHER, "--machine", "uno", "--firmware", "x", "--expect", "("],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not a regular expression: '('" in result.stderr
    needs(UNO_ELF)
    code, output = Run("--machine", "uno", "--firmware", UNO_ELF, "--fail", "never", "--timeout", "1").finish()
    assert code == 1 and "atmodem: no console line matching 'never' within 1 s" in output


def test_the_firmware_s_failure_line_fails_the_run(tmp_path):
    needs(HTTPS_ELF)
    code, output = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF, "--lab", BUILD / "pki",
                       "--world", _world_without_the_lab_ap(tmp_path), "--expect", "^result: OK",
                       "--fail", "^wifi: join failed", "--timeout", "60").finish()
    assert code == 1 and "atmodem: the console showed 'wifi: join failed (3)' (a failure)" in output


def _world_without_the_lab_ap(tmp_path):
    path = tmp_path / "world.toml"
    path.write_text('[[access_point]]\nssid = "elsewhere"\npassword = "password1"\n')
    return path


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make setup-test-tools)")
def test_the_firmware_s_https_request_is_in_the_capture_and_the_trace(tmp_path):
    """The unmodified STM32 firmware in QEMU fetches its page over TLS; the capture, decrypted with
    the key log, shows its request as it went to the simulated internet, and the trace tells the
    handshake the firmware's CA verified."""
    needs(HTTPS_ELF)
    capture, keys, trace = tmp_path / "modem.pcapng", tmp_path / "keys.log", tmp_path / "session.trace"
    code, output = Run("--machine", "netduinoplus2", "--firmware", HTTPS_ELF, "--lab", BUILD / "pki",
                       "--expect", "^result: OK", "--timeout", "60",
                       "--pcap", capture, "--keylog", keys, "--trace", trace).finish()
    assert code == 0, output
    [[method, uri, host]] = tshark(capture, "-o", f"tls.keylog_file:{keys}", "-Y", "http.request", "-T", "fields",
                                   "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.host")
    assert (method, host) == ("GET", "www.atmodem.test") and uri.startswith("/")
    assert flawless(capture)
    printed = subprocess.run([*LAUNCHER[:-1], "trace", trace, "--command", "CIPSTART"], capture_output=True,
                             text=True, check=True).stdout
    assert re.search(r"N>M  TLS TLSv1\.2 \S+, certificate verified, SNI www\.atmodem\.test", printed), printed
    assert re.search(r'H>M  AT\+CIPSTART=.*"SSL","www\.atmodem\.test",443', printed), printed

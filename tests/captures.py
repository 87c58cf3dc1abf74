"""Reading the modem's packet captures back with a real tshark."""

import subprocess


def tshark(capture, *arguments) -> list[list[str]]:
    """One row of fields per packet tshark shows (``-T fields -e ...`` in ``arguments``)."""
    result = subprocess.run(["tshark", "-r", str(capture), "-o", "tcp.check_checksum:TRUE",
                             "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", *arguments],
                            capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


def flawless(capture) -> bool:
    """No bad checksum, and nothing tshark's TCP analysis finds odd (lost, retransmitted, out of order)."""
    return tshark(capture, "-Y", "tcp.analysis.flags || _ws.expert.severity == error") == []

"""The world: TOML loading, events, the reachability policy, and `atmodem serve --world`."""

import re
import socket
import subprocess
import sys

import pytest
import serial

from atmodem.trace import read_events
from atmodem.world import AccessPoint, World

WORLD_TOML = """
[modem]
mac = "5c:cf:7f:00:00:01"

[[access_point]]
ssid = "HomeNet"
password = "secret123"
bssid = "9c:53:22:01:02:03"
channel = 11
rssi = -61
join_delay = 1.0

[[access_point]]
ssid = "Cafe"
encryption = "open"
hidden = true

[ethernet]
present = true
plugged = false

[cellular]
addresses = { 2 = "37.176.124.199" }

[dns]
hosts = { "API.example.test" = "127.0.0.10" }

[policy]
reachable = ["127.0.0.0/8"]

[network]
latency = 0.005
forward = { "127.0.0.9:443" = "127.0.0.1:40443" }

[servers]
ports = { 333 = 0 }
"""


def test_load(tmp_path):
    path = tmp_path / "world.toml"
    path.write_text(WORLD_TOML)
    world = World.load(path)
    home, cafe = world.access_points
    assert (home.encryption, home.channel, home.rssi, home.join_delay) == ("wpa2", 11, -61, 1.0)
    assert (cafe.encryption, cafe.hidden, cafe.password) == ("open", True, "")
    assert world.ethernet.present and not world.ethernet.plugged
    assert world.lookup("api.example.test") == "127.0.0.10"
    assert world.lookup("10.1.2.3") == "10.1.2.3" and world.lookup("::1") is None  # IPv4 only
    assert world.may_reach("127.0.0.10") and not world.may_reach("192.0.2.1") and not world.may_reach("::1")
    assert world.latency == 0.005 and world.server_ports == {333: 0}
    assert world.route("127.0.0.9", 443) == ("127.0.0.1", 40443) and world.route("127.0.0.9", 80) == ("127.0.0.9", 80)
    assert world.mac_bytes == bytes.fromhex("5ccf7f000001")
    assert world.loopback_only and not World.from_dict({"policy": {"reachable": ["10.0.0.0/8"]}}).loopback_only
    assert world.cellular.coverage and (world.cellular.address(1), world.cellular.address(2)) == (
        "10.7.125.7", "37.176.124.199")


@pytest.mark.parametrize("text,message", [
    ("[weather]\nrain = true\n", "unknown world section"),
    ("[[access_point]]\nssid = 'x'\nencryption = 'wpa4'\n", "unknown encryption"),
    ("[[access_point]]\nssid = 'x'\ncolour = 'red'\n", "unknown AccessPoint key"),
    ("[[access_point]]\nssid = 'x'\njoin_outcome = 'maybe'\n", "unknown join_outcome"),
    ("[dns\n", "Expected"),
    ("[cellular]\nbars = 5\n", "unknown Cellular key"),
    ("[network]\nforward = { '127.0.0.1' = '127.0.0.1:1' }\n", "expected ADDRESS:PORT"),
])
def test_bad_worlds_are_named(tmp_path, text, message):
    path = tmp_path / "world.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        World.load(path)


def test_events_reach_subscribers():
    world = World(access_points=[AccessPoint("a", "password1")])
    seen = []
    world.subscribe(seen.append)
    world.remove_ap("a")
    world.remove_ap("a")  # already off: no event
    world.restore_ap("a")
    world.set_rssi("a", -90)
    world.unplug_cable()
    world.plug_cable()
    world.map_host("x.test", "127.0.0.2")
    world.forward_port("127.0.0.2", 80, "127.0.0.1", 8080)
    assert [e.kind for e in seen] == ["ap_removed", "ap_restored", "rssi_changed", "cable_unplugged",
                                      "cable_plugged", "host_mapped", "port_forwarded"]
    with pytest.raises(KeyError):
        world.remove_ap("nope")


def test_serve_with_a_world_reports_server_ports(serve, tmp_path):
    world, trace = tmp_path / "world.toml", tmp_path / "trace.jsonl"
    world.write_text(WORLD_TOML)
    modem = serve("--listen", "tcp:127.0.0.1:0", "--world", str(world), "--trace", str(trace))
    uart = serial.serial_for_url(f"socket://127.0.0.1:{modem.port}", timeout=3)
    modem.wait_booted()

    def command(line: bytes, end: bytes = b"OK\r\n") -> bytes:
        uart.write(line + b"\r\n")
        reply = uart.read_until(end)
        assert reply.endswith(end), reply
        return reply

    command(b"ATE0")
    assert command(b'AT+CWJAP="HomeNet","secret123"') == b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n"
    assert command(b"AT+CIPETH?").startswith(b'+CIPETH:ip:"0.0.0.0"')  # present, cable out
    command(b"AT+CIPMUX=1")
    command(b"AT+CIPSERVER=1")
    announced = modem.proc.stdout.readline()
    match = re.match(r"atmodem: modem port 333 listens on 127\.0\.0\.1:(\d+)$", announced.strip())
    assert match, announced
    with socket.create_connection(("127.0.0.1", int(match.group(1)))) as client:
        assert uart.read_until(b"0,CONNECT\r\n").endswith(b"0,CONNECT\r\n")
        client.sendall(b"hi")
        assert uart.read_until(b"hi").endswith(b"+IPD,0,2:hi")
    uart.close()
    modem.interrupt()
    events = list(read_events(trace))
    started = [e for e in events if e["event"] == "server_started"]
    assert started and started[0]["modem_port"] == 333 and started[0]["host_address"][1] == int(match.group(1))
    assert any(e["event"] == "link" and e["server_port"] == 333 for e in events)


def test_a_missing_world_file_is_named(tmp_path):
    result = subprocess.run([sys.executable, "-m", "atmodem", "serve", "--listen", "tcp:127.0.0.1:0",
                             "--world", str(tmp_path / "none.toml")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "none.toml" in result.stderr

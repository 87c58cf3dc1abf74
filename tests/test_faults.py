"""Fault injection (atmodem.faults, the faults plugin, the network's faults): every kind, in the
ESP_ATMod 0.5.0 default profile, gives the chip's documented reaction byte for byte."""

import json
import socket

import pytest

from atmodem.faults import RECENT, Fault, Faults, parse_spec
from atmodem.lab import EchoServer, server_context
from atmodem.world import Ethernet, World
from pki import Pki
from support import Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"
CONNECT_FAIL = b"connect fail\r\n" + ERR + b"CLOSED\r\n"


def joined(world=None, **options) -> Harness:
    h = Harness(world=world if world is not None else World.default(), **options)
    h.join()
    return h


@pytest.fixture
def h():
    harness = joined()
    yield harness
    harness.close()


def start(h, port: int, host: bytes = b"127.0.0.1", kind: bytes = b"TCP") -> bytes:
    return h.send(b'AT+CIPSTART="%s","%s",%d\r\n' % (kind, host, port))


def fired(h, kind: str) -> list:
    return [f.details for f in h.world.faults.have_fired(kind)]


def reports(h) -> list:
    seen = []
    h.modem.observers.append(lambda kind, details: seen.append(details) if kind == "fault" else None)
    return seen


# ------------------------------------------------------------------ the data


class TestSpecs:
    def test_one_line_spec(self):
        fault = parse_spec("kind=latency,command=AT+cipstart,seconds=2,times=1")
        assert (fault.kind, fault.command, fault.seconds, fault.times) == ("latency", "+CIPSTART", 2.0, 1)

    def test_response_takes_escapes_and_quotes(self):
        fault = parse_spec(r'kind=response,command=+GMR,response="a,b\r\n\x00"')
        assert fault.response == b"a,b\r\n\x00"
        assert parse_spec(r"kind=response,command=AT,response=\r\nbusy p...\r\n").response == b"\r\nbusy p...\r\n"

    def test_network_and_timed_specs(self):
        assert parse_spec("kind=reset,host=127.0.0.1,port=80,after_bytes=10").after_bytes == 10
        assert parse_spec("kind=drop_ap,ssid=HomeNet,at=5,seconds=3").at == 5.0
        assert parse_spec("kind=tls_alert,alert=unknown_ca").alert_code == 48
        assert parse_spec("kind=reboot,at=now").at is None

    @pytest.mark.parametrize("spec, complaint", [
        ("kind=meteor", "unknown fault kind"),
        ("kind=latency,command=AT", "needs seconds"),
        ("kind=reboot,ssid=x", "takes no ssid"),
        ("kind=drop_ap", "needs ssid"),
        ("kind=tls_alert,alert=grumpy", "unknown TLS alert"),
        ("kind=reset,colour=red", "unknown fault key"),
        ("command=AT", "needs a kind"),
        ("kind=reset,times=0", "at least 1"),
        ("kind=reset,port", "cannot read"),
    ])
    def test_bad_specs_say_what_is_wrong(self, spec, complaint):
        with pytest.raises(ValueError, match=complaint):
            parse_spec(spec)

    def test_world_toml_tables(self):
        world = World.from_dict({"fault": [{"kind": "dns_fail", "host": "api.test"},
                                           {"kind": "response", "command": "AT", "response": "\r\nHI\r\n"}]})
        kinds = [(f.kind, f.host, f.response) for f in world.faults]
        assert kinds == [("dns_fail", "api.test", None), ("response", None, b"\r\nHI\r\n")]

    def test_registry_add_clear_and_what_fired(self):
        faults = Faults()
        added = faults.add("kind=refuse,port=1")
        faults.add(kind="dns_fail")
        assert len(faults) == 2 and added.port == 1
        heard = []
        faults.take(added, 3.0, lambda kind, **details: heard.append((kind, details)), remote=("127.0.0.1", 1))
        assert heard == [("fault", {"fault": "refuse", "port": 1, "remote": ("127.0.0.1", 1)})]
        assert [(f.fault.kind, f.time) for f in faults.have_fired()] == [("refuse", 3.0)]
        faults.clear()
        assert not faults and list(faults.fired) == [] and faults.total == 0 and not faults.counts

    def test_the_registry_keeps_counts_and_only_the_latest_firings(self):
        faults = Faults()
        refuse, dns = faults.add("kind=refuse"), faults.add("kind=dns_fail")
        for time in range(2 * RECENT):
            faults.take(refuse if time % 4 else dns, float(time), lambda kind, **details: None)
        assert len(faults.fired) == RECENT and faults.total == 2 * RECENT
        assert faults.counts == {"refuse": 3 * RECENT // 2, "dns_fail": RECENT // 2}
        assert faults.fired[0].time == RECENT and faults.fired[-1].number == 2 * RECENT - 1
        assert [f.time for f in faults.since(2 * RECENT - 2)] == [2 * RECENT - 2, 2 * RECENT - 1]


# ------------------------------------------------------------------ commands


class TestCommands:
    def test_response_once_then_the_real_answer(self, h):
        seen = reports(h)
        h.world.faults.add(r"kind=response,command=AT+GMR,response=\r\nERROR\r\n,times=1")
        assert h.send(b"AT+GMR\r\n") == ERR
        assert h.send(b"AT+GMR\r\n").endswith(b"OK\r\n")
        assert seen == [{"fault": "response", "command": "+GMR", "response": "\r\nERROR\r\n", "times": 1,
                         "line": "AT+GMR\r\n"}]

    def test_response_always(self, h):
        h.world.faults.add(Fault("response", command="+CIFSR", response=b"\r\nbusy p...\r\n"))
        for _ in range(3):
            assert h.send(b"AT+CIFSR\r\n") == b"\r\nbusy p...\r\n"

    def test_latency_blocks_then_the_real_handler_runs(self, h):
        h.world.faults.add("kind=latency,command=+CIPSTATUS,seconds=2")
        h.modem.feed(b"AT+CIPSTATUS\r\n")
        assert h.advance(1.9) == b""
        h.modem.feed(b"AT\r\n")  # sent while BLOCKED: the discard rule eats up to its 'A', then it runs
        assert h.advance(0.2) == b"STATUS:2\r\n" + OK + OK

    def test_latency_on_a_command_that_completes_later(self, h):
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        h.world.faults.add(Fault("latency", command="AT+CIPSTART", seconds=3, times=1))
        h.modem.feed(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % port)
        h.clock.advance(2.9)
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()  # the handler has not run yet: nothing dialled
        h.settle()
        assert h.take() == b"CONNECT\r\n" + OK
        assert h.clock.now() >= 3.0
        server.close()


# ------------------------------------------------------------------ timed faults


class TestTimed:
    def test_drop_ap_at_a_time_and_back(self, h):
        h.world.faults.add(Fault("drop_ap", ssid="atmodem-lab", at=h.clock.now() + 5, seconds=10))
        assert h.advance(4.9) == b""
        assert h.advance(0.2) == b"WIFI DISCONNECT (200)\r\n"
        assert not h.world.access_points[0].present
        h.advance(10)
        assert h.world.access_points[0].present
        assert fired(h, "drop_ap") == [{}]

    def test_unplug_cable(self):
        h = Harness(world=World(ethernet=Ethernet(present=True)))
        assert h.advance(1) == b'+ETH_CONNECTED\r\n+ETH_GOT_IP="192.168.2.50"\r\n'
        h.world.faults.add("kind=unplug_cable,seconds=3")
        assert h.advance(0) == b"+ETH_DISCONNECTED\r\n"
        assert h.advance(3.5) == b"+ETH_CONNECTED\r\n"
        h.close()

    def test_timed_faults_from_the_world_count_from_power_on(self):
        world = World.default()
        world.faults.add("kind=reboot,at=2")
        h = Harness(world=world)
        assert h.clock.now() < 2
        assert h.send(b"ATE0\r\n") == b"ATE0\r\n" + OK
        h.pump(lambda: b"ready" in h.out)
        assert h.take() == b"\r\nready\r\n"
        assert h.send(b"AT\r\n") == b"AT\r\n" + OK  # echo is back on: a fresh boot
        assert h.advance(10) == b""  # once
        h.close()

    def test_reboot_mid_session_closes_links(self, h, peer):
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        conn = peer.accept()
        h.world.faults.add("kind=reboot")
        h.pump(lambda: b"ready" in h.out)
        assert h.take() == b"\r\nready\r\n"
        assert conn.recv(10) == b""  # the chip's reset dropped the link
        conn.close()

    def test_corrupt_state_boots_with_defaults(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        assert h.send(b"AT+CIPSSLCERTMAX=9\r\n").endswith(OK)
        assert h.send(b"AT+CWJAP=\"atmodem-lab\",\"atmodem-pass\"\r\n").endswith(OK)
        h.world.faults.add("kind=corrupt_state")
        h.pump(lambda: b"ready" in h.out)
        assert h.take().endswith(b"\r\nready\r\n")
        assert h.advance(10) == b""  # no saved network to join on its own
        assert h.send(b"AT+CIPSSLCERTMAX?\r\n") == b"AT+CIPSSLCERTMAX?\r\n+CIPSSLCERTMAX:5\r\nOK\r\n"
        with pytest.raises(ValueError):
            json.loads((tmp_path / "flash.json").read_bytes())
        h.close()

    def test_corrupt_state_without_a_state_directory(self):
        h = Harness()
        assert h.send(b"AT+CIPSSLCERTMAX=9\r\n").endswith(OK)
        h.world.faults.add("kind=corrupt_state")
        h.pump(lambda: b"ready" in h.out)
        h.take()
        assert h.send(b"AT+CIPSSLCERTMAX?\r\n").endswith(b"+CIPSSLCERTMAX:5\r\nOK\r\n")
        h.close()

    def test_reboot_does_not_wait_for_the_running_command(self, h):
        h.world.faults.add("kind=latency,command=+CIPSTATUS,seconds=5,times=1")
        h.modem.feed(b"AT+CIPSTATUS\r\n")
        h.advance(1)
        h.world.faults.add("kind=reboot")
        added = h.clock.now()
        h.pump(lambda: b"ready" in h.out)
        assert h.take() == b"\r\nready\r\n"  # the blocked command died with the chip: no answer
        assert h.clock.now() - added <= h.modem.timing.reset + 0.01
        assert b"STATUS" not in h.advance(5)

    def test_corrupt_state_cannot_be_undone_by_the_running_command(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.world.faults.add("kind=latency,command=+CIPSSLCERTMAX,seconds=2,times=1")
        h.modem.feed(b"AT+CIPSSLCERTMAX=9\r\n")
        h.advance(1)
        h.world.faults.add("kind=corrupt_state")
        h.pump(lambda: b"ready" in h.out)
        h.take()
        h.advance(2)  # when the command would have saved
        with pytest.raises(ValueError):
            json.loads((tmp_path / "flash.json").read_bytes())
        assert h.send(b"AT+CIPSSLCERTMAX?\r\n").endswith(b"+CIPSSLCERTMAX:5\r\nOK\r\n")
        h.close()

    def test_at_counts_from_each_modems_own_power_on(self):
        world = World.default()
        world.faults.add(r"kind=response,command=AT+GMR,response=\r\nERROR\r\n,at=30")
        first = Harness(world=world)
        first.advance(31)
        assert first.send(b"AT+GMR\r\n").endswith(ERR)
        second = Harness(world=world)  # powered on just now: 30 s to go for it
        assert second.send(b"AT+GMR\r\n").endswith(b"OK\r\n")
        second.advance(30)
        assert second.send(b"AT+GMR\r\n").endswith(ERR)
        first.close()
        second.close()

    def test_a_power_cycle_starts_the_count_again(self):
        world = World.default()
        world.faults.add(r"kind=response,command=AT+GMR,response=\r\nERROR\r\n,at=30")
        world.faults.add("kind=reboot,at=40")
        h = Harness(world=world)
        h.advance(31)
        h.modem.power_off()
        h.modem.power_on()
        powered_on = h.clock.now()
        h.pump(lambda: b"ready" in h.out)
        assert h.take() == b"\r\nready\r\n"
        assert h.send(b"AT+GMR\r\n").endswith(b"OK\r\n")
        assert h.advance(powered_on + 39.9 - h.clock.now()) == b""  # the first power-on's reboot at 40 is not this one's
        h.pump(lambda: b"ready" in h.out)  # this one's, at 40 from its power-on
        assert h.clock.now() >= powered_on + 40
        h.close()

    def test_a_command_fault_live_only_from_its_time(self, h):
        h.world.faults.add(r"kind=response,command=AT,response=\r\nERROR\r\n,at=%f" % (h.clock.now() + 3))
        assert h.send(b"AT\r\n") == OK
        h.advance(3)
        assert h.send(b"AT\r\n") == ERR


# ------------------------------------------------------------------ network faults


class TestNetwork:
    def test_dns_fail(self, h):
        h.world.map_host("api.test", "127.0.0.1")
        h.world.faults.add("kind=dns_fail,host=api.test")
        assert h.send(b'AT+CIPDOMAIN="api.test"\r\n') == b"DNS Fail\r\n" + ERR
        assert start(h, 80, b"api.test") == b"DNS Fail\r\n" + ERR + b"CLOSED\r\n"
        assert h.send(b'AT+CIPDOMAIN="localhost"\r\n') == b"+CIPDOMAIN:127.0.0.1\r\n" + OK
        assert fired(h, "dns_fail") == [{"name": "api.test"}, {"name": "api.test"}]

    def test_refuse(self, h, peer):
        h.world.faults.add(f"kind=refuse,port={peer.port},times=1")
        assert start(h, peer.port) == CONNECT_FAIL
        assert start(h, peer.port) == b"CONNECT\r\n" + OK

    def test_reset_at_once(self, h, peer):
        h.world.faults.add(f"kind=reset,host=localhost,port={peer.port}")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK + b"CLOSED\r\n"
        conn = peer.accept()
        with pytest.raises(ConnectionResetError):
            conn.recv(10)  # the server sees the reset too
        conn.close()

    def test_reset_after_bytes_mux1(self, h, peer):
        assert h.send(b"AT+CIPMUX=1\r\n") == OK
        h.world.faults.add(f"kind=reset,port={peer.port},after_bytes=5")
        assert h.send(b'AT+CIPSTART=2,"TCP","127.0.0.1",%d\r\n' % peer.port) == b"2,CONNECT\r\n" + OK
        conn = peer.accept()
        conn.sendall(b"helloworld")
        assert h.wait_for(b"2,CLOSED\r\n") == b"\r\n+IPD,2,5:hello2,CLOSED\r\n"
        conn.close()

    def test_truncate(self, h, peer):
        h.world.faults.add(f"kind=truncate,port={peer.port},after_bytes=3")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        conn = peer.accept()
        conn.sendall(b"abcdef")
        assert h.wait_for(b"CLOSED\r\n") == b"\r\n+IPD,3:abcCLOSED\r\n"
        assert conn.recv(10) == b""  # a FIN, not a reset
        conn.close()

    def test_times_counts_across_links_armed_at_once(self, h, peer):
        assert h.send(b"AT+CIPMUX=1\r\n") == OK
        fault = h.world.faults.add(f"kind=reset,port={peer.port},after_bytes=5,times=1")
        for link in (0, 1):
            assert h.send(b'AT+CIPSTART=%d,"TCP","127.0.0.1",%d\r\n' % (link, peer.port)).endswith(OK)
        conns = [peer.accept() for _ in range(2)]
        conns[0].sendall(b"helloworld")
        assert h.wait_for(b"0,CLOSED\r\n") == b"\r\n+IPD,0,5:hello0,CLOSED\r\n"
        conns[1].sendall(b"helloworld")
        assert h.wait_for(b"helloworld") == b"\r\n+IPD,1,10:helloworld"
        assert h.advance(1) == b"" and fault.fired == 1 and h.world.faults.counts["reset"] == 1
        for conn in conns:
            conn.close()

    def test_a_removed_fault_leaves_the_links_it_was_armed_on(self, h, peer):
        fault = h.world.faults.add(f"kind=truncate,port={peer.port},after_bytes=3")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        conn = peer.accept()
        h.world.faults.remove(fault)
        conn.sendall(b"abcdef")
        assert h.wait_for(b"abcdef") == b"\r\n+IPD,6:abcdef"
        assert h.advance(1) == b"" and fired(h, "truncate") == []
        conn.close()

    def test_stall_delivers_everything_late(self, h, peer):
        h.world.faults.add(f"kind=stall,port={peer.port},after_bytes=2,seconds=4")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        conn = peer.accept()
        conn.sendall(b"abcdef")
        assert h.wait_for(b"ab") == b"\r\n+IPD,2:ab"
        conn.sendall(b"gh")
        assert h.advance(3.9) == b""
        assert h.advance(0.2) == b"\r\n+IPD,6:cdefgh"  # what waited in the socket, none lost
        conn.close()

    def test_without_the_faults_plugin_network_faults_still_stall_and_are_reported(self, peer):
        h = joined(disabled=("faults",))
        seen = []
        h.modem.observers.append(lambda kind, details: seen.append(kind))
        h.world.faults.add(f"kind=stall,port={peer.port},after_bytes=2,seconds=4")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        conn = peer.accept()
        conn.sendall(b"abcdef")
        assert h.wait_for(b"ab") == b"\r\n+IPD,2:ab"
        assert h.advance(3.9) == b"" and h.advance(0.2) == b"\r\n+IPD,4:cdef"
        assert "fault" in seen and fired(h, "stall")
        conn.close()
        h.close()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    return server_context(Pki().leaf, tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(tls_context):
    server = EchoServer(tls_context)
    yield server
    server.close()


@pytest.fixture(scope="module")
def tls_greeter(tls_context):
    server = EchoServer(tls_context, greeting=b"helloworld")
    yield server
    server.close()


class TestTls:
    def test_alert_in_the_handshake_is_connect_fail(self, h, tls_server):
        h.world.map_host("tls.test", "127.0.0.1")
        h.world.faults.add(f"kind=tls_alert,host=tls.test,port={tls_server.port},alert=unknown_ca,times=1")
        assert start(h, tls_server.port, b"tls.test", b"SSL") == CONNECT_FAIL
        assert fired(h, "tls_alert") == [{"remote": ("127.0.0.1", tls_server.port), "link": "SSL"}]
        assert start(h, tls_server.port, b"tls.test", b"SSL") == b"CONNECT\r\n" + OK

    def test_plain_tcp_links_get_no_alert(self, h, peer):
        h.world.faults.add("kind=tls_alert")
        assert start(h, peer.port) == b"CONNECT\r\n" + OK
        assert fired(h, "tls_alert") == []

    # On a TLS link the byte counts are of decrypted data, counted from the end of the handshake.

    def test_reset_after_bytes(self, h, tls_greeter):
        h.world.faults.add(f"kind=reset,port={tls_greeter.port},after_bytes=5")
        assert start(h, tls_greeter.port, kind=b"SSL") == b"CONNECT\r\n" + OK
        assert h.wait_for(b"CLOSED\r\n") == b"\r\n+IPD,5:helloCLOSED\r\n"

    def test_truncate_at_once_comes_after_connect(self, h, tls_greeter):
        h.world.faults.add(f"kind=truncate,port={tls_greeter.port}")
        assert start(h, tls_greeter.port, kind=b"SSL") == b"CONNECT\r\n" + OK + b"CLOSED\r\n"

    def test_stall_delivers_late(self, h, tls_greeter):
        h.world.faults.add(f"kind=stall,port={tls_greeter.port},after_bytes=2,seconds=4")
        assert start(h, tls_greeter.port, kind=b"SSL") == b"CONNECT\r\n" + OK
        assert h.wait_for(b"he") == b"\r\n+IPD,2:he"
        assert h.advance(3.9) == b""
        assert h.advance(0.2) == b"\r\n+IPD,8:lloworld"

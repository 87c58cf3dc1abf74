"""TCP/IP commands byte for byte over real loopback sockets (spec §6.3, §7, §3, §16)."""

import socket

import pytest

from atmodem.world import AccessPoint, World
from support import Harness, Peer

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"


@pytest.fixture
def h():
    harness = Harness()
    harness.join()
    yield harness
    harness.close()



def start(h, peer, index=None) -> socket.socket:
    prefix = b"" if index is None else b"%d," % index
    reply = h.send(b'AT+CIPSTART=%s"TCP","127.0.0.1",%d\r\n' % (prefix, peer.port))
    assert reply == (b"CONNECT\r\n" if index is None else b"%d,CONNECT\r\n" % index) + OK
    return peer.accept()


def mux1(h):
    assert h.send(b"AT+CIPMUX=1\r\n") == OK


class TestStart:
    def test_mux0(self, h, peer):
        start(h, peer)
        assert h.send(b"AT+CIPSTATUS\r\n").startswith(b'STATUS:3\r\n+CIPSTATUS:0,"TCP","127.0.0.1",%d,' % peer.port)

    def test_mux1_and_keepalive(self, h, peer):
        mux1(h)
        assert h.send(b'AT+CIPSTART=4,"TCP","127.0.0.1",%d,10\r\n' % peer.port) == b"4,CONNECT\r\n" + OK

    def test_takes_100_ms_and_eats_input(self, h, peer):
        h.modem.feed(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port)
        h.reactor.poll(0.05)
        h.reactor.poll(0)
        h.advance(0.05)
        h.modem.feed(b"?\r\n")  # WiFiEspAT's keep-alive probe while blocked: silently dropped
        assert h.take() == b""
        assert h.advance(0.06) == b"CONNECT\r\n" + OK

    def test_forwarded_port(self, h, peer):
        # The firmware dials the address and port it was built for; the world sends the link to the test server.
        h.world.map_host("www.atmodem.test", "127.0.0.9")
        h.world.forward_port("127.0.0.9", 443, "127.0.0.1", peer.port)
        assert h.send(b'AT+CIPSTART="TCP","www.atmodem.test",443\r\n') == b"CONNECT\r\n" + OK
        peer.accept().sendall(b"hi")
        assert h.wait_for(b"hi") == b"\r\n+IPD,2:hi"
        assert h.send(b"AT+CIPSTATUS\r\n").startswith(b'STATUS:3\r\n+CIPSTATUS:0,"TCP","127.0.0.9",443,')

    def test_host_name_from_the_world(self, h, peer):
        h.world.map_host("api.example.test", "127.0.0.1")
        assert h.send(b'AT+CIPSTART="TCP","api.example.test",%d\r\n' % peer.port) == b"CONNECT\r\n" + OK

    @pytest.mark.parametrize("args,reply", [
        (b'"TCP","127.0.0.1"', b"IP ERROR\r\n\r\n" + ERR),
        (b'"TCP","127.0.0.1",', ERR + b"CLOSED\r\n"),
        (b'"TCP","127.0.0.1",65536', ERR + b"CLOSED\r\n"),
        (b'"TCP","127.0.0.1",80x', ERR + b"CLOSED\r\n"),
        (b'"TCP","127.0.0.1",80,1x', ERR + b"CLOSED\r\n"),
        (b'"TCP","127.0.0.1",80,10,"1.2.3.4"', ERR + b"CLOSED\r\n"),
        (b'"TCP","127.0.0.1",-1', ERR + b"CLOSED\r\n"),
        (b'"TCX","127.0.0.1",80', b"Link type ERROR\r\n\r\n" + ERR),
        (b'TCP,"127.0.0.1",80', b"Link type ERROR\r\n\r\n" + ERR),
        (b'?', b"Link type ERROR\r\n\r\n" + ERR),
        (b'"TCP",127.0.0.1,80', b"IP ERROR\r\n\r\n" + ERR),
        (b'"TCP","127.0 .0.1",80', b"IP ERROR\r\n\r\n" + ERR),
        (b'"TCP","127.0.0.1"80', b"IP ERROR\r\n\r\n" + ERR),
        (b'"TCP","127.0.0.1', b"IP ERROR\r\n\r\n" + ERR),
        (b'"TCP","",80', b"DNS Fail\r\n" + ERR + b"CLOSED\r\n"),
        (b'"TCP","nowhere.test",80', b"DNS Fail\r\n" + ERR + b"CLOSED\r\n"),
        (b'"UDP","127.0.0.1",80,1000,2', ERR + b"CLOSED\r\n"),
        (b'"UDP","127.0.0.1",80', ERR),
    ])
    def test_errors(self, h, args, reply):
        assert h.send(b"AT+CIPSTART=" + args + b"\r\n") == reply

    def test_no_equals(self, h):
        assert h.send(b"AT+CIPSTART\r\n") == ERR
        assert h.send(b"AT+CIPSTART?\r\n") == ERR

    def test_mux1_needs_an_id(self, h, peer):
        mux1(h)
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",80\r\n') == ERR
        assert h.send(b'AT+CIPSTART=5,"TCP","127.0.0.1",80\r\n') == ERR
        assert h.send(b'AT+CIPSTART=1"TCP","127.0.0.1",80\r\n') == ERR

    def test_refused(self, h):
        with socket.create_server(("127.0.0.1", 0)) as s:
            port = s.getsockname()[1]
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % port) == b"connect fail\r\n" + ERR + b"CLOSED\r\n"

    def test_policy_refuses_other_addresses(self, h):
        # Never dialled: the world's policy keeps the modem on this machine.
        assert h.send(b'AT+CIPSTART="TCP","192.0.2.1",80\r\n') == b"connect fail\r\n" + ERR + b"CLOSED\r\n"

    def test_closed_has_no_id_in_mux1(self, h):
        mux1(h)
        assert h.send(b'AT+CIPSTART=2,"TCP","nowhere.test",80\r\n') == b"DNS Fail\r\n" + ERR + b"CLOSED\r\n"

    def test_no_ip(self, peer):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"no ip\r\n" + ERR

    def test_softap_counts_as_ip(self, peer):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=2\r\n")
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"CONNECT\r\n" + OK

    def test_0_3_4_needs_the_station(self, peer):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=2\r\n")
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"no ip\r\n" + ERR

    def test_0_3_4_host_length(self):
        h = Harness("esp_atmod-0.3.4")
        h.join()
        assert h.send(b'AT+CIPSTART="TCP","%s",80\r\n' % (b"a" * 41)) == b"IP ERROR\r\n\r\n" + ERR

    def test_already_connected(self, h, peer):
        start(h, peer)
        assert h.send(b'AT+CIPSTART="TCP","127.0.0.1",%d\r\n' % peer.port) == b"ALREADY CONNECTED\r\n\r\n" + ERR



class TestSend:
    def test_mux0_exact(self, h, peer):
        conn = start(h, peer)
        assert h.send(b"AT+CIPSEND=5\r\n") == b"OK\r\n> "
        assert h.send(b"hello") == b"\r\nRecv 5 bytes\r\n\r\nSEND OK\r\n"
        assert peer.recv_exactly(5) == b"hello"
        assert conn

    def test_mux1_and_default_link_0(self, h, peer):
        mux1(h)
        start(h, peer, 0)
        assert h.send(b"AT+CIPSEND=0,3\r\n") == b"OK\r\n> "
        assert h.send(b"a\r\n") == b"\r\nRecv 3 bytes\r\n\r\nSEND OK\r\n"
        assert h.send(b"AT+CIPSEND=10\r\n") == b"OK\r\n> "  # ⚠ no id in mux 1 means link 0
        assert h.send(b"0123456789") == b"\r\nRecv 10 bytes\r\n\r\nSEND OK\r\n"
        assert peer.recv_exactly(13) == b"a\r\n0123456789"

    def test_data_is_raw_and_unechoed(self, peer):
        h = Harness()
        h.join()
        start(h, peer)
        h.send(b"ATE1\r\n")
        assert h.send(b"AT+CIPSEND=6\r\n") == b"AT+CIPSEND=6\r\nOK\r\n> "
        assert h.type(b"AT\r\n\x00\xff") == b"\r\nRecv 6 bytes\r\n\r\nSEND OK\r\n"
        assert peer.recv_exactly(6) == b"AT\r\n\x00\xff"

    def test_no_timeout_waiting_for_data(self, h, peer):
        start(h, peer)
        h.send(b"AT+CIPSEND=4\r\n")
        h.send(b"ab")
        assert h.advance(600) == b""
        assert h.send(b"cd") == b"\r\nRecv 4 bytes\r\n\r\nSEND OK\r\n"

    def test_length_zero_swallows_a_byte(self, h, peer):
        start(h, peer)
        assert h.send(b"AT+CIPSEND=0\r\n") == b"OK\r\n> "
        assert h.send(b"x") == b"\r\nRecv 0 bytes\r\n\r\nSEND OK\r\n"

    def test_full_buffer(self, h, peer):
        start(h, peer)
        h.send(b"AT+CIPSEND=2048\r\n")
        assert h.send(bytes(range(256)) * 8) == b"\r\nRecv 2048 bytes\r\n\r\nSEND OK\r\n"
        assert peer.recv_exactly(2048) == bytes(range(256)) * 8

    @pytest.mark.parametrize("args,reply", [
        (b"2049", b"too long\r\n" + ERR), (b"", ERR), (b"5x", ERR), (b"-1", ERR), (b"0,5", b"MUX=0\r\n" + ERR),
    ])
    def test_errors_mux0(self, h, peer, args, reply):
        start(h, peer)
        assert h.send(b"AT+CIPSEND=" + args + b"\r\n") == reply

    def test_link_checked_before_length(self, h):
        assert h.send(b"AT+CIPSEND=99999\r\n") == b"link is not valid\r\n" + ERR
        assert h.send(b"AT+CIPSEND=?\r\n") == b"link is not valid\r\n" + ERR
        assert h.send(b"AT+CIPSEND\r\n") == ERR
        assert h.send(b"AT+CIPSENDEX=5\r\n") == ERR

    def test_mux1_errors(self, h, peer):
        mux1(h)
        start(h, peer, 1)
        assert h.send(b"AT+CIPSEND=2,5\r\n") == b"link is not valid\r\n" + ERR
        assert h.send(b"AT+CIPSEND=5,5\r\n") == b"link is not valid\r\n" + ERR
        assert h.send(b"AT+CIPSEND=1,5,\r\n") == ERR

    def test_send_on_a_closed_link(self, h, peer):
        conn = start(h, peer)
        conn.close()
        assert h.wait_for(b"CLOSED\r\n") == b"CLOSED\r\n"
        assert h.send(b"AT+CIPSEND=5\r\n") == b"link is not valid\r\n" + ERR

    def test_data_before_the_prompt_is_eaten(self, h, peer):
        # Spec §1.7: sent without waiting for '>', it is in the FIFO when the command completes.
        start(h, peer)
        assert h.send(b"AT+CIPSEND=5\r\nhello") == b"OK\r\n> "
        assert h.send(b"world") == b"\r\nRecv 5 bytes\r\n\r\nSEND OK\r\n"
        assert peer.recv_exactly(5) == b"world"

    def test_link_deleted_while_collecting(self, h, peer):
        # Spec §16.2: CLOSED, then the rest of the payload goes to the command parser.
        conn = start(h, peer)
        h.send(b"AT+CIPSEND=10\r\n")
        h.send(b"abc")
        conn.close()
        assert h.wait_for(b"CLOSED\r\n") == b"CLOSED\r\n"
        assert h.send(b"AT\r\n") == OK

    def test_peer_reset_gives_send_fail(self, h, peer):
        h.send(b"AT+CIPRECVMODE=1\r\n")
        conn = start(h, peer)
        conn.sendall(b"unread")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        h.wait_for(b"+IPD,6\r\n")
        conn.close()  # RST; the link keeps its unread data, so it is still "connected"
        h.pump(lambda: h.modem.runtime["tcpip"].slots[0].link.peer_closed)
        assert h.send(b"AT+CIPSEND=3\r\n") == b"OK\r\n> "
        assert h.send(b"abc") == b"\r\nRecv 3 bytes\r\n\r\nSEND FAIL\r\n"


class TestReceive:
    def test_active_mux0(self, h, peer):
        conn = start(h, peer)
        conn.sendall(b"hello")
        assert h.wait_for(b"hello") == b"\r\n+IPD,5:hello"

    def test_active_mux1_dinfo(self, h, peer):
        mux1(h)
        assert h.send(b"AT+CIPDINFO=1\r\n") == OK
        assert h.send(b"AT+CIPDINFO?\r\n") == b"+CIPDINFO:TRUE\r\n" + OK
        conn = start(h, peer, 3)
        conn.sendall(b"hi")
        assert h.wait_for(b"hi") == b"\r\n+IPD,3,2,127.0.0.1,%d:hi" % peer.port

    def test_data_then_close_in_one_pass(self, h, peer):
        mux1(h)
        conn = start(h, peer, 0)
        conn.sendall(b"bye")
        conn.close()
        assert h.wait_for(b"CLOSED\r\n") == b"\r\n+IPD,0,3:bye0,CLOSED\r\n"

    def test_passive(self, h, peer):
        mux1(h)
        assert h.send(b"AT+CIPRECVMODE=1\r\n") == OK
        assert h.send(b"AT+CIPRECVMODE?\r\n") == b"+CIPRECVMODE:1\r\n" + OK
        conn = start(h, peer, 1)
        conn.sendall(b"0123456789")
        assert h.wait_for(b"+IPD,1,10\r\n") == b"\r\n+IPD,1,10\r\n"
        assert h.send(b"AT+CIPRECVLEN?\r\n") == b"+CIPRECVLEN:0,10,0,0,0\r\n" + OK
        assert h.send(b"AT+CIPRECVDATA=1,4\r\n") == b"\r\n+CIPRECVDATA,4:0123" + OK
        conn.sendall(b"ab")
        assert h.wait_for(b"\r\n") == b"\r\n"
        assert h.wait_for(b"\r\n") == b"+IPD,1,8\r\n"  # the total unread, not the increment
        assert h.send(b"AT+CIPRECVDATA=1,100\r\n") == b"\r\n+CIPRECVDATA,8:456789ab" + OK
        assert h.send(b"AT+CIPRECVDATA=1,100\r\n") == ERR  # nothing available

    def test_passive_closed_only_after_everything_is_read(self, h, peer):
        h.send(b"AT+CIPRECVMODE=1\r\n")
        conn = start(h, peer)
        conn.sendall(b"abc")
        conn.close()
        assert h.wait_for(b"+IPD,3\r\n") == b"\r\n+IPD,3\r\n"
        assert h.advance(10) == b""
        assert h.send(b"AT+CIPSTATUS\r\n").startswith(b"STATUS:3\r\n+CIPSTATUS:0,")  # still listed
        assert h.send(b"AT+CIPRECVDATA=2\r\n") == b"\r\n+CIPRECVDATA,2:ab" + OK
        assert h.send(b"AT+CIPRECVDATA=2\r\n") == b"\r\n+CIPRECVDATA,1:c" + OK + b"CLOSED\r\n"

    def test_recvdata_errors(self, h, peer):
        h.send(b"AT+CIPRECVMODE=1\r\n")
        assert h.send(b"AT+CIPRECVDATA=5\r\n") == b"link is not valid\r\n" + ERR
        assert h.send(b"AT+CIPRECVDATA=?\r\n") == b"link is not valid\r\n" + ERR
        start(h, peer)
        assert h.send(b"AT+CIPRECVDATA=2049\r\n") == b"too long\r\n" + ERR
        assert h.send(b"AT+CIPRECVDATA=0,5\r\n") == b"MUX=0\r\n" + ERR
        assert h.send(b"AT+CIPRECVDATA=x\r\n") == ERR
        assert h.send(b"AT+CIPRECVDATA=5\r\n") == ERR

    def test_recvdata_in_active_mode(self, h, peer):
        start(h, peer)
        assert h.send(b"AT+CIPRECVDATA=5\r\n") == ERR  # nothing available: the link stays
        assert h.send(b"AT+CIPSTATUS\r\n").startswith(b"STATUS:3\r\n+CIPSTATUS:0,")
        # Spec §16.7: with data waiting, an +IPD-style print, OK, and the link is gone without CLOSED.
        h.send(b"AT+CIPRECVMODE=1\r\n")
        peer.conn.sendall(b"abc")
        h.wait_for(b"+IPD,3\r\n")
        h.send(b"AT+CIPRECVMODE=0\r\n")
        assert h.send(b"AT+CIPRECVDATA=2\r\n") == b"\r\n+IPD,2:ab" + OK
        assert h.send(b"AT+CIPSTATUS\r\n") == b"STATUS:4\r\n" + OK
        assert h.advance(1) == b""

    def test_recvdata_length_0_reads_everything(self, h, peer):
        h.send(b"AT+CIPRECVMODE=1\r\n")
        conn = start(h, peer)
        conn.sendall(b"12345")
        h.wait_for(b"+IPD,5\r\n")
        assert h.send(b"AT+CIPRECVDATA=0\r\n") == b"\r\n+CIPRECVDATA,5:12345" + OK

    def test_back_to_active_pushes_only_news(self, h, peer):
        # Spec §7.3, last point: unread data waits until more arrives than was last reported.
        h.send(b"AT+CIPRECVMODE=1\r\n")
        conn = start(h, peer)
        conn.sendall(b"1234")
        h.wait_for(b"+IPD,4\r\n")
        assert h.send(b"AT+CIPRECVMODE=0\r\n") == OK
        assert h.advance(1) == b""
        conn.sendall(b"5")
        assert h.wait_for(b"12345") == b"\r\n+IPD,5:12345"

    def test_recvlen_forms(self, h):
        assert h.send(b"AT+CIPRECVLEN?\r\n") == b"+CIPRECVLEN:0,0,0,0,0\r\n" + OK
        assert h.send(b"AT+CIPRECVLEN=1\r\n") == b""   # ⚠ silent
        assert h.send(b"AT+CIPRECVLEN=?\r\n") == b""
        assert h.send(b"AT+CIPRECVLEN\r\n") == ERR
        assert h.send(b"AT+CIPRECVLEN?x\r\n") == ERR

    def test_window_backpressure(self, h, peer):
        h.send(b"AT+CIPRECVMODE=1\r\n")
        conn = start(h, peer)
        conn.setblocking(False)
        sent = 0
        for _ in range(200):  # fill the kernel buffers until the peer cannot send more
            try:
                sent += conn.send(b"x" * 65536)
            except BlockingIOError:
                h.advance(0.1)
                try:
                    sent += conn.send(b"x" * 65536)
                except BlockingIOError:
                    break
        h.advance(0.1)
        assert h.send(b"AT+CIPRECVLEN?\r\n").startswith(b"+CIPRECVLEN:5840,")


class TestClose:
    def test_mux0(self, h, peer):
        start(h, peer)
        assert h.send(b"AT+CIPCLOSE\r\n") == b"CLOSED\r\n" + OK
        assert peer.conn.recv(10) == b""
        assert h.send(b"AT+CIPCLOSE\r\n") == ERR
        assert h.send(b"AT+CIPCLOSE=0\r\n") == b"MUX=0\r\n" + ERR
        assert h.send(b"AT+CIPCLOSE=9\r\n") == ERR  # the range is checked first
        assert h.advance(1) == b""  # no later CLOSED

    def test_mux1(self, h, peer):
        mux1(h)
        start(h, peer, 2)
        assert h.send(b"AT+CIPCLOSE\r\n") == b"MUX=1\r\n" + ERR
        assert h.send(b"AT+CIPCLOSE=1\r\n") == b"UNLINK\r\n" + ERR
        assert h.send(b"AT+CIPCLOSE=6\r\n") == ERR
        assert h.send(b"AT+CIPCLOSE=2\r\n") == b"2,CLOSED\r\n" + OK

    def test_close_all(self, h):
        mux1(h)
        peers = [Peer() for _ in range(3)]
        for index, p in zip((4, 0, 2), peers):
            start(h, p, index)
        assert h.send(b"AT+CIPCLOSE=5\r\n") == b"0,CLOSED\r\n2,CLOSED\r\n4,CLOSED\r\n" + OK
        assert h.send(b"AT+CIPCLOSE=5\r\n") == OK
        for p in peers:
            p.close()

    def test_close_mode(self, h):
        assert h.send(b"AT+CIPCLOSEMODE=1\r\n") == OK
        assert h.send(b"AT+CIPCLOSEMODE=2\r\n") == ERR
        mux1(h)
        assert h.send(b"AT+CIPCLOSEMODE=5,1\r\n") == OK
        assert h.send(b"AT+CIPCLOSEMODE=1\r\n") == ERR
        assert h.send(b"AT+CIPCLOSEMODE=6,1\r\n") == ERR
        assert h.send(b"AT+CIPCLOSEMODE?\r\n") == ERR


class TestStatus:
    def test_codes(self, peer):
        h = Harness()
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPSTATUS\r\n") == b"STATUS:5\r\n" + OK
        h.join()
        assert h.send(b"AT+CIPSTATUS\r\n") == b"STATUS:2\r\n" + OK
        start(h, peer)
        local = peer.conn.getpeername()[1]
        assert h.send(b"AT+CIPSTATUS\r\n") == (
            b'STATUS:3\r\n+CIPSTATUS:0,"TCP","127.0.0.1",%d,%d,0\r\n' % (peer.port, local) + OK)
        h.send(b"AT+CIPCLOSE\r\n")
        assert h.send(b"AT+CIPSTATUS\r\n") == b"STATUS:4\r\n" + OK  # never goes back to 2
        assert h.send(b"AT+CIPSTATUS?\r\n") == ERR

    def test_0_5_0_lists_links_without_wifi(self, peer):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=2\r\n")
        start(h, peer)
        assert h.send(b"AT+CIPSTATUS\r\n").startswith(b'STATUS:5\r\n+CIPSTATUS:0,"TCP"')


class TestMux:
    def test_query_and_refusals(self, h, peer):
        assert h.send(b"AT+CIPMUX?\r\n") == b"+CIPMUX:0\r\n" + OK
        mux1(h)
        mux1(h)  # the same value is fine
        assert h.send(b"AT+CIPMUX=2\r\n") == ERR
        start(h, peer, 0)
        h.send(b"AT+CIPSERVER=1\r\n")
        assert h.send(b"AT+CIPMUX=0\r\n") == b"link is builded\r\nCIPSERVER must be 0\r\n" + ERR
        h.send(b"AT+CIPCLOSE=0\r\n")
        assert h.send(b"AT+CIPMUX=0\r\n") == b"CIPSERVER must be 0\r\n" + ERR


class TestServer:
    def host_port(self, h, port=333):
        from atmodem_tcpip import server_ports
        return server_ports(h.modem)[port][1]

    def test_accept_and_talk(self, h):
        mux1(h)
        assert h.send(b"AT+CIPSERVER=1\r\n") == OK
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        assert h.wait_for(b"CONNECT\r\n") == b"0,CONNECT\r\n"
        client.sendall(b"ping")
        assert h.wait_for(b"ping") == b"\r\n+IPD,0,4:ping"
        h.send(b"AT+CIPSEND=0,4\r\n")
        h.send(b"pong")
        assert client.recv(4) == b"pong"
        assert h.send(b"AT+CIPSTATUS\r\n") == b'STATUS:3\r\n+CIPSTATUS:0,"TCP","127.0.0.1",%d,333,0\r\n' % (
            client.getsockname()[1]) + OK
        client.close()
        assert h.wait_for(b"CLOSED\r\n") == b"0,CLOSED\r\n"

    def test_mux0_refuses(self, h):
        assert h.send(b"AT+CIPSERVER=1\r\n") == ERR

    def test_duplicates_and_six_servers(self, h):
        mux1(h)
        assert h.send(b"AT+CIPSERVER=1,80\r\n") == OK
        assert h.send(b"AT+CIPSERVER=1,80\r\n") == b"no change\r\n" + ERR
        for port in (81, 82, 83, 84):
            assert h.send(b"AT+CIPSERVER=1,%d\r\n" % port) == OK
        assert h.send(b"AT+CIPSERVER=1,85\r\n") == OK  # ⚠ OK, but nothing starts
        from atmodem_tcpip import server_ports
        assert sorted(server_ports(h.modem)) == [80, 81, 82, 83, 84]
        assert h.send(b"AT+CIPSERVER=0,85\r\n") == b"no change\r\n" + ERR
        assert h.send(b"AT+CIPSERVER=0\r\n") == OK  # the first one
        assert sorted(server_ports(h.modem)) == [81, 82, 83, 84]

    @pytest.mark.parametrize("args", [b"2", b"1,443,\"SSL\",1", b"1,", b"1,0", b"1,65536", b"x", b"?"])
    def test_bad_forms(self, h, args):
        mux1(h)
        assert h.send(b"AT+CIPSERVER=" + args + b"\r\n") == ERR

    def test_stop_keeps_accepted_links(self, h):
        mux1(h)
        h.send(b"AT+CIPSERVER=1\r\n")
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        h.wait_for(b"0,CONNECT\r\n")
        assert h.send(b"AT+CIPSERVER=0,333\r\n") == OK
        client.sendall(b"still")
        assert h.wait_for(b"still") == b"\r\n+IPD,0,5:still"
        client.close()

    def test_maxconn_and_lowest_slot(self, h):
        mux1(h)
        assert h.send(b"AT+CIPSERVERMAXCONN=2\r\n") == OK
        assert h.send(b"AT+CIPSERVERMAXCONN?\r\n") == b"+CIPSERVERMAXCONN:2\r\n" + OK
        assert h.send(b"AT+CIPSERVERMAXCONN=6\r\n") == ERR
        assert h.send(b"AT+CIPSERVERMAXCONN=0\r\n") == ERR
        peer = Peer()
        start(h, peer, 0)
        h.send(b"AT+CIPSERVER=1\r\n")
        clients = [socket.create_connection(("127.0.0.1", self.host_port(h))) for _ in range(3)]
        assert h.wait_for(b"CONNECT\r\n") == b"1,CONNECT\r\n"
        assert h.wait_for(b"CONNECT\r\n") == b"2,CONNECT\r\n"
        assert h.advance(1) == b""  # the third waits in the backlog
        # the next main-loop pass, right after the command, takes the waiting one
        assert h.send(b"AT+CIPCLOSE=1\r\n") == b"1,CLOSED\r\n" + OK + b"1,CONNECT\r\n"
        for c in clients:
            c.close()
        peer.close()

    def test_idle_timeout(self, h):
        mux1(h)
        assert h.send(b"AT+CIPSTO?\r\n") == b"+CIPSTO:180\r\n" + OK
        assert h.send(b"AT+CIPSTO=10\r\n") == OK
        assert h.send(b"AT+CIPSTO=7201\r\n") == ERR
        h.send(b"AT+CIPSERVER=1\r\n")
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        h.wait_for(b"0,CONNECT\r\n")
        assert h.advance(9.9) == b""
        assert h.advance(0.2) == b"0,CLOSED\r\n"
        assert client.recv(10) == b""
        client.close()

    def test_timeout_follows_the_setting_and_running_servers(self, h):
        mux1(h)
        h.send(b"AT+CIPSERVER=1\r\n")
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        h.wait_for(b"0,CONNECT\r\n")
        assert h.send(b"AT+CIPSTO=5\r\n") == OK  # applies to the link already open
        assert h.advance(4.9) == b""
        assert h.advance(0.2) == b"0,CLOSED\r\n"
        client.close()
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        h.wait_for(b"0,CONNECT\r\n")
        h.send(b"AT+CIPSTO=0\r\n")  # never
        assert h.advance(600) == b""
        h.send(b"AT+CIPSTO=5\r\n")
        h.send(b"AT+CIPSERVER=0\r\n")  # no longer a server link: no timeout
        assert h.advance(60) == b""
        client.close()

    def test_unread_data_holds_the_timeout_until_read(self, h):
        mux1(h)
        h.send(b"AT+CIPRECVMODE=1\r\n")
        h.send(b"AT+CIPSTO=10\r\n")
        h.send(b"AT+CIPSERVER=1\r\n")
        client = socket.create_connection(("127.0.0.1", self.host_port(h)))
        h.wait_for(b"0,CONNECT\r\n")
        client.sendall(b"x")
        h.wait_for(b"+IPD,0,1\r\n")
        assert h.advance(15) == b""
        assert h.send(b"AT+CIPRECVDATA=0,1\r\n") == b"\r\n+CIPRECVDATA,1:x" + OK + b"0,CLOSED\r\n"
        client.close()

    def test_raising_maxconn_takes_a_waiting_client(self, h):
        mux1(h)
        h.send(b"AT+CIPSERVERMAXCONN=1\r\n")
        h.send(b"AT+CIPSERVER=1\r\n")
        clients = [socket.create_connection(("127.0.0.1", self.host_port(h))) for _ in range(2)]
        h.wait_for(b"0,CONNECT\r\n")
        assert h.advance(1) == b""
        assert h.send(b"AT+CIPSERVERMAXCONN=2\r\n") == OK + b"1,CONNECT\r\n"
        for c in clients:
            c.close()

    def test_stopped_servers_links_do_not_count(self, h):
        mux1(h)
        h.send(b"AT+CIPSERVERMAXCONN=1\r\n")
        h.send(b"AT+CIPSERVER=1,333\r\n")
        first = socket.create_connection(("127.0.0.1", self.host_port(h, 333)))
        h.wait_for(b"0,CONNECT\r\n")
        h.send(b"AT+CIPSERVER=0,333\r\n")
        h.send(b"AT+CIPSERVER=1,334\r\n")
        second = socket.create_connection(("127.0.0.1", self.host_port(h, 334)))
        assert h.wait_for(b"CONNECT\r\n") == b"1,CONNECT\r\n"
        first.close()
        second.close()

    def test_servers_are_served_in_slot_order(self, h):
        mux1(h)
        h.send(b"AT+CIPSERVER=1,333\r\n")
        h.send(b"AT+CIPSERVER=1,334\r\n")
        h.modem.feed(b"AT+CWLAPOPT=0,31\r\n")  # both clients arrive while the modem is busy
        late = [socket.create_connection(("127.0.0.1", self.host_port(h, port))) for port in (334, 333)]
        h.reactor.poll(0.05)
        h.reactor.poll(0.05)
        h.settle()
        out = h.take() + h.advance(0.1)
        assert out == OK + b"0,CONNECT\r\n1,CONNECT\r\n"
        assert h.modem.runtime["tcpip"].slots[0].link.local_port == 333
        for c in late:
            c.close()

    def test_server_port_is_reported(self, h):
        events = []
        h.modem.observers.append(lambda kind, details: events.append((kind, details)))
        mux1(h)
        h.send(b"AT+CIPSERVER=1,8080\r\n")
        (details,) = [details for kind, details in events if kind == "server_started"]
        assert details["modem_port"] == 8080
        assert details["host_address"] == ("127.0.0.1", self.host_port(h, 8080))

    def test_world_maps_the_host_port(self):
        with socket.create_server(("127.0.0.1", 0)) as probe:
            free = probe.getsockname()[1]
        world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")], server_ports={80: free})
        h = Harness(world=world)
        h.join()
        mux1(h)
        h.send(b"AT+CIPSERVER=1,80\r\n")
        socket.create_connection(("127.0.0.1", free)).close()
        assert h.wait_for(b"CONNECT\r\n") == b"0,CONNECT\r\n"


class TestDomain:
    def test_resolve(self, h):
        h.world.map_host("api.example.test", "127.0.0.10")
        assert h.send(b'AT+CIPDOMAIN="api.example.test"\r\n') == b"+CIPDOMAIN:127.0.0.10\r\n" + OK
        assert h.send(b'AT+CIPDOMAIN="API.Example.TEST"\r\n') == b"+CIPDOMAIN:127.0.0.10\r\n" + OK

    def test_errors(self, h):
        assert h.send(b'AT+CIPDOMAIN="nowhere.test"\r\n') == b"DNS Fail\r\n" + ERR
        assert h.send(b"AT+CIPDOMAIN\r\n") == ERR
        assert h.send(b"AT+CIPDOMAIN=localhost\r\n") == b"IP ERROR\r\n" + ERR
        assert h.send(b'AT+CIPDOMAIN="localhost"x\r\n') == b"IP ERROR\r\n" + ERR
        assert h.send(b"AT+CIPDOMAIN=?\r\n") == b"IP ERROR\r\n" + ERR

    def test_host_resolver_fallback(self):
        world = World(access_points=[AccessPoint("atmodem-lab", "atmodem-pass")], dns_fallback=True)
        h = Harness(world=world)
        h.join()
        assert h.send(b'AT+CIPDOMAIN="localhost"\r\n') == b"+CIPDOMAIN:127.0.0.1\r\n" + OK

    def test_0_3_4_has_none(self):
        h = Harness("esp_atmod-0.3.4")
        h.join()
        assert h.send(b'AT+CIPDOMAIN="localhost"\r\n') == ERR


class TestSendTimeout:
    def test_a_peer_that_stops_reading_gives_send_fail(self, h, peer):
        start(h, peer)  # the peer never reads
        chunk = b"x" * 2048
        for _ in range(20000):
            h.modem.feed(b"AT+CIPSEND=2048\r\n")
            h.settle()
            h.take()
            h.modem.feed(chunk)
            h.pump(lambda: b"SEND" in h.out or h.modem.mode.value == "blocked", timeout=5)
            if h.modem.mode.value == "blocked":
                break
            h.take()
        assert h.take() == b"\r\nRecv 2048 bytes\r\n"  # and the kernel's buffers are full
        assert h.advance(4.9) == b""
        # the link is stopped: the next main-loop pass reports it
        assert h.advance(0.2) == b"\r\nSEND FAIL\r\nCLOSED\r\n"
        assert h.send(b"AT\r\n") == OK


class TestApLoss:
    def test_links_close_and_no_ip_until_rejoin(self, h, peer):
        mux1(h)
        conn = start(h, peer, 0)
        h.send(b"AT+CIPSEND=0,4\r\n")
        h.send(b"data")
        h.world.remove_ap("atmodem-lab")
        assert h.wait_for(b"0,CLOSED\r\n") == b"WIFI DISCONNECT (200)\r\n0,CLOSED\r\n"
        assert h.send(b'AT+CIPSTART=1,"TCP","127.0.0.1",%d\r\n' % peer.port) == b"no ip\r\n" + ERR
        h.world.restore_ap("atmodem-lab")
        assert h.send(b'AT+CWJAP="atmodem-lab","atmodem-pass"\r\n').endswith(OK)
        assert h.send(b'AT+CIPSTART=1,"TCP","127.0.0.1",%d\r\n' % peer.port) == b"1,CONNECT\r\n" + OK
        conn.close()


class TestReset:
    def test_reset_closes_sockets_and_servers(self, h, peer):
        mux1(h)
        start(h, peer, 0)
        h.send(b"AT+CIPSERVER=1\r\n")
        from atmodem_tcpip import server_ports
        port = server_ports(h.modem)[333][1]
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        assert peer.conn.recv(10) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port))


class TestSslSize:
    def test_sizes_and_the_16384_quirk(self, h):
        from atmodem_tls import receive_buffer
        assert receive_buffer(h.modem) == 16384  # boot default: never set
        for size in (512, 1024, 2048, 4096):
            assert h.send(b"AT+CIPSSLSIZE=%d\r\n" % size) == OK
            assert receive_buffer(h.modem) == size
        assert h.send(b"AT+CIPSSLSIZE=16384\r\n") == OK
        assert receive_buffer(h.modem) == 512  # explicit 16384 is stored as 0 -> the 512 minimum

    @pytest.mark.parametrize("line", [b"AT+CIPSSLSIZE?", b"AT+CIPSSLSIZE=8192", b"AT+CIPSSLSIZE=4096,",
                                      b"AT+CIPSSLSIZE=", b"AT+CIPSSLSIZE"])
    def test_errors(self, h, line):
        assert h.send(line + b"\r\n") == ERR


class TestMidCommand:
    def test_data_while_the_host_types_a_command(self, peer):
        # Active mode: +IPD lands between the echoed bytes of a half-typed line; the line and
        # the data both come through whole.
        h = Harness()
        h.join()
        conn = start(h, peer)
        h.send(b"ATE1\r\n")
        h.modem.feed(b"AT+CIPST")
        conn.sendall(b"DATA")
        h.pump(lambda: b"DATA" in h.out)
        h.modem.feed(b"ATUS\r\n")
        h.settle()
        out = h.take()
        assert out.startswith(b"AT+CIPST\r\n+IPD,4:DATAATUS\r\nSTATUS:3\r\n")

    def test_data_while_a_blocking_command_runs_waits_for_it(self, h, peer):
        conn = start(h, peer)
        h.modem.feed(b'AT+CIPDOMAIN="localhost"\r\n')  # blocking for 50 ms
        conn.sendall(b"late")
        h.pump(lambda: h.modem.runtime["tcpip"].slots[0].link.available == 4, horizon=0)
        assert h.take() == b""  # the socket has it; the chip is not polling
        assert h.advance(0.2) == b"+CIPDOMAIN:127.0.0.1\r\n" + OK + b"\r\n+IPD,4:late"


class TestSmallForms:
    @pytest.mark.parametrize("line", [b"AT+CIPDINFO=2", b"AT+CIPDINFO", b"AT+CIPMUX", b"AT+CIPRECVMODE=2",
                                      b"AT+CIPSTO=", b"AT+CIPSTO", b"AT+CIPSERVERMAXCONN", b"AT+CIPSTATUS=1",
                                      b"AT+CIPMODE=1", b"AT+CIPSENDEX=1", b"AT+PING=\"localhost\"", b"AT+SYSTIME?"])
    def test_errors(self, h, line):
        assert h.send(line + b"\r\n") == ERR

    def test_queries(self, h):
        assert h.send(b"AT+CIPDINFO?\r\n") == b"+CIPDINFO:FALSE\r\n" + OK
        assert h.send(b"AT+CIPRECVMODE?\r\n") == b"+CIPRECVMODE:0\r\n" + OK
        assert h.send(b"AT+CIPSERVERMAXCONN?\r\n") == b"+CIPSERVERMAXCONN:5\r\n" + OK

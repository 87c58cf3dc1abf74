"""Wi-Fi commands byte for byte (spec §6.2, §3, §4, §5, checklist §13)."""

import pytest

from atmodem.world import AccessPoint, World
from support import JOIN, Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"


def lab(*aps, **options) -> World:
    return World(access_points=list(aps) or [AccessPoint("atmodem-lab", "atmodem-pass", rssi=-52)],
                 hosts={"localhost": "127.0.0.1"}, **options)


@pytest.fixture
def h():
    harness = Harness()
    harness.send(b"ATE0\r\n")
    yield harness
    harness.close()


def joined(harness=None) -> Harness:
    harness = harness or Harness()
    harness.join()
    return harness


class TestMode:
    def test_query_and_set_each_suffix(self, h):
        assert h.send(b"AT+CWMODE?\r\n") == b"+CWMODE:1\r\n" + OK
        assert h.send(b"AT+CWMODE_CUR=3\r\n") == OK
        assert h.send(b"AT+CWMODE_CUR?\r\n") == b"+CWMODE_CUR:3\r\n" + OK
        assert h.send(b"AT+CWMODE_DEF?\r\n") == b"+CWMODE_DEF:3\r\n" + OK  # _DEF? shows the current mode

    @pytest.mark.parametrize("line", [b"AT+CWMODE=4", b"AT+CWMODE=", b"AT+CWMODE=1,", b"AT+CWMODE=?",
                                      b"AT+CWMODE", b"AT+CWMODE? "])
    def test_bad_forms(self, h, line):
        assert h.send(line + b"\r\n") == ERR

    def test_saved_unless_cur(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=3\r\n")
        h.send(b"AT+CWMODE_CUR=2\r\n")
        h.send(b"AT+RST\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CWMODE?\r\n") == b"+CWMODE:3\r\n" + OK

    def test_ap_only_refuses_station_commands(self, h):
        h.send(b"AT+CWMODE=2\r\n")
        for line in (JOIN, b"AT+CWJAP?\r\n", b"AT+CWLAP\r\n", b"AT+CIPSTA?\r\n", b'AT+CWHOSTNAME="x"\r\n'):
            assert h.send(line) == ERR, line
        assert h.send(b"AT+CWHOSTNAME?\r\n") == b"+CWHOSTNAME:ESP-A0B1C2\r\n" + OK  # any mode

    def test_sta_only_refuses_softap_commands(self, h):
        assert h.send(b"AT+CWSAP?\r\n") == ERR
        assert h.send(b"AT+CIPAP?\r\n") == ERR

    def test_0_3_4_has_no_mode_checks(self):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=2\r\n")
        assert h.send(b"AT+CWJAP?\r\n") == b"No AP\r\n" + OK


class TestJoin:
    def test_success_order_and_timing(self, h):
        h.modem.feed(JOIN)
        assert h.advance(1.4) == b""                       # BUSY, nothing printed yet, not even OK
        assert h.advance(0.2) == b"WIFI CONNECTED\r\n"     # ~1.5 s
        assert h.advance(1.3) == b""
        assert h.advance(0.2) == b"WIFI GOT IP\r\n" + OK   # ~3 s, OK right after
        assert h.send(b"AT+CWJAP?\r\n") == b'+CWJAP:"atmodem-lab","02:1a:11:00:18:cd",6,-52\r\n' + OK

    def test_busy_while_joining(self, h):
        h.modem.feed(JOIN)
        h.advance(0.5)
        assert h.type(b"AT\r\n")[:13] == b"\r\nbusy p...\r\n"

    def test_busy_per_chunk_with_echo(self):
        h = Harness()
        h.modem.feed(JOIN)
        h.take()
        h.advance(0.5)
        h.modem.feed(b"AT\r\n")
        assert h.take() == b"AT\r\n\r\nbusy p...\r\n"

    def test_query_when_not_connected(self, h):
        assert h.send(b"AT+CWJAP?\r\n") == b"No AP\r\n" + OK

    def test_no_ap_found(self, h):
        assert h.send(b'AT+CWJAP="nowhere","x"\r\n') == b"WIFI DISCONNECT (201)\r\n\r\n+CWJAP:3\r\nFAIL\r\n"

    def test_wrong_password(self, h):
        assert h.send(b'AT+CWJAP="atmodem-lab","wrong"\r\n') == b"WIFI DISCONNECT (15)\r\n\r\n+CWJAP:2\r\nFAIL\r\n"

    def test_other_failure(self):
        h = Harness(world=lab(AccessPoint("corp", "x", encryption="wpa2_enterprise")))
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CWJAP="corp","x"\r\n') == b"WIFI DISCONNECT (203)\r\n\r\n+CWJAP:4\r\nFAIL\r\n"

    def test_failure_takes_five_seconds(self, h):
        h.modem.feed(b'AT+CWJAP="nowhere","x"\r\n')
        assert h.advance(4.9) == b""
        assert h.advance(0.2).endswith(b"FAIL\r\n")

    def test_no_timeout_ever(self):
        h = Harness(world=lab(AccessPoint("dhcpless", "password1", join_outcome="no_ip")))
        h.send(b"ATE0\r\n")
        h.modem.feed(b'AT+CWJAP="dhcpless","password1"\r\n')
        assert h.advance(3600) == b"WIFI CONNECTED\r\n"  # and BUSY for good: no +CWJAP:1
        assert h.advance(1) == b"" and h.modem.mode.value == "busy"

    def test_open_network_with_empty_password(self):
        h = Harness(world=lab(AccessPoint("cafe")))
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CWJAP="cafe",""\r\n').endswith(b"WIFI GOT IP\r\n" + OK)

    def test_0_3_4_needs_a_password(self):
        h = Harness("esp_atmod-0.3.4", world=lab(AccessPoint("cafe")))
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CWJAP="cafe",""\r\n') == ERR

    def test_bssid_selects_the_ap(self, h):
        assert h.send(b'AT+CWJAP="atmodem-lab","atmodem-pass","02:1A:11:00:18:CD"\r\n').endswith(OK)
        h.send(b"AT+CWQAP\r\n")
        assert h.send(b'AT+CWJAP="atmodem-lab","atmodem-pass","02:1a:11:00:18:ce"\r\n').endswith(b"+CWJAP:3\r\nFAIL\r\n")

    @pytest.mark.parametrize("args", [b'"",""', b'"a"', b'"a","b",', b'"a","b","11:22"', b'"a","b","zz:22:33:44:55:66"',
                                      b'"a","b","11:22:33:44:55:66",1', b'"a","b",1', b'a,b', b'"a","b"x'])
    def test_bad_parameters(self, h, args):
        assert h.send(b"AT+CWJAP=" + args + b"\r\n") == ERR

    def test_escaped_ssid(self):
        h = Harness(world=lab(AccessPoint('odd,"name', "password1")))
        h.send(b"ATE0\r\n")
        assert h.send(b'AT+CWJAP="odd,\\"name","password1"\r\n').endswith(OK)

    def test_rejoin_disconnects_first(self):
        h = joined()
        assert h.send(JOIN) == b"WIFI DISCONNECT (8)\r\nWIFI CONNECTED\r\nWIFI GOT IP\r\n" + OK

    def test_def_query_shows_the_saved_ssid(self):
        h = joined()
        h.send(b'AT+CWJAP_CUR="atmodem-lab","atmodem-pass"\r\n')
        assert h.send(b"AT+CWJAP_DEF?\r\n").startswith(b'+CWJAP_DEF:"atmodem-lab","02:1a:11:00:18:cd",6,-52')


class TestReconnect:
    def test_boot_auto_join_after_ready(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        h.modem.feed(b"AT+RST\r\n")
        assert h.wait_for(b"ready\r\n").endswith(b"\r\nready\r\n")
        assert h.advance(1.6) == b"WIFI CONNECTED\r\n"
        assert h.advance(1.5) == b"WIFI GOT IP\r\n"

    def test_autoconn_off_stays_down(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        assert h.send(b"AT+CWAUTOCONN=0\r\n") == OK
        assert h.send(b"AT+CWAUTOCONN?\r\n") == b"+CWAUTOCONN:0\r\n" + OK
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        assert h.advance(30) == b""

    def test_auto_reconnect_before_first_cwjap(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        h.advance(4)
        h.world.remove_ap("atmodem-lab")
        assert h.advance(0) == b"WIFI DISCONNECT (200)\r\n"
        assert h.advance(5.1) == b""  # a retry is under way
        assert h.advance(5) == b"WIFI DISCONNECT (201)\r\n"  # it failed; the SDK keeps trying
        h.world.restore_ap("atmodem-lab")
        assert h.advance(10) == b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"

    def test_no_auto_reconnect_after_cwjap(self):
        h = joined()
        h.world.remove_ap("atmodem-lab")
        assert h.advance(0) == b"WIFI DISCONNECT (200)\r\n"
        h.world.restore_ap("atmodem-lab")
        assert h.advance(60) == b""
        assert h.send(b"AT+CWJAP?\r\n") == b"No AP\r\n" + OK

    def test_cwqap_when_connected(self):
        h = joined()
        # The SDK's event is handled after the command returns: the URC follows the OK.
        assert h.send(b"AT+CWQAP\r\n") == OK + b"WIFI DISCONNECT (8)\r\n"
        assert h.send(b"AT+CWJAP?\r\n") == b"No AP\r\n" + OK

    def test_cwqap_when_not_connected_keeps_retrying(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        assert h.send(b"AT+CWQAP\r\n") == b"AT+CWQAP\r\n" + OK  # (echo is back on after a reset)
        assert h.advance(4) == b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"

    def test_ap_lost_during_cwjap_keeps_trying_then_answers(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.modem.feed(JOIN)
        assert h.advance(1.6) == b"WIFI CONNECTED\r\n"
        h.world.remove_ap("atmodem-lab")
        assert h.advance(0) == b"WIFI DISCONNECT (200)\r\n"
        assert h.advance(10.1) == b"WIFI DISCONNECT (201)\r\n\r\n+CWJAP:3\r\nFAIL\r\n"
        assert h.send(b"AT\r\n") == OK

    def test_ap_back_in_time_completes_the_cwjap(self):
        h = Harness()
        h.send(b"ATE0\r\n")
        h.modem.feed(JOIN)
        h.advance(1.6)
        h.world.remove_ap("atmodem-lab")
        assert h.advance(1) == b"WIFI DISCONNECT (200)\r\n"
        h.world.restore_ap("atmodem-lab")
        assert h.advance(10) == b"WIFI CONNECTED\r\nWIFI GOT IP\r\n" + OK

    def test_mode_without_station_stops_a_join(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=2\r\n")  # before the boot auto-join completes
        assert h.advance(30) == b""
        assert h.send(b"AT+CIFSR\r\n").startswith(b'+CISFR:STAIP,"0.0.0.0"')

    def test_rssi_changes_show(self):
        h = joined()
        h.world.set_rssi("atmodem-lab", -80)
        assert h.send(b"AT+CWJAP?\r\n").endswith(b",6,-80\r\n" + OK)


class TestScan:
    def world(self):
        return lab(
            AccessPoint("HomeNet", "password1", bssid="9c:53:22:01:02:03", rssi=-58, channel=6),
            AccessPoint("Open", rssi=-40, channel=1, bssid="02:00:00:00:00:01"),
            AccessPoint("Old", "password1", encryption="wep", rssi=-90, channel=11, bssid="02:00:00:00:00:02"),
            AccessPoint("Mixed", "password1", encryption="wpa_wpa2", rssi=-70, channel=3, bssid="02:00:00:00:00:03"),
            AccessPoint("Legacy", "password1", encryption="wpa", rssi=-75, channel=4, bssid="02:00:00:00:00:04"),
            AccessPoint("Corp", "password1", encryption="wpa2_enterprise", rssi=-65, channel=9,
                        bssid="02:00:00:00:00:05"),
            AccessPoint("Secret", "password1", hidden=True, rssi=-60, channel=13, bssid="02:00:00:00:00:06"),
        )

    @pytest.fixture
    def s(self):
        h = Harness(world=self.world())
        h.send(b"ATE0\r\n")
        return h

    def test_default_options(self, s):
        assert s.send(b"AT+CWLAP\r\n") == (
            b"+CWLAP:(4,HomeNet,-58,9C:53:22:01:02:03,6,0,0,0,0,0,0)\n"
            b"+CWLAP:(7,Open,-40,02:00:00:00:00:01,1,0,0,0,0,0,0)\n"
            b"+CWLAP:(5,Old,-90,02:00:00:00:00:02,11,0,0,0,0,0,0)\n"
            b"+CWLAP:(8,Mixed,-70,02:00:00:00:00:03,3,0,0,0,0,0,0)\n"
            b"+CWLAP:(2,Legacy,-75,02:00:00:00:00:04,4,0,0,0,0,0,0)\n"
            b"+CWLAP:(255,Corp,-65,02:00:00:00:00:05,9,0,0,0,0,0,0)\n"
            b"+CWLAP:(4,,-60,02:00:00:00:00:06,13,0,0,0,0,0,0)\n" + OK)

    def test_sorted_with_mask_31(self, s):
        assert s.send(b"AT+CWLAPOPT=1,31\r\n") == OK
        out = s.send(b"AT+CWLAP\r\n")
        assert out.endswith(b")\n" + OK)
        lines = out[:-len(OK)].split(b"\n")[:-1]
        assert lines[0] == b"+CWLAP:(7,Open,-40,02:00:00:00:00:01,1)"
        assert lines[1] == b"+CWLAP:(4,HomeNet,-58,9C:53:22:01:02:03,6)"
        rssi = [int(line.split(b",")[-3]) for line in lines]
        assert len(lines) == 7 and rssi == sorted(rssi, reverse=True)

    def test_mask_0(self, s):
        s.send(b"AT+CWLAPOPT=0,0\r\n")
        assert s.send(b"AT+CWLAP\r\n") == b"+CWLAP:()\n" * 7 + OK

    def test_rssi_and_auth_filters(self, s):
        # ecn 4 (WPA2) only: bit 4 = 16; Corp's 255 always passes
        assert s.send(b"AT+CWLAPOPT=0,2,-70,16\r\n") == OK
        assert s.send(b"AT+CWLAP\r\n") == b"+CWLAP:(HomeNet)\n+CWLAP:(Corp)\n+CWLAP:()\n" + OK

    def test_options_are_kept_when_omitted(self, s):
        s.send(b"AT+CWLAPOPT=0,2,-59\r\n")
        s.send(b'AT+CWHOSTNAME="abcdefghijkl"\r\n')  # letters over the stale bytes (see below)
        s.send(b"AT+CWLAPOPT=0,2\r\n")
        assert s.send(b"AT+CWLAP\r\n") == b"+CWLAP:(HomeNet)\n+CWLAP:(Open)\n" + OK

    def test_stale_line_buffer_feeds_the_authmask(self, s):
        # §16.6: with the authmask omitted the parser reads on past the line's LF, into
        # what a longer earlier line left in the never-cleared buffer: here "48".
        s.send(b'AT+CWHOSTNAME="ab48"\r\n')
        assert s.send(b"AT+CWLAPOPT=0,2\r\n") == OK
        # authmask 48 = bits 4 (WPA2) and 5 (WEP); ecn 255 always passes
        assert s.send(b"AT+CWLAP\r\n") == b"+CWLAP:(HomeNet)\n+CWLAP:(Old)\n+CWLAP:(Corp)\n+CWLAP:()\n" + OK

    def test_hex_is_not_understood(self, s):
        assert s.send(b"AT+CWLAPOPT=1,0x7FF\r\n") == OK  # mask 0, then 'x7FF' ... rssi +7
        assert s.send(b"AT+CWLAP\r\n") == OK

    def test_query_is_an_error(self, s):
        assert s.send(b"AT+CWLAPOPT?\r\n") == ERR

    def test_bad_mask_keeps_the_sort(self, s):
        assert s.send(b"AT+CWLAPOPT=1,x\r\n") == ERR
        assert s.send(b"AT+CWLAP\r\n").startswith(b"+CWLAP:(7,Open")

    def test_sort_2_is_busy_forever(self, s):
        s.send(b"AT+CWLAPOPT=2,31\r\n")
        s.modem.feed(b"AT+CWLAP\r\n")
        assert s.advance(600) == b""
        s.modem.feed(b"AT\r\n")
        assert s.take() == b"\r\nbusy p...\r\n"

    def test_no_filter_form(self, s):
        assert s.send(b'AT+CWLAP="HomeNet"\r\n') == ERR

    def test_scan_is_busy_for_two_seconds(self, s):
        s.modem.feed(b"AT+CWLAP\r\n")
        assert s.advance(1.9) == b""
        assert s.advance(0.2).endswith(OK)


class TestSoftAp:
    @pytest.fixture
    def ap(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.send(b"ATE0\r\n")
        h.send(b"AT+CWMODE=3\r\n")
        return h

    def test_default_config(self, ap):
        assert ap.send(b"AT+CWSAP?\r\n") == b'+CWSAP:"ESP_A0B1C2","",1,0,4,0\r\n' + OK

    def test_cur_set_shows_only_in_cur_query(self, ap):
        assert ap.send(b'AT+CWSAP_CUR="lab","password1",5,3\r\n') == OK
        assert ap.send(b"AT+CWSAP_CUR?\r\n") == b'+CWSAP_CUR:"lab","password1",5,4,4,0\r\n' + OK
        assert ap.send(b"AT+CWSAP?\r\n") == b'+CWSAP:"ESP_A0B1C2","",1,0,4,0\r\n' + OK  # ⚠ saved config

    def test_saved(self, ap):
        assert ap.send(b'AT+CWSAP="lab","",11,0,2,1\r\n') == OK
        assert ap.send(b"AT+CWSAP_DEF?\r\n") == b'+CWSAP_DEF:"lab","",11,0,2,1\r\n' + OK

    @pytest.mark.parametrize("args", [b'"","",1,0', b'"a","short",1,3', b'"a","",15,0', b'"a","",1,1', b'"a","",1,5',
                                      b'"a","",1,0,5', b'"a","",1,0,4,2', b'"a","",1,0,4,0,1', b'"a",""'])
    def test_bad(self, ap, args):
        assert ap.send(b"AT+CWSAP=" + args + b"\r\n") == ERR

    def test_byte_after_password_is_not_checked(self, ap):
        assert ap.send(b'AT+CWSAP="lab","password1"x5,4\r\n') == OK

    def test_ap_address(self, ap):
        assert ap.send(b"AT+CIPAP?\r\n") == (b'+CIPAP:ip:"192.168.4.1"\r\n+CIPAP:gateway:"192.168.4.1"\r\n'
                                             b'+CIPAP:netmask:"255.255.255.0"\r\n' + OK)
        assert ap.send(b'AT+CIPAP_CUR="10.0.0.1"\r\n') == OK
        assert ap.send(b"AT+CIPAP_CUR?\r\n") == (b'+CIPAP_CUR:ip:"10.0.0.1"\r\n+CIPAP_CUR:gateway:"10.0.0.1"\r\n'
                                                 b'+CIPAP_CUR:netmask:"255.255.255.0"\r\n' + OK)

    def test_ap_address_zero_uses_the_station_prefix(self, ap):
        ap.send(b'AT+CIPAP="0.0.0.0","0.0.0.0","0.0.0.0"\r\n')
        assert ap.send(b"AT+CIPAP?\r\n") == (b'+CIPSTA:ip:"0.0.0.0"\r\n+CIPSTA:gateway:"0.0.0.0"\r\n'
                                             b'+CIPSTA:netmask:"0.0.0.0"\r\n' + OK)

    def test_mac(self, ap):
        assert ap.send(b"AT+CIPAPMAC?\r\n") == b'+CIPAPMAC:"5E:CF:7F:A0:B1:C2"\r\n' + OK


class TestAddresses:
    def test_cifsr_typo_and_upper_case_mac(self):
        h = joined()
        assert h.send(b"AT+CIFSR\r\n") == b'+CISFR:STAIP,"192.168.1.106"\r\n+CIFSR:STAMAC,"5C:CF:7F:A0:B1:C2"\r\n' + OK

    def test_cifsr_not_connected(self, h):
        assert h.send(b"AT+CIFSR\r\n") == b'+CISFR:STAIP,"0.0.0.0"\r\n+CIFSR:STAMAC,"5C:CF:7F:A0:B1:C2"\r\n' + OK
        assert h.send(b"AT+CIFSR=1\r\n") == ERR

    def test_station_mac(self, h):
        assert h.send(b"AT+CIPSTAMAC_CUR?\r\n") == b'+CIPSTAMAC_CUR:"5C:CF:7F:A0:B1:C2"\r\n' + OK
        assert h.send(b'AT+CIPSTAMAC="5c:cf:7f:00:00:01"\r\n') == b"NOT IMPLEMENTED\r\n" + ERR
        assert h.send(b'AT+CIPSTAMAC="5c:cf:7f:00:00"\r\n') == ERR

    def test_0_3_4_has_no_mac_commands(self):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPSTAMAC?\r\n") == ERR

    def test_station_address_zero_until_connected(self, h):
        zeros = b'+CIPSTA:ip:"0.0.0.0"\r\n+CIPSTA:gateway:"0.0.0.0"\r\n+CIPSTA:netmask:"0.0.0.0"\r\n' + OK
        assert h.send(b"AT+CIPSTA?\r\n") == zeros

    def test_static_address(self, tmp_path):
        h = joined(Harness(state_dir=tmp_path))
        assert h.send(b'AT+CIPSTA="192.168.1.50"\r\n') == OK
        assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:1\r\n" + OK  # STA bit cleared
        assert h.send(b"AT+CIPSTA?\r\n") == (b'+CIPSTA:ip:"192.168.1.50"\r\n+CIPSTA:gateway:"192.168.1.1"\r\n'
                                             b'+CIPSTA:netmask:"255.255.255.0"\r\n' + OK)
        assert h.send(b'AT+CIPSTA_CUR="10.1.2.3","10.1.2.254","255.0.0.0"\r\n') == OK
        assert h.send(b"AT+CIPSTA_DEF?\r\n") == (b'+CIPSTA_DEF:ip:"192.168.1.50"\r\n+CIPSTA_DEF:gateway:"192.168.1.1"'
                                                 b'\r\n+CIPSTA_DEF:netmask:"255.255.255.0"\r\n' + OK)
        assert h.send(b"AT+CIFSR\r\n").startswith(b'+CISFR:STAIP,"10.1.2.3"')

    @pytest.mark.parametrize("args", [b'"1.2.3"', b'"1.2.3.256"', b'"1.2.3.4","1.2.3.1"', b'"1.2.3.4",', b"1.2.3.4",
                                      b'"1.2.3.4 "', b'"1.2.3.4"x', b'"a.b.c.d"', b'"1..3.4"'])
    def test_malformed_addresses(self, h, args):
        assert h.send(b"AT+CIPSTA=" + args + b"\r\n") == ERR

    def test_hostname(self, h):
        assert h.send(b"AT+CWHOSTNAME?\r\n") == b"+CWHOSTNAME:ESP-A0B1C2\r\n" + OK
        assert h.send(b'AT+CWHOSTNAME="probe-1"junk\r\n') == OK  # no end-of-line check
        assert h.send(b"AT+CWHOSTNAME?\r\n") == b"+CWHOSTNAME:probe-1\r\n" + OK
        assert h.send(b'AT+CWHOSTNAME=""\r\n') == ERR
        assert h.send(b'AT+CWHOSTNAME="' + b"x" * 33 + b'"\r\n') == ERR


class TestDhcp:
    def test_default_and_bits(self, h):
        assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:3\r\n" + OK
        assert h.send(b"AT+CWDHCP_CUR=1,0\r\n") == OK
        assert h.send(b"AT+CWDHCP_CUR?\r\n") == b"+CWDHCP_CUR:1\r\n" + OK
        assert h.send(b"AT+CWDHCP_DEF?\r\n") == b"+CWDHCP_DEF:3\r\n" + OK
        assert h.send(b"AT+CWDHCP=3,1\r\n") == OK  # the Ethernet bit, accepted in any build
        assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:5\r\n" + OK

    def test_interface_must_be_active(self, h):
        assert h.send(b"AT+CWDHCP=0,1\r\n") == ERR  # SoftAP bit in STA-only mode
        assert h.send(b"AT+CWDHCP=2,0\r\n") == OK   # either will do
        assert h.send(b"AT+CWDHCP=4,1\r\n") == ERR
        assert h.send(b"AT+CWDHCP=1,2\r\n") == ERR

    def test_0_3_4_rules(self):
        h = Harness("esp_atmod-0.3.4")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CWDHCP=2,1\r\n") == ERR   # mode 2 needs CWMODE 3 exactly
        assert h.send(b"AT+CWDHCP=1,0\r\n") == OK
        assert h.send(b"AT+CWDHCP?\r\n") == b"+CWDHCP:1\r\n" + OK
        assert h.send(b"AT+CWDHCP=3,1\r\n") == ERR


class TestDns:
    def test_forced_default_then_dhcp(self, h):
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:64.6.64.6\r\n" + OK
        joined(h)
        assert h.send(b"AT+CIPDNS_CUR?\r\n") == b"+CIPDNS_CUR:192.168.1.1\r\n" + OK

    def test_set_clear_and_def(self, h):
        assert h.send(b'AT+CIPDNS=1,"8.8.8.8","1.1.1.1"\r\n') == OK
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:8.8.8.8\r\n+CIPDNS:1.1.1.1\r\n" + OK
        assert h.send(b'AT+CIPDNS_CUR=1,"9.9.9.9","9.9.9.9"\r\n') == OK
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:9.9.9.9\r\n" + OK
        assert h.send(b"AT+CIPDNS_DEF?\r\n") == b"+CIPDNS_DEF:8.8.8.8\r\n+CIPDNS_DEF:1.1.1.1\r\n" + OK
        assert h.send(b"AT+CIPDNS=0\r\n") == OK
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:64.6.64.6\r\n" + OK
        assert h.send(b"AT+CIPDNS_DEF?\r\n") == OK

    def test_boot_in_mode_0_applies_station_settings(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.send(b"AT+CWMODE=0\r\n")
        h.modem.feed(b"AT+RST\r\n")
        h.wait_for(b"ready\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:64.6.64.6\r\n" + OK

    def test_invalid_servers(self, h):
        assert h.send(b'AT+CIPDNS=1,"0.0.0.0"\r\n') == b"IP1 invalid\r\n" + ERR
        assert h.send(b'AT+CIPDNS=1,"8.8.8.8","0.0.0.0"\r\n') == b"IP2 invalid\r\n" + ERR
        assert h.send(b'AT+CIPDNS=1,"0.0.0.0",x\r\n') == b"IP1 invalid\r\n" + ERR
        assert h.send(b"AT+CIPDNS=2\r\n") == ERR
        assert h.send(b'AT+CIPDNS=1,8.8.8.8\r\n') == ERR

    def test_stored_dns_wins_over_dhcp(self, h):
        h.send(b'AT+CIPDNS=1,"8.8.4.4"\r\n')
        joined(h)
        assert h.send(b"AT+CIPDNS?\r\n") == b"+CIPDNS:8.8.4.4\r\n" + OK


class TestRestore:
    def test_restore_keeps_wifi_config(self, tmp_path):
        h = Harness(state_dir=tmp_path)
        h.join()
        h.send(b'AT+CIPDNS=1,"8.8.4.4"\r\n')
        h.modem.feed(b"AT+RESTORE\r\n")
        h.wait_for(b"ready\r\n")
        h.send(b"ATE0\r\n")
        assert h.wait_for(b"WIFI GOT IP\r\n")  # credentials survived (SDK flash)
        assert h.send(b"AT+CIPDNS_DEF?\r\n") == OK  # the EEPROM block did not


class TestSmallForms:
    @pytest.mark.parametrize("line", [b"AT+CWAUTOCONN=2", b"AT+CWAUTOCONN=", b"AT+CWAUTOCONN", b"AT+CWAUTOCONN=1,",
                                      b"AT+CWQAP=1", b"AT+CWLAP?", b"AT+CIFSR?", b"AT+CWHOSTNAME", b"AT+CIPSTA",
                                      b"AT+CWDHCP=1", b"AT+CWDHCP=1,1,", b"AT+CIPDNS", b'AT+CIPAPMAC="x"'])
    def test_errors(self, h, line):
        assert h.send(line + b"\r\n") == ERR

"""Certificate upload, listing, deletion and boot loading byte for byte (spec §8.4, §4, §16)."""

import pytest

from pki import Pki
from support import Harness

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def h():
    harness = Harness()
    harness.send(b"ATE0\r\n")
    yield harness
    harness.close()


def start_upload(h):
    assert h.send(b"AT+CIPSSLCERT\r\n") == b"\r\nOK\r\n>"


class TestUpload:
    def test_pem_with_real_line_feeds(self, h, pki):
        pem = pki.root.pem
        start_upload(h)
        assert h.send(pem) == b"\r\nRead %d bytes\r\n" % (pem.index(b"-----END CERTIFICATE-----") + 25) + OK
        assert h.send(b"AT+CIPSSLCERT?\r\n") == b"+CIPSSLCERT,1:atmodem Test Root\r\n" + OK

    def test_one_line_with_escapes_and_crlf(self, h, pki):
        one_line = pki.intermediate.pem.replace(b"\n", b"\\n")
        start_upload(h)
        end = one_line.index(b"-----END CERTIFICATE-----") + 25
        assert h.send(one_line[:end]) == b"\r\nRead %d bytes\r\n" % end + OK
        crlf = pki.leaf.pem.replace(b"\n", b"\r\n")
        start_upload(h)
        assert h.send(crlf).startswith(b"\r\nRead ")
        assert h.send(b"AT+CIPSSLCERT?\r\n") == (b"+CIPSSLCERT,1:atmodem Test Root\r\n"
                                                 b"+CIPSSLCERT,2:atmodem Test Intermediate\r\n" + OK)

    def test_count_includes_ignored_bytes_and_no_echo(self, pki):
        h = Harness()  # echo on: upload bytes are not echoed
        h.send(b"ATE1\r\n")
        pem = pki.root.pem.replace(b"\n", b"\n\t\n\x01")  # ignored control bytes and collapsed blank lines
        assert h.send(b"AT+CIPSSLCERT\r\n") == b"AT+CIPSSLCERT\r\n\r\nOK\r\n>"
        end = pem.index(b"-----END CERTIFICATE-----") + 25
        assert h.send(pem[:end]) == b"\r\nRead %d bytes\r\n" % end + OK

    def test_illegal_character_aborts_and_drops_waiting_input(self, h, pki):
        start_upload(h)
        assert h.send(b"-----BEGIN CERTIFICATE-----\nMII.rest\r\nAT\r\n") == ERR
        assert h.send(b"AT\r\n") == OK

    def test_duplicate(self, h, pki):
        start_upload(h)
        h.send(pki.root.pem)
        start_upload(h)
        assert h.send(pki.root.pem).endswith(b"Tried to load already existing certificate\r\n" + ERR)

    def test_bad_parse_is_stuck_in_upload(self, h, pki):
        broken = pki.root.pem.replace(b"MII", b"XXX", 1)
        start_upload(h)
        reply = h.send(broken)
        assert reply.endswith(b" bytes\r\nLoading certificate failed\r\n" + ERR)
        # ⚠ still uploading: the next command goes through the filter; its '+' is fine, '?' is not
        assert h.send(b"AT+CIPSSLCERT?\r\n") == ERR
        assert h.send(b"AT\r\n") == OK

    def test_truncated_pem(self, h, pki):
        pem = pki.root.pem
        start_upload(h)
        cut = pem[:200] + pem[pem.index(b"-----END"):]
        assert h.send(cut) == b"\r\nRead %d bytes\r\nLoading certificate failed\r\n" % len(cut.rstrip(b"\n")) + ERR

    def test_binary_garbage(self, h):
        start_upload(h)
        assert h.send(b"-----BEGIN\xff\x80garbage") == ERR
        assert h.send(b"AT\r\n") == OK

    def test_nul_is_stored(self, h, pki):
        start_upload(h)
        pem = pki.root.pem
        reply = h.send(pem[:40] + b"\x00" + pem[40:])
        assert reply.endswith(b"Loading certificate failed\r\n" + ERR)

    def test_size_limit(self, h):
        start_upload(h)
        assert h.send(b"A" * 4095) == b""
        assert h.send(b"A") == ERR
        assert h.send(b"AT\r\n") == OK

    def test_data_before_the_prompt_is_eaten(self, h, pki):
        # Spec §1.7: sent with the command, "-----BEGIN CERT" waits in the FIFO and is eaten.
        pem = pki.root.pem
        assert h.send(b"AT+CIPSSLCERT\r\n" + pem[:15]) == b"\r\nOK\r\n>"
        assert h.send(pem[15:]).endswith(b"Loading certificate failed\r\n" + ERR)

    def test_maximum(self, h, pki):
        assert h.send(b"AT+CIPSSLCERTMAX=1\r\n") == OK
        assert h.send(b"AT+CIPSSLCERTMAX?\r\n") == b"+CIPSSLCERTMAX:1\r\nOK\r\n"
        start_upload(h)
        h.send(pki.root.pem)
        assert h.send(b"AT+CIPSSLCERT\r\n") == b"Reached the maximum of 1 certificates\r\n" + ERR
        assert h.send(b"AT+CIPSSLCERTMAX=99x\r\n") == OK  # no range and no end check


class TestListAndDelete:
    @pytest.fixture
    def loaded(self, h, pki):
        for issued in (pki.root, pki.intermediate, pki.other_root):
            start_upload(h)
            h.send(issued.pem)
        return h

    def test_empty(self, h):
        assert h.send(b"AT+CIPSSLCERT?\r\n") == b"+CIPSSLCERT:no certs loaded\r\n" + OK
        assert h.send(b"AT+CIPSSLCERT=DELETE,1\r\n") == b"+CIPSSLCERT:no certificates\r\n" + ERR

    def test_query_by_index(self, loaded):
        assert loaded.send(b"AT+CIPSSLCERT?2\r\n") == b"+CIPSSLCERT,2:atmodem Test Root\r\n" + OK
        assert loaded.send(b"AT+CIPSSLCERT?4\r\n") == b"+CIPSSLCERT,4:no certificate\r\n" + ERR
        assert loaded.send(b"AT+CIPSSLCERT?0\r\n") == ERR
        assert loaded.send(b"AT+CIPSSLCERT?x\r\n") == ERR
        assert loaded.send(b"AT+CIPSSLCERT?123\r\n") == ERR

    def test_delete_renumbers(self, loaded):
        assert loaded.send(b"AT+CIPSSLCERT=DELETE,1x\r\n") == b"+CIPSSLCERT,1:deleted\r\n" + OK  # no end check
        assert loaded.send(b"AT+CIPSSLCERT?\r\n") == (b"+CIPSSLCERT,1:atmodem Test Root\r\n"
                                                      b"+CIPSSLCERT,2:Someone Else Root\r\n" + OK)
        assert loaded.send(b"AT+CIPSSLCERT=DELETE,3\r\n") == b"+CIPSSLCERT=DELETE:no certificate\r\n" + ERR
        assert loaded.send(b"AT+CIPSSLCERT=DELETE,0\r\n") == ERR
        assert loaded.send(b"AT+CIPSSLCERT=REMOVE,1\r\n") == ERR

    def test_issuer_name_rule(self, h):
        from pki import issue, utc
        utf8 = issue("Unicode Root", None, ca=True, start=utc(2025), end=utc(2030), printable=False)
        start_upload(h)
        h.send(utf8.pem)
        assert h.send(b"AT+CIPSSLCERT?1\r\n") == b"+CIPSSLCERT,1:cert ok\r\n" + OK


class TestBoot:
    def test_loaded_from_the_state_folder_with_messages(self, tmp_path, pki):
        folder = tmp_path / "certs"
        folder.mkdir()
        (folder / "a_root.pem").write_bytes(pki.root.pem)
        (folder / "b_same.pem").write_bytes(pki.root.pem)
        (folder / "c_empty.pem").write_bytes(b"")
        (folder / "d_notes.txt").write_text("x")
        (folder / "e_broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        (folder / ".gitkeep").write_text("")
        h = Harness(state_dir=tmp_path, ready=False)
        h.pump(lambda: b"ready\r\n" in h.out)
        assert h.take() == (b"\nTried to load already existing certificate\r\n" + ERR
                            + b"\nc_empty.pem is empty" + ERR
                            + b"\nd_notes.txt is not a .pem file" + ERR
                            + b"\nFailed to add e_broken.pem to the certificates list" + ERR
                            + b"\r\nready\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPSSLCERT?\r\n") == b"+CIPSSLCERT,1:atmodem Test Root\r\n" + OK

    def test_maximum_at_boot_and_deleted_come_back(self, tmp_path, pki):
        folder = tmp_path / "certs"
        folder.mkdir()
        (folder / "1.pem").write_bytes(pki.root.pem)
        (folder / "2.pem").write_bytes(pki.intermediate.pem)
        (folder / "3.txt").write_text("x")
        h = Harness(state_dir=tmp_path, ready=False)
        assert h.wait_for(b"ready\r\n") == b"\n3.txt is not a .pem file" + ERR + b"\r\nready\r\n"
        h.send(b"ATE0\r\n")
        h.send(b"AT+CIPSSLCERTMAX=1\r\n")
        h.send(b"AT+CIPSSLCERT=DELETE,1\r\n")
        h.modem.feed(b"AT+RST\r\n")
        boot = h.wait_for(b"ready\r\n")
        assert boot == OK + (
            b"\nCould not load 2.pem. Reached the maximum of 1 certificates" + ERR
            + b"\nCould not load 3.txt. Reached the maximum of 1 certificates" + ERR + b"\r\nready\r\n")

    def test_restore_keeps_certificates(self, tmp_path, pki):
        (tmp_path / "certs").mkdir()
        (tmp_path / "certs" / "root.pem").write_bytes(pki.root.pem)
        h = Harness(state_dir=tmp_path)
        h.modem.feed(b"AT+RESTORE\r\n")
        h.wait_for(b"ready\r\n")
        h.send(b"ATE0\r\n")
        assert h.send(b"AT+CIPSSLCERT?\r\n").startswith(b"+CIPSSLCERT,1:")


def test_a_nul_before_the_pem_fails_the_parse(h, pki):
    start_upload(h)
    assert h.send(b"\x00" + pki.root.pem).endswith(b"Loading certificate failed\r\n" + ERR)

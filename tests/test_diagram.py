"""The session's sequence diagram: its HTML from hand-made rows, the fragment as headless Chromium
draws it, and a real failing Robot run whose log shows it with the failing step marked.

The screenshots stay in build/diagram/ for a person to look at."""

import re
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from AtModemLibrary import AtModemLibrary
from atmodem.diagram import COLOURS, ROOT_CLASS, Step, data_line, render
from atmodem.emulators import BUILD
from atmodem.transcript import Row

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = BUILD / "diagram"
FAILING_SUITE = ROOT / "tests" / "robot" / "diagram_on_failure.robot"
START = 1_700_000_000.0


def row(at: float, lane: str, text: str, *, data: bytes | None = None, toward: str = "", link: int | None = None,
        command: str | None = None, failure: bool = False, clock: float | None = None, echo: bool = False) -> Row:
    return Row(time=START + at, clock=at if clock is None else clock, lane=lane, text=text, data=data, toward=toward,
               link=link, command=command, failure=failure, echo=echo)


# A session with every kind of row: a join, a link to an echo server, data both ways, and a TLS
# link the network refuses, in the step that fails.
SESSION = [
    row(0.00, "host", 'AT+CWJAP="atmodem-lab","atmodem-pass"', command="+CWJAP"),
    row(0.20, "modem", "WIFI CONNECTED", command="+CWJAP"),
    row(0.21, "modem", "OK", command="+CWJAP"),
    row(1.00, "host", 'AT+CIPSTART="TCP","www.atmodem.test",7', command="+CIPSTART"),
    row(1.01, "net", "DNS www.atmodem.test -> 127.0.0.1", toward="out", command="+CIPSTART"),
    row(1.02, "net", "TCP connected to 127.0.0.1:7 from port 50000", toward="out", link=0, command="+CIPSTART"),
    row(1.03, "modem", "CONNECT", link=0, command="+CIPSTART"),
    row(1.50, "host", "data 5 bytes: 68 69 00 ff 3c |hi..<|", data=b"hi\x00\xff<", link=0, command="+CIPSEND"),
    row(1.51, "net", "sent 5 bytes on the wire", toward="out", link=0),
    row(1.52, "net", "received 5 bytes on the wire", toward="in", link=0),
    row(1.53, "modem", "data 5 bytes: 68 69 00 ff 3c |hi..<|", data=b"hi\x00\xff<", link=0),
    row(2.00, "host", 'AT+CIPSTART="SSL","localhost",9', command="+CIPSTART"),
    row(2.10, "net", "TLS handshake failed: CERTIFICATE_VERIFY_FAILED", toward="in", failure=True, command="+CIPSTART"),
    row(2.11, "modem", "ERROR", failure=True, command="+CIPSTART"),
]
STEPS = [Step(START - 0.5, START + 0.3, "Host Joined The Access Point", "PASS"),
         Step(START + 0.9, START + 1.6, "Echo Five Bytes", "PASS"),
         Step(START + 1.9, START + 2.2, "Open A TLS Link", "FAIL", "'ERROR' != 'OK'")]


def parse(fragment: str) -> ElementTree.Element:
    """The fragment is well-formed XML too: a parse that succeeds shows nothing broke out of its escaping."""
    return ElementTree.fromstring(fragment)


def classes(element: ElementTree.Element) -> str:
    """The element's class names without the diagram's prefix."""
    return " ".join(name.removeprefix("ad-") for name in element.get("class", "").split())


def with_class(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [e for e in element.iter() if name in classes(e).split()]


def text_of(element: ElementTree.Element) -> str:
    return "".join(element.itertext())


# ------------------------------------------------------------------ the HTML

def test_text_from_the_modem_and_robot_is_escaped():
    hostile = '<script>alert("x")</script> & <b>'
    fragment = render([row(0, "modem", hostile, command="<cmd>"), row(0.1, "host", "AT")],
                      [Step(START - 1, START + 1, 'Step "<b>"', "FAIL", "<i>broke</i>")])
    assert "<script>" not in fragment and "<i>" not in fragment and '"<b>"' not in fragment
    root = parse(fragment)
    assert root.get("data-failed-step") == 'Step "<b>"'
    labels = [text_of(label) for label in with_class(root, "label")]
    assert labels == [hostile, "AT"]
    assert with_class(root, "arrow")[0].get("title") == f"<cmd>: {hostile}"
    assert text_of(with_class(root, "message")[0]) == "<i>broke</i>"


def test_a_megabyte_line_shows_its_start_and_its_size():
    fragment = render([row(0, "modem", "x" * 1_000_000)])
    assert len(fragment) < 10_000 and "... (1000000 characters)" in fragment


def test_a_step_status_cannot_leave_its_class_attribute():
    root = parse(render([row(0, "host", "AT")], [Step(START - 1, START + 1, "step", 'FAIL" onclick="x', "")]))
    assert all(set(element.attrib) <= {"class", "title", "data-failed-step"} for element in root.iter())


def test_binary_data_is_previewed_as_length_hex_and_ascii():
    assert data_line(b"hi\x00\xff<") == "5 B │ 68 69 00 ff 3c │ hi..<"
    long = bytes(range(0x41, 0x41 + 40))
    assert data_line(long) == "40 B │ 41 42 43 44 45 46 47 48 49 4a 4b 4c… │ ABCDEFGHIJKL…"
    root = parse(render([row(0, "modem", "data 5 bytes: 68 69 00 ff 3c |hi..<|", data=b"hi\x00\xff<", link=3)]))
    assert [text_of(e) for e in with_class(root, "bytes")] == ["5 B │ 68 69 00 ff 3c │ hi..<"]
    assert text_of(with_class(root, "label")[0]) == "data, 5 bytes"
    assert text_of(with_class(root, "time")[1]) == "link 3+0.000"
    assert classes(with_class(root, "arrow")[0]) == "arrow m2h"


def test_an_echoed_line_is_drawn_faint_and_says_so():
    root = parse(render([row(0, "host", "AT"), row(0.001, "modem", "AT", echo=True), row(0.002, "modem", "OK")]))
    assert [classes(r) for r in with_class(root, "row")] == ["row host", "row modem echo", "row modem"]
    assert [text_of(e) for e in with_class(root, "label")] == ["AT", "echo: AT", "OK"]


def test_rows_beyond_the_cap_are_omitted_from_the_start_and_counted():
    rows = [row(index * 0.01, "host" if index % 2 else "modem", f"line {index}") for index in range(250)]
    steps = [Step(START - 1, START + 0.2, "Long Gone", "PASS"), Step(START + 0.4, START + 3, "Recent", "PASS")]
    root = parse(render(rows, steps, limit=200))
    shown = with_class(root, "row")
    assert len(shown) == 200
    assert text_of(with_class(root, "omitted")[0]) == "50 earlier rows omitted"
    assert text_of(with_class(shown[0], "label")[0]) == "line 50"
    # offsets still count from the session's first row, omitted or not
    assert text_of(with_class(shown[0], "time")[0]) == "+0.500"
    assert [text_of(with_class(band, "name")[0]) for band in with_class(root, "band") if len(band)] == ["Recent"]
    assert len(with_class(parse(render(rows, limit=0)), "row")) == 250


def test_failures_steps_and_lanes_get_their_classes():
    root = parse(render(SESSION, STEPS))
    assert root.get("class") == ROOT_CLASS and root.get("data-failed-step") == "Open A TLS Link"
    blocks = with_class(root, "block")
    assert [classes(block) for block in blocks] == ["block PASS", "block PASS", "block FAIL failed-step"]
    failed_rows = with_class(blocks[2], "row")
    assert [text_of(with_class(r, "label")[0]) for r in failed_rows] == [
        'AT+CIPSTART="SSL","localhost",9', "TLS handshake failed: CERTIFICATE_VERIFY_FAILED", "ERROR"]
    assert [classes(r) for r in failed_rows] == ["row host", "row net failure", "row modem failure"]
    assert text_of(with_class(blocks[2], "message")[0]) == "'ERROR' != 'OK'"
    directions = [classes(with_class(r, "arrow")[0]).split()[1] for r in with_class(root, "row")]
    assert directions == ["h2m", "m2h", "m2h", "h2m", "m2n", "m2n", "m2h", "h2m", "m2n", "n2m", "m2h", "h2m", "n2m",
                          "m2h"]
    assert "data-failed-step" not in render(SESSION, STEPS[:2])


def test_rows_between_steps_stand_alone_and_a_quiet_step_says_so():
    rows = [row(0, "host", "AT"), row(5, "modem", "OK")]
    root = parse(render(rows, [Step(START + 1, START + 2, "Sleep", "PASS")]))
    blocks = with_class(root, "block")
    assert [classes(block) for block in blocks] == ["block nostep", "block PASS", "block nostep"]
    assert text_of(with_class(blocks[1], "empty")[0]) == "no modem traffic"
    assert text_of(with_class(parse(render([])), "empty")[0]) == "no rows recorded"


def test_the_modem_clock_shows_only_where_it_drifts_from_the_wall_clock():
    root = parse(render([row(0, "host", "AT", clock=10.0), row(1, "modem", "OK", clock=11.0),
                         row(2, "modem", "+IPD", clock=19.5)]))
    assert [text_of(e) for e in with_class(root, "time")[1:]] == ["+0.000", "+1.000", "+2.000clock 19.500"]


def test_a_network_row_without_a_direction_is_a_note_on_the_network():
    root = parse(render([row(0, "net", "fault: drop_ap")]))
    assert classes(with_class(root, "arrow")[0]) == "arrow note"


def test_the_keyword_draws_the_last_modem_even_after_it_stopped(tmp_path):
    library = AtModemLibrary(pki=str(tmp_path / "pki"))
    try:
        with pytest.raises(RuntimeError, match="no modem has run: Start Modem first"):
            library.log_session_diagram()
        library.start_modem()
        session = library._modem()
        with socket.create_connection(("127.0.0.1", library.get_modem_port()), timeout=5) as host:
            session.wait_for_output("ready\r\n")
            host.sendall(b"AT+CIPSEND=5\r\n")   # no link is open
            session.wait_for_output("ERROR\r\n")
        library.stop_modem()
        root = parse(library.log_session_diagram(rows=2))
    finally:
        library.stop_everything()
    assert root.get("data-failed-step") is None
    assert text_of(with_class(root, "omitted")[0]) == f"{len(session.transcript.rows()) - 2} earlier rows omitted"
    assert [(classes(r), text_of(with_class(r, "label")[0])) for r in with_class(root, "row")][-1] == (
        "row modem failure", "ERROR")


# ------------------------------------------------------------ in Chromium

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is not installed (make test installs it: scripts/setup-host --test-tools)")
    return found


def screenshot(page: Path, name: str, scratch: Path, height: int) -> Image.Image:
    png = SCREENSHOTS / name
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={scratch / 'chromium'}", f"--window-size=1400,{height}",
                    "--virtual-time-budget=10000", f"--screenshot={png}", page.as_uri()],
                   capture_output=True, timeout=60, check=True)
    return Image.open(png).convert("RGB")


def lines_of(image: Image.Image, colour: str, min_length: int = 60) -> list[tuple[int, int, int]]:
    """``(y, x_start, x_end)`` of each horizontal line at least ``min_length`` pixels long drawn in
    ``colour``; a line several pixels thick counts once, at its top."""
    red, green, blue = bytes.fromhex(colour.lstrip("#"))
    masks = [band.point(lambda value, want=want: 255 if abs(value - want) <= 2 else 0)
             for band, want in zip(image.split(), (red, green, blue))]
    mask = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2]).tobytes()
    width = image.width
    found: list[tuple[int, int, int]] = []
    for y in range(image.height):
        for run in re.finditer(rb"\xff{%d,}" % min_length, mask[y * width:(y + 1) * width]):
            span = (run.start(), run.end())
            if not any(previous_y >= y - 4 and near(x0, span[0]) and near(x1, span[1])
                       for previous_y, x0, x1 in found[-4:]):
                found.append((y, *span))
    return found


def near(a: int, b: int) -> bool:
    return abs(a - b) <= 14   # an arrowhead's width, and a line's end under it


def test_chromium_draws_one_arrow_per_row_between_the_right_lifelines(tmp_path):
    page = tmp_path / "diagram.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body style='margin:8px'>{render(SESSION, STEPS)}</body>")
    image = screenshot(page, "fragment.png", tmp_path, 900)
    lanes = {lane: lines_of(image, COLOURS[lane]) for lane in ("host", "modem", "net")}
    assert [len(lanes["host"]), len(lanes["modem"]), len(lanes["net"])] == [4, 4, 4]
    (host_y, host_x, modem_x), *_ = lanes["host"]
    assert all(near(x0, host_x) and near(x1, modem_x) for _, x0, x1 in lanes["host"] + lanes["modem"])
    network_x = modem_x + (modem_x - host_x)
    assert all(near(x0, modem_x) and near(x1, network_x) for _, x0, x1 in lanes["net"])
    red = lines_of(image, COLOURS["failure"])
    arrows = [(y, x0, x1) for y, x0, x1 in red if near(x1 - x0, modem_x - host_x)]
    assert [(near(x0, modem_x), near(x1, network_x)) for _, x0, x1 in arrows] == [(True, True), (False, False)]
    # the failed step's box and the outline around its rows: red edges reaching past the lifelines
    assert any(x0 < host_x - 100 for _, x0, _ in red) and any(x1 > network_x for _, _, x1 in red)
    # top to bottom in the rows' order: each arrow below the one before it
    drawn = sorted([(y, "host") for y, *_ in lanes["host"]] + [(y, "modem") for y, *_ in lanes["modem"]]
                   + [(y, "net") for y, *_ in lanes["net"]] + [(y, "failure") for y, *_ in arrows])
    assert [lane for _, lane in drawn] == ["failure" if r.failure else r.lane for r in SESSION]
    assert drawn[0][0] == host_y


# ------------------------------------------------------------ a real failing Robot run

@pytest.mark.timeout(120)
def test_a_failing_robot_test_logs_the_diagram_with_the_failing_step_marked(tmp_path):
    out = SCREENSHOTS / "robot"
    result = subprocess.run([sys.executable, "-m", "robot", "--outputdir", str(out), "--consolecolors", "off",
                             str(FAILING_SUITE)], capture_output=True, text=True, timeout=100)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "of listener 'AtModemLibrary' failed" not in result.stdout, result.stdout[-3000:]
    test = ElementTree.parse(out / "output.xml").find(".//test")
    assert test.find("status").get("status") == "FAIL"
    diagrams = [m.text for m in test.findall("msg") if m.get("html") == "true" and ROOT_CLASS in m.text]
    assert len(diagrams) == 1, "one diagram, logged by the library at the end of the failed test"
    root = parse(diagrams[0])
    assert root.get("data-failed-step") == "Command Should Succeed    AT+CIPSEND=5"
    failed = with_class(root, "failed-step")[0]
    assert "does not end with" in text_of(with_class(failed, "message")[0])
    failed_rows = with_class(failed, "row")
    assert [text_of(with_class(r, "label")[0]) for r in failed_rows if "host" in classes(r).split()] == ["AT+CIPSEND=5"]
    assert any("failure" in classes(r).split() and "ERROR" in text_of(r) for r in failed_rows)
    names = [text_of(with_class(band, "name")[0]) for band in with_class(root, "band") if len(band)]
    assert names[0] == "Setup: Host Joined The Access Point" and names[-1].startswith("Teardown: ")

    image = screenshot(out / "log.html", "log.png", tmp_path, 2400)
    for lane in ("host", "modem", "net"):
        assert lines_of(image, COLOURS[lane]), f"no {lane} arrow in the log's screenshot {SCREENSHOTS / 'log.png'}"
    assert len(lines_of(image, COLOURS["failure"])) >= 3, "the failed step's box, its outline and the ERROR arrow"

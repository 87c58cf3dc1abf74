"""A session as an HTML sequence diagram (Host | Modem | Network) for Robot Framework logs.

``render(rows, steps)`` turns the transcript's rows (``atmodem.transcript.Row``) into one
self-contained HTML fragment: no script, no external stylesheet, and every style rule scoped
under the ``atmodem-diagram`` class, so the fragment can sit inside Robot's log (which shows
HTML messages as they are) without touching the log's own look. The log styles plain class
names of its own (``.label``, ``.message``, ``.time``), so the fragment's carry an ``ad-`` prefix;
and its message cell keeps white space (``pre-wrap``), so there is none between the tags.

Robot keyword steps, when given, are drawn as a band on the left; the first failed one is boxed
in red with its message, and the rows inside its time span are outlined: that is where a reader
of a failing test's log looks first.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple, Sequence

from atmodem.transcript import Row, preview

ROOT_CLASS = "atmodem-diagram"
DEFAULT_LIMIT = 200
# The longest line text a row shows.
LINE_LIMIT = 240
PREVIEW_BYTES = 12   # what fits under an arrow at the log's usual width
# The modem clock is worth showing only where it drifts from the wall clock: under Renode's
# virtual time. A loop clock moves with the wall clock, give or take the scheduling jitter.
CLOCK_DRIFT = 0.005

# Arrow colours, one per lane, and the failure red; tests find these exact pixels in screenshots,
# and none is a colour Robot's log uses.
COLOURS = {"host": "#1565c0", "modem": "#2e7d32", "net": "#7b1fa2", "failure": "#dc143c"}

_STYLE = """
.R{all:initial;display:block;white-space:normal;font:12px/1.35 "DejaVu Sans",Arial,sans-serif;color:#1f2328;
background:#fff;border:1px solid #d0d7de;min-width:880px;max-width:1500px;padding:6px 8px 8px}
.R *{box-sizing:border-box}
.R .ad-title{font-weight:bold;font-size:13px;margin:2px 0 6px}
.R .ad-title .ad-sub{font-weight:normal;color:#57606a;margin-left:8px}
.R .ad-block{display:grid;grid-template-columns:220px 1fr;border-top:1px solid #eaeef2}
.R .ad-band{padding:4px 6px;border-left:6px solid #8c959f;background:#f6f8fa;overflow-wrap:anywhere}
.R .ad-band .ad-name{font-weight:bold}
.R .ad-band .ad-status{font-size:11px;color:#57606a}
.R .ad-nostep>.ad-band{border-left-color:transparent;background:none}
.R .ad-PASS>.ad-band{border-left-color:#8c959f}
.R .ad-SKIP>.ad-band,.R .ad-NOT_RUN>.ad-band{border-left-color:#d0d7de;color:#57606a}
.R .ad-FAIL>.ad-band{border:3px solid #dc143c;background:#ffebe9;color:#a40e26}
.R .ad-FAIL>.ad-band .ad-status{color:#a40e26;font-weight:bold}
.R .ad-failed-step>.ad-rows{position:relative;padding:3px 0}
.R .ad-failed-step>.ad-rows::after{content:"";position:absolute;inset:0;border:3px solid #dc143c;pointer-events:none}
.R .ad-message{margin-top:3px;font-family:"DejaVu Sans Mono",monospace;font-size:11px;white-space:pre-wrap}
.R .ad-row,.R .ad-head{display:grid;grid-template-columns:118px 1fr;min-height:28px}
.R .ad-time{padding:3px 4px 0 6px;font-family:"DejaVu Sans Mono",monospace;font-size:11px;color:#57606a;
text-align:right}
.R .ad-time .ad-clock{display:block;color:#8c959f}
.R .ad-stage{position:relative;min-height:28px;background:LIFELINES}
.R .ad-data .ad-stage{min-height:40px}
.R .ad-head .ad-stage{min-height:30px;background:none}
.R .ad-lifeline{position:absolute;top:3px;transform:translateX(-50%);padding:3px 14px;border-radius:3px;
background:#32383f;color:#fff;font-weight:bold}
.R .ad-lifeline.ad-host{left:10%}.R .ad-lifeline.ad-modem{left:50%}.R .ad-lifeline.ad-net{left:90%}
.R .ad-arrow{position:absolute;top:1px;display:flex;flex-direction:column;align-items:stretch;color:var(--c)}
.R .ad-h2m,.R .ad-m2h{left:10%;width:40%}
.R .ad-m2n,.R .ad-n2m{left:50%;width:40%}
.R .ad-note{left:58%;width:40%}
.R .ad-label{padding:0 10px;text-align:center;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;
font-family:"DejaVu Sans Mono",monospace;font-size:12px}
.R .ad-line{position:relative;height:0;border-top:3px solid var(--c);margin:1px 0}
.R .ad-line::after{content:"";position:absolute;top:-7px;border-top:5.5px solid transparent;
border-bottom:5.5px solid transparent}
.R .ad-h2m .ad-line::after,.R .ad-m2n .ad-line::after{right:-1px;border-left:11px solid var(--c)}
.R .ad-m2h .ad-line::after,.R .ad-n2m .ad-line::after{left:-1px;border-right:11px solid var(--c)}
.R .ad-note .ad-line{display:none}
.R .ad-note .ad-label{border:2px solid var(--c);border-radius:3px;background:#fff;margin-top:2px}
.R .ad-bytes{text-align:center;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;
font-family:"DejaVu Sans Mono",monospace;font-size:10.5px;color:#57606a}
.R .ad-link{display:inline-block;margin-right:5px;padding:0 3px;border-radius:2px;background:#eaeef2;color:#32383f;
font-size:10px}
.R .ad-host{--c:COLOUR_host}.R .ad-modem{--c:COLOUR_modem}.R .ad-net{--c:COLOUR_net}
.R .ad-failure{--c:COLOUR_failure;background:#ffebe9}
.R .ad-failure .ad-label{font-weight:bold}
.R .ad-echo .ad-arrow{opacity:.45}
.R .ad-omitted,.R .ad-empty{padding:4px 8px;color:#57606a;font-style:italic}
"""


class Step(NamedTuple):
    """One top-level Robot keyword step: Unix start and end, name, PASS/FAIL/SKIP/NOT RUN, message."""
    start: float
    end: float
    name: str
    status: str
    message: str = ""


# The host, modem and network lifelines: 2 px lines at 10 %, 50 % and 90 % of every row's stage.
_LIFELINES = ",".join(f"linear-gradient(to right,transparent calc({x}% - 1px),#afb8c1 calc({x}% - 1px),"
                      f"#afb8c1 calc({x}% + 1px),transparent calc({x}% + 1px))" for x in (10, 50, 90))


def style() -> str:
    css = _STYLE.replace(".R", f".{ROOT_CLASS}").replace("LIFELINES", _LIFELINES)
    for name, colour in COLOURS.items():
        css = css.replace(f"COLOUR_{name}", colour)
    return "".join(line.strip() for line in css.splitlines())


def data_line(data: bytes) -> str:
    """A data block in one line: its length, then its first bytes in hex and as ASCII."""
    hexes, text = preview(data, PREVIEW_BYTES)
    more = "…" if len(data) > PREVIEW_BYTES else ""
    return f"{len(data)} B │ {hexes}{more} │ {text}{more}"


def render(rows: Sequence[Row], steps: Sequence[Step | tuple] = (), *, limit: int = DEFAULT_LIMIT,
           title: str = "Session") -> str:
    """The rows (the last ``limit`` of them; 0: all) as an HTML fragment; ``steps`` draw the band on the left."""
    rows = list(rows)
    shown = rows[-limit:] if limit else rows
    steps = sorted(Step(*step) for step in steps)
    if len(shown) < len(rows):  # the steps that ended before the first row shown went with their rows
        steps = [step for step in steps if step.end >= shown[0].time]
    failed = next((step for step in steps if step.status == "FAIL"), None)
    origin = rows[0] if rows else None   # offsets count from the session's start, omitted rows or not
    failures = sum(row.failure for row in rows)
    span = f", {rows[-1].time - rows[0].time:.3f} s" if rows else ""
    lifelines = "".join(_element("span", f"lifeline {lane}", name)
                        for lane, name in (("host", "Host"), ("modem", "Modem"), ("net", "Network")))
    summary = _element("span", "sub", f"{len(rows)} rows, {failures} failed{span}")
    parts = [_element("div", "title", _escape(title), summary),
             _element("div", "head", _element("div", "time", "wall s"), _element("div", "stage", lifelines))]
    if len(shown) < len(rows):
        parts.append(_element("div", "omitted", f"{len(rows) - len(shown)} earlier rows omitted"))
    if not rows and not steps:
        parts.append(_element("div", "empty", "no rows recorded"))
    parts += [_block(step, inside, origin, step is failed) for step, inside in _blocks(shown, steps)]
    attributes = f' data-failed-step="{_escape(failed.name)}"' if failed else ""
    return f'<div class="{ROOT_CLASS}"{attributes}><style>{style()}</style>{"".join(parts)}</div>'


def _blocks(rows: list, steps: list[Step]):
    """``(step or None, rows)`` in time order: each step with the rows inside its span, and the rows between."""
    index = 0

    def take(until) -> list:
        nonlocal index
        start = index
        while index < len(rows) and until(rows[index].time):
            index += 1
        return rows[start:index]

    for step in steps:
        before = take(lambda moment: moment < step.start)
        if before:
            yield None, before
        yield step, take(lambda moment: moment <= step.end)
    rest = take(lambda moment: True)
    if rest:
        yield None, rest


def _block(step: Step | None, rows: list, origin, failed: bool) -> str:
    if step is None:
        band, classes = "", "nostep"
    else:
        message = _element("div", "message", _escape(step.message)) if step.message else ""
        band = (_element("div", "name", _escape(step.name))
                + _element("div", "status", f"{_escape(step.status)} · {step.end - step.start:.3f} s") + message)
        classes = re.sub(r"[^A-Za-z0-9_-]", "_", step.status) + (" failed-step" if failed else "")
    body = "".join(_row(row, origin) for row in rows) or _element("div", "empty", "no modem traffic")
    return _element("div", f"block {classes}", _element("div", "band", band), _element("div", "rows", body))


_DIRECTIONS = {("host", ""): "h2m", ("modem", ""): "m2h", ("net", "out"): "m2n", ("net", "in"): "n2m"}


def _row(row: Row, origin) -> str:
    offset = row.time - origin.time
    clock = ""
    if abs((row.clock - origin.clock) - offset) > CLOCK_DRIFT:
        clock = _element("span", "clock", f"clock {row.clock:.3f}")
    link = _element("span", "link", f"link {row.link}") if row.link is not None else ""
    text = _shortened(row.text)
    label, data = text, ""
    if row.data is not None:   # the row's text previews the bytes too: the line under the arrow does that here
        label, data = f"data, {len(row.data)} bytes", _element("div", "bytes", _escape(data_line(row.data)))
    elif row.echo:
        label = f"echo: {text}"
    flags = "".join(f" {flag}" for flag, on in (("failure", row.failure), ("data", data), ("echo", row.echo)) if on)
    arrow = _element("div", f"arrow {_DIRECTIONS.get((row.lane, row.toward), 'note')}",
                     _element("div", "label", _escape(label)), _element("div", "line"), data,
                     title=f"{row.command}: {text}" if row.command else text)
    return _element("div", f"row {row.lane}{flags}", _element("div", "time", f"{link}+{offset:.3f}{clock}"),
                    _element("div", "stage", arrow))


def _element(tag: str, classes: str, *content: str, title: str | None = None) -> str:
    """``content`` is markup already; class names get the prefix that keeps Robot's log styles off them."""
    names = " ".join(f"ad-{name}" for name in classes.split())
    tip = f' title="{_escape(title)}"' if title is not None else ""
    return f'<{tag} class="{names}"{tip}>{"".join(content)}</{tag}>'


def _shortened(text: str) -> str:
    """A line of garbage without an end may be a megabyte: a log shows its start and its size."""
    return text if len(text) <= LINE_LIMIT else f"{text[:LINE_LIMIT]}... ({len(text)} characters)"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)

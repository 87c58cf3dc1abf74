"""Faults to inject into a modem's world: what goes wrong, where, when and how often.

A ``Fault`` is plain data; the ``Faults`` registry a ``World`` carries (``world.faults``)
holds them, counts what fired and tells the world's modems when one is added while they
run. Who applies which kind:

* the ``faults`` plugin (``plugins/atmodem_faults``): ``response`` (answer a command with
  other bytes), ``latency`` (a command starts ``seconds`` late, the modem BLOCKED meanwhile),
  and the timed kinds ``drop_ap`` (an AP switches off; back after ``seconds`` if given),
  ``unplug_cable`` (likewise), ``reboot`` and ``corrupt_state`` (garbage in the state
  directory's flash file, then a reboot: the chip boots with factory defaults);
* the network (``atmodem.net``): ``dns_fail`` (the name does not resolve), ``refuse`` (the
  connection is refused), ``reset`` (the peer resets the link), ``stall`` (the link delivers
  nothing for ``seconds``, then everything), ``truncate`` (the peer's stream ends, a FIN),
  all after ``after_bytes`` bytes have arrived on the link (0: at once), and ``tls_alert``
  (the server answers the ClientHello with a fatal alert).

``at`` is modem-clock seconds since power-on: a timed kind happens then, any other kind is
inert until then. Each modem counts from its own power-on, so in a world several modems share
a fault may be live for one and not yet for another. Without ``at`` a timed kind happens at
once (at power-on, or when added to a running modem) and any other kind is live at once.
``times`` limits how often a fault fires (``None``: every time it matches); a link fault armed
on several links fires on those that reach its byte count first, and on none once removed.

The registry keeps how often each kind fired (``counts``) and the latest ``RECENT`` firings
(``fired``), so a long run with faults costs no memory per firing.

The same fault in its three spellings::

    world.faults.add(Fault("latency", command="+CIPSTART", seconds=2, times=1))

    [[fault]]                                # in the world's TOML
    kind = "latency"
    command = "+CIPSTART"
    seconds = 2
    times = 1

    kind=latency,command=+CIPSTART,seconds=2,times=1     # atmodem serve --fault, Robot's Inject Fault

In the one-line form a value may be double-quoted (to hold commas) and ``response`` takes
Python's backslash escapes (``\\r\\n``, ``\\x2c``); in TOML, TOML's own escapes apply.
"""

from __future__ import annotations

import codecs
import collections
import re
import ssl
from dataclasses import dataclass, field, fields
from typing import Callable, Optional

COMMAND_KINDS = ("response", "latency")
TIMED_KINDS = ("drop_ap", "unplug_cable", "reboot", "corrupt_state")
LINK_KINDS = ("refuse", "reset", "stall", "truncate", "tls_alert")
KINDS = COMMAND_KINDS + TIMED_KINDS + ("dns_fail",) + LINK_KINDS

# Firings the registry keeps (the oldest go first); ``counts`` keeps the tally of all.
RECENT = 1000

# What each kind needs and what it may carry besides kind, at and times.
_REQUIRED = {"response": {"command", "response"}, "latency": {"command", "seconds"},
             "drop_ap": {"ssid"}, "stall": {"seconds"}}
_ALLOWED = {
    "response": {"command", "response"},
    "latency": {"command", "seconds"},
    "drop_ap": {"ssid", "seconds"},
    "unplug_cable": {"seconds"},
    "reboot": set(),
    "corrupt_state": set(),
    "dns_fail": {"host"},
    "refuse": {"host", "port"},
    "reset": {"host", "port", "after_bytes"},
    "stall": {"host", "port", "after_bytes", "seconds"},
    "truncate": {"host", "port", "after_bytes"},
    "tls_alert": {"host", "port", "alert"},
}


@dataclass(eq=False)
class Fault:
    kind: str
    command: Optional[str] = None       # response, latency: the command's name as typed after AT ("+CIPSTART")
    ssid: Optional[str] = None          # drop_ap
    host: Optional[str] = None          # network kinds: a name or an address (None: any)
    port: Optional[int] = None          # link kinds: the port the modem dials (None: any)
    at: Optional[float] = None          # modem-clock seconds since power-on (None: now)
    response: Optional[bytes] = None    # response: the answer, every byte of it
    seconds: float = 0.0                # latency, stall; drop_ap and unplug_cable: until it comes back (0: never)
    after_bytes: int = 0                # reset, stall, truncate: bytes the link receives first
    alert: str = "handshake_failure"    # tls_alert: the alert's description (RFC 5246 name)
    times: Optional[int] = None         # how often it may fire (None: always)
    fired: int = field(default=0, init=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(KINDS)})")
        given = {f.name for f in fields(self) if f.init and f.name not in ("kind", "at", "times", "alert")
                 and getattr(self, f.name) not in (None, 0, 0.0)}
        if self.alert != "handshake_failure":
            given.add("alert")
        missing = _REQUIRED.get(self.kind, set()) - given
        if missing:
            raise ValueError(f"a {self.kind} fault needs {', '.join(sorted(missing))}")
        extra = given - _ALLOWED[self.kind]
        if extra:
            raise ValueError(f"a {self.kind} fault takes no {', '.join(sorted(extra))}")
        if self.command is not None:
            self.command = _command_name(self.command)
        if isinstance(self.response, str):
            self.response = self.response.encode("latin-1")
        if self.port is not None:
            self.port = int(self.port)
        self.seconds = float(self.seconds)
        self.after_bytes = int(self.after_bytes)
        self.alert_code = alert_code(self.alert)
        if self.times is not None and int(self.times) < 1:
            raise ValueError("times must be at least 1 (leave it out for always)")
        if self.at is not None:
            self.at = float(self.at)

    @property
    def timed(self) -> bool:
        return self.kind in TIMED_KINDS

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def live(self, uptime: float) -> bool:
        """Whether it may fire on a modem ``uptime`` seconds after that modem's power-on."""
        return not self.spent and (self.at is None or uptime >= self.at)

    def matches_command(self, name: str) -> bool:
        return self.command == name.upper()

    def matches_name(self, name: str) -> bool:
        return self.host is None or self.host.lower() == name.lower()

    def matches_endpoint(self, lookup: Callable[[str], Optional[str]], address: str, port: int) -> bool:
        """Whether a link the modem dials to ``address:port`` is this fault's (``host`` may be a name
        the world maps to ``address``)."""
        if self.port is not None and self.port != port:
            return False
        return self.host is None or self.host == address or lookup(self.host) == address

    def describe(self) -> dict:
        """The fault as the one-line spec's fields (for reports and traces)."""
        shown = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.init and f.name != "kind" and value is not None and value != f.default:
                shown[f.name] = value.decode("latin-1") if isinstance(value, bytes) else value
        return shown


@dataclass(frozen=True)
class Firing:
    """One time a fault fired: when (modem clock), what it hit, and its place in the world's count."""

    fault: Fault
    time: float
    details: dict
    number: int

    def summary(self) -> dict:
        """What observers hear (``modem.report("fault", **summary)``): ``fault`` (the kind), the
        fault's other fields and what it hit."""
        fields_ = self.fault.describe()
        return {"fault": fields_.pop("kind"), **fields_, **self.details}


class Faults:
    """The faults of one world; ``world.faults``."""

    def __init__(self, faults=()):
        self._faults: list[Fault] = []
        self.fired: collections.deque[Firing] = collections.deque(maxlen=RECENT)
        self.counts: collections.Counter[str] = collections.Counter()
        self.total = 0   # firings ever (since the last clear), the next firing's number
        # The world points this at its event emitter, so running modems hear of new faults.
        self.on_added: Callable[[Fault], None] = lambda fault: None
        for fault in faults:
            self.add(fault)

    def __bool__(self) -> bool:
        return bool(self._faults)

    def __iter__(self):
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def __contains__(self, fault: Fault) -> bool:
        return fault in self._faults

    def add(self, fault: Fault | str | dict | None = None, **options) -> Fault:
        """Add a ``Fault``, a one-line spec, a TOML table, or ``kind=…`` keywords; return the fault."""
        if fault is None:
            fault = Fault(**options)
        elif isinstance(fault, str):
            fault = parse_spec(fault)
        elif isinstance(fault, dict):
            fault = from_table(fault)
        self._faults.append(fault)
        self.on_added(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        if fault in self._faults:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Forget every fault and every firing."""
        self._faults.clear()
        self.fired.clear()
        self.counts.clear()
        self.total = 0

    def live(self, kinds: tuple[str, ...], uptime: float) -> list[Fault]:
        return [f for f in self._faults if f.kind in kinds and f.live(uptime)]

    def holds(self, fault: Fault) -> bool:
        """Whether ``fault``, armed on a link a while ago, may still fire: not removed, not spent."""
        return not fault.spent and fault in self._faults

    def take(self, fault: Fault, time: float, report: Callable[..., None], **details) -> Firing:
        """Count a firing of ``fault`` (the caller applies it), remember it and tell ``report``
        (a modem's ``report``)."""
        fault.fired += 1
        firing = Firing(fault, time, details, self.total)
        self.total += 1
        self.counts[fault.kind] += 1
        self.fired.append(firing)
        report("fault", **firing.summary())
        return firing

    def have_fired(self, kind: Optional[str] = None) -> list[Firing]:
        """The firings kept (the latest ``RECENT``), of ``kind`` if given."""
        return [f for f in self.fired if kind is None or f.fault.kind == kind]

    def since(self, number: int) -> list[Firing]:
        """The firings kept from the one numbered ``number`` on (``total`` then: what fires after now)."""
        return [f for f in self.fired if f.number >= number]

    # -------------------------------------------------------- the network's questions

    def dns_failure(self, name: str, uptime: float) -> Optional[Fault]:
        return next((f for f in self.live(("dns_fail",), uptime) if f.matches_name(name)), None)

    def for_link(self, kinds: tuple[str, ...], lookup, address: str, port: int, uptime: float) -> Optional[Fault]:
        return next((f for f in self.live(kinds, uptime) if f.matches_endpoint(lookup, address, port)), None)


def alert_code(name: str | int) -> int:
    """A TLS alert description by its RFC 5246 name (``handshake_failure``) or number."""
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    try:
        return int(ssl.AlertDescription["ALERT_DESCRIPTION_" + str(name).upper()])
    except KeyError:
        raise ValueError(f"unknown TLS alert {name!r}") from None


def _command_name(text: str) -> str:
    """``AT+CIPSTART``, ``+cipstart`` → ``+CIPSTART``; ``AT`` → ``""`` (the bare command)."""
    text = text.strip().upper()
    return text[2:] if text.startswith("AT") else text


_FIELD = re.compile(r'\s*(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')
_NUMBERS = {"port": int, "after_bytes": int, "times": int, "seconds": float}


def parse_spec(spec: str) -> Fault:
    """``kind=latency,command=+CIPSTART,seconds=2`` → a ``Fault``."""
    values: dict = {}
    position = 0
    spec = spec.strip()
    while position < len(spec):
        match = _FIELD.match(spec, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read the fault spec at {spec[position:]!r} (expected name=value,…)")
        name, value = match.group(1), match.group(2)
        if value.startswith('"'):
            value = value[1:-1]
        if name == "response":
            value = codecs.escape_decode(value.encode("latin-1"))[0]
        values[name] = value
        position = match.end()
    return from_table(values)


def from_table(table: dict) -> Fault:
    """A ``[[fault]]`` table of the world's TOML (or a parsed spec) → a ``Fault``."""
    known = {f.name for f in fields(Fault) if f.init}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"unknown fault key(s): {', '.join(sorted(unknown))}")
    if "kind" not in table:
        raise ValueError("a fault needs a kind")
    options = dict(table)
    for name, kind in _NUMBERS.items():
        if name in options:
            options[name] = kind(options[name])
    if "at" in options:
        options["at"] = None if options["at"] in ("now", "") else float(options["at"])
    return Fault(**options)

"""A stateful fuzz of the whole ESP_ATMod model: random mixes of valid commands from the profile's own
table, mutated lines, garbage, CIPSEND payloads, certificate uploads, time passing, peers that connect,
send and close, and resets, on the manual clock with real sockets to a local echo server.

Invariants, after every step:
* nothing raises, and nothing in atmodem or a plugin logs an error (a plugin bug is logged and
  answered ERROR by the engine, so the log is where it shows);
* the modem comes back to idle within ``BOUND`` seconds of virtual time (except for the spec's
  AT+CWLAP that never ends, §6.2: sort ≥ 2, which the machine ends with a reset, as a host's
  watchdog would), and at the end a recovery sequence (finish a data block, end a line) gets
  ``OK`` for ``AT``;
* a complete command line of at most 200 bytes, sent in COMMAND mode, gets exactly one terminal
  answer (``OK``, ``ERROR``, ``FAIL``, the prompts, which all end in one of those), or none for the
  spec's silent form (``AT+CIPRECVLEN=…``, spec §7.3);
* ``AT+CIPSTATUS`` lists exactly the modem's open links, each with the host socket's real ends;
* a reset keeps what spec §5 keeps (the UART in EEPROM) and forgets the RAM settings, and closes every
  socket of the old boot.

A step counts only when its rule did something that was checked (``Steps``): ``ANSWER`` when an
assertion of the rule's own looked at what the modem answered, ``INPUT`` when the rule gave the
modem input, time or a peer's event and only the checks above every step (no error logged, idle
again within ``BOUND``) looked at the outcome. A rule that found nothing to do (no COMMAND mode for
its command, no peer to send with, an empty chunk) returns None and is only counted as drawn.

``bench/fuzz.py`` runs the same machine for 100,000 checked steps and more.
"""

import functools
import logging
import re
import socket
from collections import Counter

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from atmodem.commands import Match
from atmodem.engine import Mode
from atmodem.lab import EchoServer
from atmodem.lab.pki import issue, utc
from atmodem.plugins import PluginSet, get_profile
from atmodem.profiles import DEFAULT_PROFILE
from atmodem.world import World
from atmodem_wifi import SCAN_OPTIONS
from support import JOIN, Harness, recovers
from test_bad_input import COMMANDS as BASIC_COMMANDS
from test_network_fuzz import _Failures, commands as network_commands

# Past the longest wait a command may hold the modem (a failed join, a send or connect timeout, a TLS
# handshake on top of a connect), short of AT+CIPSTO, which only closes links.
BOUND = 30.0
LINE_LIMIT = 200
# A terminal answer is a line of its own (so "Link type ERROR" is text before one); the prompts end in OK.
TERMINAL = re.compile(rb"(?:^|\n)(?:SEND )?(?:OK|ERROR|FAIL)\r\n")
# The set form of AT+CIPRECVLEN says nothing (spec §7.3); other lines the QUERY_SET matcher skips.
SILENT = re.compile(rb"^AT\+CIPRECVLEN=")
DATA_BLOCK = re.compile(rb"\r\n\+(?:IPD,(?:\d+,)?|CIPRECVDATA,)(\d+)(?:,[^:,\r\n]*,\d+)?:")
STATUS_LINE = re.compile(rb'\+CIPSTATUS:(\d),"(\w+)","([^"]*)",(\d+),(\d+),0\r\n')
ARGUMENTS = [b"0", b"1", b"2", b"3", b"5", b"80", b"180", b"333", b"2048", b"9600", b"", b"?", b'"atmodem-lab"',
             b'"atmodem-pass"', b'"127.0.0.1"', b'"TCP"', b'"SSL"', b'"localhost"', b'"192.168.4.1"', b"DELETE"]
# What every boot restores (spec §4 step 6, §5: RAM settings); the query and its answer.
BOOT_DEFAULTS = {b"AT+CIPMUX?": b"+CIPMUX:0", b"AT+CIPRECVMODE?": b"+CIPRECVMODE:0", b"AT+CIPSTO?": b"+CIPSTO:180",
                 b"AT+CIPDINFO?": b"+CIPDINFO:FALSE", b"AT+CIPSERVERMAXCONN?": b"+CIPSERVERMAXCONN:5"}
# Links to this port go to the echo server (the world forwards them), so every line can be drawn up front.
ECHO = 7
PEM = issue("atmodem Fuzz Root", None, ca=True, start=utc(2025), end=utc(2035)).pem


def table_lines():
    """Every form the default profile's command table accepts, with plausible arguments."""
    forms = []
    for entry in PluginSet(get_profile(DEFAULT_PROFILE)).table.entries:
        name = b"AT" + entry.command.name.encode()
        if entry.command.match is Match.EXACT:
            forms.append(st.just(name))
            continue
        forms.append(st.just(name + b"?"))
        forms.append(st.lists(st.sampled_from(ARGUMENTS), min_size=1, max_size=5).map(
            lambda args, name=name: name + b"=" + b",".join(args)))
        if entry.command.match is Match.NO_CHECK:
            forms.append(st.just(name))
    return st.one_of(forms)


VALID = st.one_of(
    st.sampled_from([c for c in BASIC_COMMANDS if not c.startswith(b"AT+TEST")] + network_commands(ECHO)),
    table_lines())


@st.composite
def mutated(draw, lines):
    """A valid line, then one of: a flipped bit, truncation, case changes, stray CR/LF, over-long."""
    line = bytearray(draw(lines))
    how = draw(st.sampled_from(["flip", "truncate", "lower", "swapcase", "stray", "long"]))
    if how == "flip" and line:
        i = draw(st.integers(0, len(line) - 1))
        line[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del line[draw(st.integers(0, len(line))):]
    elif how == "lower":
        line = bytearray(line.lower())
    elif how == "swapcase":
        line = bytearray(line.swapcase())
    elif how == "stray":
        line.insert(draw(st.integers(0, len(line))), draw(st.sampled_from(b"\r\n")))
    else:
        line += b"," * draw(st.integers(LINE_LIMIT - len(line) - 4, 2 * LINE_LIMIT))
    return bytes(line) + draw(st.sampled_from([b"\r\n", b"\n", b"\r", b""]))


MUTATED = mutated(VALID)


def without_data(out: bytes) -> bytes:
    """The output with the bytes of +IPD and +CIPRECVDATA blocks (which the echo peer chose) cut out."""
    kept, at = [], 0
    while found := DATA_BLOCK.search(out, at):
        kept.append(out[at:found.end()])
        at = found.end() + int(found.group(1))
    return b"".join(kept) + out[at:]


def terminals(out: bytes) -> int:
    return len(TERMINAL.findall(without_data(out)))


def uart_setting(answer: bytes) -> bytes:
    """The parameters in an AT+UART_CUR? or AT+UART_DEF? answer (echoed data may come around it)."""
    found = re.search(rb"\+UART_(?:CUR|DEF):([\d,]+)\r\n", without_data(answer))
    assert found, answer
    return found.group(1)


def answers_at(h: Harness) -> bool:
    """``recovers``' sequence (finish, fill a data block, end a line), then AT must get its OK line.

    ``recovers`` looks only at the end of the output, where echoed ``+IPD`` data may follow the
    OK; so AT is asked once more and answered with the data cut out.
    """
    recovers(h)
    answer = without_data(h.send(b"AT\r\n"))
    return re.search(rb"(?:^|\n)OK\r\n", answer) is not None and h.idle


ANSWER = "answer"
INPUT = "input"


class Steps:
    """What the rules did over every example: each rule's draws, and its steps by what checked them."""

    def __init__(self):
        self.drawn: Counter = Counter()      # rule name -> times hypothesis ran it
        self.checked: Counter = Counter()    # (rule name, ANSWER or INPUT) -> steps

    def count(self, rule: str, outcome) -> None:
        self.drawn[rule] += 1
        if outcome is not None:
            self.checked[rule, outcome] += 1

    def total(self, outcome=None) -> int:
        """Checked steps, all of them or those of one outcome."""
        return sum(n for (_, kind), n in self.checked.items() if outcome in (None, kind))


class EndlessScan(Exception):
    """The modem hung as the spec says it does (AT+CWLAP with sort ≥ 2) and was reset."""


def counted(rule_function):
    """Counts the rule as drawn, and as a checked step by the outcome it returns (ANSWER, INPUT or None)."""
    @functools.wraps(rule_function)
    def run(self, *args, **kwargs):
        try:
            outcome = rule_function(self, *args, **kwargs)
        except EndlessScan:
            outcome = ANSWER
        EngineMachine.steps.count(rule_function.__name__, outcome)
    return run


class EngineMachine(RuleBasedStateMachine):
    echo_port = 0    # set by the runner: a live echo server on 127.0.0.1, the world's port ECHO
    steps = Steps()
    examples = 0

    @initialize()
    def boot(self):
        type(self).examples += 1
        world = World.default()
        world.forward_port("127.0.0.1", ECHO, "127.0.0.1", self.echo_port)
        self.h = Harness(world=world)
        self.clients: list[socket.socket] = []
        self.unsure = False    # a partial line may wait in the line buffer
        self.sending = 0       # bytes a CIPSEND waits for, as the prompt said
        self.pending_length = 0

    def teardown(self):
        h = getattr(self, "h", None)
        if h is None:
            return
        try:
            assert answers_at(h), "AT got no OK after the recovery sequence"
        finally:
            for client in self.clients:
                client.close()
            h.close()

    # ------------------------------------------------------------------------------ helpers

    def settle(self) -> bytes:
        """Let the modem finish what it started, within ``BOUND`` of virtual time."""
        try:
            self.h.pump(lambda: self.h.idle, timeout=2.0, horizon=BOUND)
        except TimeoutError:
            if self.h.modem.settings.get(SCAN_OPTIONS)[0] < 2:
                raise
            # Spec §6.2: after AT+CWLAPOPT sets sort ≥ 2 the next AT+CWLAP is BUSY for good.
            self.h.modem.reset_now()
            self.h.pump(lambda: b"\r\nready\r\n" in self.h.out)
            self.h.take()
            self.unsure, self.sending = False, 0
            raise EndlessScan from None
        self.h.reactor.poll(0)
        self.h.clock.advance(0)
        return self.h.take()

    def command_mode(self) -> bool:
        """Idle in COMMAND mode with an empty line buffer (a partial line is ended first)."""
        if self.h.modem.mode is not Mode.COMMAND:
            return False
        if self.unsure:
            self.h.modem.feed(b"\r\n")
            self.note(self.settle())
            self.unsure = False
        return self.h.modem.mode is Mode.COMMAND

    def note(self, out: bytes) -> None:
        """Follow the prompts: after ``OK\\r\\n> `` the modem takes that many bytes (spec §7.1)."""
        if out.endswith(b"OK\r\n> "):
            self.sending = self.pending_length
        elif self.h.modem.mode is not Mode.RAW:
            self.sending = 0

    def ask(self, line: bytes) -> bytes:
        """Send one command line; its answer without the echo, after checking it has one terminal."""
        echo = self.h.modem.echo
        send = re.fullmatch(rb"AT\+CIPSEND=(?:\d,)?(\d+)", line)
        self.pending_length = int(send.group(1)) if send else 0
        self.h.modem.feed(line + b"\r\n")
        out = self.settle()
        self.note(out)
        if echo:
            assert out.startswith(line + b"\r\n"), f"{line!r}: no echo first in {out!r}"
            out = out[len(line) + 2:]
        expected = 0 if SILENT.match(line + b"\r\n") else 1
        assert terminals(out) == expected, f"{line!r} got {terminals(out)} terminal answers: {out!r}"
        return out

    # -------------------------------------------------------------------------------- rules

    @rule(line=VALID)
    @counted
    def valid_command(self, line):
        return self.command_or_input(line + b"\r\n")

    @rule(chunk=MUTATED)
    @counted
    def mutated_input(self, chunk):
        return self.command_or_input(chunk)

    def command_or_input(self, chunk: bytes):
        """A single line in COMMAND mode is checked for its one answer; anything else is just input."""
        single = chunk.endswith(b"\r\n") and b"\n" not in chunk[:-1] and b"\r" not in chunk[:-2]
        if single and len(chunk) <= LINE_LIMIT and self.command_mode():
            self.ask(chunk[:-2])
            return ANSWER
        return self.input(chunk)

    def input(self, data: bytes):
        """Bytes the modem takes as they come; it must settle within ``BOUND``."""
        if not data:
            return None
        self.h.modem.feed(data)
        self.note(self.settle())
        self.unsure = True
        return INPUT

    @rule(garbage=st.one_of(st.binary(max_size=300), st.sampled_from([b"\x00" * 64, b"+++", b"\xff" * 10])))
    @counted
    def garbage(self, garbage):
        return self.input(garbage)

    @rule(mux=st.booleans(), size=st.integers(0, 2048), alphabet=st.sampled_from([b"abc\x00\xff", b"OK\r\nERROR"]))
    @counted
    def cipsend(self, mux, size, alphabet):
        """A link to the echo server, then a payload the size the prompt asked for."""
        if not self.command_mode():
            return None
        if not self.h.modem.interfaces.sta.up:
            self.h.modem.feed(JOIN)
            self.settle()
        self.ask(b"AT+CIPMUX=%d" % mux)
        self.ask(b'AT+CIPSTART=%s"TCP","127.0.0.1",%d' % (b"0," if mux else b"", ECHO))
        if self.h.modem.mode is not Mode.COMMAND:
            return ANSWER
        self.ask(b"AT+CIPSEND=%s%d" % (b"0," if mux else b"", size))
        if self.sending:
            self.payload(bytes(alphabet[i % len(alphabet)] for i in range(size)) or b"x")
        return ANSWER

    @rule(data=st.binary(min_size=1, max_size=2100))
    @counted
    def raw_bytes(self, data):
        """Bytes for a data block, if the modem waits for one (else plain input)."""
        return self.payload(data)

    def payload(self, data: bytes):
        expected, self.sending = self.sending, 0
        self.h.modem.feed(data)
        out = self.settle()
        self.note(out)
        self.unsure = True
        if expected and len(data) >= expected and b"CLOSED" not in out:
            # Recv, then exactly one SEND OK or SEND FAIL (a link deleted meanwhile ends silently, §16.2).
            answer = without_data(out)
            assert answer.count(b"\r\nRecv %d bytes\r\n" % expected) == 1, answer
            assert terminals(answer) == 1 and b"\r\nSEND " in answer, answer
            return ANSWER
        return INPUT

    @rule(form=st.sampled_from(["lf", "crlf", "escaped", "truncated", "illegal", "nul"]))
    @counted
    def certificate(self, form):
        if not self.command_mode():
            return None
        out = self.ask(b"AT+CIPSSLCERT")
        if not out.endswith(b"\r\nOK\r\n>"):
            return ANSWER
        pem = {"lf": PEM, "crlf": PEM.replace(b"\n", b"\r\n"), "escaped": PEM.replace(b"\n", b"\\n"),
               "truncated": PEM[:len(PEM) // 2] + PEM[-26:], "illegal": PEM[:100] + b"." + PEM[100:],
               "nul": PEM[:60] + b"\x00" + PEM[60:]}[form]
        self.h.modem.feed(pem)
        out = self.settle()
        if form in ("lf", "crlf", "escaped"):
            assert re.match(rb"\r\nRead \d+ bytes\r\n", out), out
            assert terminals(out) == 1, out
        self.unsure = True
        return ANSWER

    @rule(seconds=st.sampled_from([0.001, 0.02, 0.3, 1.0, 3.0, 6.0]))
    @counted
    def time_passes(self, seconds):
        """Input only when a timer falls in the span (or the modem says something meanwhile)."""
        due = self.h.clock.next_due()
        end = self.h.clock.now() + seconds
        out = self.h.advance(seconds)
        self.note(out)
        return INPUT if out or (due is not None and due <= end) else None

    @rule()
    @counted
    def peer_connects(self):
        """A host-side client dials the modem's server port 333; if none listens, the modem starts one.

        Drawn lines alone hardly ever start a server (AT+CIPMUX=1 first), and without one no peer
        ever connects, sends or closes."""
        from atmodem_tcpip import server_ports
        outcome = INPUT
        if 333 not in server_ports(self.h.modem):
            if not self.command_mode():
                return None
            self.ask(b"AT+CIPMUX=1")
            self.ask(b"AT+CIPSERVER=1,333")
            outcome = ANSWER
        ports = server_ports(self.h.modem)
        if 333 in ports:
            # A peer dials without waiting: a modem with no room left may let the dial hang.
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(ports[333])
            self.clients.append(client)
            self.note(self.h.advance(0.05))
        return outcome

    @rule(data=st.binary(min_size=1, max_size=500), index=st.integers(0, 7))
    @counted
    def peer_sends(self, data, index):
        if not self.clients:
            return None
        try:
            self.clients[index % len(self.clients)].send(data)
        except OSError:  # not connected (yet), or its buffer is full
            return None
        self.h.reactor.poll(0.002)
        return INPUT

    @rule(index=st.integers(0, 7))
    @counted
    def peer_closes(self, index):
        if not self.clients:
            return None
        self.clients.pop(index % len(self.clients)).close()
        self.h.reactor.poll(0.002)
        return INPUT

    @rule()
    @counted
    def links_match_the_host(self):
        """AT+CIPSTATUS lists exactly the open links, each with its socket's real ends."""
        if not self.command_mode():
            return None
        out = self.ask(b"AT+CIPSTATUS")
        table = self.h.modem.runtime.get("tcpip")
        slots = [s for s in (table.slots if table else []) if s is not None and s.link.connected]
        if table and not table.mux():
            slots = [s for s in slots if s.index == 0]
        if out.startswith(b"STATUS:5"):  # no station: the firmware lists nothing
            return ANSWER
        listed = {int(m.group(1)): m for m in STATUS_LINE.finditer(out)}
        assert set(listed) == {s.index for s in slots}, (out, slots)
        for slot in slots:
            sock = getattr(slot.link, "sock", None)
            if sock is None or slot.link.kind != "TCP":
                continue
            entry = listed[slot.index]
            assert sock.fileno() != -1, f"link {slot.index} is listed but its socket is closed"
            assert int(entry.group(5)) == slot.link.local_port, out
            if slot.link.server_port:
                continue
            try:
                far_end = sock.getpeername()[:2]
            except OSError:  # the peer is gone; the modem says CLOSED once the network's latency has passed
                continue
            dialled = (entry.group(3).decode(), int(entry.group(4)))
            assert self.h.world.route(*dialled) == far_end, out
        return ANSWER

    @rule(restore=st.booleans())
    @counted
    def reset(self, restore):
        """AT+RST keeps the EEPROM (spec §5), AT+RESTORE resets it; both forget RAM and close sockets."""
        if not self.command_mode():
            return None
        saved = uart_setting(self.ask(b"AT+UART_DEF?"))
        old = [s.link.sock for s in self.h.modem.runtime["tcpip"].slots if s and hasattr(s.link, "sock")] \
            if "tcpip" in self.h.modem.runtime else []
        self.ask(b"AT+RESTORE" if restore else b"AT+RST")
        assert self.h.modem.echo, "echo is on after every boot"
        assert all(sock.fileno() == -1 for sock in old), "a socket of the old boot is still open"
        expected = b"115200,8,1,0,0" if restore else saved
        now = uart_setting(self.ask(b"AT+UART_CUR?"))
        assert now == expected, f"after {'AT+RESTORE' if restore else 'AT+RST'}: {now!r}, expected {expected!r}"
        for query, answer in BOOT_DEFAULTS.items():
            assert answer + b"\r\n" in self.ask(query), query
        return ANSWER

    @invariant()
    def no_error_logged(self):
        records = [r for r in FAILURES.records if r.name.startswith("atmodem")]
        assert not records, [r.getMessage() for r in records]


FAILURES = _Failures()


def run(echo_port: int, examples: int, steps_per_example: int = 50, database=None) -> None:
    """Run the machine for ``examples`` examples (each up to ``steps_per_example`` steps)."""
    EngineMachine.echo_port = echo_port
    logging.getLogger().addHandler(FAILURES)
    try:
        run_state_machine_as_test(EngineMachine, settings=settings(
            max_examples=examples, stateful_step_count=steps_per_example, deadline=None, database=database,
            suppress_health_check=list(HealthCheck)))
    finally:
        logging.getLogger().removeHandler(FAILURES)


def test_engine_fuzz_short():
    FAILURES.records.clear()
    server = EchoServer()
    before = EngineMachine.steps.total(ANSWER)
    try:
        run(server.port, examples=100, steps_per_example=50)
    finally:
        server.close()
    assert EngineMachine.steps.total(ANSWER) > before, "no step checked an answer"

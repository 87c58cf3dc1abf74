"""Whatever arrives, the modem neither raises nor hangs, and answers AT afterwards."""

from hypothesis import HealthCheck, given, settings, strategies as st

from conversation import OK
from probes import BusyProbe, RawProbe
from support import Harness, recovers

COMMANDS = [b"AT", b"ATE0", b"ATE1", b"AT+GMR", b"AT+RST", b"AT+RESTORE", b"AT+SYSRAM?", b"AT+UART_CUR=9600,8,1,0,0",
            b"AT+UART_DEF?", b"AT+SYSCPUFREQ=160", b"AT+RFMODE?", b"AT+TESTBUSY=2", b"AT+TESTRAW=5", b"at", b"+++"]

chunks = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from(COMMANDS).map(lambda c: c + b"\r\n"),
        st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b"A", b"T", b"?", b"=", b",", b"\xff"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=chunks, gaps=st.lists(st.floats(0, 0.3), max_size=40))
def test_random_input_never_breaks_the_modem(chunks, gaps):
    h = Harness(extra=[("busy", BusyProbe()), ("raw", RawProbe())])
    for i, chunk in enumerate(chunks):
        h.modem.feed(chunk)
        h.clock.advance(gaps[i] if i < len(gaps) else 0.0)
    assert recovers(h)


@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=2000))
def test_garbage_while_busy_gets_only_echo_and_busy(garbage):
    h = Harness(extra=[("busy", BusyProbe())])
    h.send(b"ATE0\r\n")
    h.modem.feed(b"AT+TESTBUSY=1\r\n")
    h.clock.advance(0.01)
    h.modem.feed(garbage)
    said = h.take()
    assert said.replace(b"\r\nbusy p...\r\n", b"").replace(b"\r\nERROR\r\n", b"") == b""
    assert said.count(b"busy p...") >= 1
    h.clock.run_until_idle()
    assert h.take() == OK
    assert h.send(b"AT\r\n") == OK


def test_many_nul_bytes():
    h = Harness()
    h.send(b"ATE0\r\n")
    said = h.send(b"\x00" * 100_000)
    assert said == b"\r\nERROR\r\n" * (100_000 // 201)
    assert recovers(h)

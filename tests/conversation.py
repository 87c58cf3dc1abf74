"""One conversation through the rules of spec §1 and the commands of §6.1.

Every exchange says what the host sends and the exact bytes the modem answers
with echo off, and (when it is not simply the sent bytes followed by that
answer) with echo on. ``burst`` exchanges arrive in one piece; the others arrive
one byte at a time. The same conversation runs in simulated time
(test_line_discipline) and over a real TCP socket (test_transports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

OK = b"\r\nOK\r\n"
ERR = b"\r\nERROR\r\n"
READY = b"\r\nready\r\n"

GMR_050 = (
    b"AT version:1.7.0.0 (partial)\r\n"
    b"SDK version:2.2.2-dev(38a443e)\r\n"
    b"Compile time:Aug 25 2024 17:46:32\r\n"
    b"Version ESP_ATMod:0.5.0\r\n"
    b"Arduino core version:3.1.2\r\n"
    b"OK\r\n"
)

GMR_034 = (
    b"AT version:1.7.0.0 (partial)\r\n"
    b"SDK version:2.2.2-dev(38a443e)\r\n"
    b"Compile time:Oct  4 2022 20:31:52\r\n"
    b"Version ESP_ATMod:0.3.4\r\n"
    b"OK\r\n"
)


@dataclass(frozen=True)
class Exchange:
    send: bytes
    reply: bytes                    # echo off
    echoed: Optional[bytes] = None  # echo on, where it is not send + reply
    burst: bool = False

    def expected(self, echo: bool) -> bytes:
        if not echo:
            return self.reply
        return self.echoed if self.echoed is not None else self.send + self.reply


# 198 characters + CR LF fill the 200-byte line buffer exactly; AT+SYSCPUFREQ has
# no end-of-line check, so the padding is accepted.
FULL_LINE = b"AT+SYSCPUFREQ=80" + b"x" * 182 + b"\r\n"
ONE_TOO_MANY = b"AT+SYSCPUFREQ=80" + b"x" * 183 + b"\r\n"
LINE_250 = b"AT+SYSCPUFREQ=80" + b"x" * 232 + b"\r\n"
BLOCKING = b"AT+UART_CUR=115200,8,1,0,0\r\n"

EXCHANGES = [
    Exchange(b"AT\r\n", OK),
    Exchange(b"AT+GMR\r\n", GMR_050),
    # §1.3 line syntax
    Exchange(b"at\r\n", ERR),
    Exchange(b"aT+GMR\r\n", ERR),
    Exchange(b"AT+GMR\n", ERR),                # bare LF
    Exchange(b"AT\n", ERR),                    # bare LF, and shorter than 4 bytes
    Exchange(b"\r\n", ERR),                    # empty line
    Exchange(b"A\r\n", ERR),
    Exchange(b"AT \r\n", ERR),                 # no white space anywhere
    Exchange(b"AT+GMR \r\n", ERR),
    Exchange(b"AT+RST?\r\n", ERR),             # EXACT entries take nothing after the name
    Exchange(b"AT+SYSTIME\r\n", ERR),          # removed in 0.2.5
    Exchange(b"AT+SYSTIME?\r\n", ERR),
    Exchange(b"AT+NOSUCH=1\r\n", ERR),
    Exchange(b"AT+SYSRAM\r\n", ERR),
    Exchange(b"+++\r\n", ERR),                 # no transparent mode: just a bad line (§1.2)
    Exchange(b"AT+CIPMODE=1\r\n", ERR),
    # test forms are set commands with a '?' parameter
    Exchange(b"AT+GMR=?\r\n", ERR),
    Exchange(b"AT+UART=?\r\n", ERR),
    Exchange(b"AT+UART_CUR=?\r\n", ERR),
    Exchange(b"AT+SYSCPUFREQ=?\r\n", ERR),
    Exchange(b"AT+RFMODE=?\r\n", ERR),
    # §6.1
    Exchange(b"ATE\r\n", ERR),
    Exchange(b"ATE2\r\n", ERR),
    Exchange(b"ATE0 \r\n", ERR),
    Exchange(b"AT+SYSRAM?\r\n", b"+SYSRAM:40960\r\nOK\r\n"),
    Exchange(b"AT+UART?\r\n", b"+UART:115200,8,1,0,0\r\nOK\r\n"),
    Exchange(b"AT+UART_CUR?\r\n", b"+UART_CUR:115200,8,1,0,0\r\nOK\r\n"),
    Exchange(b"AT+UART_DEF?\r\n", b"+UART_DEF:115200,8,1,0,0\r\nOK\r\n"),
    Exchange(b"AT+UART_CUR?x\r\n", ERR),
    Exchange(b"AT+UART_CUR=115200,8,1,0,1\r\n", b"NOT IMPLEMENTED\r\n" + ERR),
    Exchange(b"AT+UART_CUR=115200,8,1,0,4\r\n", ERR),
    Exchange(b"AT+UART_CUR=115200,8,1,3,0\r\n", ERR),
    Exchange(b"AT+SYSCPUFREQ?\r\n", b"+SYSCPUFREQ:80\r\n" + OK),
    Exchange(b"AT+SYSCPUFREQ=100\r\n", ERR),
    Exchange(b"AT+RFMODE?\r\n", b"+RFMODE:3\r\nOK\r\n"),
    Exchange(b"AT+RFMODE=4\r\n", ERR),
    # §1.5 overflow: the byte that finds 200 bytes stored is dropped, unechoed, with ERROR
    Exchange(FULL_LINE, OK),
    Exchange(ONE_TOO_MANY, ERR, echoed=ONE_TOO_MANY[:200] + ERR),
    Exchange(LINE_250, ERR + ERR, echoed=LINE_250[:200] + ERR + LINE_250[201:] + ERR),
    # §1.7 discard rule: what waits when a command completes is eaten up to the next 'A'
    Exchange(b"AT\r\nAT\r\n", OK + OK, echoed=b"AT\r\n" + OK + b"AT\r\n" + OK, burst=True),
    Exchange(b"AT\r\n\r\n", OK, echoed=b"AT\r\n" + OK, burst=True),
    Exchange(b"AT\r\n?\r\nxyzAT\r\n", OK + OK, echoed=b"AT\r\n" + OK + b"AT\r\n" + OK, burst=True),
    # WiFiEspAT's "?" probes during a blocking command vanish without an answer
    Exchange(BLOCKING + b"?\r\n", OK, echoed=BLOCKING + OK),
]

# The whole conversation: echo on after boot, ATE0 (with a stray CR LF the discard
# rule eats), the same exchanges with echo off, then AT+RST brings echo back.
def script() -> list[tuple[Exchange, bool]]:
    steps = [(x, True) for x in EXCHANGES]
    steps.append((Exchange(b"ATE0\r\n\r\n", OK, echoed=b"ATE0\r\n" + OK, burst=True), True))
    steps += [(x, False) for x in EXCHANGES]
    steps.append((Exchange(b"AT+RST\r\n", OK + READY), False))
    steps.append((Exchange(b"AT\r\n", OK), True))
    return steps

"""A minimal host-side AT client for data tests: it drives a ``Harness`` the way a
host library drives the UART, and splits the modem's output into binary data
blocks (``+IPD``, ``+CIPRECVDATA``) and text, so random payload bytes can never
be mistaken for responses.

By default it keeps every byte received (``received``); a long run passes
``on_data`` instead and only the counts (``delivered``) stay in memory.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable, Optional

# Searched without their leading CR LF: a lone CR LF at the end of the output is then text at once.
_HEADERS = (b"+IPD,", b"+CIPRECVDATA,")
_CLOSED = re.compile(rb"(?:(\d),)?CLOSED\r\n")


class Host:
    def __init__(self, harness, mux: bool, on_data: Optional[Callable[[int, bytes], None]] = None,
                 on_closed: Optional[Callable[[int], None]] = None):
        self.h = harness
        self.mux = mux
        self.on_data = on_data
        self.on_closed = on_closed
        self.buf = bytearray()
        self.text = bytearray()
        self.received: dict[int, bytearray] = defaultdict(bytearray)   # by link id, without on_data
        self.delivered: dict[int, int] = defaultdict(int)               # bytes received, by link id
        self.notified: dict[int, int] = defaultdict(int)                # passive: last +IPD total
        self.closed: dict[int, int] = {}        # link id -> bytes received when its CLOSED came
        self.reading = 0                        # the link the pending AT+CIPRECVDATA reads

    # ------------------------------------------------------------ parsing

    def pull(self) -> None:
        self.buf += self.h.take()
        while True:
            starts = [(i, header) for header in _HEADERS if (i := self.buf.find(header)) >= 0]
            if not starts:
                # Hold back only a tail that may be the start of a header cut off mid-way.
                cut = self.buf.rfind(b"+", max(0, len(self.buf) - 20))
                if cut < 0 or not any(h.startswith(bytes(self.buf[cut:])) for h in _HEADERS):
                    cut = len(self.buf)
                self._text(self.buf[:cut])
                del self.buf[:cut]
                return
            start, header = min(starts)
            text = self.buf[:start]
            if text.endswith(b"\r\n"):
                text = text[:-2]  # the header's own CR LF
            elif self.text.endswith(b"\r\n") and not text:
                del self.text[-2:]
            self._text(text)
            del self.buf[:start]
            if not self._block(header):
                return

    def _block(self, header: bytes) -> bool:
        body = len(header)
        colon = self.buf.find(b":", body)
        crlf = self.buf.find(b"\r\n", body)
        if colon < 0 and crlf < 0:
            return False
        if header == _HEADERS[0] and crlf >= 0 and (colon < 0 or crlf < colon):
            fields = bytes(self.buf[body:crlf]).split(b",")  # passive notice: the total unread
            link = int(fields[0]) if self.mux else 0
            self.notified[link] = int(fields[-1])
            del self.buf[:crlf + 2]
            return True
        fields = bytes(self.buf[body:colon]).split(b",")
        size = int(fields[1] if header == _HEADERS[0] and self.mux else fields[0])
        if len(self.buf) < colon + 1 + size:
            return False
        data = bytes(self.buf[colon + 1:colon + 1 + size])
        del self.buf[:colon + 1 + size]
        link = self.reading if header == _HEADERS[1] else int(fields[0]) if self.mux else 0
        self.delivered[link] += size
        if self.on_data is None:
            self.received[link] += data
        else:
            self.on_data(link, data)
        return True

    def _text(self, data: bytes) -> None:
        self.text += data
        for match in _CLOSED.finditer(self.text):
            if self.mux and not match.group(1):
                continue  # a failed AT+CIPSTART's bare CLOSED: no link was open
            link = int(match.group(1)) if match.group(1) else 0
            self.closed[link] = self.delivered[link]
            if self.on_closed is not None:
                self.on_closed(link)
        self.text = bytearray(_CLOSED.sub(b"", self.text))

    # ------------------------------------------------------------ driving

    def wait(self, seconds: float) -> None:
        """Let simulated time pass, keeping whatever the modem says meanwhile."""
        self.buf += self.h.advance(seconds)
        self.pull()

    def expect(self, *tokens: bytes, timeout: float = 20.0) -> bytes:
        """Wait for one of ``tokens`` in the text; return the text up to and including it."""
        def seen():
            self.pull()
            return any(token in self.text for token in tokens)
        self.h.pump(seen, timeout)
        end = min(self.text.index(t) + len(t) for t in tokens if t in self.text)
        out = bytes(self.text[:end])
        del self.text[:end]
        return out

    def command(self, line: bytes, token: bytes = b"\r\nOK\r\n") -> bytes:
        self.h.modem.feed(line + b"\r\n")
        return self.expect(token)

    def send(self, link: int, data: bytes) -> bytes:
        """AT+CIPSEND with a wait for the prompt; returns SEND OK / SEND FAIL text, or the
        refusal (``link is not valid``, ERROR) when no prompt came."""
        prefix = b"%d," % link if self.mux else b""
        self.h.modem.feed(b"AT+CIPSEND=%s%d\r\n" % (prefix, len(data)))
        reply = self.expect(b"> ", b"ERROR\r\n")
        if not reply.endswith(b"> "):
            return reply
        assert reply.endswith(b"OK\r\n> "), reply
        self.h.modem.feed(data)
        self.expect(b"Recv %d bytes\r\n" % len(data))
        return self.expect(b"SEND OK\r\n", b"SEND FAIL\r\n", timeout=30)

    def lengths(self) -> list[int]:
        reply = self.command(b"AT+CIPRECVLEN?")
        match = re.search(rb"\+CIPRECVLEN:([\d,]+)\r\n", reply)
        return [int(v) for v in match.group(1).split(b",")]

    def read(self, link: int, size: int) -> int:
        """AT+CIPRECVDATA; returns how many bytes it brought."""
        prefix = b"%d," % link if self.mux else b""
        before = self.delivered[link]
        self.reading = link
        self.h.modem.feed(b"AT+CIPRECVDATA=%s%d\r\n" % (prefix, size))
        self.expect(b"OK\r\n", b"ERROR\r\n", timeout=30)
        return self.delivered[link] - before

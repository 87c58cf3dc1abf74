"""Response atoms of spec §2, byte for byte."""

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
# Some query answers end in a bare "OK" line with no blank line before it.
OK_LINE = b"OK\r\n"
BUSY = b"\r\nbusy p...\r\n"
READY = b"\r\nready\r\n"

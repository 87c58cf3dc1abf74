"""TLS of ESP_ATMod (spec §6.4, §8): so far the receive-buffer size, AT+CIPSSLSIZE.

Secure links themselves (AT+CIPSTART="SSL"), authentication and MFLN build on
the size kept here.
"""

from __future__ import annotations

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.params import Params
from atmodem.responses import OK

NAMESPACE = "tls"
SIZES = (512, 1024, 2048, 4096, 16384)
BOOT_DEFAULT = 16384

# None until AT+CIPSSLSIZE was used this boot: the full 16384 bytes. An explicit 16384 is
# stored as 0, which the TLS library clamps to its 512-byte minimum (spec §6.3 ⚠).
BUFFER_SIZE = Setting(NAMESPACE, "buffer_size", default=None)


def receive_buffer(modem) -> int:
    """The receive buffer a new TLS link gets, in bytes."""
    value = modem.settings.get(BUFFER_SIZE)
    if value is None:
        return BOOT_DEFAULT
    return value or 512


def set_buffer_size(modem, request):
    p = Params(request.args)
    size = p.number()
    p.end()
    if size not in SIZES:
        raise AtError()
    modem.settings.set(BUFFER_SIZE, 0 if size == BOOT_DEFAULT else size)
    return OK


@hookimpl
def atmodem_commands(profile):
    return [Command("+CIPSSLSIZE", Match.QUERY_SET, set=set_buffer_size, summary="TLS receive buffer size")]

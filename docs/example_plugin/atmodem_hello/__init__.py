"""atmodem-hello: a third-party atmodem plugin with one new command and its own AT+GMR.

AT+HELLO="name" greets; AT+HELLO? names whom it greeted last (a RAM setting, so a reset
forgets it). Installed, it is an add-on: no profile names it, so every modem runs it after the
profile's own plugins, and its AT+GMR replaces the built-in one in the built-in's table position.
"""

from atmodem import AtError, Command, Match, Setting, hookimpl
from atmodem.params import Params
from atmodem.responses import OK, OK_LINE

# RAM only (no flash region): back to the default at every reset, as the chip's variables are.
LAST_GREETED = Setting("hello", "last_greeted", default="")


def hello(modem, request):                  # AT+HELLO="name"
    p = Params(request.args)
    name = p.string(32)
    p.end()                                 # the firmware's end-of-line check: nothing may follow
    if not name:
        raise AtError(b"NAME ERROR\r\n")    # -> "NAME ERROR\r\n\r\nERROR\r\n"
    modem.settings.set(LAST_GREETED, name.decode("latin-1"))
    return b"+HELLO:" + name + b"\r\n" + OK


def last_greeted(modem, request):           # AT+HELLO?
    return b"+HELLO:" + modem.settings.get(LAST_GREETED).encode("latin-1") + b"\r\n" + OK


def version(modem, request):                # replaces the built-in AT+GMR
    return b"AT version:1.7.0.0 (hello)\r\n" + OK_LINE


@hookimpl
def atmodem_commands(profile):
    return [
        Command("+HELLO", Match.QUERY_SET, set=hello, query=last_greeted, summary="greets"),
        Command("+GMR", Match.EXACT, execute=version, summary="version, the hello way"),
    ]

"""atmodem: a model of an ESP8266 modem running the ESP_ATMod AT firmware.

Plugins import what they need from here::

    from atmodem import hookimpl, Command, Match, AtError, Setting

and register their module under the entry-point group ``atmodem.plugins``.
"""

import pluggy

__version__ = "0.1.0"

NAME = "atmodem"
ENTRY_POINT_GROUP = "atmodem.plugins"

hookimpl = pluggy.HookimplMarker(NAME)

from atmodem.commands import AtError, Command, Form, Match, Request, Syntax  # noqa: E402
from atmodem.state import Setting  # noqa: E402

__all__ = [
    "NAME", "ENTRY_POINT_GROUP", "hookimpl", "__version__",
    "AtError", "Command", "Form", "Match", "Request", "Setting", "Syntax",
]

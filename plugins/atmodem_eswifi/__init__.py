"""Inventek eS-WiFi (ISM43362) AT command set with its TLS options, as a dialect: seed 002."""

from __future__ import annotations

from atmodem import hookimpl
from atmodem.profiles import Profile

ESWIFI = Profile(
    name="eswifi",
    description="Inventek eS-WiFi ISM43362 over UART (TLS options of seed 002)",
    plugins=("eswifi",),
)


@hookimpl
def atmodem_profiles():
    return [ESWIFI]

"""Telit's #SSL AT command set (LE910/ME910 family), as a dialect: seed 004."""

from __future__ import annotations

from atmodem import hookimpl
from atmodem.profiles import Profile

TELIT = Profile(
    name="telit",
    description="Telit LE910Cx with the #SSL command set (SSL/TLS user guide, seed 004)",
    plugins=("telit", "telit_services"),
)


@hookimpl
def atmodem_profiles():
    return [TELIT]

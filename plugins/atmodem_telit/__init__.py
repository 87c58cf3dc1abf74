"""Telit's #SSL AT command set as a dialect (seed 004, the Telit SSL/TLS user guide).

Which Telit: the guide covers eight platform families whose examples differ. The default
profile ``telit`` models the multi-socket 4G family of the guide's §6.8.2 (LE866, platform ID
23): six secure sockets on five PDP contexts (``#SSLCFG: (1-6),(1-5),...``), #SSLSECCFG2 with
SNI, PEM or DER security data, NVM or RAM storage. ``telit-he910`` is the single-socket 3G
HE910 of §6.8.1 and §6.8.3 (``#SSLCFG: (1),(1),...``, TLS 1.0 by default, no SNI). Both share
the cipher-suite numbering of §6.2.2. Where the issue asks for more than the guide gives the
family (#SSLFASTD, which the guide reserves for 2G modules), both profiles have it.

Modules: ``framing`` (line syntax, answers, +CMEE errors), ``basic`` (AT, ATE, ATV, ATS12,
+CMEE, +CGMM, #PORTCFG, +CCLK), ``pdp`` (+CGDCONT, #SGACT), ``ssl`` (the per-SSId
configuration, ``client_context`` and ``ssl_claims``), ``sockets`` (#SSLD, #SSLO, #SSLSEND, #SSLSENDEXT, #SSLRECV,
#SSLH, #SSLS, #SSLFASTD, online mode, SSLSRING). ``services`` is the HTTPS/FTPS/MQTT plugin.
"""

from __future__ import annotations

from dataclasses import replace

from atmodem import hookimpl
from atmodem.profiles import Profile

from atmodem_telit import basic, pdp, sockets, ssl
from atmodem_telit.framing import TelitSyntax, result

# The suites a non-zero <CipherSuite> selects (seed 004 §6.2.2, the same numbering in tables 5-7),
# by IANA id.
CIPHER_SUITES = {
    1: (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    2: (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    3: (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    4: (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    5: (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
}

TELIT = Profile(
    name="telit",
    description="Telit LE866 family (platform ID 23) with the #SSL command set (SSL/TLS user guide, seed 004)",
    plugins=("telit", "telit_services"),
    line_buffer=1024,
    features=frozenset({"sni", "secdata_ram"}),
    constants={
        "model": "LE866-SV1",
        "portcfg": "1,1",
        "ssids": range(1, 7),
        "cids": range(1, 6),
        "ssl_version": 3,           # TLS 1.2
        "cipher_suites": CIPHER_SUITES,
        "secdata_max": 4096,
        "ring_chunk": 1300,         # SSLSRING mode 2: most bytes in one URC (seed 004 §7.1.2.2, 3G/4G)
    },
)

TELIT_HE910 = replace(
    TELIT,
    name="telit-he910",
    description="Telit HE910 (platform ID 12), one secure socket (seed 004 §6.8.1, §6.8.3)",
    features=frozenset(),
    constants={**TELIT.constants, "model": "HE910", "portcfg": "0,0", "ssids": range(1, 2), "cids": range(1, 2),
               "ssl_version": 1},
)

PROFILES = {TELIT.name: TELIT, TELIT_HE910.name: TELIT_HE910}


def _ours(profile) -> bool:
    return profile.name in PROFILES


@hookimpl
def atmodem_profiles():
    return list(PROFILES.values())


@hookimpl
def atmodem_syntax(profile):
    return TelitSyntax() if _ours(profile) else None


@hookimpl
def atmodem_commands(profile):
    if not _ours(profile):
        return []
    return basic.commands() + pdp.commands() + ssl.commands() + sockets.commands()


@hookimpl
def atmodem_before_command(modem, line, request):
    """A line no command takes: nothing for a blank one (V.250), else ERROR (never +CME ERROR)."""
    if request is not None or not _ours(modem.profile):
        return None
    return b"" if TelitSyntax.blank(line) else result(modem, b"ERROR")


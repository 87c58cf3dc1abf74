"""Telit's #SSL AT command set as a dialect (seed 004, the Telit SSL/TLS user guide).

Which Telit: the guide covers eight platform families whose examples differ. The default
profile ``telit`` models the multi-socket 4G family of the guide's §6.8.2 (LE866, platform ID
23): six secure sockets on five PDP contexts (``#SSLCFG: (1-6),(1-5),...``), #SSLSECCFG2 with
SNI, PEM or DER security data, NVM or RAM storage. ``telit-he910`` is the single-socket 3G
HE910 of §6.8.1 and §6.8.3 (``#SSLCFG: (1),(1),...``, TLS 1.0 by default, no SNI). Both share
the cipher-suite numbering of §6.2.2. Where the issue asks for more than the guide gives the
family (#SSLFASTD, which the guide reserves for 2G modules), every profile has it.
``telit-me910c1`` (ID 30) and ``telit-me310g1`` (ID 37) are the platforms of the MQTT examples
(§10.1): their #SSLCFG and #SSLSECCFG2 take the longer parameter lists of §6.7.3 and §6.3.3-4,
#SSLSECCFG has no <cert_format> (§6.2.5), and their cipher numbering is tables 9-10 (§12.1.6-7).

Modules: ``framing`` (line syntax, answers, +CMEE errors), ``basic`` (AT, ATE, ATV, ATS12,
+CMEE, +CGMM, #PORTCFG, +CCLK), ``pdp`` (+CGDCONT, #SGACT, #SCFG), ``ssl`` (the per-SSId
configuration, ``client_context`` and ``ssl_claims``), ``sockets`` (#SSLD, #SSLO, #SSLSEND, #SSLSENDEXT, #SSLRECV,
#SSLH, #SSLS, #SSLFASTD, online mode, SSLSRING). ``services`` is the HTTPS/FTPS/MQTT plugin.
"""

from __future__ import annotations

from dataclasses import replace

from atmodem import hookimpl
from atmodem.profiles import Profile

from atmodem_telit import basic, pdp, sockets, ssl
from atmodem_telit.framing import TelitSyntax

# The suites a non-zero <CipherSuite> selects (seed 004 §6.2.2, the same numbering in tables 5-7),
# by IANA id.
CIPHER_SUITES = {
    1: (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    2: (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    3: (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    4: (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    5: (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
}

# ID 30 and 37 number the suites of their tables 9 and 10 (seed 004 §12.1.6-7) alike.
CIPHER_SUITES_30_37 = {
    3: (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    5: (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    7: (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    9: (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    10: (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    11: (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    12: (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    13: (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
}

ONLY_ZERO = range(0, 1)
UNUSED = (None, ONLY_ZERO)   # a parameter the read form shows as 0 and the set form takes as 0

TELIT = Profile(
    name="telit",
    description="Telit LE866 family (platform ID 23) with the #SSL command set (SSL/TLS user guide, seed 004)",
    plugins=("telit", "telit_services"),
    line_buffer=1024,
    features=frozenset({"secdata_ram", "cert_format"}),
    constants={
        "model": "LE866-SV1",
        "portcfg": "1,1",
        "ssids": range(1, 7),
        "cids": range(1, 6),
        "ssl_version": 3,           # TLS 1.2
        "cipher_suites": CIPHER_SUITES,
        "secdata_max": 4096,
        "ring_chunk": 1300,         # SSLSRING mode 2: most bytes in one URC (seed 004 §7.1.2.2, 3G/4G)
        # #SSLCFG after <sslSRingMode> (§6.7.1; §6.8.2's test response), and the values its read form shows
        "sslcfg_tail": (("no_carrier_mode", ONLY_ZERO), ("unused", ONLY_ZERO)),
        "sslcfg_shown": 9,
        # #SSLSECCFG2 after <version> (§6.3.3): <SNI>, three unused
        "seccfg2_tail": (("sni", (0, 1)), UNUSED, UNUSED, UNUSED),
    },
)

TELIT_HE910 = replace(
    TELIT,
    name="telit-he910",
    description="Telit HE910 (platform ID 12), one secure socket (seed 004 §6.8.1, §6.8.3)",
    features=frozenset({"cert_format"}),
    constants={**TELIT.constants, "model": "HE910", "portcfg": "0,0", "ssids": range(1, 2), "cids": range(1, 2),
               "ssl_version": 1, "seccfg2_tail": (UNUSED,) * 4},   # §6.3.2: no SNI
)

# The platforms of the MQTT examples (§10.1): #SSLSECCFG without <cert_format> (§6.2.5), PEM only
# (§6.5: no DER on ID 30), SNI, and longer #SSLCFG tails (§6.7.3, §10.1.2-3's set forms).
TELIT_ME910C1 = replace(
    TELIT,
    name="telit-me910c1",
    description="Telit ME910C1 (platform ID 30), the guide's §10.1.1-2 MQTT examples",
    features=frozenset(),
    constants={**TELIT.constants, "model": "ME910C1-WW", "cipher_suites": CIPHER_SUITES_30_37,
               "sslcfg_tail": (("no_carrier_mode", ONLY_ZERO), ("skip_host_mismatch", range(0, 2)),
                               ("equalize_tx", ONLY_ZERO)),
               "sslcfg_shown": 9},
)

TELIT_ME310G1 = replace(
    TELIT_ME910C1,
    name="telit-me310g1",
    description="Telit ME310G1 (platform ID 37), the guide's §10.1.1 and §10.1.3 MQTT examples",
    constants={**TELIT_ME910C1.constants, "model": "ME310G1-WW",
               "sslcfg_tail": TELIT_ME910C1.constants["sslcfg_tail"] + (("connect_timeout", ONLY_ZERO),
                                                                        ("unused", ONLY_ZERO)),
               "sslcfg_shown": 11,
               # §6.3.4: <SNI>,<CustomCA>,<PreloadedCA>,<MinVersion>
               "seccfg2_tail": (("sni", (0, 1)), ("custom_ca", (0, 1)), ("preloaded_ca", (0, 1)),
                                ("min_version", range(0, 4)))},
)

PROFILES = {profile.name: profile for profile in (TELIT, TELIT_HE910, TELIT_ME910C1, TELIT_ME310G1)}


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


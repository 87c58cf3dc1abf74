"""Firmware profiles: which plugins make up a firmware, and its constants.

A profile is data. Plugin packages may add their own through the
``atmodem_profiles`` hook; the two ESP_ATMod releases of spec §12.1 are the
core's own contribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from atmodem import hookimpl


@dataclass(frozen=True)
class Profile:
    name: str
    plugins: tuple[str, ...]     # entry-point names, in command-table order
    line_buffer: int = 200       # bytes, CR LF included (spec §1.5)
    constants: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    features: frozenset[str] = frozenset()   # behaviours that differ between releases (spec §12.1)

    def has(self, feature: str) -> bool:
        return feature in self.features


# What ESP_ATMod 0.5.0 does and 0.3.4 does not (spec §12.1).
FEATURES_050 = frozenset({
    "mode_checks",        # CWJAP/CWLAP/CIPSTA/CWHOSTNAME= refused in AP-only, CWSAP/CIPAP in STA-only
    "empty_password",     # AT+CWJAP may join an open network with ""
    "mac_query",          # AT+CIPSTAMAC? / AT+CIPAPMAC?
    "cipdomain",          # AT+CIPDOMAIN
    "dhcp_bits",          # AT+CWDHCP sets and clears single bits; mode 3 = Ethernet
    "ip_without_station",  # AT+CIPSTART also with the SoftAP or Ethernet up; CIPSTATUS lists links anyway
    "long_hosts",         # AT+CIPSTART host names beyond 40 characters
})


ESP_ATMOD_050 = Profile(
    name="esp_atmod-0.5.0",
    description="ESP_ATMod 0.5.0 (default build, Arduino core 3.1.2)",
    plugins=("basic", "wifi", "ethernet", "tcpip", "tls", "certs", "sntp"),
    line_buffer=200,
    features=FEATURES_050,
    constants={
        # Host libraries parse these lines (spec §6.1); WiFiEspAT needs the '('.
        "gmr": (
            "AT version:1.7.0.0 (partial)",
            "SDK version:2.2.2-dev(38a443e)",
            "Compile time:Aug 25 2024 17:46:32",
            "Version ESP_ATMod:0.5.0",
            "Arduino core version:3.1.2",
        ),
        "free_heap": 40960,          # spec §8.5: about 40 KB free when idle
        "uart_ok_at_new_baud": False,
        "string_max": 200,           # longest quoted parameter (spec §1.3)
        "ethernet": False,           # the W5500 build; a world with Ethernet present enables it too
    },
)

# The Ethernet build of 0.5.0 (spec §11): a W5500 on the SPI bus, with or without a cable.
ESP_ATMOD_050_ETH = replace(
    ESP_ATMOD_050,
    name="esp_atmod-0.5.0-eth",
    description="ESP_ATMod 0.5.0 built with ETHERNET_CLASS (W5500)",
    constants={**ESP_ATMOD_050.constants, "ethernet": True},
)

ESP_ATMOD_034 = replace(
    ESP_ATMOD_050,
    name="esp_atmod-0.3.4",
    description="ESP_ATMod 0.3.4 (Arduino core 2.7.4)",
    plugins=("basic", "wifi", "tcpip", "tls", "certs", "sntp"),   # Ethernet came with 0.5.0
    line_buffer=100,
    features=frozenset(),
    constants={
        **ESP_ATMOD_050.constants,
        "gmr": (
            "AT version:1.7.0.0 (partial)",
            "SDK version:2.2.2-dev(38a443e)",
            "Compile time:Oct  4 2022 20:31:52",
            "Version ESP_ATMod:0.3.4",
        ),
        "uart_ok_at_new_baud": True,
        "string_max": 100,
    },
)

DEFAULT_PROFILE = ESP_ATMOD_050.name


@hookimpl
def atmodem_profiles():
    return [ESP_ATMOD_050, ESP_ATMOD_050_ETH, ESP_ATMOD_034]

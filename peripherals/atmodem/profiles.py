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


ESP_ATMOD_050 = Profile(
    name="esp_atmod-0.5.0",
    description="ESP_ATMod 0.5.0 (default build, Arduino core 3.1.2)",
    plugins=("basic",),
    line_buffer=200,
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
    },
)

ESP_ATMOD_034 = replace(
    ESP_ATMOD_050,
    name="esp_atmod-0.3.4",
    description="ESP_ATMod 0.3.4 (Arduino core 2.7.4)",
    line_buffer=100,
    constants={
        **ESP_ATMOD_050.constants,
        "gmr": (
            "AT version:1.7.0.0 (partial)",
            "SDK version:2.2.2-dev(38a443e)",
            "Compile time:Oct  4 2022 20:31:52",
            "Version ESP_ATMod:0.3.4",
        ),
        "uart_ok_at_new_baud": True,
    },
)

DEFAULT_PROFILE = ESP_ATMOD_050.name


@hookimpl
def atmodem_profiles():
    return [ESP_ATMOD_050, ESP_ATMOD_034]

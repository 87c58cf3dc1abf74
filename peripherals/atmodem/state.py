"""Settings with a RAM value and, for some, a flash value (spec §5).

A plugin declares a ``Setting`` once, at module level. Its RAM value starts at
every boot from the flash value (if the setting lives in a flash region and one
was saved) or else from its default. Flash is one JSON file in the state
directory, split into regions so that, for example, ``AT+RESTORE`` can erase the
ESP_ATMod "eeprom" region and keep the SDK's Wi-Fi configuration.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

log = logging.getLogger(__name__)

FLASH_FILE = "flash.json"
# The two flash areas of spec §5: ESP_ATMod's EEPROM block (AT+RESTORE erases it) and the
# SDK's Wi-Fi configuration (AT+RESTORE keeps it).
EEPROM = "eeprom"
SDK = "sdk"
_FORMAT = 1


@dataclass(frozen=True)
class Setting:
    namespace: str         # the owning plugin
    name: str
    default: Any           # JSON-compatible
    region: Optional[str] = None  # flash region holding the saved value; None = RAM only

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"


class Flash:
    """Saved values by region; kept in ``<state_dir>/flash.json`` or, without a directory, in memory."""

    def __init__(self, state_dir: Optional[Path] = None):
        self.path = Path(state_dir) / FLASH_FILE if state_dir is not None else None
        self._regions: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Read the file as the chip reads its flash at boot; a bad file means factory defaults."""
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._regions = {}
            return
        except OSError as exc:
            log.warning("cannot read %s (%s): booting with defaults", self.path, exc)
            self._regions = {}
            return
        self.load_bytes(raw)

    def load_bytes(self, raw: bytes) -> None:
        """Take ``raw`` as the flash's content (a file's bytes); anything unreadable means factory defaults."""
        try:
            data = json.loads(raw)
            if data.get("format") != _FORMAT or not isinstance(data.get("regions"), dict):
                raise ValueError("unknown layout")
            regions = data["regions"]
            if not all(isinstance(v, dict) for v in regions.values()):
                raise ValueError("region is not an object")
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            log.warning("state file %s is corrupt (%s): booting with defaults", self.path, exc)
            self._regions = {}
            return
        self._regions = regions

    def get(self, region: str, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self._regions.get(region, {}).get(key, default))

    def put(self, region: str, key: str, value: Any) -> None:
        self._regions.setdefault(region, {})[key] = copy.deepcopy(value)
        self._save()

    def erase(self, region: str) -> None:
        if self._regions.pop(region, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"format": _FORMAT, "regions": self._regions}, indent=1, sort_keys=True)
        # Write-then-rename so a crash mid-write leaves the old file, never half a file.
        fd, tmp = tempfile.mkstemp(prefix=".flash-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class Settings:
    """The RAM values of one modem, over its flash."""

    def __init__(self, flash: Flash):
        self.flash = flash
        self._ram: dict[str, Any] = {}

    def boot(self) -> None:
        """Forget RAM values and re-read flash, as a reset does."""
        self._ram.clear()
        self.flash.load()

    def get(self, setting: Setting) -> Any:
        if setting.key in self._ram:
            return self._ram[setting.key]
        return self.stored(setting)

    def stored(self, setting: Setting) -> Any:
        """The saved value (``_DEF?`` queries), or the default if none was saved."""
        if setting.region is None:
            return copy.deepcopy(setting.default)
        return self.flash.get(setting.region, setting.key, copy.deepcopy(setting.default))

    def set(self, setting: Setting, value: Any, save: bool = False) -> None:
        """Change the RAM value; with ``save``, also write it to the setting's flash region."""
        self._ram[setting.key] = value
        if save:
            self.save(setting, value)

    def save(self, setting: Setting, value: Any) -> None:
        """Write the flash value only; the RAM value takes it at the next boot."""
        if setting.region is None:
            raise ValueError(f"{setting.key} has no flash region")
        self.flash.put(setting.region, setting.key, value)

"""Finding installed plugins and building the plugin set a modem runs with."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Iterable

import pluggy

from atmodem import ENTRY_POINT_GROUP, NAME, hookspecs, profiles
from atmodem.commands import CommandTable, Syntax
from atmodem.profiles import Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginInfo:
    name: str            # entry-point name
    module: object
    distribution: str
    version: str


@functools.cache
def installed() -> dict[str, PluginInfo]:
    """Every plugin registered under the entry-point group, by entry-point name."""
    found: dict[str, PluginInfo] = {}
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in found:
            log.warning("plugin %r is installed twice; keeping %s", ep.name, found[ep.name].distribution)
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the modem down
            log.warning("cannot load plugin %r (%s): %s", ep.name, ep.value, exc)
            continue
        dist = ep.dist
        found[ep.name] = PluginInfo(ep.name, module, dist.name if dist else "?", dist.version if dist else "?")
    return found


def rescan() -> None:
    """Forget what was found, e.g. after installing a plugin into a running process."""
    installed.cache_clear()
    available_profiles.cache_clear()
    plugin_set.cache_clear()


def _manager(modules: Iterable[tuple[str, object]]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    for name, module in modules:
        pm.register(module, name=name)
    pm.check_pending()
    return pm


@functools.cache
def available_profiles() -> dict[str, Profile]:
    everything = [("atmodem.profiles", profiles)] + [(p.name, p.module) for p in installed().values()]
    found: dict[str, Profile] = {}
    for contributed in reversed(_manager(everything).hook.atmodem_profiles()):
        for profile in contributed:
            found.setdefault(profile.name, profile)
    return found


def get_profile(name: str) -> Profile:
    try:
        return available_profiles()[name]
    except KeyError:
        known = ", ".join(sorted(available_profiles()))
        raise LookupError(f"unknown profile {name!r} (known: {known})") from None


class PluginSet:
    """The plugins one profile runs with, their hooks and their command table.

    The profile's plugins come first, in its order; every installed plugin that
    no profile names is an add-on and joins after them (sorted by name), so an
    add-on can override any built-in command. ``extra`` plugin objects given in
    process (tests, a Robot library's fault injector) come last of all.
    """

    def __init__(self, profile: Profile, disabled: Iterable[str] = (), extra: Iterable[tuple[str, object]] = ()):
        self.profile = profile
        disabled = set(disabled)
        available = installed()
        missing = [name for name in profile.plugins if name not in available]
        if missing:
            raise LookupError(f"profile {profile.name} needs plugins that are not installed: {', '.join(missing)}")
        claimed = {name for p in available_profiles().values() for name in p.plugins}
        add_ons = [name for name in available if name not in claimed]
        self.plugins = tuple(available[name] for name in (*profile.plugins, *add_ons) if name not in disabled)
        self.plugins += tuple(PluginInfo(name, obj, "(in process)", "") for name, obj in extra)
        self.hook = _manager((p.name, p.module) for p in self.plugins).hook
        self.table = CommandTable(self._declarations())
        self.syntax = self.hook.atmodem_syntax(profile=profile) or Syntax()

    def _declarations(self):
        # pluggy calls the last-registered plugin first; walk the impls in registration order instead.
        for impl in self.hook.atmodem_commands.get_hookimpls():
            for command in impl.function(**{a: self.profile for a in impl.argnames}) or ():
                yield impl.plugin_name, command

    def commands_of(self, plugin: str):
        return [e for e in self.table.entries if e.plugin == plugin]


@functools.cache
def plugin_set(profile_name: str, disabled: frozenset[str] = frozenset()) -> PluginSet:
    """The (shared, immutable) plugin set for a profile; built once per process."""
    return PluginSet(get_profile(profile_name), disabled)

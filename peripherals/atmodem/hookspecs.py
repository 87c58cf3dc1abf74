"""Every hook a plugin can implement.

Implement hooks with ``atmodem.hookimpl`` in a module (or object) and register
it under the entry-point group ``atmodem.plugins``. An implementation may take
fewer arguments than the spec names.
"""

from __future__ import annotations

import pluggy

from atmodem import NAME

hookspec = pluggy.HookspecMarker(NAME)


@hookspec
def atmodem_profiles():
    """Return firmware profiles (``atmodem.profiles.Profile``) this package adds.

    Called once over every installed plugin when profiles are listed.

    :return: a list of profiles
    """


@hookspec
def atmodem_commands(profile):
    """Return the ``Command`` objects this plugin adds to the command table.

    Tables are built per profile, in plugin order: first the profile's own
    plugins as it lists them, then every other installed plugin. A command whose
    name is already in the table replaces that entry in place, so a later plugin
    overrides an earlier one's command while the firmware's search order stays.

    :param profile: the ``Profile`` the table is built for
    :return: a list of commands, in the order the firmware searches them
    """


@hookspec(firstresult=True)
def atmodem_syntax(profile):
    """How this firmware frames command lines (``atmodem.commands.Syntax``).

    Asked once per profile, when its plugin set is built. A dialect whose lines end in CR,
    ignore case or have no ``AT`` prefix returns its own subclass.

    :return: a ``Syntax``, or ``None`` for ESP_ATMod's own
    """


@hookspec
def atmodem_boot(modem):
    """The modem is booting (power-on, ``AT+RST``, ``AT+RESTORE``).

    RAM settings are back at their boot values and flash has been re-read;
    echo is on. Write boot messages with ``modem.write``, set up runtime state,
    schedule after-boot work on ``modem.clock``.
    """


@hookspec(firstresult=True)
def atmodem_before_command(modem, line, request):
    """Answer a command line instead of its handler (fault injection, vendor variants).

    Called for every complete line in command mode. Stops at the first
    implementation that returns something other than ``None``.

    :param modem: the ``Modem``
    :param line: the line as received, CR LF included
    :param request: the matched ``Request``, or ``None`` if no command matched
        or the line failed the syntax rules
    :return: response bytes or a ``Pending``, or ``None`` to let the command run
    """


@hookspec
def atmodem_shutdown(modem):
    """The chip is about to reset or power off: close sockets, cancel timers.

    Called before every boot (power-on included) and by ``modem.power_off()``.
    ``modem.runtime`` still holds this boot's objects; it is emptied afterwards. A runtime
    object with a ``shutdown()`` method needs no hook: the engine calls it.
    """


@hookspec
def atmodem_world_event(modem, event):
    """Something changed in the modem's world (``atmodem.world.WorldEvent``).

    Kinds: ``ap_removed``, ``ap_restored``, ``rssi_changed`` (subject: the
    ``AccessPoint``), ``cable_unplugged``, ``cable_plugged`` (subject: the
    ``Ethernet``), ``host_mapped`` (subject: the name), ``port_forwarded``, ``fault_added``
    (subject: the ``atmodem.faults.Fault``). Raise URCs with
    ``modem.urc`` so they wait for a blocking command as on the chip.
    """


@hookspec
def atmodem_interface_changed(modem, interface):
    """A network interface (``modem.interfaces.sta``/``ap``/``eth``) went up or down.

    The plugin that owns the interface calls ``modem.interface_changed``; links
    that went out through an interface that is now down should break.
    """


@hookspec(firstresult=True)
def atmodem_link_type(modem, kind):
    """Open links of a type other than plain TCP (``AT+CIPSTART="SSL",…``).

    :param kind: the three type bytes of AT+CIPSTART, e.g. ``b"SSL"``
    :return: an object with ``check(modem)`` (raise ``AtError`` when a prerequisite is
        missing), ``delay(modem)`` (extra seconds the chip spends, e.g. the handshake) and
        ``factory(modem, host, index)`` giving the link factory for ``Network.connect`` of link
        ``index``; or ``None``
    """


@hookspec(firstresult=True)
def atmodem_data_format(modem):
    """How received data and link counts look on the UART in this firmware's dialect.

    :return: an ``atmodem_tcpip.DataFormat`` (``+IPD``, passive notices, ``AT+CIPRECVDATA``,
        ``AT+CIPRECVLEN``), or ``None`` for ESP_ATMod's own
    """


@hookspec
def atmodem_heap_used(modem):
    """Bytes of the chip's heap this plugin's state holds now (TLS buffers, certificates).

    ``AT+SYSRAM?`` reports the profile's idle free heap minus the sum over plugins.
    """


@hookspec
def atmodem_station_joined(modem, by_command):
    """The station has its IP address.

    :param by_command: True at the end of a successful ``AT+CWJAP``; False after the SDK's own
        join (boot auto-connect, reconnection). ESP_ATMod starts SNTP only on the first.
    """

"""Inventek eS-WiFi (ISM43362) AT command set over UART, with its TLS options, as a dialect: seed 002.

The seed documents the TLS options (``PF``, ``PG``, ``P9``, ``P1=3``) and the client examples; the
framing (``framing``), the join and the socket commands come from Inventek's notes and the drivers
that talk to the module (ST's ``es_wifi.c``, Zephyr's ``drivers/wifi/eswifi``, mbed's
``wifi-ism43362``). After a reset the module only shows its prompt, ``\\r\\n> `` (Zephyr's
``eswifi_reset`` "fetches the cursor"; mbed's ``ISM43362::reset`` waits for ``> ``).
"""

from __future__ import annotations

from atmodem import hookimpl
from atmodem.profiles import Profile

from atmodem_eswifi import station as wifi
from atmodem_eswifi import transport as sockets
from atmodem_eswifi.framing import PROMPT, EsWifiSyntax, eswifi_command

ESWIFI = Profile(
    name="eswifi",
    description="Inventek eS-WiFi ISM43362 over UART (TLS options of seed 002)",
    plugins=("eswifi",),
    line_buffer=256,
    constants={
        # I? as ST's AT_ParseInfo reads it: product, firmware, API, stack, RTOS, CPU clock, name.
        "info": b"ISM43362-M3G-L44-UART,C3.5.2.5.STM,v3.5.2,v1.4.0.rc1,v8.2.1,120000000,Inventek eS-WiFi",
        # What the TLS plugin's heap check sees: the module's 128 KB of RAM, not an ESP8266's 40 KB.
        "free_heap": 128 * 1024,
    },
)

COMMANDS = [
    ("C1", b"C1=<SSID>", wifi.set_ssid, "network name"),
    ("C2", b"C2=<passphrase>", wifi.set_passphrase, "passphrase"),
    ("C3", b"C3=<0-4>", wifi.set_security, "security type"),
    ("C4", b"C4=<0|1>", wifi.set_dhcp, "DHCP on or off"),
    ("C6", b"C6=<IP address>", wifi.address_setter("ip"), "static IP address"),
    ("C7", b"C7=<netmask>", wifi.address_setter("netmask"), "static netmask"),
    ("C8", b"C8=<gateway>", wifi.address_setter("gateway"), "static gateway"),
    ("C0", wifi.JOIN_USAGE, wifi.join, "join the network"),
    ("CD", b"CD", wifi.disconnect, "leave the network"),
    ("CS", b"CS", wifi.connection_status, "connection status"),
    ("CR", b"CR", wifi.signal, "RSSI of the network"),
    ("C?", b"C?", wifi.settings, "network settings"),
    ("F0", b"F0", wifi.scan, "scan"),
    ("D0", b"D0=<domain name>", wifi.lookup, "DNS lookup (also the socket's host)"),
    ("I?", b"I?", wifi.info, "module information"),
    ("Z5", b"Z5", wifi.mac, "MAC address"),
    ("ZR", b"ZR", wifi.reset, "reset the module"),
    ("P0", b"P0=<0-3>", sockets.choose_socket, "socket to work on"),
    ("P1", b"P1=<0 TCP|3 TCP-SSL>", sockets.set_protocol, "protocol"),
    ("P3", b"P3=<IP address>", sockets.set_host, "remote host"),
    ("P4", b"P4=<port>", sockets.set_port, "remote port"),
    ("P6", sockets.P6_USAGE, sockets.client, "start or stop the client"),
    ("P9", b"P9=<0|1|2>", sockets.set_verification, "TLS verification"),
    ("PF", b"PF=<0-2>", sockets.choose_certificate_set, "active certificate set"),
    ("PG", sockets.PG_USAGE, sockets.program_certificate, "program the certificate set"),
    ("P?", b"P?", sockets.socket_settings, "socket settings"),
    ("S3", sockets.S3_USAGE, sockets.send, "send data"),
    ("R0", b"R0", sockets.receive, "read data"),
    ("R1", b"R1=<1-1460>", sockets.set_read_size, "read packet size"),
    ("R2", b"R2=<0-30000>", sockets.set_read_timeout, "read timeout (ms)"),
]


@hookimpl
def atmodem_profiles():
    return [ESWIFI]


@hookimpl
def atmodem_syntax(profile):
    return EsWifiSyntax()


@hookimpl
def atmodem_commands(profile):
    return [eswifi_command(name, usage, handler, summary) for name, usage, handler, summary in COMMANDS]


@hookimpl
def atmodem_boot(modem):
    modem.echo = False
    modem.write(b"\r\n" + PROMPT)


@hookimpl
def atmodem_world_event(modem, event):
    state = wifi.station(modem)
    if event.kind == "ap_removed" and event.subject is state.ap:
        sockets.transport(modem).drop_all()
        state.leave()

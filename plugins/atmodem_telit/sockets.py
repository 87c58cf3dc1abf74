"""Secure sockets (seed 004 §7): #SSLD and the commands on an open socket."""

NAMESPACE = "telit.sockets"


class SecureSockets:
    def __init__(self, modem):
        self.by_ssid = {}

    def get(self, ssid):
        return self.by_ssid.get(ssid)


def sockets(modem) -> SecureSockets:
    return modem.runtime_of(NAMESPACE, SecureSockets)


def commands():
    return []

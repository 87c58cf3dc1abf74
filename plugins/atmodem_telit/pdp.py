"""PDP contexts (seed 004 §5): +CGDCONT defines one, #SGACT activates it and reports the address
the network gave it; #SCFG binds the IP Easy sockets to contexts (seed 004 §8.2 and §9.1 read its
defaults: sockets 1-3 on context 1, 4-6 on context 2, 300,90,600,50). The network is the world's ``cellular`` section: with coverage, every defined context activates
after ``ACTIVATION_TIME`` with the address the network hands it (by default ``10.7.125.<6 + cid>``,
so cid 1 gets the guide's §8.2 value); the sockets themselves are the host's, on 127.0.0.1, as the world allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from atmodem.params import Params

from atmodem_telit.framing import (ACTIVATION_FAILED, CONTEXT_ALREADY_ACTIVATED, OPERATION_NOT_SUPPORTED, CmeError,
                                   cme_error, command, info, ok, ranges)

NAMESPACE = "telit.pdp"
ACTIVATION_TIME = 0.5      # seconds from AT#SGACT=<cid>,1 to its answer
PDP_TYPES = (b"IP", b"IPV6", b"IPV4V6")
APN_MAX = 100

# #SCFG: <connId>,<cid>,<pktSz>,<maxTo>,<connTo>,<txTo>. Defaults from seed 004 §8.2; ranges from
# Telit's AT references (<cid> 0-5, <connTo> 10-1200 in 100 ms units, <txTo> 0-255).
SCFG_SOCKETS = range(1, 7)
SCFG_RANGES = (range(0, 6), range(0, 1501), range(0, 65536), range(10, 1201), range(0, 256))


def _scfg_default(conn_id: int) -> tuple[int, ...]:
    return (1 if conn_id <= 3 else 2, 300, 90, 600, 50)


@dataclass
class Context:
    cid: int
    pdp_type: bytes
    apn: bytes
    address: Optional[str] = None    # set while active

    @property
    def active(self) -> bool:
        return self.address is not None


class Contexts:
    """The PDP contexts of one boot, by cid."""

    def __init__(self, modem):
        self.modem = modem
        self.by_cid: dict[int, Context] = {}
        self.sockets = {conn_id: _scfg_default(conn_id) for conn_id in SCFG_SOCKETS}   # #SCFG

    def get(self, cid: int) -> Optional[Context]:
        return self.by_cid.get(cid)

    def active(self, cid: int) -> bool:
        context = self.by_cid.get(cid)
        return context is not None and context.active


def contexts(modem) -> Contexts:
    """The modem's PDP contexts (``.get(cid)``, ``.active(cid)``; a context's ``.address``)."""
    return modem.runtime_of(NAMESPACE, Contexts)


def cids(modem) -> range:
    return modem.profile.constants["cids"]


def context_address(modem, cid: int) -> Optional[str]:
    """The address of context ``cid`` if it is active, else None."""
    context = contexts(modem).get(cid)
    return context.address if context is not None else None


def _cid(modem, p: Params) -> int:
    cid = p.number()
    if cid not in cids(modem):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    return cid


# ---------------------------------------------------------------- +CGDCONT


def set_cgdcont(modem, request):
    p = Params(request.args)
    cid = _cid(modem, p)
    table = contexts(modem)
    if p.at_end():   # AT+CGDCONT=<cid> undefines the context
        if table.active(cid):
            raise CmeError(OPERATION_NOT_SUPPORTED)
        table.by_cid.pop(cid, None)
        return ok(modem)
    p.comma()
    pdp_type = p.string(8).upper()
    if pdp_type not in PDP_TYPES:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    apn = b""
    if not p.at_end():
        p.comma()
        # The guide writes AT+CGDCONT=1,"IP", "Access_Point_Name": a space after the comma is taken.
        while p.data[p.pos:p.pos + 1] == b" ":
            p.skip()
        apn = p.string(APN_MAX)
        # Further parameters (address, compression flags, ...) are accepted and not modelled.
    if table.active(cid):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    table.by_cid[cid] = Context(cid, pdp_type, apn)
    return ok(modem)


def query_cgdcont(modem, request):
    table = contexts(modem)
    found = [table.by_cid[cid] for cid in sorted(table.by_cid)]
    return info(modem, *(b'+CGDCONT: %d,"%s","%s","0.0.0.0",0,0' % (c.cid, c.pdp_type, c.apn) for c in found))


def test_cgdcont(modem, request):
    return info(modem, *(b'+CGDCONT: %s,"%s",,,%s' % (ranges(cids(modem)), kind, ranges(range(0, 3), range(0, 5)))
                         for kind in PDP_TYPES))


# ---------------------------------------------------------------- #SGACT


def set_sgact(modem, request):
    p = Params(request.args)
    cid = _cid(modem, p)
    p.comma()
    state = p.number()
    if state > 1:
        raise CmeError(OPERATION_NOT_SUPPORTED)
    if not p.at_end():   # <userId>,<pwd>: taken, the simulated network asks for none
        p.comma()
        p.string(APN_MAX)
        p.comma()
        p.string(APN_MAX)
        p.end()
    context = contexts(modem).get(cid)
    if state == 0:
        if context is not None:
            context.address = None
        return ok(modem)
    if context is None:
        raise CmeError(ACTIVATION_FAILED)
    if context.active:
        raise CmeError(CONTEXT_ALREADY_ACTIVATED)
    operation = modem.block()

    def activated() -> None:
        cellular = modem.world.cellular
        if not cellular.coverage:
            operation.finish(cme_error(modem, ACTIVATION_FAILED))
            return
        context.address = cellular.address(cid)
        operation.finish(info(modem, b"#SGACT: " + context.address.encode()))

    operation.later(ACTIVATION_TIME, activated)
    return operation


def query_sgact(modem, request):
    table = contexts(modem)
    return info(modem, *(b"#SGACT: %d,%d" % (cid, table.active(cid)) for cid in cids(modem)))


def test_sgact(modem, request):
    return info(modem, b"#SGACT: " + ranges(cids(modem), range(0, 2)))


# ---------------------------------------------------------------- #SCFG


def set_scfg(modem, request):
    p = Params(request.args)
    conn_id = p.number()
    values = []
    for _ in SCFG_RANGES:
        p.comma()
        values.append(p.number())
    p.end()
    if conn_id not in SCFG_SOCKETS or any(v not in valid for v, valid in zip(values, SCFG_RANGES)):
        raise CmeError(OPERATION_NOT_SUPPORTED)
    contexts(modem).sockets[conn_id] = tuple(values)
    return ok(modem)


def query_scfg(modem, request):
    table = contexts(modem).sockets
    return info(modem, *(b"#SCFG: %d," % conn_id + b",".join(b"%d" % v for v in table[conn_id])
                         for conn_id in SCFG_SOCKETS))


def test_scfg(modem, request):
    return info(modem, b"#SCFG: " + ranges(SCFG_SOCKETS, *SCFG_RANGES))


def commands():
    return [
        command("+CGDCONT", query=query_cgdcont, set=set_cgdcont, test=test_cgdcont, summary="define PDP context"),
        command("#SGACT", query=query_sgact, set=set_sgact, test=test_sgact, summary="activate PDP context"),
        command("#SCFG", query=query_scfg, set=set_scfg, test=test_scfg, summary="socket configuration"),
    ]

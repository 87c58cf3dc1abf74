"""The three OpenSSL calls the stdlib ``ssl`` module does not expose, through ctypes on
the very libssl that ``_ssl`` uses:

* ``X509_VERIFY_PARAM_set_time``: verify certificates at the *modem's* clock;
* ``SSL_CTX_set_tlsext_max_fragment_length``: ask for MFLN like BearSSL with a small buffer;
* ``SSL_SESSION_get_max_fragment_length``: whether the server accepted it (AT+CIPSSLSTA).

Pointers are read from CPython's objects (``PySSLContext`` holds ``SSL_CTX *`` right after the
object header, ``PySSLSocket`` holds ``SSL *`` after its socket pointer). Every use is checked
at run time (``SSL_get_SSL_CTX`` of the connection must be the context we configured); if that
check or the library lookup fails, ``available`` is False and callers report the feature as
unsupported instead of crashing.
"""

from __future__ import annotations

import ctypes
import logging
import ssl

log = logging.getLogger(__name__)

_HEADER = object.__basicsize__
MFLN_CODES = {512: 1, 1024: 2, 2048: 3, 4096: 4}


def _loaded(name: str) -> str | None:
    """The path of a shared library this process has loaded (``_ssl`` brought it in)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.rstrip().split(" ")[-1]
                if f"/{name}" in path and ".so" in path:
                    return path
    except OSError:
        pass
    return None


def _bind():
    libssl_path, libcrypto_path = _loaded("libssl"), _loaded("libcrypto")
    if not libssl_path or not libcrypto_path:
        raise OSError("libssl/libcrypto of _ssl not found in /proc/self/maps")
    libssl, libcrypto = ctypes.CDLL(libssl_path), ctypes.CDLL(libcrypto_path)
    signatures = {
        (libssl, "SSL_CTX_get0_param"): ([ctypes.c_void_p], ctypes.c_void_p),
        (libcrypto, "X509_VERIFY_PARAM_set_time"): ([ctypes.c_void_p, ctypes.c_int64], None),
        (libssl, "SSL_CTX_set_tlsext_max_fragment_length"): ([ctypes.c_void_p, ctypes.c_uint8], ctypes.c_int),
        (libssl, "SSL_get_session"): ([ctypes.c_void_p], ctypes.c_void_p),
        (libssl, "SSL_SESSION_get_max_fragment_length"): ([ctypes.c_void_p], ctypes.c_uint8),
        (libssl, "SSL_get_SSL_CTX"): ([ctypes.c_void_p], ctypes.c_void_p),
    }
    functions = {}
    for (lib, name), (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
        functions[name] = function
    return functions


def _context_pointer(context: ssl.SSLContext) -> int:
    return ctypes.c_void_p.from_address(id(context) + _HEADER).value


def _connection_pointer(tls: ssl.SSLObject) -> int:
    return ctypes.c_void_p.from_address(id(tls._sslobj) + _HEADER + ctypes.sizeof(ctypes.c_void_p)).value


def set_verify_time(context: ssl.SSLContext, epoch: int) -> bool:
    if not available:
        return False
    _lib["X509_VERIFY_PARAM_set_time"](_lib["SSL_CTX_get0_param"](_context_pointer(context)), int(epoch))
    return True


def request_mfln(context: ssl.SSLContext, size: int) -> bool:
    if not available or size not in MFLN_CODES:
        return False
    return _lib["SSL_CTX_set_tlsext_max_fragment_length"](_context_pointer(context), MFLN_CODES[size]) == 1


def belongs(tls: ssl.SSLObject, context: ssl.SSLContext) -> bool:
    """The run-time check: the connection's SSL_CTX is the context we configured."""
    return available and _lib["SSL_get_SSL_CTX"](_connection_pointer(tls)) == _context_pointer(context)


def negotiated_mfln(tls: ssl.SSLObject, context: ssl.SSLContext) -> bool:
    if not belongs(tls, context):
        return False
    session = _lib["SSL_get_session"](_connection_pointer(tls))
    return bool(session) and _lib["SSL_SESSION_get_max_fragment_length"](session) != 0


def _self_check(functions) -> bool:
    """Before any write through a pointer: a probe connection must lead back to its context."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
    return functions["SSL_get_SSL_CTX"](_connection_pointer(tls)) == _context_pointer(context)


try:
    _lib = _bind()
    available = _self_check(_lib)
    if not available:
        log.warning("OpenSSL object layout not as expected: no modem-clock verification, no MFLN")
except (OSError, AttributeError) as exc:
    log.warning("OpenSSL extensions unavailable (%s): no modem-clock verification, no MFLN", exc)
    _lib, available = {}, False

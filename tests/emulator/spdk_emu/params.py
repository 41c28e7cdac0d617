"""Decoding of RPC params the way SPDK's ``spdk_json_decode_object`` does it.

A handler describes its params as ``{name: (kind, default)}`` (kind: a name in KINDS, or a
predicate for a value SPDK decodes with its own function); ``REQUIRED`` as the default marks a
mandatory field. Like SPDK, an unknown key, a missing mandatory key or a value of the wrong JSON
type fails the whole decode (by default with -32603 "spdk_json_decode_object failed"; each SPDK
handler answers its own code and message, so handlers pass ``error``). ``relaxed=True`` is
``spdk_json_decode_object_relaxed``: unknown keys are ignored (nvmf_create_transport,
nvmf_subsystem_add_listener / add_ns / add_host, keyring_file_add_key). Integer kinds check the
C type's range (``uint16``, ``uint32``, ``uint64``, ``int32``); ``uuid`` must parse as a UUID
(spdk_json_decode_uuid).
"""
import uuid as uuidlib

from .errors import decode_failed

REQUIRED = object()


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_uint(value):
    return _is_int(value) and value >= 0


def _in_range(low, high):
    return lambda v: _is_int(v) and low <= v <= high


def _is_uuid(v):
    if not isinstance(v, str):
        return False
    try:
        uuidlib.UUID(v)
    except ValueError:
        return False
    return True


KINDS = {
    "str": lambda v: isinstance(v, str),
    "uint16": _in_range(0, 0xFFFF),
    "uint32": _in_range(0, 0xFFFFFFFF),
    "uint64": _in_range(0, 0xFFFFFFFFFFFFFFFF),
    "uint8": _in_range(0, 0xFF),
    "int32": _in_range(-0x80000000, 0x7FFFFFFF),
    "uuid": _is_uuid,
    "bool": lambda v: isinstance(v, bool),
    "int": _is_int,
    "uint": _check_uint,
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


class Params(dict):
    """Decoded params; also readable as attributes (``p.name``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


def decode(params, fields, error=None, relaxed=False, optional=True):
    """Return ``Params`` holding every field of ``fields`` (defaults filled in), or raise ``error``.
    ``optional=False``: the handler decodes without checking for params first, and SPDK's decoder
    fails on none at all, even when every field is optional."""
    failure = error if error is not None else decode_failed()
    if params is None:
        if not optional:
            raise failure
        params = {}
    if not isinstance(params, dict):
        raise failure
    out = Params()
    for key, value in params.items():
        if key not in fields:
            if relaxed:
                continue
            raise failure
        kind = fields[key][0]
        if not (kind(value) if callable(kind) else KINDS[kind](value)):
            raise failure
        out[key] = value
    for key, (_kind, default) in fields.items():
        if key in out:
            continue
        if default is REQUIRED:
            raise failure
        out[key] = default
    return out


def no_params(params, error=None):
    """Methods that take no params: SPDK refuses any ``params`` member, even ``{}`` (only a
    missing or null one counts as none, jsonrpc_server.c)."""
    if params is not None:
        raise error if error is not None else decode_failed()

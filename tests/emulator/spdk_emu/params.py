"""Decoding of RPC params the way SPDK's ``spdk_json_decode_object`` does it.

A handler describes its params as ``{name: (kind, default)}``; ``REQUIRED`` as the default marks a
mandatory field. Like SPDK, an unknown key, a missing mandatory key or a value of the wrong JSON
type fails the whole decode (by default with -32603 "spdk_json_decode_object failed").
"""
from .errors import decode_failed

REQUIRED = object()


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_uint(value):
    return _is_int(value) and value >= 0


KINDS = {
    "str": lambda v: isinstance(v, str),
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


def decode(params, fields, error=None):
    """Return ``Params`` holding every field of ``fields`` (defaults filled in), or raise ``error``."""
    failure = error if error is not None else decode_failed()
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise failure
    out = Params()
    for key, value in params.items():
        if key not in fields:
            raise failure
        kind = fields[key][0]
        if not KINDS[kind](value):
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
    """Methods that take no params accept none or an empty object."""
    if params not in (None, {}):
        raise error if error is not None else decode_failed()

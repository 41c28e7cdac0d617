# -*- coding: utf-8 -*-
# Copyright (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name rules and size arithmetic shared by every module.

Everything here is pure (no I/O) so it runs before any RPC: a bad name or size
must fail the task before anything changes on the target.

Names:

* lvstore name = disk name; replica head lvol = ``<replica>``;
  replica snapshot lvol = ``<replica>-snap-<snapshot>``.
* SPDK limits lvol and lvstore names to 63 characters, but ``bdev_lvol_rename``
  does not check and a longer name makes the whole lvstore unloadable after a
  restart (recorded on SPDK v26.05: tests/emulator/fixtures/lvol_ops.session.jsonl, the
  records from lvol_ops.jsonl:161-186), so every name is checked here.
* Allowed characters ``[A-Za-z0-9_.-]``, no leading ``-`` or ``.``.
* Replica names may not contain ``-snap-`` so a snapshot lvol name splits back
  into replica and snapshot unambiguously; the transient rebuild suffixes
  ``-rebuild`` and ``-tmp`` are reserved in every user name.

Sizes: an int is bytes; a string is a number with an optional binary unit
``B``, ``K``/``KiB``, ``M``/``MiB``, ``G``/``GiB``, ``T``/``TiB``, ``P``/``PiB``
(single letters are binary too, case-insensitive). Decimal SI units
(``KB``, ``MB``, ``GB``...) are refused as ambiguous. Zero, negative values,
fractions of a byte and garbage are refused.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError

MAX_LVOL_NAME = 63
"""SPDK's lvol and lvstore name limit (SPDK_LVOL_NAME_MAX - 1)."""

MAX_NQN = 223
"""NVMe specification limit for an NQN."""

NQN_PREFIX = "nqn.2026-01.io.spdk-storage:"
"""Every subsystem this collection creates is named NQN_PREFIX + replica or engine name."""
HOST_NQN_PREFIX = NQN_PREFIX + "host:"
"""The host NQNs this collection makes: an engine node's (+ node name), a rebuild source's (+ transient name)."""

SNAPSHOT_INFIX = "-snap-"
RESERVED_SUFFIXES = ("-rebuild", "-tmp")
KINDS = ("disk", "replica", "snapshot", "engine")

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_BINARY_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tib": 1 << 40,
    "p": 1 << 50, "pib": 1 << 50,
}
_HUMAN_UNITS = (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


class SpdkInputError(SpdkError, ValueError):
    """A user-supplied name or size that the collection refuses before any RPC (still a ValueError)."""


def validate_lvol_name(kind, name):
    """Return ``name`` if it is a valid ``kind`` name, else raise SpdkInputError.

    ``kind`` is one of KINDS and only words the message (``disk``, ``replica``...).
    """
    if kind not in KINDS:
        raise ValueError("unknown name kind %r" % (kind,))
    if not isinstance(name, str) or name == "":
        raise SpdkInputError("%s name must be a non-empty string, got %r" % (kind, name))
    if len(name) > MAX_LVOL_NAME:
        raise SpdkInputError(
            "%s name %r is %d characters long; SPDK allows at most %d (longer names make the "
            "lvstore unloadable after a restart), choose a shorter name"
            % (kind, name, len(name), MAX_LVOL_NAME))
    if not _NAME_RE.match(name):
        raise SpdkInputError(
            "%s name %r may only contain letters, digits, '_', '.' and '-' and must not start "
            "with '-' or '.'" % (kind, name))
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise SpdkInputError(
                "%s name %r ends with %r, which is reserved for transient rebuild volumes"
                % (kind, name, suffix))
    if kind == "replica" and SNAPSHOT_INFIX in name:
        raise SpdkInputError(
            "replica name %r contains %r, which is reserved for snapshot volumes "
            "(<replica>%s<snapshot>)" % (name, SNAPSHOT_INFIX, SNAPSHOT_INFIX))
    return name


def snapshot_lvol_name(replica, snapshot):
    """Name of the lvol holding ``snapshot`` of ``replica``; both parts and the result validated."""
    validate_lvol_name("replica", replica)
    validate_lvol_name("snapshot", snapshot)
    full = replica + SNAPSHOT_INFIX + snapshot
    if len(full) > MAX_LVOL_NAME:
        raise SpdkInputError(
            "snapshot %r of replica %r would be stored as lvol %r (%d characters); SPDK allows "
            "at most %d: shorten the replica or snapshot name"
            % (snapshot, replica, full, len(full), MAX_LVOL_NAME))
    return full


def split_snapshot_lvol_name(lvol_name):
    """Return ``(replica, snapshot)`` for a snapshot lvol name, or None for any other name."""
    replica, sep, snapshot = lvol_name.partition(SNAPSHOT_INFIX)
    if not sep or not replica or not snapshot:
        return None
    return replica, snapshot


def is_reserved_lvol_name(lvol_name):
    """True for names the collection keeps for itself (transient rebuild lvols)."""
    return any(lvol_name.endswith(suffix) for suffix in RESERVED_SUFFIXES)


def _nqn(kind, name):
    validate_lvol_name(kind, name)
    nqn = NQN_PREFIX + name
    if len(nqn) > MAX_NQN:  # cannot happen with 63-char names; kept in case the prefix grows
        raise SpdkInputError("NQN %r is longer than %d characters" % (nqn, MAX_NQN))
    return nqn


def replica_nqn(name):
    """NQN of the subsystem that exposes replica ``name``."""
    return _nqn("replica", name)


def engine_nqn(name):
    """NQN of the engine frontend subsystem; stable per volume so hosts can reconnect."""
    return _nqn("engine", name)


def parse_size(value, what="size"):
    """Bytes for ``value`` (int bytes or a string like ``512MiB``); see the module docstring."""
    if isinstance(value, bool):
        raise SpdkInputError("%s must be a size such as 10GiB, got %r" % (what, value))
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        size = _parse_size_string(value, what)
    else:
        raise SpdkInputError("%s must be a size such as 10GiB, got %r" % (what, value))
    if size <= 0:
        raise SpdkInputError("%s must be larger than zero, got %r" % (what, value))
    return size


def _parse_size_string(text, what):
    match = _SIZE_RE.match(text)
    if not match:
        raise SpdkInputError(
            "%s %r is not a size: use a number with an optional binary unit, e.g. 512MiB, 10GiB, 1T"
            % (what, text))
    number, unit = match.group(1), match.group(2).lower()
    if unit in ("kb", "mb", "gb", "tb", "pb"):
        raise SpdkInputError(
            "%s %r uses the decimal unit %r, which is ambiguous here: use %siB (binary)"
            % (what, text, match.group(2), match.group(2)[0].upper()))
    if unit not in _BINARY_UNITS:
        raise SpdkInputError(
            "%s %r has an unknown unit %r: use B, KiB, MiB, GiB, TiB or PiB" % (what, text, match.group(2)))
    multiplier = _BINARY_UNITS[unit]
    whole, _dot, fraction = number.partition(".")
    # Integer arithmetic only: floats would round 1.1GiB to a non-deterministic byte count.
    numerator = int(whole + fraction) * multiplier
    denominator = 10 ** len(fraction)
    if numerator % denominator:
        raise SpdkInputError("%s %r is not a whole number of bytes" % (what, text))
    return numerator // denominator


def round_up(size, granularity):
    """Smallest multiple of ``granularity`` that is >= ``size`` (SPDK rounds lvols up to clusters)."""
    if granularity <= 0:
        raise ValueError("granularity must be positive")
    return -(-size // granularity) * granularity


def human_size(size):
    """Exact short form of a byte count: ``1GiB``, ``1536MiB``, ``4097B``."""
    if size is None:
        return None
    for unit, factor in _HUMAN_UNITS:
        if size and size % factor == 0:
            return "%d%s" % (size // factor, unit)
    return "%dB" % size

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a replica rebuild names, counts and reports: its transient objects, its system snapshots,
its states and its error.

Pure: no RPC. The other spdk_rebuild_* files build on it; spdk_rebuild_run.py says how they fit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import SUPERBLOCK_AREA
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    HOST_NQN_PREFIX,
    MAX_LVOL_NAME,
    NQN_PREFIX,
    SpdkInputError,
    round_up,
)

MIB = 1 << 20
STRATEGIES = ("auto", "offline", "online")
STEPS = ("plan", "copy", "join", "all")
TRANSIENT_SUFFIX = "-rebuild"       # the lvol being copied into, its export and controller
TEMP_SUFFIX = "-tmp"                # temporary loopback export to zero LBA 0 of a local head
SYSTEM_PREFIX = "rb-"
SYSTEM_RE = re.compile(r"^rb-\d{14}$")
NODE_READS = ("lvstores", "bdevs", "subsystems", "controllers")
ENGINE_READS = NODE_READS + ("raids",)
REPLICA_MODEL = "spdk.storage replica"
COPY_RETRIES = 2                    # copies restarted after the target forgot the operation (-19)
COPY_BACKOFF = 0.04                 # first pause of a copy's progress polls (small copies end in milliseconds)
DETACH_TIMEOUT = 60.0               # at most this long for a detached controller's bdev to go
DISCONNECT_WAIT = 10.0              # seconds the engine node's host may take to leave a replaced export
DISCONNECT_POLL = 0.2
MAX_SAMPLES = 400                   # progress samples kept in the result
# The run's state (result rebuild.state).
DONE, COPIED, REBUILDING, PLANNED = "done", "copied", "rebuilding", "planned"
# What became of the replaced replica (result rebuild.removed_replica.state).
REMOVED, ABSENT, KEPT, PENDING, UNREACHABLE, IN_USE, FAILED = (
    "removed", "absent", "kept", "pending", "unreachable", "in_use", "failed")
# What the error text of bdev_lvol_check_shallow_copy's state "error" means (a writable source answers
# "Operation not permitted": tests/emulator/fixtures/d6_alloc_after_shallow_copy.session.jsonl).
COPY_ERROR_HINTS = {
    "Operation not permitted": " (the source lvol is writable, not a snapshot)",
    "Invalid argument": " (the destination is smaller than the snapshot)",
}


class RebuildError(SpdkError):
    """Refused or failed; the message says why and what to do. Nothing beyond ``actions`` changed."""


def transient_name(replica):
    """The lvol each snapshot level is copied into (reserved suffix: no user name ends so)."""
    return replica + TRANSIENT_SUFFIX


def transient_nqn(replica):
    return NQN_PREFIX + transient_name(replica)


def rebuild_host_nqn(replica):
    """The host NQN the source node presents to the transient export (only that host is allowed)."""
    return nvmf.validate_host_nqn(HOST_NQN_PREFIX + transient_name(replica))


def temp_name(replica):
    return replica + TEMP_SUFFIX


def check_transient_names(replica):
    """The reserved-suffix lvol and controller names must fit SPDK's 63 characters too."""
    for name in (transient_name(replica), temp_name(replica)):
        if len(name) > MAX_LVOL_NAME:
            raise SpdkInputError("replica name %r is too long for a rebuild: its transient lvol %r would have %d "
                                 "characters, SPDK allows %d" % (replica, name, len(name), MAX_LVOL_NAME))


def new_system_snapshot(now=None):
    """``rb-YYYYMMDDhhmmss`` (UTC): the system snapshot the offline strategy takes."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return SYSTEM_PREFIX + now.strftime("%Y%m%d%H%M%S")


def is_system_snapshot(name):
    return bool(name) and bool(SYSTEM_RE.match(name))


def superblock_clusters(cluster_size):
    """Clusters that the RAID superblock area (first 1 MiB) spans: the only place the RAID itself writes."""
    return round_up(SUPERBLOCK_AREA, cluster_size) // cluster_size


def size_mib(size):
    """``size`` bytes in whole MiB, rounded up (what bdev_lvol_create and bdev_lvol_resize take)."""
    return -(-size // MIB)


def join_address(host, port):
    """``host:port``, with an IPv6 host in brackets (how replicas[].address is written)."""
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)

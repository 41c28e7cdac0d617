# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What an spdk_engine run is asked for, checked before any RPC.

An engine is a RAID1 bdev named after the engine over its replicas, on its engine node, plus
its frontend. A local replica joins the RAID directly (its lvol alias ``<disk>/<replica>``); a
remote one through an NVMe-oF controller named after the replica, whose namespace bdev is
``<replica>n1``. The frontend is the NVMe-oF/TCP subsystem ``nqn.2026-01.io.spdk-storage:<engine>``
(docs/ENGINE.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import controller_timeouts
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    HOST_NQN_PREFIX,
    SpdkInputError,
    engine_nqn,
    human_size,
    parse_size,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import ReplicaRef, unique_refs

MIB = 1 << 20
SUPERBLOCK_AREA = MIB
"""What a superblock RAID keeps at the start of every member (data_offset: 256 x 4 KiB)."""

FRONTENDS = ("nvmf", "none", "blockdev")
ENGINE_MODEL = "spdk.storage engine"


class EngineRefusal(SpdkError):
    """The request is valid but unsafe or impossible in the node's current state."""


def default_host_nqn(node_name):
    """The NQN an engine node presents to its replicas (docs/ENGINE.md)."""
    return nvmf.validate_host_nqn(HOST_NQN_PREFIX + node_name)


def engine_replica(value):
    """A ReplicaRef an engine can use (from a ReplicaRef or an option dict): on this node (``disk``) or
    reachable over NVMe-oF (``address``), exactly one of them."""
    if not isinstance(value, ReplicaRef):
        name = validate_lvol_name("replica", value.get("name"))
        if (value.get("disk") is None) == (value.get("address") is None):
            raise SpdkInputError("replica %s needs exactly one of disk (a replica on this node) or address "
                                 "(host:port of its NVMe-oF export on another node)" % name)
    return ReplicaRef.of(value).require(address=True, why=", so that the engine node can attach it")


class EngineRequest:
    """Validated spdk_engine options. Every check here runs before any RPC."""

    def __init__(self, name, replicas=(), size=None, state="present", frontend="nvmf", listen_address=None,
                 port=None, port_range=nvmf.DEFAULT_PORT_RANGE, allowed_hosts=(), host_nqn=None,
                 node_name="localhost", timeouts=None):
        self.name = validate_lvol_name("engine", name)
        self.nqn = engine_nqn(name)
        self.state = state
        self.size = parse_size(size) if size is not None else None
        self.replicas = [engine_replica(r) for r in replicas or []]
        self.frontend = frontend
        if frontend not in FRONTENDS:
            raise SpdkInputError("frontend must be one of %s" % ", ".join(FRONTENDS))
        self.listen_address = listen_address
        self.port = nvmf.validate_port(port)
        self.port_range = nvmf.parse_port_range(port_range)
        self.allowed_hosts = sorted({nvmf.validate_host_nqn(h) for h in (allowed_hosts or [])})
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else default_host_nqn(node_name)
        self.timeouts = controller_timeouts(timeouts)
        if state == "present":
            self._check_present()

    def _check_present(self):
        if len(self.replicas) < 2:
            raise SpdkInputError("engine %s needs at least 2 replicas: SPDK's RAID1 takes 2 or more members"
                                 % self.name)
        unique_refs(self.replicas)
        if self.frontend != "none" and self.listen_address is None:
            raise SpdkInputError("frontend=%s needs listen_address, this node's NVMe-oF/TCP address" % self.frontend)
        if self.listen_address is not None:
            nvmf.address_family(self.listen_address)

    @property
    def remote_replicas(self):
        return [r for r in self.replicas if not r.is_local]

    def exposure_spec(self, raid_uuid, extra_hosts=(), port=None):
        return nvmf.ExposureSpec(
            nqn=self.nqn, bdev=self.name, bdev_uuid=raid_uuid, listen_address=self.listen_address,
            port=self.port if self.port is not None else port, port_range=self.port_range,
            allowed_hosts=list(self.allowed_hosts) + list(extra_hosts), model_number=ENGINE_MODEL)


def check_recorded_size(request, recorded):
    """Refuse a size below the one the engine was created with (``recorded``: its record entry): SPDK
    cannot shrink a RAID or its replicas without losing data, and the record must keep the real size."""
    size = (recorded or {}).get("size")
    if request.state == "present" and request.size is not None and isinstance(size, int) and request.size < size:
        raise EngineRefusal(
            "engine %s was created with size %s; size %s would shrink it, which SPDK cannot do without losing "
            "data: give its size or leave size out; nothing was changed"
            % (request.name, human_size(size), human_size(request.size)))


def check_against_the_record(request, recorded, snapshots, rebuild):
    """What the node record refuses, before any call: a shrink, an export during an unfinished revert, a
    replica list that would undo a rebuild. ``recorded`` is the engine's record entry, ``snapshots`` its
    snapshots' and ``rebuild`` its rebuild journal entry (spdk_rebuild_journal.RebuildEntry, or None).
    Returns the snapshot of the unfinished revert (or None) and the warnings the run gives."""
    check_recorded_size(request, recorded)
    reverting = unfinished_revert(snapshots)
    check_no_unfinished_revert(request, reverting)
    warnings = []
    if rebuild is not None and request.state == "present":
        rebuild.check_request([r.name for r in request.replicas])
    if rebuild is not None and request.state == "absent":
        warnings.extend(w for w in [rebuild.deletion_warning()] if w)
    return reverting, warnings


def unfinished_revert(snapshots):
    """The snapshot whose revert a run began and did not finish (its record entry's ``revert`` marker still
    ``running``), from the node record's snapshots of the engine; None when there is none."""
    return next((name for name, entry in sorted((snapshots or {}).items())
                 if ((entry or {}).get("revert") or {}).get("state") == "running"), None)


def check_no_unfinished_revert(request, snapshot):
    """While a revert is unfinished its replicas hold a mix of reverted and current data: refuse to export the
    volume (or to repair its RAID, which the revert deletes and creates again) and say what finishes it."""
    if snapshot is None or request.state != "present":
        return
    finish = ("finish it first: spdk.storage.spdk_snapshot engine=%s name=%s state=reverted (or snapshot_volume.yml "
              "-e volume=%s -e snapshot=%s -e snapshot_action=revert), which ends reverted on every replica"
              % (request.name, snapshot, request.name, snapshot))
    if request.frontend != "none":
        raise EngineRefusal(
            "engine %s: a revert to snapshot %s began and did not finish (the node record marks it running), so its "
            "replicas may hold different data; it is not exported until that revert ends; nothing was changed"
            % (request.name, snapshot), hint=finish)

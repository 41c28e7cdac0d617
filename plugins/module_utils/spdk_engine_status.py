# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An engine as its node shows it: the RAID's real membership, each replica's mode, the frontend.

Health comes from ``bdev_raid_get_bdevs`` compared with the wanted replicas. What real SPDK v26.05
answered (tests/unit/fixtures/transcripts/ and tests/emulator/fixtures/) shapes the matching:

* ``bdev_raid_get_bdevs`` names a member by alias at creation but by UUID once SPDK assembled
  the RAID from the superblocks (tests/emulator/fixtures/d2_raid_sb_restart_*.session.jsonl), and
  names the rebuild target by UUID in a superblock RAID: a member is matched on every name its
  bdev goes by;
* a member that left (removed, or its controller was lost) leaves an empty slot: name null,
  ``is_configured`` false (tests/unit/fixtures/transcripts/more__nvme_reconnect.json).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.spdk.storage.plugins.module_utils.spdk_node import Node

ENGINE_READS = ("raids", "bdevs", "subsystems")
"""The reads an engine run starts with: three RPCs in one batch."""

RW, WO, ERR = "RW", "WO", "ERR"
HEALTHY, DEGRADED, FAULTED, ABSENT = "healthy", "degraded", "faulted", "absent"


def engine_node(client):
    """The engine node as a run reads it: ``ENGINE_READS`` in one batch, no label in the actions."""
    return Node(None, client, ENGINE_READS, is_engine_node=True)


def bdev_size(bdev):
    return bdev["block_size"] * bdev["num_blocks"] if bdev else None


def bdev_refs(state, name):
    """(every name the bdev ``name`` goes by, its raw entry or None)."""
    bdev = state.bdev_named(name)
    if bdev is None:
        return {name}, None
    refs = {name, bdev["name"]} | set(bdev.get("aliases") or [])
    if bdev.get("uuid"):
        refs.add(bdev["uuid"])
    return refs, bdev


def is_nvme_bdev(bdev):
    return bool(bdev) and "nvme" in (bdev.get("driver_specific") or {})


def controller_of(bdev):
    """Controller name of an NVMe namespace bdev ``<controller>n<nsid>``, or None."""
    if not is_nvme_bdev(bdev):
        return None
    match = re.match(r"^(.+)n\d+$", bdev["name"])
    return match.group(1) if match else None


def ana_namespaces(subsystem):
    """``[{"nsid", "anagrpid"}]`` of ``subsystem``'s namespaces (anagrpid None without ANA reporting)."""
    if subsystem is None:
        return []
    return [{"nsid": ns["nsid"], "anagrpid": subsystem.ana_groups.get(ns["nsid"])} for ns in subsystem.namespaces]


def nvme_trid(bdev):
    paths = (bdev.get("driver_specific") or {}).get("nvme") or [] if bdev else []
    return paths[0].get("trid", {}) if paths else {}


def find_member(raid, refs, configured_only=True):
    for member in raid.members if raid else []:
        if configured_only and not member["configured"]:
            continue
        if member["name"] in refs or (member["uuid"] and member["uuid"] in refs):
            return member
    return None


class ReplicaStatus:
    """What the RAID says about one wanted replica."""

    def __init__(self, spec, mode, bdev, member, rebuild):
        self.spec = spec          # the ReplicaRef
        self.mode = mode
        self.bdev = bdev          # raw bdev entry on this node, or None
        self.member = member      # RAID member dict (slot, name, uuid, configured) or None
        self.rebuild = rebuild    # {"percent", "blocks"} while this member is rebuilt

    def to_dict(self):
        out = self.spec.to_dict()
        out.update(mode=self.mode, bdev=self.spec.bdev, present=self.bdev is not None,
                   size=bdev_size(self.bdev), slot=self.member["slot"] if self.member else None,
                   rebuild=dict(self.rebuild) if self.rebuild else None)
        return out


def replica_status(state, raid, spec):
    refs, bdev = bdev_refs(state, spec.bdev)
    member = find_member(raid, refs)
    if member is None:
        return ReplicaStatus(spec, ERR, bdev, None, None)
    process = raid.process
    if process and process["type"] == "rebuild" and process["target"] in refs:
        return ReplicaStatus(spec, WO, bdev, member, {"percent": process["percent"], "blocks": process["blocks"]})
    return ReplicaStatus(spec, RW, bdev, member, None)


def engine_state(raid, statuses):
    """healthy (all RW), degraded (some RW), faulted (none, or no RAID serving I/O)."""
    if raid is None or raid.state != "online":
        return FAULTED
    modes = [s.mode for s in statuses]
    if modes and all(m == RW for m in modes):
        return HEALTHY
    return DEGRADED if RW in modes else FAULTED


def extra_members(state, raid, replicas):
    """Configured RAID members that are none of the wanted replicas."""
    wanted = set()
    for spec in replicas:
        wanted |= bdev_refs(state, spec.bdev)[0]
    return [m for m in (raid.members if raid else [])
            if m["configured"] and m["name"] not in wanted and m["uuid"] not in wanted]


class EngineStatus:
    """The engine as the node shows it: RAID, replica modes, frontend."""

    def __init__(self, state, request):
        self.request = request
        self.raid = state.raid(request.name)
        self.raid_bdev = state.bdev_named(request.name) if self.raid else None
        self.replicas = [replica_status(state, self.raid, spec) for spec in request.replicas]
        self.extra = extra_members(state, self.raid, request.replicas)
        self.subsystem = state.exposure(request.nqn)
        self.namespaces = ana_namespaces(self.subsystem)
        self.state = engine_state(self.raid, self.replicas)

    @property
    def serving(self):
        """The RAID exists and serves I/O (a replica that cannot be reached only degrades it)."""
        return self.raid is not None and self.raid.state == "online"

    def mode(self, name):
        return next(s.mode for s in self.replicas if s.spec.name == name)

    def progress(self):
        """``<replica> <mode>[ <percent>%]`` of every wanted replica, for a message."""
        return ", ".join("%s %s%s" % (s.spec.name, s.mode, " %s%%" % s.rebuild["percent"] if s.rebuild else "")
                         for s in self.replicas)

    def frontend_view(self, device=None):
        sub = self.subsystem
        if sub is None:
            return None
        listener = sub.listeners[0] if sub.listeners else None
        groups = [ns.get("anagrpid") for ns in self.namespaces]
        return {"nqn": sub.nqn, "listen_address": listener.address if listener else None,
                "port": listener.port if listener else None, "allowed_hosts": sorted(sub.hosts),
                "ana_group": groups[0] if groups else None, "device": device}

    def to_dict(self, device=None):
        raid = self.raid
        return {
            "name": self.request.name,
            "state": self.state,
            "size": bdev_size(self.raid_bdev),
            "raid": None if raid is None else {
                "state": raid.state, "uuid": raid.uuid, "superblock": raid.superblock,
                "num_base_bdevs": raid.num_base_bdevs, "num_base_bdevs_discovered": raid.discovered,
                "num_base_bdevs_operational": raid.operational,
                "process": dict(raid.process) if raid.process else None},
            "replicas": [s.to_dict() for s in self.replicas],
            "extra_members": [m["name"] or m["uuid"] for m in self.extra],
            "frontend": self.frontend_view(device),
            "host_nqn": self.request.host_nqn,
        }


def intent_view(request, state_name, port=None):
    """The compact before/after object of ``--diff``: what the engine is configured to be."""
    if state_name == ABSENT:
        return {"state": ABSENT}
    frontend = None
    if request.frontend != "none":
        frontend = {"type": request.frontend, "nqn": request.nqn, "listen_address": request.listen_address,
                    "port": port, "allowed_hosts": list(request.allowed_hosts)}
    return {"state": "present", "replicas": [r.name for r in request.replicas], "frontend": frontend}


def current_intent(status, request):
    """``intent_view`` of what the node has now (replicas = configured wanted members + extras)."""
    if status.raid is None and status.subsystem is None:
        return {"state": ABSENT}
    replicas = [s.spec.name for s in status.replicas if s.member is not None]
    replicas += [m["name"] or m["uuid"] for m in status.extra]
    frontend = None
    view = status.frontend_view()
    if view is not None:
        frontend = {"type": request.frontend if request.frontend != "none" else "nvmf", "nqn": view["nqn"],
                    "listen_address": view["listen_address"], "port": view["port"],
                    "allowed_hosts": view["allowed_hosts"]}
    return {"state": "present", "replicas": replicas, "frontend": frontend}

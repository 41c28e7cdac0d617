# -*- coding: utf-8 -*-
# Copyright (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Orphans on one node: the collection's objects that nothing uses any more.

A replica that a rebuild replaced, the export a deleted lvol left behind, the controller of
a replica that left its engine: each keeps disk space, a port or a connection until someone
deletes it. This module tells them from a ``NodeState`` (spdk_model) and, for exported
replicas, from who is connected to the export (``read_connections``, the only reads here).

* A replica (head lvol) is used when a RAID on this node has it as a member (the engine
  runs here), or when a host is connected to its export (the engine runs on another node
  and reaches it over NVMe-oF). Anything else is an orphan: not exported, or exported with
  nobody connected.
* An export (a subsystem ``nqn.2026-01.io.spdk-storage:*``) is an orphan when none of its
  namespaces is a replica head or a RAID (an engine frontend): the bdev is gone, or it is
  not a replica (a snapshot, a transient rebuild volume).
* A controller (``bdev_nvme``, to a ``nqn.2026-01.io.spdk-storage:*`` subsystem) is an
  orphan when no RAID on this node has one of its namespace bdevs as a member.

It is a snapshot of one moment: the transient objects of a rebuild that runs, and a replica
whose engine is reconnecting to it, show as orphans until they are done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import NQN_PREFIX
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import is_lock_nqn

PARTS = ("lvstores", "bdevs", "subsystems", "raids", "controllers")
"""The model parts orphans are decided from (spdk_model.PARTS names)."""

CONNECTIONS = "nvmf_subsystem_get_controllers"
"""The read that tells who is connected to an export (one per export, ``{"nqn": ...}``)."""


def _ours(nqn):
    """A subsystem the collection exports (a volume's lock is one too, but never an orphan: its holder
    removes it, and a later run removes a dead holder's)."""
    return bool(nqn) and nqn.startswith(NQN_PREFIX) and not is_lock_nqn(nqn)


def _held_by_raid(state, refs):
    return any(raid.has_member(refs) for raid in state.raids)


def connection_reads(state, replicas):
    """NQNs whose connected hosts decide whether one of ``replicas`` is used, sorted.

    Only replicas that no RAID here holds and that are exported need it.
    """
    nqns = set()
    for replica in replicas:
        if replica.exposure is not None and not _held_by_raid(state, replica.head.refs()):
            nqns.add(replica.exposure.nqn)
    return sorted(nqns)


def read_connections(client, nqns):
    """``({nqn: [host NQN, ...]}, warnings)``: who is connected to each export, one pipelined batch.

    An export whose read fails is left out (its replica is then not judged) with a warning.
    """
    if not nqns:
        return {}, []
    answers = client.batch([(CONNECTIONS, {"nqn": nqn}) for nqn in nqns], return_errors=True)
    connected, warnings = {}, []
    for nqn, answer in zip(nqns, answers):
        if isinstance(answer, Exception):
            warnings.append("could not read who is connected to %s (%s); its replica is not judged an orphan"
                            % (nqn, answer))
        else:
            connected[nqn] = sorted(set(c.get("hostnqn") for c in answer or [] if c.get("hostnqn")))
    return connected, warnings


def orphan_replicas(state, replicas, connected):
    """Entries of ``replicas`` nothing uses. ``connected`` maps an export's NQN to the host NQNs
    connected to it; an exported replica whose NQN is missing from it is not judged (unknown)."""
    found = []
    for replica in replicas:
        if _held_by_raid(state, replica.head.refs()):
            continue
        entry = {"name": replica.name, "disk": replica.disk, "uuid": replica.head.uuid,
                 "export": replica.exposure.nqn if replica.exposure else None}
        if replica.exposure is None:
            entry["reason"] = "no RAID on this node has it as a member and it is not exported"
        elif replica.exposure.nqn not in connected:
            continue
        elif connected[replica.exposure.nqn]:
            continue
        else:
            entry["reason"] = ("no RAID on this node has it as a member and no host is connected to its "
                               "export (allowed: %s)" % (", ".join(replica.exposure.allowed_hosts) or "none"))
        found.append(entry)
    return found


def orphan_exports(state):
    """The collection's subsystems none of whose namespaces is a replica head or a RAID."""
    heads = [r.head for r in state.replicas()]
    found = []
    for exposure in state.exposures:
        if not _ours(exposure.nqn):
            continue
        bdevs = [ns["bdev"] for ns in exposure.namespaces]
        if any(exposure.exports(head.refs()) for head in heads):
            continue
        if any(exposure.exports({raid.name, raid.uuid}) for raid in state.raids):
            continue
        found.append({"nqn": exposure.nqn, "bdevs": bdevs, "reason": _export_reason(state, bdevs)})
    return found


def _export_reason(state, bdevs):
    if not bdevs:
        return "it has no namespace"
    why = []
    for name in bdevs:
        lvol = state.lvol_by_ref(name)
        if lvol is not None:
            kind = "a snapshot" if lvol.is_snapshot else "not a replica head"
            why.append("%s is %s" % (lvol.alias or lvol.name, kind))
        elif state.bdev_named(name) is None:
            why.append("bdev %s does not exist" % name)
        else:
            why.append("bdev %s is neither a replica nor a RAID" % name)
    return "; ".join(why)


def controller_bdevs(state, controller):
    """Names of the namespace bdevs of ``controller`` (``<controller>n<nsid>``)."""
    pattern = re.compile("^%sn[0-9]+$" % re.escape(controller.name))
    return sorted(name for name in state.bdevs if pattern.match(name))


def orphan_controllers(state):
    """The collection's NVMe-oF controllers of which no RAID here has a namespace bdev as a member."""
    found = []
    for controller in state.controllers:
        subnqns = sorted(set(p["subnqn"] for p in controller.paths if p["subnqn"]))
        if not any(_ours(nqn) for nqn in subnqns):
            continue
        bdevs = controller_bdevs(state, controller)
        refs = set(bdevs)
        for name in bdevs:
            refs.update(state.bdevs[name].get("aliases") or [])
            if state.bdevs[name].get("uuid"):
                refs.add(state.bdevs[name]["uuid"])
        if refs and _held_by_raid(state, refs):
            continue
        found.append({"name": controller.name, "subnqns": subnqns, "bdevs": bdevs,
                      "states": sorted(set(p["state"] for p in controller.paths if p["state"])),
                      "reason": "no RAID on this node has one of its bdevs as a member" if bdevs
                      else "it has no namespace bdev"})
    return found


def orphans(state, connected, disk=None):
    """``{"replicas": [...], "exports": [...], "controllers": [...]}`` of ``state``.

    ``connected``: host NQNs connected to each export in ``connection_reads`` (as read);
    ``disk`` limits the replicas to one disk.
    """
    replicas = [r for r in state.replicas() if disk is None or r.disk == disk]
    return {"replicas": orphan_replicas(state, replicas, connected),
            "exports": orphan_exports(state),
            "controllers": orphan_controllers(state)}

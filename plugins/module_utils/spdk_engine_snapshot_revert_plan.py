# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning an engine revert from what the nodes answered: refusals, progress, and each phase's steps.

A revert deletes the engine's RAID, replaces every replica's head by a clone of its snapshot, clears
LBA 0 of every new head and creates the RAID again. What real SPDK v26.05 answered shapes it
(tests/unit/fixtures/transcripts/more__sendcmd__sendcmd.json holds the recording of the first point):

* ``bdev_raid_create`` over heads cloned from snapshots fails with -17: each clone carries the old
  RAID's superblock. Zeroing LBA 0 of every new head with ``bdev_nvme_send_cmd`` Write Zeroes
  through an attached NVMe-oF controller makes it succeed (spdk_superblock);
* the engine's controller of a remote head must be detached before the replica's node removes the
  export's namespace, and attached again once the new head is exported.

Every function here is pure: it reads ReplicaViews and NodeStates and returns Steps or a verdict.
A phase that follows a change is planned on the reads taken after it (spdk_engine_snapshot_revert);
in check mode nothing is read again, so ``stale`` says which replicas' reads still show the old head.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    EngineSnapshotRefusal,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


def check_revert(request, views, frontend):
    """Refuse, before any change, a revert the engine's state does not allow."""
    if frontend is not None:
        raise EngineSnapshotRefusal(
            "engine %s still has its frontend %s: revert replaces the volume's content under any connected "
            "host, so it runs only without a frontend. Remove it first (spdk.storage.spdk_engine with "
            "frontend=none), revert, then create the frontend again; nothing was changed"
            % (request.engine, request.nqn))
    missing = [v.ref.name for v in views if v.snapshot(request.name) is None
               or not v.snapshot(request.name).lvol.is_snapshot]
    if missing:
        raise EngineSnapshotRefusal(
            "engine snapshot %s is missing on replica %s: every replica must hold it to revert the engine to "
            "it; nothing was changed" % (request.name, ", ".join(missing)))
    for view in views:
        if not view.ref.is_local and view.export() is None:
            view.fail("export missing")
            raise EngineSnapshotRefusal(
                "replica %s has no export %s on its node: expose it again with spdk.storage.spdk_replica "
                "(the recovery playbook does) and run again; nothing was changed" % (view.ref.name, view.ref.nqn))


def revert_done(request, marker, engine_state, views):
    """The record's ``marker`` says this revert finished, and nothing replaced or wrote the heads since: the same
    heads with as many allocated clusters, and no frontend since (spdk_engine drops a ``done`` marker when it
    exports the engine, as a host write into a cluster a head already holds changes neither)."""
    if not marker or marker.get("state") != "done" or any(v.replica is None for v in views):
        return False
    raid = engine_state.raid(request.engine)
    if raid is None or raid.state != "online":
        return False
    for view in views:
        head = view.replica.head
        if (marker.get("heads") or {}).get(view.ref.name) != head.uuid:
            return False
        if (marker.get("allocated") or {}).get(view.ref.name) != head.allocated_clusters:
            return False
    return True


def raid_is_revert_result(request, heads, engine_state, views):
    """A RAID over exactly the re-cloned ``heads`` ({replica: head UUID}): an earlier run crashed after
    creating it."""
    raid = engine_state.raid(request.engine)
    if raid is None or len(heads) != len(views) or any(v.replica is None for v in views):
        return False
    members = {m["uuid"] for m in raid.members if m["configured"]}
    return all(heads.get(v.ref.name) == v.replica.head.uuid for v in views) and members == set(heads.values())


def engine_raid_steps(request, engine_state):
    """Delete the engine's RAID (keeping the superblocks: ``clear_sb`` false)."""
    if engine_state.raid(request.engine) is None:
        return []
    return [Step("bdev_raid_delete", {"name": request.engine, "clear_sb": False},
                 "delete RAID %s (its heads are replaced by clones of snapshot %s)" % (request.engine, request.name))]


def stale_raid_steps(view):
    """Delete any RAID a restarted replica node assembled around the head from its superblock."""
    if view.node.is_engine_node or view.replica is None:
        return []
    return [Step("bdev_raid_delete", {"name": stale.name, "clear_sb": False},
                 "delete RAID %s that the node assembled around replica %s from its superblock"
                 % (stale.name, view.ref.name))
            for stale in view.node.state.raids_using(view.replica.head)]


def detach_step(controller):
    return Step("bdev_nvme_detach_controller", {"name": controller},
                "detach controller %s (its namespace is about to be re-pointed)" % controller,
                tolerate=lambda err: err.is_no_device())


def unexport_steps(view, head):
    """Take the old ``head`` out of the replica's export (a remote replica)."""
    export = view.export()
    return [Step("nvmf_subsystem_remove_ns", {"nqn": view.ref.nqn, "nsid": ns["nsid"]},
                 "take head %s out of export %s" % (head.alias, view.ref.nqn))
            for ns in (export.namespaces if export else []) if ns["bdev"] in head.refs()]


def reclone_steps(request, view, head):
    """Delete ``head`` (None: a killed run deleted it already) and clone the snapshot as the new head; the
    clone answers the new head's UUID."""
    lvol = request.lvol_name(view.ref)
    steps = []
    if head is not None:
        steps.append(Step("bdev_lvol_delete", {"name": head.alias},
                          "delete head %s (replaced by a clone of snapshot %s)" % (head.alias, request.name)))
    steps.append(Step("bdev_lvol_clone", {"snapshot_name": "%s/%s" % (view.disk, lvol), "clone_name": view.ref.name},
                      "clone snapshot %s as the new head %s/%s" % (lvol, view.disk, view.ref.name)))
    return steps


def export_steps(view, stale):
    """Export the new head of a remote replica where its export does not hold it yet. ``stale``: the reads
    still show the old head (check mode), which the export no longer holds then."""
    ref, head = view.ref, view.replica.head
    export = view.export()
    if not stale and any(ns["bdev"] in head.refs() for ns in export.namespaces):
        return []
    steps = [Step("nvmf_subsystem_remove_ns", {"nqn": ref.nqn, "nsid": ns["nsid"]},
                  "remove namespace %d (bdev %s is not the replica's head)" % (ns["nsid"], ns["bdev"]))
             for ns in ([] if stale else export.namespaces)]
    steps.append(Step("nvmf_subsystem_add_ns", {"nqn": ref.nqn, "namespace": {"bdev_name": head.alias}},
                      "export the new head %s as %s" % (head.alias, ref.nqn)))
    return steps


def needs_attach(engine_state, view, stale):
    """Whether the engine node must attach the remote replica again to reach its new head."""
    bdev = engine_state.bdev_named(view.ref.bdev)
    return stale or bdev is None or bdev.get("uuid") != view.replica.head.uuid


def attach_step(request, ref):
    """Attach a remote replica with the engine's own controller loss policy (``request.timeouts``)."""
    return Step("bdev_nvme_attach_controller", ref.attach_params(request.host_nqn, request.timeouts),
                "attach replica %s again (now its new head)" % ref.name)


def raid_create_step(request, views):
    return Step("bdev_raid_create", {"name": request.engine, "raid_level": "raid1", "strip_size_kb": 0,
                                     "base_bdevs": [v.ref.bdev for v in views], "superblock": True},
                "re-create RAID1 %s with a superblock over the reverted heads" % request.engine)

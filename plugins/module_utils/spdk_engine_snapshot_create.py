# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning an engine snapshot's creation and deletion from what the replicas' nodes answered.

Pure functions over ReplicaViews: they refuse what cannot be done consistently, naming what to do,
and otherwise return the steps per replica. The run (spdk_engine_snapshot) sends them.

* A set that exists on some replicas only (a run killed mid-way) cannot be completed consistently
  while I/O runs: the existing snapshots hold an earlier point in time than any new one. It is
  deleted where it is still the head's direct parent (nothing was built on it) and the whole set
  is taken again; a partial snapshot that already has children is refused.
* Deleting a snapshot with one child merges it into that child (data intact); with two children
  SPDK answers "Operation not permitted", so that is refused before any replica changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    EngineSnapshotRefusal,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


def snapshot_alias(request, view):
    """``<disk>/<replica>-snap-<name>`` of the replica in ``view``."""
    return "%s/%s" % (view.disk, request.lvol_name(view.ref))


class CreatePlan:
    """What creating the engine snapshot takes: ``retake`` [(view, delete step)] of a partial set,
    ``snapshots`` [(view, snapshot step)] on every replica (empty when the set exists)."""

    def __init__(self, retake=(), snapshots=()):
        self.retake = list(retake)
        self.snapshots = list(snapshots)

    @property
    def changed(self):
        return bool(self.snapshots)


def classify(request, views, recorded):
    """(views that hold the snapshot, views that miss it); a name held by another lvol, or a copy that is
    not the recorded one (``recorded``: {replica: snapshot UUID}), refuses the run."""
    have, missing = [], []
    for view in views:
        snap = view.snapshot(request.name)
        lvol = view.node.state.lvol(view.disk, request.lvol_name(view.ref))
        if lvol is not None and not lvol.is_snapshot:
            view.fail("name taken by a lvol that is not a snapshot")
            raise EngineSnapshotRefusal(
                "lvol %s/%s on %s exists but is not a snapshot (a writable lvol or clone holds the name of "
                "engine snapshot %s): rename or delete it, or choose another snapshot name; nothing was changed"
                % (view.disk, lvol.name, view.node.label, request.name))
        if snap is None:
            missing.append(view)
            continue
        known = recorded.get(view.ref.name)
        if known and known != snap.lvol.uuid:
            view.fail("snapshot differs from the recorded engine snapshot")
            raise EngineSnapshotRefusal(
                "snapshot %s of replica %s (uuid %s) is not the one engine snapshot %s recorded (uuid %s): it was "
                "deleted and taken again on that replica alone, so it holds another point in time than the "
                "other replicas' copies. Delete the engine snapshot (state=absent) and take it again; nothing "
                "was changed" % (request.name, view.ref.name, snap.lvol.uuid, request.name, known))
        have.append(view)
    return have, missing


def check_partial(request, partial):
    """Refuse a partial set that already has children on a replica (nothing can replace it safely)."""
    for view in partial:
        replica = view.replica
        children = ops.snapshot_children(replica, replica.snapshot(request.name))
        if children != [replica.name]:
            view.fail("partial snapshot with other children")
            raise EngineSnapshotRefusal(
                "engine snapshot %s exists on %s only, and on %s it already has children (%s): it cannot be "
                "completed consistently (it holds an earlier point in time than a new snapshot of the other "
                "replicas) nor replaced safely. Delete it on every replica (state=absent, after removing all "
                "but one child) and take it again; nothing was changed"
                % (request.name, ", ".join(v.ref.name for v in partial), view.ref.name, ", ".join(children)))


def snapshot_step(request, view):
    lvol = request.lvol_name(view.ref)
    return Step("bdev_lvol_snapshot", {"lvol_name": "%s/%s" % (view.disk, view.ref.name), "snapshot_name": lvol},
                "snapshot replica %s as %s" % (view.ref.name, lvol))


def rollback_step(request, view):
    alias = snapshot_alias(request, view)
    return Step("bdev_lvol_delete", {"name": alias},
                "roll back: delete %s (the snapshot of another replica failed)" % alias)


def plan_create(request, views, recorded):
    """The CreatePlan for the snapshot ``request.name`` on every replica of ``views``."""
    have, missing = classify(request, views, recorded)
    if not missing:
        return CreatePlan()
    partial = [v for v in views if v in have]
    check_partial(request, partial)
    retake = [(view, Step("bdev_lvol_delete", {"name": snapshot_alias(request, view)},
                          "delete %s: it exists on %s only, taken at another time than the snapshots about to be "
                          "taken on the others; the whole set is taken again"
                          % (request.lvol_name(view.ref), ", ".join(v.ref.name for v in partial))))
              for view in partial]
    return CreatePlan(retake, [(view, snapshot_step(request, view)) for view in views])


def plan_delete(request, views):
    """[(view, delete step)] of the snapshot ``request.name`` where it exists; refuses a copy with more than
    one child (SPDK cannot merge it) or an lvol of that name that is not a snapshot."""
    steps = []
    for view in views:
        snap = view.snapshot(request.name)
        if snap is None:
            continue
        if not snap.lvol.is_snapshot:
            raise EngineSnapshotRefusal("lvol %s/%s on %s is not a snapshot; it is left alone, nothing was changed"
                                        % (view.disk, snap.lvol.name, view.node.label))
        children = ops.snapshot_children(view.replica, snap)
        if len(children) > 1:
            view.fail("snapshot has %d children" % len(children))
            raise EngineSnapshotRefusal(
                "snapshot %s has %d children on replica %s (%s): SPDK can only delete a snapshot by merging it "
                "into a single child. Delete all but one child first; nothing was changed on any replica"
                % (request.name, len(children), view.ref.name, ", ".join(children)))
        steps.append((view, Step("bdev_lvol_delete", {"name": snapshot_alias(request, view)},
                                 "delete snapshot %s of replica %s (merged into %s)"
                                 % (request.name, view.ref.name, children[0] if children else "nothing"))))
    return steps

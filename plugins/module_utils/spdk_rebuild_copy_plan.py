# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planners of a rebuild's copy phase: from the node states as read, the steps that take the
system snapshot, make the transient lvol, export and attach it, copy each snapshot level into it,
remove it again, and make and export the new head. spdk_rebuild_copy.py sends them in order.

How the copy works, as real SPDK v26.05 answered (recordings in tests/emulator/fixtures/):

* ``bdev_lvol_start_shallow_copy`` copies exactly the clusters a snapshot owns, whole, to the same
  offsets of any bdev, here an NVMe-oF namespace the source node attaches (session.jsonl, its lines
  from step4.jsonl 33-39): a destination lvol that starts with no cluster of its own ends with
  exactly the source's ``num_allocated_clusters`` (d6_alloc_after_shallow_copy.session.jsonl), so
  thin stays thin;
* ``bdev_lvol_check_shallow_copy`` reports the final state once, then -19 (session.jsonl, step4.jsonl
  17-21), and a restarted source target forgets every operation: a copy whose result was not read
  is copied again. A copy of the same snapshot into the same lvol writes the same clusters, so that
  is safe. A controller left by an interrupted run is detached first, which ends any copy still
  writing;
* the chain is rebuilt oldest first, each level in a clone of the destination's copy of the level
  below (or a new thin lvol for the root), then snapshotted under the same snapshot name:
  ``bdev_lvol_snapshot`` turns the copied lvol into a clone of the new snapshot with no cluster of
  its own, which is exactly the next level's starting point. Nothing is ever written into a thin lvol
  that has no parent and then re-parented: after a partial-cluster write and ``bdev_lvol_set_parent``
  it does not read the parent in the rest of that cluster
  (d1_set_parent_thin_no_parent.session.jsonl). Shallow copies write whole clusters and the head is
  created as a clone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    replica_nqn,
    snapshot_lvol_name,
    split_snapshot_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    COPY_ERROR_HINTS,
    REPLICA_MODEL,
    RebuildError,
    rebuild_host_nqn,
    size_mib,
    transient_name,
    transient_nqn,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step

COMPLETE, FORGOTTEN = "complete", "forgotten"


def is_gone(err):
    """An SPDK answer that means the object is already gone (tolerated by detaches and deletes)."""
    return err.is_no_device()


def level_name(lvol):
    """The snapshot name of a chain level (``<replica>-snap-<name>`` -> ``name``)."""
    return split_snapshot_lvol_name(lvol.name)[1]


def required_methods(source_supports, engine_supports):
    """``(node role, method, what for)`` of every RPC the run needs and a node lacks."""
    needs = [("source", source_supports, "bdev_lvol_start_shallow_copy", "copying snapshots (upstream shallow copy)"),
             ("engine", engine_supports, "bdev_nvme_send_cmd", "clearing the old RAID superblock of the copied head")]
    return [(role, method, what) for role, supports, method, what in needs if not supports(method)]


# ---------------------------------------------------------------- system snapshot (offline)


def plan_system_snapshot(name, views):
    """``(index, Step)`` for every replica of ``views`` ((ReplicaRef, model Replica) pairs: the source and
    the other RW members) whose head has no snapshot ``name`` yet, taken with no I/O in between."""
    planned = []
    for index, (member, view) in enumerate(views):
        if view.snapshot(name) is not None:
            continue
        params = {"lvol_name": view.head.alias, "snapshot_name": snapshot_lvol_name(member.name, name)}
        planned.append((index, Step("bdev_lvol_snapshot", params, "system snapshot %s of replica %s (the point the "
                                                                  "rebuild copies)" % (name, member.name))))
    return planned


# ---------------------------------------------------------------- the transient lvol, its export, its controller


def plan_stale_controller(source_state, dest):
    """A transient controller on the source left by an interrupted run: detached first, which also ends a
    copy it may still run."""
    name = transient_name(dest.replica)
    if not any(c.name == name for c in source_state.controllers):
        return []
    return [Step("bdev_nvme_detach_controller", {"name": name},
                 "detach %s left by an interrupted run (ends any copy still writing through it)" % name,
                 tolerate=is_gone)]


def drop_transient_export(dest_state, dest):
    nqn = transient_nqn(dest.replica)
    if dest_state.exposure(nqn) is None:
        return []
    return [Step("nvmf_delete_subsystem", {"nqn": nqn}, "delete the transient export %s" % nqn)]


def plan_transient(dest_state, dest, chain, level, source_size):
    """The steps that make the transient lvol a clone of the copy of level ``level - 1`` of ``chain`` (a new
    thin lvol for the root): none when it already is, a delete first when an interrupted run left it for
    another level (or with more clusters than the level it is copied from owns)."""
    name = transient_name(dest.replica)
    parent = snapshot_lvol_name(dest.replica, level_name(chain[level - 1])) if level > 0 else None
    lvol = dest_state.lvol(dest.disk, name)
    wanted = chain[level] if level < len(chain) else None
    steps = []
    if lvol is not None and (lvol.parent != parent or lvol.is_snapshot or (
            wanted is not None and lvol.allocated_clusters > wanted.allocated_clusters)):
        steps += drop_transient_export(dest_state, dest)
        steps.append(Step("bdev_lvol_delete", {"name": lvol.alias},
                          "delete %s: left by an interrupted run for another level" % lvol.alias))
        lvol = None
    if lvol is None and parent is None:
        steps.append(Step("bdev_lvol_create",
                          {"lvol_name": name, "size_in_mib": size_mib(wanted.size if wanted else source_size),
                           "thin_provision": True, "lvs_name": dest.disk},
                          "create thin lvol %s/%s to copy the oldest snapshot into" % (dest.disk, name)))
    elif lvol is None:
        steps.append(Step("bdev_lvol_clone", {"snapshot_name": "%s/%s" % (dest.disk, parent), "clone_name": name},
                          "clone %s as %s to copy the next snapshot into" % (parent, name)))
    return steps


def transient_spec(dest, transient):
    """The transient export: only the rebuild's own host may connect. ``transient`` None: not made yet."""
    return nvmf.ExposureSpec(
        nqn=transient_nqn(dest.replica),
        bdev=transient.alias if transient else "%s/%s" % (dest.disk, transient_name(dest.replica)),
        bdev_uuid=transient.uuid if transient else None, listen_address=dest.listen_address,
        port_range=dest.port_range, allowed_hosts=[rebuild_host_nqn(dest.replica)], model_number=REPLICA_MODEL)


def plan_attach_transient(source_state, dest, port, timeouts):
    """The source node attaches the transient export (the copy's destination bdev ``<transient>n1``)."""
    name = transient_name(dest.replica)
    if any(c.name == name for c in source_state.controllers) and source_state.bdev_named(name + "n1") is not None:
        return []
    params = nvmf.attach_params(name, dest.listen_address, port, transient_nqn(dest.replica),
                                rebuild_host_nqn(dest.replica), timeouts=timeouts)
    return [Step("bdev_nvme_attach_controller", params,
                 "attach the transient export on the source node (the copy's destination bdev %sn1)" % name)]


def plan_transient_cleanup(source_state, dest_state, dest):
    """``(source steps, destination steps)`` that remove the transient controller, export and lvol."""
    name = transient_name(dest.replica)
    on_source = []
    if any(c.name == name for c in source_state.controllers):
        on_source.append(Step("bdev_nvme_detach_controller", {"name": name},
                              "detach the transient controller %s" % name, tolerate=is_gone))
    on_dest = drop_transient_export(dest_state, dest)
    lvol = dest_state.lvol(dest.disk, name)
    if lvol is not None:
        on_dest.append(Step("bdev_lvol_delete", {"name": lvol.alias},
                            "delete the transient lvol %s (the copies are snapshots now)" % lvol.alias))
    return on_source, on_dest


# ---------------------------------------------------------------- one level


def plan_grow(lvol, size, why):
    """A snapshot taken after the volume grew is larger than its parent: grow (never shrink) to fit."""
    if lvol is None or lvol.size >= size:
        return []
    return [Step("bdev_lvol_resize", {"name": lvol.alias, "size_in_mib": size_mib(size)}, why)]


def copy_step(lvol, dest):
    return Step("bdev_lvol_start_shallow_copy",
                {"src_lvol_name": lvol.alias, "dst_bdev_name": transient_name(dest.replica) + "n1"},
                "copy the %d clusters of snapshot %s to the destination" % (lvol.allocated_clusters, level_name(lvol)))


def copy_progress(status, lvol):
    """What one ``bdev_lvol_check_shallow_copy`` answer says: COMPLETE, or None while in progress; an
    error state raises (its text explained where it is known)."""
    state = status.get("state")
    if state == "complete":
        return COMPLETE
    if state == "error":
        raise RebuildError("the shallow copy of snapshot %s failed on the source node: %s%s; run again to copy it "
                           "afresh" % (lvol.alias, status.get("error"), COPY_ERROR_HINTS.get(status.get("error"), "")))
    return None


def check_copied(copied, lvol):
    """The transient lvol must own exactly the clusters of the source's snapshot before it is snapshotted."""
    owned = copied.allocated_clusters if copied is not None else None
    if owned != lvol.allocated_clusters:
        raise RebuildError(
            "after copying snapshot %s the destination lvol owns %s clusters, the source's snapshot %d: refusing to "
            "snapshot an inexact copy; run again (the level is copied afresh)"
            % (level_name(lvol), owned, lvol.allocated_clusters))


def snapshot_copy_step(dest, name):
    target = snapshot_lvol_name(dest.replica, name)
    return Step("bdev_lvol_snapshot",
                {"lvol_name": "%s/%s" % (dest.disk, transient_name(dest.replica)), "snapshot_name": target},
                "snapshot the copy as %s (same snapshot name as the source's)" % target)


def placeholder_copy(snapshot):
    """Check mode: the system snapshot is only planned, so its copy is a placeholder (sent never)."""
    return Step("(copy)", {"snapshot": snapshot},
                "copy system snapshot %s, then snapshot it on the destination" % snapshot)


# ---------------------------------------------------------------- the new head


def head_parent(dest, parent_name):
    """The destination lvol the head is a clone of: the copy of ``parent_name`` (None: no snapshot)."""
    return snapshot_lvol_name(dest.replica, parent_name) if parent_name else None


def stale_head_problem(head, parent, mode, fresh, engine):
    """Why a head cloned from another parent (an older copy) cannot be made again, or None."""
    if mode is not None:
        return ("the destination head %s is already a member of RAID %s but its parent is %s, not %s; remove it "
                "from the engine first" % (head.alias, engine, head.parent, parent))
    if not fresh:
        return ("lvol %s exists on the destination with %d clusters of its own data and parent %s: it is not this "
                "rebuild's head; delete it or choose another destination name"
                % (head.alias, head.allocated_clusters, head.parent))
    return None


def plan_stale_head_removal(dest_state, dest, head, parent):
    """Unexport and delete a head cloned from an older copy (the source got a snapshot since)."""
    nqn = replica_nqn(dest.replica)
    steps = []
    if dest_state.exposure(nqn) is not None:
        steps.append(Step("nvmf_delete_subsystem", {"nqn": nqn}, "unexport the outdated head %s" % head.alias))
    steps.append(Step("bdev_lvol_delete", {"name": head.alias}, "delete the head %s cloned from %s: it must be a "
                                                                "clone of %s" % (head.alias, head.parent, parent)))
    return steps


def plan_head(dest, parent, size):
    """Make ``<dest>``: a clone of the copy ``parent``, or a thin lvol when the source has no snapshot."""
    if parent is None:
        return [Step("bdev_lvol_create",
                     {"lvol_name": dest.replica, "size_in_mib": size_mib(size), "thin_provision": True,
                      "lvs_name": dest.disk},
                     "create the thin head %s/%s (the RAID rebuild fills it)" % (dest.disk, dest.replica))]
    return [Step("bdev_lvol_clone", {"snapshot_name": "%s/%s" % (dest.disk, parent), "clone_name": dest.replica},
                 "clone %s as the new head %s" % (parent, dest.replica))]


def head_spec(dest, head, host_nqn):
    """The new replica's export, as spdk_replica makes it: its NQN, the engine node's host, a port."""
    return nvmf.ExposureSpec(
        nqn=replica_nqn(dest.replica), bdev=head.alias if head else "%s/%s" % (dest.disk, dest.replica),
        bdev_uuid=head.uuid if head else None, listen_address=dest.listen_address, port=dest.port,
        port_range=dest.port_range, allowed_hosts=[host_nqn], model_number=REPLICA_MODEL)


def with_why(steps, suffix):
    """``steps`` with ``suffix`` added to each reason."""
    return [Step(s.method, s.params, s.why + suffix, s.tolerate) for s in steps]

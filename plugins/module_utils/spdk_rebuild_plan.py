# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions of a rebuild, on node states as they were read: the chain to copy and how much of it
the destination already holds, the strategy, whether a replica is identical to the source, what the
engine's RAID says of a member, the merge of the system snapshots and the removal of the replaced
replica.

Facts relied on (real SPDK v26.05):

* a shallow copy writes exactly the clusters a snapshot owns (tests/emulator/fixtures/
  d6_alloc_after_shallow_copy.session.jsonl), so a copy level is done when the destination's
  snapshot owns as many clusters as the source's;
* ``bdev_lvol_delete`` of a snapshot with exactly one child merges it into that child and every byte
  reads the same; with two children it answers -32603 "Operation not permitted"
  (tests/emulator/fixtures/lvol_ops.session.jsonl);
* deleting a RAID releases its members' claims (tests/emulator/fixtures/
  d2_raid_sb_restart_clean_remove.session.jsonl).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import RW, WO, bdev_refs, find_member
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    round_up,
    snapshot_lvol_name,
    split_snapshot_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    RebuildError,
    is_system_snapshot,
    superblock_clusters,
)


# ---------------------------------------------------------------- the chain


def chain_lvols(replica):
    """The snapshot lvols of the head's chain, oldest first ([] without snapshots)."""
    if replica is None:
        return []
    return [replica.snapshot(name).lvol for name in replica.chain]


def chain_names(replica):
    return [split_snapshot_lvol_name(lvol.name)[1] for lvol in chain_lvols(replica)]


def copied_levels(source_chain, dest_state, dest):
    """How many levels of ``source_chain`` the destination (``dest_state``) already holds, checking each one.

    A level is done when ``<dest>-snap-<name>`` exists as a snapshot whose parent is the level
    below and owns as many clusters as the source's snapshot (shallow copy is exact).
    """
    done, parent = 0, None
    for lvol in source_chain:
        name = split_snapshot_lvol_name(lvol.name)[1]
        target = snapshot_lvol_name(dest.replica, name)
        copy = dest_state.lvol(dest.disk, target)
        if copy is None:
            break
        if not copy.is_snapshot or copy.parent != parent:
            raise RebuildError(
                "lvol %s/%s exists on the destination but is not the copy of snapshot %s (snapshot: %s, parent: %s, "
                "expected parent %s); it was not made by this rebuild: delete it or choose another destination name"
                % (dest.disk, target, name, copy.is_snapshot, copy.parent, parent))
        if copy.allocated_clusters != lvol.allocated_clusters:
            raise RebuildError(
                "the destination's copy %s owns %d clusters but the source's snapshot owns %d: the copies differ; "
                "delete the destination replica's lvols and run the rebuild again"
                % (target, copy.allocated_clusters, lvol.allocated_clusters))
        done += 1
        parent = target
    return done


def choose_strategy(requested, frontend_live):
    """offline without a frontend (no I/O can happen), online with one; what was asked wins if possible."""
    if requested == "offline" and frontend_live:
        raise RebuildError(
            "strategy offline needs the engine without frontend (no I/O during the copy): set the engine's frontend "
            "to none first (spdk.storage.spdk_engine frontend=none), or use strategy online")
    if requested != "auto":
        return requested
    return "online" if frontend_live else "offline"


# ---------------------------------------------------------------- identity (offline)


def head_is_fresh(head, cluster_size):
    """True when the head owns at most the superblock area's clusters: nothing but the RAID wrote to it
    since its parent snapshot (with no frontend, the RAID's superblock updates are the only writes)."""
    return head.allocated_clusters <= superblock_clusters(cluster_size)


def reusable_system_snapshot(replica, cluster_size):
    """The head's parent if it is a system snapshot of an earlier run that nothing was written after."""
    if replica is None:
        return None
    parent = replica.parent
    if is_system_snapshot(parent) and head_is_fresh(replica.head, cluster_size):
        return parent
    return None


def identity_problem(view, source_chain, snapshot, cluster_size):
    """Why member ``view`` (a model Replica) is not known identical to the source, or None.

    Identical: same chain of snapshot names ending with the system snapshot ``snapshot``, and a
    head with nothing written since (its data is that snapshot's, which the copy made equal).
    """
    if view is None:
        return "its head lvol is missing"
    names = chain_names(view)
    if names != source_chain:
        return "its snapshot chain %s differs from the source's %s" % (names, source_chain)
    if view.parent != snapshot:
        return "its head is not a clone of snapshot %s" % snapshot
    if not head_is_fresh(view.head, cluster_size):
        return "its head owns %d clusters written after snapshot %s" % (view.head.allocated_clusters, snapshot)
    return None


# ---------------------------------------------------------------- space on the destination


def clusters_of(nbytes, cluster_size):
    """Whole clusters of ``cluster_size`` bytes that ``nbytes`` span."""
    return round_up(nbytes, cluster_size) // cluster_size


def space_needed(source, source_cluster, levels_left, strategy, dest_cluster, dest_head=None, transient=None):
    """The clusters the destination disk still has to allocate for the new replica: (copies, head).

    ``levels_left`` are the source's snapshot lvols not copied yet; ``transient`` the lvol an interrupted
    copy was writing (its clusters are already taken); ``dest_head`` the new head if it exists.
    * A shallow copy allocates exactly what each snapshot owns. Offline, a system snapshot not taken yet
      will own what the source head owns now, and it is copied too.
    * Online, SPDK's RAID1 rebuild writes every block of the new head, so the head ends up owning all of
      its clusters. Offline the RAID is created again over identical heads: the head only gets the RAID
      superblock area.
    """
    copied = sum(lvol.allocated_clusters for lvol in levels_left) * source_cluster
    if strategy == "offline" and reusable_system_snapshot(source, source_cluster) is None:
        copied += source.head.allocated_clusters * source_cluster
    copies = clusters_of(copied, dest_cluster) - (transient.allocated_clusters if transient is not None else 0)
    whole = clusters_of(source.size, dest_cluster) if strategy == "online" else superblock_clusters(dest_cluster)
    head = whole - (dest_head.allocated_clusters if dest_head is not None else 0)
    return max(copies, 0), max(head, 0)


def space_problem(disk, where, copies, head, strategy):
    """Why ``disk`` (a model Disk, on ``where``) cannot take the new replica, or None."""
    if copies + head <= disk.free_clusters:
        return None
    head_why = "the head, written whole by the RAID1 rebuild" if strategy == "online" else "the RAID superblock area"
    return ("disk %s on the %s has %d free clusters of %d bytes; the new replica needs %d more (snapshot copies %d, %s "
            "%d): free space there or rebuild onto another disk (destination disk), before anything is changed"
            % (disk.name, where, disk.free_clusters, disk.cluster_size, copies + head, copies, head_why, head))


# ---------------------------------------------------------------- the engine's RAID


def raid_member_refs(engine_state, raid, member):
    """Every name the member's bdev has on the engine node, if it is a configured member of ``raid``."""
    refs = bdev_refs(engine_state, member.bdev)[0]
    return refs if find_member(raid, refs) else None


def rebuild_target(raid):
    return raid.process["target"] if raid is not None and raid.process else None


def member_mode(engine_state, raid, member):
    """RW, WO or None (not a member) of replica ``member`` in ``raid``."""
    refs, bdev = bdev_refs(engine_state, member.bdev)
    if raid is None or bdev is None or not refs or find_member(raid, refs) is None:
        return None
    return WO if rebuild_target(raid) in refs else RW


def rw_members(engine_state, raid, keep, source):
    """The replicas of ``keep`` that are configured members of ``raid`` and not being rebuilt, source first."""
    out = []
    for member in keep:
        if raid is not None and raid_member_refs(engine_state, raid, member) \
                and rebuild_target(raid) not in bdev_refs(engine_state, member.bdev)[0]:
            out.append(member)
    out.sort(key=lambda m: m.name != source.name)
    return out


def raid_is_whole(raid, members):
    """Why the system snapshots cannot be merged now, or None: the RAID must be online, rebuild nothing,
    and have every slot held by one of ``members`` (the replicas this run reaches), all RW."""
    if raid is None or raid.state != "online":
        return "RAID is %s" % (raid.state if raid else "absent")
    if raid.process:
        return "RAID is rebuilding %s (%s%%)" % (raid.process["target"], raid.process["percent"])
    if raid.discovered != raid.num_base_bdevs:
        return "RAID has %s of %s members" % (raid.discovered, raid.num_base_bdevs)
    if len(members) != raid.num_base_bdevs:
        return "RAID has %s members but this run knows %d of them as RW replicas (%s)" % (
            raid.num_base_bdevs, len(members), ", ".join(members))
    return None


# ---------------------------------------------------------------- after the join


def plan_system_merge(replicas, is_system):
    """``(deletes, kept)`` for the system snapshots in the chains of ``replicas`` (model Replicas: every
    member of the engine's RAID).

    ``deletes`` lists ``(name, index into replicas, snapshot lvol alias, why)``: each system snapshot is
    deleted on every replica whose chain holds it, which SPDK does by merging it into its one child (the head or
    the next snapshot): that child takes the clusters it does not own, so what every lvol reads stays the
    same and the replicas keep identical snapshot sets. ``kept`` maps a system snapshot that has another
    child than its chain successor on some replica (a clone made from it) to why it stays, on every replica.
    """
    names = []
    for replica in replicas:
        for name in replica.chain:
            if is_system(name) and name not in names:
                names.append(name)
    deletes, kept = [], {}
    for name in names:
        holders = [(index, replica, replica.snapshot(name)) for index, replica in enumerate(replicas)
                   if name in replica.chain]
        crowded = [(holder[1].name, ops.snapshot_children(holder[1], holder[2])) for holder in holders
                   if len(ops.snapshot_children(holder[1], holder[2])) != 1]
        if crowded:
            kept[name] = ("it has %s on replica %s, and SPDK merges a snapshot only into a single child"
                          % (", ".join(crowded[0][1]) or "no child", crowded[0][0]))
            continue
        for index, replica, snap in holders:
            why = ("merge system snapshot %s of replica %s into %s (the rebuild needs it no more; data unchanged)"
                   % (name, replica.name, ops.snapshot_children(replica, snap)[0]))
            deletes.append((name, index, snap.lvol.alias, why))
    return deletes, kept


def replaced_disk(state, name):
    """The disk of replica ``name`` on its node: of its head, else of its snapshots (head already deleted)."""
    disks = sorted({lv.lvstore for lv in state.lvols if lv.name == name and not lv.is_snapshot})
    if not disks:
        disks = sorted({lv.lvstore for lv in state.lvols
                        if (split_snapshot_lvol_name(lv.name) or (None,))[0] == name})
    if len(disks) > 1:
        raise ops.SpdkRefusal("replica %s has lvols on several disks (%s) of its node; remove it there with "
                              "spdk.storage.spdk_replica state=absent and disk" % (name, ", ".join(disks)))
    return disks[0] if disks else None


def without_raid(state, name):
    """``state`` once RAID ``name`` is gone: its members are no longer claimed by it."""
    raid = state.raid(name)
    if raid is None:
        return state
    refs = {m["name"] for m in raid.members if m["name"]} | {m["uuid"] for m in raid.members if m["uuid"]}
    bdevs = []
    for bdev in state.raw.get("bdevs") or []:
        if refs & ({bdev["name"], bdev.get("uuid")} | set(bdev.get("aliases") or [])):
            bdev = dict(bdev, claimed=False)
            bdev.pop("claim_type", None)
        bdevs.append(bdev)
    raids = [r for r in state.raw.get("raids") or [] if r.get("name") != name]
    return NodeState(dict(state.raw, bdevs=bdevs, raids=raids))


def plan_replaced_removal(state, name, disk, connected_hosts=(), engines_lookup=None):
    """The steps that remove replica ``name`` from its node (``state`` with RAIDs): what spdk_replica
    state=absent does, refusals included (a RAID or another host still uses it)."""
    request = ops.ReplicaRequest(name, disk=disk, state="absent")
    return ops.plan_absent(state, request, connected_hosts=connected_hosts, engines_lookup=engines_lookup)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end of a rebuild: the system snapshots in the chains of the RAID's members are deleted on every
member, which SPDK does by merging each into its one child, so what every lvol reads stays the same.
Only with the RAID online, rebuilding nothing, and every member one this run reaches; otherwise they
stay, with a warning, until a later run. The plan is spdk_rebuild_plan.plan_system_merge."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import plan_system_merge, raid_is_whole
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


def member_views(ctx, members):
    """``(nodes, replicas, problem)`` of ``members`` (the destination last): their nodes, their model
    Replicas, and why they cannot all be read (a node that cannot be reached, a head that is missing)."""
    nodes, replicas, problem = [], [], None
    try:
        for member in members[:-1]:
            nodes.append(ctx.node_for(member))
            replicas.append(ctx.replica_view(member))
    except SpdkConnectionError as err:
        problem = "the node of a replica cannot be reached: %s" % err
    nodes.append(ctx.dest)
    replicas.append(ctx.dest_replica())
    if problem is None and None in replicas:
        problem = "replica %s has no head" % members[replicas.index(None)].name
    return nodes, replicas, problem


def merge_system_snapshots(ctx):
    """Merge the system snapshots away on every member of the engine's RAID; ``ctx.merged`` names them."""
    members = ctx.rw_members() + [ctx.request.dest_member(ctx.dest_address)]
    problem = raid_is_whole(ctx.raid, [m.name for m in members])
    nodes, replicas, unread = member_views(ctx, members)
    problem = problem or unread
    system = sorted({n for r in replicas if r is not None for n in r.chain if ctx.is_system(n)})
    if problem is not None:
        if system:
            ctx.warnings.append("system snapshots %s are kept for now: %s; a later run of this rebuild merges "
                                "them once every replica is RW" % (", ".join(system), problem))
        return
    deletes, kept = plan_system_merge(replicas, ctx.is_system)
    for name, why in sorted(kept.items()):
        ctx.warnings.append("system snapshot %s is kept on every replica: %s. Delete the clone made from it, "
                            "then run this rebuild again to merge it" % (name, why))
    sent = 0
    try:
        for delete in deletes:
            ctx.send(nodes[delete[1]], Step("bdev_lvol_delete", {"name": delete[2]}, delete[3]))
            sent += 1
    except SpdkRpcError as err:
        ctx.warnings.append("merging the system snapshots stopped: %s; the replicas hold the same data, but "
                            "not yet the same snapshots: run this rebuild again to finish" % err)
    unfinished = {d[0] for d in deletes[sent:]}
    ctx.merged = [name for name in system if name not in kept and name not in unfinished]
    ctx.reload(*[nodes[d[1]] for d in deletes[:sent]])

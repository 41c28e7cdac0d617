# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CopyPhase: the copy step of a rebuild. It takes the system snapshot (offline), copies the source's
snapshot chain level by level into the destination, then makes and exports the new head.

Each step comes from a pure planner in spdk_rebuild_copy_plan.py, fed with the node states as last
read; this class sends the steps, reads again what changed, and waits for each shallow copy. In
check mode nothing changes, so every planner sees the state as it was read: the steps listed are
those a run would send from that state, with a placeholder for a level whose snapshot is only planned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_copy_plan as plan
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_join_plan import (
    offline_preconditions_problem,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    COPIED,
    COPY_BACKOFF,
    COPY_RETRIES,
    PLANNED,
    RebuildError,
    join_address,
    new_system_snapshot,
    transient_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    chain_lvols,
    chain_names,
    copied_levels,
    head_is_fresh,
    reusable_system_snapshot,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


class CopyPhase:
    """The copy step of one run, on a RebuildContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.request = ctx.request
        self.dest = ctx.request.destination
        self.transient_port = None

    def run(self):
        ctx = self.ctx
        self.require_methods()
        source = ctx.source_replica()
        if ctx.strategy == "offline":
            self.offline_preconditions(source)
            ctx.snapshot = self.system_snapshot(source)
            ctx.reload(*ctx.nodes())
            source = ctx.source_replica()
        chain = chain_lvols(source)
        if ctx.check_mode and ctx.strategy == "offline" and ctx.snapshot not in chain_names(source):
            chain = chain + [None]   # the system snapshot, taken for real only outside check mode
        self.copy_chain(chain, source)
        self.cleanup_transient()
        self.make_head(source)
        self.expose_head()
        ctx.state = PLANNED if ctx.check_mode else COPIED

    def require_methods(self):
        ctx = self.ctx
        nodes = {"source": ctx.source, "engine": ctx.engine}
        for role, method, what in plan.required_methods(ctx.source.supports, ctx.engine.supports):
            node = nodes[role]
            raise RebuildError("the %s (%s) has no RPC %s, needed for %s" % (
                node.label, node.client.version_label(), method, what))

    def offline_preconditions(self, source):
        ctx = self.ctx
        raid = ctx.raid
        if raid is None:
            if reusable_system_snapshot(source, ctx.dest_disk().cluster_size) is None:
                raise RebuildError("engine %s has no RAID on the engine node: create or adopt it first "
                                   "(spdk.storage.spdk_engine); only a rebuild interrupted after it deleted the "
                                   "RAID resumes without one" % self.request.engine)
            return    # resumed after the RAID was deleted: the join checks every member
        problem = offline_preconditions_problem(raid, self.request.engine, ctx.engine.state, self.request.source)
        if problem:
            raise RebuildError(problem)

    def system_snapshot(self, source):
        """Take (or find) the system snapshot on the source and every other RW member, no I/O in between."""
        ctx = self.ctx
        name = (ctx.system_snapshot_name or reusable_system_snapshot(source, ctx.dest_disk().cluster_size)
                or new_system_snapshot())
        members = ctx.rw_members() if ctx.raid is not None else [self.request.source]
        views = []
        for member in members:
            view = ctx.replica_view(member)
            if view is None:
                raise RebuildError("replica %s not found on the %s" % (member.name, ctx.node_for(member).label))
            views.append((member, view))
        for index, step in plan.plan_system_snapshot(name, views):
            ctx.send(ctx.node_for(views[index][0]), step)
            ctx.taken_system.add(name)
        return name

    # --- the chain --------------------------------------------------------------------------
    def copy_chain(self, chain, source):
        ctx = self.ctx
        real = [lvol for lvol in chain if lvol is not None]
        start = copied_levels(real, ctx.dest.state, self.dest)
        if start == len(chain):
            return
        if ctx.run(ctx.source, plan.plan_stale_controller(ctx.source.state, self.dest)):
            ctx.bdevs_gone(ctx.source, [transient_name(self.dest.replica) + "n1"])
        transient = self.transient_ready(real, start, source.size)
        self.expose_transient(transient)
        if ctx.run(ctx.source, plan.plan_attach_transient(ctx.source.state, self.dest, self.transient_port,
                                                          self.request.timeouts)):
            ctx.reload(ctx.source)
        for lvol in chain[start:]:
            if lvol is None:
                ctx.recorder.record(plan.placeholder_copy(ctx.snapshot), ctx.dest)
                continue
            transient = self.grow_transient(transient, lvol)
            self.copy_level(lvol)

    def transient_lvol(self):
        return self.ctx.dest.lvol(self.dest.disk, transient_name(self.dest.replica))

    def transient_ready(self, chain, level, source_size):
        """The transient lvol, a clone of the copy of ``level - 1`` (a thin lvol for the root)."""
        ctx = self.ctx
        if ctx.run(ctx.dest, plan.plan_transient(ctx.dest.state, self.dest, chain, level, source_size)):
            ctx.reload(ctx.dest)
        return self.transient_lvol()

    def grow_transient(self, transient, lvol):
        ctx = self.ctx
        why = "grow %s to the size of %s" % (transient.alias if transient else None, lvol.alias)
        if ctx.run(ctx.dest, plan.plan_grow(transient, lvol.size, why)):
            ctx.reload(ctx.dest)
            return self.transient_lvol()
        return transient

    def expose_transient(self, transient):
        ctx = self.ctx
        spec = plan.transient_spec(self.dest, transient)
        subsystems = ctx.dest.state.subsystems
        steps = nvmf.plan_exposure_with_client(ctx.dest.client, spec, subsystems)
        self.transient_port = nvmf.choose_port(spec, subsystems.get(spec.nqn), subsystems)
        if ctx.run(ctx.dest, plan.with_why(steps, " (transient, for the copy)")):
            ctx.reload(ctx.dest)

    def copy_level(self, lvol):
        """Shallow-copy source snapshot ``lvol`` into the transient lvol, then snapshot it on the destination.

        Its progress and outcome are the source target's answers: check mode lists the copy and the
        snapshot after it, and waits for nothing."""
        ctx = self.ctx
        step = plan.copy_step(lvol, self.dest)
        if ctx.check_mode:
            ctx.send(ctx.source, step)
        else:
            self.copy_until_complete(step, lvol)
            ctx.dest.load()
            plan.check_copied(self.transient_lvol(), lvol)
        ctx.send(ctx.dest, plan.snapshot_copy_step(self.dest, plan.level_name(lvol)))
        ctx.reload(ctx.dest)

    def copy_until_complete(self, step, lvol):
        name = plan.level_name(lvol)
        for attempt in range(COPY_RETRIES + 1):
            started = self.ctx.send(self.ctx.source, step)
            if self.wait_copy(started["operation_id"], name, lvol):
                return
            if attempt == COPY_RETRIES:
                raise RebuildError("the copy of snapshot %s was lost %d times (the source target forgot the "
                                   "operation, -19): is the source node restarting?" % (name, attempt + 1))

    def wait_copy(self, operation_id, name, lvol):
        """Poll until the copy completes (True), or the target forgot it (False); raise on error or timeout."""
        ctx = self.ctx
        waiter = ctx.waiter(backoff=COPY_BACKOFF)
        start = ctx.clock()
        last = {}

        def poll():
            try:
                status = ctx.source.client.call("bdev_lvol_check_shallow_copy", {"operation_id": operation_id})
            except SpdkRpcError as err:
                if err.is_no_device():
                    ctx.warnings.append("the source target forgot copy %d of snapshot %s (-19): copied again"
                                        % (operation_id, name))
                    return plan.FORGOTTEN
                raise
            last.update(status)
            ctx.sample({"phase": "copy", "snapshot": name, "state": status.get("state"),
                        "copied_clusters": status.get("copied_clusters"),
                        "total_clusters": status.get("total_clusters"), "seconds": round(ctx.clock() - start, 3)})
            return plan.copy_progress(status, lvol)

        def describe():
            return ("the copy of snapshot %s is at %s of %s clusters after %ss (wait_timeout); run again to resume "
                    "(finished snapshots are kept, this one is copied again)"
                    % (name, last.get("copied_clusters"), last.get("total_clusters"), ctx.wait_timeout))

        if waiter.until(poll, describe, error=RebuildError) == plan.FORGOTTEN:
            return False
        ctx.copy_seconds += ctx.clock() - start
        ctx.copied_clusters += last.get("copied_clusters") or 0
        return True

    def cleanup_transient(self):
        """Detach the source's controller, delete the transient export and lvol (leftovers of any run)."""
        ctx = self.ctx
        on_source, on_dest = plan.plan_transient_cleanup(ctx.source.state, ctx.dest.state, self.dest)
        if ctx.run(ctx.source, on_source):
            ctx.bdevs_gone(ctx.source, [transient_name(self.dest.replica) + "n1"])
        if ctx.run(ctx.dest, on_dest):
            ctx.reload(ctx.dest)

    # --- the new head ---------------------------------------------------------------------------
    def make_head(self, source):
        """``<dest>`` = a clone of the copy of the source head's parent (a thin lvol without snapshots)."""
        ctx = self.ctx
        parent = plan.head_parent(self.dest, ctx.snapshot if ctx.strategy == "offline" else source.parent)
        head = ctx.dest.lvol(self.dest.disk, self.dest.replica)
        if head is not None and head.parent != parent:
            self.replace_stale_head(head, parent)
            head = None
        if head is None:
            ctx.run(ctx.dest, plan.plan_head(self.dest, parent, source.size))
            ctx.reload(ctx.dest)
            head = ctx.dest.lvol(self.dest.disk, self.dest.replica)
        if ctx.run(ctx.dest, plan.plan_grow(head, source.size, "grow the head to the source's size")):
            ctx.reload(ctx.dest)

    def replace_stale_head(self, head, parent):
        """A head cloned from an older copy (the source got a snapshot since) is made again, if unused."""
        ctx = self.ctx
        problem = plan.stale_head_problem(head, parent, ctx.dest_mode(),
                                          head_is_fresh(head, ctx.dest_disk().cluster_size), self.request.engine)
        if problem:
            raise RebuildError(problem)
        detach_dest_controller(ctx)
        ctx.run(ctx.dest, plan.plan_stale_head_removal(ctx.dest.state, self.dest, head, parent))

    def expose_head(self):
        """Export the head to the engine node (as spdk_replica would: NQN, allowed host, port)."""
        ctx = self.ctx
        if self.dest.is_local:
            return
        spec = plan.head_spec(self.dest, ctx.dest.lvol(self.dest.disk, self.dest.replica), self.request.host_nqn)
        subsystems = ctx.dest.state.subsystems
        steps = nvmf.plan_exposure_with_client(ctx.dest.client, spec, subsystems)
        ctx.dest_address = join_address(self.dest.listen_address,
                                        nvmf.choose_port(spec, subsystems.get(spec.nqn), subsystems))
        if ctx.run(ctx.dest, plan.with_why(steps, " (the new replica, for the engine)")):
            ctx.reload(ctx.dest)


def detach_dest_controller(ctx):
    """The engine node's controller of the destination replica (a remote one), detached."""
    name = ctx.request.destination.replica
    if ctx.request.destination.is_local or ctx.engine.controller(name) is None:
        return
    ctx.send(ctx.engine, Step("bdev_nvme_detach_controller", {"name": name},
                              "detach the engine node's controller of %s" % name, tolerate=plan.is_gone))
    ctx.bdevs_gone(ctx.engine, [name + "n1"])

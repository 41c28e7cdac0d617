# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RebuildRun: one run of spdk_replica_rebuild on the engine node, from the first reads to the result.

It reads the engine, source and destination nodes once, decides the strategy, and runs the steps the
request asks for: the copy (CopyPhase), the join (JoinPhase, never in check mode: it depends on what
the copy made), then, once the new replica is RW, the removal of the replaced replica
(ReplacedRemoval) and the merge of the system snapshots. ``view()`` is the module's ``rebuild``
result.

A rebuild gives an engine a new replica on another node (docs/REBUILD.md explains the strategies).
The run lives on the engine node, like spdk_engine; the source replica's node and the destination
node are reached through their own ``rpc_socket``. One file per job:

* spdk_rebuild_names.py: transient names, system snapshot names, states, RebuildError (pure);
* spdk_rebuild_request.py: RebuildRequest and Destination, the validated options (ReplicaRef);
* spdk_rebuild_plan.py: pure decisions on what was read: the chain and how much of it is copied,
  strategy, identity of replicas, RAID membership, the system snapshot merge, the replaced
  replica's removal;
* spdk_rebuild_copy_plan.py and spdk_rebuild_join_plan.py: the pure planners of the copy and the
  join phase, Steps from node states;
* spdk_rebuild_context.py: RebuildContext, the nodes (spdk_node.Node), the StepRecorder, the waits
  (spdk_wait.Waiter) and the run's record that the phases share;
* spdk_rebuild_copy.py (CopyPhase), spdk_rebuild_join.py (JoinPhase), spdk_rebuild_replaced.py
  (ReplacedRemoval) and spdk_rebuild_merge.py: the executors, which send the planned steps;
* this file: RebuildRun, one run from the first reads to the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_context import RebuildContext
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy import CopyPhase
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_join import JoinPhase
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_merge import merge_system_snapshots
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    DONE,
    KEPT,
    PENDING,
    PLANNED,
    RebuildError,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    chain_lvols,
    chain_names,
    choose_strategy,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_replaced import ReplacedRemoval
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import StepRecorder
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import RunLock

CHECK_MODE_STOPS = "check mode stops before joining: the join depends on what the copy creates"


class RebuildRun:
    """One run of spdk_replica_rebuild. ``clients``: {"engine", "source", "destination"} (see RebuildContext);
    ``actions`` lists every mutating call sent (in check mode, planned)."""

    def __init__(self, request, clients, check_mode=False, wait=True, wait_timeout=3600.0, wait_sleep=1.0,
                 system_snapshot=None, known_system_snapshots=(), sleep=time.sleep, clock=time.monotonic,
                 lock=None, lock_timeout=60.0, journal=None):
        self.request = request
        self.recorder = StepRecorder(check_mode=check_mode)
        self.ctx = RebuildContext(request, clients, self.recorder, wait=wait, wait_timeout=wait_timeout,
                                  wait_sleep=wait_sleep, system_snapshot=system_snapshot,
                                  known_system_snapshots=known_system_snapshots, sleep=sleep, clock=clock)
        self.ctx.lock = RunLock(lock, lock_timeout, self.ctx.warnings)   # lock(operation) -> the engine's VolumeLock
        self.journal = journal      # a RebuildJournal: the engine node's record entry of this rebuild, or None
        self.before = None

    @property
    def actions(self):
        return self.recorder.actions

    @property
    def warnings(self):
        return self.ctx.warnings

    def run(self, member_clients):
        """Plan, then the copy and join steps the request asks for; returns the result view.

        The volume's lock is taken before the first mutating step and kept alive through the waits; when
        another run held it, the nodes are read and the rebuild planned again, and it is released at the end.
        Right after the lock, the journal marks the rebuild running; it marks it done after the join.
        """
        self.ctx.add_member_nodes(member_clients)
        self.recorder.before_first = self.begin
        return self.ctx.lock.run(self.plan_and_apply, self.engine_subsystems)

    def begin(self):
        self.ctx.lock.take("rebuild %s" % self.request.destination.replica)
        if self.journal is not None:
            self.journal.begin()

    def engine_subsystems(self):
        state = self.ctx.engine.state
        return None if state is None else state.raw.get("subsystems") or []

    def plan_and_apply(self):
        ctx, request = self.ctx, self.request
        ctx.load_all()
        ctx.check_dest_disk()
        self.before = self.summary()
        ctx.strategy = choose_strategy(request.strategy, ctx.frontend_live())
        if ctx.is_done():
            ctx.state = DONE
            CopyPhase(ctx).cleanup_transient()
            self.after_join()
            return self.view()
        ctx.check_dest_space()
        if request.step == "plan":
            ctx.state = PLANNED
            return self.view()
        if request.step in ("copy", "all"):
            CopyPhase(ctx).run()
        if request.joining and not ctx.check_mode:
            JoinPhase(ctx).run()
            ctx.reload(ctx.dest)    # the RAID rebuild allocated the head: report what it owns now
            self.after_join()
        elif request.joining:
            ctx.warnings.append(CHECK_MODE_STOPS)
            if request.replace is not None:
                ReplacedRemoval(ctx).preview()
        return self.view()

    def after_join(self):
        """Once the new replica is RW in an online RAID (this run's join, or an earlier one): remove the
        replaced replica and merge the system snapshots away. Only the join and all steps do it; a re-run
        finishes what an interrupted one left."""
        if self.ctx.state != DONE or not self.request.joining:
            return
        if self.request.replace is not None:
            ReplacedRemoval(self.ctx).remove()
        merge_system_snapshots(self.ctx)
        if self.journal is not None:
            self.journal.finish()

    # --- result -------------------------------------------------------------------------
    def summary(self):
        """The compact before/after object of ``--diff``."""
        dest = self.ctx.dest_replica()
        return {"destination": self.request.destination.replica, "present": dest is not None,
                "mode": self.ctx.dest_mode(), "chain": chain_names(dest)}

    def view(self):
        ctx, request = self.ctx, self.request
        source = self._safe(ctx.source_replica)
        dest = ctx.dest_replica()
        dest_disk = ctx.dest_disk()
        return {
            "engine": request.engine,
            "strategy": ctx.strategy,
            "state": ctx.state,
            "source": request.source.name,
            "destination": request.destination.replica,
            "system_snapshot": ctx.snapshot,
            "source_chain": chain_names(source),
            "destination_chain": chain_names(dest),
            "source_snapshots": sorted(s.name for s in source.snapshots) if source else [],
            "destination_snapshots": sorted(s.name for s in dest.snapshots) if dest else [],
            "allocated_clusters": {
                "source": [lv.allocated_clusters for lv in chain_lvols(source)],
                "destination": [lv.allocated_clusters for lv in chain_lvols(dest)],
                "destination_head": dest.head.allocated_clusters if dest else None,
                "source_head": source.head.allocated_clusters if source else None,
            },
            "cluster_size": dest_disk.cluster_size if dest_disk else None,
            "mode": ctx.dest_mode(),
            "replica": self._engine_replica(),
            "snapshot_sets_match": chain_names(source) == chain_names(dest),
            "copy": {"clusters": ctx.copied_clusters, "seconds": round(ctx.copy_seconds, 3)},
            "rebuild_seconds": None if ctx.rebuild_seconds is None else round(ctx.rebuild_seconds, 3),
            "progress": ctx.progress,
            "merged_system_snapshots": list(ctx.merged),
            "removed_replica": self._removed_view(),
        }

    def _removed_view(self):
        if self.ctx.removed_replica is not None or self.request.replace is None:
            return self.ctx.removed_replica
        return ReplacedRemoval(self.ctx).report(KEPT if self.request.keep_replaced else PENDING)

    def predicted_chain(self):
        """Check mode: the new replica's chain once the run is through (the source's, plus the system
        snapshot about to be taken, without the system snapshots the end of the run merges away)."""
        ctx = self.ctx
        chain = chain_names(self._safe(ctx.source_replica))
        if ctx.snapshot and ctx.snapshot not in chain:
            chain.append(ctx.snapshot)
        if ctx.state == DONE:
            return [name for name in chain if name not in ctx.merged]
        if not self.request.joining:
            return chain
        return [name for name in chain if not ctx.is_system(name)]

    def _engine_replica(self):
        """The new replica as spdk_engine's replicas[] entry."""
        dest = self.request.destination
        if dest.is_local:
            return {"name": dest.replica, "disk": dest.disk}
        entry = {"name": dest.replica, "address": self.ctx.dest_address or JoinPhase(self.ctx).current_dest_address()}
        if dest.rpc_socket:
            entry["rpc_socket"] = dest.rpc_socket
        return entry

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except RebuildError:
            return None

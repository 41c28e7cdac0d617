# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine-level snapshots: the same snapshot on every replica of an engine, delete, revert, list.

An engine (spdk_engine_run) is a RAID1 bdev on the engine node over replicas that live on
this node (``disk``) or on other nodes (``address``, reached for management through their own
``rpc_socket``). An engine snapshot ``<name>`` is the lvol ``<replica>-snap-<name>`` on every
replica, so all replicas keep identical snapshot sets (docs/ENGINE.md "Engine snapshots").

``EngineSnapshotRun`` reads every node once, plans from those reads and sends the steps through
one StepRecorder, so a result (or a failure) lists every mutating RPC with its node. The parts:

* spdk_engine_snapshot_request: the options (``EngineSnapshotRequest``), the errors, what the node
  record holds about the engine;
* spdk_engine_snapshot_views: the nodes (``EngineNodes``) and the replicas as they show them;
* spdk_engine_snapshot_create: planning the creation and the deletion of a snapshot set;
* spdk_engine_snapshot_pause: pausing host I/O around the snapshots (quiesce ``ana``);
* spdk_engine_snapshot_revert_plan and spdk_engine_snapshot_revert: the revert;
* spdk_engine_snapshot_record: the snapshot's entry in the node record.

What SPDK does that shapes the run: replicas are snapshotted one after the other, so under host I/O
the writes in flight land before one replica's snapshot and after another's (in a measurement, 2 of
10 unpaused pairs came out identical); with an nvmf frontend the run pauses host I/O around the
snapshots (spdk_engine_snapshot_pause). A snapshot of a RAID member carries the RAID superblock;
SPDK's examine of it fails harmlessly. A failed create rolls back the snapshots it made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot_create as create
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_pause import (
    Pause,
    PauseBroken,
    left_paused,
    quiesce_mode,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_record import SnapshotRecord
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    ERR,
    QUIESCE_MODES,
    EngineSnapshotRefusal,
    EngineSnapshotRequest,
    ReplicaFailed,
    replicas_from_record,
    timeouts_from_record,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_revert import RevertRun
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_views import (
    NODE_READS,
    REVERT_READS,
    EngineNodes,
    check_engine,
    frontend,
    refuse_while_rebuilding,
    set_view,
    snapshot_sets,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import StepRecorder
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import RunLock, resume_command

# The names callers (spdk_snapshot, the tests) use, importable from this one module.
__all__ = ["ERR", "QUIESCE_MODES", "EngineSnapshotRefusal", "EngineSnapshotRequest", "EngineSnapshotRun",
           "ReplicaFailed", "SnapshotRecord", "replicas_from_record", "set_view", "timeouts_from_record"]


class EngineSnapshotRun:
    """One engine-level spdk_snapshot run. ``connect(rpc_socket)`` gives the client of a remote node.

    ``actions`` lists every mutating step (sent, or planned in check mode) with its node;
    ``warnings`` what the user should know; ``record`` (optional) is the SnapshotRecord of the snapshot.
    """

    def __init__(self, request, engine_client, connect, check_mode=False, record=None,
                 clock=time.monotonic, sleep=time.sleep, wait_timeout=30.0, lock=None, lock_timeout=60.0):
        self.request = request
        self.record = record
        self.clock = clock
        self.sleep = sleep
        self.wait_timeout = wait_timeout
        self.check_mode = check_mode
        self.nodes = EngineNodes(request, engine_client, connect)
        self.recorder = StepRecorder(check_mode)
        self.warnings = []
        self.lock = RunLock(lock, lock_timeout, self.warnings)   # lock(operation) -> the engine's VolumeLock
        self.paused_seconds = None
        self.before = None         # {replica: snapshot names} as read at the start

    @property
    def actions(self):
        """Every mutating step sent (or planned in check mode), with its node."""
        return self.recorder.actions

    @property
    def views(self):
        return self.nodes.views

    @property
    def rpc_calls(self):
        return self.nodes.rpc_calls

    def rpc_calls_per_node(self):
        return self.nodes.rpc_calls_per_node()

    def run(self):
        """The run for the request's state (a list without a snapshot name); a failure carries the actions.

        The volume's lock is taken at the first change (``before_change``); when another run held it, the
        nodes are read and the change planned again, since that run may have changed what this one saw.
        """
        with self.recorder.reporting():
            if self.request.name is None:
                self.list_snapshots()
                return
            self.lock.run(getattr(self, self.request.state), self._engine_subsystems)

    def list_snapshots(self):
        """Read every replica. A revert that a run began and did not finish may have deleted a replica's head
        before cloning its successor: that replica is listed by its snapshots, and a warning says what
        finishes the revert (so snapshot_volume.yml, which lists first, can run it again)."""
        unfinished = self.record.unfinished_revert() if self.record is not None else None
        self.load(headless_snapshot=unfinished)
        if unfinished is None:
            return
        headless = [v.ref.name for v in self.views if v.replica is None]
        until_then = ""
        if len(headless) == 1:
            until_then = "; %s has no head until then" % headless[0]
        elif headless:
            until_then = "; %s have no head until then" % ", ".join(headless)
        self.warnings.append(
            "a revert of engine %s to snapshot %s began and did not finish (the node record marks it running)%s: "
            "run it again to finish it: %s" % (self.request.engine, unfinished, until_then,
                                               resume_command(self.request.engine, "revert " + unfinished)))

    def _engine_subsystems(self):
        state = self.nodes.engine.state
        return None if state is None else state.raw.get("subsystems") or []

    def before_change(self, what, whole_engine=True):
        """Called once a change is due, before its first step: the engine check (``whole_engine``: the
        RAID exists over exactly the replicas given), no rebuild in progress (in the RAID, or unfinished in
        the node record's rebuild journal), and the volume's lock."""
        engine_state = self.nodes.engine.with_part("raids")
        if whole_engine:
            check_engine(self.request, engine_state, self.views, what)
        refuse_while_rebuilding(self.request, engine_state, self.views, what)
        rebuild = self.record.rebuild_entry() if self.record is not None else None
        if rebuild is not None:
            rebuild.check_no_engine_snapshot(what.split()[0], self.request.name)
        self.lock.take("%s %s" % (what.split()[0], self.request.name))

    def load(self, engine_parts=NODE_READS, remote_parts=NODE_READS, headless_snapshot=None):
        self.nodes.load(engine_parts, remote_parts, headless_snapshot)
        self.before = snapshot_sets(self.views)[0]

    # ================================================================== present
    def present(self):
        request = self.request
        self.load()
        served = frontend(request, self.nodes.engine.state)
        mode, warnings = quiesce_mode(request, served)
        self.warnings.extend(warnings)
        plan = create.plan_create(request, self.views, self._recorded_uuids())
        if plan.changed:
            self.before_change("take")
            for view, step in plan.retake:
                self._replica_step(view, step, "delete of snapshot %s" % step.params["name"])
            made = []
            try:
                if mode == "ana":
                    pause = self._pause(lock=self.lock.lock)
                    try:
                        pause.run(served, lambda deadline: self._snapshot_all(plan, made, deadline))
                    finally:
                        self.paused_seconds = pause.seconds
                else:
                    self._snapshot_all(plan, made)
            except (ReplicaFailed, PauseBroken):
                self._rollback(made)
                raise
            self.nodes.reload(self.check_mode)
        elif left_paused(served):
            # The snapshot set is whole, but the run that took it died paused and its watchdog did not reach
            # the target: a re-run is the operator's way back, so it ends the pause (a pause above does too).
            # Only the lock is needed (no other run pauses meanwhile); resuming I/O is safe in any engine state.
            self.lock.take("resume %s" % request.name)
            self._pause().resume_left(served)
        self._record_snapshot()

    def _pause(self, lock=None):
        """The pause of the engine's frontend (``lock``: the run's VolumeLock, which its watchdog checks; ending
        a pause a dead run left starts no watchdog and needs none)."""
        return Pause(self.request, self.nodes.engine, self.recorder, self.clock, self.warnings, lock=lock)

    def _recorded_uuids(self):
        entry = self.record.entry() if self.record is not None else None
        return dict((entry or {}).get("replicas") or {})

    def _snapshot_all(self, plan, made, deadline=None):
        for view, step in plan.snapshots:
            if deadline is not None and self.clock() > deadline:
                view.fail("quiesce_timeout reached before this replica's snapshot")
                raise ReplicaFailed(view.ref.name, "quiesce_timeout (%ss) reached with the I/O paused"
                                    % self.request.quiesce_timeout, "snapshot")
            self._replica_step(view, step, "snapshot")
            made.append(view)

    def _replica_step(self, view, step, what):
        """Send ``step`` to the replica's node; a failure marks the replica ERR and names it."""
        try:
            return self.recorder.send(view.node, step)
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(view.ref.name, err, what)

    def _rollback(self, made):
        """Delete the snapshots this run made: a failed create leaves no partial set behind."""
        for view in made:
            step = create.rollback_step(self.request, view)
            try:
                self.recorder.send(view.node, step)
            except SpdkRpcError as err:
                self.warnings.append("could not roll back snapshot %s on %s: %s; the next run with state=present "
                                     "deletes it and takes the set again" % (step.params["name"], view.node.label,
                                                                             err))

    def _record_snapshot(self):
        if self.record is None or self.check_mode:
            return
        uuids = {}
        for view in self.views:
            snap = view.snapshot(self.request.name)
            if snap is not None:
                uuids[view.ref.name] = snap.lvol.uuid
        self.record.save_snapshot(uuids)

    # ================================================================== absent
    def absent(self):
        self.load()
        steps = create.plan_delete(self.request, self.views)
        if steps:
            self.before_change("delete")
        for view, step in steps:
            self._replica_step(view, step, "delete of snapshot %s" % step.params["name"])
        self.nodes.reload(self.check_mode, [pair[0] for pair in steps])
        if self.record is not None and not self.check_mode:
            self.record.remove_snapshot()

    # ================================================================== reverted
    def reverted(self):
        # A revert the record says was running may have deleted a head before cloning its successor: that
        # replica is found by its snapshot, and the revert goes on from where it stopped.
        marker = self.record.revert_marker() if self.record is not None else None
        running = bool(marker) and marker.get("state") == "running"
        self.load(REVERT_READS, NODE_READS + ("raids",), headless_snapshot=self.request.name if running else None)
        RevertRun(self).revert()

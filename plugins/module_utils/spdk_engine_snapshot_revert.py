# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running an engine revert: each phase planned (spdk_engine_snapshot_revert_plan) on the latest reads,
sent through the run's StepRecorder, and its progress kept in the node record.

The progress marker (``revert`` of the snapshot's record entry: state running|done, the new heads'
UUIDs, their allocated clusters once done) lets a re-run after a crash resume: a head already
re-cloned is kept, a RAID over exactly the re-cloned heads is adopted, and a finished revert whose
heads nobody replaced or wrote since is a no-op.

Check mode lists the same steps, but what only an answer tells cannot be known: the new heads'
UUIDs (``bdev_lvol_clone`` answers them), the bdev of a re-attached replica (the run waits for it),
and the completion of Write Zeroes. The steps after a head's replacement are planned on the reads
taken before it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot_revert_plan as plan
from ansible_collections.spdk.storage.plugins.module_utils import spdk_superblock as sb
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    EngineSnapshotRefusal,
    ReplicaFailed,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_views import frontend
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

TEMP_EXPORT_INFIX = "-revert-"
GONE_INTERVAL, APPEAR_INTERVAL = 0.2, 0.1


def bdev_uuid(client, name):
    """The UUID of bdev ``name`` on the node of ``client``, or None while it is not registered."""
    try:
        found = client.call("bdev_get_bdevs", {"name": name})
    except SpdkRpcError as err:
        if err.is_no_device():
            return None
        raise
    return found[0].get("uuid") if found else None


class RevertRun:
    """The revert of ``run`` (an EngineSnapshotRun: request, nodes, recorder, record, clock, sleep,
    wait_timeout) to its snapshot."""

    def __init__(self, run):
        self.run = run
        self.request = run.request
        self.nodes = run.nodes
        self.engine = run.nodes.engine
        self.recorder = run.recorder
        self.check_mode = run.check_mode
        self.replaced = {}         # {replica: UUID of the head this run deleted}
        self.detached = set()      # controllers this run detached

    @property
    def views(self):
        return self.nodes.views

    def send(self, node, step):
        return self.recorder.send(node, step)

    def revert(self):
        """Revert the engine; the nodes were read with REVERT_READS (engine node) and the RAIDs (others)."""
        request, record = self.request, self.run.record
        plan.check_revert(request, self.views, frontend(request, self.engine.state))
        marker = record.revert_marker() if record is not None else None
        if plan.revert_done(request, marker, self.engine.state, self.views):
            return
        # The engine's RAID may be gone already (an interrupted revert), so only the rebuild check applies.
        self.run.before_change("revert to", whole_engine=False)
        heads = dict(marker.get("heads") or {}) if marker and marker.get("state") == "running" else {}
        self.save("running", heads)
        if plan.raid_is_revert_result(request, heads, self.engine.state, self.views):
            self.finish(heads)
            return
        self.delete_raids()
        for view in self.views:
            if view.replica is None or heads.get(view.ref.name) != view.replica.head.uuid:
                heads[view.ref.name] = self.reclone(view)
                self.save("running", heads)
        for view in self.views:
            self.zero_lba0(view)
        self.send(self.engine, plan.raid_create_step(request, self.views))
        self.finish(heads)

    # --- progress ------------------------------------------------------------------------------
    def save(self, state, heads, allocated=None):
        if self.run.record is None or self.check_mode:
            return
        marker = {"state": state, "heads": dict(heads)}
        if allocated is not None:
            marker["allocated"] = dict(allocated)
        self.run.record.save_revert(marker)

    def finish(self, heads):
        allocated = {}
        if not self.check_mode:
            self.nodes.reload(False)
            allocated = {v.ref.name: v.replica.head.allocated_clusters for v in self.views}
        self.save("done", heads, allocated)

    # --- phases --------------------------------------------------------------------------------
    def delete_raids(self):
        """The engine's RAID, and any RAID a restarted replica node assembled around a head."""
        steps = plan.engine_raid_steps(self.request, self.engine.state)
        self.recorder.run(self.engine, steps)
        if steps:
            self.engine.reload(self.check_mode)
        for view in self.views:
            self.recorder.run(view.node, plan.stale_raid_steps(view))

    def reclone(self, view):
        """Replace the head by a clone of the snapshot; returns the new head's UUID (None in check mode)."""
        ref, node = view.ref, view.node
        head = view.replica.head if view.replica is not None else None     # None: deleted by a killed run
        try:
            if not ref.is_local:
                self.detach(ref.controller)
                if head is not None:
                    self.recorder.run(node, plan.unexport_steps(view, head))
            else:
                self.loopback(view).drop(functools.partial(self.recorder.call, self.engine), self.engine.state)
            new_uuid = self.recorder.run(node, plan.reclone_steps(self.request, view, head))[-1]
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(ref.name, err, "revert")
        node.reload(self.check_mode)
        self.replaced[ref.name] = head.uuid if head is not None else None
        return new_uuid

    def stale(self, view):
        """The reads still show the head this run deleted, or no head (check mode reads nothing again)."""
        return view.replica is None or self.replaced.get(view.ref.name) == view.replica.head.uuid

    def detach(self, controller):
        if controller in self.detached or self.engine.controller(controller) is None:
            return
        self.detached.add(controller)
        self.send(self.engine, plan.detach_step(controller))
        if not self.check_mode:
            name = controller + "n1"
            self.waiter(GONE_INTERVAL).until(
                lambda: True if bdev_uuid(self.engine.client, name) is None else None,
                lambda: "bdev %s is still registered %ss after its controller was detached"
                        % (name, self.run.wait_timeout),
                error=EngineSnapshotRefusal)
            self.engine.reload(False)

    def waiter(self, interval):
        return Waiter(self.run.wait_timeout, interval, clock=self.run.clock, sleep=self.run.sleep)

    # --- LBA 0 ---------------------------------------------------------------------------------
    def zero_lba0(self, view):
        """Write Zeroes to LBA 0 of the new head (the old RAID's superblock), through NVMe-oF."""
        try:
            if view.ref.is_local:
                self.zero_local(view)
            else:
                self.zero_remote(view)
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(view.ref.name, err, "zeroing LBA 0 of the new head")

    def zero_remote(self, view):
        ref = view.ref
        stale = self.stale(view)
        self.recorder.run(view.node, plan.export_steps(view, stale))
        if plan.needs_attach(self.engine.state, view, stale):
            self.detach(ref.controller)
            self.send(self.engine, plan.attach_step(self.request, ref))
            if not self.check_mode:
                self.wait_attached(ref.bdev, view.replica.head.uuid)
        sb.clear_lba0(self.recorder, self.engine, "LBA 0 of %s's new head" % ref.name, EngineSnapshotRefusal,
                      controller=ref.controller)

    def wait_attached(self, name, uuid):
        self.waiter(APPEAR_INTERVAL).until(
            lambda: True if bdev_uuid(self.engine.client, name) == uuid else None,
            lambda: "bdev %s of the re-attached replica did not appear with uuid %s within %ss"
                    % (name, uuid, self.run.wait_timeout),
            error=EngineSnapshotRefusal)

    def loopback(self, view):
        """The temporary export of a local head (NQN ``<engine nqn>-revert-<replica>``) and its controller."""
        request = self.request
        return sb.Loopback(nqn="%s%s%s" % (request.nqn, TEMP_EXPORT_INFIX, view.ref.name),
                           controller=view.ref.name + TEMP_EXPORT_INFIX.rstrip("-"),
                           listen_address=request.listen_address,
                           port_range=request.port_range, host_nqn=request.host_nqn)

    def zero_local(self, view):
        """Temporary loopback export of the local head + self-attached controller, removed afterwards."""
        sb.clear_lba0(self.recorder, self.engine, "LBA 0 of %s's new head" % view.ref.name, EngineSnapshotRefusal,
                      loopback=self.loopback(view), head=view.replica.head)

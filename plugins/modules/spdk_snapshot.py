#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_snapshot
short_description: Create, delete and revert snapshots of a replica or of a whole engine on SPDK targets
version_added: 0.1.0
description:
  - Takes a snapshot of replica O(replica), stored as the read-only lvol C(<replica>-snap-<name>)
    in the replica's disk. The replica's head becomes a thin clone of the new snapshot.
  - Deletes such a snapshot. SPDK merges a deleted snapshot into its only child, so the data of
    the child stays intact. A snapshot with more than one child (for example a child snapshot and
    a clone) cannot be deleted, and the module refuses it with an explanation.
  - Returns the replica's snapshot tree.
  - This is the replica-level snapshot that rebuild steps use.
  - With O(engine) instead of O(replica), the snapshot is taken on every replica of the engine
    (C(<replica>-snap-<name>) on each), so all replicas keep identical snapshot sets. Run it on the
    engine node; remote replicas are reached through their O(replicas[].rpc_socket).
  - With an nvmf frontend (and O(quiesce=ana), the default then) host I/O is paused around the
    snapshots by moving the namespace into ANA group 2, which is inaccessible on every listener
    (C(nvmf_subsystem_set_ns_ana_group) returns once the writes in flight finished). The namespace
    moves back in every case, also when a snapshot fails, and the pause is bounded by
    O(quiesce_timeout). Hosts must tolerate an ANA-inaccessible pause. SPDK hosts (bdev_nvme with
    C(bdev_retry_count) other than 0, the default 3 is fine) see a stall of about 1 s and no error;
    with C(bdev_retry_count=0) writes during the pause fail. The Linux kernel NVMe initiator was not
    verified.
  - A snapshot that fails on one replica is rolled back on the others and the replica is reported
    C(ERR). A set that exists on some replicas only (a run killed mid-way) cannot be completed
    consistently under I/O; it is deleted where nothing was built on it yet and taken again on all
    replicas under the pause.
  - O(state=reverted) reverts the engine to the snapshot. It needs the engine without frontend
    (M(spdk.storage.spdk_engine) with O(spdk.storage.spdk_engine#module:frontend=none)) and refuses
    otherwise. It deletes the RAID, replaces every head by a clone of its snapshot, clears LBA 0 of
    every new head (the old RAID superblock) with C(bdev_nvme_send_cmd) Write Zeroes through an
    NVMe-oF controller, and creates the RAID again. Each step checks the state first and the progress is
    kept in the node record, so a re-run after a crash converges. A remote replica is attached again with
    the controller loss policy M(spdk.storage.spdk_engine) recorded for the engine (its
    O(spdk.storage.spdk_engine#module:ctrlr_loss_timeout_sec) and related options; the defaults when the
    record has none).
  - Engine-level create, delete and revert are refused, before any change, while the engine's RAID rebuilds one
    of its replicas (mode C(WO), seen in the C(process) of C(bdev_raid_get_bdevs)). RAID1 is still filling that
    replica's head, so its snapshot would not be identical to the other replicas' ones. Checking costs one more
    read on the engine node, only when a change is due.
  - Without O(name), an engine run only lists the engine's snapshot sets per replica and whether they match.
    When the node record marks a revert unfinished (a run died in it), the listing warns and names the run
    that finishes it; a replica whose head that revert already deleted is listed by its snapshots.
  - One replica-level run that changes nothing sends three read RPCs, in one batch; an engine-level
    one sends three per node (the engine node and each remote replica's node).
author:
  - spdk.storage contributors (@spdk-storage)
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
  - spdk.storage.spdk.replicas
  - spdk.storage.spdk.lock
attributes:
  check_mode:
    support: partial
    details:
      - A replica-level run, and an engine-level create or delete, are planned in full from reads (the pause's
        listener check included) and list every step in RV(actions).
      - An engine revert lists its steps too, but later steps depend on what earlier ones answer, which check
        mode cannot know. It plans them on the reads taken before the change, as if every head were replaced.
        The new heads' UUIDs (answered by C(bdev_lvol_clone)) are unknown, the run does not wait for a
        detached or re-attached replica's bdev, and the completion status of Write Zeroes is not checked.
options:
  name:
    description:
      - Name of the snapshot, unique per replica.
      - Same character rules as other names. C(<replica>-snap-<name>) must fit SPDK's 63-character
        lvol name limit.
      - Required with O(replica). With O(engine) and no name, the run lists the engine's snapshots.
    type: str
  replica:
    description:
      - Name of the replica to snapshot. Exactly one of O(replica) and O(engine) is required.
    type: str
  disk:
    description:
      - Disk (lvstore) of the replica. Only needed when replicas with this name exist on several disks.
    type: str
  engine:
    description:
      - Name of the engine whose replicas all get (or lose, or are reverted to) the snapshot.
    type: str
  replicas:
    description:
      - The engine's replicas, in RAID slot order (the same list as M(spdk.storage.spdk_engine) takes).
        O(replicas[].disk) is required for a replica on this node, O(replicas[].rpc_socket) for a replica on
        another node, and with O(state=reverted) its O(replicas[].address) too.
      - When omitted, the replicas spdk_engine recorded for O(engine) in the node record are used.
  state:
    description:
      - V(present) takes the snapshot unless it exists. V(absent) deletes it if it exists.
      - V(reverted) (only with O(engine)) reverts the engine to the snapshot.
    type: str
    choices: [present, absent, reverted]
    default: present
  quiesce:
    description:
      - How an engine snapshot pauses host I/O. V(ana) moves the frontend's namespace into the
        inaccessible ANA group for the duration of the snapshots. V(none) does not pause (the
        snapshots are then only consistent per replica, not with each other).
      - Defaults to V(ana) when the engine has an nvmf frontend, else V(none).
    type: str
    choices: [ana, none]
  quiesce_timeout:
    description:
      - Longest pause, in seconds. The namespace move waits for in-flight writes at most this long, and
        no replica is snapshotted once it has passed (the run then fails, rolls back, and resumes I/O).
    type: float
    default: 10
  host_nqn:
    description:
      - The NQN this node presents to remote replicas when revert attaches them again (and to its own
        temporary export). Defaults to the one spdk_engine recorded, else C(nqn.2026-01.io.spdk-storage:host:<node_name>).
    type: str
  node_name:
    description: Name of this (engine) node, for the node record file and the default O(host_nqn).
      Defaults to the short host name.
    type: str
  record_dir:
    description:
      - Directory of the node record, where engine snapshots (per-replica UUIDs, creation time) and revert
        progress are kept. An empty string disables it (a revert then cannot tell a finished revert from a
        new one, so each run reverts again).
      - On the engine, every run (a listing too) is refused before any RPC while the record holds the volume's
        tombstone (M(spdk.storage.spdk_tombstone)). Its deletion began, and C(delete_volume.yml) run again finishes
        it.
    type: path
    default: /var/lib/spdk-storage
  listen_address:
    description: Address of this node for the temporary NVMe-oF export revert uses to clear LBA 0 of a local head.
    type: str
    default: 127.0.0.1
  port_range:
    description: Ports from which that temporary export takes a free one, as V(LOW-HIGH).
    type: str
    default: "4420-4499"
notes:
  - Engine-level operations use the engine's replica list; a replica whose node cannot be reached refuses the
    run before any change (an engine snapshot must exist on all replicas or none).
  - Engine-level operations are refused while the node record's rebuild journal marks a rebuild of the engine
    unfinished (M(spdk.storage.spdk_replica_rebuild)); the message names the run that finishes it.
  - Revert needs, for a remote replica, its export on its node (re-expose it with M(spdk.storage.spdk_replica)
    after a node restart) and its O(replicas[].address).
seealso:
  - module: spdk.storage.spdk_replica
  - module: spdk.storage.spdk_engine
  - module: spdk.storage.spdk_info
"""

EXAMPLES = r"""
- name: Snapshot replica vol1-r1 before an upgrade
  spdk.storage.spdk_snapshot:
    replica: vol1-r1
    name: before-upgrade

- name: Delete that snapshot (merged into its only child)
  spdk.storage.spdk_snapshot:
    replica: vol1-r1
    name: before-upgrade
    state: absent

- name: Snapshot every replica of engine vol1, pausing host I/O for the moment it takes
  spdk.storage.spdk_snapshot:
    engine: vol1
    name: daily-1
    node_name: node1
    replicas:
      - name: vol1-r1
        disk: disk1
      - name: vol1-r2
        address: 192.0.2.12:4421
        rpc_socket: 192.0.2.12:5260

- name: Revert engine vol1 to daily-1 (its frontend was removed before)
  spdk.storage.spdk_snapshot:
    engine: vol1
    name: daily-1
    state: reverted
    node_name: node1
"""

RETURN = r"""
snapshot:
  description: The snapshot after the run, or null when it does not exist.
  returned: when replica is given
  type: dict
  contains:
    name:
      description: Snapshot name.
      type: str
      sample: before-upgrade
    lvol_name:
      description: Name of the snapshot lvol.
      type: str
      sample: vol1-r1-snap-before-upgrade
    uuid:
      description: UUID of the snapshot lvol (null for a snapshot only planned in check mode).
      type: str
    size:
      description: Size of the snapshot in bytes.
      type: int
    parent:
      description: Name of the parent snapshot, or null.
      type: str
    children:
      description:
        - Names of the snapshots of this replica made from this one (as M(spdk.storage.spdk_info) shows them).
          The head is never listed here; see RV(snapshot.head_child).
      type: list
      elements: str
    head_child:
      description: Whether the replica's head is a clone of this snapshot (the newest snapshot of the head's chain).
      type: bool
    other_children:
      description: Lvol names of clones of this snapshot outside the replica (they keep it from being deleted).
      type: list
      elements: str
    allocated_clusters:
      description: Clusters the snapshot itself owns.
      type: int
    allocated_bytes:
      description: Bytes the snapshot itself owns.
      type: int
snapshots:
  description:
    - The replica's snapshot tree after the run (or as it would be in check mode), parents first. Each entry has
      the fields of RV(snapshot), the same model M(spdk.storage.spdk_info) returns.
  returned: when replica is given
  type: list
  elements: dict
  sample:
    - {name: daily-1, lvol_name: vol1-r1-snap-daily-1, uuid: 8a10d34b-56d5-4481-878b-4daa88761508,
       size: 268435456, parent: null, children: [daily-2], head_child: false, other_children: [],
       allocated_bytes: 4194304, allocated_clusters: 4}
    - {name: daily-2, lvol_name: vol1-r1-snap-daily-2, uuid: 0f6f2d0a-5c3e-4a52-9d4e-3b8d0c1c6a11,
       size: 268435456, parent: daily-1, children: [], head_child: true, other_children: [],
       allocated_bytes: 2097152, allocated_clusters: 2}
replica:
  description: Name of the replica.
  returned: when replica is given
  type: str
  sample: vol1-r1
disk:
  description: Disk of the replica.
  returned: when replica is given
  type: str
  sample: disk1
actions:
  description: The RPCs the run sent (or would send in check mode), each with the reason (and, for an
    engine, the node it went to).
  returned: always
  type: list
  elements: dict
engine:
  description: Engine-level runs only. The engine's snapshot sets after the run.
  returned: when engine is given
  type: dict
  contains:
    engine:
      description: Engine name.
      type: str
    snapshot_sets:
      description: Per replica, the names of its snapshots (null for a replica that could not be read).
      type: dict
      sample: {"vol1-r1": ["daily-1"], "vol1-r2": ["daily-1"]}
    consistent:
      description: True when every replica holds the same snapshot names.
      type: bool
    replicas:
      description: Per replica, its node, C(mode) (V(OK) or V(ERR) with C(error)), snapshots, the head's
        parent and the snapshot (C(snapshot), with the fields of RV(snapshot) but C(allocated_bytes)).
      type: list
      elements: dict
paused_seconds:
  description: How long host I/O was paused (engine snapshot with quiesce V(ana)), or null.
  returned: when engine is given
  type: float
rpc_calls_per_node:
  description: RPCs sent to each node during the run (engine-level runs).
  returned: when engine is given
  type: dict
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot as es
from ansible_collections.spdk.storage.plugins.module_utils import spdk_model as sm
from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import (
    default_node_name,
    replicas_option,
    run_module,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import ClientNode, StepRecorder
from ansible_collections.spdk.storage.plugins.module_utils.spdk_tombstone import refuse_if_deleting
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import (
    VolumeLock,
    check_lock_timeout,
    lock_argument_spec,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str"),
    replica=dict(type="str"),
    disk=dict(type="str"),
    engine=dict(type="str"),
    replicas=replicas_option(),
    state=dict(type="str", choices=["present", "absent", "reverted"], default="present"),
    quiesce=dict(type="str", choices=list(es.QUIESCE_MODES)),
    quiesce_timeout=dict(type="float", default=10.0),
    host_nqn=dict(type="str"),
    node_name=dict(type="str"),
    record_dir=dict(type="path", default=rec.DEFAULT_RECORD_DIR),
    listen_address=dict(type="str", default="127.0.0.1"),
    port_range=dict(type="str", default=nvmf.DEFAULT_PORT_RANGE),
    **lock_argument_spec()
)


class ReplicaSnapshot:
    """Snapshot of one replica: planned by spdk_replica_ops from one batch of reads, then sent."""

    def __init__(self, module):
        params = module.params
        if params["name"] is None:
            raise SpdkInputError("name is required with replica")
        if params["state"] == "reverted":
            raise SpdkInputError("state=reverted applies to an engine: give engine instead of replica")
        self.module = module
        self.request = ops.SnapshotRequest(name=params["name"], replica=params["replica"],
                                           disk=params["disk"], state=params["state"])

    def plan(self, client):
        """ops' plan (steps and refusals), with before/after as the model's snapshot entries."""
        state = ops.load_state(client)
        plan = ops.plan_snapshot(state, self.request)
        replica, cluster_size = ops.find_replica(state, self.request.replica, self.request.disk)
        plan.before = self._view(replica, sm.snapshot_entries(replica, cluster_size))
        entries = plan.before["snapshots"]
        if plan.changed and self.request.state == "present":
            entries = sm.entries_after_snapshot(entries, replica, self.request.name, self.request.lvol_name,
                                                cluster_size)
        elif plan.changed:
            entries = sm.entries_after_delete(entries, self.request.name)
        plan.after = self._view(replica, entries)
        return plan

    @staticmethod
    def _view(replica, entries):
        return {"replica": replica.name, "disk": replica.disk, "snapshots": entries}

    def run(self):
        """Plan, send the steps, and the module's result."""
        client = self.module.client
        plan = self.plan(client)
        recorder = StepRecorder(self.module.check_mode)
        with recorder.reporting():
            recorder.run(ClientNode(client), plan.steps)
        return dict(self.result(client, plan), changed=plan.changed, diff=plan.diff(), actions=recorder.actions)

    def result(self, client, plan):
        """The tree after the run: predicted in check mode, read again after a change."""
        view = plan.after
        if plan.changed and not self.module.check_mode:
            replica, cluster_size = ops.find_replica(ops.load_state(client), self.request.replica,
                                                     self.request.disk)
            view = self._view(replica, sm.snapshot_entries(replica, cluster_size))
        mine = [s for s in view["snapshots"] if s["name"] == self.request.name]
        return dict(view, snapshot=mine[0] if mine else None)


class EngineSnapshot:
    """The same snapshot on every replica of an engine (spdk_engine_snapshot)."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.node_name = default_node_name(params["node_name"])
        refuse_if_deleting(params["record_dir"], self.node_name, params["engine"], "spdk_snapshot on engine %s" % params["engine"])
        self.record = None
        recorded = {}
        if params["record_dir"]:
            path = rec.record_path(params["record_dir"], self.node_name)
            self.record = es.SnapshotRecord(path, self.node_name, params["engine"], params["name"])
            try:
                recorded = self.record.engine_entry() or {}
                if params["name"] is not None:
                    self.record.load()
            except rec.RecordError as exc:
                module.warn("%s; engine snapshots are managed without the node record" % exc)
                self.record = None
        replicas = params["replicas"] or es.replicas_from_record(recorded)
        self.request = es.EngineSnapshotRequest(
            engine=params["engine"], name=params["name"], state=params["state"], replicas=replicas,
            quiesce=params["quiesce"], quiesce_timeout=params["quiesce_timeout"],
            host_nqn=params["host_nqn"] or recorded.get("host_nqn"), node_name=self.node_name,
            listen_address=params["listen_address"], port_range=params["port_range"],
            timeouts=es.timeouts_from_record(recorded))
        self.lock_timeout = check_lock_timeout(params["lock_timeout"])

    def lock(self, operation):
        """The lock of this engine on the engine node (taken by the run once a change is due)."""
        return VolumeLock(self.module.client, self.request.engine, operation)

    def run(self):
        """The engine run and the module's result; a failure raises its SpdkError carrying what the run did."""
        module, request = self.module, self.request
        engine = es.EngineSnapshotRun(request, module.client, module.connect, check_mode=module.check_mode,
                                      record=self.record, lock=self.lock, lock_timeout=self.lock_timeout)
        try:
            engine.run()
        except SpdkError as err:
            err.result.update(self.partial(engine))
            raise
        finally:
            for warning in engine.warnings:
                module.warn(warning)
            engine.nodes.close()
        view = es.set_view(request, engine.views)
        written = bool(self.record and self.record.written)
        return dict(changed=engine.recorder.changed or written, diff={"before": engine.before, "after": view["snapshot_sets"]},
                    engine=view, actions=engine.actions, paused_seconds=engine.paused_seconds,
                    rpc_calls=engine.rpc_calls, rpc_calls_per_node=engine.rpc_calls_per_node())

    def partial(self, engine):
        """What a failed run returns besides the error: the replicas as read (when every node was), the
        actions sent, the RPC counts and the replicas that failed."""
        views = es.set_view(self.request, engine.views) if all(v.node.state for v in engine.views) else None
        return dict(engine=views, actions=engine.actions, rpc_calls=engine.rpc_calls,
                    rpc_calls_per_node=engine.rpc_calls_per_node(),
                    failed_replicas=[v.ref.name for v in engine.views if v.mode == es.ERR])


def run(module):
    """The replica-level or engine-level run the options ask for, and its result."""
    if module.params["engine"] is not None:
        return EngineSnapshot(module).run()
    return ReplicaSnapshot(module).run()


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, mutually_exclusive=[("replica", "engine")],
               required_one_of=[("replica", "engine")], supports_check_mode=True)


if __name__ == "__main__":
    main()

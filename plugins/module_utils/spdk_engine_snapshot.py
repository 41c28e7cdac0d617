# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine-level snapshots: the same snapshot on every replica of an engine, delete, revert, list.

An engine (spdk_engine_model) is a RAID1 bdev on the engine node over replicas that live on
this node (``disk``) or on other nodes (``address``, reached for management through their own
``rpc_socket``). An engine snapshot ``<name>`` is the lvol ``<replica>-snap-<name>`` on every
replica, so all replicas keep identical snapshot sets (docs/ENGINE.md "Engine snapshots").

What real SPDK v26.05 answered (recordings in tests/unit/fixtures/transcripts/ and
tests/emulator/fixtures/) and how it shapes this file:

* replicas are snapshotted one after the other, so under host I/O the writes in flight land
  before one replica's snapshot and after another's (more/ana run1/run13: 2 of 10 pairs
  identical). With an nvmf frontend the namespace is moved into the spare ANA group 2, which is
  ``inaccessible`` on every listener: ``nvmf_subsystem_set_ns_ana_group`` pauses the namespace and
  returns only once in-flight I/O finished (run14-17: 19 of 19 identical, 0 writes in flight).
  It is moved back in a ``finally``, also when a snapshot fails. SPDK hosts (bdev_nvme with
  ``bdev_retry_count`` != 0) see a ~1 s stall and no error; with ``bdev_retry_count`` 0 every
  write during the pause fails; the Linux kernel initiator was not tested;
* a snapshot of a RAID member carries the RAID superblock; SPDK's examine of it fails harmlessly
  (more/ana "Side observations");
* deleting a snapshot with one child merges it into that child (data intact); with two children
  SPDK answers "Operation not permitted", so that is refused up front;
* revert: ``bdev_raid_create`` over heads cloned from snapshots fails with -17 because each
  clone carries the old RAID's superblock (more/sendcmd L39); zeroing LBA 0 of every new head with
  ``bdev_nvme_send_cmd`` Write Zeroes through an attached NVMe-oF controller makes it succeed
  (L45, L53, L65). A local head has no controller: a temporary export of it on this node plus a
  self-attached controller works, even though SPDK registers no bdev for that controller (L49-L53).
  The engine's controller of a remote head must be detached before the replica node removes the
  export's namespace and re-attached after it is re-added (more/sbclone q12 L25-L34).

Partial sets: a failed create rolls back the snapshots it made. A set that exists on some
replicas only (a run killed mid-way) cannot be completed consistently while I/O runs - the
existing snapshots hold an earlier point in time than any new one. It is deleted (only where it is
still the head's direct parent, i.e. nothing was built on it) and the whole set is taken again
under the pause; a partial snapshot that already has children is refused with what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_model as em
from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils import spdk_superblock as sb
from ansible_collections.spdk.storage.plugins.module_utils.spdk_actions import RecordedSends
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
    engine_nqn,
    replica_nqn,
    snapshot_lvol_name,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

QUIESCE_MODES = ("ana", "none")
STATES = ("present", "absent", "reverted")
OK, ERR = "OK", "ERR"
NODE_READS = ops.REPLICA_READS                    # lvstores, bdevs, subsystems: 3 RPCs in one batch
REVERT_READS = ops.REPLICA_READS + ("raids", "controllers")
TEMP_EXPORT_INFIX = "-revert-"
ZEROING_WHY = "Write Zeroes to %s (clears the old RAID superblock the snapshot carried)"


class EngineSnapshotRefusal(SpdkError):
    """Refused before any change (bad state, missing snapshot, unreachable replica...)."""


class ReplicaFailed(SpdkError):
    """An RPC on one replica failed after changes began; names the replica, and the RPC's method, code and
    message when ``err`` is an SpdkRpcError."""

    def __init__(self, replica, err, what):
        rpc = isinstance(err, SpdkRpcError)
        extra = dict(rpc_error_message=err.message) if rpc else {}
        super(ReplicaFailed, self).__init__("%s on replica %s failed: %s" % (what, replica, err),
                                            method=err.method if rpc else None, code=err.code if rpc else None,
                                            **extra)
        self.replica = replica
        self.err = err
        self.what = what


# ---------------------------------------------------------------- input


class EngineReplica:
    """One replica of the engine: local (no ``address``) or remote (``address`` + ``rpc_socket``)."""

    def __init__(self, name, disk=None, address=None, nqn=None, rpc_socket=None):
        self.name = validate_lvol_name("replica", name)
        self.disk = validate_lvol_name("disk", disk) if disk is not None else None
        self.address = address
        self.rpc_socket = rpc_socket or None
        self.traddr = self.port = self.adrfam = None
        if address is not None:
            self.traddr, self.port, self.adrfam = em.parse_address(address, "address of replica %s" % name)
            if not self.rpc_socket:
                raise SpdkInputError(
                    "replica %s lives on another node (address %s): give its rpc_socket (how this node reaches "
                    "that node's spdk_tgt), so its snapshot can be taken there" % (name, address))
        elif self.disk is None:
            raise SpdkInputError("replica %s needs disk (a replica on this node) or address and rpc_socket "
                                 "(a replica on another node)" % name)
        self.nqn = nqn or replica_nqn(name)

    @property
    def is_local(self):
        return self.address is None

    @property
    def engine_bdev(self):
        """The replica's RAID member bdev on the engine node."""
        return "%s/%s" % (self.disk, self.name) if self.is_local else self.name + "n1"

    def to_dict(self):
        out = {"name": self.name, "disk": self.disk}
        if not self.is_local:
            out.update(address=self.address, rpc_socket=self.rpc_socket)
        return out


def timeouts_from_record(engine_entry):
    """The controller loss policy spdk_engine attached the members with; None when the record predates it."""
    recorded = (engine_entry or {}).get("controller_timeouts")
    if not isinstance(recorded, dict):
        return None
    return {name: recorded[name] for name, _default in em.DEFAULT_TIMEOUTS if isinstance(recorded.get(name), int)}


def replicas_from_record(engine_entry):
    """The engine's replicas as spdk_engine recorded them (name, disk | address, nqn, rpc_socket)."""
    out = []
    for entry in (engine_entry or {}).get("replicas") or []:
        out.append({k: entry.get(k) for k in ("name", "disk", "address", "nqn", "rpc_socket")})
    return out


class EngineSnapshotRequest:
    """Validated options of an engine-level spdk_snapshot run; every check runs before any RPC."""

    def __init__(self, engine, name=None, state="present", replicas=(), quiesce=None, quiesce_timeout=10.0,
                 host_nqn=None, node_name="localhost", listen_address="127.0.0.1",
                 port_range=nvmf.DEFAULT_PORT_RANGE, timeouts=None):
        self.engine = validate_lvol_name("engine", engine)
        self.nqn = engine_nqn(engine)
        self.name = validate_lvol_name("snapshot", name) if name is not None else None
        if state not in STATES:
            raise SpdkInputError("state must be one of %s" % ", ".join(STATES))
        self.state = state
        if name is None and state != "present":
            raise SpdkInputError("state=%s needs the snapshot name" % state)
        self.replicas = [r if isinstance(r, EngineReplica) else EngineReplica(**r) for r in replicas or []]
        if not self.replicas:
            raise SpdkInputError("engine %s: no replicas given and none recorded for it on this node; list them "
                                 "in replicas (name, disk or address + rpc_socket)" % engine)
        names = [r.name for r in self.replicas]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SpdkInputError("replica %s is listed more than once" % ", ".join(twice))
        if self.name is not None:
            for replica in self.replicas:
                snapshot_lvol_name(replica.name, self.name)   # must fit 63 characters everywhere
        if quiesce is not None and quiesce not in QUIESCE_MODES:
            raise SpdkInputError("quiesce must be one of %s" % ", ".join(QUIESCE_MODES))
        self.quiesce = quiesce
        if quiesce_timeout is None or quiesce_timeout <= 0:
            raise SpdkInputError("quiesce_timeout must be more than 0 seconds")
        self.quiesce_timeout = float(quiesce_timeout)
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else em.default_host_nqn(node_name)
        self.listen_address = listen_address
        nvmf.address_family(listen_address)
        self.port_range = nvmf.parse_port_range(port_range)
        self.timeouts = dict(em.DEFAULT_TIMEOUTS)
        self.timeouts.update(timeouts or {})

    def lvol_name(self, replica):
        return snapshot_lvol_name(replica.name, self.name)


# ---------------------------------------------------------------- nodes and replicas


class Node:
    """One spdk_tgt this run talks to: the engine node or a remote replica's node."""

    def __init__(self, label, client, is_engine_node):
        self.label = label
        self.client = client
        self.is_engine_node = is_engine_node
        self.state = None

    def load(self, parts=NODE_READS):
        self.state = NodeState(fetch(self.client, parts))
        return self.state

    def reread(self, check_mode):
        if not check_mode:
            self.load(tuple(self.state.raw))

    def with_part(self, part):
        """The last reads plus ``part`` (one RPC unless it was read already); later re-reads stay as they were."""
        if self.state.has(part):
            return self.state
        return NodeState(dict(self.state.raw, **fetch(self.client, (part,))))


class ReplicaView:
    """A replica as its node shows it: head, snapshot tree, and this run's verdict on it."""

    def __init__(self, spec, node):
        self.spec = spec
        self.node = node
        self.mode = OK
        self.error = None

    @property
    def replica(self):
        head = ops.find_head(self.node.state, self.spec.name, self.spec.disk)
        return self.node.state.replica(head.lvstore, head.name) if head is not None else None

    @property
    def disk(self):
        replica = self.replica
        return replica.disk if replica else self.spec.disk

    def snapshot(self, name):
        replica = self.replica
        return replica.snapshot(name) if replica else None

    def fail(self, error):
        self.mode = ERR
        self.error = error

    def to_dict(self, snapshot_name=None):
        replica = self.replica
        out = dict(self.spec.to_dict(), node=self.node.label, mode=self.mode, error=self.error,
                   disk=replica.disk if replica else self.spec.disk)
        out["snapshots"] = [s.name for s in replica.snapshots if s.lvol.is_snapshot] if replica else []
        out["parent"] = replica.parent if replica else None
        if snapshot_name is not None:
            snap = replica.snapshot(snapshot_name) if replica else None
            out["snapshot"] = None if snap is None else snap.to_dict()
        return out


def snapshot_sets(views):
    """{replica: [snapshot names]} and whether every replica has the same set."""
    sets = {}
    for view in views:
        replica = view.replica
        sets[view.spec.name] = sorted(s.name for s in replica.snapshots if s.lvol.is_snapshot) if replica else None
    values = [tuple(v) for v in sets.values() if v is not None]
    return sets, len(set(values)) <= 1 and None not in sets.values()


def set_view(request, views):
    """The run's result about the engine's snapshots (list)."""
    sets, consistent = snapshot_sets(views)
    return {"engine": request.engine, "snapshot_sets": sets, "consistent": consistent,
            "replicas": [v.to_dict(request.name) for v in views]}


# ---------------------------------------------------------------- one run


class EngineSnapshotRun(RecordedSends):
    """One engine-level spdk_snapshot run. ``connect(rpc_socket)`` gives the client of a remote node.

    ``actions`` lists every mutating step (sent, or planned in check mode) with its node;
    ``warnings`` what the user should know; ``record`` (optional) is the node record adapter
    with ``entry()``, ``save_snapshot(uuids)``, ``remove_snapshot()``, ``revert_marker()``,
    ``save_revert(marker)``.
    """

    def __init__(self, request, engine_client, connect, check_mode=False, record=None,
                 clock=time.monotonic, sleep=time.sleep, wait_timeout=30.0):
        self.request = request
        self.check_mode = check_mode
        self.record = record
        self.clock = clock
        self.sleep = sleep
        self.wait_timeout = wait_timeout
        self.engine_node = Node("engine node", engine_client, True)
        self.nodes = {None: self.engine_node}
        self.connect = connect
        self.views = []
        self.actions = []
        self.warnings = []
        self.paused_seconds = None
        self.before = None         # {replica: snapshot names} as read at the start
        self.recloned = set()      # replicas whose head this run replaced (check mode: not visible in reads)
        self.detached = set()      # controllers this run detached

    # --- reading -------------------------------------------------------------------------
    def node_for(self, spec):
        key = None if spec.is_local else spec.rpc_socket
        if key not in self.nodes:
            self.nodes[key] = Node("node of %s (%s)" % (spec.name, spec.rpc_socket), self.connect(spec.rpc_socket),
                                   False)
        return self.nodes[key]

    def load(self, engine_parts=NODE_READS, remote_parts=NODE_READS):
        """Read every node once (one batch each); an unreachable replica node refuses the run."""
        self.views = [ReplicaView(spec, self.node_for(spec)) for spec in self.request.replicas]
        unreachable = []
        for key, node in self.nodes.items():
            try:
                node.load(engine_parts if key is None else remote_parts)
            except SpdkRpcError as err:
                for view in self.views:
                    if view.node is node:
                        view.fail(str(err))
                        unreachable.append("%s (%s)" % (view.spec.name, err))
        if unreachable:
            raise EngineSnapshotRefusal(
                "cannot reach every replica of engine %s: %s. An engine snapshot must be taken, deleted or "
                "reverted on all replicas at once; bring the node back (or remove the replica from the engine "
                "with spdk.storage.spdk_engine) and run again; nothing was changed"
                % (self.request.engine, "; ".join(unreachable)))
        self.before = snapshot_sets(self.views)[0]
        missing = [v.spec.name for v in self.views if v.replica is None]
        if missing:
            for view in self.views:
                if view.replica is None:
                    view.fail("replica not found on its node")
            raise EngineSnapshotRefusal(
                "replica %s of engine %s not found on its node (disk %s); nothing was changed"
                % (", ".join(missing), self.request.engine,
                   ", ".join(str(v.spec.disk) for v in self.views if v.replica is None)))

    @property
    def rpc_calls(self):
        return sum(len(node.client.sent_calls) for node in self.nodes.values())

    def rpc_calls_per_node(self):
        return {node.label: len(node.client.sent_calls) for node in self.nodes.values()}

    # --- sending -------------------------------------------------------------------------
    @property
    def changed(self):
        return bool(self.actions)

    # --- the engine's frontend -------------------------------------------------------------
    def frontend(self):
        """The engine's subsystem entry on the engine node, or None."""
        for entry in self.engine_node.state.raw.get("subsystems") or []:
            if entry.get("nqn") == self.request.nqn:
                return entry
        return None

    def quiesce_mode(self):
        frontend = self.frontend()
        mode = self.request.quiesce or ("ana" if frontend is not None else "none")
        if mode == "none" and frontend is not None:
            self.warnings.append(
                "quiesce=none with the frontend %s serving: the replicas are snapshotted one after the other "
                "while host writes go on, so the snapshots are only consistent per replica, not with each other"
                % self.request.nqn)
        if mode == "ana" and frontend is None:
            return "none"    # no frontend, no host I/O to pause
        if mode == "ana" and not any(ns.get("anagrpid") is not None for ns in frontend.get("namespaces") or []):
            raise EngineSnapshotRefusal(
                "frontend %s was created without ANA reporting, so its I/O cannot be paused for a consistent "
                "snapshot: re-create it with spdk.storage.spdk_engine (frontend none, then nvmf) in a maintenance "
                "window, or take the snapshot with quiesce=none (consistent per replica only); nothing was changed"
                % self.request.nqn)
        return mode

    # ================================================================== present
    def present(self):
        request = self.request
        self.load()
        mode = self.quiesce_mode()
        have, missing = self._classify()
        if not missing:
            self._record_snapshot()
            return
        partial = [v for v in self.views if v in have]
        self._check_partial(partial)
        self._refuse_while_rebuilding("take")
        for view in partial:
            self._delete_snapshot(view, "delete %s: it exists on %s only, taken at another time than the snapshots "
                                        "about to be taken on the others; the whole set is taken again"
                                  % (request.lvol_name(view.spec), ", ".join(v.spec.name for v in partial)))
        made = []
        try:
            if mode == "ana":
                self._paused(lambda deadline: self._snapshot_all(made, deadline))
            else:
                self._snapshot_all(made)
        except ReplicaFailed as failure:
            self._rollback(made)
            raise failure
        for node in set(v.node for v in self.views):
            node.reread(self.check_mode)
        self._record_snapshot()

    def _classify(self):
        """(replicas that have the snapshot, replicas that miss it); name clashes refuse the run."""
        request = self.request
        recorded = self._recorded_uuids()
        have, missing = [], []
        for view in self.views:
            snap = view.snapshot(request.name)
            lvol = view.node.state.lvol(view.disk, request.lvol_name(view.spec))
            if lvol is not None and not lvol.is_snapshot:
                view.fail("name taken by a lvol that is not a snapshot")
                raise EngineSnapshotRefusal(
                    "lvol %s/%s on %s exists but is not a snapshot (a writable lvol or clone holds the name of "
                    "engine snapshot %s): rename or delete it, or choose another snapshot name; nothing was changed"
                    % (view.disk, lvol.name, view.node.label, request.name))
            if snap is None:
                missing.append(view)
                continue
            known = recorded.get(view.spec.name)
            if known and known != snap.lvol.uuid:
                view.fail("snapshot differs from the recorded engine snapshot")
                raise EngineSnapshotRefusal(
                    "snapshot %s of replica %s (uuid %s) is not the one engine snapshot %s recorded (uuid %s): it was "
                    "deleted and taken again on that replica alone, so it holds another point in time than the "
                    "other replicas' copies. Delete the engine snapshot (state=absent) and take it again; nothing "
                    "was changed" % (request.name, view.spec.name, snap.lvol.uuid, request.name, known))
            have.append(view)
        return have, missing

    def _recorded_uuids(self):
        entry = self.record.entry() if self.record is not None else None
        return dict((entry or {}).get("replicas") or {})

    def _check_partial(self, partial):
        for view in partial:
            replica = view.replica
            children = ops.snapshot_children(replica, replica.snapshot(self.request.name))
            if children != [replica.name]:
                view.fail("partial snapshot with other children")
                raise EngineSnapshotRefusal(
                    "engine snapshot %s exists on %s only, and on %s it already has children (%s): it cannot be "
                    "completed consistently (it holds an earlier point in time than a new snapshot of the other "
                    "replicas) nor replaced safely. Delete it on every replica (state=absent, after removing all "
                    "but one child) and take it again; nothing was changed"
                    % (self.request.name, ", ".join(v.spec.name for v in partial), view.spec.name,
                       ", ".join(children)))

    def _snapshot_all(self, made, deadline=None):
        for view in self.views:
            if deadline is not None and self.clock() > deadline:
                view.fail("quiesce_timeout reached before this replica's snapshot")
                raise ReplicaFailed(view.spec.name, "quiesce_timeout (%ss) reached with the I/O paused"
                                    % self.request.quiesce_timeout, "snapshot")
            lvol = self.request.lvol_name(view.spec)
            try:
                self.send(view.node, "bdev_lvol_snapshot",
                          {"lvol_name": "%s/%s" % (view.disk, view.spec.name), "snapshot_name": lvol},
                          "snapshot replica %s as %s" % (view.spec.name, lvol))
            except SpdkRpcError as err:
                view.fail(str(err))
                raise ReplicaFailed(view.spec.name, err, "snapshot")
            made.append(view)

    def _rollback(self, made):
        """Delete the snapshots this run made: a failed create leaves no partial set behind."""
        for view in made:
            alias = "%s/%s" % (view.disk, self.request.lvol_name(view.spec))
            try:
                self.send(view.node, "bdev_lvol_delete", {"name": alias},
                          "roll back: delete %s (the snapshot of another replica failed)" % alias)
            except SpdkRpcError as err:
                self.warnings.append("could not roll back snapshot %s on %s: %s; the next run with state=present "
                                     "deletes it and takes the set again" % (alias, view.node.label, err))

    def _delete_snapshot(self, view, why):
        alias = "%s/%s" % (view.disk, self.request.lvol_name(view.spec))
        try:
            self.send(view.node, "bdev_lvol_delete", {"name": alias}, why)
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(view.spec.name, err, "delete of snapshot %s" % alias)

    def _record_snapshot(self):
        if self.record is None or self.check_mode:
            return
        uuids = {}
        for view in self.views:
            snap = view.snapshot(self.request.name)
            if snap is not None:
                uuids[view.spec.name] = snap.lvol.uuid
        self.record.save_snapshot(uuids)

    # --- the pause ---------------------------------------------------------------------------
    def _paused(self, work):
        """Run ``work(deadline)`` with the namespace in the inaccessible spare ANA group; always resume."""
        frontend = self.frontend()
        namespaces = [(ns["nsid"], ns.get("anagrpid")) for ns in frontend.get("namespaces") or []]
        self._spare_group_ready()
        client = self.engine_node.client
        start = self.clock()
        deadline = start + self.request.quiesce_timeout
        moved = []
        try:
            saved_timeout = client.timeout
            client.timeout = min(saved_timeout, self.request.quiesce_timeout)
            try:
                for nsid, _group in namespaces:
                    moved.append(nsid)
                    self.send(self.engine_node, "nvmf_subsystem_set_ns_ana_group",
                              {"nqn": self.request.nqn, "nsid": nsid, "anagrpid": em.SPARE_ANA_GROUP},
                              "pause host I/O: move namespace %d into the inaccessible ANA group %d (returns once "
                              "in-flight writes finished)" % (nsid, em.SPARE_ANA_GROUP))
            finally:
                client.timeout = saved_timeout
            return work(deadline)
        finally:
            self._resume(namespaces, moved)
            self.paused_seconds = round(self.clock() - start, 3)

    def _resume(self, namespaces, moved):
        errors = []
        for nsid, group in namespaces:
            if nsid not in moved and group != em.SPARE_ANA_GROUP:
                continue
            back = group if group not in (None, em.SPARE_ANA_GROUP) else em.ACTIVE_ANA_GROUP
            try:
                self.send(self.engine_node, "nvmf_subsystem_set_ns_ana_group",
                          {"nqn": self.request.nqn, "nsid": nsid, "anagrpid": back},
                          "resume host I/O: move namespace %d back into ANA group %d" % (nsid, back))
            except SpdkRpcError as err:
                errors.append("namespace %d: %s" % (nsid, err))
        if errors:
            raise EngineSnapshotRefusal(
                "host I/O of engine %s is STILL PAUSED: moving the namespace back failed (%s). Run this task or "
                "spdk.storage.spdk_engine again (both move it back), or call nvmf_subsystem_set_ns_ana_group "
                "nsid 1 anagrpid 1 on %s" % (self.request.engine, "; ".join(errors), self.request.nqn))

    def _spare_group_ready(self):
        """Group 2 inaccessible on every listener (spdk_engine sets it up; re-asserted here if not)."""
        listeners = self.engine_node.client.call("nvmf_subsystem_get_listeners", {"nqn": self.request.nqn}) or []
        for listener in listeners:
            states = {s.get("ana_group"): s.get("ana_state") for s in listener.get("ana_states") or []}
            if states.get(em.SPARE_ANA_GROUP) == "inaccessible":
                continue
            address = {k: listener["address"][k] for k in ("trtype", "adrfam", "traddr", "trsvcid")
                       if k in listener["address"]}
            step = em.spare_group_step(self.request.nqn, address)
            self.warnings.append("ANA group %d was not inaccessible on listener %s:%s of %s; set it up now"
                                 % (em.SPARE_ANA_GROUP, address.get("traddr"), address.get("trsvcid"),
                                    self.request.nqn))
            self.send(self.engine_node, step.method, step.params, step.why)

    def _refuse_while_rebuilding(self, what):
        """RAID1 is still filling the head of a replica it rebuilds (mode WO): a snapshot of that head would not
        hold what the other replicas' snapshots hold, and a revert would cut the rebuild off."""
        state = self.engine_node.with_part("raids")
        raid = state.raid(self.request.engine)
        process = raid.process if raid is not None else None
        if not process or process["type"] != "rebuild":
            return
        rebuilt = [v for v in self.views if process["target"] in em.bdev_refs(state, v.spec.engine_bdev)[0]]
        for view in rebuilt:
            view.fail("being rebuilt (WO)")
        raise EngineSnapshotRefusal(
            "replica %s of engine %s is being rebuilt (mode WO, %s%% copied): a snapshot of it would not be "
            "identical to the other replicas' ones, so engine snapshots cannot %s %s now. Wait until "
            "spdk.storage.spdk_engine reports every replica RW (wait: true) and run again; nothing was changed"
            % (", ".join(v.spec.name for v in rebuilt) or process["target"], self.request.engine,
               process.get("percent"), what, self.request.name))

    # ================================================================== absent
    def absent(self):
        request = self.request
        self.load()
        present = []
        for view in self.views:
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
                    % (request.name, len(children), view.spec.name, ", ".join(children)))
            present.append((view, children))
        if present:
            self._refuse_while_rebuilding("delete")
        for view, children in present:
            self._delete_snapshot(view, "delete snapshot %s of replica %s (merged into %s)"
                                  % (request.name, view.spec.name, children[0] if children else "nothing"))
        for node in set(v.node for v, _c in present):
            node.reread(self.check_mode)
        if self.record is not None and not self.check_mode:
            self.record.remove_snapshot()

    # ================================================================== list
    def listing(self):
        self.load()

    # ================================================================== reverted
    def reverted(self):
        self.load(REVERT_READS, NODE_READS + ("raids",))
        self._check_revert()
        marker = self.record.revert_marker() if self.record is not None else None
        if self._revert_done(marker):
            return
        self._refuse_while_rebuilding("revert to")
        heads = dict(marker.get("heads") or {}) if marker and marker.get("state") == "running" else {}
        self._save_revert("running", heads)
        if self._raid_is_revert_result(heads):
            self._finish_revert(heads)
            return
        self._delete_raids()
        for view in self.views:
            if heads.get(view.spec.name) != view.replica.head.uuid:
                heads[view.spec.name] = self._reclone(view)
                self._save_revert("running", heads)
        for view in self.views:
            self._zero_lba0(view)
        raid = self.send(self.engine_node, "bdev_raid_create",
                         {"name": self.request.engine, "raid_level": "raid1", "strip_size_kb": 0,
                          "base_bdevs": [v.spec.engine_bdev for v in self.views], "superblock": True},
                         "re-create RAID1 %s with a superblock over the reverted heads" % self.request.engine)
        del raid
        self._finish_revert(heads)

    def _check_revert(self):
        request = self.request
        if self.frontend() is not None:
            raise EngineSnapshotRefusal(
                "engine %s still has its frontend %s: revert replaces the volume's content under any connected "
                "host, so it runs only without a frontend. Remove it first (spdk.storage.spdk_engine with "
                "frontend=none), revert, then create the frontend again; nothing was changed"
                % (request.engine, request.nqn))
        missing = [v.spec.name for v in self.views if v.snapshot(request.name) is None
                   or not v.snapshot(request.name).lvol.is_snapshot]
        if missing:
            raise EngineSnapshotRefusal(
                "engine snapshot %s is missing on replica %s: every replica must hold it to revert the engine to "
                "it; nothing was changed" % (request.name, ", ".join(missing)))
        for view in self.views:
            if not view.spec.is_local and self._export(view) is None:
                view.fail("export missing")
                raise EngineSnapshotRefusal(
                    "replica %s has no export %s on its node: expose it again with spdk.storage.spdk_replica "
                    "(the recovery playbook does) and run again; nothing was changed"
                    % (view.spec.name, view.spec.nqn))

    def _export(self, view):
        return nvmf.parse_subsystems(view.node.state.raw.get("subsystems")).get(view.spec.nqn)

    def _revert_done(self, marker):
        """The record says this revert finished, and nothing replaced or wrote the heads since."""
        if not marker or marker.get("state") != "done":
            return False
        raid = self.engine_node.state.raid(self.request.engine)
        if raid is None or raid.state != "online":
            return False
        for view in self.views:
            head = view.replica.head
            if (marker.get("heads") or {}).get(view.spec.name) != head.uuid:
                return False
            if (marker.get("allocated") or {}).get(view.spec.name) != head.allocated_clusters:
                return False
        return True

    def _raid_is_revert_result(self, heads):
        """A RAID over exactly the re-cloned heads: an earlier run crashed after creating it."""
        raid = self.engine_node.state.raid(self.request.engine)
        if raid is None or len(heads) != len(self.views):
            return False
        members = {m["uuid"] for m in raid.members if m["configured"]}
        return all(heads.get(v.spec.name) == v.replica.head.uuid for v in self.views) and \
            members == set(heads.values())

    def _save_revert(self, state, heads, allocated=None):
        if self.record is None or self.check_mode:
            return
        marker = {"state": state, "heads": dict(heads)}
        if allocated is not None:
            marker["allocated"] = dict(allocated)
        self.record.save_revert(marker)

    def _delete_raids(self):
        """The engine's RAID, and any RAID a restarted replica node assembled around a head (D2)."""
        raid = self.engine_node.state.raid(self.request.engine)
        if raid is not None:
            self.send(self.engine_node, "bdev_raid_delete", {"name": self.request.engine, "clear_sb": False},
                      "delete RAID %s (its heads are replaced by clones of snapshot %s)"
                      % (self.request.engine, self.request.name))
            self.engine_node.reread(self.check_mode)
        for view in self.views:
            if view.node.is_engine_node:
                continue
            for stale in view.node.state.raids_using(view.replica.head):
                self.send(view.node, "bdev_raid_delete", {"name": stale.name, "clear_sb": False},
                          "delete RAID %s that the node assembled around replica %s from its superblock"
                          % (stale.name, view.spec.name))

    def _reclone(self, view):
        """Replace the head by a clone of the snapshot; returns the new head's UUID."""
        spec, node = view.spec, view.node
        head = view.replica.head
        try:
            if not spec.is_local:
                self._detach(spec.name)
                self._unexport_head(view, head)
            else:
                self._drop_temp_export(view)
            self.send(node, "bdev_lvol_delete", {"name": head.alias},
                      "delete head %s (replaced by a clone of snapshot %s)" % (head.alias, self.request.name))
            new_uuid = self.send(node, "bdev_lvol_clone",
                                 {"snapshot_name": "%s/%s" % (view.disk, self.request.lvol_name(spec)),
                                  "clone_name": spec.name},
                                 "clone snapshot %s as the new head %s/%s"
                                 % (self.request.lvol_name(spec), view.disk, spec.name))
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(spec.name, err, "revert")
        node.reread(self.check_mode)
        self.recloned.add(spec.name)
        return new_uuid

    def _detach(self, controller):
        state = self.engine_node.state
        if controller in self.detached or not any(c.name == controller for c in state.controllers):
            return
        self.detached.add(controller)
        self.send(self.engine_node, "bdev_nvme_detach_controller", {"name": controller},
                  "detach controller %s (its namespace is about to be re-pointed)" % controller,
                  tolerate=lambda err: err.is_no_device())
        if not self.check_mode:
            em.wait_bdevs_gone(self.engine_node.client, [controller + "n1"], self.wait_timeout, self.sleep,
                               self.clock)
            self.engine_node.reread(False)

    def _unexport_head(self, view, head):
        export = self._export(view)
        for ns in export.namespaces if export else []:
            if ns["bdev"] in head.refs():
                self.send(view.node, "nvmf_subsystem_remove_ns", {"nqn": view.spec.nqn, "nsid": ns["nsid"]},
                          "take head %s out of export %s" % (head.alias, view.spec.nqn))

    # --- LBA 0 ---------------------------------------------------------------------------------
    def _zero_lba0(self, view):
        """Write Zeroes to LBA 0 of the new head (the old RAID's superblock), through NVMe-oF."""
        try:
            if view.spec.is_local:
                self._zero_local(view)
            else:
                self._zero_remote(view)
        except SpdkRpcError as err:
            view.fail(str(err))
            raise ReplicaFailed(view.spec.name, err, "zeroing LBA 0 of the new head")

    def _zero_remote(self, view):
        spec = view.spec
        head = view.replica.head
        export = self._export(view)
        stale = self.check_mode and spec.name in self.recloned    # the reads still show the old head
        if stale or not any(ns["bdev"] in head.refs() for ns in export.namespaces):
            for ns in [] if stale else export.namespaces:
                self.send(view.node, "nvmf_subsystem_remove_ns", {"nqn": spec.nqn, "nsid": ns["nsid"]},
                          "remove namespace %d (bdev %s is not the replica's head)" % (ns["nsid"], ns["bdev"]))
            self.send(view.node, "nvmf_subsystem_add_ns", {"nqn": spec.nqn, "namespace": {"bdev_name": head.alias}},
                      "export the new head %s as %s" % (head.alias, spec.nqn))
        bdev = self.engine_node.state.bdev_named(spec.engine_bdev)
        if stale or bdev is None or bdev.get("uuid") != head.uuid:
            self._detach(spec.name)
            self.send(self.engine_node, "bdev_nvme_attach_controller", self._attach_params(spec),
                      "attach replica %s again (now its new head)" % spec.name)
            if not self.check_mode:
                self._wait_bdev(spec.engine_bdev, head.uuid)
        self._write_zeroes(self.engine_node, spec.name, "LBA 0 of %s's new head" % spec.name)

    def _attach_params(self, spec):
        params = {"name": spec.name, "trtype": "tcp", "adrfam": spec.adrfam.lower(), "traddr": spec.traddr,
                  "trsvcid": str(spec.port), "subnqn": spec.nqn, "hostnqn": self.request.host_nqn}
        params.update(self.request.timeouts)
        return params

    def _wait_bdev(self, name, uuid):
        deadline = self.clock() + self.wait_timeout
        while True:
            try:
                found = self.engine_node.client.call("bdev_get_bdevs", {"name": name})
                if found and found[0].get("uuid") == uuid:
                    return
            except SpdkRpcError as err:
                if not err.is_no_device():
                    raise
            if self.clock() >= deadline:
                raise EngineSnapshotRefusal("bdev %s of the re-attached replica did not appear with uuid %s within "
                                            "%ss" % (name, uuid, self.wait_timeout))
            self.sleep(0.1)

    def _write_zeroes(self, node, controller, what):
        sb.write_zeroes_lba0(functools.partial(self.send, node), controller, what, ZEROING_WHY % what,
                             error=EngineSnapshotRefusal)

    def _loopback(self, view):
        """The temporary export of a local head (NQN ``<engine nqn>-revert-<replica>``) and its controller."""
        return sb.Loopback(nqn="%s%s%s" % (self.request.nqn, TEMP_EXPORT_INFIX, view.spec.name),
                           controller=view.spec.name + TEMP_EXPORT_INFIX.rstrip("-"),
                           listen_address=self.request.listen_address,
                           port_range="%d-%d" % self.request.port_range, host_nqn=self.request.host_nqn)

    def _drop_temp_export(self, view):
        """Remove what an interrupted zeroing of a local head left: its controller and temporary export."""
        self._loopback(view).drop(functools.partial(self.send, self.engine_node), self.engine_node.state)

    def _zero_local(self, view):
        """Temporary loopback export of the local head + self-attached controller, removed afterwards."""
        node = self.engine_node
        what = "LBA 0 of %s's new head" % view.spec.name
        try:
            self._loopback(view).zero_lba0(
                functools.partial(self.send, node), node.client, node.state, view.replica.head, what,
                ZEROING_WHY % what, error=EngineSnapshotRefusal)
        finally:
            node.reread(self.check_mode)

    def _finish_revert(self, heads):
        allocated = {}
        if not self.check_mode:
            for node in set(v.node for v in self.views):
                node.reread(False)
            allocated = {v.spec.name: v.replica.head.allocated_clusters for v in self.views}
        self._save_revert("done", heads, allocated)


# ---------------------------------------------------------------- the node record


class SnapshotRecord:
    """Engine snapshot ``name`` of ``engine`` in the node record (spdk_record), written atomically.

    The entry is the record's ``snapshots[<engine>][<name>]`` (``kind``, ``created``) plus:
    ``replicas`` {replica: snapshot lvol UUID}, to tell a set taken together from a copy re-made on
    one replica later, and ``revert`` {state running|done, heads {replica: head UUID}, allocated
    {replica: clusters}}: the progress of a revert, so a re-run resumes it and a finished one is a no-op.
    """

    def __init__(self, path, node, engine, name):
        self.path = path
        self.node = node
        self.engine = engine
        self.name = name
        self.written = False
        self._entry = None
        self.loaded = False

    def load(self):
        self._entry = rec.load(self.path, self.node).snapshots_of(self.engine).get(self.name)
        self.loaded = True
        return self._entry

    def entry(self):
        return self._entry if self.loaded else self.load()

    def engine_entry(self):
        return rec.load(self.path, self.node).engine(self.engine)

    def revert_marker(self):
        return (self.entry() or {}).get("revert")

    def _update(self, change):
        def apply(record):
            change(record)
            self._entry = record.snapshots_of(self.engine).get(self.name)
        _record, written = rec.update(self.path, self.node, apply)
        self.written = self.written or written

    def save_snapshot(self, uuids):
        def change(record):
            record.add_snapshot(self.engine, self.name, "user")
            record.snapshots[self.engine][self.name]["replicas"] = dict(uuids)
        self._update(change)

    def save_revert(self, marker):
        def change(record):
            record.add_snapshot(self.engine, self.name, "user")
            record.snapshots[self.engine][self.name]["revert"] = dict(marker)
        self._update(change)

    def remove_snapshot(self):
        self._update(lambda record: record.remove_snapshot(self.engine, self.name))

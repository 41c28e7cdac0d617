# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nodes of an engine-level snapshot run and its replicas as their nodes show them.

The run reads the engine node and every remote replica's node once, in one batch each
(``EngineNodes.load``): an unreachable node or a missing replica refuses the run before any change.
A ``ReplicaView`` is one replica as its node's reads show it, plus this run's verdict on it
(``OK``, or ``ERR`` with the error), which the module returns per replica.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    ERR,
    OK,
    EngineSnapshotRefusal,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import bdev_refs, find_member
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import Snapshot
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import split_snapshot_lvol_name
from ansible_collections.spdk.storage.plugins.module_utils.spdk_node import Node
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

NODE_READS = ops.REPLICA_READS                    # lvstores, bdevs, subsystems: 3 RPCs in one batch
REVERT_READS = ops.REPLICA_READS + ("raids", "controllers")
ENGINE_NODE = "engine node"


class ReplicaView:
    """A replica (``ref``, a ReplicaRef) as its ``node`` shows it: head, snapshot tree, and this run's
    verdict on it."""

    def __init__(self, ref, node):
        self.ref = ref
        self.node = node
        self.mode = OK
        self.error = None

    @property
    def replica(self):
        head = ops.find_head(self.node.state, self.ref.name, self.ref.disk)
        return self.node.state.replica(head.lvstore, head.name) if head is not None else None

    @property
    def disk(self):
        replica = self.replica
        if replica is not None:
            return replica.disk
        if self.ref.disk is not None:
            return self.ref.disk
        own = [lv for found in self._own_snapshot_lvols().values() for lv in found]
        return own[0].lvstore if own else None

    def snapshot(self, name):
        """The replica's snapshot ``name``; for a replica whose head is gone (a revert was killed between
        deleting a head and cloning its successor) the snapshot lvol found by its name."""
        replica = self.replica
        if replica is not None:
            return replica.snapshot(name)
        found = self._own_snapshot_lvols().get(name, [])
        return Snapshot(name, found[0]) if len(found) == 1 else None

    def snapshot_names(self):
        """The names of the replica's engine snapshots, oldest first; for a replica whose head is gone (see
        ``snapshot``) the names its snapshot lvols carry, sorted; None when the node shows neither."""
        replica = self.replica
        if replica is not None:
            return [s.name for s in replica.snapshots if s.lvol.is_snapshot]
        return sorted(self._own_snapshot_lvols()) or None

    def _own_snapshot_lvols(self):
        """{snapshot name: [lvol]} of the node's snapshot lvols named after this replica
        (``<replica>-snap-<snapshot>``), on the replica's disk when its ref names one: how a replica whose
        head is gone is found."""
        own = {}
        for lv in self.node.state.lvols:
            parts = split_snapshot_lvol_name(lv.name)
            if lv.is_snapshot and parts is not None and parts[0] == self.ref.name \
                    and self.ref.disk in (None, lv.lvstore):
                own.setdefault(parts[1], []).append(lv)
        return own

    def export(self):
        """The replica's NVMe-oF export on its node (a remote replica's), or None."""
        return self.node.subsystems().get(self.ref.nqn)

    def fail(self, error):
        self.mode = ERR
        self.error = error

    def to_dict(self, snapshot_name=None):
        replica = self.replica
        ref = self.ref
        out = {"name": ref.name, "node": self.node.label, "mode": self.mode, "error": self.error,
               "disk": replica.disk if replica else ref.disk}
        if not ref.is_local:
            out.update(address=ref.address, rpc_socket=ref.rpc_socket)
        out["snapshots"] = self.snapshot_names() or []
        out["parent"] = replica.parent if replica else None
        if snapshot_name is not None:
            snap = replica.snapshot(snapshot_name) if replica else None
            out["snapshot"] = None if snap is None else snap.to_dict()
        return out


def snapshot_sets(views):
    """{replica: [snapshot names]} and whether every replica has the same set."""
    sets = {}
    for view in views:
        names = view.snapshot_names()
        sets[view.ref.name] = None if names is None else sorted(names)
    values = [tuple(v) for v in sets.values() if v is not None]
    return sets, len(set(values)) <= 1 and None not in sets.values()


def set_view(request, views):
    """The run's result about the engine's snapshots (list)."""
    sets, consistent = snapshot_sets(views)
    return {"engine": request.engine, "snapshot_sets": sets, "consistent": consistent,
            "replicas": [v.to_dict(request.name) for v in views]}


def frontend(request, engine_state):
    """The engine's subsystem entry (raw ``nvmf_get_subsystems`` answer) on the engine node, or None."""
    for entry in engine_state.raw.get("subsystems") or []:
        if entry.get("nqn") == request.nqn:
            return entry
    return None


def refuse_while_rebuilding(request, engine_state, views, what):
    """Refuse when the engine's RAID1 is still filling the head of a replica it rebuilds (mode WO): a
    snapshot of that head would not hold what the other replicas' snapshots hold, and a revert would cut
    the rebuild off. ``engine_state`` must hold the RAIDs."""
    raid = engine_state.raid(request.engine)
    process = raid.process if raid is not None else None
    if not process or process["type"] != "rebuild":
        return
    rebuilt = [v for v in views if process["target"] in bdev_refs(engine_state, v.ref.bdev)[0]]
    for view in rebuilt:
        view.fail("being rebuilt (WO)")
    raise EngineSnapshotRefusal(
        "replica %s of engine %s is being rebuilt (mode WO, %s%% copied): a snapshot of it would not be "
        "identical to the other replicas' ones, so engine snapshots cannot %s %s now. Wait until "
        "spdk.storage.spdk_engine reports every replica RW (wait: true) and run again; nothing was changed"
        % (", ".join(v.ref.name for v in rebuilt) or process["target"], request.engine,
           process.get("percent"), what, request.name))


def check_engine(request, engine_state, views, what):
    """Refuse, before any change, an engine-level run whose engine is not what ``request`` says.

    The engine's RAID must exist on this node, every replica given must be one of its members, and every
    member must be given: a mistyped engine name or a partial replica list would otherwise snapshot the
    replicas of a live volume without pausing its I/O, or record a set that misses replicas.
    ``engine_state`` must hold the RAIDs and bdevs.
    """
    raid = engine_state.raid(request.engine)
    if raid is None:
        raise EngineSnapshotRefusal(
            "engine %s has no RAID bdev on this node, so there is no engine to %s snapshot %s of: check the "
            "engine name and that the task runs on the engine node; nothing was changed"
            % (request.engine, what, request.name))
    found = set()
    outside = []
    for view in views:
        member = find_member(raid, bdev_refs(engine_state, view.ref.bdev)[0], configured_only=False)
        if member is None:
            view.fail("not a member of the engine's RAID")
            outside.append(view.ref.name)
        else:
            found.add(member["slot"])
    if outside:
        raise EngineSnapshotRefusal(
            "replica %s is not a member of engine %s's RAID (members: %s): list the engine's own replicas, or "
            "rebuild a replica that left it; nothing was changed"
            % (", ".join(outside), request.engine, ", ".join(m["name"] or "(missing)" for m in raid.members)))
    unlisted = [m["name"] for m in raid.members if m["slot"] not in found and m["configured"]]
    if unlisted:
        raise EngineSnapshotRefusal(
            "engine %s's RAID also holds %s, which replicas does not list: an engine snapshot must %s every "
            "replica at once; list all of them (or run without replicas to use the node record); nothing "
            "was changed" % (request.engine, ", ".join(unlisted), what))


class EngineNodes:
    """The engine node and the node of every remote replica (one per ``rpc_socket``), read once each.

    ``connect(rpc_socket)`` gives the client of a remote node; ``views`` lists the request's replicas
    in order once ``load`` ran.
    """

    def __init__(self, request, engine_client, connect):
        self.request = request
        self.engine = Node(ENGINE_NODE, engine_client, NODE_READS, is_engine_node=True)
        self.by_socket = {None: self.engine}
        self.connect = connect
        self.views = []

    def node_for(self, ref):
        key = None if ref.is_local else ref.rpc_socket
        if key not in self.by_socket:
            self.by_socket[key] = Node("node of %s (%s)" % (ref.name, ref.rpc_socket), self.connect(ref.rpc_socket),
                                       NODE_READS)
        return self.by_socket[key]

    def all(self):
        return list(self.by_socket.values())

    def of_views(self, views=None):
        """The nodes of ``views`` (default: every replica), each once, in the replicas' order."""
        out = []
        for view in self.views if views is None else views:
            if view.node not in out:
                out.append(view.node)
        return out

    def load(self, engine_parts=NODE_READS, remote_parts=NODE_READS, headless_snapshot=None):
        """Read every node once (one batch each); an unreachable replica node or a replica missing on its
        node refuses the run. With ``headless_snapshot`` (a revert that the record says was running) a
        replica whose head is gone but whose snapshot of that name is there counts as found: the revert
        clones that snapshot as its head."""
        self.views = [ReplicaView(ref, self.node_for(ref)) for ref in self.request.replicas]
        unreachable = []
        for node in self.all():
            try:
                node.load(engine_parts if node.is_engine_node else remote_parts)
            except SpdkRpcError as err:
                for view in self.views:
                    if view.node is node:
                        view.fail(str(err))
                        unreachable.append("%s (%s)" % (view.ref.name, err))
        if unreachable:
            raise EngineSnapshotRefusal(
                "cannot reach every replica of engine %s: %s. An engine snapshot must be taken, deleted or "
                "reverted on all replicas at once; bring the node back (or remove the replica from the engine "
                "with spdk.storage.spdk_engine) and run again; nothing was changed"
                % (self.request.engine, "; ".join(unreachable)))
        missing = [v for v in self.views if v.replica is None
                   and (headless_snapshot is None or v.snapshot(headless_snapshot) is None)]
        for view in missing:
            view.fail("replica not found on its node")
        if missing:
            raise EngineSnapshotRefusal(
                "replica %s of engine %s not found on its node (disk %s); nothing was changed"
                % (", ".join(v.ref.name for v in missing), self.request.engine,
                   ", ".join(str(v.ref.disk) for v in missing)))

    def reload(self, check_mode, views=None):
        """Read again the nodes of ``views`` (default: all) after a change; nothing in check mode."""
        for node in self.of_views(views):
            node.reload(check_mode)

    @property
    def rpc_calls(self):
        return sum(len(node.client.sent_calls) for node in self.all())

    def rpc_calls_per_node(self):
        return {node.label: len(node.client.sent_calls) for node in self.all()}

    def close(self):
        """Close the clients this run opened (the engine node's belongs to the module)."""
        for node in self.all():
            if not node.is_engine_node:
                node.client.close()

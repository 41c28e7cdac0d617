"""Nodes of an engine for engine-snapshot tests, and a wire that serves several nodes at once.

Every answer is shaped from a real SPDK v26.05 answer (more/introspection.jsonl): the lvstore of
L63, the lvol bdev of L61 (``disk1/vol1-r-a1b2c3d4``: thin, 1 allocated cluster, claimed), the
engine subsystem of L78 (ANA group 1, listener 127.0.0.1:4420) and the listener of
more/nvmf_listener_ns_ana.jsonl L43; names, UUIDs and the snapshot links (``base_snapshot``,
``clones``, as in L51/L52) are set per scenario.

The engine ``vol`` lives on node E (socket ``/e.sock``) with local replica ``vol-r0`` on ``disk0``;
remote replicas ``vol-r1`` and ``vol-r2`` live on nodes reached through ``/n1.sock`` and ``/n2.sock``.
"""
import copy
import json
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from tests.unit.expected_calls import (
    Expected,
    ModuleExit,
    Outcome,
    RpcScript,
    answer,
    error,
    expect,
    patch_module_args,
    result,
    transcript,
)

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import EngineSnapshotRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_views import ENGINE_NODE, ReplicaView
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_node import Node as SpdkNode
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import ReplicaRef
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    READ_ONLY_METHODS,
    SpdkConnectionError,
    SpdkRpcClient,
)

INTRO = "more/introspection.jsonl"
D2 = "more/d2_raid_sb_restart_clean_remove.jsonl"
D4 = "more/d4_raid_add_base_rebuild_alloc.jsonl"
E, N1, N2 = "/e.sock", "/n1.sock", "/n2.sock"
ENGINE_NQN = "nqn.2026-01.io.spdk-storage:vol"
HOST = "nqn.2026-01.io.spdk-storage:host:e"
REPLICAS = [{"name": "vol-r0", "disk": "disk0"},
            {"name": "vol-r1", "address": "127.0.0.2:4421", "rpc_socket": N1},
            {"name": "vol-r2", "address": "127.0.0.3:4421", "rpc_socket": N2}]
DOWN = object()
"""A node whose spdk_tgt does not answer (every call: connection refused)."""
LISTEN = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}


def request(**kwargs):
    """The request of engine ``vol`` for snapshot s2 over REPLICAS (options as keyword arguments)."""
    kwargs.setdefault("engine", "vol")
    kwargs.setdefault("name", "s2")
    kwargs.setdefault("replicas", REPLICAS)
    kwargs.setdefault("host_nqn", HOST)
    return EngineSnapshotRequest(**kwargs)


def _uuid(label):
    """A stable UUID-shaped string per label (tests compare them, SPDK never sees them)."""
    digits = "".join("%02x" % (ord(c) % 256) for c in label)[:32].ljust(32, "0")
    return "%s-%s-%s-%s-%s" % (digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:32])


def lvstore(disk):
    entry = copy.deepcopy(transcript(INTRO, 63)["response"]["result"][0])
    entry.update(name=disk, base_bdev=disk + "-aio", uuid=_uuid("lvs" + disk))
    return entry


def lvol(disk, name, snapshot=False, parent=None, clones=(), allocated=1, uuid=None):
    bdev = copy.deepcopy(next(b for b in transcript(INTRO, 61)["response"]["result"]
                              if "lvol" in b.get("driver_specific", {})))
    uuid = uuid or _uuid(disk + name)
    bdev.update(name=uuid, uuid=uuid, aliases=["%s/%s" % (disk, name)], claimed=not snapshot,
                claim_type=None if snapshot else "exclusive_write")
    info = bdev["driver_specific"]["lvol"]
    info.update(lvol_store_uuid=_uuid("lvs" + disk), base_bdev=disk + "-aio", snapshot=snapshot,
                clone=parent is not None, num_allocated_clusters=allocated)
    if parent is not None:
        info["base_snapshot"] = parent
    if snapshot:
        info["clones"] = list(clones)
    return bdev


def replica(disk, name, snapshots=(), head_uuid=None, extra_children=None):
    """Head ``name`` over the chain ``snapshots`` (oldest first), all ``<name>-snap-<s>``."""
    extra_children = extra_children or {}
    lvols = []
    chain = ["%s-snap-%s" % (name, s) for s in snapshots]
    for i, snap in enumerate(chain):
        child = chain[i + 1] if i + 1 < len(chain) else name
        lvols.append(lvol(disk, snap, snapshot=True, parent=chain[i - 1] if i else None,
                          clones=[child] + extra_children.get(snap, []), allocated=4))
    lvols.append(lvol(disk, name, parent=chain[-1] if chain else None, uuid=head_uuid))
    return lvols


def engine_subsystem(anagrpid=1):
    entry = copy.deepcopy(transcript(INTRO, 78)["response"]["result"][1])
    entry.update(nqn=ENGINE_NQN)
    entry["namespaces"][0].update(bdev_name="vol", name="vol", anagrpid=anagrpid)
    return entry


def listener(spare_state="inaccessible"):
    return {"address": dict(LISTEN),
            "ana_states": [{"ana_group": 1, "ana_state": "optimized"}, {"ana_group": 2, "ana_state": spare_state}]}


def raids(rebuilding=False, members=("disk0/vol-r0", "vol-r1n1", "vol-r2n1")):
    """The engine node's RAID read before a change: ``vol`` online over the scenario's three replicas (the
    recorded two-member RAID of d2 L17 with a third member shaped as its second), or rebuilding the remote
    replica vol-r2 into its controller's bdev ``vol-r2n1``, 53% done (d4 L31). ``members`` names the RAID's
    base bdevs in slot order."""
    if rebuilding:
        response = answer(D4, 31, {"vol-sb-e0": "vol", "vol-sb-r-remote2n1": "vol-r2n1",
                                   "disk1/vol-sb-r-local": "disk0/vol-r0"})
    else:
        response = answer(D2, 17, {"vol1-e0": "vol"})
    raid = response["result"][0]
    recorded = raid["base_bdevs_list"]
    while len(recorded) < len(members):
        recorded.insert(1, dict(copy.deepcopy(recorded[-1]), uuid=_uuid("member%d" % len(recorded))))
    for slot, name in enumerate(members):
        recorded[slot]["name"] = name
    raid.update(num_base_bdevs=len(members), num_base_bdevs_discovered=len(members),
                num_base_bdevs_operational=len(members))
    return expect("bdev_raid_get_bdevs", {"category": "all"}, response)


def replica_export(replica, disk):
    """The export of a remote replica on its node: the subsystem of L78 with the replica's NQN and its
    head ``<disk>/<replica>`` as namespace 1."""
    entry = copy.deepcopy(transcript(INTRO, 78)["response"]["result"][1])
    entry.update(nqn="nqn.2026-01.io.spdk-storage:" + replica)
    entry["namespaces"][0].update(bdev_name="%s/%s" % (disk, replica), name="%s/%s" % (disk, replica))
    return entry


def controllers(*names):
    """``bdev_nvme_get_controllers`` of the engine node: one controller per name, shaped as introspection L80."""
    return [answer(INTRO, 80, {"vol1-r-b2c3d4e5": name})["result"][0] for name in names]


def revert_nodes(snapshots=(("s2",),) * 3):
    """E, N1, N2 ready for a revert to s2: no frontend, each remote replica exported on its node."""
    out = nodes(snapshots=snapshots, frontend=False)
    out[N1].subsystems = [replica_export("vol-r1", "disk1")]
    out[N2].subsystems = [replica_export("vol-r2", "disk2")]
    return out


LOCK_NQN = "nqn.2026-01.io.spdk-storage:lock:vol"


class LockCalls:
    """The volume lock's RPCs on the engine node: taken with ``nvmf_create_subsystem`` (its serial carries the
    run's random token), read back and deleted at the end of the run (spdk_volume_lock)."""

    def __init__(self, nqn=LOCK_NQN):
        self.nqn = nqn
        self.serial = None
        self.holder = None

    def _taking(self, params):
        self.serial, self.holder = params.get("serial_number"), params.get("model_number")
        return (params.get("nqn") == self.nqn and params.get("allow_any_host") is False
                and str(self.serial).startswith("SL") and len(self.serial) == 20)

    def take(self):
        return expect("nvmf_create_subsystem", self._taking, result(True), "(the volume's lock)")

    def release(self):
        return [_LockRead(self), expect("nvmf_delete_subsystem", {"nqn": self.nqn}, result(True))]

    def absent(self=None, nqn=LOCK_NQN):
        """What check mode reads instead of taking it: no lock (-19 as SPDK answers an unknown NQN)."""
        nqn = self.nqn if self is not None else nqn
        return expect("nvmf_get_subsystems", {"nqn": nqn}, error(-19, "No such device"))


class _LockRead(Expected):
    """``nvmf_get_subsystems`` of the lock, answering the subsystem the run created."""

    def __init__(self, calls):
        super(_LockRead, self).__init__("nvmf_get_subsystems", {"nqn": calls.nqn}, None, "(release the lock)")
        self.calls = calls

    def reply(self, request_id):
        entry = {"nqn": self.calls.nqn, "subtype": "NVMe", "listen_addresses": [], "allow_any_host": False, "hosts": [],
                 "serial_number": self.calls.serial, "model_number": self.calls.holder, "namespaces": []}
        return {"jsonrpc": "2.0", "id": request_id, "result": [entry]}


class Node:
    """The three reads of one node, as expected calls."""

    def __init__(self, disk, lvols, subsystems=()):
        self.disk = disk
        self.lvols = lvols
        self.subsystems = list(subsystems)

    def reads(self):
        return [("bdev_lvol_get_lvstores", None, {"result": [lvstore(self.disk)]}),
                ("bdev_get_bdevs", None, {"result": self.lvols}),
                ("nvmf_get_subsystems", None, {"result": self.subsystems})]


def views(scenario, extra=None, replicas=None):
    """ReplicaViews of ``replicas`` (default REPLICAS) over the nodes of ``scenario`` as read, without any
    RPC; ``extra`` adds parts per address, e.g. ``{E: {"raids": [...]}}``."""
    states = {}
    for address, node in scenario.items():
        raw = {part: call[2]["result"] for part, call in zip(("lvstores", "bdevs", "subsystems"), node.reads())}
        raw.update((extra or {}).get(address) or {})
        label = ENGINE_NODE if address == E else "node of %s" % address
        states[address] = SpdkNode(label, None, tuple(raw), is_engine_node=address == E)
        states[address].state = NodeState(raw)
    out = []
    for entry in replicas or REPLICAS:
        ref = ReplicaRef.of(entry)
        out.append(ReplicaView(ref, states[E if ref.is_local else ref.rpc_socket]))
    return out


def nodes(snapshots=(("s1",), ("s1",), ("s1",)), frontend=True, anagrpid=1):
    """E, N1, N2 with the given snapshot chains per replica."""
    subs = [engine_subsystem(anagrpid)] if frontend else []
    return {E: Node("disk0", replica("disk0", "vol-r0", snapshots[0]), subs),
            N1: Node("disk1", replica("disk1", "vol-r1", snapshots[1])),
            N2: Node("disk2", replica("disk2", "vol-r2", snapshots[2]))}


class Wire:
    """``SpdkRpcClient._send`` for several nodes: each socket has its own expected-call script."""

    def __init__(self, scripts):
        self.down = {address for address, calls in scripts.items() if calls is DOWN}
        self.scripts = {address: RpcScript(calls) for address, calls in scripts.items() if calls is not DOWN}

    def send(self, client, requests):
        if client.address in self.down:
            raise SpdkConnectionError(requests[0]["method"], None, "cannot connect to %s after 1 attempt(s): "
                                      "Connection refused; is spdk_tgt running?" % client.address)
        if client.address not in self.scripts:
            raise AssertionError("a call went to %s, which no script expects" % client.address)
        return self.scripts[client.address].send(client, requests)

    def check(self):
        for address, script in self.scripts.items():
            if script.violation is not None:
                raise script.violation
            if script.pending:
                raise AssertionError("%s: expected calls never made: %s" % (address, script.pending))

    def methods(self, address):
        return [m for m, _p in self.scripts[address].received]

    def mutating(self, address):
        return [m for m in self.methods(address) if m not in READ_ONLY_METHODS]

    def patch(self):
        return mock.patch.object(SpdkRpcClient, "_send", autospec=True, side_effect=self.send)


def run_module(module, args, scripts, check_mode=False):
    """``module.main()`` against one script per node socket; returns (Outcome, Wire)."""
    wire = Wire(scripts)
    module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=True)
    module_args.setdefault("rpc_socket", E)

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(ansible_warnings.get_warning_messages())
        raise ModuleExit(kwargs, failed=False)

    def fail_json(self, msg, **kwargs):
        kwargs.update(msg=msg, failed=True, warnings=list(ansible_warnings.get_warning_messages()))
        raise ModuleExit(kwargs, failed=True)

    ansible_warnings._global_warnings.clear()
    with patch_module_args(module_args), wire.patch(), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        outcome = None
        try:
            module.main()
        except ModuleExit as done:
            outcome = Outcome(done.result, done.failed, wire.scripts[E])
        if outcome is None:
            raise AssertionError("main() returned without exit_json or fail_json")
        wire.check()
        return outcome, wire


def dumps(value):
    return json.dumps(value, sort_keys=True)

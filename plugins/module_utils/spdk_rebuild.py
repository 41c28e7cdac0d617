# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rebuild a replica of an engine on another node: plan, copy the snapshot chain, join the RAID.

The run lives on the engine node (like spdk_engine); the source replica's node and the
destination node are reached through their own ``rpc_socket``. docs/REBUILD.md explains the
strategies; this file implements them. What real SPDK v26.05 answered (recordings in
tests/unit/fixtures/transcripts/ and tests/emulator/fixtures/) and how it shapes the code:

* ``bdev_lvol_start_shallow_copy`` copies exactly the clusters a snapshot owns, whole, to the same
  offsets of any bdev (step4 L37-L39, more/d6): a destination lvol that starts with no cluster of
  its own ends with exactly the source's ``num_allocated_clusters``, so thin stays thin. The
  destination is an NVMe-oF namespace the source node attaches (step4 L33-L36);
* ``bdev_lvol_check_shallow_copy`` reports the final state once, then -19 (step4 L19-L21), and a
  restarted source target forgets every operation: a copy whose result was not read is copied
  again. A copy of the same snapshot into the same lvol writes the same clusters, so that is safe.
  A controller left by an interrupted run is detached first, which ends any copy still writing;
* the chain is rebuilt oldest first, each level in a clone of the destination's copy of the level
  below (or a new thin lvol for the root), then snapshotted under the same snapshot name
  (more/sbclone q3 L30-L38). ``bdev_lvol_snapshot`` turns the copied lvol into a clone of the new
  snapshot with no cluster of its own, which is exactly the next level's starting point. Nothing
  is ever written into a thin lvol that has no parent and then re-parented (after a partial-cluster
  write and ``bdev_lvol_set_parent`` it does not read the parent in the rest of that cluster,
  tests/emulator/fixtures/d1_set_parent_thin_no_parent.session.jsonl): shallow copies write whole
  clusters and the head is created as a clone;
* every copied head and snapshot carries the old RAID's superblock at LBA 0, read through from the
  source. ``bdev_raid_create`` and ``bdev_raid_add_base_bdev`` refuse such a base (more/sendcmd
  L39) until LBA 0 is zeroed; the one RPC way is ``bdev_nvme_send_cmd`` Write Zeroes through an
  NVMe-oF controller attached to that head (L45), for a local head through a temporary export of it
  attached by the same node (L49-L53). It bypasses bdev claims, so it is only ever aimed at a head
  that no RAID uses;
* ``bdev_raid_add_base_bdev`` always copies the whole volume
  (tests/emulator/fixtures/d4_raid_add_base_rebuild_alloc.session.jsonl): the online strategy
  accepts that for the head and keeps ``process`` progress; ``bdev_raid_set_options
  process_max_bandwidth_mb_sec`` caps it (D4: 32 MB/s gave ~2 s for 64 MiB);
* ``bdev_raid_delete`` with ``clear_sb`` zeroes the superblock of the members it holds, so after an
  offline copy the RAID is created again over members now known identical, with no copy at all;
* ``bdev_lvol_delete`` of a snapshot with exactly one child merges it into that child, with the head
  exported, and every byte reads the same (more/lvol_ops L122-L124); with two children it answers
  -32603 "Operation not permitted" (L126). Once the new member is RW the system snapshots are merged
  away like this on every member, and the replaced replica is deleted as spdk_replica state=absent
  deletes a replica (its node being down only leaves a warning).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import functools
import re
import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_model as em
from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils import spdk_superblock as sb
from ansible_collections.spdk.storage.plugins.module_utils.spdk_actions import RecordedSends
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    MAX_LVOL_NAME,
    NQN_PREFIX,
    SpdkInputError,
    replica_nqn,
    round_up,
    snapshot_lvol_name,
    split_snapshot_lvol_name,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError, SpdkRpcError

MIB = 1 << 20
STRATEGIES = ("auto", "offline", "online")
STEPS = ("plan", "copy", "join", "all")
TRANSIENT_SUFFIX = "-rebuild"       # the lvol being copied into, its export and controller
TEMP_SUFFIX = "-tmp"                # temporary loopback export to zero LBA 0 of a local head
ZEROING_WHY = "Write Zeroes to %s (the old RAID superblock read through from the copy)"
SYSTEM_PREFIX = "rb-"
SYSTEM_RE = re.compile(r"^rb-\d{14}$")
NODE_READS = ("lvstores", "bdevs", "subsystems", "controllers")
ENGINE_READS = NODE_READS + ("raids",)
REPLICA_MODEL = "spdk.storage replica"
COPY_RETRIES = 2                    # copies restarted after the target forgot the operation (-19)
DONE, COPIED, REBUILDING, PLANNED = "done", "copied", "rebuilding", "planned"
MAX_SAMPLES = 400                   # progress samples kept in the result
DISCONNECT_WAIT = 10.0              # seconds the engine node's host may take to leave a replaced export
# What became of the replaced replica (result rebuild.removed_replica.state).
REMOVED, ABSENT, KEPT, PENDING, UNREACHABLE, IN_USE, FAILED = (
    "removed", "absent", "kept", "pending", "unreachable", "in_use", "failed")
COPY_ERROR_HINTS = {                # what bdev_lvol_check_shallow_copy's error text means (more/d6 L89)
    "Operation not permitted": " (the source lvol is writable, not a snapshot)",
    "Invalid argument": " (the destination is smaller than the snapshot)",
}


class RebuildError(SpdkError):
    """Refused or failed; the message says why and what to do. Nothing beyond ``actions`` changed."""


# ---------------------------------------------------------------- names


def transient_name(replica):
    """The lvol each snapshot level is copied into (reserved suffix: no user name ends so)."""
    return replica + TRANSIENT_SUFFIX


def transient_nqn(replica):
    return NQN_PREFIX + transient_name(replica)


def rebuild_host_nqn(replica):
    """The host NQN the source node presents to the transient export (only that host is allowed)."""
    return nvmf.validate_host_nqn(NQN_PREFIX + "host:" + transient_name(replica))


def temp_name(replica):
    return replica + TEMP_SUFFIX


def check_transient_names(replica):
    """The reserved-suffix lvol and controller names must fit SPDK's 63 characters too."""
    for name in (transient_name(replica), temp_name(replica)):
        if len(name) > MAX_LVOL_NAME:
            raise SpdkInputError("replica name %r is too long for a rebuild: its transient lvol %r would have %d "
                                 "characters, SPDK allows %d" % (replica, name, len(name), MAX_LVOL_NAME))


def new_system_snapshot(now=None):
    """``rb-YYYYMMDDhhmmss`` (UTC): the system snapshot the offline strategy takes."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return SYSTEM_PREFIX + now.strftime("%Y%m%d%H%M%S")


def is_system_snapshot(name):
    return bool(name) and bool(SYSTEM_RE.match(name))


def superblock_clusters(cluster_size):
    """Clusters that the RAID superblock area (first 1 MiB) spans: the only place the RAID itself writes."""
    return round_up(em.SUPERBLOCK_AREA, cluster_size) // cluster_size


# ---------------------------------------------------------------- request


class Member:
    """One replica the engine has now: local (``disk``) or remote (``rpc_socket``, ``address``)."""

    def __init__(self, name, disk=None, address=None, rpc_socket=None, nqn=None):
        self.name = validate_lvol_name("replica", name)
        self.disk = validate_lvol_name("disk", disk) if disk else None
        self.address = address
        self.rpc_socket = rpc_socket
        if self.disk is None and not rpc_socket:
            raise SpdkInputError("replica %s: give disk (a replica on the engine node) or rpc_socket (how to reach "
                                 "its node)" % name)
        self.spec = None
        if not self.is_local and address:
            self.spec = em.ReplicaSpec(name, address=address, nqn=nqn)

    @property
    def is_local(self):
        return self.disk is not None

    @property
    def bdev(self):
        """Its bdev on the engine node."""
        return "%s/%s" % (self.disk, self.name) if self.is_local else self.name + "n1"


class Destination:
    """Where the new replica goes: a disk on the engine node, or on the node ``rpc_socket`` reaches."""

    def __init__(self, replica, disk, rpc_socket=None, listen_address=None, port=None,
                 port_range=nvmf.DEFAULT_PORT_RANGE):
        self.replica = validate_lvol_name("replica", replica)
        self.disk = validate_lvol_name("disk", disk)
        self.rpc_socket = rpc_socket
        self.listen_address = listen_address
        self.port = nvmf.validate_port(port)
        self.port_range = port_range
        nvmf.parse_port_range(port_range)
        if listen_address is None:
            raise SpdkInputError("destination.listen_address is required: the copy reaches the new replica over "
                                 "NVMe-oF/TCP on that address")
        nvmf.address_family(listen_address)

    @property
    def is_local(self):
        return not self.rpc_socket


class RebuildRequest:
    """Validated options of spdk_replica_rebuild; every check runs before any RPC."""

    def __init__(self, engine, source, destination, replicas, replace=None, strategy="auto", step="all",
                 node_name="localhost", host_nqn=None, listen_address=None, port_range=nvmf.DEFAULT_PORT_RANGE,
                 bandwidth_mb_sec=None, timeouts=None, keep_replaced=False):
        self.engine = validate_lvol_name("engine", engine)
        self.replicas = [m if isinstance(m, Member) else Member(**m) for m in replicas]
        names = [m.name for m in self.replicas]
        if len(set(names)) != len(names):
            raise SpdkInputError("a replica is listed twice in replicas: %s" % ", ".join(names))
        self.destination = destination if isinstance(destination, Destination) else Destination(**destination)
        self.source = self._member(source, "source")
        if self.destination.replica in names:
            raise SpdkInputError("destination replica %s is already one of the engine's replicas; give the new "
                                 "replica a new name (the replaced one goes in replace)" % self.destination.replica)
        self.replace = self._member(replace, "replace") if replace else None
        if self.replace is not None and self.replace.name == self.source.name:
            raise SpdkInputError("replace and source are both %s: the source must stay in the engine" % source)
        self.keep_replaced = bool(keep_replaced)
        if strategy not in STRATEGIES:
            raise SpdkInputError("strategy must be one of %s" % ", ".join(STRATEGIES))
        if step not in STEPS:
            raise SpdkInputError("step must be one of %s" % ", ".join(STEPS))
        self.strategy = strategy
        self.step = step
        self.node_name = node_name
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else em.default_host_nqn(node_name)
        self.listen_address = listen_address
        self.port_range = port_range
        nvmf.parse_port_range(port_range)
        if bandwidth_mb_sec is not None and bandwidth_mb_sec < 0:
            raise SpdkInputError("bandwidth_mb_sec must be 0 (unlimited) or more")
        self.bandwidth_mb_sec = bandwidth_mb_sec
        self.timeouts = dict(em.DEFAULT_TIMEOUTS)
        self.timeouts.update(timeouts or {})
        em.check_timeouts(self.timeouts["ctrlr_loss_timeout_sec"], self.timeouts["reconnect_delay_sec"],
                          self.timeouts["fast_io_fail_timeout_sec"])
        check_transient_names(self.destination.replica)

    def _member(self, name, what):
        for member in self.replicas:
            if member.name == name:
                return member
        raise SpdkInputError("%s replica %s is not in replicas (the engine's current replicas: %s)"
                             % (what, name, ", ".join(m.name for m in self.replicas) or "none"))

    @property
    def keep(self):
        """The engine's replicas that stay: all but the replaced one."""
        return [m for m in self.replicas if self.replace is None or m.name != self.replace.name]

    def dest_member(self, address=None):
        """The destination as a Member of the engine (local by disk, remote by its export)."""
        dest = self.destination
        if dest.is_local:
            return Member(dest.replica, disk=dest.disk)
        return Member(dest.replica, address=address, rpc_socket=dest.rpc_socket)


# ---------------------------------------------------------------- nodes


class Node:
    """A target the run talks to, with the last reads of it."""

    def __init__(self, label, client, parts=NODE_READS):
        self.label = label
        self.client = client
        self.parts = parts
        self.state = None

    def load(self):
        self.state = NodeState(fetch(self.client, self.parts))
        return self.state

    def supports(self, method):
        return self.client.supports(method)

    def lvol(self, disk, name):
        return self.state.lvol(disk, name)

    def disk(self, name):
        return self.state.disk(name)

    def controller(self, name):
        return next((c for c in self.state.controllers if c.name == name), None)

    def subsystems(self):
        return nvmf.parse_subsystems(self.state.raw.get("subsystems"))


# ---------------------------------------------------------------- pure planning


def chain_lvols(replica):
    """The snapshot lvols of the head's chain, oldest first ([] without snapshots)."""
    if replica is None:
        return []
    return [replica.snapshot(name).lvol for name in replica.chain]


def chain_names(replica):
    return [split_snapshot_lvol_name(lvol.name)[1] for lvol in chain_lvols(replica)]


def copied_levels(source_chain, dest_node, dest):
    """How many levels of ``source_chain`` the destination already holds, checking each one.

    A level is done when ``<dest>-snap-<name>`` exists as a snapshot whose parent is the level
    below and owns as many clusters as the source's snapshot (shallow copy is exact).
    """
    done, parent = 0, None
    for lvol in source_chain:
        name = split_snapshot_lvol_name(lvol.name)[1]
        target = snapshot_lvol_name(dest.replica, name)
        copy = dest_node.lvol(dest.disk, target)
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


def choose_strategy(requested, frontend_live, raid, dest_member_refs=()):
    """offline without a frontend (no I/O can happen), online with one; what was asked wins if possible."""
    if requested == "offline" and frontend_live:
        raise RebuildError(
            "strategy offline needs the engine without frontend (no I/O during the copy): set the engine's frontend "
            "to none first (spdk.storage.spdk_engine frontend=none), or use strategy online")
    if requested != "auto":
        return requested
    return "online" if frontend_live else "offline"


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


def raid_member_refs(engine_state, raid, member):
    """Every name the member's bdev has on the engine node, if it is a configured member of ``raid``."""
    refs, _bdev = em.bdev_refs(engine_state, member.bdev)
    return refs if em.find_member(raid, refs) else None


def rebuild_target(raid):
    return raid.process["target"] if raid is not None and raid.process else None


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
        crowded = [(replica.name, ops.snapshot_children(replica, snap)) for _i, replica, snap in holders
                   if len(ops.snapshot_children(replica, snap)) != 1]
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
    """``state`` once RAID ``name`` is gone: its members are no longer claimed by it (SPDK releases a base
    bdev's claim with the RAID, more/d2 L28-L30)."""
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


# ---------------------------------------------------------------- the run


class RebuildRun(RecordedSends):
    """One run of spdk_replica_rebuild on the engine node.

    ``clients``: {"engine": client, "source": client, "destination": client} (the same client may
    serve several roles). ``actions`` lists every mutating call sent (or, in check mode, planned).
    """

    def __init__(self, request, clients, check_mode=False, wait=True, wait_timeout=3600.0, wait_sleep=1.0,
                 system_snapshot=None, known_system_snapshots=(), sleep=time.sleep, clock=time.monotonic):
        self.request = request
        self.check_mode = check_mode
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.system_snapshot_name = system_snapshot
        self.known_system = set(known_system_snapshots)   # noted kind system in the engine node's record
        self.taken_system = set()   # system snapshots this run took (the system_snapshot option may name one)
        self.sleep = sleep
        self.clock = clock
        self.engine = Node("engine node", clients["engine"], ENGINE_READS)
        self._by_client = {id(clients["engine"]): self.engine}
        self.source = self._node("source node", clients["source"])
        self.dest = self._node("destination node", clients["destination"])
        self.member_nodes = {}
        self.actions = []
        self.warnings = []
        self.progress = []          # copy and rebuild samples, for the report
        self.copy_seconds = 0.0
        self.copied_clusters = 0
        self.strategy = None
        self.snapshot = None        # the system snapshot (offline)
        self.state = PLANNED
        self.dest_address = None
        self.rebuild_seconds = None
        self._transient_port = None
        self.before = None
        self.removed_replica = None     # what became of the replaced replica (after the join)
        self.replaced_controller = None  # the engine node's controller to it, once detached in this run
        self.merged = []                # system snapshots merged away (planned in check mode)

    def _node(self, label, client):
        """One Node per target: roles that share a target share its reads."""
        if id(client) not in self._by_client:
            self._by_client[id(client)] = Node(label, client)
        return self._by_client[id(client)]

    def node_for(self, member):
        """The node holding ``member``'s lvols (engine node for a local one), read on first use."""
        if member.is_local:
            return self.engine
        if member.name == self.request.source.name:
            return self.source
        node = self.member_nodes[member.name]
        if node.state is None:
            node.load()
        return node

    # --- sending ----------------------------------------------------------------------
    def read(self, node, method, params=None):
        return node.client.call(method, params)

    def sample(self, entry):
        """Keep a progress sample when something moved (a long wait polls many times)."""
        moved = {k: v for k, v in entry.items() if k != "seconds"}
        last = self.progress[-1] if self.progress else None
        if last is not None and {k: v for k, v in last.items() if k != "seconds"} == moved:
            return
        if len(self.progress) >= MAX_SAMPLES:
            del self.progress[1]
        self.progress.append(entry)

    # --- the whole run ----------------------------------------------------------------
    def run(self, member_clients):
        """Plan, then the copy and join steps the request asks for; returns the result view."""
        request = self.request
        for member in request.replicas:
            if not member.is_local and member.name != request.source.name:
                self.member_nodes[member.name] = self._node("node of %s" % member.name, member_clients[member.name])
        self._load_all()
        self._check_dest_disk()
        self.before = self.summary()
        self.strategy = self._strategy()
        if self._done():
            self.state = DONE
            self._cleanup_transient()
            self._after_join()
            return self.view()
        if request.step == "plan":
            self.state = PLANNED
            return self.view()
        if request.step in ("copy", "all"):
            self._copy_phase()
        if request.step in ("join", "all") and not self.check_mode:
            self._join_phase()
            self._reload(self.dest)    # the RAID rebuild allocated the head: report what it owns now
            self._after_join()
        elif request.step in ("join", "all"):
            self.warnings.append("check mode stops before joining: the join depends on what the copy creates")
            self._preview_replaced()
        return self.view()

    def _load_all(self):
        """The engine, source and destination nodes; other members' nodes only when needed."""
        for node in (self.engine, self.source, self.dest):
            if node.state is None:
                node.load()

    def _nodes(self):
        return list(self._by_client.values())

    def _reload(self, *nodes):
        if self.check_mode:
            return
        for node in dict.fromkeys(nodes):     # each node once, in the order given
            if node.state is not None:
                node.load()

    # --- planning -----------------------------------------------------------------------
    @property
    def raid(self):
        return self.engine.state.raid(self.request.engine)

    def frontend_live(self):
        return nvmf.parse_subsystems(self.engine.state.raw.get("subsystems")).get(
            NQN_PREFIX + self.request.engine) is not None

    def source_replica(self):
        member = self.request.source
        node = self.node_for(member)
        view = node.state.replica(self._disk_of(member, node), member.name)
        if view is None:
            raise RebuildError("source replica %s not found on the %s; check source and replicas" % (member.name,
                                                                                                     node.label))
        return view

    def _disk_of(self, member, node):
        if member.is_local:
            return member.disk
        heads = [lv for lv in node.state.lvols if lv.name == member.name and not lv.is_snapshot]
        return heads[0].lvstore if heads else None

    def dest_replica(self):
        return self.dest.state.replica(self.request.destination.disk, self.request.destination.replica)

    def dest_disk(self):
        return self.dest.disk(self.request.destination.disk)

    def _check_dest_disk(self):
        if self.dest_disk() is None:
            known = ", ".join(sorted(d.name for d in self.dest.state.disks)) or "none"
            raise RebuildError("disk %s not found on the destination node (disks: %s); attach it first with "
                               "spdk.storage.spdk_disk" % (self.request.destination.disk, known))

    def _strategy(self):
        return choose_strategy(self.request.strategy, self.frontend_live(), self.raid)

    def dest_refs(self):
        member = self.request.dest_member()
        refs, bdev = em.bdev_refs(self.engine.state, member.bdev)
        return refs if bdev is not None else set()

    def dest_mode(self):
        """RW, WO or None (not a member) of the destination in the engine's RAID."""
        raid = self.raid
        refs = self.dest_refs()
        if raid is None or not refs or em.find_member(raid, refs) is None:
            return None
        return em.WO if rebuild_target(raid) in refs else em.RW

    def _done(self):
        return self.dest_mode() == em.RW and self.raid.state == "online"

    # --- copy phase -------------------------------------------------------------------
    def _copy_phase(self):
        self._require_methods()
        source = self.source_replica()
        if self.strategy == "offline":
            self._offline_preconditions()
            self.snapshot = self._system_snapshot(source)
            self._reload(*self._nodes())
            source = self.source_replica() if not self.check_mode else source
        chain = chain_lvols(source)
        if self.check_mode and self.strategy == "offline" and self.snapshot not in chain_names(source):
            chain = chain + [None]   # the system snapshot, taken for real only outside check mode
        self._copy_chain(chain, source)
        self._cleanup_transient()
        self._dest_head(source)
        self._expose_head()
        self.state = PLANNED if self.check_mode else COPIED

    def _require_methods(self):
        needs = [(self.source, "bdev_lvol_start_shallow_copy", "copying snapshots (upstream shallow copy)"),
                 (self.engine, "bdev_nvme_send_cmd", "clearing the old RAID superblock of the copied head")]
        for node, method, what in needs:
            if not node.supports(method):
                raise RebuildError("the %s (%s) has no RPC %s, needed for %s" % (
                    node.label, node.client.version_label(), method, what))

    def _offline_preconditions(self):
        raid = self.raid
        if raid is None:
            source = self.source_replica()
            if reusable_system_snapshot(source, self.dest_disk().cluster_size) is None:
                raise RebuildError("engine %s has no RAID on the engine node: create or adopt it first "
                                   "(spdk.storage.spdk_engine); only a rebuild interrupted after it deleted the "
                                   "RAID resumes without one" % self.request.engine)
            return    # resumed after the RAID was deleted: the join checks every member
        if raid.state != "online":
            raise RebuildError("RAID %s is %s: bring its replicas' nodes back first (recover_node.yml)"
                               % (self.request.engine, raid.state))
        if raid.process:
            raise RebuildError("RAID %s is rebuilding %s (%s%%): wait until that rebuild finished"
                               % (self.request.engine, raid.process["target"], raid.process["percent"]))
        refs = em.bdev_refs(self.engine.state, self.request.source.bdev)[0]
        if em.find_member(raid, refs) is None:
            raise RebuildError("source replica %s is not an up-to-date member of RAID %s; choose a replica in RW "
                               "mode as source" % (self.request.source.name, self.request.engine))

    def rw_members(self):
        """The kept replicas that are configured RAID members (RW), source first."""
        raid = self.raid
        out = []
        for member in self.request.keep:
            if raid is not None and raid_member_refs(self.engine.state, raid, member) \
                    and rebuild_target(raid) not in em.bdev_refs(self.engine.state, member.bdev)[0]:
                out.append(member)
        out.sort(key=lambda m: m.name != self.request.source.name)
        return out

    def _system_snapshot(self, source):
        """Take (or find) the system snapshot on the source and every other RW member, no I/O in between."""
        cluster = self.dest_disk().cluster_size
        name = self.system_snapshot_name or reusable_system_snapshot(source, cluster) or new_system_snapshot()
        members = self.rw_members() if self.raid is not None else [self.request.source]
        for member in members:
            node = self.node_for(member)
            view = node.state.replica(self._disk_of(member, node), member.name)
            if view is None:
                raise RebuildError("replica %s not found on the %s" % (member.name, node.label))
            if view.snapshot(name) is not None:
                continue
            lvol_name = snapshot_lvol_name(member.name, name)
            self.send(node, "bdev_lvol_snapshot", {"lvol_name": view.head.alias, "snapshot_name": lvol_name},
                      "system snapshot %s of replica %s (the point the rebuild copies)" % (name, member.name))
            self.taken_system.add(name)
        return name

    # --- the chain ----------------------------------------------------------------------
    def _copy_chain(self, chain, source):
        dest = self.request.destination
        real = [lvol for lvol in chain if lvol is not None]
        start = copied_levels(real, self.dest, dest)
        if start == len(chain):
            return
        self._free_stale_controller()
        transient = self._transient_ready(real, start)
        self._expose_transient(transient)
        self._attach_transient()
        for level in range(start, len(chain)):
            lvol = chain[level]
            if lvol is None:
                self.actions.append({"node": self.dest.label, "method": "(copy)",
                                     "params": {"snapshot": self.snapshot},
                                     "why": "copy system snapshot %s, then snapshot it on the destination"
                                            % self.snapshot})
                continue
            transient = self._grow_transient(transient, lvol)
            self._copy_level(lvol, transient)

    def _transient_ready(self, chain, level):
        """The transient lvol, a clone of the copy of ``level - 1`` (a thin lvol for the root)."""
        dest = self.request.destination
        name = transient_name(dest.replica)
        parent = snapshot_lvol_name(dest.replica, split_snapshot_lvol_name(chain[level - 1].name)[1]) \
            if level > 0 else None
        lvol = self.dest.lvol(dest.disk, name)
        wanted = chain[level] if level < len(chain) else None
        if lvol is not None and (lvol.parent != parent or lvol.is_snapshot or (
                wanted is not None and lvol.allocated_clusters > wanted.allocated_clusters)):
            self._drop_transient_export()
            self.send(self.dest, "bdev_lvol_delete", {"name": lvol.alias},
                      "delete %s: left by an interrupted run for another level" % lvol.alias)
            lvol = None
        if lvol is None:
            if parent is None:
                size_mib = -(-(wanted.size if wanted else self.source_replica().size) // MIB)
                self.send(self.dest, "bdev_lvol_create",
                          {"lvol_name": name, "size_in_mib": size_mib, "thin_provision": True,
                           "lvs_name": dest.disk},
                          "create thin lvol %s/%s to copy the oldest snapshot into" % (dest.disk, name))
            else:
                self.send(self.dest, "bdev_lvol_clone", {"snapshot_name": "%s/%s" % (dest.disk, parent),
                                                         "clone_name": name},
                          "clone %s as %s to copy the next snapshot into" % (parent, name))
            self._reload(self.dest)
            lvol = self.dest.lvol(dest.disk, name)
        return lvol

    def _grow_transient(self, transient, lvol):
        """A snapshot taken after the volume grew is larger than its parent: grow (never shrink) to fit."""
        if transient is None or transient.size >= lvol.size:
            return transient
        self.send(self.dest, "bdev_lvol_resize", {"name": transient.alias, "size_in_mib": -(-lvol.size // MIB)},
                  "grow %s to the size of %s" % (transient.alias, lvol.alias))
        self._reload(self.dest)
        return self.dest.lvol(self.request.destination.disk, transient.name)

    def _transient_spec(self, transient):
        dest = self.request.destination
        return nvmf.ExposureSpec(
            nqn=transient_nqn(dest.replica), bdev=transient.alias if transient else "%s/%s" % (
                dest.disk, transient_name(dest.replica)),
            bdev_uuid=transient.uuid if transient else None, listen_address=dest.listen_address,
            port_range=dest.port_range, allowed_hosts=[rebuild_host_nqn(dest.replica)], model_number=REPLICA_MODEL)

    def _expose_transient(self, transient):
        spec = self._transient_spec(transient)
        subsystems = self.dest.subsystems()
        steps = nvmf.plan_exposure_with_client(self.dest.client, spec, subsystems)
        for step in steps:
            self.send(self.dest, step.method, step.params, step.why + " (transient, for the copy)",
                      tolerate=step.tolerate)
        self._transient_port = nvmf.choose_port(spec, subsystems.get(spec.nqn), subsystems)
        self._reload(self.dest)

    def _free_stale_controller(self):
        """A controller left by an interrupted run is detached: that also ends a copy it may still run."""
        name = transient_name(self.request.destination.replica)
        if self.source.controller(name) is None:
            return
        self.send(self.source, "bdev_nvme_detach_controller", {"name": name},
                  "detach %s left by an interrupted run (ends any copy still writing through it)" % name,
                  tolerate=lambda err: err.is_no_device())
        if not self.check_mode:
            em.wait_bdevs_gone(self.source.client, [name + "n1"], min(self.wait_timeout, 60.0), self.sleep,
                               self.clock)
            self.source.load()

    def _attach_transient(self):
        dest = self.request.destination
        name = transient_name(dest.replica)
        if self.source.controller(name) is not None and self.source.state.bdev_named(name + "n1") is not None:
            return
        params = {"name": name, "trtype": "tcp", "adrfam": nvmf.address_family(dest.listen_address).lower(),
                  "traddr": dest.listen_address, "trsvcid": str(self._transient_port),
                  "subnqn": transient_nqn(dest.replica), "hostnqn": rebuild_host_nqn(dest.replica)}
        params.update(self.request.timeouts)
        self.send(self.source, "bdev_nvme_attach_controller", params,
                  "attach the transient export on the source node (the copy's destination bdev %sn1)" % name)
        self._reload(self.source)

    def _copy_level(self, lvol, transient):
        """Shallow-copy source snapshot ``lvol`` into the transient lvol, then snapshot it on the destination."""
        dest = self.request.destination
        name = split_snapshot_lvol_name(lvol.name)[1]
        target = snapshot_lvol_name(dest.replica, name)
        bdev = transient_name(dest.replica) + "n1"
        for attempt in range(COPY_RETRIES + 1):
            started = self.send(self.source, "bdev_lvol_start_shallow_copy",
                                {"src_lvol_name": lvol.alias, "dst_bdev_name": bdev},
                                "copy the %d clusters of snapshot %s to the destination"
                                % (lvol.allocated_clusters, name))
            if started is None:    # check mode
                break
            if self._wait_copy(started["operation_id"], name, lvol):
                break
            if attempt == COPY_RETRIES:
                raise RebuildError("the copy of snapshot %s was lost %d times (the source target forgot the "
                                   "operation, -19): is the source node restarting?" % (name, attempt + 1))
        if not self.check_mode:
            self.dest.load()
            copied = self.dest.lvol(dest.disk, transient_name(dest.replica))
            if copied.allocated_clusters != lvol.allocated_clusters:
                raise RebuildError(
                    "after copying snapshot %s the destination lvol owns %d clusters, the source's snapshot %d: "
                    "refusing to snapshot an inexact copy; run again (the level is copied afresh)"
                    % (name, copied.allocated_clusters, lvol.allocated_clusters))
        self.send(self.dest, "bdev_lvol_snapshot",
                  {"lvol_name": "%s/%s" % (dest.disk, transient_name(dest.replica)), "snapshot_name": target},
                  "snapshot the copy as %s (same snapshot name as the source's)" % target)
        self._reload(self.dest)

    def _wait_copy(self, operation_id, name, lvol):
        """Poll until the copy completes (True), or the target forgot it (False); raise on error or timeout."""
        start = self.clock()
        deadline = start + self.wait_timeout
        polls = 0
        while True:
            try:
                status = self.read(self.source, "bdev_lvol_check_shallow_copy", {"operation_id": operation_id})
            except SpdkRpcError as err:
                if err.is_no_device():
                    self.warnings.append("the source target forgot copy %d of snapshot %s (-19): copied again"
                                         % (operation_id, name))
                    return False
                raise
            self.sample({"phase": "copy", "snapshot": name, "state": status.get("state"),
                         "copied_clusters": status.get("copied_clusters"),
                         "total_clusters": status.get("total_clusters"),
                         "seconds": round(self.clock() - start, 3)})
            if status.get("state") == "complete":
                self.copy_seconds += self.clock() - start
                self.copied_clusters += status.get("copied_clusters") or 0
                return True
            if status.get("state") == "error":
                raise RebuildError("the shallow copy of snapshot %s failed on the source node: %s%s; run again "
                                   "to copy it afresh" % (lvol.alias, status.get("error"),
                                                          COPY_ERROR_HINTS.get(status.get("error"), "")))
            if self.clock() + self.wait_sleep > deadline:
                raise RebuildError("the copy of snapshot %s is at %s of %s clusters after %ss (wait_timeout); run "
                                   "again to resume (finished snapshots are kept, this one is copied again)"
                                   % (name, status.get("copied_clusters"), status.get("total_clusters"),
                                      self.wait_timeout))
            polls += 1
            self.sleep(min(self.wait_sleep, 0.02 * 2 ** polls))   # small copies finish in milliseconds

    def _cleanup_transient(self):
        """Detach the source's controller, delete the transient export and lvol (leftovers of any run)."""
        dest = self.request.destination
        name = transient_name(dest.replica)
        if self.source.controller(name) is not None:
            self.send(self.source, "bdev_nvme_detach_controller", {"name": name},
                      "detach the transient controller %s" % name, tolerate=lambda err: err.is_no_device())
            if not self.check_mode:
                em.wait_bdevs_gone(self.source.client, [name + "n1"], min(self.wait_timeout, 60.0), self.sleep,
                                   self.clock)
                self.source.load()
        self._drop_transient_export()
        lvol = self.dest.lvol(dest.disk, name)
        if lvol is not None:
            self.send(self.dest, "bdev_lvol_delete", {"name": lvol.alias},
                      "delete the transient lvol %s (the copies are snapshots now)" % lvol.alias)
            self._reload(self.dest)

    def _drop_transient_export(self):
        nqn = transient_nqn(self.request.destination.replica)
        if self.dest.subsystems().get(nqn) is not None:
            self.send(self.dest, "nvmf_delete_subsystem", {"nqn": nqn}, "delete the transient export %s" % nqn)
            self._reload(self.dest)

    # --- the destination head -----------------------------------------------------------
    def _dest_head(self, source):
        """``<dest>`` = a clone of the copy of the source head's parent (a thin lvol without snapshots)."""
        dest = self.request.destination
        parent_name = self.snapshot if self.strategy == "offline" else source.parent
        parent = snapshot_lvol_name(dest.replica, parent_name) if parent_name else None
        head = self.dest.lvol(dest.disk, dest.replica)
        if head is not None and head.parent != parent:
            self._replace_stale_head(head, parent)
            head = None
        if head is None:
            if parent is None:
                self.send(self.dest, "bdev_lvol_create",
                          {"lvol_name": dest.replica, "size_in_mib": -(-source.size // MIB), "thin_provision": True,
                           "lvs_name": dest.disk},
                          "create the thin head %s/%s (the RAID rebuild fills it)" % (dest.disk, dest.replica))
            else:
                self.send(self.dest, "bdev_lvol_clone", {"snapshot_name": "%s/%s" % (dest.disk, parent),
                                                         "clone_name": dest.replica},
                          "clone %s as the new head %s" % (parent, dest.replica))
            self._reload(self.dest)
            head = self.dest.lvol(dest.disk, dest.replica)
        if head is not None and head.size < source.size:
            self.send(self.dest, "bdev_lvol_resize", {"name": head.alias, "size_in_mib": -(-source.size // MIB)},
                      "grow the head to the source's size")
            self._reload(self.dest)

    def _replace_stale_head(self, head, parent):
        """A head cloned from an older copy (the source got a snapshot since) is made again, if unused."""
        if self.dest_mode() is not None:
            raise RebuildError("the destination head %s is already a member of RAID %s but its parent is %s, not %s; "
                               "remove it from the engine first" % (head.alias, self.request.engine, head.parent,
                                                                    parent))
        if not head_is_fresh(head, self.dest_disk().cluster_size):
            raise RebuildError("lvol %s exists on the destination with %d clusters of its own data and parent %s: it "
                               "is not this rebuild's head; delete it or choose another destination name"
                               % (head.alias, head.allocated_clusters, head.parent))
        self._detach_dest_controller()
        nqn = replica_nqn(self.request.destination.replica)
        if self.dest.subsystems().get(nqn) is not None:
            self.send(self.dest, "nvmf_delete_subsystem", {"nqn": nqn}, "unexport the outdated head %s" % head.alias)
        self.send(self.dest, "bdev_lvol_delete", {"name": head.alias},
                  "delete the head %s cloned from %s: it must be a clone of %s" % (head.alias, head.parent, parent))

    def _detach_dest_controller(self):
        name = self.request.destination.replica
        if self.request.destination.is_local or self.engine.controller(name) is None:
            return
        self.send(self.engine, "bdev_nvme_detach_controller", {"name": name},
                  "detach the engine node's controller of %s" % name, tolerate=lambda err: err.is_no_device())
        if not self.check_mode:
            em.wait_bdevs_gone(self.engine.client, [name + "n1"], min(self.wait_timeout, 60.0), self.sleep,
                               self.clock)
            self.engine.load()

    def _expose_head(self):
        """Export the head to the engine node (as spdk_replica would: NQN, allowed host, port)."""
        dest = self.request.destination
        if dest.is_local:
            return
        head = self.dest.lvol(dest.disk, dest.replica)
        spec = nvmf.ExposureSpec(
            nqn=replica_nqn(dest.replica), bdev=head.alias if head else "%s/%s" % (dest.disk, dest.replica),
            bdev_uuid=head.uuid if head else None, listen_address=dest.listen_address, port=dest.port,
            port_range=dest.port_range, allowed_hosts=[self.request.host_nqn], model_number=REPLICA_MODEL)
        subsystems = self.dest.subsystems()
        for step in nvmf.plan_exposure_with_client(self.dest.client, spec, subsystems):
            self.send(self.dest, step.method, step.params, step.why + " (the new replica, for the engine)",
                      tolerate=step.tolerate)
        port = nvmf.choose_port(spec, subsystems.get(spec.nqn), subsystems)
        self.dest_address = "%s:%d" % (dest.listen_address, port) if ":" not in dest.listen_address \
            else "[%s]:%d" % (dest.listen_address, port)
        self._reload(self.dest)

    def _current_dest_address(self):
        if self.request.destination.is_local:
            return None
        exposure = self.dest.state.exposure(replica_nqn(self.request.destination.replica))
        if exposure is None or exposure.port is None:
            return None
        return "%s:%d" % (exposure.listen_address, exposure.port)

    # --- join phase -------------------------------------------------------------------
    def _join_phase(self):
        self.dest_address = self.dest_address or self._current_dest_address()
        head = self.dest.lvol(self.request.destination.disk, self.request.destination.replica)
        if head is None:
            raise RebuildError("the destination head %s/%s does not exist yet: run the copy step first"
                               % (self.request.destination.disk, self.request.destination.replica))
        self._attach_dest()
        if self.strategy == "offline":
            self._join_offline()
        else:
            self._join_online()

    def _attach_dest(self):
        """The engine node sees the new head: its own lvol, or a controller named after the replica."""
        member = self.request.dest_member(self.dest_address)
        if member.is_local or self.engine.state.bdev_named(member.bdev) is not None:
            return
        if member.spec is None:
            raise RebuildError("the new replica %s is not exported on the destination node: run the copy step "
                               "first" % member.name)
        if self.engine.controller(member.name) is not None:
            self._detach_dest_controller()
        self.send(self.engine, "bdev_nvme_attach_controller",
                  member.spec.attach_params(self.request.host_nqn, self.request.timeouts),
                  "attach the new replica %s from %s" % (member.name, member.address))
        self.read(self.engine, "bdev_wait_for_examine")
        self.engine.load()

    def _zero_lba0(self, member):
        """Clear the old RAID superblock in LBA 0 of ``member``'s head (never of a head a RAID uses)."""
        refs = em.bdev_refs(self.engine.state, member.bdev)[0]
        if any(em.find_member(raid, refs, configured_only=False) for raid in self.engine.state.raids):
            raise RebuildError("refusing to write LBA 0 of %s: a RAID uses it" % member.bdev)
        if member.is_local:
            self._zero_local(member)
            return
        self._write_zeroes(member.name, member.name)

    def _write_zeroes(self, controller, replica):
        what = "LBA 0 of %s" % replica
        sb.write_zeroes_lba0(functools.partial(self.send, self.engine), controller, what, ZEROING_WHY % what,
                             error=RebuildError)

    def _loopback(self, member):
        """The temporary export ``<prefix><replica>-tmp`` of a local head and its controller ``<replica>-tmp``."""
        return sb.Loopback(nqn=NQN_PREFIX + temp_name(member.name), controller=temp_name(member.name),
                           listen_address=self.request.listen_address, port_range=self.request.port_range,
                           host_nqn=self.request.host_nqn, model_number=REPLICA_MODEL)

    def _zero_local(self, member):
        """A local head has no controller: export it on this node, attach that export, zero, remove both."""
        if not self.request.listen_address:
            raise RebuildError("replica %s is local to the engine node: listen_address (this node's NVMe-oF "
                               "address) is needed for the temporary export that clears its LBA 0" % member.name)
        what = "LBA 0 of %s" % member.name
        try:
            self._loopback(member).zero_lba0(
                functools.partial(self.send, self.engine), self.engine.client, self.engine.state,
                self.engine.lvol(member.disk, member.name), what, ZEROING_WHY % what, error=RebuildError)
        finally:
            self.engine.load()

    # --- offline join -------------------------------------------------------------------
    def _join_offline(self):
        """Delete the RAID and create it again over the kept members plus the copy: no data is copied."""
        if self.frontend_live():
            raise RebuildError("the engine got a frontend during the offline rebuild: writes may have reached the "
                               "source after its system snapshot; set frontend none and run the rebuild again")
        source = self.source_replica()
        snapshot = source.parent
        self.snapshot = snapshot
        if snapshot != self.system_snapshot_name and not is_system_snapshot(snapshot):
            raise RebuildError("the source head %s is not a clone of a system snapshot: run the copy step first"
                               % source.name)
        chain = chain_names(source)
        cluster = self.dest_disk().cluster_size
        members = self._offline_members(chain, snapshot, cluster)
        dest_member = self.request.dest_member(self.dest_address)
        raid = self.raid
        if raid is not None:
            self._zero_lba0(dest_member)
            former = [m for m in raid.members if m["configured"]]
            self.send(self.engine, "bdev_raid_delete", {"name": self.request.engine, "clear_sb": True},
                      "delete RAID %s, clearing its members' superblocks (they and the copy are identical now)"
                      % self.request.engine)
            self.engine.load()
            self._detach_former(former, members + [dest_member])
            zero = []
        else:
            zero = members + [dest_member]      # resumed: clear every member, whatever it carries
        for member in zero:
            self._zero_lba0(member)
        self.send(self.engine, "bdev_raid_create",
                  {"name": self.request.engine, "raid_level": "raid1", "strip_size_kb": 0,
                   "base_bdevs": [m.bdev for m in members + [dest_member]], "superblock": True},
                  "create RAID %s over %s (no rebuild: the members hold identical data)"
                  % (self.request.engine, ", ".join(m.name for m in members + [dest_member])))
        self.engine.load()
        self.state = DONE if self._done() else REBUILDING

    def _offline_members(self, chain, snapshot, cluster):
        """Kept replicas known identical to the source; the destination is checked the same way."""
        members = []
        raid = self.raid
        rw = self.rw_members()
        for member in self.request.keep:
            if raid is not None and member not in rw:
                if member is self.request.source:
                    raise RebuildError("source replica %s is not an up-to-date member of RAID %s"
                                       % (member.name, self.request.engine))
                self.warnings.append("replica %s is not an up-to-date RAID member: left out of the new RAID"
                                     % member.name)
                continue
            node = self.node_for(member)
            view = node.state.replica(self._disk_of(member, node), member.name)
            problem = identity_problem(view, chain, snapshot, cluster)
            if problem:
                if member.name == self.request.source.name or raid is not None:
                    raise RebuildError("replica %s cannot join the re-created RAID: %s" % (member.name, problem))
                self.warnings.append("replica %s is left out of the new RAID: %s" % (member.name, problem))
                continue
            if raid is None and not member.is_local and self.engine.state.bdev_named(member.bdev) is None:
                self._attach_member(member)
            members.append(member)
        problem = identity_problem(self.dest_replica(), chain, snapshot, cluster)
        if problem:
            raise RebuildError("the new replica %s is not identical to the source: %s" % (
                self.request.destination.replica, problem))
        return members

    def _attach_member(self, member):
        if member.spec is None:
            raise RebuildError("replica %s is not attached on the engine node and its address is unknown: give "
                               "replicas[].address" % member.name)
        self.send(self.engine, "bdev_nvme_attach_controller",
                  member.spec.attach_params(self.request.host_nqn, self.request.timeouts),
                  "attach replica %s again" % member.name)
        self.read(self.engine, "bdev_wait_for_examine")
        self.engine.load()
        if self.raid is not None:
            raise RebuildError("attaching replica %s made SPDK assemble RAID %s from its superblock: the RAID is "
                               "back, run the rebuild again" % (member.name, self.request.engine))

    def _detach_former(self, former, members):
        """Controllers of former members that are not in the new RAID (the replaced replica) are detached."""
        keep = set()
        for member in members:
            keep |= em.bdev_refs(self.engine.state, member.bdev)[0]
        names = [self.request.replace.name] if self.request.replace and not self.request.replace.is_local else []
        for slot in former:
            ctrl = em.controller_of(self.engine.state.bdev_named(slot["name"] or "") or
                                    self.engine.state.bdev_named(slot["uuid"] or ""))
            if ctrl and slot["name"] not in keep and slot["uuid"] not in keep:
                names.append(ctrl)
        steps, bdevs = em.detach_steps(self.engine.state, names)
        for step in steps:
            self.send(self.engine, step.method, step.params, step.why + " (replaced replica)",
                      tolerate=step.tolerate)
            self._note_replaced_controller(step.params["name"])
        em.wait_bdevs_gone(self.engine.client, bdevs, min(self.wait_timeout, 60.0), self.sleep, self.clock)
        self.engine.load()

    def _note_replaced_controller(self, name):
        if self.request.replace is not None and name == self.request.replace.name:
            self.replaced_controller = name

    # --- online join --------------------------------------------------------------------
    def _join_online(self):
        """Free a slot (the replaced replica), clear the copy's LBA 0, add it: RAID1 rebuilds the head."""
        raid = self.raid
        if raid is None or raid.state != "online":
            raise RebuildError("RAID %s is not online (%s): the online strategy adds the new replica to a serving "
                               "RAID" % (self.request.engine, raid.state if raid else "absent"))
        member = self.request.dest_member(self.dest_address)
        if self.dest_mode() is None:
            self._free_slot(raid)
            self._zero_lba0(member)
            if self.request.bandwidth_mb_sec is not None:
                self.send(self.engine, "bdev_raid_set_options",
                          {"process_max_bandwidth_mb_sec": self.request.bandwidth_mb_sec},
                          "limit the RAID rebuild to %d MB/s (0: unlimited)" % self.request.bandwidth_mb_sec)
            self.send(self.engine, "bdev_raid_add_base_bdev",
                      {"raid_bdev": self.request.engine, "base_bdev": member.bdev},
                      "add %s to RAID %s (SPDK copies the whole volume into it)" % (member.name, self.request.engine))
            self.engine.load()
        self._wait_rebuild()

    def _free_slot(self, raid):
        """Take the replaced replica out of the RAID if it is still in; refuse when no slot is free."""
        replaced = self.request.replace
        if replaced is not None:
            refs = em.bdev_refs(self.engine.state, replaced.bdev)[0]
            slot = em.find_member(raid, refs)
            if slot is not None:
                if not raid_member_refs(self.engine.state, raid, self.request.source):
                    raise RebuildError("the source %s is not an RW member: removing %s would leave no up-to-date "
                                       "replica" % (self.request.source.name, replaced.name))
                self.send(self.engine, "bdev_raid_remove_base_bdev", {"name": slot["name"]},
                          "take the replaced replica %s out of RAID %s" % (replaced.name, self.request.engine))
                self.engine.load()
                raid = self.raid
            if not replaced.is_local:
                steps, bdevs = em.detach_steps(self.engine.state, [replaced.name])
                for step in steps:
                    self.send(self.engine, step.method, step.params, step.why + " (replaced replica)",
                              tolerate=step.tolerate)
                    self._note_replaced_controller(step.params["name"])
                em.wait_bdevs_gone(self.engine.client, bdevs, min(self.wait_timeout, 60.0), self.sleep, self.clock)
                self.engine.load()
                raid = self.raid
        if not any(not m["configured"] for m in raid.members):
            raise RebuildError("RAID %s has no free slot (%d of %d configured): name the replica the new one "
                               "replaces in replace" % (self.request.engine, raid.discovered or 0,
                                                        raid.num_base_bdevs or 0))

    def _wait_rebuild(self):
        start = self.clock()
        deadline = start + self.wait_timeout
        while True:
            mode = self.dest_mode()
            raid = self.raid
            process = raid.process if raid else None
            self.sample({"phase": "raid rebuild", "mode": mode,
                         "percent": process["percent"] if process else (100 if mode == em.RW else None),
                         "blocks": process["blocks"] if process else None,
                         "seconds": round(self.clock() - start, 3)})
            if mode == em.RW:
                self.state = DONE
                self.rebuild_seconds = self.clock() - start
                return
            if mode is None:
                raise RebuildError("the new replica left RAID %s during its rebuild (its node or the link failed); "
                                   "run the rebuild again" % self.request.engine)
            self.state = REBUILDING
            if not self.wait:
                return
            if self.clock() + self.wait_sleep > deadline:
                raise RebuildError("RAID %s is still rebuilding %s (%s%%) after %ss (wait_timeout); run again to wait "
                                   "more" % (self.request.engine, self.request.destination.replica,
                                             process["percent"] if process else "?", self.wait_timeout))
            self.sleep(self.wait_sleep)
            self.engine.state = NodeState(dict(self.engine.state.raw, **fetch(self.engine.client, ("raids",))))

    # --- after the join: the replaced replica goes, the system snapshots are merged ---------
    def _after_join(self):
        """Once the new replica is RW in an online RAID (this run's join, or an earlier one): remove the
        replaced replica and merge the system snapshots away. Only the join and all steps do it; a re-run
        finishes what an interrupted one left."""
        if self.state != DONE or self.request.step not in ("join", "all"):
            return
        self._remove_replaced()
        self._merge_system_snapshots()

    def is_system(self, name):
        """A system snapshot: ``rb-<UTC time>``, one noted kind system in the record, or one this run took."""
        return is_system_snapshot(name) or name in self.known_system or name in self.taken_system

    def _replaced_report(self, state):
        replaced = self.request.replace
        node = "engine node" if replaced.is_local else replaced.rpc_socket
        return {"name": replaced.name, "node": node, "state": state, "lvols": [], "export": None,
                "controller": self.replaced_controller, "error": None}

    def _replaced_node(self):
        replaced = self.request.replace
        return self.engine if replaced.is_local else self.member_nodes[replaced.name]

    def _remove_replaced(self):
        """Delete the replaced replica: the engine node's controller to it, then on its node its export, its
        head and its snapshots (what spdk_replica state=absent deletes). Its node being unreachable (the
        usual reason to rebuild) or a refusal is a warning: the rebuild itself is done."""
        replaced = self.request.replace
        if replaced is None:
            return
        if self.request.keep_replaced:
            self.removed_replica = self._replaced_report(KEPT)
            return
        slot = em.find_member(self.raid, em.bdev_refs(self.engine.state, replaced.bdev)[0])
        if slot is not None:
            self._replaced_left(IN_USE, "it is still a member of RAID %s (slot %s)"
                                % (self.request.engine, slot["slot"]))
            return
        self._detach_replaced_controllers()
        report = self.removed_replica = self._replaced_report(PENDING)
        node = self._replaced_node()
        try:
            steps = self._replaced_steps(node, report)
            for step in steps:
                self.send(node, step.method, step.params, step.why + " (the replaced replica)",
                          tolerate=step.tolerate)
        except SpdkConnectionError as err:
            self._replaced_left(UNREACHABLE, "its node (%s) cannot be reached: %s" % (report["node"], err))
            return
        except ops.SpdkRefusal as err:
            self._replaced_left(IN_USE, str(err))
            return
        except SpdkRpcError as err:
            self._replaced_left(FAILED, str(err))
            return
        if not steps:
            report["state"] = REMOVED if report["controller"] else ABSENT
            return
        report["state"] = PLANNED if self.check_mode else REMOVED
        if node is self.engine:
            self._reload(self.engine)

    def _replaced_left(self, state, why):
        """The replaced replica stays on its node: say so, and how to remove it later."""
        replaced = self.request.replace
        report = self.removed_replica = self.removed_replica or self._replaced_report(state)
        report.update(state=state, error=why)
        if self.state != DONE:      # check mode, before the join
            self.warnings.append("after the join the replaced replica %s could not be removed: %s"
                                 % (replaced.name, why))
            return
        self.warnings.append(
            "the replaced replica %s was not removed: %s. The rebuild itself is done. Its lvols and export stay on "
            "its node (%s) until removed: run this rebuild again once that is fixed (it finds the new replica RW and "
            "only removes the replaced one), or spdk.storage.spdk_replica name=%s state=absent on that node"
            % (replaced.name, why, report["node"], replaced.name))

    def _detach_replaced_controllers(self):
        """The engine node's controllers to the replaced replica (by its name or its export's NQN), unless a
        RAID holds their namespace. The join usually detached them already."""
        replaced = self.request.replace
        if replaced.is_local:
            return
        nqn = replica_nqn(replaced.name)
        state = self.engine.state
        bdevs = []
        for ctrl in state.controllers:
            if ctrl.name != replaced.name and not any(p["subnqn"] == nqn for p in ctrl.paths):
                continue
            bdev = state.bdev_named(ctrl.name + "n1")
            if bdev is not None and any(em.find_member(raid, em.bdev_refs(state, bdev["name"])[0],
                                                       configured_only=False) for raid in state.raids):
                continue
            self.send(self.engine, "bdev_nvme_detach_controller", {"name": ctrl.name},
                      "detach controller %s of the replaced replica %s" % (ctrl.name, replaced.name),
                      tolerate=lambda err: err.is_no_device())
            self.replaced_controller = ctrl.name
            if bdev is not None:
                bdevs.append(bdev["name"])
        if bdevs and not self.check_mode:
            em.wait_bdevs_gone(self.engine.client, bdevs, min(self.wait_timeout, 60.0), self.sleep, self.clock)
            self.engine.load()

    def _replaced_steps(self, node, report, after_join=False):
        """Read the replaced replica's node and plan its removal; fills ``report`` with what goes.
        ``after_join``: plan it as it will be once the join took the replica out of the engine's RAID."""
        replaced = self.request.replace
        state = node.state if node is self.engine else ops.load_state(node.client)
        if after_join and state.has("raids"):
            state = without_raid(state, self.request.engine)
        disk = replaced.disk or replaced_disk(state, replaced.name)
        head = ops.find_head(state, replaced.name, disk) if disk else None
        if head is not None and not state.has("raids"):
            state = ops.with_raids(node.client, state)
        hosts = self._hosts_left(node, state, replica_nqn(replaced.name)) if head is not None else ()
        engines = (lambda: [self.request.engine]) if node is self.engine else None
        plan = plan_replaced_removal(state, replaced.name, disk, hosts, engines)
        report["lvols"] = [s.params["name"] for s in plan.steps if s.method == "bdev_lvol_delete"]
        if any(s.method == "nvmf_delete_subsystem" for s in plan.steps):
            report["export"] = replica_nqn(replaced.name)
        return plan.steps

    def _hosts_left(self, node, state, nqn):
        """Hosts connected to the replaced export, once the engine node's own host left it (the target
        notices a detached controller a moment later; in check mode that detach is only planned)."""
        hosts = ops.connected_hosts(node.client, state, nqn)
        engine_host = self.request.host_nqn
        if self.check_mode:
            return [h for h in hosts if h != engine_host]
        deadline = self.clock() + DISCONNECT_WAIT
        while hosts and set(hosts) == {engine_host} and self.clock() < deadline:
            self.sleep(0.2)
            hosts = ops.connected_hosts(node.client, state, nqn)
        return hosts

    def _preview_replaced(self):
        """Check mode before the join: what the removal after it would delete (nothing is sent)."""
        replaced = self.request.replace
        if replaced is None or self.request.keep_replaced:
            return
        report = self.removed_replica = self._replaced_report(PLANNED)
        if not replaced.is_local and self.engine.controller(replaced.name) is not None:
            report["controller"] = replaced.name
        node = self._replaced_node()
        try:
            if not self._replaced_steps(node, report, after_join=True) and not report["controller"]:
                report["state"] = ABSENT
        except SpdkConnectionError as err:
            self._replaced_left(UNREACHABLE, "its node (%s) cannot be reached: %s" % (report["node"], err))
        except (ops.SpdkRefusal, SpdkRpcError) as err:
            self._replaced_left(IN_USE if isinstance(err, ops.SpdkRefusal) else FAILED, str(err))

    def _merge_system_snapshots(self):
        """Delete every system snapshot in the chains of the RAID's members, which SPDK does by merging it into
        its one child: only with the RAID online, rebuilding nothing, and every member one this run reaches."""
        members = self.rw_members() + [self.request.dest_member(self.dest_address)]
        problem = raid_is_whole(self.raid, [m.name for m in members])
        nodes, replicas = [], []
        try:
            for member in members[:-1]:
                node = self.node_for(member)
                nodes.append(node)
                replicas.append(node.state.replica(self._disk_of(member, node), member.name))
        except SpdkConnectionError as err:
            problem = problem or "the node of a replica cannot be reached: %s" % err
        nodes.append(self.dest)
        replicas.append(self.dest_replica())
        if problem is None and None in replicas:
            problem = "replica %s has no head" % members[replicas.index(None)].name
        system = sorted({n for r in replicas if r is not None for n in r.chain if self.is_system(n)})
        if problem is not None:
            if system:
                self.warnings.append("system snapshots %s are kept for now: %s; a later run of this rebuild merges "
                                     "them once every replica is RW" % (", ".join(system), problem))
            return
        deletes, kept = plan_system_merge(replicas, self.is_system)
        for name, why in sorted(kept.items()):
            self.warnings.append("system snapshot %s is kept on every replica: %s. Delete the clone made from it, "
                                 "then run this rebuild again to merge it" % (name, why))
        sent = 0
        try:
            for _name, index, alias, why in deletes:
                self.send(nodes[index], "bdev_lvol_delete", {"name": alias}, why)
                sent += 1
        except SpdkRpcError as err:
            self.warnings.append("merging the system snapshots stopped: %s; the replicas hold the same data, but "
                                 "not yet the same snapshots: run this rebuild again to finish" % err)
        unfinished = {d[0] for d in deletes[sent:]}
        self.merged = [name for name in system if name not in kept and name not in unfinished]
        self._reload(*[nodes[d[1]] for d in deletes[:sent]])

    # --- result -------------------------------------------------------------------------
    def summary(self):
        """The compact before/after object of ``--diff``."""
        dest = self.dest_replica()
        return {"destination": self.request.destination.replica, "present": dest is not None,
                "mode": self.dest_mode(), "chain": chain_names(dest)}

    def view(self):
        request = self.request
        source = self._safe(self.source_replica)
        dest = self.dest_replica()
        dest_disk = self.dest_disk()
        out = {
            "engine": request.engine,
            "strategy": self.strategy,
            "state": self.state,
            "source": request.source.name,
            "destination": request.destination.replica,
            "system_snapshot": self.snapshot,
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
            "mode": self.dest_mode(),
            "replica": self._engine_replica(),
            "snapshot_sets_match": chain_names(source) == chain_names(dest),
            "copy": {"clusters": self.copied_clusters, "seconds": round(self.copy_seconds, 3)},
            "rebuild_seconds": None if self.rebuild_seconds is None else round(self.rebuild_seconds, 3),
            "progress": self.progress,
            "merged_system_snapshots": list(self.merged),
            "removed_replica": self._removed_view(),
        }
        return out

    def _removed_view(self):
        if self.removed_replica is not None or self.request.replace is None:
            return self.removed_replica
        return self._replaced_report(KEPT if self.request.keep_replaced else PENDING)

    def predicted_chain(self):
        """Check mode: the new replica's chain once the run is through (the source's, plus the system
        snapshot about to be taken, without the system snapshots the end of the run merges away)."""
        chain = chain_names(self._safe(self.source_replica))
        if self.snapshot and self.snapshot not in chain:
            chain.append(self.snapshot)
        if self.state == DONE:
            return [name for name in chain if name not in self.merged]
        if self.request.step not in ("join", "all"):
            return chain
        return [name for name in chain if not self.is_system(name)]

    def _engine_replica(self):
        """The new replica as spdk_engine's replicas[] entry."""
        dest = self.request.destination
        if dest.is_local:
            return {"name": dest.replica, "disk": dest.disk}
        entry = {"name": dest.replica, "address": self.dest_address or self._current_dest_address()}
        if dest.rpc_socket:
            entry["rpc_socket"] = dest.rpc_socket
        return entry

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except RebuildError:
            return None

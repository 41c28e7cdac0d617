# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RebuildContext: what the phases of one rebuild share. The nodes it talks to (each read once in
one batch, again only after a change), the recorder of the steps it sends, how it waits, and the
record of the run that the result reports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import RW
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_wait import wait_bdevs_gone
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import NQN_PREFIX
from ansible_collections.spdk.storage.plugins.module_utils.spdk_node import Node
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    DETACH_TIMEOUT,
    ENGINE_READS,
    MAX_SAMPLES,
    NODE_READS,
    PLANNED,
    RebuildError,
    is_system_snapshot,
    transient_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    chain_lvols,
    copied_levels,
    member_mode,
    rw_members,
    space_needed,
    space_problem,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter


class RebuildContext:
    """Nodes, recorder, waits and the run's record, for the phases of one run of spdk_replica_rebuild.

    ``clients``: {"engine": client, "source": client, "destination": client} (the same client may serve
    several roles: roles that share a target share one Node and its reads).
    """

    def __init__(self, request, clients, recorder, wait=True, wait_timeout=3600.0, wait_sleep=1.0,
                 system_snapshot=None, known_system_snapshots=(), sleep=time.sleep, clock=time.monotonic):
        self.request = request
        self.recorder = recorder
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.sleep = sleep
        self.clock = clock
        self.system_snapshot_name = system_snapshot
        self.known_system = set(known_system_snapshots)   # noted kind system in the engine node's record
        self.taken_system = set()   # system snapshots this run took (the system_snapshot option may name one)
        self.engine = Node("engine node", clients["engine"], ENGINE_READS, is_engine_node=True)
        self._by_client = {id(clients["engine"]): self.engine}
        self.source = self._node("source node", clients["source"])
        self.dest = self._node("destination node", clients["destination"])
        self.member_nodes = {}
        # the run's record, for the result
        self.warnings = []
        self.progress = []          # copy and rebuild samples
        self.copy_seconds = 0.0
        self.copied_clusters = 0
        self.strategy = None
        self.snapshot = None        # the system snapshot (offline)
        self.state = PLANNED
        self.dest_address = None
        self.rebuild_seconds = None
        self.removed_replica = None     # what became of the replaced replica (after the join)
        self.replaced_controller = None  # the engine node's controller to it, once detached in this run
        self.merged = []                # system snapshots merged away (planned in check mode)
        self.lock = None                # the RunLock of the volume (its lease is kept alive while waiting)

    @property
    def check_mode(self):
        return self.recorder.check_mode

    # --- nodes ----------------------------------------------------------------------------
    def _node(self, label, client):
        if id(client) not in self._by_client:
            self._by_client[id(client)] = Node(label, client, NODE_READS)
        return self._by_client[id(client)]

    def add_member_nodes(self, member_clients):
        """The nodes of the other remote replicas, read on first use."""
        for member in self.request.replicas:
            if not member.is_local and member.name != self.request.source.name:
                self.member_nodes[member.name] = self._node("node of %s" % member.name, member_clients[member.name])

    def load_all(self):
        """The engine, source and destination nodes; other replicas' nodes only when needed."""
        for node in (self.engine, self.source, self.dest):
            if node.state is None:
                node.load()

    def nodes(self):
        return list(self._by_client.values())

    def reload(self, *nodes):
        """Read again what changed (each node once, in the order given); in check mode nothing changed."""
        for node in dict.fromkeys(nodes):
            if node.state is not None:
                node.reload(self.check_mode)

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

    # --- sending and waiting ------------------------------------------------------------------
    def send(self, node, step):
        return self.recorder.send(node, step)

    def run(self, node, steps):
        """Send ``steps`` to ``node``; whether there were any."""
        self.recorder.run(node, steps)
        return bool(steps)

    def waiter(self, timeout=None, interval=None, backoff=None):
        return Waiter(self.wait_timeout if timeout is None else timeout,
                      self.wait_sleep if interval is None else interval, backoff=backoff,
                      clock=self.clock, sleep=self.sleep, heartbeat=self.keep_lock_alive)

    def keep_lock_alive(self):
        if self.lock is not None:
            self.lock.keep_alive()

    def bdevs_gone(self, node, bdevs):
        """After a detach: wait until the namespace bdevs are unregistered, then read the node again."""
        if self.check_mode:
            return
        wait_bdevs_gone(node.client, bdevs, min(self.wait_timeout, DETACH_TIMEOUT), self.sleep, self.clock)
        node.load()

    def sample(self, entry):
        """Keep a progress sample when something moved (a long wait polls many times)."""
        moved = {k: v for k, v in entry.items() if k != "seconds"}
        last = self.progress[-1] if self.progress else None
        if last is not None and {k: v for k, v in last.items() if k != "seconds"} == moved:
            return
        if len(self.progress) >= MAX_SAMPLES:
            del self.progress[1]
        self.progress.append(entry)

    # --- what was read ------------------------------------------------------------------------
    @property
    def raid(self):
        return self.engine.state.raid(self.request.engine)

    def frontend_live(self):
        return self.engine.state.exposure(NQN_PREFIX + self.request.engine) is not None

    def replica_view(self, member):
        """``member``'s model Replica on its node, or None."""
        node = self.node_for(member)
        return node.state.replica(self.disk_of(member, node), member.name)

    def disk_of(self, member, node):
        if member.is_local:
            return member.disk
        heads = [lv for lv in node.state.lvols if lv.name == member.name and not lv.is_snapshot]
        return heads[0].lvstore if heads else None

    def source_replica(self):
        view = self.replica_view(self.request.source)
        if view is None:
            raise RebuildError("source replica %s not found on the %s; check source and replicas"
                               % (self.request.source.name, self.node_for(self.request.source).label))
        return view

    def dest_replica(self):
        return self.dest.state.replica(self.request.destination.disk, self.request.destination.replica)

    def dest_disk(self):
        return self.dest.disk(self.request.destination.disk)

    def check_dest_disk(self):
        if self.dest_disk() is None:
            known = ", ".join(sorted(d.name for d in self.dest.state.disks)) or "none"
            raise RebuildError("disk %s not found on the destination node (disks: %s); attach it first with "
                               "spdk.storage.spdk_disk" % (self.request.destination.disk, known))

    def check_dest_space(self):
        """Refuse, before any change, a destination disk that cannot hold what the rebuild still allocates:
        a RAID1 rebuild onto a full disk fails its writes, and SPDK drops the new member again."""
        source, dest, disk = self.source_replica(), self.request.destination, self.dest_disk()
        chain = chain_lvols(source)
        source_disk = self.node_for(self.request.source).disk(source.disk)
        dest_replica = self.dest_replica()
        copies, head = space_needed(
            source, source_disk.cluster_size if source_disk else disk.cluster_size,
            chain[copied_levels(chain, self.dest.state, dest):], self.strategy, disk.cluster_size,
            dest_head=dest_replica.head if dest_replica else None,
            transient=self.dest.lvol(dest.disk, transient_name(dest.replica)))
        problem = space_problem(disk, self.dest.label, copies, head, self.strategy)
        if problem:
            raise RebuildError(problem)

    def dest_mode(self):
        """RW, WO or None (not a member) of the destination in the engine's RAID."""
        return member_mode(self.engine.state, self.raid, self.request.dest_member())

    def is_done(self):
        return self.dest_mode() == RW and self.raid.state == "online"

    def rw_members(self):
        """The kept replicas that are configured RAID members (RW), source first."""
        return rw_members(self.engine.state, self.raid, self.request.keep, self.request.source)

    def is_system(self, name):
        """A system snapshot: ``rb-<UTC time>``, one noted kind system in the record, or one this run took."""
        return is_system_snapshot(name) or name in self.known_system or name in self.taken_system

    def note_replaced_controller(self, name):
        if self.request.replace is not None and name == self.request.replace.name:
            self.replaced_controller = name

"""spdk_replica_rebuild end to end on three emulated nodes (127.0.0.1-3), through main() on real sockets.

n0 is the engine node and holds replica r0 (local), n1 holds r1 (remote), n2 is the destination of
the rebuild: r1 is replaced by r2. Data goes in through the engine's frontend with spdk_io; after
the rebuild the engine is deleted (replica data and superblocks stay) and the source and the new
replica are read through their own exports, byte for byte, from the RAID data offset (1 MiB).
Once the new replica is RW the rebuild removes the replaced one (lvols, export, the engine node's
controller) and merges its system snapshot away on every replica.
"""
import json
import os
import threading
import time

import pytest

from ansible_collections.spdk.storage.plugins.modules import (
    spdk_engine,
    spdk_replica,
    spdk_replica_rebuild,
    spdk_snapshot,
)
from tests.integration.volume_helpers import (
    APP_HOST,
    MIB,
    NQN_PREFIX,
    SB,
    TIMEOUTS,
    Nodes,
    emulated,
    frontend,
    port_block,
    sha256_in,
    spdk_io,
    start_writer,
    wait_for,
)

VOLUME = 16 * MIB
PORT_RANGE = port_block(23000, 480)[1]
ENGINE_HOST = NQN_PREFIX + "host:n0"
pytestmark = [pytest.mark.integration]


class Cluster(Nodes):
    """Three emulated nodes with a two-replica engine vol1 on n0 (r0 local, r1 on n1); n2 is empty."""

    disk_size = 128 * MIB

    def replica(self, node, name, expose=True, allowed=(ENGINE_HOST,)):
        args = dict(name=name, disk="disk%d" % node.idx, size="17MiB")
        if expose:
            args.update(expose=True, listen_address=node.addr, port_range=PORT_RANGE, allowed_hosts=list(allowed))
        return self.ok(spdk_replica, node, **args).result["replica"]

    def engine(self, frontend, replicas, **extra):
        n0 = self.nodes[0]
        return self.ok(spdk_engine, n0, name="vol1", size="16MiB", replicas=replicas, frontend=frontend,
                       listen_address=n0.addr, allowed_hosts=[APP_HOST], node_name="n0", record_dir=self.records,
                       port_range=PORT_RANGE, **dict(TIMEOUTS, **extra))

    def build(self):
        n0, n1, n2 = self.start_node(0), self.start_node(1), self.start_node(2)
        for node in (n0, n1, n2):
            self.disk(node)
        self.replica(n0, "r0", expose=False)
        export = self.replica(n1, "r1")["exposure"]
        self.replicas = [{"name": "r0", "disk": "disk0"},
                         {"name": "r1", "address": "%s:%d" % (n1.addr, export["port"]), "rpc_socket": n1.sock}]
        self.frontend = frontend(self.engine("nvmf", self.replicas))
        return n0, n1, n2

    def snapshot_both(self, name):
        """The same replica-level snapshot on r0 and r1 (the engine has no frontend: no I/O between)."""
        self.ok(spdk_snapshot, self.nodes[0], name=name, replica="r0")
        self.ok(spdk_snapshot, self.nodes[1], name=name, replica="r1")

    def rebuild(self, check_mode=False, failed_ok=False, **extra):
        n0, n2 = self.nodes[0], self.nodes[2]
        args = dict(engine="vol1", replicas=self.replicas, source="r0", replace="r1", node_name="n0",
                    listen_address=n0.addr, port_range=PORT_RANGE, record_dir=self.records, wait_sleep=0.05,
                    rpc_socket=n0.sock,
                    destination={"replica": "r2", "disk": "disk2", "rpc_socket": n2.sock,
                                 "listen_address": n2.addr, "port_range": PORT_RANGE})
        args.update(TIMEOUTS)
        args.update(extra)
        outcome = self.module(spdk_replica_rebuild, n0, check_mode=check_mode, **args)
        if not failed_ok:
            assert not outcome.failed, outcome.msg
        report(outcome)
        return outcome

    def lvols(self, node):
        return {lv["name"]: lv for lv in node.call("bdev_lvol_get_lvols")}

    def replica_image(self, node, name):
        """sha256 of the replica's data region read through its own export (engine deleted first)."""
        export = self.replica(node, name, allowed=(ENGINE_HOST,))["exposure"]
        return sha256_in(spdk_io("read", export["nqn"], node.addr, export["port"], "--offset", str(SB),
                                 "--length", str(VOLUME), "--sha256", "--hostnqn", ENGINE_HOST).stdout)

    def source_and_new_replica_hold_the_same_data(self, node=None, name="r2"):
        """Delete the engine (replica data and superblocks stay), then compare r0 and the new replica byte
        for byte."""
        n0 = self.nodes[0]
        self.ok(spdk_engine, n0, name="vol1", state="absent", node_name="n0", record_dir=self.records)
        return self.replica_image(n0, "r0") == self.replica_image(node or self.nodes[2], name)

    def written_around_a_snapshot(self, offset, length):
        """3 MiB written, replica snapshot s1 on r0 and r1, ``length`` bytes written at ``offset`` after it;
        the engine is left without frontend (as the offline strategy needs). The volume's sha256 as the host
        read it before that."""
        nqn, addr, port = self.frontend
        spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(3 * MIB), "--seed", "A")
        self.engine("none", self.replicas)
        self.snapshot_both("s1")
        self.engine("nvmf", self.replicas)
        spdk_io("write", nqn, addr, port, "--offset", str(offset), "--length", str(length), "--seed", "B")
        written = self.volume_sha256()
        self.engine("none", self.replicas)
        return written

    def volume_sha256(self):
        """sha256 of the whole volume as the host reads it through the frontend."""
        nqn, addr, port = self.frontend
        return sha256_in(spdk_io("read", nqn, addr, port, "--offset", "0", "--length", str(VOLUME),
                                 "--sha256").stdout)

    def calls(self, node, since):
        return node.rpc_log()[since:]

    def exports(self, node):
        return [s["nqn"] for s in node.call("nvmf_get_subsystems") if s.get("subtype") != "Discovery"]

    def controllers(self, node):
        return [c["name"] for c in node.call("bdev_nvme_get_controllers")]

    def system_snapshots(self, node):
        return sorted(name for name in self.lvols(node) if "-snap-rb-" in name)

    def snapshot_sets(self, replicas):
        """What engine-level spdk_snapshot lists for vol1: each replica's snapshots, and whether they match."""
        listed = self.ok(spdk_snapshot, self.nodes[0], engine="vol1", replicas=replicas, node_name="n0",
                         record_dir=self.records).result["engine"]
        return listed["snapshot_sets"], listed["consistent"]


def report(outcome):
    """The run's figures (shown with pytest -s): RPCs per node, copy and rebuild times, allocation."""
    result = outcome.result
    view = result.get("rebuild") or {}
    print("\nrebuild %s: %s%s rpc_calls=%s %s copy=%s rebuild_seconds=%s clusters=%s" % (
        view.get("strategy"), view.get("state"), " FAILED: " + outcome.msg[:160] if outcome.failed else "",
        result.get("rpc_calls"), sorted((result.get("rpc_calls_by_node") or {}).values()), view.get("copy"),
        view.get("rebuild_seconds"), view.get("allocated_clusters")))


@pytest.fixture
def cluster():
    yield from emulated(Cluster, "rb-")


def mutating(entries):
    return [e["method"] for e in entries if e.get("mutating")]


def test_offline_rebuild_copies_the_chain_thin_and_recreates_the_raid_without_a_copy(cluster):
    n0, n1, n2 = cluster.build()
    written = cluster.written_around_a_snapshot(5 * MIB, 64 * 1024)

    marks = [len(node.rpc_log()) for node in (n0, n1, n2)]
    planned = cluster.rebuild(check_mode=True)
    assert planned.changed and planned.result["rebuild"]["strategy"] == "offline"
    assert [mutating(node.rpc_log()[mark:]) for node, mark in zip((n0, n1, n2), marks)] == [[], [], []]
    assert planned.result["rebuild"]["removed_replica"] == {
        "name": "r1", "node": n1.sock, "state": "planned", "lvols": ["disk1/r1", "disk1/r1-snap-s1"],
        "export": NQN_PREFIX + "r1", "controller": "r1", "error": None}

    done = cluster.rebuild()
    view = done.result["rebuild"]
    assert view["state"] == "done" and view["mode"] == "RW"
    snapshot = view["system_snapshot"]
    # The system snapshot served the copy; once the RAID is whole again it is merged into every head.
    assert view["merged_system_snapshots"] == [snapshot]
    assert view["source_chain"] == view["destination_chain"] == ["s1"]
    assert cluster.system_snapshots(n0) == cluster.system_snapshots(n2) == []
    # Thin stays thin: every copy owns exactly the clusters of the source's snapshot, and the merge gave
    # both heads the same clusters (the system snapshot's and the superblock's).
    clusters = view["allocated_clusters"]
    assert clusters["destination"] == clusters["source"] and clusters["destination_head"] == clusters["source_head"]
    raid = n0.call("bdev_raid_get_bdevs", category="all")[0]
    assert raid["state"] == "online" and raid["num_base_bdevs_discovered"] == 2 and "process" not in raid
    assert sorted(cluster.lvols(n2)) == ["r2", "r2-snap-s1"]
    assert cluster.exports(n2) == [NQN_PREFIX + "r2"]                     # no transient export left
    # The replaced replica is gone: the engine node's controller, its export, its head and snapshot.
    assert cluster.controllers(n0) == ["r2"]
    assert cluster.lvols(n1) == {} and cluster.exports(n1) == []
    assert view["removed_replica"] == {
        "name": "r1", "node": n1.sock, "state": "removed", "lvols": ["disk1/r1", "disk1/r1-snap-s1"],
        "export": NQN_PREFIX + "r1", "controller": "r1", "error": None}
    assert done.warnings == []

    again = cluster.rebuild()
    assert again.changed is False and again.result["rebuild"]["state"] == "done"
    assert again.result["rebuild"]["removed_replica"]["state"] == "absent"
    print("offline no-op RPCs:", again.result["rpc_calls"], again.result["rpc_calls_by_node"])

    new_replicas = [cluster.replicas[0], dict(view["replica"], rpc_socket=n2.sock)]
    assert cluster.snapshot_sets(new_replicas) == ({"r0": ["s1"], "r2": ["s1"]}, True)
    after = cluster.engine("nvmf", new_replicas)
    assert after.result["engine"]["state"] == "healthy"
    cluster.frontend = frontend(after)
    assert cluster.volume_sha256() == written
    assert cluster.source_and_new_replica_hold_the_same_data()


def test_online_rebuild_keeps_serving_copies_the_snapshots_and_lets_raid1_rebuild_the_head(cluster):
    n0, n1, n2 = cluster.build()
    nqn, addr, port = cluster.frontend
    spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(2 * MIB), "--seed", "A")
    cluster.engine("none", cluster.replicas)
    cluster.snapshot_both("s1")
    cluster.engine("nvmf", cluster.replicas)
    spdk_io("write", nqn, addr, port, "--offset", str(4 * MIB), "--length", str(MIB), "--seed", "B")

    log = os.path.join(cluster.workdir, "writer.log")
    writer = start_writer(nqn, addr, port, log, "--duration", "30", "--queue-depth", "2", "--timeout", "20")
    try:
        time.sleep(0.3)
        done = cluster.rebuild(bandwidth_mb_sec=8)
    finally:
        writer.terminate()
        writer.communicate(timeout=20)
    view = done.result["rebuild"]
    assert view["strategy"] == "online" and view["state"] == "done" and view["mode"] == "RW"
    assert view["source_chain"] == view["destination_chain"] == ["s1"] and view["system_snapshot"] is None
    assert view["allocated_clusters"]["destination"] == view["allocated_clusters"]["source"]
    percents = [s["percent"] for s in view["progress"] if s["phase"] == "raid rebuild"]
    assert percents[-1] == 100 and len(percents) >= 3          # the rebuild was watched, not just awaited
    methods = [a["method"] for a in done.result["actions"]]
    assert methods.index("bdev_raid_remove_base_bdev") < methods.index("bdev_nvme_send_cmd") \
        < methods.index("bdev_raid_add_base_bdev")
    with open(log) as handle:
        writes = [line for line in handle if line.strip()]
    assert writes and all('"ok": true' in line for line in writes)   # no write failed during the rebuild
    assert view["removed_replica"]["state"] == "removed"
    assert cluster.lvols(n1) == {} and cluster.exports(n1) == [] and cluster.controllers(n0) == ["r2"]
    assert cluster.rebuild().changed is False

    after = cluster.engine("nvmf", [cluster.replicas[0], view["replica"]])
    assert after.result["engine"]["state"] == "healthy"
    assert cluster.source_and_new_replica_hold_the_same_data()


def test_a_destination_killed_mid_copy_then_a_second_run_converges_and_leaves_nothing_behind(cluster):
    n0, n1, n2 = cluster.build()
    nqn, addr, port = cluster.frontend
    spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(6 * MIB), "--seed", "A")
    cluster.engine("none", cluster.replicas)
    # The destination dies as the copy starts: the source node holds the start request one second,
    # long enough to kill the destination first (the same on the emulator and on a real target, where a
    # small copy would end before any mid-copy kill could land).
    n0.delay("bdev_lvol_start_shallow_copy", 1.0)
    mark = len(n0.rpc_log())

    def kill_when_copying():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "bdev_lvol_start_shallow_copy" in [e["method"] for e in n0.rpc_log()[mark:]]:
                n2.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_copying)
    killer.start()
    first = cluster.rebuild(failed_ok=True)
    killer.join()
    n0.delay("bdev_lvol_start_shallow_copy", 0)
    assert first.failed, "the copy should have failed when the destination died"

    n2.start()
    cluster.disk(n2)
    assert "r2-rebuild" in cluster.lvols(n2)                  # the interrupted copy's lvol survived
    second = cluster.rebuild()
    view = second.result["rebuild"]
    assert view["state"] == "done" and view["destination_chain"] == view["source_chain"]
    assert view["allocated_clusters"]["destination"] == view["allocated_clusters"]["source"]
    assert "r2-rebuild" not in cluster.lvols(n2)
    assert not [s for s in n2.call("nvmf_get_subsystems") if s["nqn"].endswith("-rebuild")]
    assert [c["name"] for c in n0.call("bdev_nvme_get_controllers")] == ["r2"]
    assert cluster.source_and_new_replica_hold_the_same_data()


def test_engine_snapshots_are_refused_while_the_new_replica_is_rebuilt_and_taken_once_it_is_done(cluster):
    n0, n1, n2 = cluster.build()
    nqn, addr, port = cluster.frontend
    spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(2 * MIB), "--seed", "A")
    started = cluster.rebuild(bandwidth_mb_sec=2, wait=False)
    assert started.result["rebuild"]["state"] == "rebuilding"
    replicas = [cluster.replicas[0], dict(started.result["rebuild"]["replica"], rpc_socket=n2.sock)]
    snapshot = dict(engine="vol1", name="during", replicas=replicas, node_name="n0", record_dir=cluster.records)
    marks = [len(node.rpc_log()) for node in (n0, n1, n2)]
    refused = cluster.module(spdk_snapshot, n0, **snapshot)
    assert refused.failed and "r2 of engine vol1 is being rebuilt (mode WO" in refused.msg
    assert [mutating(node.rpc_log()[mark:]) for node, mark in zip((n0, n1, n2), marks)] == [[], [], []]

    assert cluster.rebuild().result["rebuild"]["state"] == "done"
    taken = cluster.module(spdk_snapshot, n0, **snapshot)
    assert not taken.failed, taken.msg
    assert taken.result["engine"]["snapshot_sets"] == {"r0": ["during"], "r2": ["during"]}


def test_a_rebuild_back_onto_the_node_of_the_replaced_replica_works(cluster):
    """r1 (n1) is replaced by r2 (n2), then r2 by a new r1 on n1 again: the first rebuild removed the old r1,
    so nothing of it is in the way (it used to stay and the second rebuild was refused: "lvol disk1/r1 exists
    on the destination ... it is not this rebuild's head")."""
    n0, n1, n2 = cluster.build()
    written = cluster.written_around_a_snapshot(6 * MIB, 2 * MIB)

    first = cluster.rebuild().result["rebuild"]
    assert first["state"] == "done"
    replicas = [cluster.replicas[0], dict(first["replica"], rpc_socket=n2.sock)]
    back = cluster.rebuild(replicas=replicas, replace="r2",
                           destination={"replica": "r1", "disk": "disk1", "rpc_socket": n1.sock,
                                        "listen_address": n1.addr, "port_range": PORT_RANGE})
    view = back.result["rebuild"]
    assert view["state"] == "done" and view["mode"] == "RW"
    assert view["source_chain"] == view["destination_chain"] == ["s1"]
    assert view["allocated_clusters"]["destination"] == view["allocated_clusters"]["source"]
    assert view["removed_replica"]["state"] == "removed"
    assert cluster.lvols(n2) == {} and cluster.exports(n2) == [] and cluster.controllers(n0) == ["r1"]
    assert sorted(cluster.lvols(n1)) == ["r1", "r1-snap-s1"]
    assert cluster.system_snapshots(n0) == []
    assert cluster.snapshot_sets([cluster.replicas[0], dict(view["replica"], rpc_socket=n1.sock)]) == (
        {"r0": ["s1"], "r1": ["s1"]}, True)
    cluster.frontend = frontend(cluster.engine("nvmf", [cluster.replicas[0], dict(view["replica"],
                                                                                  rpc_socket=n1.sock)]))
    assert cluster.volume_sha256() == written
    assert cluster.source_and_new_replica_hold_the_same_data(n1, "r1")


def test_a_dead_replaced_node_does_not_fail_the_rebuild_and_a_later_run_removes_its_replica(cluster):
    n0, n1, n2 = cluster.build()
    nqn, addr, port = cluster.frontend
    spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(4 * MIB), "--seed", "A")
    written = cluster.volume_sha256()
    cluster.engine("none", cluster.replicas)
    n1.kill()
    assert wait_for(lambda: n0.call("bdev_raid_get_bdevs", category="all")[0]["num_base_bdevs_discovered"] == 1)

    done = cluster.rebuild()
    view = done.result["rebuild"]
    assert view["state"] == "done" and view["mode"] == "RW"
    assert view["removed_replica"]["state"] == "unreachable"
    assert any("the replaced replica r1 was not removed: its node (%s) cannot be reached" % n1.sock in w
               for w in done.warnings)
    assert view["merged_system_snapshots"] == [view["system_snapshot"]]

    # The node comes back with its replica (and the RAID SPDK assembles from its superblock): a run of the
    # same rebuild finds it done and removes the replaced replica; the next one has nothing left to do.
    n1.start()
    cluster.disk(n1)
    assert "r1" in cluster.lvols(n1)
    later = cluster.rebuild()
    assert later.changed is True and later.result["rebuild"]["removed_replica"]["state"] == "removed"
    assert cluster.lvols(n1) == {} and n1.call("bdev_raid_get_bdevs", category="all") == []
    last = cluster.rebuild()
    assert last.changed is False and last.result["rebuild"]["removed_replica"]["state"] == "absent"

    cluster.frontend = frontend(cluster.engine("nvmf", [cluster.replicas[0], dict(view["replica"],
                                                                                  rpc_socket=n2.sock)]))
    assert cluster.volume_sha256() == written
    assert cluster.source_and_new_replica_hold_the_same_data()


def journal_entry(cluster):
    """The engine node's record entry of vol1's rebuild (section rebuilds), or None."""
    path = os.path.join(cluster.records, "n0.json")
    with open(path) as handle:
        return json.load(handle).get("rebuilds", {}).get("vol1")


def test_the_rebuild_journal_keeps_a_stale_replica_list_from_undoing_a_rebuild(cluster):
    """The rebuild notes itself in the engine node's record: running from its first change, done once r2 is
    RW. While it runs, spdk_engine may repair the engine over the replicas it had (recover_node.yml does)
    and says how to finish the rebuild; once it is done, the list from before it (an inventory not updated
    yet) is refused before any call, where it would take r2 out of the RAID; so is, later, a list that still
    names r1. Deleting the engine removes the entry."""
    n0, n1, n2 = cluster.build()
    cluster.engine("none", cluster.replicas)
    copied = cluster.rebuild(step="copy")
    assert copied.result["rebuild"]["state"] != "done"
    entry = journal_entry(cluster)
    assert (entry["state"], entry["source"], entry["destination"], entry["replace"]) == ("running", "r0", "r2", "r1")

    repaired = cluster.engine("none", cluster.replicas)
    assert repaired.result["engine"]["state"] == "healthy"
    assert [w for w in repaired.warnings if "did not finish" in w and
            "spdk.storage.spdk_replica_rebuild engine=vol1 source=r0 destination=r2 replace=r1" in w], repaired.warnings

    joined = cluster.rebuild(step="join")
    assert joined.result["rebuild"]["state"] == "done"
    entry = journal_entry(cluster)
    assert entry["state"] == "done" and entry["finished"]

    mark = len(n0.rpc_log())
    stale = cluster.module(spdk_engine, n0, name="vol1", size="16MiB", replicas=cluster.replicas, frontend="none",
                           listen_address=n0.addr, node_name="n0", record_dir=cluster.records, port_range=PORT_RANGE)
    assert stale.failed and "are the set before it" in stale.msg and "list r2 among the replicas instead of r1" in stale.msg
    assert mutating(n0.rpc_log()[mark:]) == []
    raid = n0.call("bdev_raid_get_bdevs", category="all")[0]
    assert raid["state"] == "online" and raid["num_base_bdevs_discovered"] == 2
    assert "r2n1" in [m["name"] for m in raid["base_bdevs_list"]]

    new_replicas = [cluster.replicas[0], dict(joined.result["rebuild"]["replica"], rpc_socket=n2.sock)]
    assert cluster.engine("none", new_replicas).result["engine"]["state"] == "healthy"
    assert journal_entry(cluster)["state"] == "applied"
    # An inventory that was never updated still names r1: refused as long as the entry is kept.
    again = cluster.module(spdk_engine, n0, name="vol1", size="16MiB", replicas=cluster.replicas, frontend="none",
                           listen_address=n0.addr, node_name="n0", record_dir=cluster.records, port_range=PORT_RANGE)
    assert again.failed and "are the set before it" in again.msg
    assert cluster.engine("none", new_replicas).changed is False
    cluster.ok(spdk_engine, n0, name="vol1", state="absent", node_name="n0", record_dir=cluster.records)
    assert journal_entry(cluster) is None


def test_an_engine_snapshot_between_the_copy_and_the_join_is_refused_so_the_join_can_finish(cluster):
    """rebuild_replica.yml copies and joins in two runs, each holding the volume's lock only for itself: an
    engine snapshot taken between them would leave r0's chain different from the copy on r2, and the join
    (and any later rebuild run) would fail for good. The rebuild journal says the rebuild is unfinished, so
    the snapshot is refused, naming the run that finishes the rebuild, and the join goes through."""
    n0, n1, n2 = cluster.build()
    cluster.engine("none", cluster.replicas)
    cluster.rebuild(step="copy")
    mark = len(n0.rpc_log())
    refused = cluster.module(spdk_snapshot, n0, engine="vol1", name="mid", replicas=cluster.replicas, node_name="n0",
                             record_dir=cluster.records)
    assert refused.failed and "an engine snapshot cannot take mid before it does" in refused.msg
    assert "finish the rebuild first: spdk.storage.spdk_replica_rebuild engine=vol1 source=r0 destination=r2" \
        in refused.msg
    assert mutating(n0.rpc_log()[mark:]) == [] and "r0-snap-mid" not in cluster.lvols(n0)
    assert cluster.rebuild(step="join").result["rebuild"]["state"] == "done"


def test_a_destination_disk_too_small_for_the_new_replica_is_refused_before_anything_changes(cluster):
    n0, n1, n2 = cluster.build()
    # Online, the RAID1 rebuild writes every block of the new head (17 clusters of 1 MiB): leave one less.
    free = n2.call("bdev_lvol_get_lvstores")[0]["free_clusters"]
    n2.call("bdev_lvol_create", lvs_name="disk2", lvol_name="other", size_in_mib=free - 16, thin_provision=False)
    marks = [len(node.rpc_log()) for node in (n0, n1, n2)]
    for check_mode in (True, False):
        refused = cluster.rebuild(check_mode=check_mode, failed_ok=True)
        assert refused.failed and refused.msg.startswith(
            "disk disk2 on the destination node has 16 free clusters of 1048576 bytes; the new replica needs 17 "
            "more (snapshot copies 0, the head, written whole by the RAID1 rebuild 17)"), refused.msg
    assert [mutating(node.rpc_log()[mark:]) for node, mark in zip((n0, n1, n2), marks)] == [[], [], []]

    n2.call("bdev_lvol_delete", name="disk2/other")          # space freed: the same run goes through
    done = cluster.rebuild()
    assert done.result["rebuild"]["state"] == "done" and done.result["rebuild"]["mode"] == "RW"

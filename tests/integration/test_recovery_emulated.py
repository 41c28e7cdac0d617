"""Membership that survives a crash, through the collection's modules.

D2 and D3 are what a real SPDK v26.05 did (tests/emulator/README.md, What the recordings showed): a
superblock RAID re-assembled after a restart rebuilds a stale member in full and never serves it, the
replica's own restarted target assembles a RAID around it (D2); a RAID without a superblock
re-created over a stale member serves its stale blocks (D3).

Two nodes, each its own target (the emulator, started by conftest's ``spdk_targets``):
``n0`` runs engine ``vol1`` (RAID1 with a superblock) over the remote replica ``vol1-r1`` on ``n1``
(slot 0) and its own local replica ``vol1-r0`` (slot 1). P is written through the frontend, ``n1`` is
killed with SIGKILL, Q is written (the engine goes degraded), ``n0`` is killed too, and both come back
in one of these orders, each node recovered by the sequence a recovery playbook runs (spdk_disk, then
spdk_replica with its export, then spdk_engine):

* ``engine_node_first``: ``n0`` comes back and serves degraded while ``n1`` is still down;
* ``replica_node_first``: ``n1`` comes back first, its replica exported again before ``n0`` exists;
* ``stale_replica_attached_first``: ``n1`` first, then on ``n0`` spdk_engine runs before spdk_disk,
  so the engine node sees the stale replica before its own current one (D2's second column).

The stale replica sits in slot 0, the slot RAID1 reads from first: if it ever joined without a
rebuild (D3), the frontend would serve its stale blocks. After every step that leaves a frontend,
the volume is read through it and must be P + zeros + Q. The stale replica's own export is read
before it rejoins (it must still be stale, which shows the reads can tell) and at the end (current).
D3 is checked on n0's RPC log: after the crash the collection never creates a RAID.
"""
import hashlib
import os
import subprocess
import sys
import threading

import pytest

from tests.integration.volume_helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Host I/O: tests/emulator/spdk_io on the emulator, spdk_dd on a real target (tests/hostio chooses).
SPDK_IO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hostio", "host_io")
MiB = 1 << 20
ENGINE = "vol1"
LOCAL, REMOTE = "vol1-r0", "vol1-r1"
VOLUME_SIZE = "64MiB"
REPLICA_SIZE = "65MiB"               # the volume plus the RAID superblock area
REPLICA_BYTES = 65 * (1 << 20)
SB_AREA = MiB                        # where a replica's copy of the volume starts
NQN_PREFIX = "nqn.2026-01.io.spdk-storage:"
APP_HOST = NQN_PREFIX + "host:app"   # the host that uses the volume (spdk_io)
READER = NQN_PREFIX + "host:test-reader"  # reads a replica's export directly, beside the engine
# Each node has its own 127.0.0.N, so one port serves every export. Other test sessions on this
# machine take the same addresses, so the port comes from the pid rather than 4420.
PORT = 10000 + (os.getpid() % 5000) * 2
TIMEOUTS = dict(ctrlr_loss_timeout_sec=3, reconnect_delay_sec=1, fast_io_fail_timeout_sec=2)
P_OFFSET, P_LEN = 0, 4 * MiB
Q_OFFSET, Q_LEN = 8 * MiB, MiB
CHECKED = Q_OFFSET + Q_LEN           # P, the untouched gap, Q


def pattern(seed, size):
    """Deterministic bytes, different in every 4 KiB block, so a stale block shows."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += (("%s:%d:" % (seed, block)).encode() * 512)[:4096]
        block += 1
    return bytes(out[:size])


P = pattern("P", P_LEN)
Q = pattern("Q", Q_LEN)
P_AND_Q = P + bytes(Q_OFFSET - P_LEN) + Q
STALE = P + bytes(CHECKED - P_LEN)   # what the killed replica holds: P, never Q


def sha(data):
    return hashlib.sha256(data).hexdigest()


def host_nqn(node):
    return NQN_PREFIX + "host:" + node


# ---- host I/O (tests/hostio: spdk_io or spdk_dd) --------------------------------------------------------------

class Volume(object):
    """Writes and reads an NVMe-oF subsystem as a host would."""

    def __init__(self, workdir, nqn, address, port, hostnqn):
        self.workdir, self.nqn, self.address, self.port, self.hostnqn = workdir, nqn, address, port, hostnqn

    def _io(self, *args):
        cmd = [sys.executable, SPDK_IO] + [str(arg) for arg in args] + [
            "--nqn", self.nqn, "--traddr", self.address, "--trsvcid", str(self.port),
            "--hostnqn", self.hostnqn, "--timeout", "20"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, "spdk_io %s on %s: %s%s" % (args[0], self.nqn, proc.stdout, proc.stderr)

    def write(self, offset, data):
        path = os.path.join(self.workdir, "write-%d.bin" % offset)
        with open(path, "wb") as handle:
            handle.write(data)
        self._io("write", "--offset", offset, "--file", path)

    def read(self, offset, length):
        path = os.path.join(self.workdir, "read.bin")
        self._io("read", "--offset", offset, "--length", length, "--output", path)
        with open(path, "rb") as handle:
            return handle.read()


def stale_blocks(data, expected):
    """4 KiB blocks of ``data`` that differ from ``expected`` (for a readable failure)."""
    return [i for i in range(0, len(expected), 4096) if data[i:i + 4096] != expected[i:i + 4096]]


# ---- the two nodes and the module calls of a recovery ---------------------------------------------

class Cluster(object):
    """n0 (engine + local replica) and n1 (remote replica), driven through ansible-playbook."""

    def __init__(self, targets, runner, workdir):
        self.n0, self.n1 = targets(), targets()
        self.runner = runner
        self.workdir = workdir
        self.record_dir = os.path.join(workdir, "records")
        self.disk_paths = {"n0": self.n0.disk_file("disk0"), "n1": self.n1.disk_file("disk1")}
        self.frontend = Volume(workdir, NQN_PREFIX + ENGINE, self.n0.address, PORT, APP_HOST)
        self.remote_export = Volume(workdir, NQN_PREFIX + REMOTE, self.n1.address, PORT, READER)

    def play(self, tasks, **kwargs):
        return self.runner.playbook(self.n0, tasks, **kwargs)

    # -- tasks ------------------------------------------------------------------------------------
    def disk_task(self, node):
        target, idx = (self.n0, 0) if node == "n0" else (self.n1, 1)
        return ("disk on " + node, "spdk.storage.spdk_disk",
                dict(name="disk%d" % idx, path=self.disk_paths[node], rpc_socket=target.sock))

    def local_replica_task(self):
        return ("local replica", "spdk.storage.spdk_replica",
                dict(name=LOCAL, disk="disk0", size=REPLICA_SIZE, node_name="n0", record_dir=self.record_dir,
                     rpc_socket=self.n0.sock))

    def remote_replica_task(self):
        return ("remote replica exported", "spdk.storage.spdk_replica",
                dict(name=REMOTE, disk="disk1", size=REPLICA_SIZE, expose=True, listen_address=self.n1.address,
                     port=PORT, allowed_hosts=[host_nqn("n0"), READER], node_name="n1",
                     record_dir=self.record_dir, rpc_socket=self.n1.sock))

    def engine_task(self, wait=False, label="engine", **overrides):
        args = dict(name=ENGINE, size=VOLUME_SIZE, frontend="nvmf", listen_address=self.n0.address, port=PORT,
                    allowed_hosts=[APP_HOST], host_nqn=host_nqn("n0"), node_name="n0", record_dir=self.record_dir,
                    replicas=[{"name": REMOTE, "address": "%s:%d" % (self.n1.address, PORT)},
                              {"name": LOCAL, "disk": "disk0"}],
                    wait=wait, wait_timeout=120, rpc_socket=self.n0.sock)
        args.update(TIMEOUTS)
        args.update(overrides)
        return (label, "spdk.storage.spdk_engine", args)

    def recover_replica_node(self):
        """What recovery runs on n1: the disk (import), then the replica's export."""
        return self.play([self.disk_task("n1"), self.remote_replica_task()])

    # -- reads ------------------------------------------------------------------------------------
    def assert_frontend_current(self, step):
        data = self.frontend.read(0, CHECKED)
        assert sha(data) == sha(P_AND_Q), "%s: the frontend served stale or wrong blocks %s" % (
            step, stale_blocks(data, P_AND_Q)[:20])

    def remote_replica_data(self):
        return self.remote_export.read(SB_AREA, CHECKED)

    def raid_creates(self, calls):
        return [c for c in calls if c["method"] == "bdev_raid_create"]


def controller_reads(calls):
    return sum(1 for c in calls if c["method"] == "bdev_nvme_get_controllers")


def modes(run):
    return {r["name"]: r["mode"] for r in run["engine"]["replicas"]}


@pytest.fixture
def cluster(spdk_targets, ansible_runner, tmp_path):
    """The two nodes, of the kind the suite runs."""
    return Cluster(spdk_targets, ansible_runner, str(tmp_path))


def build_and_degrade(cluster):
    """Volume on two nodes, P written, replica node killed, Q written: the engine is degraded."""
    setup = cluster.play([cluster.disk_task("n0"), cluster.disk_task("n1"), cluster.local_replica_task(),
                          cluster.remote_replica_task(), cluster.engine_task(wait=True)])
    assert setup["engine"]["engine"]["state"] == "healthy"
    assert [m["name"] for m in cluster.n0.rpc("bdev_raid_get_bdevs", category="all")[0]["base_bdevs_list"]] == [
        REMOTE + "n1", "disk0/" + LOCAL], "the remote replica must be slot 0, the slot RAID1 reads first"
    cluster.frontend.write(P_OFFSET, P)

    cluster.n1.kill()
    cluster.frontend.write(Q_OFFSET, Q)   # fails the dead leg, completes on the local one (D2 kill -9)
    # The RAID dropped the member at once; its controller goes after ctrlr_loss_timeout_sec
    # (see test_a_replica_in_its_controller_loss_window_is_reported_err for the run before that).
    assert wait_for(lambda: cluster.n0.rpc("bdev_nvme_get_controllers") == [], timeout=30)
    degraded = cluster.play([cluster.engine_task(label="engine after the replica node died")])
    engine = degraded["engine after the replica node died"]
    assert engine["engine"]["state"] == "degraded"
    assert modes(engine) == {REMOTE: "ERR", LOCAL: "RW"}
    cluster.assert_frontend_current("degraded")


def recover_engine_node(cluster, engine_before_disk=False, wait=True):
    """What recovery runs on n0: disk, local replica, engine (or the engine first, to see the stale one first)."""
    tasks = [cluster.disk_task("n0"), cluster.local_replica_task(), cluster.engine_task(wait=wait)]
    if engine_before_disk:
        tasks = [cluster.engine_task(label="engine before its disk")] + tasks
    return cluster.play(tasks)


def replica_node_comes_back(cluster):
    """n1 restarts: its target assembles a RAID around the stale replica (D2), which blocks the
    export; spdk_replica releases it (check mode only plans it) and exports the replica again."""
    cluster.n1.start()
    cluster.play([cluster.disk_task("n1")])
    assembled = cluster.n1.rpc("bdev_raid_get_bdevs", category="all")
    assert [(r["name"], r["state"], r["num_base_bdevs_discovered"]) for r in assembled] == [
        (ENGINE, "configuring", 1)], "D2: the replica's own target assembles the engine's RAID around it"

    planned = cluster.play([cluster.remote_replica_task()], check=True)["remote replica exported"]
    assert planned.changed and planned["released_stray_raid"] == ENGINE
    assert cluster.n1.rpc("bdev_raid_get_bdevs", category="all") == assembled, "check mode changed nothing"

    replica = cluster.play([cluster.remote_replica_task()])["remote replica exported"]
    assert replica["released_stray_raid"] == ENGINE
    assert replica["actions"][0]["method"] == "bdev_raid_delete"
    assert replica["actions"][0]["params"] == {"name": ENGINE}, "no clear_sb: the stale superblock must stay"
    assert replica["replica"]["exposure"]["port"] == PORT
    assert cluster.n1.rpc("bdev_raid_get_bdevs", category="all") == []
    again = cluster.play([cluster.remote_replica_task()])["remote replica exported"]
    assert again.changed is False and again["released_stray_raid"] is None
    return replica


ORDERS = ("engine_node_first", "replica_node_first", "stale_replica_attached_first")


@pytest.mark.parametrize("order", ORDERS)
def test_a_killed_replica_never_serves_stale_blocks_and_ends_current(cluster, order):
    build_and_degrade(cluster)
    mark = cluster.n0.log_mark()
    cluster.n0.kill()

    if order == "engine_node_first":
        cluster.n0.start()
        run = recover_engine_node(cluster, wait=False)
        engine = run["engine"]
        assert engine["engine"]["state"] == "degraded", "n0 alone serves from its current local replica"
        assert modes(engine) == {REMOTE: "ERR", LOCAL: "RW"}
        cluster.assert_frontend_current("engine node back, replica node down")
        replica_node_comes_back(cluster)
        assert cluster.remote_replica_data() == STALE, "before it rejoins, the killed replica still lacks Q"
        cluster.assert_frontend_current("replica exported again, not yet rejoined")
        run = cluster.play([cluster.engine_task(wait=True)])
    else:
        replica_node_comes_back(cluster)
        assert cluster.remote_replica_data() == STALE, "before it rejoins, the killed replica still lacks Q"
        cluster.n0.start()
        run = recover_engine_node(cluster, engine_before_disk=order == "stale_replica_attached_first")
        if order == "stale_replica_attached_first":
            first = run["engine before its disk"]
            assert first["engine"]["state"] == "faulted", "the stale replica alone must not serve"
            assert first["engine"]["frontend"] is None
            assert not any(a["method"] == "bdev_raid_create" for a in first["actions"])

    engine = run["engine"]
    assert engine["engine"]["state"] == "healthy"
    assert modes(engine) == {REMOTE: "RW", LOCAL: "RW"}
    cluster.assert_frontend_current("recovered")
    assert cluster.remote_replica_data() == P_AND_Q, "the stale replica must end current"

    # D3: after the crash no RAID is ever created over the members; the stale one came back by a
    # rebuild, a full copy into the thin replica (D4), never trusted as it was.
    after_crash = cluster.n0.calls_since(mark)
    assert cluster.raid_creates(after_crash) == []
    rebuilt = [lv for lv in cluster.n1.rpc("bdev_lvol_get_lvols") if lv["name"] == REMOTE][0]
    cluster_size = cluster.n1.rpc("bdev_lvol_get_lvstores")[0]["cluster_size"]
    assert rebuilt["num_allocated_clusters"] == REPLICA_BYTES // cluster_size, "a rebuild is a full copy"

    # Recovery is idempotent once the engine is whole.
    settled = recover_engine_node(cluster)
    assert [t.name for t in settled if t.changed] == []
    assert cluster.recover_replica_node()["remote replica exported"].changed is False


def test_a_replica_in_its_controller_loss_window_is_reported_err_then_waited_for(cluster):
    """The RAID drops a dead replica at once (its write fails), but its controller keeps the bdev while it
    waits to reconnect (ctrlr_loss_timeout_sec). Adding that bdev back would answer -5: the run reports the
    replica ERR and says why; with wait: true it waits for the node and adds the replica once connected."""
    slow_loss = dict(ctrlr_loss_timeout_sec=60)   # the controller outlives the test's engine runs
    setup = cluster.play([cluster.disk_task("n0"), cluster.disk_task("n1"), cluster.local_replica_task(),
                          cluster.remote_replica_task(), cluster.engine_task(wait=True, **slow_loss)])
    assert setup["engine"]["engine"]["state"] == "healthy"
    cluster.frontend.write(P_OFFSET, P)
    cluster.n1.kill()
    cluster.frontend.write(Q_OFFSET, Q)   # the RAID drops the dead member (fast_io_fail_timeout_sec)
    run = cluster.play([cluster.engine_task(**slow_loss)], allow_failures=True)["engine"]
    assert cluster.n0.rpc("bdev_nvme_get_controllers") != [], "the controller is still in its loss window"
    assert not run.failed, run.get("msg")
    assert run["engine"]["state"] == "degraded" and modes(run) == {REMOTE: "ERR", LOCAL: "RW"}
    assert run["actions"] == [] and run.changed is False
    assert any(REMOTE + " stays ERR" in w and "not connected" in w and "run again" in w
               for w in run.get("warnings", [])), run.get("warnings")

    # With wait: true the run waits; meanwhile the replica node comes back and is recovered.
    mark = cluster.n0.log_mark()
    waiting = {}
    waiter = threading.Thread(target=lambda: waiting.update(
        play=cluster.play([cluster.engine_task(wait=True, label="engine waiting", **slow_loss)],
                          allow_failures=True)))
    waiter.start()
    try:
        assert wait_for(lambda: controller_reads(cluster.n0.calls_since(mark)) >= 2, timeout=60), \
            "the waiting run polls the controllers while the replica node is down"
        cluster.n1.start()
        cluster.recover_replica_node()
    finally:
        waiter.join(timeout=180)
    engine = waiting["play"]["engine waiting"]
    assert not engine.failed, engine.get("msg")
    assert engine["engine"]["state"] == "healthy" and modes(engine) == {REMOTE: "RW", LOCAL: "RW"}
    assert [a["method"] for a in engine["actions"]] == ["bdev_raid_add_base_bdev"], "reconnected, not re-attached"
    assert not any("stays ERR" in w for w in engine.get("warnings", []))
    cluster.assert_frontend_current("after the wait")
    assert cluster.remote_replica_data() == P_AND_Q, "the replica was rebuilt, not trusted as it was"


def test_a_stale_replica_spdk_re_adds_when_attached_is_reported_rebuilding_with_who_started_it(cluster):
    """SPDK re-adds a stale replica from its superblock as soon as its bdev registers (here: the engine attaches
    it again after its controller was dropped), so the rebuild is SPDK's, not the module's: the result says so."""
    build_and_degrade(cluster)
    cluster.n1.start()
    cluster.recover_replica_node()
    cluster.n0.rpc("bdev_raid_set_options", process_max_bandwidth_mb_sec=4)   # a rebuild of seconds, to be seen
    run = cluster.play([cluster.engine_task()])["engine"]
    assert [a["method"] for a in run["actions"]] == ["bdev_nvme_attach_controller"], "the module added nothing"
    remote = {r["name"]: r for r in run["engine"]["replicas"]}[REMOTE]
    assert remote["mode"] == "WO" and remote["rebuild"] is not None
    assert run["messages"] == ["%s: SPDK re-added it from its superblock, rebuilding (%d%%)"
                               % (REMOTE, remote["rebuild"]["percent"])]

    waited = cluster.play([cluster.engine_task(wait=True)])["engine"]
    assert waited["engine"]["state"] == "healthy" and waited.changed is False
    assert waited["messages"][0].startswith(REMOTE + ": rebuilding (")
    assert waited["messages"][0].endswith("started before this run")
    assert waited["messages"][1:] == [REMOTE + ": rebuild finished, RW"]
    cluster.assert_frontend_current("rebuilt")
    assert cluster.remote_replica_data() == P_AND_Q

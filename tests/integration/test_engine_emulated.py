"""spdk_engine end to end against emulated nodes on 127.0.0.1-3 (or real targets via SPDK_TGT later).

Each node is its own emulated spdk_tgt. Disks and replicas are made with the collection's own
modules (spdk_disk, spdk_replica), the engine with spdk_engine, all through main() on the real
socket. Data goes in and comes out the way a host sees it: tests/emulator/spdk_io through the
engine's frontend, and through each replica's own export (a replica's data starts 1 MiB in, after
the RAID superblock area).
"""
import os
import signal
import subprocess
import threading

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import VolumeLock, lock_nqn, short_hostname
from ansible_collections.spdk.storage.plugins.modules import spdk_engine, spdk_replica
from tests.integration.volume_helpers import (
    APP_HOST,
    MIB,
    SB,
    TIMEOUTS,
    Nodes,
    emulated,
    frontend,
    host_nqn,
    pattern_file,
    port_block,
    spdk_io,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PORT_BASE, PORT_RANGE = port_block(21000, 580)


class Cluster(Nodes):
    """Nodes (emulated or real) plus the module calls a playbook would make on them."""

    def start(self, idx):
        return self.start_node(idx)

    def replica(self, node, name, size="65MiB", expose=True, allowed=None):
        args = dict(name=name, disk="disk%d" % node.idx, size=size)
        if expose:
            args.update(expose=True, listen_address=node.addr, port_range=PORT_RANGE,
                        allowed_hosts=allowed or [host_nqn(self.nodes[0])])
        return self.ok(spdk_replica, node, **args).result["replica"]

    def engine(self, node, check_mode=False, **args):
        args.setdefault("node_name", "n%d" % node.idx)
        args.setdefault("record_dir", self.records)
        args.setdefault("port_range", PORT_RANGE)
        for key, value in TIMEOUTS.items():
            args.setdefault(key, value)
        return self.module(spdk_engine, node, check_mode=check_mode, **args)


@pytest.fixture
def cluster():
    yield from emulated(Cluster, "eng-")


def modes(outcome):
    return {r["name"]: r["mode"] for r in outcome.result["engine"]["replicas"]}


def test_three_replica_engine_survives_a_dead_replica_node_and_keeps_every_replica_identical(cluster):
    n0, n1, n2 = cluster.start(0), cluster.start(1), cluster.start(2)
    for node in (n0, n1, n2):
        cluster.disk(node)
    cluster.replica(n0, "vol1-r0", expose=False)
    exports = {1: cluster.replica(n1, "vol1-r1")["exposure"], 2: cluster.replica(n2, "vol1-r2")["exposure"]}
    replicas = [{"name": "vol1-r0", "disk": "disk0"},
                {"name": "vol1-r1", "address": "%s:%d" % (n1.addr, exports[1]["port"])},
                {"name": "vol1-r2", "address": "%s:%d" % (n2.addr, exports[2]["port"])}]
    args = dict(name="vol1", size="64MiB", replicas=replicas, listen_address=n0.addr, allowed_hosts=[APP_HOST])

    planned = cluster.engine(n0, check_mode=True, **args)
    assert planned.changed and not planned.failed
    assert n0.call("bdev_raid_get_bdevs", category="all") == []      # check mode changed nothing

    created = cluster.engine(n0, **args)
    assert not created.failed, created.msg
    assert created.result["engine"]["state"] == "healthy"
    assert modes(created) == {"vol1-r0": "RW", "vol1-r1": "RW", "vol1-r2": "RW"}
    assert created.result["engine"]["size"] == 64 * MIB
    raid = n0.call("bdev_raid_get_bdevs", category="all")[0]
    assert raid["superblock"] is True and raid["raid_level"] == "raid1"
    again = cluster.engine(n0, **args)
    assert again.changed is False and again.result["rpc_calls"] == 3

    nqn, addr, port = frontend(created)
    data_a = pattern_file(os.path.join(cluster.workdir, "a.bin"), "A", 4 * MIB)
    spdk_io("write", nqn, addr, port, "--offset", "0", "--file", data_a)

    # Node 2 dies: after ctrlr_loss_timeout_sec its controller is deleted and the RAID drops it.
    n2.kill()
    assert wait_for(lambda: n0.call("bdev_raid_get_bdevs", category="all")[0]["num_base_bdevs_discovered"] == 2)
    data_b = pattern_file(os.path.join(cluster.workdir, "b.bin"), "B", MIB)
    spdk_io("write", nqn, addr, port, "--offset", str(8 * MIB), "--file", data_b)
    degraded = cluster.engine(n0, **args)
    assert not degraded.failed, degraded.msg
    assert degraded.result["engine"]["state"] == "degraded"
    assert modes(degraded)["vol1-r2"] == "ERR"
    assert any("vol1-r2" in w and "Input/output error" in w for w in degraded.warnings)

    # Node 2 comes back with its stale data. Its target assembles a RAID around the replica from
    # the superblock (D2, tests/emulator/README.md); the recovery deletes that RAID there (superblock kept).
    n2.start()
    cluster.disk(n2)
    for stale in n2.call("bdev_raid_get_bdevs", category="all"):
        n2.call("bdev_raid_delete", name=stale["name"], clear_sb=False)
    assert cluster.replica(n2, "vol1-r2")["exposure"]["port"] == exports[2]["port"]
    recovered = cluster.engine(n0, wait=True, wait_timeout=60, **args)
    assert not recovered.failed, recovered.msg
    assert recovered.changed and recovered.result["engine"]["state"] == "healthy"
    assert "bdev_nvme_attach_controller" in [a["method"] for a in recovered.result["actions"]]
    spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", data_a)
    spdk_io("verify", nqn, addr, port, "--offset", str(8 * MIB), "--file", data_b)

    # Replica 1 leaves the engine: out of the RAID, controller detached, bdev gone.
    two = dict(args, replicas=[replicas[0], replicas[2]])
    shrunk = cluster.engine(n0, **two)
    assert not shrunk.failed, shrunk.msg
    assert [a["method"] for a in shrunk.result["actions"]] == ["bdev_raid_remove_base_bdev",
                                                               "bdev_nvme_detach_controller"]
    assert shrunk.result["engine"]["state"] == "healthy"
    assert n0.error("bdev_get_bdevs", name="vol1-r1n1")["code"] == -19
    assert cluster.engine(n0, **two).changed is False

    # Deleting the engine keeps every replica's data; read each one through its own export.
    gone = cluster.engine(n0, name="vol1", state="absent")
    assert not gone.failed and gone.changed
    assert n0.call("bdev_raid_get_bdevs", category="all") == []
    assert n0.call("bdev_nvme_get_controllers") == []
    assert cluster.engine(n0, name="vol1", state="absent").changed is False
    exports[0] = cluster.replica(n0, "vol1-r0", allowed=[host_nqn(n0)])["exposure"]
    for idx, node in ((0, n0), (1, n1), (2, n2)):
        export = exports[idx]
        hostnqn = ["--hostnqn", host_nqn(n0)]
        spdk_io("verify", export["nqn"], node.addr, export["port"], "--offset", str(SB), "--file", data_a, *hostnqn)
        spdk_io("verify", export["nqn"], node.addr, export["port"], "--offset", str(SB + 8 * MIB), "--file", data_b,
                *hostnqn)


def test_replicas_of_different_sizes_create_nothing_and_leave_no_controller(cluster):
    n0, n1 = cluster.start(0), cluster.start(1)
    cluster.disk(n0)
    cluster.disk(n1)
    cluster.replica(n0, "vol2-r0", expose=False)
    export = cluster.replica(n1, "vol2-r1", size="80MiB")["exposure"]
    outcome = cluster.engine(n0, name="vol2", size="64MiB", listen_address=n0.addr,
                             replicas=[{"name": "vol2-r0", "disk": "disk0"},
                                       {"name": "vol2-r1", "address": "%s:%d" % (n1.addr, export["port"])}])
    assert outcome.failed
    assert "differ in size" in outcome.msg and "vol2-r0 65MiB" in outcome.msg and "vol2-r1 80MiB" in outcome.msg
    assert n0.call("bdev_raid_get_bdevs", category="all") == []
    assert n0.call("bdev_nvme_get_controllers") == []


def test_an_unreachable_replica_fails_the_create_naming_the_likely_causes(cluster):
    n0 = cluster.start(0)
    cluster.disk(n0)
    cluster.replica(n0, "vol3-r0", expose=False)
    outcome = cluster.engine(n0, name="vol3", listen_address=n0.addr,
                             replicas=[{"name": "vol3-r0", "disk": "disk0"},
                                       {"name": "vol3-r1", "address": "127.0.0.2:%d" % PORT_BASE}])
    assert outcome.failed
    assert "-5" in outcome.msg and "does not allow the host" in outcome.msg and "nothing reachable" in outcome.msg
    assert n0.call("bdev_raid_get_bdevs", category="all") == []


@pytest.mark.skipif(os.path.isdir("/sys/module/nvme_tcp"), reason="this machine has the nvme-tcp kernel module")
def test_blockdev_frontend_fails_clearly_without_kernel_nvme_tcp(cluster):
    n0 = cluster.start(0)
    outcome = cluster.engine(n0, name="vol4", listen_address=n0.addr, frontend="blockdev",
                             replicas=[{"name": "vol4-r0", "disk": "disk0"}, {"name": "vol4-r1", "disk": "disk0"}])
    assert outcome.failed and outcome.result["rpc_calls"] == 0
    assert "nvme-cli" in outcome.msg or "nvme-tcp kernel module" in outcome.msg


def test_killed_replica_target_restarted_with_sigint_is_noticed(cluster):
    """SIGINT (a clean stop) instead of SIGKILL: the controller is lost the same way."""
    n0, n1 = cluster.start(0), cluster.start(1)
    cluster.disk(n0)
    cluster.disk(n1)
    cluster.replica(n0, "vol5-r0", expose=False)
    export = cluster.replica(n1, "vol5-r1")["exposure"]
    args = dict(name="vol5", size="64MiB", listen_address=n0.addr,
                replicas=[{"name": "vol5-r0", "disk": "disk0"},
                          {"name": "vol5-r1", "address": "%s:%d" % (n1.addr, export["port"])}])
    assert cluster.engine(n0, **args).result["engine"]["state"] == "healthy"
    n1.stop(signal.SIGINT)
    assert wait_for(lambda: n0.call("bdev_raid_get_bdevs", category="all")[0]["num_base_bdevs_discovered"] == 1)
    outcome = cluster.engine(n0, **args)
    assert not outcome.failed and outcome.result["engine"]["state"] == "degraded"
    assert modes(outcome) == {"vol5-r0": "RW", "vol5-r1": "ERR"}


def two_replica_engine(cluster, name):
    n0, n1 = cluster.start(0), cluster.start(1)
    cluster.disk(n0)
    cluster.disk(n1)
    cluster.replica(n0, name + "-r0", expose=False)
    export = cluster.replica(n1, name + "-r1")["exposure"]
    args = dict(name=name, size="64MiB", listen_address=n0.addr,
                replicas=[{"name": name + "-r0", "disk": "disk0"},
                          {"name": name + "-r1", "address": "%s:%d" % (n1.addr, export["port"])}])
    assert cluster.engine(n0, **args).result["engine"]["state"] == "healthy"
    return n0, args


def lock_entries(node, volume):
    return [s for s in node.call("nvmf_get_subsystems") if s["nqn"] == lock_nqn(volume)]


def test_a_delete_waits_for_the_run_that_holds_the_volume_lock_and_goes_on_once_it_is_released(cluster):
    n0, args = two_replica_engine(cluster, "vol6")
    rebuild = VolumeLock(SpdkRpcClient(n0.sock, timeout=10.0), "vol6", "rebuild", holder="ctrl9 pid 9 rebuild vol6-r9")
    rebuild.acquire()

    refused = cluster.engine(n0, state="absent", lock_timeout=0, **args)
    assert refused.failed and "volume vol6 is locked by ctrl9 pid 9 rebuild vol6-r9" in refused.msg
    assert [r["name"] for r in n0.call("bdev_raid_get_bdevs", category="all")] == ["vol6"]   # nothing was changed

    threading.Timer(1.0, rebuild.release).start()
    deleted = cluster.engine(n0, state="absent", lock_timeout=20, **args)
    assert not deleted.failed and deleted.changed, deleted.msg
    assert n0.call("bdev_raid_get_bdevs", category="all") == [] and n0.call("bdev_nvme_get_controllers") == []
    assert lock_entries(n0, "vol6") == []


def test_a_run_with_nothing_to_change_removes_the_lock_a_killed_run_left(cluster):
    n0, args = two_replica_engine(cluster, "vol7")
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = VolumeLock(SpdkRpcClient(n0.sock, timeout=10.0), "vol7", "engine present",
                      holder="%s pid %d engine present" % (short_hostname(), dead.pid))
    left.acquire()
    assert len(lock_entries(n0, "vol7")) == 1

    outcome = cluster.engine(n0, lock_timeout=0, **args)
    assert not outcome.failed and outcome.result["actions"] == [], outcome.msg
    assert any("removed the lock of volume vol7" in w for w in outcome.result.get("warnings", [])), outcome.result
    assert lock_entries(n0, "vol7") == []

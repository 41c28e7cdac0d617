"""Engine snapshots under a second operator and a crash: each run is its own module process, as two
controllers (or a rulebook and an operator) would start them.

* Two runs on one engine at once, one replica node slow, a writer going: the volume's lock makes them
  take turns, so each set is one point in time on every replica (before the lock, the second run's
  snapshot on the slow node landed after the first run had resumed I/O, and its bytes differed).
* The module killed (kill -9) while host I/O is paused: the watchdog moves the namespace back within
  quiesce_timeout, with no later run, and the next run takes over the dead run's lock at once.
"""
import json
import os
import signal
import threading
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import lock_nqn
from ansible_collections.spdk.storage.plugins.modules import spdk_snapshot
from tests.integration.test_engine_snapshot_emulated import DATA, PORT_RANGE, Volume, completed_writes
from tests.integration.volume_helpers import (
    emulated,
    frontend,
    module_process,
    pattern_file,
    process_result,
    spdk_io,
    start_writer,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def volume():
    yield from emulated(Volume, "esafe-")


def snapshot_process(volume, **args):
    """spdk_snapshot on the engine as its own process."""
    params = dict(engine="vol", replicas=volume.replicas, node_name="n0", record_dir=volume.records,
                  listen_address=volume.nodes[0].addr, port_range=PORT_RANGE, rpc_socket=volume.nodes[0].sock)
    params.update(args)
    return module_process(spdk_snapshot, params, volume.workdir)


def ana_groups(node):
    """The frontend's namespace groups in the order the engine node's RPC log shows them set."""
    return [e["params"]["anagrpid"] for e in node.rpc_log() if e["method"] == "nvmf_subsystem_set_ns_ana_group"]


def namespace_group(node, nqn):
    entry = next(s for s in node.call("nvmf_get_subsystems") if s["nqn"] == nqn)
    return entry["namespaces"][0].get("anagrpid")


def revert_killed_at_the_clone_on(volume, node):
    """Revert ``volume`` to rv1 as its own process and kill it (kill -9) while ``node``'s clone of rv1 is
    held; the clone is then dropped, as if the module died before the request reached the target."""
    release = threading.Event()

    def never_delivered():
        release.wait(60)
        raise ConnectionAbortedError("the module died before this request reached the target")

    node.delay("bdev_lvol_clone", never_delivered)
    try:
        run = snapshot_process(volume, name="rv1", state="reverted")
        assert wait_for(lambda: any(e["method"] == "bdev_lvol_clone" for e in node.rpc_log()), timeout=60)
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
    finally:
        release.set()
        node.delay("bdev_lvol_clone", 0)


def test_two_runs_on_one_engine_take_turns_and_each_set_is_one_point_in_time(volume):
    volume.start()
    nqn, addr, port = frontend(volume.engine())
    log = os.path.join(volume.workdir, "writer.jsonl")
    writer = start_writer(nqn, addr, port, log, "--offset", "0", "--length", str(DATA), "--queue-depth", "8",
                          "--timeout", "60")
    volume.nodes[2].delay("bdev_lvol_snapshot", 1.5)         # a loaded replica node
    try:
        assert wait_for(lambda: completed_writes(log) > 200), "the writer did not get going"
        first = snapshot_process(volume, name="c1")
        second = snapshot_process(volume, name="c2")
        results = [process_result(first), process_result(second)]
    finally:
        volume.nodes[2].delay("bdev_lvol_snapshot", 0)
        writer.send_signal(signal.SIGTERM)
        writer.communicate(timeout=60)
    for outcome in results:
        assert not outcome.get("failed"), outcome.get("msg")
        assert outcome["engine"]["consistent"] is True
    # One pause after the other: never a second pause while the first is on.
    assert ana_groups(volume.nodes[0])[-4:] == [2, 1, 2, 1]
    for name in ("c1", "c2"):
        digests = volume.snapshot_bytes(name)
        assert len(set(digests.values())) == 1, "%s differs between replicas: %s" % (name, digests)
    assert [s for s in volume.nodes[0].call("nvmf_get_subsystems") if s["nqn"] == lock_nqn("vol")] == []


def test_a_module_killed_during_the_pause_leaves_no_paused_volume_and_no_lock_behind(volume):
    volume.start()
    nqn, addr, port = frontend(volume.engine())
    release = threading.Event()
    volume.nodes[2].delay("bdev_lvol_snapshot", lambda: release.wait(60))   # the run hangs mid-pause
    try:
        run = snapshot_process(volume, name="k1", quiesce_timeout=4)
        assert wait_for(lambda: ana_groups(volume.nodes[0])[-1:] == [2], timeout=60), "the pause never began"
        paused_at = time.monotonic()
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
        assert wait_for(lambda: namespace_group(volume.nodes[0], nqn) == 1, timeout=10, interval=0.05)
        resumed_after = time.monotonic() - paused_at
    finally:
        release.set()
        volume.nodes[2].delay("bdev_lvol_snapshot", 0)
    assert resumed_after < 4 + 1, "host I/O came back %.1fs after the kill" % resumed_after
    spdk_io("read", nqn, addr, port, "--offset", "0", "--length", str(1 << 20), "--sha256")   # the host reads again

    started = time.monotonic()
    again = process_result(snapshot_process(volume, name="k1", lock_timeout=0))
    assert not again.get("failed"), again.get("msg")            # the dead run's lock was taken over at once
    assert time.monotonic() - started < 30
    assert again["engine"]["consistent"] is True
    assert len(set(volume.snapshot_bytes("k1").values())) == 1


def test_a_revert_killed_between_two_replicas_clones_ends_reverted_on_every_replica(volume):
    """The module dies after two replicas got their new head and before the third: a re-run of the revert
    finishes it (never a mixed or offline volume), and the engine serves the snapshot's bytes."""
    volume.start()
    nqn, addr, port = frontend(volume.engine())
    data_a = pattern_file(os.path.join(volume.workdir, "a.bin"), "A", DATA)
    spdk_io("write", nqn, addr, port, "--offset", "0", "--file", data_a)
    assert not volume.snapshot(name="rv1").failed
    spdk_io("write", nqn, addr, port, "--offset", "0", "--file",
            pattern_file(os.path.join(volume.workdir, "b.bin"), "B", DATA))
    volume.engine(frontend="none")

    revert_killed_at_the_clone_on(volume, volume.nodes[2])     # the third replica stays untouched

    # create_volume.yml and recover_node.yml export the volume: refused, saying what finishes the revert
    exported = volume.engine(may_fail=True)
    assert exported.failed and "a revert to snapshot rv1 began and did not finish" in exported.msg
    assert "spdk.storage.spdk_snapshot engine=vol name=rv1 state=reverted" in exported.msg
    assert "nqn.2026-01.io.spdk-storage:vol" not in [s["nqn"] for s in volume.nodes[0].call("nvmf_get_subsystems")]
    # snapshot_volume.yml's revert starts with frontend none: it leaves the RAID to the revert
    maintenance = volume.engine(frontend="none")
    assert not maintenance.failed and maintenance.result["actions"] == [], maintenance.msg
    assert any("revert to snapshot rv1 is unfinished" in w for w in maintenance.result["warnings"])

    rerun = volume.snapshot(name="rv1", state="reverted")
    assert not rerun.failed, rerun.msg
    assert volume.snapshot(name="rv1", state="reverted").changed is False
    engine = volume.engine()
    assert engine.result["engine"]["state"] == "healthy"
    nqn, addr, port = frontend(engine)
    spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", data_a)


def test_a_revert_killed_after_a_head_was_deleted_lists_that_replica_by_its_snapshots_and_says_what_finishes_it(
        volume):
    """The module dies after it deleted the engine node's head and before it cloned its successor.
    snapshot_volume.yml lists the snapshots before it reverts again: the listing must not refuse the
    replica whose head is gone (it did, so the playbook could never finish the revert)."""
    volume.start()
    nqn, addr, port = frontend(volume.engine())
    data_a = pattern_file(os.path.join(volume.workdir, "a.bin"), "A", DATA)
    spdk_io("write", nqn, addr, port, "--offset", "0", "--file", data_a)
    assert not volume.snapshot(name="rv1").failed
    volume.engine(frontend="none")

    local = volume.nodes[0]
    revert_killed_at_the_clone_on(volume, local)
    assert "vol-r0" not in [lv["name"] for lv in local.call("bdev_lvol_get_lvols")], "the head was not deleted"

    listing = volume.snapshot()
    assert not listing.failed, listing.msg
    assert listing.result["engine"]["snapshot_sets"] == {"vol-r0": ["rv1"], "vol-r1": ["rv1"], "vol-r2": ["rv1"]}
    [warning] = [w for w in listing.warnings if "began and did not finish" in w]
    assert "vol-r0 has no head" in warning and "name=rv1 state=reverted" in warning, warning
    assert not volume.snapshot(name="rv1", state="reverted").failed
    assert not [w for w in volume.snapshot().warnings if "did not finish" in w]     # finished: no more warning
    nqn, addr, port = frontend(volume.engine())
    spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", data_a)


def test_an_rpc_socket_nobody_answers_on_is_not_written_into_the_engine_record(volume):
    volume.start()
    volume.engine()
    replicas = [dict(r) for r in volume.replicas]
    replicas[2]["rpc_socket"] = os.path.join(volume.workdir, "nobody-listens.sock")
    volume.replicas = replicas
    outcome = volume.engine()
    assert any("no SPDK target answers at rpc_socket" in w for w in outcome.warnings)
    with open(os.path.join(volume.records, "n0.json")) as handle:
        recorded = json.load(handle)["engines"]["vol"]["replicas"]
    assert recorded[2]["rpc_socket"] == volume.nodes[2].sock       # the one that answered, kept

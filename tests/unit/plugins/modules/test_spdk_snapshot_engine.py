# -*- coding: utf-8 -*-
"""spdk_snapshot with ``engine``, through main(), against one expected-call script per node:
the engine node E (local replica vol-r0) and the remote replica nodes N1, N2 reached through their
rpc_socket (tests/unit/engine_snapshot_scenarios.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from tests.unit import engine_snapshot_scenarios as sc
import pytest
from tests.unit.expected_calls import answer, error, expect, reads, result

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec

from ansible_collections.spdk.storage.plugins.modules import spdk_snapshot

LVOL_OPS = "more/lvol_ops.jsonl"
ANA = "more/ana/run15_nsgroup_pause_nodrain.jsonl"


@pytest.fixture
def args(tmp_path):
    return dict(engine="vol", name="s2", replicas=sc.REPLICAS, host_nqn=sc.HOST, node_name="e",
                record_dir=str(tmp_path))


def node_reads(nodes, address):
    return reads(*nodes[address].reads())


def snapshot(replica, disk):
    return expect("bdev_lvol_snapshot", {"lvol_name": "%s/%s" % (disk, replica), "snapshot_name": replica + "-snap-s2"},
                  answer(LVOL_OPS, 120))


def pause(group):
    return expect("nvmf_subsystem_set_ns_ana_group", {"nqn": sc.ENGINE_NQN, "nsid": 1, "anagrpid": group},
                  answer(ANA, 120))


def create_scripts(before, after, lock=None):
    lock = lock or sc.LockCalls()
    return {
        sc.E: [node_reads(before, sc.E), sc.raids(), lock.take(),
               expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN}, result([sc.listener()])),
               pause(2), snapshot("vol-r0", "disk0"), pause(1), node_reads(after, sc.E), lock.release()],
        sc.N1: [node_reads(before, sc.N1), snapshot("vol-r1", "disk1"), node_reads(after, sc.N1)],
        sc.N2: [node_reads(before, sc.N2), snapshot("vol-r2", "disk2"), node_reads(after, sc.N2)],
    }


def reads_only(nodes):
    return {address: [node_reads(nodes, address)] for address in (sc.E, sc.N1, sc.N2)}


def test_create_pauses_io_snapshots_every_replica_and_resumes(args, tmp_path):
    before, after = sc.nodes(snapshots=(("s1",),) * 3), sc.nodes(snapshots=(("s1", "s2"),) * 3)
    outcome, wire = sc.run_module(spdk_snapshot, args, create_scripts(before, after))
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True
    assert [(a["node"], a["method"]) for a in outcome.result["actions"]] == [
        ("engine node", "nvmf_subsystem_set_ns_ana_group"), ("engine node", "bdev_lvol_snapshot"),
        ("node of vol-r1 (/n1.sock)", "bdev_lvol_snapshot"), ("node of vol-r2 (/n2.sock)", "bdev_lvol_snapshot"),
        ("engine node", "nvmf_subsystem_set_ns_ana_group")]
    assert outcome.result["engine"]["consistent"] is True
    assert outcome.result["engine"]["snapshot_sets"] == {r: ["s1", "s2"] for r in ("vol-r0", "vol-r1", "vol-r2")}
    assert outcome.result["diff"]["before"] == {r: ["s1"] for r in ("vol-r0", "vol-r1", "vol-r2")}
    # the engine node's 11 plus the volume lock's 3 (take, read back, release)
    assert outcome.result["rpc_calls_per_node"] == {"engine node": 14, "node of vol-r1 (/n1.sock)": 7,
                                                    "node of vol-r2 (/n2.sock)": 7}
    assert outcome.result["rpc_calls"] == 28
    with open(str(tmp_path / "e.json")) as handle:
        entry = json.load(handle)["snapshots"]["vol"]["s2"]
    assert entry["kind"] == "user" and sorted(entry["replicas"]) == ["vol-r0", "vol-r1", "vol-r2"]


def test_an_existing_set_is_three_reads_per_node_and_no_change(args):
    nodes = sc.nodes(snapshots=(("s1", "s2"),) * 3)
    args["record_dir"] = ""
    outcome, wire = sc.run_module(spdk_snapshot, args, reads_only(nodes))
    assert outcome.changed is False and outcome.result["rpc_calls"] == 9
    assert outcome.result["rpc_calls_per_node"] == {"engine node": 3, "node of vol-r1 (/n1.sock)": 3,
                                                    "node of vol-r2 (/n2.sock)": 3}


def test_a_whole_set_whose_run_died_paused_gets_host_io_back_under_the_lock(args):
    nodes = sc.nodes(snapshots=(("s1", "s2"),) * 3, anagrpid=2)
    lock = sc.LockCalls()
    scripts = reads_only(nodes)
    scripts[sc.E] += [lock.take(), pause(1), lock.release()]
    outcome, wire = sc.run_module(spdk_snapshot, dict(args, record_dir=""), scripts)
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True
    assert [a["method"] for a in outcome.result["actions"]] == ["nvmf_subsystem_set_ns_ana_group"]
    assert any("host I/O of engine vol was still paused" in w for w in outcome.result["warnings"])
    assert wire.mutating(sc.N1) == [] and wire.mutating(sc.N2) == []


def test_check_mode_plans_the_resume_of_a_set_left_paused_and_sends_nothing(args):
    nodes = sc.nodes(snapshots=(("s1", "s2"),) * 3, anagrpid=2)
    scripts = reads_only(nodes)
    scripts[sc.E] += [sc.LockCalls.absent()]
    outcome, wire = sc.run_module(spdk_snapshot, dict(args, record_dir=""), scripts, check_mode=True)
    assert outcome.changed is True and not outcome.failed, outcome.msg
    assert [a["method"] for a in outcome.result["actions"]] == ["nvmf_subsystem_set_ns_ana_group"]
    assert all(wire.mutating(address) == [] for address in (sc.E, sc.N1, sc.N2))


def test_check_mode_plans_the_pause_and_sends_no_mutating_rpc_to_any_node(args):
    nodes = sc.nodes(snapshots=(("s1",),) * 3)
    scripts = reads_only(nodes)
    scripts[sc.E] += [sc.raids(), sc.LockCalls.absent(),
                      expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN}, result([sc.listener()]))]
    outcome, wire = sc.run_module(spdk_snapshot, args, scripts, check_mode=True)
    assert outcome.changed is True and not outcome.failed
    assert [a["method"] for a in outcome.result["actions"]].count("bdev_lvol_snapshot") == 3
    assert all(wire.mutating(address) == [] for address in (sc.E, sc.N1, sc.N2))


@pytest.mark.parametrize("state, snapshots, verb", [
    ("present", ("s1",), "take"),
    ("absent", ("s1", "s2"), "delete"),
])
def test_a_replica_being_rebuilt_refuses_the_snapshot_with_no_mutating_call(args, state, snapshots, verb):
    """RAID1 is still filling vol-r2 (mode WO): its snapshot would not match the other replicas' ones."""
    nodes = sc.nodes(snapshots=(snapshots,) * 3)
    scripts = reads_only(nodes)
    scripts[sc.E].append(sc.raids(rebuilding=True))
    outcome, wire = sc.run_module(spdk_snapshot, dict(args, state=state), scripts)
    assert outcome.failed and outcome.result["actions"] == []
    assert "replica vol-r2 of engine vol is being rebuilt (mode WO, 53% copied)" in outcome.msg
    assert "cannot %s s2 now" % verb in outcome.msg and "nothing was changed" in outcome.msg
    assert outcome.result["failed_replicas"] == ["vol-r2"]
    assert all(wire.mutating(address) == [] for address in (sc.E, sc.N1, sc.N2))


def test_check_mode_refuses_a_snapshot_during_a_rebuild_too(args):
    nodes = sc.nodes(snapshots=(("s1",),) * 3)
    scripts = reads_only(nodes)
    scripts[sc.E].append(sc.raids(rebuilding=True))
    outcome, _wire = sc.run_module(spdk_snapshot, args, scripts, check_mode=True)
    assert outcome.failed and "being rebuilt" in outcome.msg


def test_an_existing_set_needs_no_raid_read_even_during_a_rebuild(args):
    """Nothing would change, so nothing is refused: the no-op stays at three reads per node."""
    outcome, _wire = sc.run_module(spdk_snapshot, dict(args, record_dir=""),
                                   reads_only(sc.nodes(snapshots=(("s1", "s2"),) * 3)))
    assert outcome.changed is False and outcome.result["rpc_calls"] == 9


def test_an_unreachable_replica_node_fails_naming_it_and_changes_nothing(args):
    nodes = sc.nodes(snapshots=(("s1",),) * 3)
    outcome, wire = sc.run_module(spdk_snapshot, args, {
        sc.E: [node_reads(nodes, sc.E)], sc.N1: [node_reads(nodes, sc.N1)], sc.N2: sc.DOWN})
    assert outcome.failed and "vol-r2" in outcome.msg and "Connection refused" in outcome.msg
    assert outcome.result["failed_replicas"] == ["vol-r2"]
    assert outcome.result["actions"] == []


def test_without_name_the_engine_snapshot_sets_are_listed(args):
    nodes = sc.nodes(snapshots=(("s1", "s2"), ("s1", "s2"), ("s1",)))
    del args["name"]
    outcome, wire = sc.run_module(spdk_snapshot, args, reads_only(nodes))
    assert outcome.changed is False
    assert outcome.result["engine"]["consistent"] is False
    assert outcome.result["engine"]["snapshot_sets"]["vol-r2"] == ["s1"]


def test_replicas_are_read_from_the_engine_record_when_not_given(args, tmp_path):
    record = {"format": "spdk.storage/node-record", "version": 1, "node": "e",
              "engines": {"vol": {"replicas": sc.REPLICAS, "host_nqn": sc.HOST}}, "exposures": {}, "snapshots": {}}
    with open(str(tmp_path / "e.json"), "w") as handle:
        json.dump(record, handle)
    del args["replicas"]
    nodes = sc.nodes(snapshots=(("s2",),) * 3)
    outcome, wire = sc.run_module(spdk_snapshot, args, reads_only(nodes))
    assert not outcome.failed, outcome.msg
    assert [r["name"] for r in outcome.result["engine"]["replicas"]] == ["vol-r0", "vol-r1", "vol-r2"]


def deletion_began(record_dir, node, volume):
    """What delete_volume.yml leaves on every node when it is cut off half-way: the volume's tombstone."""
    rec.update(rec.record_path(record_dir, node), node, lambda record: record.add_tombstone(volume))


@pytest.mark.parametrize("change", [dict(state="present"), dict(state="absent"), dict(state="reverted"),
                                    dict(name=None)])
def test_a_volume_whose_deletion_began_is_refused_before_any_rpc(args, tmp_path, change):
    """A listing too: what is left of such a volume is for delete_volume.yml to remove."""
    deletion_began(str(tmp_path), "e", "vol")
    outcome, wire = sc.run_module(spdk_snapshot, dict(args, **change), {sc.E: []})
    assert outcome.failed and "spdk_snapshot on engine vol refused: the deletion of volume vol began" in outcome.msg
    assert "delete_volume.yml -e volume=vol finishes it" in outcome.msg
    assert wire.methods(sc.E) == []


def test_replica_and_engine_together_are_refused_before_any_rpc(args):
    args["replica"] = "vol-r0"
    outcome, wire = sc.run_module(spdk_snapshot, args, {sc.E: []})
    assert outcome.failed and "mutually exclusive" in outcome.msg


def test_reverted_is_refused_for_a_replica(args):
    outcome, wire = sc.run_module(spdk_snapshot, {"replica": "vol-r0", "name": "s2", "state": "reverted"}, {sc.E: []})
    assert outcome.failed and "give engine instead of replica" in outcome.msg


def test_a_failed_replica_snapshot_reports_the_rpc_method_and_code_and_rolls_back(args):
    """The engine path reports a failed RPC like every other module: rpc_method, rpc_error_code and
    rpc_error_message next to the message naming the replica."""
    before = sc.nodes(snapshots=(("s1",),) * 3)
    scripts = create_scripts(before, before)
    scripts[sc.N2] = [node_reads(before, sc.N2),
                      expect("bdev_lvol_snapshot", {"lvol_name": "disk2/vol-r2", "snapshot_name": "vol-r2-snap-s2"},
                             error(-17, "File exists"))]   # what SPDK answers for a name already taken
    scripts[sc.E][-2:] = [expect("bdev_lvol_delete", {"name": "disk0/vol-r0-snap-s2"}, result(True)),
                          scripts[sc.E][-1]]     # the rollback, then the lock's release
    scripts[sc.N1][-1] = expect("bdev_lvol_delete", {"name": "disk1/vol-r1-snap-s2"}, result(True))
    outcome, _wire = sc.run_module(spdk_snapshot, args, scripts)
    assert outcome.failed
    assert "snapshot on replica vol-r2 failed: bdev_lvol_snapshot failed: SPDK error -17 (File exists)" in outcome.msg
    assert (outcome.result["rpc_method"], outcome.result["rpc_error_code"], outcome.result["rpc_error_message"]) == (
        "bdev_lvol_snapshot", -17, "File exists")
    assert outcome.result["failed_replicas"] == ["vol-r2"]
    assert [a["method"] for a in outcome.result["actions"]][-2:] == ["bdev_lvol_delete", "bdev_lvol_delete"]


def test_an_rpc_failing_outside_a_replica_step_is_described_like_in_every_module(args):
    nodes = sc.nodes(snapshots=(("s1",),) * 3)
    scripts = reads_only(nodes)
    lock = sc.LockCalls()
    scripts[sc.E] += [sc.raids(), lock.take(), expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN},
                                                      error(-19, "No such device")), lock.release()]
    outcome, _wire = sc.run_module(spdk_snapshot, args, scripts)
    assert outcome.failed
    assert outcome.msg.startswith("SPDK RPC nvmf_subsystem_get_listeners failed with error -19 (No such device): ")
    assert (outcome.result["rpc_method"], outcome.result["rpc_error_code"]) == ("nvmf_subsystem_get_listeners", -19)
    assert outcome.result["actions"] == [] and outcome.result["failed_replicas"] == []

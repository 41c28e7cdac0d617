# -*- coding: utf-8 -*-
"""spdk_replica_rebuild through main(), with the RPCs it must send, in order, on recorded answers.

The engine is ``vol1-e0`` of node1 in tests/unit/fixtures/transcripts/more__introspection.json (local
replica ``vol1-r-a1b2c3d4``, remote ``vol1-r-b2c3d4e5`` attached as ``vol1-r-b2c3d4e5n1``, RAID1 with
superblock, frontend ``nqn.2026-01.io.spdk-storage:vol1-e0`` live). Every role's client goes through the same
scripted wire, so the script lists the engine node's reads, then the destination node's, then the
replaced replica's node's. The engine node presents ``host-node1`` as in those recordings.

A finished rebuild ("done": the destination ``vol1-r-b2c3d4e5`` on node2 is RW in the RAID) removes the
replaced replica and merges the system snapshots. The replaced replica's node is the d6 chain recording
(replica ``vol1`` with ``vol1-snap-02`` and ``vol1-snap-01``, exported). A system snapshot is added to a
recorded node the way SPDK reports one (the shape of line 19 of
tests/unit/fixtures/transcripts/more__d6_alloc_after_shallow_copy.json: a snapshot whose one clone is the
head, and the head names it ``base_snapshot``).
The full copy/join flows run against emulated nodes in tests/integration/test_rebuild_emulated.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest
from tests.unit.engine_snapshot_scenarios import LockCalls
from tests.unit.expected_calls import Expected, answer, expect, reads, result, run_module, transcript
from tests.unit.replica_scenarios import chain, node2

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkUnreachableError
from ansible_collections.spdk.storage.plugins.modules import spdk_replica_rebuild

INTRO = "more/introspection.jsonl"
HOSTS = "more/nvmf_hosts.jsonl"
LVOL_OPS = "more/lvol_ops.jsonl"
D6 = "more/d6_alloc_after_shallow_copy.jsonl"
SOURCE = {"name": "vol1-r-a1b2c3d4", "disk": "disk1"}
ENGINE_HOST = "nqn.2026-01.io.spdk-storage:host-node1"
SYSTEM = "rb-20261125021209"


def engine_reads(bdevs=None):
    return reads(("bdev_lvol_get_lvstores", None, answer(INTRO, 63)),
                 ("bdev_get_bdevs", None, bdevs or answer(INTRO, 61)),
                 ("nvmf_get_subsystems", None, answer(INTRO, 78)),
                 ("bdev_nvme_get_controllers", None, answer(INTRO, 80)),
                 ("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)))


def dest_reads(bdevs=None):
    scenario = node2()
    if bdevs is not None:
        scenario.bdevs = bdevs
    return reads(*(scenario.reads() + [("bdev_nvme_get_controllers", None, result([]))]))


def with_system_snapshot(bdevs, head_alias, name=SYSTEM, other_clones=()):
    """The bdevs answer once the head ``head_alias`` was snapshotted as ``<head>-snap-<name>``: the new
    snapshot has the shape of more__d6_alloc_after_shallow_copy.json line 19 (one clone, the head; 2 clusters
    of its own) and the head names it ``base_snapshot``, as SPDK reports a snapshot of a head.
    ``other_clones`` adds clones made from it."""
    bdevs = copy.deepcopy(bdevs)
    disk, head_name = head_alias.split("/")
    head = next(b for b in bdevs["result"] if head_alias in b.get("aliases", []))
    snap = copy.deepcopy(transcript(D6, 19)["response"]["result"][0])
    snap.update(name="5f0c1d2e-0000-4000-8000-00000000000%d" % len(head_name), uuid=None,
                aliases=["%s/%s-snap-%s" % (disk, head_name, name)])
    snap["uuid"] = snap["name"]
    snap["driver_specific"]["lvol"].update(
        base_bdev=head["driver_specific"]["lvol"]["base_bdev"], clone=False, clones=[head_name] + list(other_clones),
        lvol_store_uuid=head["driver_specific"]["lvol"]["lvol_store_uuid"])
    snap["driver_specific"]["lvol"].pop("base_snapshot")
    head["driver_specific"]["lvol"].update(base_snapshot="%s-snap-%s" % (head_name, name), clone=True)
    bdevs["result"].append(snap)
    return bdevs


class Unreachable(Expected):
    """A call to a node that is down: the client cannot connect, so no answer exists."""

    def reply(self, request_id):
        raise SpdkUnreachableError(self.method, None, "cannot connect to /n3.sock after 21 attempt(s): Connection "
                                                      "refused; is spdk_tgt running? is rpc_socket right?")


@pytest.fixture
def args(tmp_path):
    """Replace the remote replica by a new one on disk1 of the engine node itself."""
    return dict(engine="vol1-e0", source="vol1-r-a1b2c3d4", replace="vol1-r-b2c3d4e5", node_name="node1",
                host_nqn=ENGINE_HOST,
                replicas=[SOURCE, {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421", "rpc_socket": "/n2.sock"}],
                destination={"replica": "vol1-r-new", "disk": "disk1", "listen_address": "127.0.0.1"},
                listen_address="127.0.0.1", record_dir=str(tmp_path))


@pytest.mark.parametrize("check_mode, replace", [(False, "vol1-r-b2c3d4e5"), (True, "vol1-r-b2c3d4e5"), (False, None)])
def test_a_volume_whose_deletion_began_is_not_rebuilt(args, check_mode, replace):
    """delete_volume.yml cut off half-way left its tombstone: only deleting again may act on the volume."""
    rec.update(rec.record_path(args["record_dir"], "node1"), "node1", lambda record: record.add_tombstone("vol1-e0"))
    args["replace"] = replace
    outcome = run_module(spdk_replica_rebuild, args, [], check_mode=check_mode)
    assert outcome.failed and outcome.rpc_count == 0
    assert "spdk_replica_rebuild of engine vol1-e0 (new replica vol1-r-new) refused" in outcome.msg
    assert "delete_volume.yml -e volume=vol1-e0 finishes it" in outcome.msg


@pytest.fixture
def done(args):
    """The rebuild is finished: vol1-r-b2c3d4e5 on node2 is RW in vol1-e0; it replaced ``vol1`` on node3."""
    return dict(args, replicas=[SOURCE, {"name": "vol1", "rpc_socket": "/n3.sock"}], replace="vol1",
                destination={"replica": "vol1-r-b2c3d4e5", "disk": "disk2", "rpc_socket": "/n2.sock",
                             "listen_address": "127.0.0.1"})


REPLACED_NQN = "nqn.2026-01.io.spdk-storage:vol1"
LOCK_NQN = "nqn.2026-01.io.spdk-storage:lock:vol1-e0"


def lock_calls():
    """The volume lock's RPCs on the engine node: taken before the first change, released at the end."""
    return LockCalls(LOCK_NQN)


LOCK = lock_calls()     # the tests run one after the other: each take() is answered by its own release()


def test_plan_only_reads_the_engine_node_once_and_picks_online_for_a_live_frontend(args):
    outcome = run_module(spdk_replica_rebuild, dict(args, step="plan"), [engine_reads()])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.result["rpc_calls"] == 5
    view = outcome.result["rebuild"]
    assert view["strategy"] == "online" and view["state"] == "planned" and view["mode"] is None
    assert view["replica"] == {"name": "vol1-r-new", "disk": "disk1"}


def test_check_mode_plans_the_new_head_and_sends_no_mutating_call(args):
    outcome = run_module(spdk_replica_rebuild, args, [
        engine_reads(),
        reads(("rpc_get_methods", None, answer(INTRO, 2))),
        lock_calls().absent(),          # check mode only looks whether another run holds the lock
        # what the removal after the join would delete: node2 holds the replaced replica, exported, and the
        # engine node is connected to it (its controller goes first, so it is not a reason to keep it)
        reads(*node2().reads()),
        expect("bdev_raid_get_bdevs", {"category": "all"}, result([])),
        expect("nvmf_subsystem_get_controllers", {"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"},
               answer(HOSTS, 17)),
    ], check_mode=True, diff=True)
    assert not outcome.failed, outcome.msg
    assert outcome.mutating == []
    assert outcome.changed is True
    assert [(a["method"], a["params"]) for a in outcome.result["actions"]] == [
        ("bdev_lvol_create", {"lvol_name": "vol1-r-new", "size_in_mib": 256, "thin_provision": True,
                              "lvs_name": "disk1"})]
    assert outcome.result["diff"]["before"]["present"] is False
    assert outcome.result["diff"]["after"] == {"destination": "vol1-r-new", "present": True, "mode": "RW",
                                               "chain": []}
    assert any("check mode stops before joining" in w for w in outcome.warnings)
    assert outcome.result["rebuild"]["removed_replica"] == {
        "name": "vol1-r-b2c3d4e5", "node": "/n2.sock", "state": "planned", "lvols": ["disk2/vol1-r-b2c3d4e5"],
        "export": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5", "controller": "vol1-r-b2c3d4e5", "error": None}


def test_a_finished_rebuild_whose_replaced_replica_is_gone_is_reads_only(done):
    """The second run after a rebuild: nothing of the replaced replica is left on its node (node2's
    recording has no vol1), no system snapshot in any chain: 12 reads, no change."""
    outcome = run_module(spdk_replica_rebuild, done, [engine_reads(), dest_reads(), reads(*node2().reads())])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.result["actions"] == []
    assert outcome.result["rpc_calls"] == 12
    assert outcome.result["rpc_calls_by_node"] == {"/nonexistent/spdk-unit-test.sock": 5, "/n2.sock": 4,
                                                   "/n3.sock": 3}
    view = outcome.result["rebuild"]
    assert view["state"] == "done" and view["mode"] == "RW"
    assert view["removed_replica"]["state"] == "absent" and view["merged_system_snapshots"] == []


def test_a_finished_rebuild_removes_the_replaced_replica_its_snapshots_and_its_export(done):
    """Its export first (once the engine node's host left it), then the head, then the snapshots children
    first: the same steps as spdk_replica state=absent."""
    lock = lock_calls()
    outcome = run_module(spdk_replica_rebuild, done, [
        engine_reads(), dest_reads(),
        reads(*chain().reads()),
        expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6)),
        # the engine node's controller was detached by the join; the target notices a moment later
        expect("nvmf_subsystem_get_controllers", {"nqn": REPLACED_NQN}, answer(HOSTS, 17)),
        expect("nvmf_subsystem_get_controllers", {"nqn": REPLACED_NQN}, answer(HOSTS, 20)),
        lock.take(),
        expect("nvmf_delete_subsystem", {"nqn": REPLACED_NQN}, answer("more/d1_set_parent_thin_no_parent.jsonl", 8)),
        expect("bdev_lvol_delete", {"name": "disk1/vol1"}, answer(LVOL_OPS, 127)),
        expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}, answer(LVOL_OPS, 123)),
        expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-01"}, answer(LVOL_OPS, 128)),
        lock.release(),
    ])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True and outcome.warnings == []
    assert outcome.result["rebuild"]["removed_replica"] == {
        "name": "vol1", "node": "/n3.sock", "state": "removed", "export": REPLACED_NQN, "controller": None,
        "lvols": ["disk1/vol1", "disk1/vol1-snap-02", "disk1/vol1-snap-01"], "error": None}
    assert [(a["node"], a["method"]) for a in outcome.result["actions"]] == [
        ("node of vol1", "nvmf_delete_subsystem")] + [("node of vol1", "bdev_lvol_delete")] * 3


def test_check_mode_lists_the_removal_of_the_replaced_replica_and_sends_no_change(done):
    outcome = run_module(spdk_replica_rebuild, done, [
        engine_reads(), dest_reads(),
        reads(*chain().reads()),
        expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6)),
        expect("nvmf_subsystem_get_controllers", {"nqn": REPLACED_NQN}, answer(HOSTS, 17)),
        lock_calls().absent(),
    ], check_mode=True)
    assert not outcome.failed, outcome.msg
    assert outcome.mutating == [] and outcome.changed is True
    assert outcome.result["rebuild"]["removed_replica"]["state"] == "planned"
    assert [a["params"] for a in outcome.result["actions"]] == [
        {"nqn": REPLACED_NQN}, {"name": "disk1/vol1"}, {"name": "disk1/vol1-snap-02"}, {"name": "disk1/vol1-snap-01"}]


def test_a_dead_replaced_node_leaves_the_rebuild_done_with_a_warning_on_how_to_remove_it_later(done):
    outcome = run_module(spdk_replica_rebuild, done, [
        engine_reads(), dest_reads(), Unreachable("bdev_lvol_get_lvstores", None, None)])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.mutating == []
    view = outcome.result["rebuild"]
    assert view["state"] == "done" and view["mode"] == "RW"
    assert view["removed_replica"]["state"] == "unreachable"
    assert "cannot connect to /n3.sock" in view["removed_replica"]["error"]
    [warning] = outcome.warnings
    assert "the replaced replica vol1 was not removed: its node (/n3.sock) cannot be reached" in warning
    assert "run this rebuild again" in warning and "spdk.storage.spdk_replica name=vol1 state=absent" in warning


def test_a_replaced_replica_another_host_is_connected_to_is_kept_with_a_warning(done):
    renamed = {"vol1-r-b2c3d4e5": "vol1-r-old"}
    done = dict(done, replicas=[SOURCE, {"name": "vol1-r-old", "rpc_socket": "/n3.sock"}], replace="vol1-r-old")
    outcome = run_module(spdk_replica_rebuild, done, [
        engine_reads(), dest_reads(),
        reads(("bdev_lvol_get_lvstores", None, node2().lvstores),
              ("bdev_get_bdevs", None, answer(INTRO, 62, replace=renamed)),
              ("nvmf_get_subsystems", None, answer(INTRO, 72, replace=renamed))),
        expect("bdev_raid_get_bdevs", {"category": "all"}, result([])),
        expect("nvmf_subsystem_get_controllers", {"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-old"},
               answer(HOSTS, 61)),
    ])
    assert not outcome.failed, outcome.msg
    assert outcome.mutating == []
    assert outcome.result["rebuild"]["removed_replica"]["state"] == "in_use"
    assert any("host-anyone are connected" in w for w in outcome.warnings)


def test_keep_replaced_leaves_the_replaced_replica_and_does_not_read_its_node(done):
    outcome = run_module(spdk_replica_rebuild, dict(done, keep_replaced=True), [engine_reads(), dest_reads()])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.result["rpc_calls"] == 9
    assert outcome.result["rebuild"]["removed_replica"]["state"] == "kept"


def test_a_finished_rebuild_merges_the_system_snapshot_on_every_replica(done):
    """Both RAID members have the system snapshot as their head's parent: it is deleted on each (SPDK merges
    it into the head, more__lvol_ops.json line 123), then both nodes are read again."""
    engine_before = with_system_snapshot(answer(INTRO, 61), "disk1/vol1-r-a1b2c3d4")
    dest_before = with_system_snapshot(answer(INTRO, 62), "disk2/vol1-r-b2c3d4e5")
    outcome = run_module(spdk_replica_rebuild, dict(done, keep_replaced=True), [
        engine_reads(engine_before), dest_reads(dest_before), LOCK.take(),
        expect("bdev_lvol_delete", {"name": "disk1/vol1-r-a1b2c3d4-snap-" + SYSTEM}, answer(LVOL_OPS, 123)),
        expect("bdev_lvol_delete", {"name": "disk2/vol1-r-b2c3d4e5-snap-" + SYSTEM}, answer(LVOL_OPS, 123)),
        engine_reads(), dest_reads(), LOCK.release(),
    ])
    assert not outcome.failed, outcome.msg
    view = outcome.result["rebuild"]
    assert outcome.changed is True and view["merged_system_snapshots"] == [SYSTEM]
    assert view["source_chain"] == view["destination_chain"] == [] and view["snapshot_sets_match"]
    assert [a["node"] for a in outcome.result["actions"]] == ["engine node", "destination node"]


def test_a_merge_interrupted_after_one_replica_is_finished_on_the_other(done):
    outcome = run_module(spdk_replica_rebuild, dict(done, keep_replaced=True), [
        engine_reads(), dest_reads(with_system_snapshot(answer(INTRO, 62), "disk2/vol1-r-b2c3d4e5")), LOCK.take(),
        expect("bdev_lvol_delete", {"name": "disk2/vol1-r-b2c3d4e5-snap-" + SYSTEM}, answer(LVOL_OPS, 123)),
        dest_reads(), LOCK.release(),
    ])
    assert not outcome.failed, outcome.msg
    assert outcome.result["rebuild"]["merged_system_snapshots"] == [SYSTEM]


def test_a_system_snapshot_with_a_clone_of_its_own_stays_on_every_replica(done):
    engine_before = with_system_snapshot(answer(INTRO, 61), "disk1/vol1-r-a1b2c3d4", other_clones=["peek"])
    dest_before = with_system_snapshot(answer(INTRO, 62), "disk2/vol1-r-b2c3d4e5")
    outcome = run_module(spdk_replica_rebuild, dict(done, keep_replaced=True), [
        engine_reads(engine_before), dest_reads(dest_before)])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.result["rebuild"]["merged_system_snapshots"] == []
    assert any("system snapshot %s is kept on every replica: it has peek, vol1-r-a1b2c3d4 on replica "
               "vol1-r-a1b2c3d4" % SYSTEM in w for w in outcome.warnings)


def test_a_system_snapshot_noted_in_the_record_is_merged_and_dropped_from_the_record(done, tmp_path):
    """A system snapshot named with the system_snapshot option is known by the record, not by its name."""
    path = rec.record_path(str(tmp_path), "node1")
    rec.update(path, "node1", lambda record: record.add_snapshot("vol1-e0", "base", "system"))
    engine_before = with_system_snapshot(answer(INTRO, 61), "disk1/vol1-r-a1b2c3d4", name="base")
    dest_before = with_system_snapshot(answer(INTRO, 62), "disk2/vol1-r-b2c3d4e5", name="base")
    outcome = run_module(spdk_replica_rebuild, dict(done, keep_replaced=True), [
        engine_reads(engine_before), dest_reads(dest_before), LOCK.take(),
        expect("bdev_lvol_delete", {"name": "disk1/vol1-r-a1b2c3d4-snap-base"}, answer(LVOL_OPS, 123)),
        expect("bdev_lvol_delete", {"name": "disk2/vol1-r-b2c3d4e5-snap-base"}, answer(LVOL_OPS, 123)),
        engine_reads(), dest_reads(), LOCK.release(),
    ])
    assert not outcome.failed, outcome.msg
    assert outcome.result["rebuild"]["merged_system_snapshots"] == ["base"]
    with open(path) as handle:
        assert "vol1-e0" not in json.load(handle).get("snapshots", {})


def test_offline_is_refused_while_the_frontend_serves_io_and_nothing_changes(args):
    outcome = run_module(spdk_replica_rebuild, dict(args, strategy="offline"), [engine_reads()])
    assert outcome.failed and outcome.mutating == []
    assert "offline needs the engine without frontend" in outcome.msg


def test_a_destination_disk_missing_on_its_node_is_named(args):
    missing = dict(args, destination=dict(args["destination"], disk="nodisk"))
    outcome = run_module(spdk_replica_rebuild, missing, [engine_reads()])
    assert outcome.failed and "disk nodisk not found on the destination node (disks: disk1)" in outcome.msg


@pytest.mark.parametrize("change, message", [
    ({"source": "vol1-r-zzz"}, "source replica vol1-r-zzz is not in replicas"),
    ({"destination": {"replica": "vol1-r-b2c3d4e5", "disk": "disk1", "listen_address": "127.0.0.1"}},
     "already one of the engine's replicas"),
    ({"destination": {"replica": "new-rebuild", "disk": "disk1", "listen_address": "127.0.0.1"}},
     "reserved for transient rebuild volumes"),
    ({"bandwidth_mb_sec": -1}, "bandwidth_mb_sec must be 0"),
    ({"ctrlr_loss_timeout_sec": 0}, "ctrlr_loss_timeout_sec 0 never deletes"),
    ({"system_snapshot": "bad/name"}, "may only contain"),
])
def test_bad_input_fails_before_any_rpc(args, change, message):
    outcome = run_module(spdk_replica_rebuild, dict(args, **change), [])
    assert outcome.failed and message in outcome.msg
    assert outcome.result["rpc_calls"] == 0


def test_check_mode_plans_the_removal_of_a_replaced_replica_on_the_engine_node_as_after_the_join(args):
    """The replaced replica is the engine node's own (the RAID holds it now): the preview plans its removal
    as it will be once the join took it out of the RAID, not refused as in use."""
    remote_source = {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421", "rpc_socket": "/n2.sock"}
    swapped = dict(args, replicas=[SOURCE, remote_source], source="vol1-r-b2c3d4e5", replace="vol1-r-a1b2c3d4")
    outcome = run_module(spdk_replica_rebuild, swapped, [
        engine_reads(), dest_reads(),
        reads(("rpc_get_methods", None, answer(INTRO, 2))),
        reads(("rpc_get_methods", None, answer(INTRO, 2))),
        lock_calls().absent(),
    ], check_mode=True)
    assert not outcome.failed, outcome.msg
    assert outcome.mutating == [] and outcome.warnings == ["check mode stops before joining: the join depends on "
                                                           "what the copy creates"]
    assert outcome.result["rebuild"]["removed_replica"] == {
        "name": "vol1-r-a1b2c3d4", "node": "engine node", "state": "planned", "lvols": ["disk1/vol1-r-a1b2c3d4"],
        "export": None, "controller": None, "error": None}


@pytest.mark.parametrize("change, message", [
    ({"wait_timeout": 0}, "wait_timeout must be more than 0 and at most 604800 seconds, got 0.0"),
    ({"wait_timeout": 700000}, "wait_timeout must be more than 0 and at most 604800 seconds"),
    ({"wait_sleep": 0}, "wait_sleep must be more than 0 seconds and at most wait_timeout (3600.0), got 0.0"),
    ({"wait_timeout": 10, "wait_sleep": 30}, "wait_sleep must be more than 0 seconds and at most wait_timeout"),
])
def test_wait_options_no_wait_can_use_are_refused_before_any_rpc(args, change, message):
    outcome = run_module(spdk_replica_rebuild, dict(args, **change), [])
    assert outcome.failed and message in outcome.msg
    assert outcome.result["rpc_calls"] == 0


def test_a_replica_given_both_a_disk_and_an_address_is_refused_before_any_rpc(args):
    both = dict(SOURCE, address="127.0.0.1:4420")
    outcome = run_module(spdk_replica_rebuild, dict(args, replicas=[both] + args["replicas"][1:]), [])
    assert outcome.failed and "replica vol1-r-a1b2c3d4: give disk" in outcome.msg and "not both" in outcome.msg
    assert outcome.result["rpc_calls"] == 0


def test_a_failed_step_is_reported_with_the_actions_sent_up_to_it(args):
    """The new head cannot be made (the answer SPDK gives when the name is taken, step6.jsonl line 1): the
    failure names the RPC and lists what the run sent."""
    outcome = run_module(spdk_replica_rebuild, args, [
        engine_reads(),
        reads(("rpc_get_methods", None, answer(INTRO, 2))),
        LOCK.take(),
        expect("bdev_lvol_create", {"lvol_name": "vol1-r-new", "size_in_mib": 256, "thin_provision": True,
                                    "lvs_name": "disk1"}, answer("step6.jsonl", 1)),
        LOCK.release(),
    ])
    assert outcome.failed and outcome.result["rpc_method"] == "bdev_lvol_create"
    assert outcome.result["rpc_error_code"] == -17
    assert [(a["node"], a["method"]) for a in outcome.result["actions"]] == [("engine node", "bdev_lvol_create")]
    assert outcome.result["rpc_calls"] == 10     # 7, and the volume lock's 3 (take, read back, release)

# -*- coding: utf-8 -*-
"""spdk_replica_rebuild through main(), with the RPCs it must send, in order, on recorded answers.

The engine is ``vol1-e0`` of more/introspection.jsonl node1 (local replica ``vol1-r-a1b2c3d4``,
remote ``vol1-r-b2c3d4e5`` attached as ``vol1-r-b2c3d4e5n1``, RAID1 with superblock, frontend
``nqn.2026-01.io.spdk-storage:vol1-e0`` live). Every role's client goes through the same
scripted wire, so the script lists the engine node's reads, then the destination node's.
The full copy/join flows run against emulated nodes in tests/integration/test_rebuild_emulated.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from expected_calls import answer, reads, result, run_module
from replica_scenarios import node2

from ansible_collections.spdk.storage.plugins.modules import spdk_replica_rebuild

INTRO = "more/introspection.jsonl"
SOURCE = {"name": "vol1-r-a1b2c3d4", "disk": "disk1"}


def engine_reads():
    return reads(("bdev_lvol_get_lvstores", None, answer(INTRO, 63)),
                 ("bdev_get_bdevs", None, answer(INTRO, 61)),
                 ("nvmf_get_subsystems", None, answer(INTRO, 78)),
                 ("bdev_nvme_get_controllers", None, answer(INTRO, 80)),
                 ("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)))


def dest_reads():
    scenario = node2()
    return reads(*(scenario.reads() + [("bdev_nvme_get_controllers", None, result([]))]))


@pytest.fixture
def args(tmp_path):
    """Replace the remote replica by a new one on disk1 of the engine node itself."""
    return dict(engine="vol1-e0", source="vol1-r-a1b2c3d4", replace="vol1-r-b2c3d4e5", node_name="node1",
                replicas=[SOURCE, {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421", "rpc_socket": "/n2.sock"}],
                destination={"replica": "vol1-r-new", "disk": "disk1", "listen_address": "127.0.0.1"},
                listen_address="127.0.0.1", record_dir=str(tmp_path))


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


def test_a_destination_already_rw_in_the_raid_is_done_after_reads_only(args):
    done = dict(args, replicas=[SOURCE, {"name": "vol1-r-old", "rpc_socket": "/n3.sock"}], replace="vol1-r-old",
                destination={"replica": "vol1-r-b2c3d4e5", "disk": "disk2", "rpc_socket": "/n2.sock",
                             "listen_address": "127.0.0.1"})
    outcome = run_module(spdk_replica_rebuild, done, [engine_reads(), dest_reads()])
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False and outcome.result["actions"] == []
    assert outcome.result["rpc_calls"] == 9
    assert outcome.result["rebuild"]["state"] == "done" and outcome.result["rebuild"]["mode"] == "RW"


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

# -*- coding: utf-8 -*-
"""spdk_engine end to end through main(), with the RPCs it must send, in order.

Answers are real SPDK v26.05 answers (tests/unit/fixtures/transcripts). The engine is
``vol1-e0`` of more/introspection.jsonl node1: a local replica ``disk1/vol1-r-a1b2c3d4`` and a
remote one attached as controller ``vol1-r-b2c3d4e5`` (bdev ``vol1-r-b2c3d4e5n1``), RAID1 with
a superblock, frontend ``nqn.2026-01.io.spdk-storage:vol1-e0`` on 127.0.0.1:4420 with ANA.
A missing, extra or different call fails the test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
from ansible.module_utils import basic
from tests.unit.engine_snapshot_scenarios import LockCalls
from tests.unit.expected_calls import answer, expect, locked, reads, result, run_module, transcript

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.modules import spdk_engine

INTRO = "more/introspection.jsonl"
NQN = "nqn.2026-01.io.spdk-storage:vol1-e0"
HOST1 = "nqn.2026-01.io.spdk-storage:host-node1"
HOSTS = ["nqn.2026-01.io.spdk-storage:host-frontend-a", "nqn.2026-01.io.spdk-storage:host-node3"]
LOCAL = {"name": "vol1-r-a1b2c3d4", "disk": "disk1"}
REMOTE = {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421"}
LOCAL_UUID = "42971873-bab4-42f3-a8f1-894aebb3c9db"
ATTACH = {"name": "vol1-r-b2c3d4e5", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4421",
          "subnqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5", "hostnqn": HOST1,
          "ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
LISTEN = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}


@pytest.fixture
def args(tmp_path):
    return dict(name="vol1-e0", size="255MiB", replicas=[LOCAL, REMOTE], listen_address="127.0.0.1",
                allowed_hosts=HOSTS, host_nqn=HOST1, node_name="node1", record_dir=str(tmp_path))


LOCK_NQN = "nqn.2026-01.io.spdk-storage:lock:vol1-e0"


def run(args, calls, **kwargs):
    """The module run; a run that changes the engine takes the volume's lock first and releases it at the end."""
    if not kwargs.get("check_mode"):
        calls = locked(calls, LockCalls(LOCK_NQN))
    return run_module(spdk_engine, args, calls, **kwargs)


def bdevs(*drop):
    return result([b for b in answer(INTRO, 61)["result"] if b["name"] not in drop])


def no_subsystem():
    return answer(INTRO, 8)


def no_raid():
    return answer(INTRO, 6)


def engine_reads(raids=None, bdev_answer=None, subsystems=None):
    """The batch every run starts with: RAIDs, bdevs, subsystems."""
    return reads(("bdev_raid_get_bdevs", {"category": "all"}, raids or answer(INTRO, 83)),
                 ("bdev_get_bdevs", None, bdev_answer or answer(INTRO, 61)),
                 ("nvmf_get_subsystems", None, subsystems or answer(INTRO, 78)))


def degraded_raids():
    """more/nvme_reconnect L84: the remote controller was lost, its slot is empty."""
    return {"result": transcript("more/nvme_reconnect.jsonl", 84, replace={
        "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]}


def rebuilding_raids(percent, blocks):
    """The engine's RAID (INTRO L83) while SPDK rebuilds the remote replica, as d4 L29-L31 show a rebuild."""
    raids = answer(INTRO, 83)
    raids["result"][0]["process"] = {"type": "rebuild", "target": "vol1-r-b2c3d4e5n1",
                                     "progress": {"blocks": blocks, "percent": percent}}
    return raids


def controllers(line):
    """more/nvme_reconnect: L270 the remote replica's controller waits to reconnect (its target was killed,
    ctrlr_loss_timeout_sec not over), L310 it is connected again (``enabled``); L83 it was deleted."""
    return answer("more/nvme_reconnect.jsonl", line)


ADD = {"raid_bdev": "vol1-e0", "base_bdev": "vol1-r-b2c3d4e5n1"}
# What bdev_raid_add_base_bdev answers when the member's superblock cannot be read (rpc_bdev_raid_add_base_bdev's
# message with -EIO): the controller lost its connection between the read and the add.
ADD_EIO = {"error": {
    "code": -5, "message": "Failed to add base bdev vol1-r-b2c3d4e5n1 to RAID bdev vol1-e0: Input/output error"}}


def create_calls():
    """Everything a first run sends on a node that has the local replica only."""
    return [
        engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem()),
        expect("bdev_nvme_get_controllers", None, answer(INTRO, 7)),
        expect("bdev_nvme_attach_controller", ATTACH, answer(INTRO, 34)),
        expect("bdev_wait_for_examine", None, answer("step5.jsonl", 43)),
        engine_reads(no_raid(), bdevs("vol1-e0"), no_subsystem()),
        expect("bdev_raid_create", {"name": "vol1-e0", "raid_level": "raid1", "strip_size_kb": 0, "superblock": True,
                                    "base_bdevs": ["disk1/vol1-r-a1b2c3d4", "vol1-r-b2c3d4e5n1"]}, answer(INTRO, 37)),
        engine_reads(subsystems=no_subsystem()),
        expect("nvmf_get_transports", None, answer(INTRO, 79)),
        expect("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": False, "serial_number": "SPDKST825679C9414847",
                                         "model_number": "spdk.storage engine", "ana_reporting": True},
               answer(INTRO, 43)),
        expect("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "vol1-e0", "anagrpid": 1}},
               answer(INTRO, 46)),
        expect("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTS[0]}, answer(INTRO, 45)),
        expect("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTS[1]}, answer(INTRO, 44)),
        expect("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": LISTEN}, answer(INTRO, 47)),
        expect("nvmf_subsystem_listener_set_ana_state", {"nqn": NQN, "listen_address": LISTEN,
                                                         "ana_state": "inaccessible", "anagrpid": 2},
               answer("more/ana/run15_nsgroup_pause_nodrain.jsonl", 18)),
        expect("nvmf_get_subsystems", None, answer(INTRO, 78)),
    ]


def superblock_clash_calls():
    """A first run whose bdev_raid_create answers -17 (a member carries an earlier RAID's superblock); the run
    detaches the controller it attached."""
    calls = create_calls()[:6]
    calls[5] = expect("bdev_raid_create", calls[5].params,
                      {"error": {"code": -17, "message": "Failed to create RAID bdev vol1-e0: File exists"}})
    return calls + [engine_reads(no_raid(), bdevs("vol1-e0"), no_subsystem()),
                    expect("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"}, answer("step4.jsonl", 22)),
                    expect("bdev_get_bdevs", {"name": "vol1-r-b2c3d4e5n1"}, answer("more/nvme_reconnect.jsonl", 85))]


def record_of(args):
    with open(os.path.join(args["record_dir"], "node1.json")) as handle:
        return json.load(handle)


class TestPresent:
    def test_create_attaches_awaits_examine_creates_the_raid_and_an_ana_frontend(self, args):
        outcome = run(args, create_calls(), diff=True)
        assert outcome.changed is True and not outcome.failed
        engine = outcome.result["engine"]
        assert engine["state"] == "healthy" and engine["size"] == 255 * (1 << 20)
        assert [(r["name"], r["mode"]) for r in engine["replicas"]] == [("vol1-r-a1b2c3d4", "RW"),
                                                                        ("vol1-r-b2c3d4e5", "RW")]
        assert engine["frontend"]["port"] == 4420 and engine["frontend"]["ana_group"] == 1
        # 3 reads + controllers + attach + examine + 3 reads + create + 3 reads + transports
        # + 7 frontend steps (2 hosts) + the subsystem read, and the volume lock's 3 (take, read back, release)
        assert outcome.rpc_count == 24
        assert outcome.result["diff"] == {
            "before": {"state": "absent"},
            "after": {"state": "present", "replicas": ["vol1-r-a1b2c3d4", "vol1-r-b2c3d4e5"],
                      "frontend": {"type": "nvmf", "nqn": NQN, "listen_address": "127.0.0.1", "port": 4420,
                                   "allowed_hosts": HOSTS}}}
        recorded = record_of(args)["engines"]["vol1-e0"]
        assert recorded["replicas"] == [LOCAL, dict(REMOTE, nqn="nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5")]
        assert recorded["frontend_port"] == 4420
        assert record_of(args)["exposures"][NQN]["port"] == 4420

    def test_check_mode_plans_the_same_and_sends_only_reads(self, args):
        outcome = run(args, [
            engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem()),
            expect("bdev_nvme_get_controllers", None, answer(INTRO, 7)),
            LockCalls(LOCK_NQN).absent(),       # at the first planned change: would a real run wait for the lock?
            expect("nvmf_get_transports", None, answer(INTRO, 79)),
        ], check_mode=True, diff=True)
        assert outcome.changed is True and outcome.mutating == []
        assert [a["method"] for a in outcome.result["actions"]] == [
            "bdev_nvme_attach_controller", "bdev_raid_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns",
            "nvmf_subsystem_add_host", "nvmf_subsystem_add_host", "nvmf_subsystem_add_listener",
            "nvmf_subsystem_listener_set_ana_state"]
        assert outcome.result["diff"]["after"]["frontend"]["port"] == 4420
        assert not os.path.exists(os.path.join(args["record_dir"], "node1.json"))

    def test_a_healthy_engine_is_three_reads_in_one_batch(self, args):
        args["record_dir"] = ""
        outcome = run(args, [engine_reads()])
        assert outcome.changed is False and outcome.result["actions"] == []
        assert outcome.rpc_count == 3 and outcome.script.exchanges == [3]
        assert outcome.result["engine"]["state"] == "healthy"

    def test_a_lost_record_is_written_again_then_nothing_changes(self, args):
        first = run(args, [engine_reads()])
        assert first.changed is True and first.result["actions"] == [] and first.result["record"]["written"]
        second = run(args, [engine_reads()])
        assert second.changed is False and second.result["record"]["written"] is False

    def test_an_unreachable_replica_of_a_serving_engine_is_err_and_explained(self, args):
        args["record_dir"] = ""
        outcome = run(args, [
            engine_reads(degraded_raids(), bdevs("vol1-r-b2c3d4e5n1")),
            expect("bdev_nvme_get_controllers", None, answer("more/nvme_reconnect.jsonl", 83)),
            expect("bdev_nvme_attach_controller", ATTACH, answer("more/nvmf_hosts.jsonl", 9)),
        ])
        assert not outcome.failed and outcome.changed is False
        assert outcome.result["engine"]["state"] == "degraded"
        assert [r["mode"] for r in outcome.result["engine"]["replicas"]] == ["RW", "ERR"]
        assert any("vol1-r-b2c3d4e5 stays ERR" in w and "does not allow the host " + HOST1 in w
                   for w in outcome.warnings)

    def test_a_replica_back_but_not_re_added_by_examine_is_added_with_a_rebuild(self, args):
        outcome = run(args, [
            engine_reads(degraded_raids(), bdevs("vol1-r-b2c3d4e5n1")),
            expect("bdev_nvme_get_controllers", None, answer("more/nvme_reconnect.jsonl", 83)),
            expect("bdev_nvme_attach_controller", ATTACH, answer(INTRO, 34)),
            expect("bdev_wait_for_examine", None, answer("step5.jsonl", 43)),
            engine_reads(degraded_raids()),
            expect("bdev_raid_add_base_bdev", ADD, answer("more/d4_raid_add_base_rebuild_alloc.jsonl", 28)),
            engine_reads(rebuilding_raids(0, 0)),
        ])
        assert outcome.changed is True, outcome.msg
        remote = outcome.result["engine"]["replicas"][1]
        assert (remote["mode"], remote["rebuild"]) == ("WO", {"percent": 0, "blocks": 0})
        assert outcome.result["engine"]["state"] == "degraded"
        assert outcome.result["messages"] == ["vol1-r-b2c3d4e5: added back to the RAID by this run, rebuilding (0%)"]

    def test_a_replica_spdk_re_added_from_its_superblock_is_reported_wo_and_said_so(self, args):
        """Attaching a stale replica makes SPDK's examine re-add it with a rebuild the module did not start."""
        args["record_dir"] = ""
        outcome = run(args, [
            engine_reads(degraded_raids(), bdevs("vol1-r-b2c3d4e5n1")),
            expect("bdev_nvme_get_controllers", None, controllers(83)),
            expect("bdev_nvme_attach_controller", ATTACH, answer(INTRO, 34)),
            expect("bdev_wait_for_examine", None, answer("step5.jsonl", 43)),
            engine_reads(rebuilding_raids(25, 4096)),
        ])
        assert not outcome.failed, outcome.msg
        assert [a["method"] for a in outcome.result["actions"]] == ["bdev_nvme_attach_controller"]
        remote = outcome.result["engine"]["replicas"][1]
        assert (remote["mode"], remote["rebuild"]) == ("WO", {"percent": 25, "blocks": 4096})
        assert outcome.result["messages"] == [
            "vol1-r-b2c3d4e5: SPDK re-added it from its superblock, rebuilding (25%)"]

    def test_a_rebuild_already_running_is_reported_with_its_progress_in_three_reads(self, args):
        args["record_dir"] = ""
        outcome = run(args, [engine_reads(rebuilding_raids(53, 8704))])
        assert outcome.changed is False and outcome.rpc_count == 3
        assert [r["mode"] for r in outcome.result["engine"]["replicas"]] == ["RW", "WO"]
        assert outcome.result["messages"] == ["vol1-r-b2c3d4e5: rebuilding (53%), started before this run"]

    @pytest.mark.parametrize("check_mode", [False, True])
    def test_a_replica_whose_controller_is_reconnecting_stays_err_and_is_not_added(self, args, check_mode):
        """The RAID dropped the member (its I/O failed) while its controller still waits to reconnect
        (ctrlr_loss_timeout_sec is not over): its bdev is still here, but adding it would answer -5."""
        args["record_dir"] = ""
        outcome = run(args, [engine_reads(degraded_raids()),
                             expect("bdev_nvme_get_controllers", None, controllers(270))], check_mode=check_mode)
        assert not outcome.failed, outcome.msg
        assert outcome.changed is False and outcome.result["actions"] == [] and outcome.mutating == []
        assert outcome.result["engine"]["state"] == "degraded"
        assert [r["mode"] for r in outcome.result["engine"]["replicas"]] == ["RW", "ERR"]
        assert any("vol1-r-b2c3d4e5 stays ERR" in w and "reconnect_is_delayed" in w and "unreachable" in w
                   and "run again" in w for w in outcome.warnings), outcome.warnings
        assert outcome.rpc_count == 4

    def test_an_add_answering_eio_because_the_controller_just_dropped_is_err_not_a_failure(self, args):
        args["record_dir"] = ""
        outcome = run(args, [
            engine_reads(degraded_raids()),
            expect("bdev_nvme_get_controllers", None, controllers(310)),
            expect("bdev_raid_add_base_bdev", ADD, ADD_EIO),
        ])
        assert not outcome.failed, outcome.msg
        assert outcome.changed is False and outcome.result["actions"] == []
        assert [r["mode"] for r in outcome.result["engine"]["replicas"]] == ["RW", "ERR"]
        assert any("vol1-r-b2c3d4e5 stays ERR" in w and "-5" in w and "unreachable" in w for w in outcome.warnings)

    def test_with_wait_the_run_waits_for_the_controller_then_adds_the_replica(self, args):
        args.update(record_dir="", wait=True, wait_sleep=0.001, wait_timeout=30)
        outcome = run(args, [
            engine_reads(degraded_raids()),
            expect("bdev_nvme_get_controllers", None, controllers(270)),
            # the next poll: the replica's node is back
            engine_reads(degraded_raids()),
            expect("bdev_nvme_get_controllers", None, controllers(310)),
            expect("bdev_raid_add_base_bdev", ADD, answer("more/d4_raid_add_base_rebuild_alloc.jsonl", 28)),
            engine_reads(rebuilding_raids(0, 0)),
            expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)),
            expect("bdev_nvme_get_controllers", None, controllers(310)),     # its controller stays connected
        ])
        assert not outcome.failed, outcome.msg
        assert [a["method"] for a in outcome.result["actions"]] == ["bdev_raid_add_base_bdev"]
        assert outcome.result["engine"]["state"] == "healthy"
        assert not any("stays ERR" in w for w in outcome.warnings)
        assert outcome.result["messages"] == [
            "vol1-r-b2c3d4e5: added back to the RAID by this run, rebuilding (0%)",
            "vol1-r-b2c3d4e5: rebuild finished, RW"]

    def test_with_wait_a_member_whose_controller_is_reconnecting_is_waited_for_though_the_raid_lists_it(self, args):
        """Its target restarted: the RAID still lists the member (RW) while the controller reconnects, and would
        drop it once ctrlr_loss_timeout_sec passed; the run returns only once the controller is connected."""
        args.update(record_dir="", wait=True, wait_sleep=0.001, wait_timeout=30)
        outcome = run(args, [
            engine_reads(), expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)),
            expect("bdev_nvme_get_controllers", None, controllers(270)),     # reconnect_is_delayed
            engine_reads(),                                                   # the next poll: a new pass
            expect("bdev_nvme_get_controllers", None, controllers(310)),     # connected again
        ])
        assert not outcome.failed, outcome.msg
        assert outcome.result["engine"]["state"] == "healthy" and outcome.result["actions"] == []

    def test_with_wait_a_member_whose_controller_never_reconnects_fails_at_wait_timeout_naming_it(self, args):
        args.update(record_dir="", wait=True, wait_sleep=0.01, wait_timeout=0.01)
        outcome = run(args, [engine_reads(), expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)),
                             expect("bdev_nvme_get_controllers", None, controllers(270))])
        assert outcome.failed and outcome.mutating == []
        assert "replica vol1-r-b2c3d4e5's controller is reconnect_is_delayed" in outcome.msg

    def test_with_wait_a_controller_that_stays_disconnected_fails_at_wait_timeout_naming_it(self, args):
        args.update(record_dir="", wait=True, wait_sleep=0.01, wait_timeout=0.01)
        outcome = run(args, [engine_reads(degraded_raids()),
                             expect("bdev_nvme_get_controllers", None, controllers(270))])
        assert outcome.failed and outcome.mutating == []
        assert "vol1-r-b2c3d4e5" in outcome.msg and "reconnect_is_delayed" in outcome.msg
        assert "wait_timeout" in outcome.msg

    def test_replicas_of_different_sizes_fail_and_the_attached_controller_is_detached(self, args):
        args["replicas"] = [{"name": "vol5-r-0b0b0b0b", "disk": "disk1"}, REMOTE]
        args["size"] = None
        outcome = run(args, [
            engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem()),
            expect("bdev_nvme_get_controllers", None, answer(INTRO, 7)),
            expect("bdev_nvme_attach_controller", ATTACH, answer(INTRO, 34)),
            expect("bdev_wait_for_examine", None, answer("step5.jsonl", 43)),
            engine_reads(no_raid(), bdevs("vol1-e0"), no_subsystem()),
            # the failure: detach what this run attached, and wait until its bdev is gone
            engine_reads(no_raid(), bdevs("vol1-e0"), no_subsystem()),
            expect("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"}, answer("step4.jsonl", 22)),
            expect("bdev_get_bdevs", {"name": "vol1-r-b2c3d4e5n1"}, answer("more/nvme_reconnect.jsonl", 85)),
        ])
        assert outcome.failed
        assert "differ in size" in outcome.msg and "vol5-r-0b0b0b0b 32MiB" in outcome.msg
        assert "vol1-r-b2c3d4e5 256MiB" in outcome.msg
        assert "bdev_raid_create" not in outcome.methods

    def test_an_unreachable_replica_at_creation_fails_naming_the_likely_causes(self, args):
        outcome = run(args, [
            engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem()),
            expect("bdev_nvme_get_controllers", None, answer(INTRO, 7)),
            expect("bdev_nvme_attach_controller", ATTACH, answer("more/nvmf_hosts.jsonl", 9)),
        ])
        assert outcome.failed and outcome.result["rpc_error_code"] == -5
        for cause in ("does not allow the host " + HOST1, "DH-CHAP key", "nothing reachable listens on 127.0.0.1:4421"):
            assert cause in outcome.msg
        # the attach, between the volume lock's take and release
        assert outcome.mutating == ["nvmf_create_subsystem", "bdev_nvme_attach_controller", "nvmf_delete_subsystem"]

    def test_a_superblock_of_an_earlier_raid_is_explained_not_cleared(self, args):
        outcome = run(args, superblock_clash_calls())
        assert outcome.failed and "superblock of an earlier RAID" in outcome.msg
        assert "never clears superblocks" in outcome.msg

    def test_a_failed_run_returns_the_actions_it_sent(self, args):
        """Changed: a failure reports the steps sent up to it (here the attach, the failed create and the
        rollback's detach)."""
        outcome = run(args, superblock_clash_calls())
        assert outcome.failed and outcome.result["rpc_method"] == "bdev_raid_create"
        assert [a["method"] for a in outcome.result["actions"]] == [
            "bdev_nvme_attach_controller", "bdev_raid_create", "bdev_nvme_detach_controller"]

    def test_removing_a_replica_detaches_it_and_waits_until_its_bdev_is_gone(self, args):
        args["replicas"] = [LOCAL, {"name": "vol1-r-new", "address": "127.0.0.2:4421"}]
        new_bdev = answer(INTRO, 61)["result"]
        nvme = [b for b in new_bdev if b["name"] == "vol1-r-b2c3d4e5n1"][0]
        new_bdev.append(dict(nvme, name="vol1-r-newn1", aliases=["11111111-2222-4333-8444-555555555555"],
                             uuid="11111111-2222-4333-8444-555555555555", claimed=False))
        outcome = run(args, [
            engine_reads(bdev_answer=result(new_bdev)),
            # an add of a remote replica: its controller must be connected
            expect("bdev_nvme_get_controllers", None,
                   answer("more/nvme_reconnect.jsonl", 310, replace={"vol1-r-b2c3d4e5": "vol1-r-new"})),
            expect("bdev_raid_remove_base_bdev", {"name": "vol1-r-b2c3d4e5n1"}, answer(INTRO, 41)),
            expect("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"}, answer("step4.jsonl", 22)),
            expect("bdev_get_bdevs", {"name": "vol1-r-b2c3d4e5n1"}, answer("more/nvme_reconnect.jsonl", 85)),
            expect("bdev_raid_add_base_bdev", {"raid_bdev": "vol1-e0", "base_bdev": "vol1-r-newn1"},
                   answer("more/d4_raid_add_base_rebuild_alloc.jsonl", 28)),
            engine_reads(degraded_raids(), bdev_answer=result(new_bdev)),
        ])
        assert outcome.changed is True, outcome.msg
        assert [r["mode"] for r in outcome.result["engine"]["replicas"]] == ["RW", "ERR"]

    def test_blockdev_without_kernel_support_fails_before_any_rpc(self, args, monkeypatch):
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: None)
        args["frontend"] = "blockdev"
        outcome = run(args, [])
        assert outcome.failed and "needs nvme-cli" in outcome.msg and outcome.rpc_count == 0


class TestAbsent:
    def test_delete_keeps_superblocks_and_waits_for_the_controller_bdev(self, args):
        args.update(state="absent", replicas=[])
        outcome = run(args, [
            engine_reads(),
            expect("nvmf_delete_subsystem", {"nqn": NQN}, answer("step4.jsonl", 23)),
            expect("bdev_raid_delete", {"name": "vol1-e0", "clear_sb": False}, answer("step3.jsonl", 60)),
            expect("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"}, answer("step4.jsonl", 22)),
            expect("bdev_get_bdevs", {"name": "vol1-r-b2c3d4e5n1"}, answer("more/nvme_reconnect.jsonl", 85)),
        ], diff=True)
        assert outcome.changed is True and outcome.result["engine"] == {"name": "vol1-e0", "state": "absent"}
        assert outcome.result["diff"]["after"] == {"state": "absent"}
        assert outcome.rpc_count == 10        # 7, and the volume lock's 3 (take, read back, release)

    @pytest.mark.parametrize("forget", [False, True])
    def test_a_deleted_engine_keeps_its_snapshot_entries_unless_told_to_forget_them(self, args, forget):
        def snapshot_taken(record):
            record.add_snapshot("vol1-e0", "s1", "user")
        rec.update(rec.record_path(args["record_dir"], "node1"), "node1", snapshot_taken)
        args.update(state="absent", replicas=[REMOTE], forget_snapshots=forget)
        gone = [engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem())]
        planned = run(args, gone, check_mode=True)
        outcome = run(args, gone)
        assert not outcome.failed, outcome.msg
        assert planned.changed is outcome.changed is forget and outcome.result["actions"] == []
        assert ("vol1-e0" in record_of(args)["snapshots"]) is not forget

    def test_a_volume_whose_deletion_began_is_still_deleted(self, args):
        """delete_volume.yml cut off half-way left its tombstone: deleting again is how it is finished."""
        rec.update(rec.record_path(args["record_dir"], "node1"), "node1", lambda record: record.add_tombstone("vol1-e0"))
        args.update(state="absent", replicas=[REMOTE])
        outcome = run(args, [engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem())])
        assert not outcome.failed and outcome.changed is False, outcome.msg

    def test_absent_twice_is_three_reads(self, args):
        args.update(state="absent", replicas=[REMOTE], record_dir="")
        outcome = run(args, [engine_reads(no_raid(), bdevs("vol1-r-b2c3d4e5n1", "vol1-e0"), no_subsystem())])
        assert outcome.changed is False and outcome.rpc_count == 3

    def test_absent_in_check_mode_sends_nothing_mutating(self, args):
        args.update(state="absent")
        outcome = run(args, [engine_reads(), LockCalls(LOCK_NQN).absent()], check_mode=True)
        assert outcome.changed is True and outcome.mutating == []
        assert [a["method"] for a in outcome.result["actions"]] == [
            "nvmf_delete_subsystem", "bdev_raid_delete", "bdev_nvme_detach_controller"]


class TestBadInput:
    @pytest.mark.parametrize("change, why", [
        (dict(replicas=[LOCAL]), "at least 2 replicas"),
        (dict(ctrlr_loss_timeout_sec=0), "never deletes a lost controller"),
        (dict(name="bad/name"), "may only contain"),
        (dict(listen_address="node1.example"), "not an IP address"),
        (dict(allowed_hosts=["not-an-nqn"]), "is not an NQN"),
        (dict(size="10GB"), "decimal unit"),
    ])
    def test_is_refused_before_any_rpc(self, args, change, why):
        args.update(change)
        outcome = run(args, [])
        assert outcome.failed and why in outcome.msg and outcome.rpc_count == 0

    @pytest.mark.parametrize("change, why", [
        (dict(wait_timeout=0), "wait_timeout must be more than 0"),
        (dict(wait_timeout=604801), "at most 604800 seconds"),
        (dict(wait_sleep=0), "wait_sleep must be more than 0"),
        (dict(wait_sleep=5, wait_timeout=2), "at most wait_timeout"),
    ])
    def test_wait_options_no_wait_can_use_are_refused_before_any_rpc(self, args, change, why):
        """Changed: wait_timeout and wait_sleep are floats, checked whether or not wait is set (a detach waits
        up to wait_timeout too); 0 used to be taken."""
        args.update(change)
        outcome = run(args, [])
        assert outcome.failed and why in outcome.msg and outcome.rpc_count == 0

    def test_fractional_wait_options_are_taken(self, args):
        args.update(record_dir="", wait=True, wait_timeout=0.5, wait_sleep=0.25)
        outcome = run(args, [engine_reads(), expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)),
                             expect("bdev_nvme_get_controllers", None, controllers(310))])
        assert not outcome.failed, outcome.msg
        assert outcome.result["engine"]["state"] == "healthy"

    def test_a_volume_whose_deletion_began_is_neither_created_nor_repaired(self, args):
        rec.update(rec.record_path(args["record_dir"], "node1"), "node1", lambda record: record.add_tombstone("vol1-e0"))
        for check_mode in (False, True):
            outcome = run(args, [], check_mode=check_mode)
            assert outcome.failed and outcome.rpc_count == 0
            assert "spdk_engine state=present of vol1-e0 refused: the deletion of volume vol1-e0 began" in outcome.msg
            assert "delete_volume.yml -e volume=vol1-e0 finishes it" in outcome.msg

    def test_a_record_from_a_newer_collection_is_left_alone_with_a_warning(self, args):
        path = os.path.join(args["record_dir"], "node1.json")
        with open(path, "w") as handle:
            json.dump({"format": "spdk.storage/node-record", "version": 9}, handle)
        args["record_dir"] = args["record_dir"]
        outcome = run(args, [engine_reads()])
        assert not outcome.failed and outcome.changed is False
        assert any("newer spdk.storage" in w for w in outcome.warnings)
        with open(path) as handle:
            assert json.load(handle)["version"] == 9

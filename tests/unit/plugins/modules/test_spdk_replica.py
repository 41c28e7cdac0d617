# -*- coding: utf-8 -*-
"""spdk_replica end to end through main(), with the RPCs it must send, in order.

Answers are real SPDK v26.05 answers (tests/unit/fixtures/transcripts); node states are
described in tests/unit/replica_scenarios.py. A missing, extra or different call fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from tests.unit import replica_scenarios as sc
from tests.unit.expected_calls import answer, expect, reads, run_module

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.modules import spdk_replica

MIB = 1 << 20
INTRO = "more/introspection.jsonl"
HOSTS = "more/nvmf_hosts.jsonl"
HOST1 = sc.HOST1
HOST2 = "nqn.2026-01.io.spdk-storage:host-node2"
NQN_B = "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"
NQN_IMG = "nqn.2026-01.io.spdk-storage:img-base-0001"


def run(args, calls, **kwargs):
    return run_module(spdk_replica, args, calls, **kwargs)


def batch(scenario):
    return reads(*scenario.reads())


def create_vol5():
    return expect("bdev_lvol_create", {"lvol_name": "vol5-r-0b0b0b0b", "size_in_mib": 32, "thin_provision": True,
                                       "lvs_name": "disk1", "clear_method": "write_zeroes"}, answer(INTRO, 29))


VOL5 = dict(name="vol5-r-0b0b0b0b", disk="disk1", size="32MiB")


class TestPresent:
    def test_create(self):
        before = sc.without_lvol(sc.node1(), "disk1/vol5-r-0b0b0b0b")
        outcome = run(VOL5, [batch(before), create_vol5(), batch(sc.node1())])
        assert outcome.changed is True
        assert outcome.result["replica"] == {
            "state": "stopped", "name": "vol5-r-0b0b0b0b", "disk": "disk1", "size": 32 * MIB, "snapshots": [],
            "exposure": None, "uuid": "385c2f58-8dd7-4d7b-8746-e31566ca0306", "thin": True,
            "allocated_clusters": 0}

    def test_second_run_changes_nothing_in_one_batch_of_three_reads(self):
        outcome = run(VOL5, [batch(sc.node1())])
        assert outcome.changed is False
        assert outcome.rpc_count == 3 and outcome.script.exchanges == [3]

    def test_exposed_replica_second_run_is_three_reads(self):
        args = dict(name="vol1-r-b2c3d4e5", disk="disk2", size="256MiB", expose=True,
                    listen_address="127.0.0.1", allowed_hosts=[HOST1])
        outcome = run(args, [batch(sc.node2())])
        assert outcome.changed is False and outcome.rpc_count == 3
        assert outcome.result["replica"]["exposure"] == {
            "nqn": NQN_B, "listen_address": "127.0.0.1", "port": 4421, "allowed_hosts": [HOST1],
            "allow_any_host": False}

    def test_grow(self):
        outcome = run(dict(VOL5, size="48MiB"), [
            batch(sc.node1()),
            expect("bdev_lvol_resize", {"name": "disk1/vol5-r-0b0b0b0b", "size_in_mib": 48},
                   answer("more/lvol_ops.jsonl", 104)),
            batch(sc.resized(sc.node1(), "disk1/vol5-r-0b0b0b0b", 48 * MIB)),
        ], diff=True)
        assert outcome.changed is True
        assert outcome.result["replica"]["size"] == 48 * MIB
        assert outcome.result["diff"]["before"]["size"] == 32 * MIB
        assert outcome.result["diff"]["after"]["size"] == 48 * MIB

    def test_shrink_is_refused_and_nothing_is_sent(self):
        outcome = run(dict(VOL5, size="16MiB"), [batch(sc.node1())])
        assert outcome.failed and outcome.mutating == []
        assert "shrinking is refused" in outcome.msg and "Device or resource busy" in outcome.msg

    def test_expose_creates_the_export(self):
        # node2 before its replica was exposed (more/introspection.jsonl L15-L19 did it)
        before = sc.without_subsystem(sc.without_subsystem(sc.node2(), NQN_B), NQN_IMG)
        args = dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1",
                    port_range="4421-4430", allowed_hosts=[HOST1])
        outcome = run(args, [
            batch(before),
            expect("nvmf_get_transports", None, answer("step2.jsonl", 2)),
            expect("nvmf_create_subsystem", lambda p: p["nqn"] == NQN_B and p["allow_any_host"] is False
                   and p["model_number"] == "spdk.storage replica", answer(INTRO, 16)),
            expect("nvmf_subsystem_add_ns", {"nqn": NQN_B, "namespace": {"bdev_name": "disk2/vol1-r-b2c3d4e5"}},
                   answer(INTRO, 18)),
            expect("nvmf_subsystem_add_host", {"nqn": NQN_B, "host": HOST1}, answer(INTRO, 17)),
            expect("nvmf_subsystem_add_listener", {"nqn": NQN_B, "listen_address": {
                "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4421"}}, answer(INTRO, 19)),
            batch(sc.node2()),
        ])
        assert outcome.changed is True
        assert outcome.result["replica"]["exposure"]["port"] == 4421
        assert outcome.result["replica"]["state"] == "present"

    def test_missing_transport_is_created(self):
        before = sc.without_subsystem(sc.without_subsystem(sc.node2(), NQN_B), NQN_IMG)
        args = dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1",
                    port=4421, allowed_hosts=[HOST1])
        outcome = run(args, [
            batch(before),
            expect("nvmf_get_transports", None, {"result": []}),
            expect("nvmf_create_transport", {"trtype": "TCP"}, answer(INTRO, 15)),
            expect("nvmf_create_subsystem", lambda p: p["nqn"] == NQN_B, answer(INTRO, 16)),
            expect("nvmf_subsystem_add_ns", {"nqn": NQN_B, "namespace": {"bdev_name": "disk2/vol1-r-b2c3d4e5"}},
                   answer(INTRO, 18)),
            expect("nvmf_subsystem_add_host", {"nqn": NQN_B, "host": HOST1}, answer(INTRO, 17)),
            expect("nvmf_subsystem_add_listener", lambda p: p["listen_address"]["trsvcid"] == "4421",
                   answer(INTRO, 19)),
            batch(sc.node2()),
        ])
        assert outcome.changed is True

    def test_transport_created_meanwhile_is_not_an_error(self):
        # another run created it between our read and our create (step6.jsonl L21)
        before = sc.without_subsystem(sc.without_subsystem(sc.node2(), NQN_B), NQN_IMG)
        args = dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1",
                    port=4421, allowed_hosts=[HOST1])
        outcome = run(args, [
            batch(before),
            expect("nvmf_get_transports", None, {"result": []}),
            expect("nvmf_create_transport", {"trtype": "TCP"}, answer("step6.jsonl", 21)),
            expect("nvmf_create_subsystem", lambda p: p["nqn"] == NQN_B, answer(INTRO, 16)),
            expect("nvmf_subsystem_add_ns", lambda p: True, answer(INTRO, 18)),
            expect("nvmf_subsystem_add_host", lambda p: True, answer(INTRO, 17)),
            expect("nvmf_subsystem_add_listener", lambda p: True, answer(INTRO, 19)),
            batch(sc.node2()),
        ])
        assert outcome.changed is True and not outcome.failed

    def test_port_allocation_skips_used_ports_in_check_mode(self):
        # node1's engine listens on 4420: a new export takes 4421; check mode sends no change
        args = dict(name="vol9", disk="disk1", size="1GiB", expose=True, listen_address="127.0.0.1",
                    allowed_hosts=[HOST1])
        outcome = run(args, [batch(sc.node1()), expect("nvmf_get_transports", None, answer("step2.jsonl", 2))],
                      check_mode=True, diff=True)
        assert outcome.changed is True and outcome.mutating == []
        assert outcome.result["replica"]["exposure"]["port"] == 4421
        assert [a["method"] for a in outcome.result["actions"]] == [
            "bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host",
            "nvmf_subsystem_add_listener"]
        assert outcome.result["diff"]["before"] == {"state": "absent"}

    def test_allowed_hosts_change(self):
        outcome = run(dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1",
                           allowed_hosts=[HOST2]), [
            batch(sc.node2()),
            expect("nvmf_subsystem_remove_host", {"nqn": NQN_B, "host": HOST1}, answer(HOSTS, 19)),
            expect("nvmf_subsystem_add_host", {"nqn": NQN_B, "host": HOST2}, answer(HOSTS, 12)),
            batch(sc.hosts_set(sc.node2(), NQN_B, [HOST2])),
        ])
        assert outcome.changed is True
        assert outcome.result["replica"]["exposure"]["allowed_hosts"] == [HOST2]

    def test_unexpose(self):
        outcome = run(dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=False), [
            batch(sc.node2()),
            expect("nvmf_delete_subsystem", {"nqn": NQN_B}, answer("more/d1_set_parent_thin_no_parent.jsonl", 8)),
            batch(sc.without_subsystem(sc.node2(), NQN_B)),
        ])
        assert outcome.changed is True
        assert outcome.result["replica"]["state"] == "stopped"
        assert outcome.result["replica"]["exposure"] is None

    def test_failed_rpc_is_reported_with_method_and_code(self):
        before = sc.without_lvol(sc.node1(), "disk1/vol5-r-0b0b0b0b")
        outcome = run(VOL5, [batch(before), expect("bdev_lvol_create", lambda p: True, answer("step6.jsonl", 1))])
        assert outcome.failed
        assert "bdev_lvol_create" in outcome.msg and "-17" in outcome.msg

    def test_a_failure_reports_the_actions_sent_up_to_it(self):
        before = sc.without_lvol(sc.node1(), "disk1/vol5-r-0b0b0b0b")
        outcome = run(VOL5, [batch(before), expect("bdev_lvol_create", lambda p: True, answer("step6.jsonl", 1))])
        assert outcome.failed and outcome.result["rpc_error_code"] == -17
        assert [a["method"] for a in outcome.result["actions"]] == ["bdev_lvol_create"]


class TestStoppedAndAbsent:
    def test_stopped(self):
        outcome = run(dict(name="vol1-r-b2c3d4e5", state="stopped"), [
            batch(sc.node2()),
            expect("nvmf_delete_subsystem", {"nqn": NQN_B}, answer("more/d1_set_parent_thin_no_parent.jsonl", 8)),
            batch(sc.without_subsystem(sc.node2(), NQN_B)),
        ])
        assert outcome.changed is True and outcome.result["replica"]["state"] == "stopped"

    def test_stopped_twice_is_three_reads(self):
        outcome = run(dict(name="vol5-r-0b0b0b0b", state="stopped"), [batch(sc.node1())])
        assert outcome.changed is False and outcome.rpc_count == 3

    def test_absent_deletes_head_then_snapshots_children_first(self):
        outcome = run(dict(name="vol1", disk="disk1", state="absent"), [
            batch(sc.chain()),
            expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6)),
            expect("nvmf_subsystem_get_controllers", {"nqn": "nqn.2026-01.io.spdk-storage:vol1"}, answer(HOSTS, 20)),
            expect("nvmf_delete_subsystem", {"nqn": "nqn.2026-01.io.spdk-storage:vol1"},
                   answer("more/d1_set_parent_thin_no_parent.jsonl", 8)),
            expect("bdev_lvol_delete", {"name": "disk1/vol1"}, answer("more/lvol_ops.jsonl", 127)),
            expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}, answer("more/lvol_ops.jsonl", 123)),
            expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-01"}, answer("more/lvol_ops.jsonl", 128)),
        ], diff=True)
        assert outcome.changed is True
        assert outcome.result["replica"] == {"state": "absent"}
        assert outcome.result["diff"]["before"]["snapshots"] == ["01", "02"]

    def test_absent_twice_is_three_reads(self):
        outcome = run(dict(name="vol9", state="absent"), [batch(sc.node1())])
        assert outcome.changed is False and outcome.rpc_count == 3

    def test_absent_refused_while_a_raid_uses_the_head(self):
        outcome = run(dict(name="vol1-r-a1b2c3d4", state="absent"), [
            batch(sc.node1()), expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83))])
        assert outcome.failed and outcome.mutating == []
        assert "member of RAID vol1-e0" in outcome.msg and "force=true" in outcome.msg

    def test_absent_refused_while_a_host_is_connected(self):
        outcome = run(dict(name="vol1-r-b2c3d4e5", state="absent"), [
            batch(sc.node2()),
            expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6)),
            expect("nvmf_subsystem_get_controllers", {"nqn": NQN_B}, answer(HOSTS, 17)),
        ])
        assert outcome.failed and outcome.mutating == []
        assert "host-node1 are connected" in outcome.msg

    def test_absent_check_mode_sends_no_change(self):
        outcome = run(dict(name="vol1", state="absent"), [
            batch(sc.chain()),
            expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6)),
            expect("nvmf_subsystem_get_controllers", {"nqn": "nqn.2026-01.io.spdk-storage:vol1"}, answer(HOSTS, 20)),
        ], check_mode=True)
        assert outcome.changed is True and outcome.mutating == []
        assert len(outcome.result["actions"]) == 4


class TestBadInputs:
    @pytest.mark.parametrize("args, message", [
        (dict(name="v" * 64, disk="disk1", size="1GiB"), "64 characters long"),
        (dict(name="vol9", disk="disk1", size="lots"), "is not a size"),
        (dict(name="vol9", disk="disk1", size="-5"), "is not a size"),
        (dict(name="vol9", size="1GiB"), "disk is required"),
        (dict(name="vol9", disk="disk1", size="1GiB", expose=True, listen_address="127.0.0.1",
              allowed_hosts=["not-an-nqn"]), "not an NQN"),
    ])
    def test_refused_before_any_rpc(self, args, message):
        outcome = run(args, [])
        assert outcome.failed and outcome.rpc_count == 0
        assert message in outcome.msg

    def test_expose_without_address_is_refused_by_the_argument_spec(self):
        outcome = run(dict(name="vol9", disk="disk1", expose=True), [])
        assert outcome.failed and outcome.rpc_count == 0 and "listen_address" in outcome.msg

    def test_missing_disk_is_refused_after_reading(self):
        outcome = run(dict(name="vol9", disk="nodisk", size="1GiB"), [batch(sc.node1())])
        assert outcome.failed and outcome.mutating == []
        assert "disk nodisk not found" in outcome.msg


class TestRestartedReplicaNode:
    """more/ANSWERS.md D2: a restarted replica target assembles a configuring RAID around its
    own replica from the superblock; it claims the head and SPDK refuses the export (-32602).
    The module deletes that RAID (no clear_sb: the superblock must stay) before exporting."""

    EXPOSE = dict(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1", port=4421,
                  allowed_hosts=[HOST1], node_name="node2")

    @staticmethod
    def args(tmp_path, **extra):
        return dict(TestRestartedReplicaNode.EXPOSE, record_dir=str(tmp_path), **extra)

    @staticmethod
    def reads_after_restart(recording=sc.D2_CLEAN):
        restarted = sc.node2_restarted(recording)
        return [batch(restarted), expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids),
                expect("nvmf_get_transports", None, {"result": []})]

    @pytest.mark.parametrize("recording, delete_line, add_ns_line", [
        (sc.D2_CLEAN, 28, 30), (sc.D2_KILL9, 79, 81)])
    def test_export_releases_the_assembled_raid_first_and_keeps_its_superblock(
            self, tmp_path, recording, delete_line, add_ns_line):
        exported = sc.without_subsystem(sc.node2(), NQN_IMG)
        outcome = run(self.args(tmp_path), [
            self.reads_after_restart(recording),
            # exactly {"name"}: no clear_sb, so the replica keeps the superblock that marks it stale
            expect("bdev_raid_delete", {"name": "vol1-e0"}, answer(recording, delete_line)),
            expect("nvmf_create_transport", {"trtype": "TCP"}, answer(sc.D2_CLEAN, 25)),
            expect("nvmf_create_subsystem", lambda p: p["nqn"] == NQN_B and p["allow_any_host"] is False,
                   answer(sc.D2_CLEAN, 26)),
            expect("nvmf_subsystem_add_ns", {"nqn": NQN_B, "namespace": {"bdev_name": "disk2/vol1-r-b2c3d4e5"}},
                   answer(recording, add_ns_line)),
            expect("nvmf_subsystem_add_host", {"nqn": NQN_B, "host": HOST1}, answer(INTRO, 17)),
            expect("nvmf_subsystem_add_listener", {"nqn": NQN_B, "listen_address": {
                "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4421"}},
                answer(sc.D2_CLEAN, 31)),
            batch(exported),
        ])
        assert not outcome.failed, outcome.msg
        assert outcome.changed is True
        assert outcome.result["released_stray_raid"] == "vol1-e0"
        assert outcome.result["actions"][0]["method"] == "bdev_raid_delete"
        assert "superblock is kept" in outcome.result["actions"][0]["why"]
        assert outcome.result["replica"]["state"] == "present"
        assert outcome.result["replica"]["exposure"]["port"] == 4421

    def test_a_run_that_failed_on_the_claim_converges_when_run_again(self, tmp_path):
        # An earlier run created the subsystem, then add_ns failed with -32602
        # (more/d2_raid_sb_restart_clean_remove.jsonl lines 26-27).
        restarted = sc.node2_restarted()
        created = [dict(s, namespaces=[], hosts=[], listen_addresses=[], allow_any_host=False)
                   for s in sc.node2().subsystems["result"] if s["nqn"] == NQN_B]
        restarted.subsystems["result"] += created
        outcome = run(self.args(tmp_path), [
            batch(restarted),
            expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids),
            expect("nvmf_get_transports", None, answer("step2.jsonl", 2)),
            expect("bdev_raid_delete", {"name": "vol1-e0"}, answer(sc.D2_CLEAN, 28)),
            expect("nvmf_subsystem_add_ns", {"nqn": NQN_B, "namespace": {"bdev_name": "disk2/vol1-r-b2c3d4e5"}},
                   answer(sc.D2_CLEAN, 30)),
            expect("nvmf_subsystem_add_host", {"nqn": NQN_B, "host": HOST1}, answer(INTRO, 17)),
            expect("nvmf_subsystem_add_listener", lambda p: p["listen_address"]["trsvcid"] == "4421",
                   answer(sc.D2_CLEAN, 31)),
            batch(sc.without_subsystem(sc.node2(), NQN_IMG)),
        ])
        assert not outcome.failed, outcome.msg
        assert outcome.result["released_stray_raid"] == "vol1-e0"

    def test_check_mode_plans_the_release_and_sends_nothing(self, tmp_path):
        outcome = run(self.args(tmp_path), self.reads_after_restart(), check_mode=True)
        assert outcome.changed is True and outcome.mutating == []
        assert outcome.result["released_stray_raid"] == "vol1-e0"
        assert [a["method"] for a in outcome.result["actions"]] == [
            "bdev_raid_delete", "nvmf_create_transport", "nvmf_create_subsystem", "nvmf_subsystem_add_ns",
            "nvmf_subsystem_add_host", "nvmf_subsystem_add_listener"]

    def test_without_a_step_that_needs_the_head_the_raid_is_left_and_three_reads_suffice(self, tmp_path):
        outcome = run(dict(name="vol1-r-b2c3d4e5", disk="disk2", record_dir=str(tmp_path)),
                      [batch(sc.node2_restarted())])
        assert outcome.changed is False and outcome.rpc_count == 3
        assert outcome.result["released_stray_raid"] is None

    def test_grow_releases_the_assembled_raid_then_resizes(self, tmp_path):
        restarted = sc.node2_restarted()
        outcome = run(dict(name="vol1-r-b2c3d4e5", disk="disk2", size="300MiB", record_dir=str(tmp_path)), [
            batch(restarted),
            expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids),
            expect("bdev_raid_delete", {"name": "vol1-e0"}, answer(sc.D2_CLEAN, 28)),
            expect("bdev_lvol_resize", {"name": "disk2/vol1-r-b2c3d4e5", "size_in_mib": 300},
                   answer("more/lvol_ops.jsonl", 104)),
            batch(sc.resized(sc.node2_restarted(), "disk2/vol1-r-b2c3d4e5", 300 * MIB)),
        ])
        assert outcome.changed is True and outcome.result["released_stray_raid"] == "vol1-e0"
        assert outcome.result["replica"]["size"] == 300 * MIB

    def test_absent_releases_the_assembled_raid_instead_of_refusing(self, tmp_path):
        restarted = sc.node2_restarted()
        outcome = run(dict(name="vol1-r-b2c3d4e5", state="absent", record_dir=str(tmp_path)), [
            batch(restarted),
            expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids),
            expect("bdev_raid_delete", {"name": "vol1-e0"}, answer(sc.D2_CLEAN, 28)),
            expect("bdev_lvol_delete", {"name": "disk2/vol1-r-b2c3d4e5"}, answer("more/lvol_ops.jsonl", 127)),
        ])
        assert not outcome.failed, outcome.msg
        assert outcome.result["released_stray_raid"] == "vol1-e0"

    def test_an_engine_of_this_node_per_its_record_is_never_released(self, tmp_path):
        # Same RAID shape on the engine node itself (its local member back, the remote not yet):
        # the record says vol1-e0 is this node's engine, so exporting its member is refused.
        engine = {"replicas": [{"name": "vol1-r-b2c3d4e5", "disk": "disk2"}]}
        record = rec.NodeRecord("node2", engines={"vol1-e0": engine})
        rec.save(rec.record_path(str(tmp_path), "node2"), record)
        restarted = sc.node2_restarted()
        outcome = run(self.args(tmp_path), [
            batch(restarted), expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids)])
        assert outcome.failed and outcome.mutating == []
        assert "lists vol1-e0 as one of its engines" in outcome.msg and "nothing was changed" in outcome.msg

    def test_an_unreadable_record_refuses_the_release(self, tmp_path):
        (tmp_path / "node2.json").write_text("{not json")
        restarted = sc.node2_restarted()
        outcome = run(self.args(tmp_path), [
            batch(restarted), expect("bdev_raid_get_bdevs", {"category": "all"}, restarted.raids)])
        assert outcome.failed and outcome.mutating == []
        assert "cannot be read" in outcome.msg and "not valid JSON" in outcome.msg

    def test_a_serving_engine_member_is_not_exported_and_its_raid_untouched(self, tmp_path):
        # node1: vol1-r-a1b2c3d4 is a member of the online engine vol1-e0 (introspection L83)
        args = dict(name="vol1-r-a1b2c3d4", disk="disk1", expose=True, listen_address="127.0.0.1",
                    record_dir=str(tmp_path))
        outcome = run(args, [batch(sc.node1()), expect("bdev_raid_get_bdevs", {"category": "all"},
                                                       answer(INTRO, 83))])
        assert outcome.failed and outcome.mutating == []
        assert "member of RAID vol1-e0" in outcome.msg and "serves I/O" in outcome.msg

    def test_growing_a_serving_engine_member_leaves_its_raid_alone(self, tmp_path):
        outcome = run(dict(name="vol1-r-a1b2c3d4", disk="disk1", size="320MiB", record_dir=str(tmp_path)), [
            batch(sc.node1()),
            expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)),
            expect("bdev_lvol_resize", {"name": "disk1/vol1-r-a1b2c3d4", "size_in_mib": 320},
                   answer("more/lvol_ops.jsonl", 104)),
            batch(sc.resized(sc.node1(), "disk1/vol1-r-a1b2c3d4", 320 * MIB)),
        ])
        assert outcome.changed is True and outcome.result["released_stray_raid"] is None

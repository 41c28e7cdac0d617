# -*- coding: utf-8 -*-
"""Replica and snapshot planning (spdk_replica_ops) on node states a real SPDK returned.

See tests/unit/replica_scenarios.py for what each node holds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from tests.unit import replica_scenarios as scenarios

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError

MIB = 1 << 20
HOST1 = scenarios.HOST1
HOST2 = "nqn.2026-01.io.spdk-storage:host-node2"


def state_of(scenario, with_raids=False):
    return NodeState(scenario.raw(with_raids))


def request(**kwargs):
    kwargs.setdefault("state", "present")
    return ops.ReplicaRequest(**kwargs)


def calls(plan):
    return [(step.method, step.params) for step in plan.steps]


class TestSizes:
    def test_rounding_goes_up_to_whole_clusters(self):
        assert ops.lvol_size(1, MIB) == (MIB, 1)
        assert ops.lvol_size(64 * MIB, MIB) == (64 * MIB, 64)
        assert ops.lvol_size(64 * MIB + 1, 4 * MIB) == (68 * MIB, 68)

    def test_small_clusters_still_round_to_whole_mib(self):
        # bdev_lvol_create/resize take size_in_mib
        assert ops.lvol_size(MIB + 1, 64 * 1024) == (2 * MIB, 2)


class TestCreate:
    def test_new_replica_is_a_thin_lvol_with_a_clearing_method(self):
        plan = ops.plan_present(state_of(scenarios.node1()), request(name="vol9", disk="disk1", size="100MiB"))
        assert calls(plan) == [("bdev_lvol_create", {
            "lvol_name": "vol9", "size_in_mib": 100, "thin_provision": True, "lvs_name": "disk1",
            "clear_method": "write_zeroes"})]
        assert plan.before == {"state": "absent"}
        assert plan.after == {"state": "stopped", "name": "vol9", "disk": "disk1", "size": 100 * MIB,
                              "snapshots": [], "exposure": None}

    def test_create_and_expose_in_one_run(self):
        plan = ops.plan_present(
            state_of(scenarios.node1()),
            request(name="vol9", disk="disk1", size="1GiB", expose=True, listen_address="127.0.0.1",
                    allowed_hosts=[HOST1]),
            transport_lookup=lambda: True)
        assert [method for method, _params in calls(plan)] == [
            "bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host",
            "nvmf_subsystem_add_listener"]
        # the namespace names the new head by alias: its UUID is not known before creation
        assert plan.steps[2].params["namespace"] == {"bdev_name": "disk1/vol9"}
        # 4420 is the engine's on node1
        assert plan.steps[4].params["listen_address"]["trsvcid"] == "4421"
        assert plan.after["exposure"] == {"nqn": "nqn.2026-01.io.spdk-storage:vol9", "listen_address": "127.0.0.1",
                                          "port": 4421, "allowed_hosts": [HOST1], "allow_any_host": False}

    def test_missing_transport_is_created_first(self):
        plan = ops.plan_present(
            state_of(scenarios.node1()),
            request(name="vol9", disk="disk1", size="1GiB", expose=True, listen_address="127.0.0.1"),
            transport_lookup=lambda: False)
        methods = [method for method, _params in calls(plan)]
        assert methods[:3] == ["bdev_lvol_create", "nvmf_create_transport", "nvmf_create_subsystem"]
        assert plan.warnings and "empty allowed_hosts" in plan.warnings[0]

    def test_size_is_needed_to_create(self):
        with pytest.raises(SpdkInputError, match="size is required to create it"):
            ops.plan_present(state_of(scenarios.node1()), request(name="vol9", disk="disk1"))

    def test_unknown_disk_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match=r"disk nodisk not found on this node \(disks: disk1\)"):
            ops.plan_present(state_of(scenarios.node1()), request(name="vol9", disk="nodisk", size="1GiB"))

    def test_same_name_on_another_disk_is_refused(self):
        state = state_of(scenarios.node1())
        state.disks.append(type(state.disks[0])(dict(scenarios.node1().lvstores["result"][0], name="disk9",
                                                     uuid="u9"), None))
        with pytest.raises(ops.SpdkRefusal, match="already lives on disk disk1, not on disk disk9"):
            ops.plan_present(state, request(name="vol5-r-0b0b0b0b", disk="disk9", size="32MiB"))

    def test_a_snapshot_is_not_a_replica_head(self):
        with pytest.raises(SpdkInputError):  # "-snap-" is reserved in replica names
            request(name="vol7-snap-01", disk="disk1")


class TestExistingReplica:
    def test_same_size_after_rounding_is_a_no_op(self):
        state = state_of(scenarios.node1())
        for size in ("32MiB", str(32 * MIB - 4096), "31.5MiB"):
            plan = ops.plan_present(state, request(name="vol5-r-0b0b0b0b", disk="disk1", size=size))
            assert plan.steps == [], size
            assert plan.before == plan.after

    def test_grow(self):
        plan = ops.plan_present(state_of(scenarios.node1()),
                                request(name="vol5-r-0b0b0b0b", disk="disk1", size="48MiB"))
        assert calls(plan) == [("bdev_lvol_resize", {"name": "disk1/vol5-r-0b0b0b0b", "size_in_mib": 48})]
        assert plan.before["size"] == 32 * MIB and plan.after["size"] == 48 * MIB

    def test_shrink_is_refused_before_any_call(self):
        with pytest.raises(ops.SpdkRefusal, match="shrinking is refused.*Device or resource busy.*nothing was changed"):
            ops.plan_present(state_of(scenarios.node1()),
                             request(name="vol5-r-0b0b0b0b", disk="disk1", size="16MiB"))

    def test_exposed_replica_with_same_options_is_a_no_op(self):
        plan = ops.plan_present(
            state_of(scenarios.node2()),
            request(name="vol1-r-b2c3d4e5", disk="disk2", size="256MiB", expose=True,
                    listen_address="127.0.0.1", allowed_hosts=[HOST1]),
            transport_lookup=lambda: pytest.fail("an existing listener proves the transport exists"))
        assert plan.steps == []
        assert plan.after["exposure"]["port"] == 4421

    def test_allowed_hosts_are_replaced(self):
        plan = ops.plan_present(
            state_of(scenarios.node2()),
            request(name="vol1-r-b2c3d4e5", disk="disk2", expose=True, listen_address="127.0.0.1",
                    allowed_hosts=[HOST2]))
        nqn = "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"
        assert calls(plan) == [("nvmf_subsystem_remove_host", {"nqn": nqn, "host": HOST1}),
                               ("nvmf_subsystem_add_host", {"nqn": nqn, "host": HOST2})]
        assert plan.after["exposure"]["allowed_hosts"] == [HOST2]

    def test_expose_false_deletes_the_subsystem(self):
        plan = ops.plan_present(state_of(scenarios.node2()),
                                request(name="vol1-r-b2c3d4e5", disk="disk2", expose=False))
        assert calls(plan) == [("nvmf_delete_subsystem", {"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"})]
        assert plan.after["state"] == "stopped" and plan.after["exposure"] is None

    def test_expose_omitted_leaves_the_export_alone(self):
        plan = ops.plan_present(state_of(scenarios.node2()), request(name="vol1-r-b2c3d4e5", disk="disk2"))
        assert plan.steps == [] and plan.after["state"] == "present"


class TestStopped:
    def test_stop_unexposes_and_keeps_the_lvol(self):
        plan = ops.plan_stopped(state_of(scenarios.node2()), request(name="vol1-r-b2c3d4e5", state="stopped"))
        assert calls(plan) == [("nvmf_delete_subsystem", {"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"})]

    def test_stopped_replica_stays_stopped(self):
        plan = ops.plan_stopped(state_of(scenarios.node1()), request(name="vol5-r-0b0b0b0b", state="stopped"))
        assert plan.steps == []

    def test_stop_of_a_missing_replica_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match="cannot create one"):
            ops.plan_stopped(state_of(scenarios.node1()), request(name="vol9", state="stopped"))


class TestAbsent:
    def test_head_then_snapshots_children_first(self):
        plan = ops.plan_absent(state_of(scenarios.chain(), with_raids=True), request(name="vol1", state="absent"))
        assert calls(plan) == [
            ("nvmf_delete_subsystem", {"nqn": "nqn.2026-01.io.spdk-storage:vol1"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1-snap-01"}),
        ]
        assert plan.before["snapshots"] == ["01", "02"]
        assert plan.after == {"state": "absent"}

    def test_raid_member_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match="member of RAID vol1-e0.*force=true.*nothing was changed"):
            ops.plan_absent(state_of(scenarios.node1(), with_raids=True),
                            request(name="vol1-r-a1b2c3d4", state="absent"))

    def test_connected_host_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match="host-node1 are connected to its export"):
            ops.plan_absent(state_of(scenarios.node2(), with_raids=True),
                            request(name="vol1-r-b2c3d4e5", state="absent"), connected_hosts=[HOST1])

    def test_force_deletes_a_raid_member(self):
        plan = ops.plan_absent(state_of(scenarios.node1(), with_raids=True),
                               request(name="vol1-r-a1b2c3d4", state="absent", force=True))
        assert calls(plan) == [("bdev_lvol_delete", {"name": "disk1/vol1-r-a1b2c3d4"})]

    def test_missing_replica_is_a_no_op(self):
        plan = ops.plan_absent(state_of(scenarios.node1()), request(name="vol9", state="absent"))
        assert plan.steps == [] and plan.before == {"state": "absent"}

    def test_leftover_snapshots_without_head_are_deleted(self):
        # a run interrupted after the head was deleted must finish the job
        scenario = scenarios.chain(exposed=False)
        scenario.bdevs["result"] = [b for b in scenario.bdevs["result"] if b["aliases"] != ["disk1/vol1"]]
        plan = ops.plan_absent(state_of(scenario), request(name="vol1", disk="disk1", state="absent"))
        assert calls(plan) == [("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}),
                               ("bdev_lvol_delete", {"name": "disk1/vol1-snap-01"})]


class TestInputs:
    @pytest.mark.parametrize("kwargs, message", [
        (dict(name="x" * 64, disk="disk1", size="1GiB"), "64 characters long"),
        (dict(name="vol9", disk="disk1", size="ten gigs"), "is not a size"),
        (dict(name="vol9", disk="disk1", size="0"), "larger than zero"),
        (dict(name="vol9", size="1GiB"), "disk is required"),
        (dict(name="vol9", disk="disk1", expose=True), "needs listen_address"),
        (dict(name="vol9", disk="disk1", expose=True, listen_address="10.0.0.1", allowed_hosts=["bad"]),
         "not an NQN"),
        (dict(name="vol9", disk="disk1", port_range="9-1"), "port_range"),
        (dict(name="vol-rebuild", disk="disk1"), "reserved"),
    ])
    def test_bad_inputs(self, kwargs, message):
        with pytest.raises(SpdkInputError, match=message):
            request(**kwargs)


def snap_request(name, replica="vol1", state="present", disk=None):
    return ops.SnapshotRequest(name=name, replica=replica, disk=disk, state=state)


class TestSnapshots:
    # The plans carry steps only; spdk_snapshot's tests check the reported and predicted entries.
    def test_create(self):
        plan = ops.plan_snapshot(state_of(scenarios.chain()), snap_request("03"))
        assert calls(plan) == [("bdev_lvol_snapshot", {"lvol_name": "disk1/vol1", "snapshot_name": "vol1-snap-03"})]

    def test_existing_snapshot_is_a_no_op(self):
        plan = ops.plan_snapshot(state_of(scenarios.chain()), snap_request("02"))
        assert plan.steps == [] and not plan.changed

    def test_delete_merges_into_the_only_child(self):
        plan = ops.plan_snapshot(state_of(scenarios.chain()), snap_request("02", state="absent"))
        assert calls(plan) == [("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"})]
        assert plan.steps[0].why == "delete snapshot disk1/vol1-snap-02 (merged into vol1)"

    def test_delete_with_two_children_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match=r"has 2 children \(02, vol1-clone-01\).*nothing was changed"):
            ops.plan_snapshot(state_of(scenarios.chain()), snap_request("01", state="absent"))

    def test_missing_snapshot_delete_is_a_no_op(self):
        plan = ops.plan_snapshot(state_of(scenarios.chain()), snap_request("99", state="absent"))
        assert plan.steps == []

    def test_snapshot_of_a_missing_replica_is_refused(self):
        with pytest.raises(ops.SpdkRefusal, match="replica vol9 not found"):
            ops.plan_snapshot(state_of(scenarios.chain()), snap_request("01", replica="vol9"))

    def test_too_long_snapshot_lvol_name_is_refused(self):
        with pytest.raises(SpdkInputError, match="at most 63"):
            snap_request("s" * 40, replica="r" * 20)


class TestRaidsAssembledOnRestart:
    """Which RAID holding a head is a leftover of a restart (more/ANSWERS.md D2), and which is not."""

    @staticmethod
    def restarted(**raid_changes):
        scenario = scenarios.node2_restarted()
        raid = scenario.raids["result"][0]
        raid.update(raid_changes)
        return NodeState(dict(scenario.raw(), raids=scenario.raids["result"]))

    @staticmethod
    def head(state):
        return ops.find_head(state, "vol1-r-b2c3d4e5", "disk2")

    def test_the_recorded_restart_raid_is_assembled_here(self):
        state = self.restarted()
        [raid] = ops.raids_holding(state, self.head(state))
        assert ops.assembled_here(state, raid)

    def test_an_online_raid_is_not(self):
        state = self.restarted(state="online")
        assert not ops.assembled_here(state, state.raids[0])

    def test_a_raid_without_superblock_was_created_on_purpose(self):
        state = self.restarted(superblock=False)
        assert not ops.assembled_here(state, state.raids[0])
        with pytest.raises(ops.SpdkRefusal, match="no superblock"):
            ops.release_steps(state, self.head(state), None, "export")

    def test_a_raid_with_a_member_from_another_node_is_an_engine_being_assembled(self):
        scenario = scenarios.node2_restarted()
        remote = scenario.raids["result"][0]["base_bdevs_list"][0]
        remote.update(name="vol1-r-a1b2c3d4n1", is_configured=True)  # attached from node1 over NVMe-oF
        state = NodeState(dict(scenario.raw(), raids=scenario.raids["result"]))
        assert not ops.assembled_here(state, state.raids[0])
        with pytest.raises(ops.SpdkRefusal, match="members that are not lvols of this node"):
            ops.release_steps(state, self.head(state), None, "export")

    def test_the_record_is_read_only_for_a_candidate_and_decides(self):
        state = self.restarted()
        asked = []

        def engines():
            asked.append(True)
            return ["vol1-e0"]
        with pytest.raises(ops.SpdkRefusal, match="one of its engines"):
            ops.release_steps(state, self.head(state), engines, "export")
        assert asked == [True]
        assert ops.release_steps(state, self.head(state), lambda: ["vol2"], "export")[1] == ["vol1-e0"]

    def test_a_grow_leaves_a_raid_that_is_not_stray(self):
        state = self.restarted(state="online")
        assert ops.release_steps(state, self.head(state), None, "grow") == ([], [])

    def test_raid_reads_only_when_a_claimed_unexported_head_must_change(self):
        state = NodeState(scenarios.node2_restarted().raw())
        assert ops.holder_reads_needed(state, request(name="vol1-r-b2c3d4e5", disk="disk2", expose=True,
                                                      listen_address="127.0.0.1"))
        assert ops.holder_reads_needed(state, request(name="vol1-r-b2c3d4e5", disk="disk2", size="300MiB"))
        assert not ops.holder_reads_needed(state, request(name="vol1-r-b2c3d4e5", disk="disk2", size="256MiB"))
        assert not ops.holder_reads_needed(state, request(name="vol1-r-b2c3d4e5", disk="disk2"))
        exported = NodeState(scenarios.node2().raw())
        assert not ops.holder_reads_needed(exported, request(name="vol1-r-b2c3d4e5", disk="disk2", expose=True,
                                                             listen_address="127.0.0.1"))

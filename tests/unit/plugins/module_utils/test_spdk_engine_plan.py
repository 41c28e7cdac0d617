# -*- coding: utf-8 -*-
"""Engine health and plans, on node states a real SPDK v26.05 reported.

NODE1 (more/introspection.jsonl node1: bdevs L61, RAIDs L83, subsystems L78) holds engine
``vol1-e0``: RAID1 with a superblock over the local ``disk1/vol1-r-a1b2c3d4`` and the remote
``vol1-r-b2c3d4e5n1`` (controller ``vol1-r-b2c3d4e5``, 127.0.0.1:4421), exported as
``nqn.2026-01.io.spdk-storage:vol1-e0`` on 127.0.0.1:4420 with ANA (namespace in group 1).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest
from tests.unit.expected_calls import answer, transcript

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_plan as plan
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_frontend import (
    ana_warnings,
    plan_frontend,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import (
    detach_steps,
    needs_controllers,
    plan_absent,
    plan_attach,
    plan_create,
    plan_membership,
    removed_controllers,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import (
    EngineRefusal,
    EngineRequest,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (
    DEGRADED,
    FAULTED,
    HEALTHY,
    EngineStatus,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState

INTRO = "more/introspection.jsonl"
MIB = 1 << 20
LOCAL_UUID = "42971873-bab4-42f3-a8f1-894aebb3c9db"
REMOTE_UUID = "dde7fa1b-cd0c-4996-8e60-c6709f2493fb"
NQN = "nqn.2026-01.io.spdk-storage:vol1-e0"
HOSTS = ["nqn.2026-01.io.spdk-storage:host-frontend-a", "nqn.2026-01.io.spdk-storage:host-node3"]
LOCAL = {"name": "vol1-r-a1b2c3d4", "disk": "disk1"}
REMOTE = {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421"}


def raw(raids=None, bdevs=None, subsystems=None):
    return {"raids": raids if raids is not None else answer(INTRO, 83)["result"],
            "bdevs": bdevs if bdevs is not None else answer(INTRO, 61)["result"],
            "subsystems": subsystems if subsystems is not None else answer(INTRO, 78)["result"]}


def node(**parts):
    return NodeState(raw(**parts))


def request(**overrides):
    args = dict(name="vol1-e0", size="255MiB", replicas=[LOCAL, REMOTE], listen_address="127.0.0.1",
                allowed_hosts=HOSTS, host_nqn="nqn.2026-01.io.spdk-storage:host-node1")
    args.update(overrides)
    return EngineRequest(**args)


def without_bdev(bdevs, name):
    return [b for b in bdevs if b["name"] != name]


def only_engine_raid(raids):
    return [r for r in raids if r["name"] == "vol1-e0"]


# ------------------------------------------------------------------ health


class TestHealth:
    def test_recorded_engine_is_healthy_with_both_replicas_rw(self):
        status = EngineStatus(node(), request())
        assert status.state == HEALTHY
        assert [(s.spec.name, s.mode, s.member["slot"]) for s in status.replicas] == [
            ("vol1-r-a1b2c3d4", "RW", 0), ("vol1-r-b2c3d4e5", "RW", 1)]
        view = status.to_dict()
        assert view["size"] == 65280 * 4096 and view["extra_members"] == []
        assert view["frontend"] == {"nqn": NQN, "listen_address": "127.0.0.1", "port": 4420,
                                    "allowed_hosts": HOSTS, "ana_group": 1, "device": None}

    def test_members_named_by_uuid_after_examine_assembly_are_recognised(self):
        # more/d2 L34: after a restart the local member is listed by UUID and the remote slot is empty
        raids = transcript("more/d2_raid_sb_restart_clean_remove.jsonl", 34,
                           replace={"5622ff4d-8ff2-4f29-a5f3-039500090a34": LOCAL_UUID})["response"]["result"]
        bdevs = without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1")
        status = EngineStatus(node(raids=raids, bdevs=bdevs), request())
        assert [s.mode for s in status.replicas] == ["RW", "ERR"]
        assert status.state == DEGRADED

    def test_a_lost_controller_leaves_an_empty_slot_and_the_replica_err(self):
        # more/nvme_reconnect L84: ctrlr_loss_timeout_sec passed, slot name null
        raids = transcript("more/nvme_reconnect.jsonl", 84, replace={
            "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]
        status = EngineStatus(node(raids=raids), request())
        assert [s.mode for s in status.replicas] == ["RW", "ERR"] and status.state == DEGRADED

    @pytest.mark.parametrize("line, target", [
        (("more/d4_raid_add_base_rebuild_alloc.jsonl", 29), "name"),   # rebuild target named by bdev name
        (("step3.jsonl", 58), "uuid"),                                 # ... and by UUID in a superblock RAID
    ])
    def test_the_rebuild_target_is_write_only_with_progress(self, line, target):
        recorded = transcript(*line)["response"]["result"][0]
        raid = copy.deepcopy(only_engine_raid(answer(INTRO, 83)["result"])[0])
        raid["process"] = dict(recorded["process"], target="vol1-r-b2c3d4e5n1" if target == "name" else REMOTE_UUID)
        status = EngineStatus(node(raids=[raid]), request())
        remote = status.replicas[1]
        assert remote.mode == "WO"
        assert remote.rebuild == {"percent": recorded["process"]["progress"]["percent"],
                                  "blocks": recorded["process"]["progress"]["blocks"]}
        assert status.state == DEGRADED

    def test_a_configuring_raid_serves_nothing_so_the_engine_is_faulted(self):
        # vol5-e0 in L83 waits for a member that was never attached
        req = request(name="vol5-e0", replicas=[
            {"name": "vol5-r-0a0a0a0a", "disk": "disk1"}, {"name": "vol5-r-not-attached-yet", "address": "127.0.0.1:4421"}])
        status = EngineStatus(node(), req)
        assert status.raid.state == "configuring" and status.state == FAULTED

    def test_no_raid_is_faulted(self):
        assert EngineStatus(node(raids=[]), request()).state == FAULTED


# ------------------------------------------------------------------ members


class TestMembers:
    def test_attach_only_remote_replicas_without_their_bdev(self):
        state = node(bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"), raids=[])
        req = request()
        assert needs_controllers(state, req)
        steps = plan_attach(state, req, controllers={})
        assert [(s.method, s.params["name"], s.params["ctrlr_loss_timeout_sec"]) for s in steps] == [
            ("bdev_nvme_attach_controller", "vol1-r-b2c3d4e5", 10)]
        assert not needs_controllers(node(), req) and plan_attach(node(), req) == []

    def test_a_controller_without_its_bdev_is_detached_before_attaching_again(self):
        state = node(bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"))
        steps = plan_attach(state, request(), controllers={"vol1-r-b2c3d4e5": object()})
        assert [s.method for s in steps] == ["bdev_nvme_detach_controller", "bdev_nvme_attach_controller"]

    @pytest.mark.parametrize("line, unconnected", [
        (270, {"vol1-r-b2c3d4e5": "reconnect_is_delayed"}),   # its target was killed, loss timeout not over
        (310, {}),                                             # connected again
        (83, {"vol1-r-b2c3d4e5": "deleted"}),                  # loss timeout over: no controller left
    ])
    def test_a_remote_replica_can_be_added_only_while_its_controller_is_connected(self, line, unconnected):
        controllers = {c.name: c for c in NodeState(
            {"controllers": answer("more/nvme_reconnect.jsonl", line)["result"]}).controllers}
        assert plan.unconnected(request().remote_replicas, controllers) == unconnected

    def test_create_names_every_member_with_a_superblock(self):
        free = [b for b in answer(INTRO, 61)["result"] if b["name"] not in ("vol1-e0",)]
        for bdev in free:
            bdev["claimed"] = False
        state = node(raids=[], bdevs=free, subsystems=answer(INTRO, 8)["result"])
        [step] = plan_create(state, request())
        assert (step.method, step.params) == ("bdev_raid_create", {
            "name": "vol1-e0", "raid_level": "raid1", "strip_size_kb": 0,
            "base_bdevs": ["disk1/vol1-r-a1b2c3d4", "vol1-r-b2c3d4e5n1"], "superblock": True})

    def test_create_refuses_replicas_of_different_sizes(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        req = request(replicas=[LOCAL, {"name": "vol2-r-c3d4e5f6", "disk": "disk1"}], size=None)
        with pytest.raises(EngineRefusal, match="differ in size.*vol1-r-a1b2c3d4 256MiB.*vol2-r-c3d4e5f6 64MiB"):
            plan_create(state, req)

    def test_create_refuses_replicas_without_room_for_the_superblock(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        with pytest.raises(EngineRefusal, match="needs replicas of at least 257MiB.*1MiB for the RAID superblock"):
            plan_create(state, request(size="256MiB"))

    def test_create_refuses_a_replica_held_by_another_raid(self):
        # vol2-e0 (L83) holds vol2-r-c3d4e5f6 and vol2-r-d4e5f6a7
        req = request(name="vol9", replicas=[{"name": "vol2-r-c3d4e5f6", "disk": "disk1"},
                                             {"name": "vol2-r-d4e5f6a7", "disk": "disk1"}], size=None)
        with pytest.raises(EngineRefusal, match="member of RAID vol2-e0"):
            plan_create(node(), req)

    def test_create_refuses_a_missing_local_replica(self):
        req = request(replicas=[{"name": "nope", "disk": "disk1"}, REMOTE])
        with pytest.raises(EngineRefusal, match="local replica nope is not on disk disk1.*spdk_replica"):
            plan_create(node(raids=[]), req)

    def test_membership_adds_a_missing_replica_into_the_empty_slot(self):
        raids = transcript("more/nvme_reconnect.jsonl", 84, replace={
            "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]
        state = node(raids=raids)
        removals, adds = plan_membership(state, request(), EngineStatus(state, request()))
        assert removals == []
        assert [(s.method, s.params) for s in adds] == [
            ("bdev_raid_add_base_bdev", {"raid_bdev": "vol1-e0", "base_bdev": "vol1-r-b2c3d4e5n1"})]

    def test_a_replica_dropped_from_the_list_is_removed_and_its_controller_detached(self):
        third = {"name": "vol5-r-0b0b0b0b", "disk": "disk1"}   # not a member: no slot to fill after removal
        req = request(replicas=[LOCAL, third], size=None)
        state = node()
        status = EngineStatus(state, req)
        with pytest.raises(EngineRefusal, match="differ in size"):   # 32 MiB cannot replace 256 MiB
            plan_membership(state, req, status)
        req = request(replicas=[LOCAL, {"name": "vol1-r-zz", "address": "127.0.0.2:4421"}])
        status = EngineStatus(state, req)
        removals, adds = plan_membership(state, req, status, pending=["vol1-r-zzn1"])
        assert [(s.method, s.params) for s in removals] == [
            ("bdev_raid_remove_base_bdev", {"name": "vol1-r-b2c3d4e5n1"})]
        assert [s.params["base_bdev"] for s in adds] == ["vol1-r-zzn1"]
        assert removed_controllers(state, req, status) == ["vol1-r-b2c3d4e5"]

    def test_never_removes_the_last_up_to_date_member(self):
        req = request(replicas=[{"name": "vol1-r-new1", "address": "127.0.0.2:4421"},
                                {"name": "vol1-r-new2", "address": "127.0.0.3:4421"}])
        state = node()
        with pytest.raises(EngineRefusal, match="would leave no up-to-date replica"):
            plan_membership(state, req, EngineStatus(state, req))

    def test_slots_are_fixed_so_a_third_replica_cannot_join_a_full_raid(self):
        req = request(replicas=[LOCAL, REMOTE, {"name": "vol1-r-c", "address": "127.0.0.3:4421"}])
        state = node()
        with pytest.raises(EngineRefusal, match="2 slots, all in use"):
            plan_membership(state, req, EngineStatus(state, req), pending=["vol1-r-cn1"])

    def test_a_raid_of_another_level_under_the_engine_name_is_refused(self):
        req = request(name="vol6-e0", replicas=[
            {"name": "vol6-r-0c0c0c0c", "disk": "disk1"}, {"name": "vol5-r-0b0b0b0b", "disk": "disk1"}])
        state = node()
        with pytest.raises(EngineRefusal, match="raid0 RAID, not an engine"):
            plan_membership(state, req, EngineStatus(state, req))

    def test_detach_skips_controllers_whose_bdev_a_raid_still_uses(self):
        steps, bdevs = detach_steps(node(), ["vol1-r-b2c3d4e5", "img-base-0001", "absent-ctrl"])
        assert [s.params for s in steps] == [{"name": "img-base-0001"}] and bdevs == ["img-base-0001n1"]


# ------------------------------------------------------------------ frontend


class TestFrontend:
    def test_the_recorded_frontend_needs_nothing(self):
        state = node()
        assert plan_frontend(state, request(), EngineStatus(state, request())) == []

    def test_a_new_frontend_reports_ana_and_keeps_the_spare_group_inaccessible(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = plan_frontend(state, request(), EngineStatus(state, request()), transport_lookup=lambda: True)
        assert [s.method for s in steps] == [
            "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host", "nvmf_subsystem_add_host",
            "nvmf_subsystem_add_listener", "nvmf_subsystem_listener_set_ana_state"]
        assert steps[0].params["ana_reporting"] is True
        assert steps[1].params == {"nqn": NQN, "namespace": {"bdev_name": "vol1-e0", "anagrpid": 1}}
        listen = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}
        assert steps[5].params == {"nqn": NQN, "listen_address": listen, "ana_state": "inaccessible", "anagrpid": 2}

    def test_the_transport_is_created_when_missing(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = plan_frontend(state, request(), EngineStatus(state, request()), transport_lookup=lambda: False)
        assert steps[0].method == "nvmf_create_transport"

    def test_the_recorded_port_comes_back_after_a_restart(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = plan_frontend(state, request(), EngineStatus(state, request()), recorded_port=4433,
                              transport_lookup=lambda: True)
        listener = [s for s in steps if s.method == "nvmf_subsystem_add_listener"][0]
        assert listener.params["listen_address"]["trsvcid"] == "4433"

    def test_a_namespace_left_in_the_pause_group_is_moved_back(self):
        subsystems = answer(INTRO, 78)["result"]
        subsystems[1]["namespaces"][0]["anagrpid"] = 2
        state = node(subsystems=subsystems)
        steps = plan_frontend(state, request(), EngineStatus(state, request()))
        assert [(s.method, s.params) for s in steps] == [
            ("nvmf_subsystem_set_ns_ana_group", {"nqn": NQN, "nsid": 1, "anagrpid": 1})]

    def test_a_frontend_without_ana_is_kept_with_a_warning(self):
        subsystems = answer(INTRO, 78)["result"]
        del subsystems[1]["namespaces"][0]["anagrpid"]
        status = EngineStatus(node(subsystems=subsystems), request())
        assert "without ANA reporting" in ana_warnings(status.namespaces, NQN)[0]

    def test_frontend_none_deletes_the_subsystem(self):
        state = node()
        steps = plan_frontend(state, request(frontend="none"), EngineStatus(state, request()))
        assert [(s.method, s.params) for s in steps] == [("nvmf_delete_subsystem", {"nqn": NQN})]


# ------------------------------------------------------------------ absent


class TestAbsent:
    def test_frontend_then_raid_with_superblocks_kept_then_controllers(self):
        steps, bdevs = plan_absent(node(), request(state="absent", replicas=[]))
        assert [(s.method, s.params) for s in steps] == [
            ("nvmf_delete_subsystem", {"nqn": NQN}),
            ("bdev_raid_delete", {"name": "vol1-e0", "clear_sb": False}),
            ("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"})]
        assert bdevs == ["vol1-r-b2c3d4e5n1"]

    def test_recorded_former_replicas_are_detached_too(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        steps, _bdevs = plan_absent(state, request(state="absent", replicas=[]),
                                    recorded_replicas=[{"name": "img-base-0001", "address": "127.0.0.1:4421"}])
        assert [s.params for s in steps] == [{"name": "img-base-0001"}]

    def test_nothing_left_means_no_step(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"],
                     bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"))
        assert plan_absent(state, request(state="absent", replicas=[REMOTE])) == ([], [])

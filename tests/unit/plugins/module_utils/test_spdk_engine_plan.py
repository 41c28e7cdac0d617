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
import os

import pytest
from expected_calls import answer, transcript

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_model as em
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError

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
    return em.EngineRequest(**args)


def without_bdev(bdevs, name):
    return [b for b in bdevs if b["name"] != name]


def only_engine_raid(raids):
    return [r for r in raids if r["name"] == "vol1-e0"]


# ------------------------------------------------------------------ input


class TestRequest:
    def test_defaults_follow_the_engine_design(self):
        req = em.EngineRequest("vol1", replicas=[LOCAL, REMOTE], listen_address="10.0.0.1", node_name="node1")
        assert req.host_nqn == "nqn.2026-01.io.spdk-storage:host:node1"
        assert req.nqn == "nqn.2026-01.io.spdk-storage:vol1"
        assert req.timeouts == {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
        local, remote = req.replicas
        assert (local.bdev, local.controller) == ("disk1/vol1-r-a1b2c3d4", None)
        assert (remote.bdev, remote.controller, remote.nqn) == (
            "vol1-r-b2c3d4e5n1", "vol1-r-b2c3d4e5", "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5")

    def test_attach_sets_explicit_timeouts_and_the_host_nqn(self):
        spec = em.ReplicaSpec("vol1-r2", address="[fd00::12]:4421", nqn="nqn.2026-01.io.example:r2")
        assert spec.attach_params("nqn.2026-01.io.spdk-storage:host:n1", dict(em.DEFAULT_TIMEOUTS)) == {
            "name": "vol1-r2", "trtype": "tcp", "adrfam": "ipv6", "traddr": "fd00::12", "trsvcid": "4421",
            "subnqn": "nqn.2026-01.io.example:r2", "hostnqn": "nqn.2026-01.io.spdk-storage:host:n1",
            "ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}

    @pytest.mark.parametrize("replicas, why", [
        ([LOCAL], "at least 2 replicas"),
        ([LOCAL, dict(LOCAL)], "listed more than once"),
        ([LOCAL, {"name": "r2", "disk": "disk1", "address": "10.0.0.2:4421"}], "exactly one of disk"),
        ([LOCAL, {"name": "r2"}], "exactly one of disk"),
        ([LOCAL, {"name": "r2", "address": "node2:4421"}], "not an IP address"),
        ([LOCAL, {"name": "r2", "address": "10.0.0.2"}], "must look like"),
        ([LOCAL, {"name": "r2-snap-x", "disk": "d"}], "reserved for snapshot"),
    ])
    def test_bad_replica_lists_are_refused_before_any_rpc(self, replicas, why):
        with pytest.raises(SpdkInputError, match=why):
            em.EngineRequest("vol1", replicas=replicas, listen_address="10.0.0.1")

    @pytest.mark.parametrize("loss, delay, fail, why", [
        (0, 0, 0, "never deletes a lost controller"),
        (-2, 2, 5, "must be -1"),
        (10, 0, 5, "reconnect_delay_sec must be positive"),
        (5, 10, 0, "must not exceed ctrlr_loss"),
        (10, 2, 1, "at least reconnect_delay_sec"),
        (10, 2, 11, "must not exceed ctrlr_loss"),
    ])
    def test_timeouts_spdk_refuses_or_that_never_drop_a_dead_replica_are_refused(self, loss, delay, fail, why):
        with pytest.raises(SpdkInputError, match=why):
            em.check_timeouts(loss, delay, fail)

    def test_equal_fast_io_fail_and_loss_timeouts_are_accepted_as_spdk_does(self):
        em.check_timeouts(10, 2, 10)   # more/ANSWERS.md doc difference 2: the code checks '>'
        em.check_timeouts(-1, 2, 0)

    def test_a_frontend_needs_a_listen_address(self):
        with pytest.raises(SpdkInputError, match="needs listen_address"):
            em.EngineRequest("vol1", replicas=[LOCAL, REMOTE])
        assert em.EngineRequest("vol1", replicas=[LOCAL, REMOTE], frontend="none").listen_address is None


# ------------------------------------------------------------------ health


class TestHealth:
    def test_recorded_engine_is_healthy_with_both_replicas_rw(self):
        status = em.EngineStatus(node(), request())
        assert status.state == em.HEALTHY
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
        status = em.EngineStatus(node(raids=raids, bdevs=bdevs), request())
        assert [s.mode for s in status.replicas] == ["RW", "ERR"]
        assert status.state == em.DEGRADED

    def test_a_lost_controller_leaves_an_empty_slot_and_the_replica_err(self):
        # more/nvme_reconnect L84: ctrlr_loss_timeout_sec passed, slot name null
        raids = transcript("more/nvme_reconnect.jsonl", 84, replace={
            "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]
        status = em.EngineStatus(node(raids=raids), request())
        assert [s.mode for s in status.replicas] == ["RW", "ERR"] and status.state == em.DEGRADED

    @pytest.mark.parametrize("line, target", [
        (("more/d4_raid_add_base_rebuild_alloc.jsonl", 29), "name"),   # rebuild target named by bdev name
        (("step3.jsonl", 58), "uuid"),                                 # ... and by UUID in a superblock RAID
    ])
    def test_the_rebuild_target_is_write_only_with_progress(self, line, target):
        recorded = transcript(*line)["response"]["result"][0]
        raid = copy.deepcopy(only_engine_raid(answer(INTRO, 83)["result"])[0])
        raid["process"] = dict(recorded["process"], target="vol1-r-b2c3d4e5n1" if target == "name" else REMOTE_UUID)
        status = em.EngineStatus(node(raids=[raid]), request())
        remote = status.replicas[1]
        assert remote.mode == "WO"
        assert remote.rebuild == {"percent": recorded["process"]["progress"]["percent"],
                                  "blocks": recorded["process"]["progress"]["blocks"]}
        assert status.state == em.DEGRADED

    def test_a_configuring_raid_serves_nothing_so_the_engine_is_faulted(self):
        # vol5-e0 in L83 waits for a member that was never attached
        req = request(name="vol5-e0", replicas=[
            {"name": "vol5-r-0a0a0a0a", "disk": "disk1"}, {"name": "vol5-r-not-attached-yet", "address": "127.0.0.1:4421"}])
        status = em.EngineStatus(node(), req)
        assert status.raid.state == "configuring" and status.state == em.FAULTED

    def test_no_raid_is_faulted(self):
        assert em.EngineStatus(node(raids=[]), request()).state == em.FAULTED


# ------------------------------------------------------------------ members


class TestMembers:
    def test_attach_only_remote_replicas_without_their_bdev(self):
        state = node(bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"), raids=[])
        req = request()
        assert em.needs_controllers(state, req)
        steps = em.plan_attach(state, req, controllers={})
        assert [(s.method, s.params["name"], s.params["ctrlr_loss_timeout_sec"]) for s in steps] == [
            ("bdev_nvme_attach_controller", "vol1-r-b2c3d4e5", 10)]
        assert not em.needs_controllers(node(), req) and em.plan_attach(node(), req) == []

    def test_a_controller_without_its_bdev_is_detached_before_attaching_again(self):
        state = node(bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"))
        steps = em.plan_attach(state, request(), controllers={"vol1-r-b2c3d4e5": object()})
        assert [s.method for s in steps] == ["bdev_nvme_detach_controller", "bdev_nvme_attach_controller"]

    @pytest.mark.parametrize("line, unconnected", [
        (270, {"vol1-r-b2c3d4e5": "reconnect_is_delayed"}),   # its target was killed, loss timeout not over
        (310, {}),                                             # connected again
        (83, {"vol1-r-b2c3d4e5": "deleted"}),                  # loss timeout over: no controller left
    ])
    def test_a_remote_replica_can_be_added_only_while_its_controller_is_connected(self, line, unconnected):
        controllers = {c.name: c for c in NodeState(
            {"controllers": answer("more/nvme_reconnect.jsonl", line)["result"]}).controllers}
        assert em.unconnected(request().remote_replicas, controllers) == unconnected

    def test_create_names_every_member_with_a_superblock(self):
        free = [b for b in answer(INTRO, 61)["result"] if b["name"] not in ("vol1-e0",)]
        for bdev in free:
            bdev["claimed"] = False
        state = node(raids=[], bdevs=free, subsystems=answer(INTRO, 8)["result"])
        [step] = em.plan_create(state, request())
        assert (step.method, step.params) == ("bdev_raid_create", {
            "name": "vol1-e0", "raid_level": "raid1", "strip_size_kb": 0,
            "base_bdevs": ["disk1/vol1-r-a1b2c3d4", "vol1-r-b2c3d4e5n1"], "superblock": True})

    def test_create_refuses_replicas_of_different_sizes(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        req = request(replicas=[LOCAL, {"name": "vol2-r-c3d4e5f6", "disk": "disk1"}], size=None)
        with pytest.raises(em.EngineRefusal, match="differ in size.*vol1-r-a1b2c3d4 256MiB.*vol2-r-c3d4e5f6 64MiB"):
            em.plan_create(state, req)

    def test_create_refuses_replicas_without_room_for_the_superblock(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        with pytest.raises(em.EngineRefusal, match="needs replicas of at least 257MiB.*1MiB for the RAID superblock"):
            em.plan_create(state, request(size="256MiB"))

    def test_create_refuses_a_replica_held_by_another_raid(self):
        # vol2-e0 (L83) holds vol2-r-c3d4e5f6 and vol2-r-d4e5f6a7
        req = request(name="vol9", replicas=[{"name": "vol2-r-c3d4e5f6", "disk": "disk1"},
                                             {"name": "vol2-r-d4e5f6a7", "disk": "disk1"}], size=None)
        with pytest.raises(em.EngineRefusal, match="member of RAID vol2-e0"):
            em.plan_create(node(), req)

    def test_create_refuses_a_missing_local_replica(self):
        req = request(replicas=[{"name": "nope", "disk": "disk1"}, REMOTE])
        with pytest.raises(em.EngineRefusal, match="local replica nope is not on disk disk1.*spdk_replica"):
            em.plan_create(node(raids=[]), req)

    def test_membership_adds_a_missing_replica_into_the_empty_slot(self):
        raids = transcript("more/nvme_reconnect.jsonl", 84, replace={
            "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]
        state = node(raids=raids)
        removals, adds = em.plan_membership(state, request(), em.EngineStatus(state, request()))
        assert removals == []
        assert [(s.method, s.params) for s in adds] == [
            ("bdev_raid_add_base_bdev", {"raid_bdev": "vol1-e0", "base_bdev": "vol1-r-b2c3d4e5n1"})]

    def test_a_replica_dropped_from_the_list_is_removed_and_its_controller_detached(self):
        third = {"name": "vol5-r-0b0b0b0b", "disk": "disk1"}   # not a member: no slot to fill after removal
        req = request(replicas=[LOCAL, third], size=None)
        state = node()
        status = em.EngineStatus(state, req)
        with pytest.raises(em.EngineRefusal, match="differ in size"):   # 32 MiB cannot replace 256 MiB
            em.plan_membership(state, req, status)
        req = request(replicas=[LOCAL, {"name": "vol1-r-zz", "address": "127.0.0.2:4421"}])
        status = em.EngineStatus(state, req)
        removals, adds = em.plan_membership(state, req, status, pending=["vol1-r-zzn1"])
        assert [(s.method, s.params) for s in removals] == [
            ("bdev_raid_remove_base_bdev", {"name": "vol1-r-b2c3d4e5n1"})]
        assert [s.params["base_bdev"] for s in adds] == ["vol1-r-zzn1"]
        assert em.removed_controllers(state, req, status) == ["vol1-r-b2c3d4e5"]

    def test_never_removes_the_last_up_to_date_member(self):
        req = request(replicas=[{"name": "vol1-r-new1", "address": "127.0.0.2:4421"},
                                {"name": "vol1-r-new2", "address": "127.0.0.3:4421"}])
        state = node()
        with pytest.raises(em.EngineRefusal, match="would leave no up-to-date replica"):
            em.plan_membership(state, req, em.EngineStatus(state, req))

    def test_slots_are_fixed_so_a_third_replica_cannot_join_a_full_raid(self):
        req = request(replicas=[LOCAL, REMOTE, {"name": "vol1-r-c", "address": "127.0.0.3:4421"}])
        state = node()
        with pytest.raises(em.EngineRefusal, match="2 slots, all in use"):
            em.plan_membership(state, req, em.EngineStatus(state, req), pending=["vol1-r-cn1"])

    def test_a_raid_of_another_level_under_the_engine_name_is_refused(self):
        req = request(name="vol6-e0", replicas=[
            {"name": "vol6-r-0c0c0c0c", "disk": "disk1"}, {"name": "vol5-r-0b0b0b0b", "disk": "disk1"}])
        state = node()
        with pytest.raises(em.EngineRefusal, match="raid0 RAID, not an engine"):
            em.plan_membership(state, req, em.EngineStatus(state, req))

    def test_detach_skips_controllers_whose_bdev_a_raid_still_uses(self):
        steps, bdevs = em.detach_steps(node(), ["vol1-r-b2c3d4e5", "img-base-0001", "absent-ctrl"])
        assert [s.params for s in steps] == [{"name": "img-base-0001"}] and bdevs == ["img-base-0001n1"]


# ------------------------------------------------------------------ frontend


class TestFrontend:
    def test_the_recorded_frontend_needs_nothing(self):
        state = node()
        assert em.plan_frontend(state, request(), em.EngineStatus(state, request())) == []

    def test_a_new_frontend_reports_ana_and_keeps_the_spare_group_inaccessible(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = em.plan_frontend(state, request(), em.EngineStatus(state, request()), transport_lookup=lambda: True)
        assert [s.method for s in steps] == [
            "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host", "nvmf_subsystem_add_host",
            "nvmf_subsystem_add_listener", "nvmf_subsystem_listener_set_ana_state"]
        assert steps[0].params["ana_reporting"] is True
        assert steps[1].params == {"nqn": NQN, "namespace": {"bdev_name": "vol1-e0", "anagrpid": 1}}
        listen = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}
        assert steps[5].params == {"nqn": NQN, "listen_address": listen, "ana_state": "inaccessible", "anagrpid": 2}

    def test_the_transport_is_created_when_missing(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = em.plan_frontend(state, request(), em.EngineStatus(state, request()), transport_lookup=lambda: False)
        assert steps[0].method == "nvmf_create_transport"

    def test_the_recorded_port_comes_back_after_a_restart(self):
        state = node(subsystems=answer(INTRO, 8)["result"])
        steps = em.plan_frontend(state, request(), em.EngineStatus(state, request()), recorded_port=4433,
                                 transport_lookup=lambda: True)
        listener = [s for s in steps if s.method == "nvmf_subsystem_add_listener"][0]
        assert listener.params["listen_address"]["trsvcid"] == "4433"

    def test_a_namespace_left_in_the_pause_group_is_moved_back(self):
        subsystems = answer(INTRO, 78)["result"]
        subsystems[1]["namespaces"][0]["anagrpid"] = 2
        state = node(subsystems=subsystems)
        steps = em.plan_frontend(state, request(), em.EngineStatus(state, request()))
        assert [(s.method, s.params) for s in steps] == [
            ("nvmf_subsystem_set_ns_ana_group", {"nqn": NQN, "nsid": 1, "anagrpid": 1})]

    def test_a_frontend_without_ana_is_kept_with_a_warning(self):
        subsystems = answer(INTRO, 78)["result"]
        del subsystems[1]["namespaces"][0]["anagrpid"]
        status = em.EngineStatus(node(subsystems=subsystems), request())
        assert "without ANA reporting" in em.ana_warnings(status.namespaces, NQN)[0]

    def test_frontend_none_deletes_the_subsystem(self):
        state = node()
        steps = em.plan_frontend(state, request(frontend="none"), em.EngineStatus(state, request()))
        assert [(s.method, s.params) for s in steps] == [("nvmf_delete_subsystem", {"nqn": NQN})]


# ------------------------------------------------------------------ absent


class TestAbsent:
    def test_frontend_then_raid_with_superblocks_kept_then_controllers(self):
        steps, bdevs = em.plan_absent(node(), request(state="absent", replicas=[]))
        assert [(s.method, s.params) for s in steps] == [
            ("nvmf_delete_subsystem", {"nqn": NQN}),
            ("bdev_raid_delete", {"name": "vol1-e0", "clear_sb": False}),
            ("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"})]
        assert bdevs == ["vol1-r-b2c3d4e5n1"]

    def test_recorded_former_replicas_are_detached_too(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"])
        steps, _bdevs = em.plan_absent(state, request(state="absent", replicas=[]),
                                       recorded_replicas=[{"name": "img-base-0001", "address": "127.0.0.1:4421"}])
        assert [s.params for s in steps] == [{"name": "img-base-0001"}]

    def test_nothing_left_means_no_step(self):
        state = node(raids=[], subsystems=answer(INTRO, 8)["result"],
                     bdevs=without_bdev(answer(INTRO, 61)["result"], "vol1-r-b2c3d4e5n1"))
        assert em.plan_absent(state, request(state="absent", replicas=[REMOTE])) == ([], [])


# ------------------------------------------------------------------ kernel initiator


class FakeHost:
    """run_command / get_bin_path of a host, with a fake sysfs tree."""

    def __init__(self, root, binaries=("nvme", "modprobe"), modprobe_loads=False):
        self.root = root
        self.binaries = binaries
        self.modprobe_loads = modprobe_loads
        self.commands = []

    def get_bin_path(self, name):
        return "/usr/sbin/" + name if name in self.binaries else None

    def run_command(self, argv):
        self.commands.append(argv)
        if argv[-1] == "nvme_tcp" and self.modprobe_loads:
            os.makedirs(os.path.join(self.root, "module", "nvme_tcp"))
            return 0, "", ""
        if "connect" in argv:
            sub = os.path.join(self.root, "class", "nvme-subsystem", "nvme-subsys3")
            os.makedirs(os.path.join(sub, "nvme3n1"))
            with open(os.path.join(sub, "subsysnqn"), "w") as handle:
                handle.write(argv[argv.index("-n") + 1] + "\n")
            return 0, "", ""
        return 1, "", "modprobe: FATAL: Module nvme_tcp not found"

    def initiator(self):
        return em.KernelInitiator(self.run_command, self.get_bin_path, sysfs=self.root,
                                  hostnqn_file=os.path.join(self.root, "hostnqn"), sleep=lambda s: None)


class TestKernelInitiator:
    def test_missing_nvme_cli_is_refused(self, tmp_path):
        with pytest.raises(em.EngineRefusal, match="needs nvme-cli"):
            FakeHost(str(tmp_path), binaries=()).initiator().check()

    def test_missing_kernel_module_is_refused_after_trying_to_load_it(self, tmp_path):
        host = FakeHost(str(tmp_path))
        with pytest.raises(em.EngineRefusal, match="nvme-tcp kernel module.*could not be loaded"):
            host.initiator().check()
        assert host.commands == [["/usr/sbin/modprobe", "nvme_tcp"]]

    def test_check_mode_only_looks(self, tmp_path):
        host = FakeHost(str(tmp_path))
        with pytest.raises(em.EngineRefusal, match="nvme-tcp kernel module"):
            host.initiator().check(check_mode=True)
        assert host.commands == []

    def test_connect_finds_the_block_device_of_the_subsystem(self, tmp_path):
        host = FakeHost(str(tmp_path), modprobe_loads=True)
        initiator = host.initiator()
        initiator.check()
        assert initiator.device(NQN) is None
        assert initiator.connect(NQN, "127.0.0.1", 4420, "nqn.2014-08.org.nvmexpress:uuid:1") == "/dev/nvme3n1"
        assert host.commands[-1] == ["/usr/sbin/nvme", "connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420",
                                     "-n", NQN, "--hostnqn", "nqn.2014-08.org.nvmexpress:uuid:1"]

    def test_the_kernel_host_nqn_must_exist(self, tmp_path):
        with pytest.raises(em.EngineRefusal, match="nvme gen-hostnqn"):
            FakeHost(str(tmp_path)).initiator().host_nqn()

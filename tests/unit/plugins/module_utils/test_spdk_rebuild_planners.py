"""The copy and join phases of a rebuild, planned on node states and answers a real SPDK v26.05 gave.

The planners (spdk_rebuild_copy_plan, spdk_rebuild_join_plan) are pure: each test feeds them a
recorded state and checks the steps. The waits of the executors (a shallow copy's progress, the RAID
rebuild) run on recorded answers through a scripted client with a fake clock.

States: the source is the d6 chain (replica_scenarios.chain: head ``vol1`` cloned from
``vol1-snap-02`` (2 clusters) cloned from ``vol1-snap-01`` (3 clusters), 64 MiB each); the
destination ``vol9`` holds copies of it, named as a shallow copy leaves them. The engine node is node1 of
more__introspection.json (RAID1 ``vol1-e0`` over ``disk1/vol1-r-a1b2c3d4`` and the remote
``vol1-r-b2c3d4e5n1``). Answers of bdev_lvol_check_shallow_copy and of the RAID during a rebuild come
from tests/emulator/fixtures/ (session.jsonl keeps the lines of step4.jsonl and step6.jsonl) and
tests/unit/fixtures/transcripts/.
"""
import json
import os

import pytest
from tests.unit.expected_calls import answer, transcript
from tests.unit.replica_scenarios import chain, node1, node2

from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_copy_plan as cp
from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_join_plan as jp
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import detach_steps
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import RW, WO
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_context import RebuildContext
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy import CopyPhase
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_join import JoinPhase
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    DONE,
    REBUILDING,
    RebuildError,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    chain_lvols,
    copied_levels,
    member_mode,
    without_raid,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_request import Destination, RebuildRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import ReplicaRef
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import StepRecorder

MIB = 1 << 20
INTRO = "more/introspection.jsonl"
D4 = "more/d4_raid_add_base_rebuild_alloc.jsonl"
NQN = "nqn.2026-01.io.spdk-storage:"
SYSTEM = "rb-20261125021209"
TIMEOUTS = {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
EMULATOR_FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "emulator", "fixtures")


def recorded(name, line):
    """The answer of line ``line`` of the real recording ``name``, as tests/emulator/fixtures/ keeps it."""
    for fixture in ("session.jsonl", name.replace(".jsonl", ".session.jsonl")):
        path = os.path.join(EMULATOR_FIXTURES, fixture)
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            for text in handle:
                entry = json.loads(text)
                if entry.get("from") == "%s:%d" % (name, line):
                    return {k: v for k, v in entry["response"].items() if k in ("result", "error")}
    raise KeyError("%s line %d is not in tests/emulator/fixtures" % (name, line))


def retext(raw, replacements):
    text = json.dumps(raw)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return json.loads(text)


def dest():
    return Destination(replica="vol9", disk="disk1", rpc_socket="/n2.sock", listen_address="127.0.0.3")


def source_chain():
    return chain_lvols(NodeState(chain().raw()).replica("disk1", "vol1"))


def copies(keep=("vol9-snap-01", "vol9-snap-02"), head_as=None, edit=None):
    """The destination holding the copies ``keep`` of the d6 chain (renamed ``vol9``). ``head_as`` keeps the
    source head too, under that name (an interrupted run's transient lvol: a clone of ``vol9-snap-02``, its
    export renamed with it); ``edit(name, bdev)`` changes a recorded bdev."""
    raw = retext(chain().raw(), [('"vol1-snap-', '"vol9-snap-'), ("/vol1-snap-", "/vol9-snap-")])
    if head_as:
        raw = retext(raw, [('"disk1/vol1"', '"disk1/%s"' % head_as), ('"vol1"', '"%s"' % head_as),
                           ('storage:vol1"', 'storage:%s"' % head_as)])
    kept = set(keep) | ({head_as} if head_as else set())
    bdevs = []
    for bdev in raw["bdevs"]:
        name = bdev["aliases"][0].split("/", 1)[1]
        if name in kept:
            lvol = bdev["driver_specific"]["lvol"]
            lvol["clones"] = [c for c in lvol.get("clones") or [] if c in kept]
            if edit:
                edit(name, bdev)
            bdevs.append(bdev)
    raw["bdevs"] = bdevs
    if not head_as:
        raw["subsystems"] = [s for s in raw["subsystems"] if s.get("subtype") == "Discovery"]
    return NodeState(raw)


def transient_on_source():
    """node1's answers with its remote replica's controller and namespace named as the transient ones."""
    rename = {"vol1-r-b2c3d4e5": "vol9-rebuild"}
    return NodeState({"bdevs": answer(INTRO, 61, replace=rename)["result"],
                      "controllers": answer(INTRO, 80, replace=rename)["result"]})


def engine_state(raids=None):
    raw = dict(node1().raw(with_raids=True), controllers=answer(INTRO, 80)["result"])
    if raids is not None:
        raw["raids"] = raids
    return NodeState(raw)


def rebuilding(line):
    """The RAID during a rebuild (d4), with node1's names: vol1-r-b2c3d4e5n1 is the member being rebuilt."""
    return answer(D4, line, replace={"vol-sb-r-remote2n1": "vol1-r-b2c3d4e5n1",
                                     "disk1/vol-sb-r-local": "disk1/vol1-r-a1b2c3d4", "vol-sb-e0": "vol1-e0"})["result"]


LOCAL = ReplicaRef("vol1-r-a1b2c3d4", disk="disk1")
REMOTE = ReplicaRef("vol1-r-b2c3d4e5", address="127.0.0.1:4421", rpc_socket="/n2.sock")


def calls(steps):
    return [(s.method, s.params) for s in steps]


class TestTransient:
    def test_the_oldest_level_is_copied_into_a_new_thin_lvol_of_the_snapshot_s_size(self):
        steps = cp.plan_transient(copies(keep=()), dest(), source_chain(), 0, 64 * MIB)
        assert calls(steps) == [("bdev_lvol_create", {"lvol_name": "vol9-rebuild", "size_in_mib": 64,
                                                      "thin_provision": True, "lvs_name": "disk1"})]

    def test_a_higher_level_is_copied_into_a_clone_of_the_copy_below(self):
        steps = cp.plan_transient(copies(keep=("vol9-snap-01",)), dest(), source_chain(), 1, 64 * MIB)
        assert calls(steps) == [("bdev_lvol_clone", {"snapshot_name": "disk1/vol9-snap-01",
                                                     "clone_name": "vol9-rebuild"})]

    def test_a_transient_lvol_left_for_another_level_goes_with_its_export_first(self):
        state = copies(head_as="vol9-rebuild")     # a clone of vol9-snap-02, exported
        assert calls(cp.plan_transient(state, dest(), source_chain(), 1, 64 * MIB)) == [
            ("nvmf_delete_subsystem", {"nqn": NQN + "vol9-rebuild"}),
            ("bdev_lvol_delete", {"name": "disk1/vol9-rebuild"}),
            ("bdev_lvol_clone", {"snapshot_name": "disk1/vol9-snap-01", "clone_name": "vol9-rebuild"})]

    def test_a_transient_lvol_already_on_the_right_parent_is_kept(self):
        state = copies(head_as="vol9-rebuild")
        assert cp.plan_transient(state, dest(), source_chain(), 2, 64 * MIB) == []

    def test_a_transient_lvol_owning_more_than_the_level_it_copies_is_made_again(self):
        """An interrupted copy of a level leaves at most that level's clusters; more means another copy."""
        source = source_chain()
        source[1].allocated_clusters = 1
        state = copies(keep=("vol9-snap-01",), head_as="vol9-rebuild",
                       edit=lambda name, bdev: name == "vol9-rebuild" and bdev["driver_specific"]["lvol"].update(
                           base_snapshot="vol9-snap-01"))
        assert [s.method for s in cp.plan_transient(state, dest(), source, 1, 64 * MIB)] == [
            "nvmf_delete_subsystem", "bdev_lvol_delete", "bdev_lvol_clone"]

    def test_its_export_lets_only_the_rebuild_s_own_host_in(self):
        spec = cp.transient_spec(dest(), copies(head_as="vol9-rebuild").lvol("disk1", "vol9-rebuild"))
        assert (spec.nqn, spec.bdev, spec.allowed_hosts) == (
            NQN + "vol9-rebuild", "disk1/vol9-rebuild", [NQN + "host:vol9-rebuild"])
        assert spec.bdev_uuid == "aea39c3d-bd7a-4561-b908-0ca80ac073cb"
        planned = cp.transient_spec(dest(), None)       # check mode: not made yet
        assert (planned.bdev, planned.bdev_uuid) == ("disk1/vol9-rebuild", None)

    def test_the_source_attaches_it_once_with_the_run_s_controller_timeouts(self):
        steps = cp.plan_attach_transient(NodeState({"bdevs": [], "controllers": []}), dest(), 4425, TIMEOUTS)
        assert calls(steps) == [("bdev_nvme_attach_controller", dict(
            name="vol9-rebuild", trtype="tcp", adrfam="ipv4", traddr="127.0.0.3", trsvcid="4425",
            subnqn=NQN + "vol9-rebuild", hostnqn=NQN + "host:vol9-rebuild", **TIMEOUTS))]
        assert cp.plan_attach_transient(transient_on_source(), dest(), 4425, TIMEOUTS) == []

    def test_a_controller_left_by_an_interrupted_run_is_detached_before_a_new_copy(self):
        [step] = cp.plan_stale_controller(transient_on_source(), dest())
        assert (step.method, step.params) == ("bdev_nvme_detach_controller", {"name": "vol9-rebuild"})
        assert step.tolerate(SpdkRpcError("bdev_nvme_detach_controller", -19, "No such device"))
        assert cp.plan_stale_controller(NodeState({"controllers": []}), dest()) == []

    def test_the_cleanup_detaches_on_the_source_then_unexports_and_deletes_on_the_destination(self):
        on_source, on_dest = cp.plan_transient_cleanup(transient_on_source(), copies(head_as="vol9-rebuild"), dest())
        assert calls(on_source) == [("bdev_nvme_detach_controller", {"name": "vol9-rebuild"})]
        assert calls(on_dest) == [("nvmf_delete_subsystem", {"nqn": NQN + "vol9-rebuild"}),
                                  ("bdev_lvol_delete", {"name": "disk1/vol9-rebuild"})]
        assert cp.plan_transient_cleanup(NodeState({"controllers": []}), copies(), dest()) == ([], [])


class TestCopyLevel:
    def test_each_level_is_a_shallow_copy_into_the_transient_namespace_then_a_snapshot_of_the_same_name(self):
        snap01 = source_chain()[0]
        step = cp.copy_step(snap01, dest())
        assert (step.method, step.params) == ("bdev_lvol_start_shallow_copy", {
            "src_lvol_name": "disk1/vol1-snap-01", "dst_bdev_name": "vol9-rebuildn1"})
        assert "copy the 3 clusters of snapshot 01" in step.why
        snap = cp.snapshot_copy_step(dest(), "01")
        assert snap.params == {"lvol_name": "disk1/vol9-rebuild", "snapshot_name": "vol9-snap-01"}

    @pytest.mark.parametrize("line, outcome", [(17, None), (18, None), (19, cp.COMPLETE)])
    def test_a_copy_s_progress_as_the_source_target_reports_it(self, line, outcome):
        status = recorded("step4.jsonl", line)["result"]
        assert cp.copy_progress(status, source_chain()[0]) == outcome

    @pytest.mark.parametrize("recording, line, hint", [
        ("d6_alloc_after_shallow_copy.jsonl", 89, "the source lvol is writable, not a snapshot"),
        ("step6.jsonl", 46, "the destination is smaller than the snapshot")])
    def test_a_failed_copy_names_the_snapshot_and_what_spdk_s_error_means(self, recording, line, hint):
        status = recorded(recording, line)["result"]
        with pytest.raises(RebuildError, match=r"shallow copy of snapshot disk1/vol1-snap-01 failed on the source "
                                               r"node: .*\(%s\); run again" % hint):
            cp.copy_progress(status, source_chain()[0])

    def test_a_copy_owning_other_clusters_than_the_snapshot_is_not_snapshotted(self):
        snap01, snap02 = source_chain()
        with pytest.raises(RebuildError, match="owns 2 clusters, the source's snapshot 3: refusing"):
            cp.check_copied(snap02, snap01)
        cp.check_copied(snap01, snap01)

    def test_a_level_is_grown_never_shrunk(self):
        snap01 = source_chain()[0]
        assert calls(cp.plan_grow(snap01, 96 * MIB, "grow")) == [
            ("bdev_lvol_resize", {"name": "disk1/vol1-snap-01", "size_in_mib": 96})]
        assert cp.plan_grow(snap01, 32 * MIB, "grow") == [] and cp.plan_grow(None, 96 * MIB, "grow") == []

    def test_a_copy_the_destination_lists_as_no_snapshot_after_a_restart_still_counts(self):
        """Real SPDK lists a snapshot whose clones were all deleted as none after a restart, but it takes no
        writes (tests/emulator/fixtures/childless_snapshot_restart.real.jsonl)."""
        def restarted(name, bdev):
            if name == "vol9-snap-02":
                bdev["driver_specific"]["lvol"]["snapshot"] = False
                bdev["supported_io_types"]["write"] = False

        assert copied_levels(source_chain(), copies(edit=restarted), dest()) == 2


class TestSystemSnapshotAndHead:
    def test_the_system_snapshot_is_taken_on_every_replica_that_lacks_it(self):
        source = NodeState(chain().raw()).replica("disk1", "vol1")
        taken = NodeState(retext(chain().raw(), [("vol1-snap-02", "vol1-snap-" + SYSTEM)])).replica("disk1", "vol1")
        vol1 = ReplicaRef("vol1", disk="disk1")
        planned = cp.plan_system_snapshot(SYSTEM, [(vol1, source), (vol1, taken)])
        assert [(index, step.params) for index, step in planned] == [
            (0, {"lvol_name": "disk1/vol1", "snapshot_name": "vol1-snap-" + SYSTEM})]

    def test_the_head_is_a_clone_of_the_copy_of_the_source_head_s_parent(self):
        assert calls(cp.plan_head(dest(), cp.head_parent(dest(), "02"), 64 * MIB)) == [
            ("bdev_lvol_clone", {"snapshot_name": "disk1/vol9-snap-02", "clone_name": "vol9"})]
        assert calls(cp.plan_head(dest(), cp.head_parent(dest(), None), 64 * MIB)) == [
            ("bdev_lvol_create", {"lvol_name": "vol9", "size_in_mib": 64, "thin_provision": True,
                                  "lvs_name": "disk1"})]

    def test_a_head_cloned_from_an_older_copy_is_made_again_only_while_unused_and_fresh(self):
        head = copies(head_as="vol9").lvol("disk1", "vol9")        # clone of vol9-snap-02, 2 own clusters
        assert "already a member of RAID vol1-e0" in cp.stale_head_problem(head, "vol9-snap-03", WO, True,
                                                                           "vol1-e0")
        assert "2 clusters of its own data" in cp.stale_head_problem(head, "vol9-snap-03", None, False, "vol1-e0")
        assert cp.stale_head_problem(head, "vol9-snap-03", None, True, "vol1-e0") is None
        assert calls(cp.plan_stale_head_removal(copies(head_as="vol9"), dest(), head, "vol9-snap-03")) == [
            ("nvmf_delete_subsystem", {"nqn": NQN + "vol9"}), ("bdev_lvol_delete", {"name": "disk1/vol9"})]

    def test_the_new_head_is_exported_to_the_engine_node_s_host(self):
        spec = cp.head_spec(dest(), None, NQN + "host-node1")
        assert (spec.nqn, spec.bdev, spec.allowed_hosts, spec.model_number) == (
            NQN + "vol9", "disk1/vol9", [NQN + "host-node1"], "spdk.storage replica")


class TestJoinPlan:
    def test_online_the_replaced_replica_leaves_the_raid_by_its_member_name(self):
        state = engine_state()
        assert calls(jp.plan_leave(state, state.raid("vol1-e0"), REMOTE, LOCAL, "vol1-e0")) == [
            ("bdev_raid_remove_base_bdev", {"name": "vol1-r-b2c3d4e5n1"})]
        assert jp.plan_leave(state, state.raid("vol1-e0"), None, LOCAL, "vol1-e0") == []

    def test_the_replaced_replica_stays_when_the_source_is_no_rw_member(self):
        state = engine_state()
        stranger = ReplicaRef("vol5-r-0b0b0b0b", disk="disk1")
        with pytest.raises(RebuildError, match="the source vol5-r-0b0b0b0b is not an RW member"):
            jp.plan_leave(state, state.raid("vol1-e0"), REMOTE, stranger, "vol1-e0")

    def test_a_raid_without_an_empty_slot_is_named(self):
        state = engine_state()
        assert jp.free_slot_problem(state.raid("vol1-e0"), "vol1-e0") == (
            "RAID vol1-e0 has no free slot (2 of 2 configured): name the replica the new one replaces in replace")
        assert jp.free_slot_problem(state.raid("vol5-e0"), "vol5-e0") is None

    def test_the_new_head_joins_after_the_rebuild_rate_is_set(self):
        new = ReplicaRef("vol9", address="127.0.0.3:4425", rpc_socket="/n2.sock")
        assert calls(jp.plan_add("vol1-e0", new, 8)) == [
            ("bdev_raid_set_options", {"process_max_bandwidth_mb_sec": 8}),
            ("bdev_raid_add_base_bdev", {"raid_bdev": "vol1-e0", "base_bdev": "vol9n1"})]
        assert [s.method for s in jp.plan_add("vol1-e0", new, None)] == ["bdev_raid_add_base_bdev"]

    @pytest.mark.parametrize("raids, mode, percent, blocks", [
        (lambda: rebuilding(29), WO, 0, 0),
        (lambda: rebuilding(31), WO, 53, 8704),
        (lambda: answer(INTRO, 83)["result"], RW, 100, None)])
    def test_a_poll_of_the_raid_tells_the_new_member_s_progress(self, raids, mode, percent, blocks):
        state = engine_state(raids())
        found = member_mode(state, state.raid("vol1-e0"), REMOTE)
        assert found == mode
        assert jp.rebuild_sample(found, state.raid("vol1-e0"), 1.23456) == {
            "phase": "raid rebuild", "mode": mode, "percent": percent, "blocks": blocks, "seconds": 1.235}

    def test_offline_the_raid_is_created_again_as_spdk_engine_creates_it(self):
        assert jp.raid_create_step("vol1-e0", [LOCAL, REMOTE]).params == transcript(INTRO, 37)["request"]["params"]
        assert jp.raid_delete_step("vol1-e0").params == {"name": "vol1-e0", "clear_sb": True}

    def test_offline_the_replaced_replica_s_controller_is_detached_once_the_raid_is_gone(self):
        state = engine_state()
        former = [m for m in state.raid("vol1-e0").members if m["configured"]]
        names = jp.former_controllers(state, former, [LOCAL], REMOTE)
        assert set(names) == {"vol1-r-b2c3d4e5"}
        assert detach_steps(state, names) == ([], [])          # still in the RAID: never pulled from under it
        steps, bdevs = detach_steps(without_raid(state, "vol1-e0"), names)
        assert calls(steps) == [("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"})]
        assert bdevs == ["vol1-r-b2c3d4e5n1"]
        assert jp.former_controllers(state, former, [LOCAL, REMOTE], None) == []

    def test_the_replaced_replica_s_controllers_are_detached_only_when_no_raid_holds_them(self):
        state = engine_state()
        assert jp.replaced_controller_steps(state, REMOTE) == ([], [])
        steps, bdevs = jp.replaced_controller_steps(without_raid(state, "vol1-e0"), REMOTE)
        assert calls(steps) == [("bdev_nvme_detach_controller", {"name": "vol1-r-b2c3d4e5"})]
        assert bdevs == ["vol1-r-b2c3d4e5n1"]
        assert jp.replaced_controller_steps(state, LOCAL) == ([], [])

    def test_lba0_is_written_only_on_heads_no_raid_holds(self):
        state = engine_state()
        assert jp.raid_users(state, "disk1/vol1-r-a1b2c3d4") and jp.raid_users(state, "vol1-r-b2c3d4e5n1")
        assert not jp.raid_users(state, "disk1/vol5-r-0b0b0b0b")

    def test_offline_needs_an_online_raid_rebuilding_nothing_with_the_source_in_it(self):
        state = engine_state()
        assert jp.offline_preconditions_problem(state.raid("vol1-e0"), "vol1-e0", state, LOCAL) is None
        assert "not an up-to-date member of RAID vol1-e0" in jp.offline_preconditions_problem(
            state.raid("vol1-e0"), "vol1-e0", state, ReplicaRef("vol5-r-0b0b0b0b", disk="disk1"))
        assert jp.offline_preconditions_problem(state.raid("vol5-e0"), "vol5-e0", state, LOCAL).startswith(
            "RAID vol5-e0 is configuring")
        busy = engine_state(rebuilding(31))
        assert "is rebuilding vol1-r-b2c3d4e5n1 (53%)" in jp.offline_preconditions_problem(
            busy.raid("vol1-e0"), "vol1-e0", busy, LOCAL)

    def test_offline_only_rw_members_may_join_while_the_raid_is_there(self):
        other = ReplicaRef("vol7", rpc_socket="/n3.sock")
        candidates, warnings = jp.offline_candidates([LOCAL, other], [LOCAL], LOCAL, True, "vol1-e0")
        assert candidates == [LOCAL]
        assert warnings == ["replica vol7 is not an up-to-date RAID member: left out of the new RAID"]
        with pytest.raises(RebuildError, match="source replica vol1-r-a1b2c3d4 is not an up-to-date member"):
            jp.offline_candidates([LOCAL], [], LOCAL, True, "vol1-e0")
        assert jp.offline_candidates([LOCAL, other], [], LOCAL, False, "vol1-e0") == ([LOCAL, other], [])

    def test_offline_a_replica_written_after_the_system_snapshot_cannot_join(self):
        """The d6 head owns 2 clusters after its parent: more than the superblock cluster."""
        view = NodeState(chain().raw()).replica("disk1", "vol1")
        vol1 = ReplicaRef("vol1", disk="disk1")
        with pytest.raises(RebuildError, match="replica vol1 cannot join the re-created RAID: its head owns 2"):
            jp.offline_members([vol1], [view], ["01", "02"], "02", MIB, True, LOCAL)
        members, warnings = jp.offline_members([vol1], [view], ["01", "02"], "02", MIB, False, LOCAL)
        assert members == [] and warnings == [
            "replica vol1 is left out of the new RAID: its head owns 2 clusters written after snapshot 02"]
        view.head.allocated_clusters = 1
        assert jp.offline_members([vol1], [view], ["01", "02"], "02", MIB, True, LOCAL) == ([vol1], [])


# ---------------------------------------------------------------- the waits, on recorded answers


class ScriptedClient:
    """Answers each call with the next recorded answer; ``batch`` answers its calls in order."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def call(self, method, params=None):
        self.calls.append((method, params))
        expected, response = self.answers.pop(0)
        assert method == expected, (method, expected)
        if "error" in response:
            raise SpdkRpcError(method, response["error"]["code"], response["error"]["message"], params)
        return response["result"]

    def batch(self, calls):
        return [self.call(method, params) for method, params in calls]


def context(answers, wait=True, wait_timeout=3600.0, destination="vol9"):
    """A run whose nodes all answer through one scripted client; ``destination`` names the new replica
    (``vol1-r-b2c3d4e5``: the one node1's RAID is rebuilding), which replaces ``vol1-r-old``."""
    client = ScriptedClient(answers)
    sleeps = []         # the time moves only when the run sleeps
    request = RebuildRequest(engine="vol1-e0", source="vol1-r-a1b2c3d4", replace="vol1-r-old",
                             replicas=[LOCAL.to_dict(), {"name": "vol1-r-old", "rpc_socket": "/n3.sock"}],
                             destination={"replica": destination, "disk": "disk2", "rpc_socket": "/n2.sock",
                                          "listen_address": "127.0.0.3"})
    ctx = RebuildContext(request, {"engine": client, "source": client, "destination": client}, StepRecorder(),
                         wait=wait, wait_timeout=wait_timeout, wait_sleep=1.0, sleep=sleeps.append,
                         clock=lambda: sum(sleeps))
    return ctx, client, sleeps


def start(operation):
    return "bdev_lvol_start_shallow_copy", {"result": {"operation_id": operation}}


def check(recording, line):
    return "bdev_lvol_check_shallow_copy", recorded(recording, line)


class TestCopyWait:
    def test_the_copy_is_polled_fast_first_until_it_completes(self):
        ctx, client, sleeps = context([start(2), check("step4.jsonl", 17), check("step4.jsonl", 18),
                                       check("step4.jsonl", 19)])
        snap01 = source_chain()[0]
        CopyPhase(ctx).copy_until_complete(cp.copy_step(snap01, dest()), snap01)
        assert sleeps == [0.04, 0.08]
        assert ctx.copied_clusters == 8 and ctx.copy_seconds == pytest.approx(0.12)
        assert [(s["state"], s["copied_clusters"]) for s in ctx.progress] == [
            ("in progress", 0), ("in progress", 6), ("complete", 8)]
        assert [a["method"] for a in ctx.recorder.actions] == ["bdev_lvol_start_shallow_copy"]
        assert client.answers == []

    def test_a_copy_the_source_target_forgot_is_started_again(self):
        """After a restart the target answers -19 for the operation (step4.jsonl 20): copied again."""
        ctx, client, sleeps = context([start(2), check("step4.jsonl", 20), start(3), check("step4.jsonl", 38),
                                       check("step4.jsonl", 39)])
        snap01 = source_chain()[0]
        CopyPhase(ctx).copy_until_complete(cp.copy_step(snap01, dest()), snap01)
        assert ctx.warnings == ["the source target forgot copy 2 of snapshot 01 (-19): copied again"]
        assert [a["method"] for a in ctx.recorder.actions] == ["bdev_lvol_start_shallow_copy"] * 2
        assert ctx.copied_clusters == 8 and sleeps == [0.04] and client.answers == []

    def test_a_copy_lost_again_and_again_stops_the_run(self):
        forgotten = check("step4.jsonl", 20)
        ctx, client, sleeps = context([start(1), forgotten, start(2), forgotten, start(3), forgotten])
        snap01 = source_chain()[0]
        with pytest.raises(RebuildError, match="the copy of snapshot 01 was lost 3 times"):
            CopyPhase(ctx).copy_until_complete(cp.copy_step(snap01, dest()), snap01)
        assert client.answers == [] and sleeps == []

    def test_a_copy_not_done_by_wait_timeout_says_how_far_it_got(self):
        ctx, client, sleeps = context([start(2)] + [check("step4.jsonl", 18)] * 5, wait_timeout=1.0)
        snap01 = source_chain()[0]
        with pytest.raises(RebuildError, match=r"the copy of snapshot 01 is at 6 of 8 clusters after 1.0s"):
            CopyPhase(ctx).copy_until_complete(cp.copy_step(snap01, dest()), snap01)
        assert sleeps == [0.04, 0.08, 0.16, 0.32] and client.answers == []     # the next pause would pass 1 s


class TestRebuildWait:
    def polls(self, *lines):
        return [("bdev_raid_get_bdevs", {"result": raids}) for raids in lines]

    def test_the_raid_is_polled_until_the_new_member_is_rw(self):
        ctx, client, sleeps = context(self.polls(rebuilding(31), answer(INTRO, 83)["result"]),
                                      destination="vol1-r-b2c3d4e5")
        ctx.engine.state = engine_state(rebuilding(29))
        JoinPhase(ctx).wait_rebuild()
        assert ctx.state == DONE and ctx.rebuild_seconds == 2.0 and sleeps == [1.0, 1.0]
        assert [(s["mode"], s["percent"]) for s in ctx.progress] == [("WO", 0), ("WO", 53), ("RW", 100)]
        assert client.calls == [("bdev_raid_get_bdevs", {"category": "all"})] * 2

    def test_without_wait_the_run_looks_once_and_reports_rebuilding(self):
        ctx, client, sleeps = context([], wait=False, destination="vol1-r-b2c3d4e5")
        ctx.engine.state = engine_state(rebuilding(31))
        JoinPhase(ctx).wait_rebuild()
        assert ctx.state == REBUILDING and sleeps == [] and client.calls == []

    def test_a_member_that_left_the_raid_during_its_rebuild_stops_the_run(self):
        ctx = context([])[0]            # vol9 is no member of node1's RAID
        ctx.engine.state = engine_state(answer(INTRO, 83)["result"])
        with pytest.raises(RebuildError, match="the new replica left RAID vol1-e0 during its rebuild"):
            JoinPhase(ctx).wait_rebuild()


class TestNewReplicaAddress:
    """The join reads the new replica's address back from its export when this run did not make it (step
    join after step copy, or a finished rebuild run again); replicas[].address writes IPv6 in brackets."""

    def test_an_ipv4_export_is_host_colon_port(self):
        ctx = context([], destination="vol1-r-b2c3d4e5")[0]
        ctx.dest.state = NodeState(node2().raw())
        assert JoinPhase(ctx).current_dest_address() == "127.0.0.1:4421"

    def test_an_ipv6_export_is_written_with_brackets_so_the_engine_can_attach_it(self):
        ctx = context([], destination="vol1-r-b2c3d4e5")[0]
        ctx.dest.state = NodeState(retext(node2().raw(), [('"127.0.0.1"', '"::1"'), ('"IPv4"', '"IPv6"')]))
        address = JoinPhase(ctx).current_dest_address()
        assert address == "[::1]:4421"
        new = ctx.request.dest_member(address)
        assert (new.traddr, new.port, new.adrfam) == ("::1", 4421, "IPv6")

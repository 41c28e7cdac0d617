# -*- coding: utf-8 -*-
"""The engine snapshot planners on recorded answers, without any RPC: what each of them decides from the
nodes' reads (tests/unit/engine_snapshot_scenarios.py: engine node E with the local replica vol-r0,
remote replicas vol-r1 on N1 and vol-r2 on N2)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from tests.unit import engine_snapshot_scenarios as sc
import pytest
from tests.unit.expected_calls import answer

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot_create as create
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot_pause as pause
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot_revert_plan as revert
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    EngineSnapshotRefusal,
    timeouts_from_record,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_views import (
    check_engine,
    frontend,
    refuse_while_rebuilding,
    set_view,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState

D2 = "more/d2_raid_sb_restart_clean_remove.jsonl"
request = sc.request


def methods(pairs):
    return [(view.ref.name, step.method, step.params.get("name") or step.params.get("lvol_name"))
            for view, step in pairs]


def engine_raid():
    """The engine node's RAID ``vol``, online (d2 L17: a local and a remote member)."""
    return answer(D2, 17, {"vol1-e0": "vol"})["result"]


class TestCreatePlan:
    def test_a_complete_set_plans_nothing(self):
        views = sc.views(sc.nodes(snapshots=(("s1", "s2"),) * 3))
        plan = create.plan_create(request(), views, {})
        assert not plan.changed and plan.retake == [] and plan.snapshots == []

    def test_a_missing_set_is_one_snapshot_per_replica_in_slot_order(self):
        views = sc.views(sc.nodes(snapshots=(("s1",),) * 3))
        plan = create.plan_create(request(), views, {})
        assert plan.retake == []
        assert methods(plan.snapshots) == [("vol-r0", "bdev_lvol_snapshot", "disk0/vol-r0"),
                                           ("vol-r1", "bdev_lvol_snapshot", "disk1/vol-r1"),
                                           ("vol-r2", "bdev_lvol_snapshot", "disk2/vol-r2")]
        assert plan.snapshots[1][1].params["snapshot_name"] == "vol-r1-snap-s2"
        assert create.rollback_step(request(), views[2]).params == {"name": "disk2/vol-r2-snap-s2"}

    def test_a_partial_set_without_children_is_deleted_first_and_taken_again_everywhere(self):
        views = sc.views(sc.nodes(snapshots=(("s1",), ("s1", "s2"), ("s1",))))
        plan = create.plan_create(request(), views, {})
        assert methods(plan.retake) == [("vol-r1", "bdev_lvol_delete", "disk1/vol-r1-snap-s2")]
        assert "exists on vol-r1 only" in plan.retake[0][1].why
        assert len(plan.snapshots) == 3

    def test_a_partial_set_with_children_is_refused(self):
        views = sc.views(sc.nodes(snapshots=(("s1",), ("s2", "s3"), ("s1",))))
        with pytest.raises(EngineSnapshotRefusal, match=r"already has children \(s3\)"):
            create.plan_create(request(), views, {})
        assert [v.mode for v in views] == ["OK", "ERR", "OK"]

    def test_a_copy_that_is_not_the_recorded_one_is_refused(self):
        views = sc.views(sc.nodes(snapshots=(("s2",),) * 3))
        recorded = {"vol-r0": views[0].snapshot("s2").lvol.uuid, "vol-r1": "an-older-uuid"}
        with pytest.raises(EngineSnapshotRefusal, match="is not the one engine snapshot s2 recorded"):
            create.plan_create(request(), views, recorded)


class TestDeletePlan:
    def test_each_copy_is_merged_into_its_only_child(self):
        views = sc.views(sc.nodes(snapshots=(("s2",), ("s1", "s2"), ())))
        steps = create.plan_delete(request(state="absent"), views)
        assert methods(steps) == [("vol-r0", "bdev_lvol_delete", "disk0/vol-r0-snap-s2"),
                                  ("vol-r1", "bdev_lvol_delete", "disk1/vol-r1-snap-s2")]
        assert steps[0][1].why == "delete snapshot s2 of replica vol-r0 (merged into vol-r0)"

    def test_two_children_on_one_replica_refuse_every_delete(self):
        scenario = sc.nodes(snapshots=(("s2",),) * 3)
        scenario[sc.N1].lvols = sc.replica("disk1", "vol-r1", ("s2",), extra_children={"vol-r1-snap-s2": ["c"]})
        with pytest.raises(EngineSnapshotRefusal, match=r"has 2 children on replica vol-r1 \(c, vol-r1\)"):
            create.plan_delete(request(state="absent"), sc.views(scenario))


class TestRebuildRefusal:
    def test_a_replica_in_wo_refuses_naming_it_and_the_progress(self):
        scenario = sc.nodes()
        views = sc.views(scenario, {sc.E: {"raids": sc.raids(rebuilding=True).response["result"]}})
        with pytest.raises(EngineSnapshotRefusal, match=r"vol-r2 of engine vol is being rebuilt \(mode WO, 53%"):
            refuse_while_rebuilding(request(), views[0].node.state, views, "take")
        assert views[2].mode == "ERR"

    def test_an_online_raid_refuses_nothing(self):
        views = sc.views(sc.nodes(), {sc.E: {"raids": engine_raid()}})
        refuse_while_rebuilding(request(), views[0].node.state, views, "take")


class TestEngineCheck:
    """An engine-level run acts only on the engine it names, over exactly that engine's replicas."""

    @staticmethod
    def engine_views(members=("disk0/vol-r0", "vol-r1n1", "vol-r2n1"), replicas=None):
        raids = sc.raids(members=members).response["result"]
        return sc.views(sc.nodes(), {sc.E: {"raids": raids}}, replicas=replicas)

    def test_the_engines_own_replicas_pass(self):
        views = self.engine_views()
        check_engine(request(), views[0].node.state, views, "take")
        assert [v.mode for v in views] == ["OK"] * 3

    def test_a_mistyped_engine_name_is_refused_before_any_change(self):
        views = self.engine_views()
        with pytest.raises(EngineSnapshotRefusal, match="engine noengine has no RAID bdev on this node"):
            check_engine(request(engine="noengine"), views[0].node.state, views, "take")

    def test_a_replica_list_that_misses_members_of_the_raid_is_refused(self):
        views = self.engine_views(replicas=sc.REPLICAS[:1])
        with pytest.raises(EngineSnapshotRefusal, match="also holds vol-r1n1, vol-r2n1, which replicas does not list"):
            check_engine(request(replicas=sc.REPLICAS[:1]), views[0].node.state, views, "take")

    def test_a_replica_that_is_not_in_the_raid_is_refused_and_marked(self):
        views = self.engine_views(members=("disk0/vol-r0", "vol-r1n1", "other-r9n1"))
        with pytest.raises(EngineSnapshotRefusal, match="replica vol-r2 is not a member of engine vol's RAID"):
            check_engine(request(), views[0].node.state, views, "take")
        assert views[2].mode == "ERR"


class TestPausePlan:
    def test_a_frontend_with_ana_is_paused_without_frontend_nothing_is(self):
        served = frontend(request(), sc.views(sc.nodes())[0].node.state)
        assert pause.quiesce_mode(request(), served) == ("ana", [])
        assert pause.quiesce_mode(request(), None) == ("none", [])
        assert pause.quiesce_mode(request(quiesce="ana"), None) == ("none", [])
        assert pause.namespaces(served) == [(1, 1)]

    def test_quiesce_none_with_a_serving_frontend_warns(self):
        served = sc.engine_subsystem()
        mode, warnings = pause.quiesce_mode(request(quiesce="none"), served)
        assert mode == "none" and "only consistent per replica" in warnings[0]

    def test_a_frontend_without_ana_reporting_is_refused(self):
        served = sc.engine_subsystem(anagrpid=None)
        with pytest.raises(EngineSnapshotRefusal, match="created without ANA reporting"):
            pause.quiesce_mode(request(), served)

    def test_the_spare_group_is_set_up_only_where_it_is_not_inaccessible(self):
        assert pause.spare_group_steps(sc.ENGINE_NQN, [sc.listener()]) == ([], [])
        steps, warnings = pause.spare_group_steps(sc.ENGINE_NQN, [sc.listener("optimized")])
        assert [(s.method, s.params) for s in steps] == [("nvmf_subsystem_listener_set_ana_state", {
            "nqn": sc.ENGINE_NQN, "listen_address": sc.LISTEN, "ana_state": "inaccessible", "anagrpid": 2})]
        assert "was not inaccessible on listener 127.0.0.1:4420" in warnings[0]

    def test_resume_moves_back_what_was_moved_and_what_an_interrupted_pause_left(self):
        assert [s.params["anagrpid"] for s in pause.resume_steps(sc.ENGINE_NQN, [(1, 1)], [1])] == [1]
        assert pause.resume_steps(sc.ENGINE_NQN, [(1, 1)], []) == []
        left = pause.resume_steps(sc.ENGINE_NQN, [(1, 2)], [])
        assert [(s.params["nsid"], s.params["anagrpid"]) for s in left] == [(1, 1)]


class TestRevertPlan:
    def revert_views(self, scenario=None, raids=None, remote_raids=()):
        scenario = scenario or sc.revert_nodes()
        extra = {sc.E: {"raids": engine_raid() if raids is None else raids,
                        "controllers": sc.controllers("vol-r1", "vol-r2")},
                 sc.N1: {"raids": list(remote_raids)}, sc.N2: {"raids": []}}
        return sc.views(scenario, extra)

    def test_a_revert_is_refused_while_the_frontend_exists(self):
        views = self.revert_views()
        with pytest.raises(EngineSnapshotRefusal, match="still has its frontend"):
            revert.check_revert(request(state="reverted"), views, sc.engine_subsystem())

    def test_every_replica_must_hold_the_snapshot(self):
        views = self.revert_views(sc.revert_nodes(snapshots=(("s2",), ("s1",), ("s2",))))
        with pytest.raises(EngineSnapshotRefusal, match="s2 is missing on replica vol-r1"):
            revert.check_revert(request(state="reverted"), views, None)

    def test_a_remote_replica_needs_its_export(self):
        scenario = sc.revert_nodes()
        scenario[sc.N2].subsystems = []
        views = self.revert_views(scenario)
        with pytest.raises(EngineSnapshotRefusal, match="replica vol-r2 has no export"):
            revert.check_revert(request(state="reverted"), views, None)
        assert views[2].mode == "ERR"

    def test_the_phases_steps_from_the_first_reads(self):
        req = request(state="reverted")
        views = self.revert_views()
        revert.check_revert(req, views, None)
        engine_state = views[0].node.state
        assert [s.params for s in revert.engine_raid_steps(req, engine_state)] == [{"name": "vol", "clear_sb": False}]
        assert revert.stale_raid_steps(views[1]) == []
        head = views[1].replica.head
        assert [(s.method, s.params) for s in revert.unexport_steps(views[1], head)] == [
            ("nvmf_subsystem_remove_ns", {"nqn": "nqn.2026-01.io.spdk-storage:vol-r1", "nsid": 1})]
        assert [(s.method, s.params) for s in revert.reclone_steps(req, views[1], head)] == [
            ("bdev_lvol_delete", {"name": "disk1/vol-r1"}),
            ("bdev_lvol_clone", {"snapshot_name": "disk1/vol-r1-snap-s2", "clone_name": "vol-r1"})]
        assert revert.raid_create_step(req, views).params["base_bdevs"] == ["disk0/vol-r0", "vol-r1n1", "vol-r2n1"]

    def test_a_raid_a_restarted_replica_node_assembled_around_the_head_is_deleted(self):
        views = self.revert_views()
        head = views[1].replica.head
        stray = dict(engine_raid()[0], name="vol-stray")
        stray["base_bdevs_list"][0].update(name=head.alias, uuid=head.uuid)
        views = self.revert_views(remote_raids=[stray])
        assert [(s.method, s.params) for s in revert.stale_raid_steps(views[1])] == [
            ("bdev_raid_delete", {"name": "vol-stray", "clear_sb": False})]

    def test_the_new_head_is_exported_and_attached_with_the_engines_recorded_loss_policy(self):
        recorded = {"controller_timeouts": {"ctrlr_loss_timeout_sec": 3, "reconnect_delay_sec": 1,
                                            "fast_io_fail_timeout_sec": 2}}
        req = request(state="reverted", timeouts=timeouts_from_record(recorded))
        views = self.revert_views()
        # The export still holds the head the reads show: nothing to export, and the engine reaches it.
        assert revert.export_steps(views[1], stale=False) == []
        # Planned on reads that predate the replacement (check mode): export the new head, attach again.
        assert [s.method for s in revert.export_steps(views[1], stale=True)] == ["nvmf_subsystem_add_ns"]
        assert revert.needs_attach(views[0].node.state, views[1], stale=True)
        params = revert.attach_step(req, views[1].ref).params
        assert params == {"name": "vol-r1", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.2",
                          "trsvcid": "4421", "subnqn": "nqn.2026-01.io.spdk-storage:vol-r1", "hostnqn": sc.HOST,
                          "ctrlr_loss_timeout_sec": 3, "reconnect_delay_sec": 1, "fast_io_fail_timeout_sec": 2}

    def test_an_export_of_another_bdev_is_replaced_by_the_head(self):
        scenario = sc.revert_nodes()
        scenario[sc.N1].subsystems[0]["namespaces"][0]["bdev_name"] = "something-else"
        steps = revert.export_steps(self.revert_views(scenario)[1], stale=False)
        assert [(s.method, s.params.get("nsid")) for s in steps] == [
            ("nvmf_subsystem_remove_ns", 1), ("nvmf_subsystem_add_ns", None)]

    def test_progress_done_holds_only_while_nobody_replaced_or_wrote_the_heads(self):
        req = request(state="reverted")
        views = self.revert_views()
        heads = {v.ref.name: v.replica.head.uuid for v in views}
        allocated = {v.ref.name: v.replica.head.allocated_clusters for v in views}
        engine_state = views[0].node.state
        done = {"state": "done", "heads": heads, "allocated": allocated}
        assert revert.revert_done(req, done, engine_state, views)
        assert not revert.revert_done(req, dict(done, allocated=dict(allocated, **{"vol-r1": 99})), engine_state,
                                      views)
        assert not revert.revert_done(req, dict(done, state="running"), engine_state, views)
        assert not revert.revert_done(req, done, NodeState(dict(engine_state.raw, raids=[])), views)

    def test_a_raid_over_exactly_the_recloned_heads_is_the_result_of_a_crashed_run(self):
        req = request(state="reverted")
        views = self.revert_views()
        heads = {v.ref.name: v.replica.head.uuid for v in views}
        raid = engine_raid()
        recorded = raid[0]["base_bdevs_list"][0]
        raid[0]["base_bdevs_list"] = [dict(recorded, name=v.ref.bdev, uuid=heads[v.ref.name]) for v in views]
        views = self.revert_views(raids=raid)
        assert revert.raid_is_revert_result(req, heads, views[0].node.state, views)
        assert not revert.raid_is_revert_result(req, dict(heads, **{"vol-r2": "another"}), views[0].node.state,
                                                views)


def test_the_result_view_names_each_replica_its_node_and_its_snapshot():
    views = sc.views(sc.nodes(snapshots=(("s1", "s2"), ("s1", "s2"), ("s1",))))
    view = set_view(request(), views)
    assert view["consistent"] is False and view["snapshot_sets"]["vol-r2"] == ["s1"]
    assert sorted(view["replicas"][1]) == ["address", "disk", "error", "mode", "name", "node", "parent",
                                           "rpc_socket", "snapshot", "snapshots"]
    assert view["replicas"][1]["snapshot"]["name"] == "s2" and view["replicas"][2]["snapshot"] is None

# -*- coding: utf-8 -*-
"""Engine snapshot domain (spdk_engine_snapshot): input, NVMe commands, and runs against several
scripted nodes (engine node E with the local replica, remote replica nodes N1 and N2)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from tests.unit import engine_snapshot_scenarios as sc
import pytest
from tests.unit.expected_calls import answer, error, expect, reads, result

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot as es
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient

LVOL_OPS = "more/lvol_ops.jsonl"
ANA = "more/ana/run15_nsgroup_pause_nodrain.jsonl"
request = sc.request


def clients(check_mode=False):
    return lambda address: SpdkRpcClient(address, timeout=5.0, check_mode=check_mode)


def run(req, scripts, check_mode=False, clock=None, record=None):
    wire = sc.Wire(scripts)
    extra = {"clock": clock} if clock else {}
    engine = es.EngineSnapshotRun(req, SpdkRpcClient(sc.E, timeout=5.0, check_mode=check_mode), clients(check_mode),
                                  check_mode=check_mode, record=record, **extra)
    with wire.patch():
        failure = None
        try:
            getattr(engine, req.state)()
        except (es.EngineSnapshotRefusal, es.ReplicaFailed) as exc:
            failure = exc
    wire.check()
    return engine, wire, failure


def snapshot(address, replica, disk, name="s2", response=None):
    return expect("bdev_lvol_snapshot", {"lvol_name": "%s/%s" % (disk, replica),
                                         "snapshot_name": "%s-snap-%s" % (replica, name)},
                  response or answer(LVOL_OPS, 120))


def pause(group):
    return expect("nvmf_subsystem_set_ns_ana_group", {"nqn": sc.ENGINE_NQN, "nsid": 1, "anagrpid": group},
                  answer(ANA, 120))


class TestInput:
    def test_a_remote_replica_needs_its_rpc_socket(self):
        with pytest.raises(SpdkInputError, match="give its rpc_socket"):
            request(replicas=[{"name": "vol-r1", "address": "127.0.0.2:4421"}])

    def test_the_snapshot_lvol_name_must_fit_on_every_replica(self):
        long_replica = "r" * 50
        with pytest.raises(SpdkInputError, match="at most 63"):
            request(name="x" * 10, replicas=[{"name": long_replica, "disk": "d"}])

    def test_revert_needs_a_snapshot_name(self):
        with pytest.raises(SpdkInputError, match="needs the snapshot name"):
            request(name=None, state="reverted")

    def test_a_replica_with_disk_and_address_is_refused_as_spdk_engine_refuses_it(self):
        with pytest.raises(SpdkInputError, match="not both"):
            request(replicas=[{"name": "vol-r1", "disk": "disk1", "address": "127.0.0.2:4421", "rpc_socket": sc.N1}])

    def test_no_replicas_is_refused_with_what_to_do(self):
        with pytest.raises(SpdkInputError, match="no replicas given"):
            request(replicas=[])

    def test_replicas_come_from_the_engine_record(self):
        recorded = {"replicas": [{"name": "vol-r0", "disk": "disk0"},
                                 {"name": "vol-r1", "address": "127.0.0.2:4421", "nqn": None, "rpc_socket": sc.N1}]}
        specs = request(replicas=es.replicas_from_record(recorded)).replicas
        assert [(s.name, s.is_local, s.bdev) for s in specs] == [
            ("vol-r0", True, "disk0/vol-r0"), ("vol-r1", False, "vol-r1n1")]


def three_reads(nodes, address):
    return reads(*nodes[address].reads())


class TestCreate:
    def test_a_failed_snapshot_rolls_back_the_others_resumes_io_and_marks_the_replica_err(self):
        nodes = sc.nodes()
        engine, wire, failure = run(request(), {
            sc.E: [three_reads(nodes, sc.E), sc.raids(),
                   expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN}, result([sc.listener()])),
                   pause(2), snapshot(sc.E, "vol-r0", "disk0"), pause(1),
                   expect("bdev_lvol_delete", {"name": "disk0/vol-r0-snap-s2"}, answer(LVOL_OPS, 123))],
            sc.N1: [three_reads(nodes, sc.N1), snapshot(sc.N1, "vol-r1", "disk1"),
                    expect("bdev_lvol_delete", {"name": "disk1/vol-r1-snap-s2"}, answer(LVOL_OPS, 123))],
            sc.N2: [three_reads(nodes, sc.N2),
                    snapshot(sc.N2, "vol-r2", "disk2", response=error(-28, "No space left on device"))],
        })
        assert isinstance(failure, es.ReplicaFailed) and failure.replica == "vol-r2"
        assert "No space left" in str(failure)
        modes = [(v.ref.name, v.mode) for v in engine.views]
        assert modes == [("vol-r0", "OK"), ("vol-r1", "OK"), ("vol-r2", "ERR")]

    def test_the_pause_ends_at_quiesce_timeout_and_io_resumes(self):
        nodes = sc.nodes()
        ticks = iter([0.0, 0.5, 9.0, 9.5])
        engine, wire, failure = run(request(quiesce_timeout=2), {
            sc.E: [three_reads(nodes, sc.E), sc.raids(),
                   expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN}, result([sc.listener()])),
                   pause(2), snapshot(sc.E, "vol-r0", "disk0"), pause(1),
                   expect("bdev_lvol_delete", {"name": "disk0/vol-r0-snap-s2"}, answer(LVOL_OPS, 123))],
            sc.N1: [three_reads(nodes, sc.N1)],
            sc.N2: [three_reads(nodes, sc.N2)],
        }, clock=lambda: next(ticks))
        assert "quiesce_timeout (2.0s)" in str(failure) and failure.replica == "vol-r1"
        assert engine.paused_seconds == 9.5

    def test_a_spare_group_left_accessible_is_made_inaccessible_first(self):
        nodes = sc.nodes()
        spare = {"nqn": sc.ENGINE_NQN, "listen_address": sc.LISTEN, "ana_state": "inaccessible", "anagrpid": 2}
        scripts = {sc.E: [three_reads(nodes, sc.E), sc.raids(),
                          expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN},
                                 result([sc.listener("optimized")])),
                          expect("nvmf_subsystem_listener_set_ana_state", spare, answer(ANA, 18)),
                          pause(2), snapshot(sc.E, "vol-r0", "disk0")],
                   sc.N1: [three_reads(nodes, sc.N1), snapshot(sc.N1, "vol-r1", "disk1")],
                   sc.N2: [three_reads(nodes, sc.N2), snapshot(sc.N2, "vol-r2", "disk2")]}
        scripts[sc.E] += [pause(1), three_reads(nodes, sc.E)]
        scripts[sc.N1].append(three_reads(nodes, sc.N1))
        scripts[sc.N2].append(three_reads(nodes, sc.N2))
        engine, wire, failure = run(request(), scripts)
        assert failure is None
        assert any("was not inaccessible" in w for w in engine.warnings)

    def test_a_partial_set_with_children_is_refused_and_nothing_changes(self):
        nodes = sc.nodes(snapshots=(("s1", "s2", "s3"), ("s1",), ("s1",)))
        engine, wire, failure = run(request(), {
            sc.E: [three_reads(nodes, sc.E)], sc.N1: [three_reads(nodes, sc.N1)], sc.N2: [three_reads(nodes, sc.N2)]})
        assert isinstance(failure, es.EngineSnapshotRefusal)
        assert "exists on vol-r0 only" in str(failure) and "already has children (s3)" in str(failure)
        assert wire.mutating(sc.E) == [] and engine.actions == []

    def test_a_partial_set_is_deleted_and_taken_again_on_all_replicas(self):
        nodes = sc.nodes(snapshots=(("s1", "s2"), ("s1",), ("s1",)))
        scripts = {
            sc.E: [three_reads(nodes, sc.E), sc.raids(),
                   expect("bdev_lvol_delete", {"name": "disk0/vol-r0-snap-s2"}, answer(LVOL_OPS, 123)),
                   expect("nvmf_subsystem_get_listeners", {"nqn": sc.ENGINE_NQN}, result([sc.listener()])),
                   pause(2), snapshot(sc.E, "vol-r0", "disk0"), pause(1), three_reads(nodes, sc.E)],
            sc.N1: [three_reads(nodes, sc.N1), snapshot(sc.N1, "vol-r1", "disk1"), three_reads(nodes, sc.N1)],
            sc.N2: [three_reads(nodes, sc.N2), snapshot(sc.N2, "vol-r2", "disk2"), three_reads(nodes, sc.N2)]}
        engine, wire, failure = run(request(), scripts)
        assert failure is None
        assert "exists on vol-r0 only" in engine.actions[0]["why"]

    def test_a_name_held_by_a_writable_lvol_is_a_clear_failure(self):
        nodes = sc.nodes(snapshots=((), (), ()))
        nodes[sc.N2].lvols.append(sc.lvol("disk2", "vol-r2-snap-s2"))
        engine, wire, failure = run(request(), {
            sc.E: [three_reads(nodes, sc.E)], sc.N1: [three_reads(nodes, sc.N1)], sc.N2: [three_reads(nodes, sc.N2)]})
        assert "is not a snapshot" in str(failure) and "disk2/vol-r2-snap-s2" in str(failure)
        assert engine.actions == []

    def test_a_copy_retaken_on_one_replica_is_not_the_recorded_snapshot(self, tmp_path):
        nodes = sc.nodes(snapshots=(("s2",), ("s2",), ("s2",)))
        record = es.SnapshotRecord(str(tmp_path / "e.json"), "e", "vol", "s2")
        record.save_snapshot({"vol-r0": sc._uuid("disk0vol-r0-snap-s2"), "vol-r1": sc._uuid("disk1vol-r1-snap-s2"),
                              "vol-r2": "an-older-uuid"})
        engine, wire, failure = run(request(), {
            sc.E: [three_reads(nodes, sc.E)], sc.N1: [three_reads(nodes, sc.N1)], sc.N2: [three_reads(nodes, sc.N2)]},
            record=record)
        assert "is not the one engine snapshot s2 recorded (uuid an-older-uuid)" in str(failure)


class TestDeleteAndRevertRefusals:
    def test_delete_refuses_two_children_on_any_replica_before_touching_any(self):
        nodes = sc.nodes(snapshots=(("s2",), ("s2",), ("s2",)))
        nodes[sc.N2].lvols = sc.replica("disk2", "vol-r2", ("s2",), extra_children={"vol-r2-snap-s2": ["other"]})
        engine, wire, failure = run(request(state="absent"), {
            sc.E: [three_reads(nodes, sc.E)], sc.N1: [three_reads(nodes, sc.N1)], sc.N2: [three_reads(nodes, sc.N2)]})
        assert "has 2 children on replica vol-r2 (other, vol-r2)" in str(failure)
        assert all(wire.mutating(a) == [] for a in (sc.E, sc.N1, sc.N2))

    def test_revert_with_a_frontend_is_refused_and_changes_nothing(self):
        nodes = sc.nodes(snapshots=(("s2",), ("s2",), ("s2",)))
        engine, wire, failure = run(request(state="reverted"), {
            sc.E: [reads(*nodes[sc.E].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])),
                         ("bdev_nvme_get_controllers", None, result([])))],
            sc.N1: [reads(*nodes[sc.N1].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))],
            sc.N2: [reads(*nodes[sc.N2].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))]})
        assert "still has its frontend" in str(failure) and "frontend=none" in str(failure)
        assert engine.actions == []

    def test_revert_while_a_replica_is_rebuilt_is_refused_and_changes_nothing(self):
        nodes = sc.nodes(snapshots=(("s2",), ("s2",), ("s2",)), frontend=False)
        for address, replica in ((sc.N1, "vol-r1"), (sc.N2, "vol-r2")):
            nodes[address].subsystems = [dict(sc.engine_subsystem(), nqn="nqn.2026-01.io.spdk-storage:" + replica)]
        rebuilding = sc.raids(rebuilding=True).response
        engine, wire, failure = run(request(state="reverted"), {
            sc.E: [reads(*nodes[sc.E].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, rebuilding),
                         ("bdev_nvme_get_controllers", None, result([])))],
            sc.N1: [reads(*nodes[sc.N1].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))],
            sc.N2: [reads(*nodes[sc.N2].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))]})
        assert isinstance(failure, es.EngineSnapshotRefusal)
        assert "vol-r2 of engine vol is being rebuilt" in str(failure) and "cannot revert to s2" in str(failure)
        assert engine.actions == [] and all(wire.mutating(a) == [] for a in (sc.E, sc.N1, sc.N2))

    def test_an_unreachable_node_refuses_before_any_change(self):
        nodes = sc.nodes()
        engine, wire, failure = run(request(), {
            sc.E: [three_reads(nodes, sc.E)], sc.N1: [three_reads(nodes, sc.N1)], sc.N2: sc.DOWN})
        assert "cannot reach every replica of engine vol: vol-r2 (" in str(failure)
        assert engine.actions == [] and [v.mode for v in engine.views] == ["OK", "OK", "ERR"]


class TestRecord:
    def test_snapshot_uuids_and_revert_progress_are_kept_together(self, tmp_path):
        path = str(tmp_path / "e.json")
        record = es.SnapshotRecord(path, "e", "vol", "s2")
        record.save_snapshot({"vol-r0": "u0"})
        record.save_revert({"state": "running", "heads": {"vol-r0": "h0"}})
        again = es.SnapshotRecord(path, "e", "vol", "s2")
        entry = again.entry()
        assert entry["replicas"] == {"vol-r0": "u0"} and entry["kind"] == "user" and entry["created"]
        assert again.revert_marker() == {"state": "running", "heads": {"vol-r0": "h0"}}
        again.remove_snapshot()
        assert es.SnapshotRecord(path, "e", "vol", "s2").entry() is None


def revert_scripts(nodes, engine_raids=None):
    """The reads a revert starts with: the engine node's five (RAIDs and controllers too), four per replica node."""
    engine_raids = sc.raids().response if engine_raids is None else engine_raids
    return {
        sc.E: [reads(*nodes[sc.E].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, engine_raids),
                     ("bdev_nvme_get_controllers", None, result(sc.controllers("vol-r1", "vol-r2"))))],
        sc.N1: [reads(*nodes[sc.N1].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))],
        sc.N2: [reads(*nodes[sc.N2].reads(), ("bdev_raid_get_bdevs", {"category": "all"}, result([])))]}


class TestRevert:
    TIMEOUTS = {"ctrlr_loss_timeout_sec": 3, "reconnect_delay_sec": 1, "fast_io_fail_timeout_sec": 2}

    def test_check_mode_lists_every_phase_from_the_first_reads(self):
        """Only reads are sent: one batch per node, and the transports before the temporary export."""
        scripts = revert_scripts(sc.revert_nodes())
        scripts[sc.E].append(expect("nvmf_get_transports", None, answer("more/introspection.jsonl", 79)))
        engine, wire, failure = run(request(state="reverted", timeouts=self.TIMEOUTS), scripts, check_mode=True)
        assert failure is None, failure
        assert all(wire.mutating(a) == [] for a in (sc.E, sc.N1, sc.N2))
        e, n1, n2 = "engine node", "node of vol-r1", "node of vol-r2"
        reclone = ["bdev_lvol_delete", "bdev_lvol_clone"]
        temporary_export = ["nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host",
                            "nvmf_subsystem_add_listener", "bdev_nvme_attach_controller", "bdev_nvme_send_cmd",
                            "bdev_nvme_detach_controller", "nvmf_delete_subsystem"]
        remote_zeroing = ["bdev_nvme_attach_controller", "bdev_nvme_send_cmd"]
        assert [(a["node"].split(" (")[0], a["method"]) for a in engine.actions] == (
            [(e, "bdev_raid_delete")] + [(e, m) for m in reclone]
            + [(e, "bdev_nvme_detach_controller"), (n1, "nvmf_subsystem_remove_ns")] + [(n1, m) for m in reclone]
            + [(e, "bdev_nvme_detach_controller"), (n2, "nvmf_subsystem_remove_ns")] + [(n2, m) for m in reclone]
            + [(e, m) for m in temporary_export]
            + [(n1, "nvmf_subsystem_add_ns")] + [(e, m) for m in remote_zeroing]
            + [(n2, "nvmf_subsystem_add_ns")] + [(e, m) for m in remote_zeroing]
            + [(e, "bdev_raid_create")])
        attached = [a["params"] for a in engine.actions if a["method"] == "bdev_nvme_attach_controller"
                    and a["params"]["name"] in ("vol-r1", "vol-r2")]
        assert [{k: p[k] for k in self.TIMEOUTS} for p in attached] == [self.TIMEOUTS] * 2

    def test_a_finished_revert_whose_heads_nobody_touched_is_reads_only(self, tmp_path):
        nodes = sc.revert_nodes()
        views = sc.views(nodes)
        record = es.SnapshotRecord(str(tmp_path / "e.json"), "e", "vol", "s2")
        record.save_revert({"state": "done", "heads": {v.ref.name: v.replica.head.uuid for v in views},
                            "allocated": {v.ref.name: v.replica.head.allocated_clusters for v in views}})
        engine, wire, failure = run(request(state="reverted"), revert_scripts(nodes), record=record)
        assert failure is None and engine.actions == []

    def test_a_remote_replica_without_address_cannot_be_reverted(self):
        with pytest.raises(SpdkInputError, match="give its address"):
            request(state="reverted", replicas=[{"name": "vol-r1", "rpc_socket": sc.N1}])

    def test_a_remote_replica_without_address_can_be_snapshotted_through_its_node(self):
        nodes = sc.nodes()
        replicas = [{"name": "vol-r0", "disk": "disk0"}, {"name": "vol-r1", "rpc_socket": sc.N1},
                    {"name": "vol-r2", "rpc_socket": sc.N2}]
        scripts = {address: [three_reads(nodes, address)] for address in (sc.E, sc.N1, sc.N2)}
        scripts[sc.E].append(sc.raids())
        engine, wire, failure = run(request(quiesce="none", replicas=replicas), scripts, check_mode=True)
        assert failure is None
        assert [a["method"] for a in engine.actions] == ["bdev_lvol_snapshot"] * 3

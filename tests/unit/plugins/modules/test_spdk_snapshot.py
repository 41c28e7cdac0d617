# -*- coding: utf-8 -*-
"""spdk_snapshot (replica level) through main(), with the RPCs it must send, in order.

The node is CHAIN of tests/unit/replica_scenarios.py: head ``vol1`` <- ``vol1-snap-02``
<- ``vol1-snap-01``, which also has the clone ``vol1-clone-01``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from tests.unit import replica_scenarios as sc
from tests.unit.expected_calls import answer, error, expect, reads, run_module

from ansible_collections.spdk.storage.plugins.modules import spdk_info, spdk_snapshot

MIB = 1 << 20
LVOL_OPS = "more/lvol_ops.jsonl"
TREE_FIELDS = ("name", "lvol_name", "parent", "children", "head_child", "other_children", "allocated_bytes",
               "allocated_clusters")


def run(args, calls, **kwargs):
    return run_module(spdk_snapshot, args, calls, **kwargs)


def batch(scenario):
    return reads(*scenario.reads())


def names(outcome):
    return [s["name"] for s in outcome.result["snapshots"]]


def tree(outcome):
    """The snapshot entries without what only the target knows after the fact (a new snapshot's UUID)."""
    return [{k: v for k, v in s.items() if k != "uuid"} for s in outcome.result["snapshots"]]


class TestCreate:
    def test_create(self):
        outcome = run(dict(replica="vol1", name="03"), [
            batch(sc.chain()),
            expect("bdev_lvol_snapshot", {"lvol_name": "disk1/vol1", "snapshot_name": "vol1-snap-03"},
                   answer(LVOL_OPS, 120)),
            batch(sc.chain_with_snapshot_03()),
        ], diff=True)
        assert outcome.changed is True
        assert names(outcome) == ["01", "02", "03"]
        assert {k: outcome.result["snapshot"][k] for k in TREE_FIELDS} == {
            "name": "03", "lvol_name": "vol1-snap-03", "parent": "02", "children": [], "head_child": True,
            "other_children": [], "allocated_bytes": 2 * MIB, "allocated_clusters": 2}
        former_parent = outcome.result["snapshots"][1]
        assert (former_parent["name"], former_parent["children"], former_parent["head_child"]) == ("02", ["03"], False)
        assert [s["name"] for s in outcome.result["diff"]["before"]["snapshots"]] == ["01", "02"]

    def test_existing_snapshot_is_three_reads_and_no_change(self):
        outcome = run(dict(replica="vol1", name="02"), [batch(sc.chain())])
        assert outcome.changed is False
        assert outcome.rpc_count == 3 and outcome.script.exchanges == [3]
        assert outcome.result["snapshot"]["parent"] == "01"

    def test_check_mode_plans_the_create_and_sends_nothing(self):
        outcome = run(dict(replica="vol1", name="03"), [batch(sc.chain())], check_mode=True)
        assert outcome.changed is True and outcome.mutating == []
        assert names(outcome) == ["01", "02", "03"]
        assert outcome.result["snapshot"]["children"] == [] and outcome.result["snapshot"]["head_child"] is True

    def test_check_mode_predicts_the_entries_the_real_run_returns(self):
        planned = run(dict(replica="vol1", name="03"), [batch(sc.chain())], check_mode=True)
        done = run(dict(replica="vol1", name="03"), [
            batch(sc.chain()),
            expect("bdev_lvol_snapshot", {"lvol_name": "disk1/vol1", "snapshot_name": "vol1-snap-03"},
                   answer(LVOL_OPS, 120)),
            batch(sc.chain_with_snapshot_03()),
        ])
        assert tree(planned) == tree(done)

    def test_the_head_is_reported_as_spdk_info_reports_it(self):
        """One representation in both modules: child snapshots in children, the head as head_child."""
        snapshot = run(dict(replica="vol1", name="02"), [batch(sc.chain())])
        info = run_module(spdk_info, {"gather": ["replicas"], "disk": "disk1"},
                          [batch(sc.chain()), reads(("bdev_raid_get_bdevs", {"category": "all"}, sc.chain().raids))])
        [replica] = [r for r in info.result["replicas"] if r["name"] == "vol1"]
        assert [dict(s, allocated_bytes=s["allocated_clusters"] * MIB) for s in replica["snapshots"]] == \
            snapshot.result["snapshots"]
        assert all("vol1" not in s["children"] for s in snapshot.result["snapshots"])

    def test_missing_replica_fails_cleanly(self):
        outcome = run(dict(replica="vol9", name="03"), [batch(sc.chain())])
        assert outcome.failed and outcome.mutating == []
        assert "replica vol9 not found" in outcome.msg

    def test_a_failed_snapshot_reports_the_rpc_and_the_actions_sent(self):
        outcome = run(dict(replica="vol1", name="03"), [
            batch(sc.chain()),
            expect("bdev_lvol_snapshot", {"lvol_name": "disk1/vol1", "snapshot_name": "vol1-snap-03"},
                   error(-28, "No space left on device")),
        ])
        assert outcome.failed and outcome.result["rpc_method"] == "bdev_lvol_snapshot"
        assert outcome.result["rpc_error_code"] == -28
        assert [a["method"] for a in outcome.result["actions"]] == ["bdev_lvol_snapshot"]

    def test_name_too_long_for_the_lvol_fails_before_any_rpc(self):
        outcome = run(dict(replica="vol1", name="s" * 60), [])
        assert outcome.failed and outcome.rpc_count == 0 and "at most 63" in outcome.msg


class TestDelete:
    def test_delete_merges_into_its_only_child(self):
        outcome = run(dict(replica="vol1", name="02", state="absent"), [
            batch(sc.chain()),
            expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}, answer(LVOL_OPS, 123)),
            batch(sc.chain_without_snapshot_02()),
        ])
        assert outcome.changed is True
        assert names(outcome) == ["01"] and outcome.result["snapshot"] is None
        merged = outcome.result["snapshots"][0]
        assert (merged["children"], merged["head_child"], merged["other_children"]) == ([], True, ["vol1-clone-01"])

    def test_delete_with_two_children_is_refused(self):
        outcome = run(dict(replica="vol1", name="01", state="absent"), [batch(sc.chain())])
        assert outcome.failed and outcome.mutating == []
        assert "has 2 children (02, vol1-clone-01)" in outcome.msg

    def test_deleting_a_missing_snapshot_changes_nothing(self):
        outcome = run(dict(replica="vol1", name="99", state="absent"), [batch(sc.chain())])
        assert outcome.changed is False and outcome.rpc_count == 3

    def test_delete_check_mode(self):
        outcome = run(dict(replica="vol1", name="02", state="absent"), [batch(sc.chain())], check_mode=True)
        assert outcome.changed is True and outcome.mutating == []
        assert names(outcome) == ["01"]
        done = run(dict(replica="vol1", name="02", state="absent"), [
            batch(sc.chain()),
            expect("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}, answer(LVOL_OPS, 123)),
            batch(sc.chain_without_snapshot_02()),
        ])
        assert tree(outcome) == tree(done)

# -*- coding: utf-8 -*-
"""spdk_snapshot (replica level) through main(), with the RPCs it must send, in order.

The node is CHAIN of tests/unit/replica_scenarios.py: head ``vol1`` <- ``vol1-snap-02``
<- ``vol1-snap-01``, which also has the clone ``vol1-clone-01``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import replica_scenarios as sc
from expected_calls import answer, expect, reads, run_module

from ansible_collections.spdk.storage.plugins.modules import spdk_snapshot

MIB = 1 << 20
LVOL_OPS = "more/lvol_ops.jsonl"


def run(args, calls, **kwargs):
    return run_module(spdk_snapshot, args, calls, **kwargs)


def batch(scenario):
    return reads(*scenario.reads())


def names(outcome):
    return [s["name"] for s in outcome.result["snapshots"]]


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
        assert outcome.result["snapshot"] == {
            "name": "03", "lvol_name": "vol1-snap-03", "parent": "02", "children": ["vol1"],
            "allocated_bytes": 2 * MIB, "allocated_clusters": 2}
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
        assert outcome.result["snapshot"]["children"] == ["vol1"]

    def test_missing_replica_fails_cleanly(self):
        outcome = run(dict(replica="vol9", name="03"), [batch(sc.chain())])
        assert outcome.failed and outcome.mutating == []
        assert "replica vol9 not found" in outcome.msg

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
        assert outcome.result["snapshots"][0]["children"] == ["vol1", "vol1-clone-01"]

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

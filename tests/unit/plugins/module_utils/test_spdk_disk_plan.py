# -*- coding: utf-8 -*-
"""spdk_disk's planners on node states a real SPDK v26.05 answered (tests/unit/fixtures/transcripts).

The module tests (tests/unit/plugins/modules/test_spdk_disk.py) run the same decisions through
main() with the RPCs in order; these check each decision on its own, without a wire.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from tests.unit import replica_scenarios as sc
from tests.unit.expected_calls import answer

from ansible_collections.spdk.storage.plugins.module_utils import spdk_disk_plan as planner
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_request import DiskRefusal, DiskRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState

INTRO = "more/introspection.jsonl"
D1 = "more/d1_set_parent_thin_no_parent.jsonl"
D1D_FILE = "/var/lib/spdk/disks/d1_set_parent_thin_no_parent-node1d.img"
D1D_UUID = "05af3ed0-fac6-46dc-8e15-bb99e47f2367"
INTRO_FILE = "/var/lib/spdk/disks/introspection-node1.img"
NQN = "nqn.2026-01.io.spdk-storage:"


def request(**options):
    params = dict(name="disk1d", path=D1D_FILE, state="present", block_size=None, cluster_size=None,
                  clear_method="unmap", fallocate=True, uuid=None, wipe=False, force=False)
    params.update(options)
    return DiskRequest(params, target_is_local=False)


def lvstore_disk1d():
    """step1.jsonl line 18 (a fresh lvstore of 4079 clusters of 1 MiB) as lvstore disk1d with d1's UUID."""
    return answer("step1.jsonl", 18, {"lvs2": "disk1d", "disk2": "disk1d",
                                      "06775725-9038-48f8-b8ff-f189ca88f804": D1D_UUID})["result"]


def attached():
    """disk1d attached with fallocate (d1 line 57) holding its lvstore."""
    return NodeState({"lvstores": lvstore_disk1d(), "bdevs": answer(D1, 57)["result"]})


def empty():
    return NodeState({"lvstores": [], "bdevs": []})


def methods(plan):
    return [step.method for step in plan.steps]


class TestPresent:
    def test_an_attached_disk_as_asked_needs_nothing(self):
        plan = planner.plan_present(attached(), request(uuid=D1D_UUID.upper(), cluster_size="1MiB"))
        assert plan.steps == [] and plan.examine is None and plan.warnings == []
        assert plan.before["uuid"] == D1D_UUID

    def test_a_disk_attached_without_fallocate_is_kept_with_a_warning(self):
        state = NodeState({"lvstores": answer(INTRO, 63)["result"], "bdevs": answer(INTRO, 48)["result"]})
        plan = planner.plan_present(state, request(name="disk1", path=INTRO_FILE))
        assert plan.steps == []
        assert len(plan.warnings) == 1 and "without fallocate" in plan.warnings[0]

    @pytest.mark.parametrize("options, refusal", [
        ({"path": "/var/lib/spdk/disks/other.img"}, "already attached from %s" % D1D_FILE),
        ({"uuid": "2ec6438e-114c-47ba-b723-7c1376549bfb"}, "not the expected 2ec6438e"),
        ({"cluster_size": "4MiB"}, "an lvstore cannot change it"),
        ({"block_size": 512}, "attached with block size 4096, not 512"),
    ])
    def test_an_attached_disk_that_differs_is_refused(self, options, refusal):
        with pytest.raises(DiskRefusal, match=refusal):
            planner.plan_present(attached(), request(**options))

    def test_a_new_device_is_attached_with_fallocate_and_examined(self):
        plan = planner.plan_present(empty(), request())
        assert methods(plan) == ["bdev_aio_create"]
        assert plan.steps[0].params == {"name": "disk1d", "filename": D1D_FILE, "block_size": 4096, "fallocate": True}
        assert plan.examine.startswith("after examine: import the lvstore on %s" % D1D_FILE)
        assert plan.predicted == {"name": "disk1d", "uuid": None, "path": D1D_FILE, "base_bdev": "disk1d"}

    def test_attaching_without_fallocate_warns(self):
        plan = planner.plan_present(empty(), request(fallocate=False, block_size=512))
        assert plan.steps[0].params == {"name": "disk1d", "filename": D1D_FILE, "block_size": 512}
        assert "without fallocate" in plan.warnings[0]

    def test_a_bdev_with_the_disks_name_over_another_file_is_refused(self):
        state = NodeState({"lvstores": [], "bdevs": answer(D1, 57)["result"]})
        with pytest.raises(DiskRefusal, match="a bdev named disk1d already exists"):
            planner.plan_present(state, request(path="/var/lib/spdk/disks/other.img"))

    def test_a_device_attached_by_hand_without_lvstore_gets_one(self):
        state = NodeState({"lvstores": [], "bdevs": answer(D1, 57)["result"]})
        plan = planner.plan_present(state, request(name="disk9"))
        assert methods(plan) == ["bdev_lvol_create_lvstore"]
        assert plan.steps[0].params == {"bdev_name": "disk1d", "lvs_name": "disk9", "cluster_sz": 1 << 20,
                                        "clear_method": "unmap"}
        assert plan.predicted["cluster_size"] == 1 << 20 and plan.predicted["base_bdev"] == "disk1d"

    def test_a_device_attached_by_hand_with_another_lvstore_is_refused(self):
        with pytest.raises(DiskRefusal, match="holds lvstore disk1d .* use name: disk1d"):
            planner.plan_present(attached(), request(name="disk9"))


class TestExamined:
    """After the attach: the lvstores SPDK loaded from the device decide."""

    def examined(self, lvstores):
        return NodeState({"lvstores": lvstores})

    def test_the_lvstore_named_after_the_disk_is_imported(self):
        plan = planner.plan_examined(self.examined(lvstore_disk1d()), request(), lambda: False)
        assert plan.steps == [] and plan.refusal is None

    def test_an_lvstore_with_another_name_is_detached_again_and_refused(self):
        plan = planner.plan_examined(self.examined(answer("step5.jsonl", 44)["result"]), request(name="disk0"),
                                     lambda: False)
        assert methods(plan) == ["bdev_aio_delete"] and plan.steps[0].params == {"name": "disk0"}
        assert "holds lvstore lvs0" in plan.refusal.msg

    def test_the_wrong_uuid_is_detached_again_and_refused(self):
        plan = planner.plan_examined(self.examined(lvstore_disk1d()),
                                     request(uuid="2ec6438e-114c-47ba-b723-7c1376549bfb"), lambda: False)
        assert methods(plan) == ["bdev_aio_delete"] and "not the expected" in plan.refusal.msg

    def test_no_lvstore_with_a_uuid_asked_is_never_formatted(self):
        plan = planner.plan_examined(self.examined([]), request(uuid=D1D_UUID), lambda: False)
        assert methods(plan) == ["bdev_aio_delete"] and "not formatted" in plan.refusal.msg

    def test_a_blobstore_spdk_did_not_load_is_never_formatted(self):
        plan = planner.plan_examined(self.examined([]), request(), lambda: True)
        assert methods(plan) == ["bdev_aio_delete"] and "starts with an SPDK blobstore" in plan.refusal.msg

    def test_an_empty_device_gets_its_lvstore(self):
        asked = []
        plan = planner.plan_examined(self.examined([]), request(cluster_size="4MiB"), lambda: asked.append(1))
        assert methods(plan) == ["bdev_lvol_create_lvstore"] and plan.refusal is None
        assert plan.steps[0].params["cluster_sz"] == 4 << 20
        assert asked == [1]


class TestAbsent:
    def node2(self, with_subsystems=True):
        node = sc.node2()
        raw = {"lvstores": node.lvstores["result"], "bdevs": answer(INTRO, 62)["result"]}
        if with_subsystems:
            raw["subsystems"] = answer(INTRO, 72)["result"]
        return NodeState(raw)

    def test_a_disk_without_lvols_is_detached_without_more_reads(self):
        state = attached()
        assert planner.absent_reads(state, request(state="absent")) == ()
        plan = planner.plan_absent(state, request(state="absent"))
        assert [(s.method, s.params) for s in plan.steps] == [("bdev_aio_delete", {"name": "disk1d"})]
        assert plan.steps[0].why == "detach %s (the lvstore is unloaded, its data kept)" % D1D_FILE

    def test_lvols_call_for_the_usage_reads_or_with_force_the_subsystems(self):
        state = self.node2(with_subsystems=False)
        assert planner.absent_reads(state, request(name="disk2", path=None, state="absent")) == ("subsystems", "raids")
        assert planner.absent_reads(state, request(name="disk2", path=None, state="absent", force=True)) == ("subsystems",)

    def test_exported_lvols_refuse_the_detach(self):
        state = NodeState(dict(self.node2().raw, raids=[]))
        with pytest.raises(DiskRefusal, match="disk disk2 is in use .*vol1-r-b2c3d4e5: exposed as"):
            planner.plan_absent(state, request(name="disk2", path=None, state="absent"))

    def test_force_deletes_the_exports_of_the_disks_lvols_first(self):
        plan = planner.plan_absent(self.node2(), request(name="disk2", path=None, state="absent", force=True, wipe=True))
        assert methods(plan) == ["nvmf_delete_subsystem", "nvmf_delete_subsystem", "bdev_lvol_delete_lvstore",
                                 "bdev_aio_delete"]
        assert plan.removed_exports == [NQN + "img-base-0001", NQN + "vol1-r-b2c3d4e5"]

    def test_another_path_is_refused_before_any_read(self):
        with pytest.raises(DiskRefusal, match="attached from %s, not from" % D1D_FILE):
            planner.absent_reads(attached(), request(state="absent", path="/var/lib/spdk/disks/other.img"))

    def test_an_interrupted_attach_is_detached(self):
        state = NodeState({"lvstores": [], "bdevs": answer(D1, 57)["result"]})
        plan = planner.plan_absent(state, request(state="absent"))
        assert methods(plan) == ["bdev_aio_delete"]
        assert plan.before == {"name": "disk1d", "base_bdev": "disk1d", "path": D1D_FILE}

    def test_nothing_attached_is_nothing_to_do(self):
        plan = planner.plan_absent(empty(), request(state="absent", wipe=True))
        assert plan.steps == [] and plan.before == {}

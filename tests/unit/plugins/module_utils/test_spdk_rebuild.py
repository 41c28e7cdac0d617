"""Rebuild planning (spdk_rebuild_plan, _names, _request) on node states a real SPDK v26.05 reported.

The source is the d6 chain (replica_scenarios.chain: head ``vol1`` cloned from ``vol1-snap-02``
(2 clusters) cloned from ``vol1-snap-01`` (3 clusters)); a destination holding copies is the same
recording with the replica renamed, as a shallow copy leaves it (same clusters per snapshot,
tests/emulator/fixtures/d6_alloc_after_shallow_copy.session.jsonl).
"""
import datetime
import json

import pytest
from tests.unit.expected_calls import answer
from tests.unit.replica_scenarios import chain, node1

from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_names as names
from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_plan as rb
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_request import Destination, RebuildRequest

MIB = 1 << 20


def source_state():
    return NodeState(chain().raw())


def renamed(raw, old, new):
    """The node as if replica ``old``'s lvols were named for ``new`` (the destination's copies)."""
    text = json.dumps(raw).replace('"%s-snap-' % old, '"%s-snap-' % new).replace('/%s-snap-' % old, '/%s-snap-' % new)
    return json.loads(text)


def dest_state(keep=("vol9-snap-01", "vol9-snap-02"), allocated=None):
    """Destination node with the copies ``keep`` (the source head and foreign clones left out)."""
    raw = renamed(chain().raw(), "vol1", "vol9")
    bdevs = []
    for bdev in raw["bdevs"]:
        lvol = bdev["driver_specific"]["lvol"]
        name = bdev["aliases"][0].split("/", 1)[1]
        if name not in keep:
            continue
        lvol["clones"] = [c for c in lvol.get("clones") or [] if c in keep]
        if allocated and name in allocated:
            lvol["num_allocated_clusters"] = allocated[name]
        bdevs.append(bdev)
    raw["bdevs"] = bdevs
    return NodeState(raw)


def destination(**overrides):
    args = dict(replica="vol9", disk="disk1", rpc_socket="/n2.sock", listen_address="127.0.0.3")
    args.update(overrides)
    return Destination(**args)


def request(**overrides):
    args = dict(engine="vol1-e0", source="vol1", replace="vol2",
                replicas=[{"name": "vol1", "disk": "disk1"}, {"name": "vol2", "rpc_socket": "/n1.sock",
                                                              "address": "127.0.0.2:4421"}],
                destination={"replica": "vol9", "disk": "disk2", "rpc_socket": "/n2.sock",
                             "listen_address": "127.0.0.3"})
    args.update(overrides)
    return RebuildRequest(**args)


class TestNames:
    def test_transient_objects_use_the_reserved_suffix_and_a_host_of_their_own(self):
        assert names.transient_name("vol1-r3") == "vol1-r3-rebuild"
        assert names.transient_nqn("vol1-r3") == "nqn.2026-01.io.spdk-storage:vol1-r3-rebuild"
        assert names.rebuild_host_nqn("vol1-r3") == "nqn.2026-01.io.spdk-storage:host:vol1-r3-rebuild"

    def test_a_destination_name_whose_transient_lvol_would_not_fit_is_refused_up_front(self):
        with pytest.raises(SpdkInputError, match="transient lvol"):
            request(destination={"replica": "r" * 60, "disk": "disk2", "rpc_socket": "/n2.sock",
                                 "listen_address": "127.0.0.3"})

    def test_system_snapshots_are_named_by_utc_time_and_recognised(self):
        name = names.new_system_snapshot(datetime.datetime(2026, 11, 25, 2, 12, 9))
        assert name == "rb-20261125021209"
        assert names.is_system_snapshot(name)
        assert not names.is_system_snapshot("snap-01") and not names.is_system_snapshot(None)

    def test_the_superblock_area_is_one_cluster_of_1mib_or_more_and_two_of_512kib(self):
        assert names.superblock_clusters(MIB) == 1
        assert names.superblock_clusters(4 * MIB) == 1
        assert names.superblock_clusters(MIB // 2) == 2


class TestRequest:
    def test_source_and_replace_must_be_current_replicas(self):
        with pytest.raises(SpdkInputError, match="source replica nope is not in replicas"):
            request(source="nope")
        with pytest.raises(SpdkInputError, match="replace replica nope"):
            request(replace="nope")

    def test_the_source_cannot_be_the_replaced_replica(self):
        with pytest.raises(SpdkInputError, match="the source must stay"):
            request(replace="vol1")

    def test_the_new_replica_needs_a_new_name(self):
        with pytest.raises(SpdkInputError, match="already one of the engine's replicas"):
            request(destination={"replica": "vol2", "disk": "disk2", "rpc_socket": "/n2.sock",
                                 "listen_address": "127.0.0.3"})

    def test_a_remote_replica_without_a_way_to_reach_its_node_is_refused(self):
        with pytest.raises(SpdkInputError, match="give disk"):
            request(replicas=[{"name": "vol1", "disk": "disk1"}, {"name": "vol2"}])

    def test_the_destination_needs_its_nvmf_address(self):
        with pytest.raises(SpdkInputError, match="listen_address is required"):
            destination(listen_address=None)

    def test_kept_replicas_leave_out_the_replaced_one(self):
        assert [m.name for m in request().keep] == ["vol1"]
        assert [m.name for m in request(replace=None).keep] == ["vol1", "vol2"]

    def test_a_remote_destination_joins_by_its_export_and_a_local_one_by_its_disk(self):
        remote = request().dest_member("127.0.0.3:4425")
        assert remote.bdev == "vol9n1" and remote.traddr == "127.0.0.3" and remote.port == 4425
        local = request(destination={"replica": "vol9", "disk": "disk1", "listen_address": "127.0.0.1"})
        assert local.dest_member().bdev == "disk1/vol9"


class TestChainCopy:
    def test_the_chain_is_the_head_s_ancestry_oldest_first_without_side_clones(self):
        source = source_state().replica("disk1", "vol1")
        assert rb.chain_names(source) == ["01", "02"]
        assert [lv.allocated_clusters for lv in rb.chain_lvols(source)] == [3, 2]

    def test_nothing_copied_yet_starts_at_the_oldest_snapshot(self):
        source = rb.chain_lvols(source_state().replica("disk1", "vol1"))
        assert rb.copied_levels(source, dest_state(keep=()), destination()) == 0

    def test_exact_copies_count_as_done_level_by_level(self):
        source = rb.chain_lvols(source_state().replica("disk1", "vol1"))
        assert rb.copied_levels(source, dest_state(keep=("vol9-snap-01",)), destination()) == 1
        assert rb.copied_levels(source, dest_state(), destination()) == 2

    def test_a_copy_owning_other_clusters_than_the_source_is_refused(self):
        source = rb.chain_lvols(source_state().replica("disk1", "vol1"))
        with pytest.raises(names.RebuildError, match="owns 5 clusters but the source's snapshot owns 3"):
            rb.copied_levels(source, dest_state(allocated={"vol9-snap-01": 5}), destination())

    def test_a_foreign_lvol_under_a_copy_s_name_is_refused(self):
        source = rb.chain_lvols(source_state().replica("disk1", "vol1"))
        state = dest_state(keep=("vol9-snap-01",))
        state.lvol("disk1", "vol9-snap-01").is_snapshot = False
        with pytest.raises(names.RebuildError, match="not the copy of snapshot 01"):
            rb.copied_levels(source, state, destination())


class TestDestinationSpace:
    """The source: a 64 MiB head owning 2 clusters over snapshots 02 (2 clusters) and 01 (3); 1 MiB clusters."""

    def needed(self, strategy, copied=0, dest=None, transient=None):
        source = source_state().replica("disk1", "vol1")
        chain = rb.chain_lvols(source)
        return rb.space_needed(source, MIB, chain[copied:], strategy, MIB, dest_head=dest, transient=transient)

    def test_online_the_snapshots_are_copied_thin_and_the_raid1_rebuild_fills_the_whole_head(self):
        assert self.needed("online") == (5, 64)

    def test_what_an_interrupted_copy_already_holds_is_not_counted_twice(self):
        transient = source_state().lvol("disk1", "vol1")      # any lvol owning 2 clusters
        assert self.needed("online", copied=1, transient=transient) == (0, 64)
        assert self.needed("online", copied=1) == (2, 64)
        head = dest_state().lvol("disk1", "vol9-snap-02")     # a head that owns 2 clusters already
        assert self.needed("online", copied=2, dest=head) == (0, 62)

    def test_offline_the_new_system_snapshot_is_copied_too_and_the_head_only_gets_the_superblock(self):
        assert self.needed("offline") == (5 + 2, 1)

    def test_a_disk_with_too_few_free_clusters_is_refused_naming_what_needs_them(self):
        disk = dest_state().disk("disk1")
        disk.free_clusters = 68
        problem = rb.space_problem(disk, "destination node", 5, 64, "online")
        assert problem.startswith("disk disk1 on the destination node has 68 free clusters of 1048576 bytes; "
                                  "the new replica needs 69 more (snapshot copies 5, the head, written whole by "
                                  "the RAID1 rebuild 64)")
        disk.free_clusters = 69
        assert rb.space_problem(disk, "destination node", 5, 64, "online") is None


class TestOfflineIdentity:
    def test_a_head_with_no_data_after_the_system_snapshot_is_identical_to_its_copy(self):
        replica = source_state().replica("disk1", "vol1")      # head owns 2 clusters in the recording
        replica.head.allocated_clusters = 1
        assert rb.identity_problem(replica, ["01", "02"], "02", MIB) is None

    def test_a_head_written_after_the_snapshot_is_not_identical(self):
        replica = source_state().replica("disk1", "vol1")
        assert "owns 2 clusters written after snapshot 02" in rb.identity_problem(replica, ["01", "02"], "02", MIB)

    def test_another_chain_or_parent_is_not_identical(self):
        replica = source_state().replica("disk1", "vol1")
        replica.head.allocated_clusters = 0
        assert "chain ['01', '02'] differs" in rb.identity_problem(replica, ["01", "rb-1"], "rb-1", MIB)
        assert "not a clone of snapshot 01" in rb.identity_problem(replica, ["01", "02"], "01", MIB)
        assert rb.identity_problem(None, ["01"], "01", MIB) == "its head lvol is missing"

    def test_only_a_fresh_system_snapshot_parent_is_reused(self):
        replica = source_state().replica("disk1", "vol1")
        assert rb.reusable_system_snapshot(replica, MIB) is None          # parent 02 is a user snapshot
        replica.snapshots[-1].name = "rb-20261125021209"
        replica.head.allocated_clusters = 1
        assert rb.reusable_system_snapshot(replica, MIB) == "rb-20261125021209"
        replica.head.allocated_clusters = 2
        assert rb.reusable_system_snapshot(replica, MIB) is None


class TestStrategy:
    def test_auto_is_offline_without_frontend_and_online_with_one(self):
        assert rb.choose_strategy("auto", False) == "offline"
        assert rb.choose_strategy("auto", True) == "online"

    def test_offline_is_refused_while_a_frontend_serves_io(self):
        with pytest.raises(names.RebuildError, match="frontend=none"):
            rb.choose_strategy("offline", True)

    def test_online_may_be_asked_for_without_frontend(self):
        assert rb.choose_strategy("online", False) == "online"


def with_system_parent(raw, old="02", replica="vol1"):
    """The node with snapshot ``<replica>-snap-<old>`` named as a system snapshot (as the offline strategy
    names the one it takes), its links renamed with it."""
    text = json.dumps(raw).replace("%s-snap-%s" % (replica, old), "%s-snap-rb-20261125021209" % replica)
    return NodeState(json.loads(text))


def whole_copy(raw, old, new):
    """The node as if the whole replica ``old`` (head and snapshots) were named ``new``."""
    text = json.dumps(renamed(raw, old, new)).replace('"disk1/%s"' % old, '"disk1/%s"' % new)
    return json.loads(text.replace('"%s"' % old, '"%s"' % new))


class TestSystemSnapshotMerge:
    """After the join every RAID member holds the same chain; its system snapshots are merged away on each."""

    def test_a_system_snapshot_whose_one_child_is_the_head_is_deleted_on_every_replica(self):
        source = with_system_parent(chain().raw()).replica("disk1", "vol1")
        copy = with_system_parent(whole_copy(chain().raw(), "vol1", "vol9"), replica="vol9").replica("disk1", "vol9")
        deletes, kept = rb.plan_system_merge([source, copy], names.is_system_snapshot)
        assert kept == {}
        assert [(name, index, alias) for name, index, alias, _why in deletes] == [
            ("rb-20261125021209", 0, "disk1/vol1-snap-rb-20261125021209"),
            ("rb-20261125021209", 1, "disk1/vol9-snap-rb-20261125021209")]
        assert "merge system snapshot rb-20261125021209 of replica vol1 into vol1" in deletes[0][3]

    def test_user_snapshots_are_never_merged(self):
        source = source_state().replica("disk1", "vol1")
        assert rb.plan_system_merge([source], names.is_system_snapshot) == ([], {})

    def test_a_system_snapshot_with_a_clone_of_its_own_stays_on_every_replica(self):
        """vol1-snap-01 has two children in the recording (vol1-snap-02 and the clone vol1-clone-01)."""
        source = with_system_parent(chain().raw(), old="01").replica("disk1", "vol1")
        other = with_system_parent(chain().raw(), old="01").replica("disk1", "vol1")
        deletes, kept = rb.plan_system_merge([source, other], names.is_system_snapshot)
        assert deletes == []
        assert kept == {"rb-20261125021209": "it has 02, vol1-clone-01 on replica vol1, and SPDK merges a "
                                             "snapshot only into a single child"}

    def test_a_system_snapshot_left_on_one_replica_by_an_interrupted_merge_is_deleted_there(self):
        merged = source_state().replica("disk1", "vol1")
        left = with_system_parent(chain().raw()).replica("disk1", "vol1")
        deletes, _kept = rb.plan_system_merge([merged, left], names.is_system_snapshot)
        assert [(index, alias) for _name, index, alias, _why in deletes] == [
            (1, "disk1/vol1-snap-rb-20261125021209")]

    def test_the_raid_must_be_online_whole_and_rebuilding_nothing(self):
        raids = {raid.name: raid for raid in NodeState({"raids": node1().raw(with_raids=True)["raids"]}).raids}
        assert rb.raid_is_whole(raids["vol1-e0"], ["vol1-r-a1b2c3d4", "vol9"]) is None
        assert rb.raid_is_whole(raids["vol1-e0"], ["vol1-r-a1b2c3d4"]) == (
            "RAID has 2 members but this run knows 1 of them as RW replicas (vol1-r-a1b2c3d4)")
        assert rb.raid_is_whole(raids["vol5-e0"], ["vol5-r-0a0a0a0a", "vol5-r-not-attached-yet"]) == \
            "RAID is configuring"
        assert rb.raid_is_whole(None, []) == "RAID is absent"
        degraded = NodeState({"raids": answer("more/d2_raid_sb_restart_clean_remove.jsonl", 34)["result"]})
        assert rb.raid_is_whole(degraded.raid("vol1-e0"), ["a"]) == "RAID has 1 of 2 members"
        rebuilding = NodeState({"raids": answer("more/d4_raid_add_base_rebuild_alloc.jsonl", 29)["result"]})
        assert rb.raid_is_whole(rebuilding.raid("vol-sb-e0"), ["a", "b"]).startswith("RAID is rebuilding")


class TestReplacedRemoval:
    def test_the_replaced_replica_is_found_by_its_head_or_by_its_snapshots(self):
        state = source_state()
        assert rb.replaced_disk(state, "vol1") == "disk1"
        headless = NodeState(dict(chain().raw(), bdevs=[b for b in chain().raw()["bdevs"]
                                                        if "disk1/vol1" not in b["aliases"]]))
        assert rb.replaced_disk(headless, "vol1") == "disk1"
        assert rb.replaced_disk(state, "vol7") is None

    def test_its_removal_is_what_spdk_replica_absent_deletes(self):
        raw = dict(chain().raw(), raids=[])
        plan = rb.plan_replaced_removal(NodeState(raw), "vol1", "disk1")
        assert [(s.method, s.params) for s in plan.steps] == [
            ("nvmf_delete_subsystem", {"nqn": "nqn.2026-01.io.spdk-storage:vol1"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1-snap-02"}),
            ("bdev_lvol_delete", {"name": "disk1/vol1-snap-01"})]

    def test_a_host_still_connected_to_its_export_keeps_it(self):
        raw = dict(chain().raw(), raids=[])
        with pytest.raises(ops.SpdkRefusal, match="host-anyone are connected"):
            rb.plan_replaced_removal(NodeState(raw), "vol1", "disk1",
                                     connected_hosts=["nqn.2026-01.io.spdk-storage:host-anyone"])

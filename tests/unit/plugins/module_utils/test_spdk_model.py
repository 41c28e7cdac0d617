"""The read model built from real SPDK v26.05 answers (more/introspection.jsonl, d6)."""
import copy
import json
import os

import pytest

from tests.unit.expected_calls import answer

from ansible_collections.spdk.storage.plugins.module_utils import spdk_model
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState

INTRO = "more/introspection.jsonl"
D6 = "more/d6_alloc_after_shallow_copy.jsonl"
# d6 names its head vol1-r-a1b2c3d4; as replica "vol1" the chain follows the collection's names.
AS_REPLICA_VOL1 = {"vol1-r-a1b2c3d4": "vol1"}


def intro(line):
    return answer(INTRO, line)["result"]


@pytest.fixture
def node1():
    """node1 of the introspection recording: disk1 with thin/thick lvols, a snapshot, RAIDs, exports."""
    return NodeState({"lvstores": intro(63), "bdevs": intro(61), "subsystems": intro(78),
                      "raids": intro(83), "controllers": intro(80), "version": intro(1)})


@pytest.fixture
def chain():
    """d6: vol1-snap-01 -> vol1-snap-02 -> head vol1, plus a foreign clone of snap-01."""
    bdevs = [answer(D6, line, AS_REPLICA_VOL1 if line in (17, 19) else None)["result"][0]
             for line in (17, 18, 19, 20)]
    lvstore = dict(intro(63)[0], uuid=bdevs[0]["driver_specific"]["lvol"]["lvol_store_uuid"])
    return NodeState({"lvstores": [lvstore], "bdevs": bdevs})


def test_a_disk_is_the_lvstore_with_its_base_bdev_file_and_sizes(node1):
    disk = node1.disk("disk1").to_dict()
    assert disk["uuid"] == "2ec6438e-114c-47ba-b723-7c1376549bfb"
    assert disk["base_bdev"] == "disk1"
    assert disk["path"] == "/var/lib/spdk/disks/introspection-node1.img"
    assert disk["cluster_size"] == 1 << 20
    assert (disk["total_clusters"], disk["free_clusters"]) == (4079, 4014)
    assert disk["total_bytes"] == 4079 << 20
    assert disk["free_bytes"] == 4014 << 20
    assert disk["fallocate"] is False


def test_replicas_of_a_disk_are_its_writable_heads_not_snapshots(node1):
    replicas = node1.disk("disk1").replica_names
    assert "vol1-r-a1b2c3d4" in replicas
    assert "vol7-snap-01" not in replicas  # a snapshot lvol
    assert "vol7-snap-01" in node1.disk("disk1").to_dict()["lvols"]


def test_lvol_size_parent_and_children_come_from_bdev_get_bdevs(node1):
    snap = node1.lvol("disk1", "vol7-snap-01")
    assert snap.is_snapshot and snap.children == ["vol7-src", "vol7-clone-01"]
    clone = node1.lvol("disk1", "vol7-clone-01")
    assert clone.parent == "vol7-snap-01" and clone.is_clone
    assert clone.size == 16384 * 4096
    thick = node1.lvol("disk1", "vol2-r-d4e5f6a7")
    assert not thick.thin and thick.allocated_clusters == 64


def test_lvols_are_found_by_uuid_or_alias(node1):
    lvol = node1.lvol_by_ref("disk1/vol1-r-a1b2c3d4")
    assert lvol.uuid == "42971873-bab4-42f3-a8f1-894aebb3c9db"
    assert node1.lvol_by_ref(lvol.uuid) is lvol
    assert node1.lvol_by_ref("disk1/nope") is None


def test_raid_membership_is_matched_by_alias_or_uuid(node1):
    lvol = node1.lvol("disk1", "vol1-r-a1b2c3d4")
    assert [r.name for r in node1.raids_using(lvol)] == ["vol1-e0"]
    # a RAID assembled by examine names its member by UUID (ANSWERS.md D2)
    node1.raids[0].members[0]["name"] = lvol.uuid
    assert [r.name for r in node1.raids_using(lvol)] == ["vol1-e0"]


def test_usage_says_why_each_lvol_is_busy(node1):
    usage = node1.usage(node1.disk("disk1").lvols)
    assert usage["vol1-r-a1b2c3d4"] == ["member of RAID vol1-e0"]
    assert "vol7-clone-01" not in usage


def test_an_exported_lvol_has_an_exposure_with_hosts_and_port():
    node2 = NodeState({"lvstores": [], "bdevs": intro(62), "subsystems": intro(72)})
    lvol = node2.lvol_by_ref("dde7fa1b-cd0c-4996-8e60-c6709f2493fb")
    exposure = node2.exposure_of(lvol).to_dict()
    assert exposure["nqn"] == "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"
    assert (exposure["listen_address"], exposure["port"]) == ("127.0.0.1", 4421)
    assert exposure["allow_any_host"] is False
    assert exposure["allowed_hosts"] == ["nqn.2026-01.io.spdk-storage:host-node1"]
    assert node2.usage([lvol]) == {"vol1-r-b2c3d4e5": ["exposed as nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"]}


def test_the_discovery_subsystem_is_not_an_exposure(node1):
    assert all("discovery" not in e.nqn for e in node1.exposures)


def test_raids_report_state_members_superblock_and_empty_slots(node1):
    raids = {r.name: r.to_dict() for r in node1.raids}
    assert raids["vol1-e0"]["superblock"] is True
    assert raids["vol1-e0"]["members"][0]["data_offset"] == 256
    assert raids["vol5-e0"]["state"] == "configuring"
    assert raids["vol5-e0"]["members"][1]["uuid"] is None  # the all-zero UUID of a missing member
    assert raids["vol6-e0"]["members"][1]["name"] is None


def test_controllers_list_their_paths(node1):
    ctrl = node1.controllers[0].to_dict()
    assert ctrl["name"] == "vol1-r-b2c3d4e5"
    assert ctrl["paths"][0]["state"] == "enabled"
    assert ctrl["paths"][0]["hostnqn"] == "nqn.2026-01.io.spdk-storage:host-node1"


def test_a_replica_shows_its_snapshot_chain_with_user_facing_names(chain):
    replica = chain.replica("disk1", "vol1")
    assert replica.chain == ["01", "02"]
    assert replica.parent == "02"
    snaps = {s["name"]: s for s in replica.to_dict()["snapshots"]}
    assert snaps["01"]["parent"] is None and snaps["01"]["children"] == ["02"]
    assert snaps["01"]["other_children"] == ["vol1-clone-01"]
    assert snaps["02"]["head_child"] is True and snaps["02"]["lvol_name"] == "vol1-snap-02"
    assert [s["name"] for s in replica.to_dict()["snapshots"]] == ["01", "02"]  # parents first


def test_snapshot_lvols_are_found_even_without_their_head(chain):
    assert [lv.name for lv in chain.snapshot_lvols("disk1", "vol1")] == ["vol1-snap-01", "vol1-snap-02"]
    assert chain.replica("disk1", "vol1-snap-01") is None  # a snapshot is not a replica


class FakeBatchClient:
    """Records batches; answers from a dict of method -> result."""

    def __init__(self, answers):
        self.answers = answers
        self.batches = []

    def batch(self, calls):
        self.batches.append(list(calls))
        return [self.answers[method] for method, _params in calls]


def test_loading_a_node_is_one_batch_of_read_only_calls():
    client = FakeBatchClient({"bdev_lvol_get_lvstores": intro(63), "bdev_get_bdevs": intro(61),
                              "nvmf_get_subsystems": intro(78), "bdev_raid_get_bdevs": intro(83)})
    state = spdk_model.load_node(client)
    assert len(client.batches) == 1
    assert [m for m, _p in client.batches[0]] == [
        "bdev_lvol_get_lvstores", "bdev_get_bdevs", "nvmf_get_subsystems", "bdev_raid_get_bdevs"]
    assert ("bdev_raid_get_bdevs", {"category": "all"}) in client.batches[0]
    assert state.disk("disk1") is not None


def test_unknown_parts_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown model parts"):
        spdk_model.fetch(FakeBatchClient({}), ["lvstores", "everything"])


CHILDLESS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "emulator", "fixtures",
                         "childless_snapshot_restart.real.jsonl")


def childless_snapshot_bdev():
    """Real v26.05: snapshot ``s`` whose one clone was deleted, read after a kill -9 and restart."""
    with open(CHILDLESS) as handle:
        for line in handle:
            entry = json.loads(line)
            if entry.get("request", {}).get("method") == "bdev_get_bdevs":
                return entry["response"]["result"][0]
    raise AssertionError("no bdev_get_bdevs answer in %s" % CHILDLESS)


def test_a_snapshot_without_clones_after_a_restart_is_still_a_snapshot():
    bdev = childless_snapshot_bdev()
    assert bdev["driver_specific"]["lvol"]["snapshot"] is False          # what SPDK says after the restart
    lvol = spdk_model.Lvol(bdev)
    assert lvol.is_snapshot and lvol.read_only and not lvol.listed_as_snapshot


def test_a_writable_lvol_is_never_a_snapshot_whatever_its_name():
    bdev = copy.deepcopy(childless_snapshot_bdev())
    bdev["aliases"] = ["disk1/vol-snap-s1"]
    bdev["supported_io_types"]["write"] = True
    assert not spdk_model.Lvol(bdev).is_snapshot

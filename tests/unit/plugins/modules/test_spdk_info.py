"""spdk_info: one batch of reads, answers from a real SPDK v26.05 (more/introspection.jsonl node1)."""
import pytest

from tests.unit.expected_calls import answer, error, reads, result, run_module

from ansible_collections.spdk.storage.plugins.modules import spdk_info

INTRO = "more/introspection.jsonl"
D4 = "more/d4_raid_add_base_rebuild_alloc.jsonl"
D6 = "more/d6_alloc_after_shallow_copy.jsonl"
RAIDS = ("bdev_raid_get_bdevs", {"category": "all"})


def node1_reads(raids=None):
    """The six reads of a full gather, in the module's fixed order, answered as node1 did."""
    return reads(("bdev_lvol_get_lvstores", None, answer(INTRO, 63)),
                 ("bdev_get_bdevs", None, answer(INTRO, 61)),
                 ("nvmf_get_subsystems", None, answer(INTRO, 78)),
                 RAIDS + (raids or answer(INTRO, 83),),
                 ("bdev_nvme_get_controllers", None, answer(INTRO, 80)),
                 ("spdk_get_version", None, answer(INTRO, 1)))


@pytest.fixture
def node1():
    outcome = run_module(spdk_info, {}, node1_reads())
    assert not outcome.failed, outcome.msg
    return outcome


def test_everything_is_read_in_one_batch_of_six_read_only_rpcs(node1):
    assert node1.rpc_count == 6 and node1.result["rpc_calls"] == 6
    assert node1.script.exchanges == [6]
    assert node1.mutating == []
    assert node1.changed is False


def test_disks_report_space_and_their_replicas(node1):
    [disk] = node1.result["disks"]
    assert disk["name"] == "disk1" and disk["free_clusters"] == 4014
    assert "vol1-r-a1b2c3d4" in disk["replicas"]


def test_replicas_say_which_engines_use_them(node1):
    replicas = {r["name"]: r for r in node1.result["replicas"]}
    assert replicas["vol1-r-a1b2c3d4"]["engines"] == ["vol1-e0"]
    assert replicas["vol7-clone-01"]["engines"] == []
    assert "vol7-snap-01" not in replicas


def test_engines_show_members_as_replicas_local_or_remote(node1):
    engines = {e["name"]: e for e in node1.result["engines"]}
    vol1 = engines["vol1-e0"]
    assert (vol1["state"], vol1["raid_level"], vol1["superblock"]) == ("online", "raid1", True)
    assert vol1["size"] == 65280 * 4096
    assert vol1["frontend"] == "nqn.2026-01.io.spdk-storage:vol1-e0"
    local, remote = vol1["members"]
    assert (local["replica"], local["local"]) == ("vol1-r-a1b2c3d4", True)
    assert (remote["replica"], remote["local"]) == ("vol1-r-b2c3d4e5", False)
    assert vol1["process"] is None
    assert engines["vol5-e0"]["state"] == "configuring"
    assert engines["vol5-e0"]["members"][1]["configured"] is False


def test_subsystems_controllers_and_version_are_returned(node1):
    assert [s["nqn"] for s in node1.result["subsystems"]] == ["nqn.2026-01.io.spdk-storage:vol1-e0"]
    assert node1.result["controllers"][0]["paths"][0]["subnqn"] == "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"
    assert node1.result["version"]["fields"]["major"] == 26


def test_a_rebuild_shows_its_target_and_progress():
    outcome = run_module(spdk_info, {"gather": ["engines"]}, reads(
        ("bdev_get_bdevs", None, answer(INTRO, 5)),
        ("nvmf_get_subsystems", None, answer(INTRO, 8)),
        RAIDS + (answer(D4, 31),),
        ("bdev_nvme_get_controllers", None, answer(INTRO, 7))))
    [engine] = outcome.result["engines"]
    assert engine["process"] == {"type": "rebuild", "target": "vol-sb-r-remote2n1", "blocks": 8704, "percent": 53}
    assert outcome.result["disks"] == [] and outcome.result["version"] is None


def test_gather_only_the_version_sends_one_rpc():
    outcome = run_module(spdk_info, {"gather": ["version"]}, reads(("spdk_get_version", None, answer(INTRO, 1))))
    assert outcome.rpc_count == 1
    assert outcome.result["version"]["version"].startswith("SPDK v26.05")


def test_replica_snapshot_trees_filtered_by_disk():
    as_vol1 = {"vol1-r-a1b2c3d4": "vol1"}
    bdevs = [answer(D6, line, as_vol1 if line in (17, 19) else None)["result"][0] for line in (17, 18, 19, 20)]
    lvstore = answer(INTRO, 63, {"2ec6438e-114c-47ba-b723-7c1376549bfb": "2cf2b498-3763-4a05-a41c-6c38ac7b2376"})
    outcome = run_module(spdk_info, {"gather": ["replicas"], "disk": "disk1"}, reads(
        ("bdev_lvol_get_lvstores", None, lvstore),
        ("bdev_get_bdevs", None, result(bdevs)),
        ("nvmf_get_subsystems", None, answer(INTRO, 8)),
        RAIDS + (answer(INTRO, 6),)))
    replicas = {r["name"]: r for r in outcome.result["replicas"]}
    assert replicas["vol1"]["chain"] == ["01", "02"]
    assert [s["name"] for s in replicas["vol1"]["snapshots"]] == ["01", "02"]
    assert set(replicas) == {"vol1", "vol1-clone-01"}
    other = run_module(spdk_info, {"gather": ["replicas"], "disk": "disk9"}, reads(
        ("bdev_lvol_get_lvstores", None, lvstore), ("bdev_get_bdevs", None, result(bdevs)),
        ("nvmf_get_subsystems", None, answer(INTRO, 8)), RAIDS + (answer(INTRO, 6),)))
    assert other.failed and "disk disk9 not found on this node (disks: disk1)" in other.msg


def test_a_read_the_target_cannot_answer_is_a_warning_not_a_failure():
    method_not_found = answer("step5.jsonl", 1)  # {-32601, "Method not found"}
    outcome = run_module(spdk_info, {}, node1_reads(raids=method_not_found))
    assert not outcome.failed
    assert outcome.result["engines"] == []
    assert any("could not read raids" in w and "-32601" in w for w in outcome.warnings)
    assert outcome.result["replicas"][0]["engines"] == []


def test_check_mode_reads_the_same_and_changes_nothing():
    outcome = run_module(spdk_info, {}, node1_reads(), check_mode=True)
    assert outcome.rpc_count == 6 and outcome.changed is False


def test_an_unknown_gather_item_fails_before_any_rpc():
    outcome = run_module(spdk_info, {"gather": ["everything"]}, [])
    assert outcome.failed and "gather" in outcome.msg
    assert outcome.rpc_count == 0


def test_an_absent_socket_fails_cleanly(tmp_path):
    outcome = run_module(spdk_info, {"rpc_socket": str(tmp_path / "no.sock"), "rpc_timeout": 0.3}, None)
    assert outcome.failed and "no.sock" in outcome.msg


# -- orphans ------------------------------------------------------------------------------------
# node1 of more/introspection.jsonl is an engine node; node2 exports its replica vol1-r-b2c3d4e5 to
# node1 (controller vol1-r-b2c3d4e5 there) and an lvol img-base-0001 (node1's controller img-base-0001).
# Only node1's lvstore answer was recorded: node2's disk2 is that answer renamed.

CONNECTIONS = "nvmf_subsystem_get_controllers"
HOSTS = "more/nvmf_hosts.jsonl"
NQN = "nqn.2026-01.io.spdk-storage:"
DISK2 = {"disk1": "disk2", "2ec6438e-114c-47ba-b723-7c1376549bfb": "41fe430b-d3bb-4440-ace3-12420c2f18e4"}


def orphan_reads(lvstores, bdevs, subsystems, raids, controllers):
    """The five reads orphans need, in the module's fixed order."""
    return reads(("bdev_lvol_get_lvstores", None, lvstores), ("bdev_get_bdevs", None, bdevs),
                 ("nvmf_get_subsystems", None, subsystems), RAIDS + (raids,),
                 ("bdev_nvme_get_controllers", None, controllers))


def node2_reads(bdevs=None):
    return orphan_reads(answer(INTRO, 63, DISK2), bdevs or answer(INTRO, 62), answer(INTRO, 72),
                        answer(INTRO, 6), answer(INTRO, 7))


def connections(*nqn_answers):
    return reads(*[(CONNECTIONS, {"nqn": NQN + name}, response) for name, response in nqn_answers])


def test_orphans_are_not_in_the_default_gather(node1):
    assert node1.result["orphans"] is None


def test_on_an_engine_node_orphans_are_unused_replicas_and_controllers_no_raid_uses_with_no_extra_read():
    outcome = run_module(spdk_info, {"gather": ["orphans"]}, orphan_reads(
        answer(INTRO, 63), answer(INTRO, 61), answer(INTRO, 78), answer(INTRO, 83), answer(INTRO, 80)))
    assert not outcome.failed, outcome.msg
    assert outcome.script.exchanges == [5] and outcome.mutating == []
    orphans = outcome.result["orphans"]
    # vol1-r-a1b2c3d4, vol2-*, vol5-r-0a0a0a0a and vol6-r-0c0c0c0c are RAID members; the rest is used by nothing.
    assert [(r["name"], r["export"]) for r in orphans["replicas"]] == [
        ("vol5-r-0b0b0b0b", None), ("vol7-clone-01", None), ("vol7-src", None), ("vol8-esnap", None)]
    assert all("not exported" in r["reason"] for r in orphans["replicas"])
    assert orphans["exports"] == [], "the only export is vol1-e0's frontend, which exports the RAID"
    # vol1-r-b2c3d4e5n1 is a member of vol1-e0; img-base-0001n1 is in no RAID.
    assert orphans["controllers"] == [{
        "name": "img-base-0001", "subnqns": [NQN + "img-base-0001"], "bdevs": ["img-base-0001n1"],
        "states": ["enabled"], "reason": "no RAID on this node has one of its bdevs as a member"}]
    assert outcome.result["replicas"] == [] and outcome.result["engines"] == []


def test_an_exported_replica_nobody_is_connected_to_is_an_orphan():
    outcome = run_module(spdk_info, {"gather": ["orphans"]}, [
        node2_reads(),
        # Asked only for the exported replicas no RAID holds, sorted, in a second batch.
        connections(("img-base-0001", answer(HOSTS, 17)),     # node1's host is connected
                    ("vol1-r-b2c3d4e5", answer(HOSTS, 20)))])  # nobody (after remove_host)
    assert not outcome.failed, outcome.msg
    assert outcome.script.exchanges == [5, 2] and outcome.mutating == []
    [orphan] = outcome.result["orphans"]["replicas"]
    assert (orphan["name"], orphan["disk"], orphan["export"]) == ("vol1-r-b2c3d4e5", "disk2", NQN + "vol1-r-b2c3d4e5")
    assert "no host is connected" in orphan["reason"] and NQN + "host-node1" in orphan["reason"]
    assert outcome.result["orphans"]["exports"] == [] and outcome.result["orphans"]["controllers"] == []


def test_an_export_whose_lvol_is_gone_is_an_orphan():
    bdevs = [b for b in answer(INTRO, 62)["result"] if b["name"] != "dde7fa1b-cd0c-4996-8e60-c6709f2493fb"]
    outcome = run_module(spdk_info, {"gather": ["orphans"]}, [
        node2_reads(result(bdevs)), connections(("img-base-0001", answer(HOSTS, 17)))])
    assert not outcome.failed, outcome.msg
    assert outcome.result["orphans"]["replicas"] == []
    assert outcome.result["orphans"]["exports"] == [{
        "nqn": NQN + "vol1-r-b2c3d4e5", "bdevs": ["dde7fa1b-cd0c-4996-8e60-c6709f2493fb"],
        "reason": "bdev dde7fa1b-cd0c-4996-8e60-c6709f2493fb does not exist"}]


def test_a_connection_read_that_fails_leaves_that_replica_unjudged_with_a_warning():
    outcome = run_module(spdk_info, {"gather": ["orphans"]}, [
        node2_reads(), connections(("img-base-0001", error(-19, "No such device")),
                                   ("vol1-r-b2c3d4e5", answer(HOSTS, 20)))])
    assert not outcome.failed, outcome.msg
    assert [r["name"] for r in outcome.result["orphans"]["replicas"]] == ["vol1-r-b2c3d4e5"]
    assert any("could not read who is connected to %simg-base-0001" % NQN in w for w in outcome.warnings)


def test_orphan_replicas_follow_the_disk_filter_and_no_connection_is_read_for_another_disk():
    """node2 with a second, empty disk3 next to disk2 (disk2's recorded lvstore renamed once more)."""
    disk2 = answer(INTRO, 63, DISK2)["result"][0]
    disk3 = dict(disk2, name="disk3", uuid="5b2d7e0c-93a4-4f61-8d0e-7a1c2b3d4e5f")
    reads_with_disk3 = node2_reads()
    reads_with_disk3[0] = reads(("bdev_lvol_get_lvstores", None, result([disk2, disk3])))[0]
    outcome = run_module(spdk_info, {"gather": ["orphans"], "disk": "disk3"}, [reads_with_disk3])
    assert not outcome.failed, outcome.msg
    assert outcome.script.exchanges == [5]
    assert outcome.result["orphans"]["replicas"] == []


def test_without_the_raids_orphans_are_not_reported_and_a_warning_says_why():
    method_not_found = answer("step5.jsonl", 1)
    outcome = run_module(spdk_info, {"gather": ["orphans"]}, orphan_reads(
        answer(INTRO, 63), answer(INTRO, 61), answer(INTRO, 78), method_not_found, answer(INTRO, 80)))
    assert not outcome.failed
    assert outcome.result["orphans"] is None
    assert any("orphans are not reported: raids could not be read" in w for w in outcome.warnings)


def test_a_disk_that_does_not_exist_fails_naming_the_disks_the_node_has():
    outcome = run_module(spdk_info, {"disk": "nosuch"}, node1_reads())
    assert outcome.failed and "disk nosuch not found on this node (disks: " in outcome.msg
    assert outcome.mutating == []


def test_a_disk_name_that_cannot_be_a_disk_is_refused_before_any_rpc():
    outcome = run_module(spdk_info, {"disk": "a/b"}, [])
    assert outcome.failed and "disk" in outcome.msg and outcome.rpc_count == 0

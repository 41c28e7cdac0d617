"""spdk_info: one batch of reads, answers from a real SPDK v26.05 (more/introspection.jsonl node1)."""
import pytest

from expected_calls import answer, reads, result, run_module

pytest.importorskip("ansible_collections.spdk.storage.plugins.module_utils.spdk_common",
                    reason="SpdkModule (spdk_common.py) has not landed yet")

from ansible_collections.spdk.storage.plugins.modules import spdk_info  # noqa: E402

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
    assert other.result["replicas"] == []


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

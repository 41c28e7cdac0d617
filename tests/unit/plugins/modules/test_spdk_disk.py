"""spdk_disk against answers a real SPDK v26.05 gave (tests/unit/fixtures/transcripts).

Recorded answers are normalised to each scenario: the disk file becomes a temporary
file of the test, and names follow the collection's rule (lvstore name = disk name).
"""
import pytest

from tests.unit import replica_scenarios as sc
from tests.unit.expected_calls import answer, error, expect, reads, result, run_module

pytest.importorskip("ansible_collections.spdk.storage.plugins.module_utils.spdk_common",
                    reason="SpdkModule (spdk_common.py) has not landed yet")

from ansible_collections.spdk.storage.plugins.modules import spdk_disk  # noqa: E402

INTRO = "more/introspection.jsonl"
D1 = "more/d1_set_parent_thin_no_parent.jsonl"
NQN = "nqn.2026-01.io.spdk-storage:"
D6 = "more/d6_alloc_after_shallow_copy.jsonl"
D1D_FILE = "/var/lib/spdk/disks/d1_set_parent_thin_no_parent-node1d.img"
D1D_UUID = "05af3ed0-fac6-46dc-8e15-bb99e47f2367"  # d1 L58: lvstore created on disk1d
N0_FILE = "/var/lib/spdk/disks/n0.img"
MUTATING_DISK_RPCS = {"bdev_aio_create", "bdev_aio_delete", "bdev_lvol_create_lvstore", "bdev_lvol_delete_lvstore"}

NO_LVSTORES = answer(INTRO, 9)   # a node with no lvstore: []
NO_BDEVS = answer(INTRO, 5)      # a node with no bdev: []
EXAMINED = answer("step5.jsonl", 43)  # bdev_wait_for_examine: true
AIO_DELETED = result(True)       # no successful bdev_aio_delete was recorded; SPDK answers true


@pytest.fixture
def disk_file(tmp_path):
    path = tmp_path / "disk1d.img"
    path.write_bytes(b"\0" * 8192)  # sparse-free small file: the target never reads it in unit tests
    return str(path)


def lvstore_disk1d():
    """step1 L18 (a fresh lvstore, 4079 clusters of 1 MiB) as lvstore disk1d with d1's UUID."""
    return answer("step1.jsonl", 18, {"lvs2": "disk1d", "disk2": "disk1d",
                                      "06775725-9038-48f8-b8ff-f189ca88f804": D1D_UUID})


def aio_disk1d(path):
    """d1 L57: aio bdev disk1d attached with fallocate (unmap supported)."""
    return answer(D1, 57, {D1D_FILE: path})


def attached_disk1d(path):
    return reads(("bdev_lvol_get_lvstores", None, lvstore_disk1d()),
                 ("bdev_get_bdevs", None, aio_disk1d(path)))


def empty_node():
    return reads(("bdev_lvol_get_lvstores", None, NO_LVSTORES), ("bdev_get_bdevs", None, NO_BDEVS))


def create_calls(path):
    return [
        empty_node(),
        expect("bdev_aio_create", {"name": "disk1d", "filename": path, "block_size": 4096, "fallocate": True},
               answer(D1, 56)),
        expect("bdev_wait_for_examine", None, EXAMINED),
        expect("bdev_lvol_get_lvstores", None, NO_LVSTORES),
        expect("bdev_lvol_create_lvstore", {"bdev_name": "disk1d", "lvs_name": "disk1d",
                                            "cluster_sz": 1048576, "clear_method": "unmap"},
               answer(D1, 58)),
        attached_disk1d(path),
    ]


# --- present ------------------------------------------------------------------


def test_present_on_a_new_file_attaches_with_fallocate_and_creates_the_lvstore(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, create_calls(disk_file))
    assert outcome.changed is True
    assert [a["method"] for a in outcome.result["actions"]] == ["bdev_aio_create", "bdev_lvol_create_lvstore"]
    disk = outcome.result["disk"]
    assert disk["uuid"] == D1D_UUID
    assert disk["path"] == disk_file
    assert disk["fallocate"] is True
    assert (disk["cluster_size"], disk["total_clusters"], disk["free_clusters"]) == (1 << 20, 4079, 4079)
    assert disk["total_bytes"] == 4079 << 20
    assert disk["replicas"] == []
    assert outcome.warnings == []


def test_present_again_changes_nothing_with_two_reads(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, attached_disk1d(disk_file))
    assert outcome.changed is False
    assert outcome.rpc_count == 2
    assert outcome.script.exchanges == [2]  # one pipelined batch
    assert outcome.result["actions"] == []
    assert outcome.result["disk"]["uuid"] == D1D_UUID


def test_present_accepts_the_same_cluster_size_written_as_a_string(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file, "cluster_size": "1MiB",
                                     "uuid": D1D_UUID.upper()}, attached_disk1d(disk_file))
    assert outcome.changed is False and not outcome.failed


def test_a_different_cluster_size_for_an_existing_disk_fails_without_changes(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file, "cluster_size": "4MiB"},
                         attached_disk1d(disk_file))
    assert outcome.failed
    assert "cannot change it" in outcome.msg
    assert outcome.mutating == []


def test_present_imports_an_existing_lvstore_after_a_restart_without_creating_one(tmp_path):
    # step5 n0: after a restart bdev_aio_create + examine brings the lvstore back (L42-L44).
    path = str(tmp_path / "n0.img")
    open(path, "wb").close()
    as_disk0 = {"lvs0": "disk0"}
    recorded_bdevs = answer("step4.jsonl", 87, {N0_FILE: path, "lvs0/": "disk0/"})["result"]
    disk0_bdevs = [b for b in recorded_bdevs if b["name"] == "disk0" or "lvol" in b["driver_specific"]]
    outcome = run_module(spdk_disk, {"name": "disk0", "path": path}, [
        reads(("bdev_lvol_get_lvstores", None, NO_LVSTORES), ("bdev_get_bdevs", None, answer("step5.jsonl", 41))),
        expect("bdev_aio_create", {"name": "disk0", "filename": path, "block_size": 4096, "fallocate": True},
               answer("step5.jsonl", 42)),
        expect("bdev_wait_for_examine", None, answer("step5.jsonl", 43)),
        expect("bdev_lvol_get_lvstores", None, answer("step5.jsonl", 44, as_disk0)),
        reads(("bdev_lvol_get_lvstores", None, answer("step5.jsonl", 44, as_disk0)),
              ("bdev_get_bdevs", None, result(disk0_bdevs))),
    ])
    assert outcome.changed is True
    assert [a["method"] for a in outcome.result["actions"]] == ["bdev_aio_create"]
    assert "bdev_lvol_create_lvstore" not in outcome.methods
    disk = outcome.result["disk"]
    assert disk["uuid"] == "a4a63cbc-561b-44f5-8a4a-3a20e549b17a"
    assert disk["free_clusters"] == 4071
    assert disk["replicas"] == ["vol1-r0"]
    assert disk["lvols"] == ["snap1", "vol1-r0"]


def test_an_lvstore_with_another_name_is_detached_again_and_the_task_fails(tmp_path):
    path = str(tmp_path / "n0.img")
    open(path, "wb").close()
    outcome = run_module(spdk_disk, {"name": "disk0", "path": path}, [
        empty_node(),
        expect("bdev_aio_create", {"name": "disk0", "filename": path, "block_size": 4096, "fallocate": True},
               answer("step5.jsonl", 42)),
        expect("bdev_wait_for_examine", None, EXAMINED),
        expect("bdev_lvol_get_lvstores", None, answer("step5.jsonl", 44)),  # lvstore lvs0 on disk0
        expect("bdev_aio_delete", {"name": "disk0"}, AIO_DELETED),
    ])
    assert outcome.failed
    assert "holds lvstore lvs0" in outcome.msg and "use name: lvs0" in outcome.msg.lower()
    assert "bdev_lvol_create_lvstore" not in outcome.methods


def test_uuid_mismatch_on_an_attached_disk_fails_without_a_mutating_call(disk_file):
    wrong = "2ec6438e-114c-47ba-b723-7c1376549bfb"
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file, "uuid": wrong},
                         attached_disk1d(disk_file))
    assert outcome.failed
    assert D1D_UUID in outcome.msg and wrong in outcome.msg
    assert outcome.mutating == []


def test_uuid_given_for_a_device_without_lvstore_never_formats_it(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file, "uuid": D1D_UUID}, [
        empty_node(),
        expect("bdev_aio_create", {"name": "disk1d", "filename": disk_file, "block_size": 4096,
                                   "fallocate": True}, answer(D1, 56)),
        expect("bdev_wait_for_examine", None, EXAMINED),
        expect("bdev_lvol_get_lvstores", None, NO_LVSTORES),
        expect("bdev_aio_delete", {"name": "disk1d"}, AIO_DELETED),
    ])
    assert outcome.failed
    assert "not formatted" in outcome.msg
    assert "bdev_lvol_create_lvstore" not in outcome.methods


def test_a_device_with_a_blobstore_that_did_not_load_is_not_formatted(disk_file):
    with open(disk_file, "r+b") as device:
        device.write(b"SPDKBLOB")
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, [
        empty_node(),
        expect("bdev_aio_create", {"name": "disk1d", "filename": disk_file, "block_size": 4096,
                                   "fallocate": True}, answer(D1, 56)),
        expect("bdev_wait_for_examine", None, EXAMINED),
        expect("bdev_lvol_get_lvstores", None, NO_LVSTORES),
        expect("bdev_aio_delete", {"name": "disk1d"}, AIO_DELETED),
    ])
    assert outcome.failed and "blobstore" in outcome.msg


def test_check_mode_on_a_new_file_plans_the_attach_and_sends_no_mutating_call(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, empty_node(), check_mode=True)
    assert outcome.changed is True
    assert outcome.mutating == []
    assert outcome.methods == ["bdev_lvol_get_lvstores", "bdev_get_bdevs"]
    assert outcome.result["actions"][0]["method"] == "bdev_aio_create"
    assert outcome.result["actions"][0]["params"]["fallocate"] is True
    assert outcome.result["disk"]["name"] == "disk1d"


def test_diff_shows_the_disk_before_and_after(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, create_calls(disk_file), diff=True)
    assert outcome.result["diff"]["before"] == {}
    assert outcome.result["diff"]["after"]["uuid"] == D1D_UUID


def test_an_attached_disk_without_fallocate_gets_a_warning(tmp_path):
    path = str(tmp_path / "intro.img")
    open(path, "wb").close()
    aio = answer(INTRO, 48, {"/var/lib/spdk/disks/introspection-node1.img": path})
    outcome = run_module(spdk_disk, {"name": "disk1", "path": path}, reads(
        ("bdev_lvol_get_lvstores", None, answer(INTRO, 63)), ("bdev_get_bdevs", None, aio)))
    assert outcome.changed is False
    assert any("without fallocate" in w for w in outcome.warnings)


def test_a_disk_attached_from_another_path_is_refused(disk_file, tmp_path):
    other = str(tmp_path / "other.img")
    open(other, "wb").close()
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": other}, attached_disk1d(disk_file))
    assert outcome.failed and "already attached from %s" % disk_file in outcome.msg
    assert outcome.mutating == []


# --- absent -------------------------------------------------------------------


def test_absent_detaches_the_disk_and_keeps_its_lvstore(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "state": "absent"}, [
        attached_disk1d(disk_file),
        expect("bdev_aio_delete", {"name": "disk1d"}, AIO_DELETED),
    ])
    assert outcome.changed is True
    assert "bdev_lvol_delete_lvstore" not in outcome.methods
    assert outcome.result["disk"] == {}


def test_absent_for_a_detached_disk_changes_nothing(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "state": "absent", "wipe": True}, empty_node())
    assert outcome.changed is False and outcome.rpc_count == 2


def node1_in_use():
    """introspection node1: disk1 with lvols, vol1-r-a1b2c3d4 a member of RAID vol1-e0."""
    return [reads(("bdev_lvol_get_lvstores", None, answer(INTRO, 63)), ("bdev_get_bdevs", None, answer(INTRO, 61))),
            reads(("nvmf_get_subsystems", None, answer(INTRO, 78)),
                  ("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83)))]


def test_absent_is_refused_while_a_replica_is_a_raid_member():
    outcome = run_module(spdk_disk, {"name": "disk1", "state": "absent"}, node1_in_use())
    assert outcome.failed
    assert "vol1-r-a1b2c3d4: member of RAID vol1-e0" in outcome.msg
    assert outcome.mutating == []


def test_wipe_is_refused_while_a_raid_uses_an_lvol_even_when_none_is_exposed():
    outcome = run_module(spdk_disk, {"name": "disk1", "state": "absent", "wipe": True}, node1_in_use())
    assert outcome.failed and "member of RAID vol1-e0" in outcome.msg
    assert outcome.mutating == []


def d6_disk_with_replica():
    """d6: lvstore with replica vol1 and its snapshots, nobody using them."""
    lvstore = answer(INTRO, 63, {"2ec6438e-114c-47ba-b723-7c1376549bfb": "2cf2b498-3763-4a05-a41c-6c38ac7b2376"})
    bdevs = answer(INTRO, 48)["result"] + [answer(D6, line)["result"][0] for line in (17, 18, 19, 20)]
    return reads(("bdev_lvol_get_lvstores", None, lvstore), ("bdev_get_bdevs", None, result(bdevs)))


def test_wipe_is_refused_while_lvols_live_on_the_disk():
    outcome = run_module(spdk_disk, {"name": "disk1", "state": "absent", "wipe": True}, [
        d6_disk_with_replica(),
        reads(("nvmf_get_subsystems", None, answer(INTRO, 8)),
              ("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 6))),
    ])
    assert outcome.failed
    assert "wipe would destroy 4 lvol(s)" in outcome.msg and "force" in outcome.msg
    assert outcome.mutating == []


def test_forced_wipe_destroys_the_lvstore_then_detaches():
    outcome = run_module(spdk_disk, {"name": "disk1", "state": "absent", "wipe": True, "force": True}, [
        d6_disk_with_replica(),
        expect("nvmf_get_subsystems", None, answer(INTRO, 8)),      # the discovery subsystem only
        expect("bdev_lvol_delete_lvstore", {"uuid": "2cf2b498-3763-4a05-a41c-6c38ac7b2376"},
               answer("step6.jsonl", 53)),
        expect("bdev_aio_delete", {"name": "disk1"}, AIO_DELETED),
    ])
    assert outcome.changed is True
    assert outcome.mutating == ["bdev_lvol_delete_lvstore", "bdev_aio_delete"]
    assert outcome.result["removed_exports"] == []


def test_check_mode_wipe_plans_both_calls_and_sends_neither():
    outcome = run_module(spdk_disk, {"name": "disk1", "state": "absent", "wipe": True, "force": True},
                         [d6_disk_with_replica(), expect("nvmf_get_subsystems", None, answer(INTRO, 8))],
                         check_mode=True)
    assert outcome.changed is True
    assert [a["method"] for a in outcome.result["actions"]] == ["bdev_lvol_delete_lvstore", "bdev_aio_delete"]
    assert outcome.mutating == []


def node2_exported(extra_subsystems=()):
    """introspection node2: disk2's lvols vol1-r-b2c3d4e5 and img-base-0001 each exported by a subsystem of its own,
    plus ``extra_subsystems``."""
    subsystems = answer(INTRO, 72)["result"] + list(extra_subsystems)
    return [reads(("bdev_lvol_get_lvstores", None, sc.node2().lvstores), ("bdev_get_bdevs", None, answer(INTRO, 62))),
            expect("nvmf_get_subsystems", None, result(subsystems))]


def engine_frontend():
    """node1's engine subsystem: it exports RAID vol1-e0, no lvol of any disk."""
    return [s for s in answer(INTRO, 78)["result"] if s["nqn"].endswith(":vol1-e0")][0]


def test_forced_detach_deletes_the_subsystems_exporting_the_disks_lvols_and_only_those():
    outcome = run_module(spdk_disk, {"name": "disk2", "state": "absent", "force": True}, [
        node2_exported([engine_frontend()]),
        expect("nvmf_delete_subsystem", {"nqn": NQN + "img-base-0001"}, answer(D1, 8)),
        expect("nvmf_delete_subsystem", {"nqn": NQN + "vol1-r-b2c3d4e5"}, answer(D1, 8)),
        expect("bdev_aio_delete", {"name": "disk2"}, AIO_DELETED),
    ])
    assert outcome.changed is True
    assert outcome.result["removed_exports"] == [NQN + "img-base-0001", NQN + "vol1-r-b2c3d4e5"]
    assert "bdev_lvol_delete_lvstore" not in outcome.methods        # detached, data kept


def test_a_subsystem_exporting_other_bdevs_too_only_loses_the_disks_namespaces():
    shared = dict(answer(INTRO, 72)["result"][1])
    shared["namespaces"] = shared["namespaces"] + [{"nsid": 2, "bdev_name": "vol1-e0", "name": "vol1-e0"}]
    others = [s for s in answer(INTRO, 72)["result"] if s["nqn"] != shared["nqn"]]
    outcome = run_module(spdk_disk, {"name": "disk2", "state": "absent", "force": True}, [
        reads(("bdev_lvol_get_lvstores", None, sc.node2().lvstores), ("bdev_get_bdevs", None, answer(INTRO, 62))),
        expect("nvmf_get_subsystems", None, result(others + [shared])),
        expect("nvmf_delete_subsystem", {"nqn": NQN + "vol1-r-b2c3d4e5"}, answer(D1, 8)),
        expect("nvmf_subsystem_remove_ns", {"nqn": shared["nqn"], "nsid": 1}, result(True)),
        expect("bdev_aio_delete", {"name": "disk2"}, AIO_DELETED),
    ])
    assert outcome.changed is True and shared["nqn"] in outcome.result["removed_exports"]


def test_check_mode_plans_the_export_removal_and_sends_nothing():
    outcome = run_module(spdk_disk, {"name": "disk2", "state": "absent", "force": True}, node2_exported(),
                         check_mode=True)
    assert outcome.changed is True and outcome.mutating == []
    assert [a["method"] for a in outcome.result["actions"]] == [
        "nvmf_delete_subsystem", "nvmf_delete_subsystem", "bdev_aio_delete"]


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize("args, reason", [
    ({"name": "d" * 64}, "at most 63"),
    ({"name": "disk/1"}, "may only contain"),
    ({"name": "-disk"}, "must not start"),
    ({"name": "disk1", "cluster_size": "lots"}, "is not a size"),
    ({"name": "disk1", "cluster_size": "3KiB"}, "power of two"),
    ({"name": "disk1", "uuid": "not-a-uuid"}, "not a UUID"),
    ({"name": "disk1", "block_size": 1000}, "power of two"),
    ({"name": "disk1", "wipe": True}, "only applies to state=absent"),
])
def test_bad_input_fails_before_any_rpc(args, reason, disk_file):
    outcome = run_module(spdk_disk, dict({"path": disk_file}, **args), [])
    assert outcome.failed and reason in outcome.msg
    assert outcome.rpc_count == 0


def test_a_missing_path_fails_before_any_rpc(tmp_path):
    missing = str(tmp_path / "nope.img")
    outcome = run_module(spdk_disk, {"name": "disk1", "path": missing}, [])
    assert outcome.failed and "does not exist" in outcome.msg and missing in outcome.msg
    assert outcome.rpc_count == 0


def test_a_missing_file_on_a_remote_target_is_explained_from_spdks_answer():
    outcome = run_module(spdk_disk, {"name": "missing", "path": "/var/lib/spdk/disks/does-not-exist.img",
                                     "rpc_socket": "127.0.0.1:5260", "block_size": 4096}, [
        empty_node(),
        expect("bdev_aio_create", {"name": "missing", "filename": "/var/lib/spdk/disks/does-not-exist.img",
                                   "block_size": 4096, "fallocate": True}, answer("step6.jsonl", 18)),
    ])
    assert outcome.failed
    assert "bdev_aio_create" in outcome.msg and "-2" in outcome.msg
    assert "does not exist on the host that runs spdk_tgt" in outcome.msg


def test_an_absent_socket_fails_cleanly(tmp_path, disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file,
                                     "rpc_socket": str(tmp_path / "no.sock"), "rpc_timeout": 0.3}, None)
    assert outcome.failed
    assert "no.sock" in outcome.msg


def test_an_answer_the_module_cannot_understand_fails_without_a_traceback(disk_file):
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, reads(
        ("bdev_lvol_get_lvstores", None, result([{"name": "disk1d"}])),  # fields missing
        ("bdev_get_bdevs", None, NO_BDEVS)))
    assert outcome.failed
    assert "unexpected error" in outcome.msg and "KeyError" in outcome.msg
    assert outcome.mutating == []


def test_a_failed_rpc_reports_the_actions_already_taken(disk_file):
    """An RPC failure returns ``actions`` as a refusal does: the aio attach, then the lvstore create that failed."""
    calls = create_calls(disk_file)[:5]
    calls[-1] = expect("bdev_lvol_create_lvstore", {"bdev_name": "disk1d", "lvs_name": "disk1d",
                                                    "cluster_sz": 1048576, "clear_method": "unmap"},
                       error(-28, "No space left on device"))
    outcome = run_module(spdk_disk, {"name": "disk1d", "path": disk_file}, calls)
    assert outcome.failed
    assert (outcome.result["rpc_method"], outcome.result["rpc_error_code"]) == ("bdev_lvol_create_lvstore", -28)
    assert "check that the device is large enough for the cluster size" in outcome.msg
    assert [a["method"] for a in outcome.result["actions"]] == ["bdev_aio_create", "bdev_lvol_create_lvstore"]

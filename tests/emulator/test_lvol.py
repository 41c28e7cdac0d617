"""bdev_lvol_* RPCs answer like SPDK v26.05 (step1/step6, B and D6: tests/emulator/README.md)."""
import os
import signal

import pytest

GIB = 1 << 30
LVS_1G = {"total_data_clusters": 1019, "free_clusters": 1019, "block_size": 4096, "cluster_size": 1048576,
          "max_growable_size": 34317795328}


@pytest.fixture
def node(emulator_node):
    node = emulator_node()
    node.call("bdev_aio_create", name="disk1", filename=node.disk("n1.img", GIB), block_size=4096)
    node.lvs_uuid = node.call("bdev_lvol_create_lvstore", bdev_name="disk1", lvs_name="disk1",
                              cluster_sz=1 << 20, clear_method="unmap")
    return node


def lvols(node):
    return {v["name"]: v for v in node.call("bdev_lvol_get_lvols")}


def test_lvstore_numbers_and_claim_match_spdk(node):
    info = node.call("bdev_lvol_get_lvstores", lvs_name="disk1")[0]
    assert info == dict(uuid=node.lvs_uuid, name="disk1", base_bdev="disk1", **LVS_1G)
    aio = node.call("bdev_get_bdevs", name="disk1")[0]
    assert (aio["claimed"], aio["claim_type"]) == (True, "read_many_write_one")
    assert node.error("bdev_lvol_create_lvstore", bdev_name="disk1", lvs_name="x", cluster_sz=1 << 20) == {
        "code": -1, "message": "Operation not permitted"}


def test_lvol_bdev_shape_and_lookup_errors(node):
    uuid = node.call("bdev_lvol_create", lvol_name="v1", size_in_mib=64, thin_provision=True, lvs_name="disk1")
    bdev = node.call("bdev_get_bdevs", name="disk1/v1")[0]
    assert (bdev["name"], bdev["aliases"], bdev["num_blocks"]) == (uuid, ["disk1/v1"], 16384)
    assert bdev["driver_specific"] == {"lvol": {
        "lvol_store_uuid": node.lvs_uuid, "base_bdev": "disk1", "thin_provision": True,
        "num_allocated_clusters": 0, "snapshot": False, "clone": False, "esnap_clone": False}}
    assert lvols(node)["v1"] == {
        "alias": "disk1/v1", "uuid": uuid, "name": "v1", "is_thin_provisioned": True, "is_snapshot": False,
        "is_clone": False, "is_esnap_clone": False, "is_degraded": False, "num_allocated_clusters": 0,
        "lvs": {"name": "disk1", "uuid": node.lvs_uuid}}
    assert node.error("bdev_lvol_create", lvol_name="v1", size_in_mib=64, lvs_name="disk1") == {
        "code": -17, "message": "File exists"}
    assert node.error("bdev_lvol_create", lvol_name="x", size_in_mib=64, lvs_name="nolvs")["code"] == -19
    assert node.error("bdev_lvol_create", lvol_name="huge", size_in_mib=100000, thin_provision=False,
                      lvs_name="disk1") == {"code": -32602, "message": "No space left on device"}
    assert node.error("bdev_lvol_get_lvols", lvs_name="disk1", lvs_uuid=node.lvs_uuid)["code"] == -22
    assert node.error("bdev_lvol_get_lvols", lvs_name="nope")["code"] == -19


def test_thick_lvol_allocates_everything_and_delete_frees_it(node):
    node.call("bdev_lvol_create", lvol_name="thick", size_in_mib=32, thin_provision=False, lvs_name="disk1")
    assert lvols(node)["thick"]["num_allocated_clusters"] == 32
    assert node.call("bdev_lvol_get_lvstores")[0]["free_clusters"] == 1019 - 32
    assert node.call("bdev_lvol_delete", name="disk1/thick") is True
    assert node.call("bdev_lvol_get_lvstores")[0]["free_clusters"] == 1019
    assert node.error("bdev_lvol_delete", name="disk1/thick")["code"] == -19


def test_snapshot_clone_and_delete_rules(node):
    node.call("bdev_lvol_create", lvol_name="head", size_in_mib=16, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_snapshot", lvol_name="disk1/head", snapshot_name="snap")
    node.call("bdev_lvol_clone", snapshot_name="disk1/snap", clone_name="c1")
    listed = lvols(node)
    assert (listed["head"]["is_clone"], listed["snap"]["is_snapshot"], listed["c1"]["is_clone"]) == (True, True, True)
    snap = node.call("bdev_get_bdevs", name="disk1/snap")[0]
    assert snap["driver_specific"]["lvol"]["clones"] == ["head", "c1"]
    assert snap["supported_io_types"]["write"] is False
    assert node.call("bdev_get_bdevs", name="disk1/c1")[0]["driver_specific"]["lvol"]["base_snapshot"] == "snap"
    assert node.error("bdev_lvol_snapshot", lvol_name="disk1/head", snapshot_name="snap") == {
        "code": -32602, "message": "File exists"}
    assert node.error("bdev_lvol_clone", snapshot_name="disk1/head", clone_name="c") == {
        "code": -32602, "message": "Invalid argument"}
    assert node.error("bdev_lvol_delete", name="disk1/snap") == {"code": -32603, "message": "Operation not permitted"}
    node.call("bdev_lvol_delete", name="disk1/c1")
    assert node.call("bdev_lvol_delete", name="disk1/snap") is True   # one child: merged into it
    assert lvols(node)["head"]["is_clone"] is False


def test_rename_accepts_what_spdk_accepts_and_a_long_name_breaks_the_next_load(node):
    node.call("bdev_lvol_create", lvol_name="a", size_in_mib=4, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_create", lvol_name="b", size_in_mib=4, thin_provision=True, lvs_name="disk1")
    assert node.error("bdev_lvol_rename", old_name="disk1/a", new_name="b") == {"code": -32602, "message": "File exists"}
    assert node.error("bdev_lvol_create", lvol_name="", size_in_mib=4, lvs_name="disk1")["code"] == -22
    assert node.error("bdev_lvol_create", lvol_name="x" * 64, size_in_mib=4, lvs_name="disk1")["code"] == -22
    assert node.call("bdev_lvol_rename", old_name="disk1/a", new_name="disk1/with-slash") is True
    assert node.call("bdev_get_bdevs", name="disk1/disk1/with-slash")[0]["aliases"] == ["disk1/disk1/with-slash"]
    assert node.call("bdev_lvol_rename", old_name="disk1/b", new_name="z" * 100) is True
    assert lvols(node)["z" * 63]["alias"] == "disk1/" + "z" * 63
    node.restart()
    node.call("bdev_aio_create", name="disk1", filename=node.disk("n1.img"), block_size=4096)
    assert node.call("bdev_lvol_get_lvstores") == []
    assert node.call("bdev_get_bdevs", name="disk1")[0]["claimed"] is False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_lvstore_and_lvols_come_back_after_a_restart(node, sig):
    uuid = node.call("bdev_lvol_create", lvol_name="keep", size_in_mib=8, thin_provision=False, lvs_name="disk1")
    node.call("bdev_lvol_snapshot", lvol_name="disk1/keep", snapshot_name="keep-snap")
    before = node.call("bdev_lvol_get_lvols")
    node.restart(sig)
    node.call("bdev_aio_create", name="disk1", filename=node.disk("n1.img"), block_size=4096)
    assert node.call("bdev_lvol_get_lvols") == before
    assert node.call("bdev_get_bdevs", name="disk1/keep")[0]["name"] == uuid


def test_resize_rules(node):
    node.call("bdev_lvol_create", lvol_name="r", size_in_mib=64, thin_provision=True, lvs_name="disk1")
    assert node.call("bdev_lvol_resize", name="disk1/r", size_in_mib=100) is True
    assert node.call("bdev_get_bdevs", name="disk1/r")[0]["num_blocks"] == 25600
    assert node.call("bdev_lvol_resize", name="disk1/r", size_in_mib=100000) is True   # overcommit is fine
    node.call("bdev_lvol_snapshot", lvol_name="disk1/r", snapshot_name="rs")
    assert node.error("bdev_lvol_resize", name="disk1/rs", size_in_mib=128) == {
        "code": -32602, "message": "Operation not permitted"}
    node.call("bdev_lvol_set_read_only", name="disk1/r")
    assert node.error("bdev_lvol_resize", name="disk1/r", size_in_mib=128)["message"] == "Operation not permitted"
    assert node.error("bdev_lvol_resize", name="disk1/nope", size_in_mib=1)["code"] == -19


def test_set_parent_needs_a_snapshot_a_thin_child_and_equal_sizes(node):
    node.call("bdev_lvol_create", lvol_name="src", size_in_mib=16, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_snapshot", lvol_name="disk1/src", snapshot_name="s")
    node.call("bdev_lvol_create", lvol_name="t", size_in_mib=16, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_create", lvol_name="small", size_in_mib=8, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_create", lvol_name="ro", size_in_mib=16, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_set_read_only", name="disk1/ro")
    invalid = {"code": -32602, "message": "Invalid argument"}
    assert node.error("bdev_lvol_set_parent", lvol_name="disk1/small", parent_name="disk1/s") == invalid
    assert node.error("bdev_lvol_set_parent", lvol_name="disk1/t", parent_name="disk1/ro") == invalid
    assert node.error("bdev_lvol_set_parent", lvol_name="disk1/t", parent_name="disk1/nope")["code"] == -19
    assert node.call("bdev_lvol_set_parent", lvol_name="disk1/t", parent_name="disk1/s") is True
    assert lvols(node)["t"]["is_clone"] is True
    node.call("bdev_lvol_clone", snapshot_name="disk1/ro", clone_name="ro-clone")   # ro becomes a snapshot
    assert lvols(node)["ro"]["is_snapshot"] is True


def test_esnap_clone_of_a_local_bdev_and_its_refusals(node):
    node.call("bdev_aio_create", name="img", filename=node.disk("img.img", 32 << 20), block_size=4096)
    img_uuid = node.call("bdev_get_bdevs", name="img")[0]["uuid"]
    node.call("bdev_lvol_clone_bdev", bdev="img", lvs_name="disk1", clone_name="e")
    info = node.call("bdev_get_bdevs", name="disk1/e")[0]
    assert info["num_blocks"] == 8192
    assert info["driver_specific"]["lvol"]["external_snapshot_name"] == img_uuid
    img = node.call("bdev_get_bdevs", name="img")[0]
    assert (img["claimed"], img["claim_type"]) == (True, "read_many_write_none")
    node.call("bdev_lvol_create", lvol_name="own", size_in_mib=4, thin_provision=True, lvs_name="disk1")
    assert node.error("bdev_lvol_clone_bdev", bdev="disk1/own", lvs_name="disk1", clone_name="x") == {
        "code": -32602, "message": "bdev is an lvol in same lvs as clone; use bdev_lvol_clone instead"}
    assert node.error("bdev_lvol_clone_bdev", bdev="nope", lvs_name="disk1", clone_name="x")["message"] == \
        "bdev does not exist"
    assert node.error("bdev_lvol_clone_bdev", bdev="img", lvs_name="nope", clone_name="x")["message"] == \
        "lvs does not exist"
    assert node.call("bdev_lvol_inflate", name="disk1/e") is True
    assert lvols(node)["e"]["num_allocated_clusters"] == 32
    assert node.call("bdev_get_bdevs", name="img")[0]["claimed"] is False


def test_shallow_copy_reports_its_final_state_once(node):
    node.call("bdev_lvol_create", lvol_name="w", size_in_mib=8, thin_provision=True, lvs_name="disk1")
    node.call("bdev_aio_create", name="dst", filename=node.disk("dst.img", 8 << 20), block_size=4096)
    op = node.call("bdev_lvol_start_shallow_copy", src_lvol_name="disk1/w", dst_bdev_name="dst")["operation_id"]
    assert op == 1
    assert node.call("bdev_lvol_check_shallow_copy", operation_id=op) == {
        "copied_clusters": 0, "total_clusters": 0, "state": "error", "error": "Operation not permitted"}
    assert node.error("bdev_lvol_check_shallow_copy", operation_id=op) == {"code": -19, "message": "No such device"}


def test_grow_and_delete_lvstore(node):
    os.truncate(node.disk("n1.img"), 2 * GIB)
    node.call("bdev_aio_rescan", name="disk1")
    assert node.error("bdev_lvol_grow_lvstore", lvs_name="disk1", uuid=node.lvs_uuid)["code"] == -22
    assert node.call("bdev_lvol_grow_lvstore", lvs_name="disk1") is True
    assert node.call("bdev_lvol_get_lvstores")[0]["total_data_clusters"] == 2043
    node.call("bdev_lvol_create", lvol_name="gone", size_in_mib=4, thin_provision=True, lvs_name="disk1")
    # an empty params object decodes (neither name nor uuid: -22, lvol_ops L146); no params at all
    # fails the decode (what rpc.py sends for `bdev_lvol_delete_lvstore` without -l/-u)
    assert node.response("bdev_lvol_delete_lvstore", {})["error"]["code"] == -22
    assert node.error("bdev_lvol_delete_lvstore") == {"code": -32603, "message": "spdk_json_decode_object failed"}
    assert node.call("bdev_lvol_delete_lvstore", uuid=node.lvs_uuid) is True
    assert node.error("bdev_lvol_delete_lvstore", lvs_name="disk1")["code"] == -19
    assert node.error("bdev_get_bdevs", name="disk1/gone")["code"] == -19
    assert node.call("bdev_get_bdevs", name="disk1")[0]["claimed"] is False
    assert node.error("bdev_lvol_rename_lvstore", old_name="disk1", new_name="x") == {
        "code": -2, "message": "Lvol store disk1 not found"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["clean", "kill9"])
def test_a_snapshot_without_clones_is_listed_as_none_after_a_restart_until_it_is_cloned_again(node, sig):
    """Real v26.05 (fixtures/childless_snapshot_restart.real.jsonl): SPDK rebuilds its snapshot
    list at load from the clones' parent links, so a snapshot whose clones were all deleted reports
    is_snapshot false after a restart and set_parent onto it is refused; it stays read-only and clonable."""
    node.call("bdev_lvol_create", lvol_name="h", size_in_mib=8, thin_provision=True, lvs_name="disk1")
    node.call("bdev_lvol_snapshot", lvol_name="disk1/h", snapshot_name="s")
    node.call("bdev_lvol_delete", name="disk1/h")
    assert lvols(node)["s"]["is_snapshot"] is True           # in the same run it is still listed
    node.restart(sig)
    node.call("bdev_aio_create", name="disk1", filename=node.disk("n1.img", GIB), block_size=4096)
    node.call("bdev_wait_for_examine")
    s = lvols(node)["s"]
    assert (s["is_snapshot"], s["is_clone"]) == (False, False)
    assert node.call("bdev_get_bdevs", name="disk1/s")[0]["driver_specific"]["lvol"]["snapshot"] is False
    node.call("bdev_lvol_create", lvol_name="t", size_in_mib=8, thin_provision=True, lvs_name="disk1")
    assert node.error("bdev_lvol_set_parent", lvol_name="disk1/t", parent_name="disk1/s") == {
        "code": -32602, "message": "Invalid argument"}
    assert node.error("bdev_lvol_snapshot", lvol_name="disk1/s", snapshot_name="s9") == {
        "code": -32602, "message": "Invalid argument"}
    assert node.error("bdev_lvol_resize", name="disk1/s", size_in_mib=16) == {
        "code": -32602, "message": "Operation not permitted"}
    node.call("bdev_lvol_clone", snapshot_name="disk1/s", clone_name="c1")
    node.call("bdev_lvol_delete", name="disk1/c1")
    assert lvols(node)["s"]["is_snapshot"] is True
    assert node.call("bdev_lvol_set_parent", lvol_name="disk1/t", parent_name="disk1/s") is True

"""AIO bdevs over files: creation rules, the recorded bdev_get_bdevs shape, rescan, delete."""
import os

AIO_IO_TYPES_NO_FALLOCATE = {
    "read": True, "write": True, "unmap": False, "flush": True, "reset": True, "nvme_admin": False,
    "nvme_io": False, "nvme_io_md": False, "write_zeroes": True, "zcopy": False, "get_zone_info": False,
    "zone_management": False, "zone_append": False, "compare": False, "compare_and_write": False,
    "abort": False, "seek_hole": False, "seek_data": False, "copy": False, "nvme_iov_md": False,
    "nvme_nssr": False, "write_uncorrectable": False}


def test_aio_bdev_looks_like_the_recorded_one(emulator_node):
    node = emulator_node()
    path = node.disk("n0.img", 64 << 20)
    assert node.call("bdev_aio_create", name="disk0", filename=path, block_size=4096) == "disk0"
    info = node.call("bdev_get_bdevs", name="disk0")[0]
    assert list(info) == ["name", "aliases", "product_name", "block_size", "num_blocks",
                          "preferred_write_alignment", "preferred_write_granularity", "optimal_write_size",
                          "preferred_unmap_alignment", "preferred_unmap_granularity", "uuid",
                          "assigned_rate_limits", "claimed", "zoned", "supported_io_types", "driver_specific"]
    assert info["aliases"] == [info["uuid"]]
    assert (info["product_name"], info["block_size"], info["num_blocks"]) == ("AIO disk", 4096, 16384)
    assert info["supported_io_types"] == AIO_IO_TYPES_NO_FALLOCATE
    assert info["driver_specific"] == {"aio": {"filename": path, "block_size_override": True, "readonly": False,
                                               "fallocate": False, "nowait": False}}
    assert node.call("bdev_get_bdevs", name=info["uuid"])[0]["name"] == "disk0"


def test_fallocate_enables_unmap_and_a_given_uuid_is_kept(emulator_node):
    node = emulator_node()
    uuid = "2ae0d48f-af92-425e-bf63-c809bdd091a7"
    node.call("bdev_aio_create", name="d", filename=node.disk("d.img"), block_size=4096, fallocate=True, uuid=uuid)
    info = node.call("bdev_get_bdevs", name="d")[0]
    assert info["uuid"] == uuid and info["supported_io_types"]["unmap"] is True


def test_creation_errors_match_spdk(emulator_node):
    node = emulator_node()
    path = node.disk("n0.img")
    node.call("bdev_aio_create", name="disk0", filename=path, block_size=4096)
    missing = os.path.join(node.workdir, "does-not-exist.img")
    assert node.error("bdev_aio_create", name="missing", filename=missing) == {
        "code": -2, "message": "No such file or directory"}
    assert node.error("bdev_aio_create", name="disk0", filename=path) == {"code": -22, "message": "Invalid argument"}
    assert node.error("bdev_aio_create", name="disk0b", filename=path) == {"code": -22, "message": "Invalid argument"}
    assert node.error("bdev_aio_delete", name="nope") == {"code": -19, "message": "No such device"}


def test_rescan_picks_up_a_grown_file_and_delete_removes_the_bdev(emulator_node):
    node = emulator_node()
    path = node.disk("g.img", 8 << 20)
    node.call("bdev_aio_create", name="g", filename=path, block_size=4096)
    os.truncate(path, 16 << 20)
    assert node.call("bdev_aio_rescan", name="g") is True
    assert node.call("bdev_get_bdevs", name="g")[0]["num_blocks"] == 4096
    assert node.call("bdev_aio_delete", name="g") is True
    assert node.call("bdev_get_bdevs") == []


def test_config_dump_recreates_the_aio_bdev(emulator_node):
    node = emulator_node()
    path = node.disk("c.img")
    node.call("bdev_aio_create", name="c", filename=path, block_size=4096)
    uuid = node.call("bdev_get_bdevs", name="c")[0]["uuid"]
    config = node.call("framework_get_config", name="bdev")
    assert [e for e in config if e["method"] == "bdev_aio_create"] == [{"method": "bdev_aio_create", "params": {
        "name": "c", "block_size": 4096, "filename": path, "readonly": False, "fallocate": False,
        "uuid": uuid, "nowait": False}}]

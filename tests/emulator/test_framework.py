"""Framework RPCs, the bdev listing and the keyring answer like SPDK v26.05."""
import os

from tests.emulator.spdk_emu.framework import RECORDED


def test_version_and_method_list(emulator_node):
    node = emulator_node()
    assert node.call("spdk_get_version")["version"] == "SPDK v26.05 git sha1 d519b163cb"
    methods = node.call("rpc_get_methods")
    assert methods[:5] == ["spdk_get_version", "rpc_get_methods", "framework_get_config", "framework_get_subsystems",
                           "keyring_get_keys"]
    assert {"bdev_aio_create", "bdev_get_bdevs", "framework_get_config"} <= set(methods)
    assert "save_config" not in methods and "bdev_lvol_shallow_copy" not in methods


def test_subsystems_and_static_configs_are_the_recorded_ones(emulator_node):
    node = emulator_node()
    assert node.call("framework_get_subsystems") == RECORDED["subsystems"]
    assert node.call("framework_get_config", name="scheduler") == [
        {"method": "framework_set_scheduler", "params": {"name": "static"}}]
    assert node.call("framework_get_config", name="scsi") is None
    assert node.call("framework_get_config", name="keyring") == []


def test_bdev_get_bdevs_unknown_name_is_enodev_and_timeout_waits(emulator_node):
    node = emulator_node()
    assert node.error("bdev_get_bdevs", name="selfn1") == {"code": -19, "message": "No such device"}
    # waiting in vain ends with -ETIMEDOUT (spdk_bdev_open_async, fixtures/rpc_py_real.jsonl keyring_aio#33)
    assert node.error("bdev_get_bdevs", name="nope", timeout=50) == {"code": -110, "message": "Connection timed out"}


def test_bdev_examine_is_refused_while_auto_examine_is_on(emulator_node):
    node = emulator_node()
    assert node.error("bdev_examine", name="x") == {"code": -22, "message": "Invalid argument"}


def test_keyring_file_rules(emulator_node, emulator_workdir):
    node = emulator_node()
    good = os.path.join(emulator_workdir, "key0")
    loose = os.path.join(emulator_workdir, "key1")
    for path, mode in ((good, 0o600), (loose, 0o644)):
        with open(path, "w") as handle:
            handle.write("DHHC-1:00:secret:\n")
        os.chmod(path, mode)
    assert node.call("keyring_file_add_key", name="k0", path=good) is True
    assert node.error("keyring_file_add_key", name="k0", path=good) == {"code": -17, "message": "File exists"}
    assert node.error("keyring_file_add_key", name="k1", path=loose) == {"code": -1, "message": "Operation not permitted"}
    assert node.error("keyring_file_add_key", name="k2", path="rel/key")["code"] == -1
    assert node.error("keyring_file_add_key", name="k3", path=good + "-missing") == {
        "code": -2, "message": "No such file or directory"}
    assert node.call("keyring_get_keys") == [
        {"name": "k0", "module": "keyring_file", "removed": False, "probed": False, "refcnt": 1, "path": good}]
    assert node.call("framework_get_config", name="keyring") == [
        {"method": "keyring_file_add_key", "params": {"name": "k0", "path": good}}]
    assert node.call("keyring_file_remove_key", name="k0") is True
    assert node.call("keyring_get_keys") == []

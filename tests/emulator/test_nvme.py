"""bdev_nvme between emulator processes: attach, namespace bdevs, loss/reconnect policy, DH-CHAP, send_cmd."""
import base64
import os
import signal
import time

from tests.emulator.nvmf_support import (NQN, address, attach, attach_error, bdev_exists, ctrlr_states, export,
                                         free_port, io_target, spdk_io, wait_until)
from tests.emulator.spdk_emu import fabric

NVME_BDEV_KEYS = ["name", "aliases", "product_name", "block_size", "num_blocks", "preferred_write_alignment",
                  "preferred_write_granularity", "optimal_write_size", "preferred_unmap_alignment",
                  "preferred_unmap_granularity", "uuid", "numa_id", "assigned_rate_limits", "claimed", "zoned",
                  "supported_io_types", "memory_domains", "driver_specific"]
IO_ERROR = {"code": -5, "message": "Input/output error"}
ZERO_BLOCK_SHA256 = "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7"
READ_LBA0 = "AgAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
WRITE_ZEROES_LBA0 = "CAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="


def test_attached_namespace_is_a_bdev_carrying_the_remote_uuid(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, uuid = export(replica, "vol1", serial_number="SPDKLAB00000001", model_number="spdk-lab replica")
    assert attach(engine, "n1r", replica, nqn, port) == ["n1rn1"]
    bdev = engine.call("bdev_get_bdevs", name="n1rn1")[0]
    assert list(bdev) == NVME_BDEV_KEYS
    assert (bdev["aliases"], bdev["uuid"], bdev["product_name"], bdev["num_blocks"]) == (
        [uuid], uuid, "NVMe disk", 16384)
    path = bdev["driver_specific"]["nvme"][0]
    assert path["trid"] == dict(address(replica.addr, port), subnqn=nqn)
    assert (path["ctrlr_data"]["model_number"], path["ctrlr_data"]["serial_number"]) == (
        "spdk-lab replica", "SPDKLAB00000001")
    assert engine.call("bdev_get_bdevs", name=uuid)[0]["name"] == "n1rn1"
    [ctrlr] = engine.call("bdev_nvme_get_controllers")
    assert ctrlr["name"] == "n1r" and [c["state"] for c in ctrlr["ctrlrs"]] == ["enabled"]
    assert ctrlr["ctrlrs"][0]["host"] == {"nqn": "nqn.2014-08.org.nvmexpress:uuid:%s"
                                          % replica.call("nvmf_subsystem_get_controllers", nqn=nqn)[0]["hostid"],
                                          "addr": "", "svcid": "", "no_shn_notification": False}


def test_data_written_on_one_node_is_read_through_the_other(emulator_node):
    """Host -> engine export (of the attached bdev) -> replica's aio file, and back."""
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    attach(engine, "r", replica, nqn, port)
    engine.call("nvmf_create_transport", trtype="TCP")
    front, front_port = NQN + "front", free_port(engine.addr)
    engine.call("nvmf_create_subsystem", nqn=front, allow_any_host=True)
    engine.call("nvmf_subsystem_add_ns", nqn=front, namespace={"bdev_name": "rn1"})
    engine.call("nvmf_subsystem_add_listener", nqn=front, listen_address=address(engine.addr, front_port))
    written = spdk_io("write", *io_target(engine, front, front_port), "--offset", 1 << 20, "--length", 2 << 20,
                      "--sha256")
    assert written.returncode == 0, written.stderr
    read = spdk_io("read", *io_target(replica, nqn, port), "--offset", 1 << 20, "--length", 2 << 20, "--sha256")
    assert read.stdout == written.stdout
    with open(os.path.join(replica.workdir, "vol1.img"), "rb") as image:
        image.seek(1 << 20)
        assert image.read(4096) != bytes(4096)


def test_attach_refusals_match_spdk(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    assert attach_error(engine, "bad", replica, nqn, "1") == IO_ERROR
    assert attach_error(engine, "bad2", replica, NQN + "nope", port) == IO_ERROR
    attach(engine, "r", replica, nqn, port)
    assert attach_error(engine, "r", replica, nqn, port) == {
        "code": -114, "message": "A controller named r already exists with the specified network path"}
    assert attach_error(engine, "r2", replica, nqn, port) == {"code": -17, "message": "File exists"}
    assert attach_error(engine, "r3", replica, nqn, port, hostnqn=NQN + "x", ctrlr_loss_timeout_sec=5,
                        reconnect_delay_sec=0) == {"code": -22, "message": "Invalid argument"}
    # another host NQN: with r's path and host NQN, spdk_bdev_nvme_create answers -17 before it
    # looks at the keys (as r2 above)
    assert attach_error(engine, "r4", replica, nqn, port, hostnqn=NQN + "y", dhchap_key="no-such-key") == {
        "code": -126, "message": "Required key not available"}
    assert engine.error("bdev_nvme_detach_controller", name="nope") == {"code": -19, "message": "No such device"}
    assert engine.error("bdev_nvme_get_controllers", name="nope") == {
        "code": -22, "message": "Controller nope does not exist"}
    assert [c["name"] for c in engine.call("bdev_nvme_get_controllers")] == ["r"]


def test_a_second_host_nqn_gets_a_controller_but_no_bdev_for_the_same_uuid(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    attach(engine, "first", replica, nqn, port)
    assert attach(engine, "second", replica, nqn, port, hostnqn=NQN + "host-x") == []
    assert [c["name"] for c in engine.call("bdev_nvme_get_controllers")] == ["first", "second"]
    assert engine.call("bdev_nvme_detach_controller", name="second") is True
    assert not bdev_exists(engine, "secondn1") and bdev_exists(engine, "firstn1")


def test_set_options_only_while_no_controller_exists(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    invalid = {"code": -22, "message": "Invalid argument"}
    for bad in ({"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 0},
                {"ctrlr_loss_timeout_sec": 1, "reconnect_delay_sec": 2},
                {"ctrlr_loss_timeout_sec": 5, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 6},
                {"ctrlr_loss_timeout_sec": -2, "reconnect_delay_sec": 2}):
        assert engine.error("bdev_nvme_set_options", **bad) == invalid
    assert engine.call("bdev_nvme_set_options", ctrlr_loss_timeout_sec=10, reconnect_delay_sec=2,
                       fast_io_fail_timeout_sec=5) is True
    attach(engine, "r", replica, nqn, port)
    refused = {"code": -1, "message": "RPC not permitted with nvme controllers already attached"}
    assert engine.error("bdev_nvme_set_options", ctrlr_loss_timeout_sec=20, reconnect_delay_sec=2) == refused
    assert engine.error("bdev_nvme_set_options") == refused
    config = {e["method"]: e.get("params") for e in engine.call("framework_get_config", name="bdev")}
    attached = config["bdev_nvme_attach_controller"]
    assert (attached["ctrlr_loss_timeout_sec"], attached["reconnect_delay_sec"],
            attached["fast_io_fail_timeout_sec"]) == (10, 2, 5), "attached controllers inherit the globals"
    engine.call("bdev_nvme_detach_controller", name="r")
    assert engine.call("bdev_nvme_set_options", ctrlr_loss_timeout_sec=20, reconnect_delay_sec=2) is True


def test_killed_replica_is_deleted_after_ctrlr_loss_timeout(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    attach(engine, "r", replica, nqn, port, ctrlr_loss_timeout_sec=2, reconnect_delay_sec=1,
           fast_io_fail_timeout_sec=1)
    replica.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: ctrlr_states(engine, "r") == ["reconnect_is_delayed"], timeout=1)
    time.sleep(max(0.0, killed + 1.5 - time.monotonic()))
    assert bdev_exists(engine, "rn1"), "kept until the loss timeout"
    wait_until(lambda: ctrlr_states(engine, "r") is None, timeout=3)
    assert time.monotonic() - killed >= 1.9
    assert not bdev_exists(engine, "rn1")


def test_default_loss_timeout_never_deletes_and_reconnects_when_the_node_returns(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, uuid = export(replica, "vol1")
    attach(engine, "r", replica, nqn, port)
    replica.stop(signal.SIGKILL)
    time.sleep(1.0)
    assert set(ctrlr_states(engine, "r")) <= {"failed", "resetting"}
    assert bdev_exists(engine, "rn1")
    replica.start()
    export(replica, "vol1", port=port, uuid=uuid)
    wait_until(lambda: ctrlr_states(engine, "r") == ["enabled"], timeout=3)
    assert engine.call("bdev_get_bdevs", name="rn1")[0]["uuid"] == uuid


def test_removed_host_loops_failed_resetting_and_recovers_when_allowed_again(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", allow_any_host=False)
    host = NQN + "host-node1"
    replica.call("nvmf_subsystem_add_host", nqn=nqn, host=host)
    attach(engine, "r1", replica, nqn, port, hostnqn=host)
    replica.call("nvmf_subsystem_remove_host", nqn=nqn, host=host)
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.update(ctrlr_states(engine, "r1"))
        time.sleep(0.003)
    assert {"failed", "resetting"} <= seen and "reconnect_is_delayed" not in seen
    assert engine.error("bdev_nvme_reset_controller", name="r1") == {"code": -1, "message": "Operation not permitted"}
    replica.call("nvmf_subsystem_add_host", nqn=nqn, host=host)
    wait_until(lambda: ctrlr_states(engine, "r1") == ["enabled"], timeout=2)
    assert bdev_exists(engine, "r1n1")


def test_remote_removal_and_growth_reach_the_attached_bdev(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", size=16 << 20)
    attach(engine, "r", replica, nqn, port)
    with open(os.path.join(replica.workdir, "vol1.img"), "r+b") as image:
        image.truncate(32 << 20)
    replica.call("bdev_aio_rescan", name="vol1")
    wait_until(lambda: engine.call("bdev_get_bdevs", name="rn1")[0]["num_blocks"] == 8192, timeout=1)
    replica.call("nvmf_subsystem_remove_ns", nqn=nqn, nsid=1)
    wait_until(lambda: not bdev_exists(engine, "rn1"), timeout=1)
    assert ctrlr_states(engine, "r") == ["enabled"]
    replica.call("nvmf_subsystem_add_ns", nqn=nqn, namespace={"bdev_name": "vol1", "nsid": 1})
    wait_until(lambda: bdev_exists(engine, "rn1"), timeout=1)


def test_send_cmd_zeroes_block_zero_even_through_a_self_attached_controller(emulator_node):
    """more/sendcmd: a target attached to its own export registers no bdev, but the controller works."""
    node = emulator_node()
    nqn, port, _uuid = export(node, "head")
    assert spdk_io("write", *io_target(node, nqn, port), "--length", 4096, "--pattern", "0xee").returncode == 0
    assert attach(node, "self", node, nqn, port) == []
    assert ctrlr_states(node, "self") == ["enabled"]
    assert not bdev_exists(node, "selfn1")
    read = node.call("bdev_nvme_send_cmd", name="self", cmd_type="io", data_direction="c2h", cmdbuf=READ_LBA0,
                     timeout_ms=5000, data_len=4096)
    assert read["cpl"] == "AAAAAAAAAAAAAAEAAAAAAA==" and base64.urlsafe_b64decode(read["data"]) == b"\xee" * 4096
    zeroed = node.call("bdev_nvme_send_cmd", name="self", cmd_type="io", data_direction="h2c",
                       cmdbuf=WRITE_ZEROES_LBA0, timeout_ms=5000)
    assert zeroed == {"cpl": "AAAAAAAAAAACAAAAAAAAAA=="}
    check = spdk_io("read", *io_target(node, nqn, port), "--length", 4096, "--sha256")
    assert check.stdout.strip() == "sha256=" + ZERO_BLOCK_SHA256


def write_key(node, name, secret):
    path = os.path.join(node.workdir, name)
    with open(path, "w") as handle:
        handle.write(fabric.format_dhchap_key(secret))
    os.chmod(path, 0o600)
    return path


def test_dhchap_admits_only_the_right_keys(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", allow_any_host=False)
    host = NQN + "host-node1"
    host_key, ctrlr_key = write_key(replica, "key-node1", b"h" * 32), write_key(replica, "ckey-node2", b"c" * 48)
    wrong = write_key(replica, "key-wrong", b"w" * 32)
    for node in (engine, replica):
        node.call("keyring_file_add_key", name="key-node1", path=host_key)
        node.call("keyring_file_add_key", name="ckey-node2", path=ctrlr_key)
    engine.call("keyring_file_add_key", name="key-wrong", path=wrong)
    assert replica.error("nvmf_subsystem_add_host", nqn=nqn, host=host, dhchap_ctrlr_key="ckey-node2") == {
        "code": -32603, "message": "Internal error"}
    assert replica.error("nvmf_subsystem_add_host", nqn=nqn, host=host, dhchap_key="no-such-key") == {
        "code": -32602, "message": "Invalid parameters"}
    replica.call("nvmf_subsystem_add_host", nqn=nqn, host=host, dhchap_key="key-node1", dhchap_ctrlr_key="ckey-node2")
    assert replica.call("nvmf_get_subsystems", nqn=nqn)[0]["hosts"] == [
        {"nqn": host, "dhchap_key": "key-node1", "dhchap_ctrlr_key": "ckey-node2"}]
    for keys in ({"dhchap_key": "key-wrong"}, {}, {"dhchap_key": "key-node1", "dhchap_ctrlr_key": "key-wrong"},
                 {"dhchap_ctrlr_key": "ckey-node2"}):
        assert attach_error(engine, "bad", replica, nqn, port, hostnqn=host, **keys) == IO_ERROR
    assert attach(engine, "ok", replica, nqn, port, hostnqn=host, dhchap_key="key-node1",
                  dhchap_ctrlr_key="ckey-node2") == ["okn1"]
    assert replica.call("nvmf_subsystem_get_qpairs", nqn=nqn)[0]["auth"] == {
        "state": "completed", "digest": "sha512", "dhgroup": "ffdhe8192"}
    engine.call("bdev_nvme_detach_controller", name="ok")
    assert attach(engine, "uni", replica, nqn, port, hostnqn=host, dhchap_key="key-node1") == ["unin1"]


def test_io_waits_for_reconnect_until_fast_io_fail(emulator_node):
    """With a loss timeout, I/O to a lost path is held; after fast_io_fail it fails (the RAID's cue)."""
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, uuid = export(replica, "vol1")
    attach(engine, "r", replica, nqn, port, ctrlr_loss_timeout_sec=10, reconnect_delay_sec=1,
           fast_io_fail_timeout_sec=2)
    engine.call("nvmf_create_transport", trtype="TCP")
    front, front_port = NQN + "front", free_port(engine.addr)
    engine.call("nvmf_create_subsystem", nqn=front, allow_any_host=True)
    engine.call("nvmf_subsystem_add_ns", nqn=front, namespace={"bdev_name": "rn1"})
    engine.call("nvmf_subsystem_add_listener", nqn=front, listen_address=address(engine.addr, front_port))
    replica.stop(signal.SIGKILL)
    started = time.monotonic()
    failed = spdk_io("write", *io_target(engine, front, front_port), "--length", 4096, "--timeout", 0)
    assert failed.returncode == 3 and time.monotonic() - started >= 1.5
    assert bdev_exists(engine, "rn1")


def test_multipath_keeps_serving_through_the_remaining_listener(emulator_node):
    """nvmf_listener_ns_ana L12-L41: two paths under one name; removing a listener fails only its path."""
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", ana_reporting=True)
    second = address("127.0.0.3", port)
    replica.call("nvmf_subsystem_add_listener", nqn=nqn, listen_address=second)
    assert attach(engine, "r1", replica, nqn, port, multipath="multipath") == ["r1n1"]
    assert engine.call("bdev_nvme_attach_controller", name="r1", trtype="tcp", adrfam="ipv4", traddr="127.0.0.3",
                       trsvcid=port, subnqn=nqn, multipath="multipath") == ["r1n1"]
    assert ctrlr_states(engine, "r1") == ["enabled", "enabled"]
    replica.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=address(replica.addr, port),
                 ana_state="inaccessible")

    def ana_states():
        return [p["ns_data"]["ana_state"] for p in engine.call("bdev_get_bdevs", name="r1n1")[0]["driver_specific"]["nvme"]]

    wait_until(lambda: ana_states() == ["inaccessible", "optimized"], timeout=1)
    replica.call("nvmf_subsystem_remove_listener", nqn=nqn, listen_address=second)
    wait_until(lambda: ctrlr_states(engine, "r1")[1] == "failed", timeout=1)
    replica.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=address(replica.addr, port),
                 ana_state="optimized")
    front, front_port = NQN + "front", free_port(engine.addr)
    engine.call("nvmf_create_transport", trtype="TCP")
    engine.call("nvmf_create_subsystem", nqn=front, allow_any_host=True)
    engine.call("nvmf_subsystem_add_ns", nqn=front, namespace={"bdev_name": "r1n1"})
    engine.call("nvmf_subsystem_add_listener", nqn=front, listen_address=address(engine.addr, front_port))
    assert spdk_io("write", *io_target(engine, front, front_port), "--length", 65536).returncode == 0
    assert engine.call("bdev_nvme_detach_controller", name="r1", traddr="127.0.0.3") is True
    assert ctrlr_states(engine, "r1") == ["enabled"]

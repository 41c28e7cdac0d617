"""The spdk_tgt command line: flags, pid file, TCP RPC address, --json, --wait-for-rpc, signals."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.emulator.conftest import SPDK_TGT, Node

STARTUP_ONLY = ("Method may only be called before framework is initialized. Use --wait-for-rpc command line "
                "parameter and then issue this RPC before the framework_start_init RPC.")
RUNTIME_ONLY = "Method may only be called after framework is initialized using framework_start_init RPC."


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def test_spdk_flags_are_accepted_and_unknown_ones_only_warned_about(emulator_node):
    node = emulator_node(args=["-m", "0x2", "-s", "1024", "--no-huge", "--no-pci", "--disable-cpumask-locks"])
    assert node.call("spdk_get_version")["fields"]["major"] == 26
    assert "ignoring unsupported arguments: --disable-cpumask-locks" in node.log()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_removes_socket_and_pid_file(emulator_node, emulator_workdir, sig):
    pid_file = os.path.join(emulator_workdir, "tgt.pid")
    node = emulator_node(args=["-f", pid_file])
    with open(pid_file) as handle:
        assert int(handle.read()) == node.proc.pid
    assert node.stop(sig) == 0
    assert not os.path.exists(node.sock)
    assert not os.path.exists(pid_file)


def test_a_socket_in_use_is_refused_and_a_stale_one_replaced(emulator_node, emulator_workdir):
    node = emulator_node()
    second = subprocess.run([sys.executable, SPDK_TGT, "-r", node.sock], capture_output=True, text=True, timeout=10,
                            check=False)  # the refusal is the expected outcome
    assert second.returncode != 0 and "in use" in second.stderr
    node.stop(signal.SIGKILL)
    assert os.path.exists(node.sock)      # a killed process leaves its socket file behind
    node.start()                          # ... which the next start replaces
    assert node.call("bdev_get_bdevs") == []


def test_rpc_over_tcp_host_port(emulator_workdir):
    port = free_port()
    proc = subprocess.Popen([sys.executable, SPDK_TGT, "-r", "127.0.0.1:%d" % port],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        conn.sendall(b'{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1}')
        assert json.loads(conn.recv(65536)) == {"jsonrpc": "2.0", "id": 1, "result": []}
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_wait_for_rpc_allows_startup_methods_only_until_start_init(emulator_node):
    node = emulator_node(args=["--wait-for-rpc"])
    startup = node.call("rpc_get_methods", current=True)
    assert "bdev_set_options" in startup and "bdev_get_bdevs" not in startup
    assert node.error("bdev_get_bdevs") == {"code": -1, "message": RUNTIME_ONLY}
    assert node.call("bdev_set_options", bdev_auto_examine=False) is True
    assert node.call("framework_start_init") is True
    assert node.call("framework_wait_init") is True
    assert node.error("bdev_set_options", bdev_auto_examine=True) == {"code": -1, "message": STARTUP_ONLY}
    assert node.error("framework_start_init") == {"code": -1, "message": STARTUP_ONLY}
    config = node.call("framework_get_config", name="bdev")
    assert config[0]["params"]["bdev_auto_examine"] is False


def test_json_config_replays_a_saved_configuration(emulator_workdir):
    node = Node(0, emulator_workdir)
    disk = node.disk("cfg.img", 8 << 20)
    config = {"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_set_options", "params": {"bdev_auto_examine": False}},
        {"method": "bdev_aio_create", "params": {"name": "d0", "filename": disk, "block_size": 4096}}]}]}
    path = os.path.join(emulator_workdir, "cfg.json")
    with open(path, "w") as handle:
        json.dump(config, handle)
    node.start(["--json", path])
    try:
        entries = node.call("framework_get_config", name="bdev")
        assert entries[0]["params"]["bdev_auto_examine"] is False
        assert [e["params"]["name"] for e in entries if e["method"] == "bdev_aio_create"] == ["d0"]
        assert entries[-1] == {"method": "bdev_wait_for_examine"}
        assert node.call("bdev_get_bdevs", name="d0")[0]["num_blocks"] == 2048
    finally:
        node.kill()

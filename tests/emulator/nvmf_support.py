"""Helpers for the NVMe-oF emulator tests: ports, exports, attaches, polling, spdk_io runs."""
import os
import socket
import subprocess
import sys
import time

EMULATOR_DIR = os.path.dirname(os.path.abspath(__file__))
SPDK_IO = os.path.join(EMULATOR_DIR, "spdk_io")
NQN = "nqn.2026-01.io.spdk-storage:"


def free_port(addr):
    """A TCP port nobody listens on at ``addr`` right now."""
    with socket.socket() as probe:
        probe.bind((addr, 0))
        return str(probe.getsockname()[1])


def address(addr, port):
    return {"trtype": "TCP", "adrfam": "IPv4", "traddr": addr, "trsvcid": port}


def export(node, name, size=64 << 20, allow_any_host=True, port=None, uuid=None, **subsystem):
    """An aio bdev ``name`` on ``node`` exported as NQN+name on node.addr; returns (nqn, port, uuid)."""
    params = {"name": name, "filename": node.disk(name + ".img", size), "block_size": 4096}
    if uuid is not None:
        params["uuid"] = uuid
    node.call("bdev_aio_create", **params)
    if not node.call("nvmf_get_transports"):
        node.call("nvmf_create_transport", trtype="TCP")
    nqn = NQN + name
    port = port or free_port(node.addr)
    node.call("nvmf_create_subsystem", nqn=nqn, allow_any_host=allow_any_host, **subsystem)
    node.call("nvmf_subsystem_add_ns", nqn=nqn, namespace={"bdev_name": name})
    node.call("nvmf_subsystem_add_listener", nqn=nqn, listen_address=address(node.addr, port))
    return nqn, port, node.call("bdev_get_bdevs", name=name)[0]["uuid"]


def attach(node, name, remote, nqn, port, **options):
    return node.call("bdev_nvme_attach_controller", name=name, trtype="tcp", adrfam="ipv4", traddr=remote.addr,
                     trsvcid=port, subnqn=nqn, **options)


def attach_error(node, name, remote, nqn, port, **options):
    return node.error("bdev_nvme_attach_controller", name=name, trtype="tcp", adrfam="ipv4", traddr=remote.addr,
                      trsvcid=port, subnqn=nqn, **options)


def wait_until(predicate, timeout=10.0, period=0.05):
    """Poll ``predicate`` until it returns something true; return it (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("condition not met within %.1f s" % timeout)
        time.sleep(period)


def ctrlr_states(node, name):
    answer = node.response("bdev_nvme_get_controllers", {"name": name})
    if "error" in answer:
        return None
    return [path["state"] for path in answer["result"][0]["ctrlrs"]]


def bdev_exists(node, name):
    return "result" in node.response("bdev_get_bdevs", {"name": name})


def spdk_io(*args, background=False, timeout=60):
    """Run tests/emulator/spdk_io; returns CompletedProcess, or Popen with ``background``."""
    cmd = [sys.executable, SPDK_IO] + [str(a) for a in args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # callers judge rc


def io_target(node, nqn, port):
    return ["--nqn", nqn, "--traddr", node.addr, "--trsvcid", port]

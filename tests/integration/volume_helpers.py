"""What the multi-node emulated tests share: emulated nodes driven through the modules' main(), and host I/O.

test_engine_emulated, test_engine_snapshot_emulated and test_rebuild_emulated each start their own
emulated spdk_tgt processes (tests/emulator/conftest.py ``Node``: one address 127.0.0.N per node),
make disks, replicas and engines with the collection's modules on the real sockets, and read and
write data the way a host does, with tests/emulator/spdk_io.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient, SpdkRpcError
from ansible_collections.spdk.storage.plugins.modules import spdk_disk
from tests.integration.spdk_targets import TargetProcess, direct_call
from tests.unit.expected_calls import run_module

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)

# Host I/O: tests/emulator/spdk_io on the emulator, spdk_dd on a real target (tests/hostio chooses).
SPDK_IO = os.path.join(TESTS, "hostio", "host_io")
MIB = 1 << 20
SB = MIB                                 # the RAID superblock area at the start of every replica
NQN_PREFIX = "nqn.2026-01.io.spdk-storage:"
APP_HOST = NQN_PREFIX + "host:app"       # the host that uses the volume (spdk_io)
# Short loss policy so a dead replica leaves the RAID within seconds.
TIMEOUTS = dict(ctrlr_loss_timeout_sec=3, reconnect_delay_sec=1, fast_io_fail_timeout_sec=2)


class Node(object):
    """One target of the kind the suite runs (spdk_targets.TARGET) at 127.0.0.<idx+1>, as the tests use it."""

    def __init__(self, idx, workdir):
        self.idx = idx
        self.workdir = workdir
        self.addr = "127.0.0.%d" % (idx + 1)
        self.sock = os.path.join(workdir, "n%d.sock" % idx)
        self.target = TargetProcess(self.sock, idx, os.path.join(workdir, "n%d.log" % idx),
                                    self.sock + ".rpc.jsonl")

    @property
    def is_emulator(self):
        return self.target.is_emulator

    def start(self):
        self.target.start()
        return self

    def stop(self, sig=signal.SIGINT):
        return self.target.stop(sig)

    def restart(self, sig=signal.SIGINT):
        self.stop(sig)
        return self.start()

    def kill(self):
        return self.target.kill()

    def call(self, method, **params):
        """The result, or RuntimeError carrying SPDK's code and message."""
        return direct_call(self.sock, method, params or None)

    def error(self, method, **params):
        """The error object of a call that must fail (AssertionError if it succeeds)."""
        client = SpdkRpcClient(self.sock, timeout=30.0, connect_retries=1)
        try:
            client.call(method, params or None, mutating=False)
        except SpdkRpcError as err:
            return {"code": err.code, "message": err.message}
        finally:
            client.close()
        raise AssertionError("%s unexpectedly succeeded" % method)

    def rpc_log(self):
        return self.target.rpc_log()

    def delay(self, method, seconds):
        self.target.delay(method, seconds)

    def set_gate(self, gate):
        self.target.set_gate(gate)

    def disk(self, name, size=64 * MIB):
        """A sparse backing file in the node's work directory (created if missing)."""
        path = os.path.join(self.workdir, name)
        if not os.path.exists(path):
            with open(path, "wb") as handle:
                handle.truncate(size)
        return path

    def log(self):
        return self.target.log_tail()


EPHEMERAL_FIRST = 32768
"""The first port Linux gives outgoing connections (net.ipv4.ip_local_port_range): a test's listeners stay below
it, or a target's own connection to another node may hold the port a listener is about to take."""


def port_block(first, spread):
    """(base, "base-base+19"): 20 ports of their own for this test process, away from 4420 (other runs use it)
    and below EPHEMERAL_FIRST."""
    assert first + spread * 20 <= EPHEMERAL_FIRST, "port_block(%d, %d) reaches the ephemeral ports" % (first, spread)
    base = first + (os.getpid() % spread) * 20
    return base, "%d-%d" % (base, base + 19)


def host_nqn(node):
    """The host NQN node ``n<idx>`` presents as an engine node."""
    return NQN_PREFIX + "host:n%d" % node.idx


class Nodes:
    """Emulated nodes in one work directory, and module runs on them as a playbook would make them."""

    disk_size = 256 * MIB

    def __init__(self, workdir):
        self.workdir = workdir
        self.nodes = []
        self.records = os.path.join(workdir, "records")

    def start_node(self, idx):
        node = Node(idx, self.workdir)
        self.nodes.append(node)
        node.start()
        return node

    def module(self, module, node, check_mode=False, **args):
        args.setdefault("rpc_socket", node.sock)
        return run_module(module, args, None, check_mode=check_mode, diff=True)

    def ok(self, module, node, check_mode=False, **args):
        outcome = self.module(module, node, check_mode=check_mode, **args)
        assert not outcome.failed, outcome.msg
        return outcome

    def disk(self, node, size=None):
        """Disk ``disk<idx>`` on a sparse file of the node's."""
        return self.ok(spdk_disk, node, name="disk%d" % node.idx,
                       path=node.disk("disk%d.img" % node.idx, size or self.disk_size))


def emulated(group_class, prefix):
    """Fixture body: a ``group_class`` (a Nodes) in a fresh work directory; its nodes killed and the directory
    removed afterwards."""
    workdir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    group = group_class(workdir)
    try:
        yield group
    finally:
        for node in group.nodes:
            node.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def spdk_io(command, nqn, addr, port, *extra, check=True, timeout=180):
    """tests/emulator/spdk_io as the host APP_HOST (unless ``--hostnqn`` is given); asserts success if ``check``."""
    if "--hostnqn" not in extra:
        extra += ("--hostnqn", APP_HOST)
    proc = subprocess.run([sys.executable, SPDK_IO, command, "--nqn", nqn, "--traddr", addr, "--trsvcid", str(port),
                           "--timeout", "20"] + list(extra), capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check:
        assert proc.returncode == 0, "spdk_io %s %s: rc %d %s %s" % (
            command, nqn, proc.returncode, proc.stdout, proc.stderr)
    return proc


def start_writer(nqn, addr, port, log, *extra):
    """spdk_io ``writer`` in the background as APP_HOST, 4 KiB writes, one line per completed write in ``log``;
    ``extra`` says where, how long and how deep (``--offset``/``--length``, ``--duration``, ``--queue-depth``)."""
    return subprocess.Popen([sys.executable, SPDK_IO, "writer", "--nqn", nqn, "--traddr", addr, "--trsvcid", str(port),
                             "--hostnqn", APP_HOST, "--io-size", "4096", "--log", log] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pattern_file(path, seed, size):
    """A file of ``size`` bytes whose every 4 KiB block names its seed and number, so blocks never repeat."""
    data = bytearray()
    block = 0
    while len(data) < size:
        data += (("%s:%d:" % (seed, block)).encode() * 512)[:4096]
        block += 1
    with open(path, "wb") as handle:
        handle.write(bytes(data[:size]))
    return path


def sha256_in(output):
    """The digest of spdk_io's ``--sha256`` output."""
    return next(word.split("=", 1)[1] for word in output.split() if word.startswith("sha256="))


def wait_for(predicate, timeout=20.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def module_process(module, args, workdir):
    """A module as its own process (its file run with its arguments, as Ansible starts it): the Popen."""
    handle, path = tempfile.mkstemp(suffix=".json", dir=workdir)
    with os.fdopen(handle, "w") as out:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, out)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, module.__file__, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def process_result(process, timeout=180):
    """The JSON result a module process printed."""
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, "no module result (rc %s): %s %s" % (process.returncode, out, err)
    return json.loads(lines[-1])


def frontend(outcome):
    """(nqn, address, port) of an spdk_engine result's frontend."""
    view = outcome.result["engine"]["frontend"]
    return view["nqn"], view["listen_address"], view["port"]

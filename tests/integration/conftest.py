"""Fixtures for end-to-end tests: SPDK targets on temporary sockets and Ansible runs against them.

``spdk_targets`` starts targets: the emulator (tests/emulator/spdk_tgt) by default, or the real
binary named by ``SPDK_TGT``. Each target gets its own short Unix socket, a 127.0.0.N address that
nothing listens on yet, and is killed at teardown. ``ansible_runner`` runs modules through
``ansible-playbook`` (one process per play, many tasks) or ``ansible`` ad hoc, with the interpreter
named explicitly and the collection found through .cache/collections, and returns parsed results.

Which kind of target runs is decided in one place, spdk_targets.TARGET. Both kinds give the same
per-target RPC log (spdk_targets.RpcRecorder) and host I/O (tests/hostio: spdk_io on the emulator,
spdk_dd on a real target).
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from tests.integration.spdk_targets import TARGET, TargetProcess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Host I/O: tests/emulator/spdk_io on the emulator, spdk_dd on a real target (tests/hostio chooses).
SPDK_IO = os.path.join(REPO, "tests", "hostio", "host_io")
COLLECTIONS_PATH = os.path.join(REPO, ".cache", "collections")
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))

FIRST_PORT = 4420                    # the lowest port spdk_replica allocates by default

# Every read a test uses to compare a node's state before and after a run.
STATE_READS = ("bdev_lvol_get_lvstores", "bdev_get_bdevs", "nvmf_get_subsystems")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "destructive: deletes volumes or lvstores (only ones the test itself created)")


def _missing_tool_reason():
    unrunnable = TARGET.runnable_reason()
    if unrunnable:
        return "no %s to run: %s" % (TARGET.name, unrunnable)
    for tool in ("ansible-playbook", "ansible"):
        if shutil.which(tool, path=BIN_DIR) is None:
            return "%s is not installed next to %s (run make venv)" % (tool, sys.executable)
    return None


def require_tools():
    """Fail when there is no target to run or no Ansible to drive it.

    The emulator is part of the tree and Ansible part of the venv, and a real target runs only when
    SPDK_TGT names it: any of them missing is a broken setup, which a skip would hide.
    """
    reason = _missing_tool_reason()
    if reason:
        pytest.fail(reason, pytrace=False)


# ---- addresses --------------------------------------------------------------------------------

def _port_free(address, port):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class AddressPool(object):
    """Hands out 127.0.0.N addresses whose first replica port is free right now.

    Each pytest-xdist worker starts at its own N, so parallel workers do not collide.
    """

    def __init__(self):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        digits = "".join(c for c in worker if c.isdigit()) or "0"
        self.next = 10 + 40 * (int(digits) % 6)

    def take(self):
        for _attempt in range(240):
            address = "127.0.0.%d" % self.next
            self.next = 10 if self.next >= 250 else self.next + 1
            if _port_free(address, FIRST_PORT):
                return address
        raise RuntimeError("no 127.0.0.N address with port %d free" % FIRST_PORT)


ADDRESSES = AddressPool()


# ---- one target -------------------------------------------------------------------------------

class Target(object):
    """One spdk_tgt process (spdk_targets.TARGET's kind): its socket, listen address, disks and RPC log."""

    def __init__(self, idx, rundir, datadir):
        self.idx = idx
        self.sock = os.path.join(rundir, "t%d.sock" % idx)
        self.address = ADDRESSES.take()
        self.datadir = datadir
        self.log_path = os.path.join(rundir, "t%d.log" % idx)
        self.rpc_log_path = os.path.join(rundir, "t%d.rpc.jsonl" % idx)
        self.process = TargetProcess(self.sock, idx, self.log_path, self.rpc_log_path)
        self.is_emulator = self.process.is_emulator

    def start(self):
        self.process.start()
        return self

    def stop(self, sig=signal.SIGINT, timeout=30.0):
        """Stop the process (SIGINT: SPDK's clean shutdown); SIGKILL if it does not end in time."""
        self.process.stop(sig, timeout)

    def restart(self):
        self.stop()
        return self.start()

    def kill(self):
        self.process.kill()

    def log_tail(self):
        return self.process.log_tail()

    # -- talking to it directly (test-side reads, never through the modules) --------------------

    def rpc(self, method, **params):
        client = SpdkRpcClient(self.sock, timeout=10.0, connect_retries=1)
        try:
            return client.call(method, params or None)
        finally:
            client.close()

    def state(self):
        """What the modules can change, in a form that compares equal when nothing changed."""
        client = SpdkRpcClient(self.sock, timeout=10.0, connect_retries=1)
        try:
            lvstores, bdevs, subsystems = client.batch([(method, None) for method in STATE_READS])
        finally:
            client.close()
        return {
            "lvstores": sorted(lvstores, key=lambda lvs: lvs["name"]),
            "bdevs": sorted(bdevs, key=lambda bdev: bdev["name"]),
            "subsystems": sorted(subsystems, key=lambda subsystem: subsystem["nqn"]),
        }

    def disk_file(self, name, size=256 << 20):
        """A new sparse backing file for a disk."""
        path = os.path.join(self.datadir, name + ".img")
        with open(path, "wb") as handle:
            handle.truncate(size)
        return path

    # -- the emulator's RPC log ---------------------------------------------------------------

    def rpc_log(self):
        """Every call the target was sent: dicts with time, method, params, mutating."""
        return self.process.rpc_log()

    def log_mark(self):
        """A position in the RPC log; calls_since(mark) gives what came after it."""
        entries = self.rpc_log()
        return None if entries is None else len(entries)

    def calls_since(self, mark):
        entries = self.rpc_log()
        return None if entries is None else entries[mark:]

    def calls_between(self, start, end):
        """Calls answered in the wall-clock window [start, end) (times from the playbook's marks)."""
        entries = self.rpc_log()
        return None if entries is None else [e for e in entries if start <= e["time"] < end]


class TargetFactory(object):
    """Starts targets for one test (or one test module) and kills every one of them at the end."""

    def __init__(self, datadir):
        self.rundir = tempfile.mkdtemp(prefix="spdk-it-", dir="/tmp")   # AF_UNIX paths stay short
        self.datadir = datadir
        self.targets = []

    def __call__(self):
        target = Target(len(self.targets), self.rundir, self.datadir)
        self.targets.append(target)
        return target.start()

    def close(self):
        for target in self.targets:
            target.kill()
        shutil.rmtree(self.rundir, ignore_errors=True)


@pytest.fixture
def spdk_targets(tmp_path):
    """Factory: ``spdk_targets()`` starts one more target and returns its ``Target``."""
    require_tools()
    factory = TargetFactory(str(tmp_path))
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_targets(tmp_path_factory):
    """Like ``spdk_targets``, shared by the tests of one module (for scenarios read by many tests)."""
    require_tools()
    factory = TargetFactory(str(tmp_path_factory.mktemp("disks")))
    yield factory
    factory.close()


# ---- Ansible ----------------------------------------------------------------------------------

class AnsibleError(AssertionError):
    pass


class TaskRun(object):
    """One task's registered result plus the wall-clock window it ran in."""

    def __init__(self, name, result, start, end):
        self.name = name
        self.result = result
        self.start = start
        self.end = end

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def failed(self):
        return bool(self.result.get("failed"))

    @property
    def changed(self):
        return bool(self.result.get("changed"))

    def __repr__(self):
        return "TaskRun(%r, changed=%s, failed=%s, msg=%r)" % (
            self.name, self.changed, self.failed, self.result.get("msg"))


class PlayRun(object):
    """The tasks of one ansible-playbook run, in order, addressable by task name."""

    def __init__(self, tasks):
        self.tasks = tasks

    def __getitem__(self, name):
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def __iter__(self):
        return iter(self.tasks)

    def failed(self):
        return [task for task in self.tasks if task.failed]


class AnsibleRunner(object):
    """Runs spdk.storage modules on localhost against one target's socket."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.runs = 0

    def env(self):
        env = dict(os.environ)
        env.pop("SPDK_RPC_SOCKET", None)          # the module's env fallback must not leak in
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.workdir, "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(self.workdir, "ansible-remote"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "PATH": BIN_DIR + os.pathsep + env.get("PATH", ""),
        })
        return env

    def _base_args(self):
        return ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable]

    def playbook(self, target, tasks, check=False, allow_failures=False):
        """Run ``tasks`` ([(name, module, args), ...]) as one play; returns a PlayRun.

        Every task is registered and ignores errors, so one failing task does not hide the others'
        results; unless ``allow_failures``, a failed task raises AnsibleError with its message.
        The play notes the time before and after each task, so the RPC log can be cut per task.
        """
        self.runs += 1
        out = os.path.join(self.workdir, "results-%d.json" % self.runs)
        path = os.path.join(self.workdir, "play-%d.yml" % self.runs)
        with open(path, "w") as handle:
            json.dump([self._play(target, tasks, out)], handle, indent=1)   # JSON is YAML
        cmd = [os.path.join(BIN_DIR, "ansible-playbook")] + self._base_args() + [path]
        if check:
            cmd.append("--check")
        proc = subprocess.run(cmd, cwd=self.workdir, env=self.env(), capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0 or not os.path.exists(out):
            raise AnsibleError("ansible-playbook failed (rc %s):\n%s\n%s"
                               % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        with open(out) as handle:
            recorded = json.load(handle)
        marks = recorded["marks"]
        run = PlayRun([TaskRun(name, result, marks[i], marks[i + 1])
                       for i, ((name, _module, _args), result) in enumerate(zip(tasks, recorded["results"]))])
        if not allow_failures and run.failed():
            raise AnsibleError("tasks failed: %r" % run.failed())
        return run

    @staticmethod
    def _play(target, tasks, out):
        steps = [_mark_task()]
        for i, (name, module, args) in enumerate(tasks):
            steps.append({"name": name, module: args, "register": "_r%d" % i, "ignore_errors": True})
            steps.append(_mark_task())
        results = "[%s]" % ", ".join("_r%d" % i for i in range(len(tasks)))
        steps.append({
            "name": "Save the registered results for the test",
            "ansible.builtin.copy": {
                "dest": out, "mode": "0644",
                "content": "{{ {'marks': _marks, 'results': %s} | to_json }}" % results},
            "check_mode": False,
        })
        return {
            "name": "spdk.storage integration test",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"_marks": []},
            "module_defaults": {"group/spdk.storage.spdk": {"rpc_socket": target.sock}},
            "tasks": steps,
        }

    def adhoc(self, target, module, args, check=False):
        """``ansible localhost -m module -a JSON``; returns the module's result dict."""
        args = dict({"rpc_socket": target.sock}, **args)
        cmd = [os.path.join(BIN_DIR, "ansible"), "localhost"] + self._base_args() + [
            "-m", module, "-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        env = dict(self.env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        proc = subprocess.run(cmd, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        # minimal callback: "localhost | SUCCESS => {json}" (FAILED! on failure, exit code 2, after an
        # "[ERROR]: Task failed" summary that ansible-core 2.19 prints first)
        start = proc.stdout.find("localhost | ")
        head, sep, body = proc.stdout[max(start, 0):].partition(" => ")
        if start < 0 or not sep:
            raise AnsibleError("unexpected ad-hoc output (rc %s):\n%s\n%s"
                               % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        result = json.loads(body)
        result.setdefault("failed", "FAILED!" in head)
        return result


def _mark_task():
    return {"name": "Note the time (splits the RPC log per task)",
            "ansible.builtin.set_fact": {"_marks": "{{ _marks + [now().timestamp()] }}"},
            "check_mode": False}


@pytest.fixture
def ansible_runner(tmp_path):
    require_tools()
    return AnsibleRunner(str(tmp_path))


@pytest.fixture(scope="module")
def module_ansible_runner(tmp_path_factory):
    require_tools()
    return AnsibleRunner(str(tmp_path_factory.mktemp("ansible")))


# ---- host I/O through an export (emulator) ----------------------------------------------------

class HostIO(object):
    """Reads and writes a replica's NVMe-oF export the way a host would, with tests/emulator/spdk_io."""

    def __init__(self, hostnqn):
        self.hostnqn = hostnqn

    def _run(self, command, exposure, *extra):
        cmd = [sys.executable, SPDK_IO, command, "--nqn", exposure["nqn"],
               "--traddr", exposure["listen_address"], "--trsvcid", str(exposure["port"]),
               "--hostnqn", self.hostnqn, "--timeout", "10"] + [str(arg) for arg in extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    def write(self, exposure, offset, length, pattern="random", seed="spdk_io"):
        proc = self._run("write", exposure, "--offset", offset, "--length", length,
                         "--pattern", pattern, "--seed", seed, "--sha256")
        assert proc.returncode == 0, "spdk_io write failed: %s%s" % (proc.stdout, proc.stderr)
        return _sha256_of(proc.stdout)

    def read(self, exposure, offset, length):
        """The bytes at [offset, offset+length) of the export."""
        out = tempfile.NamedTemporaryFile(prefix="spdk-io-", delete=False)
        out.close()
        try:
            proc = self._run("read", exposure, "--offset", offset, "--length", length, "--output", out.name)
            assert proc.returncode == 0, "spdk_io read failed: %s%s" % (proc.stdout, proc.stderr)
            with open(out.name, "rb") as handle:
                return handle.read()
        finally:
            os.unlink(out.name)

    def sha256(self, exposure, offset, length):
        return hashlib.sha256(self.read(exposure, offset, length)).hexdigest()


def _sha256_of(text):
    for word in text.split():
        if word.startswith("sha256="):
            return word[len("sha256="):]
    raise AssertionError("spdk_io printed no sha256: %r" % text)


@pytest.fixture
def host_io():
    """Factory: ``host_io(hostnqn)`` is a HostIO connecting as that host (spdk_io or spdk_dd, by target kind)."""
    return HostIO


# ---- RPC counts of no-op runs, printed at the end of the session --------------------------------

NOOP_RPC_COUNTS = {}


@pytest.fixture(scope="session")
def noop_rpc_report():
    """A dict the tests fill with module -> RPCs of a no-op run; printed in the terminal summary."""
    return NOOP_RPC_COUNTS


def pytest_terminal_summary(terminalreporter):
    if NOOP_RPC_COUNTS:
        terminalreporter.section("RPCs sent by one no-op run, per module")
        for module, count in sorted(NOOP_RPC_COUNTS.items()):
            terminalreporter.write_line("%-28s %s" % (module, count))

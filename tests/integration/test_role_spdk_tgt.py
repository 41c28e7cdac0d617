"""Role spdk.storage.spdk_tgt end to end: ansible-playbook against localhost with the emulator.

Each test gets its own directory under /tmp (socket, pid file, log, supervisor) and runs
the role as an operator would; the target's state is then checked over its RPC socket
with the collection's own client. ``SPDK_TGT`` (the path of a real spdk_tgt) replaces
the emulator. The role runs in supervised mode here: this machine has no systemd.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from tests.integration.spdk_targets import TARGET

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = TARGET.binary
# A real target without hugepages needs 2 GiB and a private DPDK configuration (-i -1); the emulator
# takes any size.
TARGET_VARIABLES = ({"spdk_tgt_mem_size_mb": 256, "spdk_tgt_stop_timeout": 5} if TARGET.is_emulator else
                    {"spdk_tgt_mem_size_mb": 2048, "spdk_tgt_stop_timeout": 20, "spdk_tgt_instance_id": -1,
                     "spdk_tgt_extra_args": ["--disable-cpumask-locks"]})
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# After the role, the play notes a start the way a play that recovers the node's objects would see it.
PLAYBOOK = """
- name: Run spdk_tgt with the role
  hosts: localhost
  gather_facts: false
  roles:
    - role: spdk.storage.spdk_tgt
  tasks:
    - name: Leave a mark that this run started the target, with the version spdk_target saw
      ansible.builtin.copy:
        dest: "{{ started_mark }}"
        content: "{{ spdk_tgt_target.version }} {{ spdk_tgt_started_now }}\\n"
        mode: "0644"
      when: spdk_tgt_started_now | bool
"""


class Node(object):
    """One emulated storage node: its directory, role variables and ansible-playbook runs."""

    def __init__(self, root):
        self.root = root
        self.socket = os.path.join(root, "run", "spdk.sock")
        self.pid_file = os.path.join(root, "run", "spdk_tgt.pid")
        self.log_file = os.path.join(root, "log", "spdk_tgt.log")
        self.started_mark = os.path.join(root, "started")
        with open(os.path.join(root, "play.yml"), "w") as handle:
            handle.write(PLAYBOOK)

    def variables(self, **overrides):
        variables = {
            "ansible_python_interpreter": sys.executable,
            "spdk_tgt_binary": BINARY,
            "spdk_tgt_rpc_socket": self.socket,
            "spdk_tgt_pid_file": self.pid_file,
            "spdk_tgt_log_file": self.log_file,
            "spdk_tgt_supervisor_dir": os.path.join(self.root, "lib"),
            "spdk_tgt_service_manager": "supervised",
            "spdk_tgt_no_huge": True,
            "spdk_tgt_no_pci": True,
            "spdk_tgt_wait_timeout": 30,
            "started_mark": self.started_mark,
        }
        variables.update(TARGET_VARIABLES)
        variables.update(overrides)
        return variables

    def play(self, check=False, expect_failure=False, wrap=(), **overrides):
        """Run the role; return (ok, changed, output). The play must succeed unless ``expect_failure``.

        ``wrap`` is a command prefix that runs ansible-playbook (for example in a mount namespace).
        """
        extra = os.path.join(self.root, "vars.json")
        with open(extra, "w") as handle:
            json.dump(self.variables(**overrides), handle)
        command = list(wrap) + [os.path.join(BIN_DIR, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                                os.path.join(self.root, "play.yml"), "-e", "@" + extra]
        if check:
            command += ["--check", "--diff"]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.root, "ansible-tmp"), PATH=BIN_DIR + os.pathsep + os.environ["PATH"])
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        output = done.stdout + done.stderr
        recap = RECAP.search(done.stdout)
        assert recap, "ansible-playbook did not finish (rc %d):\n%s" % (done.returncode, output[-6000:])
        if expect_failure:
            assert done.returncode != 0 and int(recap.group(4)) == 1, "the play should have failed:\n" + output[-6000:]
        else:
            assert done.returncode == 0, "ansible-playbook failed (rc %d):\n%s" % (done.returncode, output[-6000:])
        return int(recap.group(1)), int(recap.group(2)), output

    def pid(self):
        with open(self.pid_file) as handle:
            return int(handle.read())

    def call(self, method, params=None):
        client = SpdkRpcClient(self.socket, timeout=10)
        try:
            return client.call(method, params)
        finally:
            client.close()

    def started(self):
        """What the play noted about a start of the target since the last call (None: no start)."""
        if not os.path.exists(self.started_mark):
            return None
        with open(self.started_mark) as handle:
            text = handle.read()
        os.unlink(self.started_mark)
        return text


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_dead(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.fixture
def node():
    # The emulator is in the tree and SPDK_TGT names a real binary: neither missing is a reason to skip.
    assert os.access(BINARY, os.X_OK), "no %s to run: %s is not executable" % (TARGET.name, BINARY)
    # Short path: a Unix socket path must fit in 107 bytes.
    root = tempfile.mkdtemp(prefix="spdk-role-", dir="/tmp")
    node = Node(root)
    yield node
    if os.path.exists(node.pid_file):   # a test that failed half-way must not leave a target running
        try:
            os.killpg(node.pid(), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(root, ignore_errors=True)


def transports(node):
    return [t["trtype"] for t in node.call("nvmf_get_transports")]


def test_started_twice_changes_nothing_the_second_time_nor_in_check_mode(node):
    _ok, changed, _out = node.play()
    assert changed > 0
    first_pid = node.pid()
    assert node.call("spdk_get_version")["version"].startswith("SPDK v")
    assert transports(node) == ["TCP"]
    assert oct(os.stat(node.socket).st_mode & 0o777) == "0o600"
    assert node.started() is not None, "the first run starts the target and says so (spdk_tgt_started_now)"

    _ok, changed, _out = node.play()
    assert changed == 0
    assert node.pid() == first_pid
    assert node.started() is None, "nothing was started, so nothing to recover"

    _ok, changed, _out = node.play(check=True)
    assert changed == 0


def test_nvme_options_are_set_before_any_controller(node):
    node.play(spdk_tgt_nvme_options={})
    wanted = {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
    _ok, changed, _out = node.play(spdk_tgt_nvme_options=wanted)
    assert changed > 0
    config = node.call("framework_get_config", {"name": "bdev"})
    nvme = [e["params"] for e in config if e["method"] == "bdev_nvme_set_options"][0]
    assert dict((k, nvme[k]) for k in wanted) == wanted
    _ok, changed, _out = node.play(spdk_tgt_nvme_options=wanted)
    assert changed == 0


def raid_options(node):
    config = node.call("framework_get_config", {"name": "bdev"})
    return [e["params"] for e in config if e["method"] == "bdev_raid_set_options"][0]


def test_raid_rebuild_rate_changes_on_the_running_target_without_a_restart(node):
    node.play()
    pid = node.pid()
    assert raid_options(node)["process_max_bandwidth_mb_sec"] == 0, "SPDK's default: unlimited"
    capped = {"process_max_bandwidth_mb_sec": 16}

    _ok, changed, out = node.play(check=True, spdk_tgt_raid_options=capped)
    assert changed == 1
    assert raid_options(node)["process_max_bandwidth_mb_sec"] == 0, "check mode changes nothing"
    assert '"process_max_bandwidth_mb_sec": 0' in out and '"process_max_bandwidth_mb_sec": 16' in out  # diff

    _ok, changed, _out = node.play(spdk_tgt_raid_options=capped)
    assert changed == 1
    assert raid_options(node) == {"process_max_bandwidth_mb_sec": 16, "process_window_size_kb": 1024}
    assert node.pid() == pid
    _ok, changed, _out = node.play(spdk_tgt_raid_options=capped)
    assert changed == 0


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def attach_a_controller_to_itself(node):
    """Export an aio bdev over NVMe-oF/TCP and attach it back: the target now has an NVMe controller."""
    disk = os.path.join(node.root, "disk.img")
    with open(disk, "wb") as handle:
        handle.truncate(16 << 20)
    nqn = "nqn.2026-01.io.spdk-storage:role-test"
    port = str(free_port())
    node.call("bdev_aio_create", {"name": "d0", "filename": disk, "block_size": 4096})
    node.call("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True})
    node.call("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": "d0"}})
    node.call("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": port}})
    node.call("bdev_nvme_attach_controller", {"name": "c0", "trtype": "tcp", "adrfam": "ipv4",
                                              "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn})


def test_other_nvme_options_once_a_controller_exists_need_a_restart(node):
    wanted = {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
    node.play(spdk_tgt_nvme_options=wanted)
    attach_a_controller_to_itself(node)
    pid = node.pid()

    _ok, changed, _out = node.play(spdk_tgt_nvme_options=wanted)
    assert changed == 0, "the same values are fine with a controller attached"

    other = dict(wanted, ctrlr_loss_timeout_sec=30)
    _ok, _changed, out = node.play(expect_failure=True, spdk_tgt_nvme_options=other)
    assert "ctrlr_loss_timeout_sec: 10 -> 30" in out
    assert "c0" in out and "spdk_tgt_state=restarted" in out
    assert node.pid() == pid, "a refused change leaves the target running as it was"

    node.started()
    _ok, changed, _out = node.play(spdk_tgt_nvme_options=other, spdk_tgt_state="restarted")
    assert changed > 0
    config = node.call("framework_get_config", {"name": "bdev"})
    nvme = [e["params"] for e in config if e["method"] == "bdev_nvme_set_options"][0]
    assert nvme["ctrlr_loss_timeout_sec"] == 30
    assert node.started() is not None


def test_a_killed_target_is_started_again_and_the_run_says_it_started_it(node):
    node.play()
    node.started()
    old = node.pid()
    os.killpg(old, signal.SIGKILL)
    assert wait_dead(old)
    assert os.path.exists(node.socket), "a killed target leaves its socket file behind"

    _ok, changed, _out = node.play()
    assert changed > 0
    assert node.pid() != old
    assert transports(node) == ["TCP"]
    assert node.started().endswith(" True\n")


def test_restarted_moves_onto_a_new_binary_and_says_it_started_it(node):
    node.play()
    node.started()
    old = node.pid()
    new_binary = os.path.join(node.root, "spdk_tgt-new")
    os.symlink(BINARY, new_binary)

    _ok, changed, out = node.play(spdk_tgt_binary=new_binary)
    assert changed == 0, "a different binary alone must not restart a running target"
    assert "started with another command line" in out
    assert node.pid() == old

    _ok, changed, _out = node.play(spdk_tgt_binary=new_binary, spdk_tgt_state="restarted")
    assert changed > 0
    assert wait_dead(old)
    with open("/proc/%d/cmdline" % node.pid()) as handle:
        assert new_binary in handle.read().split("\0")
    assert node.started() is not None


# Stands in for spdk_tgt_python, the interpreter the role runs its supervisor with: the first
# status commands (as many as the counter file says) print nothing and exit 0, as one did over SSH.
SILENT_STATUS = """#!/bin/sh
left=$(cat "{counter}")
if [ "$2" = status ] && [ "$left" -gt 0 ]; then
    echo $((left - 1)) > "{counter}"
    exit 0
fi
exec "{python}" "$@"
"""


def silent_status(node, times):
    """An interpreter for spdk_tgt_python whose next ``times`` status answers are empty; and its counter file."""
    counter = os.path.join(node.root, "silent-status-left")
    with open(counter, "w") as handle:
        handle.write("%d\n" % times)
    python = os.path.join(node.root, "python-silent-status")
    with open(python, "w") as handle:
        handle.write(SILENT_STATUS.format(counter=counter, python=sys.executable))
    os.chmod(python, 0o755)
    return python, counter


def test_an_empty_status_answer_is_asked_again_not_read_as_the_state(node):
    python, counter = silent_status(node, 2)
    _ok, changed, out = node.play(spdk_tgt_python=python)
    assert out.count("FAILED - RETRYING: [localhost]: Read the supervised target's state") == 2
    with open(counter) as handle:
        assert handle.read().strip() == "0", "both empty answers were asked again"
    assert changed > 0 and node.started() is not None
    assert node.call("spdk_get_version")["version"].startswith("SPDK v")


def test_a_status_that_never_answers_fails_the_role_before_anything_starts(node):
    python, _counter = silent_status(node, 99)
    _ok, _changed, out = node.play(expect_failure=True, spdk_tgt_python=python)
    assert "The spdk_tgt supervisor's status answered no JSON object 5 times" in out
    assert "nothing was started or stopped" in out
    assert "Start the target" not in out
    assert not os.path.exists(node.pid_file) and not os.path.exists(node.socket)


# Stands in for spdk_tgt_python behind a remote shell that prints lines of its own before the supervisor's
# answer, as pyenv's rehash warnings did over SSH in CI (SSH's terminal merges stderr into stdout).
NOISY_SHELL = """#!/bin/sh
echo "rm: cannot remove '/root/.pyenv/shims/tmp.xPYv3DmFJY': No such file or directory"
echo "pyenv: cannot rehash: /root/.pyenv/shims isn't writable"
exec "{python}" "$@"
"""


def test_lines_a_remote_shell_prints_before_the_supervisor_s_answer_are_skipped(node):
    python = os.path.join(node.root, "python-noisy")
    with open(python, "w") as handle:
        handle.write(NOISY_SHELL.format(python=sys.executable))
    os.chmod(python, 0o755)
    _ok, changed, _out = node.play(spdk_tgt_python=python)
    assert changed > 0 and node.started() is not None
    pid = node.pid()
    _ok, changed, _out = node.play(spdk_tgt_python=python)
    assert changed == 0 and node.started() is None and node.pid() == pid, "the state was read as it is"
    _ok, changed, _out = node.play(spdk_tgt_python=python, spdk_tgt_state="stopped")
    assert changed > 0 and wait_dead(pid) and not os.path.exists(node.pid_file)


def test_stopped_removes_the_process_its_socket_and_pid_file(node):
    node.play()
    pid = node.pid()
    _ok, changed, _out = node.play(spdk_tgt_state="stopped")
    assert changed > 0
    assert wait_dead(pid)
    assert not os.path.exists(node.pid_file)
    assert not os.path.exists(node.socket)
    _ok, changed, _out = node.play(spdk_tgt_state="stopped")
    assert changed == 0


def test_without_tcp_and_with_auto_examine_off_the_role_finishes_a_wait_for_rpc_start(node):
    _ok, changed, _out = node.play(spdk_tgt_nvmf_tcp=False, spdk_tgt_auto_examine=False, spdk_tgt_nvme_options={})
    assert changed > 0
    with open("/proc/%d/cmdline" % node.pid()) as handle:
        assert "--wait-for-rpc" in handle.read().split("\0")
    assert transports(node) == []
    assert "framework_start_init" not in node.call("rpc_get_methods", {"current": True})
    config = node.call("framework_get_config", {"name": "bdev"})
    assert [e["params"]["bdev_auto_examine"] for e in config if e["method"] == "bdev_set_options"] == [False]
    _ok, changed, _out = node.play(spdk_tgt_nvmf_tcp=False, spdk_tgt_auto_examine=False, spdk_tgt_nvme_options={})
    assert changed == 0


# -- hugetlbfs ------------------------------------------------------------------------------
# The role runs with hugepages in use (spdk_tgt_no_huge false) but reserves none
# (spdk_tgt_hugepages 0: the kernel's vm.nr_hugepages is not touched on this machine), and
# ansible-playbook runs in a private mount namespace where every hugetlbfs is unmounted
# first: the role's mount never reaches this machine's own mount table. The wrapper
# records the namespace's hugetlbfs mounts after the play in <root>/mounts-after.

IN_PRIVATE_NAMESPACE = r"""
after=$1
shift
awk '$3 == "hugetlbfs" {print $2}' /proc/self/mounts | while read -r point; do umount "$point"; done
"$@"
status=$?
awk '$3 == "hugetlbfs" {print $2}' /proc/self/mounts > "$after"
exit $status
"""


def private_namespace(node):
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, check=False) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m needs root or CAP_SYS_ADMIN): "
                    "the role's hugetlbfs mount must not touch this machine's mount table")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", IN_PRIVATE_NAMESPACE, "sh",
            os.path.join(node.root, "mounts-after")]


def mounts_after(node):
    with open(os.path.join(node.root, "mounts-after")) as handle:
        return handle.read().split()


def hugetlbfs_points(pid):
    with open("/proc/%d/mounts" % pid) as handle:
        return [line.split()[1] for line in handle if line.split()[2] == "hugetlbfs"]


HUGEPAGES = {"spdk_tgt_no_huge": False, "spdk_tgt_hugepages": 0}


def test_without_a_hugetlbfs_and_without_mounting_the_role_fails_before_the_start_and_says_how(node):
    wrap = private_namespace(node)
    path = os.path.join(node.root, "hugepages")
    _ok, _changed, out = node.play(wrap=wrap, expect_failure=True, spdk_tgt_hugetlbfs_mount=False,
                                   spdk_tgt_hugetlbfs_path=path, **HUGEPAGES)
    assert "no hugetlbfs of page size 2 MiB is mounted" in out
    assert "mount -t hugetlbfs nodev %s" % path in out
    assert "spdk_tgt_hugetlbfs_mount: true" in out and "spdk_tgt_no_huge: true" in out
    assert "Start the target" not in out, "the role must fail before it tries to start the target"
    assert not os.path.exists(node.pid_file) and not os.path.exists(node.socket)
    assert mounts_after(node) == [] and not os.path.exists(path)

    _ok, _changed, out = node.play(wrap=wrap, check=True, expect_failure=True, spdk_tgt_hugetlbfs_mount=False,
                                   spdk_tgt_hugetlbfs_path=path, **HUGEPAGES)
    assert "no hugetlbfs of page size 2 MiB is mounted" in out, "check mode predicts the failure"


def test_without_a_hugetlbfs_the_role_mounts_one_then_starts_the_target(node):
    wrap = private_namespace(node)
    if not TARGET.is_emulator:
        pytest.skip("a real spdk_tgt without --no-huge needs reserved hugepages, and tests must not reserve "
                    "hugepages on this machine")
    path = os.path.join(node.root, "hugepages")

    _ok, changed, out = node.play(wrap=wrap, check=True, spdk_tgt_hugetlbfs_path=path, **HUGEPAGES)
    assert changed > 0 and "Make sure a hugetlbfs is mounted" in out
    assert mounts_after(node) == [], "check mode mounts nothing"
    assert not os.path.exists(node.pid_file)

    _ok, changed, out = node.play(wrap=wrap, spdk_tgt_hugetlbfs_path=path, **HUGEPAGES)
    assert changed > 0
    assert mounts_after(node) == [path]
    pid = node.pid()
    assert hugetlbfs_points(pid) == [path], "the target runs in the namespace where the role mounted it"
    with open("/proc/%d/cmdline" % pid) as handle:
        assert "--no-huge" not in handle.read().split("\0")
    assert transports(node) == ["TCP"]
    with open("/proc/self/mounts") as handle:
        assert path not in handle.read(), "the mount stays in the private namespace"

    # Again, in the target's own namespace: the hugetlbfs is there, nothing changes.
    _ok, changed, _out = node.play(wrap=["nsenter", "-t", str(pid), "-m", "--"], spdk_tgt_hugetlbfs_path=path,
                                   **HUGEPAGES)
    assert changed == 0
    assert node.pid() == pid


def test_an_rpc_listener_on_a_tcp_address_is_refused_before_anything_starts(node):
    # SPDK's JSON-RPC has no authentication: the role never opens it on the network.
    _ok, _changed, out = node.play(expect_failure=True, spdk_tgt_rpc_socket="0.0.0.0:5260")
    assert "must be an absolute Unix socket path (got '0.0.0.0:5260')" in out
    assert "SSH RPC relay" in out
    assert not os.path.exists(node.pid_file)

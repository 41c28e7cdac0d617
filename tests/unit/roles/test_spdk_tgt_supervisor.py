"""The spdk_tgt role's supervisor (roles/spdk_tgt/files/spdk_tgt_supervisor.py), run as the role runs it.

A small fake target (a Python script answering JSON-RPC on its Unix socket) stands in for
spdk_tgt, so these tests need neither SPDK nor the emulator and take a few seconds.
"""
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SUPERVISOR = os.path.join(REPO, "roles", "spdk_tgt", "files", "spdk_tgt_supervisor.py")

FAKE_TARGET = r'''#!%s
"""Answers every JSON-RPC request on -r SOCKET; flags make it misbehave."""
import json, signal, socket, sys, time
args = sys.argv[1:]
path = args[args.index("-r") + 1]
print("fake target starting", flush=True)
if "--crash" in args:
    print("fatal: cannot start", flush=True)
    sys.exit(3)
if "--never-listen" in args:
    time.sleep(600)
if "--ignore-sigterm" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
while True:
    conn, _ = server.accept()
    request = json.loads(conn.recv(65536))
    conn.sendall(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"version": "fake"}}).encode())
    conn.close()
''' % sys.executable


class Box(object):
    """Paths of one supervised target and a way to run the supervisor on them."""

    def __init__(self, root):
        self.root = root
        self.binary = os.path.join(root, "fake_tgt")
        self.socket = os.path.join(root, "run", "tgt.sock")
        self.pid_file = os.path.join(root, "run", "tgt.pid")
        self.log_file = os.path.join(root, "log", "tgt.log")
        with open(self.binary, "w") as handle:
            handle.write(FAKE_TARGET)
        os.chmod(self.binary, 0o755)

    def argv(self, *extra):
        return [self.binary, "-r", self.socket, "-m", "0x1"] + list(extra)

    def run(self, command, *options, argv=None):
        cmd = [sys.executable, SUPERVISOR, command, "--socket", self.socket] + list(options)
        if command != "wait":
            cmd += ["--pid-file", self.pid_file]
        if argv is not None:
            cmd += ["--"] + argv
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, json.loads(done.stdout), done.stderr

    def start(self, *extra, timeout="5", options=()):
        return self.run("start", "--log-file", self.log_file, "--timeout", timeout, *options, argv=self.argv(*extra))

    def stop(self, grace="5"):
        return self.run("stop", "--binary", self.binary, "--grace", grace)

    def status(self, *extra):
        return self.run("status", "--binary", self.binary, argv=self.argv(*extra))[1]

    def pid(self):
        with open(self.pid_file) as handle:
            return int(handle.read())


def answers(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(2)
    try:
        sock.connect(path)
        sock.sendall(b'{"jsonrpc": "2.0", "method": "spdk_get_version", "id": 7}')
        return json.loads(sock.recv(65536))["id"] == 7
    except OSError:
        return False
    finally:
        sock.close()


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
def box():
    root = tempfile.mkdtemp(prefix="spdk-sv-", dir="/tmp")   # short: Unix socket paths max 107 bytes
    box = Box(root)
    yield box
    if os.path.exists(box.pid_file):
        try:
            os.killpg(box.pid(), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(root, ignore_errors=True)


def test_start_detaches_the_target_and_returns_once_its_socket_answers(box):
    rc, result, _err = box.start(options=("--mode", "0660"))
    assert rc == 0 and result["changed"] is True
    pid = box.pid()
    assert result["pid"] == pid
    assert os.getsid(pid) == pid, "the target leads its own session (setsid)"
    assert answers(box.socket)
    assert stat.S_IMODE(os.stat(box.socket).st_mode) == 0o660
    with open(box.log_file) as handle:
        assert "fake target starting" in handle.read()


def test_a_second_start_changes_nothing_but_restores_the_socket_mode(box):
    box.start(options=("--mode", "0600"))
    pid = box.pid()
    rc, result, _err = box.start(options=("--mode", "0600"))
    assert (rc, result["changed"], result["pid"], result["outdated"]) == (0, False, pid, False)
    os.chmod(box.socket, 0o666)
    rc, result, _err = box.start(options=("--mode", "0600"))
    assert result["changed"] is True
    assert stat.S_IMODE(os.stat(box.socket).st_mode) == 0o600
    assert box.pid() == pid


def test_status_tells_a_changed_command_line(box):
    box.start()
    assert box.status() == {"running": True, "pid": box.pid(), "answering": True, "outdated": False}
    assert box.status("-s", "1024")["outdated"] is True


def test_a_target_that_exits_fails_the_start_with_its_exit_status_and_log(box):
    rc, result, err = box.start("--crash")
    assert rc == 1 and result["failed"] is True
    assert "exited before its RPC socket" in result["msg"]
    assert "exit status 3" in result["msg"]
    assert "fatal: cannot start" in result["msg"]
    assert "fatal: cannot start" in err
    assert not os.path.exists(box.pid_file)


def test_a_target_whose_socket_never_answers_is_stopped_and_the_start_fails(box):
    rc, result, _err = box.start("--never-listen", timeout="1")
    assert rc == 1
    assert "did not answer within 1.0 s" in result["msg"]
    assert not os.path.exists(box.pid_file)
    assert box.status()["running"] is False


def test_stop_sends_sigterm_and_removes_pid_file(box):
    box.start()
    pid = box.pid()
    rc, result, _err = box.stop()
    assert rc == 0 and result["changed"] is True and result["signal"] == "SIGTERM"
    assert wait_dead(pid)
    assert not os.path.exists(box.pid_file)


def test_stop_escalates_to_sigkill_after_the_grace_period(box):
    box.start("--ignore-sigterm")
    pid = box.pid()
    started = time.monotonic()
    rc, result, _err = box.stop(grace="0.5")
    assert rc == 0 and result["signal"] == "SIGKILL"
    assert time.monotonic() - started >= 0.5
    assert wait_dead(pid)
    # A target killed hard leaves its socket file; nobody answers on it, so it goes too.
    assert box.socket in result["removed"]
    assert not os.path.exists(box.socket)


def test_stop_of_a_stopped_target_changes_nothing(box):
    rc, result, _err = box.stop()
    assert (rc, result["changed"], result["removed"]) == (0, False, [])


def test_start_after_a_kill_clears_the_stale_socket_and_pid_file(box):
    box.start()
    old = box.pid()
    os.killpg(old, signal.SIGKILL)
    assert wait_dead(old)
    assert os.path.exists(box.socket)
    rc, result, _err = box.start()
    assert rc == 0 and result["changed"] is True
    assert box.pid() != old
    assert answers(box.socket)


def test_a_recycled_pid_in_the_pid_file_is_not_taken_for_the_target(box):
    box.start()
    real = box.pid()
    os.killpg(real, signal.SIGKILL)
    assert wait_dead(real)
    # Another live process now owns the pid written in the pid file (here: this test).
    with open(box.pid_file, "w") as handle:
        handle.write("%d\n" % os.getpid())
    assert box.status()["running"] is False
    rc, result, _err = box.start()
    assert rc == 0 and result["changed"] is True
    assert box.pid() not in (os.getpid(), real)


def test_start_refuses_a_socket_another_target_answers_on(box):
    os.makedirs(os.path.dirname(box.socket))
    other = subprocess.Popen(box.argv(), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not answers(box.socket) and time.monotonic() < deadline:
            time.sleep(0.05)
        rc, result, _err = box.start()
        assert rc == 1
        assert "another target uses this socket" in result["msg"]
        assert other.poll() is None, "the other target must be left alone"
    finally:
        other.kill()
        other.wait()


def test_wait_applies_the_socket_mode_once_it_answers(box):
    box.start(options=("--mode", "0600"))
    os.chmod(box.socket, 0o644)
    rc, result, _err = box.run("wait", "--timeout", "5", "--mode", "0640", "--pid", str(box.pid()))
    assert (rc, result["changed"]) == (0, True)
    assert stat.S_IMODE(os.stat(box.socket).st_mode) == 0o640


def test_wait_fails_fast_when_the_process_it_waits_for_is_gone(box):
    started = time.monotonic()
    rc, result, _err = box.run("wait", "--timeout", "30", "--pid", "999999999")
    assert rc == 1
    assert "exited before its RPC socket" in result["msg"]
    assert time.monotonic() - started < 5


# -- hugetlbfs ----------------------------------------------------------------------------


def load_supervisor():
    spec = importlib.util.spec_from_file_location("spdk_tgt_supervisor", SUPERVISOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What /proc/mounts showed on a Debian host with systemd, plus a 1 GiB-page hugetlbfs and a
# mount point with a space in its name (written \040 by the kernel).
PROC_MOUNTS = r"""sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
udev /dev devtmpfs rw,nosuid,relatime,size=8138236k,nr_inodes=2034559,mode=755 0 0
hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
nodev /mnt/huge\0401g hugetlbfs rw,relatime,pagesize=1024M 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=1631840k,mode=755 0 0
"""


def test_hugetlbfs_mounts_are_matched_by_page_size():
    sv = load_supervisor()
    mounts = sv.read_mounts(PROC_MOUNTS)
    assert sv.hugetlbfs_mounts(mounts, 2 << 20) == ["/dev/hugepages"]
    assert sv.hugetlbfs_mounts(mounts, 1 << 30) == ["/mnt/huge 1g"]
    assert sv.hugetlbfs_mounts(sv.read_mounts(PROC_MOUNTS.replace("pagesize=2M", "pagesize=1G")), 2 << 20) == []
    # Without pagesize= a hugetlbfs serves the default size.
    assert sv.hugetlbfs_mounts(sv.read_mounts("none /h hugetlbfs rw 0 0\n"), 2 << 20) == ["/h"]
    sizes = [sv.parse_page_size(v) for v in ("2M", "2048K", "1G", "2097152", "x")]
    assert sizes == [2 << 20, 2 << 20, 1 << 30, 2 << 20, None]


def test_the_default_hugepage_size_comes_from_meminfo(tmp_path):
    sv = load_supervisor()
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("HugePages_Total:       0\nHugepagesize:    1048576 kB\nHugetlb:  0 kB\n")
    assert sv.default_page_size(str(meminfo)) == 1 << 30
    assert sv.default_page_size(str(tmp_path / "absent")) == 2 << 20


IN_PRIVATE_NAMESPACE = r"""
awk '$3 == "hugetlbfs" {print $2}' /proc/self/mounts | while read -r point; do umount "$point"; done
%s
"$@"
status=$?
echo
awk '$3 == "hugetlbfs" {print "MOUNTED " $2}' /proc/self/mounts
exit $status
"""


def in_private_namespace(*arguments, setup=""):
    """Run the supervisor with ``arguments`` in a private mount namespace that has no hugetlbfs, after the
    shell command ``setup``; return (exit status, its JSON result, the namespace's hugetlbfs mounts after)."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, check=False).returncode:
        pytest.skip("no private mount namespace here (unshare -m needs root): a test must not mount on this machine")
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", IN_PRIVATE_NAMESPACE % setup,
                           "sh", sys.executable, SUPERVISOR] + list(arguments),
                          capture_output=True, text=True, timeout=60, check=False)
    lines = done.stdout.splitlines()
    return (done.returncode, json.loads(lines[0]),
            [line.split(" ", 1)[1] for line in lines if line.startswith("MOUNTED ")])


def test_hugetlbfs_without_one_mounted_fails_and_says_how_to_mount_it(tmp_path):
    path = str(tmp_path / "hugepages")
    rc, result, after = in_private_namespace("hugetlbfs", "--path", path)
    assert rc == 1 and result["failed"] is True
    assert "no hugetlbfs of page size" in result["msg"]
    assert "mount -t hugetlbfs nodev %s" % path in result["msg"]
    assert after == [] and not os.path.exists(path)


def test_hugetlbfs_mount_mounts_one_and_check_mode_only_says_so(tmp_path):
    path = str(tmp_path / "huge pages")   # a space: /proc/mounts escapes it
    rc, result, after = in_private_namespace("hugetlbfs", "--path", path, "--mount", "--check")
    assert (rc, result["changed"], result["mounted"], after) == (0, True, [], [])
    rc, result, after = in_private_namespace("hugetlbfs", "--path", path, "--mount")
    assert (rc, result["changed"], result["mounted"], after) == (0, True, [path], [path.replace(" ", "\\040")])


def test_hugetlbfs_already_mounted_elsewhere_changes_nothing(tmp_path):
    path = str(tmp_path / "hugepages")
    os.makedirs(path)
    rc, result, after = in_private_namespace("hugetlbfs", "--path", str(tmp_path / "other"), "--mount",
                                             setup="mount -t hugetlbfs nodev %s" % shlex.quote(path))
    assert (rc, result["changed"], result["mounted"], after) == (0, False, [path], [path])
    assert not os.path.exists(str(tmp_path / "other"))


def test_hugetlbfs_is_not_mounted_over_another_file_system(tmp_path):
    path = str(tmp_path / "hugepages")
    os.makedirs(path)
    rc, result, after = in_private_namespace("hugetlbfs", "--path", path, "--mount",
                                             setup="mount -t tmpfs none %s" % shlex.quote(path))
    assert rc == 1 and "already the mount point of a tmpfs file system" in result["msg"]
    assert after == []

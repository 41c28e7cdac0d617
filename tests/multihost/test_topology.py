"""The multi-host topology of scripts/multihost.sh: each node a host of its own, reached by SSH.

What it promises: a key login as root on every node; /var/tmp, /run, /dev/shm, /var/lib/spdk-storage
and /var/log private per node while the rest (/tmp, the checkout) is shared; a daemon started through
a node's SSH session lives in that node's mount namespace and its Unix socket is reachable from that
node only; Ansible reaches every node through inventories/multihost; ``up`` is idempotent and
``down`` leaves no process in any node's namespace.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from tests.multihost.multihost_topology import SCRIPT, Topology, own_mount_namespace, pids_in_namespace

pytestmark = pytest.mark.multihost

HERE = os.path.dirname(os.path.abspath(__file__))
UNIX_ECHO = "%s %s" % (sys.executable, os.path.join(HERE, "unix_echo.py"))
PRIVATE_DIRS = ("/var/tmp", "/run", "/dev/shm", "/var/lib/spdk-storage", "/var/log")


def _two_nodes(multihost):
    assert len(multihost.nodes) >= 2, "the topology tests need two nodes at least"
    return multihost.nodes[0], multihost.nodes[1]


def _start_echo_server(node, path):
    """Starts unix_echo.py serve on ``node`` the way a daemon is started (setsid, detached,
    through the SSH session) and returns its pid once it answers there."""
    node.run("setsid %s serve %s </dev/null >/dev/null 2>&1 &" % (UNIX_ECHO, path))
    deadline = time.time() + 20
    while True:
        proc = node.run("%s ping %s" % (UNIX_ECHO, path), check=False)
        if proc.returncode == 0:
            return int(proc.stdout.split()[1])
        assert time.time() < deadline, "the echo server on %s never answered: %s" % (node.name, proc.stderr)
        time.sleep(0.2)


def test_key_login_as_root_on_every_node(multihost):
    for node in multihost.nodes:
        proc = node.run("id -u; hostname; readlink /proc/self/ns/mnt")
        uid, hostname, namespace = proc.stdout.split()
        assert uid == "0"
        assert hostname == node.name
        assert namespace == node.mount_namespace()
        assert namespace != own_mount_namespace()


def test_nodes_have_their_own_address_and_namespace(multihost):
    namespaces = [node.mount_namespace() for node in multihost.nodes]
    assert None not in namespaces
    assert len(set(namespaces)) == len(multihost.nodes)
    for node in multihost.nodes:
        # sshd's view of the connection: the node's own address is the server end
        server_address = node.run("echo $SSH_CONNECTION").stdout.split()[2]
        assert server_address == node.address


@pytest.mark.parametrize("directory", PRIVATE_DIRS)
def test_private_directories(multihost, directory):
    node1, node2 = _two_nodes(multihost)
    path = os.path.join(directory, "mh-%s" % uuid.uuid4().hex)
    node1.run("echo node1 > %s" % path)
    try:
        assert node1.run("cat %s" % path).stdout == "node1\n"
        assert node2.run("test -e %s" % path, check=False).returncode == 1
        assert not os.path.exists(path), "%s written on node1 is visible on the machine" % path
    finally:
        node1.run("rm -f %s" % path, check=False)


def test_the_rest_is_shared(multihost):
    node1, node2 = _two_nodes(multihost)
    path = "/tmp/mh-%s" % uuid.uuid4().hex
    node1.run("echo node1 > %s" % path)
    try:
        assert node2.run("cat %s" % path).stdout == "node1\n"
        with open(path) as handle:
            assert handle.read() == "node1\n"
        # the checkout and the controller's Python are at the same paths on every node
        assert node2.run("test -x %s && test -f %s" % (sys.executable, SCRIPT)).returncode == 0
    finally:
        os.unlink(path)


def test_daemon_stays_in_its_node(multihost):
    node1, node2 = _two_nodes(multihost)
    sock = "/var/tmp/mh-%s.sock" % uuid.uuid4().hex[:8]
    pid = _start_echo_server(node1, sock)
    try:
        # it outlives the SSH session that started it, in node1's mount namespace
        assert os.readlink("/proc/%d/ns/mnt" % pid) == node1.mount_namespace()
        assert pid in pids_in_namespace(node1.mount_namespace())
        # node1 reaches it again through a new session ...
        assert node1.run("%s ping %s" % (UNIX_ECHO, sock)).stdout.split()[:2] == ["pong", str(pid)]
        # ... node2 and the machine itself do not (no such socket there)
        other = node2.run("%s ping %s" % (UNIX_ECHO, sock), check=False)
        assert other.returncode == 1 and "No such file" in other.stderr
        here = subprocess.run([sys.executable, os.path.join(HERE, "unix_echo.py"), "ping", sock],
                              capture_output=True, text=True, timeout=30, check=False)
        assert here.returncode == 1 and "No such file" in here.stderr
    finally:
        node1.run("kill %d" % pid, check=False)


def test_ansible_pings_every_node(multihost):
    proc = multihost.ansible("storage", "ansible.builtin.ping")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # minimal callback: "node1 | SUCCESS => {...}" per host
    answered = dict(re.findall(r'^(node\d+) \| SUCCESS => \{.*?"ping": "(\w+)"', proc.stdout, re.M | re.S))
    assert answered == {"node1": "pong", "node2": "pong", "node3": "pong"}, proc.stdout


def test_ansible_runs_each_task_on_its_own_node(multihost):
    proc = multihost.ansible("storage", "ansible.builtin.command", "hostname")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # minimal callback, command module: "node1 | CHANGED | rc=0 >>" then the output
    for name in ("node1", "node2", "node3"):
        assert re.search(r"^%s \| CHANGED \| rc=0 >>\n%s$" % (name, name), proc.stdout, re.M), proc.stdout


def test_up_is_idempotent(multihost):
    before = [node.sshd_pid() for node in multihost.nodes]
    proc = multihost.up()
    assert [node.sshd_pid() for node in multihost.nodes] == before
    assert proc.stdout.count("(already up)") == len(multihost.nodes), proc.stdout


def test_status(multihost):
    lines = multihost.script("status").stdout.splitlines()
    assert lines == ["%s up   %s:%d pid %d" % (node.name, node.address, node.port, node.sshd_pid())
                     for node in multihost.nodes]


def test_down_stops_every_process_of_every_node_then_up_again(multihost):
    namespaces = {}
    for node in multihost.nodes:
        node.run("setsid sleep 300 </dev/null >/dev/null 2>&1 &")
        # a daemon that ignores SIGTERM has to go too
        node.run("setsid sh -c 'trap \"\" TERM; sleep 301' </dev/null >/dev/null 2>&1 &")
        namespaces[node.name] = node.mount_namespace()
        assert len(pids_in_namespace(namespaces[node.name])) >= 3     # sshd and the two daemons
    started = time.time()
    multihost.down()
    took = time.time() - started
    for node in multihost.nodes:
        assert pids_in_namespace(namespaces[node.name]) == [], node.name
        assert node.sshd_pid() is None
        assert node.run("true", check=False).returncode == 255        # nothing answers SSH
    assert [line.split()[1] for line in multihost.script("status").stdout.splitlines()] == \
        ["down"] * len(multihost.nodes)
    assert took < 30
    # a second down has nothing to do, and up brings every node back (other tests may follow)
    assert multihost.down().stdout == ""
    multihost.up()
    for node in multihost.nodes:
        assert node.run("hostname").stdout.strip() == node.name


def test_down_without_a_topology_is_quiet():
    parent = tempfile.mkdtemp(prefix="mh-", dir="/tmp")      # the state directory's path stays short
    try:
        state_dir = os.path.join(parent, "none")
        topology = Topology(dict(os.environ, SPDK_MULTIHOST_DIR=state_dir))
        for command in ("down", "down"):
            proc = topology.script(command)
            assert (proc.stdout, proc.stderr) == ("", "")
        assert not os.path.exists(state_dir)
        assert [line.split()[1] for line in topology.script("status").stdout.splitlines()] == ["down"] * 3
    finally:
        shutil.rmtree(parent)

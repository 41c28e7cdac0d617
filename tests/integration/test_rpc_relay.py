"""spdk_rpc_relay end to end: real sshd nodes, real ssh masters, through ``ansible localhost -m``.

Two nodes, A and B, are sshd instances on 127.0.0.51 and 127.0.0.52, each in a mount namespace with
its own tmpfs under the peer_dir (tests/integration/ssh_nodes.py), so each node has a peer_dir of
its own as on separate hosts. Stand-in targets answer on their Unix sockets with their own name.
The tests prove from inside each node that ``<peer_dir>/<other>.sock`` reaches the other node's
target through the controller and that ``<peer_dir>/<self>.sock`` is the symlink to its own.

sshd is installed with apt-get when missing; when it cannot be installed or started the tests fail,
they never skip. Needs root (sshd, mount namespaces).
"""
import os
import shutil
import signal
import sys
import tempfile
import time

import pytest

from tests.integration.ssh_nodes import EchoTarget, SshLab, relay_module, rpc_from

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Lab(object):
    """Nodes A and B, their targets, and how the module is called for them."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.ssh = SshLab(workdir)
        self.a = self.ssh.node("nodeA", "127.0.0.51")
        self.b = self.ssh.node("nodeB", "127.0.0.52")
        self.targets = {
            "nodeA": EchoTarget(os.path.join(workdir, "a-tgt.sock"), "nodeA"),
            "nodeB": EchoTarget(os.path.join(workdir, "b-tgt.sock"), "nodeB"),
            "nodeB-2": EchoTarget(os.path.join(workdir, "b2-tgt.sock"), "nodeB-2"),
        }
        self.peer_dir = os.path.join(self.ssh.node_root, "peers")
        self.control_dir = os.path.join(workdir, "ctl")

    def node_option(self, node, target=None, **overrides):
        option = {"name": node.name, "ssh_host": node.address, "ssh_port": node.port, "ssh_user": "root",
                  "ssh_private_key_file": self.ssh.client_key, "ssh_common_args": self.ssh.common_args(),
                  "rpc_socket": self.targets[target or node.name].path}
        option.update(overrides)
        return option

    def args(self, nodes=None, **options):
        args = {"peer_dir": self.peer_dir, "control_dir": self.control_dir}
        if nodes is not False:
            args["nodes"] = nodes or [self.node_option(self.a), self.node_option(self.b)]
        args.update(options)
        return args

    def module(self, args, check=False):
        return relay_module(args, self.workdir, check=check)

    def ok(self, args, **kwargs):
        result = self.module(args, **kwargs)
        assert not result["failed"], result.get("msg")
        return result

    def down(self):
        """No master runs (each test sets up the state it starts from: the tests run in any order)."""
        self.ok(self.args(state="absent"))
        assert self.masters() == {}

    def up(self):
        """Both masters run with the first targets."""
        self.ok(self.args())
        assert sorted(self.masters()) == ["nodeA", "nodeB"]

    def masters(self):
        """node -> pid of the ssh master processes with a control path in control_dir."""
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    argv = handle.read().decode().split("\0")
                with open("/proc/%s/stat" % pid) as handle:
                    if handle.read().rpartition(")")[2].split()[0] == "Z":
                        continue
            except OSError:
                continue
            if "-M" in argv and "-S" in argv:
                ctl = argv[argv.index("-S") + 1]
                if os.path.dirname(ctl) == self.control_dir:
                    found[os.path.basename(ctl)[:-len(".ctl")]] = int(pid)
        return found

    def answer_on(self, node, socket_name):
        """Who answers a request sent, inside ``node``, to ``<peer_dir>/<socket_name>.sock``."""
        answer = rpc_from(node, os.path.join(self.peer_dir, socket_name + ".sock"), python=sys.executable)[0]
        return answer["result"]["node"]

    def stop(self):
        try:
            if os.path.isdir(self.control_dir):
                self.module(self.args(False, state="absent"))
        finally:
            self.ssh.stop()
            for target in self.targets.values():
                target.stop()


@pytest.fixture(scope="module")
def lab():
    workdir = tempfile.mkdtemp(prefix="relay-it-", dir="/tmp")     # short: socket paths have 107 bytes
    lab = None
    try:
        lab = Lab(workdir)
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_check_mode_plans_both_and_starts_nothing(lab):
    lab.down()
    shutil.rmtree(lab.control_dir, ignore_errors=True)
    result = lab.ok(lab.args(), check=True)
    assert result["changed"] is True
    assert [(r["node"], r["state"]) for r in result["relays"]] == [("nodeA", "started"), ("nodeB", "started")]
    assert lab.masters() == {} and not os.path.exists(lab.control_dir)


def test_every_node_reaches_the_other_through_the_relay_and_itself_through_its_link(lab):
    lab.down()
    result = lab.ok(lab.args())
    assert result["changed"] is True
    assert [(r["node"], r["state"], r["peers"]) for r in result["relays"]] == [
        ("nodeA", "started", ["nodeB"]), ("nodeB", "started", ["nodeA"])]
    # The masters outlived the module, daemonised.
    assert sorted(lab.masters()) == ["nodeA", "nodeB"]
    # Node A: B's target through the relay, its own target through the symlink.
    assert lab.answer_on(lab.a, "nodeB") == "nodeB"
    assert lab.answer_on(lab.a, "nodeA") == "nodeA"
    listing = lab.a.in_node(["ls", "-l", lab.peer_dir]).stdout
    assert "nodeA.sock -> %s" % lab.targets["nodeA"].path in listing
    # Node B: the same the other way round.
    assert lab.answer_on(lab.b, "nodeA") == "nodeA"
    assert lab.answer_on(lab.b, "nodeB") == "nodeB"
    assert lab.b.in_node(["readlink", os.path.join(lab.peer_dir, "nodeB.sock")]).stdout.strip() == \
        lab.targets["nodeB"].path
    # peer_dir is private to its node, mode 0700; the controller has each node's target at control_dir.
    mode = lab.a.in_node(["stat", "-c", "%a", lab.peer_dir]).stdout.strip()
    assert mode == "700"
    assert rpc_from(None, os.path.join(lab.control_dir, "nodeB.sock"), python=sys.executable)[0]["result"]["node"] \
        == "nodeB"


def test_a_second_run_changes_nothing(lab):
    lab.up()
    before = lab.masters()
    result = lab.ok(lab.args())
    assert result["changed"] is False
    assert [r["state"] for r in result["relays"]] == ["running", "running"]
    assert lab.masters() == before


def test_a_changed_node_restarts_only_its_own_master(lab):
    lab.up()
    before = lab.masters()
    nodes = [lab.node_option(lab.a), lab.node_option(lab.b, "nodeB-2")]
    result = lab.ok(lab.args(nodes))
    assert [(r["state"], r["reason"]) for r in result["relays"]] == [
        ("running", None), ("started", "its options changed")]
    after = lab.masters()
    assert after["nodeA"] == before["nodeA"] and after["nodeB"] != before["nodeB"]
    assert lab.answer_on(lab.a, "nodeB") == "nodeB-2"           # A's forward follows B's new master
    assert lab.answer_on(lab.b, "nodeB") == "nodeB-2"
    assert lab.answer_on(lab.b, "nodeA") == "nodeA"
    lab.ok(lab.args())                                        # back to B's first target
    assert lab.answer_on(lab.a, "nodeB") == "nodeB"


def test_a_killed_master_is_restarted(lab):
    lab.up()
    os.kill(lab.masters()["nodeA"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while "nodeA" in lab.masters() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = lab.ok(lab.args())
    assert [(r["state"], r["reason"]) for r in result["relays"]] == [("started", "not running"), ("running", None)]
    assert lab.answer_on(lab.a, "nodeB") == "nodeB"
    assert lab.answer_on(lab.b, "nodeA") == "nodeA"


def test_an_unreachable_node_fails_with_what_ssh_said(lab):
    lab.up()
    port = lab.a.port        # nothing listens on 127.0.0.53
    nodes = [dict(lab.node_option(lab.a), name="nodeC", ssh_host="127.0.0.53", ssh_port=port),
             lab.node_option(lab.a), lab.node_option(lab.b)]
    before = lab.masters()
    result = lab.module(lab.args(nodes))
    assert result["failed"] is True
    assert result["msg"] == "cannot reach nodeC over SSH (ssh: connect to host 127.0.0.53 port %d: " \
                            "Connection refused)" % port
    assert result["node"] == "nodeC" and result["ssh_argv"][-2] == "127.0.0.53"
    assert "Connection refused" in result["ssh_stderr"]
    assert lab.masters() == before                             # it failed before touching A and B
    assert lab.ok(lab.args())["changed"] is False
    # allow_unreachable: a warning, and A and B get their relays (with a forward to C, unanswered).
    result = lab.ok(lab.args(nodes, allow_unreachable=True))
    assert [(r["node"], r["state"]) for r in result["relays"]] == [
        ("nodeC", "unreachable"), ("nodeA", "started"), ("nodeB", "started")]
    assert lab.answer_on(lab.a, "nodeB") == "nodeB"
    with pytest.raises(RuntimeError, match="Broken pipe|Connection reset|connection closed"):     # a dead node
        lab.answer_on(lab.a, "nodeC")
    assert lab.ok(lab.args(nodes, allow_unreachable=True))["changed"] is False


def test_absent_stops_every_master_and_a_second_absent_is_a_noop(lab):
    lab.up()
    result = lab.ok(lab.args(False, state="absent"))
    assert result["changed"] is True
    assert [(r["node"], r["state"]) for r in result["relays"]] == [("nodeA", "stopped"), ("nodeB", "stopped")]
    assert lab.masters() == {} and os.listdir(lab.control_dir) == [".lock"]
    with pytest.raises(RuntimeError):
        rpc_from(lab.a, os.path.join(lab.peer_dir, "nodeB.sock"), python=sys.executable)
    again = lab.ok(lab.args(state="absent"))
    assert again["changed"] is False and [r["state"] for r in again["relays"]] == ["absent", "absent"]

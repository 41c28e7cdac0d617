"""spdk_relay: the ssh command lines, when a master (re)starts, stopping, and what fails how.

OpenSSH is played by relay_fakes.FakeSsh; the preparing shell command and SshRunner run for real.
The end-to-end run through real sshd instances is tests/integration/test_rpc_relay.py.
"""
import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.unit.relay_fakes import FakeSsh, option

from ansible_collections.spdk.storage.plugins.module_utils import spdk_relay
from ansible_collections.spdk.storage.plugins.module_utils.spdk_relay import Relay, RelayError, SshRunner

PEER_DIR = "/run/spdk-storage/peers"


def node(name, **options):
    base = dict(name=name, ssh_host="10.0.0.%d" % (int(name[-1]) + 10), ssh_port=22, ssh_user=None,
                ssh_private_key_file=None, ssh_common_args=None, ssh_extra_args=None,
                rpc_socket="/var/tmp/spdk.sock")
    base.update(options)
    return base


THREE = "node1 node2 node3"


def params(control_dir, nodes=THREE, **options):
    """The module's params; ``nodes`` None omits them (state absent)."""
    base = dict(nodes=[node(name) for name in THREE.split()] if nodes is THREE else nodes,
                peer_dir=PEER_DIR, control_dir=str(control_dir), state="present", ssh_executable="ssh", timeout=30,
                allow_unreachable=False)
    base.update(options)
    return base


def apply(args, ssh, check_mode=False):
    return Relay(args, check_mode=check_mode, runner=ssh).apply()


@pytest.fixture
def ctl(tmp_path):
    return tmp_path / "relay"


@pytest.fixture
def ssh():
    return FakeSsh()


# -- command lines ----------------------------------------------------------------------


def test_master_command_line_forwards_own_target_and_every_other_nodes_socket(ctl, ssh):
    args = params(ctl, [node("node1", ssh_port=2222, ssh_user="stor", ssh_private_key_file="/k/id",
                             ssh_common_args="-o ProxyJump=jump -o 'UserKnownHostsFile=/k/known hosts'",
                             ssh_extra_args="-4"),
                        node("node2"), node("node3", rpc_socket="/var/tmp/n3.sock")])
    apply(args, ssh)
    first = ssh.of_kind("start")[0]
    c = str(ctl)
    assert first == [
        "ssh", "-M", "-S", c + "/node1.ctl", "-f", "-N",
        "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
        "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=30",
        "-p", "2222", "-l", "stor", "-i", "/k/id",
        "-o", "ProxyJump=jump", "-o", "UserKnownHostsFile=/k/known hosts", "-4",
        "-L", c + "/node1.sock:/var/tmp/spdk.sock",
        "-R", PEER_DIR + "/node2.sock:" + c + "/node2.sock",
        "-R", PEER_DIR + "/node3.sock:" + c + "/node3.sock",
        "10.0.0.11"]
    third = ssh.of_kind("start")[2]
    assert option(third, "-L") == c + "/node3.sock:/var/tmp/n3.sock"
    assert [third[i + 1] for i, arg in enumerate(third) if arg == "-R"] == [
        PEER_DIR + "/node1.sock:" + c + "/node1.sock", PEER_DIR + "/node2.sock:" + c + "/node2.sock"]


def test_the_node_is_prepared_with_the_same_connection_and_no_master(ctl, ssh):
    apply(params(ctl, [node("node1", ssh_user="stor"), node("node2")]), ssh)
    prepare = ssh.of_kind("prepare")[0]
    assert prepare[:-2] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-p", "22", "-l", "stor"]
    assert prepare[-2] == "10.0.0.11"
    assert "-M" not in prepare and "-S" not in prepare
    assert "ln -sfn /var/tmp/spdk.sock /run/spdk-storage/peers/node1.sock" in prepare[-1]


def test_a_percent_in_the_control_path_is_not_a_token(ssh, tmp_path):
    # ssh expands %-tokens in -S; the control_dir check refuses '%' anyway, the escaping is the second guard.
    relay = Relay(params(tmp_path / "ctl", [node("node1")]), runner=ssh)
    [one] = relay.nodes()
    one.control_path = "/tmp/a%b/node1.ctl"
    assert option(one.check_argv(), "-S") == "/tmp/a%%b/node1.ctl"


def test_the_preparing_command_makes_peer_dir_removes_sockets_and_links_the_own_target(tmp_path):
    peer_dir = tmp_path / "peers dir"
    peer_dir.mkdir(mode=0o755)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(peer_dir / "node2.sock"))                  # left by an earlier master
    stale.close()
    (peer_dir / "notes.txt").write_text("kept")
    (peer_dir / "node1.sock").symlink_to("/old/target.sock")
    relay = Relay(params(tmp_path / "ctl", [node("node1", rpc_socket="/var/tmp/it's.sock"), node("node2")]),
                  runner=FakeSsh())
    one = relay.nodes()[0]
    one.relay.peer_dir = str(peer_dir)                       # (the option refuses spaces; the quoting does not care)
    one.peer_socket = str(peer_dir / "node1.sock")
    subprocess.run(["sh", "-c", one.prepare_command()], check=True)
    subprocess.run(["sh", "-c", one.prepare_command()], check=True)      # twice: still fine
    assert sorted(os.listdir(str(peer_dir))) == ["node1.sock", "notes.txt"]
    assert os.readlink(str(peer_dir / "node1.sock")) == "/var/tmp/it's.sock"
    assert oct(peer_dir.stat().st_mode & 0o777) == "0o700"


def test_the_socket_check_reports_what_is_missing(tmp_path):
    peer_dir = tmp_path / "peers"
    peer_dir.mkdir()
    relay = Relay(params(tmp_path / "ctl", [node("node1"), node("node2"), node("node3")],
                         peer_dir=str(peer_dir)), runner=FakeSsh())
    one = relay.nodes()[0]
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(peer_dir / "node2.sock"))
    try:
        out = subprocess.run(["sh", "-c", one.verify_command()], capture_output=True, text=True, check=True).stdout
        assert out.split() == [str(peer_dir / "node3.sock"), str(peer_dir / "node1.sock")]
        (peer_dir / "node1.sock").symlink_to("/var/tmp/spdk.sock")
        os.symlink("/nowhere", str(peer_dir / "node3.sock"))     # a symlink is not the relayed socket
        out = subprocess.run(["sh", "-c", one.verify_command()], capture_output=True, text=True, check=True).stdout
        assert out.split() == [str(peer_dir / "node3.sock")]
    finally:
        listener.close()


# -- present ----------------------------------------------------------------------------


def test_first_run_prepares_and_starts_every_node_then_checks_it(ctl, ssh):
    result = apply(params(ctl), ssh)
    assert result["changed"] is True
    assert ssh.kinds() == ["prepare", "start", "check", "verify"] * 3
    assert [(r["node"], r["state"], r["reason"], r["peers"]) for r in result["relays"]] == [
        ("node1", "started", "not running", ["node2", "node3"]),
        ("node2", "started", "not running", ["node1", "node3"]),
        ("node3", "started", "not running", ["node1", "node2"])]
    relay = result["relays"][0]
    assert relay["peer_socket"] == PEER_DIR + "/node1.sock"
    assert relay["controller_socket"] == str(ctl / "node1.sock")
    assert relay["control_path"] == str(ctl / "node1.ctl")
    assert oct(ctl.stat().st_mode & 0o777) == "0o700"
    with open(str(ctl / "node2.spec")) as handle:
        spec = json.load(handle)
    assert spec["master"] == ssh.of_kind("start")[1]
    assert spec["prepare"] == ssh.of_kind("prepare")[1]


def test_second_run_changes_nothing(ctl, ssh):
    apply(params(ctl), ssh)
    ssh.calls[:] = []
    result = apply(params(ctl), ssh)
    assert result["changed"] is False
    assert [r["state"] for r in result["relays"]] == ["running"] * 3
    assert ssh.kinds() == ["check", "verify"] * 3
    assert ssh.mutating() == []


def test_changed_options_restart_the_master_after_the_old_one_is_gone(ctl, ssh):
    apply(params(ctl), ssh)
    old = ssh.masters[str(ctl / "node2.ctl")]
    ssh.calls[:] = []
    nodes = [node("node1"), node("node2", rpc_socket="/var/tmp/other.sock"), node("node3")]
    result = apply(params(ctl, nodes), ssh)
    assert result["changed"] is True
    assert [(r["state"], r["reason"]) for r in result["relays"]] == [
        ("running", None), ("started", "its options changed"), ("running", None)]
    assert [kind for kind, argv in ssh.mutating()] == ["exit", "prepare", "start"]
    assert not ssh.alive(old) and ssh.masters[str(ctl / "node2.ctl")] != old


def test_a_new_node_restarts_every_master_with_one_more_forward(ctl, ssh):
    apply(params(ctl, [node("node1"), node("node2")]), ssh)
    ssh.calls[:] = []
    result = apply(params(ctl), ssh)
    assert [(r["node"], r["state"]) for r in result["relays"]] == [
        ("node1", "started"), ("node2", "started"), ("node3", "started")]
    assert [kind for kind, argv in ssh.mutating()] == ["exit", "prepare", "start"] * 2 + ["prepare", "start"]
    assert ssh.of_kind("start")[0].count("-R") == 2


def test_a_dead_master_is_restarted_and_its_stale_control_path_removed_first(ctl, ssh):
    apply(params(ctl), ssh)
    ssh.die(str(ctl / "node3.ctl"))           # its control socket file stays behind
    ssh.calls[:] = []
    removed = []
    real_start = ssh.start

    def start(argv, log_path):
        removed.append(not os.path.exists(option(argv, "-S")))
        return real_start(argv, log_path)

    ssh.start = start
    result = apply(params(ctl), ssh)
    assert [(r["state"], r["reason"]) for r in result["relays"]][2] == ("started", "not running")
    assert [kind for kind, argv in ssh.mutating()] == ["prepare", "start"]
    assert removed == [True]


def test_missing_sockets_on_the_node_restart_its_master(ctl, ssh):
    apply(params(ctl), ssh)
    ssh.missing["10.0.0.11"] = [PEER_DIR + "/node2.sock"]
    ssh.calls[:] = []

    def start(argv, log_path, real=ssh.start):
        ssh.missing.pop(argv[-1], None)          # the new master binds it again
        return real(argv, log_path)

    ssh.start = start
    result = apply(params(ctl), ssh)
    assert result["relays"][0]["state"] == "started"
    assert result["relays"][0]["reason"] == "missing on the node: %s/node2.sock" % PEER_DIR
    assert [kind for kind, argv in ssh.mutating()] == ["exit", "prepare", "start"]


def test_a_missing_controller_socket_restarts_the_master(ctl, ssh):
    apply(params(ctl), ssh)
    os.remove(str(ctl / "node1.sock"))
    result = apply(params(ctl), ssh)
    assert result["relays"][0]["reason"] == "its controller socket %s is missing" % (ctl / "node1.sock")


def test_check_mode_starts_and_writes_nothing(ctl, ssh):
    result = apply(params(ctl), ssh, check_mode=True)
    assert result["changed"] is True
    assert [r["state"] for r in result["relays"]] == ["started"] * 3
    assert ssh.calls == [] and not ctl.exists()


def test_check_mode_with_one_changed_node_reads_only(ctl, ssh):
    apply(params(ctl), ssh)
    ssh.calls[:] = []
    result = apply(params(ctl, [node("node1"), node("node2"), node("node3", ssh_port=2200)]), ssh, check_mode=True)
    assert result["changed"] is True
    assert [r["state"] for r in result["relays"]] == ["running", "running", "started"]
    assert ssh.mutating() == []
    assert result["diff"]["before"]["node3"] != result["diff"]["after"]["node3"]
    assert result["diff"]["before"]["node1"] == result["diff"]["after"]["node1"]


def test_diff_shows_the_command_lines(ctl, ssh):
    result = apply(params(ctl, [node("node1"), node("node2")]), ssh)
    assert result["diff"]["before"] == {"node1": "stopped", "node2": "stopped"}
    assert result["diff"]["after"]["node1"] == shlex.join(ssh.of_kind("start")[0])


# -- failures ---------------------------------------------------------------------------


def test_an_unreachable_node_fails_with_node_argv_and_stderr(ctl, ssh):
    ssh.unreachable["10.0.0.12"] = "ssh: connect to host 10.0.0.12 port 22: Connection refused\r\n"
    relay = Relay(params(ctl), runner=ssh)
    with pytest.raises(RelayError) as caught:
        relay.apply()
    err = caught.value
    assert err.msg == "cannot reach node2 over SSH (ssh: connect to host 10.0.0.12 port 22: Connection refused)"
    assert err.details["node"] == "node2"
    assert err.details["ssh_argv"] == ssh.of_kind("prepare")[-1]
    assert "Connection refused" in err.details["ssh_stderr"]
    assert [r["node"] for r in relay.relays] == ["node1"]      # what was done before the failure
    assert "start" not in ssh.kinds()[2:]


def test_allow_unreachable_warns_and_relays_the_others(ctl, ssh):
    ssh.unreachable["10.0.0.12"] = "ssh: connect to host 10.0.0.12 port 22: Connection timed out\r\n"
    result = apply(params(ctl, allow_unreachable=True), ssh)
    assert result["changed"] is True
    assert [(r["node"], r["state"]) for r in result["relays"]] == [
        ("node1", "started"), ("node2", "unreachable"), ("node3", "started")]
    assert result["relays"][1]["reason"] == ("cannot reach node2 over SSH (ssh: connect to host 10.0.0.12 port 22: "
                                             "Connection timed out)")
    assert result["warnings"] == [
        "cannot reach node2 over SSH (ssh: connect to host 10.0.0.12 port 22: Connection timed out): it has no "
        "relay until a run reaches it, and the other nodes find its socket %s/node2.sock unanswered" % PEER_DIR]
    # The others keep their forward to node2, so their command lines do not change when it comes back.
    assert PEER_DIR + "/node2.sock:%s/node2.sock" % ctl in ssh.of_kind("start")[0]
    assert result["diff"]["after"]["node2"] == "stopped"
    ssh.calls[:] = []
    again = apply(params(ctl, allow_unreachable=True), ssh)
    assert again["changed"] is False and len(again["warnings"]) == 1
    assert [r["state"] for r in again["relays"]] == ["running", "unreachable", "running"]
    del ssh.unreachable["10.0.0.12"]
    back = apply(params(ctl, allow_unreachable=True), ssh)
    assert back["changed"] is True and [r["state"] for r in back["relays"]] == ["running", "started", "running"]


def test_allow_unreachable_does_not_hide_other_failures(ctl, ssh):
    ssh.start_errors["10.0.0.11"] = "Error: remote port forwarding failed for listen path x\r\n"
    with pytest.raises(RelayError, match="cannot start the SSH relay to node1"):
        apply(params(ctl, allow_unreachable=True), ssh)


def test_a_refused_forward_fails_with_a_hint_and_leaves_no_spec(ctl, ssh):
    ssh.start_errors["10.0.0.11"] = ("Error: remote port forwarding failed for listen path "
                                     "/run/spdk-storage/peers/node2.sock\r\n")
    with pytest.raises(RelayError) as caught:
        apply(params(ctl), ssh)
    assert caught.value.msg.startswith(
        "cannot start the SSH relay to node1 (Error: remote port forwarding failed for listen path "
        "/run/spdk-storage/peers/node2.sock): the node's sshd must allow Unix socket forwarding")
    assert caught.value.details["ssh_argv"][1] == "-M"
    assert not (ctl / "node1.spec").exists()


def test_a_master_whose_node_cannot_be_checked_is_stopped_and_reported(ctl, ssh):
    real_run = ssh.run

    def run(argv):
        if "-S" in argv and "-O" not in argv:
            ssh.calls.append(("verify", argv))
            return 255, "", "mux_client_request_session: session request failed\r\n"
        return real_run(argv)

    ssh.run = run
    with pytest.raises(RelayError) as caught:
        apply(params(ctl), ssh)
    assert caught.value.msg == ("cannot check the relay's sockets on node1 over SSH "
                                "(mux_client_request_session: session request failed)")
    assert ssh.masters == {} and not (ctl / "node1.spec").exists()


def test_a_master_whose_sockets_do_not_appear_is_stopped_and_reported(ctl, ssh):
    ssh.missing["10.0.0.11"] = [PEER_DIR + "/node3.sock"]
    with pytest.raises(RelayError) as caught:
        apply(params(ctl), ssh)
    assert caught.value.msg == ("the SSH relay to node1 started but these sockets are not on the node: "
                                "%s/node3.sock" % PEER_DIR)
    assert ssh.masters == {} and not (ctl / "node1.spec").exists()


def test_a_master_that_does_not_stop_gets_sigterm(ctl, ssh):
    apply(params(ctl, [node("node1"), node("node2")]), ssh)
    stubborn = ssh.masters[str(ctl / "node1.ctl")]
    ssh.stubborn.add(stubborn)
    result = apply(params(ctl, [node("node1"), node("node2")], state="absent"), ssh)
    assert result["changed"] is True and ssh.killed == [stubborn]


def test_a_master_that_survives_sigterm_fails_the_run(ctl, ssh):
    apply(params(ctl, [node("node1"), node("node2")]), ssh)
    ssh.stubborn.add(ssh.masters[str(ctl / "node1.ctl")])
    ssh.kill = lambda pid, sig=None: None
    with pytest.raises(RelayError, match=r"the SSH relay master of node1 \(pid \d+\) did not stop"):
        apply(params(ctl, [node("node1"), node("node2")], state="absent"), ssh)


@pytest.mark.parametrize("nodes, message", [
    ([node("node1"), node("node1")], "node names must be unique; given more than once: node1"),
    ([node("../x1")], "node name '../x1' cannot name a socket file"),
    ([node("-o1")], "node name '-o1' cannot name a socket file"),
    ([node("node1", rpc_socket="127.0.0.1:5260")], "the rpc_socket of node1, 127.0.0.1:5260 must be an absolute path"),
    ([node("node1", rpc_socket="/var/tmp/a:b.sock")], "contains ':'"),
    ([node("node1"), node("node2", ssh_host="10.0.0.11")],
     "nodes node1 and node2 are the same host (10.0.0.11 port 22): they would share peer_dir"),
])
def test_bad_nodes_are_refused_before_any_ssh(ctl, ssh, nodes, message):
    with pytest.raises(RelayError) as caught:
        apply(params(ctl, nodes), ssh)
    assert message in caught.value.msg
    assert ssh.calls == []


def test_a_control_dir_too_long_for_the_control_socket_is_refused(tmp_path, ssh):
    node_name = "node1"
    # <control_dir>/node1.ctl of 91 bytes: fits a socket path, but not ssh's temporary name 17 bytes longer.
    control_dir = "/" + "c" * (91 - len("/node1.ctl") - 1)
    assert len(control_dir + "/node1.ctl") == 91
    with pytest.raises(RelayError) as caught:
        apply(params(control_dir, [node(node_name)]), ssh)
    assert caught.value.msg == (
        "the control path of node1, %s/node1.ctl is 91 bytes, more than 90 (ssh binds it under a name 17 bytes "
        "longer, and a Unix socket path can have at most 107); set a shorter control_dir (or node names)"
        % control_dir)
    assert ssh.calls == []
    control_dir = control_dir[:-1]
    apply(params(control_dir, [node(node_name)], state="absent"), ssh)    # 90 bytes: accepted


def test_a_peer_dir_too_long_is_refused(ctl, ssh):
    with pytest.raises(RelayError, match=r"the peer socket of node1, /p+/node1.sock is 108 bytes, more than 107 \(a Unix socket path can "
                                         r"have at most 107\)$"):
        apply(params(ctl, [node("node1")], peer_dir="/" + "p" * 96), ssh)


def test_zero_timeout_is_refused(ctl, ssh):
    with pytest.raises(RelayError, match="timeout must be more than 0"):
        apply(params(ctl, timeout=0), ssh)


# -- absent -----------------------------------------------------------------------------


def test_absent_stops_the_masters_and_removes_their_files(ctl, ssh):
    apply(params(ctl), ssh)
    ssh.calls[:] = []
    result = apply(params(ctl, state="absent"), ssh)
    assert result["changed"] is True
    assert [r["state"] for r in result["relays"]] == ["stopped"] * 3
    assert ssh.kinds() == ["check", "exit"] * 3
    assert ssh.masters == {} and os.listdir(str(ctl)) == [".lock"]
    again = apply(params(ctl, state="absent"), ssh)
    assert again["changed"] is False and [r["state"] for r in again["relays"]] == ["absent"] * 3


def test_absent_without_nodes_stops_every_master_in_control_dir(ctl, ssh):
    apply(params(ctl, [node("node1"), node("node2")]), ssh)
    ssh.die(str(ctl / "node2.ctl"))
    result = apply(params(ctl, None, state="absent"), ssh)
    assert [(r["node"], r["state"]) for r in result["relays"]] == [("node1", "stopped"), ("node2", "absent")]
    assert result["changed"] is True and os.listdir(str(ctl)) == [".lock"]


def test_absent_with_nothing_there_is_safe(ctl, ssh):
    result = apply(params(ctl, None, state="absent"), ssh)
    assert result["changed"] is False and result["relays"] == [] and ssh.calls == []
    result = apply(params(ctl, state="absent"), ssh)
    assert result["changed"] is False and ssh.calls == []    # no control path: no ssh needed


def test_absent_in_check_mode_stops_nothing(ctl, ssh):
    apply(params(ctl), ssh)
    files = sorted(os.listdir(str(ctl)))
    result = apply(params(ctl, state="absent"), ssh, check_mode=True)
    assert result["changed"] is True and [r["state"] for r in result["relays"]] == ["stopped"] * 3
    assert len(ssh.masters) == 3 and sorted(os.listdir(str(ctl))) == files


# -- SshRunner, for real ----------------------------------------------------------------

DAEMON = r"""
import os, sys, time
print("parent says hello", flush=True)
if os.fork() == 0:
    os.setsid()
    print("daemon-pid", os.getpid(), flush=True)
    sys.stderr.write("daemon keeps stderr open\n")
    time.sleep(float(sys.argv[1]))
    os._exit(0)
sys.stderr.write("forked\n")
"""


def test_start_returns_when_ssh_forks_although_the_daemon_keeps_its_output_open(tmp_path):
    log = str(tmp_path / "node1.log")
    runner = SshRunner(timeout=20)
    begin = time.monotonic()
    rc, err = runner.start([sys.executable, "-c", DAEMON, "30"], log)
    took = time.monotonic() - begin
    daemon_pid = None
    try:
        for _attempt in range(100):
            with open(log) as handle:
                text = handle.read()
            if "daemon-pid " in text:
                daemon_pid = int(text.split("daemon-pid ")[1].split()[0])
                break
            time.sleep(0.02)
        assert rc == 0 and took < 10
        assert "parent says hello" in err and "forked" in err
        assert text.startswith("# ") and sys.executable in text.splitlines()[0]
        assert daemon_pid is not None and runner.alive(daemon_pid)
    finally:
        if daemon_pid:
            runner.kill(daemon_pid)


def test_a_start_that_hangs_is_killed_at_the_timeout(tmp_path):
    runner = SshRunner(timeout=1)
    rc, err = runner.start([sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(30)"],
                           str(tmp_path / "x.log"))
    assert rc is None and "waiting" in err


def test_run_reports_a_missing_executable_and_a_timeout(tmp_path):
    runner = SshRunner(timeout=1)
    rc, out, err = runner.run([str(tmp_path / "no-ssh"), "-O", "check", "h"])
    assert rc == 255 and "cannot run" in err
    rc, out, err = runner.run([sys.executable, "-c", "import time; time.sleep(30)"])
    assert rc is None


def test_alive_tells_a_running_process_from_a_finished_one():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert SshRunner.alive(proc.pid)
    finally:
        proc.kill()
    time.sleep(0.2)
    assert not SshRunner.alive(proc.pid)          # a zombie until waited for: not alive
    proc.wait()
    assert not SshRunner.alive(proc.pid)


def test_relay_files_are_named_by_the_node(ctl, ssh):
    apply(params(ctl, [node("node1"), node("node2")]), ssh)
    assert sorted(os.listdir(str(ctl))) == sorted(
        [".lock"] + ["node%d%s" % (i, suffix) for i in (1, 2) for suffix in spdk_relay.CONTROL_SUFFIXES])


def test_a_second_run_waits_for_the_first(ctl, ssh):
    ctl.mkdir()
    with open(str(ctl / ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = []
        worker = threading.Thread(target=lambda: done.append(apply(params(ctl), ssh)))
        worker.start()
        worker.join(0.5)
        assert done == [] and ssh.calls == []
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join(10)
    assert done and done[0]["changed"] is True

"""spdk_rpc_relay: the module's options, defaults, check mode, diff and failure results.

OpenSSH is played by relay_fakes.FakeSsh (the relay's logic: module_utils/test_spdk_relay.py).
"""
import pathlib
import shutil
import tempfile
from unittest import mock

import pytest

from tests.unit.module_runs import run_main
from tests.unit.relay_fakes import FakeSsh, option

from ansible_collections.spdk.storage.plugins.module_utils import spdk_relay
from ansible_collections.spdk.storage.plugins.modules import spdk_rpc_relay

NODES = [{"name": "node1", "ssh_host": "192.0.2.11"}, {"name": "node2", "ssh_host": "192.0.2.12"}]


def run(args, ssh, check_mode=False, diff=False):
    """The module's result dict (``failed`` set when it failed), with ``ssh`` playing OpenSSH."""
    with mock.patch.object(spdk_relay, "SshRunner", lambda timeout: ssh):
        return run_main(spdk_rpc_relay.main, args, check_mode, diff)


@pytest.fixture
def ssh():
    return FakeSsh()


@pytest.fixture
def home(monkeypatch):
    """A short HOME: the default control_dir lies below it, and socket paths are short."""
    path = tempfile.mkdtemp(prefix="relay-home-", dir="/tmp")
    monkeypatch.setenv("HOME", path)
    yield pathlib.Path(path)
    shutil.rmtree(path)


def test_defaults_control_dir_in_home_peer_dir_in_run_and_the_default_target_socket(home, ssh):
    result = run({"nodes": NODES}, ssh)
    assert not result.get("failed"), result.get("msg")
    control_dir = str(home / ".cache" / "spdk-storage" / "relay")
    assert result["changed"] is True
    assert result["control_dir"] == control_dir
    assert result["peer_dir"] == "/run/spdk-storage/peers"
    start = ssh.of_kind("start")[0]
    assert start[0] == "ssh" and option(start, "-p") == "22" and "-l" not in start and "-i" not in start
    assert option(start, "-L") == control_dir + "/node1.sock:/var/tmp/spdk.sock"
    assert option(start, "-R") == "/run/spdk-storage/peers/node2.sock:%s/node2.sock" % control_dir
    assert option(start, "-S") == control_dir + "/node1.ctl"
    assert "diff" not in result


def test_a_control_dir_with_a_variable_is_expanded(home, ssh, monkeypatch):
    monkeypatch.setenv("RELAY_BASE", str(home / "r"))
    result = run({"nodes": NODES, "control_dir": "$RELAY_BASE/ctl"}, ssh)
    assert result["control_dir"] == str(home / "r" / "ctl")


def test_nodes_are_required_to_be_present(home, ssh):
    result = run({}, ssh)
    assert result["failed"] and "nodes" in result["msg"]
    assert ssh.calls == []


def test_ssh_host_is_required(home, ssh):
    result = run({"nodes": [{"name": "node1"}]}, ssh)
    assert result["failed"] and "ssh_host" in result["msg"]


def test_check_mode_and_diff(home, ssh):
    result = run({"nodes": NODES}, ssh, check_mode=True, diff=True)
    assert result["changed"] is True
    assert [r["state"] for r in result["relays"]] == ["started", "started"]
    assert result["diff"]["before"] == {"node1": "stopped", "node2": "stopped"}
    assert result["diff"]["after"]["node2"].startswith("ssh -M -S ")
    assert ssh.calls == [] and not (home / ".cache").exists()


def test_run_twice_then_absent(home, ssh):
    assert run({"nodes": NODES}, ssh)["changed"] is True
    assert run({"nodes": NODES}, ssh)["changed"] is False
    result = run({"state": "absent"}, ssh)
    assert result["changed"] is True and [r["state"] for r in result["relays"]] == ["stopped", "stopped"]
    assert run({"state": "absent"}, ssh)["changed"] is False


def test_a_failure_names_the_node_the_command_and_what_ssh_said(home, ssh):
    ssh.unreachable["192.0.2.12"] = "ssh: connect to host 192.0.2.12 port 22: No route to host\r\n"
    result = run({"nodes": NODES}, ssh)
    assert result["failed"] is True
    assert result["msg"] == "cannot reach node2 over SSH (ssh: connect to host 192.0.2.12 port 22: No route to host)"
    assert result["node"] == "node2"
    assert result["ssh_argv"][-2] == "192.0.2.12"
    assert result["ssh_stderr"].startswith("ssh: connect to host")
    assert [r["node"] for r in result["relays"]] == ["node1"]


def test_an_unexpected_error_is_reported_as_a_bug(home, ssh):
    with mock.patch.object(spdk_relay.Relay, "present", side_effect=KeyError("boom")):
        result = run({"nodes": NODES}, ssh)
    assert result["failed"] is True
    assert result["msg"].startswith("spdk_rpc_relay stopped on an unexpected error (KeyError: 'boom')")
    assert "Traceback" in result["exception"]


def test_an_unexpected_error_reports_the_relays_as_far_as_the_run_got(home, ssh):
    with mock.patch.object(spdk_relay.Relay, "present", side_effect=KeyError("boom")):
        result = run({"nodes": NODES}, ssh)
    assert result["failed"] is True and result["relays"] == [] and "rpc_calls" not in result


def test_an_unreachable_node_is_a_warning_when_allowed(home, ssh):
    ssh.unreachable["192.0.2.12"] = "ssh: connect to host 192.0.2.12 port 22: No route to host\r\n"
    result = run({"nodes": NODES, "allow_unreachable": True}, ssh)
    assert not result.get("failed") and result["changed"] is True
    assert [r["state"] for r in result["relays"]] == ["started", "unreachable"]
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("cannot reach node2 over SSH")

"""playbooks/delete_volume.yml end to end on the three nodes of inventories/emulated.

The nodes keep everything under a private temporary root and use a block of ports of this test
process (extra vars), so the demo, Molecule and other sessions are not disturbed. The inventory runs
the emulator, or the real spdk_tgt that SPDK_TGT names.

The volume ``dvol`` first has replicas on node1, node2 and node3 (engine on node1) and an engine
snapshot ``s1`` on each. Then the inventory drops node3 (replica_nodes [node1, node2]) and
create_volume.yml takes node3's replica out of the engine: ``dvol-node3`` stays on node3 with its
snapshot and its export to node1, which is what a replica a rebuild replaced looks like once the
inventory follows the rebuild's advice. delete_volume.yml must delete it too, plan it all in check
mode without changing anything, and change nothing when run again. Before that, spdk_info with
``gather: [orphans]`` must name node3's replica, and nothing on node1 and node2.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.destructive]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
INVENTORY = os.path.join(REPO, "inventories", "emulated", "hosts.yml")
PLAYBOOKS = os.path.join(REPO, "playbooks")
SUPERVISOR = os.path.join(REPO, "roles", "spdk_tgt", "files", "spdk_tgt_supervisor.py")
NODES = ("node1", "node2", "node3")
# Per host: ok, changed, unreachable, failed.
RECAP_LINE = re.compile(r"^(node\d)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# 8 ports per node of this process, away from the demo's and Molecule's 4620-4699, the module-level
# emulated tests' blocks (21000-32767) and the rebuild playbook test's (5000-12999), and below the ports
# Linux gives outgoing connections (volume_helpers.EPHEMERAL_FIRST).
FIRST_PORT = 13000 + (os.getpid() % 1000) * 8

THREE = {"name": "dvol", "size": "16MiB", "disk": "disk1", "replica_nodes": list(NODES),
         "engine_node": "node1", "frontend": "nvmf", "allowed_hosts": ["{{ spdk_client_host_nqn }}"]}
TWO = dict(THREE, replica_nodes=["node1", "node2"])


class Inventory(object):
    """inventories/emulated with its nodes' files under ``root``; runs playbooks on it."""

    def __init__(self, root, env):
        self.root = root
        self.env = env
        self.count = 0

    def run(self, playbook, check=False, **extra):
        """ansible-playbook; every host must succeed. Returns ({host: changed}, stdout)."""
        self.count += 1
        extra_file = os.path.join(self.root, "extra-%d.json" % self.count)
        with open(extra_file, "w") as handle:
            json.dump(dict(extra, spdk_emulated_root=self.root,
                           spdk_port_range="%d-%d" % (FIRST_PORT, FIRST_PORT + 7)), handle)
        command = [os.path.join(BIN_DIR, "ansible-playbook"), "-i", INVENTORY, os.path.join(PLAYBOOKS, playbook),
                   "-e", "@" + extra_file] + (["--check"] if check else [])
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300, check=False)
        hosts = RECAP_LINE.findall(done.stdout)
        assert done.returncode == 0 and hosts, "%s%s failed (rc %d):\n%s" % (
            playbook, " --check" if check else "", done.returncode, (done.stdout + done.stderr)[-8000:])
        assert [h for h in hosts if h[4] != "0"] == [], done.stdout[-8000:]
        return {host: int(changed) for host, _ok, changed, _unreachable, _failed in hosts}, done.stdout

    def objects(self, node):
        """What ``node``'s target holds of the volume: lvols, exports, RAIDs, controllers."""
        client = SpdkRpcClient(os.path.join(self.root, node, "spdk.sock"), timeout=10)
        try:
            bdevs, subsystems, raids, controllers = client.batch([
                ("bdev_get_bdevs", None), ("nvmf_get_subsystems", None),
                ("bdev_raid_get_bdevs", {"category": "all"}), ("bdev_nvme_get_controllers", None)])
        finally:
            client.close()
        names = [alias.split("/", 1)[1] for b in bdevs for alias in b.get("aliases") or [] if "/" in alias]
        names += [s["nqn"] for s in subsystems] + [r["name"] for r in raids] + [c["name"] for c in controllers]
        return sorted(n for n in names if "dvol" in n)

    def everything(self):
        return {node: self.objects(node) for node in NODES}

    def stop(self):
        """Stop the nodes' targets with the role's own supervisor (SIGTERM, SIGKILL after 5 s)."""
        binary = os.environ.get("SPDK_TGT") or os.path.join(REPO, "tests", "emulator", "spdk_tgt")
        for node in NODES:
            home = os.path.join(self.root, node)
            subprocess.run([sys.executable, SUPERVISOR, "stop", "--pid-file", os.path.join(home, "spdk_tgt.pid"),
                            "--socket", os.path.join(home, "spdk.sock"), "--binary", binary, "--grace", "5"],
                           capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def dropped(module_ansible_runner):
    """dvol on node1-3 with snapshot s1, then node3's replica dropped from the engine (still on node3)."""
    root = tempfile.mkdtemp(prefix="spdk-dv-", dir="/tmp")   # AF_UNIX socket paths must stay short
    site = Inventory(root, dict(module_ansible_runner.env(), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false"))
    try:
        site.run("create_volume.yml", spdk_volumes=[THREE])
        site.run("snapshot_volume.yml", spdk_volumes=[THREE], volume="dvol", snapshot="s1")
        site.run("create_volume.yml", spdk_volumes=[TWO])
        yield site
    finally:
        site.stop()
        shutil.rmtree(root, ignore_errors=True)


ORPHANS_PLAYBOOK = [{
    "name": "Read what nothing uses on every node", "hosts": "storage", "gather_facts": False,
    "tasks": [
        {"name": "Read the orphans",
         "spdk.storage.spdk_info": {"gather": ["orphans"], "rpc_socket": "{{ spdk_rpc_endpoint }}"},
         "register": "info"},
        {"name": "Save them", "ansible.builtin.copy": {
            "dest": "{{ spdk_emulated_root }}/orphans-{{ inventory_hostname }}.json",
            "content": "{{ info.orphans | to_json }}", "mode": "0644"}}]}]


def test_spdk_info_reports_the_replica_the_engine_dropped_as_an_orphan(dropped):
    playbook = os.path.join(dropped.root, "orphans.yml")
    with open(playbook, "w") as handle:
        json.dump(ORPHANS_PLAYBOOK, handle)   # JSON is YAML
    dropped.run(playbook)
    orphans = {}
    for node in NODES:
        with open(os.path.join(dropped.root, "orphans-%s.json" % node)) as handle:
            orphans[node] = json.load(handle)
    nothing = {"replicas": [], "exports": [], "controllers": []}
    # node1: its replica is a member of the engine, node2's controller too; node2: node1 is connected.
    assert orphans["node1"] == nothing and orphans["node2"] == nothing
    [replica] = orphans["node3"]["replicas"]
    assert (replica["name"], replica["disk"], replica["export"]) == (
        "dvol-node3", "disk1", "nqn.2026-01.io.spdk-storage:dvol-node3")
    assert "no host is connected" in replica["reason"]
    assert orphans["node3"]["exports"] == [] and orphans["node3"]["controllers"] == []


def test_delete_volume_deletes_a_replica_on_a_node_the_inventory_no_longer_lists(dropped):
    before = dropped.everything()
    nqn = "nqn.2026-01.io.spdk-storage:"
    assert before["node3"] == ["dvol-node3", "dvol-node3-snap-s1", nqn + "dvol-node3"], \
        "node3's replica must be left out of the engine but kept, with its snapshot and export"
    assert nqn + "dvol" in before["node1"] and "dvol" in before["node1"]   # the engine and its frontend

    changed, output = dropped.run("delete_volume.yml", check=True, spdk_volumes=[TWO], volume="dvol")
    assert changed["node3"] > 0 and changed["node2"] > 0 and changed["node1"] > 0, output[-6000:]
    assert "dvol-node3 is on node3, which is not in the replica_nodes of dvol" in output
    assert dropped.everything() == before, "check mode changes nothing"

    changed, output = dropped.run("delete_volume.yml", spdk_volumes=[TWO], volume="dvol")
    assert changed["node3"] > 0, output[-6000:]
    assert dropped.everything() == {"node1": [], "node2": [], "node3": []}

    changed, output = dropped.run("delete_volume.yml", spdk_volumes=[TWO], volume="dvol")
    assert changed == {"node1": 0, "node2": 0, "node3": 0}, output[-6000:]

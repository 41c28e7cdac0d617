"""playbooks/rebuild_replica.yml end to end: three emulated nodes of inventories/emulated, offline strategy.

The nodes are the inventory's node1-3 (127.0.0.1-3) with everything they keep under a private
temporary root and a block of ports of this test process (extra vars, as the Molecule scenarios
override the inventory), so the demo, Molecule and other test sessions are not disturbed.

1. prepare: create_volume.yml makes ``rbvol`` (replicas on node1 and node2, engine on node1 with a
   frontend); data goes in through the frontend, an engine snapshot is taken, more data goes in, the
   frontend is read whole (its sha256 is what every replica must hold); create_volume.yml again with
   ``frontend: none`` leaves the engine without I/O, as the offline strategy needs.
2. rebuild_replica.yml rebuilds node2's replica on node3 from node1's, offline; it runs twice and the
   second run changes nothing. The first run removed node2's replica (lvols, export, node1's controller)
   and merged the system snapshot away on node1 and node3.
3. rebuild_replica.yml rebuilds node1's replica (the engine node's own) on node2 from node3's, back onto
   the node whose replica step 2 removed; it removes node1's replica. recover_node.yml of node1 with the
   inventory not updated (still node1 and node3) is then refused and leaves the new replica in the RAID.
4. verify: create_volume.yml with the new replica list brings the frontend back; replica_checksums.yml
   deletes the engine, reads each replica through its own export (after the superblock area) and the
   frontend, and the test compares all of them with the sha256 of step 1.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from tests.integration import playbook_tasks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
# The inventory's nodes run the emulator whatever SPDK_TGT says (host I/O needs its spdk_io).
EMULATOR = os.path.join(REPO, "tests", "emulator", "spdk_tgt")
INVENTORY = os.path.join(REPO, "inventories", "emulated", "hosts.yml")
PLAYBOOKS = os.path.join(REPO, "playbooks")
RECAP = re.compile(r"^(node\d)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# 8 ports per node of this process, away from the demo's and Molecule's 4620-4699 and from the
# module-level emulated tests' blocks (21000-32767), and below the ports Linux gives outgoing
# connections (volume_helpers.EPHEMERAL_FIRST).
PORT_BASE = 5000 + (os.getpid() % 1000) * 8
PORT_RANGE = "%d-%d" % (PORT_BASE, PORT_BASE + 7)

VOLUME = {"name": "rbvol", "size": "16MiB", "disk": "disk1", "replica_nodes": ["node1", "node2"],
          "engine_node": "node1", "frontend": "nvmf", "allowed_hosts": ["{{ spdk_client_host_nqn }}"]}
OFFLINE = dict(VOLUME, frontend="none")
REBUILT = dict(VOLUME, replica_nodes=["node1", "node3"])
REQUEST = {"volume": "rbvol", "source_node": "node1", "destination_node": "node3", "replaced_node": "node2",
           "rebuild_strategy": "offline"}
BACK = {"volume": "rbvol", "source_node": "node3", "destination_node": "node2", "replaced_node": "node1",
        "rebuild_strategy": "offline"}
REBUILT_BACK = dict(VOLUME, replica_nodes=["node2", "node3"])


def create_volume(volume):
    return {"name": "Create or change %s" % volume["name"],
            "ansible.builtin.import_playbook": os.path.join(PLAYBOOKS, "create_volume.yml"),
            "vars": {"spdk_volumes": [volume]}}


def io_task(what, **io):
    return playbook_tasks.io_task("rbvol", what, **io)


def prepare_playbook(root):
    mib = 1 << 20
    return [
        create_volume(VOLUME),
        {"name": "Write through the frontend around an engine snapshot", "hosts": "node1",
         "gather_facts": False, "vars": {"spdk_volumes": [VOLUME]},
         "tasks": [io_task("Write 6 MiB", action="write", offset=0, length=6 * mib, seed="rb-a")]},
        {"name": "Snapshot the volume", "ansible.builtin.import_playbook": os.path.join(PLAYBOOKS, "snapshot_volume.yml"),
         "vars": {"spdk_volumes": [VOLUME], "volume": "rbvol", "snapshot": "s1", "snapshot_action": "create"}},
        {"name": "Write after the snapshot and remember the volume", "hosts": "node1",
         "gather_facts": False, "vars": {"spdk_volumes": [VOLUME]},
         "tasks": [io_task("Write 4 MiB", action="write", offset=4 * mib, length=4 * mib, seed="rb-b"),
                   io_task("Read the volume", action="read", length=16 * mib),
                   {"name": "Save its sha256", "ansible.builtin.copy": {
                       "dest": os.path.join(root, "written.sha256"), "content": "{{ spdk_io_sha256 }}",
                       "mode": "0644"}}]},
        create_volume(OFFLINE),
    ]


def verify_playbook(root, volume):
    return [
        create_volume(volume),
        {"name": "Compare every replica with the frontend", "hosts": "node1", "gather_facts": False,
         "vars_files": [os.path.join(PLAYBOOKS, "vars", "conventions.yml")],
         "vars": {"spdk_volumes": [volume]},
         "tasks": [{"name": "Checksum the frontend and each replica",
                    "ansible.builtin.include_tasks": os.path.join(PLAYBOOKS, "tasks", "replica_checksums.yml"),
                    "vars": {"vol": volume}},
                   {"name": "Save the checksums", "ansible.builtin.copy": {
                       "dest": os.path.join(root, "verified.json"), "mode": "0644",
                       "content": "{{ {'frontend': spdk_frontend_sha256, 'replicas': spdk_replica_sha256} | to_json }}"}}]},
    ]


class Site(object):
    """The emulated inventory pointed at a private root; ansible-playbook runs on it."""

    def __init__(self, root, env):
        self.root = root
        self.env = env
        self.runs = 0

    def extra_vars(self, **more):
        """Per-run extra vars: the private root and ports always, the rest for rebuild_replica.yml."""
        self.runs += 1
        path = os.path.join(self.root, "vars-%d.json" % self.runs)
        with open(path, "w") as handle:
            json.dump(dict({"spdk_emulated_root": self.root, "spdk_port_range": PORT_RANGE}, **more), handle)
        return path

    def write_playbook(self, name, plays):
        path = os.path.join(self.root, name)
        with open(path, "w") as handle:
            json.dump(plays, handle, indent=1)   # JSON is YAML
        return path

    def play(self, playbook, refused=False, **extra):
        """Run a playbook; return {node: changed count} and the output. Any failure fails the test; with
        ``refused`` the run must fail instead, and its output is returned."""
        command = [os.path.join(BIN_DIR, "ansible-playbook"), "-i", INVENTORY, playbook,
                   "-e", "@" + self.extra_vars(**extra)]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=240, check=False)
        output = done.stdout + done.stderr
        if refused:
            assert done.returncode != 0, output[-8000:]
            return output
        recap = RECAP.findall(done.stdout)
        assert done.returncode == 0 and recap, "%s failed (rc %d):\n%s" % (
            os.path.basename(playbook), done.returncode, output[-8000:])
        assert all(int(failed) == 0 for _node, _ok, _changed, _unreachable, failed in recap), output[-8000:]
        return {node: int(changed) for node, _ok, changed, _unreachable, _failed in recap}, done.stdout

    def call(self, node, method, **params):
        """One RPC to a node's target (its socket under the private root)."""
        client = SpdkRpcClient(os.path.join(self.root, node, "spdk.sock"), timeout=30.0)
        try:
            return client.call(method, params or None)
        finally:
            client.close()

    def lvols(self, node):
        return sorted(lv["name"] for lv in self.call(node, "bdev_lvol_get_lvols"))

    def exports(self, node):
        return sorted(s["nqn"].split(":")[-1] for s in self.call(node, "nvmf_get_subsystems")
                      if s.get("subtype") != "Discovery")

    def controllers(self, node):
        return sorted(c["name"] for c in self.call(node, "bdev_nvme_get_controllers"))

    def stop_nodes(self):
        """Kill the nodes' targets (each leads its own session: setsid in the role's supervisor)."""
        for node in ("node1", "node2", "node3"):
            try:
                with open(os.path.join(self.root, node, "spdk_tgt.pid")) as handle:
                    os.killpg(int(handle.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture
def site(ansible_runner):
    assert os.access(EMULATOR, os.X_OK), "the emulated inventory needs the emulator %s" % EMULATOR
    root = tempfile.mkdtemp(prefix="spdk-rb-", dir="/tmp")   # AF_UNIX socket paths must stay short
    env = dict(ansible_runner.env(), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false")
    site = Site(root, env)
    yield site
    site.stop_nodes()
    shutil.rmtree(root, ignore_errors=True)


def test_offline_rebuild_playbook_copies_the_volume_exactly_and_a_second_run_changes_nothing(site):
    site.play(site.write_playbook("prepare.yml", prepare_playbook(site.root)))
    with open(os.path.join(site.root, "written.sha256")) as handle:
        written = handle.read().strip()
    rebuild = os.path.join(PLAYBOOKS, "rebuild_replica.yml")

    changed, output = site.play(rebuild, spdk_volumes=[OFFLINE], **REQUEST)
    assert changed["node1"] > 0
    assert "rbvol: offline rebuild of rbvol-node3 from rbvol-node1" in output
    assert "rbvol-node3 is RW, engine healthy (offline rebuild)" in output
    assert "Set replica_nodes of rbvol to ['node1', 'node3']" in output
    # The replaced replica is gone from node2, with its export and node1's controller to it; the system
    # snapshot of the copy was merged away on both replicas, which keep the engine snapshot s1 only.
    assert site.lvols("node2") == [] and site.exports("node2") == []
    assert site.controllers("node1") == ["rbvol-node3"]
    assert site.lvols("node1") == ["rbvol-node1", "rbvol-node1-snap-s1"]
    assert site.lvols("node3") == ["rbvol-node3", "rbvol-node3-snap-s1"]
    assert "replaced replica rbvol-node2: removed" in output

    changed, output = site.play(rebuild, spdk_volumes=[OFFLINE], **REQUEST)
    assert changed == {"node1": 0, "node3": 0}, output[-6000:]   # node2 (replaced) has no task
    assert "state done" in output and "replaced replica rbvol-node2: absent" in output

    # Back onto node2, replacing the engine node's own replica: node2's old replica is not in the way.
    changed, output = site.play(rebuild, spdk_volumes=[dict(OFFLINE, replica_nodes=["node1", "node3"])], **BACK)
    assert "rbvol-node2 is RW, engine healthy (offline rebuild)" in output
    assert "replaced replica rbvol-node1: removed" in output
    assert site.lvols("node1") == [] and site.controllers("node1") == ["rbvol-node2", "rbvol-node3"]
    assert site.lvols("node2") == ["rbvol-node2", "rbvol-node2-snap-s1"]
    assert site.lvols("node3") == ["rbvol-node3", "rbvol-node3-snap-s1"]

    # Node1 recovered with an inventory never updated after this rebuild (still node1 and node3): its replica
    # is created and exported again, but the engine step is refused before it takes rbvol-node2 out of the
    # RAID (the engine node's rebuild journal).
    output = site.play(os.path.join(PLAYBOOKS, "recover_node.yml"), refused=True, node="node1",
                       spdk_volumes=[dict(OFFLINE, replica_nodes=["node1", "node3"])])
    assert "are the set before it" in output and "list rbvol-node2 among the replicas instead of rbvol-node1" in output, \
        output[-6000:]
    assert site.controllers("node1") == ["rbvol-node2", "rbvol-node3"]

    site.play(site.write_playbook("verify.yml", verify_playbook(site.root, REBUILT_BACK)))
    with open(os.path.join(site.root, "verified.json")) as handle:
        verified = json.load(handle)
    assert verified["frontend"] == written
    assert verified["replicas"] == {"rbvol-node2": written, "rbvol-node3": written}

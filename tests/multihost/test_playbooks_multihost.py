"""The five playbooks over SSH on the multi-host topology, with the data checked at every step.

Every node of scripts/multihost.sh is its own host: Ansible reaches it over SSH, its spdk_tgt (the
emulator, or real SPDK when SPDK_TGT is set) listens on /var/tmp/spdk.sock in a /var/tmp no other
node sees, and nothing listens for SPDK RPC on the network. Multi-node modules on the engine node
reach the replica nodes' targets through the SSH RPC relay (inventories/multihost sets
spdk_rpc_relay). The tests run in order on one volume:

1. create_volume.yml makes ``mhvol`` (replicas on node1 and node2, engine on node1); a second run
   changes nothing; data written through the frontend reads back.
2. snapshot_volume.yml creates a snapshot on both replicas (host I/O paused briefly), deletes
   another one, and reverts the volume: the frontend then holds exactly the bytes of the snapshot.
3. node2's target is killed while the volume is written; recover_node.yml brings node2 back and the
   engine rebuilds its replica; every replica then holds what the frontend holds.
4. rebuild_replica.yml rebuilds node2's replica on node3 (online) and removes node2's.
5. delete_volume.yml removes the volume from every node.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import pytest

from tests.integration import playbook_tasks
from tests.multihost.multihost_topology import BIN_DIR, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.multihost]

PLAYBOOKS = os.path.join(REPO, "playbooks")
RECAP = re.compile(r"^(node\d)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
MIB = 1 << 20

VOLUME = {"name": "mhvol", "size": "16MiB", "disk": "disk1", "replica_nodes": ["node1", "node2"],
          "engine_node": "node1", "frontend": "nvmf", "allowed_hosts": ["{{ spdk_client_host_nqn }}"]}
REBUILT = dict(VOLUME, replica_nodes=["node1", "node3"])
PEER_SOCKET = "/run/spdk-storage/peers/%s.sock"
# Sends one JSON-RPC call to a Unix socket and prints the result (the Molecule scenario's helper).
RPC_CALL = os.path.join(REPO, "extensions", "molecule", "three_nodes", "files", "spdk_rpc_call.py")


def io_task(what, **io):
    """Host I/O on the volume's frontend, run on the engine node (over SSH)."""
    return playbook_tasks.io_task("mhvol", what, **io)


def imported(playbook, **variables):
    return {"name": "Run %s" % playbook, "ansible.builtin.import_playbook": os.path.join(PLAYBOOKS, playbook),
            "vars": variables}


def snapshot_action(action, snapshot):
    return imported("snapshot_volume.yml", spdk_volumes=[VOLUME], volume="mhvol", snapshot=snapshot,
                    snapshot_action=action)


def on_engine_node(name, tasks, volume=None):
    return {"name": name, "hosts": "node1", "gather_facts": False,
            "vars_files": [os.path.join(PLAYBOOKS, "vars", "conventions.yml")],
            "vars": {"spdk_volumes": [volume or VOLUME]}, "tasks": tasks}


def save(path, expression):
    """A task that writes a JSON value to the controller's ``path``."""
    return {"name": "Save %s" % os.path.basename(path), "delegate_to": "localhost",
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "ansible.builtin.copy": {"dest": path, "content": "{{ %s | to_json }}" % expression, "mode": "0644"}}


def read_volume(length=16 * MIB):
    return io_task("Read the whole volume", action="read", length=length)


class Site(object):
    """ansible-playbook runs against inventories/multihost, with files of this test in ``root``."""

    def __init__(self, topology, root):
        self.topology = topology
        self.root = root
        self.runs = 0

    def path(self, name):
        return os.path.join(self.root, name)

    def play(self, plays, extra=None):
        """Run ``plays`` (a list of plays); return ({node: changed}, stdout)."""
        self.runs += 1
        playbook = self.path("play-%d.yml" % self.runs)
        with open(playbook, "w") as handle:
            json.dump(plays, handle, indent=1)   # JSON is YAML
        command = [os.path.join(BIN_DIR, "ansible-playbook"), "-i", self.topology.inventory, playbook]
        if extra:
            extra_file = self.path("extra-%d.json" % self.runs)
            with open(extra_file, "w") as handle:
                json.dump(extra, handle)
            command += ["-e", "@" + extra_file]
        env = dict(self.topology.ansible_env(), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false")
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
                              stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        recap = RECAP.findall(done.stdout)
        assert done.returncode == 0 and recap, "ansible-playbook failed (rc %d):\n%s" % (done.returncode, output[-8000:])
        return {node: int(changed) for node, _ok, changed, _unreachable, _failed in recap}, done.stdout

    def load(self, name):
        with open(self.path(name)) as handle:
            return json.load(handle)

    def rpc(self, node, method, params=None):
        """One RPC to ``node``'s target, sent on that node (through its SSH session)."""
        argv = [os.path.join(BIN_DIR, "python"), RPC_CALL, "/var/tmp/spdk.sock", method]
        if params is not None:
            argv.append(json.dumps(params))
        return json.loads(self.topology.node(node).run(" ".join(shlex.quote(arg) for arg in argv)).stdout)

    def lvols(self, node):
        return sorted(lv["name"] for lv in self.rpc(node, "bdev_lvol_get_lvols"))

    def exports(self, node):
        return sorted(s["nqn"].split(":")[-1] for s in self.rpc(node, "nvmf_get_subsystems")
                      if s.get("subtype") != "Discovery")


@pytest.fixture(scope="module")
def site(multihost):
    root = tempfile.mkdtemp(prefix="spdk-mhp-", dir="/tmp")
    site = Site(multihost, root)
    yield site
    # The relays outlive playbook runs (as ControlPersist connections do): stop them with the nodes.
    multihost.ansible("localhost", "spdk.storage.spdk_rpc_relay", "state=absent")
    for node in multihost.nodes:
        node.run("test -f /run/spdk-storage/spdk_tgt.pid && kill -9 $(cat /run/spdk-storage/spdk_tgt.pid); "
                 "rm -rf /var/lib/spdk-storage/disks /var/lib/spdk-storage/record", check=False)
    shutil.rmtree(root, ignore_errors=True)


def test_1_create_volume_over_ssh_builds_the_engine_through_the_relay_and_a_second_run_changes_nothing(site):
    for node in site.topology.nodes:   # disks of an earlier session of the topology go first
        node.run("rm -rf /var/lib/spdk-storage/disks /var/lib/spdk-storage/record")
    create = [imported("create_volume.yml", spdk_volumes=[VOLUME]),
              on_engine_node("Write and read back", [
                  io_task("Write 8 MiB", action="write", offset=0, length=8 * MIB, seed="mh-a"),
                  read_volume(), save(site.path("written.json"), "spdk_io_sha256"),
                  save(site.path("engine.json"), "spdk_engines.mhvol")])]
    changed, _out = site.play(create)
    assert changed["node1"] > 0 and changed["node2"] > 0
    engine = site.load("engine.json")
    assert engine["state"] == "healthy"
    assert engine["frontend"]["listen_address"] == "127.0.0.21"

    # Each node's target is on its own /var/tmp/spdk.sock, seen by that node only; the engine node
    # reached node2's through the relay socket, which is what its record keeps.
    assert site.topology.node("node1").run("test -S /var/tmp/spdk.sock && test -S %s" % (PEER_SOCKET % "node2"))
    assert site.topology.node("node2").run("test -L %s" % (PEER_SOCKET % "node2"))
    record = json.loads(site.topology.node("node1").run("cat /var/lib/spdk-storage/record/node1.json").stdout)
    assert PEER_SOCKET % "node2" in json.dumps(record)
    assert not os.path.exists("/run/spdk-storage/peers/node2.sock"), "the controller must not see a node's files"

    changed, _out = site.play([imported("create_volume.yml", spdk_volumes=[VOLUME])])
    assert changed == {"node1": 0, "node2": 0, "node3": 0}


def test_2_snapshots_are_taken_on_both_replicas_with_a_short_pause_deleted_and_reverted(site):
    plays = [
        snapshot_action("create", "s1"),
        on_engine_node("Keep the pause", [save(site.path("s1.json"), "spdk_snapshot_result")]),
        snapshot_action("create", "s2"),
        snapshot_action("delete", "s2"),
        imported("create_volume.yml", spdk_volumes=[VOLUME]),
        on_engine_node("Write after the snapshot", [
            io_task("Overwrite 4 MiB", action="write", offset=2 * MIB, length=4 * MIB, seed="mh-b"),
            read_volume(), save(site.path("after.json"), "spdk_io_sha256")]),
    ]
    site.play(plays)
    s1 = site.load("s1.json")
    assert s1["engine"]["consistent"] is True
    assert 0 < s1["paused_seconds"] < 1.0, s1["paused_seconds"]
    print("engine snapshot pause over the SSH relay: %.4f s" % s1["paused_seconds"])
    assert site.lvols("node1") == ["mhvol-node1", "mhvol-node1-snap-s1"]
    assert site.lvols("node2") == ["mhvol-node2", "mhvol-node2-snap-s1"]
    assert site.load("after.json") != site.load("written.json")

    site.play([snapshot_action("revert", "s1"),
               on_engine_node("Read the reverted volume",
                              [read_volume(), save(site.path("reverted.json"), "spdk_io_sha256")])])
    assert site.load("reverted.json") == site.load("written.json")


def test_3_a_killed_replica_node_is_recovered_and_every_replica_ends_identical(site):
    node2 = site.topology.node("node2")
    node2.run("kill -9 $(cat /run/spdk-storage/spdk_tgt.pid)")
    site.play([on_engine_node("Write while node2 is dead", [
        # The engine node cannot read node2 now: the frontend is the one test 1 created.
        {"name": "Know the frontend", "ansible.builtin.set_fact": {"spdk_engines": {"mhvol": site.load("engine.json")}}},
        io_task("Write 2 MiB", action="write", offset=10 * MIB, length=2 * MIB, seed="mh-c", timeout=120),
        read_volume(), save(site.path("degraded.json"), "spdk_io_sha256")])])

    changed, _out = site.play([imported("recover_node.yml", spdk_volumes=[VOLUME]),
                               on_engine_node("Compare every replica with the frontend", [
                                   {"name": "Checksum the frontend and each replica",
                                    "ansible.builtin.include_tasks": os.path.join(PLAYBOOKS, "tasks",
                                                                                  "replica_checksums.yml"),
                                    "vars": {"vol": VOLUME}},
                                   save(site.path("checksums.json"),
                                        "{'frontend': spdk_frontend_sha256, 'replicas': spdk_replica_sha256}")])],
                              extra={"node": "node2"})
    assert changed["node2"] > 0
    sums = site.load("checksums.json")
    assert sums["frontend"] == site.load("degraded.json")
    assert sums["replicas"] == {"mhvol-node1": sums["frontend"], "mhvol-node2": sums["frontend"]}


def test_4_the_replica_of_node2_is_rebuilt_on_node3_and_node2s_is_removed(site):
    site.play([imported("create_volume.yml", spdk_volumes=[VOLUME])])
    _changed, output = site.play([imported("rebuild_replica.yml", spdk_volumes=[VOLUME])],
                                 extra={"volume": "mhvol", "source_node": "node1", "destination_node": "node3",
                                        "replaced_node": "node2"})
    assert "mhvol-node3 is RW, engine healthy" in output
    assert "replaced replica mhvol-node2: removed" in output
    assert site.lvols("node2") == [] and site.exports("node2") == []
    assert site.lvols("node3") == ["mhvol-node3", "mhvol-node3-snap-s1"]

    site.play([imported("create_volume.yml", spdk_volumes=[REBUILT]),
               on_engine_node("Compare every replica with the frontend", [
                   {"name": "Checksum the frontend and each replica",
                    "ansible.builtin.include_tasks": os.path.join(PLAYBOOKS, "tasks", "replica_checksums.yml"),
                    "vars": {"vol": REBUILT}},
                   save(site.path("rebuilt.json"),
                        "{'frontend': spdk_frontend_sha256, 'replicas': spdk_replica_sha256}")], volume=REBUILT)])
    sums = site.load("rebuilt.json")
    assert sums["frontend"] == site.load("degraded.json")
    assert sums["replicas"] == {"mhvol-node1": sums["frontend"], "mhvol-node3": sums["frontend"]}


def test_5_delete_volume_removes_it_from_every_node(site):
    site.play([imported("delete_volume.yml", spdk_volumes=[REBUILT])], extra={"volume": "mhvol"})
    for node in ("node1", "node2", "node3"):
        assert site.lvols(node) == [], node
        assert site.exports(node) == [], node

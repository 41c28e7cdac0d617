"""Every volume playbook in check mode (``ansible-playbook --check``) on the nodes of inventories/emulated.

Each check run must end successfully (rc 0, no failed host), report its plan (changed tasks and the
planned steps in the output) and send no mutating RPC to any node: every emulated node logs each RPC
it answers with its ``mutating`` flag (``<node>/spdk.sock.rpc.jsonl``), and the lines a check run
added must all be reads.

The nodes keep everything under a private temporary root and use a block of ports of this test
process (extra vars; test_delete_volume_playbook_emulated's Inventory), so the demo, Molecule and other
sessions are not disturbed. One set of nodes serves the whole module: ``ckvol`` (replicas on node1 and
node2, engine on node1 with a frontend) is created for real with an engine snapshot ``s1``; then, in
file order:

* create_volume.yml with a second, new volume ``cknew`` (replicas on node2 and node3, engine on node2);
* snapshot_volume.yml create ``s2``, delete ``s1`` and revert to ``s1`` (the frontend is only planned
  to go, so the revert is reported, not refused);
* delete_volume.yml of ``ckvol``;
* rebuild_replica.yml of node2's replica on node3 (the join is only described: no polling);
* recover_node.yml for node2 after its target was killed (the start, the disk, the replica and the
  engine's repair are planned without reading the dead node);

and, on an empty root where no node runs, create_volume.yml (nothing started, nothing created) and demo.yml.
"""
import json
import os
import shutil
import signal
import tempfile
import time

import pytest

from tests.integration.test_delete_volume_playbook_emulated import NODES, Inventory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VOLUME = {"name": "ckvol", "size": "16MiB", "disk": "disk1", "replica_nodes": ["node1", "node2"],
          "engine_node": "node1", "frontend": "nvmf", "allowed_hosts": ["{{ spdk_client_host_nqn }}"]}
NEW = {"name": "cknew", "size": "16MiB", "disk": "disk1", "replica_nodes": ["node2", "node3"],
       "engine_node": "node2", "frontend": "nvmf", "allowed_hosts": ["{{ spdk_client_host_nqn }}"]}


class Site(Inventory):
    """test_delete_volume_playbook_emulated's inventory (private root, its block of ports), with check runs.

    ``run`` fails the test unless every host succeeded (and after 300 s, a run that polls for ever).
    """

    def log_sizes(self):
        return {node: self.log(node)[1] for node in NODES}

    def log(self, node, start=0):
        """The RPC log entries of ``node`` from byte ``start``, and the log's size."""
        path = os.path.join(self.root, node, "spdk.sock.rpc.jsonl")
        if not os.path.exists(path):
            return [], 0
        with open(path) as handle:
            handle.seek(start)
            text = handle.read()
        return [json.loads(line) for line in text.splitlines() if line.strip()], start + len(text.encode())

    def check(self, playbook, **extra):
        """A check run: every host succeeds, no node logs a mutating RPC. Returns ({host: changed}, stdout)."""
        before = self.log_sizes()
        changed, output = self.run(playbook, check=True, **extra)
        mutating = {node: ["%s %s" % (e["method"], json.dumps(e.get("params"))[:120])
                           for e in self.log(node, before[node])[0] if e.get("mutating")] for node in NODES}
        assert mutating == {node: [] for node in NODES}, "%s --check sent mutating RPCs: %s" % (playbook, mutating)
        return changed, output

    def kill(self, node):
        with open(os.path.join(self.root, node, "spdk_tgt.pid")) as handle:
            os.killpg(int(handle.read().strip()), signal.SIGKILL)


def new_site(runner, prefix):
    root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")   # AF_UNIX socket paths must stay short
    return Site(root, dict(runner.env(), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false"))


@pytest.fixture(scope="module")
def site(module_ansible_runner):
    """ckvol on node1 and node2 (engine on node1, nvmf frontend) with the engine snapshot s1."""
    site = new_site(module_ansible_runner, "spdk-ck-")
    try:
        site.run("create_volume.yml", spdk_volumes=[VOLUME])
        site.run("snapshot_volume.yml", spdk_volumes=[VOLUME], volume="ckvol", snapshot="s1")
        yield site
    finally:
        site.stop()
        shutil.rmtree(site.root, ignore_errors=True)


def test_create_volume_check_plans_a_new_volume(site):
    changed, output = site.check("create_volume.yml", spdk_volumes=[VOLUME, NEW])
    assert changed["node2"] > 0 and changed["node3"] > 0 and changed["node1"] == 0, output[-6000:]
    assert "The engine cknew would be created or changed to run over cknew-node2, cknew-node3" in output
    assert "cknew: planned; replicas cknew-node2=planned cknew-node3=planned" in output
    assert "ckvol: healthy; replicas ckvol-node1=RW ckvol-node2=RW" in output


@pytest.mark.parametrize("action, snapshot, summary", [
    ("create", "s2", "check mode, planned only: ckvol: snapshot s2 taken on 2 replicas; snapshots"),
    ("delete", "s1", "check mode, planned only: ckvol: snapshot s1 deleted on every replica"),
    ("revert", "s1", "check mode, planned only: ckvol: reverted to s1 on every replica"),
])
def test_snapshot_volume_check_plans_the_action(site, action, snapshot, summary):
    changed, output = site.check("snapshot_volume.yml", spdk_volumes=[VOLUME], volume="ckvol",
                                 snapshot=snapshot, snapshot_action=action)
    assert changed["node1"] > 0, output[-6000:]
    assert summary in output, output[-6000:]
    if action == "revert":
        assert "delete subsystem nqn.2026-01.io.spdk-storage:ckvol" in output   # the frontend's removal
        assert "Every replica of ckvol (ckvol-node1, ckvol-node2) would be reverted to s1" in output


def test_delete_volume_check_plans_every_deletion(site):
    changed, output = site.check("delete_volume.yml", spdk_volumes=[VOLUME], volume="ckvol")
    assert changed["node1"] >= 2 and changed["node2"] > 0, output[-6000:]   # the engine and the replicas
    assert "changed: [node2] => (item=ckvol-node2 on disk1)" in output


def test_rebuild_replica_check_plans_the_copy_and_describes_the_join(site):
    started = time.monotonic()
    changed, output = site.check("rebuild_replica.yml", spdk_volumes=[VOLUME], volume="ckvol", source_node="node1",
                                 destination_node="node3", replaced_node="node2")
    assert time.monotonic() - started < 90, "the check run polled"
    assert changed["node1"] > 0, output[-6000:]
    assert "ckvol: online rebuild of ckvol-node3 from ckvol-node1" in output
    assert "ckvol: ckvol-node3 would join the engine in place of ckvol-node2" in output
    assert "replaced replica ckvol-node2: planned" in output
    assert "FAILED - RETRYING" not in output


def test_recover_node_check_plans_a_dead_node(site):
    site.kill("node2")
    changed, output = site.check("recover_node.yml", spdk_volumes=[VOLUME], node="node2")
    assert changed["node2"] > 0 and changed["node1"] > 0, output[-6000:]
    assert "spdk_tgt on node2 (%s/node2/spdk.sock) would be started" % site.root in output
    assert "ckvol-node2 on disk1 would be imported with its disk, or created, then exposed to node1" in output
    assert "The engine ckvol would be created or changed" in output
    # The real run brings node2 back: what check mode planned was enough to go on.
    output = site.run("recover_node.yml", spdk_volumes=[VOLUME], node="node2")[1]
    assert "ckvol: healthy; replicas ckvol-node1=RW ckvol-node2=RW" in output


@pytest.fixture
def empty_site(ansible_runner):
    site = new_site(ansible_runner, "spdk-ck0-")
    yield site
    site.stop()
    shutil.rmtree(site.root, ignore_errors=True)


def test_create_volume_and_demo_check_on_nodes_that_do_not_run_yet(empty_site):
    changed, output = empty_site.check("create_volume.yml", spdk_volumes=[VOLUME])
    assert changed["node1"] > 0 and changed["node2"] > 0, output[-6000:]
    assert "spdk_tgt on node1 (%s/node1/spdk.sock) would be started" % empty_site.root in output
    assert "The engine ckvol would be created or changed" in output
    changed, output = empty_site.check("demo.yml")
    assert "Check mode: the demo is planned up to this set-up only" in output, output[-6000:]
    assert [n for n in os.listdir(empty_site.root) if not n.startswith("extra-")] == [], "check mode created files"

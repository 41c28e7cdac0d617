"""The fault campaign of the playbooks: create_volume.yml and delete_volume.yml killed at a step, then run again.

The three nodes of inventories/emulated run under a private temporary root with a block of ports of this
test process (extra vars), as in test_delete_volume_playbook_emulated. Each node's spdk_tgt listens on
``<node>/spdk.sock.tgt`` (the role's ``spdk_tgt_rpc_socket``) and the playbooks reach it through
``<node>/spdk.sock`` (``spdk_rpc_endpoint``), served by a tests/integration/spdk_targets.RpcRecorder of
this process: its gate sees every request of every node before the target does.

Two operations, each on volumes of three replicas (node1-3, engine and nvmf frontend on node1):

* ``create``: create_volume.yml of a new volume on running nodes whose disks are attached;
* ``delete``: delete_volume.yml of a volume with data and an engine snapshot ``s1``.

A first run of each, untrapped, counts its mutating RPCs across the nodes (the volume lock's included):
the steps. For a step N, ansible-playbook runs as its own process and the N-th mutating request is held
at the target's door while the playbook and every process under it (Ansible's workers lead sessions of
their own, the module processes run under them) are killed with SIGKILL. The held request is then
dropped (the step never happened) or delivered (it happened, and nobody saw the answer). Then:

* convergence: the playbook run again succeeds, and a third run reports changed=0 on every host;
* create: the volume serves I/O through its frontend (a pattern written and read back with
  volume_helpers.spdk_io), and every replica exists once;
* delete: the volume's lvols, snapshots, exports, controllers, RAID, frontend and node record entries are
  gone from every node;
* nothing left: no lock subsystem (spdk_volume_lock.is_lock_nqn) and, on every node, exactly the objects
  of the volumes that should be there: no stray lvol, subsystem, controller or RAID.

Which steps run: every ansible-playbook run costs 3 to 15 s here (Ansible itself, on two cores), and a
create case needs three of them, so the whole matrix (21 create and 14 delete steps, x 2) would take about
half an hour (estimated from the 30 cases of SPDK_FAULT_STEPS=methods). By default (emulator and real
target alike) each operation runs its first, its middle and its last step (as test_fault_campaign.sampled
on a real target), dropped and delivered: 12 cases. SPDK_FAULT_STEPS=methods runs the first step of every
distinct RPC method the operation sends, and its last (create: 9 of 21 steps, delete: 6 of 14);
SPDK_FAULT_STEPS=all runs every step.

The create cases are killed one after the other, each on a volume of its own, and then the playbook runs
again once over all of them (create_volume.yml converges every volume of the inventory in one run, as an
operator would run it after a crash); a failure names the cases of the run. A delete is re-run per case
(delete_volume.yml deletes one named volume).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import is_lock_nqn
from tests.integration.spdk_targets import TARGET, RpcRecorder, direct_call, is_mutating
from tests.integration.test_fault_campaign import StepTrap
from tests.integration.volume_helpers import APP_HOST, MIB, NQN_PREFIX, pattern_file, spdk_io, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
INVENTORY = os.path.join(REPO, "inventories", "emulated", "hosts.yml")
PLAYBOOKS = os.path.join(REPO, "playbooks")
NODES = ("node1", "node2", "node3")
RECAP = re.compile(r"^(node\d)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# 200 ports per node of this process above the ephemeral range (32768-60999), away from the demo's and
# Molecule's 4620-4699 and the other suites' blocks (21000-57999): every case's volume keeps its ports.
FIRST_PORT = 61000 + (os.getpid() % 20) * 200
DATA = MIB
MATRIX = []          # (operation, step, delivered, seconds) of every case run, for the summary


def volume(name):
    return {"name": name, "size": "16MiB", "disk": "disk1", "replica_nodes": list(NODES), "engine_node": "node1",
            "frontend": "nvmf", "allowed_hosts": [APP_HOST]}


def objects_of(name, snapshots=(), nodes=NODES):
    """What each node holds of volume ``name`` (replicas on ``nodes``): its replicas (with ``snapshots``),
    their exports, and on node1 the engine's RAID, its controllers to the remote replicas and its frontend."""
    held = {}
    for node in nodes:
        replica = "%s-%s" % (name, node)
        held[node] = {"lvol " + replica} | {"lvol %s-snap-%s" % (replica, s) for s in snapshots}
        if node != "node1":
            held[node] |= {"subsystem " + NQN_PREFIX + replica}
            held["node1"] = held.get("node1", set()) | {"controller " + replica}
    held["node1"] |= {"raid " + name, "subsystem " + NQN_PREFIX + name}
    return held


class Site(object):
    """inventories/emulated under a private root, every node's socket behind an RpcRecorder of this process.
    ``nodes`` beyond the inventory's three come from the ``inventories`` added after it."""

    def __init__(self, root, env, nodes=NODES, inventories=()):
        self.root = root
        self.env = env
        self.nodes = nodes
        self.inventories = (INVENTORY,) + tuple(inventories)
        self.runs = 0
        self.recorders = {}
        self.expected = {node: set() for node in nodes}     # every object the nodes must hold
        for node in nodes:
            os.makedirs(os.path.join(root, node))
            front = os.path.join(root, node, "spdk.sock")
            self.recorders[node] = RpcRecorder(front, front + ".tgt", os.path.join(root, node, "rpc.jsonl"))
            self.recorders[node].start()

    def set_gate(self, gate):
        for recorder in self.recorders.values():
            recorder.gate = gate

    def set_trap(self, trap):
        for recorder in self.recorders.values():
            recorder.gate = trap.at(recorder.back)

    def command(self, playbook, **extra):
        self.runs += 1
        path = os.path.join(self.root, "vars-%d.json" % self.runs)
        extra.update(spdk_emulated_root=self.root, spdk_port_range="%d-%d" % (FIRST_PORT, FIRST_PORT + 199),
                     spdk_tgt_rpc_socket="{{ spdk_rpc_endpoint }}.tgt", ansible_python_interpreter=sys.executable)
        with open(path, "w") as handle:
            json.dump(extra, handle)
        if not os.path.isabs(playbook):
            playbook = os.path.join(PLAYBOOKS, playbook)
        sources = [arg for inventory in self.inventories for arg in ("-i", inventory)]
        return [os.path.join(BIN_DIR, "ansible-playbook")] + sources + [playbook, "-e", "@" + path]

    def run(self, playbook, why, **extra):
        """Run a playbook to its end; every host must succeed. Returns ({host: changed}, stdout)."""
        done = subprocess.run(self.command(playbook, **extra), env=self.env, capture_output=True, text=True,
                              timeout=600, check=False)
        recap = RECAP.findall(done.stdout)
        assert done.returncode == 0 and recap, "%s: %s failed (rc %d):\n%s" % (
            why, os.path.basename(playbook), done.returncode, (done.stdout + done.stderr)[-8000:])
        assert [h for h in recap if h[4] != "0"] == [], "%s: %s" % (why, done.stdout[-8000:])
        return {host[0]: int(host[2]) for host in recap}, done.stdout

    def count(self, playbook, name, least=10, **extra):
        """The untrapped run of ``playbook`` on volume ``name`` (extra vars ``extra``, by default the volume()
        of that name): a Counter of its mutating requests (at least ``least``)."""
        counter = Counter()
        self.set_gate(counter)
        extra.setdefault("spdk_volumes", [volume(name)])
        extra.setdefault("volume", name)
        try:
            self.run(playbook, "the counting run", **extra)
        finally:
            self.set_gate(None)
        assert len(counter.methods) >= least, counter.methods
        return counter

    def start(self, playbook, **extra):
        """ansible-playbook in the background (its output in a file), leading a session of its own."""
        log = open(os.path.join(self.root, "killed-%d.log" % (self.runs + 1)), "w")
        with log:
            return subprocess.Popen(self.command(playbook, **extra), env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def target_pids(self):
        pids = set()
        for node in self.nodes:
            try:
                with open(os.path.join(self.root, node, "spdk_tgt.pid")) as handle:
                    pids.add(int(handle.read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def kill(self, run):
        """SIGKILL ansible-playbook and every process under it, stopped first so that none starts another."""
        spared = self.target_pids() | {os.getpid()}
        stopped = set()
        while True:
            tree = (descendants(run.pid) | {run.pid}) - spared
            if tree <= stopped:
                break
            for pid in tree - stopped:
                signal_pid(pid, signal.SIGSTOP)
            stopped |= tree
        for pid in stopped:
            signal_pid(pid, signal.SIGKILL)
        run.wait(30)

    def call(self, node, method, **params):
        """One RPC straight to the node's target (not through its recorder and gate)."""
        return direct_call(os.path.join(self.root, node, "spdk.sock.tgt"), method, params or None)

    def objects(self, node):
        """Every lvol, subsystem (but discovery), controller and RAID of the node, as 'kind name'."""
        held = {"lvol " + alias.split("/", 1)[1] for bdev in self.call(node, "bdev_get_bdevs")
                for alias in bdev.get("aliases") or [] if "/" in alias}
        held |= {"subsystem " + s["nqn"] for s in self.call(node, "nvmf_get_subsystems")
                 if s.get("subtype") != "Discovery"}
        held |= {"controller " + c["name"] for c in self.call(node, "bdev_nvme_get_controllers")}
        held |= {"raid " + r["name"] for r in self.call(node, "bdev_raid_get_bdevs", category="all")}
        return held

    def record(self, node):
        path = os.path.join(self.root, node, "record", "%s.json" % node)
        if not os.path.exists(path):
            return {}
        with open(path) as handle:
            return json.load(handle)

    def frontend(self, name):
        """(nqn, address, port) of volume ``name``'s frontend on node1."""
        nqn = NQN_PREFIX + name
        [subsystem] = [s for s in self.call("node1", "nvmf_get_subsystems") if s["nqn"] == nqn]
        [listener] = subsystem["listen_addresses"]
        return nqn, listener["traddr"], listener["trsvcid"]

    def check_nothing_left(self, case):
        for node in self.nodes:
            held = self.objects(node)
            locks = sorted(o for o in held if o.startswith("subsystem ") and is_lock_nqn(o.split(" ", 1)[1]))
            assert locks == [], "%s: a lock is left on %s: %s" % (case, node, locks)
            assert held == self.expected[node], "%s: %s holds %s, expected %s (stray: %s, missing: %s)" % (
                case, node, sorted(held), sorted(self.expected[node]), sorted(held - self.expected[node]),
                sorted(self.expected[node] - held))

    def stop(self):
        """Kill the nodes' targets (each leads its own session: the role's supervisor) and the recorders."""
        for pid in self.target_pids():
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for recorder in self.recorders.values():
            recorder.stop()


def descendants(pid):
    """Every process whose parent chain leads to ``pid`` (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


class Counter(object):
    """A gate that lets everything through and notes each mutating request's method."""

    def __init__(self):
        self.methods = []

    def __call__(self, method, params):
        if is_mutating(method):
            self.methods.append(method)


def chosen_steps(methods):
    """The steps to kill at, out of the operation's mutating ``methods``: see the module's docstring."""
    steps = len(methods)
    choice = os.environ.get("SPDK_FAULT_STEPS", "")
    if choice == "all":
        return list(range(1, steps + 1))
    if choice == "methods":
        return sorted({methods.index(method) + 1 for method in set(methods)} | {steps})
    if choice.replace(",", "").isdigit():       # e.g. SPDK_FAULT_STEPS=6,7: these steps, to replay a case
        return sorted(int(step) for step in choice.split(","))
    return sorted({1, (steps + 1) // 2, steps})


def started_site(runner, more_hosts=None):
    """Fixture body: a Site with its nodes started and their disks attached (create_volume.yml with no
    volume); ``more_hosts`` (name -> host vars) join the storage group through an inventory of the site's."""
    root = tempfile.mkdtemp(prefix="spdk-fp-", dir="/tmp")   # AF_UNIX socket paths must stay short
    inventories = []
    if more_hosts:
        inventories.append(os.path.join(root, "more-hosts.json"))     # the yaml inventory plugin reads JSON
        with open(inventories[0], "w") as handle:
            json.dump({"storage": {"hosts": more_hosts}}, handle)
    site = Site(root, dict(runner.env(), ANSIBLE_DISPLAY_SKIPPED_HOSTS="false"),
                NODES + tuple(more_hosts or ()), inventories)
    try:
        site.run("create_volume.yml", "starting the nodes", spdk_volumes=[])
        yield site
    finally:
        site.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def site(module_ansible_runner):
    """The nodes started and their disks attached."""
    yield from started_site(module_ansible_runner)


def kill_at(site, step, delivered, playbook, **extra):
    """Run ``playbook``, kill it when its ``step``-th mutating request is at a target's door, release that
    request (dropped or delivered). Returns the case's name."""
    trap = StepTrap(step, delivered)
    site.set_trap(trap)
    run = site.start(playbook, **extra)
    try:
        assert wait_for(lambda: trap.reached.is_set() or run.poll() is not None, timeout=300), "no end, no step"
        assert trap.reached.is_set(), "%s ended (rc %s) before step %d" % (playbook, run.returncode, step)
        site.kill(run)
    finally:
        trap.released.set()
    assert trap.settled(), "the held %s was never answered" % trap.method
    site.set_gate(None)
    return "killed at step %d (%s, %s)" % (step, trap.method, "delivered" if delivered else "dropped")


def summary(operation, steps):
    cases = [case for case in MATRIX if case[0] == operation]
    print("\nplaybook fault campaign %s on the %s: %d of %d steps x 2 = %d cases in %.0fs" % (
        operation, TARGET.name, len(cases) // 2, steps, len(cases), sum(case[3] for case in cases)))


def test_create_volume_killed_at_a_step_converges_serves_io_and_leaves_nothing(site):
    site.expected = {node: site.objects(node) for node in NODES}
    counter = site.count("create_volume.yml", "pnew0")
    steps = len(counter.methods)
    names = {"pnew0": "the counting run"}
    started = time.monotonic()
    for step in chosen_steps(counter.methods):
        for delivered in (False, True):
            name = "pnew%d%s" % (step, "d" if delivered else "x")
            killed = kill_at(site, step, delivered, "create_volume.yml", spdk_volumes=[volume(name)], volume=name)
            names[name] = "create " + killed
    every = [volume(name) for name in names]
    cases = "; ".join("%s: %s" % item for item in sorted(names.items()))
    site.run("create_volume.yml", "the re-run of " + cases, spdk_volumes=every)
    changed, output = site.run("create_volume.yml", "the third run of " + cases, spdk_volumes=every)
    assert changed == {node: 0 for node in NODES}, "the third run of %s changed something:\n%s" % (
        cases, output[-6000:])
    elapsed = time.monotonic() - started
    data = pattern_file(os.path.join(site.root, "pattern.bin"), "fault", DATA)
    for name in sorted(names):
        for node, held in objects_of(name).items():
            site.expected[node] |= held
        nqn, addr, port = site.frontend(name)
        spdk_io("write", nqn, addr, port, "--offset", "0", "--file", data)
        spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", data)
    site.check_nothing_left(cases)
    for name in names:
        if name != "pnew0":
            MATRIX.append(("create", int(re.match(r"pnew(\d+)", name).group(1)), name.endswith("d"),
                           elapsed / (len(names) - 1)))
    summary("create", steps)


def test_delete_volume_killed_at_a_step_converges_and_deletes_everything(site):
    # The volumes, each with data and the snapshot s1: one to count the steps on and one per case (the
    # default sample's six made with it, any more once the steps are known).
    site.expected = {node: site.objects(node) for node in NODES}
    snapshot_play = site.root + "/snapshot.yml"
    with open(snapshot_play, "w") as handle:
        json.dump(SNAPSHOT_PLAY, handle)          # JSON is YAML
    names = ["pdel%d" % index for index in range(7)]
    prepare(site, [volume(name) for name in names], snapshot_play)
    counter = site.count("delete_volume.yml", "pdel0")
    steps = len(counter.methods)
    for node, held in objects_of("pdel0", ["s1"]).items():
        site.expected[node] -= held
    site.check_nothing_left("the counting run of delete")

    cases = [(step, delivered) for step in chosen_steps(counter.methods) for delivered in (False, True)]
    more = ["pdel%d" % index for index in range(len(names), len(cases) + 1)]
    if more:
        prepare(site, [volume(name) for name in more], snapshot_play)
    for (step, delivered), name in zip(cases, (names + more)[1:]):
        started = time.monotonic()
        killed = kill_at(site, step, delivered, "delete_volume.yml", spdk_volumes=[volume(name)], volume=name)
        case = "delete of %s %s" % (name, killed)
        site.run("delete_volume.yml", "the re-run of " + case, spdk_volumes=[volume(name)], volume=name)
        changed, output = site.run("delete_volume.yml", "the third run of " + case, spdk_volumes=[volume(name)],
                                   volume=name)
        assert changed == {node: 0 for node in NODES}, "the third run of %s changed something:\n%s" % (
            case, output[-6000:])
        for node, held in objects_of(name, ["s1"]).items():
            site.expected[node] -= held
            gone = held & site.objects(node)
            assert not gone, "%s: %s still holds %s" % (case, node, sorted(gone))
            record = site.record(node)
            kept = [entry for entry in ("engines", "exposures", "snapshots") for key in record.get(entry, {})
                    if re.search(r"\b%s\b" % name, key)]
            assert kept == [], "%s: %s's record still has %s of %s" % (case, node, kept, name)
        site.check_nothing_left(case)
        MATRIX.append(("delete", step, delivered, time.monotonic() - started))
    summary("delete", steps)


SNAPSHOT_PLAY = [{
    "name": "Take the engine snapshot s1 of every volume", "hosts": "node1", "gather_facts": False,
    "vars_files": [os.path.join(PLAYBOOKS, "vars", "conventions.yml"), os.path.join(PLAYBOOKS, "vars", "snapshot.yml")],
    "tasks": [{"name": "Take s1", "ansible.builtin.include_tasks": os.path.join(PLAYBOOKS, "tasks", "volume_snapshot.yml"),
               "loop": "{{ spdk_node_engine_volumes }}", "loop_control": {"loop_var": "vol", "label": "{{ vol.name }}"},
               "vars": {"snap_name": "s1", "snap_action": "create"}}]}]


def prepare(site, volumes, snapshot_play):
    """The volumes created, data in each, the engine snapshot s1 of each, and more data after it."""
    site.run("create_volume.yml", "creating the volumes to delete", spdk_volumes=volumes)
    first = pattern_file(os.path.join(site.root, "a.bin"), "before", DATA)
    second = pattern_file(os.path.join(site.root, "b.bin"), "after", DATA)
    for vol in volumes:
        spdk_io("write", *site.frontend(vol["name"]), "--offset", "0", "--file", first)
    site.run(snapshot_play, "taking s1", spdk_volumes=volumes)
    for vol in volumes:
        spdk_io("write", *site.frontend(vol["name"]), "--offset", "0", "--file", second)
        for node, held in objects_of(vol["name"], ["s1"]).items():
            site.expected[node] |= held

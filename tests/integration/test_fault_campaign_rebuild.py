"""The fault campaign of the replica rebuild: spdk_replica_rebuild killed at every one of its steps, then run again.

The cluster is test_rebuild_emulated's: engine vol1 on n0 over r0 (local, the source) and r1 (on n1, the
replica replaced), and n2 the destination of the new replica r2. Before the rebuild 3 MiB are written,
replica snapshot s1 is taken on r0 and r1, and 64 KiB more are written after it, so the chain copy has a
level to copy. The offline rebuild runs with the engine's frontend removed (its system snapshot and the
RAID re-created over r0 and r2); the online one with the frontend live (RAID1 rebuilds r2's head).

As in test_fault_campaign.py, a first run on a fresh cluster counts the rebuild's mutating RPCs across all
nodes (the volume lock's included; 32 offline and 27 online when this was written). Then, for step N, a
fresh cluster runs the rebuild as its own module process, the N-th mutating RPC is held at the target's
door (spdk_targets.RpcRecorder's gate), the module is killed with SIGKILL, and the held request is dropped or
delivered (the trap sends it to the target itself and waits for the answer, so the step is done before the
re-run reads). The same rebuild run again must then:

* converge: succeed, and one more run report changed false;
* keep every byte: the volume's sha256 through the engine is the one the host read before the rebuild;
  r0's copy of s1 holds the data it held before, and r2's copy equals r0's, superblock area included;
* leave nothing behind: no lock subsystem, no transient lvol, export or controller (``r2-rebuild``,
  ``r0-tmp``), no system snapshot (on a replica or noted in the record), the replaced replica r1 gone from
  n1 and from n0's controllers, the RAID online over r0 and r2 with nothing rebuilding, host I/O not
  paused (online) and the engine healthy.

The matrix is strategy x step x (dropped, delivered): 118 cases. ``make test`` runs every step once on the
emulator, dropped at odd steps and delivered at even ones (59 cases, 4.5 to 6 minutes on two cores shared
with other suites); SPDK_FAULT_STEPS=all runs all 118 (about 10 minutes). On a real target
(SPDK_TGT) the first, middle and last step (test_fault_campaign.sampled), 4 cases per strategy (see
``chosen``). The size and time of what ran are printed.

A second matrix kills a target instead of the module: at step N the node the step goes to (n0, the engine
node and the source r0's; n2, the destination's; n1, the replaced replica's, during its removal) is killed
with SIGKILL while the request is held at its door, so it never gets it. The module then fails by itself, or,
when the node died during a clean-up after the join (the replaced replica's removal, the merge of the system
snapshot), finishes the rebuild with a warning that a later run finishes it. The node is brought back as
recover_node.yml does (fault_helpers.recover_node: target started, disk attached again, which loads the
lvstore with a partial copy's lvols, its replicas exported again, the engine repaired and waited for). The
engine's replicas in that repair are r0 and r1 until the step that put r2 in the RAID (offline
``bdev_raid_create``, online ``bdev_raid_add_base_bdev``) landed, and r0 and r2 after it; from then on the list
from before the rebuild (an inventory not updated yet) must be refused and name r2. The rebuild then runs
again with the checks above. The matrix is strategy x step (59 cases, all green on the emulator with
SPDK_FAULT_STEPS=all: 8 minutes, 12.5 while other suites loaded the two cores); by default the first, the
middle and the last step of each strategy (6 cases, under a minute), on a real target the middle one.
"""
import hashlib
import os
import threading
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import is_lock_nqn
from ansible_collections.spdk.storage.plugins.modules import spdk_replica_rebuild
from tests.integration.fault_helpers import kill_target_at, recover_node
from tests.integration.spdk_targets import TARGET, is_mutating
from tests.integration.test_fault_campaign import StepTrap, sampled
from tests.integration.test_rebuild_emulated import PORT_RANGE, Cluster
from tests.integration.volume_helpers import (
    MIB,
    NQN_PREFIX,
    SB,
    TIMEOUTS,
    Node,
    emulated,
    frontend,
    module_process,
    process_result,
    spdk_io,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MATRIX = []          # (strategy, step, delivered, seconds) of every case run, for the summary
READ_PORT_OFFSET = 19     # the last port of the test's block: the snapshot reads' temporary export


class RebuildCase(Cluster):
    """A cluster ready for one rebuild (``strategy`` offline or online), what it held before, what must hold
    after."""

    def build(self):
        """Cluster.build with the three targets started at once (each start waits for its target)."""
        self.nodes = [Node(idx, self.workdir) for idx in range(3)]
        starts = [threading.Thread(target=node.start) for node in self.nodes]
        for thread in starts:
            thread.start()
        for thread in starts:
            thread.join()
        return super().build()

    def start_node(self, idx):
        return self.nodes[idx]

    def prepare(self, strategy, baseline=None):
        """3 MiB written, replica snapshot s1 on r0 and r1, 64 KiB written after it; the engine left without
        frontend (offline) or with it (online). ``baseline``: the volume's sha256 as the host reads it and
        the sha256 of s1's data region, read before the first rebuild (every fresh cluster gets the same
        seeded data); read here when not given."""
        self.strategy = strategy
        self.build()
        nqn, addr, port = self.frontend
        spdk_io("write", nqn, addr, port, "--offset", "0", "--length", str(3 * MIB), "--seed", "A")
        self.engine("none", self.replicas)
        self.snapshot_both("s1")
        self.engine("nvmf", self.replicas)
        spdk_io("write", nqn, addr, port, "--offset", str(5 * MIB), "--length", str(64 * 1024), "--seed", "B")
        self.baseline = baseline or {"volume": self.volume_sha256(),
                                     "s1 data": self.snapshot_sha(self.nodes[0], "r0", "s1")[1]}
        if strategy == "offline":
            self.engine("none", self.replicas)
        return self

    def args(self):
        n0, n2 = self.nodes[0], self.nodes[2]
        args = dict(engine="vol1", replicas=self.replicas, source="r0", replace="r1", node_name="n0",
                    listen_address=n0.addr, port_range=PORT_RANGE, record_dir=self.records, wait_sleep=0.05,
                    rpc_socket=n0.sock, strategy=self.strategy,
                    destination={"replica": "r2", "disk": "disk2", "rpc_socket": n2.sock,
                                 "listen_address": n2.addr, "port_range": PORT_RANGE})
        args.update(TIMEOUTS)
        return args

    def process(self):
        return module_process(spdk_replica_rebuild, dict(self.args(), lock_timeout=0), self.workdir)

    def set_gate(self, trap):
        for node in self.nodes:
            node.set_gate(trap.at(node.target.target_sock, node) if trap is not None else None)

    def killed_at(self, step, delivered):
        """The rebuild as its own process, killed (SIGKILL) while its ``step``-th mutating request is held at
        the target's door; that request then dropped, or delivered and answered. Returns the trap."""
        trap = StepTrap(step, delivered)
        self.set_gate(trap)
        run = self.process()
        came = wait_for(trap.reached.is_set, timeout=60)
        run.kill()
        run.communicate(timeout=30)
        trap.released.set()
        assert came, "step %d never came" % step
        assert trap.settled(), "the held %s was never answered" % trap.method
        self.set_gate(None)
        return trap

    def target_killed_at(self, step):
        """The rebuild as its own process, the node its ``step``-th mutating request goes to killed (SIGKILL)
        while that request is held at the node's door (so it never gets it); the module then fails by itself.
        Returns the trap and the module's result."""
        trap = StepTrap(step, delivered=False)
        return trap, kill_target_at(trap, self.set_gate, self.process)

    def export_address(self, node, replica):
        """"address:port" of ``replica``'s export on ``node``, or None (a killed node lost its exports)."""
        for subsystem in node.call("nvmf_get_subsystems"):
            if subsystem["nqn"] == NQN_PREFIX + replica and subsystem.get("listen_addresses"):
                listener = subsystem["listen_addresses"][0]
                return "%s:%s" % (listener["traddr"], listener["trsvcid"])
        return None

    def replica_list(self, names):
        """The replicas ``names`` as the playbooks give them to the modules: the engine node's by disk, the
        others by the address of their export as their node answers now (none when it has no export)."""
        entries = []
        for name in names:
            node = self.nodes[int(name[1:])]
            if node.idx == 0:
                entries.append({"name": name, "disk": "disk0"})
                continue
            entry = {"name": name, "rpc_socket": node.sock}
            address = self.export_address(node, name)
            if address:
                entry["address"] = address
            entries.append(entry)
        return entries

    def recover(self, node, members):
        """recover_node.yml for ``node`` (fault_helpers.recover_node): target, disk, the node's replicas among
        the engine's ``members`` exported again (r0 kept local), then the engine repaired over ``members``
        with the frontend the rebuild runs with (none offline, nvmf online), waiting until every one is RW.
        The rebuild's own replica list is then read again, as rebuild_replica.yml does at each run (a
        re-exported replica may have another port)."""
        def export(recovered):
            for name in members:
                if name == "r0" and recovered.idx == 0:
                    self.replica(recovered, "r0", expose=False)
                elif int(name[1:]) == recovered.idx:
                    self.replica(recovered, name)
        frontend_during = "none" if self.strategy == "offline" else "nvmf"

        def repair():
            if "r2" in members:     # the inventory's list from before the rebuild is refused (the rebuild journal)
                with pytest.raises(AssertionError, match="list r2 among the replicas instead of r1"):
                    self.engine(frontend_during, self.replicas)
            return self.engine(frontend_during, self.replica_list(members), wait=True, wait_timeout=120)
        repaired = recover_node(self, node, export, repair)
        self.replicas = self.replica_list(["r0", "r1"])
        return repaired

    def rerun(self):
        """The same rebuild again, which must succeed, and once more, which must change nothing."""
        done = self.module(spdk_replica_rebuild, self.nodes[0], **self.args())
        assert not done.failed, "re-run failed: %s" % done.msg
        assert done.result["rebuild"]["state"] == "done", done.result["rebuild"]
        again = self.module(spdk_replica_rebuild, self.nodes[0], **self.args())
        assert not again.failed and again.changed is False, (again.msg, again.result.get("actions"))
        return done.result["rebuild"]

    def snapshot_sha(self, node, replica, snapshot):
        """sha256 of a replica's copy of ``snapshot``, read through an export of it on its own node (made and
        removed here): (the whole lvol, its data region after the superblock area). The superblock area holds
        the RAID's superblock as it was at the snapshot, which differs from one cluster to the next."""
        nqn = NQN_PREFIX + "test-read-%s" % replica
        port = int(PORT_RANGE.split("-")[0]) + READ_PORT_OFFSET
        path = os.path.join(self.workdir, "%s-snap-%s.bin" % (replica, snapshot))
        export = [("nvmf_create_subsystem", dict(allow_any_host=True)),
                  ("nvmf_subsystem_add_ns", dict(namespace={"bdev_name": "disk%d/%s-snap-%s" % (
                      node.idx, replica, snapshot)})),
                  ("nvmf_subsystem_add_listener", dict(listen_address={
                      "trtype": "TCP", "adrfam": "IPv4", "traddr": node.addr, "trsvcid": str(port)}))]
        if not node.call("nvmf_get_transports"):       # a restarted node that exports nothing
            node.call("nvmf_create_transport", trtype="TCP")
        try:
            for method, params in export:
                node.call(method, nqn=nqn, **params)
            spdk_io("read", nqn, node.addr, port, "--offset", "0", "--output", path)
        finally:
            node.call("nvmf_delete_subsystem", nqn=nqn)
        with open(path, "rb") as handle:
            data = handle.read()
        os.unlink(path)
        assert len(data) > SB, "%s: %d bytes read" % (path, len(data))
        return hashlib.sha256(data).hexdigest(), hashlib.sha256(data[SB:]).hexdigest()

    def check(self, view):
        """Every byte, and nothing left behind, after the re-run (whose rebuild view is ``view``)."""
        n0, n1, n2 = self.nodes
        assert view["source_chain"] == view["destination_chain"] == ["s1"], view
        assert view["allocated_clusters"]["destination"] == view["allocated_clusters"]["source"], view
        for node in (n0, n1, n2):
            assert [n for n in self.exports(node) if is_lock_nqn(n)] == [], (node.idx, self.exports(node))
        assert sorted(self.lvols(n0)) == ["r0", "r0-snap-s1"]
        assert sorted(self.lvols(n2)) == ["r2", "r2-snap-s1"]
        assert self.lvols(n1) == {} and self.exports(n1) == [] and self.controllers(n1) == []
        assert self.exports(n2) == [NQN_PREFIX + "r2"] and self.controllers(n2) == []
        assert self.controllers(n0) == ["r2"]
        assert self.exports(n0) == ([] if self.strategy == "offline" else [NQN_PREFIX + "vol1"])
        for subsystem in n0.call("nvmf_get_subsystems"):
            if subsystem["nqn"] == NQN_PREFIX + "vol1":            # online: host I/O not paused
                assert [ns.get("anagrpid") for ns in subsystem["namespaces"]] == [1], subsystem
        record = rec.load(rec.record_path(self.records, "n0"), "n0")
        assert record.snapshots_of("vol1") == {}, record.snapshots_of("vol1")      # no system snapshot noted
        raid = n0.call("bdev_raid_get_bdevs", category="all")
        assert len(raid) == 1 and raid[0]["state"] == "online" and raid[0]["num_base_bdevs_discovered"] == 2 \
            and "process" not in raid[0], raid
        source, copy = self.snapshot_sha(n0, "r0", "s1"), self.snapshot_sha(n2, "r2", "s1")
        assert source[1] == self.baseline["s1 data"] and copy == source, (self.baseline, source, copy)
        replicas = [self.replicas[0], dict(view["replica"], rpc_socket=n2.sock)]
        assert self.snapshot_sets(replicas) == ({"r0": ["s1"], "r2": ["s1"]}, True)
        engine = self.engine("nvmf", replicas)
        assert engine.result["engine"]["state"] == "healthy", engine.result["engine"]
        self.frontend = frontend(engine)
        assert self.volume_sha256() == self.baseline["volume"]


def steps_of(strategy):
    """The rebuild's mutating RPCs on a fresh cluster (their number is the matrix's steps), and the baseline
    read before it (RebuildCase.prepare)."""
    for case in emulated(RebuildCase, "rbcount-"):
        case.prepare(strategy)
        methods = []
        for node in case.nodes:
            node.set_gate(lambda method, params: methods.append(method) if is_mutating(method) else None)
        outcome = process_result(case.process())
        assert not outcome.get("failed"), outcome.get("msg")
        return methods, case.baseline
    return [], None


def chosen(steps):
    """(step, delivered) of the cases. The emulator: every step, dropped at odd and delivered at even steps;
    with SPDK_FAULT_STEPS=all every step both ways (the whole matrix, twice as long). A real target: the
    first, the middle and the last step (test_fault_campaign.sampled), the middle one both ways, the first
    (the lock taken) delivered and the last (the lock released) dropped: their other ways are a fresh run
    and a run that finished."""
    if os.environ.get("SPDK_FAULT_STEPS") == "all":
        return [(step, delivered) for step in range(1, steps + 1) for delivered in (False, True)]
    if not TARGET.is_emulator:
        first, middle, last = sampled(steps)
        return [(first, True), (middle, False), (middle, True), (last, False)]
    return [(step, step % 2 == 0) for step in range(1, steps + 1)]


@pytest.mark.parametrize("strategy", ["offline", "online"])
def test_a_rebuild_killed_at_any_step_converges_with_every_byte_and_nothing_left_behind(strategy):
    methods, baseline = steps_of(strategy)
    steps = len(methods)
    assert steps >= 3 and methods[0] == "nvmf_create_subsystem"       # the lock first
    for step, delivered in chosen(steps):
        started = time.monotonic()
        for case in emulated(RebuildCase, "rbfault-"):
            case.prepare(strategy, baseline)
            trap = case.killed_at(step, delivered)
            label = "%s rebuild killed at step %d of %d (%s, %s)" % (
                strategy, step, steps, trap.method, "delivered" if delivered else "dropped")
            if delivered and isinstance(trap.answer, RuntimeError):
                label += " [the target refused it: %s]" % trap.answer
            try:
                case.check(case.rerun())
            except AssertionError as exc:
                raise AssertionError("%s: %s" % (label, exc))
        MATRIX.append((strategy, step, delivered, time.monotonic() - started))
    cases = [case for case in MATRIX if case[0] == strategy]
    print("\nfault campaign %s rebuild on the %s: %d cases over %d of %d steps in %.0fs" % (
        strategy, TARGET.name, len(cases), len({case[1] for case in cases}), steps, sum(case[3] for case in cases)))


TARGET_MATRIX = []   # (strategy, step, method, node, seconds) of every target-death case run
JOINED = {"offline": "bdev_raid_create", "online": "bdev_raid_add_base_bdev"}   # r2 in the RAID once it landed


def death_steps(steps):
    """The steps whose target dies: the first, the middle and the last on the emulator; every one with
    SPDK_FAULT_STEPS=all; the middle one on a real target (a real restart and recovery per case)."""
    if os.environ.get("SPDK_FAULT_STEPS") == "all":
        return list(range(1, steps + 1))
    middle = (steps + 1) // 2
    return sorted({1, middle, steps}) if TARGET.is_emulator else [middle]


@pytest.mark.parametrize("strategy", ["offline", "online"])
def test_a_rebuild_whose_target_dies_at_a_step_recovers_and_converges_with_every_byte(strategy):
    methods, baseline = steps_of(strategy)
    steps = len(methods)
    joined = methods.index(JOINED[strategy]) + 1
    for step in death_steps(steps):
        started = time.monotonic()
        for case in emulated(RebuildCase, "rbdeath-"):
            case.prepare(strategy, baseline)
            trap, outcome = case.target_killed_at(step)
            label = "%s rebuild with n%d's target killed at step %d of %d (%s; the module %s)" % (
                strategy, trap.node.idx, step, steps, trap.method,
                ("failed: %s" % outcome.get("msg"))[:300] if outcome.get("failed") else "finished")
            # It fails, or (a clean-up after the join: the replaced replica's removal, a merge) finishes the
            # rebuild and warns that a part is left for a later run: never silently.
            assert outcome.get("failed") or (outcome["rebuild"]["state"] == "done" and outcome.get("warnings")), \
                (label, outcome)
            # The engine's replicas when its node is repaired: r2 in place of r1 once the RAID took r2 in.
            members = ["r0", "r2"] if step > joined else ["r0", "r1"]
            try:
                case.recover(trap.node, members)
                case.check(case.rerun())
            except AssertionError as exc:
                raise AssertionError("%s: %s" % (label, exc))
        TARGET_MATRIX.append((strategy, step, trap.method, trap.node.idx, time.monotonic() - started))
    cases = [case for case in TARGET_MATRIX if case[0] == strategy]
    print("\ntarget deaths during the %s rebuild on the %s: %d of %d steps in %.0fs (%s)" % (
        strategy, TARGET.name, len(cases), steps, sum(case[4] for case in cases),
        ", ".join("step %d %s on n%d" % case[1:4] for case in cases)))

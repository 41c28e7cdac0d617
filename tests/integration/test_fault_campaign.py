"""The fault campaign: every engine-level operation killed at every one of its steps, then run again.

For each operation (take an engine snapshot, delete one, revert to one) a first run on a fresh volume
counts the operation's mutating RPCs across all nodes (the volume lock's included). Then, for every step
N, a fresh volume runs the operation as its own module process and the N-th mutating RPC is held at the
target's door (tests/integration/spdk_targets.RpcRecorder.gate) while the module is killed with SIGKILL.
The held request is then either dropped (the step never happened) or delivered (it happened, and nobody
saw the answer; the trap sends it and waits for the answer, so the re-run never reads before it landed). A second run of the same operation must then:

* converge: succeed, and a third run changes nothing;
* keep every byte: the volume's bytes through the engine and every replica's copy of every snapshot are
  what they were before the operation (or after it, for the operation's own outcome);
* leave nothing behind: no lock, no temporary export, no controller but the replicas', no lvol but the
  replicas' heads and snapshots, and host I/O not paused.

The matrix is operation x step x (dropped, delivered); its size and time are printed at the end. On the
emulator every step runs; on a real target (SPDK_TGT) a sample of three steps per operation (the first,
the middle and the last), as three real reactors per case are slow on two cores.

A second matrix kills the target instead of the module: at step N the node that was to receive it dies
(SIGKILL) before it got the request. The module then fails by itself. The node is brought back as
recover_node.yml does (target started, disk loaded, replica exported, engine repaired and waited for),
then the operation runs again with the same checks. Its matrix is operation x step; a restart and a recovery
per case make it the slower one (about 15 s a case on two busy cores), so by default it runs the first, the
middle and the last step of each operation (on a real target the middle one), and every step with
SPDK_FAULT_STEPS=all.
"""
import os
import signal
import threading
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import is_lock_nqn
from ansible_collections.spdk.storage.plugins.modules import spdk_replica, spdk_snapshot
from tests.integration.fault_helpers import kill_target_at, recover_node
from tests.integration.spdk_targets import TARGET, direct_call, is_mutating
from tests.integration.test_engine_snapshot_emulated import DATA, PORT_RANGE, Volume
from tests.integration.volume_helpers import (
    emulated,
    frontend,
    module_process,
    pattern_file,
    process_result,
    spdk_io,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MATRIX = []          # (operation, step, variant, seconds) of every case run, for the summary


class StepTrap:
    """Holds the ``step``-th mutating request (counted over every node) until ``released``; then drops it
    (``delivered`` False), or sends it itself on the target's own socket and waits for the answer, so a re-run
    never reads the target before the step landed. ``at(sock, node)`` is the gate of the target at ``sock``."""

    def __init__(self, step, delivered):
        self.step = step
        self.delivered = delivered
        self.count = 0
        self.method = None
        self.node = None          # the node the step went to
        self.answer = None        # what the target answered a delivered step (or the RuntimeError)
        self.lock = threading.Lock()
        self.reached = threading.Event()
        self.released = threading.Event()
        self.answered = threading.Event()

    def at(self, sock, node=None):
        def gate(method, params):
            if not is_mutating(method):
                return
            with self.lock:
                self.count += 1
                hit = self.count == self.step
            if not hit:
                return
            self.method, self.node = method, node
            self.reached.set()
            self.released.wait(60)
            if not self.delivered:
                raise ConnectionAbortedError("the module was killed before this request reached the target")
            try:
                self.answer = direct_call(sock, method, params)
            except RuntimeError as exc:                    # the step failed on the target: that happens too
                self.answer = exc
            finally:
                self.answered.set()
            raise ConnectionAbortedError("delivered by the trap: the killed module never reads the answer")
        return gate

    def settled(self, timeout=60):
        """The held request dropped, or delivered and answered."""
        return not self.delivered or self.answered.wait(timeout)


class Scenario:
    """A volume ready for one operation, what it held before, and what must hold after."""

    def __init__(self, volume, operation):
        self.volume = volume
        self.operation = operation
        volume.start()
        self.nqn, self.addr, self.port = frontend(volume.engine())
        self.data_a = pattern_file(os.path.join(volume.workdir, "a.bin"), "A", DATA)
        self.data_b = pattern_file(os.path.join(volume.workdir, "b.bin"), "B", DATA)
        spdk_io("write", self.nqn, self.addr, self.port, "--offset", "0", "--file", self.data_a)
        self.snapshots = []
        if operation in ("delete", "revert"):
            self.take("s1")
            spdk_io("write", self.nqn, self.addr, self.port, "--offset", "0", "--file", self.data_b)
        if operation == "revert":
            volume.engine(frontend="none")
        self.expected = {"s1": sha_of(self.data_a)} if self.snapshots else {}

    def take(self, name):
        outcome = self.volume.snapshot(name=name)
        assert not outcome.failed, outcome.msg
        self.snapshots.append(name)

    def args(self):
        return {"create": dict(name="s9"), "delete": dict(name="s1", state="absent"),
                "revert": dict(name="s1", state="reverted")}[self.operation]

    def process(self):
        volume = self.volume
        params = dict(engine="vol", replicas=volume.replicas, node_name="n0", record_dir=volume.records,
                      listen_address=volume.nodes[0].addr, port_range=PORT_RANGE, rpc_socket=volume.nodes[0].sock,
                      lock_timeout=0)
        params.update(self.args())
        return module_process(spdk_snapshot, params, volume.workdir)

    def set_trap(self, trap):
        for node in self.volume.nodes:
            node.set_gate(None if trap is None else trap.at(node.target.target_sock, node))

    def frontend_during(self):
        """The frontend the engine has while the operation runs (a revert runs without one)."""
        return "none" if self.operation == "revert" else "nvmf"

    def recover(self, node):
        """What recover_node.yml does for a node whose target died: start it, load its disk, export its
        replica again, and repair the engine, waiting until every replica is RW."""
        volume = self.volume
        recover_node(volume, node, self.export_replica,
                     lambda: volume.engine(frontend=self.frontend_during(), wait=True, wait_timeout=120))

    def export_replica(self, node):
        """The node's replica again: kept local on the engine node, exported to it elsewhere."""
        if node.idx == 0:
            self.volume.ok(spdk_replica, node, name="vol-r0", disk="disk0", size="65MiB")
        else:
            self.volume.expose(node)

    def rerun(self):
        outcome = self.volume.snapshot(**self.args())
        assert not outcome.failed, outcome.msg
        again = self.volume.snapshot(**self.args())
        assert not again.failed and again.changed is False, (again.msg, again.result.get("actions"))

    def check(self):
        """The bytes, the snapshots and the absence of leftovers after the re-run."""
        volume = self.volume
        expected = dict(self.expected)
        if self.operation == "create":
            expected["s9"] = sha_of(self.data_a)
        if self.operation == "delete":
            expected.pop("s1")
        for name, digest in expected.items():
            copies = volume.snapshot_bytes(name)
            assert set(copies.values()) == {digest}, "snapshot %s: %s, expected %s" % (name, copies, digest)
        listed = volume.snapshot()
        assert listed.result["engine"]["snapshot_sets"] == {r["name"]: sorted(expected) for r in volume.replicas}
        engine = volume.engine()                     # the frontend back (a revert ran without it)
        assert engine.result["engine"]["state"] == "healthy", engine.result["engine"]
        nqn, addr, port = frontend(engine)
        data = self.data_a if self.operation == "revert" else (self.data_b if self.snapshots else self.data_a)
        spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", data)
        self.check_leftovers(expected)

    def check_leftovers(self, snapshots):
        volume = self.volume
        for node in volume.nodes:
            replica = "vol-r%d" % node.idx
            nqns = [s["nqn"] for s in node.call("nvmf_get_subsystems")]
            assert [n for n in nqns if is_lock_nqn(n) or "-revert-" in n] == [], nqns
            lvols = sorted(alias.split("/", 1)[1] for bdev in node.call("bdev_get_bdevs")
                           for alias in bdev.get("aliases") or [] if alias.startswith("disk%d/" % node.idx))
            assert lvols == sorted([replica] + ["%s-snap-%s" % (replica, s) for s in snapshots]), lvols
        assert sorted(c["name"] for c in volume.nodes[0].call("bdev_nvme_get_controllers")) == ["vol-r1", "vol-r2"]
        subsystem = next(s for s in volume.nodes[0].call("nvmf_get_subsystems") if s["nqn"] == frontend_nqn())
        assert [ns.get("anagrpid") for ns in subsystem["namespaces"]] == [1]    # host I/O not paused


def frontend_nqn():
    return "nqn.2026-01.io.spdk-storage:vol"


def sha_of(path, offset=0, length=DATA):
    import hashlib
    with open(path, "rb") as handle:
        handle.seek(offset)
        return hashlib.sha256(handle.read(length)).hexdigest()


def sampled(steps):
    """Every step on the emulator; the first, the middle and the last on a real target."""
    if TARGET.is_emulator:
        return list(range(1, steps + 1))
    return sorted({1, (steps + 1) // 2, steps})


def steps_of(operation):
    """How many mutating RPCs the operation sends on a fresh volume (the matrix's steps)."""
    for volume in emulated(Volume, "fcount-"):
        scenario = Scenario(volume, operation)
        trap = StepTrap(step=0, delivered=True)
        scenario.set_trap(trap)
        outcome = process_result(scenario.process())
        assert not outcome.get("failed"), outcome.get("msg")
        return trap.count
    return 0


@pytest.mark.parametrize("operation", ["create", "delete", "revert"])
def test_an_operation_killed_at_any_step_converges_with_every_byte_and_nothing_left_behind(operation):
    steps = steps_of(operation)
    assert steps >= 3
    for step in sampled(steps):
        for delivered in (False, True):
            started = time.monotonic()
            for volume in emulated(Volume, "fault-"):
                scenario = Scenario(volume, operation)
                trap = StepTrap(step, delivered)
                scenario.set_trap(trap)
                run = scenario.process()
                try:
                    assert wait_for(trap.reached.is_set, timeout=60), "step %d never came" % step
                    run.send_signal(signal.SIGKILL)
                    run.communicate(timeout=30)
                finally:
                    trap.released.set()
                assert trap.settled(), "the held %s was never answered" % trap.method
                scenario.set_trap(None)
                case = "%s killed at step %d (%s, %s)" % (operation, step, trap.method,
                                                          "delivered" if delivered else "dropped")
                try:
                    scenario.rerun()
                    scenario.check()
                except AssertionError as exc:
                    raise AssertionError("%s: %s" % (case, exc))
            MATRIX.append((operation, step, delivered, time.monotonic() - started))
    cases = [case for case in MATRIX if case[0] == operation]
    print("\nfault campaign %s on the %s: %d of %d steps x 2 = %d cases in %.0fs" % (
        operation, TARGET.name, len(cases) // 2, steps, len(cases), sum(case[3] for case in cases)))


TARGET_MATRIX = []   # (operation, step, method, node, seconds) of every target-death case run


@pytest.mark.parametrize("operation", ["create", "delete", "revert"])
def test_an_operation_whose_target_dies_at_a_step_recovers_and_converges_with_every_byte(operation):
    steps = steps_of(operation)
    if os.environ.get("SPDK_FAULT_STEPS") == "all":
        chosen = range(1, steps + 1)
    elif TARGET.is_emulator:
        chosen = sorted({1, (steps + 1) // 2, steps})
    else:
        chosen = [(steps + 1) // 2]      # a real restart and recovery per case: the middle step only
    for step in chosen:
        started = time.monotonic()
        for volume in emulated(Volume, "tdeath-"):
            scenario = Scenario(volume, operation)
            trap = StepTrap(step, delivered=False)
            kill_target_at(trap, scenario.set_trap, scenario.process)   # it fails by itself, or finishes without it
            case = "%s with node %d's target killed at step %d (%s)" % (operation, trap.node.idx, step, trap.method)
            try:
                scenario.recover(trap.node)
                scenario.rerun()
                scenario.check()
            except AssertionError as exc:
                raise AssertionError("%s: %s" % (case, exc))
            TARGET_MATRIX.append((operation, step, trap.method, trap.node.idx, time.monotonic() - started))
    cases = [case for case in TARGET_MATRIX if case[0] == operation]
    print("\ntarget deaths during %s on the %s: %d cases in %.0fs (%s)" % (
        operation, TARGET.name, len(cases), sum(case[4] for case in cases),
        ", ".join("step %d %s on n%d" % case[1:4] for case in cases)))

"""The playbook fault campaign, target deaths: a node's target dies during create_volume.yml or delete_volume.yml.

The machinery is tests/integration/test_fault_campaign_playbooks's: inventories/emulated under a private root,
every node's target behind an RpcRecorder gate of this process, ansible-playbook run as its own process. Here
the playbook is left alone and a TARGET dies instead: when the operation's N-th mutating request (counted over
every node, the volume lock's included) is at a node's door, it is held there, that node's target is killed
with SIGKILL (its supervisor's session, as test_fault_campaign_playbooks_volume_ops.kill_target does), and the
request is then dropped: the node never got it, and the playbook sees its connection closed. The playbook then
runs to its end by itself; it must fail (every case so far did; a run that finished would have to say so in a
warning). Then, as an operator would:

* the node is recovered: ``recover_node.yml -e node=<node>`` (its first play starts the dead target again
  through the spdk_tgt role, attaches the disks, exports the replicas again; its second play makes every
  engine whole), with every volume of the site in ``spdk_volumes``, the one being created or deleted too
  (the operator's inventory still lists it);
* the playbook is run again: it succeeds; a third run reports changed=0 on every host and sends no mutating
  RPC (test_fault_campaign_playbooks_volume_ops.third_run).

Two operations, on volumes of three replicas (node1-3, engine and nvmf frontend on node1):

* ``create``: create_volume.yml of a new volume. Checks: a pattern written through the frontend reads back,
  the RAID online over the three replicas, the namespace in ANA group 1 (check_serving);
* ``delete``: delete_volume.yml of a volume with data and the engine snapshot s1
  (test_fault_campaign_playbooks_volume_ops.prepare). Checks: none of its lvols, snapshots, exports,
  controllers, RAID, frontend or record entries is left on any node.

and for both, on every node, no lock subsystem and exactly the objects of the site's other volumes (no stray
lvol, subsystem, controller or RAID: Site.check_nothing_left). The site's volumes stay from case to case, so
a node that dies takes their replicas (or, node1, their engines) down too, and the recovery must bring every
one of them back.

A delete cut off this way leaves the volume half deleted (no engine, the replicas gone on some nodes), and its
tombstone on every node (delete_volume.yml writes them before it deletes anything): so recover_node.yml must
leave that volume out and repair every other (it once failed on it in tasks/engine_replicas.yml, "Replicas of
<volume> without an export on their node", from delete step 7 on, and with any_errors_fatal left the other
engines unrepaired); create_volume.yml and snapshot_volume.yml must refuse it, naming the delete and sending no
mutating RPC (asserted after the recovery, with every node up); and the delete re-run must finish it and take the
tombstones away.

Which steps: make test runs two cases, the middle step of create and the first of delete (2.5 minutes for the
file on the emulator, 7 while another suite loaded the cores: a case costs four playbook runs).
SPDK_FAULT_STEPS=methods runs the first step of every distinct RPC method each operation sends, and its last
(test_fault_campaign_playbooks.chosen_steps); SPDK_FAULT_STEPS=all every step, SPDK_FAULT_STEPS=6,7 those steps
(to replay a case). The steps are counted over nodes that work in parallel, so the request at a step (its method
and node) can differ from one run to the next: each case names the one it killed. The size of the matrix and its
time are printed per operation (methods: create 9 cases of 21 steps in 775 s, delete 6 of 14 in 420 s; all:
delete 14 of 14 in 922 s, create 21 of 21 in 39 minutes for the file beside another campaign; on two cores).
"""
import json
import os
import re
import subprocess
import time

import pytest

from tests.integration.spdk_targets import TARGET
from tests.integration.test_fault_campaign import StepTrap
from tests.integration.test_fault_campaign_playbooks import NODES, Counter, chosen_steps, objects_of, started_site, volume
from tests.integration.test_fault_campaign_playbooks_volume_ops import (
    DATA,
    check_serving,
    kill_target,
    prepare,
    third_run,
)
from tests.integration.volume_helpers import pattern_file, spdk_io, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MATRIX = []          # (operation, step, method, node, outcome, seconds) of every case run
FAILED = re.compile(r"^(?:fatal|failed): \[(node\d)\].*? => (\{.*)$", re.M)


@pytest.fixture(scope="module")
def site(module_ansible_runner):
    """The three nodes started, their disks attached; ``site.volumes``: the names of the volumes it holds."""
    for started in started_site(module_ansible_runner):
        started.volumes = []
        yield started


def chosen(operation, methods):
    """The steps whose target dies: see the module's docstring."""
    if os.environ.get("SPDK_FAULT_STEPS"):
        return chosen_steps(methods)
    return [(len(methods) + 1) // 2] if operation == "create" else [1]


def inventory(site, *more):
    """The extra vars of every run: every volume of the site (and ``more``) in spdk_volumes."""
    return {"spdk_volumes": [volume(name) for name in site.volumes + [n for n in more if n not in site.volumes]]}


def set_trap(site, trap):
    """The trap at every node's door, knowing the node (the name of the node whose target to kill)."""
    for node, recorder in site.recorders.items():
        recorder.gate = trap.at(recorder.back, node) if trap is not None else None


def target_killed_at(site, step, playbook, **extra):
    """Run ``playbook``; when its ``step``-th mutating request is at a node's door, kill that node's target,
    then drop the request; let the playbook end by itself. Returns (trap, rc, output)."""
    trap = StepTrap(step, delivered=False)
    set_trap(site, trap)
    log = os.path.join(site.root, "killed-%d.log" % (site.runs + 1))
    run = site.start(playbook, **extra)
    try:
        assert wait_for(lambda: trap.reached.is_set() or run.poll() is not None, timeout=300), "no end, no step"
        assert trap.reached.is_set(), "%s ended (rc %s) before step %d" % (playbook, run.returncode, step)
        kill_target(site, trap.node)
    finally:
        trap.released.set()
        set_trap(site, None)
    try:
        rc = run.wait(600)
    except Exception:
        site.kill(run)
        raise
    with open(log) as handle:
        return trap, rc, handle.read()


def outcome_of(rc, output):
    """'failed: <the first failure>' or 'finished with warnings'; a run that finished without a warning, or
    with a host unreachable instead of failed, is refused here."""
    failures = FAILED.findall(output)
    if rc != 0:
        assert failures, "rc %d and no task failed:\n%s" % (rc, output[-6000:])
        node, result = failures[0]
        try:
            result = json.loads(result).get("msg", result)
        except ValueError:
            pass
        return "failed on %s: %s" % (node, str(result)[:400])
    assert "[WARNING]" in output, "the run finished with no failure and no warning:\n%s" % output[-6000:]
    return "finished with warnings"


def run_case(site, operation, playbook, step, steps, name, extra_of):
    """One case: the target killed at ``step``, the node recovered, the playbook run again and a third time.
    Returns the case's label."""
    started = time.monotonic()
    trap, rc, output = target_killed_at(site, step, playbook, **extra_of(name))
    outcome = outcome_of(rc, output)
    case = "%s of %s with %s's target killed at step %d of %d (%s; the playbook %s)" % (
        operation, name, trap.node, step, steps, trap.method, outcome)
    print("\n" + case)
    site.run("recover_node.yml", "the recovery of " + case, node=trap.node, **inventory(site, name))
    if operation == "delete":
        check_the_delete_is_left_to_finish(site, case, name)
    site.run(playbook, "the re-run of " + case, **extra_of(name))
    third_run(site, playbook, case, **extra_of(name))
    MATRIX.append((operation, step, trap.method, trap.node, outcome.split(":")[0], time.monotonic() - started))
    return case


def check_the_delete_is_left_to_finish(site, case, name):
    """After the recovery of a delete cut off by a dead target: volume ``name`` has its tombstone on every node;
    create_volume.yml refuses it, and so does snapshot_volume.yml, each naming the delete and sending no
    mutating RPC."""
    marked = [node for node in NODES if name in site.record(node).get("tombstones", {})]
    assert marked == list(NODES), "%s: the tombstones of %s are on %s only" % (case, name, marked)
    refusals = (("create_volume.yml", {}, "The deletion of %s began and did not finish" % name,
                 "delete_volume.yml -e volume=<name>"),
                # the replicas' check names the delete when some are gone, spdk_snapshot's refusal when none is
                ("snapshot_volume.yml", {"snapshot": "s9"}, "delete_volume.yml -e volume=%s" % name, ""))
    for playbook, extra, refusal, advice in refusals:
        counter = Counter()
        site.set_gate(counter)
        try:
            done = subprocess.run(site.command(playbook, volume=name, **dict(extra, **inventory(site, name))),
                                  env=site.env, capture_output=True, text=True, timeout=600, check=False)
        finally:
            site.set_gate(None)
        output = " ".join((done.stdout + done.stderr).split())
        assert done.returncode != 0 and refusal in output and advice in output, \
            "%s: %s did not refuse %s:\n%s" % (case, playbook, name, output[-6000:])
        assert counter.methods == [], (case, playbook, counter.methods)


def recorded(site, name):
    """{node: the entries (engines, exposures, snapshots, tombstones) of volume ``name`` in the node's record}."""
    entries = {}
    for node in NODES:
        record = site.record(node)
        keys = [key for part in ("engines", "exposures", "snapshots", "tombstones") for key in record.get(part, {})
                if re.search(r"\b%s\b" % name, key)]
        if keys:
            entries[node] = keys
    return entries


def report(operation, methods):
    cases = [case for case in MATRIX if case[0] == operation]
    print("\ntarget deaths during %s_volume.yml on the %s: %d cases of %d steps in %.0fs (%s)" % (
        operation, TARGET.name, len(cases), len(methods), sum(case[5] for case in cases),
        "; ".join("step %d %s on %s, %s" % case[1:5] for case in cases)))


def test_create_volume_whose_target_dies_at_a_step_recovers_converges_and_serves_io(site):
    site.expected = {node: site.objects(node) for node in NODES}

    def extra_of(name):
        return dict(inventory(site, name), volume=name)

    counter = site.count("create_volume.yml", "tdnew0", **extra_of("tdnew0"))
    site.volumes.append("tdnew0")
    for node, held in objects_of("tdnew0").items():
        site.expected[node] |= held
    site.check_nothing_left("the counting run of create")
    data = pattern_file(os.path.join(site.root, "created.bin"), "created", DATA)
    for step in chosen("create", counter.methods):
        name = "tdnew%d" % step
        case = run_case(site, "create", "create_volume.yml", step, len(counter.methods), name, extra_of)
        site.volumes.append(name)
        for node, held in objects_of(name).items():
            site.expected[node] |= held
        spdk_io("write", *site.frontend(name), "--offset", "0", "--file", data)
        check_serving(site, name, data, case)
        site.check_nothing_left(case)
    report("create", counter.methods)


def test_delete_volume_whose_target_dies_at_a_step_recovers_and_deletes_everything(site):
    site.expected = {node: site.objects(node) for node in NODES}

    def extra_of(name):
        return dict(inventory(site, name), volume=name)

    prepare(site, ["tddel0"])
    site.volumes.append("tddel0")
    counter = site.count("delete_volume.yml", "tddel0", **extra_of("tddel0"))
    site.volumes.remove("tddel0")
    for node, held in objects_of("tddel0", ["s1"]).items():
        site.expected[node] -= held
    site.check_nothing_left("the counting run of delete")
    steps = chosen("delete", counter.methods)
    names = ["tddel%d" % step for step in steps]
    prepare(site, names)
    site.volumes.extend(names)
    for step, name in zip(steps, names):
        case = run_case(site, "delete", "delete_volume.yml", step, len(counter.methods), name, extra_of)
        site.volumes.remove(name)
        gone = objects_of(name, ["s1"])
        left = {node: sorted(held & site.objects(node)) for node, held in gone.items() if held & site.objects(node)}
        assert left == {} and recorded(site, name) == {}, "%s: left of %s: %s, in the records: %s" % (
            case, name, left, recorded(site, name))
        for node, held in gone.items():
            site.expected[node] -= held
        site.check_nothing_left(case)
    report("delete", counter.methods)

"""The playbook fault campaign, continued: engine snapshot, revert, rebuild and recovery killed at a step.

The machinery is tests/integration/test_fault_campaign_playbooks's: inventories/emulated under a private
root, every node's target behind an RpcRecorder gate of this process, ansible-playbook run as its own
process, the N-th mutating request (counted over every node, the volume lock's included) held at the
target's door while the playbook and every process under it are SIGKILLed, then dropped (the step never
happened) or delivered (it happened and nobody saw the answer). Here the site has a fourth storage node,
node4 (an inventory of the site's added after inventories/emulated: same group vars), so that a volume of
three replicas (node1-3, engine and nvmf frontend on node1) can have one of them rebuilt elsewhere.

Four operations, each on volumes of their own with data (pattern A, then for snapshot-based ones the engine
snapshot s1, then pattern B over it):

* ``recover``: node3's target is killed (SIGKILL, its replica misses the write of a new pattern), then
  recover_node.yml -e node=node3 is killed at step N. One volume serves every case in turn; this test
  runs first, while the site holds no other volume that the killed node would leave degraded.
  Re-run: the engine healthy, every replica (node3's rebuilt) holds the new pattern.
* ``snapshot``: snapshot_volume.yml creating the engine snapshot s2 on a volume holding A. Re-run: s2 on
  every replica reads A (read through a temporary export of each copy on its own node), the volume still A.
* ``revert``: snapshot_volume.yml -e snapshot_action=revert to s1 (taken before B). Re-run: the volume
  reads A, and so does every replica's head (read through a temporary snapshot of each head, exported on
  its node and deleted after): never mixed; the frontend back (never offline after the re-run).
* ``rebuild``: rebuild_replica.yml replacing node3's replica by a new one on node4, copied from node2's
  (online, under the live frontend). Re-run: the volume's bytes (all of it) as before, the RAID over
  node1, node2 and node4, s1 on each of them reads A, node3's replica, snapshot and export gone.

Every case then asserts convergence (the re-run succeeds and a third run reports changed=0 on every host
and sends no mutating RPC; a revert is the exception, see below), no lock
subsystem, on every node exactly the objects of the volumes that should be there (no stray lvol,
subsystem, controller or RAID), host I/O not paused (the frontend's namespace in ANA group 1, and the
volume read back through it).

Which cases run: by default (make test) the first and the middle step of each operation, the first delivered
and the middle dropped (8 cases). SPDK_FAULT_STEPS=sample adds the last step, dropped (12 cases). A case costs
three playbook runs, 25 to 40 s on two quiet cores (a recovery the most), so the 12 sample cases take about 6
minutes and the file about 8 with its set-up (18 while real targets of another suite kept the cores busy);
make test's 8 cases keep its total under its limit. The variant chosen is the one that leaves work for the re-
run: a first step that landed (most often the volume lock, whose holder is dead, or the first object of the
operation) must be taken over or finished, where a dropped one leaves nothing at all; a last step dropped
leaves the operation's last object (the lock, most often) behind, where a delivered one leaves a finished run.
SPDK_FAULT_STEPS=methods runs, dropped and delivered, the first step of every distinct RPC method the
operation sends and its last; SPDK_FAULT_STEPS=all every step; SPDK_FAULT_STEPS=6,7 (step numbers) those
steps both ways, to replay a case. The size of the matrix and its time are printed per operation.

A revert run again is not idempotent by design: snapshot_volume.yml removes the frontend and creates it
again before spdk_snapshot can tell (it refuses any revert under a frontend) whether the revert is done,
i.e. the record marks it done and every head is the one it made, with as many allocated clusters. So the
revert's third run asserts what it promises: only node1 changed, and either spdk_snapshot reported the
revert done and no RPC but nvmf_* was sent (the data path untouched), or it reverted every replica again
(a frontend came back since the first revert); the checks after it hold either way.

That "done" test missed a host write after the revert into a cluster the head already holds: with clusters
over 1 MiB (spdk_disk cluster_size 4MiB) the superblock's cluster holds the volume's first bytes too, and a
second revert to the same snapshot changed nothing. The last test shows it with the modules; spdk_engine now
forgets a finished revert when it exports the engine again, so a revert after the frontend came back runs.
"""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from ansible_collections.spdk.storage.plugins.modules import spdk_disk
from tests.integration.spdk_targets import TARGET
from tests.integration.test_engine_snapshot_emulated import Volume
from tests.integration.test_fault_campaign_playbooks import (
    Counter,
    DATA,
    FIRST_PORT,
    MATRIX,
    NODES,
    SNAPSHOT_PLAY,
    chosen_steps,
    kill_at,
    objects_of,
    started_site,
    volume,
)
from tests.integration.volume_helpers import (
    MIB,
    NQN_PREFIX,
    SB,
    emulated,
    frontend,
    pattern_file,
    sha256_in,
    spdk_io,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NODE4 = {"node4": {
    "ansible_host": "127.0.0.4", "spdk_tgt_instance_id": 4, "spdk_nvmf_address": "127.0.0.4",
    "spdk_collection_root": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "spdk_node_dir": "{{ spdk_emulated_root }}/node4", "spdk_rpc_endpoint": "{{ spdk_emulated_root }}/node4/spdk.sock",
    "spdk_disks": [{"name": "disk1", "path": "{{ spdk_emulated_root }}/node4/disk1.img", "file_size": "2GiB"}]}}
ALL = NODES + ("node4",)
ADDRESS = {node: "127.0.0.%d" % (index + 1) for index, node in enumerate(ALL)}     # spdk_nvmf_address
PROBE_PORT = FIRST_PORT + 199        # the temporary exports' port: the last of the site's block
SIZE = 16 * MIB                      # volume() is 16 MiB
REBUILT = ("node1", "node2", "node4")
REBUILD = {"source_node": "node2", "destination_node": "node4", "replaced_node": "node3", "rebuild_poll_delay": 1}


@pytest.fixture(scope="module")
def site(module_ansible_runner):
    """Four nodes started, their disks attached."""
    yield from started_site(module_ansible_runner, NODE4)


def sha_of(path, length=DATA):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


def chosen_cases(methods):
    """(step, delivered) of every case to run: see the module's docstring."""
    steps = chosen_steps(methods)
    choice = os.environ.get("SPDK_FAULT_STEPS", "")
    if choice in ("methods", "all") or choice[:1].isdigit():
        return [(step, delivered) for step in steps for delivered in (False, True)]
    if choice != "sample":
        steps = steps[:2]       # make test: the first step delivered and the middle one dropped
    return [(step, step == 1) for step in steps]


def read_through(site, node, bdev):
    """sha256 of [SB, SB + DATA) of ``bdev`` on ``node``, read through a temporary export on its node."""
    nqn = NQN_PREFIX + "fault-probe"       # the node exports a replica or a frontend: its TCP transport exists
    site.call(node, "nvmf_create_subsystem", nqn=nqn, allow_any_host=True)
    try:
        site.call(node, "nvmf_subsystem_add_ns", nqn=nqn, namespace={"bdev_name": bdev})
        site.call(node, "nvmf_subsystem_add_listener", nqn=nqn, listen_address={
            "trtype": "TCP", "adrfam": "IPv4", "traddr": ADDRESS[node], "trsvcid": str(PROBE_PORT)})
        out = spdk_io("read", nqn, ADDRESS[node], PROBE_PORT, "--offset", str(SB), "--length", str(DATA),
                      "--sha256").stdout
        return sha256_in(out)
    finally:
        site.call(node, "nvmf_delete_subsystem", nqn=nqn)


def snapshot_bytes(site, name, snapshot, nodes=NODES):
    """{replica: sha256 of its copy of the engine snapshot ``snapshot``}."""
    return {"%s-%s" % (name, node): read_through(site, node, "disk1/%s-%s-snap-%s" % (name, node, snapshot))
            for node in nodes}


def head_bytes(site, name, nodes=NODES):
    """{replica: sha256 of its head}, read through a temporary snapshot of the head (the RAID holds the head
    itself), deleted afterwards (merged into the head, its only child)."""
    digests = {}
    for node in nodes:
        replica = "%s-%s" % (name, node)
        site.call(node, "bdev_lvol_snapshot", lvol_name="disk1/" + replica, snapshot_name=replica + "-probe")
        try:
            digests[replica] = read_through(site, node, "disk1/%s-probe" % replica)
        finally:
            site.call(node, "bdev_lvol_delete", name="disk1/%s-probe" % replica)
    return digests


def raid_members(site, name):
    """The replicas the engine's RAID is made of (online, every member configured), sorted: the local one by
    its lvol alias, the remote ones by their controller's bdev (``<controller>n1``)."""
    [raid] = [r for r in site.call("node1", "bdev_raid_get_bdevs", category="all") if r["name"] == name]
    assert raid["state"] == "online" and all(m["is_configured"] for m in raid["base_bdevs_list"]), raid
    lvols = {}                                   # lvol bdev name or alias -> replica name
    for bdev in site.call("node1", "bdev_get_bdevs"):
        for alias in [a for a in bdev.get("aliases") or [] if "/" in a]:
            lvols[bdev["name"]] = lvols[alias] = alias.split("/", 1)[1]
    return sorted(lvols.get(member["name"], member["name"][:-2]) for member in raid["base_bdevs_list"])


def volume_sha(site, name):
    """sha256 of the whole volume read through its frontend."""
    return sha256_in(spdk_io("read", *site.frontend(name), "--offset", "0", "--length", str(SIZE), "--sha256").stdout)


def check_serving(site, name, data, case, nodes=NODES):
    """The RAID online over the replicas of ``nodes``, the frontend's namespace in ANA group 1 (host I/O not
    paused) and ``data`` read back through it."""
    members = raid_members(site, name)
    assert members == ["%s-%s" % (name, node) for node in nodes], "%s: RAID members %s" % (case, members)
    nqn = NQN_PREFIX + name
    [subsystem] = [s for s in site.call("node1", "nvmf_get_subsystems") if s["nqn"] == nqn]
    groups = [ns.get("anagrpid") for ns in subsystem["namespaces"]]
    assert groups == [1], "%s: host I/O paused or no namespace (ANA groups %s)" % (case, groups)
    spdk_io("verify", *site.frontend(name), "--offset", "0", "--file", data)


def report(operation, methods):
    """The operation's line of the matrix: its cases, of how many steps, and their time."""
    cases = [case for case in MATRIX if case[0] == operation]
    which = ", ".join("%d %s" % (case[1], "delivered" if case[2] else "dropped") for case in cases)
    print("\nplaybook fault campaign %s on the %s: %d cases (%s) of %d steps (%s) in %.0fs" % (
        operation, TARGET.name, len(cases), which, len(methods), " ".join(methods), sum(case[3] for case in cases)))


def third_run(site, playbook, case, idle=None, **extra):
    """The run after the re-run: it changes nothing (changed=0 on every host) and sends no mutating RPC;
    or, for a playbook that is not idempotent by design, ``idle(changed, output, methods)`` asserts what
    it promises (``methods``: the mutating RPCs the run sent)."""
    counter = Counter()
    site.set_gate(counter)
    try:
        changed, output = site.run(playbook, "the third run of " + case, **extra)
    finally:
        site.set_gate(None)
    if idle is not None:
        idle(changed, output, counter.methods)
        return
    assert set(changed.values()) == {0} and counter.methods == [], \
        "the third run of %s changed something (%s):\n%s" % (case, counter.methods, output[-6000:])


def run_cases(site, operation, playbook, counter, names, extra_of, check, idle=None):
    """Every chosen case of ``operation``, one volume of ``names`` each: killed, re-run, run a third time
    (third_run), then ``check(name, case)`` and nothing left."""
    cases = chosen_cases(counter.methods)
    assert len(names) >= len(cases), (names, cases)
    for (step, delivered), name in zip(cases, names):
        started = time.monotonic()
        extra = extra_of(name)
        case = "%s of %s %s" % (operation, name, kill_at(site, step, delivered, playbook, **extra))
        site.run(playbook, "the re-run of " + case, **extra)
        third_run(site, playbook, case, idle, **extra)
        check(name, case)
        site.check_nothing_left(case)
        MATRIX.append((operation, step, delivered, time.monotonic() - started))
    report(operation, counter.methods)


def prepare(site, names, snapshot=True):
    """Volumes ``names`` created with A written; with ``snapshot`` the engine snapshot s1 of each, then B."""
    vols = [volume(name) for name in names]
    site.run("create_volume.yml", "creating " + ", ".join(names), spdk_volumes=vols)
    first = pattern_file(os.path.join(site.root, "a.bin"), "before", DATA)
    second = pattern_file(os.path.join(site.root, "b.bin"), "after", DATA)
    for name in names:
        spdk_io("write", *site.frontend(name), "--offset", "0", "--file", first)
    if snapshot:
        if not os.path.exists(site.root + "/snapshot.yml"):
            with open(site.root + "/snapshot.yml", "w") as handle:
                json.dump(SNAPSHOT_PLAY, handle)          # JSON is YAML
        site.run(site.root + "/snapshot.yml", "taking s1", spdk_volumes=vols)
        for name in names:
            spdk_io("write", *site.frontend(name), "--offset", "0", "--file", second)
    for name in names:
        for node, held in objects_of(name, ["s1"] if snapshot else []).items():
            site.expected[node] |= held
    return first, second


def campaign_volumes(prefix, count):
    """The names of ``count`` volumes, one per case (``<prefix>0`` is the counting run's)."""
    return ["%s%d" % (prefix, index) for index in range(1, count + 1)]


def kill_target(site, node):
    """SIGKILL the node's target (its supervisor's session) and wait until its socket is gone or dead."""
    with open(os.path.join(site.root, node, "spdk_tgt.pid")) as handle:
        pid = int(handle.read().strip())
    os.killpg(pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(pid), timeout=20), "the target of %s (pid %d) did not die" % (node, pid)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_recover_node_killed_at_a_step_converges_with_every_replica_current(site):
    name = "prec"
    site.expected = {node: site.objects(node) for node in ALL}
    prepare(site, [name], snapshot=False)
    extra = {"spdk_volumes": [volume(name)], "node": "node3"}
    writes = [0]

    def degrade():
        """node3's target killed and a new pattern written through the degraded engine: the path of it."""
        kill_target(site, "node3")
        writes[0] += 1
        data = pattern_file(os.path.join(site.root, "w%d.bin" % writes[0]), "degraded-%d" % writes[0], DATA)
        spdk_io("write", *site.frontend(name), "--offset", "0", "--file", data)
        return data

    data = degrade()
    counter = site.count("recover_node.yml", name, least=3, **extra)
    check_recovered(site, name, data, "the counting run")
    for (step, delivered) in chosen_cases(counter.methods):
        started = time.monotonic()
        data = degrade()
        case = "recover of node3 %s" % kill_at(site, step, delivered, "recover_node.yml", volume=name, **extra)
        site.run("recover_node.yml", "the re-run of " + case, volume=name, **extra)
        third_run(site, "recover_node.yml", case, volume=name, **extra)
        check_recovered(site, name, data, case)
        MATRIX.append(("recover", step, delivered, time.monotonic() - started))
    report("recover", counter.methods)


def check_recovered(site, name, data, case):
    check_serving(site, name, data, case)
    heads = head_bytes(site, name)
    assert set(heads.values()) == {sha_of(data)}, "%s: replicas %s, expected %s" % (case, heads, sha_of(data))
    site.check_nothing_left(case)


def test_snapshot_create_killed_at_a_step_converges_with_the_same_snapshot_everywhere(site):
    site.expected = {node: site.objects(node) for node in ALL}
    first = prepare(site, ["psnap0"], snapshot=False)[0]

    def extra_of(name):
        return {"spdk_volumes": [volume(name)], "volume": name, "snapshot": "s2"}

    counter = site.count("snapshot_volume.yml", "psnap0", least=3, **extra_of("psnap0"))
    names = campaign_volumes("psnap", len(chosen_cases(counter.methods)))
    prepare(site, names, snapshot=False)
    for node, held in objects_of("psnap0", ["s2"]).items():
        site.expected[node] |= held

    def check(name, case):
        for node, held in objects_of(name, ["s2"]).items():
            site.expected[node] |= held
        copies = snapshot_bytes(site, name, "s2")
        assert set(copies.values()) == {sha_of(first)}, "%s: s2 is %s, expected %s" % (case, copies, sha_of(first))
        check_serving(site, name, first, case)

    run_cases(site, "snapshot", "snapshot_volume.yml", counter, names, extra_of, check)


def test_revert_killed_at_a_step_converges_with_every_replica_reverted(site):
    site.expected = {node: site.objects(node) for node in ALL}
    first = prepare(site, ["prev0"])[0]

    def extra_of(name):
        return {"spdk_volumes": [volume(name)], "volume": name, "snapshot": "s1", "snapshot_action": "revert"}

    counter = site.count("snapshot_volume.yml", "prev0", least=3, **extra_of("prev0"))
    names = campaign_volumes("prev", len(chosen_cases(counter.methods)))
    prepare(site, names)

    def check(name, case):
        check_serving(site, name, first, case)
        heads = head_bytes(site, name)
        assert set(heads.values()) == {sha_of(first)}, "%s: heads %s, expected s1's %s" % (case, heads, sha_of(first))
        copies = snapshot_bytes(site, name, "s1")
        assert set(copies.values()) == {sha_of(first)}, "%s: s1 is %s" % (case, copies)

    def idle(changed, output, methods):
        """A revert run again removes the frontend and creates it again (snapshot_volume.yml does so before it
        can ask spdk_snapshot, which refuses any revert under a frontend): only node1 changes. spdk_snapshot
        either finds the revert done (two changes, no RPC touches a bdev) or, as the frontend came back since
        (hosts may have written), reverts every replica again; check() then finds every replica reverted."""
        assert [host for host, count in changed.items() if count and host != "node1"] == [], changed
        if "nothing to do (revert s1 already done)" in output:
            assert changed["node1"] == 2, (changed, output[-6000:])
            assert [m for m in methods if not m.startswith("nvmf_")] == [], methods
        else:
            assert "reverted to s1 on every replica" in output, output[-6000:]

    run_cases(site, "revert", "snapshot_volume.yml", counter, names, extra_of, check, idle)


def test_rebuild_killed_at_a_step_converges_onto_the_new_replica_set(site):
    site.expected = {node: site.objects(node) for node in ALL}
    first, second = prepare(site, ["preb0"])

    def extra_of(name):
        return dict(REBUILD, spdk_volumes=[volume(name)], volume=name)

    before = {"preb0": volume_sha(site, "preb0")}
    counter = site.count("rebuild_replica.yml", "preb0", least=3, **extra_of("preb0"))
    names = campaign_volumes("preb", len(chosen_cases(counter.methods)))
    prepare(site, names)
    before.update((name, volume_sha(site, name)) for name in names)

    def check(name, case):
        for node, held in objects_of(name, ["s1"]).items():
            site.expected[node] -= held
        for node, held in objects_of(name, ["s1"], REBUILT).items():
            site.expected[node] |= held
        check_serving(site, name, second, case, REBUILT)
        assert volume_sha(site, name) == before[name], "%s: the volume's bytes changed" % case
        copies = snapshot_bytes(site, name, "s1", REBUILT)
        assert set(copies.values()) == {sha_of(first)}, "%s: s1 is %s" % (case, copies)

    check("preb0", "the counting run")
    site.check_nothing_left("the counting run")
    run_cases(site, "rebuild", "rebuild_replica.yml", counter, names, extra_of, check)


def test_a_join_that_fails_ends_rebuild_replica_yml_at_once_with_the_module_s_message(site):
    """The rebuild matrix's 53rd case, on purpose: node4's disk fills up after the rebuild checked its space
    (another volume grew), so the RAID1 rebuild's writes to the new replica fail and SPDK drops it from the
    RAID. The playbook used to run the join again and again (each add answered true, each rebuild failed) for
    rebuild_wait_timeout; it now stops at the join's first failure, with the module's message naming the full
    disk, and adds the new replica once only. With the space freed, a run after it converges."""
    site.expected = {node: site.objects(node) for node in ALL}
    first = prepare(site, ["pjoin"], snapshot=False)[0]
    before = volume_sha(site, "pjoin")
    # At most 20 polls of the join (rebuild_poll_delay 1): a playbook that runs a failed join again fails
    # this test in seconds, not after an hour.
    extra = dict(REBUILD, spdk_volumes=[volume("pjoin")], volume="pjoin", rebuild_wait_timeout=20)
    adds = []

    def fill_node4_first(method, _params):
        if method == "bdev_raid_add_base_bdev":
            adds.append(method)
            if len(adds) == 1:
                [disk] = site.call("node4", "bdev_lvol_get_lvstores")
                site.call("node4", "bdev_lvol_create", lvs_name="disk1", lvol_name="filler", thin_provision=False,
                          size_in_mib=disk["free_clusters"] * disk["cluster_size"] // MIB)

    site.set_gate(fill_node4_first)
    try:
        failed = subprocess.run(site.command("rebuild_replica.yml", **extra), env=site.env, capture_output=True,
                                text=True, timeout=600, check=False)
    finally:
        site.set_gate(None)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and len(adds) == 1, "the join ran %d times:\n%s" % (len(adds), output[-6000:])
    [fatal] = [line for line in output.splitlines() if line.startswith("fatal: ")]
    # Whether the join's own poll saw SPDK drop the new replica, or the next poll's plan found the disk full
    # first, depends on timing: either way the run ends there and names the full disk.
    assert ("the new replica left RAID pjoin during its rebuild" in fatal and "its disk disk1 is full" in fatal
            or "disk disk1 on the destination node has 0 free clusters" in fatal), fatal

    site.call("node4", "bdev_lvol_delete", name="disk1/filler")
    site.run("rebuild_replica.yml", "the run after the failed join", **extra)
    for node, held in objects_of("pjoin").items():
        site.expected[node] -= held
    for node, held in objects_of("pjoin", (), REBUILT).items():
        site.expected[node] |= held
    check_serving(site, "pjoin", first, "the run after the failed join", REBUILT)
    assert volume_sha(site, "pjoin") == before, "the volume's bytes changed"
    site.check_nothing_left("the run after the failed join")


class FourMiBClusters(Volume):
    """test_engine_snapshot_emulated's volume on disks of 4 MiB clusters (SPDK's own default): the first
    cluster of a head holds the RAID superblock area (1 MiB) and the volume's first 3 MiB."""

    def disk(self, node, size=None):
        return self.ok(spdk_disk, node, name="disk%d" % node.idx, cluster_size="4MiB",
                       path=node.disk("disk%d.img" % node.idx, size or self.disk_size))


def test_a_second_revert_after_writes_in_the_superblock_cluster_reverts_again():
    """Found while asserting what a revert run again promises (the campaign's third runs report the revert
    done): revert to s1, write 4 KiB at the volume's offset 0, revert to s1 again: the volume must read s1."""
    for vol in emulated(FourMiBClusters, "revagain-"):
        vol.start()
        nqn, addr, port = frontend(vol.engine())
        first = pattern_file(os.path.join(vol.workdir, "a.bin"), "A", MIB)
        spdk_io("write", nqn, addr, port, "--offset", "0", "--file", first)
        assert not vol.snapshot(name="s1").failed
        later = pattern_file(os.path.join(vol.workdir, "b.bin"), "B", 4096)
        for attempt in ("first", "second"):
            spdk_io("write", nqn, addr, port, "--offset", "0", "--file", later)
            vol.engine(frontend="none")
            outcome = vol.snapshot(name="s1", state="reverted")
            assert not outcome.failed and outcome.changed, "the %s revert: %s" % (attempt, outcome.msg)
            nqn, addr, port = frontend(vol.engine())
            spdk_io("verify", nqn, addr, port, "--offset", "0", "--file", first)

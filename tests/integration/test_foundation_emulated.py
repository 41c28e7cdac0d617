"""The foundation modules end to end: spdk_disk, spdk_replica, spdk_snapshot and spdk_info driven by
ansible-playbook / ansible against a target (the emulator, or the real spdk_tgt named by SPDK_TGT).

Every scenario runs its sequence twice and expects the second run to change nothing. "Sends no
mutating RPC" is proved from the emulator's per-node RPC log; on a real target, where there is no
such log, the node's state before and after is compared instead (always done on the emulator too).
"""
import hashlib
import uuid

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MiB = 1 << 20
DISK = "d1"
REPLICA = "r1"
SNAPSHOT = "s1"
NQN_PREFIX = "nqn.2026-01.io.spdk-storage:"
HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:5e7b61c4-0c6f-4b2d-9b8e-2f1d3c4a5b6c"

# What each module's DOCUMENTATION says one no-op run sends (all reads, one batch).
DOCUMENTED_NOOP_RPCS = {
    "spdk_disk": 2,
    "spdk_replica": 3,
    "spdk_snapshot": 3,
    "spdk_info": 6,
}


# ---- task lists ---------------------------------------------------------------------------------

def disk_task(name, path, label=None, **extra):
    return (label or "disk " + name, "spdk.storage.spdk_disk", dict(name=name, path=path, **extra))


def replica_task(target, name, size="64MiB", label=None, **extra):
    args = dict(name=name, disk=DISK, size=size, expose=True, listen_address=target.address,
                allowed_hosts=[HOST_NQN])
    args.update(extra)
    return (label or "replica " + name, "spdk.storage.spdk_replica", args)


def snapshot_task(name, replica=REPLICA, label=None, **extra):
    return (label or "snapshot " + name, "spdk.storage.spdk_snapshot", dict(name=name, replica=replica, **extra))


def info_task():
    return ("info", "spdk.storage.spdk_info", {})


def foundation_sequence(target, disk_path):
    """The ad-hoc sequence of the issue: disk, exposed thin replica, snapshot, info."""
    return [disk_task(DISK, disk_path), replica_task(target, REPLICA), snapshot_task(SNAPSHOT), info_task()]


# ---- assertions shared by the scenarios ---------------------------------------------------------

def mutating(calls):
    return [call["method"] for call in calls if call["mutating"]]


def assert_nothing_changed(run):
    changed = [task.name for task in run if task.changed]
    assert changed == [], "a repeated run changed %s" % changed


def assert_no_mutation(target, mark, state_before):
    """No mutating RPC reached the target since ``mark`` and its state is what it was."""
    calls = target.calls_since(mark)
    assert mutating(calls) == [], "mutating RPCs were sent: %s" % mutating(calls)
    assert target.state() == state_before


def task_rpcs(target, task):
    """The RPCs one task sent, from the target's RPC log."""
    return [call["method"] for call in target.calls_between(task.start, task.end)]


def action_methods(task):
    return [action["method"] for action in task.get("actions", [])]


def replica_in(info, name):
    found = [replica for replica in info["replicas"] if replica["name"] == name]
    assert len(found) == 1, "replica %s in spdk_info: %r" % (name, info["replicas"])
    return found[0]


# ---- scenario 1: the ad-hoc sequence, repeated, then a check-mode run -------------------------------

class SequenceRuns(object):
    pass


@pytest.fixture(scope="module")
def sequence(module_targets, module_ansible_runner):
    """Runs the foundation sequence twice, then a changing sequence in check mode (one target)."""
    target = module_targets()
    runs = SequenceRuns()
    runs.target = target
    runs.disk_path = target.disk_file(DISK)
    tasks = foundation_sequence(target, runs.disk_path)
    runs.first = module_ansible_runner.playbook(target, tasks)

    runs.state_before_second = target.state()
    runs.mark_second = target.log_mark()
    runs.second = module_ansible_runner.playbook(target, tasks)

    runs.absent = module_ansible_runner.playbook(target, absent_noops())

    runs.state_before_check = target.state()
    runs.mark_check = target.log_mark()
    runs.check = module_ansible_runner.playbook(target, changing_sequence(target), check=True)
    runs.state_after_check = target.state()
    runs.calls_in_check = target.calls_since(runs.mark_check)

    runs.adhoc_info = module_ansible_runner.adhoc(target, "spdk.storage.spdk_info", {})
    return runs


def changing_sequence(target):
    """Every task here would change the node built by foundation_sequence (run with --check)."""
    return [
        disk_task("d2", target.disk_file("d2")),
        replica_task(target, REPLICA, size="128MiB", label="grow r1"),
        replica_task(target, "r2"),
        snapshot_task("s2"),
        snapshot_task(SNAPSHOT, state="absent", label="delete snapshot s1"),
        ("stop r1", "spdk.storage.spdk_replica", dict(name=REPLICA, state="stopped")),
        ("wipe d1", "spdk.storage.spdk_disk", dict(name=DISK, state="absent", wipe=True, force=True)),
    ]


def absent_noops():
    """Removing what does not exist: each task must change nothing."""
    return [
        ("replica gone absent", "spdk.storage.spdk_replica", dict(name="gone", disk=DISK, state="absent")),
        snapshot_task("gone", state="absent", label="snapshot gone absent"),
        ("disk gone absent", "spdk.storage.spdk_disk", dict(name="gone", state="absent")),
    ]


def test_first_run_creates_the_disk_an_exposed_thin_replica_and_its_snapshot(sequence):
    first = sequence.first
    assert [task.changed for task in first] == [True, True, True, False]

    disk = first["disk " + DISK]["disk"]
    assert disk["name"] == DISK and disk["path"] == sequence.disk_path
    assert disk["fallocate"] is True, "the aio bdev must support unmap so freed clusters are cleared"
    assert "bdev_lvol_create_lvstore" in action_methods(first["disk " + DISK])

    replica = first["replica " + REPLICA]["replica"]
    assert (replica["size"], replica["thin"], replica["disk"]) == (64 * MiB, True, DISK)
    assert replica["exposure"]["nqn"] == NQN_PREFIX + REPLICA
    assert replica["exposure"]["listen_address"] == sequence.target.address
    assert replica["exposure"]["allowed_hosts"] == [HOST_NQN]
    assert replica["exposure"]["allow_any_host"] is False

    snapshot = first["snapshot " + SNAPSHOT]
    assert snapshot["snapshot"]["lvol_name"] == "%s-snap-%s" % (REPLICA, SNAPSHOT)
    assert snapshot["snapshot"]["children"] == [] and snapshot["snapshot"]["head_child"] is True


def test_info_shows_the_disk_the_replica_with_its_snapshot_tree_and_the_subsystem(sequence):
    info = sequence.first["info"]
    disks = {disk["name"]: disk for disk in info["disks"]}
    assert disks[DISK]["replicas"] == [REPLICA]
    assert sorted(disks[DISK]["lvols"]) == [REPLICA, "%s-snap-%s" % (REPLICA, SNAPSHOT)]

    replica = replica_in(info, REPLICA)
    assert [snap["name"] for snap in replica["snapshots"]] == [SNAPSHOT]
    assert replica["parent"] == SNAPSHOT and replica["chain"] == [SNAPSHOT]
    assert replica["snapshots"][0]["head_child"] is True
    assert replica["exposure"]["port"] == sequence.first["replica " + REPLICA]["replica"]["exposure"]["port"]

    subsystems = {subsystem["nqn"]: subsystem for subsystem in info["subsystems"]}
    assert NQN_PREFIX + REPLICA in subsystems
    assert subsystems[NQN_PREFIX + REPLICA]["allowed_hosts"] == [HOST_NQN]


def test_second_run_of_the_sequence_changes_nothing(sequence):
    assert_nothing_changed(sequence.second)
    assert_no_mutation(sequence.target, sequence.mark_second, sequence.state_before_second)
    # the second run reports the same objects the first one built
    assert sequence.second["disk " + DISK]["disk"]["uuid"] == sequence.first["disk " + DISK]["disk"]["uuid"]
    assert (sequence.second["replica " + REPLICA]["replica"]["exposure"]
            == sequence.first["replica " + REPLICA]["replica"]["exposure"])


def test_check_mode_reports_every_change_but_sends_no_mutating_rpc(sequence):
    would_change = [task.name for task in sequence.check if not task.changed]
    assert would_change == [], "check mode says these would not change: %s" % would_change
    for task in sequence.check:
        if "actions" in task.result:
            assert task["actions"], "%s: check mode lists no planned RPC" % task.name
    if sequence.calls_in_check is not None:
        assert mutating(sequence.calls_in_check) == []
    assert sequence.state_after_check == sequence.state_before_check


def test_adhoc_spdk_info_returns_what_the_playbook_saw(sequence):
    adhoc = sequence.adhoc_info
    assert adhoc["changed"] is False
    playbook_info = sequence.second["info"]
    assert adhoc["disks"] == playbook_info["disks"]
    assert adhoc["replicas"] == playbook_info["replicas"]


# ---- scenario 5: RPCs of one no-op run, per module ---------------------------------------------------

# (module, state) -> (which run of the sequence fixture, task name)
NOOP_TASKS = {
    ("spdk_disk", "present"): ("second", "disk " + DISK),
    ("spdk_replica", "present"): ("second", "replica " + REPLICA),
    ("spdk_snapshot", "present"): ("second", "snapshot " + SNAPSHOT),
    ("spdk_info", "-"): ("second", "info"),
    ("spdk_disk", "absent"): ("absent", "disk gone absent"),
    ("spdk_replica", "absent"): ("absent", "replica gone absent"),
    ("spdk_snapshot", "absent"): ("absent", "snapshot gone absent"),
}


@pytest.mark.parametrize("module, state", sorted(NOOP_TASKS), ids=lambda value: value)
def test_a_noop_run_sends_only_the_documented_reads(sequence, module, state, noop_rpc_report):
    run, name = NOOP_TASKS[(module, state)]
    task = getattr(sequence, run)[name]
    assert task.changed is False and not task.failed, task
    methods = task_rpcs(sequence.target, task)
    counted = len(methods)
    noop_rpc_report["%s state=%s" % (module, state)] = "%d (%s)" % (counted, ", ".join(methods))
    assert counted == task["rpc_calls"], "the module's rpc_calls disagrees with the RPC log: %s" % methods
    assert mutating(sequence.target.calls_between(task.start, task.end)) == []
    assert counted <= DOCUMENTED_NOOP_RPCS[module]


# ---- scenario 2: restart -------------------------------------------------------------------------------

def test_after_a_restart_the_disk_is_imported_with_its_replica_snapshot_and_data(
        spdk_targets, ansible_runner, host_io):
    target = spdk_targets()
    path = target.disk_file(DISK)
    io = host_io(HOST_NQN)

    setup = ansible_runner.playbook(target, [disk_task(DISK, path), replica_task(target, REPLICA)])
    disk_uuid = setup["disk " + DISK]["disk"]["uuid"]
    exposure = setup["replica " + REPLICA]["replica"]["exposure"]
    written = {}
    # [0, 2 MiB) before the snapshot (lands in it), [1, 2) MiB again after it (in the head)
    written["first MiB, in the snapshot"] = (0, io.write(exposure, 0, MiB, seed="before"))
    io.write(exposure, MiB, MiB, seed="before")
    ansible_runner.playbook(target, [snapshot_task(SNAPSHOT)])
    written["second MiB, in the head"] = (MiB, io.write(exposure, MiB, MiB, seed="after"))

    target.restart()
    mark = target.log_mark()
    after_restart = [disk_task(DISK, path, uuid=disk_uuid), replica_task(target, REPLICA),
                     snapshot_task(SNAPSHOT), info_task()]
    first = ansible_runner.playbook(target, after_restart)

    assert action_methods(first["disk " + DISK]) == ["bdev_aio_create"], "the lvstore is imported, not created"
    assert first["disk " + DISK]["disk"]["uuid"] == disk_uuid
    assert "bdev_lvol_create" not in action_methods(first["replica " + REPLICA])
    assert first["replica " + REPLICA]["replica"]["size"] == 64 * MiB
    assert (first["replica " + REPLICA]["replica"]["exposure"] == exposure), \
        "the same node state must give the same export (address, port, hosts)"
    assert first["snapshot " + SNAPSHOT].changed is False
    replica = replica_in(first["info"], REPLICA)
    assert [snap["name"] for snap in replica["snapshots"]] == [SNAPSHOT]
    calls = target.calls_since(mark)
    assert not {"bdev_lvol_create_lvstore", "bdev_lvol_create", "bdev_lvol_snapshot"} & set(mutating(calls))

    assert_nothing_changed(ansible_runner.playbook(target, after_restart))

    exposure = first["replica " + REPLICA]["replica"]["exposure"]
    for what, (offset, digest) in written.items():
        assert io.sha256(exposure, offset, MiB) == digest, "%s differs after the restart" % what


# ---- scenario 3: bad inputs change nothing -----------------------------------------------------------------

def bad_inputs(target, datadir, disk_path, disk_uuid):
    other_uuid = str(uuid.UUID(int=uuid.UUID(disk_uuid).int ^ 1))
    return [
        ("missing disk path", "spdk.storage.spdk_disk", dict(name="d2", path=datadir + "/missing.img")),
        replica_task(target, "r" * 64, label="name too long"),
        replica_task(target, REPLICA, size="32MiB", label="shrink"),
        ("wipe with replicas", "spdk.storage.spdk_disk", dict(name=DISK, state="absent", wipe=True)),
        disk_task(DISK, disk_path, uuid=other_uuid, label="wrong uuid"),
        ("socket absent", "spdk.storage.spdk_info",
         dict(rpc_socket=target.sock + ".absent", rpc_timeout=2)),
    ]


# key words each failure message must contain (lower case)
BAD_INPUT_WORDS = {
    "missing disk path": ["missing.img", "does not exist"],
    "name too long": ["64 characters", "63"],
    "shrink": ["shrink", "refused", "nothing was changed"],
    "wipe with replicas": [REPLICA, "in use", "force"],
    "wrong uuid": ["uuid", "not the expected"],
    "socket absent": ["cannot connect", ".absent", "spdk_tgt running"],
}


@pytest.mark.destructive
def test_bad_inputs_fail_clearly_and_change_nothing(spdk_targets, ansible_runner):
    target = spdk_targets()
    path = target.disk_file(DISK)
    setup = ansible_runner.playbook(target, [disk_task(DISK, path), replica_task(target, REPLICA)])
    tasks = bad_inputs(target, target.datadir, path, setup["disk " + DISK]["disk"]["uuid"])
    state = target.state()

    for attempt in ("first", "second"):
        mark = target.log_mark()
        run = ansible_runner.playbook(target, tasks, allow_failures=True)
        for task in run:
            assert task.failed, "%s run: %s did not fail: %r" % (attempt, task.name, task.result)
            assert task.changed is False
            message = task["msg"].lower()
            missing = [word for word in BAD_INPUT_WORDS[task.name] if word.lower() not in message]
            assert missing == [], "%s: message %r lacks %s" % (task.name, task["msg"], missing)
            assert "traceback" not in message
            calls = target.calls_between(task.start, task.end)
            assert mutating(calls) == [], "%s sent %s" % (task.name, mutating(calls))
        assert_no_mutation(target, mark, state)


@pytest.mark.destructive
def test_a_wrong_uuid_on_a_detached_device_is_attached_to_look_then_detached_again(
        spdk_targets, ansible_runner):
    target = spdk_targets()
    blank = target.disk_file("blank")
    state = target.state()
    run = ansible_runner.playbook(target, [disk_task("blank", blank, uuid=str(uuid.uuid4()))],
                                  allow_failures=True)
    task = run["disk blank"]
    assert task.failed and "not formatted" in task["msg"] and "no lvstore" in task["msg"]
    calls = target.calls_between(task.start, task.end)
    # looking inside requires the attach; nothing else may be sent
    assert mutating(calls) == ["bdev_aio_create", "bdev_aio_delete"]
    assert target.state() == state
    with open(blank, "rb") as handle:
        assert handle.read(MiB) == bytes(MiB), "the device was written to"


@pytest.mark.destructive
def test_a_forced_detach_removes_the_exports_of_the_disks_replicas_first(spdk_targets, ansible_runner):
    """Detaching only hot-removes the namespaces: without force removing them, the replica's subsystem and its
    listener would stay behind, exporting nothing."""
    target = spdk_targets()
    ansible_runner.playbook(target, [disk_task(DISK, target.disk_file(DISK)), replica_task(target, REPLICA)])
    detach = ("detach " + DISK, "spdk.storage.spdk_disk", dict(name=DISK, state="absent", force=True))
    task = ansible_runner.playbook(target, [detach])["detach " + DISK]
    assert task.changed and task["removed_exports"] == [NQN_PREFIX + REPLICA]
    assert NQN_PREFIX + REPLICA not in [s["nqn"] for s in target.rpc("nvmf_get_subsystems")]
    assert target.rpc("bdev_lvol_get_lvstores") == []


def test_rpc_calls_counts_nothing_when_the_socket_is_absent(spdk_targets, ansible_runner):
    target = spdk_targets()
    result = ansible_runner.adhoc(target, "spdk.storage.spdk_info", dict(rpc_socket=target.sock + ".absent",
                                                                         rpc_timeout=2))
    assert result["failed"] is True
    assert result["rpc_calls"] == 0


# ---- scenario 4: a new thin replica never shows a deleted replica's bytes --------------------------------------

@pytest.mark.destructive
def test_a_new_thin_replica_never_exposes_a_deleted_replicas_bytes(spdk_targets, ansible_runner, host_io):
    host_io = host_io(HOST_NQN)
    target = spdk_targets()
    path = target.disk_file(DISK)
    setup = ansible_runner.playbook(target, [disk_task(DISK, path), replica_task(target, "a")])
    old = setup["replica a"]["replica"]["exposure"]
    host_io.write(old, 0, 8 * MiB, pattern="0xab")
    assert host_io.read(old, 0, MiB) == b"\xab" * MiB

    swap = [("delete a", "spdk.storage.spdk_replica", dict(name="a", disk=DISK, state="absent")),
            replica_task(target, "b")]
    first = ansible_runner.playbook(target, swap)
    assert [task.changed for task in first] == [True, True]
    assert_nothing_changed(ansible_runner.playbook(target, swap))

    new = first["replica b"]["replica"]["exposure"]
    # A 4 KiB write allocates a whole cluster; the rest of it must read as zeros, not as a's 0xab.
    for cluster in range(8):
        host_io.write(new, cluster * MiB, 4096, pattern="0x5a")
    expected = (b"\x5a" * 4096 + bytes(MiB - 4096)) * 8
    data = host_io.read(new, 0, 8 * MiB)
    stale = [offset for offset in range(0, len(data), 4096) if b"\xab" in data[offset:offset + 4096]]
    assert stale == [], "replica b shows replica a's bytes at offsets %s" % stale[:8]
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(expected).hexdigest()

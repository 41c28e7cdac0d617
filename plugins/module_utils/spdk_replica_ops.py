# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replica and replica-snapshot domain logic: read, plan, execute.

A replica is a thin head lvol ``<replica>`` in the lvstore of its disk plus its
snapshot lvols ``<replica>-snap-<snapshot>``, optionally exposed over
NVMe-oF/TCP as subsystem ``nqn.2026-01.io.spdk-storage:<replica>``.

Planning is pure (state in, steps out) so check mode runs the very same plan
and only skips execution: the module sends the plan's steps through a StepRecorder.
Facts from real SPDK v26.05 that shape the plans (recordings in tests/unit/fixtures/transcripts/):

* never send a shrink: a refused shrink of a claimed lvol ("Device or resource
  busy", more__lvol_ops.json line 107) still shrinks the blob on disk; a smaller
  size is refused here before any call;
* an lvol's size is whole clusters: sizes are rounded up to the disk's cluster
  size before they are compared, so a second run with the same size is a no-op;
* deleting a snapshot with two children fails with -32603 "Operation not
  permitted" (more__lvol_ops.json line 126): refused here with a clear message;
  with one child SPDK merges it into that child, data intact (lines 123 and 128);
* both an NVMe-oF export and a RAID claim an lvol ``exclusive_write``, so who
  uses a head is decided from RAIDs and connected hosts, never from the claim;
* a restarted replica target examines its lvols and assembles a ``configuring``
  RAID around a head from the engine's superblock; that RAID claims the head, and
  exporting it then fails with -32602 "Invalid parameters" (lines 24 and 27 of
  more__d2_raid_sb_restart_clean_remove.json). ``bdev_raid_delete`` without
  ``clear_sb`` (SPDK's default is false) frees the head and keeps its superblock
  (lines 28-30 of the same recording), which the real engine needs to know the
  replica is stale. Such a stray RAID is released before a step that needs the
  head; a RAID that serves I/O, or that this node's record names as one of its
  engines, is never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
    parse_size,
    replica_nqn,
    round_up,
    snapshot_lvol_name,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step

MIB = 1 << 20
REPLICA_READS = ("lvstores", "bdevs", "subsystems")
"""The reads of one replica or snapshot run: three RPCs, sent as one batch."""

CLEAR_METHODS = ("write_zeroes", "unmap")
DEFAULT_CLEAR_METHOD = "write_zeroes"
REPLICA_MODEL = "spdk.storage replica"


class SpdkRefusal(SpdkError):
    """The request is valid but unsafe or impossible in the node's current state.

    Raised while planning, so nothing has been changed when it is reported.
    """


class Plan:
    """Steps to send, plus the before/after views used for ``changed`` and ``diff``."""

    def __init__(self, steps, before, after, warnings=(), before_replica=None, released=()):
        self.steps = list(steps)
        self.before = before
        self.after = after
        self.warnings = list(warnings)
        self.before_replica = before_replica  # model Replica read before the run, or None
        self.released = list(released)  # stray RAIDs deleted to free the head (assembled on restart)

    @property
    def released_stray_raid(self):
        """Name of the RAID released from the head, or None (a head has at most one claim)."""
        return self.released[0] if self.released else None

    @property
    def changed(self):
        return bool(self.steps)

    def diff(self):
        return {"before": self.before, "after": self.after}


def load_state(client):
    """One batch of the reads a replica or snapshot run needs."""
    return NodeState(fetch(client, REPLICA_READS))


def with_raids(client, state):
    """``state`` plus the RAID list (one more read), to know which engines use an lvol."""
    return NodeState(dict(state.raw, **fetch(client, ("raids",))))


# ------------------------------------------------------------------ sizes


def lvol_size(size, cluster_size):
    """(bytes SPDK will give the lvol, size_in_mib to ask for) for a requested size.

    SPDK rounds an lvol up to whole clusters; ``bdev_lvol_create`` and
    ``bdev_lvol_resize`` take MiB. Cluster sizes are powers of two, so rounding
    up to the larger of the two lands on a size both agree on.
    """
    size_bytes = round_up(size, max(cluster_size, MIB))
    return size_bytes, size_bytes // MIB


# ------------------------------------------------------------ replica views


def exposure_view(exposure):
    """What a user reads about an export: nqn, address, port, hosts."""
    if exposure is None:
        return None
    return {
        "nqn": exposure.nqn,
        "listen_address": exposure.listen_address,
        "port": exposure.port,
        "allowed_hosts": list(exposure.allowed_hosts),
        "allow_any_host": exposure.allow_any_host,
    }


def replica_view(replica):
    """The compact view used in ``diff`` (and in check mode's predicted result)."""
    if replica is None:
        return {"state": "absent"}
    return {
        "state": "present" if replica.exposure else "stopped",
        "name": replica.name,
        "disk": replica.disk,
        "size": replica.size,
        "snapshots": [s.name for s in replica.snapshots],
        "exposure": exposure_view(replica.exposure),
    }


# ------------------------------------------------------------------ request


class ReplicaRequest:
    """Validated spdk_replica options. Every check here runs before any RPC."""

    def __init__(self, name, disk=None, size=None, state="present", expose=None, listen_address=None,
                 port=None, port_range=nvmf.DEFAULT_PORT_RANGE, allowed_hosts=None, allow_any_host=False,
                 force=False, clear_method=DEFAULT_CLEAR_METHOD):
        self.name = validate_lvol_name("replica", name)
        self.disk = validate_lvol_name("disk", disk) if disk is not None else None
        self.size = parse_size(size) if size is not None else None
        self.state = state
        self.expose = expose
        self.nqn = replica_nqn(name)
        self.listen_address = listen_address
        self.port = nvmf.validate_port(port)
        self.port_range = nvmf.parse_port_range(port_range)
        self.allowed_hosts = sorted({nvmf.validate_host_nqn(h) for h in (allowed_hosts or [])})
        self.allow_any_host = bool(allow_any_host)
        self.force = bool(force)
        if clear_method not in CLEAR_METHODS:
            raise SpdkInputError("clear_method must be one of %s" % ", ".join(CLEAR_METHODS))
        self.clear_method = clear_method
        if listen_address is not None:
            nvmf.address_family(listen_address)
        if state == "present" and self.disk is None:
            raise SpdkInputError("disk is required with state=present: it names the disk (lvstore) "
                                 "that holds or will hold replica %s" % name)
        if expose and listen_address is None:
            raise SpdkInputError("expose=true needs listen_address, the node's NVMe-oF/TCP address")

    def exposure_spec(self, head_alias, head_uuid):
        return nvmf.ExposureSpec(
            nqn=self.nqn, bdev=head_alias, bdev_uuid=head_uuid, listen_address=self.listen_address,
            port=self.port, port_range=self.port_range, allowed_hosts=self.allowed_hosts,
            allow_any_host=self.allow_any_host, model_number=REPLICA_MODEL)


def find_head(state, name, disk=None):
    """The replica's head lvol, or None; refuses ambiguity instead of guessing."""
    heads = [lv for lv in state.lvols if lv.name == name]
    if disk is not None:
        elsewhere = [lv.lvstore for lv in heads if lv.lvstore != disk]
        heads = [lv for lv in heads if lv.lvstore == disk]
        if not heads and elsewhere:
            raise SpdkRefusal(
                "replica %s already lives on disk %s, not on disk %s; one name is one replica "
                "(its NQN %s is per name): use disk=%s or another name"
                % (name, ", ".join(sorted(elsewhere)), disk, replica_nqn(name), elsewhere[0]))
    if len(heads) > 1:
        raise SpdkRefusal("replica %s exists on several disks (%s); give disk to choose one"
                          % (name, ", ".join(sorted(lv.lvstore for lv in heads))))
    head = heads[0] if heads else None
    if head is not None and head.is_snapshot:
        raise SpdkRefusal("lvol %s on disk %s is a snapshot, not a replica head" % (name, head.lvstore))
    return head


def require_disk(state, disk):
    found = state.disk(disk)
    if found is None:
        known = ", ".join(sorted(d.name for d in state.disks)) or "none"
        raise SpdkRefusal("disk %s not found on this node (disks: %s); create or import it first with "
                          "spdk.storage.spdk_disk" % (disk, known))
    return found


# ------------------------------------------------------------------ planning


def plan_replica(state, request, transport_lookup=None, engines_lookup=None):
    """Plan for ``request`` against ``state``; ``transport_lookup()`` -> bool, asked only if needed.

    ``engines_lookup()`` -> names of the engines this node runs (see ``release_steps``).
    """
    if request.state == "present":
        return plan_present(state, request, transport_lookup, engines_lookup)
    if request.state == "stopped":
        return plan_stopped(state, request)
    raise ValueError("use plan_absent for state=absent (it needs the usage reads)")


def plan_present(state, request, transport_lookup=None, engines_lookup=None):
    """Create or grow the head, then expose or unexpose it.

    With the ``raids`` part in ``state`` (see ``holder_reads_needed``), a stray RAID holding
    the head is released first, and a live one refuses the export.
    """
    disk = require_disk(state, request.disk)
    head = find_head(state, request.name, request.disk)
    replica = state.replica(disk.name, request.name) if head else None
    before = replica_view(replica)
    steps, warnings, released = [], [], []
    if head is not None and state.has("raids"):
        purpose = "export" if request.expose and state.exposure_of(head) is None else "grow"
        steps, released = release_steps(state, head, engines_lookup, purpose)
    size = head.size if head else None
    if head is None:
        if request.size is None:
            raise SpdkInputError("replica %s does not exist on disk %s: size is required to create it"
                                 % (request.name, disk.name))
        size, size_mib = lvol_size(request.size, disk.cluster_size)
        steps.append(Step("bdev_lvol_create", {
            "lvol_name": request.name, "size_in_mib": size_mib, "thin_provision": True,
            "lvs_name": disk.name, "clear_method": request.clear_method,
        }, "create thin head lvol %s/%s of %d MiB" % (disk.name, request.name, size_mib)))
    elif request.size is not None:
        wanted, size_mib = lvol_size(request.size, disk.cluster_size)
        if wanted < head.size:
            raise SpdkRefusal(
                "replica %s is %d bytes and size asks for %d bytes (after rounding to the %d-byte cluster "
                "size): shrinking is refused. SPDK shrinks the volume on disk even when it answers "
                "'Device or resource busy', which would cut data an engine still uses; nothing was changed. "
                "Keep size at %d bytes or more" % (request.name, head.size, wanted, disk.cluster_size,
                                                   head.size))
        if wanted > head.size:
            size = wanted
            steps.append(Step("bdev_lvol_resize", {"name": head.alias, "size_in_mib": size_mib},
                              "grow %s from %d to %d MiB" % (head.alias, head.size // MIB, size_mib)))
    exposure = replica.exposure if replica else None
    after_exposure = exposure_view(exposure)
    if request.expose:
        alias = "%s/%s" % (disk.name, request.name)
        spec = request.exposure_spec(alias, head.uuid if head else None)
        subsystems = state.subsystems
        current = subsystems.get(spec.nqn)
        exists = True
        if nvmf.needs_listener(spec, current, subsystems) and transport_lookup is not None:
            exists = transport_lookup()
        steps.extend(nvmf.plan_exposure(spec, current, subsystems, transport_exists=exists))
        after_exposure = exposure_view(nvmf.Subsystem.from_spdk(nvmf.expected_entry(spec, current, subsystems)))
        if not spec.allowed_hosts and not spec.allow_any_host:
            warnings.append("replica %s is exposed with an empty allowed_hosts list: no host can connect "
                            "until one is allowed" % request.name)
    elif request.expose is False:
        steps.extend(_unexpose_steps(state, request.nqn))
        after_exposure = None
    after = dict(before) if replica else {
        "name": request.name, "disk": disk.name, "snapshots": []}
    after.update({"state": "present" if after_exposure else "stopped", "size": size,
                  "exposure": after_exposure})
    if released and len(steps) == len(released):
        steps, released = [], []  # nothing needs the head after all: leave the RAID alone
    return Plan(steps, before, after, warnings, before_replica=replica, released=released)


def plan_stopped(state, request):
    head = find_head(state, request.name, request.disk)
    if head is None:
        raise SpdkRefusal("replica %s not found%s: state=stopped keeps an existing replica's data and cannot "
                          "create one; use state=present with disk and size"
                          % (request.name, " on disk %s" % request.disk if request.disk else ""))
    replica = state.replica(head.lvstore, head.name)
    before = replica_view(replica)
    after = dict(before, state="stopped", exposure=None)
    return Plan(_unexpose_steps(state, request.nqn), before, after, before_replica=replica)


def _unexpose_steps(state, nqn):
    return nvmf.plan_unexpose(state.subsystems.get(nqn))


def usage_reads_needed(state, request):
    """True when an absent run must also read RAIDs and connected hosts (there is a head to delete)."""
    try:
        return find_head(state, request.name, request.disk) is not None
    except SpdkRefusal:
        return False


def plan_absent(state, request, connected_hosts=(), engines_lookup=None):
    """Unexpose, release a stray RAID, then delete the head, then its snapshots children first.

    ``state`` must include the ``raids`` part when the head exists (unless ``force``);
    ``connected_hosts`` are the host NQNs connected to the replica's subsystem.
    """
    head = find_head(state, request.name, request.disk)
    disk = head.lvstore if head else request.disk
    snapshots = _snapshots_children_first(state, disk, request.name) if disk else []
    replica = state.replica(disk, request.name) if head else None
    before = replica_view(replica) if replica else (
        {"state": "absent"} if not snapshots else
        {"state": "snapshots only", "name": request.name, "disk": disk,
         "snapshots": [s.name for s in snapshots]})
    release, released = [], []
    if head is not None and state.has("raids"):
        release, released = release_steps(state, head, engines_lookup, "delete")
    if head is not None and not request.force:
        _refuse_if_in_use(state, head, connected_hosts, ignore=released)
    steps = _unexpose_steps(state, request.nqn) + release
    if head is not None:
        steps.append(Step("bdev_lvol_delete", {"name": head.alias}, "delete head lvol %s" % head.alias))
    for lvol in snapshots:
        steps.append(Step("bdev_lvol_delete", {"name": lvol.alias}, "delete snapshot lvol %s" % lvol.alias))
    return Plan(steps, before, {"state": "absent"}, released=released)


def _snapshots_children_first(state, disk, name):
    """The replica's snapshot lvols, every child before its parent."""
    lvols = state.snapshot_lvols(disk, name)
    by_name = {lv.name: lv for lv in lvols}
    ordered, placed = [], set()

    def visit(lvol, trail):
        if lvol.name in placed or lvol.name in trail:
            return
        for child in lvol.children:
            if child in by_name:
                visit(by_name[child], trail | {lvol.name})
        placed.add(lvol.name)
        ordered.append(lvol)

    for lvol in lvols:
        visit(lvol, frozenset())
    return ordered


def _refuse_if_in_use(state, head, connected_hosts, ignore=()):
    raids = [r for r in state.raids_using(head) if r.name not in ignore]
    reasons = ["it is a member of RAID %s (an engine on this node uses it)" % r.name for r in raids]
    if connected_hosts:
        reasons.append("host(s) %s are connected to its export (a remote engine uses it)"
                       % ", ".join(sorted(connected_hosts)))
    if head.claimed and not raids and not ignore and state.exposure_of(head) is None:
        reasons.append("SPDK reports it claimed (%s) by something other than an export"
                       % (head.claim_type or "unknown claim"))
    if reasons:
        raise SpdkRefusal(
            "replica %s is in use: %s. Deleting it now would fail that engine's I/O on this member. "
            "Remove the replica from its engine first (spdk.storage.spdk_engine), or set force=true to "
            "delete it anyway; nothing was changed" % (head.name, "; ".join(reasons)))


def connected_hosts(client, state, nqn):
    """Host NQNs with a controller on ``nqn`` (one read, only when the subsystem exists)."""
    if state.exposure(nqn) is None:
        return []
    return sorted({c.get("hostnqn") for c in client.call("nvmf_subsystem_get_controllers", {"nqn": nqn}) or []})


# ---------------------------------------------- RAIDs assembled on restart


def holder_reads_needed(state, request):
    """True when a present run must read the RAIDs: it will export or grow a head that
    something other than an export claims (a RAID, maybe one SPDK assembled on restart).

    A head that is exported, or not claimed, needs no extra read, so a run that changes
    nothing stays at three reads.
    """
    try:
        head = find_head(state, request.name, request.disk)
    except SpdkRefusal:
        return False
    if head is None or not head.claimed or state.exposure_of(head) is not None:
        return False
    return bool(request.expose) or _grows(state, head, request)


def _grows(state, head, request):
    disk = state.disk(head.lvstore)
    return (request.size is not None and disk is not None
            and lvol_size(request.size, disk.cluster_size)[0] > head.size)


def raids_holding(state, head):
    """RAIDs on this node in which ``head`` is a configured member (so they claim it)."""
    refs = head.refs()
    return [raid for raid in state.raids
            if any(m["configured"] and (m["name"] in refs or m["uuid"] in refs) for m in raid.members)]


def assembled_here(state, raid):
    """True for a RAID SPDK assembled by examine from a superblock around lvols of this node
    only: ``configuring`` (it waits for members that live elsewhere) and no remote member."""
    configured = [m for m in raid.members if m["configured"]]
    return (raid.state == "configuring" and raid.superblock and bool(configured)
            and all(_local_head(state, m) for m in configured))


def _local_head(state, member):
    lvol = state.lvol_by_ref(member["name"]) or state.lvol_by_ref(member["uuid"])
    return lvol is not None and not lvol.is_snapshot


def release_steps(state, head, engines_lookup, purpose):
    """``(steps, names)``: delete each stray RAID holding ``head``, superblock kept.

    A RAID is stray when SPDK assembled it here (``assembled_here``) and it is not an engine
    this node runs (``engines_lookup()``, from the node record; None means no record). Any
    other RAID holding the head refuses an export (SPDK would answer -32602) and is left
    alone for a grow or a delete (the delete's own in-use check decides).
    """
    steps, names = [], []
    for raid in raids_holding(state, head):
        candidate = assembled_here(state, raid)
        engines = set(engines_lookup() or ()) if candidate and engines_lookup is not None else set()
        if candidate and raid.name not in engines:
            steps.append(_release_step(head, raid))
            names.append(raid.name)
        elif purpose == "export":
            raise SpdkRefusal(_held_message(head, raid, engines))
    return steps, names


def _release_step(head, raid):
    # No clear_sb (SPDK's default is false): the superblock must survive, it tells the
    # engine that this replica missed writes (more__d2_raid_sb_restart_clean_remove.json lines 28-30).
    return Step("bdev_raid_delete", {"name": raid.name},
                "release %s from RAID %s, which SPDK assembled here from the replica's superblock on restart "
                "(%s, %s of %s members; it is not an engine of this node); the superblock is kept"
                % (head.alias, raid.name, raid.state, raid.discovered, raid.num_base_bdevs))


def _held_message(head, raid, engines):
    if raid.state == "online":
        why = ("an engine on this node serves I/O through it; a local replica joins its engine directly and is "
               "not exported: run spdk.storage.spdk_replica on it without expose, or remove it from engine %s "
               "first (spdk.storage.spdk_engine)" % raid.name)
    elif raid.name in engines:
        why = ("this node's record lists %s as one of its engines, which SPDK is assembling from the replicas' "
               "superblocks (%s of %s members present): bring its other replicas back with "
               "spdk.storage.spdk_engine instead of exporting this one" % (raid.name, raid.discovered,
                                                                           raid.num_base_bdevs))
    elif not raid.superblock:
        why = "it has no superblock, so it was created on purpose rather than assembled on restart; delete it first"
    else:
        why = ("it is %s with members that are not lvols of this node, so it is an engine being assembled here, "
               "not a leftover of a restart; bring its other replicas back with spdk.storage.spdk_engine"
               % raid.state)
    return ("replica %s cannot be exported: its head %s is a member of RAID %s on this node (%s), and SPDK "
            "refuses to export a claimed bdev (-32602 Invalid parameters). %s; nothing was changed"
            % (head.name, head.alias, raid.name, raid.state, why))


# ------------------------------------------------------------------ snapshots


def snapshot_children(replica, snap):
    """Every lvol cloned from ``snap`` (child snapshots, the head, clones outside the replica), sorted."""
    return sorted(list(snap.children) + ([replica.name] if snap.head_child else []) + list(snap.other_children))


class SnapshotRequest:
    """Validated spdk_snapshot options for a replica-level snapshot."""

    def __init__(self, name, replica, disk=None, state="present"):
        self.name = validate_lvol_name("snapshot", name)
        self.replica = validate_lvol_name("replica", replica)
        self.disk = validate_lvol_name("disk", disk) if disk is not None else None
        self.lvol_name = snapshot_lvol_name(replica, name)
        self.state = state


def find_replica(state, replica_name, disk=None):
    head = find_head(state, replica_name, disk)
    if head is None:
        raise SpdkRefusal("replica %s not found%s; create it with spdk.storage.spdk_replica first"
                          % (replica_name, " on disk %s" % disk if disk else ""))
    return state.replica(head.lvstore, head.name), require_disk(state, head.lvstore).cluster_size


def plan_snapshot(state, request):
    """The steps (and refusals) of a replica snapshot request. The plan carries no views:
    spdk_snapshot reports spdk_model.snapshot_entries and predicts them with entries_after_*."""
    if request.state == "present":
        return plan_snapshot_present(state, request)
    if request.state == "absent":
        return plan_snapshot_absent(state, request)
    raise ValueError("unknown snapshot state %r" % (request.state,))


def plan_snapshot_present(state, request):
    """bdev_lvol_snapshot of the head as ``<replica>-snap-<name>``, unless it exists."""
    replica, _cluster_size = find_replica(state, request.replica, request.disk)
    if replica.snapshot(request.name) is not None:
        return Plan([], None, None)
    if state.lvol(replica.disk, request.lvol_name) is not None:
        raise SpdkRefusal("lvol %s/%s exists but is not a snapshot of replica %s; rename or delete it first"
                          % (replica.disk, request.lvol_name, replica.name))
    step = Step("bdev_lvol_snapshot", {"lvol_name": replica.head.alias, "snapshot_name": request.lvol_name},
                "snapshot %s as %s" % (replica.head.alias, request.lvol_name))
    return Plan([step], None, None)


def plan_snapshot_absent(state, request):
    """bdev_lvol_delete of the snapshot lvol; more than one child is refused."""
    replica, _cluster_size = find_replica(state, request.replica, request.disk)
    snap = replica.snapshot(request.name)
    if snap is None:
        return Plan([], None, None)
    children = snapshot_children(replica, snap)
    if len(children) > 1:
        raise SpdkRefusal(
            "snapshot %s of replica %s has %d children (%s): SPDK can only delete a snapshot by merging it "
            "into a single child (it answers 'Operation not permitted' otherwise). Delete all but one child "
            "first; nothing was changed" % (request.name, replica.name, len(children), ", ".join(children)))
    step = Step("bdev_lvol_delete", {"name": snap.lvol.alias},
                "delete snapshot %s (merged into %s)" % (snap.lvol.alias, children[0] if children else "nothing"))
    return Plan([step], None, None)

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The engine's membership, planned: pure functions from what the node answered to Steps.

What real SPDK v26.05 answered (tests/unit/fixtures/transcripts/ and tests/emulator/fixtures/) and
how it shapes the plans:

* the RAID always carries a superblock, the authority on which member is current: after a restart
  SPDK assembles the RAID from the members' superblocks, and attaching a member re-adds it by
  examine with a rebuild (tests/emulator/fixtures/d2_raid_sb_restart_*.session.jsonl). So remote
  members are attached first and examine is awaited before the RAID is planned; an existing RAID is
  adopted as it is, never created again over members its superblocks do not vouch for (a re-created
  RAID silently serves a stale member's blocks: tests/emulator/fixtures/d3_raid_nosb_restart.session.jsonl);
* slots are fixed at creation; ``bdev_raid_remove_base_bdev`` takes the member's bdev name and
  leaves an empty slot; ``bdev_raid_add_base_bdev`` fills one with a full rebuild
  (tests/unit/fixtures/transcripts/more__d4_raid_add_base_rebuild_alloc.json);
* deleting the RAID keeps the superblocks (``clear_sb: false``): they still say which replica is
  current when the engine is assembled again. Deleting an engine never touches replica data;
* while a lost controller waits to reconnect its namespace bdev stays registered, yet adding it to
  a RAID answers -5; the controller is ``enabled`` again only once its target is back
  (tests/unit/fixtures/transcripts/more__nvme_reconnect.json).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import SUPERBLOCK_AREA, EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (
    RW,
    bdev_refs,
    bdev_size,
    controller_of,
    find_member,
    is_nvme_bdev,
    nvme_trid,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NULL_UUID, NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import human_size
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step

ATTACH = "bdev_nvme_attach_controller"
CONNECTED = "enabled"


def _gone(err):
    return err.is_no_device()


# ---------------------------------------------------------------- attach


def needs_controllers(state, request):
    """A remote replica without its bdev: the controller list decides attach vs re-attach."""
    return any(state.bdev_named(r.bdev) is None for r in request.remote_replicas)


def plan_attach(state, request, controllers=None):
    """Attach every remote replica whose namespace bdev is not on this node.

    A controller that exists without its bdev (the attach registered no bdev, for example because
    the namespace UUID is registered already: tests/unit/fixtures/transcripts/more__nvme_options.json)
    is detached first.
    """
    steps = []
    for spec in request.remote_replicas:
        if state.bdev_named(spec.bdev) is not None:
            continue
        if controllers and spec.controller in controllers:
            steps.append(Step("bdev_nvme_detach_controller", {"name": spec.controller},
                              "controller %s has no namespace bdev: attach it again" % spec.controller,
                              tolerate=_gone))
        steps.append(Step(ATTACH, spec.attach_params(request.host_nqn, request.timeouts),
                          "attach remote replica %s at %s" % (spec.name, spec.address)))
    return steps


def address_warnings(state, request):
    """A remote replica whose controller points elsewhere than its address is left alone, said out loud."""
    warnings = []
    for spec in request.remote_replicas:
        trid = nvme_trid(state.bdev_named(spec.bdev))
        if trid and (trid.get("traddr"), str(trid.get("trsvcid")), trid.get("subnqn")) != (
                spec.traddr, str(spec.port), spec.nqn):
            warnings.append(
                "replica %s is attached from %s:%s (%s), not from %s (%s); the controller is kept: remove the "
                "replica from the engine and add it again to move it"
                % (spec.name, trid.get("traddr"), trid.get("trsvcid"), trid.get("subnqn"), spec.address, spec.nqn))
    return warnings


def unconnected(specs, controllers):
    """{replica name: its controller's state} for remote replicas in ``specs`` whose controller has no
    connected path (``bdev_nvme_get_controllers``).

    While a lost controller waits to reconnect (``reconnect_is_delayed``, ``resetting``, ``failed``, until
    ``ctrlr_loss_timeout_sec``) its namespace bdev stays registered, yet adding it to a RAID answers -5.
    """
    out = {}
    for spec in specs:
        ctrl = controllers.get(spec.controller)
        states = sorted({p["state"] or "unknown" for p in ctrl.paths}) if ctrl is not None else ["deleted"]
        if CONNECTED not in states:
            out[spec.name] = "/".join(states) or "no path"
    return out


def is_connect_failure(err):
    """-5: SPDK could not read the member (its controller lost the connection)."""
    return err.code == -5


# ---------------------------------------------------------------- create, add, remove


def member_problem(state, spec, raid_name):
    """Why the replica's bdev cannot join the engine's RAID, or None."""
    refs, bdev = bdev_refs(state, spec.bdev)
    if bdev is None:
        if spec.is_local:
            return ("local replica %s is not on disk %s of this node: create it with spdk.storage.spdk_replica "
                    "first, or give its address if it lives on another node" % (spec.name, spec.disk))
        return "remote replica %s has no bdev %s on this node" % (spec.name, spec.bdev)
    for raid in state.raids:
        if raid.name != raid_name and find_member(raid, refs, configured_only=False):
            return ("replica %s (bdev %s) is a member of RAID %s on this node%s; remove it from there first"
                    % (spec.name, spec.bdev, raid.name,
                       " (a RAID that SPDK assembled from the replica's superblock)" if raid.state != "online"
                       else ""))
    for exposure in state.exposures:
        if exposure.exports(refs):
            return ("replica %s is exported as %s; a local replica joins its engine directly: stop exposing it "
                    "(spdk.storage.spdk_replica expose=false) first" % (spec.name, exposure.nqn))
    return None


def check_sizes(request, sizes):
    """Equal member sizes, each big enough for ``size`` plus the superblock area."""
    known = {name: size for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        listing = ", ".join("%s %s" % (n, human_size(s)) for n, s in sorted(known.items()))
        raise EngineRefusal("replicas of engine %s differ in size (%s): a RAID1 member must match the others; "
                            "grow the smaller replicas with spdk.storage.spdk_replica" % (request.name, listing))
    if request.size is not None:
        need = request.size + SUPERBLOCK_AREA
        small = sorted(n for n, s in known.items() if s < need)
        if small:
            raise EngineRefusal(
                "replica %s is %s; an engine of %s needs replicas of at least %s (the volume plus %s for the "
                "RAID superblock)" % (", ".join(small), human_size(known[small[0]]), human_size(request.size),
                                      human_size(need), human_size(SUPERBLOCK_AREA)))


def plan_create(state, request, pending=()):
    """bdev_raid_create over every wanted replica (``pending``: bdevs an attach will bring)."""
    sizes = {}
    for spec in request.replicas:
        if spec.bdev in pending:
            sizes[spec.name] = None  # known only once attached (check mode)
            continue
        problem = member_problem(state, spec, request.name)
        if problem:
            raise EngineRefusal(problem)
        sizes[spec.name] = bdev_size(state.bdev_named(spec.bdev))
    check_sizes(request, sizes)
    return [Step("bdev_raid_create", {"name": request.name, "raid_level": "raid1", "strip_size_kb": 0,
                                      "base_bdevs": [r.bdev for r in request.replicas], "superblock": True},
                 "create RAID1 %s over %s with a superblock"
                 % (request.name, ", ".join(r.name for r in request.replicas)))]


def plan_membership(state, request, status, pending=(), unreachable=()):
    """Remove unwanted members, then add missing wanted ones into the freed or empty slots.

    ``unreachable``: remote replicas whose attach failed this run; they stay ERR.
    """
    raid = status.raid
    if raid.level != "raid1":
        raise EngineRefusal("bdev %s is a %s RAID, not an engine (raid1); choose another engine name"
                            % (request.name, raid.level))
    if raid.state != "online":
        return [], []
    removals = plan_removals(request, status)
    empty = sum(1 for m in raid.members if not m["configured"]) + len(removals)
    current = [bdev_size(s.bdev) for s in status.replicas if s.member is not None and s.bdev]
    adds = []
    for replica in status.replicas:
        spec = replica.spec
        if replica.member is not None or spec.name in unreachable:
            continue
        if spec.bdev not in pending:
            problem = member_problem(state, spec, request.name)
            if problem:
                raise EngineRefusal(problem)
            sizes = {spec.name: bdev_size(state.bdev_named(spec.bdev))}
            if current:
                sizes["the current members"] = current[0]
            check_sizes(request, sizes)
        if empty == 0:
            raise EngineRefusal(
                "RAID %s has %d slots, all in use; SPDK cannot add a slot to a RAID, so replica %s cannot join: "
                "remove a replica from the list first (slots are fixed when the RAID is created)"
                % (request.name, raid.num_base_bdevs, spec.name))
        empty -= 1
        adds.append(Step("bdev_raid_add_base_bdev", {"raid_bdev": request.name, "base_bdev": spec.bdev},
                         "add replica %s to RAID %s (SPDK rebuilds it with a full copy)" % (spec.name, request.name)))
    return removals, adds


def plan_removals(request, status):
    """Take unwanted members out, never the last up-to-date copy."""
    if not status.extra:
        return []
    if not any(s.mode == RW for s in status.replicas):
        raise EngineRefusal(
            "removing %s from engine %s would leave no up-to-date replica (wanted replicas: %s); keep it until a "
            "wanted replica has been rebuilt (wait for mode RW)"
            % (", ".join(m["name"] or m["uuid"] for m in status.extra), request.name,
               ", ".join("%s %s" % (s.spec.name, s.mode) for s in status.replicas)))
    return [Step("bdev_raid_remove_base_bdev", {"name": m["name"]},
                 "remove member %s from RAID %s (not in replicas)" % (m["name"], request.name))
            for m in status.extra]


# ---------------------------------------------------------------- detach, absent


def detach_steps(state, controller_names):
    """Detach the given controllers whose namespace bdev is on this node; the bdev names to wait for."""
    steps, bdevs = [], []
    for name in sorted(set(controller_names)):
        bdev = state.bdev_named(name + "n1")
        if bdev is None or not is_nvme_bdev(bdev):
            continue
        if any(find_member(raid, bdev_refs(state, bdev["name"])[0], configured_only=False) for raid in state.raids):
            continue  # still in some RAID: never pull it from under that RAID
        steps.append(Step("bdev_nvme_detach_controller", {"name": name}, "detach controller %s" % name,
                          tolerate=_gone))
        bdevs.append(bdev["name"])
    return steps, bdevs


def removed_controllers(state, request, status, recorded_replicas=()):
    """Controllers of replicas this engine no longer wants: RAID extras and recorded former replicas."""
    wanted = {r.controller for r in request.remote_replicas}
    names = []
    for member in status.extra:
        ctrl = controller_of(state.bdev_named(member["name"] or ""))
        if ctrl:
            names.append(ctrl)
    for former in recorded_replicas:
        if former.get("address") and former.get("name"):
            names.append(former["name"])
    return [n for n in names if n not in wanted]


def without_members(state, raid_name, names):
    """``state`` as it is once ``names`` left RAID ``raid_name`` (their slots empty)."""
    raw = dict(state.raw)
    raids = []
    for raid in raw.get("raids") or []:
        if raid.get("name") == raid_name:
            raid = dict(raid, base_bdevs_list=[
                dict(m, name=None, uuid=NULL_UUID, is_configured=False) if m.get("name") in names else m
                for m in raid.get("base_bdevs_list") or []])
        raids.append(raid)
    raw["raids"] = raids
    return NodeState(raw)


def without_raid(state, name):
    """``state`` as it is once RAID ``name`` is deleted."""
    raw = dict(state.raw)
    raw["raids"] = [r for r in raw.get("raids") or [] if r.get("name") != name]
    return NodeState(raw)


def plan_absent(state, request, recorded_replicas=()):
    """Frontend, then RAID (superblocks kept), then the remote replicas' controllers; the bdevs whose
    removal the run waits for."""
    steps = []
    current = state.exposure(request.nqn)
    steps += nvmf.plan_unexpose(current)
    raid = state.raid(request.name)
    controllers = [r.controller for r in request.remote_replicas]
    controllers += [r["name"] for r in recorded_replicas if r.get("address")]
    if raid is not None:
        for member in raid.members:
            ctrl = controller_of(state.bdev_named(member["name"] or ""))
            if ctrl:
                controllers.append(ctrl)
        steps.append(Step("bdev_raid_delete", {"name": request.name, "clear_sb": False},
                          "delete RAID %s (replica data and superblocks stay)" % request.name))
        state = without_raid(state, request.name)
    detach, bdevs = detach_steps(state, controllers)
    return steps + detach, bdevs

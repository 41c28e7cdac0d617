# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planners of a rebuild's join phase, on the engine node's state as read: which replicas the
offline strategy puts in the re-created RAID, which controllers leave with the replaced replica, the
online strategy's slot and add, and what a poll of the RAID says of the rebuild.
spdk_rebuild_join.py sends the steps in order.

Facts relied on (real SPDK v26.05, recordings in tests/emulator/fixtures/):

* every copied head carries the old RAID's superblock at LBA 0, read through from the source;
  ``bdev_raid_create`` and ``bdev_raid_add_base_bdev`` refuse such a base (-17) until LBA 0 is zeroed
  (tests/unit/fixtures/transcripts/more__sendcmd__sendcmd.json line 39; spdk_superblock.py zeroes it);
* ``bdev_raid_delete`` with ``clear_sb`` zeroes the superblock of the members it holds, so after an
  offline copy the RAID is created again over members now known identical, with no copy at all;
* ``bdev_raid_add_base_bdev`` always copies the whole volume into the new member
  (d4_raid_add_base_rebuild_alloc.session.jsonl); ``bdev_raid_set_options
  process_max_bandwidth_mb_sec`` caps that copy, and ``bdev_raid_get_bdevs`` shows its ``process``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (
    RW,
    bdev_refs,
    controller_of,
    find_member,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import replica_nqn
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy_plan import is_gone
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import RebuildError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    identity_problem,
    raid_member_refs,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


def raid_users(engine_state, bdev):
    """Whether any RAID on the engine node holds ``bdev`` (configured or not): never write its LBA 0."""
    refs = bdev_refs(engine_state, bdev)[0]
    return any(find_member(raid, refs, configured_only=False) for raid in engine_state.raids)


# ---------------------------------------------------------------- offline


def offline_preconditions_problem(raid, engine, engine_state, source):
    """Why the offline strategy cannot copy from ``source`` while ``raid`` (not None) serves, or None."""
    if raid.state != "online":
        return "RAID %s is %s: bring its replicas' nodes back first (recover_node.yml)" % (engine, raid.state)
    if raid.process:
        return "RAID %s is rebuilding %s (%s%%): wait until that rebuild finished" % (
            engine, raid.process["target"], raid.process["percent"])
    if find_member(raid, bdev_refs(engine_state, source.bdev)[0]) is None:
        return ("source replica %s is not an up-to-date member of RAID %s; choose a replica in RW mode as source"
                % (source.name, engine))
    return None


def offline_candidates(keep, rw, source, raid_present, engine):
    """``(candidates, warnings)``: the kept replicas that may join the re-created RAID. With the RAID still
    there only its RW members may (a source that is not one is refused); after an earlier run deleted it,
    every kept replica is checked for identity."""
    if not raid_present:
        return list(keep), []
    candidates, warnings = [], []
    for member in keep:
        if member in rw:
            candidates.append(member)
        elif member is source:
            raise RebuildError("source replica %s is not an up-to-date member of RAID %s" % (member.name, engine))
        else:
            warnings.append("replica %s is not an up-to-date RAID member: left out of the new RAID" % member.name)
    return candidates, warnings


def offline_members(candidates, views, chain, snapshot, cluster_size, raid_present, source):
    """``(members, warnings)``: the candidates known identical to the source (``views``: their model
    Replicas, in order). A source, or any replica while the RAID is still there, that is not, is refused;
    after the RAID was deleted another one is left out with a warning."""
    members, warnings = [], []
    for member, view in zip(candidates, views):
        problem = identity_problem(view, chain, snapshot, cluster_size)
        if problem is None:
            members.append(member)
        elif member.name == source.name or raid_present:
            raise RebuildError("replica %s cannot join the re-created RAID: %s" % (member.name, problem))
        else:
            warnings.append("replica %s is left out of the new RAID: %s" % (member.name, problem))
    return members, warnings


def raid_delete_step(engine):
    return Step("bdev_raid_delete", {"name": engine, "clear_sb": True},
                "delete RAID %s, clearing its members' superblocks (they and the copy are identical now)" % engine)


def former_controllers(engine_state, former, members, replace):
    """Controllers of the RAID's former members (``former``: its configured slots) that are not in the new
    RAID (``members``): the replaced replica's, by name too."""
    keep = set()
    for member in members:
        keep |= bdev_refs(engine_state, member.bdev)[0]
    names = [replace.name] if replace is not None and not replace.is_local else []
    for slot in former:
        ctrl = controller_of(engine_state.bdev_named(slot["name"] or "") or
                             engine_state.bdev_named(slot["uuid"] or ""))
        if ctrl and slot["name"] not in keep and slot["uuid"] not in keep:
            names.append(ctrl)
    return names


def raid_create_step(engine, members):
    return Step("bdev_raid_create",
                {"name": engine, "raid_level": "raid1", "strip_size_kb": 0,
                 "base_bdevs": [m.bdev for m in members], "superblock": True},
                "create RAID %s over %s (no rebuild: the members hold identical data)"
                % (engine, ", ".join(m.name for m in members)))


# ---------------------------------------------------------------- online


def plan_leave(engine_state, raid, replace, source, engine):
    """The replaced replica leaves ``raid`` if it is still a member; refused when the source is no RW member
    (removing the replaced one would leave no up-to-date replica)."""
    if replace is None:
        return []
    slot = find_member(raid, bdev_refs(engine_state, replace.bdev)[0])
    if slot is None:
        return []
    if not raid_member_refs(engine_state, raid, source):
        raise RebuildError("the source %s is not an RW member: removing %s would leave no up-to-date replica"
                           % (source.name, replace.name))
    return [Step("bdev_raid_remove_base_bdev", {"name": slot["name"]},
                 "take the replaced replica %s out of RAID %s" % (replace.name, engine))]


def free_slot_problem(raid, engine):
    if any(not m["configured"] for m in raid.members):
        return None
    return ("RAID %s has no free slot (%d of %d configured): name the replica the new one replaces in replace"
            % (engine, raid.discovered or 0, raid.num_base_bdevs or 0))


def plan_add(engine, member, bandwidth_mb_sec):
    """The rebuild rate (optional), then the new head joins: RAID1 copies the whole volume into it."""
    steps = []
    if bandwidth_mb_sec is not None:
        steps.append(Step("bdev_raid_set_options", {"process_max_bandwidth_mb_sec": bandwidth_mb_sec},
                          "limit the RAID rebuild to %d MB/s (0: unlimited)" % bandwidth_mb_sec))
    steps.append(Step("bdev_raid_add_base_bdev", {"raid_bdev": engine, "base_bdev": member.bdev},
                      "add %s to RAID %s (SPDK copies the whole volume into it)" % (member.name, engine)))
    return steps


def rebuild_sample(mode, raid, seconds):
    """One progress sample of the RAID rebuild of the new member (mode RW: finished)."""
    process = raid.process if raid else None
    return {"phase": "raid rebuild", "mode": mode,
            "percent": process["percent"] if process else (100 if mode == RW else None),
            "blocks": process["blocks"] if process else None, "seconds": round(seconds, 3)}


# ---------------------------------------------------------------- the replaced replica's controllers


def replaced_controller_steps(engine_state, replaced):
    """``(steps, bdevs)``: detach the engine node's controllers to the replaced replica (by its name or its
    export's NQN), unless a RAID holds their namespace; the namespace bdevs to wait for."""
    if replaced.is_local:
        return [], []
    nqn = replica_nqn(replaced.name)
    steps, bdevs = [], []
    for ctrl in engine_state.controllers:
        if ctrl.name != replaced.name and not any(p["subnqn"] == nqn for p in ctrl.paths):
            continue
        bdev = engine_state.bdev_named(ctrl.name + "n1")
        if bdev is not None and raid_users(engine_state, bdev["name"]):
            continue
        steps.append(Step("bdev_nvme_detach_controller", {"name": ctrl.name},
                          "detach controller %s of the replaced replica %s" % (ctrl.name, replaced.name),
                          tolerate=is_gone))
        if bdev is not None:
            bdevs.append(bdev["name"])
    return steps, bdevs

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_disk's planners: what the node's state (a spdk_model.NodeState) and the request call for.

Pure: state in, steps (spdk_steps.Step) and refusals out; spdk_disk_run reads and sends.

One decision cannot be made up front: which lvstore a device holds is known only once SPDK has
attached and examined it. So attaching a device is planned in two parts: ``plan_present`` plans
the attach and sets ``examine``; after the attach, ``plan_examined`` decides from the lvstores
read then: import (nothing to send), create the lvstore, or detach the device again and refuse.
Check mode stops after the first part and reports the second as an action without a method.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_model as model
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_request import DiskRefusal, same_file
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import human_size
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


def disk_view(disk):
    return disk.to_dict() if disk is not None else {}


class DiskPlan:
    """Steps to send, what the run warns about, and the disk before (and, for check mode, after) them."""

    def __init__(self, before=None):
        self.steps = []
        self.warnings = []
        self.before = before if before is not None else {}
        self.predicted = None   # the disk once the steps ran, for check mode (a real run reads it back)
        self.examine = None     # after the steps: wait for examine, then plan_examined (the reason, for check mode)
        self.refusal = None     # raised once the steps (undoing this run's attach) are sent
        self.removed_exports = []

    def add(self, method, params, why):
        self.steps.append(Step(method, params, why))


# -- present ------------------------------------------------------------------------------


def plan_present(state, request):
    """Attach the device and import or create its lvstore; nothing when the disk is as asked."""
    disk = state.disk(request.name)
    plan = DiskPlan(disk_view(disk))
    if disk is not None:
        check_existing(plan, disk, request)
        return plan
    base = state.aio_bdev_for_path(request.path, same_file)
    if base is not None:
        plan_attached_bdev(plan, state, base, request)
        return plan
    plan_attach(plan, state, request)
    return plan


def check_existing(plan, disk, request):
    if disk.base is None or not disk.base.is_aio:
        raise DiskRefusal("disk %s lives on bdev %s, which is not an aio bdev; spdk_disk manages aio "
                          "disks only" % (request.name, disk.base_bdev))
    if not same_file(disk.path, request.path):
        raise DiskRefusal("disk %s is already attached from %s, not from %s; detach it first "
                          "(state=absent) or fix path" % (request.name, disk.path, request.path))
    check_identity(request, disk.uuid, disk.cluster_size, disk.base.block_size)
    if request.fallocate and not disk.base.fallocate:
        plan.warnings.append(
            "aio bdev %s was attached without fallocate: freed clusters are not cleared and a new "
            "thin replica may show old data; detach (state=absent) and run again to re-attach it"
            % disk.base_bdev)


def check_identity(request, uuid, cluster_size, block_size):
    if request.uuid and uuid != request.uuid:
        raise DiskRefusal("disk %s has lvstore UUID %s, not the expected %s; check path or uuid"
                          % (request.name, uuid, request.uuid))
    if request.cluster_size and cluster_size != request.cluster_size:
        raise DiskRefusal("disk %s has cluster size %s; an lvstore cannot change it (asked %s)"
                          % (request.name, human_size(cluster_size), human_size(request.cluster_size)))
    if request.block_size and block_size is not None and block_size != request.block_size:
        raise DiskRefusal("disk %s is attached with block size %d, not %d; detach it first to change it"
                          % (request.name, block_size, request.block_size))


def plan_attached_bdev(plan, state, base, request):
    """The device is attached (maybe by hand) but no lvstore named after the disk is on it."""
    other = state.disk_on_bdev(base.name)
    if other is not None:
        raise DiskRefusal(
            "%s is attached as bdev %s and holds lvstore %s (uuid %s), not %s; use name: %s, or "
            "rename the lvstore" % (request.path, base.name, other.name, other.uuid, request.name, other.name))
    if base.claimed:
        raise DiskRefusal("bdev %s over %s is claimed by another SPDK module; refusing to format it"
                          % (base.name, request.path))
    plan_lvstore(plan, request, base.name, "bdev %s over %s holds no lvstore" % (base.name, request.path))


def plan_attach(plan, state, request):
    clash = state.bdev_named(request.name)
    if clash is not None:
        raise DiskRefusal("a bdev named %s already exists (%s) and is not an aio bdev over %s; "
                          "choose another disk name" % (request.name, clash.get("product_name"), request.path))
    params = {"name": request.name, "filename": request.path, "block_size": request.new_block_size}
    if request.fallocate:
        params["fallocate"] = True
    else:
        plan.warnings.append("attaching %s without fallocate: freed clusters are not cleared and a "
                             "new thin replica may show old data" % request.path)
    plan.add("bdev_aio_create", params, "attach %s" % request.path)
    plan.examine = ("after examine: import the lvstore on %s, or create lvstore %s if it has none"
                    % (request.path, request.name))
    plan.predicted = {"name": request.name, "uuid": request.uuid, "path": request.path, "base_bdev": request.name}


def plan_lvstore(plan, request, bdev_name, why):
    if request.uuid:
        raise DiskRefusal("%s; refusing to create an lvstore because uuid %s was given" % (why, request.uuid))
    plan.add("bdev_lvol_create_lvstore", {
        "bdev_name": bdev_name, "lvs_name": request.name,
        "cluster_sz": request.new_cluster_size, "clear_method": request.clear_method}, why)
    plan.predicted = {"name": request.name, "uuid": None, "path": request.path, "base_bdev": bdev_name,
                      "cluster_size": request.new_cluster_size, "replicas": [], "lvols": []}


def plan_examined(state, request, has_signature):
    """After this run attached the device as bdev ``request.name`` and SPDK examined it: ``state`` holds
    the lvstores read then. A device that does not match is detached again (the plan's steps) and
    refused (its ``refusal``). ``has_signature()`` tells whether the device starts with a blobstore."""
    plan = DiskPlan()
    undo = Step("bdev_aio_delete", {"name": request.name}, "undo the attach of a device that does not match")
    disk = state.disk_on_bdev(request.name)
    try:
        if disk is not None and disk.name == request.name:
            check_identity(request, disk.uuid, disk.cluster_size, None)
            return plan
        if disk is not None:
            raise DiskRefusal("%s holds lvstore %s (uuid %s), not %s; it was detached again. Use name: %s, or "
                              "rename the lvstore" % (request.path, disk.name, disk.uuid, request.name, disk.name))
        if request.uuid:
            raise DiskRefusal("%s holds no lvstore, so none with uuid %s; it was detached again and not "
                              "formatted" % (request.path, request.uuid))
        if has_signature():
            raise DiskRefusal("%s starts with an SPDK blobstore but SPDK loaded no lvstore from it (see the "
                              "spdk_tgt log: an lvstore with the same name may already be loaded); it was "
                              "detached again and not formatted" % request.path)
    except DiskRefusal as refusal:
        plan.steps.append(undo)
        plan.refusal = refusal
        return plan
    plan_lvstore(plan, request, request.name, "%s holds no lvstore" % request.path)
    return plan


# -- absent -------------------------------------------------------------------------------


def disk_to_detach(state, request):
    """The disk ``state=absent`` acts on, or None; refuses one this module may not detach."""
    disk = state.disk(request.name)
    if disk is None:
        return None
    if request.path and not same_file(disk.path, request.path):
        raise DiskRefusal("disk %s is attached from %s, not from %s; nothing was changed"
                          % (request.name, disk.path, request.path))
    if disk.base is None or not disk.base.is_aio:
        raise DiskRefusal("disk %s lives on bdev %s, which is not an aio bdev; spdk_disk can only detach "
                          "aio disks" % (request.name, disk.base_bdev))
    return disk


def absent_reads(state, request):
    """The model parts ``plan_absent`` needs besides spdk_model.DISK_PARTS: who uses the disk's lvols
    (refused unless ``force``), or, with ``force``, the subsystems to remove first."""
    disk = disk_to_detach(state, request)
    if disk is None or not disk.lvols:
        return ()
    return ("subsystems",) if request.force else model.USAGE_PARTS


def plan_absent(state, request):
    """Detach the disk (its data kept), after destroying its lvstore with ``wipe``; ``state`` holds the
    parts ``absent_reads`` names."""
    disk = disk_to_detach(state, request)
    if disk is None:
        return plan_leftover(state, request)
    plan = DiskPlan(disk_view(disk))
    if disk.lvols and not request.force:
        refuse_if_busy(disk, request, state.usage(disk.lvols))
    elif disk.lvols:
        plan_export_removal(plan, disk, state)
    if request.wipe:
        plan.add("bdev_lvol_delete_lvstore", {"uuid": disk.uuid},
                 "wipe: destroy lvstore %s and its %d lvol(s)" % (disk.name, len(disk.lvols)))
    plan.add("bdev_aio_delete", {"name": disk.base_bdev},
             "detach %s (the lvstore is unloaded, its data kept)" % disk.path
             if not request.wipe else "detach %s" % disk.path)
    return plan


def plan_export_removal(plan, disk, state):
    """force: take this disk's lvols out of NVMe-oF first. Detaching the disk only hot-removes their
    namespaces, and the subsystems would stay behind with their listeners."""
    refs = set()
    for lvol in disk.lvols:
        refs |= lvol.refs()
    for exposure in state.exposures:
        mine = [ns for ns in exposure.namespaces if ns["bdev"] in refs]
        if not mine:
            continue
        plan.removed_exports.append(exposure.nqn)
        if len(mine) == len(exposure.namespaces):
            plan.add("nvmf_delete_subsystem", {"nqn": exposure.nqn},
                     "force: delete subsystem %s, which exports lvols of disk %s" % (exposure.nqn, disk.name))
            continue
        for ns in mine:     # the subsystem exports other bdevs too: keep it for them
            plan.add("nvmf_subsystem_remove_ns", {"nqn": exposure.nqn, "nsid": ns["nsid"]},
                     "force: remove namespace %s (%s, an lvol of disk %s) from subsystem %s, which "
                     "keeps its other namespaces" % (ns["nsid"], ns["bdev"], disk.name, exposure.nqn))


def refuse_if_busy(disk, request, usage):
    if usage:
        busy = "; ".join("%s: %s" % (name, ", ".join(why)) for name, why in sorted(usage.items()))
        raise DiskRefusal("disk %s is in use (%s); unexpose the replicas and remove them from their "
                          "engines first, or set force: true (exports vanish, RAIDs degrade)" % (request.name, busy))
    if request.wipe:
        raise DiskRefusal("wipe would destroy %d lvol(s) on disk %s (%s); delete the replicas first "
                          "or set force: true" % (len(disk.lvols), request.name,
                                                  ", ".join(lv.name for lv in disk.lvols)))


def plan_leftover(state, request):
    """An aio bdev named after the disk without an lvstore (an interrupted attach) is detached."""
    plan = DiskPlan()
    base = state.base_bdevs.get(request.name)
    if base is None or not base.is_aio or state.disk_on_bdev(base.name) is not None:
        return plan
    if request.path and not same_file(base.path, request.path):
        return plan
    plan.before = {"name": request.name, "base_bdev": base.name, "path": base.path}
    plan.add("bdev_aio_delete", {"name": base.name}, "detach %s, which holds no lvstore" % base.path)
    return plan

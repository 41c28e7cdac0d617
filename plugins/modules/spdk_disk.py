#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_disk
short_description: Attach, import, create, detach and wipe a disk (aio bdev + lvstore) on an SPDK target
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - A disk is one base bdev plus exactly one lvstore on it. The lvstore is named after the disk and
    the disk's UUID is the lvstore's UUID.
  - O(state=present) attaches an aio bdev over O(path) (a file or a block device) when it is not
    attached yet, waits for SPDK to examine it and so imports the lvstore found on it. Only when the
    device holds no lvstore does it create one. With O(uuid) it never creates one; a device
    without an lvstore of that UUID makes the task fail.
  - When the disk is not attached, the module must attach the device to learn which lvstore it holds.
    If that lvstore does not match (another name or another UUID), the module detaches the device
    again, so the node is left as it was, and fails.
  - The aio bdev is created with C(fallocate) so that it supports unmap and write-zeroes. Without
    it SPDK's default clear method erases nothing, and a new thin replica can show a deleted
    replica's old bytes.
  - O(state=absent) detaches the disk. The aio bdev is deleted, which unloads the lvstore without
    destroying it; its data stays on the device and O(state=present) imports it again. This is
    refused while a replica of the disk is exposed over NVMe-oF or is a member of a RAID, unless
    O(force=true).
  - With O(force=true), the NVMe-oF subsystems that export lvols of this disk are deleted first (a subsystem that
    also exports bdevs of other disks only loses this disk's namespaces), so no subsystem is left behind with a
    listener and no namespace. Subsystems exporting anything else, such as an engine's frontend, stay. The
    result lists them in RV(removed_exports).
  - O(state=absent) with O(wipe=true) destroys the lvstore and all its volumes first. This is
    refused while any lvol lives on the disk, unless O(force=true). Real SPDK destroys an lvstore
    under a live RAID without complaint, so the module checks RAID membership itself.
  - A run that changes nothing sends two read RPCs in one batch (present), or two, plus two when
    the disk is attached (absent). O(force=true) reads the subsystems (one RPC) instead of checking usage.
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
attributes:
  check_mode:
    support: partial
    details:
      - When the disk is not attached, which lvstore the device holds is known only once SPDK has attached
        and examined it. Check mode attaches nothing, so it reports the attach, then an action without a
        method that says the lvstore will be imported, or created if the device holds none.
options:
  name:
    description:
      - Name of the disk. The lvstore gets this name; a newly attached aio bdev too.
      - At most 63 characters of V(A-Z), V(a-z), V(0-9), V(_), V(.), V(-); it must not start with
        V(-) or V(.), and must not end with the reserved suffixes V(-rebuild) or V(-tmp).
    type: str
    required: true
  path:
    description:
      - File or block device holding the disk, on the node that runs C(spdk_tgt).
      - Required with O(state=present). With O(state=absent) it is optional. When given, the module
        refuses to detach a disk attached from another path.
      - When O(rpc_socket) is a Unix socket (the target runs on this host) a missing path fails the
        task before any RPC is sent.
    type: path
  state:
    description:
      - V(present) attaches the disk and imports or creates its lvstore.
      - V(absent) detaches it, keeping its data, or destroys it with O(wipe=true).
    type: str
    choices: [present, absent]
    default: present
  block_size:
    description:
      - Block size of the aio bdev, used when attaching. V(4096) when not given.
      - When given for an attached disk, a different block size fails the task.
    type: int
  cluster_size:
    description:
      - Cluster size of a new lvstore, in bytes or with a binary unit such as V(1MiB) or V(4M).
      - V(1MiB) when not given. An existing lvstore keeps its cluster size. Giving a different
        value for an existing lvstore fails the task, because SPDK cannot change it.
    type: str
  clear_method:
    description:
      - How SPDK clears the clusters of deleted lvols on a new lvstore.
      - V(unmap) really clears only on a device attached with O(fallocate=true).
      - V(none) leaves old data on the device, where a new thin replica may expose it.
    type: str
    choices: [unmap, write_zeroes, none]
    default: unmap
  fallocate:
    description:
      - Attach the aio bdev with C(fallocate), so that unmap and write-zeroes work.
      - Set V(false) only for an SPDK release that does not know this parameter. The module then
        warns that freed clusters are not cleared.
    type: bool
    default: true
  uuid:
    description:
      - Expected UUID of the disk (its lvstore). When it is given, the module never creates an
        lvstore. It fails when the device holds no lvstore, or one with another UUID.
    type: str
  wipe:
    description:
      - With O(state=absent), destroy the lvstore and every volume on it before detaching.
      - Refused while lvols exist on the disk unless O(force=true).
    type: bool
    default: false
  force:
    description:
      - With O(state=absent), detach even though replicas are exposed or used by a RAID. The subsystems
        exporting lvols of this disk are deleted first (RV(removed_exports)) and the RAIDs degrade.
      - With O(wipe=true), also destroy lvols that still exist, and lvols that a RAID uses.
    type: bool
    default: false
notes:
  - An lvstore found on the device under another name is never renamed. Use that name for the
    disk, or rename the lvstore yourself with C(bdev_lvol_rename_lvstore).
  - When a freshly attached device starts with an SPDK blobstore signature but SPDK loaded no
    lvstore from it (for example because an lvstore with the same name is already loaded), the
    module refuses to format it.
seealso:
  - module: spdk.storage.spdk_replica
  - module: spdk.storage.spdk_info
"""

EXAMPLES = r"""
- name: Attach /var/lib/spdk/disks/disk1.img, creating its lvstore the first time
  spdk.storage.spdk_disk:
    name: disk1
    path: /var/lib/spdk/disks/disk1.img

- name: Re-attach a disk after a restart, failing rather than formatting if it is not the one expected
  spdk.storage.spdk_disk:
    name: disk1
    path: /dev/nvme1n1
    uuid: 2ec6438e-114c-47ba-b723-7c1376549bfb

- name: Detach the disk, keeping its data
  spdk.storage.spdk_disk:
    name: disk1
    state: absent

- name: Destroy the disk and everything on it
  spdk.storage.spdk_disk:
    name: disk1
    state: absent
    wipe: true
    force: true
"""

RETURN = r"""
removed_exports:
  description:
    - NQNs of the NVMe-oF subsystems whose exports of this disk's lvols O(force=true) removed (or, in check mode,
      would remove) before detaching the disk. Deleted, or, when a subsystem exports other bdevs too, stripped of
      this disk's namespaces only. Empty otherwise.
  returned: always
  type: list
  elements: str
  sample: ["nqn.2026-01.io.spdk-storage:vol1-r1"]
disk:
  description: The disk after the run. Empty when the disk is absent. In check mode, what the run would give.
  returned: always
  type: dict
  contains:
    name:
      description: Disk and lvstore name.
      type: str
      sample: disk1
    uuid:
      description: UUID of the lvstore. Unknown (null) in check mode before the lvstore exists.
      type: str
      sample: 2ec6438e-114c-47ba-b723-7c1376549bfb
    path:
      description: File or block device under the disk.
      type: str
      sample: /var/lib/spdk/disks/disk1.img
    base_bdev:
      description: Name of the aio bdev under the lvstore.
      type: str
      sample: disk1
    fallocate:
      description: Whether the aio bdev was attached with fallocate, so that freed clusters are cleared.
      type: bool
    block_size:
      description: Block size of the lvstore in bytes.
      type: int
      sample: 4096
    cluster_size:
      description: Cluster size in bytes.
      type: int
      sample: 1048576
    total_clusters:
      description: Data clusters of the lvstore.
      type: int
      sample: 4079
    free_clusters:
      description: Unallocated clusters.
      type: int
      sample: 4014
    total_bytes:
      description: RV(disk.total_clusters) times RV(disk.cluster_size).
      type: int
      sample: 4277141504
    free_bytes:
      description: RV(disk.free_clusters) times RV(disk.cluster_size).
      type: int
      sample: 4208984064
    replicas:
      description: Names of the replica head lvols on the disk.
      type: list
      elements: str
      sample: [vol1-r1]
    lvols:
      description: Names of every lvol on the disk, snapshots included.
      type: list
      elements: str
      sample: [vol1-r1, vol1-r1-snap-daily]
actions:
  description: The mutating RPCs the run sent (or would send in check mode), each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "bdev_lvol_create_lvstore", "params": {"bdev_name": "disk1", "lvs_name": "disk1",
            "cluster_sz": 1048576, "clear_method": "unmap"}, "why": "the device holds no lvstore"}]
"""

from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_request import DiskRequest, target_is_local
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_run import DiskRun

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    path=dict(type="path"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    block_size=dict(type="int"),
    cluster_size=dict(type="str"),
    clear_method=dict(type="str", choices=["unmap", "write_zeroes", "none"], default="unmap"),
    fallocate=dict(type="bool", default=True),
    uuid=dict(type="str"),
    wipe=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
)


def run(module):
    """Check the options, then read, plan and apply (spdk_disk_run); the module's result."""
    request = DiskRequest(module.params, target_is_local(module.params.get("rpc_socket")))
    disk_run = DiskRun(module.client, request, check_mode=module.check_mode)
    result = disk_run.apply()
    for warning in disk_run.warnings:
        module.warn(warning)
    return result


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


if __name__ == "__main__":
    main()

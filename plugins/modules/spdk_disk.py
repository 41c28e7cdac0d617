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
author:
  - spdk.storage contributors (@spdk-storage)
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
attributes:
  check_mode:
    support: full
    details:
      - When the disk is not attached, check mode cannot look inside the device, so it reports the
        attach and says that the lvstore will be imported or created.
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

import os
import re
import socket
import stat

from ansible_collections.spdk.storage.plugins.module_utils import spdk_model as model
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import SpdkModule, spdk_main
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
    human_size,
    parse_size,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    SpdkRpcError,
    is_http_address,
    parse_address,
)

DEFAULT_BLOCK_SIZE = 4096
DEFAULT_CLUSTER_SIZE = 1 << 20
BLOBSTORE_SIGNATURE = b"SPDKBLOB"  # first bytes of an SPDK blobstore super block (LBA 0)
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

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


class DiskRefusal(SpdkError):
    """The module refuses the request as it stands; the message says why and what to do."""


class DiskRequest:
    """Validated options; raises SpdkInputError before any RPC."""

    def __init__(self, params, target_is_local):
        self.name = validate_lvol_name("disk", params["name"])
        self.path = params["path"]
        self.state = params["state"]
        self.block_size = params["block_size"]
        self.clear_method = params["clear_method"]
        self.fallocate = params["fallocate"]
        self.wipe = params["wipe"]
        self.force = params["force"]
        self.target_is_local = target_is_local
        self.cluster_size = self._cluster_size(params["cluster_size"])
        self.uuid = self._uuid(params["uuid"])
        if self.block_size is not None and (self.block_size < 512 or self.block_size & (self.block_size - 1)):
            raise SpdkInputError("block_size must be a power of two of at least 512, got %d" % self.block_size)
        if self.state == "present":
            self._check_present()

    def _cluster_size(self, value):
        if value is None:
            return None
        size = parse_size(value, "cluster_size")
        if size % DEFAULT_BLOCK_SIZE or size & (size - 1):
            raise SpdkInputError("cluster_size %r must be a power of two and a multiple of 4KiB" % (value,))
        return size

    @staticmethod
    def _uuid(value):
        if value is None:
            return None
        if not _UUID_RE.match(value):
            raise SpdkInputError("uuid %r is not a UUID such as 2ec6438e-114c-47ba-b723-7c1376549bfb" % (value,))
        return value.lower()

    def _check_present(self):
        if self.wipe:
            raise SpdkInputError("wipe only applies to state=absent")
        if not self.path:
            raise SpdkInputError("state=present needs path (the file or block device of the disk)")
        if self.target_is_local and not os.path.exists(self.path):
            raise SpdkInputError("path %s does not exist on this host; create the file (for example "
                                 "with truncate -s 10G) or give the right block device" % self.path)
        if self.target_is_local and not (os.path.isfile(self.path) or _is_block_device(self.path)):
            raise SpdkInputError("path %s is neither a regular file nor a block device" % self.path)

    @property
    def new_block_size(self):
        return self.block_size or DEFAULT_BLOCK_SIZE

    @property
    def new_cluster_size(self):
        return self.cluster_size or DEFAULT_CLUSTER_SIZE


def _is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def target_is_local(rpc_socket):
    """True when rpc_socket is a Unix socket, so the target sees this host's files."""
    if not rpc_socket or is_http_address(rpc_socket):
        return False
    return parse_address(rpc_socket)[0] == socket.AF_UNIX


def same_file(recorded, wanted):
    """Does the aio filename SPDK recorded name the file ``wanted``?"""
    if recorded is None or wanted is None:
        return False
    if recorded == wanted:
        return True
    try:
        return os.path.samefile(recorded, wanted)
    except OSError:
        return os.path.normpath(recorded) == os.path.normpath(wanted)


def disk_view(disk):
    return disk.to_dict() if disk is not None else {}


class DiskRun:
    """One run of the module: reads, decides, sends mutating calls through the client.

    In check mode the client skips mutating calls (returns None) and the same code
    runs, so the actions listed are the ones a real run would send.
    """

    def __init__(self, module, request):
        self.module = module
        self.request = request
        self.client = module.client
        self.check_mode = module.check_mode
        self.actions = []
        self.warnings = []
        self.removed_exports = []  # NQNs whose exports of this disk's lvols force removed
        self.before = {}
        self.predicted = None  # disk view for check mode when nothing can be read back

    # -- helpers ------------------------------------------------------------------
    def read(self, parts=model.DISK_PARTS):
        return model.load_node(self.client, parts)

    def mutate(self, method, params, why):
        self.actions.append({"method": method, "params": params, "why": why})
        return self.client.call(method, params)

    @property
    def changed(self):
        return bool(self.actions)

    # -- present --------------------------------------------------------------------
    def present(self):
        req = self.request
        state = self.read()
        disk = state.disk(req.name)
        self.before = disk_view(disk)
        if disk is not None:
            self.check_existing(disk)
            return
        base = state.aio_bdev_for_path(req.path, same_file)
        if base is not None:
            self.use_attached_bdev(state, base)
            return
        self.attach_and_import(state)

    def check_existing(self, disk):
        req = self.request
        if disk.base is None or not disk.base.is_aio:
            raise DiskRefusal("disk %s lives on bdev %s, which is not an aio bdev; spdk_disk manages aio "
                              "disks only" % (req.name, disk.base_bdev))
        if not same_file(disk.path, req.path):
            raise DiskRefusal("disk %s is already attached from %s, not from %s; detach it first "
                              "(state=absent) or fix path" % (req.name, disk.path, req.path))
        self.check_identity(disk.uuid, disk.cluster_size, disk.base.block_size)
        if req.fallocate and not disk.base.fallocate:
            self.warnings.append(
                "aio bdev %s was attached without fallocate: freed clusters are not cleared and a new "
                "thin replica may show old data; detach (state=absent) and run again to re-attach it"
                % disk.base_bdev)

    def check_identity(self, uuid, cluster_size, block_size):
        req = self.request
        if req.uuid and uuid != req.uuid:
            raise DiskRefusal("disk %s has lvstore UUID %s, not the expected %s; check path or uuid"
                              % (req.name, uuid, req.uuid))
        if req.cluster_size and cluster_size != req.cluster_size:
            raise DiskRefusal("disk %s has cluster size %s; an lvstore cannot change it (asked %s)"
                              % (req.name, human_size(cluster_size), human_size(req.cluster_size)))
        if req.block_size and block_size is not None and block_size != req.block_size:
            raise DiskRefusal("disk %s is attached with block size %d, not %d; detach it first to change it"
                              % (req.name, block_size, req.block_size))

    def use_attached_bdev(self, state, base):
        """The device is attached (maybe by hand) but no lvstore named after the disk is on it."""
        other = state.disk_on_bdev(base.name)
        if other is not None:
            raise DiskRefusal(
                "%s is attached as bdev %s and holds lvstore %s (uuid %s), not %s; use name: %s, or "
                "rename the lvstore" % (self.request.path, base.name, other.name, other.uuid,
                                        self.request.name, other.name))
        if base.claimed:
            raise DiskRefusal("bdev %s over %s is claimed by another SPDK module; refusing to format it"
                              % (base.name, self.request.path))
        self.create_lvstore(base.name, "bdev %s over %s holds no lvstore" % (base.name, self.request.path))

    def attach_and_import(self, state):
        req = self.request
        clash = state.bdev_named(req.name)
        if clash is not None:
            raise DiskRefusal("a bdev named %s already exists (%s) and is not an aio bdev over %s; "
                              "choose another disk name" % (req.name, clash.get("product_name"), req.path))
        params = {"name": req.name, "filename": req.path, "block_size": req.new_block_size}
        if req.fallocate:
            params["fallocate"] = True
        else:
            self.warnings.append("attaching %s without fallocate: freed clusters are not cleared and a "
                                 "new thin replica may show old data" % req.path)
        self.mutate("bdev_aio_create", params, "attach %s" % req.path)
        if self.check_mode:
            self.predicted = {"name": req.name, "uuid": req.uuid, "path": req.path, "base_bdev": req.name}
            self.actions.append({"method": None, "params": None,
                                 "why": "after examine: import the lvstore on %s, or create lvstore %s "
                                        "if it has none" % (req.path, req.name)})
            return
        self.client.call("bdev_wait_for_examine")
        self.import_or_create(req.name)

    def import_or_create(self, bdev_name):
        req = self.request
        disk = self.read(("lvstores",)).disk_on_bdev(bdev_name)
        if disk is not None and disk.name == req.name:
            self.undo_attach_unless(lambda: self.check_identity(disk.uuid, disk.cluster_size, None))
            return
        if disk is not None:
            self.undo_attach_unless(lambda: _raise(DiskRefusal(
                "%s holds lvstore %s (uuid %s), not %s; it was detached again. Use name: %s, or rename "
                "the lvstore" % (req.path, disk.name, disk.uuid, req.name, disk.name))))
        if req.uuid:
            self.undo_attach_unless(lambda: _raise(DiskRefusal(
                "%s holds no lvstore, so none with uuid %s; it was detached again and not formatted"
                % (req.path, req.uuid))))
        if self.has_blobstore_signature():
            self.undo_attach_unless(lambda: _raise(DiskRefusal(
                "%s starts with an SPDK blobstore but SPDK loaded no lvstore from it (see the spdk_tgt "
                "log: an lvstore with the same name may already be loaded); it was detached again and "
                "not formatted" % req.path)))
        self.create_lvstore(bdev_name, "%s holds no lvstore" % req.path)

    def undo_attach_unless(self, check):
        """Run ``check``; if it refuses, delete the aio bdev this run attached, then re-raise."""
        try:
            check()
        except DiskRefusal:
            self.mutate("bdev_aio_delete", {"name": self.request.name}, "undo the attach of a device that does not match")
            raise

    def has_blobstore_signature(self):
        if not self.request.target_is_local:
            return False
        try:
            with open(self.request.path, "rb") as device:
                return device.read(len(BLOBSTORE_SIGNATURE)) == BLOBSTORE_SIGNATURE
        except (IOError, OSError):
            return False

    def create_lvstore(self, bdev_name, why):
        req = self.request
        if req.uuid:
            raise DiskRefusal("%s; refusing to create an lvstore because uuid %s was given" % (why, req.uuid))
        self.mutate("bdev_lvol_create_lvstore", {
            "bdev_name": bdev_name, "lvs_name": req.name,
            "cluster_sz": req.new_cluster_size, "clear_method": req.clear_method}, why)
        if self.check_mode:
            self.predicted = {"name": req.name, "uuid": None, "path": req.path, "base_bdev": bdev_name,
                              "cluster_size": req.new_cluster_size, "replicas": [], "lvols": []}

    # -- absent ---------------------------------------------------------------------
    def absent(self):
        req = self.request
        state = self.read()
        disk = state.disk(req.name)
        if disk is None:
            self.detach_leftover_bdev(state)
            return
        self.before = disk_view(disk)
        if req.path and not same_file(disk.path, req.path):
            raise DiskRefusal("disk %s is attached from %s, not from %s; nothing was changed"
                              % (req.name, disk.path, req.path))
        if disk.base is None or not disk.base.is_aio:
            raise DiskRefusal("disk %s lives on bdev %s, which is not an aio bdev; spdk_disk can only detach "
                              "aio disks" % (req.name, disk.base_bdev))
        if disk.lvols and not req.force:
            with_usage = model.NodeState(dict(state.raw, **model.fetch(self.client, model.USAGE_PARTS)))
            self.refuse_if_busy(disk, with_usage.usage(disk.lvols))
        elif disk.lvols:
            self.remove_exports(disk, model.NodeState(dict(state.raw, **model.fetch(self.client, ("subsystems",)))))
        if req.wipe:
            self.mutate("bdev_lvol_delete_lvstore", {"uuid": disk.uuid},
                        "wipe: destroy lvstore %s and its %d lvol(s)" % (disk.name, len(disk.lvols)))
        self.mutate("bdev_aio_delete", {"name": disk.base_bdev},
                    "detach %s (the lvstore is unloaded, its data kept)" % disk.path
                    if not req.wipe else "detach %s" % disk.path)

    def remove_exports(self, disk, state):
        """force: take this disk's lvols out of NVMe-oF first. Detaching the disk only hot-removes their
        namespaces, and the subsystems would stay behind with their listeners."""
        refs = set()
        for lvol in disk.lvols:
            refs |= lvol.refs()
        for exposure in state.exposures:
            mine = [ns for ns in exposure.namespaces if ns["bdev"] in refs]
            if not mine:
                continue
            self.removed_exports.append(exposure.nqn)
            if len(mine) == len(exposure.namespaces):
                self.mutate("nvmf_delete_subsystem", {"nqn": exposure.nqn},
                            "force: delete subsystem %s, which exports lvols of disk %s" % (exposure.nqn, disk.name))
                continue
            for ns in mine:     # the subsystem exports other bdevs too: keep it for them
                self.mutate("nvmf_subsystem_remove_ns", {"nqn": exposure.nqn, "nsid": ns["nsid"]},
                            "force: remove namespace %s (%s, an lvol of disk %s) from subsystem %s, which "
                            "keeps its other namespaces" % (ns["nsid"], ns["bdev"], disk.name, exposure.nqn))

    def refuse_if_busy(self, disk, usage):
        req = self.request
        if usage:
            busy = "; ".join("%s: %s" % (name, ", ".join(why)) for name, why in sorted(usage.items()))
            raise DiskRefusal("disk %s is in use (%s); unexpose the replicas and remove them from their "
                              "engines first, or set force: true (exports vanish, RAIDs degrade)" % (req.name, busy))
        if req.wipe:
            raise DiskRefusal("wipe would destroy %d lvol(s) on disk %s (%s); delete the replicas first "
                              "or set force: true" % (len(disk.lvols), req.name,
                                                      ", ".join(lv.name for lv in disk.lvols)))

    def detach_leftover_bdev(self, state):
        """An aio bdev named after the disk without an lvstore (an interrupted attach)."""
        base = state.base_bdevs.get(self.request.name)
        if base is None or not base.is_aio or state.disk_on_bdev(base.name) is not None:
            return
        if self.request.path and not same_file(base.path, self.request.path):
            return
        self.before = {"name": self.request.name, "base_bdev": base.name, "path": base.path}
        self.mutate("bdev_aio_delete", {"name": base.name}, "detach %s, which holds no lvstore" % base.path)

    # -- result ---------------------------------------------------------------------
    def after(self):
        if self.request.state == "absent":
            return {}
        if not self.changed:
            return self.before
        if self.check_mode:
            return dict(self.predicted or {})
        return disk_view(self.read().disk(self.request.name))


def _raise(exc):
    raise exc


RPC_HINTS = {
    "bdev_aio_create": "check that path exists on the target host and is not attached under another "
                       "name (SPDK answers -22 for a file already attached)",
    "bdev_lvol_create_lvstore": "check that the device is large enough for the cluster size",
    "bdev_aio_delete": "the bdev may already be gone; run the task again",
}


def rpc_hint(err):
    """What to do about a failed RPC of this module, better said than the generic hint; else None."""
    if not isinstance(err, SpdkRpcError):
        return None
    if err.method == "bdev_aio_create" and "decode" in (err.message or ""):
        return ("this SPDK does not accept the fallocate parameter of bdev_aio_create (an older release); "
                "upgrade SPDK, or set fallocate: false and accept that freed clusters are not cleared")
    if err.method == "bdev_aio_create" and err.code == -2:
        return "path does not exist on the host that runs spdk_tgt"
    return RPC_HINTS.get(err.method)


@spdk_main
def main():
    module = SpdkModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        request = DiskRequest(module.params, target_is_local(module.params.get("rpc_socket")))
    except SpdkError as err:
        err.fail(module)
    run = DiskRun(module, request)
    try:
        if request.state == "present":
            run.present()
        else:
            run.absent()
        disk = run.after()
    except SpdkError as err:
        err.fail(module, hint=rpc_hint(err), actions=run.actions)
    for warning in run.warnings:
        module.warn(warning)
    module.exit_with(changed=run.changed, diff={"before": run.before, "after": disk},
                     disk=disk, actions=run.actions, removed_exports=run.removed_exports)


if __name__ == "__main__":
    main()

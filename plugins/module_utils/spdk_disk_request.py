# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_disk's request: the options checked before any RPC, the disk's refusal, the hints on RPC failures.

A disk is one aio bdev over a file or block device plus exactly one lvstore on it, named after
the disk (spdk_disk_plan decides, spdk_disk_run reads and sends).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import socket
import stat

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
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

    def has_blobstore_signature(self):
        """Does the device start with an SPDK blobstore? Only known when the target runs on this host."""
        if not self.target_is_local:
            return False
        try:
            with open(self.path, "rb") as device:
                return device.read(len(BLOBSTORE_SIGNATURE)) == BLOBSTORE_SIGNATURE
        except (IOError, OSError):
            return False


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

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel NVMe/TCP host of the engine node, for ``frontend: blockdev``: ``nvme connect`` to the
engine's frontend and the block device it brings, found in sysfs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter, WaitTimeout

DEVICE_POLL = 0.5
"""Seconds between two looks for the block device after ``nvme connect``."""


def connect_step(nqn, address, port, host_nqn):
    """The action that reports a kernel connect (not an RPC: the run calls KernelInitiator.connect)."""
    return Step("nvme connect", {"nqn": nqn, "traddr": address, "trsvcid": port, "hostnqn": host_nqn},
                "connect the kernel NVMe/TCP host to the frontend (block device)")


def disconnect_step(nqn):
    return Step("nvme disconnect", {"nqn": nqn}, "disconnect the kernel host from the frontend first")


class KernelInitiator:
    """``nvme connect`` of the engine's frontend on this node, for frontend=blockdev.

    ``run_command`` is AnsibleModule.run_command; ``sysfs`` and ``hostnqn_file`` are
    parameters so tests can point them at a fake tree.
    """

    def __init__(self, run_command, get_bin_path, sysfs="/sys", hostnqn_file="/etc/nvme/hostnqn",
                 sleep=time.sleep, clock=time.monotonic):
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.sysfs = sysfs
        self.hostnqn_file = hostnqn_file
        self.sleep = sleep
        self.clock = clock
        self.nvme = None

    def check(self, check_mode=False):
        """Refuse clearly, before any RPC, when this node cannot connect a kernel NVMe/TCP host."""
        self.nvme = self.get_bin_path("nvme")
        if not self.nvme:
            raise EngineRefusal("frontend=blockdev needs nvme-cli (the 'nvme' command) on the engine node; install "
                                "it (Debian/Ubuntu: apt-get install nvme-cli) or use frontend=nvmf")
        module_dir = os.path.join(self.sysfs, "module", "nvme_tcp")
        if os.path.isdir(module_dir):
            return
        modprobe = self.get_bin_path("modprobe")
        if not check_mode and modprobe:
            rc = self.run_command([modprobe, "nvme_tcp"])[0]
            if rc == 0 and os.path.isdir(module_dir):
                return
        raise EngineRefusal("frontend=blockdev needs the nvme-tcp kernel module on the engine node, and it is not "
                            "loaded (%s missing)%s; load it (modprobe nvme-tcp) on a kernel that has it, or use "
                            "frontend=nvmf" % (module_dir, "" if check_mode else " and could not be loaded"))

    def host_nqn(self):
        try:
            with open(self.hostnqn_file) as handle:
                nqn = handle.read().strip()
        except IOError:
            nqn = ""
        if not nqn:
            raise EngineRefusal("frontend=blockdev needs this node's kernel host NQN in %s: create it with "
                                "'nvme gen-hostnqn > %s'" % (self.hostnqn_file, self.hostnqn_file))
        return nvmf.validate_host_nqn(nqn)

    def device(self, nqn):
        """/dev path of the connected namespace of subsystem ``nqn``, or None."""
        root = os.path.join(self.sysfs, "class", "nvme-subsystem")
        for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            try:
                with open(os.path.join(root, entry, "subsysnqn")) as handle:
                    if handle.read().strip() != nqn:
                        continue
            except IOError:
                continue
            names = sorted(n for n in os.listdir(os.path.join(root, entry)) if re.match(r"^nvme\d+n\d+$", n))
            if names:
                return "/dev/" + names[0]
        return None

    def connect(self, nqn, address, port, host_nqn, timeout=30.0):
        """``nvme connect``; the block device once the kernel shows it, None if it did not within ``timeout``."""
        rc, out, err = self.run_command([self.nvme, "connect", "-t", "tcp", "-a", address, "-s", str(port),
                                         "-n", nqn, "--hostnqn", host_nqn])
        if rc != 0:
            raise EngineRefusal("nvme connect to %s at %s:%s failed (rc %d): %s"
                                % (nqn, address, port, rc, (err or out).strip()))
        try:
            return Waiter(timeout, DEVICE_POLL, clock=self.clock, sleep=self.sleep).until(
                lambda: self.device(nqn), lambda: "no block device for %s" % nqn)
        except WaitTimeout:
            return None

    def disconnect(self, nqn):
        """``nvme disconnect`` of the frontend; nvme-cli must be installed."""
        self.nvme = self.nvme or self.get_bin_path("nvme")
        if not self.nvme:
            raise EngineRefusal("a kernel host on this node is connected to %s, and nvme-cli is missing to "
                                "disconnect it" % nqn)
        rc, out, err = self.run_command([self.nvme, "disconnect", "-n", nqn])
        if rc != 0:
            raise EngineRefusal("nvme disconnect of %s failed (rc %d): %s" % (nqn, rc, (err or out).strip()))

# -*- coding: utf-8 -*-
"""KernelInitiator: the engine node's kernel NVMe/TCP host for frontend=blockdev, on a fake sysfs tree."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_initiator import KernelInitiator
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal

NQN = "nqn.2026-01.io.spdk-storage:vol1-e0"


class FakeHost:
    """run_command / get_bin_path of a host, with a fake sysfs tree."""

    def __init__(self, root, binaries=("nvme", "modprobe"), modprobe_loads=False):
        self.root = root
        self.binaries = binaries
        self.modprobe_loads = modprobe_loads
        self.commands = []

    def get_bin_path(self, name):
        return "/usr/sbin/" + name if name in self.binaries else None

    def run_command(self, argv):
        self.commands.append(argv)
        if argv[-1] == "nvme_tcp" and self.modprobe_loads:
            os.makedirs(os.path.join(self.root, "module", "nvme_tcp"))
            return 0, "", ""
        if "connect" in argv:
            sub = os.path.join(self.root, "class", "nvme-subsystem", "nvme-subsys3")
            os.makedirs(os.path.join(sub, "nvme3n1"))
            with open(os.path.join(sub, "subsysnqn"), "w") as handle:
                handle.write(argv[argv.index("-n") + 1] + "\n")
            return 0, "", ""
        return 1, "", "modprobe: FATAL: Module nvme_tcp not found"

    def initiator(self):
        return KernelInitiator(self.run_command, self.get_bin_path, sysfs=self.root,
                               hostnqn_file=os.path.join(self.root, "hostnqn"), sleep=lambda s: None)


class TestKernelInitiator:
    def test_missing_nvme_cli_is_refused(self, tmp_path):
        with pytest.raises(EngineRefusal, match="needs nvme-cli"):
            FakeHost(str(tmp_path), binaries=()).initiator().check()

    def test_missing_kernel_module_is_refused_after_trying_to_load_it(self, tmp_path):
        host = FakeHost(str(tmp_path))
        with pytest.raises(EngineRefusal, match="nvme-tcp kernel module.*could not be loaded"):
            host.initiator().check()
        assert host.commands == [["/usr/sbin/modprobe", "nvme_tcp"]]

    def test_check_mode_only_looks(self, tmp_path):
        host = FakeHost(str(tmp_path))
        with pytest.raises(EngineRefusal, match="nvme-tcp kernel module"):
            host.initiator().check(check_mode=True)
        assert host.commands == []

    def test_connect_finds_the_block_device_of_the_subsystem(self, tmp_path):
        host = FakeHost(str(tmp_path), modprobe_loads=True)
        initiator = host.initiator()
        initiator.check()
        assert initiator.device(NQN) is None
        assert initiator.connect(NQN, "127.0.0.1", 4420, "nqn.2014-08.org.nvmexpress:uuid:1") == "/dev/nvme3n1"
        assert host.commands[-1] == ["/usr/sbin/nvme", "connect", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420",
                                     "-n", NQN, "--hostnqn", "nqn.2014-08.org.nvmexpress:uuid:1"]

    def test_the_kernel_host_nqn_must_exist(self, tmp_path):
        with pytest.raises(EngineRefusal, match="nvme gen-hostnqn"):
            FakeHost(str(tmp_path)).initiator().host_nqn()

    def test_a_connect_whose_device_never_shows_gives_none_after_the_timeout(self, tmp_path):
        host = FakeHost(str(tmp_path))
        os.makedirs(os.path.join(host.root, "module", "nvme_tcp"))
        now = [0.0]
        initiator = KernelInitiator(lambda argv: (0, "", ""), host.get_bin_path, sysfs=host.root,
                                    sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
        initiator.check()
        assert initiator.connect(NQN, "127.0.0.1", 4420, "nqn.2014-08.org.nvmexpress:uuid:1", timeout=2.0) is None
        assert now[0] == 2.0   # looked every 0.5 s until the timeout

    def test_disconnect_needs_nvme_cli(self, tmp_path):
        with pytest.raises(EngineRefusal, match="nvme-cli is missing to disconnect it"):
            FakeHost(str(tmp_path), binaries=()).initiator().disconnect(NQN)

"""The spdk_tgt role's systemd unit (roles/spdk_tgt/templates/spdk_tgt.service.j2), rendered by Ansible's templar.

The templar runs in a child process: importing Ansible's controller code here would switch every
later module test of this process to controller-side warnings (ansible.module_utils then hands
warnings to the display instead of the module result).
"""
import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "spdk_tgt")


def render(**overrides):
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        variables = yaml.safe_load(handle)
    variables.update({
        "ansible_managed": "Ansible managed",
        "spdk_tgt_python": "/usr/bin/python3",
        "spdk_tgt_supervisor": "/usr/local/libexec/spdk-storage/spdk_tgt_supervisor.py",
        "spdk_tgt_argv": ["/usr/local/bin/spdk_tgt", "-r", "/var/tmp/spdk.sock", "-m", "0x1", "-s", "1024"],
        "spdk_tgt_socket_args": ["--mode", "0600"],
    })
    variables.update(overrides)
    done = subprocess.run([sys.executable, "-c", RENDER, os.path.join(ROLE, "templates", "spdk_tgt.service.j2")],
                          input=json.dumps(variables), capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


RENDER = """
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
with open(sys.argv[1]) as handle:
    source = handle.read()
sys.stdout.write(Templar(loader=DataLoader(), variables=json.load(sys.stdin)).template(trust_as_template(source)))
"""


def exec_start_pre(unit):
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStartPre=")]


def test_with_hugepages_the_unit_mounts_a_hugetlbfs_before_every_start():
    assert exec_start_pre(render()) == [
        "/usr/bin/python3 /usr/local/libexec/spdk-storage/spdk_tgt_supervisor.py hugetlbfs --path /dev/hugepages --mount"]


def test_without_mounting_the_unit_only_checks_for_a_hugetlbfs():
    assert exec_start_pre(render(spdk_tgt_hugetlbfs_mount=False, spdk_tgt_hugetlbfs_path="/mnt/huge")) == [
        "/usr/bin/python3 /usr/local/libexec/spdk-storage/spdk_tgt_supervisor.py hugetlbfs --path /mnt/huge"]


def test_without_hugepages_the_unit_does_not_look_for_a_hugetlbfs():
    assert exec_start_pre(render(spdk_tgt_no_huge=True)) == []

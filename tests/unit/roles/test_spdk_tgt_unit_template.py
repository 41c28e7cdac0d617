"""The spdk_tgt role's systemd unit (roles/spdk_tgt/templates/spdk_tgt.service.j2), rendered by Ansible's templar."""
import os

import pytest
import yaml

templating = pytest.importorskip("ansible.template")
from ansible.parsing.dataloader import DataLoader  # noqa: E402  (after the skip)

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
    with open(os.path.join(ROLE, "templates", "spdk_tgt.service.j2")) as handle:
        source = handle.read()
    templar = templating.Templar(loader=DataLoader(), variables=variables)
    return templar.template(templating.trust_as_template(source))


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

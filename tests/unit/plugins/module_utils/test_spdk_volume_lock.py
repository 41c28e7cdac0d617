# -*- coding: utf-8 -*-
"""The volume lock's advice: a dead run's lock names the run that resumes its operation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import left_by_a_dead_run, resume_command


@pytest.mark.parametrize("holder, command", [
    ("ctrl1 pid 11 take s1", "spdk.storage.spdk_snapshot engine=vol1 name=s1 (snapshot_volume.yml -e volume=vol1 "
                             "-e snapshot=s1)"),
    ("ctrl1 pid 11 revert s1", "spdk.storage.spdk_snapshot engine=vol1 name=s1 state=reverted (snapshot_volume.yml "
                               "-e volume=vol1 -e snapshot=s1 -e snapshot_action=revert)"),
    ("ctrl1 pid 11 engine absent", "spdk.storage.spdk_engine state=absent (create_volume.yml or recover_node.yml for "
                                   "present, delete_volume.yml for absent)"),
])
def test_a_dead_runs_lock_names_the_run_that_resumes_its_operation(holder, command):
    assert resume_command("vol1", holder) == command
    assert left_by_a_dead_run("removed", "vol1", holder).endswith("a re-run resumes it: " + command)


@pytest.mark.parametrize("holder", ["ctrl1 pid 11 rebuild", "ctrl1 pid 11 unknown thing", "", None])
def test_a_holder_cut_short_or_unknown_gets_the_general_advice(holder):
    assert resume_command("vol1", holder) is None
    assert left_by_a_dead_run("took over", "vol1", holder).endswith("run it again: a re-run resumes it")

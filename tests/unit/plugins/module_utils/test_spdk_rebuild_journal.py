# -*- coding: utf-8 -*-
"""The rebuild journal: the engine node's record entry that keeps spdk_engine from undoing a rebuild."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import (
    EngineRefusal,
    EngineRequest,
    check_against_the_record,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_journal import (
    APPLIED,
    DONE,
    RUNNING,
    RebuildEntry,
    RebuildJournal,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_request import RebuildRequest

REPLICAS = [{"name": "vol1-node1", "disk": "disk1"},
            {"name": "vol1-node2", "address": "127.0.0.2:4420", "rpc_socket": "/n2.sock"}]


def request(destination="vol1-node3", replace="vol1-node2", source="vol1-node1"):
    return RebuildRequest(engine="vol1", source=source, replace=replace, replicas=REPLICAS,
                          destination={"replica": destination, "disk": "disk1", "rpc_socket": "/n3.sock",
                                       "listen_address": "127.0.0.3"})


def entry(state=RUNNING, replace="vol1-node2"):
    return RebuildEntry("vol1", "vol1-node1", "vol1-node3", replace, state, "2026-12-06T10:00:00Z",
                        None if state == RUNNING else "2026-12-06T10:05:00Z")


def recorded(path):
    with open(path) as handle:
        return json.load(handle).get("rebuilds", {}).get("vol1")


def test_a_rebuild_is_running_from_its_first_change_and_done_once_finished(tmp_path):
    path = str(tmp_path / "node1.json")
    journal = RebuildJournal(path, "node1", request())
    journal.begin()
    begun = recorded(path)
    assert (begun["state"], begun["source"], begun["destination"], begun["replace"]) == (
        RUNNING, "vol1-node1", "vol1-node3", "vol1-node2")
    assert begun["started"] and begun["finished"] is None and journal.written

    again = RebuildJournal(path, "node1", request())
    again.begin()                                   # a re-run resumes: same entry, same start
    assert recorded(path) == begun and not again.written
    again.finish()
    done = recorded(path)
    assert done["state"] == DONE and done["started"] == begun["started"] and done["finished"]


def test_finishing_without_a_running_entry_of_the_same_rebuild_changes_nothing(tmp_path):
    """A re-run after spdk_engine removed the entry stays a no-op."""
    path = str(tmp_path / "node1.json")
    journal = RebuildJournal(path, "node1", request())
    journal.finish()
    assert not journal.written and not (tmp_path / "node1.json").exists()


def test_a_rebuild_of_another_replica_gives_up_the_unfinished_one_and_says_what_it_may_have_left(tmp_path):
    path = str(tmp_path / "node1.json")
    RebuildJournal(path, "node1", request(destination="vol1-node3")).begin()
    warnings = []
    RebuildJournal(path, "node1", request(destination="vol1-node4"), warn=warnings.append).begin()
    assert recorded(path)["destination"] == "vol1-node4"
    assert len(warnings) == 1 and "vol1-node3 may be left" in warnings[0]


def test_check_mode_and_no_record_dir_write_nothing(tmp_path):
    path = str(tmp_path / "node1.json")
    RebuildJournal(path, "node1", request(), check_mode=True).begin()
    RebuildJournal(None, "node1", request()).begin()
    assert not (tmp_path / "node1.json").exists()


def test_once_applied_only_a_list_naming_the_replaced_replica_without_the_new_one_is_refused():
    """The replica set may change on purpose after the list after the rebuild was given once."""
    with pytest.raises(EngineRefusal):
        entry(APPLIED).check_request(["vol1-node1", "vol1-node2"])
    entry(APPLIED).check_request(["vol1-node1", "vol1-node4"])
    entry(APPLIED).check_removals({"vol1-node3n1"})
    entry(APPLIED, replace=None).check_request(["vol1-node1", "vol1-node2"])


def test_once_done_the_replica_list_from_before_the_rebuild_is_refused():
    with pytest.raises(EngineRefusal) as refused:
        entry(DONE).check_request(["vol1-node1", "vol1-node2"])
    assert "are the set before it" in refused.value.msg
    assert "list vol1-node3 among the replicas instead of vol1-node2" in refused.value.hint
    entry(DONE).check_request(["vol1-node1", "vol1-node3"])       # the list after it
    with pytest.raises(EngineRefusal):
        entry(DONE).check_request(["vol1-node1", "vol1-node4"])   # any other, until that list was given once
    entry(RUNNING).check_request(["vol1-node1", "vol1-node2"])    # a repair during the rebuild


@pytest.mark.parametrize("member", ["vol1-node3n1", "disk3/vol1-node3", "vol1-node3"])
def test_the_replica_a_rebuild_put_into_the_raid_is_never_removed(member):
    """A remote member by its namespace bdev, a local one by its lvol alias."""
    with pytest.raises(EngineRefusal) as refused:
        entry(RUNNING).check_removals({"5f0c-uuid", member})
    assert "finish the rebuild first: rebuild_replica.yml -e volume=vol1 -e source_node=node1 " \
           "-e destination_node=node3 -e replaced_node=node2" in refused.value.hint
    entry(RUNNING).check_removals({"vol1-node2n1"})


def test_the_finish_command_names_the_playbook_only_for_its_replica_names():
    named = RebuildEntry("vol1", "r0", "r2", None)
    assert named.finish_command() == "spdk.storage.spdk_replica_rebuild engine=vol1 source=r0 destination=r2"
    assert entry().finish_command().startswith("rebuild_replica.yml -e volume=vol1 -e source_node=node1")


def test_a_repair_during_an_unfinished_rebuild_warns_and_a_finished_one_does_not():
    assert "did not finish" in entry(RUNNING).warning()
    assert entry(DONE).warning() is None
    assert RebuildEntry.of("vol1", None) is None and RebuildEntry.of("vol1", {"state": "running"}) is None


def test_engine_snapshots_wait_for_an_unfinished_rebuild_and_not_for_a_finished_one():
    with pytest.raises(EngineRefusal) as refused:
        entry(RUNNING).check_no_engine_snapshot("take", "s2")
    assert "cannot take s2 before it does" in refused.value.msg
    assert refused.value.hint.startswith("finish the rebuild first: rebuild_replica.yml -e volume=vol1")
    entry(DONE).check_no_engine_snapshot("take", "s2")
    entry(APPLIED).check_no_engine_snapshot("revert", "s1")


def test_deleting_the_engine_during_an_unfinished_rebuild_names_the_replica_it_may_leave():
    assert "its replica vol1-node3 may be left on its node" in entry(RUNNING).deletion_warning()
    assert entry(DONE).deletion_warning() is None and entry(APPLIED).deletion_warning() is None


def test_spdk_engine_checks_the_journal_before_any_call_and_deleting_only_warns():
    """check_against_the_record is what spdk_engine runs first: no RPC is sent before it decided."""
    present = EngineRequest(name="vol1", replicas=REPLICAS[:1] + [{"name": "vol1-node3", "address": "127.0.0.3:4420"}],
                            listen_address="127.0.0.1")
    with pytest.raises(EngineRefusal):
        check_against_the_record(EngineRequest(name="vol1", replicas=REPLICAS, listen_address="127.0.0.1"), {}, {},
                                 entry(DONE))
    assert check_against_the_record(present, {}, {}, entry(DONE)) == (None, [])
    reverting, warnings = check_against_the_record(EngineRequest(name="vol1", state="absent"), {},
                                                   {"s1": {"revert": {"state": "running"}}}, entry(RUNNING))
    assert reverting == "s1" and len(warnings) == 1 and "may be left on its node" in warnings[0]

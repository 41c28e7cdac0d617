# -*- coding: utf-8 -*-
"""StepRecorder: every mutating RPC a module sends is recorded as an action, then sent."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import ClientNode, Step, StepRecorder

# -19 "No such device": what SPDK answers for a bdev that is already gone.
GONE = SpdkRpcError("bdev_lvol_delete", -19, "No such device")


class Client:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def call(self, method, params=None):
        self.calls.append((method, params))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Node:
    def __init__(self, label, answer):
        self.label = label
        self.client = Client(answer)


def test_the_action_is_recorded_with_its_node_and_reason_and_the_answer_returned():
    recorder, node = StepRecorder(), Node("engine node", "uuid-1")
    assert recorder.call(node, "bdev_lvol_clone", {"snapshot_name": "d/s"}, "clone the head") == "uuid-1"
    assert node.client.calls == [("bdev_lvol_clone", {"snapshot_name": "d/s"})]
    assert recorder.actions == [{"node": "engine node", "method": "bdev_lvol_clone",
                                 "params": {"snapshot_name": "d/s"}, "why": "clone the head"}]
    assert recorder.changed


def test_a_single_node_run_records_no_node_label():
    recorder, client = StepRecorder(), Client(True)
    recorder.run(ClientNode(client), [Step("bdev_lvol_delete", {"name": "d/x"}, "drop x")])
    assert recorder.actions == [{"method": "bdev_lvol_delete", "params": {"name": "d/x"}, "why": "drop x"}]


def test_steps_run_in_order_and_give_their_results():
    recorder, node = StepRecorder(), Node("n", "ok")
    steps = [Step("a", {"x": 1}, "first"), Step("b", {"x": 2}, "second")]
    assert recorder.run(node, steps) == ["ok", "ok"]
    assert [m for m, p in node.client.calls] == ["a", "b"]


def test_a_tolerated_error_gives_none_and_the_action_stays_recorded():
    recorder, node = StepRecorder(), Node("source node", GONE)
    assert recorder.call(node, "bdev_lvol_delete", {"name": "d/x"}, "drop x",
                         tolerate=lambda err: err.code == -19) is None
    assert [a["method"] for a in recorder.actions] == ["bdev_lvol_delete"]


def test_any_other_error_is_raised_after_being_recorded():
    recorder, node = StepRecorder(), Node("destination node", GONE)
    with pytest.raises(SpdkRpcError) as caught:
        recorder.call(node, "bdev_lvol_delete", {"name": "d/x"}, "drop x", tolerate=lambda err: err.code == -17)
    assert caught.value is GONE
    assert len(recorder.actions) == 1


def test_nothing_recorded_means_nothing_changed():
    assert not StepRecorder(check_mode=True).changed


def test_a_failure_reports_the_actions_sent_before_it():
    recorder, node = StepRecorder(), Node("engine node", "ok")
    with pytest.raises(SpdkError) as caught:
        with recorder.reporting():
            recorder.call(node, "bdev_raid_delete", {"name": "vol1"}, "drop the RAID")
            raise SpdkError("the next step was refused")
    assert [a["method"] for a in caught.value.result["actions"]] == ["bdev_raid_delete"]

# -*- coding: utf-8 -*-
"""RecordedSends: every mutating RPC of a multi-node run is recorded as an action, then sent."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_actions import RecordedSends
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

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


class Run(RecordedSends):
    def __init__(self):
        self.actions = []


def test_the_action_is_recorded_with_its_node_and_reason_and_the_answer_returned():
    run, node = Run(), Node("engine node", "uuid-1")
    assert run.send(node, "bdev_lvol_clone", {"snapshot_name": "d/s"}, "clone the head") == "uuid-1"
    assert node.client.calls == [("bdev_lvol_clone", {"snapshot_name": "d/s"})]
    assert run.actions == [{"node": "engine node", "method": "bdev_lvol_clone",
                            "params": {"snapshot_name": "d/s"}, "why": "clone the head"}]


def test_a_tolerated_error_gives_none_and_the_action_stays_recorded():
    run, node = Run(), Node("source node", GONE)
    assert run.send(node, "bdev_lvol_delete", {"name": "d/x"}, "drop x", tolerate=lambda err: err.code == -19) is None
    assert [a["method"] for a in run.actions] == ["bdev_lvol_delete"]


def test_any_other_error_is_raised_after_being_recorded():
    run, node = Run(), Node("destination node", GONE)
    with pytest.raises(SpdkRpcError) as caught:
        run.send(node, "bdev_lvol_delete", {"name": "d/x"}, "drop x", tolerate=lambda err: err.code == -17)
    assert caught.value is GONE
    assert len(run.actions) == 1

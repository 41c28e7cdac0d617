# -*- coding: utf-8 -*-
"""What an engine run waits for, on recorded answers and a fake clock: a detached controller's bdev
gone (tests/unit/fixtures/transcripts/more__nvme_reconnect.json L85: bdev_get_bdevs of a bdev that is
gone), and every replica RW (more__introspection.json L83 healthy, more__nvme_reconnect.json L84 with
the remote member lost)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

import pytest
from tests.unit.expected_calls import RpcScript, answer, error, expect, transcript

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal, EngineRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import HEALTHY, EngineStatus
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_wait import wait_bdevs_gone, wait_healthy
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

INTRO = "more/introspection.jsonl"
BDEV = "vol1-r-b2c3d4e5n1"
LOCAL_UUID = "42971873-bab4-42f3-a8f1-894aebb3c9db"


def fake_clock():
    """(clock, sleep, the sleeps so far): a clock that moves only when the code sleeps."""
    sleeps = []
    return (lambda: sum(sleeps)), sleeps.append, sleeps


def scripted(calls, work):
    """``work(client)`` against the scripted wire; fails on a missing, unexpected or leftover call."""
    script = RpcScript(calls)
    client = SpdkRpcClient("/nonexistent/spdk-unit-test.sock", timeout=5.0)
    with mock.patch.object(SpdkRpcClient, "_send", autospec=True, side_effect=script.send):
        outcome = work(client)
    if script.violation is not None:
        raise script.violation
    assert not script.pending, "expected calls never made: %s" % script.pending
    return outcome


def bdev_still_there():
    return answer(INTRO, 61)


def bdev_gone():
    return answer("more/nvme_reconnect.jsonl", 85)


class TestBdevsGone:
    def test_polls_every_fifth_of_a_second_until_the_bdev_is_gone(self):
        clock, sleep, sleeps = fake_clock()
        scripted([expect("bdev_get_bdevs", {"name": BDEV}, bdev_still_there()),
                  expect("bdev_get_bdevs", {"name": BDEV}, bdev_gone())],
                 lambda client: wait_bdevs_gone(client, [BDEV], 10.0, sleep, clock))
        assert sleeps == [0.2]

    def test_nothing_to_wait_for_sends_nothing(self):
        scripted([], lambda client: wait_bdevs_gone(client, [], 10.0))

    def test_a_bdev_that_stays_fails_at_the_timeout_naming_it(self):
        clock, sleep = fake_clock()[:2]
        calls = [expect("bdev_get_bdevs", {"name": BDEV}, bdev_still_there()) for _poll in range(5)]
        with pytest.raises(EngineRefusal, match="bdev %s is still registered 0.9s after its controller" % BDEV):
            scripted(calls, lambda client: wait_bdevs_gone(client, [BDEV], 0.9, sleep, clock))
        assert clock() <= 0.9

    def test_another_error_is_not_taken_for_gone(self):
        with pytest.raises(SpdkRpcError, match="Permission denied"):
            scripted([expect("bdev_get_bdevs", {"name": BDEV}, error(-1, "Permission denied"))],
                     lambda client: wait_bdevs_gone(client, [BDEV], 1.0))


def request():
    return EngineRequest("vol1-e0", replicas=[{"name": "vol1-r-a1b2c3d4", "disk": "disk1"},
                                              {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421"}],
                         frontend="none")


def degraded():
    return {"result": transcript("more/nvme_reconnect.jsonl", 84, replace={
        "d0c0503a-6587-4295-b4f5-691f22aaae5f": LOCAL_UUID})["response"]["result"]}


def node():
    return NodeState({"raids": answer(INTRO, 83)["result"], "bdevs": answer(INTRO, 61)["result"],
                      "subsystems": answer(INTRO, 78)["result"]})


class TestHealthy:
    def test_polls_the_raids_until_every_replica_is_rw(self):
        clock, sleep, sleeps = fake_clock()
        waiter = Waiter(10.0, 2.0, clock=clock, sleep=sleep)
        state = scripted([expect("bdev_raid_get_bdevs", {"category": "all"}, degraded()),
                          expect("bdev_raid_get_bdevs", {"category": "all"}, answer(INTRO, 83))],
                         lambda client: wait_healthy(client, request(), node(), waiter))
        assert EngineStatus(state, request()).state == HEALTHY and sleeps == [2.0]

    def test_fails_at_the_deadline_with_each_replica_mode(self):
        clock, sleep = fake_clock()[:2]
        waiter = Waiter(3.0, 2.0, clock=clock, sleep=sleep)
        calls = [expect("bdev_raid_get_bdevs", {"category": "all"}, degraded()) for _poll in range(2)]
        with pytest.raises(EngineRefusal, match=r"engine vol1-e0 is degraded after 3.0s \(wait_timeout\): "
                                                r"vol1-r-a1b2c3d4 RW, vol1-r-b2c3d4e5 ERR"):
            scripted(calls, lambda client: wait_healthy(client, request(), node(), waiter))

# -*- coding: utf-8 -*-
"""PauseWatchdog: host I/O paused for an engine snapshot comes back when the module dies or hangs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_pause import resume_steps
from ansible_collections.spdk.storage.plugins.module_utils.spdk_pause_watchdog import PauseWatchdog

NQN = "nqn.2026-01.io.spdk-storage:vol1"


def resume(groups):
    """The steps that end a pause of namespaces {nsid: the ANA group each was in before}."""
    return resume_steps(NQN, sorted(groups.items()), sorted(groups))


def restores(server):
    return [r["params"] for r in server.requests if r.get("method") == "nvmf_subsystem_set_ns_ana_group"]


def wait_for_restores(server, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(restores(server)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return restores(server)


def test_a_module_that_resumes_io_itself_leaves_the_watchdog_nothing_to_do(rpc_server):
    with PauseWatchdog(rpc_server.address, resume({1: 1}), timeout=30) as watchdog:
        time.sleep(0.1)
    assert watchdog.fired is False
    time.sleep(0.2)
    assert restores(rpc_server) == []


def test_a_module_killed_during_the_pause_gets_its_namespaces_moved_back(rpc_server):
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", result=True)
    module = ("import os, signal, time\n"
              "from ansible_collections.spdk.storage.plugins.module_utils.spdk_pause_watchdog import PauseWatchdog\n"
              "from tests.unit.plugins.module_utils.test_spdk_pause_watchdog import resume\n"
              "PauseWatchdog(%r, resume({1: 1, 2: None}), timeout=60).start()\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n" % rpc_server.address)
    started = time.monotonic()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    died = subprocess.run([sys.executable, "-c", module], env=env, check=False)
    assert died.returncode == -9
    assert wait_for_restores(rpc_server, 2) == [
        {"nqn": NQN, "nsid": 1, "anagrpid": 1}, {"nqn": NQN, "nsid": 2, "anagrpid": 1}]
    assert time.monotonic() - started < 10          # not after the 60 s quiesce timeout: at once


def test_a_module_that_hangs_past_quiesce_timeout_finds_the_pause_broken(rpc_server):
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", result=True)
    watchdog = PauseWatchdog(rpc_server.address, resume({1: 5}), timeout=0.3).start()
    assert wait_for_restores(rpc_server, 1) == [{"nqn": NQN, "nsid": 1, "anagrpid": 5}]
    assert watchdog.stop() is True


def test_a_failing_restore_of_one_namespace_still_restores_the_next(rpc_server):
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", once=True, error=(-32602, "Invalid parameters"))
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", result=True)
    PauseWatchdog(rpc_server.address, resume({1: 1, 2: 1}), timeout=30).restore()
    assert [p["nsid"] for p in restores(rpc_server)] == [1, 2]


def test_a_restore_the_target_did_not_answer_is_sent_again_on_a_new_connection(rpc_server):
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", once=True, close=True)
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", result=True)
    PauseWatchdog(rpc_server.address, resume({1: 1}), timeout=30).restore()
    assert restores(rpc_server) == [{"nqn": NQN, "nsid": 1, "anagrpid": 1}] * 2


def test_a_target_that_never_answers_is_given_up_after_the_patience(rpc_server):
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", close=True)
    started = time.monotonic()
    PauseWatchdog(rpc_server.address, resume({1: 1, 2: 1}), timeout=30, patience=1.5).restore()
    assert 1.5 <= time.monotonic() - started < 10
    assert {p["nsid"] for p in restores(rpc_server)} == {1, 2}


def lock_entry(token):
    """The volume lock of vol1 as nvmf_get_subsystems lists it, held by ``token`` (lease far ahead)."""
    return {"nqn": "nqn.2026-01.io.spdk-storage:lock:vol1", "serial_number": "SL%s%010d" % (token, 4102444800),
            "model_number": "ctl pid 1 take s2", "hosts": [], "namespaces": []}


def test_a_watchdog_whose_run_still_holds_the_volume_lock_resumes(rpc_server):
    rpc_server.reply("nvmf_get_subsystems", result=[lock_entry("0badcafe")])
    rpc_server.reply("nvmf_subsystem_set_ns_ana_group", result=True)
    PauseWatchdog(rpc_server.address, resume({1: 1}), timeout=30, lock=("vol1", "0badcafe")).restore()
    assert restores(rpc_server) == [{"nqn": NQN, "nsid": 1, "anagrpid": 1}]


def test_a_watchdog_sends_nothing_once_another_run_took_the_volume_lock_over(rpc_server):
    # The re-run owns the volume now and may be pausing it for its own snapshot: a late resume would break it.
    rpc_server.reply("nvmf_get_subsystems", result=[lock_entry("feedf00d")])
    PauseWatchdog(rpc_server.address, resume({1: 1, 2: 1}), timeout=30, lock=("vol1", "0badcafe")).restore()
    assert restores(rpc_server) == []


def test_a_watchdog_whose_lock_is_gone_sends_nothing(rpc_server):
    rpc_server.reply("nvmf_get_subsystems", error=(-19, "No such device"))
    PauseWatchdog(rpc_server.address, resume({1: 1}), timeout=30, lock=("vol1", "0badcafe")).restore()
    assert restores(rpc_server) == []

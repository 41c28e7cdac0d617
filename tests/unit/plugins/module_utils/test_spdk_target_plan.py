# -*- coding: utf-8 -*-
"""spdk_target's planner on target states read from real SPDK v26.05 answers
(tests/unit/fixtures/transcripts/more__nvme_options.json: defaults at line 8, set at 14, the
--wait-for-rpc startup phase at 32-38)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from tests.unit.expected_calls import answer

from ansible_collections.spdk.storage.plugins.module_utils import spdk_target_plan as planner
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_state import read_calls, state_from_answers

OPTS = "more/nvme_options.jsonl"
INTRO = "more/introspection.jsonl"
TIMEOUTS = {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}


def state(methods=(INTRO, 3), config=None, transports=None):
    """The TargetState of one read, each answer a recorded one (name, line) or a literal result."""
    calls = read_calls(config is not None, transports is not None)
    answers = [answer(INTRO, 1)["result"], answer(*methods)["result"]]
    for recorded in (config, transports):
        if recorded is not None:
            response = answer(*recorded) if isinstance(recorded, tuple) else {"result": recorded}
            answers.append(response.get("result", RefusedRead(response)))
    return state_from_answers(calls, answers)


class RefusedRead(Exception):
    """Stands for the SpdkRpcError a runtime read gets in the startup phase (never raised there)."""


def params(**options):
    base = dict(nvmf_tcp=False, nvmf_tcp_options={}, nvme_options={}, auto_examine=None, raid_options={})
    base.update(options)
    return base


def steps(plan):
    return [(s.method, s.params) for s in plan.startup_steps + plan.runtime_steps]


def no_controllers():
    return []


def test_a_running_target_as_asked_needs_nothing():
    plan = planner.make_plan(params(nvme_options=TIMEOUTS, nvmf_tcp=True),
                             state(config=(OPTS, 14), transports=(INTRO, 79)), no_controllers)
    assert not plan.changed and steps(plan) == []


def test_changed_nvme_options_are_sent_whole_and_say_what_changes():
    asked = []
    plan = planner.make_plan(params(nvme_options=dict(TIMEOUTS, ctrlr_loss_timeout_sec=20)),
                             state(config=(OPTS, 14)), lambda: asked.append(1) or [])
    assert steps(plan) == [("bdev_nvme_set_options", dict(TIMEOUTS, ctrlr_loss_timeout_sec=20))]
    assert plan.startup_steps[0].why == "set the NVMe bdev options: ctrlr_loss_timeout_sec 10 -> 20"
    assert asked == [1] and plan.init is False


def test_attached_controllers_refuse_a_change_with_the_restart_hint():
    with pytest.raises(planner.TargetConfigError, match="attached \\(vol1-r-b2c3d4e5\\).*spdk_tgt_state=restarted"):
        planner.make_plan(params(nvme_options=dict(TIMEOUTS, ctrlr_loss_timeout_sec=20)),
                          state(config=(OPTS, 14)), lambda: ["vol1-r-b2c3d4e5"])


def test_the_startup_phase_sets_its_options_then_starts_the_framework_then_the_transport():
    startup = state(methods=(OPTS, 32), config=(OPTS, 35), transports=(OPTS, 35))
    assert startup.in_startup and startup.nvme is None
    plan = planner.make_plan(params(nvme_options=TIMEOUTS, auto_examine=False, nvmf_tcp=True), startup, None)
    assert [s.method for s in plan.startup_steps] == ["bdev_set_options", "bdev_nvme_set_options"]
    assert plan.startup_steps[1].why.startswith("set the NVMe bdev options: ctrlr_loss_timeout_sec unknown -> 10")
    assert plan.init is True and plan.init_step().method == "framework_start_init"
    assert [(s.method, s.params) for s in plan.runtime_steps] == [("nvmf_create_transport", {"trtype": "TCP"})]


def test_auto_examine_cannot_change_once_the_framework_runs():
    with pytest.raises(planner.TargetConfigError, match="--wait-for-rpc"):
        planner.make_plan(params(auto_examine=False), state(config=(OPTS, 14)), no_controllers)


def test_the_raid_rate_changes_on_a_running_target():
    plan = planner.make_plan(params(raid_options={"process_max_bandwidth_mb_sec": 64}), state(config=(OPTS, 8)),
                             no_controllers)
    assert steps(plan) == [("bdev_raid_set_options", {"process_max_bandwidth_mb_sec": 64})]
    assert plan.startup_steps[0].why == "set the RAID options: process_max_bandwidth_mb_sec 0 -> 64"


def test_an_existing_transport_with_other_options_is_refused_and_unreported_ones_are_listed():
    with pytest.raises(planner.TargetConfigError, match="max_queue_depth: 128 -> 64"):
        planner.make_plan(params(nvmf_tcp=True, nvmf_tcp_options={"max_queue_depth": 64}),
                          state(transports=(INTRO, 79)), no_controllers)
    plan = planner.make_plan(params(nvmf_tcp=True, nvmf_tcp_options={"io_unit_size": 8192}),
                             state(transports=(INTRO, 79)), no_controllers)
    assert not plan.changed and plan.unverified_tcp == ["io_unit_size"]


def test_a_transport_created_meanwhile_is_tolerated():
    plan = planner.make_plan(params(nvmf_tcp=True), state(transports=[]), no_controllers)
    [step] = plan.runtime_steps
    assert step.tolerate(type("Answer", (), {"message": "Transport type 'TCP' already exists"})())


@pytest.mark.parametrize("options, problem", [
    ({"bogus_key": 1}, "bogus_key is not an option of the TCP transport"),
    ({"psk": "NVMeTLSkey-1:01:secret"}, "psk is not an option of the TCP transport"),
    ({"max_queue_depth": -1}, "max_queue_depth must be a whole number from 0"),
    ({"max_queue_depth": "128"}, "max_queue_depth must be a whole number"),
    ({"zcopy": "yes"}, "zcopy must be true or false"),
    ({"masked_oncs": "write_zeroes"}, "masked_oncs must be a list"),
])
def test_tcp_options_a_target_would_ignore_or_refuse_are_refused_before_any_rpc(options, problem):
    with pytest.raises(SpdkInputError, match=problem):
        planner.check_tcp_options(options)


def test_the_tcp_options_of_spdk_v26_05_pass():
    planner.check_tcp_options({"max_queue_depth": 128, "in_capsule_data_size": 4096, "io_unit_size": 131072,
                               "zcopy": False, "c2h_success": True, "masked_oncs": ["write_zeroes"], "kas": 100})

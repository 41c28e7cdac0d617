"""spdk_target: wait for the socket, finish a --wait-for-rpc startup, TCP transport, NVMe options.

Answers come from a real SPDK v26.05 (more/nvme_options.jsonl is the bdev_nvme_set_options
session: defaults at line 8, set at 13, refused with a controller at 17, --wait-for-rpc at 32-38).

RAID rebuild rate: step5.jsonl:10 is framework_get_config of a target whose rate step3.jsonl:1 set to
64 MB/s (bdev_raid_set_options answered true); the other configs above report SPDK's default 0.
"""
import copy

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_target_plan
from ansible_collections.spdk.storage.plugins.module_utils import spdk_target_state
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError
from ansible_collections.spdk.storage.plugins.modules import spdk_target

from tests.unit.expected_calls import answer, expect, result, run_module

OPTS = "more/nvme_options.jsonl"
VERSION = answer("more/introspection.jsonl", 1)
METHODS_RUNNING = answer("more/introspection.jsonl", 3)      # rpc_get_methods current, initialised
METHODS_STARTUP = answer(OPTS, 32)                          # rpc_get_methods current, --wait-for-rpc
CONFIG_DEFAULTS = answer(OPTS, 8)                           # nothing set: ctrlr_loss_timeout_sec 0
CONFIG_SET = answer(OPTS, 14)                               # after L13: 10 / 2 / 5, keep-alive 5000
CONFIG_AFTER_STARTUP = answer(OPTS, 38)                     # 15 / 3 / 6, bdev_auto_examine false
NOT_INITIALISED = answer(OPTS, 35)                          # -1 "Method may only be called after ..."
TRANSPORTS_TCP = answer("more/introspection.jsonl", 79)
NO_TRANSPORTS = result([])
CONFIG_RAID_64 = answer("step5.jsonl", 10)                  # process_max_bandwidth_mb_sec 64, window 1024
RAID_SET = answer("step3.jsonl", 1)                         # bdev_raid_set_options -> true
CONTROLLERS = answer(OPTS, 21)                              # vol1-r-b2c3d4e5 and bad-combo attached
NO_CONTROLLERS = answer(OPTS, 28)

# The values SPDK accepted at more/nvme_options.jsonl:13.
TIMEOUTS = {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5,
            "keep_alive_timeout_ms": 5000, "transport_retry_count": 4, "bdev_retry_count": 3}


def reads(methods=METHODS_RUNNING, config=None, transports=None):
    """The one pipelined read every run starts with."""
    calls = [expect("spdk_get_version", None, VERSION),
             expect("rpc_get_methods", {"current": True}, methods)]
    if config is not None:
        calls.append(expect("framework_get_config", {"name": "bdev"}, config))
    if transports is not None:
        calls.append(expect("nvmf_get_transports", None, transports))
    return calls


def run(args, calls, **kwargs):
    return run_module(spdk_target, args, calls, **kwargs)


# -- a running (initialised) target ---------------------------------------------------------


def test_configured_target_is_a_noop_of_four_reads_in_one_exchange():
    outcome = run({"nvmf_tcp": True, "nvme_options": TIMEOUTS},
                  reads(config=CONFIG_SET, transports=TRANSPORTS_TCP))
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False
    assert outcome.mutating == []
    assert outcome.script.exchanges == [4]
    assert outcome.result["version"] == "SPDK v26.05 git sha1 d519b163cb"
    assert outcome.result["version_fields"]["major"] == 26
    assert outcome.result["methods_count"] == len(METHODS_RUNNING["result"])
    assert outcome.result["framework"] == "initialized"
    assert outcome.result["nvme_options"] == TIMEOUTS
    assert outcome.result["nvmf_tcp"]["trtype"] == "TCP"


def test_only_waiting_reads_version_and_methods():
    outcome = run({}, reads())
    assert outcome.changed is False
    assert outcome.methods == ["spdk_get_version", "rpc_get_methods"]
    assert outcome.result["nvmf_tcp"] is None


def test_fresh_target_gets_its_options_before_the_transport_then_is_read_back():
    outcome = run({"nvmf_tcp": True, "nvme_options": TIMEOUTS}, [
        reads(config=CONFIG_DEFAULTS, transports=NO_TRANSPORTS),
        expect("bdev_nvme_get_controllers", None, NO_CONTROLLERS),
        expect("bdev_nvme_set_options", TIMEOUTS, answer(OPTS, 13)),
        expect("nvmf_create_transport", {"trtype": "TCP"}, answer("step2.jsonl", 1)),
        reads(config=CONFIG_SET, transports=TRANSPORTS_TCP),
    ], diff=True)
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True
    assert outcome.result["diff"]["before"] == {
        "framework": "initialized", "nvmf_tcp": "absent",
        "nvme_options": {"ctrlr_loss_timeout_sec": 0, "reconnect_delay_sec": 0, "fast_io_fail_timeout_sec": 0,
                         "keep_alive_timeout_ms": 10000, "transport_retry_count": 4, "bdev_retry_count": 3}}
    assert outcome.result["diff"]["after"] == {
        "framework": "initialized", "nvmf_tcp": "present", "nvme_options": TIMEOUTS}
    assert outcome.result["nvme_options"] == TIMEOUTS


def test_check_mode_reads_the_same_and_sends_nothing_that_mutates():
    outcome = run({"nvmf_tcp": True, "nvme_options": TIMEOUTS}, [
        reads(config=CONFIG_DEFAULTS, transports=NO_TRANSPORTS),
        expect("bdev_nvme_get_controllers", None, NO_CONTROLLERS),
    ], check_mode=True, diff=True)
    assert outcome.changed is True
    assert outcome.mutating == []
    assert outcome.result["diff"]["after"]["nvmf_tcp"] == "present"
    assert outcome.result["nvme_options"] == TIMEOUTS


def test_only_the_differing_request_is_checked_against_controllers_then_sent_whole():
    wanted = dict(TIMEOUTS, ctrlr_loss_timeout_sec=20)
    outcome = run({"nvme_options": wanted}, [
        reads(config=CONFIG_SET),
        expect("bdev_nvme_get_controllers", None, NO_CONTROLLERS),
        expect("bdev_nvme_set_options", wanted, result(True)),
        reads(config=CONFIG_SET),
    ], diff=True)
    assert outcome.changed is True
    assert outcome.result["diff"]["before"]["nvme_options"]["ctrlr_loss_timeout_sec"] == 10


def test_same_options_with_controllers_attached_are_ok_without_asking_for_controllers():
    outcome = run({"nvme_options": TIMEOUTS}, reads(config=CONFIG_SET))
    assert outcome.changed is False
    assert "bdev_nvme_get_controllers" not in outcome.methods


def test_other_options_with_controllers_attached_fail_asking_for_a_restart():
    outcome = run({"nvme_options": dict(TIMEOUTS, ctrlr_loss_timeout_sec=20)}, [
        reads(config=CONFIG_SET),
        expect("bdev_nvme_get_controllers", None, CONTROLLERS),
    ])
    assert outcome.failed
    assert outcome.mutating == []
    assert "ctrlr_loss_timeout_sec: 10 -> 20" in outcome.msg
    assert "vol1-r-b2c3d4e5, bad-combo" in outcome.msg
    assert "spdk_tgt_state=restarted" in outcome.msg


def test_a_refused_set_options_names_the_rpc_and_spdk_error():
    # A controller attached between the read and the set: SPDK's own refusal (L17) reaches the user.
    outcome = run({"nvme_options": {"ctrlr_loss_timeout_sec": 20, "reconnect_delay_sec": 2}}, [
        reads(config=CONFIG_DEFAULTS),
        expect("bdev_nvme_get_controllers", None, NO_CONTROLLERS),
        expect("bdev_nvme_set_options", {"ctrlr_loss_timeout_sec": 20, "reconnect_delay_sec": 2}, answer(OPTS, 17)),
    ])
    assert outcome.failed
    assert "bdev_nvme_set_options" in outcome.msg
    assert "RPC not permitted with nvme controllers already attached" in outcome.msg
    assert "spdk_tgt_state=restarted" in outcome.msg   # not the generic "bdev is in use" hint for -1


def test_auto_examine_cannot_change_on_a_running_target():
    outcome = run({"auto_examine": False}, reads(config=CONFIG_SET))
    assert outcome.failed
    assert outcome.mutating == []
    assert "--wait-for-rpc" in outcome.msg


def test_auto_examine_already_as_wanted_is_ok():
    outcome = run({"auto_examine": False}, reads(config=CONFIG_AFTER_STARTUP))
    assert outcome.changed is False
    assert outcome.result["auto_examine"] is False


# -- the RAID rebuild rate (bdev_raid_set_options) ---------------------------------------


def test_raid_rate_already_set_is_a_noop_of_three_reads():
    outcome = run({"raid_options": {"process_max_bandwidth_mb_sec": 64}}, reads(config=CONFIG_RAID_64))
    assert not outcome.failed, outcome.msg
    assert outcome.changed is False
    assert outcome.script.exchanges == [3]
    assert outcome.result["raid_options"] == {"process_max_bandwidth_mb_sec": 64}


def test_raid_rate_is_changed_on_a_running_target_and_read_back():
    outcome = run({"raid_options": {"process_max_bandwidth_mb_sec": 64}}, [
        reads(config=CONFIG_DEFAULTS),
        expect("bdev_raid_set_options", {"process_max_bandwidth_mb_sec": 64}, RAID_SET),
        reads(config=CONFIG_RAID_64),
    ], diff=True)
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True
    assert outcome.result["diff"]["before"] == {"framework": "initialized",
                                                "raid_options": {"process_max_bandwidth_mb_sec": 0}}
    assert outcome.result["diff"]["after"] == {"framework": "initialized",
                                               "raid_options": {"process_max_bandwidth_mb_sec": 64}}
    assert outcome.result["raid_options"] == {"process_max_bandwidth_mb_sec": 64}


def test_raid_options_are_sent_together_when_one_of_them_differs():
    wanted = {"process_max_bandwidth_mb_sec": 64, "process_window_size_kb": 256}
    outcome = run({"raid_options": wanted}, [
        reads(config=CONFIG_RAID_64),
        expect("bdev_raid_set_options", wanted, RAID_SET),
        reads(config=CONFIG_RAID_64),
    ], diff=True)
    assert outcome.changed is True
    assert outcome.result["diff"]["before"]["raid_options"] == {
        "process_max_bandwidth_mb_sec": 64, "process_window_size_kb": 1024}


def test_raid_rate_in_check_mode_predicts_the_change_and_sends_nothing():
    outcome = run({"raid_options": {"process_max_bandwidth_mb_sec": 16}}, reads(config=CONFIG_RAID_64),
                  check_mode=True, diff=True)
    assert outcome.changed is True
    assert outcome.mutating == []
    assert outcome.result["raid_options"] == {"process_max_bandwidth_mb_sec": 16}
    assert outcome.result["diff"]["after"]["raid_options"] == {"process_max_bandwidth_mb_sec": 16}


def test_raid_rate_in_the_startup_phase_is_sent_before_the_framework_starts():
    # framework_get_config is refused before framework_start_init, so the current value is unknown.
    outcome = run({"raid_options": {"process_max_bandwidth_mb_sec": 64}}, [
        reads(methods=METHODS_STARTUP, config=NOT_INITIALISED),
        expect("bdev_raid_set_options", {"process_max_bandwidth_mb_sec": 64}, RAID_SET),
        expect("framework_start_init", None, answer(OPTS, 36)),
        expect("framework_wait_init", None, answer(OPTS, 37)),
        reads(config=CONFIG_RAID_64),
    ])
    assert not outcome.failed, outcome.msg
    assert outcome.result["raid_options"] == {"process_max_bandwidth_mb_sec": 64}


def test_a_raid_option_the_target_does_not_report_fails_before_any_call():
    older = copy.deepcopy(CONFIG_RAID_64)
    raid = [e for e in older["result"] if e["method"] == "bdev_raid_set_options"][0]
    del raid["params"]["process_window_size_kb"]      # as an SPDK without that option would answer
    outcome = run({"raid_options": {"process_window_size_kb": 256}}, reads(config=older))
    assert outcome.failed
    assert outcome.mutating == []
    assert "does not report process_window_size_kb" in outcome.msg


@pytest.mark.parametrize("options, complaint", [
    ({"process_max_bandwidth_mb_sec": -1}, "process_max_bandwidth_mb_sec must be 0 (unlimited) or more"),
    ({"process_window_size_kb": 0}, "process_window_size_kb must be at least 1"),   # SPDK: -22
])
def test_raid_values_spdk_would_refuse_fail_before_any_mutating_call(options, complaint):
    outcome = run({"raid_options": options}, reads(config=CONFIG_DEFAULTS))
    assert outcome.failed
    assert complaint in outcome.msg
    assert outcome.mutating == []


# -- the TCP transport ----------------------------------------------------------------------


def test_transport_with_other_options_fails_and_lists_what_it_cannot_check():
    outcome = run({"nvmf_tcp": True, "nvmf_tcp_options": {"max_queue_depth": 64}},
                  reads(transports=TRANSPORTS_TCP))
    assert outcome.failed
    assert "max_queue_depth: 128 -> 64" in outcome.msg
    assert outcome.mutating == []


def test_transport_options_the_target_does_not_report_are_listed_as_unverified():
    outcome = run({"nvmf_tcp": True, "nvmf_tcp_options": {"max_queue_depth": 128, "io_unit_size": 8192}},
                  reads(transports=TRANSPORTS_TCP))
    assert outcome.changed is False
    assert outcome.result["unverified_nvmf_tcp_options"] == ["io_unit_size"]


def test_new_transport_gets_its_options():
    outcome = run({"nvmf_tcp": True, "nvmf_tcp_options": {"max_queue_depth": 128}}, [
        reads(transports=NO_TRANSPORTS),
        expect("nvmf_create_transport", {"trtype": "TCP", "max_queue_depth": 128}, answer("step2.jsonl", 1)),
        reads(transports=TRANSPORTS_TCP),
    ])
    assert outcome.changed is True


def test_transport_created_meanwhile_by_someone_else_is_accepted():
    outcome = run({"nvmf_tcp": True}, [
        reads(transports=NO_TRANSPORTS),
        expect("nvmf_create_transport", {"trtype": "TCP"}, answer("step6.jsonl", 21)),
        reads(transports=TRANSPORTS_TCP),
    ])
    assert not outcome.failed, outcome.msg


def test_trtype_in_transport_options_is_refused_before_any_call():
    outcome = run({"nvmf_tcp": True, "nvmf_tcp_options": {"trtype": "RDMA"}}, [])
    assert outcome.failed
    assert "trtype" in outcome.msg


# -- a target started with --wait-for-rpc --------------------------------------------------


def startup_reads():
    return reads(methods=METHODS_STARTUP, config=NOT_INITIALISED, transports=NOT_INITIALISED)


STARTUP_TIMEOUTS = {"ctrlr_loss_timeout_sec": 15, "reconnect_delay_sec": 3, "fast_io_fail_timeout_sec": 6}
STARTUP_ARGS = {"nvmf_tcp": True, "nvme_options": STARTUP_TIMEOUTS, "auto_examine": False}


def startup_calls():
    """A --wait-for-rpc target given STARTUP_ARGS: startup options, framework start, transport, read back."""
    return [
        startup_reads(),
        expect("bdev_set_options", {"bdev_auto_examine": False}, answer(OPTS, 34)),
        expect("bdev_nvme_set_options", STARTUP_TIMEOUTS, answer(OPTS, 33)),
        expect("framework_start_init", None, answer(OPTS, 36)),
        expect("framework_wait_init", None, answer(OPTS, 37)),
        expect("nvmf_create_transport", {"trtype": "TCP"}, answer("step2.jsonl", 1)),
        reads(config=CONFIG_AFTER_STARTUP, transports=TRANSPORTS_TCP),
    ]


def test_startup_phase_sets_startup_options_then_starts_the_framework_then_the_transport():
    outcome = run(STARTUP_ARGS, startup_calls())
    assert not outcome.failed, outcome.msg
    assert outcome.changed is True
    assert outcome.result["framework"] == "initialized"
    assert outcome.result["auto_examine"] is False
    assert outcome.result["nvme_options"] == STARTUP_TIMEOUTS
    assert outcome.result["methods_count"] == len(METHODS_RUNNING["result"])


def test_the_actions_are_the_mutating_calls_in_the_order_sent_also_in_check_mode():
    outcome = run(STARTUP_ARGS, startup_calls())
    sent = ["bdev_set_options", "bdev_nvme_set_options", "framework_start_init", "nvmf_create_transport"]
    assert [a["method"] for a in outcome.result["actions"]] == sent
    assert outcome.result["actions"][3] == {"method": "nvmf_create_transport", "params": {"trtype": "TCP"},
                                            "why": "create the NVMe-oF TCP transport"}
    checked = run(STARTUP_ARGS, startup_reads(), check_mode=True)
    assert [a["method"] for a in checked.result["actions"]] == sent and checked.mutating == []
    assert run({}, reads()).result["actions"] == []


def test_startup_phase_without_options_still_starts_the_framework():
    outcome = run({}, [
        reads(methods=METHODS_STARTUP),
        expect("framework_start_init", None, answer(OPTS, 36)),
        expect("framework_wait_init", None, answer(OPTS, 37)),
        reads(),
    ])
    assert outcome.changed is True
    assert outcome.result["framework"] == "initialized"


def test_startup_phase_in_check_mode_neither_starts_nor_waits_for_the_framework():
    outcome = run({"nvmf_tcp": True, "nvme_options": TIMEOUTS, "auto_examine": False},
                  startup_reads(), check_mode=True, diff=True)
    assert outcome.changed is True
    assert outcome.methods == ["spdk_get_version", "rpc_get_methods", "framework_get_config", "nvmf_get_transports"]
    assert outcome.result["framework"] == "startup"
    assert outcome.result["diff"]["before"]["framework"] == "startup"
    assert outcome.result["diff"]["after"]["framework"] == "initialized"


# -- input checked before anything is sent ---------------------------------------------


@pytest.mark.parametrize("options, complaint", [
    # The combinations real SPDK refused with -22 (more/nvme_options.jsonl L9-L12).
    ({"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 0}, "reconnect_delay_sec must be at least 1"),
    ({"ctrlr_loss_timeout_sec": 1, "reconnect_delay_sec": 2}, "may not exceed ctrlr_loss_timeout_sec"),
    ({"ctrlr_loss_timeout_sec": 5, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 6},
     "fast_io_fail_timeout_sec may not exceed"),
    ({"ctrlr_loss_timeout_sec": -2, "reconnect_delay_sec": 2}, "must be -1"),
    ({"ctrlr_loss_timeout_sec": 0, "reconnect_delay_sec": 2}, "with ctrlr_loss_timeout_sec=0"),
    ({"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 4, "fast_io_fail_timeout_sec": 3},
     "may not be less than reconnect_delay_sec"),
])
def test_timeouts_spdk_would_refuse_fail_before_any_mutating_call(options, complaint):
    outcome = run({"nvme_options": options}, reads(config=CONFIG_DEFAULTS))
    assert outcome.failed
    assert complaint in outcome.msg
    assert outcome.mutating == []


def test_a_partial_request_is_validated_against_the_current_values():
    # reconnect_delay_sec alone is fine only if the current loss timeout allows it (10 at L14).
    outcome = run({"nvme_options": {"reconnect_delay_sec": 11}}, reads(config=CONFIG_SET))
    assert outcome.failed
    assert "ctrlr_loss_timeout_sec=10, reconnect_delay_sec=11" in outcome.msg


@pytest.mark.parametrize("options", [
    # Combinations real SPDK accepted (more/nvme_options.jsonl L13, L20, L24, L29).
    {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5},
    {"ctrlr_loss_timeout_sec": 5, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5},
    {"ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 1},
    {"ctrlr_loss_timeout_sec": 20, "reconnect_delay_sec": 2},
    {"ctrlr_loss_timeout_sec": 0},
])
def test_timeouts_spdk_accepts_pass_the_check(options):
    spdk_target_plan.check_resiliency(options)


def test_negative_wait_timeout_is_refused():
    outcome = run({"wait_timeout": -1}, [])
    assert outcome.failed
    assert "wait_timeout" in outcome.msg


# -- waiting for the socket -------------------------------------------------------------


class FakeClock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class StartingTarget(object):
    """A client whose target refuses connections ``refusals`` times, then answers."""

    def __init__(self, refusals, clock, attempt_cost=0.0):
        self.refusals = refusals
        self.clock = clock
        self.attempt_cost = attempt_cost
        self.timeout = 60.0
        self.timeouts_seen = []

    def batch(self, calls, return_errors=False):
        self.timeouts_seen.append(self.timeout)
        self.clock.now += self.attempt_cost
        if self.refusals > 0:
            self.refusals -= 1
            raise SpdkConnectionError("batch of 2 calls", None, "cannot connect to /tmp/x.sock: Connection refused")
        return [VERSION["result"], METHODS_RUNNING["result"]]


def test_wait_retries_until_the_socket_answers():
    clock = FakeClock()
    client = StartingTarget(refusals=3, clock=clock)
    state, waited = spdk_target_state.wait_for_target(client, 5, False, False, clock=clock, sleep=clock.sleep)
    assert state.version["version"].startswith("SPDK v26.05")
    assert waited == pytest.approx(3 * spdk_target_state.POLL_INTERVAL)
    assert client.timeout == 60.0   # restored


def test_wait_gives_up_after_wait_timeout_with_the_last_reason():
    clock = FakeClock()
    client = StartingTarget(refusals=1000, clock=clock, attempt_cost=0.5)
    with pytest.raises(SpdkConnectionError) as caught:
        spdk_target_state.wait_for_target(client, 3, False, False, clock=clock, sleep=clock.sleep)
    assert "did not answer within 3 s (wait_timeout)" in caught.value.message
    assert "Connection refused" in caught.value.message
    assert clock.now - 100.0 <= 3 + 0.5
    assert max(client.timeouts_seen) <= 3   # no single attempt may outlast the wait


def test_wait_timeout_zero_tries_once():
    clock = FakeClock()
    client = StartingTarget(refusals=1, clock=clock)
    with pytest.raises(SpdkConnectionError):
        spdk_target_state.wait_for_target(client, 0, False, False, clock=clock, sleep=clock.sleep)
    assert len(client.timeouts_seen) == 1

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_target's planner: the steps that bring a target's settings to what was asked, or why it cannot be.

Pure but for one read: the NVMe controllers are asked for only when the NVMe options must change
(``controllers``, a callable). What SPDK accepts, as recorded in
tests/unit/fixtures/transcripts/more__nvme_options.json:

* ``bdev_nvme_set_options`` is refused while an NVMe controller exists (line 17) and accepted in the
  startup phase of a target started with ``--wait-for-rpc`` (line 33), as is ``bdev_set_options``
  (line 34); a running target cannot change ``bdev_auto_examine``, nor an existing transport;
* the three controller timeouts must fit together as ``check_resiliency`` says, or SPDK answers -22;
* ``bdev_raid_set_options`` is accepted at any time (step3.json line 1).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_state import TRTYPE

NVME_OPTION_NAMES = (
    "ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec",
    "keep_alive_timeout_ms", "transport_retry_count", "bdev_retry_count",
    "transport_ack_timeout", "timeout_us", "timeout_admin_us", "action_on_timeout",
)
# Values of a freshly started SPDK v26.05 (more__nvme_options.json line 8); used to validate a
# partial option set when the target is in its startup phase and cannot be read.
NVME_RESILIENCY_DEFAULTS = {"ctrlr_loss_timeout_sec": 0, "reconnect_delay_sec": 0, "fast_io_fail_timeout_sec": 0}
RAID_OPTION_NAMES = ("process_max_bandwidth_mb_sec", "process_window_size_kb")
RESTART_HINT = ("Restart the target to apply this before anything else happens "
                "(role spdk.storage.spdk_tgt with spdk_tgt_state=restarted).")


class TargetConfigError(SpdkError):
    """A wanted setting that SPDK cannot reach on this running target."""


def check_resiliency(options):
    """Raise SpdkInputError (a ValueError) unless the three timeouts fit together the way SPDK checks them."""
    loss = options.get("ctrlr_loss_timeout_sec", 0)
    delay = options.get("reconnect_delay_sec", 0)
    fail = options.get("fast_io_fail_timeout_sec", 0)
    values = "ctrlr_loss_timeout_sec=%s, reconnect_delay_sec=%s, fast_io_fail_timeout_sec=%s" % (loss, delay, fail)
    if loss < -1:
        raise SpdkInputError("ctrlr_loss_timeout_sec must be -1 (reconnect forever) or at least 0 (%s)" % values)
    if loss == 0:
        if delay != 0 or fail != 0:
            raise SpdkInputError("with ctrlr_loss_timeout_sec=0 SPDK needs reconnect_delay_sec and "
                                 "fast_io_fail_timeout_sec to be 0 too (%s)" % values)
        return
    if delay <= 0:
        raise SpdkInputError("reconnect_delay_sec must be at least 1 when ctrlr_loss_timeout_sec is not 0 (%s)" % values)
    if loss != -1 and delay > loss:
        raise SpdkInputError("reconnect_delay_sec may not exceed ctrlr_loss_timeout_sec (%s)" % values)
    if fail != 0 and loss != -1 and fail > loss:
        raise SpdkInputError("fast_io_fail_timeout_sec may not exceed ctrlr_loss_timeout_sec (%s)" % values)
    if fail != 0 and fail < delay:
        raise SpdkInputError("fast_io_fail_timeout_sec may not be less than reconnect_delay_sec (%s)" % values)


def check_raid_options(options):
    """Raise SpdkInputError (a ValueError) for values SPDK would refuse (-22 for a zero window) or that make no sense."""
    if options.get("process_max_bandwidth_mb_sec", 0) < 0:
        raise SpdkInputError("raid_options.process_max_bandwidth_mb_sec must be 0 (unlimited) or more MB/s, got %s"
                             % options["process_max_bandwidth_mb_sec"])
    if options.get("process_window_size_kb", 1) < 1:
        raise SpdkInputError("raid_options.process_window_size_kb must be at least 1 KiB, got %s"
                             % options["process_window_size_kb"])


def requested_options(params):
    """The suboptions the user gave (the others are None and keep the target's values)."""
    return dict((k, v) for k, v in (params or {}).items() if v is not None)


def option_changes(wanted, current):
    """{name: (current, wanted)} for every wanted option whose value differs (current None: unknown)."""
    if current is None:
        return dict((k, (None, v)) for k, v in wanted.items())
    return dict((k, (current.get(k), v)) for k, v in wanted.items() if current.get(k) != v)


def transport_mismatches(wanted, transport):
    """(differences {name: (current, wanted)}, names the target does not report)."""
    differences, unverified = {}, []
    for name, value in sorted(wanted.items()):
        if name not in transport:
            unverified.append(name)
        elif transport[name] != value:
            differences[name] = (transport[name], value)
    return differences, unverified


def describe_changes(changes):
    return ", ".join("%s: %s -> %s" % (k, changes[k][0], changes[k][1]) for k in sorted(changes))


def _setting(what, changes):
    """The reason of a step that sets options: which values change (unknown ones in the startup phase)."""
    return "set %s: %s" % (what, ", ".join("%s %s -> %s" % (k, "unknown" if changes[k][0] is None else changes[k][0],
                                                               changes[k][1]) for k in sorted(changes)))


def is_transport_exists(err):
    # SPDK answers -32603 "Transport type 'TCP' already exists" (tests/unit/fixtures/transcripts/step6.json line 21).
    return "already exists" in (err.message or "")


class Plan:
    """The steps to send, in order: those of the startup phase (or the only ones on a running target), the
    start of the framework, then those that need it running."""

    def __init__(self):
        self.startup_steps = []
        self.init = False
        self.runtime_steps = []
        self.unverified_tcp = []

    @property
    def changed(self):
        return bool(self.startup_steps or self.init or self.runtime_steps)

    def init_step(self):
        return Step("framework_start_init", None,
                    "start the framework: the target waits in its startup phase (started with --wait-for-rpc)")


def plan_nvme(plan, wanted, state, controllers):
    """Add bdev_nvme_set_options if needed; ``controllers`` is a callable read only on a change."""
    if not wanted:
        return
    merged = dict(NVME_RESILIENCY_DEFAULTS if state.nvme is None else state.nvme)
    merged.update(wanted)
    check_resiliency(merged)
    changes = option_changes(wanted, state.nvme)
    if not changes:
        return
    if not state.in_startup:
        attached = controllers()
        if attached:
            raise TargetConfigError(
                "bdev_nvme_set_options cannot change %s: SPDK refuses it while NVMe controllers are "
                "attached (%s). %s" % (describe_changes(changes), ", ".join(attached), RESTART_HINT))
    plan.startup_steps.append(Step("bdev_nvme_set_options", dict(wanted), _setting("the NVMe bdev options", changes)))


def plan_auto_examine(plan, wanted, state):
    if wanted is None:
        return
    if state.in_startup:
        plan.startup_steps.append(Step("bdev_set_options", {"bdev_auto_examine": wanted},
                                       "set bdev_auto_examine to %s before the framework starts" % wanted))
    elif state.auto_examine != wanted:
        raise TargetConfigError(
            "bdev_auto_examine is %s and can only be changed before the framework starts: "
            "start the target with --wait-for-rpc (role variable spdk_tgt_auto_examine does that). %s"
            % (state.auto_examine, RESTART_HINT))


def plan_raid(plan, wanted, state):
    """Add bdev_raid_set_options if a wanted value differs (always in the startup phase: unreadable)."""
    if not wanted:
        return
    check_raid_options(wanted)
    if state.raid is not None:
        unreported = sorted(name for name in wanted if name not in state.raid)
        if unreported:
            raise TargetConfigError(
                "the target does not report %s in framework_get_config (bdev_raid_set_options), so this "
                "SPDK version cannot be checked for it, and may not support it. Leave it out of raid_options"
                % ", ".join(unreported))
        if not option_changes(wanted, state.raid):
            return
    plan.startup_steps.append(Step("bdev_raid_set_options", dict(wanted),
                                   _setting("the RAID options", option_changes(wanted, state.raid))))


# The nvmf_create_transport parameters that apply to the TCP transport in SPDK v26.05 (what its rpc.py
# sends; RDMA- and vfio-user-only ones are left out): a target ignores a key it does not know without an
# error (v26.05 created the transport for {"trtype": "TCP", "bogus_key": 1}), so a typo would go unnoticed.
TCP_INTEGER_OPTIONS = (
    "max_queue_depth", "max_io_qpairs_per_ctrlr", "max_qpairs_per_ctrlr", "in_capsule_data_size", "max_io_size",
    "io_unit_size", "max_aq_depth", "num_shared_buffers", "buf_cache_size", "iobuf_small_cache_size",
    "iobuf_large_cache_size", "sock_priority", "abort_timeout_sec", "control_msg_num", "acceptor_poll_rate",
    "ack_timeout", "kas", "min_kato")
TCP_BOOLEAN_OPTIONS = ("zcopy", "c2h_success", "dif_insert_or_strip", "disable_command_passthru")
TCP_LIST_OPTIONS = ("masked_oncs", "masked_fuses")
MAX_UINT32 = 4294967295


def check_tcp_options(options):
    """Refuse, before any RPC, a key the TCP transport does not take or a value of the wrong type or range."""
    problems = []
    for key, value in sorted((options or {}).items()):
        if key in TCP_INTEGER_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT32:
                problems.append("%s must be a whole number from 0 to %d, got %r" % (key, MAX_UINT32, value))
        elif key in TCP_BOOLEAN_OPTIONS:
            if not isinstance(value, bool):
                problems.append("%s must be true or false, got %r" % (key, value))
        elif key in TCP_LIST_OPTIONS:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                problems.append("%s must be a list of feature names, got %r" % (key, value))
        elif key == "trtype":
            problems.append("trtype may not be given: this module manages the TCP transport only")
        else:
            problems.append("%s is not an option of the TCP transport (known: %s)" % (
                key, ", ".join(TCP_INTEGER_OPTIONS + TCP_BOOLEAN_OPTIONS + TCP_LIST_OPTIONS)))
    if problems:
        raise SpdkInputError("nvmf_tcp_options: %s" % "; ".join(problems))


def plan_transport(plan, wanted, options, state):
    if not wanted:
        return
    if state.tcp is None:
        plan.runtime_steps.append(Step("nvmf_create_transport", dict(options, trtype=TRTYPE),
                                       "create the NVMe-oF TCP transport", tolerate=is_transport_exists))
        return
    differences, plan.unverified_tcp = transport_mismatches(options, state.tcp)
    if differences:
        raise TargetConfigError(
            "the TCP transport exists with other options (%s) and SPDK cannot change a transport "
            "at run time. %s" % (describe_changes(differences), RESTART_HINT))


def make_plan(params, state, controllers):
    plan = Plan()
    plan_auto_examine(plan, params["auto_examine"], state)
    plan_nvme(plan, requested_options(params["nvme_options"]), state, controllers)
    plan_raid(plan, requested_options(params["raid_options"]), state)
    plan.init = state.in_startup
    plan_transport(plan, params["nvmf_tcp"], params["nvmf_tcp_options"] or {}, state)
    return plan


def hint_for(err):
    """What to do about an RPC failure this module can explain better than the generic hint."""
    if err.method in ("bdev_nvme_set_options", "bdev_set_options") and err.code == -1:
        return RESTART_HINT
    return None

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spdk_target
short_description: Wait for an SPDK target and apply its target-wide settings
version_added: 0.1.0
description:
  - Waits until the target's JSON-RPC socket answers, up to O(wait_timeout) seconds.
  - Applies the settings that belong to the target as a whole rather than to one object,
    namely the NVMe-oF TCP transport (O(nvmf_tcp)), the global NVMe bdev options
    (O(nvme_options), C(bdev_nvme_set_options)), bdev auto-examine (O(auto_examine)) and the
    RAID rebuild rate (O(raid_options), C(bdev_raid_set_options)).
  - A target started with C(--wait-for-rpc) is still in its startup phase when it first answers.
    The module then applies O(nvme_options) and O(auto_examine), calls C(framework_start_init)
    and waits for C(framework_wait_init), and only then creates the transport.
  - O(raid_options) can change at any time, also while a RAID rebuilds (the new rate applies at once).
  - SPDK refuses C(bdev_nvme_set_options) once any NVMe controller is attached, and it cannot
    change an existing transport or C(bdev_auto_examine) after the startup phase. When a value
    differs and SPDK cannot change it, the module fails and explains that the target must restart
    (role P(spdk.storage.spdk_tgt#role) with C(spdk_tgt_state=restarted)). It changes nothing in that case.
  - Returns the target's version and how many RPC methods it offers.
author:
  - spdk.storage contributors (@spdk-storage)
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
options:
  wait_timeout:
    description:
      - Seconds to wait until the RPC socket answers (the target may still be starting).
      - V(0) tries once.
    type: float
    default: 30
  nvmf_tcp:
    description:
      - Make sure the NVMe-oF TCP transport exists.
      - V(false) leaves transports as they are. SPDK has no RPC that deletes a transport.
    type: bool
    default: false
  nvmf_tcp_options:
    description:
      - Parameters of C(nvmf_create_transport) besides C(trtype), used when the transport is
        created, for example C(max_queue_depth), C(in_capsule_data_size), C(io_unit_size).
      - If the transport already exists, every option that C(nvmf_get_transports) reports is
        compared with its value. A difference fails the module, because SPDK cannot change a
        transport at run time. Options the target does not report (C(io_unit_size),
        C(num_shared_buffers) and C(buf_cache_size) in SPDK v26.05) cannot be checked. They are
        listed in RV(unverified_nvmf_tcp_options).
    type: dict
    default: {}
  nvme_options:
    description:
      - Global options of SPDK's NVMe bdev module (C(bdev_nvme_set_options)). Every NVMe
        controller attached afterwards inherits them unless the attach overrides them.
      - Only the options given are set. The others keep their current values.
      - SPDK accepts them only while no NVMe controller exists. If they already have these
        values, nothing is sent.
      - The three timeouts must fit together as SPDK requires. V(-1) for O(nvme_options.ctrlr_loss_timeout_sec)
        means reconnect forever. V(0), SPDK's default, never deletes a lost controller (SPDK keeps
        resetting it). Any other value needs
        O(nvme_options.reconnect_delay_sec) between 1 and O(nvme_options.ctrlr_loss_timeout_sec),
        and O(nvme_options.fast_io_fail_timeout_sec) either V(0) or between
        O(nvme_options.reconnect_delay_sec) and O(nvme_options.ctrlr_loss_timeout_sec).
    type: dict
    default: {}
    suboptions:
      ctrlr_loss_timeout_sec:
        description: Seconds a lost controller keeps reconnecting before it and its bdevs are deleted.
        type: int
      reconnect_delay_sec:
        description: Seconds between two reconnect attempts.
        type: int
      fast_io_fail_timeout_sec:
        description: Seconds after a controller loss after which I/O fails instead of waiting for the reconnect.
        type: int
      keep_alive_timeout_ms:
        description: NVMe keep-alive timeout in milliseconds.
        type: int
      transport_retry_count:
        description: How many times the transport retries a command.
        type: int
      bdev_retry_count:
        description: How many times the bdev layer retries a failed I/O (V(-1) without limit).
        type: int
      transport_ack_timeout:
        description: Transport acknowledgement timeout, as an exponent (2^n milliseconds); V(0) is the transport's default.
        type: int
      timeout_us:
        description: Command timeout in microseconds (V(0) disables it).
        type: int
      timeout_admin_us:
        description: Admin command timeout in microseconds (V(0) uses O(nvme_options.timeout_us)).
        type: int
      action_on_timeout:
        description: What to do with a command that timed out.
        type: str
        choices: [none, reset, abort]
  auto_examine:
    description:
      - Whether SPDK examines every new bdev automatically (C(bdev_auto_examine)). That includes
        assembling a RAID from superblocks it finds.
      - This can only be set while the target is in its startup phase, so start the target with
        C(--wait-for-rpc). The role does that when its C(spdk_tgt_auto_examine) is V(false).
      - If the target is already running with a different value, the module fails.
      - Leave it unset to keep the current value.
    type: bool
  raid_options:
    description:
      - Options of SPDK's RAID module (C(bdev_raid_set_options)) for the background processes of
        every RAID on the target, such as the rebuild of a replica added to an engine.
      - Only the options given are set. The others keep their current values. The current values
        are read from C(framework_get_config) (its C(bdev_raid_set_options) entry), and nothing is
        sent when they already match.
      - SPDK accepts them at any time, so a running target changes without a restart, and a
        rebuild that is running picks the new rate up at once. They last until the target stops.
      - An option the target does not report in C(framework_get_config) fails the module, because
        it could be neither checked nor relied on.
    type: dict
    default: {}
    suboptions:
      process_max_bandwidth_mb_sec:
        description:
          - Upper limit of a RAID background process (rebuild) in MB/s per RAID. V(0) is unlimited,
            SPDK's default.
          - A low limit leaves bandwidth to host I/O and makes a rebuild last longer.
        type: int
      process_window_size_kb:
        description:
          - Size in KiB of the range a rebuild copies, and locks against writes, at one time (SPDK's
            default is V(1024)). At least V(1).
        type: int
notes:
  - One no-op run sends 2 to 4 read RPCs in one pipelined exchange. C(spdk_get_version) and
    C(rpc_get_methods) are always sent. C(framework_get_config) is added with O(nvme_options),
    O(auto_examine) or O(raid_options), and C(nvmf_get_transports) with O(nvmf_tcp).
    C(bdev_nvme_get_controllers) is read only when O(nvme_options) must change.
seealso:
  - name: bdev_nvme_set_options
    description: SPDK's JSON-RPC reference.
    link: https://spdk.io/doc/jsonrpc.html
"""

EXAMPLES = r"""
- name: Wait for the target, create the TCP transport and set NVMe timeouts
  spdk.storage.spdk_target:
    rpc_socket: /var/tmp/spdk.sock
    wait_timeout: 60
    nvmf_tcp: true
    nvme_options:
      ctrlr_loss_timeout_sec: 10
      reconnect_delay_sec: 2
      fast_io_fail_timeout_sec: 5

- name: Finish the startup of a target started with --wait-for-rpc, auto-examine off
  spdk.storage.spdk_target:
    auto_examine: false
    nvmf_tcp: true
  register: target

- name: Show the version
  ansible.builtin.debug:
    msg: "{{ target.version }} offers {{ target.methods_count }} RPC methods"

- name: Cap the RAID rebuild rate at 100 MB/s (also while a rebuild runs)
  spdk.storage.spdk_target:
    raid_options:
      process_max_bandwidth_mb_sec: 100
"""

RETURN = r"""
version:
  description: The target's version string (C(spdk_get_version)).
  returned: success
  type: str
  sample: SPDK v26.05 git sha1 d519b163cb
version_fields:
  description: The version's fields as SPDK reports them.
  returned: success
  type: dict
  sample: {"major": 26, "minor": 5, "patch": 0, "suffix": "", "commit": "d519b163cb"}
methods_count:
  description: How many RPC methods the target offers in its current phase (C(rpc_get_methods) with C(current)).
  returned: success
  type: int
  sample: 226
framework:
  description:
    - V(initialized) once the target's framework runs.
    - V(startup) while a target started with C(--wait-for-rpc) waits for C(framework_start_init).
      Check mode leaves it there.
  returned: success
  type: str
  sample: initialized
waited:
  description: Seconds spent waiting for the socket to answer.
  returned: success
  type: float
  sample: 0.42
nvmf_tcp:
  description: The TCP transport as C(nvmf_get_transports) reports it, or V(null) if it does not exist or was not asked about.
  returned: success
  type: dict
  sample: {"trtype": "TCP", "max_queue_depth": 128, "in_capsule_data_size": 4096}
unverified_nvmf_tcp_options:
  description: Names of O(nvmf_tcp_options) the target does not report, so an existing transport could not be checked against them.
  returned: success
  type: list
  elements: str
  sample: [io_unit_size]
nvme_options:
  description: The requested O(nvme_options) with the values they have now (in check mode, the values they would have).
  returned: success
  type: dict
  sample: {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
auto_examine:
  description: Whether bdev auto-examine is on. V(null) if O(auto_examine) was not given.
  returned: success
  type: bool
  sample: false
raid_options:
  description: The requested O(raid_options) with the values they have now (in check mode, the values they would have).
  returned: success
  type: dict
  sample: {"process_max_bandwidth_mb_sec": 100}
"""

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import SpdkModule, spdk_main
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    SpdkConnectionError,
    SpdkRpcError,
)

TRTYPE = "TCP"
NVME_OPTION_NAMES = (
    "ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec",
    "keep_alive_timeout_ms", "transport_retry_count", "bdev_retry_count",
    "transport_ack_timeout", "timeout_us", "timeout_admin_us", "action_on_timeout",
)
# Values of a freshly started SPDK v26.05 (tests/unit/fixtures/transcripts/more__nvme_options.json line 8); used to validate a
# partial option set when the target is in its startup phase and cannot be read.
NVME_RESILIENCY_DEFAULTS = {"ctrlr_loss_timeout_sec": 0, "reconnect_delay_sec": 0, "fast_io_fail_timeout_sec": 0}
RAID_OPTION_NAMES = ("process_max_bandwidth_mb_sec", "process_window_size_kb")
STARTUP_MARKER = "framework_start_init"   # offered only before the framework is initialised
POLL_INTERVAL = 0.2
RESTART_HINT = ("Restart the target to apply this before anything else happens "
                "(role spdk.storage.spdk_tgt with spdk_tgt_state=restarted).")


class TargetConfigError(SpdkError):
    """A wanted setting that SPDK cannot reach on this running target."""


# -- reading the target -------------------------------------------------------------


class TargetState(object):
    """What the module knows about the target after one pipelined read."""

    def __init__(self, version, methods, nvme=None, auto_examine=None, tcp=None, raid=None):
        self.version = version            # spdk_get_version result
        self.methods = methods            # rpc_get_methods {"current": true}
        self.nvme = nvme                  # bdev_nvme_set_options params, None if unknown
        self.auto_examine = auto_examine  # bool, None if unknown
        self.tcp = tcp                    # the TCP transport dict, None if absent
        self.raid = raid                  # bdev_raid_set_options params, None if unknown

    @property
    def in_startup(self):
        return STARTUP_MARKER in self.methods


def read_calls(want_config, want_transports):
    calls = [("spdk_get_version", None), ("rpc_get_methods", {"current": True})]
    if want_config:
        calls.append(("framework_get_config", {"name": "bdev"}))
    if want_transports:
        calls.append(("nvmf_get_transports", None))
    return calls


def config_params(bdev_config, method):
    """The params of ``method`` in a framework_get_config answer, {} if it is not there."""
    for entry in bdev_config or []:
        if entry.get("method") == method:
            return entry.get("params") or {}
    return {}


def find_transport(transports, trtype=TRTYPE):
    for transport in transports or []:
        if str(transport.get("trtype", "")).upper() == trtype:
            return transport
    return None


def state_from_answers(calls, answers):
    """Build a TargetState; runtime-only reads fail in the startup phase and stay unknown."""
    by_method = dict((method, answer) for (method, _params), answer in zip(calls, answers))
    state = TargetState(by_method["spdk_get_version"], by_method["rpc_get_methods"])
    if state.in_startup:
        return state
    for method in ("framework_get_config", "nvmf_get_transports"):
        if isinstance(by_method.get(method), SpdkRpcError):
            raise by_method[method]
    if "framework_get_config" in by_method:
        config = by_method["framework_get_config"]
        state.nvme = config_params(config, "bdev_nvme_set_options")
        state.auto_examine = config_params(config, "bdev_set_options").get("bdev_auto_examine")
        state.raid = config_params(config, "bdev_raid_set_options")
    if "nvmf_get_transports" in by_method:
        state.tcp = find_transport(by_method["nvmf_get_transports"])
    return state


def read_target(client, want_config, want_transports):
    calls = read_calls(want_config, want_transports)
    answers = client.batch(calls, return_errors=True)
    for (method, _params), answer in zip(calls, answers[:2]):
        if isinstance(answer, SpdkRpcError):
            raise answer
    return state_from_answers(calls, answers)


def wait_for_target(client, timeout, want_config, want_transports, clock=time.monotonic, sleep=time.sleep):
    """Read the target, retrying connection failures until ``timeout`` seconds passed.

    Returns (state, seconds waited). Each attempt's own deadline is cut to what is left,
    so the wait never overshoots ``timeout`` by a whole rpc_timeout.
    """
    start = clock()
    deadline = start + timeout
    rpc_timeout = client.timeout
    try:
        while True:
            client.timeout = max(min(rpc_timeout, deadline - clock()), 1.0)
            try:
                return read_target(client, want_config, want_transports), clock() - start
            except SpdkConnectionError as exc:
                if clock() + POLL_INTERVAL >= deadline:
                    raise SpdkConnectionError(
                        exc.method, None, "the target did not answer within %s s (wait_timeout): %s"
                        % (timeout, exc.message))
                sleep(POLL_INTERVAL)
    finally:
        client.timeout = rpc_timeout


# -- deciding ------------------------------------------------------------------------


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


class Plan(object):
    """The mutating calls to make, in order, and what the target looks like afterwards."""

    def __init__(self):
        self.startup_calls = []   # before framework_start_init (or the only ones when initialised)
        self.init = False
        self.runtime_calls = []   # need an initialised framework
        self.unverified_tcp = []

    @property
    def changed(self):
        return bool(self.startup_calls or self.init or self.runtime_calls)


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
    plan.startup_calls.append(("bdev_nvme_set_options", dict(wanted)))


def plan_auto_examine(plan, wanted, state):
    if wanted is None:
        return
    if state.in_startup:
        plan.startup_calls.append(("bdev_set_options", {"bdev_auto_examine": wanted}))
    elif state.auto_examine != wanted:
        raise TargetConfigError(
            "bdev_auto_examine is %s and can only be changed before the framework starts: "
            "start the target with --wait-for-rpc (role variable spdk_tgt_auto_examine does that). %s"
            % (state.auto_examine, RESTART_HINT))


def check_raid_options(options):
    """Raise SpdkInputError (a ValueError) for values SPDK would refuse (-22 for a zero window) or that make no sense."""
    if options.get("process_max_bandwidth_mb_sec", 0) < 0:
        raise SpdkInputError("raid_options.process_max_bandwidth_mb_sec must be 0 (unlimited) or more MB/s, got %s"
                             % options["process_max_bandwidth_mb_sec"])
    if options.get("process_window_size_kb", 1) < 1:
        raise SpdkInputError("raid_options.process_window_size_kb must be at least 1 KiB, got %s"
                             % options["process_window_size_kb"])


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
    plan.startup_calls.append(("bdev_raid_set_options", dict(wanted)))


def plan_transport(plan, wanted, options, state):
    if not wanted:
        return
    if state.tcp is None:
        plan.runtime_calls.append(("nvmf_create_transport", dict(options, trtype=TRTYPE)))
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


def controller_names(client):
    return [c.get("name") for c in client.call("bdev_nvme_get_controllers") or []]


# -- acting and reporting --------------------------------------------------------------


def is_transport_exists(err):
    # SPDK answers -32603 "Transport type 'TCP' already exists" (tests/unit/fixtures/transcripts/step6.json line 21).
    return "already exists" in (err.message or "")


def execute(client, plan, check_mode):
    for method, params in plan.startup_calls:
        client.call(method, params)
    if plan.init:
        client.call("framework_start_init")
        if not check_mode:   # nothing was started in check mode: waiting would hang
            client.call("framework_wait_init")
    for method, params in plan.runtime_calls:
        try:
            client.call(method, params)
        except SpdkRpcError as err:
            if not (method == "nvmf_create_transport" and is_transport_exists(err)):
                raise


def snapshot(state, params):
    """The part of the target this module manages, for --diff."""
    view = {"framework": "startup" if state.in_startup else "initialized"}
    if params["nvmf_tcp"]:
        view["nvmf_tcp"] = "absent" if state.tcp is None else "present"
    wanted = requested_options(params["nvme_options"])
    if wanted:
        view["nvme_options"] = dict((k, None if state.nvme is None else state.nvme.get(k)) for k in wanted)
    if params["auto_examine"] is not None:
        view["auto_examine"] = state.auto_examine
    wanted = requested_options(params["raid_options"])
    if wanted:
        view["raid_options"] = dict((k, None if state.raid is None else state.raid.get(k)) for k in wanted)
    return view


def expected(state, params):
    view = snapshot(state, params)
    view["framework"] = "initialized"
    if params["nvmf_tcp"]:
        view["nvmf_tcp"] = "present"
    if "nvme_options" in view:
        view["nvme_options"] = requested_options(params["nvme_options"])
    if params["auto_examine"] is not None:
        view["auto_examine"] = params["auto_examine"]
    if "raid_options" in view:
        view["raid_options"] = requested_options(params["raid_options"])
    return view


def hint_for(err):
    """What to do about an RPC failure this module can explain better than the generic hint."""
    if err.method in ("bdev_nvme_set_options", "bdev_set_options") and err.code == -1:
        return RESTART_HINT
    return None


@spdk_main
def main():
    module = SpdkModule(
        argument_spec=dict(
            wait_timeout=dict(type="float", default=30),
            nvmf_tcp=dict(type="bool", default=False),
            nvmf_tcp_options=dict(type="dict", default={}),
            nvme_options=dict(type="dict", default={}, options=dict(
                (name, dict(type="str", choices=["none", "reset", "abort"]) if name == "action_on_timeout"
                 else dict(type="int")) for name in NVME_OPTION_NAMES)),
            auto_examine=dict(type="bool"),
            raid_options=dict(type="dict", default={}, options=dict(
                (name, dict(type="int")) for name in RAID_OPTION_NAMES)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout must be 0 or more seconds, got %s" % params["wait_timeout"])
    if "trtype" in (params["nvmf_tcp_options"] or {}):
        module.fail_json(msg="nvmf_tcp_options may not contain trtype: this module manages the TCP transport only")
    client = module.client
    want_config = (bool(requested_options(params["nvme_options"])) or params["auto_examine"] is not None
                   or bool(requested_options(params["raid_options"])))
    try:
        state, waited = wait_for_target(client, params["wait_timeout"], want_config, params["nvmf_tcp"])
        plan = make_plan(params, state, lambda: controller_names(client))
        execute(client, plan, module.check_mode)
        final = state
        if plan.changed and not module.check_mode:
            final = read_target(client, want_config, params["nvmf_tcp"])
    except SpdkError as err:
        err.fail(module, hint=hint_for(err))
    after = snapshot(final, params) if final is not state else expected(state, params)
    module.exit_with(
        changed=plan.changed,
        diff=dict(before=snapshot(state, params), after=after),
        version=final.version.get("version"),
        version_fields=final.version.get("fields") or {},
        methods_count=len(final.methods),
        framework="startup" if final.in_startup else "initialized",
        waited=round(waited, 3),
        nvmf_tcp=final.tcp,
        unverified_nvmf_tcp_options=plan.unverified_tcp,
        nvme_options=after.get("nvme_options", {}),
        auto_examine=after.get("auto_examine"),
        raid_options=after.get("raid_options", {}),
    )


if __name__ == "__main__":
    main()

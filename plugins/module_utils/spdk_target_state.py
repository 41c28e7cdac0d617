# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_target's reads: wait until the target answers, then what it says about its target-wide settings.

One pipelined batch reads the version and the methods the target offers now, plus its bdev
configuration and its transports when the run needs them. A target started with ``--wait-for-rpc``
offers ``framework_start_init`` and refuses the runtime reads until it is called
(tests/unit/fixtures/transcripts/more__nvme_options.json lines 32 and 35); those reads stay unknown.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

TRTYPE = "TCP"
STARTUP_MARKER = "framework_start_init"   # offered only before the framework is initialised
POLL_INTERVAL = 0.2


class TargetState:
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
    by_method = dict((call[0], answer) for call, answer in zip(calls, answers))
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
    for answer in answers[:2]:
        if isinstance(answer, SpdkRpcError):
            raise answer
    return state_from_answers(calls, answers)


def wait_for_target(client, timeout, want_config, want_transports, clock=time.monotonic, sleep=time.sleep):
    """Read the target, retrying connection failures until ``timeout`` seconds passed.

    Returns (state, seconds waited). Each attempt's own deadline is cut to what is left,
    so the wait never overshoots ``timeout`` by a whole rpc_timeout.
    """
    start = clock()
    waiter = Waiter(timeout, POLL_INTERVAL, clock=clock, sleep=sleep)
    rpc_timeout = client.timeout
    failures = []

    def attempt():
        client.timeout = max(min(rpc_timeout, waiter.remaining()), 1.0)
        try:
            return read_target(client, want_config, want_transports)
        except SpdkConnectionError as exc:
            failures[:] = [exc]
            return None

    try:
        state = waiter.until(
            attempt,
            lambda: "the target did not answer within %s s (wait_timeout): %s" % (timeout, failures[-1].message),
            error=lambda text: SpdkConnectionError(failures[-1].method, None, text))
    finally:
        client.timeout = rpc_timeout
    return state, clock() - start


def controller_names(client):
    return [c.get("name") for c in client.call("bdev_nvme_get_controllers") or []]

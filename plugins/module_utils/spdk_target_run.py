# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_target's executor: wait for the target, plan (spdk_target_plan), send the steps, report.

Starting the framework is the one step whose effect a later step needs: ``framework_wait_init``
waits for it before the runtime steps (the transport). Check mode starts nothing, so it neither
waits nor reads back: it reports the target as it would be afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_target_plan as planner
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import ClientNode, StepRecorder
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_state import (
    controller_names,
    read_target,
    wait_for_target,
)


def check_params(params):
    """Refuse what no target could use, before any RPC."""
    if params["wait_timeout"] < 0:
        raise SpdkInputError("wait_timeout must be 0 or more seconds, got %s" % params["wait_timeout"])
    if "trtype" in (params["nvmf_tcp_options"] or {}):
        raise SpdkInputError("nvmf_tcp_options may not contain trtype: this module manages the TCP transport only")
    planner.check_tcp_options(params["nvmf_tcp_options"])


def execute(recorder, node, plan):
    """Send the plan's steps; after starting the framework, wait until it runs (not in check mode:
    nothing was started, so waiting would never end)."""
    recorder.run(node, plan.startup_steps)
    if plan.init:
        recorder.send(node, plan.init_step())
        if not recorder.check_mode:
            node.client.call("framework_wait_init")
    recorder.run(node, plan.runtime_steps)


def snapshot(state, params):
    """The part of the target this module manages, for --diff."""
    view = {"framework": "startup" if state.in_startup else "initialized"}
    if params["nvmf_tcp"]:
        view["nvmf_tcp"] = "absent" if state.tcp is None else "present"
    wanted = planner.requested_options(params["nvme_options"])
    if wanted:
        view["nvme_options"] = dict((k, None if state.nvme is None else state.nvme.get(k)) for k in wanted)
    if params["auto_examine"] is not None:
        view["auto_examine"] = state.auto_examine
    wanted = planner.requested_options(params["raid_options"])
    if wanted:
        view["raid_options"] = dict((k, None if state.raid is None else state.raid.get(k)) for k in wanted)
    return view


def expected(state, params):
    """``snapshot`` as it will be once the plan ran (check mode reads nothing back)."""
    view = snapshot(state, params)
    view["framework"] = "initialized"
    if params["nvmf_tcp"]:
        view["nvmf_tcp"] = "present"
    if "nvme_options" in view:
        view["nvme_options"] = planner.requested_options(params["nvme_options"])
    if params["auto_examine"] is not None:
        view["auto_examine"] = params["auto_examine"]
    if "raid_options" in view:
        view["raid_options"] = planner.requested_options(params["raid_options"])
    return view


def apply(client, params, check_mode=False):
    """Wait, read, plan, send and read back; the module's result. An SpdkError carries the actions sent
    before it and, for an RPC SPDK refuses on a running target, the restart hint."""
    check_params(params)
    want_config = (bool(planner.requested_options(params["nvme_options"])) or params["auto_examine"] is not None
                   or bool(planner.requested_options(params["raid_options"])))
    recorder = StepRecorder(check_mode=check_mode)
    with recorder.reporting():
        try:
            state, waited = wait_for_target(client, params["wait_timeout"], want_config, params["nvmf_tcp"])
            plan = planner.make_plan(params, state, lambda: controller_names(client))
            execute(recorder, ClientNode(client), plan)
            final = state
            if plan.changed and not check_mode:
                final = read_target(client, want_config, params["nvmf_tcp"])
        except SpdkError as err:
            err.hint = planner.hint_for(err) or err.hint
            raise
    after = snapshot(final, params) if final is not state else expected(state, params)
    return dict(
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
        actions=recorder.actions,
    )

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The engine's frontend, planned: the NVMe-oF/TCP subsystem that exports the RAID, with ANA.

The frontend reports ANA: its namespace lives in group 1, and group 2 is kept ``inaccessible`` on
every listener, so an engine snapshot can pause I/O by moving the namespace into group 2
(``nvmf_subsystem_set_ns_ana_group`` drains in-flight writes:
tests/unit/fixtures/transcripts/more__ana__run15_nsgroup_pause_nodrain.json). A namespace left in
group 2 by an interrupted pause is moved back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step

ACTIVE_ANA_GROUP = 1
SPARE_ANA_GROUP = 2


def with_ana(steps, nqn):
    """ANA on the engine's subsystem: reporting on, nsid 1 in group 1, group 2 inaccessible per listener."""
    out = []
    for step in steps:
        if step.method == "nvmf_create_subsystem":
            step.params["ana_reporting"] = True
        elif step.method == "nvmf_subsystem_add_ns":
            step.params["namespace"]["anagrpid"] = ACTIVE_ANA_GROUP
        out.append(step)
        if step.method == "nvmf_subsystem_add_listener":
            out.append(spare_group_step(nqn, step.params["listen_address"]))
    return out


def spare_group_step(nqn, listen_address):
    """Keep the quiesce group inaccessible on a listener (re-asserted before every pause, too)."""
    return Step("nvmf_subsystem_listener_set_ana_state",
                {"nqn": nqn, "listen_address": dict(listen_address), "ana_state": "inaccessible",
                 "anagrpid": SPARE_ANA_GROUP},
                "keep ANA group %d inaccessible on %s:%s for snapshot pauses"
                % (SPARE_ANA_GROUP, listen_address["traddr"], listen_address["trsvcid"]))


def ana_fix_steps(namespaces, nqn):
    """Move a namespace that an interrupted pause left outside group 1 back (resumes host I/O)."""
    steps = []
    for ns in namespaces:
        group = ns.get("anagrpid")
        if group is not None and group != ACTIVE_ANA_GROUP:
            steps.append(Step("nvmf_subsystem_set_ns_ana_group",
                              {"nqn": nqn, "nsid": ns["nsid"], "anagrpid": ACTIVE_ANA_GROUP},
                              "move namespace %d back to ANA group %d (a snapshot pause was interrupted)"
                              % (ns["nsid"], ACTIVE_ANA_GROUP)))
    return steps


def ana_warnings(namespaces, nqn):
    if namespaces and all(ns.get("anagrpid") is None for ns in namespaces):
        return ["frontend %s was created without ANA reporting, so engine snapshots cannot pause its I/O; "
                "re-create it (frontend: none, then nvmf) in a maintenance window" % nqn]
    return []


def _spec(request, subsystems, raid_uuid, extra_hosts, recorded_port):
    """The frontend's ExposureSpec; a recorded port is reused while no other subsystem uses it."""
    port = recorded_port if recorded_port not in nvmf.used_ports(subsystems, except_nqn=request.nqn) else None
    return request.exposure_spec(raid_uuid, extra_hosts, port=port)


def plan_frontend(state, request, status, extra_hosts=(), recorded_port=None, transport_lookup=None):
    """Steps that make the frontend match ``request.frontend`` (nvmf/blockdev share the subsystem).

    ``transport_lookup`` answers whether the TCP transport exists; it is asked only when a listener
    is to be added (a subsystem that listens already proves the transport).
    """
    subsystems = state.subsystems
    current = subsystems.get(request.nqn)
    if request.frontend == "none":
        return nvmf.plan_unexpose(current)
    spec = _spec(request, subsystems, status.raid.uuid if status.raid else None, extra_hosts, recorded_port)
    exists = True
    if nvmf.needs_listener(spec, current, subsystems) and transport_lookup is not None:
        exists = transport_lookup()
    steps = with_ana(nvmf.plan_exposure(spec, current, subsystems, transport_exists=exists), request.nqn)
    return steps + ana_fix_steps(status.namespaces, request.nqn)


def frontend_port(state, request, extra_hosts=(), recorded_port=None):
    """The port the frontend listens on (or will, once planned steps ran)."""
    subsystems = state.subsystems
    spec = _spec(request, subsystems, None, extra_hosts, recorded_port)
    return nvmf.choose_port(spec, subsystems.get(request.nqn), subsystems)

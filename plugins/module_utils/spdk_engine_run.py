# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One spdk_engine run on the engine node: read, plan, apply, in phases.

``present`` reads the node in one batch, repairs the membership (spdk_engine_members: attach,
examine, create or adopt the RAID), then makes the frontend match (spdk_engine_frontend), and with
``wait`` waits for replicas kept out and for the rebuilds. ``absent`` removes frontend, RAID
(superblocks kept) and controllers. Every mutating step goes through one StepRecorder, so check
mode plans the same steps and sends only reads; ``actions`` lists them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_frontend import (
    ana_warnings,
    frontend_port,
    plan_frontend,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_initiator import connect_step, disconnect_step
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_members import MemberPass
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import (
    address_warnings,
    detach_steps,
    plan_absent,
    unconnected,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (
    ABSENT,
    HEALTHY,
    WO,
    EngineStatus,
    current_intent,
    engine_node,
    intent_view,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_wait import wait_bdevs_gone, wait_healthy
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import StepRecorder
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import RunLock
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

ROLLBACK_WAIT = 30.0
"""At most this many seconds for a rolled-back controller's bdev to go."""


class EngineRun:
    """One spdk_engine run, phase by phase; ``actions`` lists every mutating step (sent or, in check
    mode, planned), ``warnings`` what the user should know, ``messages`` one line per rebuild."""

    def __init__(self, client, request, check_mode=False, recorded=None, initiator=None,
                 wait_timeout=300.0, wait_sleep=1.0, sleep=time.sleep, clock=time.monotonic,
                 lock=None, lock_timeout=60.0, unfinished_revert=None, rebuild=None):
        self.node = engine_node(client)
        self.unfinished_revert = unfinished_revert   # a snapshot whose revert a run began and did not finish
        self.rebuild = rebuild      # the engine's rebuild journal entry (spdk_rebuild_journal.RebuildEntry) or None
        self.request = request
        self.check_mode = check_mode
        self.recorder = StepRecorder(check_mode)
        self.recorded = recorded or {}
        self.initiator = initiator
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.sleep = sleep
        self.clock = clock
        self.warnings = []
        self.lock = RunLock(lock, lock_timeout, self.warnings)   # lock(operation) -> the engine's VolumeLock
        self.messages = []         # one line per rebuild the RAID shows: who started it, its progress
        self.attached = []         # controllers this run attached (detached again if the run fails)
        self.added = []            # replicas this run added to the RAID (it started their rebuild)
        self.members = None        # the last MemberPass
        self.first = None          # EngineStatus of the run's first read
        self.device = None
        self.before = None

    @property
    def client(self):
        return self.node.client

    @property
    def state(self):
        """The node as last read (in check mode: as it was before the run)."""
        return self.node.state

    @property
    def actions(self):
        return self.recorder.actions

    @property
    def changed(self):
        return self.recorder.changed

    def locked(self, phase):
        """``phase()`` under the volume's lock, taken before its first change (recover, grow and delete
        take turns with engine snapshots and rebuilds); read and planned again when it had to wait."""
        self.recorder.before_first = lambda: self.lock.take("engine %s" % self.request.state)
        return self.lock.run(phase, self._subsystems)

    def _subsystems(self):
        return None if self.node.state is None else self.node.state.raw.get("subsystems") or []

    # --- present ----------------------------------------------------------------
    def present(self, wait=False):
        """Make the engine exist as requested; returns its EngineStatus after the run."""
        return self.locked(lambda: self._present(wait))

    def _present(self, wait):
        request = self.request
        with self.recorder.reporting():
            extra_hosts = []
            if request.frontend == "blockdev":
                self.initiator.check(self.check_mode)
                extra_hosts = [self.initiator.host_nqn()]
            deadline = self.clock() + self.wait_timeout
            state = self.node.load()
            self.first = EngineStatus(state, request)
            self.before = current_intent(self.first, request)
            self.warnings += address_warnings(state, request)
            if self.unfinished_revert is not None:
                return self._left_to_the_revert()
            if self.rebuild is not None and self.rebuild.warning():
                self.warnings.append(self.rebuild.warning())
            self.members = MemberPass(self).apply()
            self._frontend(extra_hosts)
            waiting = wait and not self.check_mode
            if waiting:
                self._wait_until_joined(deadline)
            rebuilding = self._rebuild_messages()
            if waiting:
                self.node.state = wait_healthy(self.client, request, self.node.state, self._waiter(deadline))
                self._wait_connected(deadline)
                self.messages += ["%s: rebuild finished, RW" % name for name in rebuilding]
            self.warnings += self._kept_out(wait)
        return EngineStatus(self.node.state, request)

    def _left_to_the_revert(self):
        """frontend none while a revert is unfinished (check_no_unfinished_revert refused any other frontend):
        the revert deletes and creates the RAID itself, so its members are not repaired here."""
        snapshot = self.unfinished_revert
        self.warnings.append(
            "engine %s: the revert to snapshot %s is unfinished, so its RAID and replicas are left as they are; "
            "spdk_snapshot name=%s state=reverted finishes it" % (self.request.name, snapshot, snapshot))
        return EngineStatus(self.node.state, self.request)

    def _waiter(self, deadline):
        return Waiter(self.wait_timeout, self.wait_sleep, clock=self.clock, sleep=self.sleep, deadline=deadline,
                      heartbeat=self.lock.keep_alive)

    def _wait_until_joined(self, deadline):
        """wait: while a replica is kept out because its node is unreachable, poll every ``wait_sleep`` and
        repair again (its controller reconnects, or is dropped and attached again), up to ``wait_timeout``."""
        waiter = self._waiter(deadline)

        def joined():
            if waiter.polls:  # after each pause: read the node and make another pass
                self.node.load()
                self.members = MemberPass(self).apply()
            return None if self.members.kept_out else True

        def describe():
            return "engine %s is %s after %ss (wait_timeout): %s" % (
                self.request.name, EngineStatus(self.node.state, self.request).state, self.wait_timeout,
                "; ".join(self._kept_out(True)))

        waiter.until(joined, describe, error=EngineRefusal)

    def _wait_connected(self, deadline):
        """wait: a remote member whose target restarted still shows RW until its controller reconnects, or
        until ``ctrlr_loss_timeout_sec`` deletes the controller and the RAID drops it, seconds after the run
        would have said healthy. Poll (one read of the controllers) until every remote member's controller is
        connected, repairing the engine as the first pass does if the loss timeout took one out."""
        waiter = self._waiter(deadline)
        last = {}

        def connected():
            if waiter.polls:
                self.node.load()
                self.members = MemberPass(self).apply()
            controllers = NodeState(dict(self.node.state.raw, **fetch(self.client, ("controllers",)))).controllers
            last["status"] = EngineStatus(self.node.state, self.request)
            last["down"] = unconnected(self.request.remote_replicas, {c.name: c for c in controllers})
            return True if last["status"].state == HEALTHY and not last["down"] else None

        def describe():
            down = "; ".join("replica %s's controller is %s" % item for item in sorted(last["down"].items()))
            return "engine %s is %s after %ss (wait_timeout)%s" % (
                self.request.name, last["status"].state, self.wait_timeout, ": " + down if down else "")

        waiter.until(connected, describe, error=EngineRefusal)

    def _kept_out(self, waited):
        """Why each replica the last pass could not bring in stays ERR, and what to do."""
        members = self.members
        out = ["replica %s stays ERR: %s" % (name, why) for name, why in sorted(members.unreachable.items())]
        out += ["replica %s stays ERR: %s, so its node is unreachable or still reconnecting and it is not added "
                "back to the RAID; run again when the node is back%s"
                % (name, why, "" if waited else " (wait: true waits for it, up to wait_timeout)")
                for name, why in sorted(members.deferred.items())]
        return out

    def _rebuild_messages(self):
        """Say who started each rebuild the RAID shows: this run, SPDK by itself, or something before this run.

        SPDK re-adds a stale member from its superblock when the member's bdev registers (examine, for
        example when this run attaches it): a rebuild of a replica that was no member when the run began
        and that the run did not add is SPDK's own. Returns the replicas being rebuilt.
        """
        first = {s.spec.name: s for s in self.first.replicas}
        names = []
        for replica in EngineStatus(self.node.state, self.request).replicas:
            if replica.mode != WO:
                continue
            name = replica.spec.name
            progress = "rebuilding (%s%%)" % replica.rebuild["percent"]
            if name in self.added:
                text = "added back to the RAID by this run, " + progress
            elif first[name].member is None:
                text = "SPDK re-added it from its superblock, " + progress
            else:
                text = progress + ", started before this run"
            self.messages.append("%s: %s" % (name, text))
            names.append(name)
        return names

    # --- frontend ---------------------------------------------------------------
    def _frontend(self, extra_hosts):
        request = self.request
        status = EngineStatus(self.node.state, request)
        if request.frontend != "blockdev" and self.initiator is not None and self.initiator.device(request.nqn):
            self._kernel_disconnect()
        # A RAID this run creates serves I/O (in check mode it is only planned, so the node does not show it).
        raid_ready = status.serving or (status.raid is None and self.members.created)
        if request.frontend != "none" and status.subsystem is None and not raid_ready:
            self.warnings.append("the frontend of engine %s is not created while its RAID serves no I/O" % request.name)
            return
        self.warnings += ana_warnings(status.namespaces, request.nqn)
        recorded_port = self.recorded.get("frontend_port")
        steps = plan_frontend(self.node.state, request, status, extra_hosts, recorded_port,
                              transport_lookup=lambda: nvmf.transport_exists(self.client))
        self.recorder.run(self.node, steps)
        if steps and not self.check_mode:
            self.node.state = NodeState(dict(self.node.state.raw, **fetch(self.client, ("subsystems",))))
        if request.frontend == "blockdev":
            self._kernel_connect(extra_hosts[0], extra_hosts, recorded_port)

    def _kernel_connect(self, kernel_nqn, extra_hosts, recorded_port):
        request = self.request
        self.device = self.initiator.device(request.nqn)
        if self.device:
            return
        port = frontend_port(self.node.state, request, extra_hosts, recorded_port)
        self.recorder.record(connect_step(request.nqn, request.listen_address, port, kernel_nqn))
        if not self.check_mode:
            self.device = self.initiator.connect(request.nqn, request.listen_address, port, kernel_nqn)

    def _kernel_disconnect(self):
        self.recorder.record(disconnect_step(self.request.nqn))
        if not self.check_mode:
            self.initiator.disconnect(self.request.nqn)

    def intent_after(self, view):
        """The ``--diff`` after-object; in check mode with changes, the port the frontend would listen on."""
        request = self.request
        if request.state == ABSENT:
            return intent_view(request, ABSENT)
        port = view["frontend"] and view["frontend"]["port"]
        if self.check_mode and self.changed:
            port = None if request.frontend == "none" else frontend_port(
                self.node.state, request, recorded_port=self.recorded.get("frontend_port"))
        return intent_view(request, "present", port)

    # --- failure and waiting --------------------------------------------------------
    def rollback(self):
        """Detach controllers this run attached that did not become RAID members (best effort)."""
        if not self.attached:
            return
        try:
            steps, bdevs = detach_steps(self.node.load(), self.attached)
            self.recorder.run(self.node, steps)
            wait_bdevs_gone(self.client, bdevs, min(self.wait_timeout, ROLLBACK_WAIT), self.sleep, self.clock,
                            heartbeat=self.lock.keep_alive)
        except (SpdkRpcError, EngineRefusal) as exc:
            self.warnings.append("could not detach %s after the failure: %s" % (", ".join(self.attached), exc))
        self.attached = []

    def wait_gone(self, bdevs):
        """Wait until the bdevs of detached controllers are gone (in check mode nothing was detached)."""
        if not self.check_mode:
            wait_bdevs_gone(self.client, bdevs, self.wait_timeout, self.sleep, self.clock,
                            heartbeat=self.lock.keep_alive)

    # --- absent -------------------------------------------------------------------
    def absent(self):
        """Frontend, RAID (superblocks kept) and replica controllers gone; replica data untouched."""
        return self.locked(self._absent)

    def _absent(self):
        request = self.request
        with self.recorder.reporting():
            state = self.node.load()
            self.before = current_intent(EngineStatus(state, request), request)
            if self.initiator is not None and self.initiator.device(request.nqn):
                self._kernel_disconnect()
            steps, bdevs = plan_absent(state, request, self.recorded.get("replicas", []))
            self.recorder.run(self.node, steps)
            self.wait_gone(bdevs)

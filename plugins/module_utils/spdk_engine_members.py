# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One pass over an engine's membership: attach, await examine, then create or adopt the RAID and fix
its members. Each phase plans on the node as it was last read (spdk_engine_plan) and sends the steps
through the run's StepRecorder.

In check mode nothing is attached, so what an attach brings is not known: the size of a remote
replica not attached yet, and whether SPDK's examine assembles the RAID or re-adds the replica from
its superblock once its bdev registers. The plan then treats such a bdev as coming (``pending``)
and plans the RAID as the node is now.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import (
    ATTACH,
    detach_steps,
    is_connect_failure,
    needs_controllers,
    plan_attach,
    plan_create,
    plan_membership,
    removed_controllers,
    unconnected,
    without_members,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import EngineStatus, bdev_refs
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

SUPERBLOCK_CLASH_HINT = (
    "a member carries the superblock of an earlier RAID (an engine deleted on this node keeps its members' "
    "superblocks, because they record which replica is current). SPDK assembles that RAID again by itself when "
    "the member's bdev registers again: re-attach a remote replica, or restart the target for a local one. "
    "The module never clears superblocks, so a stale replica cannot be trusted by mistake")


class EngineRpcFailure(SpdkError):
    """An RPC failed; ``hint`` says what it means for an engine. Reported as the SpdkRpcError ``err``
    itself, with this hint."""

    def __init__(self, err, hint):
        super(EngineRpcFailure, self).__init__(str(err), method=err.method, code=err.code, hint=hint)
        self.err = err

    def fail(self, module, hint=None, **result):
        result = dict(self.result, **result)
        self.err.fail(module, hint=hint or self.hint, **result)


class MemberPass:
    """One pass over the node as it is now. ``run`` (an EngineRun) gives the node, the request, the
    recorder, what this run attached and added, and how to roll back and wait."""

    def __init__(self, run):
        self.run = run
        self.node = run.node
        self.request = run.request
        self.recorder = run.recorder
        self.unreachable = {}      # remote replica -> why its attach failed while the engine kept serving
        self.deferred = {}         # remote replica -> why it was not added back (its controller is not connected)
        self.controllers = None    # bdev_nvme_get_controllers of this pass, read only when needed
        self.created = False       # this pass created the RAID (in check mode: planned to)

    @property
    def kept_out(self):
        """The replicas this pass could not bring in."""
        return sorted(set(self.unreachable) | set(self.deferred))

    def apply(self):
        pending = self._attach()
        try:
            self._members(pending)
        except Exception:
            self.run.rollback()
            raise
        return self

    # --- attach -------------------------------------------------------------------
    def _attach(self):
        """Attach missing remote replicas, let examine re-assemble or re-add, read again. Returns the bdevs
        the attaches bring that the plans cannot see yet (check mode: every one of them)."""
        state = self.node.state
        if needs_controllers(state, self.request):
            self.controllers = self._read_controllers()
        brought = []
        for step in plan_attach(state, self.request, self.controllers):
            try:
                answer = self.recorder.send(self.node, step)
            except SpdkRpcError as err:
                if step.method != ATTACH or not self._serving():
                    self.run.rollback()
                    raise
                self.recorder.actions.pop()  # the attach changed nothing: the replica stays ERR
                self.unreachable[step.params["name"]] = err.describe()
                continue
            if step.method == ATTACH:
                brought.append(self._registered(step.params["name"], answer))
        if self.recorder.check_mode:
            return brought  # nothing was attached: the plans cannot see what the attaches bring
        if brought:
            self.node.client.call("bdev_wait_for_examine")
            self.node.reload()
        return []

    def _registered(self, controller, answer):
        """The bdev the attach of ``controller`` registered; refuses an attach that registered none."""
        bdev = controller + "n1"
        if self.recorder.check_mode:
            return bdev  # not attached: no answer to look at
        self.run.attached.append(controller)
        if bdev not in (answer or []):
            self.run.rollback()
            raise EngineRefusal(
                "controller %s attached, but SPDK registered no bdev %s (it answered %r): the replica's namespace "
                "UUID is already registered on this node - is the same replica attached under another controller "
                "name, or does its lvol live on this node (then give disk instead of address)?"
                % (controller, bdev, answer))
        return bdev

    def _serving(self):
        """The engine's RAID exists and serves I/O: a replica that cannot be reached only degrades it."""
        raid = self.node.state.raid(self.request.name)
        return raid is not None and raid.state == "online"

    def _read_controllers(self):
        """{controller name: model Controller} (one RPC, only when an attach or add may need it)."""
        return {c.name: c for c in self.node.with_part("controllers").controllers}

    # --- RAID -----------------------------------------------------------------------
    def _members(self, pending):
        """Create the RAID, or adopt it and fix its membership."""
        request, state = self.request, self.node.state
        status = EngineStatus(state, request)
        if status.raid is None:
            steps = plan_create(state, request, pending)
            try:
                self.recorder.run(self.node, steps)
            except SpdkRpcError as err:
                if err.is_exists():
                    raise EngineRpcFailure(err, SUPERBLOCK_CLASH_HINT)
                raise
            self.created = True
            self.node.reload(self.recorder.check_mode)
            return
        if status.raid.state != "online":
            self.run.warnings.append(
                "RAID %s is %s: SPDK waits for members its superblock lists (%d of %d present); bring back the "
                "replicas whose nodes are down, the engine serves no I/O until then"
                % (request.name, status.raid.state, status.raid.discovered or 0, status.raid.num_base_bdevs or 0))
        removals, adds = plan_membership(state, request, status, pending, self.unreachable)
        if removals and self.run.rebuild is not None:
            # every name a member goes by: a local lvol's member name is its UUID, its alias <disk>/<replica>
            self.run.rebuild.check_removals(set().union(*(bdev_refs(state, s.params["name"])[0] for s in removals)))
        adds = self._connected_only(adds, pending)
        wanted = {s.name for s in request.replicas}
        former = [r for r in self.run.recorded.get("replicas", []) if r.get("name") not in wanted]
        controllers = removed_controllers(state, request, status, former)
        self.recorder.run(self.node, removals)
        after_removal = without_members(state, request.name, {s.params["name"] for s in removals})
        detach, bdevs = detach_steps(after_removal, controllers)
        self.recorder.run(self.node, detach)
        self.run.wait_gone(bdevs)
        added = self._add(adds)
        if removals or detach or added:
            self.node.reload(self.recorder.check_mode)

    def _connected_only(self, adds, pending):
        """The adds whose member SPDK can read: a remote replica's controller must be connected.

        Reads the controllers (one RPC) only when an add of a replica this run did not attach is due.
        """
        remote = {s.bdev: s for s in self.request.remote_replicas}
        check = [remote[a.params["base_bdev"]] for a in adds if a.params["base_bdev"] in remote
                 and a.params["base_bdev"] not in pending and remote[a.params["base_bdev"]].controller
                 not in self.run.attached]
        if not check:
            return adds
        if self.controllers is None:
            self.controllers = self._read_controllers()
        for name, state in unconnected(check, self.controllers).items():
            self.deferred[name] = "its controller %s is not connected (%s)" % (name, state)
        out = {s.bdev for s in self.request.replicas if s.name in self.deferred}
        return [a for a in adds if a.params["base_bdev"] not in out]

    def _add(self, adds):
        """Add members one by one. A remote one whose controller drops between the read and the add answers -5
        and stays ERR, as if its controller had not been connected. Returns how many were added."""
        by_bdev = {s.bdev: s for s in self.request.replicas}
        added = 0
        for step in adds:
            spec = by_bdev[step.params["base_bdev"]]
            try:
                self.recorder.send(self.node, step)
            except SpdkRpcError as err:
                if spec.is_local or not is_connect_failure(err):
                    raise
                self.recorder.actions.pop()  # the add changed nothing
                self.deferred[spec.name] = "adding it to the RAID answered -5 (%s)" % err.message
                continue
            self.run.added.append(spec.name)
            added += 1
        return added

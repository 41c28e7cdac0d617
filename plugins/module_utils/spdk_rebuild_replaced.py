# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ReplacedRemoval: once the new replica is RW, the replaced replica is deleted as spdk_replica
state=absent deletes a replica: the engine node's controller to it, then on its node its export, its
head and its snapshots. Its node being unreachable (the usual reason to rebuild) or a refusal only
leaves a warning: the rebuild itself is done. Check mode before the join previews what it would
delete, planned as the node will be once the join took the replica out of the engine's RAID.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import bdev_refs, find_member
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import replica_nqn
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy_plan import with_why
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_join_plan import replaced_controller_steps
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    ABSENT,
    DISCONNECT_POLL,
    DISCONNECT_WAIT,
    DONE,
    FAILED,
    IN_USE,
    KEPT,
    PENDING,
    PLANNED,
    REMOVED,
    UNREACHABLE,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import (
    plan_replaced_removal,
    replaced_disk,
    without_raid,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import WaitTimeout


class ReplacedRemoval:
    """The removal of the replaced replica (``request.replace``), on a RebuildContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.request = ctx.request
        self.replaced = ctx.request.replace

    def report(self, state):
        """The result's ``removed_replica`` entry."""
        node = "engine node" if self.replaced.is_local else self.replaced.rpc_socket
        return {"name": self.replaced.name, "node": node, "state": state, "lvols": [], "export": None,
                "controller": self.ctx.replaced_controller, "error": None}

    def node(self):
        return self.ctx.engine if self.replaced.is_local else self.ctx.member_nodes[self.replaced.name]

    def remove(self):
        """Delete the replaced replica; what became of it goes to ``ctx.removed_replica``."""
        ctx = self.ctx
        if self.replaced is None:
            return
        if self.request.keep_replaced:
            ctx.removed_replica = self.report(KEPT)
            return
        slot = find_member(ctx.raid, bdev_refs(ctx.engine.state, self.replaced.bdev)[0])
        if slot is not None:
            self.left(IN_USE, "it is still a member of RAID %s (slot %s)" % (self.request.engine, slot["slot"]))
            return
        self.detach_controllers()
        report = ctx.removed_replica = self.report(PENDING)
        node = self.node()
        try:
            steps = self.plan(node, report)
            ctx.run(node, with_why(steps, " (the replaced replica)"))
        except SpdkConnectionError as err:
            self.left(UNREACHABLE, "its node (%s) cannot be reached: %s" % (report["node"], err))
            return
        except ops.SpdkRefusal as err:
            self.left(IN_USE, str(err))
            return
        except SpdkRpcError as err:
            self.left(FAILED, str(err))
            return
        if not steps:
            report["state"] = REMOVED if report["controller"] else ABSENT
            return
        report["state"] = PLANNED if ctx.check_mode else REMOVED
        if node is ctx.engine:
            ctx.reload(ctx.engine)

    def left(self, state, why):
        """The replaced replica stays on its node: say so, and how to remove it later."""
        ctx = self.ctx
        report = ctx.removed_replica = ctx.removed_replica or self.report(state)
        report.update(state=state, error=why)
        if ctx.state != DONE:      # check mode, before the join
            ctx.warnings.append("after the join the replaced replica %s could not be removed: %s"
                                % (self.replaced.name, why))
            return
        ctx.warnings.append(
            "the replaced replica %s was not removed: %s. The rebuild itself is done. What is left of it stays on "
            "its node (%s) until removed: run this rebuild again once that is fixed (it finds the new replica RW and "
            "only removes the replaced one), or spdk.storage.spdk_replica name=%s state=absent on that node"
            % (self.replaced.name, why, report["node"], self.replaced.name))

    def detach_controllers(self):
        """The engine node's controllers to the replaced replica, unless a RAID holds their namespace. The
        join usually detached them already."""
        ctx = self.ctx
        steps, bdevs = replaced_controller_steps(ctx.engine.state, self.replaced)
        for step in steps:
            ctx.send(ctx.engine, step)
            ctx.replaced_controller = step.params["name"]
        if bdevs:
            ctx.bdevs_gone(ctx.engine, bdevs)

    def plan(self, node, report, after_join=False):
        """Read the replaced replica's node and plan its removal; fills ``report`` with what goes.
        ``after_join``: plan it as it will be once the join took the replica out of the engine's RAID."""
        state = node.state if node is self.ctx.engine else ops.load_state(node.client)
        if after_join and state.has("raids"):
            state = without_raid(state, self.request.engine)
        disk = self.replaced.disk or replaced_disk(state, self.replaced.name)
        head = ops.find_head(state, self.replaced.name, disk) if disk else None
        if head is not None and not state.has("raids"):
            state = ops.with_raids(node.client, state)
        hosts = self.hosts_left(node, state, replica_nqn(self.replaced.name)) if head is not None else ()
        engines = (lambda: [self.request.engine]) if node is self.ctx.engine else None
        removal = plan_replaced_removal(state, self.replaced.name, disk, hosts, engines)
        report["lvols"] = [s.params["name"] for s in removal.steps if s.method == "bdev_lvol_delete"]
        if any(s.method == "nvmf_delete_subsystem" for s in removal.steps):
            report["export"] = replica_nqn(self.replaced.name)
        return removal.steps

    def hosts_left(self, node, state, nqn):
        """Hosts connected to the replaced export, once the engine node's own host left it (the target
        notices a detached controller a moment later; in check mode that detach is only planned)."""
        engine_host = self.request.host_nqn
        if self.ctx.check_mode:
            return [h for h in ops.connected_hosts(node.client, state, nqn) if h != engine_host]
        last = [None]

        def poll():
            last[0] = hosts = ops.connected_hosts(node.client, state, nqn)
            return None if hosts and set(hosts) == {engine_host} else hosts

        waiter = self.ctx.waiter(timeout=DISCONNECT_WAIT, interval=DISCONNECT_POLL)
        try:
            return waiter.until(poll, lambda: "host %s is still connected to %s" % (engine_host, nqn))
        except WaitTimeout:
            return last[0]

    def preview(self):
        """Check mode before the join: what the removal after it would delete (nothing is sent)."""
        ctx = self.ctx
        if self.replaced is None or self.request.keep_replaced:
            return
        report = ctx.removed_replica = self.report(PLANNED)
        if not self.replaced.is_local and ctx.engine.controller(self.replaced.name) is not None:
            report["controller"] = self.replaced.name
        try:
            if not self.plan(self.node(), report, after_join=True) and not report["controller"]:
                report["state"] = ABSENT
        except SpdkConnectionError as err:
            self.left(UNREACHABLE, "its node (%s) cannot be reached: %s" % (report["node"], err))
        except (ops.SpdkRefusal, SpdkRpcError) as err:
            self.left(IN_USE if isinstance(err, ops.SpdkRefusal) else FAILED, str(err))

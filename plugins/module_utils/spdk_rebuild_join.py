# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JoinPhase: the join step of a rebuild. The new head becomes a member of the engine's RAID.

Offline, the RAID is deleted (clearing its superblocks) and created again over the kept replicas and
the copy, all known identical, so nothing is copied. Online, the replaced replica leaves the RAID and
the new head is added; SPDK's RAID1 rebuild copies the whole volume into it, and the run waits for
that. Before either, LBA 0 of every head that joins is zeroed (spdk_superblock.py).

The decisions are the pure planners of spdk_rebuild_join_plan.py; this class sends their steps, reads
the engine node again after each change and polls the RAID. The join depends on what the copy made,
so it never runs in check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_rebuild_join_plan as plan
from ansible_collections.spdk.storage.plugins.module_utils import spdk_superblock as sb
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import detach_steps
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import RW
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import NQN_PREFIX, replica_nqn
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy import detach_dest_controller
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_copy_plan import with_why
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    DONE,
    REBUILDING,
    REPLICA_MODEL,
    RebuildError,
    is_system_snapshot,
    join_address,
    temp_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_plan import chain_names
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


class JoinPhase:
    """The join step of one run, on a RebuildContext."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.request = ctx.request
        self.engine = ctx.engine

    def run(self):
        ctx = self.ctx
        dest = self.request.destination
        ctx.dest_address = ctx.dest_address or self.current_dest_address()
        if ctx.dest.lvol(dest.disk, dest.replica) is None:
            raise RebuildError("the destination head %s/%s does not exist yet: run the copy step first"
                               % (dest.disk, dest.replica))
        self.attach_dest()
        if ctx.strategy == "offline":
            self.join_offline()
        else:
            self.join_online()

    def current_dest_address(self):
        if self.request.destination.is_local:
            return None
        exposure = self.ctx.dest.state.exposure(replica_nqn(self.request.destination.replica))
        if exposure is None or exposure.port is None:
            return None
        return join_address(exposure.listen_address, exposure.port)

    def attach(self, member, why):
        """Attach remote replica ``member`` on the engine node, wait for its bdev to be examined, read again."""
        self.ctx.send(self.engine, Step("bdev_nvme_attach_controller",
                                        member.attach_params(self.request.host_nqn, self.request.timeouts), why))
        self.engine.client.call("bdev_wait_for_examine")
        self.engine.load()

    def attach_dest(self):
        """The engine node sees the new head: its own lvol, or a controller named after the replica."""
        member = self.request.dest_member(self.ctx.dest_address)
        if member.is_local or self.engine.state.bdev_named(member.bdev) is not None:
            return
        if member.address is None:
            raise RebuildError("the new replica %s is not exported on the destination node: run the copy step "
                               "first" % member.name)
        if self.engine.controller(member.name) is not None:
            detach_dest_controller(self.ctx)
        self.attach(member, "attach the new replica %s from %s" % (member.name, member.address))

    # --- LBA 0 ------------------------------------------------------------------------------
    def zero_lba0(self, member):
        """Clear the old RAID superblock in LBA 0 of ``member``'s head (never of a head a RAID uses)."""
        if plan.raid_users(self.engine.state, member.bdev):
            raise RebuildError("refusing to write LBA 0 of %s: a RAID uses it" % member.bdev)
        what = "LBA 0 of %s" % member.name
        if not member.is_local:
            sb.clear_lba0(self.ctx.recorder, self.engine, what, RebuildError, controller=member.controller)
            return
        # A local head has no controller: export it on this node, attach that export, zero, remove both.
        if not self.request.listen_address:
            raise RebuildError("replica %s is local to the engine node: listen_address (this node's NVMe-oF "
                               "address) is needed for the temporary export that clears its LBA 0" % member.name)
        loopback = sb.Loopback(nqn=NQN_PREFIX + temp_name(member.name), controller=temp_name(member.name),
                               listen_address=self.request.listen_address, port_range=self.request.port_range,
                               host_nqn=self.request.host_nqn, model_number=REPLICA_MODEL)
        sb.clear_lba0(self.ctx.recorder, self.engine, what, RebuildError, loopback=loopback,
                      head=self.engine.lvol(member.disk, member.name))

    # --- offline ------------------------------------------------------------------------------
    def join_offline(self):
        """Delete the RAID and create it again over the kept members plus the copy: no data is copied."""
        ctx, request = self.ctx, self.request
        if ctx.frontend_live():
            raise RebuildError("the engine got a frontend during the offline rebuild: writes may have reached the "
                               "source after its system snapshot; set frontend none and run the rebuild again")
        source = ctx.source_replica()
        snapshot = ctx.snapshot = source.parent
        if snapshot != ctx.system_snapshot_name and not is_system_snapshot(snapshot):
            raise RebuildError("the source head %s is not a clone of a system snapshot: run the copy step first"
                               % source.name)
        members = self.offline_members(chain_names(source), snapshot, ctx.dest_disk().cluster_size)
        dest_member = request.dest_member(ctx.dest_address)
        raid = ctx.raid
        if raid is not None:
            self.zero_lba0(dest_member)
            former = [m for m in raid.members if m["configured"]]
            ctx.send(self.engine, plan.raid_delete_step(request.engine))
            self.engine.load()
            self.detach(plan.former_controllers(self.engine.state, former, members + [dest_member],
                                                request.replace))
            zero = []
        else:
            zero = members + [dest_member]      # resumed: clear every member, whatever it carries
        for member in zero:
            self.zero_lba0(member)
        ctx.send(self.engine, plan.raid_create_step(request.engine, members + [dest_member]))
        self.engine.load()
        ctx.state = DONE if ctx.is_done() else REBUILDING

    def offline_members(self, chain, snapshot, cluster):
        """Kept replicas known identical to the source; the destination is checked the same way."""
        ctx, request = self.ctx, self.request
        raid_present = ctx.raid is not None
        candidates, warnings = plan.offline_candidates(request.keep, ctx.rw_members(), request.source, raid_present,
                                                       request.engine)
        views = [ctx.replica_view(member) for member in candidates]
        members, more = plan.offline_members(candidates, views, chain, snapshot, cluster, raid_present,
                                             request.source)
        problem = plan.identity_problem(ctx.dest_replica(), chain, snapshot, cluster)
        if problem:
            raise RebuildError("the new replica %s is not identical to the source: %s" % (
                request.destination.replica, problem))
        ctx.warnings.extend(warnings + more)
        for member in members:
            if not raid_present and not member.is_local and self.engine.state.bdev_named(member.bdev) is None:
                self.attach_member(member)
        return members

    def attach_member(self, member):
        if member.address is None:
            raise RebuildError("replica %s is not attached on the engine node and its address is unknown: give "
                               "replicas[].address" % member.name)
        self.attach(member, "attach replica %s again" % member.name)
        if self.ctx.raid is not None:
            raise RebuildError("attaching replica %s made SPDK assemble RAID %s from its superblock: the RAID is "
                               "back, run the rebuild again" % (member.name, self.request.engine))

    def detach(self, controllers):
        """Detach ``controllers`` (the replaced replica's and other former members') unless a RAID holds them."""
        steps, bdevs = detach_steps(self.engine.state, controllers)
        for step in with_why(steps, " (replaced replica)"):
            self.ctx.send(self.engine, step)
            self.ctx.note_replaced_controller(step.params["name"])
        self.ctx.bdevs_gone(self.engine, bdevs)

    # --- online -------------------------------------------------------------------------------
    def join_online(self):
        """Free a slot (the replaced replica), clear the copy's LBA 0, add it: RAID1 rebuilds the head."""
        ctx, request = self.ctx, self.request
        raid = ctx.raid
        if raid is None or raid.state != "online":
            raise RebuildError("RAID %s is not online (%s): the online strategy adds the new replica to a serving "
                               "RAID" % (request.engine, raid.state if raid else "absent"))
        member = request.dest_member(ctx.dest_address)
        if ctx.dest_mode() is None:
            self.free_slot(raid)
            self.zero_lba0(member)
            ctx.run(self.engine, plan.plan_add(request.engine, member, request.bandwidth_mb_sec))
            self.engine.load()
        self.wait_rebuild()

    def free_slot(self, raid):
        """Take the replaced replica out of the RAID if it is still in; refuse when no slot is free."""
        ctx, request = self.ctx, self.request
        if ctx.run(self.engine, plan.plan_leave(self.engine.state, raid, request.replace, request.source,
                                                request.engine)):
            self.engine.load()
        if request.replace is not None and not request.replace.is_local:
            self.detach([request.replace.name])
        problem = plan.free_slot_problem(ctx.raid, request.engine)
        if problem:
            raise RebuildError(problem)

    def wait_rebuild(self):
        """Poll the RAID (one read each) until the new member is RW; with wait false, look once."""
        ctx = self.ctx
        start = ctx.clock()
        polls = []

        def poll():
            if polls:
                self.engine.state = NodeState(dict(self.engine.state.raw, **fetch(self.engine.client, ("raids",))))
            polls.append(1)
            mode = ctx.dest_mode()
            raid = ctx.raid
            ctx.sample(plan.rebuild_sample(mode, raid, ctx.clock() - start))
            if mode == RW:
                ctx.state = DONE
                ctx.rebuild_seconds = ctx.clock() - start
                return DONE
            if mode is None:
                raise RebuildError("the new replica left RAID %s during its rebuild: a write to it failed (its node or the "
                                   "link failed, or its disk %s is full); run the rebuild again once that is mended"
                                   % (self.request.engine, self.request.destination.disk))
            ctx.state = REBUILDING
            return None if ctx.wait else REBUILDING

        def describe():
            process = ctx.raid.process if ctx.raid else None
            return ("RAID %s is still rebuilding %s (%s%%) after %ss (wait_timeout); run again to wait more"
                    % (self.request.engine, self.request.destination.replica,
                       process["percent"] if process else "?", ctx.wait_timeout))

        ctx.waiter().until(poll, describe, error=RebuildError)

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""spdk_disk's executor: read the node, let spdk_disk_plan decide, send the steps through a StepRecorder.

A run that changes nothing reads once (one batch of spdk_model.DISK_PARTS, plus the usage reads
of ``state=absent`` on a disk with lvols). In check mode the client skips the mutating calls and
the run stops where the next decision would need what they return (see spdk_disk_plan).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_disk_plan as planner
from ansible_collections.spdk.storage.plugins.module_utils import spdk_model as model
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_request import rpc_hint
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import ClientNode, Step, StepRecorder


class DiskRun:
    """One run of spdk_disk against ``client`` for a DiskRequest."""

    def __init__(self, client, request, check_mode=False):
        self.client = client
        self.node = ClientNode(client)
        self.request = request
        self.recorder = StepRecorder(check_mode=check_mode)
        self.plan = planner.DiskPlan()
        self.warnings = []

    @property
    def check_mode(self):
        return self.recorder.check_mode

    @property
    def changed(self):
        return self.recorder.changed

    def read(self, parts=model.DISK_PARTS):
        return model.load_node(self.client, parts)

    def apply(self):
        """Plan and send; the module's result. An SpdkError carries the actions sent before it and this
        module's hint for a failed RPC."""
        with self.recorder.reporting():
            try:
                if self.request.state == "present":
                    self.present()
                else:
                    self.absent()
                disk = self.after()
            except SpdkError as err:
                err.hint = rpc_hint(err) or err.hint
                raise
        return dict(changed=self.changed, diff={"before": self.plan.before, "after": disk}, disk=disk,
                    actions=self.recorder.actions, removed_exports=self.plan.removed_exports)

    def send(self, plan):
        self.plan = plan
        self.warnings.extend(plan.warnings)
        self.recorder.run(self.node, plan.steps)

    def present(self):
        self.send(planner.plan_present(self.read(), self.request))
        if self.plan.examine is None:
            return
        if self.check_mode:     # nothing was attached: what the device holds cannot be known
            self.recorder.record(Step(None, None, self.plan.examine))
            return
        self.client.call("bdev_wait_for_examine")
        examined = planner.plan_examined(self.read(("lvstores",)), self.request, self.request.has_blobstore_signature)
        self.recorder.run(self.node, examined.steps)
        if examined.refusal is not None:
            raise examined.refusal

    def absent(self):
        state = self.read()
        extra = planner.absent_reads(state, self.request)
        if extra:
            state = model.NodeState(dict(state.raw, **model.fetch(self.client, extra)))
        self.send(planner.plan_absent(state, self.request))

    def after(self):
        """The disk after the run: read back when something changed, predicted in check mode."""
        if self.request.state == "absent":
            return {}
        if not self.changed:
            return self.plan.before
        if self.check_mode:
            return dict(self.plan.predicted or {})
        return planner.disk_view(self.read().disk(self.request.name))

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_snapshot
short_description: Create and delete snapshots of a replica on an SPDK target
version_added: 0.1.0
description:
  - Takes a snapshot of replica O(replica), stored as the read-only lvol C(<replica>-snap-<name>)
    in the replica's disk. The replica's head becomes a thin clone of the new snapshot.
  - Deletes such a snapshot. SPDK merges a deleted snapshot into its only child, so the data of
    the child stays intact. A snapshot with more than one child (for example a child snapshot and
    a clone) cannot be deleted, and the module refuses it with an explanation.
  - Returns the replica's snapshot tree.
  - This is the replica-level snapshot that rebuild steps use. Engine-level snapshots (the same
    snapshot on every replica of an engine) come with the engine modules.
  - One run that changes nothing sends three read RPCs, in one batch.
author:
  - spdk.storage contributors (@spdk-storage)
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the snapshot, unique per replica.
      - Same character rules as other names. C(<replica>-snap-<name>) must fit SPDK's 63-character
        lvol name limit.
    type: str
    required: true
  replica:
    description:
      - Name of the replica to snapshot.
    type: str
    required: true
  disk:
    description:
      - Disk (lvstore) of the replica. Only needed when replicas with this name exist on several disks.
    type: str
  state:
    description:
      - V(present) takes the snapshot unless it exists. V(absent) deletes it if it exists.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: spdk.storage.spdk_replica
  - module: spdk.storage.spdk_info
"""

EXAMPLES = r"""
- name: Snapshot replica vol1-r1 before an upgrade
  spdk.storage.spdk_snapshot:
    replica: vol1-r1
    name: before-upgrade

- name: Delete that snapshot (merged into its only child)
  spdk.storage.spdk_snapshot:
    replica: vol1-r1
    name: before-upgrade
    state: absent
"""

RETURN = r"""
snapshot:
  description: The snapshot after the run, or null when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Snapshot name.
      type: str
      sample: before-upgrade
    lvol_name:
      description: Name of the snapshot lvol.
      type: str
      sample: vol1-r1-snap-before-upgrade
    parent:
      description: Name of the parent snapshot, or null.
      type: str
    children:
      description: Lvol or snapshot names cloned from this snapshot. The head appears by replica name.
      type: list
      elements: str
    allocated_bytes:
      description: Bytes the snapshot itself owns.
      type: int
snapshots:
  description: The replica's snapshot tree after the run (or as it would be in check mode), parents first.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: daily-1, lvol_name: vol1-r1-snap-daily-1, parent: null, children: [daily-2],
       allocated_bytes: 4194304, allocated_clusters: 4}
    - {name: daily-2, lvol_name: vol1-r1-snap-daily-2, parent: daily-1, children: [vol1-r1],
       allocated_bytes: 2097152, allocated_clusters: 2}
replica:
  description: Name of the replica.
  returned: always
  type: str
  sample: vol1-r1
disk:
  description: Disk of the replica.
  returned: always
  type: str
  sample: disk1
actions:
  description: The RPCs the run sent (or would send in check mode), each with the reason.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import SpdkModule, spdk_main
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    replica=dict(type="str", required=True),
    disk=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


class ReplicaSnapshot:
    """Snapshot of one replica. An engine-level class with the same methods will sit next to it."""

    def __init__(self, params):
        self.request = ops.SnapshotRequest(name=params["name"], replica=params["replica"],
                                           disk=params["disk"], state=params["state"])

    def plan(self, client):
        return ops.plan_snapshot(ops.load_state(client), self.request)

    def result(self, client, plan, check_mode):
        """The tree after the run: predicted in check mode, read again after a change."""
        view = plan.after
        if plan.changed and not check_mode:
            replica, cluster_size = ops.find_replica(ops.load_state(client), self.request.replica,
                                                     self.request.disk)
            view = ops.snapshot_view(replica, cluster_size)
        mine = [s for s in view["snapshots"] if s["name"] == self.request.name]
        return dict(view, snapshot=mine[0] if mine else None)


@spdk_main
def main():
    module = SpdkModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        target = ReplicaSnapshot(module.params)
    except SpdkInputError as exc:
        module.fail_json(msg=str(exc))
    client = module.client
    try:
        plan = target.plan(client)
        ops.execute(client, plan)
        result = target.result(client, plan, module.check_mode)
    except (SpdkInputError, ops.SpdkRefusal) as exc:
        module.fail_json(msg=str(exc))
    except SpdkRpcError as err:
        module.fail_rpc(err)
    module.exit_with(changed=plan.changed, diff=plan.diff(), actions=[s.describe() for s in plan.steps], **result)


if __name__ == "__main__":
    main()

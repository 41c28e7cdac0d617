#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_replica
short_description: Create, grow, expose, stop and delete a replica (thin lvol) on an SPDK target
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - A replica is a thin head lvol named O(name) in the lvstore of disk O(disk), plus its snapshot
    lvols C(<name>-snap-<snapshot>) (see M(spdk.storage.spdk_snapshot)).
  - With O(expose=true) the head is exported over NVMe-oF/TCP as subsystem
    C(nqn.2026-01.io.spdk-storage:<name>) on O(listen_address) and a port, open only to
    O(allowed_hosts). The TCP transport is created when it is missing.
  - The module never shrinks a replica. Real SPDK shrinks the volume on disk even when it refuses
    the shrink with C(Device or resource busy), so a smaller O(size) fails and changes nothing.
  - Sizes are rounded up to the disk's cluster size (and to whole MiB) before they are compared,
    so running the module again with the same O(size) changes nothing.
  - After a restart, SPDK examines the replica's head and assembles a C(configuring) RAID around it from
    the engine's superblock; that RAID claims the head and SPDK then refuses to export it. Before a step
    that needs the head (export, grow, delete), the module deletes such a RAID (C(bdev_raid_delete) without
    C(clear_sb), so the superblock stays and the engine can tell the replica is stale) and reports it in
    RV(released_stray_raid). It only does so for a RAID that is C(configuring), carries a superblock, has
    only lvols of this node as members, and is not an engine of this node according to the node record.
    A RAID that serves I/O, or an engine of this node, is never touched; exporting its member fails clearly.
  - One run that changes nothing sends three read RPCs, in one batch.
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
options:
  name:
    description:
      - Name of the replica, which is also the name of its head lvol.
      - At most 63 characters from C([A-Za-z0-9_.-]), not starting with C(-) or C(.). It may not
        contain C(-snap-) or end with C(-rebuild) or C(-tmp). Those are kept for snapshot and
        rebuild volumes.
    type: str
    required: true
  disk:
    description:
      - Name of the disk (lvstore) that holds the replica. See M(spdk.storage.spdk_disk).
      - Required with O(state=present). With O(state=stopped) or O(state=absent) the replica is
        looked up on every disk when O(disk) is omitted.
    type: str
  size:
    description:
      - Size of the replica, in bytes or with a binary unit, for example V(512MiB) or V(10GiB).
      - Required to create the replica. If the replica exists and O(size) is larger, the replica
        grows. If O(size) is smaller, the module fails and changes nothing.
      - When it is omitted, the size of an existing replica is left as it is.
    type: str
  state:
    description:
      - V(present) creates the replica, or keeps an existing one, and grows it to O(size).
        It also exposes or unexposes the replica as O(expose) says.
      - V(stopped) unexposes the replica and keeps its data. The replica must exist.
      - V(absent) unexposes the replica and deletes its head and all its snapshots, children first.
        The module refuses while an engine uses the head (a member of a RAID on this node, or a host
        connected to its export) unless O(force=true).
    type: str
    choices: [present, stopped, absent]
    default: present
  expose:
    description:
      - With O(state=present), V(true) exports the head over NVMe-oF/TCP and V(false) deletes the
        export (connected hosts lose the volume).
      - When omitted, an existing export is left as it is.
    type: bool
  listen_address:
    description:
      - IPv4 or IPv6 address the export listens on, normally this node's storage-network address.
      - Required with O(expose=true).
    type: str
  port:
    description:
      - TCP port of the export.
      - Refused if another subsystem on this node already listens on it.
      - When omitted, an existing listener on O(listen_address) inside O(port_range) is kept.
        Otherwise the lowest port in O(port_range) that no subsystem on this node listens on is
        taken, so the same node state always gives the same port.
    type: int
  port_range:
    description:
      - Ports from which O(port) is allocated when it is not given, as V(LOW-HIGH), both included.
    type: str
    default: "4420-4499"
  allowed_hosts:
    description:
      - Host NQNs allowed to connect to the export, for example the engine node's host NQN.
      - The export's list of hosts becomes exactly this list. Missing hosts are added and the others
        are removed. SPDK disconnects a removed host at once.
      - Only used with O(expose=true).
    type: list
    elements: str
    default: []
  allow_any_host:
    description:
      - Let any host connect to the export, whatever O(allowed_hosts) says. Off unless asked.
      - Only used with O(expose=true).
    type: bool
    default: false
  force:
    description:
      - With O(state=absent), delete the replica even while an engine uses it. That engine loses
        this member and its RAID degrades.
    type: bool
    default: false
  clear_method:
    description:
      - How SPDK clears the head's clusters when the lvol is later deleted or shrunk, so that a new
        volume never shows this replica's old data.
      - V(write_zeroes) clears on every base bdev (SPDK writes zeroes when the device cannot).
        V(unmap) is faster but clears nothing on a base bdev without unmap support, for example
        an aio bdev created without C(fallocate).
      - Used when the head is created.
    type: str
    choices: [write_zeroes, unmap]
    default: write_zeroes
  node_name:
    description:
      - Name of this storage node. The node record C(<record_dir>/<node_name>.json) says which engines
        run here, so that their RAIDs are never mistaken for ones SPDK assembled on restart.
      - Defaults to this machine's short host name (as in M(spdk.storage.spdk_engine)).
    type: str
  record_dir:
    description:
      - Directory of the node record written by M(spdk.storage.spdk_engine). It is only read, and only when
        a RAID SPDK assembled on this node holds the replica. A missing record means no engine runs here;
        an unreadable one makes the module refuse to release the RAID.
      - An empty string disables the record; then every such RAID counts as a leftover of a restart.
    type: path
    default: /var/lib/spdk-storage
notes:
  - The export uses SPDK's default TCP transport options. Use M(spdk.storage.spdk_target) to create
    the transport with other options before the first export.
seealso:
  - module: spdk.storage.spdk_disk
  - module: spdk.storage.spdk_snapshot
  - module: spdk.storage.spdk_info
"""

EXAMPLES = r"""
- name: Create a 10 GiB replica and expose it to the engine node
  spdk.storage.spdk_replica:
    name: vol1-r1
    disk: disk1
    size: 10GiB
    expose: true
    listen_address: 192.0.2.11
    allowed_hosts:
      - nqn.2014-08.org.nvmexpress:uuid:6b49dbc7-3912-4826-8d38-71c66c5aa281

- name: Grow it to 20 GiB (a smaller size is refused)
  spdk.storage.spdk_replica:
    name: vol1-r1
    disk: disk1
    size: 20GiB

- name: Stop exposing it, keep the data
  spdk.storage.spdk_replica:
    name: vol1-r1
    state: stopped

- name: After a restart, export the replica again (a RAID SPDK assembled around it is released first)
  spdk.storage.spdk_replica:
    name: vol1-r1
    disk: disk1
    expose: true
    listen_address: 192.0.2.11
    allowed_hosts:
      - nqn.2026-01.io.spdk-storage:host:node1
    node_name: node2
  register: replica

- name: Delete it with its snapshots
  spdk.storage.spdk_replica:
    name: vol1-r1
    disk: disk1
    state: absent
"""

RETURN = r"""
replica:
  description:
    - The replica after the run, or what it would be in check mode.
    - Only RV(replica.state=absent) once the replica is deleted.
  returned: always
  type: dict
  contains:
    state:
      description: V(present) (exposed), V(stopped) (not exposed) or V(absent).
      type: str
      sample: present
    name:
      description: Replica name (head lvol name).
      type: str
      sample: vol1-r1
    disk:
      description: Disk (lvstore) holding the replica.
      type: str
      sample: disk1
    uuid:
      description: UUID of the head lvol (its bdev name). Unknown (null) in check mode before creation.
      type: str
      sample: 39648cde-8966-4ffc-9806-8d0dfd1c9170
    size:
      description: Size in bytes.
      type: int
      sample: 10737418240
    thin:
      description: Whether the head is thin provisioned.
      type: bool
      sample: true
    allocated_clusters:
      description: Clusters the head itself owns.
      type: int
      sample: 3
    snapshots:
      description: User-facing names of the replica's snapshots, parents first.
      type: list
      elements: str
      sample: [daily-1, daily-2]
    exposure:
      description: The NVMe-oF export, or null when not exposed.
      type: dict
      contains:
        nqn:
          description: Subsystem NQN.
          type: str
          sample: nqn.2026-01.io.spdk-storage:vol1-r1
        listen_address:
          description: Listener address.
          type: str
          sample: 192.0.2.11
        port:
          description: Listener port.
          type: int
          sample: 4420
        allowed_hosts:
          description: Host NQNs allowed to connect.
          type: list
          elements: str
        allow_any_host:
          description: Whether any host may connect.
          type: bool
released_stray_raid:
  description:
    - Name of the RAID that SPDK had assembled around the head on restart and that the run deleted (or would
      delete in check mode) to free the head; null when there was none. Its superblock is kept.
  returned: always
  type: str
  sample: vol1
actions:
  description: The RPCs the run sent (or would send in check mode), each with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "bdev_lvol_resize", "params": {"name": "disk1/vol1-r1", "size_in_mib": 20480},
            "why": "grow disk1/vol1-r1 from 10240 to 20480 MiB"}]
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import default_node_name, run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import ClientNode, StepRecorder

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    disk=dict(type="str"),
    size=dict(type="str"),
    state=dict(type="str", choices=["present", "stopped", "absent"], default="present"),
    expose=dict(type="bool"),
    listen_address=dict(type="str"),
    port=dict(type="int"),
    port_range=dict(type="str", default=nvmf.DEFAULT_PORT_RANGE),
    allowed_hosts=dict(type="list", elements="str", default=[]),
    allow_any_host=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    clear_method=dict(type="str", choices=list(ops.CLEAR_METHODS), default=ops.DEFAULT_CLEAR_METHOD),
    node_name=dict(type="str"),
    record_dir=dict(type="path", default=rec.DEFAULT_RECORD_DIR),
)
REQUIRED_IF = [("expose", True, ["listen_address"])]


def build_request(params):
    return ops.ReplicaRequest(
        name=params["name"], disk=params["disk"], size=params["size"], state=params["state"],
        expose=params["expose"], listen_address=params["listen_address"], port=params["port"],
        port_range=params["port_range"], allowed_hosts=params["allowed_hosts"],
        allow_any_host=params["allow_any_host"], force=params["force"], clear_method=params["clear_method"])


def engines_lookup(params):
    """A callable giving the engines this node runs, from the node record (read only when asked)."""
    def lookup():
        if not params["record_dir"]:
            return ()
        node = default_node_name(params["node_name"])
        try:
            record = rec.load(rec.record_path(params["record_dir"], node), node)
        except rec.RecordError as exc:
            raise ops.SpdkRefusal(
                "a RAID that SPDK assembled on this node holds replica %s, and the node record that says whether "
                "it is one of this node's engines cannot be read: %s. Fix the record (or give record_dir/node_name) "
                "and run again; nothing was changed" % (params["name"], exc))
        return tuple(record.engines)
    return lookup


def make_plan(client, request, engines):
    """Read the node (3 RPCs, plus the RAIDs when a claimed head must change) and plan."""
    state = ops.load_state(client)
    if request.state != "absent":
        if ops.holder_reads_needed(state, request):
            state = ops.with_raids(client, state)
        return ops.plan_replica(state, request, transport_lookup=lambda: nvmf.transport_exists(client),
                                engines_lookup=engines)
    if request.force or not ops.usage_reads_needed(state, request):
        return ops.plan_absent(state, request)
    state = ops.with_raids(client, state)
    return ops.plan_absent(state, request, connected_hosts=ops.connected_hosts(client, state, request.nqn),
                           engines_lookup=engines)


def result_view(client, request, plan, check_mode):
    """The replica as it is after the run (read again only if something changed)."""
    if request.state == "absent":
        return {"state": "absent"}
    if check_mode or not plan.changed:
        return dict(plan.after, **_details(plan.before_replica))
    state = ops.load_state(client)
    head = ops.find_head(state, request.name, request.disk)
    replica = state.replica(head.lvstore, head.name)
    return dict(ops.replica_view(replica), **_details(replica))


def _details(replica):
    if replica is None:
        return {"uuid": None, "thin": True, "allocated_clusters": 0}
    return {"uuid": replica.head.uuid, "thin": replica.head.thin,
            "allocated_clusters": replica.head.allocated_clusters}


def run(module):
    """Read, plan, apply; the module's result."""
    request = build_request(module.params)
    client = module.client
    plan = make_plan(client, request, engines_lookup(module.params))
    for warning in plan.warnings:
        module.warn(warning)
    recorder = StepRecorder(check_mode=module.check_mode)
    with recorder.reporting():     # a failure reports the actions sent before it
        recorder.run(ClientNode(client), plan.steps)
        replica = result_view(client, request, plan, module.check_mode)
    return dict(changed=plan.changed, diff=plan.diff(), replica=replica, released_stray_raid=plan.released_stray_raid,
                actions=recorder.actions)


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)


if __name__ == "__main__":
    main()

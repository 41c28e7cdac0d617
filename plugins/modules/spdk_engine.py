#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_engine
short_description: Create, adopt, repair and delete a replicated volume engine (RAID1 over replicas) on an SPDK target
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - An engine is a RAID1 bdev named O(name) over the volume's replicas, on the engine node (the node whose
    C(spdk_tgt) this module talks to), plus its frontend.
  - A local replica (O(replicas[].disk)) joins the RAID directly. A remote replica (O(replicas[].address)) is
    attached over NVMe-oF/TCP as a controller named after the replica, with explicit
    O(ctrlr_loss_timeout_sec), O(reconnect_delay_sec) and O(fast_io_fail_timeout_sec), so that a dead replica
    leaves the RAID instead of stalling it.
  - The RAID always carries SPDK's superblock, the authority on which replica is up to date. Replicas are
    attached first; a RAID that SPDK assembled from the superblocks (after a restart) is adopted as it is and
    never created again over members its superblocks do not vouch for. A wanted replica missing from the RAID is
    added with C(bdev_raid_add_base_bdev), which makes SPDK copy the whole volume into it (mode C(WO) with
    progress until done).
  - A remote replica whose controller is not connected (its node is unreachable, and the controller waits to
    reconnect until O(ctrlr_loss_timeout_sec)) is not added, because SPDK could not read it (its bdev is still
    there). It stays C(ERR) with a warning, as does one whose add answers -5 because the connection dropped
    meanwhile; run the module again when the node is back, or use O(wait=true).
  - A replica dropped from O(replicas) is taken out of the RAID, then its controller is detached and the module
    waits until its bdev is gone. It refuses to remove the last up-to-date replica.
  - All replicas must have the same size, at least O(size) plus 1 MiB for the RAID superblock. A mismatch fails
    before the RAID is created and detaches the controllers this run attached.
  - Health comes from the RAID's real membership (C(bdev_raid_get_bdevs)) compared with O(replicas). Each
    replica is C(RW) (member), C(WO) (being rebuilt) or C(ERR) (missing); the engine is C(healthy) (all RW),
    C(degraded) (some RW) or C(faulted) (none, or no RAID serving I/O).
  - O(state=absent) removes the frontend, deletes the RAID and detaches the remote replicas' controllers. It never
    deletes replica data, and it keeps the members' superblocks (C(clear_sb=false)), so the engine can be
    assembled again from them without trusting a stale replica.
  - One run that changes nothing sends three read RPCs, in one batch.
  - The module keeps the engine's intended replica set and frontend port in the node record
    C(<record_dir>/<node_name>.json) (a cache of intent, written atomically; see docs/ENGINE.md).
  - The node record also holds the journal of the engine's latest rebuild (M(spdk.storage.spdk_replica_rebuild)).
    Once that rebuild is done, O(replicas) from before it (the new replica missing, or the replaced one listed) is
    refused before any RPC, and no run removes from the RAID the replica a rebuild put there. While a rebuild is
    unfinished, a repair over the replicas it had is allowed and warns with the run that finishes the rebuild.
    After the new list was given once, only a list naming the replaced replica without the new one is refused.
    O(state=absent) removes the entry (docs/REBUILD.md).
  - A frontend other than V(none) makes the node record forget the engine's finished reverts, so that a later revert
    to the same snapshot reverts again (hosts may have written since).
  - O(state=present) is refused before any RPC while the node record holds the volume's tombstone
    (M(spdk.storage.spdk_tombstone)). Its deletion began, and C(delete_volume.yml) run again finishes it.
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
  - spdk.storage.spdk.replicas
  - spdk.storage.spdk.wait
  - spdk.storage.spdk_engine_node
  - spdk.storage.spdk.lock
options:
  name:
    description:
      - Name of the engine, which is also the name of its RAID bdev. The frontend's NQN is
        C(nqn.2026-01.io.spdk-storage:<name>), stable for the volume so hosts can reconnect.
      - At most 63 characters from C([A-Za-z0-9_.-]), not starting with C(-) or C(.).
    type: str
    required: true
  size:
    description:
      - Size of the volume, in bytes or with a binary unit (V(10GiB)).
      - Every replica must be at least this size plus 1 MiB (the RAID superblock area).
      - Growing an existing engine is not done by this module; a smaller RAID than O(size) fails.
    type: str
  replicas:
    description:
      - The replicas the engine should have, in RAID slot order at creation. Required with O(state=present),
        at least two (the minimum of SPDK's RAID1).
      - A local replica joins the RAID directly; a remote one is attached from O(replicas[].address), whose export
        must allow O(host_nqn). O(replicas[].rpc_socket) is kept in the node record and returned, for
        engine-level operations that touch every replica.
      - With O(state=absent), listed remote replicas have their controllers detached (as do those in the node
        record and the RAID).
    default: []
  frontend:
    description:
      - V(nvmf) exports the RAID as NVMe-oF/TCP subsystem C(nqn.2026-01.io.spdk-storage:<name>) on
        O(listen_address), with ANA reporting on (the namespace in ANA group 1, group 2 kept inaccessible for
        snapshot pauses) and only O(allowed_hosts) allowed. The TCP transport is created when missing.
      - V(blockdev) does the same and connects this node's kernel NVMe/TCP host to it (C(nvme connect)), returning
        the block device. It needs nvme-cli and the nvme-tcp kernel module on the engine node and fails clearly,
        before any change, without them.
      - V(none) removes the frontend (maintenance mode, for example to revert).
    type: str
    choices: [nvmf, none, blockdev]
    default: nvmf
  listen_address:
    description: IPv4 or IPv6 address the frontend listens on. Required unless O(frontend=none).
  port:
    description:
      - TCP port of the frontend. When omitted, an existing listener is kept, else the port recorded for this
        engine, else the lowest port in O(port_range) that no subsystem on this node uses.
    type: int
  port_range:
    description: Ports from which O(port) is chosen, as V(LOW-HIGH).
  allowed_hosts:
    description:
      - Host NQNs allowed to connect to the frontend; the subsystem's list becomes exactly this list (plus this
        node's kernel host NQN with O(frontend=blockdev)).
    type: list
    elements: str
    default: []
  state:
    description:
      - V(present) creates or adopts the engine and makes membership and frontend match the options.
      - V(absent) removes frontend, RAID and controllers; replica data and superblocks stay.
    type: str
    choices: [present, absent]
    default: present
  forget_snapshots:
    description:
      - With O(state=absent), also remove the engine's snapshot entries (their creation times, replica
        snapshot UUIDs and any revert marker) from the node record, for a volume that is deleted together with
        its replicas (C(delete_volume.yml) does so).
      - Leave it V(false) when the replicas stay, since their snapshots stay too and a later engine over them
        uses those entries.
    type: bool
    default: false
  wait:
    default: false
  wait_timeout:
    default: 300
  wait_sleep:
    default: 1
attributes:
  check_mode:
    support: partial
    details:
      - Only reading RPCs are sent; the steps are planned from the target's current state and returned in
        RV(actions), and RV(engine) shows the node as it is now.
      - A remote replica that is not attached yet is planned as attached, but what the attach brings is known only
        once it ran, so check mode cannot predict it. It does not know the replica's size, so a size mismatch only
        fails the real run. It does not know whether SPDK's examine then assembles the RAID, or re-adds the replica
        from its superblock, by itself, so the plan may show a RAID creation or an add that the real run does not
        send.
      - Check mode does not wait (O(wait)), and with O(frontend=blockdev) it reports the C(nvme connect) without a
        device.
notes:
  - "What O(wait=true) waits for, with O(state=present): a replica kept out because its node is unreachable is
    tried again every O(wait_sleep) seconds (its controller reconnects, or is dropped and attached again) and
    added once it can be read; then the run polls the RAID every O(wait_sleep) seconds until every replica is
    C(RW) (rebuilds finished) and every remote replica's controller is connected (a member whose target just
    restarted stays listed C(RW) while its controller reconnects, and the loss timeout may still drop it; such a
    drop is repaired like the first pass). All of it takes at most O(wait_timeout) seconds."
  - Without O(wait) too, a run that detaches a controller waits up to O(wait_timeout) seconds for its bdev to
    disappear.
  - Engine snapshots (M(spdk.storage.spdk_snapshot) with an engine) pause the frontend with ANA; SPDK hosts retry
    transparently. The Linux kernel initiator's behaviour during such a pause is not verified here.
  - Run it on the engine node. Replicas are created and exposed on their own nodes with
    M(spdk.storage.spdk_replica) (allowing O(host_nqn)).
seealso:
  - module: spdk.storage.spdk_replica
  - module: spdk.storage.spdk_info
"""

EXAMPLES = r"""
- name: Volume vol1 over a local and two remote replicas, exported to one host
  spdk.storage.spdk_engine:
    name: vol1
    size: 10GiB
    replicas:
      - name: vol1-r1
        disk: disk1
      - name: vol1-r2
        address: 192.0.2.12:4421
      - name: vol1-r3
        address: 192.0.2.13:4421
    frontend: nvmf
    listen_address: 192.0.2.11
    allowed_hosts:
      - nqn.2014-08.org.nvmexpress:uuid:6b49dbc7-3912-4826-8d38-71c66c5aa281
    node_name: node1

- name: After a node came back, re-attach its replica and wait for the rebuild
  spdk.storage.spdk_engine:
    name: vol1
    replicas: "{{ vol1_replicas }}"
    listen_address: 192.0.2.11
    node_name: node1
    wait: true
    wait_timeout: 1800

- name: Maintenance mode (no frontend)
  spdk.storage.spdk_engine:
    name: vol1
    replicas: "{{ vol1_replicas }}"
    frontend: none
    node_name: node1

- name: Delete the engine (replicas keep their data)
  spdk.storage.spdk_engine:
    name: vol1
    state: absent
    node_name: node1
"""

RETURN = r"""
engine:
  description: The engine after the run (in check mode, the node as it is now). Only RV(engine.state=absent)
    once it is deleted.
  returned: always
  type: dict
  contains:
    name:
      description: Engine name.
      type: str
      sample: vol1
    state:
      description: V(healthy), V(degraded), V(faulted) or V(absent).
      type: str
      sample: healthy
    size:
      description: Size of the RAID bdev in bytes (the volume), or null when no RAID serves I/O.
      type: int
      sample: 10737418240
    raid:
      description: The RAID as SPDK reports it (state, uuid, superblock, member counts, process), or null.
      type: dict
    replicas:
      description: Each wanted replica with its C(mode) (V(RW), V(WO), V(ERR)), bdev, slot, size and C(rebuild)
        progress (C(percent), C(blocks)) while it is rebuilt.
      type: list
      elements: dict
      sample: [{"name": "vol1-r1", "disk": "disk1", "mode": "RW", "bdev": "disk1/vol1-r1", "present": true,
                "size": 10738466816, "slot": 0, "rebuild": null}]
    extra_members:
      description: RAID members that are none of the wanted replicas (left only when removing them was refused).
      type: list
      elements: str
    frontend:
      description: The frontend subsystem (C(nqn), C(listen_address), C(port), C(allowed_hosts), C(ana_group),
        C(device) for V(blockdev)), or null.
      type: dict
    host_nqn:
      description: The NQN this node presents to remote replicas.
      type: str
actions:
  description: The mutating steps the run sent (or would send in check mode), each with the reason.
  returned: always
  type: list
  elements: dict
messages:
  description:
    - One line per replica being rebuilt, saying who started the rebuild, so that playbooks can show it. Either this
      run (it added the replica), SPDK itself (it re-added a stale replica from its superblock when the replica's
      bdev registered, for example when this run attached it), or something before this run.
    - With O(wait=true), a line for each of them once its rebuild finished.
  returned: always
  type: list
  elements: str
  sample: ["vol1-r3: SPDK re-added it from its superblock, rebuilding (25%)"]
record:
  description: Path of the node record and whether this run wrote it.
  returned: always
  type: dict
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import (
    default_node_name,
    engine_node_options,
    engine_node_request,
    replicas_option,
    run_module,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_initiator import KernelInitiator
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import (
    FRONTENDS,
    EngineRequest,
    check_against_the_record,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_run import EngineRun
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import ABSENT
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_journal import APPLIED, DONE, RebuildEntry
from ansible_collections.spdk.storage.plugins.module_utils.spdk_tombstone import refuse_if_deleting
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import (
    VolumeLock,
    check_lock_timeout,
    lock_argument_spec,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import wait_argument_spec

ARGUMENT_SPEC = engine_node_options(
    wait_argument_spec(wait=False, wait_timeout=300, wait_sleep=1),
    name=dict(type="str", required=True),
    size=dict(type="str"),
    replicas=replicas_option(default=[]),
    frontend=dict(type="str", choices=list(FRONTENDS), default="nvmf"),
    port=dict(type="int"),
    allowed_hosts=dict(type="list", elements="str", default=[]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    forget_snapshots=dict(type="bool", default=False),
    **lock_argument_spec()
)
REQUIRED_IF = [("state", "present", ["replicas"])]


def node_name(params):
    return default_node_name(params["node_name"])


def build_request(params):
    """The checked request; the wait options are checked first. Nothing here sends an RPC."""
    return EngineRequest(
        name=params["name"], replicas=params["replicas"], size=params["size"], state=params["state"],
        frontend=params["frontend"], port=params["port"], allowed_hosts=params["allowed_hosts"],
        **engine_node_request(params))


class Record:
    """The node record as this module uses it: read once, updated after a successful run."""

    def __init__(self, module, request):
        self.module = module
        self.request = request
        directory = module.params["record_dir"]
        self.path = rec.record_path(directory, node_name(module.params)) if directory else None
        self.written = False
        self.engine = {}
        self.snapshots = {}      # the engine's snapshot entries (an unfinished revert's marker among them)
        self.rebuild = None      # the engine's rebuild journal entry (RebuildEntry), if a rebuild wrote one
        self.usable = self.path is not None
        if self.usable:
            try:
                record = rec.load(self.path, node_name(module.params))
            except rec.RecordError as exc:
                module.warn("%s; the engine is managed without it and the record is not updated" % exc)
                self.usable = False
                return
            self.engine = record.engine(request.name) or {}
            self.snapshots = record.snapshots_of(request.name)
            self.rebuild = RebuildEntry.of(request.name, record.rebuild(request.name))

    def save(self, status):
        if not self.usable or self.module.check_mode:
            return
        request = self.request

        def change(record):
            if request.state == "absent":
                record.remove_engine(request.name)
                record.remove_exposure(request.nqn)
                record.remove_rebuild(request.name)
                if self.module.params["forget_snapshots"]:
                    record.forget_snapshots(request.name)
                return
            if self.rebuild is not None and self.rebuild.state == DONE \
                    and self.rebuild.replicas_after([r.name for r in request.replicas]):
                self.rebuild.state = APPLIED     # the list after the rebuild was given: see RebuildEntry.is_stale
                record.set_rebuild(request.name, self.rebuild.to_dict())
            frontend = status.frontend_view()
            if request.frontend != "none":
                # hosts can write through the frontend: a revert finished before is no proof of the data now
                record.forget_finished_reverts(request.name)
            record.set_engine(request.name, {
                "replicas": self.confirmed_replicas(), "frontend": request.frontend,
                "nqn": request.nqn, "size": request.size, "host_nqn": request.host_nqn,
                # what a later re-attach of a member (engine revert) must use again
                "controller_timeouts": dict(request.timeouts),
                "frontend_port": frontend["port"] if frontend else self.engine.get("frontend_port")})
            if frontend is None:
                record.remove_exposure(request.nqn)
            else:
                record.set_exposure(request.nqn, {"kind": "engine", "bdev": request.name,
                                                  "listen_address": frontend["listen_address"],
                                                  "port": frontend["port"]})
        try:
            _record, self.written = rec.update(self.path, node_name(self.module.params), change)
        except rec.RecordError as exc:
            self.module.warn(str(exc))

    def confirmed_replicas(self):
        """The replicas to record. A remote replica's rpc_socket is what later engine snapshots and rebuilds
        use to reach its node, so a new one is recorded only once its target answered there; otherwise the
        one recorded before is kept (or none), with a warning."""
        before = {r.get("name"): r.get("rpc_socket") for r in self.engine.get("replicas") or []}
        out = []
        for ref in self.request.replicas:
            entry = ref.to_dict()
            socket = entry.get("rpc_socket")
            if socket and socket != before.get(ref.name) and not self.answers(socket):
                entry.pop("rpc_socket")
                if before.get(ref.name):
                    entry["rpc_socket"] = before[ref.name]
                self.module.warn("replica %s: no SPDK target answers at rpc_socket %s, so the node record keeps %s "
                                 "for it" % (ref.name, socket, before.get(ref.name) or "no rpc_socket"))
            out.append(entry)
        return out

    def answers(self, socket):
        client = self.module.connect(socket)
        try:
            client.timeout = min(client.timeout, 5.0)
            client.call("spdk_get_version")
            return True
        except SpdkError:
            return False
        finally:
            client.close()

    def view(self):
        return {"path": self.path, "written": self.written}


def run(module):
    request = build_request(module.params)
    if request.state == "present":          # deleting is how a delete cut off is finished
        refuse_if_deleting(module.params["record_dir"], node_name(module.params), request.name,
                           "spdk_engine state=present of %s" % request.name)
    record = Record(module, request)
    reverting, warnings = check_against_the_record(request, record.engine, record.snapshots, record.rebuild)
    for warning in warnings:
        module.warn(warning)
    engine = EngineRun(module.client, request, check_mode=module.check_mode, recorded=record.engine,
                       initiator=KernelInitiator(module.run_command, module.get_bin_path),
                       wait_timeout=module.params["wait_timeout"], wait_sleep=module.params["wait_sleep"],
                       lock=lambda operation: VolumeLock(module.client, request.name, operation),
                       lock_timeout=check_lock_timeout(module.params["lock_timeout"]), unfinished_revert=reverting,
                       rebuild=record.rebuild)
    try:
        if request.state == "absent":
            engine.absent()
            status, view = None, {"name": request.name, "state": ABSENT}
        else:
            status = engine.present(wait=module.params["wait"])
            view = status.to_dict(engine.device)
    finally:
        for warning in dict.fromkeys(engine.warnings):     # a run that waited for the lock planned twice
            module.warn(warning)
    record.save(status)
    # check mode writes no record: say whether the real run would forget snapshot entries
    forgets = module.check_mode and request.state == "absent" and module.params["forget_snapshots"] and record.snapshots
    return dict(changed=engine.changed or record.written or bool(forgets),
                diff={"before": engine.before, "after": engine.intent_after(view)},
                engine=view, actions=engine.actions, messages=engine.messages, record=record.view())


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_replica_rebuild
short_description: Rebuild a replica of an engine on another node (snapshot chain copy, then RAID join)
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - Makes a new replica O(destination.replica) on disk O(destination.disk) of the destination node hold the
    same data and the same snapshot chain as the up-to-date replica O(source), and makes it a member of engine
    O(engine) in place of O(replace). Run it on the engine node; the source and destination nodes are reached
    through their O(replicas[].rpc_socket) and O(destination.rpc_socket). docs/REBUILD.md has the details.
  - The source's snapshot chain is copied oldest first with C(bdev_lvol_start_shallow_copy) over NVMe-oF
    (only the clusters each snapshot owns), each level into a clone of the destination's copy of the level
    below, then snapshotted under the same snapshot name. The new head is a clone of the copy of the source
    head's parent, exported to the engine node like M(spdk.storage.spdk_replica) does.
  - V(offline) (the engine has no frontend, so no I/O) takes a system snapshot C(rb-<UTC time>) of every up-to-date
    replica first and copies it too; then the RAID is deleted (clearing its superblocks), LBA 0 of the
    new head (the old superblock read through from the copy) is zeroed with C(bdev_nvme_send_cmd), and the RAID
    is created again over the kept replicas and the new one. Nothing is copied by the RAID, so a thin replica
    stays thin (the new replica owns exactly the source's allocated clusters).
  - V(online) (a frontend serves I/O) copies the older snapshots first, then the new head joins the RAID
    with C(bdev_raid_add_base_bdev) and SPDK's RAID1 rebuild copies the whole volume into it (the head ends
    fully allocated); O(bandwidth_mb_sec) caps that copy. The replaced replica leaves the RAID first.
  - Once the new replica is C(RW) in an online RAID, the V(join) and V(all) steps remove the replaced replica
    (O(replace)) unless O(keep_replaced). They detach the engine node's controller to it, then delete on its
    node its export, its head and its snapshots (what M(spdk.storage.spdk_replica) C(state=absent) deletes).
    Its node being unreachable (a dead node, the usual reason to rebuild) does not fail the run, nor does a
    host other than the engine node still connected to its export; RV(rebuild.removed_replica) and a warning
    say what stays and how to remove it later.
  - Then the system snapshots (C(rb-<UTC time>), or noted kind system in the record) in the chains of the
    RAID's members are deleted on every member, which SPDK does by merging each into its one child. What
    every lvol reads stays the same, the replicas keep identical snapshot sets and a thin replica stays thin.
    This needs the RAID online, rebuilding nothing, with every member one this run reaches; otherwise they
    stay, with a warning, until a later run. A system snapshot that has a clone of its own stays on every
    replica.
  - A run with work left (V(plan) and check mode too) refuses, before any change, a destination disk with
    fewer free clusters than the rebuild still allocates there (the snapshot copies, plus the whole head
    V(online) or its superblock area V(offline)); the message gives both figures.
  - Every step reads the state first and is resumable; a run interrupted at any point (or a target killed)
    converges when run again, and the transient lvol C(<destination>-rebuild), its export and controller are
    removed. A copy whose result the source target forgot (it reports a result once) is copied again. A run
    that finds the new replica C(RW) finishes the removal of the replaced replica and the merge.
  - One run that finds the rebuild finished and the replaced replica gone sends its reads only (five on the
    engine node, four on the destination node, three on the replaced replica's node) and removes leftovers.
extends_documentation_fragment: [spdk.storage.spdk, spdk.storage.spdk.attributes, spdk.storage.spdk.replicas,
                                 spdk.storage.spdk.wait, spdk.storage.spdk_engine_node, spdk.storage.spdk.lock]
options:
  engine:
    description: Name of the engine (its RAID1 bdev on the engine node, the node of O(rpc_socket)).
    type: str
    required: true
  replicas:
    description:
      - The engine's current replicas (as for M(spdk.storage.spdk_engine)), including O(source) and O(replace).
      - O(replicas[].address) of a remote replica is used to attach it on the engine node when it is not
        attached (resuming an offline rebuild).
    required: true
  source:
    description: The up-to-date replica (mode C(RW)) whose data and snapshots are copied; one of O(replicas).
    type: str
    required: true
  replace:
    description:
      - The replica the new one replaces (one of O(replicas)), typically the failed one. It leaves the RAID, and
        once the new replica is C(RW) it is deleted from its node (see O(keep_replaced)). Without it the RAID
        must have an empty slot (online) and every other replica stays (offline).
    type: str
  keep_replaced:
    description:
      - Keep the replaced replica (O(replace)) on its node, with its export, instead of deleting it once the
        new replica is C(RW). Its data then stays until M(spdk.storage.spdk_replica) C(state=absent) removes it,
        and a later rebuild onto that node under the same replica name is refused until then.
    type: bool
    default: false
  destination:
    description: Where the new replica is made.
    type: dict
    required: true
    suboptions:
      replica:
        description: Name of the new replica (its head lvol). Must not be one of O(replicas).
        type: str
        required: true
      disk:
        description: Disk (lvstore) on the destination node.
        type: str
        required: true
      rpc_socket:
        description: How to reach the destination node; omit it when the destination is the engine node.
        type: str
      listen_address:
        description: The destination node's NVMe-oF/TCP address (the copy and the engine reach the replica there).
        type: str
        required: true
      port:
        description: Port of the new replica's export; by default the lowest free port of O(destination.port_range).
        type: int
      port_range:
        description: Ports the destination's exports are allocated from.
        type: str
        default: "4420-4499"
  strategy:
    description:
      - V(auto) picks V(offline) when the engine has no frontend and V(online) when it has one.
      - V(offline) is refused while the engine has a frontend.
    type: str
    choices: [auto, offline, online]
    default: auto
  step:
    description:
      - V(plan) only reads and returns the plan. V(copy) takes the system snapshot (offline), copies the chain and
        makes and exports the new head. V(join) makes it an engine member. V(all) does both.
    type: str
    choices: [plan, copy, join, all]
    default: all
  system_snapshot:
    description:
      - Name of the offline strategy's system snapshot. By default the source head's parent is reused when it
        is a system snapshot with nothing written after it, else a new C(rb-<UTC time>) is taken.
    type: str
  bandwidth_mb_sec:
    description: Online only, the RAID rebuild's bandwidth limit (C(bdev_raid_set_options)); V(0) is unlimited.
    type: int
  wait:
    default: true
  wait_timeout:
    default: 3600
  wait_sleep:
    default: 1.0
  listen_address:
    description:
      - The engine node's NVMe-oF/TCP address. Needed when a replica on the engine node must have LBA 0 zeroed (a
        temporary export of it, attached by the node itself).
  port_range:
    description: Ports for that temporary export on the engine node.
  record_dir:
    description:
      - Directory of the engine node's record, where the system snapshot is noted; empty disables it.
      - The record also keeps the rebuild's journal entry, C(running) from the first change and C(done) once the
        new replica is RW. M(spdk.storage.spdk_engine) reads it, so it never takes the new replica out of the RAID
        because of a replica list from before the rebuild, and a repair during an unfinished rebuild says how
        to finish it. Its first run with the new list marks the entry C(applied); its deletion of the engine
        removes the entry.
      - A rebuild is refused before any RPC while the record holds the volume's tombstone
        (M(spdk.storage.spdk_tombstone)). Its deletion began, and C(delete_volume.yml) run again finishes it.
attributes:
  check_mode:
    support: partial
    details:
      - Reads only, and lists in RV(actions) the copy step's actions as a run would send them from the state
        read. What depends on the answers of earlier steps cannot be predicted. The transient lvol, the
        copies and the new head are made only then, so their names are listed but not their UUIDs or the
        copy's progress and result. A system snapshot not taken yet is listed as a C((copy)) placeholder.
        Leftovers an interrupted run would remove after the copy are not listed.
      - The join step depends on what the copy creates and is only described (a warning says so);
        RV(rebuild.removed_replica) says what the removal after it would delete.
      - When the rebuild is finished, the removal of the replaced replica and the merge of the system snapshots
        are listed in RV(actions).
notes:
  - The copy of each snapshot is always waited for, up to O(wait_timeout) per snapshot, polling its progress
    first after a few milliseconds and then every O(wait_sleep). O(wait) says whether the module also waits
    until SPDK's RAID rebuild of the new replica (online strategy) finished, up to O(wait_timeout); with
    O(wait=false) it returns RV(rebuild.state=rebuilding) and a later run waits again.
  - After the join, run M(spdk.storage.spdk_engine) with the new replica list (RV(rebuild.replica) replaces
    O(replace)) so the engine's record and frontend follow; playbooks/rebuild_replica.yml does all of it.
    Until then M(spdk.storage.spdk_engine) refuses the list from before the rebuild (see O(record_dir)).
  - Engine snapshots must not be taken while the rebuild runs; M(spdk.storage.spdk_snapshot) refuses them while a
    replica is C(WO).
seealso:
  - module: spdk.storage.spdk_engine
  - module: spdk.storage.spdk_snapshot
"""

EXAMPLES = r"""
- name: Rebuild vol1's replica of node2 on node3 from node1's
  spdk.storage.spdk_replica_rebuild:
    engine: vol1
    node_name: node1
    listen_address: 192.0.2.11
    replicas:
      - name: vol1-node1
        disk: disk1
      - name: vol1-node2
        address: 192.0.2.12:4421
        rpc_socket: 192.0.2.12:5260
    source: vol1-node1
    replace: vol1-node2
    destination:
      replica: vol1-node3
      disk: disk1
      rpc_socket: 192.0.2.13:5260
      listen_address: 192.0.2.13
  register: rebuild

- name: Only plan (reads only)
  spdk.storage.spdk_replica_rebuild:
    engine: vol1
    replicas: "{{ vol1_replicas }}"
    source: vol1-node1
    destination: {replica: vol1-node3, disk: disk1, rpc_socket: 192.0.2.13:5260, listen_address: 192.0.2.13}
    step: plan
"""

RETURN = r"""
rebuild:
  description: The rebuild after the run.
  returned: always
  type: dict
  contains:
    strategy:
      description: V(offline) or V(online).
      type: str
    state:
      description: V(planned), V(copied), V(rebuilding) (online RAID rebuild running) or V(done).
      type: str
    mode:
      description: The new replica's mode in the RAID (V(RW), V(WO)) or null.
      type: str
    system_snapshot:
      description: The offline strategy's system snapshot, or null.
      type: str
    source_chain:
      description: The source head's snapshot chain, oldest first.
      type: list
      elements: str
    destination_chain:
      description: The new replica's snapshot chain, oldest first.
      type: list
      elements: str
    snapshot_sets_match:
      description: Whether both chains are equal.
      type: bool
    merged_system_snapshots:
      description:
        - System snapshots this run deleted on every member of the RAID (merged into their one child), or in
          check mode would delete.
      type: list
      elements: str
    removed_replica:
      description:
        - What became of the replaced replica (O(replace)); null without O(replace).
        - C(state) is V(removed) (this run removed it), V(absent) (nothing of it was left), V(planned) (check
          mode), V(kept) (O(keep_replaced)), V(pending) (the new replica is not C(RW) yet, or the step is not
          V(join) or V(all)), V(unreachable) (its node could not be reached), V(in_use) (a RAID or a host other
          than the engine node still uses it) or V(failed); C(error) says why for the last three.
        - C(node) is its node's O(replicas[].rpc_socket) (or C(engine node)); C(lvols) the lvols deleted,
          C(export) the NQN unexported, C(controller) the engine node's controller detached in this run.
      type: dict
    allocated_clusters:
      description: Clusters owned by each snapshot of both chains, by the new head and by the source's head.
      type: dict
    replica:
      description: The new replica as an O(spdk.storage.spdk_engine#module:replicas) entry.
      type: dict
    copy:
      description: Clusters copied and seconds spent copying in this run.
      type: dict
    rebuild_seconds:
      description: Seconds the online RAID rebuild was waited for in this run.
      type: float
    progress:
      description: Progress samples (copy per snapshot, RAID rebuild percent) of this run.
      type: list
      elements: dict
actions:
  description: Mutating calls sent (in check mode, planned), each with its node and reason.
  returned: always
  type: list
  elements: dict
rpc_calls_by_node:
  description: RPCs sent to each target in this run.
  returned: always
  type: dict
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import (
    engine_node_options,
    engine_node_request,
    replicas_option,
    run_module,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import RW
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import validate_lvol_name
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import STEPS, STRATEGIES
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_request import RebuildRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_journal import RebuildJournal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_run import RebuildRun
from ansible_collections.spdk.storage.plugins.module_utils.spdk_tombstone import refuse_if_deleting
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import (
    VolumeLock,
    check_lock_timeout,
    lock_argument_spec,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import wait_argument_spec

DESTINATION_OPTIONS = dict(
    replica=dict(type="str", required=True),
    disk=dict(type="str", required=True),
    rpc_socket=dict(type="str"),
    listen_address=dict(type="str", required=True),
    port=dict(type="int"),
    port_range=dict(type="str", default=nvmf.DEFAULT_PORT_RANGE),
)

ARGUMENT_SPEC = engine_node_options(
    wait_argument_spec(wait=True, wait_timeout=3600.0, wait_sleep=1.0),
    engine=dict(type="str", required=True),
    replicas=replicas_option(required=True),
    source=dict(type="str", required=True),
    replace=dict(type="str"),
    keep_replaced=dict(type="bool", default=False),
    destination=dict(type="dict", required=True, options=DESTINATION_OPTIONS),
    strategy=dict(type="str", choices=list(STRATEGIES), default="auto"),
    step=dict(type="str", choices=list(STEPS), default="all"),
    system_snapshot=dict(type="str"),
    bandwidth_mb_sec=dict(type="int"),
    **lock_argument_spec()
)


def build_request(params):
    """The validated request; refuses bad options (wait options first) before any RPC."""
    node = engine_node_request(params)
    destination = dict(params["destination"])
    if destination.get("rpc_socket") == params["rpc_socket"]:
        destination["rpc_socket"] = None     # the engine node itself
    if params["system_snapshot"] is not None:
        validate_lvol_name("snapshot", params["system_snapshot"])
    replicas = [{k: v for k, v in r.items() if v is not None} for r in params["replicas"]]
    return RebuildRequest(
        engine=params["engine"], source=params["source"], destination=destination, replicas=replicas,
        replace=params["replace"], strategy=params["strategy"], step=params["step"],
        bandwidth_mb_sec=params["bandwidth_mb_sec"], keep_replaced=params["keep_replaced"], **node)


class Clients:
    """One client per target address: the module's own for the engine node, others built alike."""

    def __init__(self, module):
        self.module = module
        self.by_address = {module.params["rpc_socket"]: module.client}

    def get(self, address):
        if not address:
            return self.module.client
        if address not in self.by_address:
            self.by_address[address] = self.module.connect(address)
        return self.by_address[address]

    def counts(self):
        """RPCs sent per target address: the result's rpc_calls_by_node (and their sum, rpc_calls)."""
        counts = {address: len(client.sent_calls) for address, client in self.by_address.items()}
        return {"rpc_calls": sum(counts.values()), "rpc_calls_by_node": counts}

    def close(self):
        for client in self.by_address.values():
            if client is not self.module.client:
                client.close()


def recorded_system_snapshots(module, request):
    """The engine's snapshots noted kind system in the engine node's record (so they are merged too)."""
    directory = module.params["record_dir"]
    if not directory:
        return ()
    try:
        record = rec.load(rec.record_path(directory, request.node_name), request.node_name)
    except rec.RecordError as exc:
        module.warn(str(exc))
        return ()
    return tuple(name for name, entry in record.snapshots_of(request.engine).items()
                 if entry.get("kind") == "system")


def record_system_snapshots(module, request, snapshot, merged):
    """Note the system snapshot in the engine node's record (kind system), as engine snapshots are noted;
    drop the ones merged away."""
    directory = module.params["record_dir"]
    if not directory or module.check_mode or not (snapshot or merged):
        return False

    def change(record):
        if snapshot and snapshot not in merged:
            record.add_snapshot(request.engine, snapshot, "system")
        for name in merged:
            record.remove_snapshot(request.engine, name)

    try:
        written = rec.update(rec.record_path(directory, request.node_name), request.node_name, change)[1]
    except rec.RecordError as exc:
        module.warn(str(exc))
        return False
    return written


def rebuild(module, request, clients):
    """One RebuildRun with a client per node; the module's result."""
    params = module.params
    refuse_if_deleting(params["record_dir"], request.node_name, request.engine,
                       "spdk_replica_rebuild of engine %s (new replica %s)" % (request.engine,
                                                                               request.destination.replica))
    member_clients = {m.name: clients.get(m.rpc_socket) for m in request.replicas if not m.is_local}
    source = request.source
    directory = params["record_dir"]
    journal = RebuildJournal(rec.record_path(directory, request.node_name) if directory else None, request.node_name,
                             request, check_mode=module.check_mode, warn=module.warn)
    run_ = RebuildRun(
        request, {"engine": module.client,
                  "source": module.client if source.is_local else clients.get(source.rpc_socket),
                  "destination": clients.get(request.destination.rpc_socket)},
        check_mode=module.check_mode, wait=params["wait"], wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"], system_snapshot=params["system_snapshot"],
        known_system_snapshots=recorded_system_snapshots(module, request),
        lock=lambda operation: VolumeLock(module.client, request.engine, operation),
        lock_timeout=check_lock_timeout(params["lock_timeout"]), journal=journal)
    try:
        with run_.recorder.reporting():
            view = run_.run(member_clients)
    finally:
        for warning in run_.warnings:
            module.warn(warning)
    written = record_system_snapshots(module, request, view["system_snapshot"], view["merged_system_snapshots"])
    after = run_.summary()
    if module.check_mode:     # what the run would reach: a member with the source's chain
        after = dict(after, present=True, mode=RW, chain=run_.predicted_chain())
    return dict(changed=bool(run_.actions) or written or journal.written, diff={"before": run_.before, "after": after},
                rebuild=view, actions=run_.actions)


def run(module):
    request = build_request(module.params)
    clients = Clients(module)
    try:
        result = rebuild(module, request, clients)
    except SpdkError as err:
        err.result.update(clients.counts())
        raise
    finally:
        clients.close()
    result.update(clients.counts())
    return result


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


if __name__ == "__main__":
    main()

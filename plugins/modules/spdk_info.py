#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: spdk_info
short_description: Everything one SPDK target holds - disks, replicas, engines, exports, controllers
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - Reads one node's disks (lvstores), replicas with their snapshot trees, engines (RAID bdevs with
    members, state, superblock and rebuild progress), NVMe-oF subsystems, attached NVMe-oF
    controllers and the SPDK version.
  - All reads go to the target in one pipelined batch. With every O(gather) subset, that is six
    read RPCs (C(bdev_lvol_get_lvstores), C(bdev_get_bdevs), C(nvmf_get_subsystems),
    C(bdev_raid_get_bdevs), C(bdev_nvme_get_controllers), C(spdk_get_version)); a smaller
    O(gather) sends only the reads it needs.
  - Never changes anything on the target.
  - When a read fails, for example because the target was built without the RAID module, the
    module warns and returns that part empty instead of failing.
  - V(orphans) in O(gather) also reports what nothing uses any more (see RV(orphans)). It is not in the
    default because it can cost more reads. It needs five of the reads above. To tell whether an exported
    replica that no RAID on this node holds is still used by a remote engine, it asks who is connected to
    each such export (C(nvmf_subsystem_get_controllers), one per export, in a second batch).
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  gather:
    description:
      - Which parts to read and return. Parts not gathered are returned empty.
      - V(orphans) is not in the default; it is described in RV(orphans).
    type: list
    elements: str
    choices: [disks, replicas, engines, subsystems, controllers, version, orphans]
    default: [disks, replicas, engines, subsystems, controllers, version]
  disk:
    description:
      - Return only this disk and the replicas on it (orphan replicas included). A disk that does not exist on
        the node fails the module (with the disks it has), rather than returning empty lists. Engines, subsystems and
        controllers are not filtered.
    type: str
seealso:
  - module: spdk.storage.spdk_disk
  - module: spdk.storage.spdk_replica
"""

EXAMPLES = r"""
- name: Everything on the node
  spdk.storage.spdk_info:
  register: node

- name: Only the replicas of disk1, with their snapshot trees
  spdk.storage.spdk_info:
    gather: [replicas]
    disk: disk1
  register: info

- name: List what nothing uses any more on the node (a replica a rebuild replaced, a stale export)
  spdk.storage.spdk_info:
    gather: [orphans]
  register: leftovers

- name: Fail when an engine is rebuilding
  ansible.builtin.assert:
    that: node.engines | selectattr('process', 'ne', none) | list | length == 0
"""

RETURN = r"""
disks:
  description: Disks (lvstores) with their base bdev and space, as spdk.storage.spdk_disk returns them.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: disk1, uuid: 2ec6438e-114c-47ba-b723-7c1376549bfb, path: /var/lib/spdk/disks/disk1.img,
       base_bdev: disk1, fallocate: true, block_size: 4096, cluster_size: 1048576, total_clusters: 4079,
       free_clusters: 4014, total_bytes: 4277141504, free_bytes: 4208984064, replicas: [vol1-r1],
       lvols: [vol1-r1, vol1-r1-snap-daily]}
replicas:
  description:
    - Replica head lvols (lvols that are neither snapshots nor C(<replica>-snap-<name>) names), each with
      its snapshots ordered parents first, the chain from the oldest snapshot to the head, its export
      and the engines using it.
    - In a snapshot, C(children) names the replica's snapshots made from it (never the head), C(head_child)
      tells whether the head is a clone of it, and C(other_children) lists clones outside the replica; the
      same entries M(spdk.storage.spdk_snapshot) returns.
  returned: always
  type: list
  elements: dict
  sample:
    - name: vol1-r1
      disk: disk1
      uuid: 42971873-bab4-42f3-a8f1-894aebb3c9db
      size: 268435456
      thin: true
      allocated_clusters: 1
      parent: daily
      chain: [daily]
      snapshots:
        - {name: daily, lvol_name: vol1-r1-snap-daily, uuid: 8a10d34b-56d5-4481-878b-4daa88761508,
           size: 268435456, allocated_clusters: 3, parent: null, children: [], head_child: true,
           other_children: []}
      exposure: {nqn: "nqn.2026-01.io.spdk-storage:vol1-r1", listen_address: 127.0.0.1, port: 4421,
                 allow_any_host: false, allowed_hosts: ["nqn.2026-01.io.spdk-storage:host-node1"]}
      engines: [vol1]
engines:
  description:
    - RAID bdevs with their members, state, superblock, size, frontend subsystem and the running
      background process (rebuild target and progress), or null when none runs.
    - Each member says which replica it is when that can be told, a local lvol or an NVMe-oF
      namespace of a C(nqn.2026-01.io.spdk-storage:) subsystem.
  returned: always
  type: list
  elements: dict
  sample:
    - name: vol1
      uuid: 41801132-09a3-4eab-bddc-545071d4f342
      state: online
      raid_level: raid1
      superblock: true
      size: 267386880
      num_base_bdevs: 2
      num_base_bdevs_discovered: 2
      num_base_bdevs_operational: 2
      members:
        - {slot: 0, name: disk1/vol1-r1, uuid: 42971873-bab4-42f3-a8f1-894aebb3c9db, configured: true,
           data_offset: 256, data_size: 65280, replica: vol1-r1, local: true}
      process: {type: rebuild, target: vol1-r2n1, blocks: 4096, percent: 6}
      frontend: "nqn.2026-01.io.spdk-storage:vol1"
subsystems:
  description: NVMe-oF subsystems except the discovery subsystem, with listeners, hosts and namespaces.
  returned: always
  type: list
  elements: dict
controllers:
  description: Attached NVMe-oF controllers, each with its paths (state, address, subsystem NQN, host NQN).
  returned: always
  type: list
  elements: dict
orphans:
  description:
    - The collection's objects on this node that nothing uses any more, or null when V(orphans) is not
      gathered (or a read it needs failed, with a warning). Each entry says why in C(reason).
    - C(replicas) are replica heads that no RAID on this node has as a member and that are either not
      exported or exported with no host connected (for example a replica a rebuild replaced, still
      exported to the engine node that no longer uses it). An exported replica whose connections could
      not be read is left out, with a warning.
    - C(exports) are C(nqn.2026-01.io.spdk-storage:) subsystems none of whose namespaces is a replica head
      or a RAID (an engine frontend). The bdev is gone, or it is a snapshot or a transient rebuild volume.
    - C(controllers) are NVMe-oF controllers to C(nqn.2026-01.io.spdk-storage:) subsystems of which no RAID
      on this node has a namespace bdev as a member.
    - It is one moment's view. The transient exports and controllers of a running rebuild, and a replica
      whose engine is reconnecting to it, are listed until they are done.
  returned: always
  type: dict
  sample:
    replicas:
      - {name: vol1-node2, disk: disk1, uuid: dde7fa1b-cd0c-4996-8e60-c6709f2493fb,
         export: "nqn.2026-01.io.spdk-storage:vol1-node2",
         reason: "no RAID on this node has it as a member and no host is connected to its export
                  (allowed: nqn.2026-01.io.spdk-storage:host:node1)"}
    exports:
      - {nqn: "nqn.2026-01.io.spdk-storage:vol9-node2", bdevs: [5f07c89f-2646-4ee9-9c78-8aaf1fa1cd67],
         reason: "bdev 5f07c89f-2646-4ee9-9c78-8aaf1fa1cd67 does not exist"}
    controllers:
      - {name: img-base-0001, subnqns: ["nqn.2026-01.io.spdk-storage:img-base-0001"], bdevs: [img-base-0001n1],
         states: [enabled], reason: "no RAID on this node has one of its bdevs as a member"}
version:
  description: The answer of C(spdk_get_version), or null when not gathered.
  returned: always
  type: dict
  sample: {version: "SPDK v26.05 git sha1 d519b163cb", fields: {major: 26, minor: 5, patch: 0, suffix: ""}}
"""

from ansible_collections.spdk.storage.plugins.module_utils import spdk_model as model
from ansible_collections.spdk.storage.plugins.module_utils import spdk_orphans
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import NQN_PREFIX, validate_lvol_name
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ops import SpdkRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

GATHER = ("disks", "replicas", "engines", "subsystems", "controllers", "version", "orphans")
DEFAULT_GATHER = GATHER[:-1]

# The model parts each gathered item needs.
NEEDS = {
    "disks": ("lvstores", "bdevs"),
    "replicas": ("lvstores", "bdevs", "subsystems", "raids"),
    "engines": ("bdevs", "raids", "subsystems", "controllers"),
    "subsystems": ("subsystems",),
    "controllers": ("controllers",),
    "version": ("version",),
    "orphans": spdk_orphans.PARTS,
}

ARGUMENT_SPEC = dict(
    gather=dict(type="list", elements="str", choices=list(GATHER), default=list(DEFAULT_GATHER)),
    disk=dict(type="str"),
)


def parts_for(gather, disk=None):
    """Model parts in a fixed order, each once (the lvstores too when one disk is asked for)."""
    wanted = set(p for item in gather for p in NEEDS[item]) | ({"lvstores"} if disk else set())
    return [p for p in model.PARTS if p in wanted]


def read_node(client, parts):
    """One batch; a part whose read fails is left out and reported as a warning."""
    answers = client.batch([model.PARTS[p] for p in parts], return_errors=True)
    raw, warnings = {}, []
    for part, answer in zip(parts, answers):
        if isinstance(answer, SpdkRpcError):
            warnings.append("could not read %s (%s); it is returned empty" % (part, answer))
        else:
            raw[part] = answer
    return model.NodeState(raw), warnings


def replica_view(state, replica):
    view = replica.to_dict()
    view["engines"] = [raid.name for raid in state.raids_using(replica.head)]
    return view


def engine_view(state, raid):
    view = raid.to_dict()
    bdev = state.bdev_named(raid.name)
    view["size"] = bdev["block_size"] * bdev["num_blocks"] if bdev else None
    for member in view["members"]:
        member.update(member_replica(state, member))
    refs = set(r for r in (raid.name, raid.uuid) if r)
    frontends = [e.nqn for e in state.exposures if e.exports(refs)]
    view["frontend"] = frontends[0] if frontends else None
    return view


def member_replica(state, member):
    """Which replica a RAID member is: a local lvol, or the namespace of one of our subsystems."""
    refs = [r for r in (member["name"], member["uuid"]) if r]
    for ref in refs:
        lvol = state.lvol_by_ref(ref)
        if lvol is not None:
            return {"replica": lvol.name, "local": True}
    for controller in state.controllers:
        if member["name"] and member["name"].startswith(controller.name + "n"):
            for path in controller.paths:
                if (path["subnqn"] or "").startswith(NQN_PREFIX):
                    return {"replica": path["subnqn"][len(NQN_PREFIX):], "local": False}
    return {"replica": None, "local": None}


def gather_orphans(client, state, disk_name):
    """(orphans, warnings); orphans is None when a part it needs could not be read."""
    missing = [part for part in spdk_orphans.PARTS if not state.has(part)]
    if missing:
        return None, ["orphans are not reported: %s could not be read" % ", ".join(missing)]
    replicas = [r for r in state.replicas() if not disk_name or r.disk == disk_name]
    connected, warnings = spdk_orphans.read_connections(client, spdk_orphans.connection_reads(state, replicas))
    return spdk_orphans.orphans(state, connected, disk_name), warnings


def gather_info(state, gather, disk_name):
    in_disk = (lambda name: name == disk_name) if disk_name else (lambda name: True)
    info = dict((item, []) for item in GATHER)
    info["version"] = None
    info["orphans"] = None
    if "disks" in gather:
        info["disks"] = [d.to_dict() for d in state.disks if in_disk(d.name)]
    if "replicas" in gather:
        info["replicas"] = [replica_view(state, r) for r in state.replicas() if in_disk(r.disk)]
    if "engines" in gather:
        info["engines"] = [engine_view(state, r) for r in state.raids]
    if "subsystems" in gather:
        info["subsystems"] = [e.to_dict() for e in state.exposures]
    if "controllers" in gather:
        info["controllers"] = [c.to_dict() for c in state.controllers]
    if "version" in gather:
        info["version"] = state.version
    return info


def run(module):
    """Read what ``gather`` needs (one batch, plus the orphans' connection reads); the module's result."""
    gather, disk = module.params["gather"], module.params["disk"]
    if disk is not None:
        validate_lvol_name("disk", disk)
    state, warnings = read_node(module.client, parts_for(gather, disk))
    known = sorted(lvs.get("name") for lvs in state.raw.get("lvstores") or [])
    if disk is not None and state.has("lvstores") and disk not in known:
        # a typo must not look like an empty disk
        raise SpdkRefusal("disk %s not found on this node (disks: %s)" % (disk, ", ".join(known) or "none"))
    info = gather_info(state, gather, disk)
    if "orphans" in gather:
        info["orphans"], more = gather_orphans(module.client, state, module.params["disk"])
        warnings += more
    for warning in warnings:
        module.warn(warning)
    return dict(changed=False, **info)


def main():
    run_module(run, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


if __name__ == "__main__":
    main()

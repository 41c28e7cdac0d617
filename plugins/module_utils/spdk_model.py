# -*- coding: utf-8 -*-
# Copyright (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-side model: SPDK answers -> disks, lvols, replicas, exposures, RAIDs.

One ``client.batch`` fetches the raw answers (``fetch``), ``NodeState`` turns
them into objects; nothing here mutates the target. Facts relied on (recorded
from real SPDK v26.05; recordings in tests/unit/fixtures/transcripts/ and tests/emulator/fixtures/):

* an lvol's bdev name is its UUID and its alias ``<lvstore>/<lvol>``;
  ``bdev_get_bdevs`` carries everything an lvol needs (size, thin, allocation,
  ``base_snapshot`` parent, ``clones`` children, claim) under
  ``driver_specific.lvol`` (tests/unit/fixtures/transcripts/more__introspection.json line 61);
* ``bdev_lvol_get_lvstores`` gives name, uuid, base bdev, cluster counts;
* ``nvmf_get_subsystems`` names a namespace's bdev by UUID; its one parser is
  ``spdk_nvmf.parse_subsystems``, and ``NodeState.exposures`` are those ``spdk_nvmf.Subsystem``s;
* ``bdev_raid_get_bdevs`` (``category`` required) names a member by alias at
  creation but by UUID after examine-assembly
  (tests/unit/fixtures/transcripts/more__d2_raid_sb_restart_clean_remove.json line 34), so members are
  matched on both.

Both an NVMe-oF export and a RAID claim show as ``claimed: exclusive_write``,
so who holds an lvol is decided from subsystems and RAIDs, never from the claim.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    is_reserved_lvol_name,
    split_snapshot_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_nvmf import parse_subsystems

# Every read the model knows, by part name. All are read-only RPCs.
PARTS = {
    "lvstores": ("bdev_lvol_get_lvstores", None),
    "bdevs": ("bdev_get_bdevs", None),
    "lvols": ("bdev_lvol_get_lvols", None),
    "subsystems": ("nvmf_get_subsystems", None),
    "raids": ("bdev_raid_get_bdevs", {"category": "all"}),
    "controllers": ("bdev_nvme_get_controllers", None),
    "version": ("spdk_get_version", None),
}

DISK_PARTS = ("lvstores", "bdevs")
"""Enough for disks, their lvols and replicas (no exposure or RAID use)."""

USAGE_PARTS = ("subsystems", "raids")
"""What else is needed to know who uses an lvol (exports, RAID members)."""


def fetch(client, parts):
    """Raw answers for ``parts`` (names from PARTS) in one pipelined batch."""
    parts = tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError("unknown model parts: %s" % ", ".join(unknown))
    results = client.batch([PARTS[p] for p in parts])
    return dict(zip(parts, results))


def load_node(client, parts=DISK_PARTS + USAGE_PARTS):
    """NodeState built from one batch of ``parts``."""
    return NodeState(fetch(client, parts))


class Lvol:
    """One logical volume, from its ``bdev_get_bdevs`` entry."""

    def __init__(self, bdev):
        info = bdev["driver_specific"]["lvol"]
        alias = _lvol_alias(bdev)
        self.uuid = bdev["name"]
        self.alias = alias
        self.lvstore, _sep, self.name = alias.partition("/") if alias else (None, "", bdev["name"])
        self.lvstore_uuid = info.get("lvol_store_uuid")
        self.base_bdev = info.get("base_bdev")
        self.block_size = bdev["block_size"]
        self.num_blocks = bdev["num_blocks"]
        self.size = self.block_size * self.num_blocks
        self.thin = bool(info.get("thin_provision"))
        # SPDK lists a snapshot as one only while it has a clone or since it was made in this run: after a
        # restart, a snapshot whose clones were all deleted says "snapshot": false (and SPDK refuses
        # set_parent onto it until it is cloned again), yet it is still read-only: no write I/O.
        self.listed_as_snapshot = bool(info.get("snapshot"))
        self.read_only = (bdev.get("supported_io_types") or {}).get("write") is False
        self.is_snapshot = self.listed_as_snapshot or self.read_only
        self.is_clone = bool(info.get("clone"))
        self.is_esnap_clone = bool(info.get("esnap_clone"))
        self.parent = info.get("base_snapshot")  # lvol name of the parent snapshot, same lvstore
        self.external_parent = info.get("external_snapshot_name")  # bdev UUID of an esnap parent
        self.children = list(info.get("clones") or [])
        self.allocated_clusters = info.get("num_allocated_clusters", 0)
        self.claimed = bool(bdev.get("claimed"))
        self.claim_type = bdev.get("claim_type")

    def refs(self):
        """Every string SPDK may use to name this lvol."""
        return {self.uuid, self.alias}

    def to_dict(self):
        return {
            "name": self.name,
            "uuid": self.uuid,
            "alias": self.alias,
            "disk": self.lvstore,
            "size": self.size,
            "num_blocks": self.num_blocks,
            "block_size": self.block_size,
            "thin": self.thin,
            "is_snapshot": self.is_snapshot,
            "is_clone": self.is_clone,
            "is_esnap_clone": self.is_esnap_clone,
            "parent": self.parent,
            "external_parent": self.external_parent,
            "children": list(self.children),
            "allocated_clusters": self.allocated_clusters,
            "claimed": self.claimed,
        }


def _lvol_alias(bdev):
    for alias in bdev.get("aliases") or []:
        if "/" in alias:
            return alias
    return None


class Disk:
    """An lvstore and the base bdev it lives on (a disk's UUID is its lvstore's UUID)."""

    def __init__(self, lvstore, base):
        self.name = lvstore["name"]
        self.uuid = lvstore["uuid"]
        self.base_bdev = lvstore["base_bdev"]
        self.block_size = lvstore["block_size"]
        self.cluster_size = lvstore["cluster_size"]
        self.total_clusters = lvstore["total_data_clusters"]
        self.free_clusters = lvstore["free_clusters"]
        self.total_bytes = self.total_clusters * self.cluster_size
        self.free_bytes = self.free_clusters * self.cluster_size
        self.base = base  # BaseBdev or None when the base bdev is not listed
        self.lvols = []

    @property
    def path(self):
        return self.base.path if self.base else None

    @property
    def replica_names(self):
        return sorted(lvol.name for lvol in self.lvols if _is_replica_head(lvol))

    def to_dict(self):
        return {
            "name": self.name,
            "uuid": self.uuid,
            "base_bdev": self.base_bdev,
            "path": self.path,
            "fallocate": self.base.fallocate if self.base else None,
            "block_size": self.block_size,
            "cluster_size": self.cluster_size,
            "total_clusters": self.total_clusters,
            "free_clusters": self.free_clusters,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "replicas": self.replica_names,
            "lvols": sorted(lvol.name for lvol in self.lvols),
        }


def _is_replica_head(lvol):
    return (not lvol.is_snapshot and split_snapshot_lvol_name(lvol.name) is None
            and not is_reserved_lvol_name(lvol.name))


class BaseBdev:
    """A bdev that can hold an lvstore; ``path`` is set for aio bdevs."""

    def __init__(self, bdev):
        self.name = bdev["name"]
        self.uuid = bdev.get("uuid")
        self.product_name = bdev.get("product_name")
        self.block_size = bdev["block_size"]
        self.num_blocks = bdev["num_blocks"]
        self.size = self.block_size * self.num_blocks
        self.claimed = bool(bdev.get("claimed"))
        aio = (bdev.get("driver_specific") or {}).get("aio")
        self.is_aio = aio is not None
        self.path = aio.get("filename") if aio else None
        self.fallocate = aio.get("fallocate") if aio else None
        io_types = bdev.get("supported_io_types") or {}
        self.supports_unmap = bool(io_types.get("unmap"))


NULL_UUID = "00000000-0000-0000-0000-000000000000"


class Raid:
    """A RAID bdev as ``bdev_raid_get_bdevs`` reports it (engines are RAID1 bdevs)."""

    def __init__(self, raid):
        self.name = raid["name"]
        self.uuid = raid.get("uuid")
        self.state = raid.get("state")
        self.level = raid.get("raid_level")
        self.superblock = bool(raid.get("superblock"))
        self.num_base_bdevs = raid.get("num_base_bdevs")
        self.discovered = raid.get("num_base_bdevs_discovered")
        self.operational = raid.get("num_base_bdevs_operational")
        self.members = [
            {"slot": slot, "name": m.get("name"),
             "uuid": None if m.get("uuid") in (None, NULL_UUID) else m.get("uuid"),
             "configured": bool(m.get("is_configured")),
             "data_offset": m.get("data_offset"), "data_size": m.get("data_size")}
            for slot, m in enumerate(raid.get("base_bdevs_list") or [])]
        self.process = _raid_process(raid.get("process"))

    def has_member(self, refs):
        return any(m["name"] in refs or m["uuid"] in refs for m in self.members)

    def to_dict(self):
        return {
            "name": self.name,
            "uuid": self.uuid,
            "state": self.state,
            "raid_level": self.level,
            "superblock": self.superblock,
            "num_base_bdevs": self.num_base_bdevs,
            "num_base_bdevs_discovered": self.discovered,
            "num_base_bdevs_operational": self.operational,
            "members": [dict(m) for m in self.members],
            "process": dict(self.process) if self.process else None,
        }


def _raid_process(process):
    if not process:
        return None
    progress = process.get("progress") or {}
    return {"type": process.get("type"), "target": process.get("target"),
            "blocks": progress.get("blocks"), "percent": progress.get("percent")}


class Controller:
    """An attached NVMe-oF controller (``bdev_nvme_get_controllers``), one dict per path."""

    def __init__(self, ctrlr):
        self.name = ctrlr["name"]
        self.paths = [
            {"state": c.get("state"), "trtype": c.get("trid", {}).get("trtype"),
             "traddr": c.get("trid", {}).get("traddr"), "trsvcid": c.get("trid", {}).get("trsvcid"),
             "subnqn": c.get("trid", {}).get("subnqn"), "hostnqn": (c.get("host") or {}).get("nqn"),
             "cntlid": c.get("cntlid")}
            for c in ctrlr.get("ctrlrs") or []]

    def to_dict(self):
        return {"name": self.name, "paths": [dict(p) for p in self.paths]}


class Snapshot:
    """One snapshot lvol of a replica, named as the user named it."""

    def __init__(self, name, lvol):
        self.name = name
        self.lvol = lvol
        self.parent = None        # user-facing name of the parent snapshot
        self.children = []        # user-facing names of child snapshots
        self.head_child = False   # True when the replica head is a clone of this snapshot
        self.other_children = []  # lvol names of clones outside this replica

    def to_dict(self):
        return {
            "name": self.name,
            "lvol_name": self.lvol.name,
            "uuid": self.lvol.uuid,
            "size": self.lvol.size,
            "allocated_clusters": self.lvol.allocated_clusters,
            "parent": self.parent,
            "children": list(self.children),
            "head_child": self.head_child,
            "other_children": list(self.other_children),
        }


class Replica:
    """A head lvol ``<replica>`` plus its snapshot lvols ``<replica>-snap-<name>``."""

    def __init__(self, head, snapshot_lvols, exposure):
        self.name = head.name
        self.disk = head.lvstore
        self.head = head
        self.exposure = exposure
        self.size = head.size
        self.snapshots = _snapshot_tree(head, snapshot_lvols)

    @property
    def parent(self):
        """User-facing name of the snapshot the head is cloned from, or None."""
        for snap in self.snapshots:
            if snap.head_child:
                return snap.name
        return None

    @property
    def chain(self):
        """Snapshot names from the oldest ancestor down to the head's parent."""
        by_name = {s.name: s for s in self.snapshots}
        chain, name = [], self.parent
        while name is not None and name not in chain:
            chain.append(name)
            name = by_name[name].parent
        return list(reversed(chain))

    def snapshot(self, name):
        for snap in self.snapshots:
            if snap.name == name:
                return snap
        return None

    def to_dict(self):
        return {
            "name": self.name,
            "disk": self.disk,
            "uuid": self.head.uuid,
            "size": self.size,
            "thin": self.head.thin,
            "allocated_clusters": self.head.allocated_clusters,
            "parent": self.parent,
            "chain": self.chain,
            "snapshots": [s.to_dict() for s in self.snapshots],
            "exposure": self.exposure.to_dict() if self.exposure else None,
        }


# --- snapshot entries as spdk_info and spdk_snapshot return them --------------------------
# ``children`` holds child snapshots only (user-facing names); the head is ``head_child``, lvols
# outside the replica cloned from the snapshot are ``other_children``: a name never means two things.


def snapshot_entries(replica, cluster_size):
    """``Snapshot.to_dict()`` of every snapshot of ``replica``, parents first, with ``allocated_bytes``."""
    return [dict(s.to_dict(), allocated_bytes=s.lvol.allocated_clusters * cluster_size) for s in replica.snapshots]


def _entry_copy(entry):
    return dict(entry, children=list(entry["children"]), other_children=list(entry["other_children"]))


def entries_after_snapshot(entries, replica, name, lvol_name, cluster_size):
    """``entries`` once the head of ``replica`` is snapshotted as ``name``: the new snapshot takes the head's
    place under the head's parent and owns what the head owned; the head is its only child."""
    after = []
    for entry in entries:
        entry = _entry_copy(entry)
        if entry["head_child"]:
            entry["head_child"] = False
            entry["children"] = sorted(entry["children"] + [name])
        after.append(entry)
    clusters = replica.head.allocated_clusters
    after.append({"name": name, "lvol_name": lvol_name, "uuid": None, "size": replica.size,
                  "allocated_clusters": clusters, "parent": replica.parent, "children": [], "head_child": True,
                  "other_children": [], "allocated_bytes": clusters * cluster_size})
    return after


def entries_after_delete(entries, name):
    """``entries`` once snapshot ``name`` is deleted: SPDK merges it into its one child, which takes its parent."""
    gone = next(e for e in entries if e["name"] == name)
    after = []
    for entry in entries:
        if entry["name"] == name:
            continue
        entry = _entry_copy(entry)
        if entry["name"] == gone["parent"]:
            entry["children"] = sorted([c for c in entry["children"] if c != name] + gone["children"])
            entry["head_child"] = entry["head_child"] or gone["head_child"]
            entry["other_children"] = sorted(entry["other_children"] + gone["other_children"])
        if entry["parent"] == name:
            entry["parent"] = gone["parent"]
        after.append(entry)
    return after


def _snapshot_tree(head, snapshot_lvols):
    """Snapshots linked by parent/children, ordered parents before children."""
    snaps = {}
    for lvol in snapshot_lvols:
        snaps[lvol.name] = Snapshot(split_snapshot_lvol_name(lvol.name)[1], lvol)
    for snap in snaps.values():
        parent = snaps.get(snap.lvol.parent)
        snap.parent = parent.name if parent else None
        for child in snap.lvol.children:
            if child in snaps:
                snap.children.append(snaps[child].name)
            elif child == head.name:
                snap.head_child = True
            else:
                snap.other_children.append(child)
    ordered, pending = [], sorted(snaps.values(), key=lambda s: s.lvol.name)
    placed = set()
    while pending:  # parents first; a broken link (foreign parent) counts as a root
        ready = [s for s in pending if s.parent is None or s.parent in placed]
        if not ready:
            ready = pending[:1]
        for snap in ready:
            ordered.append(snap)
            placed.add(snap.name)
        pending = [s for s in pending if s.name not in placed]
    return ordered


class NodeState:
    """Everything one batch of reads says about a node, with lookups.

    Parts that were not fetched leave their collections empty; ``has(part)``
    tells whether a part was read.
    """

    def __init__(self, raw):
        self.raw = raw
        bdevs = raw.get("bdevs") or []
        self.bdevs = {b["name"]: b for b in bdevs}
        self.lvols = [Lvol(b) for b in bdevs if "lvol" in (b.get("driver_specific") or {})]
        self.base_bdevs = {b["name"]: BaseBdev(b) for b in bdevs
                           if "lvol" not in (b.get("driver_specific") or {})}
        self.disks = [Disk(lvs, self.base_bdevs.get(lvs["base_bdev"]))
                      for lvs in raw.get("lvstores") or []]
        for disk in self.disks:
            disk.lvols = sorted((lv for lv in self.lvols if lv.lvstore_uuid == disk.uuid),
                                key=lambda lv: lv.name)
        self.subsystems = parse_subsystems(raw.get("subsystems"))  # {nqn: spdk_nvmf.Subsystem}
        self.exposures = list(self.subsystems.values())
        self.raids = [Raid(r) for r in raw.get("raids") or []]
        self.controllers = [Controller(c) for c in raw.get("controllers") or []]
        self.version = raw.get("version")

    def has(self, part):
        return part in self.raw

    # --- disks -----------------------------------------------------------
    def disk(self, name):
        for disk in self.disks:
            if disk.name == name:
                return disk
        return None

    def disk_on_bdev(self, bdev_name):
        for disk in self.disks:
            if disk.base_bdev == bdev_name:
                return disk
        return None

    def aio_bdev_for_path(self, path, same_file):
        """The aio bdev whose file ``same_file(filename, path)`` says is ``path``, or None."""
        for base in self.base_bdevs.values():
            if base.is_aio and same_file(base.path, path):
                return base
        return None

    def bdev_named(self, name):
        """Raw bdev entry by name or alias, or None."""
        if name in self.bdevs:
            return self.bdevs[name]
        for bdev in self.bdevs.values():
            if name in (bdev.get("aliases") or []):
                return bdev
        return None

    # --- lvols and replicas ---------------------------------------------
    def lvol(self, disk, name):
        for lvol in self.lvols:
            if lvol.lvstore == disk and lvol.name == name:
                return lvol
        return None

    def lvol_by_ref(self, ref):
        """Lvol named by UUID or ``disk/name`` alias, or None."""
        for lvol in self.lvols:
            if ref in lvol.refs():
                return lvol
        return None

    def snapshot_lvols(self, disk, replica):
        """Snapshot lvols ``<replica>-snap-*`` on ``disk``, also when the head is gone."""
        found = []
        for lvol in self.lvols:
            parts = split_snapshot_lvol_name(lvol.name)
            if lvol.lvstore == disk and parts and parts[0] == replica:
                found.append(lvol)
        return sorted(found, key=lambda lv: lv.name)

    def replica(self, disk, name):
        head = self.lvol(disk, name)
        if head is None or not _is_replica_head(head):
            return None
        return Replica(head, self.snapshot_lvols(disk, name), self.exposure_of(head))

    def replicas(self, disk=None):
        return [self.replica(lv.lvstore, lv.name) for lv in sorted(self.lvols, key=lambda lv: (lv.lvstore, lv.name))
                if _is_replica_head(lv) and (disk is None or lv.lvstore == disk)]

    # --- who uses an lvol ------------------------------------------------
    def exposure_of(self, lvol):
        """The subsystem exporting ``lvol`` (ours first when several do), or None."""
        found = [e for e in self.exposures if e.exports(lvol.refs())]
        found.sort(key=lambda e: (not e.nqn.endswith(":" + lvol.name), e.nqn))
        return found[0] if found else None

    def exposure(self, nqn):
        return self.subsystems.get(nqn)

    def raids_using(self, lvol):
        return [r for r in self.raids if r.has_member(lvol.refs())]

    def raid(self, name):
        for raid in self.raids:
            if raid.name == name:
                return raid
        return None

    def usage(self, lvols):
        """``{lvol name: ["exposed as <nqn>", "member of RAID <name>"]}`` for the lvols in use."""
        used = {}
        for lvol in lvols:
            reasons = ["exposed as %s" % e.nqn for e in self.exposures if e.exports(lvol.refs())]
            reasons += ["member of RAID %s" % r.name for r in self.raids_using(lvol)]
            if reasons:
                used[lvol.name] = reasons
        return used

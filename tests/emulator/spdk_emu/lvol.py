"""Logical volumes: the bdev_lvol_* RPCs and LvolBdev, over blobstore.py.

Behaviour is SPDK v26.05's as recorded (B, D1 and D6 in tests/emulator/README.md; fixtures/lvol_ops,
d1 and d6 session files):
an lvol bdev is named by its UUID with the alias ``<lvs>/<lvol>``; the lvstore claims its base bdev
``read_many_write_one``; an esnap parent is claimed ``read_many_write_none``; rename accepts any
name (empty, with ``/``, longer than 63 characters: kept in memory truncated to 63, persisted in
full, and then the whole lvstore fails to load after a restart, as upstream); a shrink of an lvol
that something holds is refused with "Device or resource busy" after the blob was already shrunk
on disk; shallow copies run in the background and report their final state once.
"""
import asyncio

from . import blobstore as bs
from .bdev import Bdev, BdevIOError, Claim, examiner
from .errors import RpcError, errno_error, invalid_params, INTERNAL_ERROR, EINVAL, ENODEV, EEXIST, EPERM, \
    ENOSPC, EBUSY, ENOENT, ENOMEM
from .params import decode, REQUIRED
from .rpc import rpc

MIB = 1 << 20
DEFAULT_CLUSTER_SIZE = 4 * MIB
NAME_LEN = 63
CLEAR_METHODS = ("none", "unmap", "write_zeroes")


class LvolModule:
    def __init__(self):
        self.stores = []           # Lvs, in load/creation order
        self.copies = {}           # shallow copy operation id -> ShallowCopy
        self.next_copy_id = 1


def module(target):
    return target.module_state("lvol", LvolModule)


# ---- lvstores and lvols -----------------------------------------------------------------------

class Lvs:
    """A loaded lvstore: the blobstore on its base bdev plus the lvol bdevs of its blobs."""

    def __init__(self, target, store):
        self.target = target
        self.store = store
        self.lvols = {}            # blob id -> LvolBdev
        store.esnap_reader = self.read_esnap

    @property
    def name(self):
        return self.store.name

    @property
    def uuid(self):
        return self.store.uuid

    @property
    def base(self):
        return self.store.bdev

    def to_json(self):
        s = self.store
        return {"uuid": s.uuid, "name": s.name, "base_bdev": s.bdev.name,
                "total_data_clusters": s.total_data_clusters, "free_clusters": s.free_count,
                "block_size": s.bdev.block_size, "cluster_size": s.cluster_size,
                "max_growable_size": s.geometry.max_growable_size()}

    def find_name(self, name):
        """Upstream compares the whole new name with the (63-character) names in memory, so a
        longer name never collides and two lvols may end up with the same truncated name."""
        for lvol in self.lvols.values():
            if lvol.lvol_name == name:
                return lvol
        return None

    def ordered_lvols(self):
        return [self.lvols[b.id] for b in self.store.ordered_blobs() if b.id in self.lvols]

    async def read_esnap(self, bdev_uuid, offset, length):
        esnap = self.target.bdevs.find(bdev_uuid)
        if esnap is None:
            raise BdevIOError("external snapshot %s missing" % bdev_uuid)
        size = esnap.num_blocks * esnap.block_size
        if offset >= size:
            return bytes(length)
        take = min(length, size - offset)
        first, skip = divmod(offset, esnap.block_size)
        blocks = bs.div_up(skip + take, esnap.block_size)
        data = await esnap.read(first, blocks)
        return data[skip:skip + take] + bytes(length - take)


class LvolBdev(Bdev):
    product_name = "Logical Volume"
    module_name = "lvol"

    def __init__(self, lvs, blob):
        block_size = lvs.base.block_size
        super().__init__(blob.uuid, block_size, blob.num_clusters * lvs.store.cluster_size // block_size,
                         uuid=blob.uuid)
        self.lvs = lvs
        self.blob = blob
        self.refresh_alias()

    @property
    def lvol_name(self):
        return self.blob.name[:NAME_LEN]

    def refresh_alias(self, name=None):
        """The bdev alias; a rename puts the full new name there (get_lvols shows it cut to 63)."""
        self.aliases = ["%s/%s" % (self.lvs.name, self.lvol_name if name is None else name)]

    @property
    def degraded(self):
        return self.blob.esnap_id is not None and self.lvs.target.bdevs.find(self.blob.esnap_id) is None

    # ---- I/O -------------------------------------------------------------------------------
    def _range(self, offset_blocks, num_blocks):
        if offset_blocks < 0 or num_blocks < 0 or offset_blocks + num_blocks > self.num_blocks:
            raise BdevIOError("LBA out of range")
        return offset_blocks * self.block_size, num_blocks * self.block_size

    def _check_writable(self, offset, length):
        if self.blob.read_only or self.blob.snapshot:
            raise BdevIOError("read-only lvol")
        if offset + length > self.blob.num_clusters * self.lvs.store.cluster_size:
            raise BdevIOError("beyond the blob")

    async def read(self, offset_blocks, num_blocks):
        self.check_fault()
        offset, length = self._range(offset_blocks, num_blocks)
        limit = self.blob.num_clusters * self.lvs.store.cluster_size
        inside = max(0, min(length, limit - offset))
        data = await self.blob.read(offset, inside) if inside else b""
        return data + bytes(length - inside)

    async def write(self, offset_blocks, data):
        self.check_fault()
        offset, length = self._range(offset_blocks, len(data) // self.block_size)
        self._check_writable(offset, length)
        await self.blob.write(offset, data)

    async def write_zeroes(self, offset_blocks, num_blocks):
        self.check_fault()
        offset, length = self._range(offset_blocks, num_blocks)
        self._check_writable(offset, length)
        await self.blob.write_zeroes(offset, length)

    async def unmap(self, offset_blocks, num_blocks):
        self.check_fault()
        offset, length = self._range(offset_blocks, num_blocks)
        self._check_writable(offset, length)
        await self.blob.unmap(offset, length)

    # ---- description -----------------------------------------------------------------------
    def memory_domains(self):
        """SPDK lists the memory domains of the lvstore's device and of an esnap parent."""
        domains = list(self.lvs.base.memory_domains() or [])
        if self.blob.esnap_id is not None:
            esnap = self.lvs.target.bdevs.find(self.blob.esnap_id)
            if esnap is not None:
                domains += esnap.memory_domains() or []
        return domains or None

    def supported_io_types(self):
        types = super().supported_io_types()
        writable = not self.blob.data_ro
        types.update({"flush": False, "write": writable, "unmap": writable, "write_zeroes": writable,
                      "seek_hole": True, "seek_data": True})
        return types

    def driver_specific(self):
        blob = self.blob
        parent = blob.parent
        info = {"lvol_store_uuid": self.lvs.uuid, "base_bdev": self.lvs.base.name,
                "thin_provision": blob.thin, "num_allocated_clusters": blob.allocated(),
                "snapshot": blob.snapshot, "clone": parent is not None}
        if parent is not None:
            info["base_snapshot"] = parent.name[:NAME_LEN]
        if blob.snapshot:
            info["clones"] = [c.name[:NAME_LEN] for c in blob.children()]
        info["esnap_clone"] = blob.esnap_id is not None
        if blob.esnap_id is not None:
            info["external_snapshot_name"] = blob.esnap_id
        return {"lvol": info}

    def lvol_json(self):
        blob = self.blob
        return {"alias": "%s/%s" % (self.lvs.name, self.lvol_name), "uuid": blob.uuid, "name": self.lvol_name,
                "is_thin_provisioned": blob.thin, "is_snapshot": blob.snapshot,
                "is_clone": blob.parent_id is not None, "is_esnap_clone": blob.esnap_id is not None,
                "is_degraded": self.degraded, "num_allocated_clusters": blob.allocated(),
                "lvs": {"name": self.lvs.name, "uuid": self.lvs.uuid}}


# ---- lookups ---------------------------------------------------------------------------------

def find_lvol(target, name):
    """The lvol called ``name`` (bdev name, alias or UUID), or -19."""
    bdev = target.bdevs.find(name)
    if not isinstance(bdev, LvolBdev):
        raise errno_error(ENODEV)
    return bdev


def find_lvs(target, name=None, uuid=None):
    """SPDK's vbdev_get_lvol_store_by_uuid_xor_name: -22 unless exactly one is given, -19 if missing."""
    if (name is None) == (uuid is None):
        raise errno_error(EINVAL)
    for lvs in module(target).stores:
        if (name is not None and lvs.name == name) or (uuid is not None and lvs.uuid == uuid):
            return lvs
    raise errno_error(ENODEV)


def lvs_of_bdev(target, bdev):
    for lvs in module(target).stores:
        if lvs.base is bdev:
            return lvs
    return None


def clusters_for(lvs, size_bytes):
    return bs.div_up(size_bytes, lvs.store.cluster_size)


def valid_new_name(name):
    return 0 < len(name) <= NAME_LEN


# ---- registration, claims, commit ---------------------------------------------------------------

async def register_lvol(lvs, blob):
    lvol = LvolBdev(lvs, blob)
    lvs.lvols[blob.id] = lvol
    if blob.esnap_id is not None:
        esnap = lvs.target.bdevs.find(blob.esnap_id)
        if esnap is None:
            return lvol            # degraded: listed by get_lvols, no bdev until the esnap appears
        claim_esnap(esnap)
    await lvs.target.bdevs.register(lvol)
    return lvol


def claim_esnap(bdev):
    """Esnap parents share one read_many_write_none claim of the lvol module."""
    if bdev.claim is not None and bdev.claim.module == "lvol" and bdev.claim.claim_type == "read_many_write_none":
        bdev.claim.owner += 1
        return
    if bdev.claim is not None:
        raise invalid_params(EPERM)
    bdev.claim = Claim("lvol", "read_many_write_none", 1)


def release_esnap(target, esnap_id):
    bdev = target.bdevs.find(esnap_id) if esnap_id else None
    if bdev is not None and bdev.claim is not None and bdev.claim.module == "lvol":
        bdev.claim.owner -= 1
        if bdev.claim.owner <= 0:
            bdev.claim = None


async def commit(lvs):
    try:
        await lvs.store.commit()
    except bs.MetadataFull:
        raise invalid_params(ENOSPC)


def unregister_lvol(lvs, lvol):
    lvs.lvols.pop(lvol.blob.id, None)
    lvs.target.bdevs.unregister(lvol)


# ---- examine: loading an lvstore from a bdev --------------------------------------------------

@examiner
async def examine_lvstore(target, bdev):
    await attach_waiting_esnap_clones(target, bdev)
    if bdev.claim is not None:
        return
    try:
        store = await bs.Blobstore.load(bdev)
    except (bs.NotABlobstore, BdevIOError, ValueError, KeyError):
        return
    mod = module(target)
    if any(s.uuid == store.uuid or s.name == store.name for s in mod.stores):
        return
    if any(len(b.name) >= bs.NAME_MAX for b in store.blobs.values()):
        return   # upstream: "Cannot assign lvol name", the whole lvstore fails to load
    await open_lvs(target, store)


async def open_lvs(target, store):
    lvs = Lvs(target, store)
    target.bdevs.claim(store.bdev, "lvol", "read_many_write_one", lvs)
    module(target).stores.append(lvs)
    store.bdev.on_remove(lambda _bdev: close_lvs(target, lvs))
    for blob in store.ordered_blobs():
        await register_lvol(lvs, blob)
    return lvs


def close_lvs(target, lvs):
    """The base bdev went away (or the lvstore was deleted): drop every lvol bdev."""
    mod = module(target)
    if lvs in mod.stores:
        mod.stores.remove(lvs)
    for lvol in list(lvs.lvols.values()):
        if lvol.blob.esnap_id is not None and lvol.registry is not None:
            release_esnap(target, lvol.blob.esnap_id)
        unregister_lvol(lvs, lvol)


async def attach_waiting_esnap_clones(target, bdev):
    labels = {bdev.name, bdev.uuid, *bdev.aliases}
    for lvs in module(target).stores:
        for lvol in lvs.ordered_lvols():
            if lvol.registry is None and lvol.blob.esnap_id in labels:
                claim_esnap(bdev)
                await target.bdevs.register(lvol)


# ---- lvstore RPCs -------------------------------------------------------------------------------

@rpc("bdev_lvol_create_lvstore")
async def bdev_lvol_create_lvstore(target, params):
    """vbdev_lvs_create_ext + spdk_lvs_init, in their order: clear method, name length, metadata
    page size, open the base bdev (-19 missing, -1 claimed), cluster size, name in use (all
    synchronous: -errno); then the blobstore init, whose failure the callback answers -32602."""
    p = decode(params, {"bdev_name": ("str", REQUIRED), "lvs_name": ("str", REQUIRED),
                        "cluster_sz": ("uint32", 0), "clear_method": ("str", None),
                        "num_md_pages_per_cluster_ratio": ("uint32", 0), "md_page_size": ("uint32", 0)})
    clear_method = (p.clear_method or "unmap").lower()
    if clear_method not in CLEAR_METHODS:
        raise RpcError(-EINVAL, "Invalid clear_method parameter")
    cluster_sz = p.cluster_sz or DEFAULT_CLUSTER_SIZE
    ratio = p.num_md_pages_per_cluster_ratio or 100
    if not valid_new_name(p.lvs_name) or (p.md_page_size and (
            not 4096 <= p.md_page_size <= 65536 or p.md_page_size & (p.md_page_size - 1))):
        raise errno_error(EINVAL)
    bdev = target.bdevs.get(p.bdev_name)
    if bdev.claim is not None:
        raise errno_error(EPERM)
    if cluster_sz < bdev.block_size or cluster_sz % bdev.block_size:
        raise errno_error(EINVAL)
    if any(lvs.name == p.lvs_name for lvs in module(target).stores):
        raise errno_error(EEXIST)
    size = bdev.num_blocks * bdev.block_size
    geometry = bs.Geometry(size, cluster_sz, ratio)
    if cluster_sz % bs.PAGE or geometry.num_md_pages == 0:
        raise invalid_params(EINVAL)                 # bs_opts_verify, in spdk_bs_init
    if geometry.md_clusters > size // cluster_sz:
        raise invalid_params(ENOMEM)                 # "metadata cannot use more clusters than is available"
    store = await bs.Blobstore.create(bdev, p.lvs_name, cluster_sz, clear_method, ratio)
    lvs = await open_lvs(target, store)
    return lvs.uuid


@rpc("bdev_lvol_get_lvstores", mutating=False)
def bdev_lvol_get_lvstores(target, params):
    p = decode(params, {"lvs_name": ("str", None), "uuid": ("str", None)})
    if p.lvs_name is None and p.uuid is None:
        return [lvs.to_json() for lvs in module(target).stores]
    return [find_lvs(target, p.lvs_name, p.uuid).to_json()]


@rpc("bdev_lvol_rename_lvstore")
async def bdev_lvol_rename_lvstore(target, params):
    p = decode(params, {"old_name": ("str", REQUIRED), "new_name": ("str", REQUIRED)})
    stores = module(target).stores
    lvs = next((s for s in stores if s.name == p.old_name), None)
    if lvs is None:
        raise RpcError(-ENOENT, "Lvol store %s not found" % p.old_name)
    # spdk_lvs_rename checks no name: a longer one is cut to 63 characters
    if any(s.name == p.new_name for s in stores if s is not lvs):
        raise invalid_params(EEXIST)
    lvs.store.name = p.new_name[:NAME_LEN]
    await commit(lvs)
    for lvol in lvs.lvols.values():
        lvol.refresh_alias()
    return True


@rpc("bdev_lvol_grow_lvstore")
async def bdev_lvol_grow_lvstore(target, params):
    p = decode(params, {"lvs_name": ("str", None), "uuid": ("str", None)}, optional=False)
    lvs = find_lvs(target, p.lvs_name, p.uuid)
    await lvs.store.grow()
    return True


@rpc("bdev_lvol_delete_lvstore")
async def bdev_lvol_delete_lvstore(target, params):
    p = decode(params, {"lvs_name": ("str", None), "uuid": ("str", None)}, optional=False)
    lvs = find_lvs(target, p.lvs_name, p.uuid)
    base = lvs.base
    close_lvs(target, lvs)       # hot-removes every lvol, even under a RAID
    await lvs.store.wipe_header()
    target.bdevs.release(base)
    return True


# ---- lvol RPCs ----------------------------------------------------------------------------------

@rpc("bdev_lvol_create")
async def bdev_lvol_create(target, params):
    p = decode(params, {"lvol_name": ("str", REQUIRED), "size_in_mib": ("uint", REQUIRED),
                        "thin_provision": ("bool", False), "uuid": ("str", None), "lvs_name": ("str", None),
                        "clear_method": ("str", None)})
    lvs = find_lvs(target, p.lvs_name, p.uuid)
    if p.clear_method is not None and p.clear_method.lower() not in CLEAR_METHODS:
        raise RpcError(-EINVAL, "Invalid clean_method option")
    if not valid_new_name(p.lvol_name):
        raise errno_error(EINVAL)
    if lvs.find_name(p.lvol_name) is not None:
        raise errno_error(EEXIST)
    num_clusters = clusters_for(lvs, p.size_in_mib * MIB)
    if not p.thin_provision and num_clusters > lvs.store.free_count:
        raise invalid_params(ENOSPC)
    blob = lvs.store.new_blob(p.lvol_name, num_clusters, p.thin_provision)
    blob.clear_method = (p.clear_method or "unmap").lower()
    if not p.thin_provision:
        for cluster in range(num_clusters):
            blob.clusters[cluster] = lvs.store.allocate_cluster()
    await commit(lvs)
    await register_lvol(lvs, blob)
    return blob.uuid


@rpc("bdev_lvol_get_lvols", mutating=False)
def bdev_lvol_get_lvols(target, params):
    p = decode(params, {"lvs_uuid": ("str", None), "lvs_name": ("str", None)})
    if p.lvs_name is None and p.lvs_uuid is None:
        stores = module(target).stores
    else:
        stores = [find_lvs(target, p.lvs_name, p.lvs_uuid)]
    return [lvol.lvol_json() for lvs in stores for lvol in lvs.ordered_lvols()]


@rpc("bdev_lvol_delete")
async def bdev_lvol_delete(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.name)
    lvs, blob = lvol.lvs, lvol.blob
    children = blob.children()
    if len(children) > 1:
        raise RpcError(INTERNAL_ERROR, "Operation not permitted")
    unregister_lvol(lvs, lvol)
    if blob.esnap_id is not None:
        release_esnap(target, blob.esnap_id)
    if children:
        await merge_into_child(lvs, blob, children[0])
    else:
        lvs.store.forget_blob(blob)
        await commit(lvs)
        await lvs.store.release_clusters(list(blob.clusters.values()), blob.clear_method)
    return True


async def merge_into_child(lvs, snapshot, child):
    """Deleting a snapshot with one clone: the clone takes over the clusters it does not have."""
    shadowed = []
    for cluster, physical in snapshot.clusters.items():
        if cluster in child.clusters or cluster >= child.num_clusters:
            shadowed.append(physical)
        else:
            child.clusters[cluster] = physical
    child.parent_id = snapshot.parent_id
    child.esnap_id = snapshot.esnap_id
    child.changed()
    lvs.store.forget_blob(snapshot)
    await commit(lvs)
    await lvs.store.release_clusters(shadowed, snapshot.clear_method)


@rpc("bdev_lvol_snapshot")
async def bdev_lvol_snapshot(target, params):
    p = decode(params, {"lvol_name": ("str", REQUIRED), "snapshot_name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.lvol_name)
    lvs, origin = lvol.lvs, lvol.blob
    if not valid_new_name(p.snapshot_name) or origin.read_only or origin.snapshot:
        raise invalid_params(EINVAL)
    if lvs.find_name(p.snapshot_name) is not None:
        raise invalid_params(EEXIST)
    snap = lvs.store.new_blob(p.snapshot_name, origin.num_clusters, True)
    # the snapshot takes the origin's clusters and place in the chain; the origin becomes its thin clone
    snap.clusters, origin.clusters = origin.clusters, {}
    snap.parent_id, snap.esnap_id = origin.parent_id, origin.esnap_id
    snap.snapshot = snap.read_only = snap.data_ro = True
    snap.clear_method = origin.clear_method
    origin.parent_id, origin.esnap_id, origin.thin = snap.id, None, True
    origin.changed()
    await commit(lvs)
    await register_lvol(lvs, snap)
    return snap.uuid


@rpc("bdev_lvol_clone")
async def bdev_lvol_clone(target, params):
    p = decode(params, {"snapshot_name": ("str", REQUIRED), "clone_name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.snapshot_name)
    lvs, parent = lvol.lvs, lvol.blob
    if not (parent.read_only or parent.snapshot) or not valid_new_name(p.clone_name):
        raise invalid_params(EINVAL)
    if lvs.find_name(p.clone_name) is not None:
        raise invalid_params(EEXIST)
    parent.snapshot = True     # any read-only lvol silently becomes a snapshot (D6, lvol_ops)
    parent.changed()
    clone = lvs.store.new_blob(p.clone_name, parent.num_clusters, True)
    clone.parent_id = parent.id
    await commit(lvs)
    await register_lvol(lvs, clone)
    return clone.uuid


@rpc("bdev_lvol_clone_bdev")
async def bdev_lvol_clone_bdev(target, params):
    p = decode(params, {"bdev": ("str", REQUIRED), "lvs_name": ("str", REQUIRED), "clone_name": ("str", REQUIRED)})
    lvs = next((s for s in module(target).stores if s.name == p.lvs_name), None)
    if lvs is None:
        raise RpcError(-32602, "lvs does not exist")
    esnap = target.bdevs.find(p.bdev)
    if esnap is None:
        raise RpcError(-32602, "bdev does not exist")
    if isinstance(esnap, LvolBdev) and esnap.lvs is lvs:
        raise RpcError(-32602, "bdev is an lvol in same lvs as clone; use bdev_lvol_clone instead")
    if lvs.find_name(p.clone_name) is not None:
        raise invalid_params(EEXIST)
    if not valid_new_name(p.clone_name):
        raise invalid_params(EINVAL)
    clone = lvs.store.new_blob(p.clone_name, clusters_for(lvs, esnap.num_blocks * esnap.block_size), True)
    clone.esnap_id = esnap.uuid
    await commit(lvs)
    await register_lvol(lvs, clone)
    return clone.uuid


@rpc("bdev_lvol_rename")
async def bdev_lvol_rename(target, params):
    p = decode(params, {"old_name": ("str", REQUIRED), "new_name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.old_name)
    other = lvol.lvs.find_name(p.new_name)
    if other is not None and other is not lvol:
        raise invalid_params(EEXIST)
    # no validation, as upstream: the full name is persisted, the in-memory one is cut to 63
    lvol.blob.name = p.new_name
    lvol.blob.changed()
    await commit(lvol.lvs)
    lvol.refresh_alias(p.new_name)
    return True


@rpc("bdev_lvol_resize")
async def bdev_lvol_resize(target, params):
    p = decode(params, {"name": ("str", REQUIRED), "size_in_mib": ("uint", REQUIRED)})
    lvol = find_lvol(target, p.name)
    lvs, blob = lvol.lvs, lvol.blob
    if blob.snapshot or blob.read_only:
        raise invalid_params(EPERM)
    new = clusters_for(lvs, p.size_in_mib * MIB)
    if new > blob.num_clusters and not blob.thin and new - blob.num_clusters > lvs.store.free_count:
        raise invalid_params(ENOSPC)
    freed = resize_blob(lvs, blob, new)
    await commit(lvs)
    await lvs.store.release_clusters(freed, "none")
    blocks = new * lvs.store.cluster_size // lvol.block_size
    if blocks < lvol.num_blocks and lvol.claim is not None:
        # upstream shrinks the blob, then the open bdev refuses the smaller size
        raise invalid_params(EBUSY)
    lvol.resize(blocks)
    return True


def resize_blob(lvs, blob, new):
    """Change the blob's size in clusters; returns the physical clusters to free."""
    freed = [blob.clusters.pop(c) for c in sorted(blob.clusters) if c >= new]
    if not blob.thin:
        for cluster in range(blob.num_clusters, new):
            blob.clusters[cluster] = lvs.store.allocate_cluster()
    blob.num_clusters = new
    blob.changed()
    return freed


@rpc("bdev_lvol_set_read_only")
async def bdev_lvol_set_read_only(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.name)
    lvol.blob.read_only = True
    lvol.blob.changed()
    await commit(lvol.lvs)
    return True


@rpc("bdev_lvol_set_parent")
async def bdev_lvol_set_parent(target, params):
    p = decode(params, {"lvol_name": ("str", REQUIRED), "parent_name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.lvol_name)
    parent = find_lvol(target, p.parent_name)
    blob = lvol.blob
    if (parent.lvs is not lvol.lvs or not parent.blob.snapshot or not blob.thin or blob.snapshot
            or parent.blob.num_clusters != blob.num_clusters or parent is lvol):
        raise invalid_params(EINVAL)
    if blob.esnap_id is not None:
        release_esnap(target, blob.esnap_id)
    blob.parent_id, blob.esnap_id = parent.blob.id, None
    blob.changed()
    await commit(lvol.lvs)
    return True


@rpc("bdev_lvol_set_parent_bdev")
async def bdev_lvol_set_parent_bdev(target, params):
    p = decode(params, {"lvol_name": ("str", REQUIRED), "parent_name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.lvol_name)
    esnap = target.bdevs.find(p.parent_name)
    if esnap is None:
        raise invalid_params(ENODEV)
    blob, lvs = lvol.blob, lvol.lvs
    if not blob.thin or blob.snapshot or esnap is lvol or \
            (esnap.num_blocks * esnap.block_size) % lvs.store.cluster_size:
        raise invalid_params(EINVAL)
    claim_esnap(esnap)
    if blob.esnap_id is not None:
        release_esnap(target, blob.esnap_id)
    blob.parent_id, blob.esnap_id = None, esnap.uuid
    blob.changed()
    await commit(lvs)
    return True


@rpc("bdev_lvol_inflate")
async def bdev_lvol_inflate(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.name)
    await detach_from_parent(lvol, every_cluster=True)
    return True


@rpc("bdev_lvol_decouple_parent")
async def bdev_lvol_decouple_parent(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    lvol = find_lvol(target, p.name)
    if lvol.blob.parent_id is None and lvol.blob.esnap_id is None:
        raise invalid_params(EINVAL)
    await detach_from_parent(lvol, every_cluster=False)
    return True


async def detach_from_parent(lvol, every_cluster):
    """inflate (every cluster, the lvol becomes thick) or decouple (only what the parents hold)."""
    blob, lvs = lvol.blob, lvol.lvs
    if blob.snapshot:
        raise invalid_params(EPERM)
    wanted = [c for c in range(blob.num_clusters) if c not in blob.clusters
              and (every_cluster or backed_by_parent(blob, c))]
    if len(wanted) > lvs.store.free_count:
        raise invalid_params(ENOSPC)
    for cluster in wanted:
        content = await blob.read_backing(cluster, 0, lvs.store.cluster_size)
        physical = lvs.store.allocate_cluster()
        await lvs.store.write_physical(physical, 0, content)
        blob.clusters[cluster] = physical
    if blob.esnap_id is not None:
        release_esnap(lvs.target, blob.esnap_id)
    blob.parent_id = blob.esnap_id = None
    if every_cluster:
        blob.thin = False
    blob.changed()
    await commit(lvs)


def backed_by_parent(blob, cluster):
    """Whether some ancestor (or the esnap) provides data for ``cluster``."""
    node = blob
    while True:
        if node.esnap_id is not None:
            return True
        node = node.parent
        if node is None:
            return False
        if cluster in node.clusters:
            return True


# ---- shallow copy -------------------------------------------------------------------------------

class ShallowCopy:
    def __init__(self, total):
        self.copied = 0
        self.total = total
        self.state = "in progress"
        self.error = None

    def to_json(self):
        info = {"copied_clusters": self.copied, "total_clusters": self.total, "state": self.state}
        if self.error is not None:
            info["error"] = self.error
        return info


@rpc("bdev_lvol_start_shallow_copy")
def bdev_lvol_start_shallow_copy(target, params):
    p = decode(params, {"src_lvol_name": ("str", REQUIRED), "dst_bdev_name": ("str", REQUIRED)})
    src = find_lvol(target, p.src_lvol_name)
    mod = module(target)
    # the operation id is taken before the destination is opened, so a refused start uses one up
    op_id = mod.next_copy_id
    mod.next_copy_id += 1
    dst = target.bdevs.find(p.dst_bdev_name)
    if dst is None:
        raise invalid_params(ENODEV)
    if dst.claim is not None:
        raise invalid_params(EPERM)
    writable = not (src.blob.read_only or src.blob.snapshot)
    job = ShallowCopy(src.blob.allocated())
    mod.copies[op_id] = job
    target.spawn(run_shallow_copy(src, dst, job, writable))
    return {"operation_id": op_id}


async def run_shallow_copy(src, dst, job, writable):
    """Copy the source's own clusters, whole, to the same offsets of the destination."""
    cluster_size = src.lvs.store.cluster_size
    try:
        if writable:
            raise BdevIOError("Operation not permitted")
        if dst.num_blocks * dst.block_size < src.num_blocks * src.block_size:
            raise BdevIOError("Invalid argument")
        for cluster in sorted(src.blob.clusters):
            await asyncio.sleep(0)
            data = await src.lvs.store.read_physical(src.blob.clusters[cluster], 0, cluster_size)
            await dst.write(cluster * cluster_size // dst.block_size, data)
            job.copied += 1
        job.state = "complete"
    except BdevIOError as exc:
        job.state, job.error = "error", exc.reason


@rpc("bdev_lvol_check_shallow_copy", mutating=False)
def bdev_lvol_check_shallow_copy(target, params):
    p = decode(params, {"operation_id": ("uint", REQUIRED)})
    mod = module(target)
    job = mod.copies.get(p.operation_id)
    if job is None:
        raise errno_error(ENODEV)
    if job.state != "in progress":
        del mod.copies[p.operation_id]    # the final state is reported once
    return job.to_json()

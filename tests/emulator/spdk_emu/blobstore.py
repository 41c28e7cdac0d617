"""An lvstore's blobstore living inside its base bdev: metadata + data clusters, crash-safe.

Geometry (same numbers as SPDK's blobstore for the same device, so total_data_clusters,
free_clusters and max_growable_size match real SPDK):
  total clusters N = device bytes // cluster size; metadata pages = N * ratio / 100 (ratio 100 by
  default); the metadata region is 1 super page + used-page mask + used-cluster mask + used-blobid
  mask + the metadata pages, rounded up to whole clusters (4 GiB, 1 MiB clusters: 17 clusters,
  4079 data clusters). It is fixed at creation; bdev_lvol_grow_lvstore only adds data clusters,
  up to what the one-page cluster mask can describe: max_growable_size.

On-disk format of the metadata region (the emulator's own, not SPDK's):
  page 0: lvstore header, written at creation (and cleared by delete_lvstore):
    b"EMUBLOBSTORE\\0\\0\\0\\1" | json {uuid, cluster_size, md_bytes, block_size}, zero padded
  then two metadata slots of equal size (A at page 1, B right after A). Each slot is
    b"EMUSLOT1" | generation u64 | payload length u64 | sha256(payload) | zlib(json payload)
  Every metadata change writes the whole state with generation + 1 into the slot NOT holding the
  current generation, so a torn write (SIGKILL mid-write) damages only the older copy; loading
  takes the valid slot (checksum ok) with the highest generation. Data clusters are written in
  place: a write into an unallocated cluster first fills the new cluster (copy from the parent for
  clones), then commits the cluster map, then completes, so an acknowledged write is never lost
  and an interrupted one leaves the old contents.

Blob semantics follow SPDK's blobstore: thin provisioning, cluster-granular copy-on-write from the
parent blob or an external snapshot (esnap, any bdev); a thin blob without a parent does NOT
initialise a newly allocated cluster (it holds whatever the device had: D1 in tests/emulator/README.md,
fixtures/d1_set_parent_thin_no_parent.session.jsonl); clusters
are allocated lowest-free-first, so a deleted blob's clusters are the next ones reused.
"""
import asyncio
import hashlib
import json
import struct
import uuid as uuidlib
import zlib

from .bdev import BdevIOError

PAGE = 4096
MASK_HEADER = 5            # sizeof(struct spdk_bs_md_mask): type u8 + length u32
HEADER_MAGIC = b"EMUBLOBSTORE\0\0\0\1"
SLOT_MAGIC = b"EMUSLOT1"
SLOT_HEAD = struct.Struct("<8sQQ32s")
NAME_MAX = 64              # SPDK_LVOL_NAME_MAX, including the NUL


class MetadataFull(Exception):
    """The metadata no longer fits its slot (SPDK would run out of metadata pages)."""


class NotABlobstore(Exception):
    """The device holds no loadable lvstore."""


def div_up(a, b):
    return -(-a // b)


def mask_pages(bits):
    return div_up(MASK_HEADER + div_up(bits, 8), PAGE)


class Geometry:
    """Where metadata ends and data clusters begin, computed like spdk_bs_init."""

    def __init__(self, device_bytes, cluster_size, md_ratio=100):
        self.cluster_size = cluster_size
        total = device_bytes // cluster_size
        self.num_md_pages = total * md_ratio // 100
        pages = (1 + mask_pages(self.num_md_pages) + mask_pages(total) + mask_pages(self.num_md_pages)
                 + self.num_md_pages)
        self.md_clusters = div_up(pages * PAGE, cluster_size)
        self.cluster_mask_pages = mask_pages(total)
        self.md_bytes = self.md_clusters * cluster_size

    def max_clusters(self):
        return (self.cluster_mask_pages * PAGE - MASK_HEADER) * 8

    def max_growable_size(self):
        return self.max_clusters() * self.cluster_size


# ---- blobs ---------------------------------------------------------------------------------------

class Blob:
    """One blob: a size in clusters, a cluster map (logical -> physical) and an optional parent."""

    def __init__(self, store, blob_id, uuid, name, num_clusters, thin):
        self.store = store
        self.id = blob_id
        self.uuid = uuid
        self.name = name                 # the full persisted name (see lvol rename)
        self.num_clusters = num_clusters
        self.thin = thin
        self.read_only = False
        self.data_ro = False             # in memory: snapshots, and read-only blobs once reloaded
        self.snapshot = False            # set by snapshot creation or by being cloned; at load: has a clone
        self.parent_id = None            # a snapshot blob of the same store
        self.esnap_id = None             # an external snapshot: the bdev's UUID
        self.clear_method = "unmap"
        self.clusters = {}
        self._pending = {}               # logical cluster -> future while being allocated
        self._meta = None

    # ---- relations -------------------------------------------------------------------------
    @property
    def parent(self):
        return self.store.blobs.get(self.parent_id) if self.parent_id is not None else None

    def children(self):
        return [b for b in self.store.ordered_blobs() if b.parent_id == self.id]

    def allocated(self):
        return len(self.clusters)

    def changed(self):
        self._meta = None

    # ---- persistence -----------------------------------------------------------------------
    def to_meta(self):
        if self._meta is None:
            self._meta = {"id": self.id, "uuid": self.uuid, "name": self.name,
                          "num_clusters": self.num_clusters, "thin": self.thin, "read_only": self.read_only,
                          "snapshot": self.snapshot, "parent": self.parent_id, "esnap": self.esnap_id,
                          "clear_method": self.clear_method, "runs": cluster_runs(self.clusters)}
        return self._meta

    @classmethod
    def from_meta(cls, store, meta):
        blob = cls(store, meta["id"], meta["uuid"], meta["name"], meta["num_clusters"], meta["thin"])
        blob.read_only = blob.data_ro = meta["read_only"]
        blob.snapshot = meta["snapshot"]
        blob.parent_id = meta["parent"]
        blob.esnap_id = meta["esnap"]
        blob.clear_method = meta["clear_method"]
        for logical, physical, count in meta["runs"]:
            for i in range(count):
                blob.clusters[logical + i] = physical + i
        return blob

    # ---- I/O -------------------------------------------------------------------------------
    async def read(self, offset, length):
        """Bytes [offset, offset+length) of the blob (offset/length in bytes, block aligned)."""
        out = bytearray()
        for cluster, start, size in self.store.split(offset, length):
            out += await self.read_in_cluster(cluster, start, size)
        return bytes(out)

    async def read_in_cluster(self, cluster, start, size):
        physical = self.clusters.get(cluster)
        if physical is not None:
            return await self.store.read_physical(physical, start, size)
        return await self.read_backing(cluster, start, size)

    async def read_backing(self, cluster, start, size):
        """What an unallocated cluster reads as: the parent's data, the esnap's, or zeros."""
        parent = self.parent
        if parent is not None:
            if cluster >= parent.num_clusters:
                return bytes(size)
            return await parent.read_in_cluster(cluster, start, size)
        if self.esnap_id is not None:
            return await self.store.read_esnap(self.esnap_id, cluster * self.store.cluster_size + start, size)
        return bytes(size)

    async def write(self, offset, data):
        pos = 0
        for cluster, start, size in self.store.split(offset, len(data)):
            physical = await self.ensure_cluster(cluster)
            await self.store.write_physical(physical, start, data[pos:pos + size])
            pos += size

    async def write_zeroes(self, offset, length):
        """Zeros; an unallocated cluster with nothing behind it already reads as zeros: no allocation."""
        for cluster, start, size in self.store.split(offset, length):
            if cluster not in self.clusters and self.parent_id is None and self.esnap_id is None:
                continue
            physical = await self.ensure_cluster(cluster)
            await self.store.write_physical(physical, start, bytes(size))

    async def unmap(self, offset, length):
        """Deallocate: allocated ranges read back as zeros afterwards; nothing gets allocated."""
        for cluster, start, size in self.store.split(offset, length):
            physical = self.clusters.get(cluster)
            if physical is not None:
                await self.store.write_physical(physical, start, bytes(size))

    async def ensure_cluster(self, cluster):
        """The physical cluster behind ``cluster``, allocating (and filling) it on first write."""
        while cluster in self._pending:
            await asyncio.shield(self._pending[cluster])
        physical = self.clusters.get(cluster)
        if physical is not None:
            return physical
        done = asyncio.get_running_loop().create_future()
        self._pending[cluster] = done
        try:
            physical = self.store.allocate_cluster()
            try:
                if self.parent_id is not None or self.esnap_id is not None:
                    # copy-on-write: the whole cluster comes from the parent first
                    content = await self.read_backing(cluster, 0, self.store.cluster_size)
                    await self.store.write_physical(physical, 0, content)
            except BaseException:
                self.store.free_cluster(physical)
                raise
            self.clusters[cluster] = physical
            self.changed()
            await self.store.commit()
            return physical
        finally:
            del self._pending[cluster]
            done.set_result(None)


def cluster_runs(clusters):
    runs = []
    for logical in sorted(clusters):
        physical = clusters[logical]
        if runs and runs[-1][0] + runs[-1][2] == logical and runs[-1][1] + runs[-1][2] == physical:
            runs[-1][2] += 1
        else:
            runs.append([logical, physical, 1])
    return runs


# ---- the store -----------------------------------------------------------------------------------

class Blobstore:
    """The lvstore's storage: geometry, cluster allocation, blobs, metadata commits."""

    def __init__(self, bdev, uuid, name, cluster_size, geometry, clear_method="unmap"):
        self.bdev = bdev
        self.uuid = uuid
        self.name = name
        self.cluster_size = cluster_size
        self.geometry = geometry
        self.clear_method = clear_method
        self.total_clusters = bdev.num_blocks * bdev.block_size // cluster_size
        self.blobs = {}                    # id -> Blob
        self.order = []                    # blob ids in lvol list order
        self.used = bytearray(self.total_clusters)
        self.free_count = self.total_clusters - geometry.md_clusters
        self.generation = 0
        self.esnap_reader = None           # async (bdev_uuid, offset, length) -> bytes
        self.extra = {}                    # lvol-level persisted fields

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def total_data_clusters(self):
        return self.total_clusters - self.geometry.md_clusters

    def slot_size(self):
        return (self.geometry.md_bytes - PAGE) // 2 // PAGE * PAGE

    def split(self, offset, length):
        """(cluster, offset in cluster, size) pieces of a byte range."""
        end = offset + length
        while offset < end:
            cluster, start = divmod(offset, self.cluster_size)
            size = min(self.cluster_size - start, end - offset)
            yield cluster, start, size
            offset += size

    # ---- blobs ------------------------------------------------------------------------------
    def ordered_blobs(self):
        return [self.blobs[i] for i in self.order]

    def next_blob_id(self):
        blob_id = 0
        while blob_id in self.blobs:
            blob_id += 1
        return blob_id

    def new_blob(self, name, num_clusters, thin, blob_uuid=None):
        blob = Blob(self, self.next_blob_id(), blob_uuid or str(uuidlib.uuid4()), name, num_clusters, thin)
        self.blobs[blob.id] = blob
        self.order.append(blob.id)
        return blob

    def forget_blob(self, blob):
        del self.blobs[blob.id]
        self.order.remove(blob.id)

    # ---- clusters ---------------------------------------------------------------------------
    def allocate_cluster(self):
        if self.free_count <= 0:
            raise BdevIOError("No space left on device")
        index = self.used.find(0, self.geometry.md_clusters)
        self.used[index] = 1
        self.free_count -= 1
        return index

    def free_cluster(self, index):
        if self.used[index]:
            self.used[index] = 0
            self.free_count += 1

    def claim_cluster(self, index):
        """Mark a cluster used while loading."""
        if index >= self.total_clusters or self.used[index]:
            raise NotABlobstore("cluster %d used twice or beyond the device" % index)
        self.used[index] = 1
        self.free_count -= 1

    async def release_clusters(self, physicals, clear_method):
        """Free clusters, clearing them first as ``clear_method`` says (unmap only if supported)."""
        for physical in physicals:
            await self.clear_cluster(physical, clear_method)
            self.free_cluster(physical)

    async def clear_cluster(self, physical, clear_method):
        blocks = self.cluster_size // self.bdev.block_size
        lba = physical * blocks
        try:
            if clear_method == "unmap" and self.bdev.io_types().get("unmap"):
                await self.bdev.unmap(lba, blocks)
            elif clear_method == "write_zeroes":
                await self.bdev.write_zeroes(lba, blocks)
        except BdevIOError:
            pass   # like SPDK, a failed clear does not stop the delete

    # ---- data I/O ---------------------------------------------------------------------------
    async def read_physical(self, physical, start, size):
        bs = self.bdev.block_size
        return await self.bdev.read((physical * self.cluster_size + start) // bs, size // bs)

    async def write_physical(self, physical, start, data):
        await self.bdev.write((physical * self.cluster_size + start) // self.bdev.block_size, data)

    async def read_esnap(self, bdev_uuid, offset, length):
        if self.esnap_reader is None:
            raise BdevIOError("external snapshot unavailable")
        return await self.esnap_reader(bdev_uuid, offset, length)

    # ---- metadata ---------------------------------------------------------------------------
    def state(self):
        return {"uuid": self.uuid, "name": self.name, "cluster_size": self.cluster_size,
                "total_clusters": self.total_clusters, "clear_method": self.clear_method,
                "extra": self.extra, "blobs": [b.to_meta() for b in self.ordered_blobs()]}

    async def commit(self):
        """Write the whole state into the older slot (crash-safe double buffering)."""
        payload = zlib.compress(json.dumps(self.state(), separators=(",", ":")).encode(), 1)
        head = SLOT_HEAD.pack(SLOT_MAGIC, self.generation + 1, len(payload), hashlib.sha256(payload).digest())
        record = head + payload
        if len(record) > self.slot_size():
            raise MetadataFull()
        self.generation += 1
        record += bytes(-len(record) % self.bdev.block_size)
        offset = PAGE + (self.generation % 2) * self.slot_size()
        await self.bdev.write(offset // self.bdev.block_size, record)

    async def write_header(self):
        info = json.dumps({"uuid": self.uuid, "cluster_size": self.cluster_size,
                           "md_bytes": self.geometry.md_bytes, "num_md_pages": self.geometry.num_md_pages,
                           "cluster_mask_pages": self.geometry.cluster_mask_pages,
                           "block_size": self.bdev.block_size}).encode()
        page = HEADER_MAGIC + struct.pack("<I", len(info)) + info
        await self.bdev.write(0, page + bytes(PAGE - len(page)))

    async def wipe_header(self):
        await self.bdev.write(0, bytes(PAGE))

    # ---- creation, loading, growing ---------------------------------------------------------
    @classmethod
    async def create(cls, bdev, name, cluster_size, clear_method="unmap", md_ratio=100):
        geometry = Geometry(bdev.num_blocks * bdev.block_size, cluster_size, md_ratio)
        store = cls(bdev, str(uuidlib.uuid4()), name, cluster_size, geometry, clear_method)
        for index in range(geometry.md_clusters):
            store.used[index] = 1
        await store.clear_data_region()
        await bdev.write_zeroes(PAGE // bdev.block_size, 2 * store.slot_size() // bdev.block_size)  # no stale slot
        await store.write_header()
        await store.commit()
        return store

    async def clear_data_region(self):
        """SPDK clears the whole device at lvstore creation with the lvstore's clear method."""
        blocks = (self.total_clusters - self.geometry.md_clusters) * self.cluster_size // self.bdev.block_size
        first = self.geometry.md_bytes // self.bdev.block_size
        try:
            if self.clear_method == "unmap" and self.bdev.io_types().get("unmap"):
                await self.bdev.unmap(first, blocks)
            elif self.clear_method == "write_zeroes":
                await self.bdev.write_zeroes(first, blocks)
        except BdevIOError:
            pass

    @classmethod
    async def load(cls, bdev):
        """Load the lvstore on ``bdev`` or raise NotABlobstore."""
        if bdev.num_blocks * bdev.block_size < 2 * PAGE:
            raise NotABlobstore("device too small")
        header = await bdev.read(0, max(1, PAGE // bdev.block_size))
        if not header.startswith(HEADER_MAGIC):
            raise NotABlobstore("no lvstore header")
        (length,) = struct.unpack_from("<I", header, len(HEADER_MAGIC))
        info = json.loads(header[len(HEADER_MAGIC) + 4:len(HEADER_MAGIC) + 4 + length])
        if info["block_size"] != bdev.block_size:
            raise NotABlobstore("block size changed")
        geometry = Geometry.__new__(Geometry)
        geometry.cluster_size = info["cluster_size"]
        geometry.md_bytes = info["md_bytes"]
        geometry.md_clusters = info["md_bytes"] // info["cluster_size"]
        geometry.num_md_pages = info["num_md_pages"]
        geometry.cluster_mask_pages = info["cluster_mask_pages"]
        state, generation = await cls.read_newest_slot(bdev, geometry)
        store = cls(bdev, state["uuid"], state["name"], state["cluster_size"], geometry, state["clear_method"])
        store.generation = generation
        store.total_clusters = min(state["total_clusters"], store.total_clusters)
        store.used = bytearray(store.total_clusters)
        store.free_count = store.total_clusters - geometry.md_clusters
        for index in range(geometry.md_clusters):
            store.used[index] = 1
        store.extra = state.get("extra", {})
        for meta in state["blobs"]:
            blob = Blob.from_meta(store, meta)
            store.blobs[blob.id] = blob
            store.order.append(blob.id)
            for physical in blob.clusters.values():
                store.claim_cluster(physical)
        # SPDK rebuilds its list of snapshots at load from the clones' parent links: a snapshot with no
        # clone left is listed as none (is_snapshot false, set_parent onto it refused) until it is cloned
        # again. It stays read-only (clonable, never written).
        parents = {blob.parent_id for blob in store.blobs.values()}
        for blob in store.blobs.values():
            blob.snapshot = blob.id in parents
        return store

    @staticmethod
    async def read_newest_slot(bdev, geometry):
        slot_size = (geometry.md_bytes - PAGE) // 2 // PAGE * PAGE
        best = None
        for slot in (0, 1):
            record = await bdev.read((PAGE + slot * slot_size) // bdev.block_size, slot_size // bdev.block_size)
            magic, generation, length, digest = SLOT_HEAD.unpack_from(record)
            payload = record[SLOT_HEAD.size:SLOT_HEAD.size + length]
            if magic != SLOT_MAGIC or len(payload) != length or hashlib.sha256(payload).digest() != digest:
                continue
            if best is None or generation > best[1]:
                best = (payload, generation)
        if best is None:
            raise NotABlobstore("no valid metadata slot")
        return json.loads(zlib.decompress(best[0])), best[1]

    async def grow(self):
        """Take in clusters added to the device since creation (bdev_lvol_grow_lvstore)."""
        total = min(self.bdev.num_blocks * self.bdev.block_size // self.cluster_size, self.geometry.max_clusters())
        if total <= self.total_clusters:
            return
        self.used.extend(bytes(total - self.total_clusters))
        self.free_count += total - self.total_clusters
        self.total_clusters = total
        await self.commit()

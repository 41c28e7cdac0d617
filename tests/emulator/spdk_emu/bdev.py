"""Block devices and the bdev layer: names, aliases, UUIDs, claims, examine, hot remove.

Every bdev kind (aio, lvol, nvme, raid) subclasses ``Bdev``. I/O methods are coroutines because a
bdev may be remote (an NVMe-oF namespace on another emulator); local bdevs complete at once. All
calls happen on the target's single event loop, so no locking is needed.
"""
import uuid as uuidlib

from .errors import RpcError, EEXIST, ENODEV, EIO

IO_TYPES = (
    "read", "write", "unmap", "flush", "reset", "nvme_admin", "nvme_io", "nvme_io_md",
    "write_zeroes", "zcopy", "get_zone_info", "zone_management", "zone_append", "compare",
    "compare_and_write", "abort", "seek_hole", "seek_data", "copy", "nvme_iov_md", "nvme_nssr",
    "write_uncorrectable",
)


EXAMINERS = []   # module-level ``async examine(target, bdev)`` functions; each Target binds them


def examiner(func):
    """Decorator for a subsystem's examine function (lvol loads lvstores, raid assembles members)."""
    EXAMINERS.append(func)
    return func


class BdevIOError(Exception):
    """An I/O that failed (the NVMe status or errno is in ``reason``)."""

    def __init__(self, reason="I/O error"):
        super().__init__(reason)
        self.reason = reason


class Claim:
    def __init__(self, module, claim_type, owner=None):
        self.module = module          # e.g. "lvol", "raid", "nvmf" (for json: claimed + claim_type)
        self.claim_type = claim_type  # "read_many_write_one", "exclusive_write", "read_many_write_none", ...
        self.owner = owner


class Bdev:
    """Base class. Subclasses set ``product_name`` and implement the I/O coroutines."""

    product_name = "bdev"
    module_name = "bdev"

    def __init__(self, name, block_size, num_blocks, uuid=None, aliases=()):
        self.name = name
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.uuid = uuid or str(uuidlib.uuid4())
        self.aliases = list(aliases)
        self.claim = None
        self.registry = None
        self._remove_callbacks = []   # callables(bdev) run when the bdev goes away
        self._resize_callbacks = []   # callables(bdev) run after the size changed
        self.fault = None             # emulator-only fault injection: an error reason string
        self._io_types = None         # supported_io_types() as taken when the bdev registered

    # ---- I/O (override) ------------------------------------------------------------------
    async def read(self, offset_blocks, num_blocks):
        raise BdevIOError("read not supported")

    async def write(self, offset_blocks, data):
        raise BdevIOError("write not supported")

    async def write_zeroes(self, offset_blocks, num_blocks):
        await self.write(offset_blocks, bytes(num_blocks * self.block_size))

    async def unmap(self, offset_blocks, num_blocks):
        raise BdevIOError("unmap not supported")

    async def flush(self):
        return None

    def check_fault(self):
        if self.fault:
            raise BdevIOError(self.fault)

    # ---- description ---------------------------------------------------------------------
    def supported_io_types(self):
        """What the module answers now (override); see io_types()."""
        return {name: name in ("read", "write", "flush", "reset") for name in IO_TYPES}

    def io_types(self):
        """spdk_bdev_io_type_supported: bdev_register asks the module once and keeps the mask, so a
        RAID keeps the types of its first members, and an lvol made read-only later still shows
        write (bdev_get_bdevs, the RAID's and the NVMe-oF target's own checks all use this)."""
        return dict(self._io_types) if self._io_types is not None else self.supported_io_types()

    def config_json(self):
        """The ``{"method", "params"}`` that re-creates this bdev in framework_get_config, or None."""
        return None

    def memory_domains(self):
        """``memory_domains`` of bdev_get_bdevs (NVMe bdevs show one; RAID lists its members'), or None."""
        return None

    def driver_specific(self):
        """``driver_specific`` of bdev_get_bdevs, or None to leave it out."""
        return None

    def extra_info(self):
        """Extra top-level keys some kinds add to bdev_get_bdevs (for example ``md_size``)."""
        return {}

    def to_json(self):
        info = {
            "name": self.name,
            "aliases": list(self.aliases),
            "product_name": self.product_name,
            "block_size": self.block_size,
            "num_blocks": self.num_blocks,
        }
        info.update(self.extra_info_before_uuid())
        info["uuid"] = self.uuid
        info.update(self.extra_info())
        info["assigned_rate_limits"] = {
            "rw_ios_per_sec": 0, "rw_mbytes_per_sec": 0,
            "r_mbytes_per_sec": 0, "w_mbytes_per_sec": 0,
        }
        info["claimed"] = self.claim is not None
        if self.claim is not None:
            info["claim_type"] = self.claim.claim_type
        info["zoned"] = False
        info["supported_io_types"] = self.io_types()
        domains = self.memory_domains()
        if domains:
            info["memory_domains"] = domains
        specific = self.driver_specific()
        if specific is not None:
            info["driver_specific"] = specific
        return info

    def extra_info_before_uuid(self):
        """Keys that SPDK prints between num_blocks and uuid (write alignment hints)."""
        return {
            "preferred_write_alignment": 0, "preferred_write_granularity": 0,
            "optimal_write_size": 0, "preferred_unmap_alignment": 0,
            "preferred_unmap_granularity": 0,
        }

    # ---- life cycle ----------------------------------------------------------------------
    def on_remove(self, callback):
        """Register ``callback(bdev)`` run when this bdev is unregistered (hot remove)."""
        self._remove_callbacks.append(callback)

    def forget_remove(self, callback):
        if callback in self._remove_callbacks:
            self._remove_callbacks.remove(callback)

    def resize(self, num_blocks):
        """Called by the owner when the size changes (lvol resize, remote namespace grew)."""
        self.num_blocks = num_blocks
        for callback in list(self._resize_callbacks):
            callback(self)

    def on_resize(self, callback):
        """Register ``callback(bdev)`` run after ``resize`` (a RAID follows its members' size)."""
        self._resize_callbacks.append(callback)

    def forget_resize(self, callback):
        if callback in self._resize_callbacks:
            self._resize_callbacks.remove(callback)

    def destroy(self):
        """Release whatever the bdev holds once unregistered (override)."""


class BdevRegistry:
    """All bdevs of one target, found by name, alias or UUID."""

    def __init__(self):
        self._bdevs = []
        self.examiners = []          # coroutine functions examine(bdev) run on registration
        self.auto_examine = True     # bdev_set_options bdev_auto_examine
        self.examine_allowlist = []     # names given to bdev_examine while auto examine is off, in order

    def __iter__(self):
        return iter(list(self._bdevs))

    def find(self, name):
        for bdev in self._bdevs:
            if bdev.name == name or name in bdev.aliases or bdev.uuid == name:
                return bdev
        return None

    def get(self, name):
        """Like find, but raises -19 "No such device" the way most bdev RPCs answer."""
        bdev = self.find(name)
        if bdev is None:
            raise RpcError(-ENODEV, "No such device")
        return bdev

    def name_taken(self, name):
        return self.find(name) is not None

    async def register(self, bdev, examine=None):
        """Add a bdev; then, unless auto examine is off, let each examiner look at it."""
        for label in [bdev.name] + bdev.aliases:
            if self.name_taken(label):
                raise RpcError(-EEXIST, "File exists")
        bdev.registry = self
        bdev._io_types = bdev.supported_io_types()
        self._bdevs.append(bdev)
        if examine is None:
            examine = self.auto_examine or bdev.name in self.examine_allowlist
        if examine:
            await self.examine(bdev)
        return bdev

    async def examine(self, bdev):
        for examiner in list(self.examiners):
            if bdev in self._bdevs and bdev.claim is None:
                await examiner(bdev)

    def unregister(self, bdev):
        """Hot remove: tell everyone holding the bdev, then forget it."""
        if bdev not in self._bdevs:
            return
        self._bdevs.remove(bdev)
        for callback in list(bdev._remove_callbacks):
            callback(bdev)
        bdev._remove_callbacks.clear()
        bdev.claim = None
        bdev.destroy()

    def claim(self, bdev, module, claim_type="exclusive_write", owner=None):
        if bdev.claim is not None:
            raise BdevClaimedError(bdev)
        bdev.claim = Claim(module, claim_type, owner)
        return bdev.claim

    @staticmethod
    def release(bdev):
        bdev.claim = None


class BdevClaimedError(RpcError):
    """A bdev is already claimed; most RPCs report this as -1/-EPERM or -32602, see callers."""

    def __init__(self, bdev):
        super().__init__(-1, "bdev %s already claimed" % bdev.name)
        self.bdev = bdev


__all__ = ["Bdev", "BdevRegistry", "BdevIOError", "BdevClaimedError", "Claim", "EIO"]

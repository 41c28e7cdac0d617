"""AIO bdevs: a block device over a regular file (bdev_aio_create / delete / rescan).

I/O is synchronous pread/pwrite on the event loop: the page cache makes it fast, and a write that
returned is in the kernel, so it survives a SIGKILL of the emulator (as with real SPDK's aio).
As recorded in v26.05, an aio bdev supports UNMAP only when created with ``fallocate: true``
(then an unmap punches a hole and reads back zeros); WRITE_ZEROES is always offered (the bdev
layer emulates it by writing zeros).
"""
import ctypes
import ctypes.util
import fcntl
import os
import stat
import struct
import uuid as uuidlib

from .bdev import Bdev, BdevIOError
from .errors import RpcError, errno_error, EINVAL, ENODEV
from .params import decode, REQUIRED
from .rpc import rpc

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
ZERO_CHUNK = 4 << 20

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def punch_hole(fd, offset, length):
    if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class AioBdev(Bdev):
    product_name = "AIO disk"
    module_name = "aio"

    def __init__(self, name, filename, fd, block_size, block_size_override, readonly, fallocate, uuid):
        size = os.fstat(fd).st_size
        super().__init__(name, block_size, size // block_size, uuid=uuid, aliases=[uuid])
        self.filename = filename
        self.fd = fd
        self.block_size_override = block_size_override
        self.readonly = readonly
        self.fallocate = fallocate

    # ---- I/O -------------------------------------------------------------------------------
    def _check_range(self, offset_blocks, num_blocks):
        if offset_blocks < 0 or num_blocks < 0 or offset_blocks + num_blocks > self.num_blocks:
            raise BdevIOError("LBA out of range")

    async def read(self, offset_blocks, num_blocks):
        self.check_fault()
        self._check_range(offset_blocks, num_blocks)
        length = num_blocks * self.block_size
        data = os.pread(self.fd, length, offset_blocks * self.block_size)
        return data if len(data) == length else data + bytes(length - len(data))

    async def write(self, offset_blocks, data):
        self.check_fault()
        if self.readonly:
            raise BdevIOError("read-only")
        self._check_range(offset_blocks, len(data) // self.block_size)
        os.pwrite(self.fd, data, offset_blocks * self.block_size)

    async def write_zeroes(self, offset_blocks, num_blocks):
        self.check_fault()
        if self.readonly:
            raise BdevIOError("read-only")
        self._check_range(offset_blocks, num_blocks)
        offset = offset_blocks * self.block_size
        end = offset + num_blocks * self.block_size
        try:
            # the result is the same zeros; a hole keeps the sparse file small and is fast
            punch_hole(self.fd, offset, end - offset)
            return
        except OSError:
            pass
        while offset < end:
            step = min(ZERO_CHUNK, end - offset)
            os.pwrite(self.fd, bytes(step), offset)
            offset += step

    async def unmap(self, offset_blocks, num_blocks):
        self.check_fault()
        if not self.fallocate:
            raise BdevIOError("unmap not supported")
        self._check_range(offset_blocks, num_blocks)
        punch_hole(self.fd, offset_blocks * self.block_size, num_blocks * self.block_size)

    async def flush(self):
        self.check_fault()
        os.fdatasync(self.fd)

    # ---- description -----------------------------------------------------------------------
    def supported_io_types(self):
        types = super().supported_io_types()
        types["write_zeroes"] = True
        types["unmap"] = self.fallocate
        return types

    def driver_specific(self):
        return {"aio": {"filename": self.filename, "block_size_override": self.block_size_override,
                        "readonly": self.readonly, "fallocate": self.fallocate, "nowait": False}}

    def config_json(self):
        return {"method": "bdev_aio_create", "params": {
            "name": self.name, "block_size": self.block_size, "filename": self.filename,
            "readonly": self.readonly, "fallocate": self.fallocate, "uuid": self.uuid, "nowait": False}}

    def rescan(self):
        """Pick up a grown or shrunk file; returns True when the size changed."""
        num_blocks = os.fstat(self.fd).st_size // self.block_size
        if num_blocks == self.num_blocks:
            return False
        self.resize(num_blocks)
        return True

    def destroy(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def aio_bdevs(target):
    return [b for b in target.bdevs if isinstance(b, AioBdev)]


def open_backing_file(filename, readonly):
    try:
        return os.open(filename, os.O_RDONLY if readonly else os.O_RDWR)
    except OSError as exc:
        raise errno_error(exc.errno) from exc


BLKSSZGET = 0x1268


def valid_block_size(size):
    return size >= 512 and size & (size - 1) == 0


def detected_block_size(fd):
    """spdk_fd_get_blocklen: the logical block size of a block device, 0 for a regular file."""
    if not stat.S_ISBLK(os.fstat(fd).st_mode):
        return 0
    try:
        return struct.unpack("I", fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4))[0]
    except OSError:
        return 0


@rpc("bdev_aio_create")
async def bdev_aio_create(target, params):
    """create_aio_bdev's order: open the file, check the block size and the file size, then
    register, which refuses a name or UUID in use with -EEXIST. Nothing stops two aio bdevs over
    the same file."""
    p = decode(params, {
        "name": ("str", REQUIRED), "filename": ("str", REQUIRED), "block_size": ("uint32", 0),
        "readonly": ("bool", False), "fallocate": ("bool", False), "uuid": ("uuid", None),
        "nowait": ("bool", False)})
    fd = open_backing_file(p.filename, p.readonly)
    detected = detected_block_size(fd)
    block_size = p.block_size or detected
    size = os.fstat(fd).st_size
    if not block_size or block_size < detected or not valid_block_size(block_size) or size % block_size:
        os.close(fd)
        raise errno_error(EINVAL)
    bdev = AioBdev(p.name, p.filename, fd, block_size, bool(p.block_size), p.readonly, p.fallocate,
                   str(uuidlib.UUID(p.uuid)) if p.uuid else str(uuidlib.uuid4()))
    try:
        await target.bdevs.register(bdev)
    except RpcError:
        bdev.destroy()
        raise
    return p.name


def find_aio(target, name):
    bdev = target.bdevs.find(name)
    if not isinstance(bdev, AioBdev):
        raise errno_error(ENODEV)
    return bdev


@rpc("bdev_aio_delete")
def bdev_aio_delete(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    target.bdevs.unregister(find_aio(target, p.name))
    return True


@rpc("bdev_aio_rescan")
def bdev_aio_rescan(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    bdev = find_aio(target, p.name)
    bdev.rescan()   # an lvstore on it grows only with bdev_lvol_grow_lvstore
    return True

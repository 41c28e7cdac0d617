"""The RAID superblock, byte for byte in SPDK's on-disk format (module/bdev/raid/bdev_raid_sb.c).

Real bytes at LBA 0 of every member, so snapshots and clones of a member carry it and an NVMe
``send_cmd`` read of LBA 0 shows what SPDK would show (more/sendcmd L42 decodes to this layout).
All integers are little endian; UUIDs are their 16 bytes in RFC order.

Header (256 bytes)::

    0   signature      8s   b"SPDKRAID"
    8   version        2xu16 major 1, minor 0
    12  length         u32  header + 64 * base_bdevs_size
    16  crc            u32  CRC-32C (initial 0, no final xor) of ``length`` bytes with crc = 0
    20  flags          u32
    24  uuid           16s  the RAID bdev's UUID
    40  name           64s  NUL padded
    104 raid_size      u64  RAID bdev size in blocks
    112 block_size     u32
    116 level          u32  0 raid0, 1 raid1, 95 raid5f, 99 concat
    120 strip_size     u32  in blocks
    124 state          u32  0 online, 1 configuring, 2 offline
    128 seq_number     u64  bumped on every write (membership change, assembly, rebuild end)
    136 num_base_bdevs u8   slots of the RAID
    137 reserved       118
    255 base_bdevs_size u8  entries that follow

Entry (64 bytes): uuid 16s, data_offset u64, data_size u64 (blocks), state u32 (0 missing,
1 configured, 2 failed, 3 spare), flags u32, slot u8, 23 reserved bytes.

The superblock is written as whole blocks (``length`` rounded up to the block size), zero padded.
"""
import struct
import uuid as uuidlib

SIGNATURE = b"SPDKRAID"
VERSION_MAJOR = 1
VERSION_MINOR = 0
HEADER = struct.Struct("<8sHHIII16s64sQIIIIQB118xB")
ENTRY = struct.Struct("<16sQQIIB23x")
MAX_ENTRIES = 255
MAX_LENGTH = HEADER.size + MAX_ENTRIES * ENTRY.size
CRC_OFFSET = 16
NULL_UUID = "00000000-0000-0000-0000-000000000000"

MISSING, CONFIGURED, FAILED, SPARE = 0, 1, 2, 3
LEVEL_CODES = {"raid0": 0, "raid1": 1, "raid5f": 95, "concat": 99}
STATE_CODES = {"online": 0, "configuring": 1, "offline": 2}

assert HEADER.size == 256 and ENTRY.size == 64


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _attempt in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """SPDK's ``spdk_crc32c_update(buf, len, crc)`` (no inversion), as the superblock uses it."""
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class BaseEntry:
    """One slot's record: which bdev (by UUID) holds it and whether it is up to date."""

    def __init__(self, slot, uuid, data_offset, data_size, state, flags=0):
        self.slot = slot
        self.uuid = uuid
        self.data_offset = data_offset
        self.data_size = data_size
        self.state = state
        self.flags = flags

    def copy(self):
        return BaseEntry(self.slot, self.uuid, self.data_offset, self.data_size, self.state, self.flags)


class Superblock:
    def __init__(self, uuid, name, raid_size, block_size, level, strip_size, num_base_bdevs,
                 entries, seq_number=0, state=STATE_CODES["online"], flags=0):
        self.uuid = uuid
        self.name = name
        self.raid_size = raid_size
        self.block_size = block_size
        self.level = level
        self.strip_size = strip_size
        self.num_base_bdevs = num_base_bdevs
        self.entries = entries
        self.seq_number = seq_number
        self.state = state
        self.flags = flags

    def copy(self):
        return Superblock(self.uuid, self.name, self.raid_size, self.block_size, self.level,
                          self.strip_size, self.num_base_bdevs, [e.copy() for e in self.entries],
                          self.seq_number, self.state, self.flags)

    def entry_for_uuid(self, uuid):
        for entry in self.entries:
            if entry.uuid == uuid:
                return entry
        return None

    def entry_for_slot(self, slot):
        for entry in self.entries:
            if entry.slot == slot:
                return entry
        return None

    @property
    def length(self):
        return HEADER.size + ENTRY.size * len(self.entries)

    def blocks(self, block_size):
        """How many blocks the superblock occupies at the start of a member."""
        return -(-self.length // block_size)

    def encode(self, block_size):
        """The bytes written at LBA 0: whole blocks, zero padded, CRC filled in."""
        name = self.name.encode()[:63]
        header = HEADER.pack(SIGNATURE, VERSION_MAJOR, VERSION_MINOR, self.length, 0, self.flags,
                             uuidlib.UUID(self.uuid).bytes, name, self.raid_size, self.block_size,
                             self.level, self.strip_size, self.state, self.seq_number,
                             self.num_base_bdevs, len(self.entries))
        body = b"".join(ENTRY.pack(uuidlib.UUID(e.uuid or NULL_UUID).bytes, e.data_offset, e.data_size,
                                   e.state, e.flags, e.slot) for e in self.entries)
        raw = bytearray(header + body)
        struct.pack_into("<I", raw, CRC_OFFSET, crc32c(raw))
        return bytes(raw) + bytes(self.blocks(block_size) * block_size - len(raw))


def needed_length(first_block):
    """The superblock length announced by a first block, or None when it holds no superblock."""
    if len(first_block) < HEADER.size or first_block[:8] != SIGNATURE:
        return None
    length = struct.unpack_from("<I", first_block, 12)[0]
    if length < HEADER.size or length > MAX_LENGTH:
        return None
    return length


def decode(raw):
    """A ``Superblock`` from the bytes at LBA 0, or None when they hold no valid one.

    Like SPDK, a wrong signature, length, CRC or major version means "no superblock".
    """
    length = needed_length(raw)
    if length is None or len(raw) < length:
        return None
    buf = bytearray(raw[:length])
    crc = struct.unpack_from("<I", buf, CRC_OFFSET)[0]
    struct.pack_into("<I", buf, CRC_OFFSET, 0)
    if crc32c(buf) != crc:
        return None
    (_sig, major, _minor, _length, _crc, flags, uuid_bytes, name, raid_size, block_size, level,
     strip_size, state, seq_number, num_base_bdevs, base_bdevs_size) = HEADER.unpack_from(buf, 0)
    if major != VERSION_MAJOR or HEADER.size + base_bdevs_size * ENTRY.size > length:
        return None
    entries = []
    for index in range(base_bdevs_size):
        e_uuid, data_offset, data_size, e_state, e_flags, slot = ENTRY.unpack_from(
            buf, HEADER.size + index * ENTRY.size)
        entry_uuid = str(uuidlib.UUID(bytes=e_uuid))
        entries.append(BaseEntry(slot, None if entry_uuid == NULL_UUID else entry_uuid,
                                 data_offset, data_size, e_state, e_flags))
    return Superblock(str(uuidlib.UUID(bytes=uuid_bytes)), name.split(b"\0", 1)[0].decode(errors="replace"),
                      raid_size, block_size, level, strip_size, num_base_bdevs, entries, seq_number,
                      state, flags)


async def load(bdev):
    """Read and decode the superblock at the start of ``bdev`` (None if it has none).

    A failed read raises the bdev's ``BdevIOError``.
    """
    if bdev.num_blocks == 0:
        return None
    first = await bdev.read(0, 1)
    length = needed_length(first)
    if length is None:
        return None
    blocks = -(-length // bdev.block_size)
    if blocks > bdev.num_blocks:
        return None
    raw = first if blocks == 1 else await bdev.read(0, blocks)
    return decode(raw)

"""The RAID superblock is SPDK's own on-disk format, byte for byte."""
import struct

from tests.emulator.spdk_emu import raid_sb

# LBA 0 of a raid1 member as real SPDK v26.05 wrote it (more/sendcmd/sendcmd.jsonl L42, the
# 384 meaningful bytes; the rest of the 4 KiB block is zeros): raid vol-e0, seq 1, two members.
RECORDED_LBA0 = bytes.fromhex(
    "5350444b52414944010000008001000038bdf93f00000000eba245fc09674603aeee9be8a1c2e320766f6c2d65300000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000003f0000000000000010000001000000000000000000000001000000000000000200000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000002c6ac8b0b2a214bcb95f68199b71493c40001000000000000003f000000000000"
    "0100000000000000000000000000000000000000000000000000000000000000ee1aeccb103a4569ad85995a04f728d2"
    "0001000000000000003f0000000000000100000000000000010000000000000000000000000000000000000000000000"
) + bytes(4096 - 384)


def test_crc32c_is_the_castagnoli_polynomial():
    # the standard check value of CRC-32C uses initial ~0 and a final xor, which SPDK's raw update omits
    assert raid_sb.crc32c(b"123456789", 0xFFFFFFFF) ^ 0xFFFFFFFF == 0xE3069283


def test_recorded_superblock_decodes_to_what_spdk_meant():
    sb = raid_sb.decode(RECORDED_LBA0)
    assert (sb.name, sb.uuid, sb.seq_number) == ("vol-e0", "eba245fc-0967-4603-aeee-9be8a1c2e320", 1)
    assert (sb.raid_size, sb.block_size, sb.level, sb.strip_size, sb.num_base_bdevs) == (16128, 4096, 1, 0, 2)
    assert [(e.slot, e.uuid, e.state, e.data_offset, e.data_size) for e in sb.entries] == [
        (0, "c6ac8b0b-2a21-4bcb-95f6-8199b71493c4", raid_sb.CONFIGURED, 256, 16128),
        (1, "ee1aeccb-103a-4569-ad85-995a04f728d2", raid_sb.CONFIGURED, 256, 16128),
    ]


def test_encoding_reproduces_the_recorded_block_exactly():
    assert raid_sb.decode(RECORDED_LBA0).encode(4096) == RECORDED_LBA0


def test_changed_fields_survive_a_round_trip_and_get_a_fresh_crc():
    sb = raid_sb.decode(RECORDED_LBA0)
    sb.seq_number = 7
    sb.entries[1].state = raid_sb.FAILED
    again = raid_sb.decode(sb.encode(512))
    assert again.seq_number == 7 and again.entries[1].state == raid_sb.FAILED
    assert len(sb.encode(512)) == 512   # 384 bytes rounded up to whole blocks


def test_a_corrupted_byte_means_no_superblock():
    damaged = bytearray(RECORDED_LBA0)
    damaged[300] ^= 0x01
    assert raid_sb.decode(bytes(damaged)) is None


def test_zeros_and_other_data_mean_no_superblock():
    assert raid_sb.decode(bytes(4096)) is None
    assert raid_sb.decode(b"LVOLSTORE" + bytes(4087)) is None


def test_an_unknown_major_version_means_no_superblock():
    other = bytearray(RECORDED_LBA0)
    struct.pack_into("<H", other, 8, 2)
    struct.pack_into("<I", other, 16, 0)
    struct.pack_into("<I", other, 16, raid_sb.crc32c(bytes(other[:384])))
    assert raid_sb.decode(bytes(other)) is None

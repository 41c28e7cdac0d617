"""RAID behaviour in process: RPC answers, membership, superblocks, examine order, rebuild.

Members are in-memory bdevs, so a "restart" is a new Target over the same bytes. Expected shapes
and messages are the ones real SPDK v26.05 gave (transcript lines cited per test).
"""
import asyncio
import inspect
import types
import uuid as uuidlib

import pytest

from tests.emulator.spdk_emu import raid, raid_sb, rpc
from tests.emulator.spdk_emu.bdev import Bdev
from tests.emulator.spdk_emu.errors import RpcError
from tests.emulator.spdk_emu.target import Target

MIB = 1 << 20
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


class MemBdev(Bdev):
    """A RAM disk. ``alias`` mimics an lvol: bdev name = UUID, alias = ``lvs/lvol``."""

    product_name = "Malloc disk"

    def __init__(self, name, size=16 * MIB, block_size=4096, alias=None, data=None, domains=None):
        bdev_uuid = str(uuidlib.uuid4())
        super().__init__(bdev_uuid if alias else name, block_size, size // block_size, uuid=bdev_uuid,
                         aliases=[alias] if alias else [])
        self.data = data if data is not None else bytearray(size)
        self.domains = domains
        self.writes = 0

    async def read(self, offset_blocks, num_blocks):
        self.check_fault()
        start = offset_blocks * self.block_size
        return bytes(self.data[start:start + num_blocks * self.block_size])

    async def write(self, offset_blocks, data):
        self.check_fault()
        start = offset_blocks * self.block_size
        self.data[start:start + len(data)] = data
        self.writes += 1

    async def unmap(self, offset_blocks, num_blocks):
        await self.write_zeroes(offset_blocks, num_blocks)

    def supported_io_types(self):
        types_ = super().supported_io_types()
        types_.update(unmap=True, write_zeroes=True, flush=False)
        return types_

    def memory_domains(self):
        return self.domains

    def clone(self, alias=None):
        """Another bdev (new UUID) over a copy of the same bytes: a snapshot or a clone of it."""
        return MemBdev("copy", len(self.data), self.block_size, alias=alias, data=bytearray(self.data))

    def reopen(self):
        """The same disk as seen by a restarted target: same UUID, same bytes."""
        again = MemBdev(self.name, len(self.data), self.block_size, data=self.data)
        again.name, again.uuid, again.aliases = self.name, self.uuid, list(self.aliases)
        return again


def new_target():
    return Target(types.SimpleNamespace())


async def call(target, method, **params):
    result = rpc.METHODS[method].handler(target, params or None)
    return await result if inspect.isawaitable(result) else result


async def error(target, method, **params):
    with pytest.raises(RpcError) as caught:
        await call(target, method, **params)
    return {"code": caught.value.code, "message": caught.value.message}


async def raids(target, category="all"):
    return await call(target, "bdev_raid_get_bdevs", category=category)


async def settle(target, timeout=5.0):
    """Wait until no rebuild runs (and background superblock writes landed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(r.process for r in raid.module(target).raids):
        assert asyncio.get_running_loop().time() < deadline, "rebuild did not finish"
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)


def superblock_of(member):
    return raid_sb.decode(bytes(member.data[:member.block_size]))


def run(coro):
    return asyncio.run(coro)


def pattern(tag, blocks, block_size=4096):
    return (tag * block_size * blocks)[:block_size * blocks]


async def two_member_raid(superblock=True, size=16 * MIB):
    target = new_target()
    a = await target.bdevs.register(MemBdev("a", size, alias="lvs/a"))
    b = await target.bdevs.register(MemBdev("b", size))
    await call(target, "bdev_raid_create", name="r", raid_level="raid1", strip_size_kb=0,
               base_bdevs=["lvs/a", "b"], superblock=superblock)
    return target, a, b


# ---- create and describe --------------------------------------------------------------------------

def test_superblock_raid_reserves_one_mib_on_each_member():
    async def scenario():
        target, a, b = await two_member_raid(superblock=True, size=64 * MIB)
        [info] = await raids(target)
        assert list(info) == ["name", "uuid", "strip_size_kb", "state", "raid_level", "superblock",
                              "num_base_bdevs", "num_base_bdevs_discovered", "num_base_bdevs_operational",
                              "base_bdevs_list"]
        assert (info["state"], info["superblock"], info["num_base_bdevs_discovered"]) == ("online", True, 2)
        assert info["base_bdevs_list"] == [
            {"name": "lvs/a", "uuid": a.uuid, "is_configured": True, "data_offset": 256, "data_size": 16128},
            {"name": "b", "uuid": b.uuid, "is_configured": True, "data_offset": 256, "data_size": 16128}]
        bdev = target.bdevs.get("r")
        assert (bdev.num_blocks, bdev.aliases, bdev.uuid) == (16128, [info["uuid"]], info["uuid"])
        assert a.claim.claim_type == b.claim.claim_type == "exclusive_write"
        assert superblock_of(a).seq_number == superblock_of(b).seq_number == 1
    run(scenario())


def test_raid_without_superblock_uses_the_whole_member():
    async def scenario():
        target, a, b = await two_member_raid(superblock=False)
        [info] = await raids(target)
        assert [(m["data_offset"], m["data_size"]) for m in info["base_bdevs_list"]] == [(0, 4096)] * 2
        assert superblock_of(a) is None and superblock_of(b) is None
    run(scenario())


def test_bdev_get_bdevs_entry_matches_the_recorded_raid_volume():
    async def scenario():
        target = new_target()
        await target.bdevs.register(MemBdev("a", alias="lvs/a"))
        await target.bdevs.register(MemBdev("n1", domains=[{"dma_device_type": "DMA"}]))
        await call(target, "bdev_raid_create", name="v", raid_level="raid1", base_bdevs=["lvs/a", "n1"])
        entry = target.bdevs.get("v").to_json()
        # step3 L4: an NVMe member brings memory_domains; supported types as recorded
        assert list(entry)[-3:] == ["supported_io_types", "memory_domains", "driver_specific"]
        assert entry["product_name"] == "Raid Volume" and entry["memory_domains"] == [{"dma_device_type": "DMA"}]
        assert {k for k, v in entry["supported_io_types"].items() if v} == {
            "read", "write", "unmap", "reset", "write_zeroes"}
        [info] = await raids(target)
        del info["name"]
        assert entry["driver_specific"] == {"raid": info}
    run(scenario())


def test_config_dump_recreates_only_raids_without_superblock():
    async def scenario():
        target, _a, _b = await two_member_raid(superblock=False)
        assert target.bdevs.get("r").config_json() == {"method": "bdev_raid_create", "params": {
            "name": "r", "uuid": target.bdevs.get("r").uuid, "raid_level": "raid1", "base_bdevs": ["lvs/a", "b"]}}
        target2, _a, _b = await two_member_raid(superblock=True)
        assert target2.bdevs.get("r").config_json() is None
        assert raid.options_config(target2) == [{"method": "bdev_raid_set_options", "params": {
            "process_window_size_kb": 1024, "process_max_bandwidth_mb_sec": 0}}]
    run(scenario())


def test_a_missing_base_leaves_the_raid_configuring_until_it_registers():
    async def scenario():
        target = new_target()
        await target.bdevs.register(MemBdev("a", 32 * MIB))
        assert await call(target, "bdev_raid_create", name="v5", raid_level="raid1", strip_size_kb=0,
                          base_bdevs=["a", "later-n1"], superblock=False) is True
        # introspection L85: uuid all zeros, waiting slot keeps the given name with size 0
        assert await raids(target, "configuring") == [{
            "name": "v5", "uuid": ZERO_UUID, "strip_size_kb": 0, "state": "configuring", "raid_level": "raid1",
            "superblock": False, "num_base_bdevs": 2, "num_base_bdevs_discovered": 1,
            "num_base_bdevs_operational": 2, "base_bdevs_list": [
                {"name": "a", "uuid": target.bdevs.get("a").uuid, "is_configured": True,
                 "data_offset": 0, "data_size": 8192},
                {"name": "later-n1", "uuid": ZERO_UUID, "is_configured": False, "data_offset": 0, "data_size": 0}]}]
        assert target.bdevs.find("v5") is None
        await target.bdevs.register(MemBdev("later-n1", 32 * MIB))
        [info] = await raids(target, "online")
        assert info["uuid"] != ZERO_UUID and target.bdevs.find("v5").uuid == info["uuid"]
    run(scenario())


@pytest.mark.parametrize("params, expected", [
    ({"raid_level": "raid7", "base_bdevs": ["a"]}, (-32700, "spdk_json_decode_object failed")),
    ({"raid_level": "raid1", "base_bdevs": ["a"]}, (-22, "Failed to create RAID bdev r: Invalid argument")),
    ({"raid_level": "raid1", "strip_size_kb": 64, "base_bdevs": ["a", "b"]},
     (-22, "Failed to create RAID bdev r: Invalid argument")),
    ({"raid_level": "raid0", "strip_size_kb": 48, "base_bdevs": ["a", "b"]},
     (-22, "Failed to create RAID bdev r: Invalid argument")),
    ({"raid_level": "raid1", "base_bdevs": ["a", "b"], "bogus": 1}, (-32700, "spdk_json_decode_object failed")),
])
def test_create_refuses_bad_requests(params, expected):
    async def scenario():
        target = new_target()
        answer = await error(target, "bdev_raid_create", name="r", **params)
        assert (answer["code"], answer["message"]) == expected
        assert await raids(target) == []
    run(scenario())


def test_create_errors_recorded_in_step6():
    async def scenario():
        target, _a, _b = await two_member_raid()
        await target.bdevs.register(MemBdev("snap"))
        # step6 L33/L34: a base another RAID claims; a name already used (checked first)
        assert await error(target, "bdev_raid_create", name="r2", raid_level="raid1", strip_size_kb=0,
                           base_bdevs=["lvs/a", "snap"]) == {
            "code": -1, "message": "Failed to create RAID bdev r2: Operation not permitted"}
        assert target.bdevs.get("snap").claim is None
        assert await error(target, "bdev_raid_create", name="r", raid_level="raid1", strip_size_kb=0,
                           base_bdevs=["snap"]) == {"code": -17, "message": "Failed to create RAID bdev r: File exists"}
        assert [r["name"] for r in await raids(target)] == ["r"]
    run(scenario())


def test_other_rpc_errors_recorded_in_step4_and_step6():
    async def scenario():
        target, _a, _b = await two_member_raid()
        await target.bdevs.register(MemBdev("spare"))
        assert await error(target, "bdev_raid_delete", name="nope") == {
            "code": -19, "message": "raid bdev nope not found"}
        assert await error(target, "bdev_raid_remove_base_bdev", name="nope") == {
            "code": -19, "message": "Failed to remove base bdev from raid bdev"}
        assert await error(target, "bdev_raid_add_base_bdev", raid_bdev="nope", base_bdev="spare") == {
            "code": -19, "message": "raid bdev nope is not found in config"}
        assert await error(target, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev="spare") == {
            "code": -22, "message": "Failed to add base bdev spare to RAID bdev r: Invalid argument"}
        for params in ({"category": "degraded"}, {}):
            assert await error(target, "bdev_raid_get_bdevs", **params) == {
                "code": -32700, "message": "spdk_json_decode_object failed"}
    run(scenario())


def test_categories_filter_by_state_and_offline_raid0_is_not_a_bdev():
    async def scenario():
        target, _a, _b = await two_member_raid()
        for name in ("c", "d"):
            await target.bdevs.register(MemBdev(name, 32 * MIB))
        await call(target, "bdev_raid_create", name="v6", raid_level="raid0", strip_size_kb=64, base_bdevs=["c", "d"])
        await call(target, "bdev_raid_remove_base_bdev", name="d")
        # introspection L86: raid0 goes offline when a member leaves
        [offline] = await raids(target, "offline")
        assert (offline["name"], offline["num_base_bdevs_discovered"], offline["num_base_bdevs_operational"]) == (
            "v6", 1, 1)
        assert offline["base_bdevs_list"][1] == {"name": None, "uuid": ZERO_UUID, "is_configured": False,
                                                 "data_offset": 0, "data_size": 8192}
        assert target.bdevs.find("v6") is None
        assert [r["name"] for r in await raids(target, "online")] == ["r"]
        assert [r["name"] for r in await raids(target)] == ["r", "v6"]
    run(scenario())


def test_raid0_stripes_data_across_members():
    async def scenario():
        target = new_target()
        c, d = MemBdev("c", 4 * MIB), MemBdev("d", 4 * MIB)
        for member in (c, d):
            await target.bdevs.register(member)
        await call(target, "bdev_raid_create", name="s", raid_level="raid0", strip_size_kb=8, base_bdevs=["c", "d"])
        volume = target.bdevs.get("s")
        data = b"".join(pattern(bytes([i]), 1) for i in range(1, 9))
        await volume.write(0, data)
        assert await volume.read(0, 8) == data
        # 8 KiB strips: blocks 0-1 on c, 2-3 on d, 4-5 on c ...
        assert bytes(c.data[:4 * 4096]) == data[:2 * 4096] + data[4 * 4096:6 * 4096]
    run(scenario())


# ---- membership changes -----------------------------------------------------------------------------

def test_remove_leaves_an_empty_slot_and_only_survivors_get_the_new_superblock():
    async def scenario():
        target, a, b = await two_member_raid()
        assert await call(target, "bdev_raid_remove_base_bdev", name="b") is True
        [info] = await raids(target)
        # d2 clean_remove L19: degraded but online, slot reset (data_offset 0, size kept)
        assert (info["state"], info["num_base_bdevs_discovered"], info["num_base_bdevs_operational"]) == (
            "online", 1, 1)
        assert info["base_bdevs_list"][1] == {"name": None, "uuid": ZERO_UUID, "is_configured": False,
                                              "data_offset": 0, "data_size": 3840}
        assert b.claim is None
        survivor, removed = superblock_of(a), superblock_of(b)
        assert (survivor.seq_number, removed.seq_number) == (2, 1)   # D2: the removed keeps seq 1
        assert [e.state for e in survivor.entries] == [raid_sb.CONFIGURED, raid_sb.MISSING]
        assert [e.state for e in removed.entries] == [raid_sb.CONFIGURED, raid_sb.CONFIGURED]
    run(scenario())


def test_a_member_failing_a_write_is_dropped_and_the_write_still_succeeds():
    async def scenario():
        target, a, b = await two_member_raid()
        b.fault = "connection lost"
        await target.bdevs.get("r").write(8, pattern(b"Q", 2))
        await settle(target)
        [info] = await raids(target)
        assert info["num_base_bdevs_discovered"] == 1 and info["base_bdevs_list"][1]["name"] is None
        assert await target.bdevs.get("r").read(8, 2) == pattern(b"Q", 2)
        assert superblock_of(a).entries[1].state == raid_sb.FAILED
    run(scenario())


def test_hot_removed_member_leaves_an_empty_slot_and_losing_all_removes_the_raid():
    async def scenario():
        target, a, b = await two_member_raid()
        target.bdevs.unregister(b)
        [info] = await raids(target)
        assert (info["state"], info["num_base_bdevs_discovered"]) == ("online", 1)
        target.bdevs.unregister(a)
        assert await raids(target) == [] and target.bdevs.find("r") is None
    run(scenario())


def test_reads_are_served_by_either_member_and_writes_reach_both():
    async def scenario():
        target, a, b = await two_member_raid(superblock=False)
        volume = target.bdevs.get("r")
        await volume.write(0, pattern(b"W", 4))
        assert a.data[:4 * 4096] == b.data[:4 * 4096] == pattern(b"W", 4)
        a.fault = "medium error"          # a read error is retried on the other member
        assert await volume.read(0, 4) == pattern(b"W", 4)
    run(scenario())


def test_add_base_bdev_rebuilds_the_whole_volume_with_progress():
    async def scenario():
        target, a, b = await two_member_raid(size=16 * MIB)
        volume = target.bdevs.get("r")
        await call(target, "bdev_raid_remove_base_bdev", name="b")
        await volume.write(0, pattern(b"P", 8))
        fresh = await target.bdevs.register(MemBdev("c", 16 * MIB))
        await call(target, "bdev_raid_set_options", process_max_bandwidth_mb_sec=100)
        assert await call(target, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev="c") is True
        [info] = await raids(target)
        # d4 L29: a process object between the counts and the member list, target named as added
        assert list(info)[-2:] == ["process", "base_bdevs_list"]
        assert info["process"]["type"] == "rebuild" and info["process"]["target"] == "c"
        assert set(info["process"]["progress"]) == {"blocks", "percent"}
        assert await error(target, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev="b") == {
            "code": -1, "message": "Failed to add base bdev b to RAID bdev r: Operation not permitted"}
        await settle(target)
        [info] = await raids(target)
        assert "process" not in info and info["num_base_bdevs_discovered"] == 2
        assert fresh.data[256 * 4096:] == a.data[256 * 4096:]
        assert superblock_of(fresh).seq_number == superblock_of(a).seq_number == 3
        assert superblock_of(a).entries[1].uuid == fresh.uuid
    run(scenario())


def test_rebuild_respects_the_bandwidth_cap():
    async def scenario():
        target, _a, _b = await two_member_raid(size=9 * MIB)
        await call(target, "bdev_raid_remove_base_bdev", name="b")
        await target.bdevs.register(MemBdev("c", 9 * MIB))
        await call(target, "bdev_raid_set_options", process_max_bandwidth_mb_sec=40)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await call(target, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev="c")
        await settle(target)
        # 8 MiB of data at 40 MiB/s takes at least 0.2 s (d4: 63 MiB at 32 MiB/s took ~2 s)
        assert loop.time() - started >= 0.19
    run(scenario())


def test_writes_during_a_rebuild_end_up_on_the_new_member():
    async def scenario():
        target, a, _b = await two_member_raid(size=16 * MIB)
        volume = target.bdevs.get("r")
        await call(target, "bdev_raid_remove_base_bdev", name="b")
        fresh = await target.bdevs.register(MemBdev("c", 16 * MIB))
        await call(target, "bdev_raid_set_options", process_window_size_kb=256, process_max_bandwidth_mb_sec=100)
        await call(target, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev="c")
        for block in range(0, 3800, 97):
            await volume.write(block, pattern(bytes([block % 251 + 1]), 3))
            await asyncio.sleep(0.001)
        await settle(target)
        assert fresh.data[256 * 4096:] == a.data[256 * 4096:]
    run(scenario())


def test_members_growing_grows_the_raid1():
    async def scenario():
        target, a, b = await two_member_raid(superblock=False, size=16 * MIB)
        volume = target.bdevs.get("r")
        a.data.extend(bytes(8 * MIB))
        a.resize(6144)
        assert volume.num_blocks == 4096          # step4 L91: one member grown is not enough
        b.data.extend(bytes(8 * MIB))
        b.resize(6144)
        [info] = await raids(target)
        assert volume.num_blocks == 6144 and [m["data_size"] for m in info["base_bdevs_list"]] == [6144, 6144]
    run(scenario())


def test_delete_keeps_or_clears_the_superblocks():
    async def scenario():
        target, a, b = await two_member_raid()
        assert await call(target, "bdev_raid_delete", name="r") is True
        assert a.claim is None and superblock_of(a) is not None and target.bdevs.find("r") is None
        target, a, b = await two_member_raid()
        assert await call(target, "bdev_raid_delete", name="r", clear_sb=True) is True
        assert a.data[:4096] == bytes(4096) and b.data[:4096] == bytes(4096)
    run(scenario())


# ---- superblocks met by create and by examine -------------------------------------------------------

def test_create_over_a_base_carrying_another_raids_superblock_is_refused():
    async def scenario():
        target, a, b = await two_member_raid()
        old_uuid = target.bdevs.get("r").uuid
        await call(target, "bdev_raid_delete", name="r")
        # sbclone q4 (a): fresh uuid, with or without superblock
        for name, superblock in (("new-r", True), ("probe-nosb", False)):
            assert await error(target, "bdev_raid_create", name=name, raid_level="raid1", strip_size_kb=0,
                               base_bdevs=["lvs/a", "b"], superblock=superblock) == {
                "code": -17, "message": "Failed to create RAID bdev %s: File exists" % name}
        # q4 (b)/(c): the old raid's uuid
        assert await error(target, "bdev_raid_create", name="r", raid_level="raid1", strip_size_kb=0,
                           base_bdevs=["lvs/a", "b"], superblock=True, uuid=old_uuid) == {
            "code": -22, "message": "Failed to create RAID bdev r: Invalid argument"}
        assert await raids(target) == [] and a.claim is None and b.claim is None
        # zeroing LBA 0 (what send_cmd does in more/sendcmd) makes the bases usable again
        a.data[:4096] = bytes(4096)
        b.data[:4096] = bytes(4096)
        assert await call(target, "bdev_raid_create", name="new-r", raid_level="raid1", strip_size_kb=0,
                          base_bdevs=["lvs/a", "b"], superblock=True) is True
    run(scenario())


def test_snapshots_and_clones_of_members_are_examined_and_ignored():
    async def scenario():
        target, a, _b = await two_member_raid()
        for copy in (a.clone(alias="lvs/snap"), a.clone(alias="lvs/clone")):
            await target.bdevs.register(copy)
            assert copy.claim is None
        assert [r["name"] for r in await raids(target)] == ["r"]
        other = new_target()                      # on a node where the RAID does not exist
        copy = await other.bdevs.register(a.clone(alias="lvs/head"))
        assert copy.claim is None and await raids(other) == []
    run(scenario())


def test_a_restarted_replica_assembles_a_configuring_raid_around_its_lvol():
    async def scenario():
        _target, _a, b = await two_member_raid()
        replica = new_target()
        lvol = await replica.bdevs.register(b.reopen())
        [info] = await raids(replica)
        # d2 clean_remove L24: configuring 1/2/2, own member named by its bdev name, the other by uuid only
        assert (info["state"], info["num_base_bdevs_discovered"], info["num_base_bdevs_operational"]) == (
            "configuring", 1, 2)
        assert info["base_bdevs_list"][0]["name"] is None and info["base_bdevs_list"][0]["uuid"] == _a.uuid
        assert info["base_bdevs_list"][0]["data_offset"] == 256
        assert info["base_bdevs_list"][1]["name"] == lvol.name and lvol.claim is not None
        await call(replica, "bdev_raid_delete", name="r")     # L28: delete without clear_sb
        assert lvol.claim is None and superblock_of(b).seq_number == 1
    run(scenario())


async def degraded_then_written():
    """d2 setup: remove the second member, then write Q on the survivor only."""
    target, a, b = await two_member_raid(size=16 * MIB)
    volume = target.bdevs.get("r")
    await volume.write(0, pattern(b"P", 16))
    await call(target, "bdev_raid_remove_base_bdev", name="b")
    await volume.write(256, pattern(b"Q", 16))
    return a, b, volume.uuid


def test_newest_member_first_comes_online_and_readds_the_stale_one():
    async def scenario():
        a, b, raid_uuid = await degraded_then_written()
        node = new_target()
        local = await node.bdevs.register(a.reopen())
        [info] = await raids(node)
        # d2 L34: online 1/1/2 from the local member alone; member named by its bdev name (the lvol UUID)
        assert (info["state"], info["uuid"], info["num_base_bdevs_discovered"]) == ("online", raid_uuid, 1)
        assert info["base_bdevs_list"][0]["name"] == local.name == local.uuid
        assert info["base_bdevs_list"][1] == {"name": None, "uuid": ZERO_UUID, "is_configured": False,
                                              "data_offset": 256, "data_size": 4096 - 256}
        remote = await node.bdevs.register(b.reopen())
        await settle(node)
        [info] = await raids(node)
        assert info["num_base_bdevs_discovered"] == 2 and remote.claim is not None
        assert b.data[256 * 4096:] == a.data[256 * 4096:]             # rebuilt: P + Q
        assert superblock_of(b).seq_number == superblock_of(a).seq_number == 4
    run(scenario())


def test_stale_member_first_then_newest_wins_and_the_stale_one_is_left_out():
    async def scenario():
        a, b, _raid_uuid = await degraded_then_written()
        node = new_target()
        remote = await node.bdevs.register(b.reopen())
        [info] = await raids(node)
        assert (info["state"], info["num_base_bdevs_discovered"], info["num_base_bdevs_operational"]) == (
            "configuring", 1, 2)                                          # d2 L80
        await node.bdevs.register(a.reopen())
        [info] = await raids(node)
        assert (info["state"], info["num_base_bdevs_discovered"], info["num_base_bdevs_operational"]) == (
            "online", 1, 1)                                               # d2 L83
        assert remote.claim is None
        stale = bytes(b.data[256 * 4096:])
        assert stale != a.data[256 * 4096:]
        assert await call(node, "bdev_raid_add_base_bdev", raid_bdev="r", base_bdev=remote.name) is True
        [info] = await raids(node)
        assert info["process"]["target"] == remote.name                  # d2 L89
        await settle(node)
        assert b.data[256 * 4096:] == a.data[256 * 4096:]
    run(scenario())


def test_a_deleted_raid_is_adopted_back_when_its_members_register_again():
    async def scenario():
        target, a, b = await two_member_raid()
        volume_uuid = target.bdevs.get("r").uuid
        await target.bdevs.get("r").write(0, pattern(b"X", 4))
        await call(target, "bdev_raid_delete", name="r")
        node = new_target()
        first = await node.bdevs.register(a.reopen())
        await node.bdevs.register(b.reopen())
        [info] = await raids(node)
        # sbclone q4 (d): online 2/2, members named by bdev name, data intact
        assert (info["name"], info["uuid"], info["num_base_bdevs_discovered"]) == ("r", volume_uuid, 2)
        assert info["base_bdevs_list"][0]["name"] == first.uuid
        assert await node.bdevs.get("r").read(0, 4) == pattern(b"X", 4)
    run(scenario())


def test_raid_without_superblock_serves_stale_blocks_from_a_stale_member():
    async def scenario():
        target, a, b = await two_member_raid(superblock=False, size=8 * MIB)
        volume = target.bdevs.get("r")
        await volume.write(0, pattern(b"P", 1024))
        await call(target, "bdev_raid_remove_base_bdev", name="b")
        await volume.write(0, pattern(b"Q", 1024))
        await call(target, "bdev_raid_delete", name="r")
        # D3: re-created over both, no rebuild starts, and concurrent reads come from both legs
        await call(target, "bdev_raid_create", name="r", raid_level="raid1", strip_size_kb=0,
                   base_bdevs=["lvs/a", "b"], superblock=False)
        assert "process" not in (await raids(target))[0]
        volume = target.bdevs.get("r")
        blocks = await asyncio.gather(*(volume.read(i, 1) for i in range(1024)))
        stale = sum(block == pattern(b"P", 1) for block in blocks)
        assert 0 < stale < 1024 and stale + sum(block == pattern(b"Q", 1) for block in blocks) == 1024
    run(scenario())

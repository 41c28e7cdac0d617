"""The on-disk blobstore, driven in-process over a real aio bdev: geometry, CoW, D1, crash safety."""
import asyncio
import os

import pytest

from tests.emulator.spdk_emu import blobstore as bs
from tests.emulator.spdk_emu.aio import AioBdev

MIB = 1 << 20


def run(coro):
    return asyncio.run(coro)


def aio(path, size, fallocate=False):
    if not os.path.exists(path):
        with open(path, "wb") as handle:
            handle.truncate(size)
    fd = os.open(path, os.O_RDWR)
    return AioBdev("d", path, fd, 4096, True, False, fallocate, "00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize("size, data_clusters", [(4 << 30, 4079), (1 << 30, 1019), (64 * MIB, 63)])
def test_geometry_matches_spdk(size, data_clusters):
    geometry = bs.Geometry(size, MIB)
    assert size // MIB - geometry.md_clusters == data_clusters
    assert geometry.max_growable_size() == 34317795328


def test_thin_write_allocates_whole_clusters_and_survives_reload(tmp_path):
    async def scenario():
        store = await bs.Blobstore.create(aio(str(tmp_path / "d.img"), 64 * MIB), "lvs", MIB)
        blob = store.new_blob("v", 8, thin=True)
        await store.commit()
        await blob.write(MIB + 4096, b"A" * 4096)
        assert blob.allocated() == 1 and store.free_count == 62
        again = await bs.Blobstore.load(aio(str(tmp_path / "d.img"), 64 * MIB))
        reloaded = again.blobs[blob.id]
        assert reloaded.allocated() == 1
        assert await reloaded.read(MIB, 3 * 4096) == bytes(4096) + b"A" * 4096 + bytes(4096)
        assert again.free_count == 62
    run(scenario())


def test_clone_copies_the_parent_cluster_on_first_write(tmp_path):
    async def scenario():
        store = await bs.Blobstore.create(aio(str(tmp_path / "d.img"), 64 * MIB), "lvs", MIB)
        base = store.new_blob("base", 2, thin=True)
        await base.write(0, b"P" * MIB)
        snap = store.new_blob("snap", 2, thin=True)
        snap.clusters, base.clusters = base.clusters, {}
        base.parent_id = snap.id
        clone = store.new_blob("clone", 2, thin=True)
        clone.parent_id = snap.id
        await clone.write(0, b"W" * 4096)
        assert clone.allocated() == 1
        assert await clone.read(0, MIB) == b"W" * 4096 + b"P" * (MIB - 4096)
        assert await clone.read(MIB, 4096) == bytes(4096)
    run(scenario())


def test_thin_write_without_parent_keeps_stale_device_bytes(tmp_path):
    """D1 (tests/emulator/README.md): a new cluster is not zeroed; unmap clears it only with fallocate."""
    async def scenario(fallocate):
        path = str(tmp_path / ("f%d.img" % fallocate))
        store = await bs.Blobstore.create(aio(path, 64 * MIB, fallocate), "lvs", MIB)
        old = store.new_blob("old", 1, thin=False)
        old.clusters[0] = store.allocate_cluster()
        await old.write(0, b"S" * MIB)
        store.forget_blob(old)
        await store.release_clusters(list(old.clusters.values()), "unmap")
        new = store.new_blob("new", 1, thin=True)
        await new.write(0, b"W" * 4096)
        return await new.read(4096, 4096)
    assert run(scenario(False)) == b"S" * 4096
    assert run(scenario(True)) == bytes(4096)


def test_a_torn_metadata_write_falls_back_to_the_previous_generation(tmp_path):
    path = str(tmp_path / "d.img")

    async def scenario():
        store = await bs.Blobstore.create(aio(path, 64 * MIB), "lvs", MIB)
        store.new_blob("first", 1, thin=True)
        await store.commit()
        store.new_blob("second", 1, thin=True)
        await store.commit()
        newest_slot = bs.PAGE + (store.generation % 2) * store.slot_size()
        with open(path, "r+b") as handle:          # a crash in the middle of the newest slot
            handle.seek(newest_slot + bs.SLOT_HEAD.size + 3)
            handle.write(b"\xff" * 16)
        loaded = await bs.Blobstore.load(aio(path, 64 * MIB))
        assert [b.name for b in loaded.ordered_blobs()] == ["first"]
    run(scenario())


def test_grow_adds_data_clusters_only(tmp_path):
    path = str(tmp_path / "g.img")

    async def scenario():
        bdev = aio(path, 64 * MIB)
        store = await bs.Blobstore.create(bdev, "lvs", MIB)
        os.truncate(path, 128 * MIB)
        bdev.rescan()
        await store.grow()
        assert store.total_data_clusters == 127 and store.free_count == 127
        loaded = await bs.Blobstore.load(aio(path, 128 * MIB))
        assert loaded.total_data_clusters == 127
    run(scenario())


def test_a_device_without_header_is_not_a_blobstore(tmp_path):
    with pytest.raises(bs.NotABlobstore):
        run(bs.Blobstore.load(aio(str(tmp_path / "e.img"), 8 * MIB)))


def test_zeroes_and_unmap_never_allocate_what_already_reads_as_zeros(tmp_path):
    async def scenario():
        store = await bs.Blobstore.create(aio(str(tmp_path / "z.img"), 64 * MIB), "lvs", MIB)
        blob = store.new_blob("v", 4, thin=True)
        await blob.write_zeroes(0, 2 * MIB)
        await blob.unmap(2 * MIB, MIB)
        assert blob.allocated() == 0
        await blob.write(3 * MIB, b"D" * 8192)
        await blob.unmap(3 * MIB, 4096)
        assert blob.allocated() == 1
        assert await blob.read(3 * MIB, 8192) == bytes(4096) + b"D" * 4096
    run(scenario())

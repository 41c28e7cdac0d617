"""RAID1 across emulated spdk_tgt processes: lvol members, NVMe-oF members, restarts.

Each test replays the experiment a real SPDK v26.05 was put through (D2-D4 and sbclone:
tests/emulator/README.md, What the recordings showed) and checks what it showed: allocation after
a rebuild, which member wins after a restart in either order, the auto-assembled RAID on a
restarted replica, and the superblock refusals. Nodes use 127.0.0.4x and free ports, so recorded replays on 127.0.0.1 can run
beside them.
"""
import signal

from tests.emulator.nvmf_support import NQN, address, free_port, io_target, spdk_io, wait_until
from tests.emulator.spdk_emu.hostio import pattern_bytes

MIB = 1 << 20
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


# ---- node helpers -----------------------------------------------------------------------------------

def needs(node, *methods):
    """The emulator serves every method these tests use: a missing one is a failure, never a skip."""
    missing = set(methods) - set(node.call("rpc_get_methods"))
    assert not missing, "the emulator lacks %s" % ", ".join(sorted(missing))


def open_disk(node, lvs):
    """The node's aio disk (created on first use) and the lvstore ``lvs`` on it."""
    node.call("bdev_aio_create", name=lvs, filename=node.disk(lvs + ".img", 512 * MIB), block_size=4096)
    if not any(s["name"] == lvs for s in node.call("bdev_lvol_get_lvstores")):
        node.call("bdev_lvol_create_lvstore", bdev_name=lvs, lvs_name=lvs, cluster_sz=MIB)


def thin_lvol(node, lvs, name, mib=64):
    return node.call("bdev_lvol_create", lvol_name=name, size_in_mib=mib, thin_provision=True, lvs_name=lvs)


def allocated(node, alias):
    return next(l["num_allocated_clusters"] for l in node.call("bdev_lvol_get_lvols") if l["alias"] == alias)


def export(node, bdev_name, port=None):
    """Export ``bdev_name`` as NQN+<name> on node.addr; returns (nqn, port)."""
    if not node.call("nvmf_get_transports"):
        node.call("nvmf_create_transport", trtype="TCP")
    nqn = NQN + bdev_name.replace("/", "-")
    port = port or free_port(node.addr)
    if not any(s["nqn"] == nqn for s in node.call("nvmf_get_subsystems")):
        node.call("nvmf_create_subsystem", nqn=nqn, allow_any_host=True)
    node.call("nvmf_subsystem_add_ns", nqn=nqn, namespace={"bdev_name": bdev_name})
    node.call("nvmf_subsystem_add_listener", nqn=nqn, listen_address=address(node.addr, port))
    return nqn, port


def attach(node, ctrlr, remote, nqn, port, **options):
    [bdev] = node.call("bdev_nvme_attach_controller", name=ctrlr, trtype="tcp", adrfam="ipv4", traddr=remote.addr,
                       trsvcid=port, subnqn=nqn, **options)
    return bdev


def create_raid(node, name, members, superblock=True):
    return node.call("bdev_raid_create", name=name, raid_level="raid1", strip_size_kb=0, base_bdevs=members,
                     superblock=superblock)


def raid(node, name):
    return next((r for r in node.call("bdev_raid_get_bdevs", category="all") if r["name"] == name), None)


def counts(info):
    return info["state"], info["num_base_bdevs_discovered"], info["num_base_bdevs_operational"]


def rebuilt(node, name, timeout=30.0):
    return wait_until(lambda: "process" not in raid(node, name) and raid(node, name), timeout=timeout)


def write(node, nqn, port, offset, length, seed):
    done = spdk_io("write", *io_target(node, nqn, port), "--offset", offset, "--length", length, "--seed", seed)
    assert done.returncode == 0, done.stderr


def verify(node, nqn, port, offset, length, seed):
    return spdk_io("verify", *io_target(node, nqn, port), "--offset", offset, "--length", length,
                   "--seed", seed).returncode == 0


# ---- D4: the rebuild is a full copy -----------------------------------------------------------------

def test_add_base_bdev_fully_allocates_the_new_thin_member(emulator_node):
    node = emulator_node(40)
    needs(node, "bdev_lvol_create", "nvmf_create_subsystem")
    open_disk(node, "disk1")
    for name in ("local", "old", "new"):
        thin_lvol(node, "disk1", name)
    create_raid(node, "e0", ["disk1/local", "disk1/old"])
    assert allocated(node, "disk1/local") == 1                 # d4 L23: the superblock's cluster
    nqn, port = export(node, "e0")
    write(node, nqn, port, 0, 4 * MIB, "P")
    assert allocated(node, "disk1/local") == 5                 # d4 L25
    node.call("bdev_raid_remove_base_bdev", name="disk1/old")
    node.call("bdev_raid_set_options", process_max_bandwidth_mb_sec=64)
    node.call("bdev_raid_add_base_bdev", raid_bdev="e0", base_bdev="disk1/new")
    info = raid(node, "e0")
    assert info["process"]["type"] == "rebuild" and info["process"]["target"] == "disk1/new"
    rebuilt(node, "e0")
    # d4 L35/L36: the new thin member ends 64 of 64, the source keeps 5, the removed one 5
    assert [allocated(node, "disk1/" + n) for n in ("new", "local", "old")] == [64, 5, 5]
    assert verify(node, nqn, port, 0, 4 * MIB, "P")


# ---- D2: superblock RAID over a local and a remote lvol, restarts ---------------------------------

class Pair:
    """Engine node (local lvol + attached remote lvol) and replica node, as in more/d2."""

    def __init__(self, emulator_node, engine_idx, replica_idx):
        self.engine = emulator_node(engine_idx)
        self.replica = emulator_node(replica_idx)
        needs(self.engine, "bdev_lvol_create", "bdev_nvme_attach_controller", "nvmf_create_subsystem")
        self.replica_port = free_port(self.replica.addr)
        self.engine_port = free_port(self.engine.addr)

    def build(self):
        open_disk(self.replica, "disk2")
        self.remote_uuid = thin_lvol(self.replica, "disk2", "r-b")
        self.replica_nqn, _listener = export(self.replica, "disk2/r-b", self.replica_port)
        open_disk(self.engine, "disk1")
        self.local_uuid = thin_lvol(self.engine, "disk1", "r-a")
        self.remote = self.attach_remote()
        create_raid(self.engine, "e0", ["disk1/r-a", self.remote])
        self.nqn, _listener = export(self.engine, "e0", self.engine_port)

    def attach_remote(self, **options):
        return attach(self.engine, "r-b", self.replica, self.replica_nqn, self.replica_port, **options)

    def reexport_replica(self):
        export(self.replica, "disk2/r-b", self.replica_port)

    def write(self, offset, length, seed):
        write(self.engine, self.nqn, self.engine_port, offset, length, seed)

    def engine_matches(self, *pieces):
        return all(verify(self.engine, self.nqn, self.engine_port, *piece) for piece in pieces)


def test_stale_remote_first_then_newer_local_wins_and_stale_member_is_rebuilt(emulator_node):
    pair = Pair(emulator_node, 41, 42)
    pair.build()
    pair.write(0, 4 * MIB, "P")
    pair.engine.call("bdev_raid_remove_base_bdev", name=pair.remote)
    pair.write(8 * MIB, MIB, "Q")
    pair.engine.stop()
    pair.replica.restart()

    # the restarted replica assembles a configuring RAID around its own lvol and claims it (d2 L24)
    pair.replica.call("bdev_aio_create", name="disk2", filename=pair.replica.disk("disk2.img"), block_size=4096)
    info = raid(pair.replica, "e0")
    assert counts(info) == ("configuring", 1, 2)
    assert info["base_bdevs_list"][1]["name"] == pair.remote_uuid
    if pair.replica.call("nvmf_get_transports") == []:
        pair.replica.call("nvmf_create_transport", trtype="TCP")
    pair.replica.call("nvmf_create_subsystem", nqn=pair.replica_nqn, allow_any_host=True)
    assert pair.replica.error("nvmf_subsystem_add_ns", nqn=pair.replica_nqn,
                              namespace={"bdev_name": "disk2/r-b"})["code"] == -32602     # d2 L27
    pair.replica.call("bdev_raid_delete", name="e0")                                         # L28
    pair.reexport_replica()

    # remote first: configuring from its stale superblock (d2 L80), then the local one wins (L83)
    pair.engine.start()
    pair.attach_remote()
    assert counts(raid(pair.engine, "e0")) == ("configuring", 1, 2)
    open_disk(pair.engine, "disk1")
    info = raid(pair.engine, "e0")
    assert counts(info) == ("online", 1, 1)
    assert info["base_bdevs_list"][0]["name"] == pair.local_uuid and info["base_bdevs_list"][1]["uuid"] == ZERO_UUID
    assert pair.engine.error("bdev_examine", name=pair.remote)["code"] == -22                # L86
    pair.engine.call("bdev_raid_add_base_bdev", raid_bdev="e0", base_bdev=pair.remote)      # L88
    rebuilt(pair.engine, "e0")
    assert counts(raid(pair.engine, "e0")) == ("online", 2, 2)
    assert allocated(pair.replica, "disk2/r-b") == 64                                        # L98
    export(pair.engine, "e0", pair.engine_port)
    assert pair.engine_matches((0, 4 * MIB, "P"), (8 * MIB, MIB, "Q"))


def test_replica_killed_then_local_first_readds_the_remote_automatically(emulator_node):
    pair = Pair(emulator_node, 43, 44)
    pair.build()
    pair.write(0, 4 * MIB, "P")
    pair.replica.kill()
    # the first write fails the remote leg and still succeeds (d2 kill9 L18/L19)
    pair.write(8 * MIB, MIB, "Q")
    assert counts(wait_until(lambda: raid(pair.engine, "e0")["num_base_bdevs_discovered"] == 1
                             and raid(pair.engine, "e0"))) == ("online", 1, 1)
    pair.engine.stop(signal.SIGKILL)

    # the replica comes back with auto-examine off, so its lvol stays exportable (d2 L67-L77)
    pair.replica.start(["--wait-for-rpc"])
    pair.replica.call("bdev_set_options", bdev_auto_examine=False)
    pair.replica.call("framework_start_init")
    pair.replica.call("bdev_aio_create", name="disk2", filename=pair.replica.disk("disk2.img"), block_size=4096)
    pair.replica.call("bdev_examine", name="disk2")
    assert pair.replica.call("bdev_raid_get_bdevs", category="all") == []
    export(pair.replica, "disk2/r-b", pair.replica_port)

    pair.engine.start()
    open_disk(pair.engine, "disk1")
    assert counts(raid(pair.engine, "e0")) == ("online", 1, 1)                          # kill9 L37
    pair.attach_remote()
    info = rebuilt(pair.engine, "e0")                                                    # L41: re-added
    assert counts(info) == ("online", 2, 2) and info["base_bdevs_list"][1]["name"] == pair.remote
    assert allocated(pair.replica, "disk2/r-b") == 64
    export(pair.engine, "e0", pair.engine_port)
    assert pair.engine_matches((0, 4 * MIB, "P"), (8 * MIB, MIB, "Q"))


# ---- sbclone: superblocks left on members and their copies --------------------------------------

def test_old_superblocks_refuse_a_new_raid_and_bring_the_old_one_back(emulator_node):
    node = emulator_node(45)
    needs(node, "bdev_lvol_create", "bdev_lvol_snapshot", "bdev_aio_delete")
    open_disk(node, "lvsQ")
    m1, m2 = thin_lvol(node, "lvsQ", "m1"), thin_lvol(node, "lvsQ", "m2")
    create_raid(node, "old-r", ["lvsQ/m1", "lvsQ/m2"])
    old_uuid = raid(node, "old-r")["uuid"]
    nqn, port = export(node, "old-r")
    write(node, nqn, port, 0, 4 * MIB, "X")
    node.call("nvmf_delete_subsystem", nqn=nqn)
    node.call("bdev_raid_delete", name="old-r", clear_sb=False)

    # q4 (a)-(c): -17 with a fresh uuid (also without superblock), -22 with the old one
    assert node.error("bdev_raid_create", name="new-r", raid_level="raid1", strip_size_kb=0,
                      base_bdevs=["lvsQ/m1", "lvsQ/m2"], superblock=True) == {
        "code": -17, "message": "Failed to create RAID bdev new-r: File exists"}
    assert node.error("bdev_raid_create", name="probe", raid_level="raid1", strip_size_kb=0,
                      base_bdevs=["lvsQ/m1", "lvsQ/m2"], superblock=False)["code"] == -17
    assert node.error("bdev_raid_create", name="new-r", raid_level="raid1", strip_size_kb=0,
                      base_bdevs=["lvsQ/m1", "lvsQ/m2"], superblock=True, uuid=old_uuid) == {
        "code": -22, "message": "Failed to create RAID bdev new-r: Invalid argument"}

    # q12: a snapshot of a member carries the superblock, is examined and left unclaimed
    snapshot = node.call("bdev_lvol_snapshot", lvol_name="lvsQ/m1", snapshot_name="snap")
    assert node.call("bdev_get_bdevs", name=snapshot)[0]["claimed"] is False
    assert node.call("bdev_raid_get_bdevs", category="all") == []

    # q4 (d): reloading the lvstore registers the members again and examine adopts the old RAID
    node.call("bdev_aio_delete", name="lvsQ")
    open_disk(node, "lvsQ")
    info = raid(node, "old-r")
    assert (info["uuid"], counts(info)) == (old_uuid, ("online", 2, 2))
    assert [m["name"] for m in info["base_bdevs_list"]] == [m1, m2]
    nqn, port = export(node, "old-r")
    assert verify(node, nqn, port, 0, 4 * MIB, "X")
    node.call("nvmf_delete_subsystem", nqn=nqn)

    # q4 (e): delete with clear_sb, then the new RAID is accepted and reads the same data
    node.call("bdev_raid_delete", name="old-r", clear_sb=True)
    create_raid(node, "new-r", ["lvsQ/m1", "lvsQ/m2"])
    nqn, port = export(node, "new-r")
    assert verify(node, nqn, port, 0, 4 * MIB, "X")


# ---- D3: no superblock, nothing re-assembles, a stale member serves stale blocks ------------------

def test_recreated_raid_without_superblock_mixes_stale_and_current_blocks(emulator_node):
    pair = Pair(emulator_node, 46, 47)
    open_disk(pair.replica, "disk2")
    thin_lvol(pair.replica, "disk2", "r-b")
    pair.replica_nqn, _listener = export(pair.replica, "disk2/r-b", pair.replica_port)
    open_disk(pair.engine, "disk1")
    thin_lvol(pair.engine, "disk1", "r-a")
    remote = pair.attach_remote()
    create_raid(pair.engine, "e0", ["disk1/r-a", remote], superblock=False)
    pair.nqn, _listener = export(pair.engine, "e0", pair.engine_port)
    pair.write(0, 4 * MIB, "P")
    pair.engine.call("bdev_raid_remove_base_bdev", name=remote)
    pair.write(0, 4 * MIB, "Q")
    pair.engine.restart()
    open_disk(pair.engine, "disk1")
    pair.attach_remote()
    assert pair.engine.call("bdev_raid_get_bdevs", category="all") == []                  # d3 L27/L46
    create_raid(pair.engine, "e0", ["disk1/r-a", remote], superblock=False)
    assert "process" not in raid(pair.engine, "e0")                                       # L48
    export(pair.engine, "e0", pair.engine_port)
    read = spdk_io("read", *io_target(pair.engine, pair.nqn, pair.engine_port), "--offset", 0,
                   "--length", 4 * MIB, "--io-size", 4096, "--queue-depth", 8,
                   "--output", pair.engine.disk("readback.bin", 0))
    assert read.returncode == 0, read.stderr
    with open(pair.engine.disk("readback.bin", 0), "rb") as handle:
        data = handle.read()
    blocks = [data[i:i + 4096] for i in range(0, 4 * MIB, 4096)]
    stale = sum(b == pattern_bytes("random", "P", i * 4096, 4096) for i, b in enumerate(blocks))
    current = sum(b == pattern_bytes("random", "Q", i * 4096, 4096) for i, b in enumerate(blocks))
    assert stale + current == 1024 and 0 < stale < 1024            # timeline:74: 36 stale of 1024

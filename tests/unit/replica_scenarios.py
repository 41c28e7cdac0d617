"""Node states for replica and snapshot tests, made of answers a real SPDK v26.05 gave.

Each scenario is the three reads a replica run starts with (``bdev_lvol_get_lvstores``,
``bdev_get_bdevs``, ``nvmf_get_subsystems``) plus, where a test needs it, the RAID list.
Answers come from tests/unit/fixtures/transcripts (recordings of a real SPDK v26.05);
names are normalised with ``transcript(..., replace=...)`` where a recording used other ones.

NODE1 (more/introspection.jsonl, node1): disk ``disk1`` (1 MiB clusters) with
  ``vol1-r-a1b2c3d4`` (64 MiB, member of RAID vol1-e0), ``vol5-r-0b0b0b0b`` (32 MiB, unused),
  ``vol7-src`` cloned from ``vol7-snap-01`` which has a second clone ``vol7-clone-01``;
  the engine subsystem ``vol1-e0`` listens on 127.0.0.1:4420.
NODE2 (more/introspection.jsonl, node2): disk ``disk2`` with ``vol1-r-b2c3d4e5`` (256 MiB)
  exposed at 127.0.0.1:4421 to host ``host-node1``, and ``img-base-0001`` also on 4421.
CHAIN (more/d6_alloc_after_shallow_copy.jsonl, node1, replica renamed ``vol1``): head ``vol1``
  cloned from ``vol1-snap-02`` cloned from ``vol1-snap-01``; ``vol1-snap-01`` also has the clone
  ``vol1-clone-01``; the head is exposed on 127.0.0.1:4420 (subsystem answer of
  more/nvmf_hosts.jsonl L8 normalised to this head).
"""
import copy

from tests.unit.expected_calls import answer, result, transcript

INTRO = "more/introspection.jsonl"
D6 = "more/d6_alloc_after_shallow_copy.jsonl"
HOST1 = "nqn.2026-01.io.spdk-storage:host-node1"
NQN_PREFIX = "nqn.2026-01.io.spdk-storage:"


class Scenario:
    def __init__(self, lvstores, bdevs, subsystems, raids=None):
        self.lvstores = lvstores
        self.bdevs = bdevs
        self.subsystems = subsystems
        self.raids = raids

    def reads(self):
        """The batch every replica/snapshot run begins with, as expected calls."""
        return [("bdev_lvol_get_lvstores", None, self.lvstores),
                ("bdev_get_bdevs", None, self.bdevs),
                ("nvmf_get_subsystems", None, self.subsystems)]

    def raw(self, with_raids=False):
        """The model's raw input (NodeState(raw)) for planning tests."""
        raw = {"lvstores": self.lvstores["result"], "bdevs": self.bdevs["result"],
               "subsystems": self.subsystems["result"]}
        if with_raids:
            raw["raids"] = self.raids["result"]
        return copy.deepcopy(raw)


def node1():
    return Scenario(answer(INTRO, 63), answer(INTRO, 61), answer(INTRO, 78), answer(INTRO, 83))


def node2():
    return Scenario(
        # node2's lvstore read comes from the d6 recording of the same node layout
        answer(D6, 81, replace={"712debc7-9a6b-47ae-ab7d-496f91252c9d": "41fe430b-d3bb-4440-ace3-12420c2f18e4"}),
        answer(INTRO, 62), answer(INTRO, 72), result([]))


CHAIN_RENAME = {"vol1-r-a1b2c3d4": "vol1"}
CHAIN_HEAD_UUID = "aea39c3d-bd7a-4561-b908-0ca80ac073cb"


def chain(exposed=True):
    bdevs = []
    # head and vol1-snap-02 name the head; vol1-snap-01 and vol1-clone-01 do not
    for line, rename in ((17, CHAIN_RENAME), (18, None), (19, CHAIN_RENAME), (20, None)):
        bdevs.extend(transcript(D6, line, replace=rename)["response"]["result"])
    subsystems = list(answer(INTRO, 8)["result"])  # the discovery subsystem only
    if exposed:
        exported = answer("more/nvmf_hosts.jsonl", 8, replace={
            "vol1-r-b2c3d4e5": "vol1", "39648cde-8966-4ffc-9806-8d0dfd1c9170": CHAIN_HEAD_UUID,
            "39648CDE89664FFC98068D0DFD1C9170": "AEA39C3DBD7A4561B9080CA80AC073CB", '"4421"': '"4420"'})
        subsystems += exported["result"]
    return Scenario(answer(D6, 82), result(bdevs), result(subsystems), result([]))


# --- states after a change ---------------------------------------------------------------
# A module re-reads the node after it changed something. Where no recording holds that
# exact node, the after-state is the recorded one with the change applied the way SPDK
# reports it (each helper says which recorded answer shows that shape).


def _bdev(scenario, alias):
    for bdev in scenario.bdevs["result"]:
        if alias in (bdev.get("aliases") or []):
            return bdev
    raise KeyError(alias)


def without_lvol(scenario, alias):
    scenario.bdevs["result"] = [b for b in scenario.bdevs["result"] if alias not in (b.get("aliases") or [])]
    return scenario


def without_subsystem(scenario, nqn):
    """The node without that export; the bdevs it exported lose their claim, as SPDK releases
    a namespace's claim with the subsystem (an unexported lvol: more/introspection.jsonl L61)."""
    gone = [s for s in scenario.subsystems["result"] if s["nqn"] == nqn]
    scenario.subsystems["result"] = [s for s in scenario.subsystems["result"] if s["nqn"] != nqn]
    exported = {ns["bdev_name"] for s in gone for ns in s.get("namespaces") or []}
    for bdev in scenario.bdevs["result"]:
        if bdev["name"] in exported:
            bdev.update(claimed=False)
            bdev.pop("claim_type", None)
    return scenario


def resized(scenario, alias, size_bytes):
    """A grow shows as a larger num_blocks (more/lvol_ops.jsonl L105 after L104)."""
    bdev = _bdev(scenario, alias)
    bdev["num_blocks"] = size_bytes // bdev["block_size"]
    return scenario


def hosts_set(scenario, nqn, hosts):
    """The subsystem's ``hosts`` list as nvmf_get_subsystems shows it (more/nvmf_hosts.jsonl L14)."""
    for subsystem in scenario.subsystems["result"]:
        if subsystem["nqn"] == nqn:
            subsystem["hosts"] = [{"nqn": h} for h in hosts]
    return scenario


def chain_with_snapshot_03():
    """CHAIN after bdev_lvol_snapshot of the head as vol1-snap-03 (shape of d6 L17/L19)."""
    scenario = chain()
    snap02, head = _bdev(scenario, "disk1/vol1-snap-02"), _bdev(scenario, "disk1/vol1")
    snap03 = copy.deepcopy(snap02)
    snap03.update(name="5f0c1d2e-0000-4000-8000-000000000003", uuid="5f0c1d2e-0000-4000-8000-000000000003",
                  aliases=["disk1/vol1-snap-03"])
    snap03["driver_specific"]["lvol"].update(base_snapshot="vol1-snap-02", clones=["vol1"],
                                             num_allocated_clusters=2)
    snap02["driver_specific"]["lvol"]["clones"] = ["vol1-snap-03"]
    head["driver_specific"]["lvol"].update(base_snapshot="vol1-snap-03", num_allocated_clusters=0)
    scenario.bdevs["result"].append(snap03)
    return scenario


def chain_without_snapshot_02():
    """CHAIN after deleting vol1-snap-02: merged into the head, which now clones vol1-snap-01
    (more/lvol_ops.jsonl L122-L124: the child's allocation grows by the merged clusters)."""
    scenario = without_lvol(chain(), "disk1/vol1-snap-02")
    snap01, head = _bdev(scenario, "disk1/vol1-snap-01"), _bdev(scenario, "disk1/vol1")
    snap01["driver_specific"]["lvol"]["clones"] = ["vol1-clone-01", "vol1"]
    head["driver_specific"]["lvol"].update(base_snapshot="vol1-snap-01", num_allocated_clusters=4)
    return scenario


# --- a replica node after its target restarted (more/ANSWERS.md D2) ----------------------

D2_CLEAN = "more/d2_raid_sb_restart_clean_remove.jsonl"
D2_KILL9 = "more/d2_raid_sb_restart_kill9.jsonl"
NQN_B = NQN_PREFIX + "vol1-r-b2c3d4e5"
NQN_IMG = NQN_PREFIX + "img-base-0001"
NODE2_HEAD_UUID = "dde7fa1b-cd0c-4996-8e60-c6709f2493fb"
# The replica head's UUID in each recording, and the line where node2's raid list shows the RAID
# its examine assembled around that head after the restart.
D2_RESTARTS = {
    D2_CLEAN: ("dc91a19e-5e9a-4854-91ae-3d69c093d95f", 24),
    D2_KILL9: ("e377a2b1-be23-4ff1-88f9-5f67b326f2e9", 75),
}


def node2_restarted(recording=D2_CLEAN):
    """NODE2 after a restart: no exports and no transport; SPDK assembled RAID ``vol1-e0``
    (configuring, 1 of 2 members, superblock) around ``vol1-r-b2c3d4e5``, which claims it
    exclusive_write as any RAID member is (more/introspection.jsonl L61, vol1-r-a1b2c3d4)."""
    scenario = without_subsystem(without_subsystem(node2(), NQN_B), NQN_IMG)
    _bdev(scenario, "disk2/vol1-r-b2c3d4e5").update(claimed=True, claim_type="exclusive_write")
    recorded_uuid, line = D2_RESTARTS[recording]
    scenario.raids = answer(recording, line, replace={recorded_uuid: NODE2_HEAD_UUID})
    return scenario

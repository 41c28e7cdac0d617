"""Orphans decided from real SPDK v26.05 answers (more/introspection.jsonl node1 and node2)."""

from tests.unit.expected_calls import answer

from ansible_collections.spdk.storage.plugins.module_utils import spdk_orphans
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState

INTRO = "more/introspection.jsonl"
NQN = "nqn.2026-01.io.spdk-storage:"


def node1(**replace):
    """node1, with strings of the controllers' answer replaced (``replace``)."""
    return NodeState({"lvstores": answer(INTRO, 63)["result"], "bdevs": answer(INTRO, 61)["result"],
                      "subsystems": answer(INTRO, 78)["result"], "raids": answer(INTRO, 83)["result"],
                      "controllers": answer(INTRO, 80, replace or None)["result"]})


def test_a_controller_owns_only_bdevs_named_after_it_with_a_namespace_id():
    state = node1()
    by_name = {c.name: c for c in state.controllers}
    assert spdk_orphans.controller_bdevs(state, by_name["vol1-r-b2c3d4e5"]) == ["vol1-r-b2c3d4e5n1"]
    # A controller whose name is a prefix of another's bdev does not own that bdev.
    shorter = node1(**{'"name": "vol1-r-b2c3d4e5"': '"name": "vol1-r-b2c3d4e"'})
    controller = [c for c in shorter.controllers if c.name == "vol1-r-b2c3d4e"][0]
    assert spdk_orphans.controller_bdevs(shorter, controller) == []
    assert [c["name"] for c in spdk_orphans.orphan_controllers(shorter)] == ["vol1-r-b2c3d4e", "img-base-0001"]
    assert spdk_orphans.orphan_controllers(shorter)[0]["reason"] == "it has no namespace bdev"


def test_controllers_to_other_subsystems_are_not_the_collections_orphans():
    state = node1(**{NQN + "img-base-0001": "nqn.2016-06.io.spdk:img-base-0001"})
    assert spdk_orphans.orphan_controllers(state) == []


def test_no_connection_is_read_for_a_replica_a_raid_holds_or_that_is_not_exported():
    state = node1()
    assert spdk_orphans.connection_reads(state, state.replicas()) == []


def test_a_volume_lock_is_no_orphan_export():
    raw = {"lvstores": answer(INTRO, 63)["result"], "bdevs": answer(INTRO, 61)["result"],
           "subsystems": answer(INTRO, 78)["result"] + [{"nqn": NQN + "lock:vol1-e0", "subtype": "NVMe",
                                                         "listen_addresses": [], "hosts": [], "namespaces": []}],
           "raids": answer(INTRO, 83)["result"], "controllers": answer(INTRO, 80)["result"]}
    assert spdk_orphans.orphan_exports(NodeState(raw)) == []

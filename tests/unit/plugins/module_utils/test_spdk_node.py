# -*- coding: utf-8 -*-
"""Node: a target a run talks to, read once in one batch and again only after a change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_node import Node


class BatchClient:
    """Answers every read with an empty list and counts the batches."""

    def __init__(self):
        self.batches = []

    def batch(self, calls):
        self.batches.append([method for method, params in calls])
        return [[] for call in calls]

    def supports(self, method):
        return method == "bdev_lvol_shallow_copy"


def test_a_load_is_one_batch_of_the_nodes_parts():
    client = BatchClient()
    node = Node("node2", client, ("lvstores", "bdevs"))
    state = node.load()
    assert client.batches == [["bdev_lvol_get_lvstores", "bdev_get_bdevs"]]
    assert state is node.state and node.disk("d") is None and node.lvol("d", "x") is None


def test_reload_reads_the_same_parts_again_except_in_check_mode():
    client = BatchClient()
    node = Node("node1", client, ("subsystems",))
    node.load()
    node.reload(check_mode=True)
    assert len(client.batches) == 1
    node.reload()
    assert client.batches == [["nvmf_get_subsystems"]] * 2
    assert node.subsystems() == {}


def test_with_part_reads_only_what_is_missing_and_keeps_the_state():
    client = BatchClient()
    node = Node("node1", client, ("bdevs",))
    node.load()
    extended = node.with_part("raids")
    assert extended.has("raids") and not node.state.has("raids")
    assert node.with_part("bdevs") is node.state
    assert client.batches[1:] == [["bdev_raid_get_bdevs"]]


def test_what_a_node_supports_is_its_clients_answer():
    assert Node("n", BatchClient(), ()).supports("bdev_lvol_shallow_copy")

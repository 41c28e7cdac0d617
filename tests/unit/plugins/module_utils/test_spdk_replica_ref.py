# -*- coding: utf-8 -*-
"""ReplicaRef: one way to name an engine's replica, local or remote, in every multi-node run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import (
    ReplicaRef,
    parse_address,
    unique_refs,
)

PEER = "/run/spdk-storage/peers/node2.sock"


def test_a_local_replica_is_its_lvol_on_the_engine_node():
    ref = ReplicaRef("vol1-node1", disk="disk1")
    assert ref.is_local and ref.bdev == "disk1/vol1-node1" and ref.controller is None and ref.nqn is None
    assert ref.to_dict() == {"name": "vol1-node1", "disk": "disk1"}


def test_a_remote_replica_is_attached_by_its_export_address_and_default_nqn():
    ref = ReplicaRef("vol1-node2", address="127.0.0.2:4420", rpc_socket=PEER)
    assert not ref.is_local and ref.bdev == "vol1-node2n1" and ref.controller == "vol1-node2"
    assert ref.nqn == "nqn.2026-01.io.spdk-storage:vol1-node2"
    params = ref.attach_params("nqn.2026-01.io.spdk-storage:host:node1", {"ctrlr_loss_timeout_sec": 3})
    assert params == {"name": "vol1-node2", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.2",
                      "trsvcid": "4420", "subnqn": "nqn.2026-01.io.spdk-storage:vol1-node2",
                      "hostnqn": "nqn.2026-01.io.spdk-storage:host:node1", "ctrlr_loss_timeout_sec": 3}
    assert ref.to_dict() == {"name": "vol1-node2", "address": "127.0.0.2:4420",
                             "nqn": "nqn.2026-01.io.spdk-storage:vol1-node2", "rpc_socket": PEER}


def test_an_ipv6_export_address_is_understood():
    assert parse_address("[2001:db8::12]:4421") == ("2001:db8::12", 4421, "IPv6")


@pytest.mark.parametrize("fields, problem", [
    ({"name": "r", "disk": "d", "address": "127.0.0.2:4420"}, "not both"),
    ({"name": "r"}, "give disk"),
    ({"name": "r", "disk": "d", "nqn": "nqn.2026-01.io.x:y"}, "nqn only applies"),
    ({"name": "r", "address": "node2:4420"}, "IP"),
    ({"name": "r", "address": "127.0.0.2"}, "must look like"),
    ({"name": "r", "address": "127.0.0.2:99999"}, "port"),
    ({"name": "bad/name", "disk": "d"}, "replica"),
])
def test_what_cannot_name_a_replica_is_refused(fields, problem):
    with pytest.raises(SpdkInputError) as caught:
        ReplicaRef(**fields)
    assert problem in str(caught.value)


def test_a_run_asks_for_what_it_needs_of_a_remote_replica():
    dead_node = ReplicaRef("vol1-node2", rpc_socket=PEER)          # its export is gone with its node
    assert dead_node.require(rpc_socket=True) is dead_node
    with pytest.raises(SpdkInputError, match="give its address"):
        dead_node.require(address=True)
    with pytest.raises(SpdkInputError, match="give its rpc_socket"):
        ReplicaRef("vol1-node3", address="127.0.0.3:4420").require(rpc_socket=True)
    assert ReplicaRef("vol1-node1", disk="d").require(address=True, rpc_socket=True).is_local


def test_records_and_options_give_the_same_refs_and_a_replica_twice_is_refused():
    refs = unique_refs([{"name": "a", "disk": "d", "address": None}, ReplicaRef("b", disk="d")])
    assert [r.name for r in refs] == ["a", "b"]
    assert ReplicaRef.of({"name": "a", "disk": "d"}) == refs[0]
    with pytest.raises(SpdkInputError, match="a is listed more than once"):
        unique_refs([{"name": "a", "disk": "d"}, {"name": "a", "disk": "e"}])

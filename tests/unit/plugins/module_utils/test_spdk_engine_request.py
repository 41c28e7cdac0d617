# -*- coding: utf-8 -*-
"""EngineRequest: the spdk_engine options, checked before any RPC."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import (
    EngineRefusal,
    EngineRequest,
    check_no_unfinished_revert,
    check_recorded_size,
    engine_replica,
    unfinished_revert,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import DEFAULT_TIMEOUTS
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import ReplicaRef

LOCAL = {"name": "vol1-r-a1b2c3d4", "disk": "disk1"}
REMOTE = {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421"}


class TestRequest:
    def test_defaults_follow_the_engine_design(self):
        req = EngineRequest("vol1", replicas=[LOCAL, REMOTE], listen_address="10.0.0.1", node_name="node1")
        assert req.host_nqn == "nqn.2026-01.io.spdk-storage:host:node1"
        assert req.nqn == "nqn.2026-01.io.spdk-storage:vol1"
        assert req.timeouts == {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
        local, remote = req.replicas
        assert (local.bdev, local.controller) == ("disk1/vol1-r-a1b2c3d4", None)
        assert (remote.bdev, remote.controller, remote.nqn) == (
            "vol1-r-b2c3d4e5n1", "vol1-r-b2c3d4e5", "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5")

    def test_attach_sets_explicit_timeouts_and_the_host_nqn(self):
        spec = ReplicaRef("vol1-r2", address="[fd00::12]:4421", nqn="nqn.2026-01.io.example:r2")
        assert spec.attach_params("nqn.2026-01.io.spdk-storage:host:n1", dict(DEFAULT_TIMEOUTS)) == {
            "name": "vol1-r2", "trtype": "tcp", "adrfam": "ipv6", "traddr": "fd00::12", "trsvcid": "4421",
            "subnqn": "nqn.2026-01.io.example:r2", "hostnqn": "nqn.2026-01.io.spdk-storage:host:n1",
            "ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}

    @pytest.mark.parametrize("replicas, why", [
        ([LOCAL], "at least 2 replicas"),
        ([LOCAL, dict(LOCAL)], "listed more than once"),
        ([LOCAL, {"name": "r2", "disk": "disk1", "address": "10.0.0.2:4421"}], "exactly one of disk"),
        ([LOCAL, {"name": "r2"}], "exactly one of disk"),
        ([LOCAL, {"name": "r2", "address": "node2:4421"}], "not an IP address"),
        ([LOCAL, {"name": "r2", "address": "10.0.0.2"}], "must look like"),
        ([LOCAL, {"name": "r2-snap-x", "disk": "d"}], "reserved for snapshot"),
    ])
    def test_bad_replica_lists_are_refused_before_any_rpc(self, replicas, why):
        with pytest.raises(SpdkInputError, match=why):
            EngineRequest("vol1", replicas=replicas, listen_address="10.0.0.1")

    def test_a_frontend_needs_a_listen_address(self):
        with pytest.raises(SpdkInputError, match="needs listen_address"):
            EngineRequest("vol1", replicas=[LOCAL, REMOTE])
        assert EngineRequest("vol1", replicas=[LOCAL, REMOTE], frontend="none").listen_address is None


class TestEngineReplica:
    def test_replicas_are_replica_refs_and_keep_their_rpc_socket(self):
        ref = engine_replica(dict(REMOTE, rpc_socket="192.0.2.12:5260", disk=None, nqn=None))
        assert isinstance(ref, ReplicaRef) and ref.rpc_socket == "192.0.2.12:5260"
        assert ref.to_dict() == {"name": "vol1-r-b2c3d4e5", "address": "127.0.0.1:4421",
                                 "nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5", "rpc_socket": "192.0.2.12:5260"}

    def test_a_remote_ref_without_an_address_cannot_be_attached(self):
        with pytest.raises(SpdkInputError, match="give its address.*so that the engine node can attach it"):
            engine_replica(ReplicaRef("vol1-r2", rpc_socket="/var/tmp/node2.sock"))
        with pytest.raises(SpdkInputError, match="exactly one of disk"):
            engine_replica({"name": "vol1-r2", "rpc_socket": "/var/tmp/node2.sock"})


TWO = [{"name": "vol1-r0", "disk": "d0"}, {"name": "vol1-r1", "disk": "d1"}]


def test_a_size_below_the_one_the_engine_was_created_with_is_refused_before_any_rpc():
    request = EngineRequest("vol1", replicas=TWO, size="1MiB", frontend="none")
    with pytest.raises(EngineRefusal, match="created with size 64MiB; size 1MiB would shrink it"):
        check_recorded_size(request, {"size": 64 << 20})


@pytest.mark.parametrize("size, recorded", [("64MiB", {"size": 64 << 20}), ("128MiB", {"size": 64 << 20}),
                                            (None, {"size": 64 << 20}), ("1MiB", {}), ("1MiB", None)])
def test_the_same_a_larger_or_no_size_or_no_record_passes(size, recorded):
    check_recorded_size(EngineRequest("vol1", replicas=TWO, size=size, frontend="none"), recorded)


SNAPSHOTS = {"s1": {"kind": "user", "revert": {"state": "done"}}, "s2": {"kind": "user", "revert": {"state": "running"}},
             "sys1": {"kind": "system"}}


def test_the_snapshot_of_an_unfinished_revert_is_the_one_whose_marker_is_still_running():
    assert unfinished_revert(SNAPSHOTS) == "s2"
    assert unfinished_revert({"s1": SNAPSHOTS["s1"]}) is None and unfinished_revert({}) is None


@pytest.mark.parametrize("frontend", ["nvmf", "blockdev"])
def test_an_unfinished_revert_refuses_any_frontend_and_says_what_finishes_it(frontend):
    request = EngineRequest("vol1", replicas=[LOCAL, REMOTE], listen_address="10.0.0.1", frontend=frontend)
    with pytest.raises(EngineRefusal) as caught:
        check_no_unfinished_revert(request, "s2")
    assert "a revert to snapshot s2 began and did not finish" in str(caught.value)
    assert "spdk.storage.spdk_snapshot engine=vol1 name=s2 state=reverted" in caught.value.describe()


def test_without_an_unfinished_revert_or_for_maintenance_or_delete_nothing_is_refused():
    check_no_unfinished_revert(EngineRequest("vol1", replicas=[LOCAL, REMOTE], listen_address="10.0.0.1"), None)
    check_no_unfinished_revert(EngineRequest("vol1", replicas=[LOCAL, REMOTE], frontend="none"), "s2")
    check_no_unfinished_revert(EngineRequest("vol1", state="absent"), "s2")

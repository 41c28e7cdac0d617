# -*- coding: utf-8 -*-
"""Exposure planning (spdk_nvmf) against subsystem lists a real SPDK v26.05 returned.

The SPDK answers below are copied verbatim from real recordings; each names its file
and line (tests/unit/fixtures/transcripts/more__introspection.json keeps lines 72 and 78).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError

# more/introspection.jsonl L72 (node2): two subsystems both listening on 127.0.0.1:4421.
NODE2_SUBSYSTEMS = json.loads("""
[{"nqn": "nqn.2014-08.org.nvmexpress.discovery", "subtype": "Discovery", "listen_addresses": [], "allow_any_host": true,
  "hosts": []},
 {"nqn": "nqn.2026-01.io.spdk-storage:img-base-0001", "subtype": "NVMe", "listen_addresses": [{"trtype": "TCP",
  "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4421"}], "allow_any_host": true, "hosts": [],
  "serial_number": "00000000000000000000", "model_number": "SPDK bdev Controller", "max_namespaces": 32,
  "passthrough": false, "min_cntlid": 1, "max_cntlid": 65519, "dmrsl": 2097152, "wzsl": 12, "namespaces": [{"nsid": 1,
  "bdev_name": "902d6f88-b666-4972-8c9c-127baf3aa851", "name": "902d6f88-b666-4972-8c9c-127baf3aa851",
  "nguid": "902D6F88B66649728C9C127BAF3AA851", "uuid": "902d6f88-b666-4972-8c9c-127baf3aa851"}]},
 {"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5", "subtype": "NVMe", "listen_addresses": [{"trtype": "TCP",
  "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4421"}], "allow_any_host": false,
  "hosts": [{"nqn": "nqn.2026-01.io.spdk-storage:host-node1"}], "serial_number": "00000000000000000000",
  "model_number": "SPDK bdev Controller", "max_namespaces": 32, "passthrough": false, "min_cntlid": 1,
  "max_cntlid": 65519, "dmrsl": 2097152, "wzsl": 12, "namespaces": [{"nsid": 1,
  "bdev_name": "dde7fa1b-cd0c-4996-8e60-c6709f2493fb", "name": "dde7fa1b-cd0c-4996-8e60-c6709f2493fb",
  "nguid": "DDE7FA1BCD0C49968E60C6709F2493FB", "uuid": "dde7fa1b-cd0c-4996-8e60-c6709f2493fb"}]}]
""")

# more/introspection.jsonl L78 (node1): an engine frontend; a RAID namespace shows the RAID's name.
NODE1_ENGINE_SUBSYSTEMS = json.loads("""
[{"nqn": "nqn.2014-08.org.nvmexpress.discovery", "subtype": "Discovery", "listen_addresses": [], "allow_any_host": true,
  "hosts": []},
 {"nqn": "nqn.2026-01.io.spdk-storage:vol1-e0", "subtype": "NVMe", "listen_addresses": [{"trtype": "TCP",
  "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}], "allow_any_host": false,
  "hosts": [{"nqn": "nqn.2026-01.io.spdk-storage:host-frontend-a"}, {"nqn": "nqn.2026-01.io.spdk-storage:host-node3"}],
  "serial_number": "SPDKVOL1E0", "model_number": "SPDK bdev Controller", "max_namespaces": 32, "passthrough": false,
  "min_cntlid": 1, "max_cntlid": 65519, "dmrsl": 2097152, "wzsl": 12, "namespaces": [{"nsid": 1,
  "bdev_name": "vol1-e0", "name": "vol1-e0", "nguid": "4180113209A34EABBDDC545071D4F342",
  "uuid": "41801132-09a3-4eab-bddc-545071d4f342", "anagrpid": 1}]}]
""")

# more/nvmf_listener_ns_ana.jsonl L11: one subsystem with two listeners (multipath).
TWO_LISTENERS = json.loads("""
[{"nqn": "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5", "subtype": "NVMe", "listen_addresses": [{"trtype": "TCP",
  "adrfam": "IPv4", "traddr": "127.0.0.2", "trsvcid": "4421"}, {"trtype": "TCP", "adrfam": "IPv4",
  "traddr": "127.0.0.1", "trsvcid": "4421"}], "allow_any_host": true, "hosts": [],
  "serial_number": "00000000000000000000", "model_number": "SPDK bdev Controller", "max_namespaces": 32,
  "passthrough": false, "min_cntlid": 1, "max_cntlid": 65519, "dmrsl": 2097152, "wzsl": 12, "namespaces": [{"nsid": 1,
  "bdev_name": "7776210d-b834-4fa8-a6d4-cbf7c6ada68b", "name": "7776210d-b834-4fa8-a6d4-cbf7c6ada68b",
  "nguid": "7776210DB8344FA8A6D4CBF7C6ADA68B", "uuid": "7776210d-b834-4fa8-a6d4-cbf7c6ada68b", "anagrpid": 1}]}]
""")

REPLICA_NQN = "nqn.2026-01.io.spdk-storage:vol1-r-b2c3d4e5"
REPLICA_UUID = "dde7fa1b-cd0c-4996-8e60-c6709f2493fb"
HOST1 = "nqn.2026-01.io.spdk-storage:host-node1"
HOST3 = "nqn.2026-01.io.spdk-storage:host-node3"


def replica_spec(**overrides):
    args = dict(nqn=REPLICA_NQN, bdev="disk2/vol1-r-b2c3d4e5", bdev_uuid=REPLICA_UUID,
                listen_address="127.0.0.1", port_range="4420-4499", allowed_hosts=[HOST1])
    args.update(overrides)
    return nvmf.ExposureSpec(**args)


def methods(steps):
    return [step.method for step in steps]


class TestParse:
    def test_discovery_subsystem_is_left_out(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        assert sorted(subsystems) == ["nqn.2026-01.io.spdk-storage:img-base-0001", REPLICA_NQN]

    def test_a_real_subsystem_is_read_field_by_field(self):
        subsystem = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)[REPLICA_NQN]
        assert subsystem.allow_any_host is False
        assert subsystem.hosts == [HOST1]
        assert subsystem.listeners == [nvmf.Listener("127.0.0.1", 4421)]
        assert subsystem.namespaces == [{"nsid": 1, "bdev": REPLICA_UUID, "uuid": REPLICA_UUID}]

    def test_the_read_view_is_the_same_parse(self):
        """spdk_model's exposures and spdk_info's subsystems are this parse, shown as SPDK names things."""
        frontend = nvmf.parse_subsystems(NODE1_ENGINE_SUBSYSTEMS)["nqn.2026-01.io.spdk-storage:vol1-e0"]
        assert frontend.to_dict() == {
            "nqn": "nqn.2026-01.io.spdk-storage:vol1-e0", "listen_address": "127.0.0.1", "port": 4420,
            "listen_addresses": [{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420"}],
            "allow_any_host": False,
            "allowed_hosts": ["nqn.2026-01.io.spdk-storage:host-frontend-a", "nqn.2026-01.io.spdk-storage:host-node3"],
            "serial_number": "SPDKVOL1E0",
            "namespaces": [{"nsid": 1, "bdev_name": "vol1-e0", "uuid": "41801132-09a3-4eab-bddc-545071d4f342",
                            "anagrpid": 1}]}
        assert frontend.exports({"vol1-e0"}) and not frontend.exports({REPLICA_UUID})
        state = NodeState({"subsystems": NODE2_SUBSYSTEMS})
        assert [e.nqn for e in state.exposures] == list(nvmf.parse_subsystems(NODE2_SUBSYSTEMS))
        assert state.exposure(REPLICA_NQN).hosts == [HOST1]

    def test_the_first_listener_is_the_exposures_address(self):
        subsystem = nvmf.parse_subsystems(TWO_LISTENERS)[REPLICA_NQN]
        assert (subsystem.listen_address, subsystem.port) == ("127.0.0.2", 4421)
        assert nvmf.Subsystem(REPLICA_NQN).to_dict()["listen_address"] is None

    def test_used_ports_leave_out_the_subsystem_itself(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        assert nvmf.used_ports(subsystems) == {4421}
        assert nvmf.used_ports({REPLICA_NQN: subsystems[REPLICA_NQN]}, except_nqn=REPLICA_NQN) == set()


class TestNoChange:
    def test_an_exposure_that_matches_plans_nothing(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        spec = replica_spec(port=4421)
        assert nvmf.plan_exposure(spec, subsystems[REPLICA_NQN], subsystems) == []

    def test_a_shared_port_is_kept(self):
        # The recorded node shares 4421 between two subsystems (SPDK allows it);
        # moving a live export would disconnect its engine, so it stays.
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        assert nvmf.plan_exposure(replica_spec(), subsystems[REPLICA_NQN], subsystems) == []

    def test_a_port_outside_a_new_range_moves_to_the_range(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        plan = nvmf.plan_exposure(replica_spec(port_range="4430-4439"), subsystems[REPLICA_NQN], subsystems)
        assert methods(plan) == ["nvmf_subsystem_add_listener", "nvmf_subsystem_remove_listener"]
        assert plan[0].params["listen_address"]["trsvcid"] == "4430"
        assert plan[1].params["listen_address"]["trsvcid"] == "4421"

    def test_raid_namespace_is_matched_by_name(self):
        subsystems = nvmf.parse_subsystems(NODE1_ENGINE_SUBSYSTEMS)
        spec = nvmf.ExposureSpec(
            nqn="nqn.2026-01.io.spdk-storage:vol1-e0", bdev="vol1-e0",
            bdev_uuid="41801132-09a3-4eab-bddc-545071d4f342", listen_address="127.0.0.1", port=4420,
            allowed_hosts=[HOST3, "nqn.2026-01.io.spdk-storage:host-frontend-a"])
        assert nvmf.plan_exposure(spec, subsystems[spec.nqn], subsystems) == []


class TestCreate:
    def test_new_exposure_creates_everything_in_order(self):
        plan = nvmf.plan_exposure(replica_spec(port=4425), None, {}, transport_exists=False)
        assert methods(plan) == [
            "nvmf_create_transport", "nvmf_create_subsystem", "nvmf_subsystem_add_ns",
            "nvmf_subsystem_add_host", "nvmf_subsystem_add_listener",
        ]
        create = plan[1].params
        assert create["nqn"] == REPLICA_NQN and create["allow_any_host"] is False
        assert len(create["serial_number"]) == 20 and create["serial_number"].startswith("SPDKST")
        assert plan[2].params == {"nqn": REPLICA_NQN, "namespace": {"bdev_name": "disk2/vol1-r-b2c3d4e5"}}
        assert plan[3].params == {"nqn": REPLICA_NQN, "host": HOST1}
        assert plan[4].params == {"nqn": REPLICA_NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4425"}}

    def test_transport_is_not_recreated_when_it_exists(self):
        plan = nvmf.plan_exposure(replica_spec(), None, {}, transport_exists=True)
        assert "nvmf_create_transport" not in methods(plan)

    def test_allow_any_host_only_when_asked(self):
        plan = nvmf.plan_exposure(replica_spec(allow_any_host=True, allowed_hosts=[]), None, {})
        assert plan[0].params["allow_any_host"] is True
        assert "nvmf_subsystem_add_host" not in methods(plan)

    def test_serial_is_stable_and_differs_per_nqn(self):
        assert nvmf.default_serial(REPLICA_NQN) == nvmf.default_serial(REPLICA_NQN)
        assert nvmf.default_serial(REPLICA_NQN) != nvmf.default_serial(REPLICA_NQN + "x")

    def test_ipv6_listener(self):
        plan = nvmf.plan_exposure(replica_spec(listen_address="::1", port=4430), None, {})
        assert plan[-1].params["listen_address"] == {"trtype": "TCP", "adrfam": "IPv6", "traddr": "::1",
                                                     "trsvcid": "4430"}


class TestPorts:
    def test_lowest_free_port_skips_every_used_one(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS + NODE1_ENGINE_SUBSYSTEMS[1:])
        spec = replica_spec(nqn="nqn.2026-01.io.spdk-storage:vol9", port_range="4420-4430")
        # 4420 (engine) and 4421 (two replicas) are taken on this node
        assert nvmf.choose_port(spec, None, subsystems) == 4422

    def test_port_choice_is_deterministic(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        spec = replica_spec(nqn="nqn.2026-01.io.spdk-storage:vol9")
        assert {nvmf.choose_port(spec, None, subsystems) for attempt in range(5)} == {4420}

    def test_existing_port_in_range_is_kept(self):
        subsystems = nvmf.parse_subsystems(NODE1_ENGINE_SUBSYSTEMS)
        spec = nvmf.ExposureSpec(nqn="nqn.2026-01.io.spdk-storage:vol1-e0", bdev="vol1-e0", bdev_uuid="x",
                                 listen_address="127.0.0.1", port_range="4400-4499")
        assert nvmf.choose_port(spec, subsystems[spec.nqn], subsystems) == 4420

    def test_explicit_port_of_another_subsystem_is_refused(self):
        subsystems = nvmf.parse_subsystems(NODE1_ENGINE_SUBSYSTEMS)
        with pytest.raises(SpdkInputError, match=r"port 4420 is already used by subsystem .*vol1-e0"):
            nvmf.plan_exposure(replica_spec(port=4420), None, subsystems)

    def test_full_range_is_refused(self):
        subsystems = nvmf.parse_subsystems(NODE1_ENGINE_SUBSYSTEMS)
        with pytest.raises(SpdkInputError, match="no free port in port_range 4420-4420"):
            nvmf.plan_exposure(replica_spec(port_range="4420-4420"), None, subsystems)

    @pytest.mark.parametrize("bad", ["4420", "4499-4420", "0-10", "a-b", "4420-70000"])
    def test_bad_port_ranges(self, bad):
        with pytest.raises(SpdkInputError, match="port_range"):
            nvmf.parse_port_range(bad)

    def test_moving_the_port_adds_before_it_removes(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        plan = nvmf.plan_exposure(replica_spec(port=4430), subsystems[REPLICA_NQN], subsystems)
        assert methods(plan) == ["nvmf_subsystem_add_listener", "nvmf_subsystem_remove_listener"]
        assert plan[1].params["listen_address"]["trsvcid"] == "4421"

    def test_extra_listeners_are_removed(self):
        subsystems = nvmf.parse_subsystems(TWO_LISTENERS)
        spec = replica_spec(bdev_uuid="7776210d-b834-4fa8-a6d4-cbf7c6ada68b", port=4421,
                            allow_any_host=True, allowed_hosts=[])
        plan = nvmf.plan_exposure(spec, subsystems[REPLICA_NQN], subsystems)
        assert methods(plan) == ["nvmf_subsystem_remove_listener"]
        assert plan[0].params["listen_address"]["traddr"] == "127.0.0.2"


class TestHosts:
    def test_hosts_become_exactly_the_allowed_list(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        plan = nvmf.plan_exposure(replica_spec(port=4421, allowed_hosts=[HOST3]), subsystems[REPLICA_NQN],
                                  subsystems)
        # revoke first, so the old host never overlaps the new one
        assert [(s.method, s.params["host"]) for s in plan] == [
            ("nvmf_subsystem_remove_host", HOST1), ("nvmf_subsystem_add_host", HOST3)]

    def test_closing_an_open_subsystem(self):
        # a subsystem opened to any host, as nvmf_subsystem_allow_any_host leaves it
        subsystems = nvmf.parse_subsystems(json.loads(json.dumps(NODE2_SUBSYSTEMS)))
        subsystems[REPLICA_NQN].allow_any_host = True
        plan = nvmf.plan_exposure(replica_spec(port=4421), subsystems[REPLICA_NQN], subsystems)
        assert [(s.method, s.params) for s in plan] == [
            ("nvmf_subsystem_allow_any_host", {"nqn": REPLICA_NQN, "allow_any_host": False})]

    def test_duplicates_in_the_list_do_not_plan_a_second_add(self):
        # a duplicate add_host answers -32603 "Internal error" (more/nvmf_hosts.jsonl L13)
        plan = nvmf.plan_exposure(replica_spec(allowed_hosts=[HOST1, HOST1]), None, {})
        assert methods(plan).count("nvmf_subsystem_add_host") == 1

    @pytest.mark.parametrize("bad", ["not-an-nqn", "", "nqn.2026-01.io.x:" + "a" * 220, "nqn.bad date:x"])
    def test_invalid_host_nqns_are_refused_before_any_call(self, bad):
        # SPDK answers an invalid host NQN with a bare "Internal error", as it does a duplicate (L13)
        with pytest.raises(SpdkInputError):
            replica_spec(allowed_hosts=[bad])

    def test_uuid_host_nqn_is_accepted(self):
        host = "nqn.2014-08.org.nvmexpress:uuid:6b49dbc7-3912-4826-8d38-71c66c5aa281"
        assert replica_spec(allowed_hosts=[host]).allowed_hosts == [host]


class TestNamespace:
    def test_wrong_namespace_is_replaced(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        spec = replica_spec(port=4421, bdev="disk2/new-head", bdev_uuid="11111111-2222-3333-4444-555555555555")
        plan = nvmf.plan_exposure(spec, subsystems[REPLICA_NQN], subsystems)
        assert [(s.method, s.params) for s in plan] == [
            ("nvmf_subsystem_remove_ns", {"nqn": REPLICA_NQN, "nsid": 1}),
            ("nvmf_subsystem_add_ns", {"nqn": REPLICA_NQN, "namespace": {"bdev_name": "disk2/new-head"}}),
        ]


class TestUnexpose:
    def test_unexpose_deletes_the_subsystem(self):
        subsystems = nvmf.parse_subsystems(NODE2_SUBSYSTEMS)
        plan = nvmf.plan_unexpose(subsystems[REPLICA_NQN])
        assert [(s.method, s.params) for s in plan] == [("nvmf_delete_subsystem", {"nqn": REPLICA_NQN})]

    def test_unexposing_nothing_plans_nothing(self):
        assert nvmf.plan_unexpose(None) == []


class TestInputs:
    def test_hostname_is_not_a_listen_address(self):
        with pytest.raises(SpdkInputError, match="not an IP address"):
            replica_spec(listen_address="storage-1.example")

    def test_expected_entry_reads_back_as_the_planned_subsystem(self):
        # the entry predicted for check mode parses like a real answer to the same subsystem
        spec = replica_spec(port=4425)
        entry = nvmf.expected_entry(spec, None, {})
        predicted = nvmf.Subsystem.from_spdk(entry)
        assert predicted.listeners == [nvmf.Listener("127.0.0.1", 4425)]
        assert predicted.hosts == [HOST1] and predicted.allow_any_host is False
        assert nvmf.plan_exposure(spec, predicted, {spec.nqn: predicted}) == []

"""The NVMe-oF target: transports, subsystems, namespaces, listeners, hosts and ANA, as v26.05 answers."""
import socket
import time

from tests.emulator.nvmf_support import NQN, address, attach, attach_error, export, spdk_io, io_target, wait_until

TRANSPORT_KEYS = ["trtype", "max_queue_depth", "max_io_qpairs_per_ctrlr", "in_capsule_data_size", "max_io_size",
                  "max_aq_depth", "iobuf_small_cache_size", "iobuf_large_cache_size", "dif_insert_or_strip",
                  "zcopy", "c2h_success", "sock_priority", "abort_timeout_sec", "ack_timeout", "data_wr_pool_size",
                  "disable_command_passthru", "kas", "min_kato"]
SUBSYSTEM_KEYS = ["nqn", "subtype", "listen_addresses", "allow_any_host", "hosts", "serial_number", "model_number",
                  "max_namespaces", "passthrough", "min_cntlid", "max_cntlid", "dmrsl", "wzsl", "namespaces"]
DISCOVERY = {"nqn": "nqn.2014-08.org.nvmexpress.discovery", "subtype": "Discovery", "listen_addresses": [],
             "allow_any_host": True, "hosts": []}


def can_connect(addr, port):
    with socket.socket() as probe:
        return probe.connect_ex((addr, int(port))) == 0


def wait_for_host(node, nqn):
    """Until spdk_io has connected, plus a moment for its first write to reach the (slow) bdev."""
    wait_until(lambda: node.call("nvmf_subsystem_get_controllers", nqn=nqn))
    time.sleep(0.15)


def test_tcp_transport_is_created_once(emulator_node):
    node = emulator_node()
    assert node.call("nvmf_get_transports") == []
    assert node.call("nvmf_create_transport", trtype="TCP") is True
    assert node.error("nvmf_create_transport", trtype="TCP") == {
        "code": -32603, "message": "Transport type 'TCP' already exists"}
    transports = node.call("nvmf_get_transports")
    assert [list(t) for t in transports] == [TRANSPORT_KEYS]
    assert transports[0]["trtype"] == "TCP" and transports[0]["max_io_size"] == 131072


def test_subsystem_lists_after_discovery_with_the_recorded_shape(emulator_node):
    node = emulator_node()
    nqn, port, uuid = export(node, "vol1", serial_number="SPDKLAB00000001", model_number="spdk-lab replica")
    listing = node.call("nvmf_get_subsystems")
    assert listing[0] == DISCOVERY
    assert list(listing[1]) == SUBSYSTEM_KEYS
    assert listing[1]["listen_addresses"] == [address(node.addr, port)]
    assert (listing[1]["serial_number"], listing[1]["model_number"]) == ("SPDKLAB00000001", "spdk-lab replica")
    assert listing[1]["namespaces"] == [{"nsid": 1, "bdev_name": "vol1", "name": "vol1",
                                         "nguid": uuid.replace("-", "").upper(), "uuid": uuid}]
    assert node.call("nvmf_get_subsystems", nqn=nqn) == [listing[1]]
    assert node.call("nvmf_subsystem_get_listeners", nqn=nqn) == [{"address": address(node.addr, port)}]


def test_subsystem_creation_refusals(emulator_node):
    node = emulator_node()
    node.call("nvmf_create_subsystem", nqn=NQN + "a")
    for nqn in (NQN + "a", "not-an-nqn", "nqn.2026-13.io.spdk:bad-month"):
        assert node.error("nvmf_create_subsystem", nqn=nqn) == {
            "code": -32603, "message": "Unable to create subsystem %s" % nqn}
    assert node.error("nvmf_delete_subsystem", nqn=NQN + "nope") == {"code": -32602, "message": "Invalid parameters"}
    defaults = node.call("nvmf_get_subsystems", nqn=NQN + "a")[0]
    assert (defaults["serial_number"], defaults["model_number"], defaults["allow_any_host"]) == (
        "00000000000000000000", "SPDK bdev Controller", False)


def test_a_namespace_claims_its_bdev_until_the_subsystem_goes(emulator_node):
    node = emulator_node()
    nqn, _port, _uuid = export(node, "vol1")
    claimed = node.call("bdev_get_bdevs", name="vol1")[0]
    assert (claimed["claimed"], claimed["claim_type"]) == (True, "exclusive_write")
    node.call("nvmf_create_subsystem", nqn=NQN + "other")
    invalid = {"code": -32602, "message": "Invalid parameters"}
    assert node.error("nvmf_subsystem_add_ns", nqn=NQN + "other", namespace={"bdev_name": "vol1"}) == invalid
    assert node.error("nvmf_subsystem_add_ns", nqn=NQN + "other", namespace={"bdev_name": "nope"}) == invalid
    assert node.call("nvmf_delete_subsystem", nqn=nqn) is True
    assert node.call("bdev_get_bdevs", name="vol1")[0]["claimed"] is False
    assert node.call("nvmf_subsystem_add_ns", nqn=NQN + "other", namespace={"bdev_name": "vol1", "nsid": 5}) == 5


def test_remove_ns_refusals_and_hot_removed_bdev_leaves_the_subsystem(emulator_node):
    node = emulator_node()
    nqn, _port, _uuid = export(node, "vol1")
    invalid = {"code": -32602, "message": "Invalid parameters"}
    assert node.error("nvmf_subsystem_remove_ns", nqn=nqn, nsid=9) == invalid
    assert node.error("nvmf_subsystem_remove_ns", nqn=nqn) == invalid
    assert node.call("bdev_aio_delete", name="vol1") is True
    assert node.call("nvmf_get_subsystems", nqn=nqn)[0]["namespaces"] == []
    assert node.error("nvmf_subsystem_remove_ns", nqn=nqn, nsid=1) == invalid


def test_listener_owns_a_real_tcp_port_shared_by_subsystems(emulator_node):
    node, other = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(node, "vol1")
    assert can_connect(node.addr, port)
    node.call("nvmf_create_subsystem", nqn=NQN + "second", allow_any_host=True)
    assert node.call("nvmf_subsystem_add_listener", nqn=NQN + "second", listen_address=address(node.addr, port))
    invalid = {"code": -32602, "message": "Invalid parameters"}
    assert node.error("nvmf_subsystem_add_listener", nqn=nqn, listen_address=address(node.addr, port)) == invalid
    other.call("nvmf_create_transport", trtype="TCP")
    other.call("nvmf_create_subsystem", nqn=NQN + "thief", allow_any_host=True)
    assert other.error("nvmf_subsystem_add_listener", nqn=NQN + "thief",
                       listen_address=address(node.addr, port)) == invalid
    node.call("nvmf_subsystem_remove_listener", nqn=nqn, listen_address=address(node.addr, port))
    assert can_connect(node.addr, port), "the second subsystem still listens there"
    node.call("nvmf_subsystem_remove_listener", nqn=NQN + "second", listen_address=address(node.addr, port))
    assert not can_connect(node.addr, port)
    assert node.error("nvmf_subsystem_remove_listener", nqn=nqn, listen_address=address(node.addr, port)) == invalid


def test_allow_list_admits_only_listed_hosts(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", allow_any_host=False)
    host = NQN + "host-node1"
    io_error = {"code": -5, "message": "Input/output error"}
    assert attach_error(engine, "r1", replica, nqn, port, hostnqn=host) == io_error
    assert attach_error(engine, "r1", replica, nqn, port) == io_error
    assert replica.call("nvmf_subsystem_add_host", nqn=nqn, host=host) is True
    internal = {"code": -32603, "message": "Internal error"}
    assert replica.error("nvmf_subsystem_add_host", nqn=nqn, host=host) == internal
    assert replica.error("nvmf_subsystem_add_host", nqn=nqn, host="not-an-nqn") == internal
    assert replica.error("nvmf_subsystem_add_host", nqn=NQN + "nope", host=host) == {
        "code": -32602, "message": "Invalid parameters"}
    assert replica.call("nvmf_get_subsystems", nqn=nqn)[0]["hosts"] == [{"nqn": host}]
    assert attach_error(engine, "r1", replica, nqn, port, hostnqn=NQN + "host-intruder") == io_error
    assert attach(engine, "r1", replica, nqn, port, hostnqn=host) == ["r1n1"]
    controllers = replica.call("nvmf_subsystem_get_controllers", nqn=nqn)
    assert [(c["cntlid"], c["cntrltype"], c["hostnqn"], c["num_io_qpairs"]) for c in controllers] == [
        (1, "io", host, 1)]


def test_remove_host_disconnects_it_at_once_and_allow_any_host_false_keeps_connections(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1", allow_any_host=False)
    host = NQN + "host-node1"
    replica.call("nvmf_subsystem_add_host", nqn=nqn, host=host)
    attach(engine, "r1", replica, nqn, port, hostnqn=host)
    assert replica.call("nvmf_subsystem_remove_host", nqn=nqn, host=host) is True
    assert replica.call("nvmf_subsystem_get_controllers", nqn=nqn) == []
    assert replica.error("nvmf_subsystem_remove_host", nqn=nqn, host=host) == {
        "code": -32603, "message": "Internal error"}
    engine.call("bdev_nvme_detach_controller", name="r1")
    replica.call("nvmf_subsystem_allow_any_host", nqn=nqn, allow_any_host=True)
    attach(engine, "r3", replica, nqn, port, hostnqn=NQN + "host-anyone")
    replica.call("nvmf_subsystem_allow_any_host", nqn=nqn, allow_any_host=False)
    assert [c["hostnqn"] for c in replica.call("nvmf_subsystem_get_controllers", nqn=nqn)] == [NQN + "host-anyone"]
    assert replica.error("nvmf_subsystem_allow_any_host", nqn=nqn) == {"code": -32602, "message": "Invalid parameters"}


def test_listener_ana_states_per_group(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1", ana_reporting=True)
    listener = address(node.addr, port)
    states = node.call("nvmf_subsystem_get_listeners", nqn=nqn)[0]["ana_states"]
    assert states == [{"ana_group": g, "ana_state": "optimized"} for g in range(1, 33)]
    assert node.call("nvmf_get_subsystems", nqn=nqn)[0]["namespaces"][0]["anagrpid"] == 1
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener, ana_state="inaccessible")
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener, ana_state="optimized",
              anagrpid=7)
    states = {s["ana_group"]: s["ana_state"] for s in node.call("nvmf_subsystem_get_listeners", nqn=nqn)[0]["ana_states"]}
    assert states[7] == "optimized" and set(states[g] for g in states if g != 7) == {"inaccessible"}
    assert node.error("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener,
                      ana_state="change") == {"code": -32602, "message": "Invalid parameters"}
    setting_error = {"code": -32603, "message": "error setting ANA state: -22"}
    assert node.error("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=address("127.0.0.3", port),
                      ana_state="optimized") == setting_error
    plain, plain_port, _listener = export(node, "vol2")
    assert node.error("nvmf_subsystem_listener_set_ana_state", nqn=plain, listen_address=address(node.addr, plain_port),
                      ana_state="inaccessible") == setting_error


def test_moving_a_namespace_to_an_inaccessible_group_waits_for_in_flight_writes(emulator_node):
    """set_ns_ana_group drains (ana, tests/emulator/README.md: 19/19 identical snapshot pairs); the listener call does not."""
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1", ana_reporting=True)
    listener = address(node.addr, port)
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener, ana_state="inaccessible",
              anagrpid=2)
    node.call("emu_bdev_fault", name="vol1", ops=["write"], delay_ms=800)
    writer = spdk_io("write", *io_target(node, nqn, port), "--offset", 0, "--length", 4096, "--pattern", "0x5a",
                     background=True)
    wait_for_host(node, nqn)
    started = time.monotonic()
    assert node.call("nvmf_subsystem_set_ns_ana_group", nqn=nqn, nsid=1, anagrpid=2) is True
    waited = time.monotonic() - started
    assert waited >= 0.2, "the RPC answered while a write was still in flight"
    assert writer.wait(5) == 0
    node.call("emu_bdev_fault", name="vol1", clear=True)
    node.call("nvmf_subsystem_set_ns_ana_group", nqn=nqn, nsid=1, anagrpid=1)
    assert spdk_io("verify", *io_target(node, nqn, port), "--offset", 0, "--length", 4096,
                   "--pattern", "0x5a").returncode == 0


def test_listener_ana_change_does_not_wait_for_in_flight_writes(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1", ana_reporting=True)
    node.call("emu_bdev_fault", name="vol1", ops=["write"], delay_ms=800)
    writer = spdk_io("write", *io_target(node, nqn, port), "--length", 4096, background=True)
    wait_for_host(node, nqn)
    started = time.monotonic()
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=address(node.addr, port),
              ana_state="inaccessible")
    assert time.monotonic() - started < 0.2
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=address(node.addr, port),
              ana_state="optimized")
    assert writer.wait(5) == 0


def test_qpairs_show_the_connected_host(emulator_node):
    engine, replica = emulator_node(0), emulator_node(1)
    nqn, port, _uuid = export(replica, "vol1")
    attach(engine, "r", replica, nqn, port)
    qpairs = replica.call("nvmf_subsystem_get_qpairs", nqn=nqn)
    assert [list(q) for q in qpairs] == [["cntlid", "qid", "state", "thread", "hostnqn", "listen_address",
                                          "peer_address"]]
    assert (qpairs[0]["state"], qpairs[0]["listen_address"]) == ("enabled", address(replica.addr, port))
    assert qpairs[0]["hostnqn"].startswith("nqn.2014-08.org.nvmexpress:uuid:")

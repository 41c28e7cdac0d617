"""The JSON-RPC client against a real socket server on a thread (tests/unit/rpc_server.py)."""
import json
import os
import socket
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    READ_ONLY_METHODS,
    REDACTED,
    JsonStreamDecoder,
    SpdkCapabilityError,
    SpdkConnectionError,
    SpdkProtocolError,
    SpdkRpcClient,
    SpdkRpcError,
    SpdkTimeoutError,
    parse_address,
)
from tests.unit.rpc_server import RpcServer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "spdk_v26_05_answers.json")
with open(FIXTURES) as _handle:
    REAL = _handle.read()
REAL = json.loads(REAL)["exchanges"]

VERSION = REAL["spdk_get_version"]["response"]["result"]
METHODS = REAL["rpc_get_methods"]["response"]["result"]
LVSTORES = REAL["bdev_lvol_get_lvstores"]["response"]["result"]


def real_error(name):
    error = REAL[name]["response"]["error"]
    return (error["code"], error["message"])


@pytest.fixture
def client(rpc_server):
    client = SpdkRpcClient(rpc_server.address, timeout=2.0)
    yield client
    client.close()


# -- framing ----------------------------------------------------------------------

def test_a_call_returns_the_result_and_reuses_one_connection(rpc_server, client):
    rpc_server.reply("spdk_get_version", result=VERSION)
    rpc_server.reply("bdev_lvol_get_lvstores", result=LVSTORES)

    assert client.call("spdk_get_version") == VERSION
    assert client.call("bdev_lvol_get_lvstores") == LVSTORES
    assert rpc_server.connections == 1
    assert [r["id"] for r in rpc_server.requests] == [1, 2]
    assert rpc_server.requests[0] == {"jsonrpc": "2.0", "method": "spdk_get_version", "id": 1}


def test_params_are_sent_as_given(rpc_server, client):
    rpc_server.reply("bdev_raid_get_bdevs", result=[])
    client.call("bdev_raid_get_bdevs", {"category": "all"})
    assert rpc_server.requests[0]["params"] == {"category": "all"}


def test_an_answer_split_into_single_bytes_is_reassembled(rpc_server, client):
    rpc_server.reply("bdev_lvol_get_lvstores", result=LVSTORES, split=True)
    assert client.call("bdev_lvol_get_lvstores") == LVSTORES


def test_two_answers_joined_in_one_write_are_both_decoded(rpc_server, client):
    # The first answer is held back and written together with the second one: only a
    # client that writes both requests before reading can get them (pipelining).
    rpc_server.reply("spdk_get_version", result=VERSION, hold=True)
    rpc_server.reply("bdev_lvol_get_lvstores", result=LVSTORES)
    assert client.batch([("spdk_get_version", None), ("bdev_lvol_get_lvstores", None)]) == [VERSION, LVSTORES]


def test_decoder_handles_split_utf8_joined_objects_and_whitespace():
    decoder = JsonStreamDecoder()
    data = ' {"id": 1, "result": "d\u00e9j\u00e0 {vu}"}\n{"id": 2, "result": [1, {"a": "]"}]}'.encode("utf-8")
    values = []
    for index in range(len(data)):
        values.extend(decoder.feed(data[index:index + 1]))
    assert values == [{"id": 1, "result": "d\u00e9j\u00e0 {vu}"}, {"id": 2, "result": [1, {"a": "]"}]}]
    assert not decoder.pending
    assert decoder.feed(b'{"id": 3, "result": "a\\"}"}{"id": 4, "result": null}') == [
        {"id": 3, "result": 'a"}'}, {"id": 4, "result": None}]


@pytest.mark.parametrize("garbage", [b'{"id": 1, "result": tru}', b'garbage', b'{"id": 1 "result": 2}'])
def test_decoder_rejects_malformed_json_once_the_object_is_complete(garbage):
    with pytest.raises(ValueError, match="malformed|does not start"):
        JsonStreamDecoder().feed(garbage)


def test_malformed_answer_is_a_protocol_error_and_the_connection_is_renewed(rpc_server, client):
    rpc_server.reply("spdk_get_version", once=True, raw=b'{"jsonrpc": "2.0", "id": 1, "result": tru}')
    rpc_server.reply("spdk_get_version", result=VERSION)
    with pytest.raises(SpdkProtocolError, match="spdk_get_version: malformed JSON"):
        client.call("spdk_get_version")
    assert client.call("spdk_get_version") == VERSION
    assert rpc_server.connections == 2


def test_an_answer_with_another_id_is_refused_and_the_connection_is_renewed(rpc_server, client):
    rpc_server.reply("spdk_get_version", once=True, result=VERSION, wrong_id=True)
    rpc_server.reply("spdk_get_version", result=VERSION)
    with pytest.raises(SpdkProtocolError, match="id 1001 but the ids awaited were \\[1\\]"):
        client.call("spdk_get_version")
    assert client.call("spdk_get_version") == VERSION
    assert rpc_server.connections == 2


def test_an_error_with_id_null_belongs_to_the_one_pending_request(rpc_server, client):
    # spdk_tgt answers id null when it could not read the request (step6.jsonl:68).
    rpc_server.reply("spdk_get_version",
                     raw=b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Invalid request"}}')
    with pytest.raises(SpdkRpcError) as info:
        client.call("spdk_get_version")
    assert (info.value.code, info.value.message) == (-32600, "Invalid request")


# -- deadlines and broken connections -------------------------------------------------

def test_a_late_answer_hits_the_deadline_closes_the_socket_and_the_next_call_reconnects(rpc_server):
    client = SpdkRpcClient(rpc_server.address, timeout=0.3)
    rpc_server.reply("bdev_wait_for_examine", delay=2.0, result=True)
    rpc_server.reply("spdk_get_version", result=VERSION)
    started = time.monotonic()
    with pytest.raises(SpdkTimeoutError, match="bdev_wait_for_examine: no answer from .* before the deadline"):
        client.call("bdev_wait_for_examine")
    assert 0.3 <= time.monotonic() - started < 1.0
    assert not client._transport.connected
    # the target got the request and may have acted on it, so it counts as sent
    assert [call.method for call in client.sent_calls] == ["bdev_wait_for_examine"]
    assert client.call("spdk_get_version") == VERSION
    assert rpc_server.connections == 2


def test_a_connection_closed_mid_answer_is_reported_as_such(rpc_server, client):
    rpc_server.reply("bdev_lvol_get_lvstores", once=True, result=LVSTORES, truncate=25)
    rpc_server.reply("bdev_lvol_get_lvstores", result=LVSTORES)
    with pytest.raises(SpdkConnectionError, match="closed the connection in the middle of an answer"):
        client.call("bdev_lvol_get_lvstores")
    assert client.call("bdev_lvol_get_lvstores") == LVSTORES


def test_a_connection_closed_without_answer_is_reported_as_such(rpc_server, client):
    rpc_server.reply("spdk_kill_instance", close=True)
    with pytest.raises(SpdkConnectionError, match="closed the connection before answering"):
        client.call("spdk_kill_instance", {"sig_name": "SIGTERM"})


def test_a_target_restarted_between_calls_is_reached_again(tmp_path):
    path = str(tmp_path / "spdk.sock")
    first = RpcServer(path=path).start()
    first.reply("spdk_get_version", result=VERSION)
    client = SpdkRpcClient(path, timeout=2.0)
    assert client.call("spdk_get_version") == VERSION
    first.stop()
    second = RpcServer(path=path).start()
    second.reply("spdk_get_version", result=VERSION)
    try:
        assert client.call("spdk_get_version") == VERSION
        assert second.methods_called() == ["spdk_get_version"]
    finally:
        client.close()
        second.stop()


def test_connecting_retries_until_a_starting_target_creates_its_socket(tmp_path):
    server = RpcServer(path=str(tmp_path / "spdk.sock"))
    server.reply("spdk_get_version", result=VERSION)
    server.start(after=0.3)
    client = SpdkRpcClient(server.path, timeout=5.0)
    started = time.monotonic()
    try:
        assert client.call("spdk_get_version") == VERSION
        assert 0.3 <= time.monotonic() - started < 2.0
    finally:
        client.close()
        server.stop()


def test_an_absent_socket_fails_after_bounded_retries_with_advice(tmp_path):
    client = SpdkRpcClient(str(tmp_path / "missing.sock"), timeout=30.0, connect_retries=3)
    started = time.monotonic()
    with pytest.raises(SpdkConnectionError) as info:
        client.call("spdk_get_version")
    assert time.monotonic() - started < 2.0
    assert "after 4 attempt(s)" in str(info.value)
    assert "is spdk_tgt running? is rpc_socket right?" in str(info.value)
    assert info.value.code is None
    assert client.sent_calls == []  # nothing reached a target, so nothing counts as sent


def test_a_socket_nobody_listens_on_is_refused_and_retried(tmp_path):
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound, never listening: connect() is refused like a dead target's socket
    try:
        client = SpdkRpcClient(path, timeout=30.0, connect_retries=2)
        with pytest.raises(SpdkConnectionError, match="after 3 attempt\\(s\\): Connection refused"):
            client.call("spdk_get_version")
    finally:
        stale.close()


def test_retries_never_outlast_the_call_deadline(tmp_path):
    client = SpdkRpcClient(str(tmp_path / "missing.sock"), timeout=0.4, connect_retries=100)
    started = time.monotonic()
    with pytest.raises(SpdkConnectionError):
        client.call("spdk_get_version")
    assert time.monotonic() - started < 0.8


def test_tcp_transport(tcp_rpc_server):
    tcp_rpc_server.reply("spdk_get_version", result=VERSION, split=True)
    client = SpdkRpcClient(tcp_rpc_server.address, timeout=2.0)
    try:
        assert client.call("spdk_get_version") == VERSION
        assert client.call("spdk_get_version") == VERSION
        assert tcp_rpc_server.connections == 1
    finally:
        client.close()


@pytest.mark.parametrize("address, expected", [
    ("/var/tmp/spdk.sock", (socket.AF_UNIX, "/var/tmp/spdk.sock")),
    ("relative/spdk.sock", (socket.AF_UNIX, "relative/spdk.sock")),
    ("127.0.0.1:5260", (socket.AF_INET, ("127.0.0.1", 5260))),
    ("storage-1.example:5260", (socket.AF_INET, ("storage-1.example", 5260))),
    ("[::1]:5260", (socket.AF_INET6, ("::1", 5260))),
    ("[fe80::1%eth0]:5260", (socket.AF_INET6, ("fe80::1%eth0", 5260))),
])
def test_address_forms(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:0", "[::1]:70000"])
def test_a_port_outside_1_to_65535_is_refused_as_unreachable_before_any_connect(address):
    with pytest.raises(SpdkRpcError) as caught:
        SpdkRpcClient(address, timeout=1.0).call("spdk_get_version")
    assert "is not a TCP port (1-65535)" in str(caught.value)


@pytest.mark.parametrize("method, answer", [
    ("bdev_get_bdevs", "oops"),
    ("bdev_get_bdevs", [1, 2]),
    ("spdk_get_version", "v26.05"),
    ("rpc_get_methods", [{"name": "x"}]),
    ("bdev_lvol_create", True),
])
def test_an_answer_of_the_wrong_type_is_a_protocol_error_naming_the_method(rpc_server, client, method, answer):
    rpc_server.reply(method, result=answer)
    with pytest.raises(SpdkProtocolError) as caught:
        client.call(method, mutating=False)
    assert caught.value.method == method and "%s answered" % method in str(caught.value)


def test_answers_of_the_expected_type_pass_untouched(rpc_server, client):
    rpc_server.reply("bdev_get_bdevs", result=[{"name": "a"}])
    rpc_server.reply("bdev_lvol_create", result="7f2c1a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")
    assert client.call("bdev_get_bdevs") == [{"name": "a"}]
    assert client.call("bdev_lvol_create", {"lvol_name": "x"}) == "7f2c1a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


# -- error objects ----------------------------------------------------------------------

def test_error_object_from_a_real_target_becomes_spdk_rpc_error(rpc_server, client):
    rpc_server.reply("bdev_lvol_create", error=real_error("lvol_exists"))
    params = REAL["lvol_exists"]["request"]["params"]
    with pytest.raises(SpdkRpcError) as info:
        client.call("bdev_lvol_create", params)
    err = info.value
    assert (err.method, err.code, err.message) == ("bdev_lvol_create", -17, "File exists")
    assert str(err) == "bdev_lvol_create failed: SPDK error -17 (File exists)"
    assert err.is_exists() and not err.is_no_device()
    assert err.params == params


@pytest.mark.parametrize("case, exists, no_device", [
    ("lvol_exists", True, False),
    ("snapshot_name_exists", True, False),     # -32602 with "File exists": the text decides
    ("lvol_on_missing_lvstore", False, True),
    ("unknown_method", False, False),
    ("attach_closed_port", False, False),
])
def test_error_helpers_on_real_answers(case, exists, no_device):
    code, message = real_error(case)
    err = SpdkRpcError(REAL[case]["request"]["method"], code, message)
    assert (err.is_exists(), err.is_no_device()) == (exists, no_device)


def test_no_device_by_code_even_with_a_specific_message():
    assert SpdkRpcError("bdev_raid_delete", -19, "raid bdev nope not found").is_no_device()


# -- batch ----------------------------------------------------------------------------------

def test_batch_keeps_call_order_and_raises_the_first_error_after_reading_all(rpc_server, client):
    rpc_server.reply("spdk_get_version", result=VERSION)
    rpc_server.reply("bdev_get_bdevs", error=real_error("lvol_on_missing_lvstore"))
    with pytest.raises(SpdkRpcError, match="bdev_get_bdevs failed: SPDK error -19"):
        client.batch([("spdk_get_version",), ("bdev_get_bdevs", {"name": "nope"}), ("spdk_get_version",)])
    # every answer was consumed: the connection is still in step
    assert client.call("spdk_get_version") == VERSION
    assert rpc_server.connections == 1


def test_batch_can_return_errors_in_place(rpc_server, client):
    rpc_server.reply("spdk_get_version", result=VERSION)
    rpc_server.reply("bdev_get_bdevs", error=real_error("lvol_on_missing_lvstore"))
    version, missing = client.batch([("spdk_get_version", None), ("bdev_get_bdevs", {"name": "x"})],
                                    return_errors=True)
    assert version == VERSION
    assert isinstance(missing, SpdkRpcError) and missing.is_no_device()


# -- check mode --------------------------------------------------------------------------------

def test_check_mode_sends_reads_and_skips_mutating_calls(rpc_server):
    rpc_server.reply("bdev_lvol_get_lvstores", result=LVSTORES)
    client = SpdkRpcClient(rpc_server.address, timeout=2.0, check_mode=True)

    assert client.call("bdev_lvol_get_lvstores") == LVSTORES
    assert client.call("bdev_lvol_create", {"lvol_name": "r1", "size_in_mib": 64, "lvs_name": "lvs0"}) is None
    assert client.batch([("bdev_lvol_get_lvstores", None), ("bdev_lvol_delete", {"name": "lvs0/r1"})]) == [
        LVSTORES, None]

    assert rpc_server.methods_called() == ["bdev_lvol_get_lvstores", "bdev_lvol_get_lvstores"]
    assert [c.method for c in client.skipped_calls] == ["bdev_lvol_create", "bdev_lvol_delete"]
    assert [(c.method, c.mutating) for c in client.sent_calls] == [
        ("bdev_lvol_get_lvstores", False), ("bdev_lvol_get_lvstores", False)]


def test_mutating_can_be_forced_either_way(rpc_server):
    rpc_server.reply("bdev_lvol_get_xattr", result="v")
    client = SpdkRpcClient(rpc_server.address, timeout=2.0, check_mode=True)
    assert client.call("bdev_lvol_get_xattr", {"name": "x"}) is None            # unknown: mutating
    assert client.call("bdev_lvol_get_xattr", {"name": "x"}, mutating=False) == "v"
    assert client.call("bdev_get_bdevs", mutating=True) is None
    assert rpc_server.methods_called() == ["bdev_lvol_get_xattr"]


def test_outside_check_mode_mutating_calls_are_sent(rpc_server, client):
    rpc_server.reply("bdev_lvol_create", result="150459e7-0164-46de-bb05-2b1ddb3a8ffa")
    assert client.call("bdev_lvol_create", {"lvol_name": "r1", "size_in_mib": 64, "lvs_name": "lvs0"})
    assert client.sent_calls[0].mutating is True
    assert client.skipped_calls == []


def test_read_only_methods_are_real_read_methods_of_spdk_v26_05():
    offered = set(METHODS)
    assert READ_ONLY_METHODS <= offered
    assert {m for m in offered if "_get_" in m} <= READ_ONLY_METHODS
    for method in ("bdev_lvol_check_shallow_copy", "bdev_wait_for_examine", "framework_wait_init",
                   "rpc_get_methods", "spdk_get_version", "accel_crypto_keys_get"):
        assert method in READ_ONLY_METHODS
    for method in ("bdev_lvol_create", "bdev_lvol_start_shallow_copy", "bdev_examine", "bdev_nvme_send_cmd",
                   "bdev_lvol_set_parent", "nvmf_subsystem_set_ns_ana_group", "spdk_kill_instance"):
        assert method not in READ_ONLY_METHODS


# -- secrets --------------------------------------------------------------------------------

def test_secret_params_never_appear_in_errors_or_call_logs(rpc_server):
    secret = "DHHC-1:01:c2VjcmV0LWtleS1ub3QtZm9yLWxvZ3M=:"
    params = {"nqn": "nqn.2026-01.io.spdk-storage:vol1", "host": "nqn.2026-01.io.spdk-storage:h1",
              "dhchap_key": secret, "nested": [{"psk": secret}]}
    rpc_server.reply("nvmf_subsystem_add_host", error=(-32602, "Invalid key %s" % secret))
    client = SpdkRpcClient(rpc_server.address, timeout=2.0)
    with pytest.raises(SpdkRpcError) as info:
        client.call("nvmf_subsystem_add_host", params)
    assert rpc_server.requests[0]["params"]["dhchap_key"] == secret       # the target gets it
    logged = repr(client.sent_calls) + str(info.value) + repr(info.value.params) + repr(info.value.args)
    assert secret not in logged
    assert client.sent_calls[0].params["dhchap_key"] == REDACTED
    assert client.sent_calls[0].params["nested"] == [{"psk": REDACTED}]

    checking = SpdkRpcClient(rpc_server.address, check_mode=True)
    checking.call("nvmf_subsystem_add_host", params)
    assert secret not in repr(checking.skipped_calls)


def test_extra_secret_params_can_be_named(rpc_server):
    rpc_server.reply("keyring_file_add_key", result=True)
    client = SpdkRpcClient(rpc_server.address, secret_params=("path",))
    client.call("keyring_file_add_key", {"name": "k1", "path": "/etc/spdk/k1"})
    assert client.sent_calls[0].params == {"name": "k1", "path": REDACTED}


# -- capabilities ------------------------------------------------------------------------------

def test_require_names_the_missing_rpc_the_purpose_and_the_version(rpc_server, client):
    rpc_server.reply("rpc_get_methods", result=METHODS)
    rpc_server.reply("spdk_get_version", result=VERSION)

    client.require("bdev_lvol_start_shallow_copy", "rebuilding a replica")
    assert client.supports("bdev_raid_add_base_bdev")
    with pytest.raises(SpdkCapabilityError) as info:
        client.require("bdev_lvol_shallow_copy", "a Longhorn-style fast rebuild")
    assert info.value.message == (
        "this target (SPDK v26.05) has no RPC bdev_lvol_shallow_copy, needed for a Longhorn-style fast rebuild")
    assert client.version_tuple() == (26, 5, 0)
    assert rpc_server.methods_called() == ["rpc_get_methods", "spdk_get_version"]   # both cached


# -- the patch point -----------------------------------------------------------------------------

def test_send_is_the_only_wire_point(monkeypatch):
    seen = []

    def fake_send(self, requests):
        seen.extend(requests)
        return [{"jsonrpc": "2.0", "id": r["id"], "result": r["method"]} for r in requests]

    monkeypatch.setattr(SpdkRpcClient, "_send", fake_send)
    client = SpdkRpcClient("/nonexistent/never-opened.sock")
    assert client.call("bdev_get_iostat") == "bdev_get_iostat"
    assert client.batch([("nvmf_get_stats",), ("iobuf_get_stats",)]) == [
        "nvmf_get_stats", "iobuf_get_stats"]
    assert [(r["method"], r["id"]) for r in seen] == [
        ("bdev_get_iostat", 1), ("nvmf_get_stats", 2), ("iobuf_get_stats", 3)]
    assert client._transport is None


def test_a_scripted_answer_with_the_wrong_id_is_caught(monkeypatch):
    monkeypatch.setattr(SpdkRpcClient, "_send", lambda self, reqs: [{"id": 99, "result": True}])
    with pytest.raises(SpdkProtocolError, match="answer id 99 does not match request id 1"):
        SpdkRpcClient().call("bdev_get_bdevs")

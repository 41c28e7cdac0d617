"""The JSON-RPC server answers framing and malformed input exactly as SPDK v26.05 did (step6.jsonl)."""
import json
import socket

import pytest

from tests.emulator.spdk_emu.server import split_values, MalformedInput, is_tcp_address

VERSION = {"version": "SPDK v26.05 git sha1 d519b163cb",
           "fields": {"major": 26, "minor": 5, "patch": 0, "suffix": "", "commit": "d519b163cb"}}


def raw_exchange(path, text, timeout=0.5):
    """Send raw bytes on a fresh connection; return the decoded answer or None if nothing came."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    conn.connect(path)
    conn.sendall(text.encode())
    data = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            try:
                return json.loads(data)
            except ValueError:
                continue
    except socket.timeout:
        pass
    finally:
        conn.close()
    return json.loads(data) if data.strip() else None


def test_split_values_keeps_an_incomplete_tail_and_rejects_garbage():
    values, rest = split_values('{"a":1} [2]{"b":"unterminated')
    assert values == [{"a": 1}, [2]]
    assert rest == '{"b":"unterminated'
    with pytest.raises(MalformedInput):
        split_values('{"jsonrpc":"2.0","method":}')


def test_tcp_and_unix_addresses_are_told_apart():
    assert is_tcp_address("127.0.0.1:5260")
    assert not is_tcp_address("/var/tmp/spdk.sock")
    assert not is_tcp_address("spdk.sock")


@pytest.mark.parametrize("text, expected", [
    ('{"jsonrpc":"2.0","id":5}',
     {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid request"}}),
    ('{"jsonrpc":"2.0","method":"spdk_get_version","params":5,"id":6}',
     {"jsonrpc": "2.0", "id": 6, "error": {"code": -32600, "message": "Invalid request"}}),
    ('{"jsonrpc":"1.0","method":"spdk_get_version","id":7}',
     {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid request"}}),
    ('[{"jsonrpc":"2.0","method":"spdk_get_version","id":8}]',
     [{"jsonrpc": "2.0", "id": 8, "result": VERSION}]),
    ('{"jsonrpc":"2.0","method":"spdk_get_version","id":"str-id"}',
     {"jsonrpc": "2.0", "id": "str-id", "result": VERSION}),
    ('{"jsonrpc":"2.0","method":"no_such_method","id":11,"params":{}}',
     {"jsonrpc": "2.0", "id": 11, "error": {"code": -32601, "message": "Method not found"}}),
    # a notification is run but never answered; truncated JSON waits; invalid JSON closes silently
    ('{"jsonrpc":"2.0","method":"spdk_get_version"}', None),
    ('{"jsonrpc":"2.0","method":"spdk_get_version","id":99', None),
    ('{"jsonrpc":"2.0","method":}', None),
])
def test_malformed_and_special_requests_get_spdks_answers(emulator_node, text, expected):
    node = emulator_node()
    assert raw_exchange(node.sock, text) == expected


def test_requests_split_across_writes_and_concatenated_are_all_answered_in_order(emulator_node):
    node = emulator_node()
    conn = node.conn
    conn.send_raw('{"jsonrpc":"2.0","method":"spdk_get_version","id":1}{"jsonrpc":"2.0",')
    conn.send_raw('"method":"bdev_get_bdevs","id":2}')
    assert conn.receive()["id"] == 1
    assert conn.receive() == {"jsonrpc": "2.0", "id": 2, "result": []}


def test_invalid_params_fail_decoding_like_spdk(emulator_node):
    node = emulator_node()
    assert node.response("bdev_get_bdevs", ["x"])["error"] == {
        "code": -32603, "message": "spdk_json_decode_object failed"}
    assert node.error("bdev_get_bdevs", bogus=1)["code"] == -32603


def test_every_call_is_written_to_the_rpc_log(emulator_node):
    node = emulator_node()
    node.call("bdev_get_bdevs")
    node.error("bdev_aio_delete", name="nope")
    entries = node.rpc_log()[-2:]
    assert [(e["method"], e["mutating"]) for e in entries] == [("bdev_get_bdevs", False), ("bdev_aio_delete", True)]
    assert entries[0]["result"] == []
    assert entries[1]["error"] == {"code": -19, "message": "No such device"}
    assert entries[1]["params"] == {"name": "nope"}

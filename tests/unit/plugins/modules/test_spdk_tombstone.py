"""spdk_tombstone: a volume's deletion marked in the node record, read back, taken away; check mode and diff."""
import json

import pytest

from tests.unit.module_runs import run_main

from ansible_collections.spdk.storage.plugins.modules import spdk_tombstone


def run(args, check_mode=False, diff=False):
    """The module's result dict (``failed`` set when it failed)."""
    return run_main(spdk_tombstone.main, args, check_mode, diff)


@pytest.fixture
def node(tmp_path):
    """The options naming node1's record in a fresh record_dir; ``node.record()`` reads the file."""
    options = {"node_name": "node1", "record_dir": str(tmp_path)}

    class Node(dict):
        def record(self):
            path = tmp_path / "node1.json"
            return json.loads(path.read_text()) if path.exists() else None
    return Node(options)


def test_a_tombstone_is_written_to_the_node_record_and_a_second_run_changes_nothing(node):
    first = run(dict(node, volume="vol1"))
    assert first["changed"] is True and list(first["tombstones"]) == ["vol1"] and first["warnings"] == []
    assert node.record()["tombstones"] == first["tombstones"]
    second = run(dict(node, volume="vol1"))
    assert second["changed"] is False and second["tombstones"] == first["tombstones"]


def test_without_a_volume_the_module_only_reads_the_tombstones_and_names_the_run_that_finishes_each(node):
    assert run(dict(node)) == {"changed": False, "tombstones": {}, "warnings": []}
    assert node.record() is None
    run(dict(node, volume="vol1"))
    listed = run(dict(node, state="absent"))
    assert listed["changed"] is False and list(listed["tombstones"]) == ["vol1"]
    assert len(listed["warnings"]) == 1
    assert "deletion of volume vol1 began" in listed["warnings"][0]
    assert "delete_volume.yml -e volume=vol1 finishes it" in listed["warnings"][0]


def test_taking_a_tombstone_away_keeps_the_rest_of_the_record(node, tmp_path):
    (tmp_path / "node1.json").write_text(json.dumps({
        "format": "spdk.storage/node-record", "version": 1, "node": "node1",
        "engines": {"vol2": {"replicas": [], "size": 1}}, "tombstones": {"vol1": {"since": "2026-12-06T17:00:00Z"}}}))
    result = run(dict(node, volume="vol1", state="absent"))
    assert result["changed"] is True and result["tombstones"] == {}
    assert node.record()["engines"] == {"vol2": {"replicas": [], "size": 1}}
    assert run(dict(node, volume="vol1", state="absent"))["changed"] is False


def test_check_mode_reports_the_change_and_writes_nothing(node):
    result = run(dict(node, volume="vol1"), check_mode=True, diff=True)
    assert result["changed"] is True and list(result["tombstones"]) == ["vol1"]
    assert result["diff"]["before"] == {} and list(result["diff"]["after"]) == ["vol1"]
    assert node.record() is None


@pytest.mark.parametrize("args, message", [
    ({"volume": "a/b"}, "may only contain"),
    ({"volume": "vol1", "record_dir": ""}, "record_dir must name a directory"),
    ({"volume": "vol1", "node_name": "../x"}, "cannot name a record file"),
])
def test_bad_input_is_refused_before_the_record_is_touched(node, args, message):
    result = run(dict(node, **args))
    assert result.get("failed") and message in result["msg"]
    assert node.record() is None


def test_a_record_of_a_newer_collection_is_refused_and_left_as_it_is(node, tmp_path):
    newer = {"format": "spdk.storage/node-record", "version": 99, "node": "node1"}
    (tmp_path / "node1.json").write_text(json.dumps(newer))
    result = run(dict(node, volume="vol1"))
    assert result.get("failed") and "newer spdk.storage" in result["msg"]
    assert node.record() == newer

# -*- coding: utf-8 -*-
"""The node record: versioned format, atomic replacement, locked read-modify-write, refusals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec

ENGINE = {"replicas": [{"name": "vol1-r1", "disk": "disk1"}, {"name": "vol1-r2", "address": "192.0.2.12:4421"}],
          "frontend": "nvmf", "frontend_port": 4420}


def read(path):
    with open(path) as handle:
        return json.load(handle)


def test_a_missing_record_reads_as_empty(tmp_path):
    record = rec.load(str(tmp_path / "node1.json"), "node1")
    assert (record.node, record.engines, record.exposures, record.snapshots) == ("node1", {}, {}, {})


def test_path_is_record_dir_plus_node_name_and_refuses_path_tricks(tmp_path):
    assert rec.record_path("/var/lib/spdk-storage", "node1") == "/var/lib/spdk-storage/node1.json"
    for bad in ("../etc/passwd", "", ".hidden", "a/b"):
        with pytest.raises(rec.RecordError):
            rec.record_path(str(tmp_path), bad)


def test_saved_record_is_versioned_and_reads_back(tmp_path):
    path = str(tmp_path / "node1.json")
    record = rec.NodeRecord("node1")
    record.set_engine("vol1", ENGINE)
    rec.save(path, record)
    data = read(path)
    assert data["format"] == "spdk.storage/node-record" and data["version"] == 1
    assert data["node"] == "node1" and data["updated"].endswith("Z")
    assert rec.load(path, "node1").engine("vol1") == ENGINE
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_save_leaves_no_temporary_file_and_replaces_atomically(tmp_path, monkeypatch):
    path = str(tmp_path / "node1.json")
    first = rec.NodeRecord("node1")
    first.set_engine("vol1", ENGINE)
    rec.save(path, first)
    # A crash while writing the new version (here: the rename fails) keeps the old file intact.
    second = rec.NodeRecord("node1")
    second.set_engine("vol2", ENGINE)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rec.os, "replace", broken_replace)
    with pytest.raises(rec.RecordError, match="No space left"):
        rec.save(path, second)
    assert sorted(os.listdir(str(tmp_path))) == ["node1.json"]
    assert list(read(path)["engines"]) == ["vol1"]


def test_update_writes_only_when_content_changes(tmp_path):
    path = str(tmp_path / "node1.json")
    _record, written = rec.update(path, "node1", lambda r: r.set_engine("vol1", ENGINE))
    assert written is True
    stamp = os.stat(path).st_mtime_ns
    _record, written = rec.update(path, "node1", lambda r: r.set_engine("vol1", dict(ENGINE)))
    assert written is False and os.stat(path).st_mtime_ns == stamp
    record, written = rec.update(path, "node1", lambda r: r.remove_engine("vol1"))
    assert written is True and record.engines == {}


def test_update_keeps_what_another_writer_saved_meanwhile(tmp_path):
    path = str(tmp_path / "node1.json")
    rec.update(path, "node1", lambda r: r.set_engine("vol1", ENGINE))
    rec.update(path, "node1", lambda r: r.set_exposure("nqn.2026-01.io.spdk-storage:vol1-r9",
                                                       {"bdev": "disk1/vol1-r9", "port": 4421}))
    record = rec.load(path, "node1")
    assert set(record.engines) == {"vol1"}
    assert record.exposure("nqn.2026-01.io.spdk-storage:vol1-r9") == {"bdev": "disk1/vol1-r9", "port": 4421}


def test_a_newer_format_is_refused_and_left_untouched(tmp_path):
    path = str(tmp_path / "node1.json")
    newer = {"format": rec.RECORD_FORMAT, "version": 2, "engines": {"x": {}}}
    with open(path, "w") as handle:
        json.dump(newer, handle)
    with pytest.raises(rec.RecordError, match="newer spdk.storage"):
        rec.update(path, "node1", lambda r: r.remove_engine("x"))
    assert read(path) == newer


@pytest.mark.parametrize("text, why", [
    ("{not json", "not valid JSON"),
    ('{"version": 1}', "not an spdk.storage node record"),
    ('{"format": "spdk.storage/node-record", "version": "1"}', "invalid format version"),
    ('{"format": "spdk.storage/node-record", "version": 1, "engines": []}', "'engines' must be an object"),
])
def test_unreadable_records_are_reported_with_the_file_name(tmp_path, text, why):
    path = str(tmp_path / "node1.json")
    with open(path, "w") as handle:
        handle.write(text)
    with pytest.raises(rec.RecordError) as caught:
        rec.load(path, "node1")
    assert why in str(caught.value) and path in str(caught.value)


def test_snapshot_metadata_keeps_its_creation_time(tmp_path):
    record = rec.NodeRecord("node1")
    assert record.add_snapshot("vol1", "daily-1", created="2026-11-25T02:00:00Z") is True
    assert record.add_snapshot("vol1", "daily-1", created="2026-11-26T02:00:00Z") is False
    assert record.add_snapshot("vol1", "rebuild-1", kind="system") is True
    assert record.snapshots_of("vol1")["daily-1"] == {"kind": "user", "created": "2026-11-25T02:00:00Z"}
    assert record.snapshots_of("vol1")["rebuild-1"]["kind"] == "system"
    with pytest.raises(rec.RecordError):
        record.add_snapshot("vol1", "x", kind="weekly")
    assert record.remove_snapshot("vol1", "daily-1") and record.remove_snapshot("vol1", "rebuild-1")
    assert record.snapshots == {} and record.remove_snapshot("vol1", "daily-1") is False


def test_returned_entries_are_copies(tmp_path):
    record = rec.NodeRecord("node1")
    record.set_engine("vol1", ENGINE)
    record.engine("vol1")["replicas"].append({"name": "intruder"})
    assert len(record.engine("vol1")["replicas"]) == 2


def test_a_frontend_forgets_finished_reverts_but_never_an_unfinished_one():
    record = rec.NodeRecord("node1", snapshots={"vol1": {
        "s1": {"kind": "user", "created": "t", "revert": {"state": "done", "heads": {}}},
        "s2": {"kind": "user", "created": "t", "revert": {"state": "running", "heads": {}}},
        "s3": {"kind": "user", "created": "t"}}})
    assert record.forget_finished_reverts("vol1") is True
    assert "revert" not in record.snapshots["vol1"]["s1"]
    assert record.snapshots["vol1"]["s2"]["revert"]["state"] == "running"
    assert record.forget_finished_reverts("vol1") is False and record.forget_finished_reverts("other") is False


def test_a_tombstone_keeps_its_time_and_reads_back_until_taken_away(tmp_path):
    path = str(tmp_path / "node1.json")
    record = rec.NodeRecord("node1")
    assert record.add_tombstone("vol1", since="2026-12-06T17:00:00Z") is True
    assert record.add_tombstone("vol1", since="2026-12-06T18:00:00Z") is False
    rec.save(path, record)
    assert rec.load(path, "node1").tombstones == {"vol1": {"since": "2026-12-06T17:00:00Z"}}
    assert record.remove_tombstone("vol1") is True and record.remove_tombstone("vol1") is False


def test_a_record_written_before_tombstones_existed_reads_with_none():
    old = {"format": rec.RECORD_FORMAT, "version": 1, "node": "node1", "engines": {"vol1": ENGINE}}
    assert rec.NodeRecord.from_dict(old).tombstones == {}

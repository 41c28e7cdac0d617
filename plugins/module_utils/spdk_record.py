# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The durable per-node record: what SPDK cannot keep, kept next to the target.

Path: ``<record_dir>/<node>.json``, ``record_dir`` defaulting to ``/var/lib/spdk-storage``
(docs/ENGINE.md "The node record"). One JSON object, format version 1::

    {
      "format": "spdk.storage/node-record",
      "version": 1,
      "node": "node1",
      "updated": "2026-11-25T02:11:48Z",
      "engines":   {"<engine>": {"replicas": [{"name": ..., "disk": ...} or
                                              {"name": ..., "address": ..., "nqn": ..., "rpc_socket": ...}, ...],
                                 "frontend": "nvmf"|"none"|"blockdev", "nqn": ..., "size": 67108864,
                                 "host_nqn": ..., "controller_timeouts": {...}, "frontend_port": 4420}},
      "exposures": {"<nqn>": {"kind": "engine", "bdev": ..., "listen_address": ..., "port": 4420}},
      "snapshots": {"<engine>": {"<snapshot>": {"kind": "user"|"system", "created": "2026-11-25T02:11:48Z",
                                                "replicas": {"<replica>": "<snapshot lvol uuid>"},
                                                "revert": {"state": "running"|..., "heads": {...}}}}},
      "rebuilds":  {"<engine>": {"source": ..., "destination": ..., "replace": ... or null,
                                 "state": "running"|"done"|"applied", "started": ..., "finished": ... or null}},
      "tombstones": {"<volume>": {"since": "2026-11-25T02:11:48Z"}}
    }

Who writes what: spdk_engine the ``engines`` entry and the frontend's ``exposures`` entry;
spdk_snapshot with ``engine`` the ``snapshots`` entries with the replicas' snapshot UUIDs and,
during a revert, its ``revert`` marker; spdk_replica_rebuild the ``system`` snapshots and its
``rebuilds`` entry, the journal that spdk_engine checks and removes (spdk_rebuild_journal.py);
spdk_tombstone the ``tombstones``: a volume whose deletion began (delete_volume.yml writes one on every
storage node before it deletes anything and removes them once nothing of the volume is left), so that a
run cut off half-way is finished by deleting again, never repaired or re-created (spdk_tombstone.py).

It is a cache of intent: which replicas an engine should have, which port its frontend was
given, which snapshots were taken and when. It is never the authority on which replica holds
current data - the superblocks SPDK writes on a RAID's members are: after a restart SPDK
assembles the RAID from them by itself (tests/emulator/fixtures/d2_raid_sb_restart_*.session.jsonl)
- so a lost record loses no data, and modules re-create it from their options.

Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the
directory) and serialised by an flock on ``<path>.lock``, so a crash leaves either the old
or the new record and two modules on one node never lose each other's update.
A record written by a newer collection (higher version) is refused, never overwritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import copy
import datetime
import errno
import json
import os
import re
import tempfile

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system
    fcntl = None

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError

RECORD_FORMAT = "spdk.storage/node-record"
RECORD_VERSION = 1
DEFAULT_RECORD_DIR = "/var/lib/spdk-storage"
SNAPSHOT_KINDS = ("user", "system")
SECTIONS = ("engines", "exposures", "snapshots", "rebuilds", "tombstones")

_NODE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")


class RecordError(SpdkError):
    """The record cannot be read or written; the message says which file and why."""


def utc_now():
    """Seconds-precision UTC timestamp, the form every record time uses."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_path(record_dir, node):
    """``<record_dir>/<node>.json``; the node name must be a plain file name."""
    if not isinstance(node, str) or not _NODE_RE.match(node):
        raise RecordError("node name %r cannot name a record file: use letters, digits, '_', '.' and '-' "
                          "(not starting with '.' or '-')" % (node,))
    return os.path.join(record_dir, node + ".json")


class NodeRecord:
    """The record's content with small, explicit mutators (each returns True when it changed)."""

    def __init__(self, node, engines=None, exposures=None, snapshots=None, updated=None, rebuilds=None,
                 tombstones=None):
        self.node = node
        self.engines = dict(engines or {})
        self.exposures = dict(exposures or {})
        self.snapshots = dict(snapshots or {})
        self.rebuilds = dict(rebuilds or {})
        self.tombstones = dict(tombstones or {})
        self.updated = updated

    # --- serialisation -------------------------------------------------------
    @classmethod
    def from_dict(cls, data, where="record"):
        data = _upgrade(data, where)
        for section in SECTIONS:
            if not isinstance(data.get(section, {}), dict):
                raise RecordError("%s: '%s' must be an object" % (where, section))
        return cls(data.get("node"), data.get("engines"), data.get("exposures"), data.get("snapshots"),
                   data.get("updated"), data.get("rebuilds"), data.get("tombstones"))

    def content(self):
        """Everything but the timestamp: what decides whether a write is needed."""
        return copy.deepcopy({"engines": self.engines, "exposures": self.exposures, "snapshots": self.snapshots,
                              "rebuilds": self.rebuilds, "tombstones": self.tombstones})

    def to_dict(self):
        data = {"format": RECORD_FORMAT, "version": RECORD_VERSION, "node": self.node, "updated": self.updated}
        data.update(self.content())
        return data

    # --- engines ---------------------------------------------------------------
    def engine(self, name):
        return copy.deepcopy(self.engines.get(name))

    def set_engine(self, name, intent):
        return _put(self.engines, name, intent)

    def remove_engine(self, name):
        return self.engines.pop(name, None) is not None

    # --- exposures -------------------------------------------------------------
    def exposure(self, nqn):
        return copy.deepcopy(self.exposures.get(nqn))

    def set_exposure(self, nqn, entry):
        return _put(self.exposures, nqn, entry)

    def remove_exposure(self, nqn):
        return self.exposures.pop(nqn, None) is not None

    # --- snapshots -------------------------------------------------------------
    def snapshots_of(self, owner):
        return copy.deepcopy(self.snapshots.get(owner, {}))

    def add_snapshot(self, owner, name, kind="user", created=None):
        """Record a snapshot; an existing entry keeps its creation time."""
        if kind not in SNAPSHOT_KINDS:
            raise RecordError("snapshot kind must be one of %s, got %r" % (", ".join(SNAPSHOT_KINDS), kind))
        known = self.snapshots.setdefault(owner, {})
        if name in known and known[name].get("kind") == kind:
            return False
        created = known.get(name, {}).get("created") or created or utc_now()
        known[name] = {"kind": kind, "created": created}
        return True

    def forget_snapshots(self, owner):
        """Drop every snapshot entry of ``owner`` (a volume deleted with its replicas); whether there were any."""
        return self.snapshots.pop(owner, None) is not None

    def forget_finished_reverts(self, owner):
        """Drop the ``done`` revert markers of ``owner``'s snapshots (a frontend came back, so hosts may have
        written since: a new revert must run again); whether any was dropped."""
        dropped = False
        for entry in self.snapshots.get(owner, {}).values():
            if isinstance(entry, dict) and (entry.get("revert") or {}).get("state") == "done":
                del entry["revert"]
                dropped = True
        return dropped

    def remove_snapshot(self, owner, name):
        known = self.snapshots.get(owner)
        if not known or name not in known:
            return False
        del known[name]
        if not known:
            del self.snapshots[owner]
        return True

    # --- rebuilds (the journal of spdk_rebuild_journal) -----------------------------
    def rebuild(self, engine):
        return copy.deepcopy(self.rebuilds.get(engine))

    def set_rebuild(self, engine, entry):
        return _put(self.rebuilds, engine, entry)

    def remove_rebuild(self, engine):
        return self.rebuilds.pop(engine, None) is not None

    # --- tombstones (volumes whose deletion began; spdk_tombstone) ---------------------
    def add_tombstone(self, volume, since=None):
        """Mark ``volume`` as being deleted; an existing tombstone keeps its time."""
        if volume in self.tombstones:
            return False
        self.tombstones[volume] = {"since": since or utc_now()}
        return True

    def remove_tombstone(self, volume):
        return self.tombstones.pop(volume, None) is not None


def _put(section, key, value):
    value = copy.deepcopy(value)
    if section.get(key) == value:
        return False
    section[key] = value
    return True


def _upgrade(data, where):
    """Check format and version; the place where older formats would be converted."""
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise RecordError("%s is not an spdk.storage node record (no \"format\": %r)" % (where, RECORD_FORMAT))
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise RecordError("%s has an invalid format version %r" % (where, version))
    if version > RECORD_VERSION:
        raise RecordError("%s was written by a newer spdk.storage (record format %d; this one reads up to %d): "
                          "upgrade the collection on the controller; the record is left untouched"
                          % (where, version, RECORD_VERSION))
    return data


# ---------------------------------------------------------------- file access


def load(path, node):
    """The record at ``path``, or an empty one for ``node`` when there is none yet."""
    try:
        with open(path) as handle:
            text = handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return NodeRecord(node)
        raise RecordError("cannot read node record %s: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError("node record %s is not valid JSON (%s); it is a cache of intent only: move it aside "
                          "and run again to write a fresh one" % (path, exc))
    record = NodeRecord.from_dict(data, where="node record %s" % path)
    if record.node is None:
        record.node = node
    return record


def save(path, record):
    """Write ``record`` atomically: temp file + fsync + rename + fsync of the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    record.updated = utc_now()
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise RecordError("cannot write node record %s: %s" % (path, exc.strerror or exc))
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record.to_dict(), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise RecordError("cannot write node record %s: %s" % (path, exc.strerror or exc))
    _fsync_directory(directory)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory):
    """Make the rename itself durable (a crash right after must not bring the old file back)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive flock on ``<path>.lock`` (serialises read-modify-write on one node)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        handle = open(path + ".lock", "a")
    except (IOError, OSError) as exc:
        raise RecordError("cannot lock node record %s: %s" % (path, exc.strerror or exc))
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


def update(path, node, change):
    """Apply ``change(record)`` under the lock; write only when the content changed.

    Returns ``(record, written)``.
    """
    with locked(path):
        record = load(path, node)
        before = record.content()
        change(record)
        if record.content() == before:
            return record, False
        save(path, record)
        return record, True

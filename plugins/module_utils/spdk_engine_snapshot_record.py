# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An engine snapshot's entry in the node record (spdk_record), written atomically."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import unfinished_revert
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_journal import RebuildEntry


class SnapshotRecord:
    """Engine snapshot ``name`` of ``engine`` in the node record at ``path``.

    The entry is the record's ``snapshots[<engine>][<name>]`` (``kind``, ``created``) plus:
    ``replicas`` {replica: snapshot lvol UUID}, to tell a set taken together from a copy re-made on
    one replica later, and ``revert`` {state running|done, heads {replica: head UUID}, allocated
    {replica: clusters}}: the progress of a revert, so a re-run resumes it and a finished one is a no-op.
    """

    def __init__(self, path, node, engine, name):
        self.path = path
        self.node = node
        self.engine = engine
        self.name = name
        self.written = False
        self._entry = None
        self.loaded = False

    def load(self):
        self._entry = rec.load(self.path, self.node).snapshots_of(self.engine).get(self.name)
        self.loaded = True
        return self._entry

    def entry(self):
        return self._entry if self.loaded else self.load()

    def engine_entry(self):
        return rec.load(self.path, self.node).engine(self.engine)

    def rebuild_entry(self):
        """The engine's rebuild journal entry (spdk_rebuild_journal.RebuildEntry) or None."""
        return RebuildEntry.of(self.engine, rec.load(self.path, self.node).rebuild(self.engine))

    def unfinished_revert(self):
        """The engine snapshot whose revert a run began and did not finish, or None."""
        return unfinished_revert(rec.load(self.path, self.node).snapshots_of(self.engine))

    def revert_marker(self):
        return (self.entry() or {}).get("revert")

    def _update(self, change):
        def apply(record):
            change(record)
            self._entry = record.snapshots_of(self.engine).get(self.name)
        written = rec.update(self.path, self.node, apply)[1]
        self.written = self.written or written

    def save_snapshot(self, uuids):
        def change(record):
            record.add_snapshot(self.engine, self.name, "user")
            record.snapshots[self.engine][self.name]["replicas"] = dict(uuids)
        self._update(change)

    def save_revert(self, marker):
        def change(record):
            record.add_snapshot(self.engine, self.name, "user")
            record.snapshots[self.engine][self.name]["revert"] = dict(marker)
        self._update(change)

    def remove_snapshot(self):
        self._update(lambda record: record.remove_snapshot(self.engine, self.name))

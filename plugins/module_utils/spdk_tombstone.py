# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tombstones: the volumes whose deletion began, kept in the node record (spdk_tombstone).

A volume is deleted in steps on several nodes (delete_volume.yml: its engine, then its replicas with their
snapshots and exports). A run cut off between them (a dead target, a killed controller) leaves the volume
half deleted: no engine, or replicas gone on some nodes. Repairing such a volume would re-create what the
operator asked to delete, so delete_volume.yml writes a tombstone on every storage node before it deletes
anything, and removes it once nothing of the volume is left. While one is there, create_volume.yml refuses the
volume and recover_node.yml leaves it out; both say to run delete_volume.yml again, which finishes the delete.

The record lives on the node's own filesystem, not in the target: a tombstone is written and read while the
node's spdk_tgt is down, and survives its restart.
"""

from __future__ import annotations

import copy

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import default_node_name
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError, validate_lvol_name

ARGUMENT_SPEC = dict(
    volume=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    node_name=dict(type="str"),
    record_dir=dict(type="path", default=rec.DEFAULT_RECORD_DIR),
)


class Tombstones:
    """The tombstones of one node's record: read them, or put or take away one volume's."""

    def __init__(self, record_dir, node_name=None, check_mode=False):
        if not record_dir:
            raise SpdkInputError("record_dir must name a directory: tombstones are kept in the node record")
        self.node = default_node_name(node_name)
        self.path = rec.record_path(record_dir, self.node)
        self.check_mode = check_mode

    def apply(self, volume, state):
        """Put (``present``) or take away (``absent``) ``volume``'s tombstone; without ``volume`` only read.
        Returns the module's result: changed, tombstones (after the run, or as planned in check mode), diff,
        warnings (a read names every delete that did not finish and the run that finishes it)."""
        record = rec.load(self.path, self.node)
        before = copy.deepcopy(record.tombstones)
        if volume is None:
            return dict(changed=False, tombstones=before, diff=dict(before=before, after=before),
                        warnings=[unfinished_delete(name, mark, self.node) for name, mark in sorted(before.items())])
        validate_lvol_name("engine", volume)
        changed = self._change(record, volume, state)        # the plan: the record as read, changed in memory
        if changed and not self.check_mode:
            record, _written = rec.update(self.path, self.node, lambda locked: self._change(locked, volume, state))
        return dict(changed=changed, tombstones=record.tombstones, diff=dict(before=before, after=record.tombstones),
                    warnings=[])

    @staticmethod
    def _change(record, volume, state):
        if state == "present":
            return record.add_tombstone(volume)
        return record.remove_tombstone(volume)


def refuse_if_deleting(record_dir, node_name, volume, operation):
    """Raise SpdkInputError when the node's record holds ``volume``'s tombstone: its deletion began, and nothing
    but delete_volume.yml acts on it until that run finishes it (``operation`` names what was asked). Without a
    record (no record_dir, none written yet, or unreadable: the run's own read of it warns) nothing is refused."""
    if not record_dir:
        return
    node = default_node_name(node_name)
    try:
        mark = rec.load(rec.record_path(record_dir, node), node).tombstones.get(volume)
    except rec.RecordError:
        return
    if mark is not None:
        raise SpdkInputError("%s refused: %s" % (operation, unfinished_delete(volume, mark, node)))


def unfinished_delete(volume, mark, node):
    """The warning for a tombstone found on ``node``."""
    return ("the deletion of volume %s began at %s and did not finish (its tombstone is in %s's record): it is "
            "neither repaired, changed nor created again until delete_volume.yml -e volume=%s finishes it"
            % (volume, mark.get("since", "an unknown time"), node, volume))

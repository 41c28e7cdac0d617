#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spdk_tombstone
short_description: Mark in a storage node's record that a volume's deletion began, or read the marks
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - A volume is deleted in steps on several nodes, its engine first, then its replicas with their snapshots
    and exports. A run cut off between them (a target that died, a controller killed) leaves the volume half
    deleted. Repairing or creating it then would bring back what was being deleted.
  - A tombstone in the node record C(<record_dir>/<node_name>.json) says that the deletion of O(volume) began.
    The playbook C(delete_volume.yml) writes one on every storage node before it deletes anything, and removes
    them once nothing of the volume is left. While one is there, C(create_volume.yml) refuses the volume and
    C(recover_node.yml) leaves it out; both say to run C(delete_volume.yml) again. The modules that would change
    the volume refuse it before any RPC when the engine node's record holds its tombstone
    (M(spdk.storage.spdk_engine) with O(spdk.storage.spdk_engine#module:state=present),
    M(spdk.storage.spdk_snapshot) on the engine, and M(spdk.storage.spdk_replica_rebuild)).
  - The record is a file on the node, so this module needs no C(spdk_tgt) and sends no RPC. A tombstone is read
    and written while the node's target is down, and a restart of the target keeps it.
  - Without O(volume) the module changes nothing and only returns the node's tombstones, with a warning for each
    one naming the run that finishes the delete.
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying anything.
    support: full
    details:
      - The record is read, not written; RV(tombstones) is what the run would leave.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: full
    details:
      - The node's tombstones before and after.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  volume:
    description:
      - The volume (its engine's name) whose tombstone to put or take away.
      - Omitted, nothing changes and the module only returns the node's tombstones.
    type: str
  state:
    description:
      - V(present) puts a tombstone for O(volume) (one already there keeps its time); V(absent) takes it away.
      - Ignored without O(volume).
    type: str
    choices: [present, absent]
    default: present
  node_name:
    description:
      - Name of this storage node, the node record's file name.
      - Defaults to this machine's short host name (as in M(spdk.storage.spdk_engine)).
    type: str
  record_dir:
    description:
      - Directory of the node record. Tombstones are kept nowhere else, so it cannot be empty.
    type: path
    default: /var/lib/spdk-storage
notes:
  - A record written by a newer collection, or one that is not valid JSON, fails the module and is left as it is.
  - Writes are atomic and serialised with every other module writing the same record.
seealso:
  - module: spdk.storage.spdk_engine
  - module: spdk.storage.spdk_replica
"""

EXAMPLES = r"""
- name: Say on this node that the deletion of vol1 began
  spdk.storage.spdk_tombstone:
    volume: vol1
    node_name: node1

- name: Read which volumes a delete did not finish
  spdk.storage.spdk_tombstone:
    node_name: node1
  register: marks

- name: Take vol1's tombstone away once nothing of it is left
  spdk.storage.spdk_tombstone:
    volume: vol1
    state: absent
    node_name: node1
"""

RETURN = r"""
tombstones:
  description:
    - The node's tombstones after the run (in check mode, as the run would leave them), by volume name, each with
      the time its deletion began (UTC).
  returned: always
  type: dict
  sample: {"vol1": {"since": "2026-12-06T17:40:02Z"}}
"""

from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_tombstone import ARGUMENT_SPEC, Tombstones


def run(module):
    params = module.params
    result = Tombstones(params["record_dir"], params["node_name"], check_mode=module.check_mode).apply(
        params["volume"], params["state"])
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    for warning in result.pop("warnings"):
        module.warn(warning)
    return result


def main():
    # The record is a file on the node: no RPC connection options.
    run_module(run, connection=False, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


if __name__ == "__main__":
    main()

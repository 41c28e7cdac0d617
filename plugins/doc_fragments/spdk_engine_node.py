# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # The options of a run on an engine node that attaches replicas (spdk_engine, spdk_replica_rebuild):
    # plugins/module_utils/spdk_common.py engine_node_options. A module gives listen_address and
    # port_range the description of what it exports with them.
    DOCUMENTATION = r"""
options:
  node_name:
    description:
      - Name of the engine node, used for the default O(host_nqn) and the node record's file name.
      - Defaults to this machine's short host name.
    type: str
  host_nqn:
    description:
      - The NQN this engine node presents to its remote replicas; their exports must allow it.
      - Defaults to C(nqn.2026-01.io.spdk-storage:host:<node_name>).
    type: str
  listen_address:
    description: This node's NVMe-oF/TCP address (IPv4 or IPv6).
    type: str
  port_range:
    description: Ports from which a port for an export on this node is chosen, as V(LOW-HIGH).
    type: str
    default: "4420-4499"
  record_dir:
    description:
      - Directory of the node record C(<record_dir>/<node_name>.json). An empty string disables the record.
    type: path
    default: /var/lib/spdk-storage
  ctrlr_loss_timeout_sec:
    description:
      - Seconds after which a controller to a remote replica that cannot reconnect is deleted, and the replica
        leaves the RAID. V(-1) never deletes it; V(0) is refused (SPDK would keep a dead member forever).
      - Every controller to a replica the run attaches gets it.
    type: int
    default: 10
  reconnect_delay_sec:
    description: Seconds between reconnect attempts to a lost remote replica.
    type: int
    default: 2
  fast_io_fail_timeout_sec:
    description:
      - Seconds after which I/O to an unreachable remote replica fails (the RAID then drops that member and
        carries on with the others), instead of waiting for the reconnect. V(0) waits for the loss timeout.
    type: int
    default: 5
"""

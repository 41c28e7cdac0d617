# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Node: one spdk_tgt a run talks to, its client and what was last read of it.

A multi-node run (engine snapshot, rebuild) reads each node once in one batch, plans, and reads
again only after it changed something there. ``state`` is the NodeState of the last read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState, fetch


class Node:
    """One target: ``label`` (as results name it), ``client``, ``parts`` (the model parts a load
    reads, see spdk_model.PARTS) and ``state`` (the last read)."""

    def __init__(self, label, client, parts, is_engine_node=False):
        self.label = label
        self.client = client
        self.parts = tuple(parts)
        self.is_engine_node = is_engine_node
        self.state = None

    def load(self, parts=None):
        """Read ``parts`` (default: this node's) in one batch; the new state."""
        if parts is not None:
            self.parts = tuple(parts)
        self.state = NodeState(fetch(self.client, self.parts))
        return self.state

    def reload(self, check_mode=False):
        """Read again what was read before; in check mode nothing changed, so nothing is read."""
        if not check_mode:
            self.load(tuple(self.state.raw) if self.state is not None else None)
        return self.state

    def with_part(self, part):
        """The last reads plus ``part`` (one RPC unless it was read already); ``state`` stays as it was."""
        if self.state.has(part):
            return self.state
        return NodeState(dict(self.state.raw, **fetch(self.client, (part,))))

    def supports(self, method):
        return self.client.supports(method)

    def lvol(self, disk, name):
        return self.state.lvol(disk, name)

    def disk(self, name):
        return self.state.disk(name)

    def controller(self, name):
        return next((c for c in self.state.controllers if c.name == name), None)

    def subsystems(self):
        """{nqn: spdk_nvmf.Subsystem} of the last read (parsed once, by the NodeState)."""
        return self.state.subsystems

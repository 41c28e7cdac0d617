# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mutating RPCs of a multi-node run, each recorded as an action for the module's result.

The engine snapshot and rebuild runs talk to several nodes and report every change they
made, or would make in check mode, as ``{"node", "method", "params", "why"}``. The
client already skips mutating calls in check mode, so recording and sending are one step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError


class RecordedSends:
    """Mixin for a run that keeps its actions in ``self.actions`` (a list) and sends to nodes
    that have a ``label`` and a ``client``."""

    def send(self, node, method, params, why, tolerate=None):
        """One mutating RPC (skipped by the client in check mode), recorded as an action.

        ``tolerate(err)`` true turns that SPDK error into a None result (for example an
        object that is already gone); any other error is raised.
        """
        self.actions.append({"node": node.label, "method": method, "params": params, "why": why})
        try:
            return node.client.call(method, params)
        except SpdkRpcError as err:
            if tolerate is not None and tolerate(err):
                return None
            raise

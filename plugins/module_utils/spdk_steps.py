# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step and StepRecorder: every mutating RPC a module sends, planned and reported one way.

A planner returns ``Step`` objects (method, params, the sentence a user reads, and which error
means "already done"); an executor hands them to a ``StepRecorder``, which records each one as an
action of the module's result and sends it. In check mode the client answers a mutating call
with None without sending it, so planning, recording and reporting are the same in both modes::

    recorder = StepRecorder(check_mode=module.check_mode)
    with recorder.reporting():                # a failure reports the actions sent before it
        recorder.run(node, planner.steps())   # node: anything with ``client`` (and ``label``)
    module.exit_with(recorder.changed, actions=recorder.actions)

A run over several nodes records ``node`` (the node's label) in each action; a single-node run
passes nodes without a label and its actions are ``{"method", "params", "why"}``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError


class Step:
    """One planned RPC, with the sentence a user sees in the results."""

    def __init__(self, method, params, why, tolerate=None):
        self.method = method
        self.params = params
        self.why = why
        self.tolerate = tolerate  # callable(SpdkRpcError) -> bool: an answer that means "already done"

    def describe(self):
        return {"method": self.method, "params": self.params, "why": self.why}

    def __repr__(self):
        return "Step(%s, %r)" % (self.method, self.params)


class StepRecorder:
    """Sends steps and keeps them, in order, as the run's ``actions``."""

    def __init__(self, check_mode=False, actions=None):
        self.check_mode = check_mode
        self.actions = actions if actions is not None else []
        self.before_first = None   # called once, before the run's first mutating step (takes a lock)

    @property
    def changed(self):
        return bool(self.actions)

    @contextlib.contextmanager
    def reporting(self):
        """An SpdkError raised inside carries the actions sent so far (a failed run reports them)."""
        try:
            yield self
        except SpdkError as err:
            err.result.setdefault("actions", self.actions)
            raise

    def record(self, step, node=None):
        """Keep ``step`` as an action (a step taken outside SPDK, such as a kernel connect, is only recorded)."""
        if self.before_first is not None:
            hook, self.before_first = self.before_first, None
            hook()
        action = step.describe()
        label = getattr(node, "label", None)
        if label is not None:
            action = dict(node=label, **action)
        self.actions.append(action)
        return action

    def send(self, node, step):
        """Record ``step`` and send it to ``node.client``; the result, or None for a tolerated error
        (and for every mutating call in check mode)."""
        # Imported here so that planning code stays importable without the client.
        from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

        self.record(step, node)
        try:
            return node.client.call(step.method, step.params)
        except SpdkRpcError as err:
            if step.tolerate is not None and step.tolerate(err):
                return None
            raise

    def call(self, node, method, params, why, tolerate=None):
        """``send`` of a step written inline."""
        return self.send(node, Step(method, params, why, tolerate))

    def run(self, node, steps):
        """Send ``steps`` in order; their results."""
        return [self.send(node, step) for step in steps]


class ClientNode:
    """A bare client where a node is expected: single-node runs record no node label."""

    label = None

    def __init__(self, client):
        self.client = client

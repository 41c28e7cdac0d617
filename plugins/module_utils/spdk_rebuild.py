# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rebuild a replica of an engine on another node: plan, copy the snapshot chain, join the RAID.

The entry point of spdk_replica_rebuild (docs/REBUILD.md explains the strategies). The run lives on
the engine node, like spdk_engine; the source replica's node and the destination node are reached
through their own ``rpc_socket``. One file per job:

* spdk_rebuild_names.py: transient names, system snapshot names, states, RebuildError (pure);
* spdk_rebuild_request.py: RebuildRequest and Destination, the validated options (ReplicaRef);
* spdk_rebuild_plan.py: pure decisions on what was read: the chain and how much of it is copied,
  strategy, identity of replicas, RAID membership, the system snapshot merge, the replaced
  replica's removal;
* spdk_rebuild_copy_plan.py and spdk_rebuild_join_plan.py: the pure planners of the copy and the
  join phase, Steps from node states;
* spdk_rebuild_context.py: RebuildContext, the nodes (spdk_node.Node), the StepRecorder, the waits
  (spdk_wait.Waiter) and the run's record that the phases share;
* spdk_rebuild_copy.py (CopyPhase), spdk_rebuild_join.py (JoinPhase), spdk_rebuild_replaced.py
  (ReplacedRemoval) and spdk_rebuild_merge.py: the executors, which send the planned steps;
* spdk_rebuild_run.py: RebuildRun, one run from the first reads to the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    STEPS,
    STRATEGIES,
    RebuildError,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_request import Destination, RebuildRequest
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_run import RebuildRun

__all__ = ["STEPS", "STRATEGIES", "Destination", "RebuildError", "RebuildRequest", "RebuildRun"]

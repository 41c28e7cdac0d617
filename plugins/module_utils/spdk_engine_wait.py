# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What an engine run waits for on its node, each a Waiter: detached controllers' bdevs gone, and health."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import HEALTHY, EngineStatus
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

BDEV_POLL = 0.2
"""Seconds between two looks at a detached controller's bdev (a detach completes in milliseconds)."""


def _registered(client, name):
    try:
        client.call("bdev_get_bdevs", {"name": name})
    except SpdkRpcError as err:
        if not err.is_no_device():
            raise
        return False
    return True


def wait_bdevs_gone(client, names, timeout, sleep=time.sleep, clock=time.monotonic, heartbeat=None):
    """Poll (1 RPC per bdev still there) until every bdev in ``names`` is unregistered: a controller's
    detach completes asynchronously. Raises EngineRefusal after ``timeout`` seconds."""
    pending = list(names)

    def gone():
        pending[:] = [name for name in pending if _registered(client, name)]
        return None if pending else True

    def describe():
        return "bdev %s is still registered %ss after its controller was detached" % (", ".join(pending), timeout)

    Waiter(timeout, BDEV_POLL, clock=clock, sleep=sleep, heartbeat=heartbeat).until(gone, describe, error=EngineRefusal)


def wait_healthy(client, request, state, waiter):
    """Poll ``bdev_raid_get_bdevs`` (1 RPC per poll, every ``waiter.interval``) until every wanted replica
    is RW; the NodeState of the last poll. Raises EngineRefusal at the waiter's deadline.

    Member names are resolved from the other reads of ``state`` (they do not change while SPDK rebuilds).
    """
    last = []

    def healthy():
        polled = NodeState(dict(state.raw, raids=client.call("bdev_raid_get_bdevs", {"category": "all"})))
        last[:] = [EngineStatus(polled, request)]
        return polled if last[0].state == HEALTHY else None

    def describe():
        return "engine %s is %s after %ss (wait_timeout): %s" % (
            request.name, last[0].state, waiter.timeout, last[0].progress())

    return waiter.until(healthy, describe, error=EngineRefusal)

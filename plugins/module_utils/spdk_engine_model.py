# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names other runs (rebuild, engine snapshot) import from the engine, while they move to the
files that define them. Nothing is defined here:

* spdk_engine_timeouts: the controller loss policy (defaults, options, check);
* spdk_engine_request: the engine's options checked (EngineRequest, EngineRefusal, default host NQN);
* spdk_engine_status: the engine as its node shows it (EngineStatus, replica modes, member matching);
* spdk_engine_plan: the membership planned (attach, create, add, remove, detach, absent);
* spdk_engine_frontend: the frontend planned (NVMe-oF subsystem with ANA);
* spdk_engine_wait: what a run waits for (bdevs gone, health);
* spdk_engine_initiator: the kernel host of frontend=blockdev;
* spdk_engine_members, spdk_engine_run: one run, plan then apply.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# pylint: disable=unused-import
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_frontend import (  # noqa: F401
    ACTIVE_ANA_GROUP,
    SPARE_ANA_GROUP,
    spare_group_step,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_members import EngineRpcFailure  # noqa: F401
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_plan import detach_steps  # noqa: F401
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import (  # noqa: F401
    SUPERBLOCK_AREA,
    EngineRefusal,
    default_host_nqn,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (  # noqa: F401
    RW,
    WO,
    bdev_refs,
    controller_of,
    find_member,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import (  # noqa: F401
    DEFAULT_TIMEOUTS,
    check_timeouts,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_wait import wait_bdevs_gone  # noqa: F401

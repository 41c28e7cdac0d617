# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names the engine snapshot run (spdk_engine_snapshot_*.py) still imports as ``em``, each from the
file that defines it. Nothing is defined here, and nothing else imports it:

* spdk_engine_frontend: ACTIVE_ANA_GROUP, SPARE_ANA_GROUP, spare_group_step (spdk_engine_snapshot_pause);
* spdk_engine_request: default_host_nqn (spdk_engine_snapshot_request);
* spdk_engine_status: bdev_refs, find_member (spdk_engine_snapshot_views);
* spdk_engine_timeouts: DEFAULT_TIMEOUTS (spdk_engine_snapshot_request).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# pylint: disable=unused-import
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_frontend import (  # noqa: F401
    ACTIVE_ANA_GROUP,
    SPARE_ANA_GROUP,
    spare_group_step,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import default_host_nqn  # noqa: F401
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_status import (  # noqa: F401
    bdev_refs,
    find_member,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import DEFAULT_TIMEOUTS  # noqa: F401

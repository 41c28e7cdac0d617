# -*- coding: utf-8 -*-
"""spdk_engine_model only passes on, for the runs that still import it, names the spdk_engine_* files
define; every name they use is there and is the defining file's own object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_frontend as frontend
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_members as members
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_model as em
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_plan as plan
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_request as request
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_status as status
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_timeouts as timeouts
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_wait as wait


@pytest.mark.parametrize("name, home", [
    ("ACTIVE_ANA_GROUP", frontend), ("SPARE_ANA_GROUP", frontend), ("spare_group_step", frontend),
    ("EngineRpcFailure", members),
    ("detach_steps", plan),
    ("SUPERBLOCK_AREA", request), ("EngineRefusal", request), ("default_host_nqn", request),
    ("RW", status), ("WO", status), ("bdev_refs", status), ("controller_of", status), ("find_member", status),
    ("DEFAULT_TIMEOUTS", timeouts), ("check_timeouts", timeouts),
    ("wait_bdevs_gone", wait),
])
def test_each_name_is_the_defining_files_own(name, home):
    assert getattr(em, name) is getattr(home, name)

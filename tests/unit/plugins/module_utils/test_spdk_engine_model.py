# -*- coding: utf-8 -*-
"""spdk_engine_model only passes on, for the engine snapshot run that still imports it, names the
spdk_engine_* files define; every name that run uses is there and is the defining file's own object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_frontend as frontend
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_model as em
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_request as request
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_status as status
from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_timeouts as timeouts


@pytest.mark.parametrize("name, home", [
    ("ACTIVE_ANA_GROUP", frontend), ("SPARE_ANA_GROUP", frontend), ("spare_group_step", frontend),
    ("default_host_nqn", request),
    ("bdev_refs", status), ("find_member", status),
    ("DEFAULT_TIMEOUTS", timeouts),
])
def test_each_name_is_the_defining_files_own(name, home):
    assert getattr(em, name) is getattr(home, name)

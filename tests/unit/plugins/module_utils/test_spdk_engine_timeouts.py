# -*- coding: utf-8 -*-
"""The controller loss policy: one set of defaults, one check, for options and records alike."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import (
    CONTROLLER_TIMEOUT_ARGS,
    DEFAULT_TIMEOUTS,
    check_timeouts,
    controller_timeouts,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError


class TestCheck:
    @pytest.mark.parametrize("loss, delay, fail, why", [
        (0, 0, 0, "never deletes a lost controller"),
        (-2, 2, 5, "must be -1"),
        (10, 0, 5, "reconnect_delay_sec must be positive"),
        (5, 10, 0, "must not exceed ctrlr_loss"),
        (10, 2, 1, "at least reconnect_delay_sec"),
        (10, 2, 11, "must not exceed ctrlr_loss"),
    ])
    def test_timeouts_spdk_refuses_or_that_never_drop_a_dead_replica_are_refused(self, loss, delay, fail, why):
        with pytest.raises(SpdkInputError, match=why):
            check_timeouts(loss, delay, fail)

    def test_equal_fast_io_fail_and_loss_timeouts_are_accepted_as_spdk_does(self):
        check_timeouts(10, 2, 10)   # SPDK refuses only a fast_io_fail_timeout_sec greater than the loss timeout
        check_timeouts(-1, 2, 0)


class TestControllerTimeouts:
    def test_the_options_and_the_defaults_are_one_definition(self):
        assert {name: spec["default"] for name, spec in CONTROLLER_TIMEOUT_ARGS.items()} == dict(DEFAULT_TIMEOUTS)
        assert all(spec["type"] == "int" for spec in CONTROLLER_TIMEOUT_ARGS.values())
        assert controller_timeouts() == {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2,
                                         "fast_io_fail_timeout_sec": 5}

    def test_module_params_keep_only_the_three_options(self):
        params = {"name": "vol1", "ctrlr_loss_timeout_sec": 30, "reconnect_delay_sec": 3,
                  "fast_io_fail_timeout_sec": 0}
        assert controller_timeouts(params) == {"ctrlr_loss_timeout_sec": 30, "reconnect_delay_sec": 3,
                                               "fast_io_fail_timeout_sec": 0}

    def test_a_missing_or_null_field_takes_its_default(self):
        assert controller_timeouts({"ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": None}) == {
            "ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}

    def test_what_is_merged_is_checked(self):
        with pytest.raises(SpdkInputError, match="must not exceed ctrlr_loss"):
            controller_timeouts({"ctrlr_loss_timeout_sec": 3})   # fast_io_fail 5 > loss 3

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The loss policy of a controller to a remote replica: its defaults, its options and its one check.

Every ``bdev_nvme_attach_controller`` to a replica (engine, rebuild, engine revert) sets these three
timeouts explicitly. With SPDK's default ``ctrlr_loss_timeout_sec`` 0 a lost controller is never
deleted, so a dead replica never leaves the RAID; with a positive one SPDK deletes it once the
timeout passed and the RAID drops the member
(tests/unit/fixtures/transcripts/more__nvme_reconnect.json).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError

DEFAULT_TIMEOUTS = (("ctrlr_loss_timeout_sec", 10), ("reconnect_delay_sec", 2), ("fast_io_fail_timeout_sec", 5))
"""(option, default) in the order bdev_nvme_attach_controller documents them."""

CONTROLLER_TIMEOUT_ARGS = {name: dict(type="int", default=default) for name, default in DEFAULT_TIMEOUTS}
"""The three options of the modules that attach replicas (spdk_engine, spdk_replica_rebuild)."""


def check_timeouts(ctrlr_loss, reconnect_delay, fast_io_fail):
    """Refuse what SPDK refuses (bdev_nvme_check_io_error_resiliency_params) and what never heals.

    ``ctrlr_loss_timeout_sec`` 0 keeps a dead controller (and so a dead RAID member) forever, so it is
    refused here. A ``fast_io_fail_timeout_sec`` equal to the loss timeout is accepted, as SPDK does.
    """
    if ctrlr_loss == 0:
        raise SpdkInputError("ctrlr_loss_timeout_sec 0 never deletes a lost controller, so a dead replica would "
                             "never leave the RAID: use a positive number of seconds (default 10) or -1")
    if ctrlr_loss < -1:
        raise SpdkInputError("ctrlr_loss_timeout_sec must be -1 (never) or a positive number of seconds")
    if reconnect_delay <= 0:
        raise SpdkInputError("reconnect_delay_sec must be positive when controllers are dropped on loss")
    if ctrlr_loss > 0 and reconnect_delay > ctrlr_loss:
        raise SpdkInputError("reconnect_delay_sec (%d) must not exceed ctrlr_loss_timeout_sec (%d)"
                             % (reconnect_delay, ctrlr_loss))
    if fast_io_fail:
        if fast_io_fail < reconnect_delay:
            raise SpdkInputError("fast_io_fail_timeout_sec (%d) must be 0 or at least reconnect_delay_sec (%d)"
                                 % (fast_io_fail, reconnect_delay))
        if ctrlr_loss > 0 and fast_io_fail > ctrlr_loss:
            raise SpdkInputError("fast_io_fail_timeout_sec (%d) must not exceed ctrlr_loss_timeout_sec (%d)"
                                 % (fast_io_fail, ctrlr_loss))


def controller_timeouts(values=None):
    """The checked loss policy of ``values`` (module params, a node record's ``controller_timeouts`` or any
    dict holding some of the three): a field that is missing or null takes its default.

    Returns {option: seconds} as bdev_nvme_attach_controller takes them.
    """
    values = values or {}
    timeouts = {name: default if values.get(name) is None else values[name] for name, default in DEFAULT_TIMEOUTS}
    check_timeouts(*[timeouts[pair[0]] for pair in DEFAULT_TIMEOUTS])
    return timeouts

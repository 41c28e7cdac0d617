#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spdk_target
short_description: Wait for an SPDK target and apply its target-wide settings
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - Waits until the target's JSON-RPC socket answers, up to O(wait_timeout) seconds.
  - Applies the settings that belong to the target as a whole rather than to one object,
    namely the NVMe-oF TCP transport (O(nvmf_tcp)), the global NVMe bdev options
    (O(nvme_options), C(bdev_nvme_set_options)), bdev auto-examine (O(auto_examine)) and the
    RAID rebuild rate (O(raid_options), C(bdev_raid_set_options)).
  - A target started with C(--wait-for-rpc) is still in its startup phase when it first answers.
    The module then applies O(nvme_options) and O(auto_examine), calls C(framework_start_init)
    and waits for C(framework_wait_init), and only then creates the transport.
  - O(raid_options) can change at any time, also while a RAID rebuilds (the new rate applies at once).
  - SPDK refuses C(bdev_nvme_set_options) once any NVMe controller is attached, and it cannot
    change an existing transport or C(bdev_auto_examine) after the startup phase. When a value
    differs and SPDK cannot change it, the module fails and explains that the target must restart
    (role P(spdk.storage.spdk_tgt#role) with C(spdk_tgt_state=restarted)). It changes nothing in that case.
  - Returns the target's version and how many RPC methods it offers.
extends_documentation_fragment:
  - spdk.storage.spdk
  - spdk.storage.spdk.attributes
options:
  wait_timeout:
    description:
      - Seconds to wait until the RPC socket answers (the target may still be starting).
      - V(0) tries once.
    type: float
    default: 30
  nvmf_tcp:
    description:
      - Make sure the NVMe-oF TCP transport exists.
      - V(false) leaves transports as they are. SPDK has no RPC that deletes a transport.
    type: bool
    default: false
  nvmf_tcp_options:
    description:
      - Parameters of C(nvmf_create_transport) besides C(trtype), used when the transport is
        created, for example C(max_queue_depth), C(in_capsule_data_size), C(io_unit_size).
      - Only the TCP transport's parameters of SPDK v26.05 are accepted, with whole numbers from 0 to
        4294967295, C(true)/C(false) for C(zcopy), C(c2h_success), C(dif_insert_or_strip) and
        C(disable_command_passthru), and lists for C(masked_oncs) and C(masked_fuses). Any other key is
        refused before any RPC, because SPDK ignores a key it does not know without an error.
      - If the transport already exists, every option that C(nvmf_get_transports) reports is
        compared with its value. A difference fails the module, because SPDK cannot change a
        transport at run time. Options the target does not report (C(io_unit_size),
        C(num_shared_buffers) and C(buf_cache_size) in SPDK v26.05) cannot be checked. They are
        listed in RV(unverified_nvmf_tcp_options).
    type: dict
    default: {}
  nvme_options:
    description:
      - Global options of SPDK's NVMe bdev module (C(bdev_nvme_set_options)). Every NVMe
        controller attached afterwards inherits them unless the attach overrides them.
      - Only the options given are set. The others keep their current values.
      - SPDK accepts them only while no NVMe controller exists. If they already have these
        values, nothing is sent.
      - The three timeouts must fit together as SPDK requires. V(-1) for O(nvme_options.ctrlr_loss_timeout_sec)
        means reconnect forever. V(0), SPDK's default, never deletes a lost controller (SPDK keeps
        resetting it). Any other value needs
        O(nvme_options.reconnect_delay_sec) between 1 and O(nvme_options.ctrlr_loss_timeout_sec),
        and O(nvme_options.fast_io_fail_timeout_sec) either V(0) or between
        O(nvme_options.reconnect_delay_sec) and O(nvme_options.ctrlr_loss_timeout_sec).
    type: dict
    default: {}
    suboptions:
      ctrlr_loss_timeout_sec:
        description: Seconds a lost controller keeps reconnecting before it and its bdevs are deleted.
        type: int
      reconnect_delay_sec:
        description: Seconds between two reconnect attempts.
        type: int
      fast_io_fail_timeout_sec:
        description: Seconds after a controller loss after which I/O fails instead of waiting for the reconnect.
        type: int
      keep_alive_timeout_ms:
        description: NVMe keep-alive timeout in milliseconds.
        type: int
      transport_retry_count:
        description: How many times the transport retries a command.
        type: int
      bdev_retry_count:
        description: How many times the bdev layer retries a failed I/O (V(-1) without limit).
        type: int
      transport_ack_timeout:
        description: Transport acknowledgement timeout, as an exponent (2^n milliseconds); V(0) is the transport's default.
        type: int
      timeout_us:
        description: Command timeout in microseconds (V(0) disables it).
        type: int
      timeout_admin_us:
        description: Admin command timeout in microseconds (V(0) uses O(nvme_options.timeout_us)).
        type: int
      action_on_timeout:
        description: What to do with a command that timed out.
        type: str
        choices: [none, reset, abort]
  auto_examine:
    description:
      - Whether SPDK examines every new bdev automatically (C(bdev_auto_examine)). That includes
        assembling a RAID from superblocks it finds.
      - This can only be set while the target is in its startup phase, so start the target with
        C(--wait-for-rpc). The role does that when its C(spdk_tgt_auto_examine) is V(false).
      - If the target is already running with a different value, the module fails.
      - Leave it unset to keep the current value.
    type: bool
  raid_options:
    description:
      - Options of SPDK's RAID module (C(bdev_raid_set_options)) for the background processes of
        every RAID on the target, such as the rebuild of a replica added to an engine.
      - Only the options given are set. The others keep their current values. The current values
        are read from C(framework_get_config) (its C(bdev_raid_set_options) entry), and nothing is
        sent when they already match.
      - SPDK accepts them at any time, so a running target changes without a restart, and a
        rebuild that is running picks the new rate up at once. They last until the target stops.
      - An option the target does not report in C(framework_get_config) fails the module, because
        it could be neither checked nor relied on.
    type: dict
    default: {}
    suboptions:
      process_max_bandwidth_mb_sec:
        description:
          - Upper limit of a RAID background process (rebuild) in MB/s per RAID. V(0) is unlimited,
            SPDK's default.
          - A low limit leaves bandwidth to host I/O and makes a rebuild last longer.
        type: int
      process_window_size_kb:
        description:
          - Size in KiB of the range a rebuild copies, and locks against writes, at one time (SPDK's
            default is V(1024)). At least V(1).
        type: int
notes:
  - One no-op run sends 2 to 4 read RPCs in one pipelined exchange. C(spdk_get_version) and
    C(rpc_get_methods) are always sent. C(framework_get_config) is added with O(nvme_options),
    O(auto_examine) or O(raid_options), and C(nvmf_get_transports) with O(nvmf_tcp).
    C(bdev_nvme_get_controllers) is read only when O(nvme_options) must change.
seealso:
  - name: bdev_nvme_set_options
    description: SPDK's JSON-RPC reference.
    link: https://spdk.io/doc/jsonrpc.html
"""

EXAMPLES = r"""
- name: Wait for the target, create the TCP transport and set NVMe timeouts
  spdk.storage.spdk_target:
    rpc_socket: /var/tmp/spdk.sock
    wait_timeout: 60
    nvmf_tcp: true
    nvme_options:
      ctrlr_loss_timeout_sec: 10
      reconnect_delay_sec: 2
      fast_io_fail_timeout_sec: 5

- name: Finish the startup of a target started with --wait-for-rpc, auto-examine off
  spdk.storage.spdk_target:
    auto_examine: false
    nvmf_tcp: true
  register: target

- name: Show the version
  ansible.builtin.debug:
    msg: "{{ target.version }} offers {{ target.methods_count }} RPC methods"

- name: Cap the RAID rebuild rate at 100 MB/s (also while a rebuild runs)
  spdk.storage.spdk_target:
    raid_options:
      process_max_bandwidth_mb_sec: 100
"""

RETURN = r"""
version:
  description: The target's version string (C(spdk_get_version)).
  returned: success
  type: str
  sample: SPDK v26.05 git sha1 d519b163cb
version_fields:
  description: The version's fields as SPDK reports them.
  returned: success
  type: dict
  sample: {"major": 26, "minor": 5, "patch": 0, "suffix": "", "commit": "d519b163cb"}
methods_count:
  description: How many RPC methods the target offers in its current phase (C(rpc_get_methods) with C(current)).
  returned: success
  type: int
  sample: 226
framework:
  description:
    - V(initialized) once the target's framework runs.
    - V(startup) while a target started with C(--wait-for-rpc) waits for C(framework_start_init).
      Check mode leaves it there.
  returned: success
  type: str
  sample: initialized
waited:
  description: Seconds spent waiting for the socket to answer.
  returned: success
  type: float
  sample: 0.42
nvmf_tcp:
  description: The TCP transport as C(nvmf_get_transports) reports it, or V(null) if it does not exist or was not asked about.
  returned: success
  type: dict
  sample: {"trtype": "TCP", "max_queue_depth": 128, "in_capsule_data_size": 4096}
unverified_nvmf_tcp_options:
  description: Names of O(nvmf_tcp_options) the target does not report, so an existing transport could not be checked against them.
  returned: success
  type: list
  elements: str
  sample: [io_unit_size]
nvme_options:
  description: The requested O(nvme_options) with the values they have now (in check mode, the values they would have).
  returned: success
  type: dict
  sample: {"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5}
auto_examine:
  description: Whether bdev auto-examine is on. V(null) if O(auto_examine) was not given.
  returned: success
  type: bool
  sample: false
raid_options:
  description: The requested O(raid_options) with the values they have now (in check mode, the values they would have).
  returned: success
  type: dict
  sample: {"process_max_bandwidth_mb_sec": 100}
actions:
  description:
    - The mutating RPCs the run sent (or would send in check mode), each with the reason, in the order sent.
    - C(framework_start_init) is one of them for a target in its startup phase.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "nvmf_create_transport", "params": {"trtype": "TCP"}, "why": "create the NVMe-oF TCP transport"}]
"""

from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_plan import NVME_OPTION_NAMES, RAID_OPTION_NAMES
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_run import apply


def argument_spec():
    """A fresh spec each run: Ansible fills the suboptions into a dict option's default in place."""
    return dict(
        wait_timeout=dict(type="float", default=30),
        nvmf_tcp=dict(type="bool", default=False),
        nvmf_tcp_options=dict(type="dict", default={}),
        nvme_options=dict(type="dict", default={}, options=dict(
            (name, dict(type="str", choices=["none", "reset", "abort"]) if name == "action_on_timeout"
             else dict(type="int")) for name in NVME_OPTION_NAMES)),
        auto_examine=dict(type="bool"),
        raid_options=dict(type="dict", default={}, options=dict(
            (name, dict(type="int")) for name in RAID_OPTION_NAMES)),
    )


def run(module):
    """Wait for the target, plan and apply its settings (spdk_target_run); the module's result."""
    return apply(module.client, module.params, check_mode=module.check_mode)


def main():
    run_module(run, argument_spec=argument_spec(), supports_check_mode=True)


if __name__ == "__main__":
    main()

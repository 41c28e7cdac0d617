# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # The connection options every module takes (plugins/module_utils/spdk_common.py SPDK_COMMON_ARGS).
    DOCUMENTATION = r"""
options:
  rpc_socket:
    description:
      - Where the C(spdk_tgt) JSON-RPC server listens, on the host the task runs on.
      - A Unix socket path (the C(-r) option of C(spdk_tgt)), a TCP address C(host:port) or C([ipv6]:port),
        or the URL of SPDK's C(rpc_http_proxy) (C(http://), C(https://), or C(http+unix://) followed by the
        proxy's socket path). The HTTP forms need the Python library C(requests)
        (C(http+unix://) also C(requests-unixsocket)) on that host; the other forms need no extra library.
      - SPDK's JSON-RPC has no authentication and no encryption; anyone who reaches a C(host:port) listener
        controls the target (deletes its lvstores, exports its replicas to itself). Use C(host:port) only on
        loopback. To reach another node's target, use the socket the SSH RPC relay makes on this node
        (M(spdk.storage.spdk_rpc_relay); the playbooks do this with C(spdk_rpc_relay=true)).
      - If not set, the environment variable E(SPDK_RPC_SOCKET) is used, then the default.
      - Set it once for a play with C(module_defaults) and the group C(group/spdk.storage.spdk).
    type: str
    default: /var/tmp/spdk.sock
  rpc_timeout:
    description:
      - Seconds one RPC may take from connecting to its complete answer. A call that misses it fails
        and its connection is closed.
      - While the socket does not exist yet or refuses connections (the target is still starting),
        connecting is retried for a few seconds within this time.
      - If not set, the environment variable E(SPDK_RPC_TIMEOUT) is used, then the default.
    type: float
    default: 60
  rpc_username:
    description:
      - User name for HTTP basic authentication at an C(rpc_http_proxy). Only used with an HTTP O(rpc_socket).
      - If not set, the environment variable E(SPDK_RPC_USERNAME) is used.
    type: str
  rpc_password:
    description:
      - Password for HTTP basic authentication at an C(rpc_http_proxy). Only used with an HTTP O(rpc_socket).
      - If not set, the environment variable E(SPDK_RPC_PASSWORD) is used.
    type: str
  rpc_validate_certs:
    description:
      - Whether to verify the TLS certificate of an C(https://) O(rpc_socket).
      - Only set to V(false) for test set-ups with self-signed certificates.
      - If not set, the environment variable E(SPDK_RPC_VALIDATE_CERTS) is used, then the default.
    type: bool
    default: true
notes:
  - The modules talk to C(spdk_tgt) on the host the task runs on; its RPC socket usually needs root.
  - In check mode no RPC that changes the target is sent; reads still are, to plan the change.
  - Results carry C(rpc_calls), the number of RPCs sent to the target.
"""

    # Attributes shared by the state-changing modules; a module adds the details of its own.
    ATTRIBUTES = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details:
      - Only reading RPCs are sent; the change is planned from the target's current state.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
  action_group:
    description: Use C(group/spdk.storage.spdk) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - spdk.storage.spdk
"""

    # The ``replicas`` list of the engine-level modules (spdk_common.replicas_option). A module's own
    # ``replicas`` entry adds its description and whether the list is required; the suboptions are here.
    REPLICAS = r"""
options:
  replicas:
    description:
      - The replicas of the engine, in RAID slot order.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the replica (its head lvol, and the controller name of a remote replica on the engine node).
        type: str
        required: true
      disk:
        description: For a replica on the engine node, the disk (lvstore) holding it.
        type: str
      address:
        description:
          - For a replica on another node, C(host:port) (C([v6]:port) for IPv6) of its NVMe-oF/TCP export, as the
            engine node attaches it.
          - That export must allow the engine node's host NQN.
        type: str
      nqn:
        description: Subsystem NQN of a remote replica's export, when it is not C(nqn.2026-01.io.spdk-storage:<name>).
        type: str
      rpc_socket:
        description:
          - How the engine node reaches the C(spdk_tgt) of a remote replica's node (Unix socket, C(host:port) or
            C(rpc_http_proxy) URL); O(rpc_timeout) and the O(rpc_username)/O(rpc_password) credentials apply to it too.
          - Needed by the operations that touch every replica (engine snapshots, rebuilds);
            M(spdk.storage.spdk_engine) keeps it in the node record for them.
        type: str
"""

    # The wait options (plugins/module_utils/spdk_wait.py); a module sets its own defaults.
    WAIT = r"""
options:
  wait:
    description:
      - Whether the module waits until the work it started is finished before it returns.
      - What is waited for is described with the module.
    type: bool
  wait_timeout:
    description:
      - Seconds to wait at the most, from more than 0 up to one week (604800). The module fails once this
        time has passed, and says what it was still waiting for.
    type: float
  wait_sleep:
    description:
      - Seconds between two polls of the target while waiting; more than 0 and at most O(wait_timeout).
    type: float
"""

    # The per-volume lock (plugins/module_utils/spdk_volume_lock.py).
    LOCK = r"""
options:
  lock_timeout:
    description:
      - Seconds to wait for another run that changes the same volume (an engine snapshot taken, deleted or
        reverted, a replica rebuild, an engine created, repaired, changed or deleted) to finish, from V(0) (do
        not wait) to 86400.
      - Such a run first takes the volume's lock on the engine node's target, so two controllers, two
        processes or a rulebook and an operator never snapshot, revert, rebuild, repair or delete one volume at
        once. A run keeps its lease alive while it waits (for a copy, a RAID rebuild or the engine's health).
        The lock is taken only when a change is due; a run that changes nothing takes none, and removes a lock
        that a run which no longer exists left behind.
      - When the time passes, the module fails and names the holder (host, process, operation) and when its
        lease ends. A lease whose holder died ends 60 seconds after its last renewal; the next run takes it
        over then; one whose holder was killed on the same host is taken over at once.
      - In check mode nothing is locked; a warning says when another run holds the lock.
    type: float
    default: 60
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spdk_rpc_relay
short_description: Let every storage node reach every other node's spdk_tgt socket, relayed over SSH by the controller
version_added: 0.1.0
author:
  - spdk.storage contributors (@spdk-storage)
description:
  - The multi-node modules (M(spdk.storage.spdk_engine), M(spdk.storage.spdk_snapshot) on an engine,
    M(spdk.storage.spdk_replica_rebuild)) run on a volume's engine node and talk to the C(spdk_tgt) of the
    other nodes. On separate hosts those Unix sockets exist only on their own node. This module makes them
    reachable without putting JSON-RPC on the network. The Ansible controller relays them over SSH.
  - Runs on the controller. Call it with C(delegate_to=localhost) and C(run_once=true), once for all nodes.
  - Afterwards, on every node X, C(<peer_dir>/<Y>.sock) reaches the C(spdk_tgt) of every other node Y, and
    C(<peer_dir>/<X>.sock) is a symlink to X's own O(nodes[].rpc_socket). Every node reaches node Y at the
    same path, so that path can be given as the C(rpc_socket) of Y's replicas wherever the engine runs.
  - For each node X the controller keeps one OpenSSH master process (C(ssh -M -f -N)). It forwards
    C(<control_dir>/<X>.sock) on the controller to X's O(nodes[].rpc_socket) (C(-L)), and C(<peer_dir>/<Y>.sock)
    on X to C(<control_dir>/<Y>.sock) on the controller for every other node Y (C(-R)). A request from X to Y
    takes two SSH hops, X to the controller and the controller to Y. Both are authenticated and encrypted,
    and nothing listens on a network port.
  - Before it starts a master, the module runs one plain C(ssh) command on the node. The command creates
    O(peer_dir) with mode C(0700), removes the sockets a previous master left in it (sshd does not replace
    an existing socket file), and creates the node's own symlink.
  - The master's command line is kept in C(<control_dir>/<X>.spec). A run changes nothing for a node whose
    master runs with the same command line and whose sockets are all in place. Otherwise the old master is
    stopped and a new one started. Adding or removing a node changes every node's command line, so every
    master restarts, and relayed connections open at that moment are cut.
  - The masters run on after the module ends, with their output in C(<control_dir>/<X>.log). They keep
    the connection alive (C(ServerAliveInterval=10), C(ServerAliveCountMax=3)) and exit when it is lost.
    Run the module again to restart them, for example at the start of every play that needs them.
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying anything.
    support: full
    details:
      - No master is started or stopped and no file is written. C(ssh -O check) asks the running masters
        whether they are alive, and a running master's node is asked through it which sockets it has.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: full
    details:
      - Per node, the master command line before and after, or V(stopped).
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  nodes:
    description:
      - The storage nodes, each with how the controller reaches it over SSH.
      - Required when O(state=present). With O(state=absent), the masters of these nodes are stopped, or of
        every node that has files in O(control_dir) when it is omitted.
      - Each node must be a host of its own, with its own O(peer_dir). Two nodes with the same
        O(nodes[].ssh_host) and O(nodes[].ssh_port) are refused.
      - The C(ssh_*) options mean what Ansible's C(ansible_host), C(ansible_port), C(ansible_user),
        C(ansible_ssh_private_key_file), C(ansible_ssh_common_args) and C(ansible_ssh_extra_args) mean, so
        they can be filled from the inventory (C(hostvars)).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The node's name. It names the sockets C(<peer_dir>/<name>.sock) and the files in O(control_dir).
          - Letters, digits, C(.), C(_) and C(-), not starting with C(.) or C(-).
        type: str
        required: true
      ssh_host:
        description: The address or host name the controller connects to.
        type: str
        required: true
      ssh_port:
        description: The node's SSH port.
        type: int
        default: 22
      ssh_user:
        description:
          - The user to log in as. If not set, C(ssh) decides (its configuration, else the controller's user).
          - It must be able to create O(peer_dir), and C(spdk_tgt)'s socket must accept it.
        type: str
      ssh_private_key_file:
        description: The private key to log in with (C(ssh -i)).
        type: path
      ssh_common_args:
        description:
          - More C(ssh) command-line arguments, split like a shell does (Ansible's C(ansible_ssh_common_args)),
            for example C(-o ProxyJump=bastion) or C(-o UserKnownHostsFile=/path).
        type: str
      ssh_extra_args:
        description: More C(ssh) command-line arguments after O(nodes[].ssh_common_args) (C(ansible_ssh_extra_args)).
        type: str
      rpc_socket:
        description:
          - The Unix socket of the node's own C(spdk_tgt) (its C(-r) option), on the node.
          - Only a Unix socket path can be relayed.
        type: str
        default: /var/tmp/spdk.sock
  peer_dir:
    description:
      - The directory on every node where the relayed sockets appear, C(<peer_dir>/<node>.sock) for each node.
      - It belongs to the relay. Sockets in it are removed whenever a master to the node starts.
      - On a node that was rebooted it is gone until the module runs again (C(/run) is usually a tmpfs).
    type: str
    default: /run/spdk-storage/peers
  control_dir:
    description:
      - The directory on the controller for the masters' control sockets (C(<node>.ctl)), their forwarded
        sockets (C(<node>.sock)), command lines (C(<node>.spec)) and logs (C(<node>.log)). It is created
        with mode C(0700).
      - A Unix socket path can have at most 107 bytes, and ssh binds a control socket under a name 17 bytes
        longer than its path. So C(<control_dir>/<node>.ctl) may have at most 90 bytes. The module fails
        before starting anything when a path is too long.
    type: path
    default: ~/.cache/spdk-storage/relay
  state:
    description:
      - V(present) starts the masters that do not run as wanted.
      - V(absent) stops them (C(ssh -O exit)) and removes their files in O(control_dir). The sockets in
        O(peer_dir) on the nodes stay, but no longer lead anywhere.
    type: str
    choices: [present, absent]
    default: present
  ssh_executable:
    description: The C(ssh) client to run on the controller (OpenSSH 6.7 or later, for Unix socket forwarding).
    type: str
    default: ssh
  timeout:
    description:
      - Seconds one C(ssh) command may take, and the C(ConnectTimeout) of every connection.
    type: int
    default: 30
  allow_unreachable:
    description:
      - What to do when a node cannot be reached over SSH (its C(ssh) exits with 255, or does not answer in
        O(timeout) seconds).
      - V(false) fails the run at that node.
      - V(true) warns and goes on with the other nodes. The node gets no relay until a later run reaches
        it, and its entry in RV(relays) has the state V(unreachable). The other nodes keep their forwards to
        it, so they find its socket unanswered, as they would find a dead node.
      - Any other failure, for example a node that refuses forwarding, still fails the run.
    type: bool
    default: false
notes:
  - The nodes' sshd must allow Unix socket forwarding. That needs both C(AllowStreamLocalForwarding) and
    C(AllowTcpForwarding), because OpenSSH applies the second to Unix socket forwards too. Both are on by
    default. When a node refuses, starting its master fails with a message that says so.
  - The relayed sockets on a node belong to O(nodes[].ssh_user) and have mode C(0600). Only that user
    and root can use them, so the modules that use them must run as one of those (for example with C(become)).
  - The masters belong to the user the controller runs Ansible as. Another user's run does not see them.
  - Runs with the same O(control_dir) wait for each other (a lock file C(<control_dir>/.lock)).
seealso:
  - module: spdk.storage.spdk_engine
  - module: spdk.storage.spdk_replica_rebuild
  - module: spdk.storage.spdk_snapshot
"""

EXAMPLES = r"""
- name: Build the relay's node list from the inventory group storage
  ansible.builtin.set_fact:
    relay_nodes: >-
      {{ relay_nodes | default([]) + [{
           'name': item,
           'ssh_host': hostvars[item].ansible_host | default(item),
           'ssh_port': hostvars[item].ansible_port | default(22),
           'ssh_user': hostvars[item].ansible_user | default('root'),
           'ssh_common_args': hostvars[item].ansible_ssh_common_args | default('')}] }}
  loop: "{{ groups['storage'] }}"
  run_once: true

- name: Relay every storage node's spdk_tgt socket to every other node
  spdk.storage.spdk_rpc_relay:
    nodes: "{{ relay_nodes }}"
  delegate_to: localhost
  run_once: true

- name: The same with the nodes written out, one with its own target socket
  spdk.storage.spdk_rpc_relay:
    nodes:
      - name: node1
        ssh_host: 192.0.2.11
        ssh_user: root
      - name: node2
        ssh_host: 192.0.2.12
        ssh_user: root
        ssh_common_args: -o ProxyJump=bastion.example.com
      - name: node3
        ssh_host: 192.0.2.13
        ssh_user: root
        rpc_socket: /var/tmp/spdk-node3.sock
  delegate_to: localhost
  run_once: true
  register: relay

- name: On node1, reach node2's target through the relay
  spdk.storage.spdk_info:
    rpc_socket: /run/spdk-storage/peers/node2.sock
  delegate_to: node1

- name: Stop every relay this controller runs
  spdk.storage.spdk_rpc_relay:
    state: absent
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
relays:
  description:
    - One entry per node, in the order of O(nodes).
    - C(state) is V(started) when its master was started (or restarted, or would be in check mode),
      V(running) when it already ran as wanted, V(stopped) when it was stopped (or would be),
      V(absent) when none ran, and V(unreachable) when the node could not be reached and
      O(allow_unreachable) is V(true).
    - C(reason) says why a master was started (for example V(not running) or V(its options changed)), or
      why the node could not be reached.
    - C(peers) are the other nodes, reachable from this one at C(<peer_dir>/<peer>.sock).
  returned: always
  type: list
  elements: dict
  sample:
    - node: node1
      peer_socket: /run/spdk-storage/peers/node1.sock
      controller_socket: /root/.cache/spdk-storage/relay/node1.sock
      control_path: /root/.cache/spdk-storage/relay/node1.ctl
      peers: [node2, node3]
      state: started
      reason: not running
peer_dir:
  description: The directory of the relayed sockets on every node.
  returned: always
  type: str
  sample: /run/spdk-storage/peers
control_dir:
  description: The directory of the masters' files on the controller, expanded.
  returned: always
  type: str
  sample: /root/.cache/spdk-storage/relay
node:
  description: The node a failure is about.
  returned: failure
  type: str
  sample: node2
ssh_argv:
  description: The C(ssh) command line that failed.
  returned: failure
  type: list
  elements: str
ssh_stderr:
  description: What that C(ssh) wrote to its standard error.
  returned: failure
  type: str
  sample: "ssh: connect to host 192.0.2.12 port 22: Connection refused"
"""

from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import run_module
from ansible_collections.spdk.storage.plugins.module_utils.spdk_relay import (
    ARGUMENT_SPEC,
    REQUIRED_IF,
    Relay,
)


def run(module):
    """Bring the masters to the wanted state; the module's result (its diff only with --diff). Any failure
    reports the relays as far as the run got (a RelayError also its node, ssh_argv and ssh_stderr)."""
    relay = Relay(module.params, check_mode=module.check_mode)
    module.report_on_failure(lambda: {"relays": relay.relays})
    result = relay.apply()
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    for warning in result.pop("warnings"):
        module.warn(warning)
    return result


def main():
    # This module runs on the controller and talks to no target: no RPC connection options.
    run_module(run, connection=False, argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)


if __name__ == "__main__":
    main()

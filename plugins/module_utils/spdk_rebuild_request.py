# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The validated options of spdk_replica_rebuild: the engine's replicas (ReplicaRef), the source, the
replaced replica and where the new one goes. Every check runs before any RPC."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import default_host_nqn
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import controller_timeouts
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError, validate_lvol_name
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import (
    STEPS,
    STRATEGIES,
    check_transient_names,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import ReplicaRef, unique_refs

NEEDS_RPC_SOCKET = ": the rebuild reads every replica's node"


class Destination:
    """Where the new replica goes: a disk on the engine node, or on the node ``rpc_socket`` reaches."""

    def __init__(self, replica, disk, rpc_socket=None, listen_address=None, port=None,
                 port_range=nvmf.DEFAULT_PORT_RANGE):
        self.replica = validate_lvol_name("replica", replica)
        self.disk = validate_lvol_name("disk", disk)
        self.rpc_socket = rpc_socket
        self.listen_address = listen_address
        self.port = nvmf.validate_port(port)
        self.port_range = nvmf.parse_port_range(port_range)
        if listen_address is None:
            raise SpdkInputError("destination.listen_address is required: the copy reaches the new replica over "
                                 "NVMe-oF/TCP on that address")
        nvmf.address_family(listen_address)

    @property
    def is_local(self):
        return not self.rpc_socket


class RebuildRequest:
    """Validated options of spdk_replica_rebuild; every check runs before any RPC."""

    def __init__(self, engine, source, destination, replicas, replace=None, strategy="auto", step="all",
                 node_name="localhost", host_nqn=None, listen_address=None, port_range=nvmf.DEFAULT_PORT_RANGE,
                 bandwidth_mb_sec=None, timeouts=None, keep_replaced=False):
        self.engine = validate_lvol_name("engine", engine)
        self.replicas = [ref.require(rpc_socket=True, why=NEEDS_RPC_SOCKET)
                         for ref in unique_refs(replicas, "replicas")]
        names = [ref.name for ref in self.replicas]
        self.destination = destination if isinstance(destination, Destination) else Destination(**destination)
        self.source = self._member(source, "source")
        if self.destination.replica in names:
            raise SpdkInputError("destination replica %s is already one of the engine's replicas; give the new "
                                 "replica a new name (the replaced one goes in replace)" % self.destination.replica)
        self.replace = self._member(replace, "replace") if replace else None
        if self.replace is not None and self.replace.name == self.source.name:
            raise SpdkInputError("replace and source are both %s: the source must stay in the engine" % source)
        self.keep_replaced = bool(keep_replaced)
        if strategy not in STRATEGIES:
            raise SpdkInputError("strategy must be one of %s" % ", ".join(STRATEGIES))
        if step not in STEPS:
            raise SpdkInputError("step must be one of %s" % ", ".join(STEPS))
        self.strategy = strategy
        self.step = step
        self.node_name = node_name
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else default_host_nqn(node_name)
        self.listen_address = listen_address
        self.port_range = nvmf.parse_port_range(port_range)
        if bandwidth_mb_sec is not None and bandwidth_mb_sec < 0:
            raise SpdkInputError("bandwidth_mb_sec must be 0 (unlimited) or more")
        self.bandwidth_mb_sec = bandwidth_mb_sec
        self.timeouts = controller_timeouts(timeouts)
        check_transient_names(self.destination.replica)

    def _member(self, name, what):
        for member in self.replicas:
            if member.name == name:
                return member
        raise SpdkInputError("%s replica %s is not in replicas (the engine's current replicas: %s)"
                             % (what, name, ", ".join(m.name for m in self.replicas) or "none"))

    @property
    def keep(self):
        """The engine's replicas that stay: all but the replaced one."""
        return [m for m in self.replicas if self.replace is None or m.name != self.replace.name]

    @property
    def joining(self):
        """Whether this run goes as far as the join (steps join and all)."""
        return self.step in ("join", "all")

    def dest_member(self, address=None):
        """The destination as a replica of the engine (local by disk, remote by its export)."""
        dest = self.destination
        if dest.is_local:
            return ReplicaRef(dest.replica, disk=dest.disk)
        return ReplicaRef(dest.replica, address=address, rpc_socket=dest.rpc_socket)

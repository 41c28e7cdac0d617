# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ReplicaRef: one replica of an engine, as the engine, engine snapshot and rebuild runs name it.

A replica is *local* to the engine node (``disk``: the lvstore it lives in) or *remote*: the
engine reaches its NVMe-oF export at ``address`` (``host:port``, subsystem ``nqn``), and the
control plane reaches its node's target at ``rpc_socket``. Each run asks for what it needs of a
remote replica with ``require``: the engine attaches it (address), a snapshot is taken on its
node (rpc_socket), a rebuild reads its node and may find its export gone (rpc_socket).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
    replica_nqn,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import split_host_port

FIELDS = ("name", "disk", "address", "nqn", "rpc_socket")


def parse_address(text, what="address"):
    """``host:port`` or ``[v6]:port`` -> (ip, port, adrfam); the host must be an IP literal."""
    parts = split_host_port(str(text))
    if parts is None:
        raise SpdkInputError("%s %r must look like 192.0.2.12:4421 or [2001:db8::12]:4421" % (what, text))
    host, port = parts
    return host, nvmf.validate_port(port), nvmf.address_family(host)


class ReplicaRef:
    """One replica: local (``disk``) or remote (``address`` of its export and/or ``rpc_socket``)."""

    def __init__(self, name, disk=None, address=None, nqn=None, rpc_socket=None):
        self.name = validate_lvol_name("replica", name)
        self.disk = validate_lvol_name("disk", disk) if disk else None
        self.address = address or None
        self.rpc_socket = rpc_socket or None
        if self.disk is not None and self.address is not None:
            raise SpdkInputError("replica %s: give disk (a replica on the engine node) or address (the NVMe-oF "
                                 "export of a replica on another node), not both" % name)
        if self.disk is None and self.address is None and self.rpc_socket is None:
            raise SpdkInputError("replica %s: give disk (a replica on the engine node), or address and rpc_socket "
                                 "(a replica on another node)" % name)
        if nqn and self.disk is not None:
            raise SpdkInputError("replica %s: nqn only applies to a remote replica (one with address)" % name)
        self.traddr = self.port = self.adrfam = None
        if self.address is not None:
            self.traddr, self.port, self.adrfam = parse_address(address, "address of replica %s" % name)
        self.nqn = None if self.is_local else (nvmf.validate_host_nqn(nqn) if nqn else replica_nqn(name))

    @classmethod
    def of(cls, value):
        """A ReplicaRef from a ReplicaRef or a dict of its fields (as options and records hold them)."""
        if isinstance(value, cls):
            return value
        return cls(**{k: value.get(k) for k in FIELDS})

    def require(self, address=False, rpc_socket=False, why=""):
        """Refuse a remote replica without what this run needs of it; returns self."""
        if self.is_local:
            return self
        if address and self.address is None:
            raise SpdkInputError("replica %s lives on another node: give its address (host:port of its NVMe-oF "
                                 "export)%s" % (self.name, why))
        if rpc_socket and self.rpc_socket is None:
            raise SpdkInputError("replica %s lives on another node (address %s): give its rpc_socket (how this node "
                                 "reaches that node's spdk_tgt)%s" % (self.name, self.address, why))
        return self

    @property
    def is_local(self):
        return self.disk is not None

    @property
    def controller(self):
        """The NVMe-oF controller the engine node attaches for it (None when local)."""
        return None if self.is_local else self.name

    @property
    def bdev(self):
        """The name this replica's bdev goes by on the engine node (the RAID member)."""
        return "%s/%s" % (self.disk, self.name) if self.is_local else self.name + "n1"

    def attach_params(self, host_nqn, timeouts):
        """``bdev_nvme_attach_controller`` parameters that connect the engine node to this replica."""
        return nvmf.attach_params(self.controller, self.traddr, self.port, self.nqn, host_nqn, adrfam=self.adrfam,
                                  timeouts=timeouts)

    def to_dict(self):
        out = {"name": self.name}
        if self.is_local:
            out["disk"] = self.disk
        else:
            if self.address is not None:
                out.update(address=self.address, nqn=self.nqn)
        if self.rpc_socket:
            out["rpc_socket"] = self.rpc_socket
        return out

    def __eq__(self, other):
        return isinstance(other, ReplicaRef) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return "ReplicaRef(%r)" % (self.to_dict(),)


def unique_refs(values, what="replicas"):
    """ReplicaRefs of ``values``, refusing a replica listed twice."""
    refs = [ReplicaRef.of(v) for v in values or ()]
    names = [r.name for r in refs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpdkInputError("replica %s is listed more than once in %s" % (", ".join(twice), what))
    return refs

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an engine-level spdk_snapshot run is asked to do, and how it refuses and fails.

Every check of the options runs here, before any RPC. The replicas come from the options or from
the engine's entry in the node record (written by spdk_engine), and so does the controller loss
policy a revert re-attaches remote replicas with.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import default_host_nqn
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import DEFAULT_TIMEOUTS
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    SpdkInputError,
    engine_nqn,
    snapshot_lvol_name,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_replica_ref import FIELDS, unique_refs
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

QUIESCE_MODES = ("ana", "none")
STATES = ("present", "absent", "reverted")
OK, ERR = "OK", "ERR"


class EngineSnapshotRefusal(SpdkError):
    """Refused before any change (bad state, missing snapshot, unreachable replica...)."""


class ReplicaFailed(SpdkError):
    """An RPC on one replica failed after changes began; names the replica, and the RPC's method, code and
    message when ``err`` is an SpdkRpcError."""

    def __init__(self, replica, err, what):
        rpc = isinstance(err, SpdkRpcError)
        extra = dict(rpc_error_message=err.message) if rpc else {}
        super(ReplicaFailed, self).__init__("%s on replica %s failed: %s" % (what, replica, err),
                                            method=err.method if rpc else None, code=err.code if rpc else None,
                                            **extra)
        self.replica = replica
        self.err = err
        self.what = what


def timeouts_from_record(engine_entry):
    """The controller loss policy spdk_engine attached the members with; None when the record predates it."""
    recorded = (engine_entry or {}).get("controller_timeouts")
    if not isinstance(recorded, dict):
        return None
    names = [pair[0] for pair in DEFAULT_TIMEOUTS]
    return {name: recorded[name] for name in names if isinstance(recorded.get(name), int)}


def replicas_from_record(engine_entry):
    """The engine's replicas as spdk_engine recorded them (name, disk | address, nqn, rpc_socket)."""
    return [{k: entry.get(k) for k in FIELDS} for entry in (engine_entry or {}).get("replicas") or []]


class EngineSnapshotRequest:
    """Validated options of an engine-level spdk_snapshot run; every check runs before any RPC.

    ``replicas`` are ReplicaRefs (or dicts of their fields). A remote replica needs its ``rpc_socket``
    (its snapshot is taken on its node); a revert also needs its ``address`` (the engine node attaches
    its new head).
    """

    def __init__(self, engine, name=None, state="present", replicas=(), quiesce=None, quiesce_timeout=10.0,
                 host_nqn=None, node_name="localhost", listen_address="127.0.0.1",
                 port_range=nvmf.DEFAULT_PORT_RANGE, timeouts=None):
        self.engine = validate_lvol_name("engine", engine)
        self.nqn = engine_nqn(engine)
        self.name = validate_lvol_name("snapshot", name) if name is not None else None
        if state not in STATES:
            raise SpdkInputError("state must be one of %s" % ", ".join(STATES))
        self.state = state
        if name is None and state != "present":
            raise SpdkInputError("state=%s needs the snapshot name" % state)
        self.replicas = [self._required(ref) for ref in unique_refs(replicas)]
        if not self.replicas:
            raise SpdkInputError("engine %s: no replicas given and none recorded for it on this node; list them "
                                 "in replicas (name, disk or address + rpc_socket)" % engine)
        if self.name is not None:
            for replica in self.replicas:
                snapshot_lvol_name(replica.name, self.name)   # must fit 63 characters everywhere
        if quiesce is not None and quiesce not in QUIESCE_MODES:
            raise SpdkInputError("quiesce must be one of %s" % ", ".join(QUIESCE_MODES))
        self.quiesce = quiesce
        if quiesce_timeout is None or quiesce_timeout <= 0:
            raise SpdkInputError("quiesce_timeout must be more than 0 seconds")
        self.quiesce_timeout = float(quiesce_timeout)
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else default_host_nqn(node_name)
        self.listen_address = listen_address
        nvmf.address_family(listen_address)
        self.port_range = nvmf.parse_port_range(port_range)
        self.timeouts = dict(DEFAULT_TIMEOUTS)
        self.timeouts.update(timeouts or {})

    def _required(self, ref):
        ref.require(rpc_socket=True, why=", so its snapshot can be taken there")
        if self.state == "reverted":
            ref.require(address=True, why=", so this node can attach its new head")
        return ref

    def lvol_name(self, replica):
        """The snapshot lvol of ``replica`` (a ReplicaRef): ``<replica>-snap-<name>``."""
        return snapshot_lvol_name(replica.name, self.name)

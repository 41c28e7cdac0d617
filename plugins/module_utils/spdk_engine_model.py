# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine domain: a RAID1 bdev named after the engine over its replicas, and its frontend.

An engine runs on its engine node. A local replica joins the RAID directly (its lvol alias
``<disk>/<replica>``); a remote one through an NVMe-oF controller named after the replica
(``bdev_nvme_attach_controller``), whose namespace bdev is ``<replica>n1``. The frontend is
the NVMe-oF/TCP subsystem ``nqn.2026-01.io.spdk-storage:<engine>`` (docs/ENGINE.md).

What real SPDK v26.05 answered (recordings in tests/unit/fixtures/transcripts/ and
tests/emulator/fixtures/) and how it shapes this file:

* a controller attached with the default ``ctrlr_loss_timeout_sec`` 0 is never deleted, so a
  dead replica never leaves the RAID; every attach sets explicit loss / reconnect /
  fast-I/O-fail timeouts (more/nvme_reconnect R1: the member drops after the loss timeout);
* every failed attach answers -5, so the failure names the likely causes (spdk_common);
* the RAID always carries a superblock, which is the authority on which member is current
  (tests/emulator/fixtures/d2_raid_sb_restart_*.session.jsonl): after a restart SPDK assembles the
  RAID from the members' superblocks,
  and attaching a member re-adds it by examine with a rebuild. So members are attached first,
  examine is awaited, and only then is the RAID planned: an existing RAID is adopted as it is,
  never created again over members its superblocks do not vouch for (D3: a re-created RAID
  silently serves a stale member's blocks);
* ``bdev_raid_get_bdevs`` names a member by alias at creation but by UUID after examine
  (D2 L34), and names the rebuild target by UUID in a superblock RAID (step3 L58): members
  are matched on every name the bdev has;
* slots are fixed at creation; ``bdev_raid_remove_base_bdev`` takes the member's bdev name
  and leaves an empty slot; ``bdev_raid_add_base_bdev`` fills one with a full rebuild;
* deleting the RAID keeps the superblocks (``clear_sb: false``): they still say which replica
  is current when the engine is assembled again (on this node by examine when its members
  register, or on another node when it attaches them). Clearing them would let a later
  create trust a stale replica. Deleting an engine never touches replica data;
* ANA: the frontend reports ANA, its namespace lives in group 1 and group 2 is kept
  ``inaccessible`` on every listener, so an engine snapshot can pause I/O by moving the
  namespace into group 2 (``nvmf_subsystem_set_ns_ana_group`` drains in-flight writes,
  more/ana run15). A namespace left in group 2 by an interrupted pause is moved back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NULL_UUID, NodeState, fetch
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    NQN_PREFIX,
    SpdkInputError,
    engine_nqn,
    human_size,
    parse_size,
    replica_nqn,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError

MIB = 1 << 20
SUPERBLOCK_AREA = MIB
"""What a superblock RAID keeps at the start of every member (data_offset: 256 x 4 KiB)."""

ENGINE_READS = ("raids", "bdevs", "subsystems")
"""The reads an engine run starts with: three RPCs in one batch."""

FRONTENDS = ("nvmf", "none", "blockdev")
DEFAULT_TIMEOUTS = (("ctrlr_loss_timeout_sec", 10), ("reconnect_delay_sec", 2), ("fast_io_fail_timeout_sec", 5))
HOST_NQN_PREFIX = NQN_PREFIX + "host:"
ACTIVE_ANA_GROUP = 1
SPARE_ANA_GROUP = 2
ENGINE_MODEL = "spdk.storage engine"
RW, WO, ERR = "RW", "WO", "ERR"
HEALTHY, DEGRADED, FAULTED, ABSENT = "healthy", "degraded", "faulted", "absent"

Step = nvmf.Step


class EngineRefusal(SpdkError):
    """The request is valid but unsafe or impossible in the node's current state."""


# ---------------------------------------------------------------- input


def default_host_nqn(node_name):
    """The NQN an engine node presents to its replicas (docs/ENGINE.md)."""
    return nvmf.validate_host_nqn(HOST_NQN_PREFIX + node_name)


def parse_address(text, what="address"):
    """``host:port`` or ``[v6]:port`` -> (ip, port, adrfam); the host must be an IP literal."""
    match = re.match(r"^\[([^\]]+)\]:(\d+)$", str(text)) or re.match(r"^([^:\[\]]+):(\d+)$", str(text))
    if not match:
        raise SpdkInputError("%s %r must look like 192.0.2.12:4421 or [2001:db8::12]:4421" % (what, text))
    host, port = match.group(1), int(match.group(2))
    return host, nvmf.validate_port(port), nvmf.address_family(host)


def check_timeouts(ctrlr_loss, reconnect_delay, fast_io_fail):
    """Refuse what SPDK refuses (bdev_nvme_check_io_error_resiliency_params) and what never heals.

    ``ctrlr_loss_timeout_sec`` 0 keeps a dead controller (and so a dead RAID member) forever: SPDK
    deletes a controller only once a non-zero loss timeout has passed
    (tests/unit/fixtures/transcripts/more__nvme_reconnect.json), so it is refused here.
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


class ReplicaSpec:
    """One wanted replica: local (``disk``) or remote (``address``)."""

    def __init__(self, name, disk=None, address=None, nqn=None, rpc_socket=None):
        self.name = validate_lvol_name("replica", name)
        if (disk is None) == (address is None):
            raise SpdkInputError("replica %s needs exactly one of disk (a replica on this node) or address "
                                 "(host:port of its NVMe-oF export on another node)" % name)
        self.disk = validate_lvol_name("disk", disk) if disk is not None else None
        self.address = address
        self.traddr = self.port = self.adrfam = None
        if address is not None:
            self.traddr, self.port, self.adrfam = parse_address(address, "address of replica %s" % name)
        if nqn is not None and disk is not None:
            raise SpdkInputError("replica %s: nqn only applies to a remote replica (one with address)" % name)
        self.nqn = nvmf.validate_host_nqn(nqn) if nqn is not None else (replica_nqn(name) if address else None)
        self.rpc_socket = rpc_socket

    @property
    def is_local(self):
        return self.disk is not None

    @property
    def controller(self):
        return None if self.is_local else self.name

    @property
    def bdev(self):
        """The name this replica's bdev goes by on the engine node."""
        return "%s/%s" % (self.disk, self.name) if self.is_local else self.name + "n1"

    def attach_params(self, host_nqn, timeouts):
        params = {"name": self.controller, "trtype": "tcp", "adrfam": self.adrfam.lower(), "traddr": self.traddr,
                  "trsvcid": str(self.port), "subnqn": self.nqn, "hostnqn": host_nqn}
        params.update(timeouts)
        return params

    def to_dict(self):
        out = {"name": self.name}
        if self.is_local:
            out["disk"] = self.disk
        else:
            out.update(address=self.address, nqn=self.nqn)
        if self.rpc_socket:
            out["rpc_socket"] = self.rpc_socket
        return out


class EngineRequest:
    """Validated spdk_engine options. Every check here runs before any RPC."""

    def __init__(self, name, replicas=(), size=None, state="present", frontend="nvmf", listen_address=None,
                 port=None, port_range=nvmf.DEFAULT_PORT_RANGE, allowed_hosts=(), host_nqn=None,
                 node_name="localhost", timeouts=None):
        self.name = validate_lvol_name("engine", name)
        self.nqn = engine_nqn(name)
        self.state = state
        self.size = parse_size(size) if size is not None else None
        self.replicas = [r if isinstance(r, ReplicaSpec) else ReplicaSpec(**r) for r in (replicas or [])]
        self.frontend = frontend
        if frontend not in FRONTENDS:
            raise SpdkInputError("frontend must be one of %s" % ", ".join(FRONTENDS))
        self.listen_address = listen_address
        self.port = nvmf.validate_port(port)
        self.port_range = port_range
        nvmf.parse_port_range(port_range)
        self.allowed_hosts = sorted({nvmf.validate_host_nqn(h) for h in (allowed_hosts or [])})
        self.host_nqn = nvmf.validate_host_nqn(host_nqn) if host_nqn else default_host_nqn(node_name)
        self.timeouts = dict(DEFAULT_TIMEOUTS)
        self.timeouts.update(timeouts or {})
        check_timeouts(self.timeouts["ctrlr_loss_timeout_sec"], self.timeouts["reconnect_delay_sec"],
                       self.timeouts["fast_io_fail_timeout_sec"])
        if state == "present":
            self._check_present()

    def _check_present(self):
        if len(self.replicas) < 2:
            raise SpdkInputError("engine %s needs at least 2 replicas: SPDK's RAID1 takes 2 or more members"
                                 % self.name)
        names = [r.name for r in self.replicas]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SpdkInputError("replica %s is listed more than once" % ", ".join(twice))
        if self.frontend != "none" and self.listen_address is None:
            raise SpdkInputError("frontend=%s needs listen_address, this node's NVMe-oF/TCP address" % self.frontend)
        if self.listen_address is not None:
            nvmf.address_family(self.listen_address)

    @property
    def remote_replicas(self):
        return [r for r in self.replicas if not r.is_local]

    def exposure_spec(self, raid_uuid, extra_hosts=(), port=None):
        return nvmf.ExposureSpec(
            nqn=self.nqn, bdev=self.name, bdev_uuid=raid_uuid, listen_address=self.listen_address,
            port=self.port if self.port is not None else port, port_range=self.port_range,
            allowed_hosts=list(self.allowed_hosts) + list(extra_hosts), model_number=ENGINE_MODEL)


# ---------------------------------------------------------------- reading


def load_state(client):
    """raids + bdevs + subsystems in one batch (3 RPCs)."""
    return NodeState(fetch(client, ENGINE_READS))


def load_controllers(client):
    """{controller name: model Controller} (one RPC, only when an attach may be needed)."""
    return {c.name: c for c in NodeState(fetch(client, ("controllers",))).controllers}


def bdev_size(bdev):
    return bdev["block_size"] * bdev["num_blocks"] if bdev else None


def bdev_refs(state, name):
    """(every name the bdev ``name`` goes by, its raw entry or None)."""
    bdev = state.bdev_named(name)
    if bdev is None:
        return {name}, None
    refs = {name, bdev["name"]} | set(bdev.get("aliases") or [])
    if bdev.get("uuid"):
        refs.add(bdev["uuid"])
    return refs, bdev


def is_nvme_bdev(bdev):
    return bool(bdev) and "nvme" in (bdev.get("driver_specific") or {})


def controller_of(bdev):
    """Controller name of an NVMe namespace bdev ``<controller>n<nsid>``, or None."""
    if not is_nvme_bdev(bdev):
        return None
    match = re.match(r"^(.+)n\d+$", bdev["name"])
    return match.group(1) if match else None


def raw_namespaces(state, nqn):
    """The namespaces of subsystem ``nqn`` as SPDK lists them (with ``anagrpid`` under ANA reporting)."""
    for entry in state.raw.get("subsystems") or []:
        if entry.get("nqn") == nqn:
            return list(entry.get("namespaces") or [])
    return []


def nvme_trid(bdev):
    paths = (bdev.get("driver_specific") or {}).get("nvme") or [] if bdev else []
    return paths[0].get("trid", {}) if paths else {}


# ---------------------------------------------------------------- health


class ReplicaStatus:
    """What the RAID says about one wanted replica."""

    def __init__(self, spec, mode, bdev, member, rebuild):
        self.spec = spec
        self.mode = mode
        self.bdev = bdev          # raw bdev entry on this node, or None
        self.member = member      # RAID member dict (slot, name, uuid, configured) or None
        self.rebuild = rebuild    # {"percent", "blocks"} while this member is rebuilt

    def to_dict(self):
        out = self.spec.to_dict()
        out.update(mode=self.mode, bdev=self.spec.bdev, present=self.bdev is not None,
                   size=bdev_size(self.bdev), slot=self.member["slot"] if self.member else None,
                   rebuild=dict(self.rebuild) if self.rebuild else None)
        return out


def find_member(raid, refs, configured_only=True):
    for member in raid.members if raid else []:
        if configured_only and not member["configured"]:
            continue
        if member["name"] in refs or (member["uuid"] and member["uuid"] in refs):
            return member
    return None


def replica_status(state, raid, spec):
    refs, bdev = bdev_refs(state, spec.bdev)
    member = find_member(raid, refs)
    if member is None:
        return ReplicaStatus(spec, ERR, bdev, None, None)
    process = raid.process
    if process and process["type"] == "rebuild" and process["target"] in refs:
        return ReplicaStatus(spec, WO, bdev, member, {"percent": process["percent"], "blocks": process["blocks"]})
    return ReplicaStatus(spec, RW, bdev, member, None)


def engine_state(raid, statuses):
    """healthy (all RW), degraded (some RW), faulted (none, or no RAID serving I/O)."""
    if raid is None or raid.state != "online":
        return FAULTED
    modes = [s.mode for s in statuses]
    if modes and all(m == RW for m in modes):
        return HEALTHY
    return DEGRADED if RW in modes else FAULTED


def extra_members(state, raid, replicas):
    """Configured RAID members that are none of the wanted replicas."""
    wanted = set()
    for spec in replicas:
        wanted |= bdev_refs(state, spec.bdev)[0]
    return [m for m in (raid.members if raid else [])
            if m["configured"] and m["name"] not in wanted and m["uuid"] not in wanted]


class EngineStatus:
    """The engine as the node shows it: RAID, replica modes, frontend."""

    def __init__(self, state, request):
        self.request = request
        self.raid = state.raid(request.name)
        self.raid_bdev = state.bdev_named(request.name) if self.raid else None
        self.replicas = [replica_status(state, self.raid, spec) for spec in request.replicas]
        self.extra = extra_members(state, self.raid, request.replicas)
        self.subsystem = nvmf.parse_subsystems(state.raw.get("subsystems")).get(request.nqn)
        self.namespaces = raw_namespaces(state, request.nqn)
        self.state = engine_state(self.raid, self.replicas)

    def mode(self, name):
        return next(s.mode for s in self.replicas if s.spec.name == name)

    def frontend_view(self, device=None):
        sub = self.subsystem
        if sub is None:
            return None
        listener = sub.listeners[0] if sub.listeners else None
        groups = [ns.get("anagrpid") for ns in self.namespaces]
        return {"nqn": sub.nqn, "listen_address": listener.address if listener else None,
                "port": listener.port if listener else None, "allowed_hosts": sorted(sub.hosts),
                "ana_group": groups[0] if groups else None, "device": device}

    def to_dict(self, device=None):
        raid = self.raid
        return {
            "name": self.request.name,
            "state": self.state,
            "size": bdev_size(self.raid_bdev),
            "raid": None if raid is None else {
                "state": raid.state, "uuid": raid.uuid, "superblock": raid.superblock,
                "num_base_bdevs": raid.num_base_bdevs, "num_base_bdevs_discovered": raid.discovered,
                "num_base_bdevs_operational": raid.operational,
                "process": dict(raid.process) if raid.process else None},
            "replicas": [s.to_dict() for s in self.replicas],
            "extra_members": [m["name"] or m["uuid"] for m in self.extra],
            "frontend": self.frontend_view(device),
            "host_nqn": self.request.host_nqn,
        }


def intent_view(request, state_name, port=None):
    """The compact before/after object of ``--diff``: what the engine is configured to be."""
    if state_name == ABSENT:
        return {"state": ABSENT}
    frontend = None
    if request.frontend != "none":
        frontend = {"type": request.frontend, "nqn": request.nqn, "listen_address": request.listen_address,
                    "port": port, "allowed_hosts": list(request.allowed_hosts)}
    return {"state": "present", "replicas": [r.name for r in request.replicas], "frontend": frontend}


def current_intent(status, request):
    """``intent_view`` of what the node has now (replicas = configured wanted members + extras)."""
    if status.raid is None and status.subsystem is None:
        return {"state": ABSENT}
    replicas = [s.spec.name for s in status.replicas if s.member is not None]
    replicas += [m["name"] or m["uuid"] for m in status.extra]
    frontend = None
    view = status.frontend_view()
    if view is not None:
        frontend = {"type": request.frontend if request.frontend != "none" else "nvmf", "nqn": view["nqn"],
                    "listen_address": view["listen_address"], "port": view["port"],
                    "allowed_hosts": view["allowed_hosts"]}
    return {"state": "present", "replicas": replicas, "frontend": frontend}


# ---------------------------------------------------------------- planning: members


def needs_controllers(state, request):
    """A remote replica without its bdev: the controller list decides attach vs re-attach."""
    return any(state.bdev_named(r.bdev) is None for r in request.remote_replicas)


def plan_attach(state, request, controllers=None):
    """Attach every remote replica whose namespace bdev is not on this node.

    A controller that exists without its bdev (the attach registered no bdev, e.g. a
    duplicate namespace UUID, more/nvme_options L20) is detached first.
    """
    steps = []
    for spec in request.remote_replicas:
        if state.bdev_named(spec.bdev) is not None:
            continue
        if controllers and spec.controller in controllers:
            steps.append(Step("bdev_nvme_detach_controller", {"name": spec.controller},
                              "controller %s has no namespace bdev: attach it again" % spec.controller,
                              tolerate=_gone))
        steps.append(Step("bdev_nvme_attach_controller", spec.attach_params(request.host_nqn, request.timeouts),
                          "attach remote replica %s at %s" % (spec.name, spec.address)))
    return steps


def address_warnings(state, request):
    """A remote replica whose controller points elsewhere than its address is left alone, said out loud."""
    warnings = []
    for spec in request.remote_replicas:
        trid = nvme_trid(state.bdev_named(spec.bdev))
        if trid and (trid.get("traddr"), str(trid.get("trsvcid")), trid.get("subnqn")) != (
                spec.traddr, str(spec.port), spec.nqn):
            warnings.append(
                "replica %s is attached from %s:%s (%s), not from %s (%s); the controller is kept: remove the "
                "replica from the engine and add it again to move it"
                % (spec.name, trid.get("traddr"), trid.get("trsvcid"), trid.get("subnqn"), spec.address, spec.nqn))
    return warnings


def describe_attach_error(err):
    """SPDK's answer to a failed attach, with the likely causes of a -5."""
    return err.describe()


def _gone(err):
    return err.is_no_device()


CONNECTED = "enabled"


def unconnected(specs, controllers):
    """{replica name: its controller's state} for remote replicas in ``specs`` whose controller has no
    connected path (``bdev_nvme_get_controllers``).

    While a lost controller waits to reconnect (``reconnect_is_delayed``, ``resetting``, ``failed``, until
    ``ctrlr_loss_timeout_sec``) its namespace bdev stays registered, yet adding it to a RAID answers -5
    (more/nvme_reconnect R1/R2: the bdev is present throughout, the controller ``enabled`` only once the
    target is back).
    """
    out = {}
    for spec in specs:
        ctrl = controllers.get(spec.controller)
        states = sorted({p["state"] or "unknown" for p in ctrl.paths}) if ctrl is not None else ["deleted"]
        if CONNECTED not in states:
            out[spec.name] = "/".join(states) or "no path"
    return out


def is_connect_failure(err):
    """-5: SPDK could not read the member (its controller lost the connection)."""
    return err.code == -5


def member_problem(state, spec, raid_name):
    """Why the replica's bdev cannot join the engine's RAID, or None."""
    refs, bdev = bdev_refs(state, spec.bdev)
    if bdev is None:
        if spec.is_local:
            return ("local replica %s is not on disk %s of this node: create it with spdk.storage.spdk_replica "
                    "first, or give its address if it lives on another node" % (spec.name, spec.disk))
        return "remote replica %s has no bdev %s on this node" % (spec.name, spec.bdev)
    for raid in state.raids:
        if raid.name != raid_name and find_member(raid, refs, configured_only=False):
            return ("replica %s (bdev %s) is a member of RAID %s on this node%s; remove it from there first"
                    % (spec.name, spec.bdev, raid.name,
                       " (a RAID that SPDK assembled from the replica's superblock)" if raid.state != "online"
                       else ""))
    for exposure in state.exposures:
        if exposure.exports(refs):
            return ("replica %s is exported as %s; a local replica joins its engine directly: stop exposing it "
                    "(spdk.storage.spdk_replica expose=false) first" % (spec.name, exposure.nqn))
    return None


def check_sizes(request, sizes):
    """Equal member sizes, each big enough for ``size`` plus the superblock area."""
    known = {name: size for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        listing = ", ".join("%s %s" % (n, human_size(s)) for n, s in sorted(known.items()))
        raise EngineRefusal("replicas of engine %s differ in size (%s): a RAID1 member must match the others; "
                            "grow the smaller replicas with spdk.storage.spdk_replica" % (request.name, listing))
    if request.size is not None:
        need = request.size + SUPERBLOCK_AREA
        small = sorted(n for n, s in known.items() if s < need)
        if small:
            raise EngineRefusal(
                "replica %s is %s; an engine of %s needs replicas of at least %s (the volume plus %s for the "
                "RAID superblock)" % (", ".join(small), human_size(known[small[0]]), human_size(request.size),
                                      human_size(need), human_size(SUPERBLOCK_AREA)))


def plan_create(state, request, pending=()):
    """bdev_raid_create over every wanted replica (``pending``: bdevs an attach will bring)."""
    sizes = {}
    for spec in request.replicas:
        if spec.bdev in pending:
            sizes[spec.name] = None  # known only once attached (check mode)
            continue
        problem = member_problem(state, spec, request.name)
        if problem:
            raise EngineRefusal(problem)
        sizes[spec.name] = bdev_size(state.bdev_named(spec.bdev))
    check_sizes(request, sizes)
    return [Step("bdev_raid_create", {"name": request.name, "raid_level": "raid1", "strip_size_kb": 0,
                                      "base_bdevs": [r.bdev for r in request.replicas], "superblock": True},
                 "create RAID1 %s over %s with a superblock"
                 % (request.name, ", ".join(r.name for r in request.replicas)))]


def plan_membership(state, request, status, pending=(), unreachable=()):
    """Remove unwanted members, then add missing wanted ones into the freed or empty slots.

    ``unreachable``: remote replicas whose attach failed this run; they stay ERR.
    """
    raid = status.raid
    if raid.level != "raid1":
        raise EngineRefusal("bdev %s is a %s RAID, not an engine (raid1); choose another engine name"
                            % (request.name, raid.level))
    if raid.state != "online":
        return [], []
    removals = plan_removals(state, request, status)
    empty = sum(1 for m in raid.members if not m["configured"]) + len(removals)
    current = [bdev_size(s.bdev) for s in status.replicas if s.member is not None and s.bdev]
    adds = []
    for replica in status.replicas:
        if replica.member is not None:
            continue
        spec = replica.spec
        if spec.name in unreachable:
            continue
        if spec.bdev not in pending:
            problem = member_problem(state, spec, request.name)
            if problem:
                raise EngineRefusal(problem)
            sizes = {spec.name: bdev_size(state.bdev_named(spec.bdev))}
            if current:
                sizes["the current members"] = current[0]
            check_sizes(request, sizes)
        if empty == 0:
            raise EngineRefusal(
                "RAID %s has %d slots, all in use; SPDK cannot add a slot to a RAID, so replica %s cannot join: "
                "remove a replica from the list first (slots are fixed when the RAID is created)"
                % (request.name, raid.num_base_bdevs, spec.name))
        empty -= 1
        adds.append(Step("bdev_raid_add_base_bdev", {"raid_bdev": request.name, "base_bdev": spec.bdev},
                         "add replica %s to RAID %s (SPDK rebuilds it with a full copy)" % (spec.name, request.name)))
    return removals, adds


def plan_removals(state, request, status):
    """Take unwanted members out, never the last up-to-date copy."""
    if not status.extra:
        return []
    if not any(s.mode == RW for s in status.replicas):
        raise EngineRefusal(
            "removing %s from engine %s would leave no up-to-date replica (wanted replicas: %s); keep it until a "
            "wanted replica has been rebuilt (wait for mode RW)"
            % (", ".join(m["name"] or m["uuid"] for m in status.extra), request.name,
               ", ".join("%s %s" % (s.spec.name, s.mode) for s in status.replicas)))
    return [Step("bdev_raid_remove_base_bdev", {"name": m["name"]},
                 "remove member %s from RAID %s (not in replicas)" % (m["name"], request.name))
            for m in status.extra]


def detach_steps(state, controller_names):
    """Detach the given controllers whose namespace bdev is on this node; the bdev names to wait for."""
    steps, bdevs = [], []
    for name in sorted(set(controller_names)):
        bdev = state.bdev_named(name + "n1")
        if bdev is None or not is_nvme_bdev(bdev):
            continue
        if any(find_member(raid, bdev_refs(state, bdev["name"])[0], configured_only=False) for raid in state.raids):
            continue  # still in some RAID: never pull it from under that RAID
        steps.append(Step("bdev_nvme_detach_controller", {"name": name}, "detach controller %s" % name,
                          tolerate=_gone))
        bdevs.append(bdev["name"])
    return steps, bdevs


def removed_controllers(state, request, status, recorded_replicas=()):
    """Controllers of replicas this engine no longer wants: RAID extras and recorded former replicas."""
    wanted = {r.controller for r in request.remote_replicas}
    names = []
    for member in status.extra:
        ctrl = controller_of(state.bdev_named(member["name"] or ""))
        if ctrl:
            names.append(ctrl)
    for former in recorded_replicas:
        if former.get("address") and former.get("name"):
            names.append(former["name"])
    return [n for n in names if n not in wanted]


# ---------------------------------------------------------------- planning: frontend


def with_ana(steps, nqn):
    """ANA on the engine's subsystem: reporting on, nsid 1 in group 1, group 2 inaccessible per listener."""
    out = []
    for step in steps:
        if step.method == "nvmf_create_subsystem":
            step.params["ana_reporting"] = True
        elif step.method == "nvmf_subsystem_add_ns":
            step.params["namespace"]["anagrpid"] = ACTIVE_ANA_GROUP
        out.append(step)
        if step.method == "nvmf_subsystem_add_listener":
            out.append(spare_group_step(nqn, step.params["listen_address"]))
    return out


def spare_group_step(nqn, listen_address):
    """Keep the quiesce group inaccessible on a listener (re-asserted before every pause, too)."""
    return Step("nvmf_subsystem_listener_set_ana_state",
                {"nqn": nqn, "listen_address": dict(listen_address), "ana_state": "inaccessible",
                 "anagrpid": SPARE_ANA_GROUP},
                "keep ANA group %d inaccessible on %s:%s for snapshot pauses"
                % (SPARE_ANA_GROUP, listen_address["traddr"], listen_address["trsvcid"]))


def ana_fix_steps(namespaces, nqn):
    """Move a namespace that an interrupted pause left outside group 1 back (resumes host I/O)."""
    steps = []
    for ns in namespaces:
        group = ns.get("anagrpid")
        if group is not None and group != ACTIVE_ANA_GROUP:
            steps.append(Step("nvmf_subsystem_set_ns_ana_group",
                              {"nqn": nqn, "nsid": ns["nsid"], "anagrpid": ACTIVE_ANA_GROUP},
                              "move namespace %d back to ANA group %d (a snapshot pause was interrupted)"
                              % (ns["nsid"], ACTIVE_ANA_GROUP)))
    return steps


def ana_warnings(namespaces, nqn):
    if namespaces and all(ns.get("anagrpid") is None for ns in namespaces):
        return ["frontend %s was created without ANA reporting, so engine snapshots cannot pause its I/O; "
                "re-create it (frontend: none, then nvmf) in a maintenance window" % nqn]
    return []


def plan_frontend(state, request, status, extra_hosts=(), recorded_port=None, transport_lookup=None):
    """Steps that make the frontend match ``request.frontend`` (nvmf/blockdev share the subsystem)."""
    subsystems = nvmf.parse_subsystems(state.raw.get("subsystems"))
    current = subsystems.get(request.nqn)
    if request.frontend == "none":
        return nvmf.plan_unexpose(current)
    raid_uuid = status.raid.uuid if status.raid else None
    port = recorded_port if recorded_port not in nvmf.used_ports(subsystems, except_nqn=request.nqn) else None
    spec = request.exposure_spec(raid_uuid, extra_hosts, port=port)
    exists = True
    if nvmf.needs_listener(spec, current, subsystems) and transport_lookup is not None:
        exists = transport_lookup()
    steps = with_ana(nvmf.plan_exposure(spec, current, subsystems, transport_exists=exists), request.nqn)
    return steps + ana_fix_steps(status.namespaces, request.nqn)


def frontend_port(state, request, extra_hosts=(), recorded_port=None):
    """The port the frontend listens on (or will, once planned steps ran)."""
    subsystems = nvmf.parse_subsystems(state.raw.get("subsystems"))
    port = recorded_port if recorded_port not in nvmf.used_ports(subsystems, except_nqn=request.nqn) else None
    spec = request.exposure_spec(None, extra_hosts, port=port)
    return nvmf.choose_port(spec, subsystems.get(request.nqn), subsystems)


# ---------------------------------------------------------------- planning: absent


def plan_absent(state, request, recorded_replicas=()):
    """Frontend, then RAID (superblocks kept), then the remote replicas' controllers."""
    steps = []
    current = nvmf.parse_subsystems(state.raw.get("subsystems")).get(request.nqn)
    steps += nvmf.plan_unexpose(current)
    raid = state.raid(request.name)
    controllers = [r.controller for r in request.remote_replicas]
    controllers += [r["name"] for r in recorded_replicas if r.get("address")]
    if raid is not None:
        for member in raid.members:
            ctrl = controller_of(state.bdev_named(member["name"] or ""))
            if ctrl:
                controllers.append(ctrl)
        steps.append(Step("bdev_raid_delete", {"name": request.name, "clear_sb": False},
                          "delete RAID %s (replica data and superblocks stay)" % request.name))
        state = _without_raid(state, request.name)
    detach, bdevs = detach_steps(state, controllers)
    return steps + detach, bdevs


def _without_raid(state, name):
    raw = dict(state.raw)
    raw["raids"] = [r for r in raw.get("raids") or [] if r.get("name") != name]
    return NodeState(raw)


# ---------------------------------------------------------------- execution helpers


def execute(client, steps, actions):
    """Send ``steps`` (skipped by the client in check mode); record each as an action."""
    for step in steps:
        actions.append(step.describe())
    return nvmf.execute(client, steps)


def wait_bdevs_gone(client, names, timeout, sleep=time.sleep, clock=time.monotonic):
    """Poll until every bdev in ``names`` is unregistered (a detach completes asynchronously)."""
    deadline = clock() + timeout
    pending = list(names)
    while pending:
        still = []
        for name in pending:
            try:
                client.call("bdev_get_bdevs", {"name": name})
                still.append(name)
            except SpdkRpcError as err:
                if not err.is_no_device():
                    raise
        pending = still
        if not pending:
            return
        if clock() >= deadline:
            raise EngineRefusal("bdev %s is still registered %ss after its controller was detached"
                                % (", ".join(pending), timeout))
        sleep(0.2)


def wait_healthy(client, request, state, timeout, interval, sleep=time.sleep, clock=time.monotonic,
                 deadline=None):
    """Poll ``bdev_raid_get_bdevs`` (1 RPC per poll) until every wanted replica is RW.

    Member names are resolved once from ``state`` (they do not change while SPDK rebuilds).
    ``deadline`` (a ``clock`` time) ends the wait when the run already spent part of ``timeout``.
    Returns the NodeState of the last poll; raises EngineRefusal on timeout.
    """
    deadline = clock() + timeout if deadline is None else deadline
    while True:
        raw = dict(state.raw)
        raw["raids"] = client.call("bdev_raid_get_bdevs", {"category": "all"})
        state = NodeState(raw)
        status = EngineStatus(state, request)
        if status.state == HEALTHY:
            return state
        if clock() + interval > deadline:
            raise EngineRefusal(
                "engine %s is %s after %ss (wait_timeout): %s" % (
                    request.name, status.state, timeout,
                    ", ".join("%s %s%s" % (s.spec.name, s.mode,
                                           " %s%%" % s.rebuild["percent"] if s.rebuild else "")
                              for s in status.replicas)))
        sleep(interval)


# ---------------------------------------------------------------- kernel initiator (frontend blockdev)


class KernelInitiator:
    """``nvme connect`` of the engine's frontend on this node, for frontend=blockdev.

    ``run_command`` is AnsibleModule.run_command; ``sysfs`` and ``hostnqn_file`` are
    parameters so tests can point them at a fake tree.
    """

    def __init__(self, run_command, get_bin_path, sysfs="/sys", hostnqn_file="/etc/nvme/hostnqn",
                 sleep=time.sleep, clock=time.monotonic):
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.sysfs = sysfs
        self.hostnqn_file = hostnqn_file
        self.sleep = sleep
        self.clock = clock
        self.nvme = None

    def check(self, check_mode=False):
        """Refuse clearly, before any RPC, when this node cannot connect a kernel NVMe/TCP host."""
        self.nvme = self.get_bin_path("nvme")
        if not self.nvme:
            raise EngineRefusal("frontend=blockdev needs nvme-cli (the 'nvme' command) on the engine node; install "
                                "it (Debian/Ubuntu: apt-get install nvme-cli) or use frontend=nvmf")
        if os.path.isdir(os.path.join(self.sysfs, "module", "nvme_tcp")):
            return
        modprobe = self.get_bin_path("modprobe")
        if not check_mode and modprobe:
            rc, _out, _err = self.run_command([modprobe, "nvme_tcp"])
            if rc == 0 and os.path.isdir(os.path.join(self.sysfs, "module", "nvme_tcp")):
                return
        raise EngineRefusal("frontend=blockdev needs the nvme-tcp kernel module on the engine node, and it is not "
                            "loaded (%s missing)%s; load it (modprobe nvme-tcp) on a kernel that has it, or use "
                            "frontend=nvmf" % (os.path.join(self.sysfs, "module", "nvme_tcp"),
                                               "" if check_mode else " and could not be loaded"))

    def host_nqn(self):
        try:
            with open(self.hostnqn_file) as handle:
                nqn = handle.read().strip()
        except IOError:
            nqn = ""
        if not nqn:
            raise EngineRefusal("frontend=blockdev needs this node's kernel host NQN in %s: create it with "
                                "'nvme gen-hostnqn > %s'" % (self.hostnqn_file, self.hostnqn_file))
        return nvmf.validate_host_nqn(nqn)

    def device(self, nqn):
        """/dev path of the connected namespace of subsystem ``nqn``, or None."""
        root = os.path.join(self.sysfs, "class", "nvme-subsystem")
        for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            try:
                with open(os.path.join(root, entry, "subsysnqn")) as handle:
                    if handle.read().strip() != nqn:
                        continue
            except IOError:
                continue
            names = sorted(n for n in os.listdir(os.path.join(root, entry)) if re.match(r"^nvme\d+n\d+$", n))
            if names:
                return "/dev/" + names[0]
        return None

    def connect(self, nqn, address, port, host_nqn, timeout=30.0):
        rc, out, err = self.run_command([self.nvme, "connect", "-t", "tcp", "-a", address, "-s", str(port),
                                         "-n", nqn, "--hostnqn", host_nqn])
        if rc != 0:
            raise EngineRefusal("nvme connect to %s at %s:%s failed (rc %d): %s"
                                % (nqn, address, port, rc, (err or out).strip()))
        deadline = self.clock() + timeout
        while True:
            device = self.device(nqn)
            if device or self.clock() >= deadline:
                return device
            self.sleep(0.5)

    def disconnect(self, nqn):
        rc, out, err = self.run_command([self.nvme, "disconnect", "-n", nqn])
        if rc != 0:
            raise EngineRefusal("nvme disconnect of %s failed (rc %d): %s" % (nqn, rc, (err or out).strip()))


# ---------------------------------------------------------------- one run


class EngineRpcFailure(SpdkError):
    """An RPC failed; ``hint`` says what it means for an engine. Reported as the SpdkRpcError ``err``
    itself, with this hint."""

    def __init__(self, err, hint):
        super(EngineRpcFailure, self).__init__(str(err), method=err.method, code=err.code, hint=hint)
        self.err = err

    def fail(self, module, hint=None, **result):
        self.err.fail(module, hint=hint or self.hint, **result)


SUPERBLOCK_CLASH_HINT = (
    "a member carries the superblock of an earlier RAID (an engine deleted on this node keeps its members' "
    "superblocks, because they record which replica is current). SPDK assembles that RAID again by itself when "
    "the member's bdev registers again: re-attach a remote replica, or restart the target for a local one. "
    "The module never clears superblocks, so a stale replica cannot be trusted by mistake")


def _without_members(state, raid_name, names):
    """``state`` as it is once ``names`` left RAID ``raid_name`` (their slots empty)."""
    raw = dict(state.raw)
    raids = []
    for raid in raw.get("raids") or []:
        if raid.get("name") == raid_name:
            raid = dict(raid, base_bdevs_list=[
                dict(m, name=None, uuid=NULL_UUID, is_configured=False) if m.get("name") in names else m
                for m in raid.get("base_bdevs_list") or []])
        raids.append(raid)
    raw["raids"] = raids
    return NodeState(raw)


class EngineRun:
    """One spdk_engine run, phase by phase; ``actions`` lists every mutating step (sent or, in check
    mode, planned), ``warnings`` what the user should know."""

    def __init__(self, client, request, check_mode=False, recorded=None, initiator=None,
                 wait_timeout=300.0, wait_sleep=1.0, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.request = request
        self.check_mode = check_mode
        self.recorded = recorded or {}
        self.initiator = initiator
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.sleep = sleep
        self.clock = clock
        self.actions = []
        self.warnings = []
        self.attached = []         # controllers this run attached (detached again if the run fails)
        self.added = []            # replicas this run added to the RAID (it started their rebuild)
        self.unreachable = {}      # remote replica -> why its attach failed while the engine kept serving
        self.deferred = {}         # remote replica -> why it was not added back (its controller is not connected)
        self.controllers = None    # bdev_nvme_get_controllers of this pass, read only when needed
        self.messages = []         # one line per rebuild the RAID shows: who started it, its progress
        self.first = None          # EngineStatus of the run's first read
        self.kernel_changed = False
        self.device = None
        self.before = None
        self.state = None

    # --- present ----------------------------------------------------------------
    def present(self, wait=False):
        """Make the engine exist as requested; returns its EngineStatus after the run."""
        request = self.request
        extra_hosts = []
        if request.frontend == "blockdev":
            self.initiator.check(self.check_mode)
            extra_hosts = [self.initiator.host_nqn()]
        deadline = self.clock() + self.wait_timeout
        self.state = load_state(self.client)
        self.first = EngineStatus(self.state, request)
        self.before = current_intent(self.first, request)
        self.warnings += address_warnings(self.state, request)
        self._repair()
        self._frontend(extra_hosts)
        waiting = wait and not self.check_mode
        if waiting:
            self._wait_until_joined(deadline)
        rebuilding = self._rebuild_messages()
        if waiting:
            self.state = wait_healthy(self.client, request, self.state, self.wait_timeout, self.wait_sleep,
                                      self.sleep, self.clock, deadline=deadline)
            self.messages += ["%s: rebuild finished, RW" % name for name in rebuilding]
        self.warnings += self._kept_out(wait)
        return EngineStatus(self.state, request)

    def _repair(self):
        """One pass over the node as it is now: attach, then create or adopt the RAID and fix its membership."""
        self.controllers = None
        self.unreachable = {}
        self.deferred = {}
        pending = self._attach()
        try:
            self._members(pending)
        except Exception:
            self._rollback()
            raise

    def _wait_until_joined(self, deadline):
        """wait: while a replica is kept out because its node is unreachable, poll every ``wait_sleep`` and
        repair again (its controller reconnects, or is dropped and attached again), up to ``wait_timeout``."""
        while self.unreachable or self.deferred:
            if self.clock() + self.wait_sleep > deadline:
                raise EngineRefusal("engine %s is %s after %ss (wait_timeout): %s" % (
                    self.request.name, EngineStatus(self.state, self.request).state, self.wait_timeout,
                    "; ".join(self._kept_out(True))))
            self.sleep(self.wait_sleep)
            self.state = load_state(self.client)
            self._repair()

    def _kept_out(self, waited):
        """Why each replica this pass could not bring in stays ERR, and what to do."""
        out = ["replica %s stays ERR: %s" % (name, why) for name, why in sorted(self.unreachable.items())]
        out += ["replica %s stays ERR: %s, so its node is unreachable or still reconnecting and it is not added "
                "back to the RAID; run again when the node is back%s"
                % (name, why, "" if waited else " (wait: true waits for it, up to wait_timeout)")
                for name, why in sorted(self.deferred.items())]
        return out

    def _rebuild_messages(self):
        """Say who started each rebuild the RAID shows: this run, SPDK by itself, or something before this run.

        SPDK re-adds a stale member from its superblock when the member's bdev registers (examine, e.g.
        when this run attaches it): a rebuild of a replica that was no member when the run began and
        that the run did not add is SPDK's own. Returns the replicas being rebuilt.
        """
        first = {s.spec.name: s for s in self.first.replicas}
        names = []
        for replica in EngineStatus(self.state, self.request).replicas:
            if replica.mode != WO:
                continue
            name = replica.spec.name
            progress = "rebuilding (%s%%)" % replica.rebuild["percent"]
            if name in self.added:
                text = "added back to the RAID by this run, " + progress
            elif first[name].member is None:
                text = "SPDK re-added it from its superblock, " + progress
            else:
                text = progress + ", started before this run"
            self.messages.append("%s: %s" % (name, text))
            names.append(name)
        return names

    def _attach(self):
        """Attach missing remote replicas, let examine re-assemble / re-add, read again."""
        state, request = self.state, self.request
        if needs_controllers(state, request):
            self.controllers = load_controllers(self.client)
        pending = []
        attached = False
        for step in plan_attach(state, request, self.controllers):
            self.actions.append(step.describe())
            try:
                result = self.client.call(step.method, step.params)
            except SpdkRpcError as err:
                if step.tolerate is not None and step.tolerate(err):
                    continue
                if self._serving() and step.method == "bdev_nvme_attach_controller":
                    self.actions.pop()  # nothing changed
                    self.unreachable[step.params["name"]] = describe_attach_error(err)
                    continue
                self._rollback()
                raise
            if step.method == "bdev_nvme_attach_controller":
                self._attached(step.params["name"], result, pending)
                attached = not self.check_mode
        if attached:
            self.client.call("bdev_wait_for_examine")
            self.state = load_state(self.client)
        return pending

    def _serving(self):
        """The engine's RAID exists and serves I/O: a replica that cannot be reached only degrades it."""
        raid = self.state.raid(self.request.name)
        return raid is not None and raid.state == "online"

    def _attached(self, controller, result, pending):
        bdev = controller + "n1"
        if self.check_mode:
            pending.append(bdev)
            return
        self.attached.append(controller)
        if bdev not in (result or []):
            self._rollback()
            raise EngineRefusal(
                "controller %s attached, but SPDK registered no bdev %s (it answered %r): the replica's namespace "
                "UUID is already registered on this node - is the same replica attached under another controller "
                "name, or does its lvol live on this node (then give disk instead of address)?"
                % (controller, bdev, result))

    def _members(self, pending):
        """Create the RAID, or adopt it and fix its membership."""
        request = self.request
        status = EngineStatus(self.state, request)
        if status.raid is None:
            steps = plan_create(self.state, request, pending)
            try:
                execute(self.client, steps, self.actions)
            except SpdkRpcError as err:
                if err.is_exists():
                    raise EngineRpcFailure(err, SUPERBLOCK_CLASH_HINT)
                raise
            self._reread(bool(steps))
            return
        if status.raid.state != "online":
            self.warnings.append(
                "RAID %s is %s: SPDK waits for members its superblock lists (%d of %d present); bring back the "
                "replicas whose nodes are down, the engine serves no I/O until then"
                % (request.name, status.raid.state, status.raid.discovered or 0, status.raid.num_base_bdevs or 0))
        removals, adds = plan_membership(self.state, request, status, pending, self.unreachable)
        adds = self._connected_only(adds, pending)
        former = [r for r in self.recorded.get("replicas", []) if r.get("name") not in
                  {s.name for s in request.replicas}]
        controllers = removed_controllers(self.state, request, status, former)
        execute(self.client, removals, self.actions)
        after_removal = _without_members(self.state, request.name, {s.params["name"] for s in removals})
        detach, bdevs = detach_steps(after_removal, controllers)
        execute(self.client, detach, self.actions)
        if not self.check_mode:
            wait_bdevs_gone(self.client, bdevs, self.wait_timeout, self.sleep, self.clock)
        added = self._add(adds)
        self._reread(bool(removals or detach or added))

    def _connected_only(self, adds, pending):
        """The adds whose member SPDK can read: a remote replica's controller must be connected.

        Reads the controllers (one RPC) only when an add of a replica this run did not attach is due.
        """
        remote = {s.bdev: s for s in self.request.remote_replicas}
        check = [remote[a.params["base_bdev"]] for a in adds if a.params["base_bdev"] in remote
                 and a.params["base_bdev"] not in pending and remote[a.params["base_bdev"]].controller
                 not in self.attached]
        if not check:
            return adds
        if self.controllers is None:
            self.controllers = load_controllers(self.client)
        for name, state in unconnected(check, self.controllers).items():
            self.deferred[name] = "its controller %s is not connected (%s)" % (name, state)
        out = {s.bdev for s in self.request.replicas if s.name in self.deferred}
        return [a for a in adds if a.params["base_bdev"] not in out]

    def _add(self, adds):
        """Add members one by one. A remote one whose controller drops between the read and the add answers -5
        and stays ERR, as if its controller had not been connected. Returns how many were added."""
        by_bdev = {s.bdev: s for s in self.request.replicas}
        added = 0
        for step in adds:
            spec = by_bdev[step.params["base_bdev"]]
            self.actions.append(step.describe())
            try:
                self.client.call(step.method, step.params)
            except SpdkRpcError as err:
                if spec.is_local or not is_connect_failure(err):
                    raise
                self.actions.pop()  # nothing changed
                self.deferred[spec.name] = "adding it to the RAID answered -5 (%s)" % err.message
                continue
            self.added.append(spec.name)
            added += 1
        return added

    def _reread(self, changed):
        if changed and not self.check_mode:
            self.state = load_state(self.client)

    def _frontend(self, extra_hosts):
        request = self.request
        status = EngineStatus(self.state, request)
        if request.frontend != "blockdev" and self.initiator is not None and self.initiator.device(request.nqn):
            self._kernel_disconnect()
        current = status.subsystem
        raid_ready = status.raid is not None and status.raid.state == "online" or (
            self.check_mode and status.raid is None)
        if request.frontend != "none" and current is None and not raid_ready:
            self.warnings.append("the frontend of engine %s is not created while its RAID serves no I/O" % request.name)
            return
        self.warnings += ana_warnings(status.namespaces, request.nqn)
        recorded_port = (self.recorded.get("frontend_port") if self.recorded else None)
        steps = plan_frontend(self.state, request, status, extra_hosts, recorded_port,
                              transport_lookup=lambda: nvmf.transport_exists(self.client))
        execute(self.client, steps, self.actions)
        if steps and not self.check_mode:
            raw = dict(self.state.raw, **fetch(self.client, ("subsystems",)))
            self.state = NodeState(raw)
        if request.frontend == "blockdev":
            self._kernel_connect(extra_hosts[0], extra_hosts, recorded_port)

    def _kernel_connect(self, kernel_nqn, extra_hosts, recorded_port):
        request = self.request
        self.device = self.initiator.device(request.nqn)
        if self.device:
            return
        self.kernel_changed = True
        port = frontend_port(self.state, request, extra_hosts, recorded_port)
        params = {"nqn": request.nqn, "traddr": request.listen_address, "trsvcid": port, "hostnqn": kernel_nqn}
        self.actions.append({"method": "nvme connect", "params": params,
                             "why": "connect the kernel NVMe/TCP host to the frontend (block device)"})
        if not self.check_mode:
            self.device = self.initiator.connect(request.nqn, request.listen_address, port, kernel_nqn)

    def _kernel_disconnect(self):
        self.kernel_changed = True
        self.actions.append({"method": "nvme disconnect", "params": {"nqn": self.request.nqn},
                             "why": "disconnect the kernel host from the frontend first"})
        if not self.check_mode:
            if not self.initiator.get_bin_path("nvme"):
                raise EngineRefusal("a kernel host on this node is connected to %s, and nvme-cli is missing to "
                                    "disconnect it" % self.request.nqn)
            self.initiator.nvme = self.initiator.get_bin_path("nvme")
            self.initiator.disconnect(self.request.nqn)

    def _rollback(self):
        """Detach controllers this run attached that did not become RAID members (best effort)."""
        if not self.attached or self.check_mode:
            return
        try:
            state = load_state(self.client)
            steps, bdevs = detach_steps(state, self.attached)
            execute(self.client, steps, self.actions)
            wait_bdevs_gone(self.client, bdevs, min(self.wait_timeout, 30.0), self.sleep, self.clock)
        except (SpdkRpcError, EngineRefusal) as exc:
            self.warnings.append("could not detach %s after the failure: %s" % (", ".join(self.attached), exc))
        self.attached = []

    # --- absent -------------------------------------------------------------------
    def absent(self):
        """Frontend, RAID (superblocks kept) and replica controllers gone; replica data untouched."""
        request = self.request
        self.state = load_state(self.client)
        self.before = current_intent(EngineStatus(self.state, request), request)
        if self.initiator is not None and self.initiator.device(request.nqn):
            self._kernel_disconnect()
        steps, bdevs = plan_absent(self.state, request, self.recorded.get("replicas", []))
        execute(self.client, steps, self.actions)
        if not self.check_mode:
            wait_bdevs_gone(self.client, bdevs, self.wait_timeout, self.sleep, self.clock)

    @property
    def changed(self):
        return bool(self.actions)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVMe-oF/TCP exposure of one bdev, planned as Steps that the caller sends through a StepRecorder;
and the one parser of ``nvmf_get_subsystems``.

Generic on purpose: "expose bdev B as subsystem NQN X on address:port, open to
these host NQNs". spdk_replica exposes a replica head with it, spdk_engine its RAID
bdev (the volume frontend), the rebuild and the engine revert their temporary exports.

What SPDK answered (recordings in tests/unit/fixtures/transcripts/) and how it shapes this file:
- the TCP transport exists once per target; a second create answers -32603
  "Transport type 'TCP' already exists" (step6.json line 21), which is a harmless race;
- ``nvmf_get_subsystems`` shows a namespace's bdev by UUID, never by the alias it was
  added with (more__nvmf_hosts.json line 6 adds ``disk2/vol1-r-b2c3d4e5``, line 8 lists
  its UUID), so the namespace is compared with the bdev's UUID;
- adding a host that is already allowed answers a bare -32603 "Internal error"
  (more__nvmf_hosts.json line 13), and so do removing a host that is not on the list and
  an invalid host NQN; so the plan only adds what is missing, only removes what is there,
  and host NQNs are validated before any call;
- ``nvmf_subsystem_remove_host`` disconnects a connected host at once (more__nvmf_hosts.json
  lines 17-20: one controller before the removal, none after), which is what an allow-list
  change must do.

A port range has one form once read: the ``(low, high)`` pair ``parse_port_range`` returns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import re

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import MAX_NQN, SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step

TRTYPE = "TCP"
DEFAULT_PORT_RANGE = "4420-4499"
DISCOVERY_SUBTYPE = "Discovery"
NQN_MAX_LENGTH = MAX_NQN
SERIAL_MAX_LENGTH = 20
MODEL_MAX_LENGTH = 40

_NQN_RE = re.compile(r"^nqn\.\d{4}-\d{2}\.[^\s:]+(:\S+)?$")
_UUID_NQN_RE = re.compile(r"^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F-]{36}$")


class NvmfInputError(SpdkInputError):
    """A bad exposure request, refused before any RPC is sent."""


# ---------------------------------------------------------------- input checks


def validate_host_nqn(nqn):
    """Refuse what SPDK would answer with a bare "Internal error"."""
    if not isinstance(nqn, str) or not nqn:
        raise NvmfInputError("a host NQN must be a non-empty string, got %r" % (nqn,))
    if len(nqn) > NQN_MAX_LENGTH:
        raise NvmfInputError(
            "host NQN %r is %d characters long; NVMe allows at most %d" % (nqn, len(nqn), NQN_MAX_LENGTH)
        )
    if not (_NQN_RE.match(nqn) or _UUID_NQN_RE.match(nqn)):
        raise NvmfInputError(
            "host NQN %r is not an NQN: expected 'nqn.YYYY-MM.reverse.domain:name' "
            "(for example nqn.2014-08.org.nvmexpress:uuid:<uuid>)" % (nqn,)
        )
    return nqn


def address_family(address):
    """'IPv4' or 'IPv6' for a literal IP address; SPDK listens on addresses, not names."""
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        raise NvmfInputError(
            "listen_address %r is not an IP address; NVMe-oF/TCP listeners need a literal IPv4 or IPv6 address"
            % (address,)
        )
    return "IPv4" if ip.version == 4 else "IPv6"


def parse_port_range(value):
    """'4420-4499' (or a [low, high] pair) -> (low, high), both inclusive: the one form of a port range.

    A request class keeps what this returns; a pair passes through unchanged, so a parsed range
    can be handed on (ExposureSpec, superblock.Loopback) as it is.
    """
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    else:
        match = re.match(r"^\s*(\d+)\s*-\s*(\d+)\s*$", str(value))
        if not match:
            raise NvmfInputError("port_range %r must look like '4420-4499'" % (value,))
        low, high = match.groups()
    low, high = int(low), int(high)
    if not 1 <= low <= high <= 65535:
        raise NvmfInputError("port_range %r must be LOW-HIGH with 1 <= LOW <= HIGH <= 65535" % (value,))
    return low, high


def validate_port(port):
    if port is None:
        return None
    port = int(port)
    if not 1 <= port <= 65535:
        raise NvmfInputError("port %d is outside 1-65535" % port)
    return port


def default_serial(nqn):
    """A stable 20-character serial number derived from the NQN.

    Stable so that a subsystem re-created after a restart shows hosts the same
    serial; derived from the NQN so that two subsystems never share one.
    """
    return ("SPDKST" + hashlib.sha256(nqn.encode("utf-8")).hexdigest().upper())[:SERIAL_MAX_LENGTH]


# ------------------------------------------------------------ what SPDK has


class Listener:
    def __init__(self, address, port, trtype=TRTYPE, adrfam=None):
        self.address = address
        self.port = int(port)
        self.trtype = trtype
        self.adrfam = adrfam or address_family(address)

    @classmethod
    def from_spdk(cls, entry):
        return cls(entry["traddr"], entry["trsvcid"], entry.get("trtype", TRTYPE), entry.get("adrfam"))

    def key(self):
        return (self.trtype.upper(), self.address, self.port)

    def to_spdk(self):
        return {"trtype": self.trtype, "adrfam": self.adrfam, "traddr": self.address, "trsvcid": str(self.port)}

    def __eq__(self, other):
        return isinstance(other, Listener) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return "Listener(%s:%d)" % (self.address, self.port)


class Subsystem:
    """One NVMe-oF subsystem as ``nvmf_get_subsystems`` reports it: the one parser of that answer.

    The planners compare it with an ExposureSpec (``hosts`` in SPDK's order, ``listeners``,
    ``namespaces`` as ``{"nsid", "bdev", "uuid"}``); the read model (spdk_model.NodeState.exposures)
    and spdk_info report it (``listen_address``, ``port``, ``allowed_hosts``, ``exports``, ``to_dict``).
    """

    def __init__(self, nqn, allow_any_host=False, hosts=(), listeners=(), namespaces=(),
                 serial_number=None, model_number=None, ana_groups=None):
        self.nqn = nqn
        self.allow_any_host = bool(allow_any_host)
        self.hosts = list(hosts)
        self.listeners = list(listeners)
        self.namespaces = list(namespaces)  # [{"nsid": int, "bdev": uuid-or-name, "uuid": ...}]
        self.serial_number = serial_number
        self.model_number = model_number
        self.ana_groups = dict(ana_groups or {})  # {nsid: ANA group id}, reported by to_dict

    @classmethod
    def from_spdk(cls, entry):
        namespaces = entry.get("namespaces") or []
        return cls(
            nqn=entry["nqn"],
            allow_any_host=entry.get("allow_any_host", False),
            hosts=[host["nqn"] for host in entry.get("hosts") or []],
            listeners=[Listener.from_spdk(a) for a in entry.get("listen_addresses") or []],
            namespaces=[{"nsid": ns.get("nsid"), "bdev": ns.get("bdev_name"), "uuid": ns.get("uuid")}
                        for ns in namespaces],
            serial_number=entry.get("serial_number"),
            model_number=entry.get("model_number"),
            ana_groups={ns.get("nsid"): ns.get("anagrpid") for ns in namespaces},
        )

    def ports(self):
        return {listener.port for listener in self.listeners}

    # -- the read-side view (spdk_model, spdk_info) ---------------------------------------------

    @property
    def listen_address(self):
        """Address of the first listener (SPDK lists the newest first), or None."""
        return self.listeners[0].address if self.listeners else None

    @property
    def port(self):
        return self.listeners[0].port if self.listeners else None

    @property
    def listen_addresses(self):
        return [listener.to_spdk() for listener in self.listeners]

    @property
    def allowed_hosts(self):
        return sorted(self.hosts)

    def exports(self, refs):
        """True when one of this subsystem's namespaces is a bdev named by any of ``refs``."""
        return any(ns["bdev"] in refs for ns in self.namespaces)

    def to_dict(self):
        return {
            "nqn": self.nqn,
            "listen_address": self.listen_address,
            "port": self.port,
            "listen_addresses": self.listen_addresses,
            "allow_any_host": self.allow_any_host,
            "allowed_hosts": self.allowed_hosts,
            "serial_number": self.serial_number,
            "namespaces": [{"nsid": ns["nsid"], "bdev_name": ns["bdev"], "uuid": ns["uuid"],
                            "anagrpid": self.ana_groups.get(ns["nsid"])} for ns in self.namespaces],
        }


def parse_subsystems(result):
    """``nvmf_get_subsystems`` result -> {nqn: Subsystem}, in SPDK's order, discovery subsystem left out."""
    return {
        entry["nqn"]: Subsystem.from_spdk(entry)
        for entry in (result or [])
        if entry.get("subtype") != DISCOVERY_SUBTYPE
    }


def used_ports(subsystems, except_nqn=None):
    """Every listener port of every subsystem on the node, but one's own."""
    ports = set()
    for nqn, subsystem in subsystems.items():
        if nqn != except_nqn:
            ports |= subsystem.ports()
    return ports


# ------------------------------------------------------------ what is wanted


class ExposureSpec:
    """Expose ``bdev`` (name or alias to send; ``bdev_uuid`` to compare) as ``nqn``."""

    def __init__(self, nqn, bdev, bdev_uuid, listen_address, port=None, port_range=DEFAULT_PORT_RANGE,
                 allowed_hosts=(), allow_any_host=False, serial_number=None, model_number=None):
        if len(nqn) > NQN_MAX_LENGTH:
            raise NvmfInputError("subsystem NQN %r is longer than %d characters" % (nqn, NQN_MAX_LENGTH))
        self.nqn = nqn
        self.bdev = bdev
        self.bdev_uuid = bdev_uuid
        self.listen_address = listen_address
        self.adrfam = address_family(listen_address)
        self.port = validate_port(port)
        self.port_range = parse_port_range(port_range)
        hosts = [validate_host_nqn(h) for h in (allowed_hosts or [])]
        self.allowed_hosts = sorted(set(hosts))
        self.allow_any_host = bool(allow_any_host)
        self.serial_number = (serial_number or default_serial(nqn))[:SERIAL_MAX_LENGTH]
        self.model_number = (model_number or "SPDK bdev Controller")[:MODEL_MAX_LENGTH]


def choose_port(spec, current, subsystems):
    """The port to listen on: explicit, else kept, else the lowest free one in the range.

    A new listener never takes a port that another subsystem on this node listens
    on, and the lowest free port is taken so that the choice is deterministic. A
    listener that already exists is kept as it is: moving it would disconnect the
    engine using this export, only to fix a sharing SPDK itself allows.
    """
    existing = [lsn.port for lsn in (current.listeners if current else []) if lsn.address == spec.listen_address]
    taken = used_ports(subsystems, except_nqn=spec.nqn)
    if spec.port is not None:
        if spec.port in taken and spec.port not in existing:
            owners = sorted(n for n, s in subsystems.items() if n != spec.nqn and spec.port in s.ports())
            raise NvmfInputError(
                "port %d is already used by subsystem %s on this node; choose another port or leave "
                "port unset to take a free one from port_range" % (spec.port, ", ".join(owners))
            )
        return spec.port
    low, high = spec.port_range
    for port in existing:
        if low <= port <= high:
            return port
    for port in range(low, high + 1):
        if port not in taken:
            return port
    raise NvmfInputError(
        "no free port in port_range %d-%d: every port is used by another subsystem on this node; "
        "widen port_range or give an explicit port" % (low, high)
    )


# ------------------------------------------------------------------- plans


def _transport_exists_error(err):
    return "already exists" in (getattr(err, "message", None) or str(err))


def transport_step():
    return Step("nvmf_create_transport", {"trtype": TRTYPE}, "create the NVMe-oF TCP transport",
                tolerate=_transport_exists_error)


def needs_listener(spec, current, subsystems):
    """True when the plan adds a listener, i.e. when the transport must exist."""
    port = choose_port(spec, current, subsystems)
    wanted = Listener(spec.listen_address, port, adrfam=spec.adrfam)
    return current is None or wanted not in current.listeners


def plan_exposure(spec, current, subsystems, transport_exists=True):
    """Steps that make the node expose ``spec`` exactly; [] when it already does.

    ``current`` is the Subsystem with spec.nqn or None; ``subsystems`` all of the
    node's subsystems (for port allocation); ``transport_exists`` only matters
    when a listener is added (a listener cannot exist without the transport).
    Order: the subsystem, its namespace and its allow-list are right before it
    listens, and hosts that lose access lose it first.
    """
    port = choose_port(spec, current, subsystems)
    wanted = Listener(spec.listen_address, port, adrfam=spec.adrfam)
    nqn = spec.nqn
    steps = []
    if current is None:
        current = Subsystem(nqn)
        steps.append(Step("nvmf_create_subsystem", {
            "nqn": nqn, "allow_any_host": spec.allow_any_host,
            "serial_number": spec.serial_number, "model_number": spec.model_number,
        }, "create subsystem %s" % nqn))
    elif current.allow_any_host != spec.allow_any_host:
        steps.append(Step("nvmf_subsystem_allow_any_host", {"nqn": nqn, "allow_any_host": spec.allow_any_host},
                          "set allow_any_host to %s" % spec.allow_any_host))
    for host in sorted(set(current.hosts) - set(spec.allowed_hosts)):
        steps.append(Step("nvmf_subsystem_remove_host", {"nqn": nqn, "host": host},
                          "revoke host %s (not in allowed_hosts)" % host))
    steps.extend(_namespace_steps(spec, current))
    for host in spec.allowed_hosts:
        if host not in current.hosts:
            steps.append(Step("nvmf_subsystem_add_host", {"nqn": nqn, "host": host}, "allow host %s" % host))
    if wanted not in current.listeners:
        if not transport_exists:
            steps.insert(0, transport_step())
        steps.append(Step("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": wanted.to_spdk()},
                          "listen on %s:%d" % (wanted.address, wanted.port)))
    for listener in current.listeners:
        if listener != wanted:
            steps.append(Step("nvmf_subsystem_remove_listener", {"nqn": nqn, "listen_address": listener.to_spdk()},
                              "stop listening on %s:%d" % (listener.address, listener.port)))
    return steps


def _namespace_steps(spec, current):
    """Exactly one namespace, the wanted bdev; anything else is removed first."""
    steps = []
    present = False
    for ns in current.namespaces:
        if ns["bdev"] in (spec.bdev_uuid, spec.bdev) or ns.get("uuid") == spec.bdev_uuid:
            present = True
            continue
        steps.append(Step("nvmf_subsystem_remove_ns", {"nqn": spec.nqn, "nsid": ns["nsid"]},
                          "remove namespace %d (bdev %s is not the exposed bdev)" % (ns["nsid"], ns["bdev"])))
    if not present:
        steps.append(Step("nvmf_subsystem_add_ns", {"nqn": spec.nqn, "namespace": {"bdev_name": spec.bdev}},
                          "add bdev %s as namespace" % spec.bdev))
    return steps


def plan_unexpose(current):
    """Deleting the subsystem drops its namespace, listeners and hosts in one call."""
    if current is None:
        return []
    return [Step("nvmf_delete_subsystem", {"nqn": current.nqn}, "delete subsystem %s" % current.nqn)]


def expected_entry(spec, current, subsystems):
    """The ``nvmf_get_subsystems`` entry the subsystem will have once ``plan_exposure`` ran.

    Shaped like SPDK's own answer so that the read-side model turns it into the
    same view as a real read (check mode and diff show what a real run returns).
    """
    port = choose_port(spec, current, subsystems)
    return {
        "nqn": spec.nqn, "subtype": "NVMe",
        "listen_addresses": [Listener(spec.listen_address, port, adrfam=spec.adrfam).to_spdk()],
        "allow_any_host": spec.allow_any_host,
        "hosts": [{"nqn": host} for host in spec.allowed_hosts],
        "serial_number": current.serial_number if current and current.serial_number else spec.serial_number,
        "model_number": current.model_number if current and current.model_number else spec.model_number,
        "namespaces": [{"nsid": 1, "bdev_name": spec.bdev_uuid or spec.bdev, "uuid": spec.bdev_uuid}],
    }


# ---------------------------------------------------------------- reading


def transport_exists(client, trtype=TRTYPE):
    return any(t.get("trtype", "").upper() == trtype for t in (client.call("nvmf_get_transports") or []))


def plan_exposure_with_client(client, spec, subsystems):
    """``plan_exposure`` that asks for the transports only when a listener is added.

    A subsystem that already listens proves the transport exists, so the no-op
    path costs no ``nvmf_get_transports``.
    """
    current = subsystems.get(spec.nqn)
    exists = True
    if needs_listener(spec, current, subsystems):
        exists = transport_exists(client)
    return plan_exposure(spec, current, subsystems, transport_exists=exists)


# ------------------------------------------------------------ the other side


def attach_params(name, traddr, trsvcid, subnqn, hostnqn, adrfam=None, timeouts=None):
    """``bdev_nvme_attach_controller`` parameters of an NVMe-oF/TCP controller ``name`` to ``subnqn`` at
    ``traddr:trsvcid``, connecting as ``hostnqn``; ``timeouts`` adds the controller loss policy."""
    params = {"name": name, "trtype": "tcp", "adrfam": (adrfam or address_family(traddr)).lower(),
              "traddr": traddr, "trsvcid": str(trsvcid), "subnqn": subnqn, "hostnqn": hostnqn}
    params.update(timeouts or {})
    return params

"""NVMe-oF target: nvmf_* RPCs, TCP listeners, host allow-lists, DH-CHAP, ANA groups.

Wire protocol between emulator processes
========================================
Not NVMe/TCP PDUs but the same conversation, carried over one TCP connection per host
controller to the listener's ``traddr:trsvcid``. Every message is a frame::

    u32 json_length (big endian) | u32 payload_length | JSON object | payload bytes

A host request carries an integer ``tag``; the answer carries the same tag, so many commands can be
in flight on one connection and complete in any order. Frames without a ``tag`` are asynchronous
events from the target. Every answer has ``status: [sct, sc]`` (NVMe status code type and code,
``[0, 0]`` = success; see fabric.py for the codes used) and may have a ``reason`` text for logs.

1. ``{"op": "connect", "tag": 0, "subnqn", "hostnqn", "hostid"}`` — the subsystem must listen on
   the address connected to, and allow the host (``allow_any_host`` or the host list), otherwise
   ``CONNECT_INVALID_PARAMETERS`` / ``CONNECT_INVALID_HOST`` and the target closes the connection.
2. DH-HMAC-CHAP, when the host entry names a ``dhchap_key``: the target answers
   ``{"tag": 0, "auth": {"challenge": hex, "digest", "dhgroup"}}``; the host sends
   ``{"op": "auth_reply", "response": HMAC(host secret, challenge|hostnqn|subnqn),
   "ctrlr_challenge": hex|null}``. The target checks the response with the secret it reads from its
   own keyring file, and for a bidirectional exchange proves itself with
   ``ctrlr_response = HMAC(ctrlr secret, ctrlr_challenge|subnqn|hostnqn)``, which the host checks
   (``{"op": "auth_failure2"}`` and a close if wrong). Keys never travel.
3. A successful connect answers ``{"tag": 0, "status": [0, 0], "cntlid", "identify"}`` where
   ``identify`` = ``{"ctrlr": {model_number, serial_number, firmware_revision, subnqn,
   ana_reporting}, "namespaces": [{nsid, uuid, block_size, num_blocks, ana_state}]}`` as seen
   through this listener.
4. Commands: ``identify``; ``read {nsid, slba, nlb}`` (answer payload = data); ``write {nsid, slba}``
   + payload; ``write_zeroes``/``unmap {nsid, slba, nlb}``; ``flush {nsid}``; ``keep_alive``;
   ``reauth`` (starts step 2 again on the live connection, for bdev_nvme_set_keys). I/O to a
   namespace whose ANA group is not accessible on this listener fails with ``ANA_INACCESSIBLE``;
   a bdev I/O error answers ``INTERNAL_DEVICE_ERROR``.
5. Events: ``{"op": "aen", "event": "ns_changed" | "ana_changed", "identify"}`` after a namespace
   is added, removed or resized, or an ANA state changes; the identify data (as in step 3) comes
   along, so the host applies the change as soon as the event arrives.
6. The target closes the connection when the host is removed from the allow-list, the listener or
   the subsystem is deleted; the host then runs its reconnect policy (nvme.py).

``SPDK_EMU_NET=127.X`` moves every 127.0.0.N address to 127.X.0.N on the wire (fabric.wire_address),
so concurrent replays of recorded sessions do not fight over 127.0.0.1:4420.
"""
import asyncio
import json
import re

from . import fabric, keyring
from .bdev import BdevIOError, BdevClaimedError
from .errors import RpcError, errno_error, INVALID_PARAMS, INTERNAL_ERROR, EINVAL
from .params import decode, REQUIRED
from .rpc import rpc

DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"
POLL_GROUP = "nvmf_tgt_poll_group_000"
# A removed host's controller leaves the list at once, but its qpair is torn down through the poll
# group: the host still saw "enabled" 12 ms later (nvmf_hosts L20-L21), while a kill -9 is noticed
# within 6 ms (nvme_reconnect L23).
REMOVED_HOST_LINGER = 0.03

# The TCP transport's options as nvmf_get_transports lists them (nvmf_transport_dump_opts, with the
# TCP part c2h_success/sock_priority after zcopy), with their defaults.
TRANSPORT_DEFAULTS = {
    "max_queue_depth": 128, "max_io_qpairs_per_ctrlr": 127, "in_capsule_data_size": 4096,
    "max_io_size": 131072, "max_aq_depth": 128, "iobuf_small_cache_size": 4294967295,
    "iobuf_large_cache_size": 4294967295, "dif_insert_or_strip": False, "zcopy": False,
    "c2h_success": True, "sock_priority": 0, "abort_timeout_sec": 1, "ack_timeout": 0,
    "data_wr_pool_size": 0, "disable_command_passthru": False, "kas": 100, "min_kato": 10000,
}
# rpc_nvmf_create_transport_decoders (decoded relaxed: rpc.py also sends the RDMA and vfio-user
# options, no_srq, no_wr_batching, disable_mappable_bar0, ..., which the TCP transport ignores)
TRANSPORT_FIELDS = {
    "trtype": ("str", REQUIRED), "max_queue_depth": ("uint16", None), "max_io_qpairs_per_ctrlr": ("uint16", None),
    "in_capsule_data_size": ("uint32", None), "max_io_size": ("uint32", None), "io_unit_size": ("uint32", None),
    "max_aq_depth": ("uint32", None), "num_shared_buffers": ("uint32", None), "buf_cache_size": ("uint32", None),
    "iobuf_small_cache_size": ("uint32", None), "iobuf_large_cache_size": ("uint32", None),
    "dif_insert_or_strip": ("bool", None), "abort_timeout_sec": ("uint32", None), "zcopy": ("bool", None),
    "tgt_name": ("str", None), "acceptor_poll_rate": ("uint32", None), "ack_timeout": ("uint32", None),
    "data_wr_pool_size": ("uint32", None), "disable_command_passthru": ("bool", None), "kas": ("uint16", None),
    "min_kato": ("uint32", None), "masked_oncs": ("list", None), "masked_fuses": ("list", None),
}
# tcp_transport_opts_decoder (lib/nvmf/tcp.c), also relaxed, applied when the transport is created
TCP_TRANSPORT_FIELDS = {"c2h_success": ("bool", None), "control_msg_num": ("uint16", None),
                        "sock_priority": ("uint32", None)}
TCP_MAX_SOCK_PRIORITY = 16
KAS_TIME_UNIT_MS = 100


def invalid_parameters():
    return RpcError(INVALID_PARAMS, "Invalid parameters")


def internal_error(message="Internal error"):
    return RpcError(INTERNAL_ERROR, message)


# ---- NQN rules (lib/nvmf/subsystem.c nvmf_valid_nqn) ------------------------------------------------

_UUID_NQN = re.compile(r"^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
                       r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATED_NQN = re.compile(r"^nqn\.\d{4}-(0[1-9]|1[0-2])\.([^:]+)(:.*)?$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$")


def valid_nqn(nqn):
    if not isinstance(nqn, str) or len(nqn.encode()) > 223:
        return False
    if nqn.startswith("nqn.2014-08.org.nvmexpress:uuid:"):
        return bool(_UUID_NQN.match(nqn))
    if nqn == DISCOVERY_NQN:
        return True
    match = _DATED_NQN.match(nqn)
    if not match:
        return False
    return all(_DOMAIN_LABEL.match(label) for label in match.group(2).split("."))


# ---- keys ---------------------------------------------------------------------------------------

def key_secret(key):
    """Secret bytes of a held keyring key, or raise ValueError with the reason SPDK would log."""
    if key is None or key.removed:
        raise ValueError("Required key not available")
    try:
        return fabric.parse_dhchap_key(key.read())
    except OSError as exc:
        raise ValueError("Failed to load key=%s: %s" % (key.name, exc.strerror)) from exc


# ---- model ----------------------------------------------------------------------------------------

class ListenAddress:
    def __init__(self, trtype, adrfam, traddr, trsvcid, groups, ana_state="optimized"):
        self.trtype = trtype
        self.adrfam = adrfam
        self.traddr = traddr
        self.trsvcid = trsvcid
        self.ana_states = {group: ana_state for group in range(1, groups + 1)}
        self.secure_channel = False
        self.sock_impl = None

    @property
    def key(self):
        return (self.traddr, self.trsvcid)

    def to_json(self):
        return {"trtype": self.trtype, "adrfam": self.adrfam, "traddr": self.traddr, "trsvcid": self.trsvcid}

    def ana_state(self, group):
        return self.ana_states.get(group, "inaccessible")


class Host:
    """An allowed host; it holds its keyring keys (so a removed key stays, marked removed)."""

    def __init__(self, nqn, psk=None):
        self.nqn = nqn
        self.psk = psk
        self.dhchap_key = None          # keyring.Key objects
        self.dhchap_ctrlr_key = None

    def set_keys(self, dhchap_key, dhchap_ctrlr_key):
        for old in (self.dhchap_key, self.dhchap_ctrlr_key):
            if old is not None:
                old.put()
        self.dhchap_key = dhchap_key.get() if dhchap_key is not None else None
        self.dhchap_ctrlr_key = dhchap_ctrlr_key.get() if dhchap_ctrlr_key is not None else None

    def release(self):
        self.set_keys(None, None)

    def to_json(self):
        out = {"nqn": self.nqn}
        if self.psk:
            out["psk"] = self.psk
        if self.dhchap_key is not None:
            out["dhchap_key"] = self.dhchap_key.name
        if self.dhchap_ctrlr_key is not None:
            out["dhchap_ctrlr_key"] = self.dhchap_ctrlr_key.name
        return out


class Namespace:
    """One namespace: the bdev it exports, its ANA group, in-flight I/O and the pause gate."""

    def __init__(self, nsid, bdev, uuid, nguid, anagrpid):
        self.nsid = nsid
        self.bdev = bdev
        self.uuid = uuid
        self.nguid = nguid
        self.anagrpid = anagrpid
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.running = asyncio.Event()      # cleared while the namespace is paused
        self.running.set()

    def to_json(self, ana_reporting):
        out = {"nsid": self.nsid, "bdev_name": self.bdev.name, "name": self.bdev.name,
               "nguid": self.nguid, "uuid": self.uuid}
        if ana_reporting:
            out["anagrpid"] = self.anagrpid
        return out

    async def pause(self):
        """Hold new I/O and wait for what is in flight (spdk_nvmf_subsystem_pause with an nsid)."""
        self.running.clear()
        await self.idle.wait()

    def resume(self):
        self.running.set()


class Subsystem:
    def __init__(self, nqn, subtype="NVMe", serial_number="00000000000000000000",
                 model_number="SPDK bdev Controller", allow_any_host=False, ana_reporting=False,
                 max_namespaces=32, min_cntlid=1, max_cntlid=65519):
        self.nqn = nqn
        self.subtype = subtype
        self.serial_number = serial_number
        self.model_number = model_number
        self.allow_any_host = allow_any_host
        self.ana_reporting = ana_reporting
        self.max_namespaces = max_namespaces
        self.min_cntlid = min_cntlid
        self.max_cntlid = max_cntlid
        self.listeners = []        # newest first, as SPDK lists them
        self.hosts = []
        self.namespaces = {}       # nsid -> Namespace
        self.sessions = []         # connected Session objects
        self._next_cntlid = min_cntlid
        self.dmrsl = 2097152
        self.wzsl = 12
        self.passthrough = False
        self.enable_nssr = False

    @property
    def ana_groups(self):
        return self.max_namespaces

    def allocate_cntlid(self):
        cntlid = self._next_cntlid
        self._next_cntlid = cntlid + 1 if cntlid < self.max_cntlid else self.min_cntlid
        return cntlid

    def find_listener(self, traddr, trsvcid):
        for listener in self.listeners:
            if listener.key == (traddr, trsvcid):
                return listener
        return None

    def find_host(self, nqn):
        for host in self.hosts:
            if host.nqn == nqn:
                return host
        return None

    def host_allowed(self, hostnqn):
        return self.allow_any_host or self.find_host(hostnqn) is not None

    def free_nsid(self):
        for nsid in range(1, self.max_namespaces + 1):
            if nsid not in self.namespaces:
                return nsid
        return None

    def notify(self, event):
        for session in list(self.sessions):
            session.send_event(event)

    def to_json(self):
        out = {"nqn": self.nqn, "subtype": self.subtype,
               "listen_addresses": [listener.to_json() for listener in self.listeners],
               "allow_any_host": self.allow_any_host,
               "hosts": [host.to_json() for host in self.hosts]}
        if self.subtype == "Discovery":
            return out
        out.update({
            "serial_number": self.serial_number, "model_number": self.model_number,
            "max_namespaces": self.max_namespaces, "passthrough": self.passthrough,
            "min_cntlid": self.min_cntlid, "max_cntlid": self.max_cntlid,
            "dmrsl": self.dmrsl, "wzsl": self.wzsl,
            "namespaces": [ns.to_json(self.ana_reporting) for _nsid, ns in sorted(self.namespaces.items())],
        })
        return out


class NvmfState:
    def __init__(self, target):
        self.target = target
        self.transports = {}            # "TCP" -> options dict
        self.subsystems = {DISCOVERY_NQN: Subsystem(DISCOVERY_NQN, subtype="Discovery", allow_any_host=True)}
        self.ports = {}                 # (traddr, trsvcid) -> TcpPort
        self.stalled_until = 0.0        # emu_node_stall: loop time until which nothing is answered

    def find(self, nqn):
        subsystem = self.subsystems.get(nqn)
        if subsystem is None or subsystem.subtype == "Discovery":
            return None
        return subsystem

    def get(self, nqn):
        subsystem = self.find(nqn)
        if subsystem is None:
            raise invalid_parameters()
        return subsystem

    async def unstalled(self):
        loop = asyncio.get_running_loop()
        while loop.time() < self.stalled_until:
            await asyncio.sleep(self.stalled_until - loop.time())


def nvmf_state(target):
    return target.module_state("nvmf", lambda: NvmfState(target))


# ---- TCP ports and sessions -----------------------------------------------------------------------

class TcpPort:
    """One listening socket, shared by every subsystem that listens on this address and port."""

    def __init__(self, state, traddr, trsvcid):
        self.state = state
        self.traddr = traddr
        self.trsvcid = trsvcid
        self.subsystems = set()
        self.sessions = set()
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._accept, fabric.wire_address(self.traddr), int(self.trsvcid))

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for session in list(self.sessions):
            session.disconnect()

    async def _accept(self, reader, writer):
        session = Session(self.state, self, reader, writer)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)


class Session:
    """The target end of one host connection (a controller with its queue pair)."""

    def __init__(self, state, port, reader, writer):
        self.state = state
        self.target = state.target
        self.port = port
        self.reader = reader
        self.writer = writer
        self.subsystem = None
        self.listener = None
        self.hostnqn = None
        self.hostid = None
        self.cntlid = None
        self.phase = "connecting"        # -> authenticating -> enabled
        self.auth = None                 # {"state", "digest", "dhgroup"} once authenticated
        self.oncs = None                 # identify's ONCS bits, taken at the first identify
        self._challenge = None
        self._host_key = None
        self._ctrlr_key = None
        self._ctrlr_response = None
        self._tasks = set()
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer = (peer[0], str(peer[1]))

    # -- connection --
    async def run(self):
        try:
            message, _payload = await fabric.read_frame(self.reader)
            await self.state.unstalled()
            if message.get("op") != "connect" or not await self._connect(message):
                return
            while True:
                message, payload = await fabric.read_frame(self.reader)
                await self.state.unstalled()
                task = asyncio.get_running_loop().create_task(self._handle(message, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError, fabric.ProtocolError, OSError):
            pass
        finally:
            self.disconnect()

    def disconnect(self, linger=0.0):
        """Forget the controller now; close the socket after ``linger`` seconds (see remove_host)."""
        if self.subsystem is not None and self in self.subsystem.sessions:
            self.subsystem.sessions.remove(self)
        self.phase = "closed"
        if linger:
            asyncio.get_running_loop().call_later(linger, self.writer.close)
        else:
            self.writer.close()

    def send(self, message, payload=b""):
        if self.phase != "closed":
            self.writer.write(fabric.encode_frame(message, payload))

    def reply(self, tag, status, payload=b"", **extra):
        message = {"tag": tag, "status": list(status)}
        message.update(extra)
        self.send(message, payload)

    def send_event(self, event):
        """An asynchronous event; it carries the new identify data so the host needs no round trip."""
        if self.phase == "enabled":
            self.send({"op": "aen", "event": event, "identify": self.identify()})

    # -- connect and authentication --
    async def _connect(self, message):
        subsystem = self.state.find(message.get("subnqn"))
        if subsystem is None or subsystem not in self.port.subsystems:
            self.reply(0, fabric.CONNECT_INVALID_PARAMETERS, reason="unknown subsystem")
            return False
        hostnqn = message.get("hostnqn", "")
        if not subsystem.host_allowed(hostnqn):
            self.reply(0, fabric.CONNECT_INVALID_HOST,
                       reason="Subsystem %s does not allow host %s" % (subsystem.nqn, hostnqn))
            return False
        self.subsystem = subsystem
        self.listener = subsystem.find_listener(self.port.traddr, self.port.trsvcid)
        self.hostnqn = hostnqn
        self.hostid = message.get("hostid", "")
        self.cntlid = subsystem.allocate_cntlid()
        subsystem.sessions.append(self)
        host = subsystem.find_host(hostnqn)
        if host is not None and host.dhchap_key:
            if not await self._authenticate_at_connect(host):
                return False
        self.phase = "enabled"
        self.reply(0, fabric.SUCCESS, cntlid=self.cntlid, identify=self.identify(),
                   ctrlr_response=self._pending_ctrlr_response())
        return True

    def _pending_ctrlr_response(self):
        response, self._ctrlr_response = self._ctrlr_response, None
        return response

    async def _authenticate_at_connect(self, host):
        self.phase = "authenticating"
        self.send({"tag": 0, "auth": self.start_challenge(host)})
        message, _payload = await fabric.read_frame(self.reader)
        await self.state.unstalled()
        ok, reason = self.check_auth_reply(message)
        if not ok:
            # AUTH_failure1: the qpair stays "authenticating" until the host hangs up (dhchap L51)
            self.reply(0, fabric.AUTH_FAILED, reason=reason)
            await self._wait_for_hangup()
            return False
        return True

    async def _wait_for_hangup(self, limit=5.0):
        try:
            await asyncio.wait_for(self.reader.read(), limit)
        except asyncio.TimeoutError:
            pass

    def start_challenge(self, host):
        self._challenge = fabric.new_challenge()
        self._host_key = host.dhchap_key
        self._ctrlr_key = host.dhchap_ctrlr_key
        self.auth = {"state": "challenge", "digest": fabric.AUTH_DIGEST, "dhgroup": fabric.AUTH_DHGROUP}
        return {"challenge": self._challenge, "digest": fabric.AUTH_DIGEST, "dhgroup": fabric.AUTH_DHGROUP}

    def check_auth_reply(self, message):
        """Verify the host's proof; prepare our own if asked. Returns (ok, reason)."""
        self._ctrlr_response = None
        if message.get("op") != "auth_reply":
            self.auth["state"] = "failure1"
            return False, "unexpected message during authentication"
        try:
            host_secret = key_secret(self._host_key)
        except ValueError as exc:
            self.auth["state"] = "failure1"
            return False, "failed to calculate challenge response: %s" % exc
        if not fabric.proof_matches(host_secret, self._challenge, message.get("response"),
                                    self.hostnqn, self.subsystem.nqn):
            self.auth["state"] = "failure1"
            return False, "challenge response mismatch"
        ctrlr_challenge = message.get("ctrlr_challenge")
        if ctrlr_challenge:
            if self._ctrlr_key is None:
                self.auth["state"] = "failure1"
                return False, "bidirectional authentication requested but no controller key"
            try:
                ctrlr_secret = key_secret(self._ctrlr_key)
            except ValueError as exc:
                self.auth["state"] = "failure1"
                return False, str(exc)
            self._ctrlr_response = fabric.dhchap_response(ctrlr_secret, ctrlr_challenge,
                                                          self.subsystem.nqn, self.hostnqn)
        self.auth["state"] = "completed"
        return True, ""

    # -- commands --
    def identify(self):
        subsystem = self.subsystem
        namespaces = []
        for nsid, ns in sorted(subsystem.namespaces.items()):
            namespaces.append({"nsid": nsid, "uuid": ns.uuid, "block_size": ns.bdev.block_size,
                               "num_blocks": ns.bdev.num_blocks, "ana_state": self.ana_state(ns)})
        if self.oncs is None:
            # the controller's ONCS, fixed when the controller is set up: Dataset Management and
            # Write Zeroes only when every namespace's bdev takes UNMAP / WRITE_ZEROES (ctrlr_bdev.c)
            types = [ns.bdev.io_types() for ns in subsystem.namespaces.values()]
            self.oncs = {"dsm": all(t.get("unmap") for t in types),
                         "write_zeroes": all(t.get("write_zeroes") for t in types)}
        return {"ctrlr": {"model_number": subsystem.model_number, "serial_number": subsystem.serial_number,
                          "firmware_revision": "26.05", "subnqn": subsystem.nqn,
                          "ana_reporting": subsystem.ana_reporting, "oncs": dict(self.oncs)},
                "namespaces": namespaces}

    def ana_state(self, ns):
        if not self.subsystem.ana_reporting or self.listener is None:
            return "optimized"
        return self.listener.ana_state(ns.anagrpid)

    async def _handle(self, message, payload):
        tag = message.get("tag")
        op = message.get("op")
        if op == "keep_alive":
            self.reply(tag, fabric.SUCCESS)
        elif op == "identify":
            self.reply(tag, fabric.SUCCESS, identify=self.identify())
        elif op == "reauth":
            self._reauth(tag)
        elif op == "auth_reply":
            self._reauth_reply(tag, message)
        elif op in IO_OPS:
            await self._io(tag, op, message, payload)
        else:
            self.reply(tag, fabric.INVALID_FIELD, reason="unknown op %r" % (op,))

    def _reauth(self, tag):
        host = self.subsystem.find_host(self.hostnqn)
        if host is None or not host.dhchap_key:
            self.reply(tag, fabric.SUCCESS)
            return
        self.phase = "authenticating"
        self.send({"tag": tag, "auth": self.start_challenge(host)})

    def _reauth_reply(self, tag, message):
        ok, reason = self.check_auth_reply(message)
        if not ok:
            self.reply(tag, fabric.AUTH_FAILED, reason=reason)
            self.disconnect()
            return
        self.phase = "enabled"
        self.reply(tag, fabric.SUCCESS, ctrlr_response=self._pending_ctrlr_response())

    async def _io(self, tag, op, message, payload):
        ns = self.subsystem.namespaces.get(message.get("nsid"))
        if ns is None:
            self.reply(tag, fabric.INVALID_NAMESPACE)
            return
        await ns.running.wait()
        if ns.nsid not in self.subsystem.namespaces:
            self.reply(tag, fabric.INVALID_NAMESPACE)
            return
        if self.ana_state(ns) not in fabric.ACCESSIBLE_ANA_STATES:
            self.reply(tag, fabric.ANA_INACCESSIBLE)
            return
        ns.inflight += 1
        ns.idle.clear()
        try:
            status, data = await IO_OPS[op](ns.bdev, message, payload)
        except BdevIOError as exc:
            self.reply(tag, fabric.INTERNAL_DEVICE_ERROR, reason=exc.reason)
            return
        finally:
            ns.inflight -= 1
            if ns.inflight == 0:
                ns.idle.set()
        self.reply(tag, status, data)

    def qpair_json(self):
        out = {"cntlid": self.cntlid, "qid": 0,
               "state": "enabled" if self.phase == "enabled" else self.phase,
               "thread": POLL_GROUP, "hostnqn": self.hostnqn,
               "listen_address": self.listener.to_json() if self.listener else {},
               "peer_address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": self.peer[0],
                                "trsvcid": self.peer[1]}}
        if self.auth is not None:
            out["auth"] = dict(self.auth)
        return out


def _in_range(bdev, slba, nlb):
    return isinstance(slba, int) and isinstance(nlb, int) and slba >= 0 and nlb >= 0 \
        and slba + nlb <= bdev.num_blocks


async def _io_read(bdev, message, payload):
    slba, nlb = message.get("slba"), message.get("nlb")
    if not _in_range(bdev, slba, nlb):
        return fabric.LBA_OUT_OF_RANGE, b""
    return fabric.SUCCESS, await bdev.read(slba, nlb)


async def _io_write(bdev, message, payload):
    slba = message.get("slba")
    if len(payload) % bdev.block_size or not _in_range(bdev, slba, len(payload) // bdev.block_size):
        return fabric.LBA_OUT_OF_RANGE, b""
    await bdev.write(slba, payload)
    return fabric.SUCCESS, b""


async def _io_write_zeroes(bdev, message, payload):
    slba, nlb = message.get("slba"), message.get("nlb")
    if not _in_range(bdev, slba, nlb):
        return fabric.LBA_OUT_OF_RANGE, b""
    await bdev.write_zeroes(slba, nlb)
    return fabric.SUCCESS, b""


async def _io_unmap(bdev, message, payload):
    slba, nlb = message.get("slba"), message.get("nlb")
    if not _in_range(bdev, slba, nlb):
        return fabric.LBA_OUT_OF_RANGE, b""
    await bdev.unmap(slba, nlb)
    return fabric.SUCCESS, b""


async def _io_flush(bdev, message, payload):
    await bdev.flush()
    return fabric.SUCCESS, b""


IO_OPS = {"read": _io_read, "write": _io_write, "write_zeroes": _io_write_zeroes,
          "unmap": _io_unmap, "flush": _io_flush}


# ---- transports -----------------------------------------------------------------------------------

@rpc("nvmf_create_transport")
def nvmf_create_transport(target, params):
    """rpc_nvmf_create_transport: relaxed decode (-32602 "Invalid parameters"), a transport type
    this target has (only TCP), one transport per type (the message quotes trtype as sent), then
    the generic checks of nvmf_transport_create ("create failed") and the TCP ones ("Failed to
    create transport.")."""
    p = decode(params, TRANSPORT_FIELDS, error=invalid_parameters(), relaxed=True)
    trtype = p.trtype.upper()
    if trtype != "TCP":
        raise RpcError(INVALID_PARAMS, "Invalid transport type '%s'" % p.trtype)
    state = nvmf_state(target)
    if trtype in state.transports:
        raise internal_error("Transport type '%s' already exists" % p.trtype)
    options = {"trtype": trtype}
    for key, default in TRANSPORT_DEFAULTS.items():
        options[key] = p[key] if key in p and p[key] is not None else default
    io_size = options["max_io_size"]
    if (io_size != 0 and (io_size & (io_size - 1) or io_size < 8192)) or options["kas"] == 0 \
            or options["min_kato"] == 0:
        raise internal_error("Transport type '%s' create failed" % p.trtype)
    kas_ms = options["kas"] * KAS_TIME_UNIT_MS
    options["min_kato"] = -(-options["min_kato"] // kas_ms) * kas_ms
    try:
        tcp = decode(params, TCP_TRANSPORT_FIELDS, relaxed=True)
    except RpcError:
        raise internal_error("Failed to create transport.")
    for key in ("c2h_success", "sock_priority"):
        if tcp[key] is not None:
            options[key] = tcp[key]
    if options["sock_priority"] > TCP_MAX_SOCK_PRIORITY:
        raise internal_error("Failed to create transport.")
    state.transports[trtype] = options
    return True


@rpc("nvmf_get_transports", mutating=False)
def nvmf_get_transports(target, params):
    p = decode(params, {"trtype": ("str", None), "tgt_name": ("str", None)}, error=invalid_parameters())
    transports = list(nvmf_state(target).transports.values())
    if p.trtype is not None:
        transports = [t for t in transports if t["trtype"] == p.trtype.upper()]
        if not transports:
            raise RpcError(-19, "No such device")
    return [dict(t) for t in transports]


# ---- subsystems -----------------------------------------------------------------------------------

def _ascii_text(limit):
    """decode_subsystem_serial_number / model_number: at most ``limit`` printable ASCII characters."""
    return lambda v: isinstance(v, str) and len(v.encode()) <= limit and all(0x20 <= ord(c) <= 0x7E for c in v)


KINDS_SN = _ascii_text(20)
KINDS_MN = _ascii_text(40)

# rpc_nvmf_create_subsystem_decoders
SUBSYSTEM_FIELDS = {
    "nqn": ("str", REQUIRED), "serial_number": (KINDS_SN, None), "model_number": (KINDS_MN, None),
    "allow_any_host": ("bool", False), "ana_reporting": ("bool", False), "max_namespaces": ("uint32", 32),
    "min_cntlid": ("uint16", 1), "max_cntlid": ("uint16", 65519), "tgt_name": ("str", None),
    "max_discard_size_kib": ("uint64", None), "max_write_zeroes_size_kib": ("uint64", None),
    "dmrsl": ("uint32", 2097152), "wzsl": ("uint8", 12),
    "passthrough": ("bool", False), "enable_nssr": ("bool", False),
}


@rpc("nvmf_create_subsystem")
def nvmf_create_subsystem(target, params):
    """rpc_nvmf_create_subsystem: a bad serial or model number fails the decode (-32602); a NQN in
    use or not valid cannot be created (-32603); the cntlid range is checked after creation."""
    p = decode(params, SUBSYSTEM_FIELDS, error=invalid_parameters())
    state = nvmf_state(target)
    dmrsl, wzsl = p.dmrsl, p.wzsl
    if p.max_discard_size_kib is not None:
        dmrsl = (p.max_discard_size_kib << 1) & 0xFFFFFFFF
    kib = p.max_write_zeroes_size_kib
    if kib is not None:
        if kib == 0:
            wzsl = 0
        elif kib >= 8 and kib & (kib - 1) == 0:
            wzsl = (kib >> 2).bit_length() - 1
        else:
            raise RpcError(INVALID_PARAMS, "Invalid max_write_zeroes_size_kib %d" % kib)
    if p.nqn in state.subsystems or not valid_nqn(p.nqn):
        raise internal_error("Unable to create subsystem %s" % p.nqn)
    if not (1 <= p.min_cntlid <= p.max_cntlid <= 65519):
        raise RpcError(INVALID_PARAMS, "Invalid cntlid range [%d-%d]" % (p.min_cntlid, p.max_cntlid))
    subsystem = Subsystem(p.nqn, allow_any_host=p.allow_any_host, ana_reporting=p.ana_reporting,
                          max_namespaces=p.max_namespaces or 32, min_cntlid=p.min_cntlid, max_cntlid=p.max_cntlid)
    if p.serial_number is not None:
        subsystem.serial_number = p.serial_number
    if p.model_number is not None:
        subsystem.model_number = p.model_number
    subsystem.dmrsl, subsystem.wzsl = dmrsl, wzsl
    subsystem.passthrough, subsystem.enable_nssr = p.passthrough, p.enable_nssr
    state.subsystems[p.nqn] = subsystem
    return True


@rpc("nvmf_delete_subsystem")
def nvmf_delete_subsystem(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "tgt_name": ("str", None)}, error=invalid_parameters())
    state = nvmf_state(target)
    subsystem = state.get(p.nqn)
    for session in list(subsystem.sessions):
        session.disconnect()
    for listener in list(subsystem.listeners):
        _unlisten(state, subsystem, listener)
    for nsid in list(subsystem.namespaces):
        _detach_namespace(subsystem, nsid)
    for host in subsystem.hosts:
        host.release()
    del state.subsystems[p.nqn]
    return True


@rpc("nvmf_get_subsystems", mutating=False)
def nvmf_get_subsystems(target, params):
    p = decode(params, {"nqn": ("str", None), "tgt_name": ("str", None)}, error=invalid_parameters())
    state = nvmf_state(target)
    if p.nqn is not None:
        subsystem = state.subsystems.get(p.nqn)
        if subsystem is None:
            raise RpcError(-19, "No such device")
        return [subsystem.to_json()]
    # SPDK keeps subsystems in a tree keyed by NQN (introspection L72), so the listing is sorted
    return [state.subsystems[nqn].to_json() for nqn in sorted(state.subsystems, key=str.encode)]


# ---- namespaces -----------------------------------------------------------------------------------

# rpc_nvmf_namespace_decoders (strict, inside the relaxed add_ns decode)
NAMESPACE_FIELDS = {
    "bdev_name": ("str", REQUIRED), "nsid": ("uint32", 0), "nguid": ("str", None), "eui64": ("str", None),
    "uuid": ("uuid", None), "anagrpid": ("uint32", 0), "ptpl_file": ("str", None),
    "no_auto_visible": ("bool", False), "hide_metadata": ("bool", False),
}


@rpc("nvmf_subsystem_add_ns")
def nvmf_subsystem_add_ns(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "namespace": ("dict", REQUIRED), "tgt_name": ("str", None)},
               error=invalid_parameters(), relaxed=True)
    ns_params = decode(p.namespace, NAMESPACE_FIELDS, error=invalid_parameters())
    state = nvmf_state(target)
    subsystem = state.get(p.nqn)
    bdev = target.bdevs.find(ns_params.bdev_name)
    if bdev is None:
        raise invalid_parameters()
    nsid = ns_params.nsid or subsystem.free_nsid()
    if nsid is None or nsid > subsystem.max_namespaces or nsid in subsystem.namespaces:
        raise invalid_parameters()
    anagrpid = ns_params.anagrpid or nsid
    if anagrpid > subsystem.ana_groups:
        raise invalid_parameters()
    try:
        target.bdevs.claim(bdev, "nvmf", "exclusive_write", owner=subsystem)
    except BdevClaimedError:
        raise invalid_parameters()
    uuid = ns_params.uuid or bdev.uuid
    # spdk_nvmf_subsystem_add_ns_ext: without a nguid, the bdev's UUID (not the namespace's)
    nguid = ns_params.nguid or bdev.uuid.replace("-", "").upper()
    ns = Namespace(nsid, bdev, uuid, nguid, anagrpid)
    ns.on_remove = lambda _bdev, nqn=subsystem.nqn, nsid=nsid: _hot_removed(state, nqn, nsid)
    ns.on_resize = lambda _bdev: subsystem.notify("ns_changed")
    bdev.on_remove(ns.on_remove)
    bdev.on_resize(ns.on_resize)
    subsystem.namespaces[nsid] = ns
    subsystem.notify("ns_changed")
    return nsid


def _hot_removed(state, nqn, nsid):
    """The namespace's bdev went away (lvol deleted, NVMe bdev hot removed): drop the namespace."""
    subsystem = state.subsystems.get(nqn)
    if subsystem is not None and nsid in subsystem.namespaces:
        ns = subsystem.namespaces.pop(nsid)
        ns.bdev.forget_resize(ns.on_resize)
        ns.resume()
        subsystem.notify("ns_changed")


def _detach_namespace(subsystem, nsid):
    ns = subsystem.namespaces.pop(nsid)
    ns.bdev.forget_remove(ns.on_remove)
    ns.bdev.forget_resize(ns.on_resize)
    if ns.bdev.claim is not None and ns.bdev.claim.owner is subsystem:
        ns.bdev.registry.release(ns.bdev)
    ns.resume()
    return ns


@rpc("nvmf_subsystem_remove_ns")
def nvmf_subsystem_remove_ns(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "nsid": ("uint32", REQUIRED), "tgt_name": ("str", None)},
               error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    if p.nsid not in subsystem.namespaces:
        raise invalid_parameters()
    _detach_namespace(subsystem, p.nsid)
    subsystem.notify("ns_changed")
    return True


@rpc("nvmf_subsystem_set_ns_ana_group")
async def nvmf_subsystem_set_ns_ana_group(target, params):
    """Move a namespace to another ANA group; like SPDK it pauses the namespace, so in-flight I/O
    drains before the answer (ana in tests/emulator/README.md)."""
    p = decode(params, {"nqn": ("str", REQUIRED), "nsid": ("uint32", REQUIRED), "anagrpid": ("uint32", REQUIRED),
                        "tgt_name": ("str", None)}, error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    ns = subsystem.namespaces.get(p.nsid)
    if ns is None or not 1 <= p.anagrpid <= subsystem.ana_groups:
        raise invalid_parameters()
    await ns.pause()
    ns.anagrpid = p.anagrpid
    ns.resume()
    subsystem.notify("ana_changed")
    return True


# ---- listeners ------------------------------------------------------------------------------------

# rpc_decode_nvmf_listen_address: a strict decode of the generated nvmf_listen_address object
LISTEN_ADDRESS_FIELDS = {"trtype": ("str", REQUIRED), "adrfam": ("str", None), "traddr": ("str", REQUIRED),
                         "trsvcid": ("str", None)}
ADRFAMS = {"ipv4": "IPv4", "ipv6": "IPv6", "ib": "IB", "fc": "FC"}
ANA_STATE_NAMES = ("optimized", "non_optimized", "inaccessible")     # rpc_decode_nvme_ana_state


def _listen_address(value):
    """A decoder predicate for a ``listen_address`` member (it fails the whole decode)."""
    try:
        decode(value, LISTEN_ADDRESS_FIELDS)
    except RpcError:
        return False
    return True


def _ana_state(value):
    return value in ANA_STATE_NAMES


def listen_trid(value):
    """rpc_listen_address_to_trid; None when SPDK refuses it (-32602 "Invalid parameters")."""
    address = decode(value, LISTEN_ADDRESS_FIELDS)
    adrfam = ADRFAMS.get((address.adrfam or "IPv4").lower())
    if adrfam is None or len(address.traddr) > 256 or (address.trsvcid and len(address.trsvcid) > 32):
        return None
    return address.trtype.upper(), adrfam, address.traddr, address.trsvcid or ""


def decode_listen_address(value):
    trid = listen_trid(value)
    if trid is None or trid[0] != "TCP" or not trid[3]:
        raise invalid_parameters()
    return trid


@rpc("nvmf_subsystem_add_listener")
async def nvmf_subsystem_add_listener(target, params):
    """rpc_nvmf_subsystem_add_listener: relaxed decode (rpc.py sends secure_channel, and transport
    options the target ignores); then the subsystem, the address, secure_channel against
    allow_any_host, and, with the subsystem paused, an existing listener or a failed listen."""
    p = decode(params, {"nqn": ("str", REQUIRED), "listen_address": (_listen_address, REQUIRED),
                        "tgt_name": ("str", None), "secure_channel": ("bool", False), "sock_impl": ("str", None),
                        "ana_state": (_ana_state, None)}, error=invalid_parameters(), relaxed=True)
    state = nvmf_state(target)
    subsystem = state.get(p.nqn)
    trid = listen_trid(p.listen_address)
    if trid is None:
        raise invalid_parameters()
    trtype, adrfam, traddr, trsvcid = trid
    if subsystem.allow_any_host and p.secure_channel:
        raise internal_error("Cannot establish secure channel, when 'allow_any_host' is set")
    if subsystem.find_listener(traddr, trsvcid) is not None:
        raise invalid_parameters()
    if trtype not in state.transports or not trsvcid:
        raise invalid_parameters()
    port = state.ports.get((traddr, trsvcid))
    if port is None:
        port = TcpPort(state, traddr, trsvcid)
        try:
            await port.start()
        except (OSError, ValueError):
            raise invalid_parameters()
        state.ports[(traddr, trsvcid)] = port
    listener = ListenAddress(trtype, adrfam, traddr, trsvcid, subsystem.ana_groups, p.ana_state or "optimized")
    listener.secure_channel = p.secure_channel
    listener.sock_impl = p.sock_impl
    subsystem.listeners.insert(0, listener)
    port.subsystems.add(subsystem)
    return True


def _unlisten(state, subsystem, listener):
    """Remove a listener: its connections to this subsystem drop; the socket closes when unused."""
    subsystem.listeners.remove(listener)
    port = state.ports.get(listener.key)
    if port is None:
        return
    port.subsystems.discard(subsystem)
    for session in list(subsystem.sessions):
        if session.port is port:
            session.disconnect()
    if not port.subsystems:
        port.close()
        del state.ports[listener.key]


@rpc("nvmf_subsystem_remove_listener")
def nvmf_subsystem_remove_listener(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "listen_address": (_listen_address, REQUIRED),
                        "tgt_name": ("str", None)}, error=invalid_parameters())
    state = nvmf_state(target)
    subsystem = state.get(p.nqn)
    trid = listen_trid(p.listen_address)
    listener = subsystem.find_listener(trid[2], trid[3]) if trid is not None else None
    if listener is None:
        raise invalid_parameters()
    _unlisten(state, subsystem, listener)
    return True


@rpc("nvmf_subsystem_get_listeners", mutating=False)
def nvmf_subsystem_get_listeners(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "tgt_name": ("str", None)}, error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    out = []
    for listener in subsystem.listeners:
        entry = {"address": listener.to_json()}
        if subsystem.ana_reporting:
            entry["ana_states"] = [{"ana_group": group, "ana_state": listener.ana_states[group]}
                                   for group in sorted(listener.ana_states)]
        out.append(entry)
    return out


@rpc("nvmf_subsystem_listener_set_ana_state")
def nvmf_subsystem_listener_set_ana_state(target, params):
    """Set a listener's ANA state (one group or all). Unlike set_ns_ana_group this does not wait
    for in-flight I/O: only commands that start afterwards see the new state. Refusals as
    spdk_nvmf_subsystem_set_ana_state: "error setting ANA state: <-errno>"."""
    p = decode(params, {"nqn": ("str", REQUIRED), "listen_address": (_listen_address, REQUIRED),
                        "ana_state": (_ana_state, REQUIRED), "anagrpid": ("uint32", 0), "tgt_name": ("str", None)},
               error=invalid_parameters())
    subsystem = nvmf_state(target).find(p.nqn)
    if subsystem is None:
        raise RpcError(INVALID_PARAMS, "Unable to find subsystem with NQN %s" % p.nqn)
    trid = listen_trid(p.listen_address)
    if trid is None:
        raise invalid_parameters()
    if not subsystem.ana_reporting:
        raise internal_error("error setting ANA state: -22")
    listener = subsystem.find_listener(trid[2], trid[3])
    if p.anagrpid > subsystem.ana_groups or listener is None:
        raise internal_error("error setting ANA state: -22")
    groups = [p.anagrpid] if p.anagrpid else list(listener.ana_states)
    for group in groups:
        listener.ana_states[group] = p.ana_state
    subsystem.notify("ana_changed")
    return True


# ---- hosts ----------------------------------------------------------------------------------------

def _find_key(target, name):
    """The keyring key called ``name`` (None for no name); an unknown name is -32602."""
    if name is None:
        return None
    key = keyring.find_key(target, name)
    if key is None:
        raise invalid_parameters()
    return key


@rpc("nvmf_subsystem_add_host")
def nvmf_subsystem_add_host(target, params):
    # relaxed: transport options (psk) are read by the transport from the same params
    p = decode(params, {"nqn": ("str", REQUIRED), "host": ("str", REQUIRED), "tgt_name": ("str", None),
                        "psk": ("str", None), "dhchap_key": ("str", None), "dhchap_ctrlr_key": ("str", None)},
               error=invalid_parameters(), relaxed=True)
    subsystem = nvmf_state(target).get(p.nqn)
    host_key, ctrlr_key = _find_key(target, p.dhchap_key), _find_key(target, p.dhchap_ctrlr_key)
    if not valid_nqn(p.host) or subsystem.find_host(p.host) is not None:
        raise internal_error()
    if ctrlr_key is not None and host_key is None:
        raise internal_error()
    host = Host(p.host, p.psk)
    host.set_keys(host_key, ctrlr_key)
    subsystem.hosts.insert(0, host)      # newest first, like listeners (introspection L78)
    return True


@rpc("nvmf_subsystem_remove_host")
def nvmf_subsystem_remove_host(target, params):
    """Forget a host; its connections drop at once, whatever allow_any_host says (nvmf_hosts L19)."""
    p = decode(params, {"nqn": ("str", REQUIRED), "host": ("str", REQUIRED), "tgt_name": ("str", None),
                        "timeout_ms": ("uint64", 0)}, error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    host = subsystem.find_host(p.host)
    if host is None:
        raise internal_error()
    subsystem.hosts.remove(host)
    host.release()
    for session in list(subsystem.sessions):
        if session.hostnqn == p.host:
            session.disconnect(linger=REMOVED_HOST_LINGER)
    return True


@rpc("nvmf_subsystem_allow_any_host")
def nvmf_subsystem_allow_any_host(target, params):
    """Existing connections stay when switching to false; only new connects are checked."""
    p = decode(params, {"nqn": ("str", REQUIRED), "allow_any_host": ("bool", REQUIRED), "tgt_name": ("str", None)},
               error=invalid_parameters())
    nvmf_state(target).get(p.nqn).allow_any_host = p.allow_any_host
    return True


@rpc("nvmf_subsystem_set_keys")
def nvmf_subsystem_set_keys(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "host": ("str", REQUIRED), "tgt_name": ("str", None),
                        "dhchap_key": ("str", None), "dhchap_ctrlr_key": ("str", None)},
               error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    host_key, ctrlr_key = _find_key(target, p.dhchap_key), _find_key(target, p.dhchap_ctrlr_key)
    host = subsystem.find_host(p.host)
    if host is None or (ctrlr_key is not None and host_key is None):
        raise errno_error(EINVAL)       # spdk_nvmf_subsystem_set_keys
    host.set_keys(host_key, ctrlr_key)
    return True


# ---- controllers and qpairs seen from the target ---------------------------------------------------

@rpc("nvmf_subsystem_get_controllers", mutating=False)
def nvmf_subsystem_get_controllers(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "tgt_name": ("str", None)}, error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    return [{"cntlid": session.cntlid, "cntrltype": "io", "hostnqn": session.hostnqn,
             "hostid": session.hostid, "num_io_qpairs": 1}
            for session in subsystem.sessions if session.phase == "enabled"]


@rpc("nvmf_subsystem_get_qpairs", mutating=False)
def nvmf_subsystem_get_qpairs(target, params):
    p = decode(params, {"nqn": ("str", REQUIRED), "tgt_name": ("str", None)}, error=invalid_parameters())
    subsystem = nvmf_state(target).get(p.nqn)
    return [session.qpair_json() for session in subsystem.sessions]


# ---- config dump ----------------------------------------------------------------------------------

# What nvmf_tgt writes before the target's own entries (module/event/subsystems/nvmf), as recorded.
NVMF_SET_CONFIG = {
    "discovery_filter": "match_any",
    "admin_cmd_passthru": {"identify_ctrlr": False, "identify_uuid_list": False, "get_log_page": False,
                           "get_set_features": False, "sanitize": False, "security_send_recv": False,
                           "fw_update": False, "nvme_mi": False, "vendor_specific": False},
    "dhchap_digests": ["sha256", "sha384", "sha512"],
    "dhchap_dhgroups": ["null", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"],
    "dup_host_policy": "allow",
}


def config_json(target):
    """framework_get_config "nvmf" (spdk_nvmf_tgt_write_config_json): target settings, transports,
    then five batches (lists) over the subsystems in NQN order: create_subsystem, add_host,
    add_ns, ns_add_host (none here) and add_listener (newest listener first)."""
    state = nvmf_state(target)
    entries = [{"method": "nvmf_set_config", "params": json_copy(NVMF_SET_CONFIG)},
               {"method": "nvmf_set_max_subsystems", "params": {"max_subsystems": 1024}},
               {"method": "nvmf_set_crdt", "params": {"crdt1": 0, "crdt2": 0, "crdt3": 0}}]
    for options in state.transports.values():
        entries.append({"method": "nvmf_create_transport", "params": dict(options)})
    ordered = [state.subsystems[nqn] for nqn in sorted(state.subsystems, key=str.encode)]
    nvme = [sub for sub in ordered if sub.subtype != "Discovery"]
    create, hosts, namespaces, listeners = [], [], [], []
    for sub in nvme:
        params = {"nqn": sub.nqn, "allow_any_host": sub.allow_any_host, "serial_number": sub.serial_number,
                  "model_number": sub.model_number}
        if sub.max_namespaces:
            params["max_namespaces"] = sub.max_namespaces
        params.update({"min_cntlid": sub.min_cntlid, "max_cntlid": sub.max_cntlid,
                       "ana_reporting": sub.ana_reporting, "dmrsl": sub.dmrsl, "wzsl": sub.wzsl,
                       "passthrough": sub.passthrough, "enable_nssr": sub.enable_nssr})
        create.append({"method": "nvmf_create_subsystem", "params": params})
        for host in sub.hosts:
            params = {"nqn": sub.nqn, "host": host.nqn}
            if host.dhchap_key is not None:
                params["dhchap_key"] = host.dhchap_key.name
            if host.dhchap_ctrlr_key is not None:
                params["dhchap_ctrlr_key"] = host.dhchap_ctrlr_key.name
            if host.psk:
                params["psk"] = host.psk
            hosts.append({"method": "nvmf_subsystem_add_host", "params": params})
        for nsid, ns in sorted(sub.namespaces.items()):
            namespace = {"nsid": nsid, "bdev_name": ns.bdev.name, "nguid": ns.nguid, "uuid": ns.uuid}
            if sub.ana_reporting:
                namespace["anagrpid"] = ns.anagrpid
            namespace["no_auto_visible"] = False
            namespaces.append({"method": "nvmf_subsystem_add_ns", "params": {"nqn": sub.nqn, "namespace": namespace}})
    for sub in ordered:
        for listener in sub.listeners:
            params = {"nqn": sub.nqn, "listen_address": listener.to_json(), "secure_channel": listener.secure_channel}
            if listener.sock_impl:
                params["sock_impl"] = listener.sock_impl
            listeners.append({"method": "nvmf_subsystem_add_listener", "params": params})
    return entries + [create, hosts, namespaces, [], listeners]


def json_copy(value):
    return json.loads(json.dumps(value))


def _register_config():
    from . import framework
    framework.register_config("nvmf", config_json, order=20)


_register_config()

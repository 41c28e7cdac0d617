"""The emulator's NVMe-oF wire protocol: framing, status codes, DH-CHAP, and the host side.

The protocol itself is described at the top of ``nvmf.py`` (the target side). This module holds
what both ends share, plus ``HostConnection``, the host end used by ``nvme.py`` (bdev_nvme) and by
``hostio.py`` (the spdk_io command line tool). Standard library only.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import struct
import zlib

HEADER = struct.Struct(">II")          # json length, payload length
MAX_JSON = 1 << 20
MAX_PAYLOAD = 64 << 20

# NVMe status as (status code type, status code)
SUCCESS = (0, 0x00)
INVALID_FIELD = (0, 0x02)
INTERNAL_DEVICE_ERROR = (0, 0x06)
INVALID_NAMESPACE = (0, 0x0B)
LBA_OUT_OF_RANGE = (0, 0x80)
ANA_INACCESSIBLE = (3, 0x02)
CONNECT_INVALID_PARAMETERS = (1, 0x82)
CONNECT_INVALID_HOST = (1, 0x84)
AUTH_FAILED = (1, 0x91)                # the emulator's code for a failed DH-HMAC-CHAP exchange

ANA_STATES = ("optimized", "non_optimized", "inaccessible", "persistent_loss", "change")
ACCESSIBLE_ANA_STATES = ("optimized", "non_optimized")

# What a real SPDK host/target negotiate by default (shown in nvmf_subsystem_get_qpairs "auth").
AUTH_DIGEST = "sha512"
AUTH_DHGROUP = "ffdhe8192"


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


class ConnectionLost(Exception):
    """The TCP connection closed (or was declared dead) while a request was outstanding."""


class CommandError(Exception):
    """A command completed with a non-success NVMe status."""

    def __init__(self, status, reason=""):
        super().__init__(reason or "NVMe status %s" % (status,))
        self.status = tuple(status)


class ConnectError(Exception):
    """Connecting (or authenticating) to a subsystem failed; ``reason`` says why, for logs.

    ``stage`` is where it failed: "transport" (no TCP connection), "connect" (the target refused
    the CONNECT) or "auth" (DH-HMAC-CHAP failed)."""

    def __init__(self, reason, stage="connect"):
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


# ---- addresses ------------------------------------------------------------------------------------

def wire_address(traddr):
    """The address really bound or dialled for ``traddr``.

    With ``SPDK_EMU_NET=127.X`` in the environment, 127.0.0.N becomes 127.X.0.N for every emulator
    process and spdk_io, so several recorded sessions (which all use 127.0.0.1:4420-4422) can be
    replayed at once on one machine; RPC answers still show the recorded addresses.
    """
    net = os.environ.get("SPDK_EMU_NET")
    if net and traddr.startswith("127.0.0."):
        return "%s.0.%s" % (net, traddr[len("127.0.0."):])
    return traddr


# ---- framing --------------------------------------------------------------------------------------

def encode_frame(message, payload=b""):
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body), len(payload)) + body + payload


async def read_frame(reader):
    """Return ``(message, payload)``; raise ``asyncio.IncompleteReadError`` at end of stream."""
    head = await reader.readexactly(HEADER.size)
    json_len, payload_len = HEADER.unpack(head)
    if json_len > MAX_JSON or payload_len > MAX_PAYLOAD:
        raise ProtocolError("frame too large")
    try:
        message = json.loads(await reader.readexactly(json_len))
    except ValueError as exc:
        raise ProtocolError("bad frame header") from exc
    payload = await reader.readexactly(payload_len) if payload_len else b""
    return message, payload


# ---- DH-HMAC-CHAP ---------------------------------------------------------------------------------

def parse_dhchap_key(text):
    """The secret inside ``DHHC-1:<hash>:<base64(key || crc32(key) LE)>:``, checked like nvme_auth.c."""
    parts = text.strip().split(":")
    if len(parts) < 3 or parts[0] != "DHHC-1":
        raise ValueError("Invalid key format")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except ValueError as exc:
        raise ValueError("Invalid key encoding") from exc
    secret, crc = blob[:-4], blob[-4:]
    if len(secret) not in (32, 48, 64):
        raise ValueError("Invalid key size=%d" % len(secret))
    if struct.pack("<I", zlib.crc32(secret) & 0xFFFFFFFF) != crc:
        raise ValueError("Invalid key checksum")
    return secret


def format_dhchap_key(secret, hash_id=0):
    """The inverse of parse_dhchap_key (test/nvmf/common.sh format_key)."""
    blob = secret + struct.pack("<I", zlib.crc32(secret) & 0xFFFFFFFF)
    return "DHHC-1:%02x:%s:" % (hash_id, base64.b64encode(blob).decode())


def new_challenge():
    return os.urandom(32).hex()


def dhchap_response(secret, challenge, *names):
    """Proof of knowing ``secret``: an HMAC over the challenge and both NQNs (the key never travels)."""
    message = bytes.fromhex(challenge) + b"\0".join(name.encode() for name in names)
    return hmac.new(secret, message, hashlib.sha512).hexdigest()


def proof_matches(secret, challenge, proof, *names):
    return hmac.compare_digest(dhchap_response(secret, challenge, *names), proof or "")


def secrets_of(host_key, ctrlr_key):
    """Load the host's secrets when the target asks for authentication (as nvme_auth.c does)."""
    if host_key is None:
        raise ConnectError("missing DH-HMAC-CHAP key", "auth")
    try:
        return host_key(), (ctrlr_key() if ctrlr_key is not None else None)
    except ValueError as exc:
        raise ConnectError(str(exc), "auth") from exc


# ---- host side ------------------------------------------------------------------------------------

class HostConnection:
    """One host connection (admin + I/O queue in one TCP stream) to one subsystem.

    ``open()`` connects, authenticates and returns the identify data. Requests are tagged so many
    can be in flight; ``on_event(message)`` gets asynchronous events, ``on_lost(self)`` runs once
    when the stream ends for any reason other than ``close()``.
    """

    def __init__(self, traddr, trsvcid, subnqn, hostnqn, hostid, host_key=None, ctrlr_key=None,
                 on_event=None, on_lost=None, keep_alive_ms=10000, auth_failure_linger=0.0):
        self.traddr = traddr
        self.trsvcid = str(trsvcid)
        self.subnqn = subnqn
        self.hostnqn = hostnqn
        self.hostid = hostid
        self.host_key = host_key            # key source: callable -> secret bytes (ValueError if unusable)
        self.ctrlr_key = ctrlr_key          # same, for bidirectional authentication; or None
        self.on_event = on_event
        self.on_lost = on_lost
        self.keep_alive_ms = keep_alive_ms
        self.auth_failure_linger = auth_failure_linger   # seconds a failed DH-HMAC-CHAP qpair stays up
        self.cntlid = None
        self.identify = None
        self._reader = None
        self._writer = None
        self._pending = {}
        self._next_tag = 1
        self._tasks = []
        self._closed = False
        self._lost_reported = False

    # -- life cycle --
    async def open(self, timeout=5.0):
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(wire_address(self.traddr), int(self.trsvcid)), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectError("cannot reach %s:%s: %s" % (self.traddr, self.trsvcid, exc), "transport") from exc
        try:
            reply = await asyncio.wait_for(self._handshake(), timeout)
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, asyncio.TimeoutError) as exc:
            self._drop_stream()
            raise ConnectError("connection closed during connect: %r" % (exc,)) from exc
        except ConnectError as exc:
            if exc.stage == "auth" and self.auth_failure_linger:
                await asyncio.sleep(self.auth_failure_linger)
            self._drop_stream()
            raise
        self.cntlid = reply["cntlid"]
        self.identify = reply["identify"]
        self._tasks.append(asyncio.get_running_loop().create_task(self._receive()))
        if self.keep_alive_ms:
            self._tasks.append(asyncio.get_running_loop().create_task(self._keep_alive()))
        return self.identify

    async def _handshake(self):
        self._writer.write(encode_frame({"op": "connect", "tag": 0, "subnqn": self.subnqn,
                                         "hostnqn": self.hostnqn, "hostid": self.hostid}))
        reply, _payload = await read_frame(self._reader)
        if reply.get("auth"):
            reply = await self._authenticate(reply["auth"])
        if tuple(reply.get("status", ())) != SUCCESS:
            stage = "auth" if tuple(reply.get("status", ())) == AUTH_FAILED else "connect"
            raise ConnectError(reply.get("reason") or "connect refused: status %s" % (reply.get("status"),), stage)
        return reply

    async def _authenticate(self, auth):
        host_secret, ctrlr_secret = secrets_of(self.host_key, self.ctrlr_key)
        ctrlr_challenge = new_challenge() if ctrlr_secret is not None else None
        self._writer.write(encode_frame({
            "op": "auth_reply", "tag": 0,
            "response": dhchap_response(host_secret, auth["challenge"], self.hostnqn, self.subnqn),
            "ctrlr_challenge": ctrlr_challenge}))
        reply, _payload = await read_frame(self._reader)
        if tuple(reply.get("status", ())) != SUCCESS:
            return reply
        if ctrlr_challenge is not None and not proof_matches(
                ctrlr_secret, ctrlr_challenge, reply.get("ctrlr_response"), self.subnqn, self.hostnqn):
            self._writer.write(encode_frame({"op": "auth_failure2", "tag": 0}))
            raise ConnectError("controller challenge mismatch", "auth")
        return reply

    def close(self):
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._drop_stream()
        self._fail_pending()

    def _drop_stream(self):
        if self._writer is not None:
            self._writer.close()

    def _fail_pending(self):
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost("connection lost"))
        self._pending.clear()

    def _lost(self):
        if self._closed or self._lost_reported:
            return
        self._lost_reported = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._drop_stream()
        self._fail_pending()
        if self.on_lost is not None:
            self.on_lost(self)

    @property
    def alive(self):
        return not self._closed and not self._lost_reported and self._writer is not None

    async def _receive(self):
        try:
            while True:
                message, payload = await read_frame(self._reader)
                tag = message.get("tag")
                if tag is None:
                    if self.on_event is not None:
                        self.on_event(message)
                    continue
                future = self._pending.pop(tag, None)
                if future is not None and not future.done():
                    future.set_result((message, payload))
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, OSError):
            self._lost()

    async def _keep_alive(self):
        """NVMe keep alive: a target that does not answer within the timeout is considered gone."""
        interval = self.keep_alive_ms / 2000.0
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.wait_for(self.request({"op": "keep_alive"}), self.keep_alive_ms / 1000.0)
            except asyncio.TimeoutError:
                self._lost()
                return
            except ConnectionLost:
                return

    # -- requests --
    async def request(self, message, payload=b""):
        """Send one command; return ``(reply, payload)``. Raises ConnectionLost."""
        if not self.alive:
            raise ConnectionLost("not connected")
        tag = self._next_tag
        self._next_tag += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[tag] = future
        message = dict(message, tag=tag)
        try:
            self._writer.write(encode_frame(message, payload))
        except (ConnectionError, OSError) as exc:
            self._pending.pop(tag, None)
            self._lost()
            raise ConnectionLost(str(exc)) from exc
        return await future

    async def command(self, message, payload=b""):
        """Like request, but raise CommandError unless the status is SUCCESS."""
        reply, data = await self.request(message, payload)
        status = tuple(reply.get("status", INTERNAL_DEVICE_ERROR))
        if status != SUCCESS:
            raise CommandError(status, reply.get("reason", ""))
        return reply, data

    async def read(self, nsid, slba, nlb):
        reply_data = await self.command({"op": "read", "nsid": nsid, "slba": slba, "nlb": nlb})
        return reply_data[1]

    async def write(self, nsid, slba, data):
        await self.command({"op": "write", "nsid": nsid, "slba": slba}, data)

    async def write_zeroes(self, nsid, slba, nlb):
        await self.command({"op": "write_zeroes", "nsid": nsid, "slba": slba, "nlb": nlb})

    async def unmap(self, nsid, slba, nlb):
        await self.command({"op": "unmap", "nsid": nsid, "slba": slba, "nlb": nlb})

    async def flush(self, nsid):
        await self.command({"op": "flush", "nsid": nsid})

    async def refresh_identify(self):
        reply, _payload = await self.command({"op": "identify"})
        self.identify = reply["identify"]
        return self.identify

    async def reauthenticate(self, host_key, ctrlr_key):
        """DH-HMAC-CHAP again on the live connection (bdev_nvme_set_keys); True when it passed."""
        reply, _payload = await self.request({"op": "reauth"})
        auth = reply.get("auth")
        if auth is None:
            return tuple(reply.get("status", ())) == SUCCESS
        try:
            host_secret, ctrlr_secret = secrets_of(host_key, ctrlr_key)
        except ConnectError:
            return False
        ctrlr_challenge = new_challenge() if ctrlr_secret is not None else None
        reply, _payload = await self.request({
            "op": "auth_reply",
            "response": dhchap_response(host_secret, auth["challenge"], self.hostnqn, self.subnqn),
            "ctrlr_challenge": ctrlr_challenge})
        if tuple(reply.get("status", ())) != SUCCESS:
            return False
        if ctrlr_challenge is not None and not proof_matches(
                ctrlr_secret, ctrlr_challenge, reply.get("ctrlr_response"), self.subnqn, self.hostnqn):
            return False
        self.host_key, self.ctrlr_key = host_key, ctrlr_key
        return True

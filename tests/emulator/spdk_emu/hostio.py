"""spdk_io: read and write an emulated NVMe-oF subsystem the way a host would (tests and demos).

    spdk_io write  --nqn NQN --traddr A --trsvcid P --offset BYTES --length BYTES [--pattern P | --file F]
    spdk_io read   ... [--output FILE] [--sha256]
    spdk_io verify ... [--pattern P | --file F]      exit 1 when the data differs
    spdk_io writer ... --duration S [--log FILE]      continuous writes until the time is up or SIGTERM

``--pattern`` is ``random`` (default: each 4 KiB block is derived from ``--seed`` and its absolute
byte offset, so any sub-range can be verified later), ``zero``, or one byte value (``0xab``). A write
or read prints ``sha256=<hex>`` of the data with ``--sha256``. Like SPDK's bdev_nvme, commands
rejected because the namespace is ANA-inaccessible are retried after 1 s, and a dropped connection
is re-established until ``--timeout`` runs out. Exit codes: 0 ok, 1 verify mismatch, 2 cannot
connect, 3 I/O error.

The ``writer`` mode keeps ``--queue-depth`` writes of ``--io-size`` bytes in flight at random
block-aligned offsets; every block written carries an 8-byte sequence number (then the seed
pattern), and ``--log`` receives one JSON line per completed write: ``{"seq", "offset", "ok"}``.
"""
import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time
import uuid as uuidlib

from . import fabric

PATTERN_BLOCK = 4096
ANA_RETRY_DELAY = 1.0


# ---- data patterns --------------------------------------------------------------------------------

def pattern_bytes(pattern, seed, offset, length):
    """The bytes ``pattern`` puts at [offset, offset+length)."""
    if pattern == "zero":
        return bytes(length)
    if pattern != "random":
        return bytes([int(pattern, 0) & 0xFF]) * length
    first = offset - offset % PATTERN_BLOCK
    out = bytearray()
    for block in range(first, offset + length, PATTERN_BLOCK):
        digest = hashlib.sha256(("%s:%d" % (seed, block)).encode()).digest()
        out += digest * (PATTERN_BLOCK // len(digest))
    skip = offset - first
    return bytes(out[skip:skip + length])


def expected_data(args):
    if args.file:
        with open(args.file, "rb") as handle:
            data = handle.read()
        if args.length is None:
            return data
        if len(data) < args.length:
            raise SystemExit("spdk_io: %s holds %d bytes, fewer than --length" % (args.file, len(data)))
        return data[:args.length]
    return pattern_bytes(args.pattern, args.seed, args.offset, args.length)


# ---- a host session -------------------------------------------------------------------------------

def read_key(path):
    if path is None:
        return None
    with open(path) as handle:
        text = handle.read()
    return lambda: fabric.parse_dhchap_key(text)


class Host:
    """One connection to the subsystem, reconnecting and retrying like a forgiving host."""

    def __init__(self, args):
        self.args = args
        self.hostid = args.hostid or str(uuidlib.uuid4())
        self.hostnqn = args.hostnqn or "nqn.2014-08.org.nvmexpress:uuid:" + self.hostid
        self.conn = None
        self.block_size = None
        self.num_blocks = None
        self._connecting = None

    async def connect(self):
        conn = fabric.HostConnection(self.args.traddr, self.args.trsvcid, self.args.nqn, self.hostnqn,
                                     self.hostid, host_key=read_key(self.args.dhchap_key),
                                     ctrlr_key=read_key(self.args.dhchap_ctrlr_key), keep_alive_ms=0)
        identify = await conn.open()
        for entry in identify["namespaces"]:
            if entry["nsid"] == self.args.nsid:
                self.block_size, self.num_blocks = entry["block_size"], entry["num_blocks"]
                break
        else:
            conn.close()
            raise fabric.ConnectError("namespace %d not found" % self.args.nsid)
        self.conn = conn

    async def reconnect(self, deadline):
        """One reconnect shared by every command that saw the connection drop."""
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._reconnect(deadline))
        try:
            await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _reconnect(self, deadline):
        while True:
            try:
                await self.connect()
                return
            except fabric.ConnectError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)

    async def run(self, message, payload=b""):
        """Send one command until it succeeds; ANA rejections wait 1 s, lost connections reconnect."""
        deadline = time.monotonic() + self.args.timeout
        while True:
            conn = self.conn
            try:
                return await conn.command(message, payload)
            except fabric.CommandError as exc:
                if exc.status != fabric.ANA_INACCESSIBLE or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(ANA_RETRY_DELAY)
            except fabric.ConnectionLost:
                if time.monotonic() >= deadline:
                    raise
                if self.conn is conn:
                    await self.reconnect(deadline)

    async def write(self, offset, data):
        await self.run({"op": "write", "nsid": self.args.nsid, "slba": offset // self.block_size}, data)

    async def read(self, offset, length):
        _status, data = await self.run({"op": "read", "nsid": self.args.nsid, "slba": offset // self.block_size,
                                        "nlb": length // self.block_size})
        return data

    def close(self):
        if self.conn is not None:
            self.conn.close()


# ---- operations -----------------------------------------------------------------------------------

def chunks(offset, length, io_size):
    position = offset
    while position < offset + length:
        size = min(io_size, offset + length - position)
        yield position, size
        position += size


async def bounded(coros, depth):
    """Run coroutines with at most ``depth`` in flight; returns their results in order."""
    gate = asyncio.Semaphore(depth)

    async def one(coro):
        async with gate:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros))


def check_alignment(host, offset, length):
    if offset % host.block_size or length % host.block_size:
        raise SystemExit("spdk_io: offset and length must be multiples of the block size %d" % host.block_size)


async def do_write(host, args):
    data = expected_data(args)
    check_alignment(host, args.offset, len(data))
    await bounded([host.write(pos, data[pos - args.offset:pos - args.offset + size])
                   for pos, size in chunks(args.offset, len(data), args.io_size)], args.queue_depth)
    return data


async def do_read(host, args):
    check_alignment(host, args.offset, args.length)
    parts = await bounded([host.read(pos, size) for pos, size in chunks(args.offset, args.length, args.io_size)],
                          args.queue_depth)
    return b"".join(parts)


async def do_writer(host, args, stop):
    """Continuous writes with unique contents until ``stop`` is set or the duration ends."""
    rng = random.Random(args.seed)
    blocks = args.length // args.io_size
    log = open(args.log, "a") if args.log else None
    sequence = iter(range(1, 1 << 62))
    counts = {"ok": 0, "failed": 0}
    end = time.monotonic() + args.duration if args.duration else None

    async def worker():
        while not stop.is_set() and (end is None or time.monotonic() < end):
            seq = next(sequence)
            offset = args.offset + rng.randrange(blocks) * args.io_size
            data = struct.pack(">Q", seq) + pattern_bytes("random", args.seed, offset, args.io_size)[8:]
            try:
                await host.write(offset, data)
                ok = True
            except (fabric.CommandError, fabric.ConnectionLost, fabric.ConnectError):
                ok = False
            counts["ok" if ok else "failed"] += 1
            if log is not None:
                log.write(json.dumps({"seq": seq, "offset": offset, "ok": ok}) + "\n")
                log.flush()
    try:
        await asyncio.gather(*(worker() for _worker in range(args.queue_depth)))
    finally:
        if log is not None:
            log.close()
    return counts


def report(args, data):
    if args.sha256:
        print("sha256=%s" % hashlib.sha256(data).hexdigest())


async def main_async(args):
    host = Host(args)
    try:
        await host.connect()
    except fabric.ConnectError as exc:
        print("spdk_io: cannot connect to %s at %s:%s: %s" % (args.nqn, args.traddr, args.trsvcid, exc.reason),
              file=sys.stderr)
        return 2
    if args.length is None:
        args.length = (os.path.getsize(args.file) if args.file
                       else host.block_size * host.num_blocks - args.offset)
    try:
        if args.command == "write":
            report(args, await do_write(host, args))
        elif args.command == "read":
            data = await do_read(host, args)
            if args.output:
                with open(args.output, "wb") as handle:
                    handle.write(data)
            report(args, data)
        elif args.command == "verify":
            return verify(args, await do_read(host, args))
        else:
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            counts = await do_writer(host, args, stop)
            print(json.dumps(counts))
    except (fabric.CommandError, fabric.ConnectionLost, fabric.ConnectError) as exc:
        print("spdk_io: I/O failed: %s" % (exc,), file=sys.stderr)
        return 3
    finally:
        host.close()
    return 0


def verify(args, data):
    expected = expected_data(args)
    report(args, data)
    if data == expected:
        return 0
    first = next(i for i, (a, b) in enumerate(zip(data, expected)) if a != b) if len(data) == len(expected) else 0
    print("spdk_io: MISMATCH at byte offset %d" % (args.offset + first), file=sys.stderr)
    return 1


def build_parser():
    parser = argparse.ArgumentParser(prog="spdk_io", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("write", "read", "verify", "writer"))
    parser.add_argument("--nqn", required=True)
    parser.add_argument("--traddr", required=True)
    parser.add_argument("--trsvcid", default="4420")
    parser.add_argument("--nsid", type=int, default=1)
    parser.add_argument("--offset", type=int, default=0, help="bytes")
    parser.add_argument("--length", type=int, default=None, help="bytes (default: to the end)")
    parser.add_argument("--pattern", default="random", help="random, zero or a byte value such as 0xab")
    parser.add_argument("--seed", default="spdk_io")
    parser.add_argument("--file", help="write this file's bytes / verify against them")
    parser.add_argument("--output", help="read: save the data here")
    parser.add_argument("--sha256", action="store_true", help="print sha256=<hex> of the data")
    parser.add_argument("--io-size", type=int, default=131072)
    parser.add_argument("--queue-depth", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to keep retrying one command")
    parser.add_argument("--duration", type=float, default=0.0, help="writer: seconds (0: until SIGTERM)")
    parser.add_argument("--log", help="writer: append one JSON line per completed write")
    parser.add_argument("--hostnqn")
    parser.add_argument("--hostid")
    parser.add_argument("--dhchap-key", help="file holding the host's DHHC-1 key")
    parser.add_argument("--dhchap-ctrlr-key", help="file holding the controller's DHHC-1 key")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return asyncio.run(main_async(args))

"""The spdk_tgt command line: parse flags, start the target and its RPC server, stop on a signal.

Accepted like spdk_tgt: ``-r SOCKET`` or ``-r host:port``, ``-m MASK``, ``-i SHM_ID``, ``-s MB``,
``--no-huge``, ``--no-pci``, ``-f PIDFILE``, ``-c/--json CONFIG``, ``--wait-for-rpc``. Flags the
emulator does not know are accepted with a warning on stderr, so scripts written for the real
binary run unchanged. Emulator-only: ``--rpc-log PATH`` (default ``<socket>.rpc.jsonl`` next to a
Unix socket; ``--rpc-log ''`` turns it off).
SIGINT/SIGTERM stop cleanly (socket and pid file removed); SIGKILL leaves consistent disk files
because every metadata write is crash-safe (see blobstore.py).
"""
import argparse
import asyncio
import json
import os
import signal
import sys

from . import methods
from .errors import RpcError
from .framework import after_init
from .server import RpcServer, RpcLog, is_tcp_address
from .target import Target

DEFAULT_SOCKET = "/var/tmp/spdk.sock"


def build_parser():
    parser = argparse.ArgumentParser(prog="spdk_tgt", description="SPDK target emulator")
    parser.add_argument("-r", "--rpc-socket", dest="rpc_socket", default=DEFAULT_SOCKET)
    parser.add_argument("-m", "--cpumask", default="0x1")
    parser.add_argument("-i", "--shm-id", dest="shm_id", type=int, default=-1)
    parser.add_argument("-s", "--mem-size", dest="mem_size", default=None)
    parser.add_argument("--no-huge", dest="no_huge", action="store_true")
    parser.add_argument("--no-pci", dest="no_pci", action="store_true")
    parser.add_argument("-f", "--pid-file", dest="pid_file", default=None)
    parser.add_argument("-c", "--config", "--json", dest="json_config", default=None)
    parser.add_argument("--wait-for-rpc", dest="wait_for_rpc", action="store_true")
    parser.add_argument("--rpc-log", dest="rpc_log", default=None)
    return parser


def parse_args(argv):
    options, unknown = build_parser().parse_known_args(argv)
    if unknown:
        print("spdk_tgt (emulator): warning: ignoring unsupported arguments: %s" % " ".join(unknown),
              file=sys.stderr)
    if options.rpc_log is None:
        options.rpc_log = "" if is_tcp_address(options.rpc_socket) else options.rpc_socket + ".rpc.jsonl"
    return options


async def load_json_config(target, dispatcher, path):
    """Run the calls of a save_config-style file: startup methods first, then init, then the rest."""
    with open(path) as handle:
        config = json.load(handle)
    calls = [(entry["method"], entry.get("params"))
             for subsystem in config.get("subsystems", [])
             for entry in (subsystem.get("config") or [])]
    from . import rpc
    early = [c for c in calls if c[0] in rpc.METHODS and rpc.METHODS[c[0]].startup]
    late = [c for c in calls if c not in early]
    for name, params in early:
        await run_config_call(dispatcher, name, params)

    async def runtime_part():
        for name, params in late:
            await run_config_call(dispatcher, name, params)

    after_init(target, runtime_part)
    if not target.options.wait_for_rpc:
        await run_config_call(dispatcher, "framework_start_init", None)


async def run_config_call(dispatcher, name, params):
    _result, error = await dispatcher.call(name, params)
    if error is not None:
        raise RpcError(error.code, "%s: %s" % (name, error.message))


class App:
    """One running emulated spdk_tgt process."""

    def __init__(self, options):
        self.options = options
        self.target = Target(options)
        self.rpc_log = RpcLog(options.rpc_log or None, memory=self.target.rpc_log)
        self.server = RpcServer(self.target, options.rpc_socket, self.rpc_log)
        self.stopping = None

    async def run(self):
        loop = asyncio.get_running_loop()
        self.target.loop = loop
        self.stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        for hook in list(self.target.on_start):
            await hook(self.target)
        if self.options.json_config:
            self.target.initialized = False   # the config's startup part runs before init
            await load_json_config(self.target, self.server.dispatcher, self.options.json_config)
        await self.server.start()
        self.write_pid_file()
        print("spdk_tgt (emulator) listening on %s" % self.options.rpc_socket, file=sys.stderr, flush=True)
        try:
            await self.stopping.wait()
        finally:
            await self.shutdown()

    async def shutdown(self):
        await self.server.close()
        for hook in list(self.target.on_stop):
            try:
                await hook(self.target)
            except Exception as exc:  # keep stopping the rest
                print("spdk_tgt (emulator): stop hook failed: %r" % exc, file=sys.stderr)
        self.rpc_log.close()
        if self.options.pid_file:
            try:
                os.unlink(self.options.pid_file)
            except FileNotFoundError:
                pass

    def write_pid_file(self):
        if self.options.pid_file:
            with open(self.options.pid_file, "w") as handle:
                handle.write("%d\n" % os.getpid())


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    methods.load()  # registers every RPC before the target serves any
    app = App(options)
    try:
        asyncio.run(app.run())
    except RpcError as exc:
        print("spdk_tgt (emulator): --json config failed: %s" % exc.message, file=sys.stderr)
        return 1
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0

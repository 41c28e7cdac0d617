"""The JSON-RPC 2.0 server, framed like SPDK's (lib/jsonrpc).

A connection carries concatenated JSON values; each is a request or a batch (array). Requests on
one connection are answered in order, one at a time, as SPDK does. What SPDK answers to malformed
input (recorded in step6.jsonl):

* invalid JSON: nothing, the connection is closed;
* incomplete JSON: nothing yet, the server waits for the rest;
* no ``method``, a ``jsonrpc`` other than "2.0", or a bad ``id``: -32600 "Invalid request", id null;
* ``params`` that is neither object nor array: -32600 with the request's id;
* no ``id`` (a notification): the method runs, nothing is answered;
* an unknown method: -32601 "Method not found".
"""
import asyncio
import inspect
import json
import os
import sys
import time
import traceback

from . import rpc
from .errors import RpcError, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR

_DECODER = json.JSONDecoder()
_NO_ID = object()

STARTUP_ONLY_MESSAGE = ("Method may only be called before framework is initialized. Use --wait-for-rpc "
                        "command line parameter and then issue this RPC before the framework_start_init RPC.")
RUNTIME_ONLY_MESSAGE = "Method may only be called after framework is initialized using framework_start_init RPC."


class IncompleteInput(Exception):
    """The buffer ends inside a JSON value: wait for more bytes."""


class MalformedInput(Exception):
    """The buffer holds something that can never become JSON."""


def split_values(text):
    """Decode the complete JSON values at the front of ``text``; return (values, rest)."""
    values = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            return values, ""
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
                return values, text[pos:]
            raise MalformedInput(str(exc)) from exc
        values.append(value)


def encode(response):
    return (json.dumps(response, separators=(",", ":")) + "\n").encode()


def error_response(req_id, err):
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


class Dispatcher:
    """Validates one request object, runs its handler and builds the response (None for notifications)."""

    def __init__(self, target, rpc_log=None):
        self.target = target
        self.rpc_log = rpc_log

    async def handle_value(self, value):
        if isinstance(value, list):
            if not value:
                return error_response(None, RpcError(INVALID_REQUEST, "Invalid request"))
            answers = [await self.handle_request(item) for item in value]
            answers = [a for a in answers if a is not None]
            return answers or None
        return await self.handle_request(value)

    async def handle_request(self, req):
        invalid = RpcError(INVALID_REQUEST, "Invalid request")
        if not isinstance(req, dict) or set(req) - {"jsonrpc", "method", "params", "id"}:
            return error_response(None, invalid)
        if req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return error_response(None, invalid)
        req_id = req.get("id", _NO_ID)
        if req_id is not _NO_ID and not (req_id is None or isinstance(req_id, (str, int, float))
                                         and not isinstance(req_id, bool)):
            return error_response(None, invalid)
        if "params" in req and not isinstance(req["params"], (dict, list)):
            return error_response(None if req_id is _NO_ID else req_id, invalid)
        result, error = await self.call(req["method"], req.get("params"))
        if req_id is _NO_ID:
            return None
        if error is not None:
            return error_response(req_id, error)
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    async def call(self, name, params):
        """Run method ``name``; return (result, None) or (None, RpcError)."""
        method = rpc.METHODS.get(name)
        if method is None:
            return None, RpcError(METHOD_NOT_FOUND, "Method not found")
        error = self.state_error(method)
        result = None
        if error is None:
            try:
                result = method.handler(self.target, params)
                if inspect.isawaitable(result):
                    result = await result
            except RpcError as exc:
                error = exc
            except Exception:  # a bug in the emulator must not kill the connection
                traceback.print_exc(file=sys.stderr)
                error = RpcError(INTERNAL_ERROR, "Internal error")
        if self.rpc_log is not None:
            self.rpc_log.record(name, params, method.mutating, result, error)
        return result, error

    def state_error(self, method):
        if self.target.initialized and not method.runtime:
            return RpcError(-1, STARTUP_ONLY_MESSAGE)
        if not self.target.initialized and not method.startup:
            return RpcError(-1, RUNTIME_ONLY_MESSAGE)
        return None


class RpcServer:
    """Listens on a Unix socket path or on ``host:port`` and serves each connection."""

    def __init__(self, target, address, rpc_log=None):
        self.target = target
        self.address = address
        self.dispatcher = Dispatcher(target, rpc_log)
        self.server = None
        self.connections = set()

    @property
    def is_unix(self):
        return not is_tcp_address(self.address)

    async def start(self):
        if self.is_unix:
            claim_unix_path(self.address)
            self.server = await asyncio.start_unix_server(self.serve, path=self.address)
        else:
            host, port = split_tcp_address(self.address)
            self.server = await asyncio.start_server(self.serve, host, port, reuse_address=True)

    async def close(self):
        if self.server is not None:
            self.server.close()
        for writer in list(self.connections):
            writer.close()
        if self.is_unix:
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass

    async def serve(self, reader, writer):
        self.connections.add(writer)
        buf = ""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buf += chunk.decode("utf-8", "replace")
                try:
                    values, buf = split_values(buf)
                except MalformedInput:
                    return
                for value in values:
                    response = await self.dispatcher.handle_value(value)
                    if response is not None:
                        writer.write(encode(response))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()


def is_tcp_address(address):
    """``host:port`` (SPDK's -r accepts both), as opposed to a socket path."""
    if "/" in address:
        return False
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit())


def split_tcp_address(address):
    host, _sep, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def claim_unix_path(path):
    """Remove a stale socket file; refuse one that a live process still answers on (like SPDK)."""
    if not os.path.exists(path):
        return
    import socket
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SystemExit("RPC Unix domain socket path %s in use. Specify another." % path)


class RpcLog:
    """The per-node RPC log: one JSON line per call (time, method, params, mutating, result|error)."""

    def __init__(self, path, keep=1000, memory=None):
        self.path = path
        self.file = open(path, "a", buffering=1) if path else None
        self.memory = memory
        self.keep = keep

    def record(self, method, params, mutating, result, error):
        entry = {"time": round(time.time(), 6), "method": method, "params": params, "mutating": mutating}
        if error is not None:
            entry["error"] = error.to_json()
        else:
            entry["result"] = result
        if self.memory is not None:
            self.memory.append(entry)
            if len(self.memory) > self.keep:
                del self.memory[:len(self.memory) - self.keep]
        if self.file is not None:
            self.file.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None

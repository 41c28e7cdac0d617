"""Shared fixtures for emulator tests: start emulated spdk_tgt processes and talk JSON-RPC to them.

``emulator_node(idx)`` starts ``tests/emulator/spdk_tgt`` with its own Unix socket (short path under
/tmp, AF_UNIX limits paths to 107 bytes) and returns a ``Node``: ``.sock``, ``.addr``
(127.0.0.<idx+1>), ``.call(method, **params)``, ``.stop(sig)``, ``.restart()``, ``.disk(name, size)``.
Every process a test started is killed when the test ends.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

EMULATOR_DIR = os.path.dirname(os.path.abspath(__file__))
SPDK_TGT = os.path.join(EMULATOR_DIR, "spdk_tgt")
START_TIMEOUT = 15.0


class EmulatorRpcError(Exception):
    def __init__(self, method, error):
        super().__init__("%s: %s %s" % (method, error.get("code"), error.get("message")))
        self.method = method
        self.code = error.get("code")
        self.message = error.get("message")


class Connection:
    """A persistent JSON-RPC connection (responses may arrive split or concatenated)."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.decoder = json.JSONDecoder()

    def request(self, method, params=None):
        req = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        self.next_id += 1
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req))
        return self.receive()

    def send_raw(self, text):
        self.sock.sendall(text.encode())

    def receive(self):
        while True:
            text = self.buf.decode("utf-8", "replace").lstrip()
            if text:
                try:
                    value, end = self.decoder.raw_decode(text)
                    self.buf = text[end:].encode()
                    return value
                except ValueError:
                    pass
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("emulator closed the connection")
            self.buf += chunk

    def close(self):
        self.sock.close()


class Node:
    """One emulated spdk_tgt process."""

    def __init__(self, idx, workdir, args=()):
        self.idx = idx
        self.workdir = workdir
        self.sock = os.path.join(workdir, "n%d.sock" % idx)
        self.addr = "127.0.0.%d" % (idx + 1)
        self.log_path = os.path.join(workdir, "n%d.log" % idx)
        self.rpc_log_path = self.sock + ".rpc.jsonl"
        self.args = list(args)
        self.proc = None
        self.conn = None

    # ---- life cycle --------------------------------------------------------------------
    def start(self, args=None):
        if args is not None:
            self.args = list(args)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, SPDK_TGT, "-r", self.sock, "-i", str(self.idx)] + self.args,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        probe = "rpc_get_methods" if "--wait-for-rpc" in self.args else "framework_wait_init"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited (%s): %s" % (self.proc.returncode, self.log()))
            try:
                self.conn = Connection(self.sock)
                self.conn.request(probe)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("emulator did not answer on %s: %s" % (self.sock, self.log()))

    def stop(self, sig=signal.SIGINT, timeout=10.0):
        """Send ``sig`` and wait for the process to end; returns its exit code."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def restart(self, sig=signal.SIGINT, args=None):
        self.stop(sig)
        return self.start(args)

    def kill(self):
        self.stop(signal.SIGKILL)

    # ---- RPC ---------------------------------------------------------------------------
    def response(self, method, params=None):
        """The whole JSON-RPC response object."""
        return self.conn.request(method, params)

    def call(self, method, **params):
        """The result, or EmulatorRpcError carrying SPDK's code and message."""
        answer = self.response(method, params or None)
        if "error" in answer:
            raise EmulatorRpcError(method, answer["error"])
        return answer["result"]

    def error(self, method, **params):
        """The error object of a call that must fail (AssertionError if it succeeds)."""
        answer = self.response(method, params or None)
        assert "error" in answer, "%s unexpectedly succeeded: %r" % (method, answer.get("result"))
        return answer["error"]

    # ---- helpers -----------------------------------------------------------------------
    def disk(self, name, size=64 << 20):
        """A sparse backing file in the node's work directory (created if missing)."""
        path = os.path.join(self.workdir, name)
        if not os.path.exists(path):
            with open(path, "wb") as handle:
                handle.truncate(size)
        return path

    def log(self):
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-2000:]
        except OSError:
            return ""

    def rpc_log(self):
        with open(self.rpc_log_path) as handle:
            return [json.loads(line) for line in handle]


@pytest.fixture
def emulator_workdir():
    path = tempfile.mkdtemp(prefix="emu-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def emulator_node(emulator_workdir):
    """Factory: ``emulator_node(idx=0, args=())`` starts a node; all are killed at teardown."""
    nodes = []

    def start(idx=0, args=()):
        node = Node(idx, emulator_workdir, args)
        nodes.append(node)
        return node.start()

    yield start
    for node in nodes:
        node.kill()

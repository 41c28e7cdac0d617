"""Which spdk_tgt the integration tests run, and the one way they start it.

``TARGET`` decides: the emulator (tests/emulator/spdk_tgt) by default, or the real SPDK binary
named by ``SPDK_TGT`` (``make test-real`` sets it). Every integration test starts its targets
through ``TargetProcess``, so a suite written once runs on both kinds.

Real targets run side by side here without hugepages (``--no-huge -s 2048``) and with a negative
shared-memory id (``-i -1``): SPDK then gives DPDK ``--no-shconf`` and a per-process file prefix,
so a restarted target never finds its predecessor's shared configuration and never starts as a
DPDK secondary process ("Could not open /var/run/dpdk/spdk0/hugepage_data").

Tests read a per-node RPC log to prove what a run sent (nothing mutating in check mode, no
``bdev_raid_create`` after a crash). A real target keeps no such log, so every target's socket is
served by ``RpcRecorder``, a pass-through proxy that writes it, for both kinds alike: the same
assertions hold on both. The recorder can also hold back the requests of chosen methods, the fault
a test needs to make one replica node slow.
"""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from tests.emulator.spdk_emu import methods as emulator_methods
from tests.emulator.spdk_emu import rpc as emulator_rpc

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATOR = os.path.join(TESTS, "emulator", "spdk_tgt")

emulator_methods.load()

START_TIMEOUT = float(os.environ.get("SPDK_TGT_START_TIMEOUT", "60"))
# Memory without hugepages: -s 512 is too little for a real target (its iSCSI PDU pool fails).
DEFAULT_REAL_ARGS = "--no-huge -s 2048 --no-pci --disable-cpumask-locks"


class TargetKind(object):
    """The emulator, or a real spdk_tgt binary: how to start one and what it offers."""

    def __init__(self, binary=None, extra_args=None):
        self.binary = binary or EMULATOR
        self.is_emulator = binary is None
        self.name = "emulator" if self.is_emulator else "real spdk_tgt"
        self.extra_args = shlex.split(extra_args if extra_args is not None else DEFAULT_REAL_ARGS)

    @classmethod
    def from_environment(cls):
        return cls(os.environ.get("SPDK_TGT") or None, os.environ.get("SPDK_TGT_ARGS"))

    def command(self, sock, index):
        """The command line of target number ``index`` serving ``sock``."""
        if self.is_emulator:
            return [sys.executable, EMULATOR, "-r", sock, "-i", str(index), "--rpc-log", ""]
        # Two cores here: spread the reactors over both.
        return [self.binary, "-r", sock, "-i", "-1", "-m", "0x%x" % (1 << (index % 2))] + self.extra_args

    def runnable_reason(self):
        """None when this kind can run here, else why not (a missing binary)."""
        if not os.access(self.binary, os.X_OK):
            return "%s is not executable%s" % (self.binary, "" if self.is_emulator else " (SPDK_TGT)")
        return None


TARGET = TargetKind.from_environment()


def is_mutating(method):
    """Whether ``method`` changes the target: the emulator's registry says so for every method it serves."""
    entry = emulator_rpc.METHODS.get(method)
    return True if entry is None else bool(entry.mutating)


class RpcRecorder(object):
    """A Unix-socket pass-through in front of a target's own socket that logs every request.

    The log has the emulator's format (one JSON line: time, method, params, mutating). Requests of a
    method in ``delays`` are held that many seconds before they are passed on, or, when the value is
    a function, until it returns.
    """

    def __init__(self, front, back, log_path):
        self.front, self.back, self.log_path = front, back, log_path
        self.delays = {}
        self.gate = None          # gate(method, params): called for every request before it goes on
        self.server = None
        self.acceptor = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = []

    def start(self):
        if os.path.exists(self.front):
            os.unlink(self.front)
        self.stopping.clear()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.front)
        self.server.listen(16)
        self.acceptor = threading.Thread(target=self._accept, args=(self.server,), daemon=True)
        self.acceptor.start()

    def stop(self):
        """Stop listening and drop every open connection (the target behind it is going away).

        A socket is closed only once no thread can still use it: closed under a thread about to call
        accept or recv, its number goes to the next socket opened (the next test's recorder, say), and
        that thread would serve the new socket's client with this recorder's target."""
        self.stopping.set()
        if self.server is not None:
            _shutdown(self.server)           # wakes the acceptor; its accept fails from now on
            self.acceptor.join()
            self.server.close()
            self.server = None
        for link in list(self.connections):
            link.shutdown()                  # wakes both of its threads; the last one closes it
        self.connections = []
        if os.path.exists(self.front):
            os.unlink(self.front)

    def _accept(self, server):
        while not self.stopping.is_set():
            try:
                client = server.accept()[0]
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.back)
            except OSError:
                _close(client)
                _close(upstream)
                continue
            link = _Link(client, upstream)
            self.connections.append(link)
            threading.Thread(target=self._requests, args=(link,), daemon=True).start()
            threading.Thread(target=self._answers, args=(link,), daemon=True).start()

    def _requests(self, link):
        client, upstream = link.client, link.upstream
        decoder = json.JSONDecoder()
        pending = ""
        try:
            while True:
                chunk = client.recv(1 << 16)
                if not chunk:
                    break
                pending += chunk.decode("utf-8", "replace")
                while True:
                    text = pending.lstrip()
                    if not text:
                        pending = ""
                        break
                    try:
                        request, end = decoder.raw_decode(text)
                    except ValueError:
                        break          # an incomplete request: wait for the rest
                    pending = text[end:]
                    self._pass_on(request, text[:end], upstream)
                if len(pending) > (1 << 20):       # not JSON at all: pass it on as it is
                    upstream.sendall(pending.encode())
                    pending = ""
        except OSError:
            pass
        finally:
            link.done()

    def _pass_on(self, request, raw, upstream):
        method = request.get("method") if isinstance(request, dict) else None
        if method is not None:
            self._log(method, request.get("params"))     # logged when asked, before any hold
        if self.gate is not None and method is not None:
            self.gate(method, request.get("params"))       # may hold the request, or raise OSError to drop it
        delay = self.delays.get(method, 0)
        if callable(delay):
            delay()
        elif delay:
            time.sleep(delay)
        upstream.sendall(raw.encode())

    @staticmethod
    def _answers(link):
        upstream, client = link.upstream, link.client
        try:
            while True:
                chunk = upstream.recv(1 << 16)
                if not chunk:
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            link.done()

    def _log(self, method, params):
        entry = {"time": round(time.time(), 6), "method": method, "params": params, "mutating": is_mutating(method)}
        with self.lock, open(self.log_path, "a") as handle:
            handle.write(json.dumps(entry, separators=(",", ":")) + "\n")


class _Link(object):
    """A client's connection and its own connection to the target, used by two threads (requests one way,
    answers the other). Either end going away shuts both down; the second thread to finish closes them."""

    def __init__(self, client, upstream):
        self.client, self.upstream = client, upstream
        self.users = 2
        self.lock = threading.Lock()

    def shutdown(self):
        _shutdown(self.client)
        _shutdown(self.upstream)

    def done(self):
        self.shutdown()
        with self.lock:
            self.users -= 1
            last = self.users == 0
        if last:
            _close(self.client)
            _close(self.upstream)


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass


class TargetProcess(object):
    """One spdk_tgt (of ``TARGET``'s kind): start, stop, restart, kill, and its RPC log.

    ``sock`` is where clients connect: the recorder's socket, in front of the target's own
    (``sock + ".tgt"``).
    """

    def __init__(self, sock, index, log_path, rpc_log_path, kind=None):
        self.kind = kind or TARGET
        self.sock = sock
        self.index = index
        self.log_path = log_path
        self.rpc_log_path = rpc_log_path
        self.proc = None
        self.recorder = RpcRecorder(sock, sock + ".tgt", rpc_log_path)

    @property
    def is_emulator(self):
        return self.kind.is_emulator

    @property
    def target_sock(self):
        return self.recorder.back

    def start(self, extra_args=()):
        command = self.kind.command(self.target_sock, self.index)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command + list(extra_args), stdout=log, stderr=log, start_new_session=True)
        self._wait_ready("rpc_get_methods" if "--wait-for-rpc" in extra_args else "framework_wait_init")
        self.recorder.start()
        return self

    def _wait_ready(self, probe):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (self.kind.name, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.target_sock):
                try:
                    direct_call(self.target_sock, probe)
                    return
                except (OSError, ValueError, RuntimeError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("%s did not answer on %s within %ss: %s"
                           % (self.kind.name, self.target_sock, START_TIMEOUT, self.log_tail()))

    def stop(self, sig=signal.SIGINT, timeout=30.0):
        """Send ``sig`` (SIGINT: SPDK's clean shutdown) and wait for the end; SIGKILL after ``timeout``."""
        self.recorder.stop()
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self):
        return self.stop(signal.SIGKILL, timeout=10.0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-2000:]
        except OSError:
            return ""

    def rpc_log(self):
        """Every call the target was sent, oldest first: dicts with time, method, params, mutating."""
        if not os.path.exists(self.rpc_log_path):
            return []
        with open(self.rpc_log_path) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def delay(self, method, seconds):
        """Hold every ``method`` request ``seconds`` before the target gets it (0 clears it); ``seconds``
        may be a function instead, that returns when the request may go on."""
        self.recorder.delays[method] = seconds

    def set_gate(self, gate):
        """``gate(method, params)`` sees every request before the target does (None removes it); it may
        hold it, or raise OSError to drop it and close the connection, as a dead client would."""
        self.recorder.gate = gate


def direct_call(sock, method, params=None, timeout=30.0):
    """One JSON-RPC call on a fresh connection; the result, or RuntimeError with SPDK's error."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(sock)
        request = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            request["params"] = params
        conn.sendall(json.dumps(request).encode())
        decoder, buf = json.JSONDecoder(), ""
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                raise OSError("connection closed before the answer to %s" % method)
            buf += chunk.decode("utf-8", "replace")
            try:
                answer, _end = decoder.raw_decode(buf.lstrip())
                break
            except ValueError:
                continue
    finally:
        conn.close()
    if "error" in answer:
        raise RuntimeError("%s: %s" % (method, answer["error"]))
    return answer.get("result")

# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A scriptable JSON-RPC server on a thread, speaking SPDK's framing, for client tests.

It answers like spdk_tgt: one JSON object per request, concatenated with no delimiter,
unknown methods get -32601. A test scripts per method what comes back and how:

    server.reply("bdev_get_bdevs", result=[...])                 # every call
    server.reply("bdev_lvol_create", error=(-17, "File exists"))
    server.reply("spdk_get_version", result=..., split=True)     # one byte per write
    server.reply("x", result=1, hold=True)                       # sent joined with the next answer
    server.reply("x", result=1, wrong_id=True)                   # answers another id
    server.reply("x", delay=2.0, result=1)                       # answers late
    server.reply("x", close=True)                                # closes instead of answering
    server.reply("x", result=..., truncate=10)                   # first 10 bytes, then closes
    server.reply("x", raw=b'{"id": 1, "result": tru}')           # raw bytes (malformed)
    server.reply("x", once=True, ...)                            # only the next call; then the default

``server.requests`` lists every request received; ``server.connections`` counts accepts.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time


class Reply(object):
    def __init__(self, result=None, error=None, split=False, hold=False, wrong_id=False,
                 delay=0.0, close=False, truncate=None, raw=None):
        self.result = result
        self.error = error
        self.split = split
        self.hold = hold
        self.wrong_id = wrong_id
        self.delay = delay
        self.close = close
        self.truncate = truncate
        self.raw = raw

    def encode(self, request):
        if self.raw is not None:
            return self.raw
        answer = {"jsonrpc": "2.0", "id": request.get("id")}
        if self.wrong_id:
            answer["id"] = (request.get("id") or 0) + 1000
        if self.error is not None:
            answer["error"] = {"code": self.error[0], "message": self.error[1]}
        else:
            answer["result"] = self.result
        return json.dumps(answer).encode("utf-8")


METHOD_NOT_FOUND = Reply(error=(-32601, "Method not found"))


class RpcServer(object):
    """Serves on a Unix socket (default) or on TCP 127.0.0.1 with ``tcp=True``."""

    def __init__(self, path=None, tcp=False):
        self.tcp = tcp
        self._tmpdir = None
        if path is None and not tcp:
            self._tmpdir = tempfile.mkdtemp(prefix="spdk-rpc-test-")
            path = os.path.join(self._tmpdir, "spdk.sock")
        self.path = path
        self.port = None
        self.requests = []
        self.connections = 0
        self._default = {}
        self._once = {}
        self._lock = threading.Lock()
        self._listener = None
        self._threads = []
        self._clients = []
        self._stopping = threading.Event()

    # -- scripting ----------------------------------------------------------------

    def reply(self, method, once=False, **kwargs):
        reply = Reply(**kwargs)
        with self._lock:
            if once:
                self._once.setdefault(method, []).append(reply)
            else:
                self._default[method] = reply
        return self

    def methods_called(self):
        return [r.get("method") for r in self.requests]

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port if self.tcp else self.path

    # -- life cycle ---------------------------------------------------------------

    def start(self, after=0.0):
        """Listen now, or ``after`` seconds from now (a target that is still starting)."""
        if after:
            timer = threading.Thread(target=self._start_later, args=(after,), daemon=True)
            timer.start()
            self._threads.append(timer)
        else:
            self._listen()
        return self

    def stop(self):
        self._stopping.set()
        if self._listener is not None:
            _close_quietly(self._listener)  # shutdown() wakes the thread blocked in accept()
        for conn in list(self._clients):
            _close_quietly(conn)
        for thread in self._threads:
            thread.join(timeout=5)
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
        if self._tmpdir:
            os.rmdir(self._tmpdir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _start_later(self, after):
        time.sleep(after)
        if not self._stopping.is_set():
            self._listen()

    def _listen(self):
        if self.tcp:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port or 0))
            self.port = listener.getsockname()[1]
        else:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.path)
        listener.listen(8)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- one connection -----------------------------------------------------------

    def _serve(self, conn):
        decoder = json.JSONDecoder()
        buffered = ""
        held = b""
        try:
            while not self._stopping.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data.decode("utf-8")
                while True:
                    buffered = buffered.lstrip()
                    if not buffered:
                        break
                    try:
                        request, end = decoder.raw_decode(buffered)
                    except ValueError:
                        break  # wait for the rest of the request
                    buffered = buffered[end:]
                    held = self._answer(conn, request, held)
                    if held is None:
                        return
        except OSError:
            return
        finally:
            _close_quietly(conn)

    def _answer(self, conn, request, held):
        """Answer one request; return bytes held back for the next answer, None to hang up."""
        with self._lock:
            self.requests.append(request)
            queue = self._once.get(request.get("method"))
            reply = queue.pop(0) if queue else self._default.get(request.get("method"), METHOD_NOT_FOUND)
        if reply.delay:
            self._stopping.wait(reply.delay)
        if reply.close:
            return None
        payload = held + reply.encode(request)
        if reply.truncate is not None:
            conn.sendall(payload[:reply.truncate])
            return None
        if reply.hold:
            return payload
        if reply.split:
            for index in range(len(payload)):
                conn.sendall(payload[index:index + 1])
                time.sleep(0.0005)
        else:
            conn.sendall(payload)
        return b""


def _close_quietly(conn):
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()

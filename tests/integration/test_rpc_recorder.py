"""The RPC recorder every test puts in front of a target (spdk_targets.RpcRecorder): it passes requests on,
logs them, and, once stopped, leaves nothing behind that could serve the next test's sockets.

A recorder that closed its listening socket under its accept thread let that thread accept a client of the
next socket opened in the process (which gets the same number), and drop it: the last stop's CI failure,
"Connection reset by peer" from a live target."""
import json
import os
import socket
import tempfile
import threading

import pytest

from tests.integration.spdk_targets import RpcRecorder, direct_call

pytestmark = [pytest.mark.integration]


class AnsweringTarget(object):
    """A Unix socket that answers every JSON-RPC request with ``{"method": <its method>}``."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    @staticmethod
    def answer(conn):
        with conn:
            data = conn.recv(65536)
            if data:                                   # one request per connection, as direct_call sends
                request = json.loads(data.decode())
                conn.sendall(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                         "result": {"method": request["method"]}}).encode())

    def stop(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join()
        self.sock.close()


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="rec-", dir="/tmp")      # AF_UNIX paths must stay short
    yield path
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


def test_a_request_goes_through_and_is_logged(workdir):
    target = AnsweringTarget(os.path.join(workdir, "t.sock"))
    recorder = RpcRecorder(os.path.join(workdir, "r.sock"), os.path.join(workdir, "t.sock"),
                           os.path.join(workdir, "log.jsonl"))
    recorder.start()
    try:
        assert direct_call(os.path.join(workdir, "r.sock"), "bdev_get_bdevs") == {"method": "bdev_get_bdevs"}
    finally:
        recorder.stop()
        target.stop()
    with open(os.path.join(workdir, "log.jsonl")) as handle:
        assert [json.loads(line)["method"] for line in handle] == ["bdev_get_bdevs"]


def test_a_stopped_recorder_keeps_no_thread_that_could_serve_another_socket(workdir):
    target = AnsweringTarget(os.path.join(workdir, "t.sock"))
    recorder = RpcRecorder(os.path.join(workdir, "r.sock"), os.path.join(workdir, "t.sock"),
                           os.path.join(workdir, "log.jsonl"))
    recorder.start()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(10)
    client.connect(os.path.join(workdir, "r.sock"))          # a connection still open when the recorder stops
    try:
        direct_call(os.path.join(workdir, "r.sock"), "spdk_get_version")
        recorder.stop()
        assert not recorder.acceptor.is_alive()
        assert client.recv(1) == b""                          # the open connection was ended, not left hanging
        assert not os.path.exists(os.path.join(workdir, "r.sock"))
    finally:
        client.close()
        target.stop()

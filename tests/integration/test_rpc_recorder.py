"""The RPC recorder every test puts in front of a target (spdk_targets.RpcRecorder): it passes requests on,
logs them, and, once stopped, leaves nothing behind that could serve the next test's sockets.

A recorder that closed its listening socket under its accept thread let that thread accept a client of the
next socket opened in the process (which gets the same number), and drop it: the last stop's CI failure,
"Connection reset by peer" from a live target."""
import json
import os
import socket
import tempfile

import pytest

from tests.integration.spdk_targets import RpcRecorder, direct_call
from tests.integration.ssh_nodes import EchoTarget

pytestmark = [pytest.mark.integration]


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="rec-", dir="/tmp")      # AF_UNIX paths must stay short
    yield path
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


def test_a_request_goes_through_and_is_logged(workdir):
    target = EchoTarget(os.path.join(workdir, "t.sock"), "t")
    recorder = RpcRecorder(os.path.join(workdir, "r.sock"), os.path.join(workdir, "t.sock"),
                           os.path.join(workdir, "log.jsonl"))
    recorder.start()
    try:
        assert direct_call(os.path.join(workdir, "r.sock"), "bdev_get_bdevs") == {"node": "t", "params": None}
    finally:
        recorder.stop()
        target.stop()
    with open(os.path.join(workdir, "log.jsonl")) as handle:
        assert [json.loads(line)["method"] for line in handle] == ["bdev_get_bdevs"]


def test_a_stopped_recorder_keeps_no_thread_that_could_serve_another_socket(workdir):
    target = EchoTarget(os.path.join(workdir, "t.sock"), "t")
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

"""Fixtures shared by the unit tests.

``rpc_server`` is a scriptable JSON-RPC server on a real Unix socket (tests/unit/rpc_server.py);
``tcp_rpc_server`` the same on 127.0.0.1. Both stop when the test ends.
"""
import os
import sys

import pytest

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
if UNIT_DIR not in sys.path:  # rpc_server is imported by tests in sub-directories
    sys.path.insert(0, UNIT_DIR)

from rpc_server import RpcServer  # noqa: E402


@pytest.fixture
def rpc_server():
    server = RpcServer().start()
    yield server
    server.stop()


@pytest.fixture
def tcp_rpc_server():
    server = RpcServer(tcp=True).start()
    yield server
    server.stop()

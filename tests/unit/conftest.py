"""Fixtures shared by the unit tests.

``rpc_server`` is a scriptable JSON-RPC server on a real Unix socket (tests/unit/rpc_server.py);
``tcp_rpc_server`` the same on 127.0.0.1. Both stop when the test ends.

The unit helpers are modules of the package ``tests`` (``from tests.unit.expected_calls import
run_module``). The test files under tests/unit/plugins/ and the scenario modules still import them by
their bare names (``from expected_calls import ...``), so tests/unit stays on the path for them until
they import ``tests.unit.<helper>``.
"""
import os
import sys

import pytest

from tests.unit.rpc_server import RpcServer

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
if UNIT_DIR not in sys.path:
    sys.path.append(UNIT_DIR)


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

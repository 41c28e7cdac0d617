"""Fixtures shared by the unit tests.

``rpc_server`` is a scriptable JSON-RPC server on a real Unix socket (tests/unit/rpc_server.py);
``tcp_rpc_server`` the same on 127.0.0.1. Both stop when the test ends.

The unit helpers are modules of the package ``tests`` (``from tests.unit.expected_calls import
run_module``), imported by that name everywhere; tests/conftest.py puts the repository root on the path.
"""
import pytest

from tests.unit.rpc_server import RpcServer


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

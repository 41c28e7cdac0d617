"""Fixtures for tests on the multi-host topology of scripts/multihost.sh.

``multihost`` (session scope) runs ``scripts/multihost.sh up`` once, yields a
``multihost_topology.Topology`` with the nodes (name, address, the ssh argv that runs a command
there, the node's sshd and mount namespace), the state directory and the inventory
``inventories/multihost``, and runs ``down`` at the end, also when a test failed.
"""
import os
import shutil
import sys

import pytest

from tests.multihost.multihost_topology import Topology


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "multihost: needs the topology of scripts/multihost.sh (root, sshd, mount namespaces)")


def _missing_reason():
    if not sys.platform.startswith("linux"):
        return "the topology needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "scripts/multihost.sh up needs root (mount namespaces, sshd for root logins, apt-get)"
    for tool in ("unshare", "flock"):
        if shutil.which(tool) is None:
            return "%s is not installed (util-linux)" % tool
    return None


@pytest.fixture(scope="session")
def multihost():
    reason = _missing_reason()
    if reason:
        pytest.skip(reason)
    topology = Topology()
    try:
        topology.up()
        yield topology
    finally:
        down = topology.script("down", check=False)
        if down.returncode != 0:
            pytest.fail("multihost.sh down exited %d: %s" % (down.returncode, down.stderr), pytrace=False)

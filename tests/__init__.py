"""The collection's test suites and their helpers, one package: ``tests.<suite>.<module>``.

Helpers are imported by their full name (``from tests.integration.spdk_targets import TARGET``,
``from tests.hostio import HostIO``, ``from tests.emulator.spdk_emu import hostio``); the repository
root is on ``sys.path`` (tests/conftest.py puts it there for pytest; the executables host_io, spdk_tgt
and spdk_io set their own path). Nothing in tests/ ships: galaxy.yml's build_ignore leaves it out.
"""

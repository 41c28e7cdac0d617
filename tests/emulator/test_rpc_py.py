"""SPDK's own client (rpc.py, the ``spdk-rpc`` CLI of the ``spdk`` package) as a second oracle.

fixtures/record_rpc_py.py sends the request list of fixtures/rpc_py_cases.py, mostly as rpc.py
command lines through one ``spdk-rpc --server`` process (so the params are exactly what rpc.py
sends, its defaults included), to fresh emulated targets, and the answers are compared with
fixtures/rpc_py_real.jsonl, the same list recorded against a real SPDK v26.05 spdk_tgt.

What "the same answer" means (record_rpc_py.compare_records): the request sent is the same, an
error has the same code and message, a result has the same structure and values, except values
no two runs share: UUIDs anywhere in a string and NGUIDs, and the host's ephemeral port in a
qpair's peer_address; rpc_get_methods is compared on the methods the emulator implements (in the
real target's order). Re-record the real file with (see tests/emulator/README.md):

  .venv/bin/python -m tests.emulator.fixtures.record_rpc_py --out tests/emulator/fixtures/rpc_py_real.jsonl \\
      --start 'SPDK_TGT -r {sock} -i -1 -m 0x1 -s 2048 --no-huge --no-pci --disable-cpumask-locks {args}'
"""
import os
import sys

import pytest

from tests.emulator.fixtures import record_rpc_py, rpc_py_cases
from tests.emulator.spdk_emu import methods as emu_methods, rpc as emu_rpc

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
REAL = os.path.join(FIXTURES, "rpc_py_real.jsonl")
START = sys.executable + " " + os.path.join(HERE, "spdk_tgt") + " -r {sock} -i {idx} {args}"

emu_methods.load()
IMPLEMENTED = {name for name in emu_rpc.METHODS if not name.startswith("emu_")}


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The request list recorded against the emulator (all phases, about 10 s)."""
    spdk_rpc = record_rpc_py.default_spdk_rpc()
    assert os.path.exists(spdk_rpc), "spdk-rpc not found next to %s: run make venv (requirements/dev.txt)" % (
        sys.executable)
    return record_rpc_py.record(START, str(tmp_path_factory.mktemp("rpcpy")), spdk_rpc=spdk_rpc)


def exchanges(records):
    return [r for r in records if "event" not in r]


def test_every_emulated_method_is_sent_by_spdk_rpc_cli(emulated):
    """Each method the emulator implements is exercised through the real spdk-rpc entry point, and
    answered at least once with a result and once with an error (some errors need params rpc.py
    cannot send: those go through the package's Python client)."""
    by_cli, outcomes = set(), {}
    for record in exchanges(emulated):
        if record["request"] is None:
            continue
        method = record["request"]["method"]
        if record["via"] == "spdk-rpc":
            by_cli.add(method)
        outcomes.setdefault(method, set()).add("error" in record["response"])
    missing = sorted(IMPLEMENTED - by_cli)
    assert not missing, "methods rpc_py_cases.py never sends through spdk-rpc: %s" % missing
    # framework_wait_init and keyring_get_keys cannot fail: SPDK does not even look at their params
    one_sided = sorted(m for m in IMPLEMENTED - {"framework_wait_init", "keyring_get_keys"}
                       if len(outcomes.get(m, ())) < 2)
    assert not one_sided, "methods with only a success or only an error case: %s" % one_sided


def test_rpc_py_requests_are_answered_as_real_spdk_answers(emulated):
    if not os.path.exists(REAL):
        pytest.fail("no real-SPDK recording at %s: record one (module docstring)" % REAL)
    real = record_rpc_py.read_jsonl(REAL)
    matched, total, mismatches = record_rpc_py.compare_records(real, emulated, IMPLEMENTED)
    print("rpc.py: %d/%d exchanges answered as real SPDK v26.05 answers" % (matched, total))
    assert total == len(exchanges(real)) and total >= 300
    assert not mismatches, "\n".join(record_rpc_py.describe(*m) for m in mismatches)


def test_the_real_recording_was_made_from_this_request_list():
    """Every step of rpc_py_cases.py has its answers in the real recording (re-record after
    changing the list)."""
    if not os.path.exists(REAL):
        pytest.fail("no real-SPDK recording at %s" % REAL)
    recorded = {(r["phase"], r["step"]) for r in exchanges(record_rpc_py.read_jsonl(REAL))}
    wanted = {(phase["name"], number) for phase in rpc_py_cases.PHASES
              for number, step in enumerate(phase["steps"]) if step["kind"] != "grow"}
    assert wanted == recorded

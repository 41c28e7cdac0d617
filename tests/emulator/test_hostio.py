"""spdk_io, the host-side tool, and the fault injection RPCs it is used with."""
import hashlib
import json
import os
import struct
import time

from tests.emulator.nvmf_support import address, export, io_target, spdk_io, wait_until
from tests.emulator.spdk_emu.hostio import pattern_bytes


def test_write_then_verify_by_pattern_and_by_file(emulator_node, tmp_path):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1")
    target = io_target(node, nqn, port)
    written = spdk_io("write", *target, "--offset", 8192, "--length", 1 << 20, "--seed", "s1", "--sha256")
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == "sha256=" + hashlib.sha256(pattern_bytes("random", "s1", 8192, 1 << 20)).hexdigest()
    assert spdk_io("verify", *target, "--offset", 8192 + 4096, "--length", 8192, "--seed", "s1").returncode == 0
    other = spdk_io("verify", *target, "--offset", 8192, "--length", 8192, "--seed", "s2")
    assert other.returncode == 1 and "MISMATCH at byte offset 8192" in other.stderr
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(65536))
    assert spdk_io("write", *target, "--offset", 0, "--file", blob).returncode == 0
    assert spdk_io("verify", *target, "--offset", 0, "--file", blob).returncode == 0
    out = tmp_path / "back"
    assert spdk_io("read", *target, "--offset", 0, "--length", 65536, "--output", out).returncode == 0
    assert out.read_bytes() == blob.read_bytes()


def test_replay_style_arguments_and_exit_codes(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1")
    assert spdk_io("write", "--nqn", nqn, "--traddr", node.addr, "--trsvcid", port, "--offset", 0,
                   "--length", 4096).returncode == 0
    assert spdk_io("write", *io_target(node, nqn + "-nope", port), "--length", 4096).returncode == 2
    assert spdk_io("write", *io_target(node, nqn, port), "--offset", 100, "--length", 4096).returncode != 0


def test_ana_inaccessible_writes_are_retried_after_a_second(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1", ana_reporting=True)
    listener = address(node.addr, port)
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener, ana_state="inaccessible")
    started = time.monotonic()
    writer = spdk_io("write", *io_target(node, nqn, port), "--length", 4096, "--pattern", "0x11", background=True)
    wait_until(lambda: node.call("nvmf_subsystem_get_controllers", nqn=nqn))
    time.sleep(0.2)
    node.call("nvmf_subsystem_listener_set_ana_state", nqn=nqn, listen_address=listener, ana_state="optimized")
    assert writer.wait(10) == 0
    assert time.monotonic() - started >= 1.0
    assert spdk_io("verify", *io_target(node, nqn, port), "--length", 4096, "--pattern", "0x11").returncode == 0


def test_continuous_writer_logs_every_completed_write(emulator_node, tmp_path):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1")
    log = tmp_path / "writes.jsonl"
    run = spdk_io("writer", *io_target(node, nqn, port), "--length", 1 << 20, "--io-size", 4096,
                  "--queue-depth", 1, "--duration", 0.5, "--log", log)
    assert run.returncode == 0, run.stderr
    counts = json.loads(run.stdout)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert counts["ok"] == len(entries) > 10 and counts["failed"] == 0
    assert len({e["seq"] for e in entries}) == len(entries)
    last = entries[-1]
    out = tmp_path / "block"
    spdk_io("read", *io_target(node, nqn, port), "--offset", last["offset"], "--length", 4096, "--output", out)
    assert struct.unpack(">Q", out.read_bytes()[:8])[0] == last["seq"], "each block carries its write's number"


def test_bdev_fault_fails_host_io_until_cleared(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1")
    assert node.call("emu_bdev_fault", name="vol1", ops=["write"]) == ["write"]
    failed = spdk_io("write", *io_target(node, nqn, port), "--length", 4096)
    assert failed.returncode == 3 and "I/O failed" in failed.stderr
    assert spdk_io("read", *io_target(node, nqn, port), "--length", 4096).returncode == 0
    assert node.call("emu_bdev_fault", name="vol1", clear=True) == []
    assert spdk_io("write", *io_target(node, nqn, port), "--length", 4096).returncode == 0
    assert node.error("emu_bdev_fault", name="nope")["code"] == -19


def test_node_stall_holds_every_answer_for_its_duration(emulator_node):
    node = emulator_node()
    nqn, port, _uuid = export(node, "vol1")
    assert node.call("emu_node_stall", seconds=1.0) is True
    started = time.monotonic()
    assert spdk_io("read", *io_target(node, nqn, port), "--length", 4096).returncode == 0
    assert time.monotonic() - started >= 0.9
    assert node.call("bdev_get_bdevs", name="vol1")[0]["name"] == "vol1", "RPCs answer during a stall"

"""tests/hostio (host_io and its Python API): one host I/O interface for both kinds of target.

Each behaviour runs on the emulator (backend ``emulator``: spdk_io) and, when ``SPDK_TGT`` names a
real spdk_tgt and ``SPDK_DD`` a real spdk_dd, on a real target too (backend ``spdk_dd``, marked
``real_spdk``). Both get the same volume: an lvol on an aio disk, exported over NVMe/TCP on
127.0.0.1 with ANA reporting, to one allowed host, with the spare ANA group 2 inaccessible on the
listener (as an engine's frontend has it): moving the namespace to group 2 is an engine
snapshot's host I/O pause.
"""
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from tests.emulator.nvmf_support import SPDK_IO, address, free_port
from tests.emulator.spdk_emu import hostio as spdk_io_module
from tests.emulator.spdk_emu.fabric import format_dhchap_key
from tests.hostio import HOST_IO, ConnectError, HostIO, IOFailed, Mismatch, choose_backend, pattern_bytes
from tests.hostio import cli as host_io_cli
from tests.hostio import spdk_dd as host_io_dd

MIB = 1 << 20
NQN = "nqn.2026-01.io.spdk-storage:hio-vol"
HOST = "nqn.2026-01.io.spdk-storage:host:app"
REAL_TGT = os.environ.get("SPDK_TGT")
REAL_DD = os.environ.get("SPDK_DD")
REAL_ARGS = ["-i", "-1", "-m", "0x1", "--no-huge", "-s", "2048", "--no-pci", "--disable-cpumask-locks"]


def real_target_missing():
    """Why the real-target variants cannot run here, or None."""
    if not REAL_TGT or not REAL_DD:
        return ("needs a real spdk_tgt and spdk_dd: set SPDK_TGT and SPDK_DD to their paths "
                "(the emulator variant of this test ran)")
    for path in (REAL_TGT, REAL_DD):
        if not os.access(path, os.X_OK):
            return "%s is not executable" % path
    return None


class RealTarget(object):
    """A real spdk_tgt (SPDK_TGT) for these tests, on its own socket; stopped with SIGINT."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.sock = os.path.join(workdir, "tgt.sock")
        self.addr = "127.0.0.1"
        self.log_path = os.path.join(workdir, "tgt.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([REAL_TGT, "-r", self.sock] + REAL_ARGS, stdout=log, stderr=log,
                                         start_new_session=True)
        self.client = None
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("spdk_tgt exited: %s" % self.log())
            if os.path.exists(self.sock):
                try:
                    self.client = SpdkRpcClient(self.sock, timeout=60.0, connect_retries=1)
                    self.client.call("framework_wait_init", None, mutating=False)
                    break
                except Exception:  # pylint: disable=broad-except
                    self.client = None
            if time.monotonic() > deadline:
                raise RuntimeError("spdk_tgt did not start: %s" % self.log())
            time.sleep(0.1)

    def call(self, method, **params):
        return self.client.call(method, params or None, mutating=False)

    def disk(self, name, size):
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as handle:
            handle.truncate(size)
        return path

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-3000:]

    def stop(self):
        if self.client is not None:
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Volume(object):
    """The exported lvol on one target, and the host I/O of the backend that fits the target."""

    def __init__(self, kind, node):
        self.kind = kind
        self.node = node
        self.port = free_port(node.addr)
        self.listener = address(node.addr, self.port)
        node.call("bdev_aio_create", name="hio-disk", filename=node.disk("hio-disk.img", 256 * MIB), block_size=4096)
        node.call("bdev_lvol_create_lvstore", bdev_name="hio-disk", lvs_name="hio", cluster_sz=MIB)
        node.call("bdev_lvol_create", lvs_name="hio", lvol_name="vol", size_in_mib=64, thin_provision=True)
        node.call("nvmf_create_transport", trtype="TCP")
        node.call("nvmf_create_subsystem", nqn=NQN, allow_any_host=False, ana_reporting=True)
        node.call("nvmf_subsystem_add_ns", nqn=NQN, namespace={"bdev_name": "hio/vol", "anagrpid": 1})
        node.call("nvmf_subsystem_add_listener", nqn=NQN, listen_address=self.listener)
        node.call("nvmf_subsystem_listener_set_ana_state", nqn=NQN, listen_address=self.listener,
                  ana_state="inaccessible", anagrpid=2)
        node.call("nvmf_subsystem_add_host", nqn=NQN, host=HOST)
        self.backend = "emulator" if kind == "emulator" else "spdk_dd"

    def host(self, hostnqn=HOST, timeout=30.0):
        return HostIO(self.backend, NQN, self.node.addr, self.port, hostnqn, timeout=timeout,
                      spdk_dd=REAL_DD if self.backend == "spdk_dd" else None)

    def pause(self):
        """An engine snapshot's host I/O pause: the namespace into the inaccessible group 2."""
        self.node.call("nvmf_subsystem_set_ns_ana_group", nqn=NQN, nsid=1, anagrpid=2)

    def resume(self):
        self.node.call("nvmf_subsystem_set_ns_ana_group", nqn=NQN, nsid=1, anagrpid=1)


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_spdk)])
def volume(request, emulator_node):
    if request.param == "emulator":
        yield Volume("emulator", emulator_node())
        return
    missing = real_target_missing()
    if missing:
        pytest.skip(missing)
    workdir = tempfile.mkdtemp(prefix="hio-real-", dir="/tmp")
    target = RealTarget(workdir)
    try:
        yield Volume("real", target)
    finally:
        target.stop()
        subprocess.run(["rm", "-rf", workdir], check=False)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---- both kinds of target ---------------------------------------------------------------------

def test_write_verify_read_and_mismatch_through_one_interface(volume, tmp_path):
    io = volume.host()
    assert io.write(8192, length=MIB, seed="s1") == sha(pattern_bytes("random", "s1", 8192, MIB))
    # The bytes on the volume are the shared pattern: what one backend wrote verifies with the other.
    assert io.read(8192, MIB) == pattern_bytes("random", "s1", 8192, MIB)
    io.verify(8192 + 4096, length=8192, seed="s1")                    # any sub-range verifies on its own
    with pytest.raises(Mismatch) as wrong:
        io.verify(8192, length=8192, seed="s2")
    assert "MISMATCH at byte offset 8192" in wrong.value.stderr

    blob = os.urandom(64 * 1024)
    io.write(32 * MIB, data=blob)
    assert io.read(32 * MIB, len(blob)) == blob
    assert io.sha256(32 * MIB, len(blob)) == sha(blob)
    (tmp_path / "blob").write_bytes(blob)
    assert io.matches(32 * MIB, file=str(tmp_path / "blob"))
    assert not io.matches(32 * MIB + 4096, file=str(tmp_path / "blob"))
    io.write(0, length=4096, pattern="0xab")
    assert io.read(0, 4096) == b"\xab" * 4096


def test_the_cli_is_spdk_ios_command_line_with_the_same_output(volume):
    io = volume.host()
    io.write(0, length=MIB, seed="cli")
    target = ["--nqn", NQN, "--traddr", volume.node.addr, "--trsvcid", volume.port, "--hostnqn", HOST]
    extra = ["--spdk-dd", REAL_DD] if volume.backend == "spdk_dd" else []
    run = subprocess.run([sys.executable, HOST_IO, "read"] + target + ["--backend", volume.backend, "--offset", "0",
                                                                       "--length", str(MIB), "--sha256"] + extra,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "sha256=" + sha(pattern_bytes("random", "cli", 0, MIB))
    bad = subprocess.run([sys.executable, HOST_IO, "verify"] + target + ["--backend", volume.backend, "--offset", "0",
                                                                         "--length", "8192", "--seed", "other"] + extra,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "MISMATCH at byte offset 0" in bad.stderr


def test_a_host_not_on_the_allow_list_cannot_connect(volume):
    with pytest.raises(ConnectError):
        volume.host(hostnqn="nqn.2026-01.io.spdk-storage:host:intruder", timeout=3).write(0, length=4096)


def test_a_host_admitted_with_dh_hmac_chap_keys_connects_with_them_only(volume, tmp_path):
    keys = {}
    for name in ("host", "ctrlr"):
        target_copy = os.path.join(volume.node.workdir, "key-" + name)
        with open(os.open(target_copy, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(format_dhchap_key(os.urandom(32)) + "\n")
        volume.node.call("keyring_file_add_key", name="key-" + name, path=target_copy)
        keys[name] = tmp_path / ("key-" + name)
        keys[name].write_text(open(target_copy).read())          # the host's copy, readable by others
    volume.node.call("nvmf_subsystem_remove_host", nqn=NQN, host=HOST)
    volume.node.call("nvmf_subsystem_add_host", nqn=NQN, host=HOST, dhchap_key="key-host", dhchap_ctrlr_key="key-ctrlr")
    io = HostIO(volume.backend, NQN, volume.node.addr, volume.port, HOST, timeout=30,
                spdk_dd=REAL_DD if volume.backend == "spdk_dd" else None,
                dhchap_key=str(keys["host"]), dhchap_ctrlr_key=str(keys["ctrlr"]))
    io.write(0, length=64 * 1024, seed="auth")
    io.verify(0, length=64 * 1024, seed="auth")
    with pytest.raises(ConnectError):
        volume.host(timeout=3).verify(0, length=64 * 1024, seed="auth")


def test_a_write_the_volume_refuses_fails_even_though_the_host_tool_says_ok(volume):
    """A read-only lvol refuses writes; spdk_dd still exits 0 (it ignores I/O status): host_io must not."""
    io = volume.host(timeout=4)
    io.write(0, length=8192, seed="before")
    volume.node.call("bdev_lvol_set_read_only", name="hio/vol")
    with pytest.raises(IOFailed):
        io.write(0, length=8192, seed="after")
    io.verify(0, length=8192, seed="before")


def test_a_write_issued_during_an_ana_pause_completes_after_it(volume):
    io = volume.host()
    volume.pause()
    started = time.monotonic()
    writer = subprocess.Popen(io.argv("write", "--offset", 4 * MIB, "--length", MIB, "--seed", "paused"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    assert writer.poll() is None, "the write finished while the namespace was inaccessible: %s" % (
        writer.communicate(),)
    volume.resume()
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, out + err
    assert time.monotonic() - started >= 3.0
    io.verify(4 * MIB, length=MIB, seed="paused")


@pytest.mark.slow
def test_a_read_across_a_pause_longer_than_anatt_waits_for_the_data(volume):
    """SPDK's target gives hosts an ANA transition time of 10 s: then bdev_nvme fails the read without a word,
    and spdk_dd exits 0 with zeros in place of the data. The read must still return the data once it is back."""
    io = volume.host(timeout=60)
    io.write(0, length=MIB, seed="kept")
    volume.pause()
    started = time.monotonic()
    reader = subprocess.Popen(io.argv("verify", "--offset", 0, "--length", MIB, "--seed", "kept"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(13.0)
    assert reader.poll() is None, "the read ended while the namespace was inaccessible: %s" % (reader.communicate(),)
    volume.resume()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, out + err
    assert time.monotonic() - started >= 13.0


def test_the_writer_survives_an_ana_pause_and_every_ok_write_is_on_the_volume(volume, tmp_path):
    io = volume.host()
    log = str(tmp_path / "writes.jsonl")
    area = 4 * MIB
    writer = io.start_writer(log, offset=0, length=area, io_size=4096, queue_depth=4, seed="w", batch=64)
    try:
        assert writer.wait_for(100, timeout=60), "the writer did not get going: %s" % (writer.stop(check=False),)
        volume.pause()
        time.sleep(3.0)
        during = writer.completed()
        volume.resume()
        assert writer.wait_for(during + 100, timeout=60), "writes did not resume after the pause"
    finally:
        summary = writer.stop()
    entries = writer.entries()
    assert summary == {"ok": len(entries), "failed": 0}, (summary, writer.stderr)
    assert all(entry["ok"] for entry in entries)
    assert len({entry["seq"] for entry in entries}) == len(entries)
    # Every block written holds one of the writes logged for it: its sequence number, then the seed pattern.
    data = io.read(0, area)
    logged = {}
    for entry in entries:
        logged.setdefault(entry["offset"], set()).add(entry["seq"])
    for offset, seqs in logged.items():
        block = data[offset:offset + 4096]
        assert struct.unpack(">Q", block[:8])[0] in seqs, offset
        assert block[8:] == pattern_bytes("random", "w", offset, 4096)[8:], offset


# ---- the interface itself ---------------------------------------------------------------------

def test_backend_choice_explicit_then_environment_then_emulator():
    assert choose_backend(None, {}) == "emulator"
    assert choose_backend(None, {"SPDK_DD": "/opt/spdk/bin/spdk_dd"}) == "spdk_dd"
    assert choose_backend(None, {"SPDK_DD": "/x/spdk_dd", "SPDK_HOST_IO_BACKEND": "emulator"}) == "emulator"
    assert choose_backend("emulator", {"SPDK_HOST_IO_BACKEND": "spdk_dd"}) == "emulator"
    assert choose_backend("spdk_dd", {}) == "spdk_dd"
    with pytest.raises(ValueError):
        choose_backend(None, {"SPDK_HOST_IO_BACKEND": "kernel"})


def test_the_environment_picks_spdk_dd_unless_told_otherwise(emulator_node):
    node = emulator_node()
    volume = Volume("emulator", node)
    argv = [sys.executable, HOST_IO, "write", "--nqn", NQN, "--traddr", node.addr, "--trsvcid", volume.port,
            "--hostnqn", HOST, "--length", "4096"]
    env = dict(os.environ, SPDK_DD="/nonexistent/spdk_dd")
    env.pop("SPDK_HOST_IO_BACKEND", None)
    chosen = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert chosen.returncode != 0 and "/nonexistent/spdk_dd is not executable" in chosen.stderr
    forced = subprocess.run(argv, env=dict(env, SPDK_HOST_IO_BACKEND="emulator"), capture_output=True, text=True,
                            timeout=60, check=False)
    assert forced.returncode == 0, forced.stderr
    explicit = subprocess.run(argv + ["--backend", "emulator"], env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    assert explicit.returncode == 0, explicit.stderr


def test_the_emulator_backend_hands_spdk_io_its_own_arguments():
    argv = ["write", "--backend", "emulator", "--nqn", "n", "--spdk-dd=/x", "--batch", "8", "--length", "4096"]
    assert host_io_cli.emulator_argv(argv) == ["write", "--nqn", "n", "--length", "4096"]
    parser = host_io_cli.build_parser()
    spdk_io_options = {a.dest for a in spdk_io_module.build_parser()._actions}
    assert spdk_io_options <= {a.dest for a in parser._actions}           # every spdk_io option, same names
    assert os.path.exists(SPDK_IO)


def test_spdk_dd_io_unit_and_writer_blocks():
    assert host_io_dd.io_unit(0, MIB, 131072) == 131072
    assert host_io_dd.io_unit(8192, MIB, 131072) == 8192
    assert host_io_dd.io_unit(4096, 4096, 131072) == 4096
    assert host_io_dd.io_unit(512, 1024, 131072) == 512
    with pytest.raises(host_io_dd.SpdkDdError):
        host_io_dd.io_unit(100, 4096, 131072)
    # The spdk_dd writer writes the emulator writer's block format: the sequence number, then the pattern.
    blocks = host_io_dd.writer_blocks("w", 8192, 4096, 7, 2)
    assert blocks[:8] == struct.pack(">Q", 7) and blocks[4096:4104] == struct.pack(">Q", 8)
    assert blocks[8:4096] == pattern_bytes("random", "w", 8192, 4096)[8:]
    assert blocks[4104:] == pattern_bytes("random", "w", 12288, 4096)[8:]


def test_spdk_dd_config_attaches_as_the_host_and_retries_through_ana_pauses(tmp_path):
    key = tmp_path / "key"
    key.write_text("DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTIzNDU2Nzg5MA==:\n")
    host = host_io_dd.SpdkDdHost("/bin/true", NQN, "127.0.0.3", 4421, hostnqn=HOST, nsid=2, timeout=20,
                                 dhchap_key=str(key))
    try:
        with open(host.config_path) as handle:
            config = json.load(handle)
    finally:
        host.close()
    subsystems = {s["subsystem"]: s["config"] for s in config["subsystems"]}
    assert [c["method"] for c in subsystems["keyring"]] == ["keyring_file_add_key"]
    bdev = {c["method"]: c["params"] for c in subsystems["bdev"]}
    assert list(bdev) == ["bdev_set_options", "bdev_nvme_set_options", "bdev_nvme_attach_controller"]
    assert bdev["bdev_set_options"] == {"bdev_auto_examine": False}
    assert bdev["bdev_nvme_set_options"]["bdev_retry_count"] != 0      # 0 would fail every I/O of an ANA pause
    attach = bdev["bdev_nvme_attach_controller"]
    assert (attach["traddr"], attach["trsvcid"], attach["subnqn"], attach["hostnqn"]) == (
        "127.0.0.3", "4421", NQN, HOST)
    assert attach["ctrlr_loss_timeout_sec"] == 20 and attach["reconnect_delay_sec"] == 1
    assert attach["dhchap_key"] == "hio-key"
    assert host.bdev == "hion2"


# Lines real spdk_dd runs logged (SPDK v26.05): a path error bdev_nvme retried (an ANA pause), a write the
# target refused (a read-only lvol; spdk_dd still exited 0), a failed attach.
ANA_PATH_ERROR = (
    "[2026-12-02 18:28:53.746204] nvme_qpair.c: 603:spdk_nvme_qpair_print_completion_ext: *NOTICE*: "
    "[nqn.2026-01.io.spdk-storage:host:app,nqn.2026-01.io.spdk-storage:hv,127.0.0.5,cntlid:2,qid:1,"
    "qpair:0x56153790f110,ENABLED] ASYMMETRIC ACCESS INACCESSIBLE (03/02) qid:1 cid:5 cdw0:00000000 sqhd:0005 "
    "p:0 m:0 dnr:0")
REFUSED_WRITE = (
    "[2026-12-02 18:28:45.266882] nvme_qpair.c: 603:spdk_nvme_qpair_print_completion_ext: *NOTICE*: "
    "[nqn.2026-01.io.spdk-storage:host:app,nqn.2026-01.io.spdk-storage:hv,127.0.0.5,cntlid:1,qid:1,"
    "qpair:0x55bb7752d110,ENABLED] INTERNAL DEVICE ERROR (00/06) qid:1 cid:0 cdw0:00000000 sqhd:0002 p:0 m:0 dnr:0")
FAILED_ATTACH = (
    "[2026-12-02 18:31:27.863925] nvme.c: 834:nvme_dummy_attach_fail_cb: *ERROR*: Failed to attach nvme ctrlr: "
    "trtype=TCP adrfam=IPv4 traddr=127.0.0.5 trsvcid=4455 subnqn=nqn.2026-01.io.spdk-storage:hv, Operation not "
    "permitted")
PROGRESS = "\x1b[2KCopying: 8192/8192 [B] (average 8000 kBps)"


def test_spdk_dd_runs_are_judged_by_their_log_and_length():
    def judged(log, seconds=1.5):
        return host_io_dd.Run([], 0, log, seconds, False).suspect()
    assert judged(PROGRESS) is None
    assert judged("\n".join([ANA_PATH_ERROR, PROGRESS])) is None             # retried by bdev_nvme: fine
    assert "INTERNAL DEVICE ERROR (00/06)" in judged("\n".join([REFUSED_WRITE, PROGRESS]))
    assert "Failed to attach nvme ctrlr" in judged(FAILED_ATTACH)
    # As long as ANATT: bdev_nvme may have failed I/O on an inaccessible path without a line.
    assert "ANATT" in judged(PROGRESS, seconds=host_io_dd.ANATT_SECONDS)

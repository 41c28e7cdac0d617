"""The spdk_dd backend of host_io: host I/O on a real spdk_tgt through SPDK's own NVMe/TCP host.

One run of spdk_dd
------------------
``spdk_dd`` is a one-shot SPDK application that copies one contiguous range between a file and a
bdev. Every run gets:

- a JSON config of its own (``host.json`` in a private temporary directory) whose ``bdev``
  subsystem turns bdev auto-examine off (a replica's namespace holds a RAID superblock and the
  host's own raid/lvol modules would otherwise claim it), sets the bdev_nvme options below, and
  attaches the subsystem as controller ``hio`` with the host NQN (the subsystem's allow-list
  decides), so namespace N is bdev ``hionN``. DH-HMAC-CHAP keys (``--dhchap-key``,
  ``--dhchap-ctrlr-key``: files holding a ``DHHC-1:`` key) go in as keyring file keys;
- the SPDK application options ``DEFAULT_APP_ARGS`` (``SPDK_DD_ARGS`` replaces them): ``-i -1``
  (a negative shared-memory id gives DPDK ``--no-shconf`` and a per-process file prefix, so any
  number of runs and targets coexist and a run never starts as a DPDK secondary process),
  ``--no-huge -s 1024`` (no hugepages; 1 GiB of ordinary memory), ``--no-pci``,
  ``--disable-cpumask-locks`` (runs share cores with the targets);
- ``--bs``: the largest power of two from 512 up to ``--io-size`` dividing offset and length;
  ``--qd``: ``--queue-depth``; ``--seek``/``--skip``/``--count`` in units of ``--bs``;
- at most ``max(--timeout, ANATT) + 30`` seconds, then SIGINT (SPDK's clean stop), then SIGKILL.

``--timeout`` bounds the retries of one operation: a failed try is repeated every 0.5 s while
the time since the operation started is shorter.

Why every write is read back, and when a read counts
----------------------------------------------------
spdk_dd never looks at the completion status of its I/Os (``_dd_write_bdev_done`` and
``_dd_read_bdev_done`` ignore ``success``): it exits 0 when every I/O failed. So:

- a write counts only once a second run has read the range back and found exactly the bytes
  written. A difference rewrites the range until ``--timeout``, then the write fails (exit 3);
- a read counts only from a clean run: exit 0, no ``*ERROR*`` line, no failed NVMe completion in
  its log except path errors (status code type 3, such as ANA inaccessible, which bdev_nvme
  retries), and shorter than ``ANATT_SECONDS``: SPDK's target reports an ANA transition time of
  10 s, and once a path has been inaccessible that long bdev_nvme fails its I/O without logging a
  thing (a namespace already inaccessible when the run attached leaves no line at all). A suspect
  read is repeated until ``--timeout``, then the read fails (exit 3).

ANA pauses and reconnects (module/bdev/nvme/bdev_nvme.c, v26.05)
----------------------------------------------------------------
``bdev_nvme_set_options`` ``bdev_retry_count`` 3 (SPDK's default, given explicitly: any value but
0 works). An I/O rejected with an ANA path error is requeued without counting as a retry; while no
path is accessible, submission fails with -ENXIO and the I/O is requeued every 1000 ms, again
without counting. So I/O waits out an engine's snapshot pause (its namespace moved to an
inaccessible ANA group), for up to ANATT, and resumes about 1 s after the pause ends. With
``bdev_retry_count`` 0 every I/O issued during the pause would fail. A run that starts during a
pause attaches (the namespace is listed, inaccessible) and waits the same way.
``bdev_nvme_attach_controller`` ``ctrlr_loss_timeout_sec`` = ``--timeout``, ``reconnect_delay_sec``
1, ``fast_io_fail_timeout_sec`` 0: a dropped connection (a restarted target) is re-established
every second and I/O waits for it. A failed attach (the target not up yet, the host not allowed
yet) fails the run: it is retried every 0.5 s until ``--timeout``, then exit 2.

The writer
----------
spdk_dd writes one range per run, so the writer works in rounds. Each round picks a random
``--io-size``-aligned start in [--offset, --offset + --length) and writes ``--batch`` consecutive
io-size blocks with one spdk_dd run (queue depth ``--queue-depth``); every block carries its own
sequence number in its first 8 bytes, then the seed pattern (the emulator writer's block format).
A second run reads the range back; every block that holds exactly what was written is logged
``{"seq", "offset", "ok": true}``, in sequence order. If any block differs, the round is written
again (same bytes) until ``--timeout``; blocks still differing are logged with ``"ok": false``.
So every ``ok`` write was read back from the volume after spdk_dd submitted it, and the log names
the blocks written since a given moment, round by round. SIGTERM or SIGINT lets the current round
finish and be logged, then prints ``{"ok": n, "failed": m}`` and exits 0. The rate is bounded by
two spdk_dd starts per round: raise ``--batch`` for more writes per second. Measured on a
loaded 2-core machine (SPDK v26.05): one run takes 0.9-2.5 s, mostly start-up and exit; 4 KiB
blocks at queue depth 8 gave 14 (batch 64), 46 (256) and 138 (1024) confirmed writes per second.
A 3 s pause stalls the rounds and they go on; a 13 s pause costs one suspect read run (11 s).

``--hostid`` has no counterpart here (SPDK derives the host ID itself).

Not chosen: one long-running spdk_dd fed from a FIFO (``--if``). spdk_dd reads its input with
Linux AIO or io_uring at computed offsets (a pipe has none), sizes the copy when it starts, writes
sequentially from ``--seek``, and never says which write completed, let alone whether it
succeeded: nothing in it could back a per-write acknowledgement.
"""
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import uuid as uuidlib

from tests.emulator.spdk_emu.hostio import pattern_bytes

DEFAULT_APP_ARGS = "-m 0x2 -i -1 --no-huge -s 1024 --no-pci --disable-cpumask-locks"
CONTROLLER = "hio"
BDEV_RETRY_COUNT = 3
ANATT_SECONDS = 10.0             # lib/nvmf/ctrlr.c ANA_TRANSITION_TIME_IN_SEC
RETRY_DELAY = 0.5
DEFAULT_BATCH = 256
STOP_GRACE = 5.0
RUN_START_ALLOWANCE = 30.0       # seconds a run may take beyond its I/O: start-up and exit on a loaded machine
MIN_UNIT = 512

# spdk_nvme_qpair_print_completion(_ext)(): "*NOTICE*: [<qpair>] <status text> (<sct>/<sc>) qid:<n> cid:<n> ..."
COMPLETION = re.compile(r"\*NOTICE\*: (?:\[[^\]]*\] )?(?P<status>[^*\[\]]*?) \((?P<sct>[0-9a-f]{2})/(?P<sc>[0-9a-f]{2})\) "
                        r"qid:\d+ cid:")
PATH_ERROR_SCT = "03"
ERROR_LINE = re.compile(r"\*ERROR\*: (?P<text>.*)")
# spdk_dd's answer to a --skip past the end: how the namespace's size is learnt without I/O.
SKIP_TOO_BIG = re.compile(r"--skip value too big \(\d+\) - only (?P<blocks>\d+) blocks available in input")
CONNECT_FAILURE = re.compile(r"attach|connect|could not open bdev|no such device", re.IGNORECASE)
USAGE_FAILURE = re.compile(r"--bs value|--count value too big|--seek value too big|--skip value too big")


class SpdkDdError(Exception):
    """A run (or every run until --timeout) that did not do its job; ``kind``: connect, io or usage."""

    def __init__(self, kind, message, log=""):
        super(SpdkDdError, self).__init__(message)
        self.kind = kind
        self.log = log


class Run(object):
    """What one spdk_dd run did."""

    def __init__(self, argv, returncode, log, elapsed, timed_out):
        self.argv = argv
        self.returncode = returncode
        self.log = log
        self.elapsed = elapsed
        self.timed_out = timed_out

    def tail(self, lines=12):
        return "\n".join(self.log.strip().splitlines()[-lines:])

    def suspect(self):
        """Why this run's I/O cannot be trusted, or None (see the module docstring)."""
        errors = [m.group("text") for m in ERROR_LINE.finditer(self.log)]
        if errors:
            return "spdk_dd logged an error: %s" % errors[0]
        completions = list(COMPLETION.finditer(self.log))
        failed = [m for m in completions if m.group("sct") != PATH_ERROR_SCT]
        if failed:
            first = failed[0]
            return "an NVMe command failed: %s (%s/%s)" % (first.group("status"), first.group("sct"), first.group("sc"))
        if self.elapsed >= ANATT_SECONDS:
            return ("a run of %.1f s: once a path has been inaccessible for ANATT (%d s) bdev_nvme fails its I/O "
                    "without a word" % (self.elapsed, ANATT_SECONDS))
        return None


def io_unit(offset, length, io_size):
    """spdk_dd's --bs for [offset, offset+length): the largest power of two in [512, io_size] dividing both."""
    if offset % MIN_UNIT or length % MIN_UNIT or length <= 0:
        raise SpdkDdError("usage", "offset and length must be multiples of %d bytes, length > 0 (offset %d, "
                                   "length %d)" % (MIN_UNIT, offset, length))
    unit = MIN_UNIT
    while unit * 2 <= max(io_size, MIN_UNIT) and offset % (unit * 2) == 0 and length % (unit * 2) == 0:
        unit *= 2
    return unit


def first_difference(got, expected):
    for index, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return index
    return min(len(got), len(expected))


class SpdkDdHost(object):
    """A host of one namespace that does every read and write with a fresh spdk_dd run."""

    def __init__(self, binary, nqn, traddr, trsvcid, hostnqn=None, nsid=1, timeout=30.0, io_size=131072,
                 queue_depth=16, dhchap_key=None, dhchap_ctrlr_key=None, app_args=None):
        self.binary = binary
        self.nqn = nqn
        self.traddr = traddr
        self.trsvcid = str(trsvcid)
        self.hostnqn = hostnqn or "nqn.2014-08.org.nvmexpress:uuid:%s" % uuidlib.uuid4()
        self.nsid = nsid
        self.timeout = float(timeout)
        # One run may wait out a reconnect (ctrlr_loss_timeout_sec) or an ANA pause (up to ANATT), after its start.
        self.run_limit = max(self.timeout, ANATT_SECONDS) + RUN_START_ALLOWANCE
        self.io_size = io_size
        self.queue_depth = queue_depth
        self.app_args = shlex.split(app_args if app_args is not None
                                    else os.environ.get("SPDK_DD_ARGS", DEFAULT_APP_ARGS))
        self.bdev = "%sn%d" % (CONTROLLER, nsid)
        self.workdir = tempfile.mkdtemp(prefix="host_io-")
        self.config_path = os.path.join(self.workdir, "host.json")
        self.child = None
        self.attached = False                 # some run got as far as the namespace
        self.runs = []                        # (what, seconds) of every run, for the figures
        with open(self.config_path, "w") as handle:
            json.dump(self.config(dhchap_key, dhchap_ctrlr_key), handle, indent=1)

    # -- set-up -----------------------------------------------------------------------------------

    def _key(self, name, path):
        """A private copy of a key file (SPDK's keyring_file refuses keys readable by others)."""
        copy = os.path.join(self.workdir, name)
        with open(path) as source, open(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as dest:
            dest.write(source.read().strip() + "\n")
        return {"method": "keyring_file_add_key", "params": {"name": name, "path": copy}}

    def config(self, dhchap_key=None, dhchap_ctrlr_key=None):
        """The JSON config every run gets (see the module docstring)."""
        attach = {"name": CONTROLLER, "trtype": "tcp", "adrfam": "ipv6" if ":" in self.traddr else "ipv4",
                  "traddr": self.traddr, "trsvcid": self.trsvcid, "subnqn": self.nqn, "hostnqn": self.hostnqn,
                  "ctrlr_loss_timeout_sec": max(2, int(self.timeout)), "reconnect_delay_sec": 1,
                  "fast_io_fail_timeout_sec": 0}
        keyring = []
        if dhchap_key:
            keyring.append(self._key("hio-key", dhchap_key))
            attach["dhchap_key"] = "hio-key"
        if dhchap_ctrlr_key:
            keyring.append(self._key("hio-ctrlr-key", dhchap_ctrlr_key))
            attach["dhchap_ctrlr_key"] = "hio-ctrlr-key"
        subsystems = [{"subsystem": "keyring", "config": keyring}] if keyring else []
        subsystems.append({"subsystem": "bdev", "config": [
            {"method": "bdev_set_options", "params": {"bdev_auto_examine": False}},
            {"method": "bdev_nvme_set_options", "params": {"bdev_retry_count": BDEV_RETRY_COUNT}},
            {"method": "bdev_nvme_attach_controller", "params": attach}]})
        return {"subsystems": subsystems}

    def close(self):
        self._stop_child()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one run ----------------------------------------------------------------------------------

    def _stop_child(self):
        proc, self.child = self.child, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)          # SPDK's clean stop
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _checked(self, what, io_args):
        """A run that ended well (exit 0, the namespace opened); SpdkDdError otherwise."""
        run = self._run(what, io_args)
        if run.timed_out:
            raise SpdkDdError("io", "spdk_dd %s did not finish within %.0f s" % (what, self.run_limit), run.log)
        if run.returncode != 0:
            kind = "usage" if USAGE_FAILURE.search(run.log) else (
                "connect" if not self.attached and CONNECT_FAILURE.search(run.log) else "io")
            raise SpdkDdError(kind, "spdk_dd %s exited with %s: %s" % (what, run.returncode, run.tail()), run.log)
        self.attached = True
        return run

    def _run(self, what, io_args):
        """One spdk_dd run with ``io_args``, at most --timeout long (then SIGINT, SPDK's clean stop)."""
        argv = [self.binary] + self.app_args + ["--json", self.config_path] + [str(a) for a in io_args]
        started = time.monotonic()
        # Its own session: a Ctrl-C for host_io's process group does not cut a run short; host_io stops it.
        self.child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        proc = self.child
        timed_out = False
        try:
            out, _err = proc.communicate(timeout=self.run_limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._stop_child()
            out, _err = proc.communicate()
        finally:
            self._stop_child()
        elapsed = time.monotonic() - started
        self.runs.append((what, elapsed))
        return Run(argv, proc.returncode, (out or b"").decode(errors="replace"), elapsed, timed_out)

    # -- operations, each one try -----------------------------------------------------------------

    def _write_once(self, offset, data):
        """One write run; returns what its log says against it (None: nothing), for the error message."""
        unit = io_unit(offset, len(data), self.io_size)
        path = os.path.join(self.workdir, "write.bin")
        with open(path, "wb") as handle:
            handle.write(data)
        run = self._checked("write", ["--if", path, "--ob", self.bdev, "--bs", unit, "--seek", offset // unit,
                                      "--count", len(data) // unit, "--qd", self.queue_depth])
        return run.suspect()

    def _read_once(self, offset, length):
        """The bytes of one clean read run of exactly ``length`` bytes."""
        unit = io_unit(offset, length, self.io_size)
        path = os.path.join(self.workdir, "read.bin")
        run = self._checked("read", ["--ib", self.bdev, "--of", path, "--bs", unit, "--skip", offset // unit,
                                     "--count", length // unit, "--qd", self.queue_depth])
        why = run.suspect()
        if why:
            raise SpdkDdError("io", "read of %d bytes at %d not trusted: %s" % (length, offset, why), run.log)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            os.unlink(path)
        except OSError as exc:
            raise SpdkDdError("io", "spdk_dd read exited 0 but left no data: %s" % exc, run.log)
        if len(data) != length:
            raise SpdkDdError("io", "read %d bytes at %d, wanted %d" % (len(data), offset, length), run.log)
        return data

    def _retrying(self, operation):
        """``operation()`` until it succeeds or --timeout ran out (then its last SpdkDdError)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return operation()
            except SpdkDdError as exc:
                if exc.kind == "usage" or time.monotonic() + RETRY_DELAY >= deadline:
                    raise
            time.sleep(RETRY_DELAY)

    # -- operations -------------------------------------------------------------------------------

    def size(self):
        """The namespace's size in bytes, from spdk_dd's refusal of a --skip past its end (no I/O)."""
        def probe():
            run = self._run("size", ["--ib", self.bdev, "--of", os.path.join(self.workdir, "probe"),
                                     "--bs", MIN_UNIT, "--skip", 1 << 40])
            found = SKIP_TOO_BIG.search(run.log)
            if found:
                self.attached = True
                return int(found.group("blocks")) * MIN_UNIT
            kind = "connect" if not self.attached and CONNECT_FAILURE.search(run.log) else "io"
            raise SpdkDdError(kind, "cannot learn the size of %s: %s" % (self.bdev, run.tail()), run.log)
        return self._retrying(probe)

    def read(self, offset, length):
        """The bytes at [offset, offset+length), from a clean run."""
        return self._retrying(lambda: self._read_once(offset, length))

    def write(self, offset, data):
        """Write ``data`` at ``offset`` and confirm it by reading it back (SpdkDdError if it never reads back)."""
        matched, error = self.write_blocks(offset, data, len(data))
        if not all(matched):
            raise error
        return data

    def write_blocks(self, offset, data, block):
        """Write ``data`` at ``offset``, read it back; rewrite until every ``block``-sized piece reads back as
        written or --timeout ran out. Returns ([piece confirmed], last SpdkDdError or None)."""
        pieces = [data[i:i + block] for i in range(0, len(data), block)]
        matched = [False] * len(pieces)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                against = self._write_once(offset, data)
                back = self._read_once(offset, len(data))
                matched = [back[i * block:(i + 1) * block] == piece for i, piece in enumerate(pieces)]
                if all(matched):
                    return matched, None
                at = first_difference(back, data)
                error = SpdkDdError("io", "wrote %d bytes at %d (spdk_dd exit 0); they read back different from byte "
                                    "offset %d on%s" % (len(data), offset, offset + at,
                                                        " (the write's log: %s)" % against if against else ""))
            except SpdkDdError as exc:
                if exc.kind == "usage":
                    raise
                error = exc
            if time.monotonic() + RETRY_DELAY >= deadline:
                return matched, error
            time.sleep(RETRY_DELAY)


def writer_blocks(seed, start, io_size, first_seq, count):
    """A round's data: ``count`` io-size blocks from ``start``, each its sequence number then the seed pattern."""
    return b"".join(struct.pack(">Q", first_seq + i)
                    + pattern_bytes("random", seed, start + i * io_size, io_size)[8:] for i in range(count))


def run_writer(host, offset, length, io_size, batch, seed, duration, log_path, stopping):
    """The writer's rounds (see the module docstring) until ``stopping()`` or ``duration``; returns the counts."""
    if io_size % MIN_UNIT or length < io_size:
        raise SpdkDdError("usage", "--io-size must be a multiple of %d and at most --length" % MIN_UNIT)
    blocks = length // io_size
    batch = max(1, min(batch, blocks))
    rng = random.Random(seed)
    counts = {"ok": 0, "failed": 0}
    end = time.monotonic() + duration if duration else None
    seq = 1
    log = open(log_path, "a") if log_path else None
    try:
        while not stopping() and (end is None or time.monotonic() < end):
            start = offset + rng.randrange(blocks - batch + 1) * io_size
            data = writer_blocks(seed, start, io_size, seq, batch)
            matched, error = host.write_blocks(start, data, io_size)
            if error is not None and not host.attached and error.kind == "connect":
                raise error
            for index, ok in enumerate(matched):
                counts["ok" if ok else "failed"] += 1
                if log is not None:
                    log.write(json.dumps({"seq": seq + index, "offset": start + index * io_size, "ok": ok}) + "\n")
            if log is not None:
                log.flush()
            seq += batch
    finally:
        if log is not None:
            log.close()
    return counts

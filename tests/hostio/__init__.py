"""Host I/O for tests, demos and playbooks: one CLI and one Python API for both kinds of target.

A volume's data is read and written the way a host does it, over NVMe-oF/TCP, by one of two
backends:

- ``emulator``: the emulator's own host tool ``tests/emulator/spdk_io``, which speaks the
  emulator's wire protocol (tests/emulator/spdk_emu/hostio.py). ``host_io`` hands the whole
  command line to it unchanged (it replaces itself with spdk_io), so behaviour, output and exit
  codes are spdk_io's.
- ``spdk_dd``: SPDK's ``spdk_dd``, a real NVMe/TCP host, for a real ``spdk_tgt``
  (tests/hostio/spdk_dd.py says how it is driven and why every write is read back).

Which backend: ``--backend`` (``backend=`` here), else the environment: ``SPDK_HOST_IO_BACKEND``
(``emulator`` or ``spdk_dd``), else ``spdk_dd`` when ``SPDK_DD`` names the spdk_dd binary, else
``emulator``. ``SPDK_DD`` (or ``--spdk-dd``) is the binary the spdk_dd backend runs;
``SPDK_DD_ARGS`` overrides the SPDK application options it gives every spdk_dd run (see
spdk_dd.DEFAULT_APP_ARGS).

Both backends write the same bytes: with ``--pattern random`` each 4 KiB block is derived from the
seed and the block's absolute byte offset (``pattern_bytes``), so data written by one backend
verifies with the other, and any sub-range verifies on its own.

The Python API runs the CLI (``tests/hostio/host_io``), so both behave the same::

    from tests.hostio import HostIO
    io = HostIO(None, nqn, "127.0.0.1", 4420, hostnqn)    # None: backend from the environment
    io.write(0, length=1 << 20, seed="A")                 # or data=b"...", or file=path
    io.verify(0, length=1 << 20, seed="A")                # raises Mismatch if the data differs
    digest = io.sha256(0, 1 << 20); data = io.read(0, 4096)
    writer = io.start_writer(log_path, length=8 << 20, io_size=4096)
    ...; summary = writer.stop()                          # {"ok": n, "failed": 0}; writer.entries()

Errors carry the CLI's exit code: ``Mismatch`` (1), ``ConnectError`` (2), ``IOFailed`` (3).
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from tests.emulator.spdk_emu.hostio import PATTERN_BLOCK, pattern_bytes  # noqa: F401  (part of this API)

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
HOST_IO = os.path.join(HERE, "host_io")
EMULATOR_DIR = os.path.join(TESTS, "emulator")
SPDK_IO = os.path.join(EMULATOR_DIR, "spdk_io")

BACKENDS = ("emulator", "spdk_dd")
DEFAULT_SEED = "spdk_io"          # spdk_io's default --seed: the same default data in both backends

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_CONNECT = 2
EXIT_IO = 3


def choose_backend(explicit=None, environ=None):
    """The backend to use: ``explicit``, else SPDK_HOST_IO_BACKEND, else spdk_dd if SPDK_DD is set, else emulator."""
    environ = os.environ if environ is None else environ
    name = explicit or environ.get("SPDK_HOST_IO_BACKEND") or ("spdk_dd" if environ.get("SPDK_DD") else "emulator")
    if name not in BACKENDS:
        raise ValueError("unknown host I/O backend %r (known: %s)" % (name, ", ".join(BACKENDS)))
    return name


class HostIOError(Exception):
    """A host_io run that ended with a non-zero exit code."""

    def __init__(self, argv, returncode, stdout, stderr):
        super(HostIOError, self).__init__("host_io %s: exit %d: %s%s" % (
            argv[2] if len(argv) > 2 else "", returncode, stderr.strip()[-2000:], stdout.strip()[-500:]))
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Mismatch(HostIOError):
    """verify: the volume does not hold the expected bytes (exit 1)."""


class ConnectError(HostIOError):
    """The host could not connect to the subsystem (exit 2)."""


class IOFailed(HostIOError):
    """I/O failed, or a write could not be confirmed on the volume (exit 3)."""


ERRORS = {EXIT_MISMATCH: Mismatch, EXIT_CONNECT: ConnectError, EXIT_IO: IOFailed}


def sha256_in(output):
    """The digest of a ``--sha256`` run's ``sha256=<hex>`` line."""
    for word in output.split():
        if word.startswith("sha256="):
            return word.split("=", 1)[1]
    raise ValueError("no sha256= in %r" % output[-500:])


class HostIO(object):
    """One host of one subsystem namespace: ``backend`` (None: from the environment), NQN, address, port.

    ``hostnqn`` is the host NQN to connect as (subsystems admit only their allowed hosts; spdk_io
    makes one up when it is None). ``timeout`` is how long one operation keeps retrying (ANA
    pauses, reconnects). ``spdk_dd`` is the binary for the spdk_dd backend (default: SPDK_DD).
    ``dhchap_key``/``dhchap_ctrlr_key``: files holding the host's and the controller's DH-HMAC-CHAP
    keys (``DHHC-1:...``) when the subsystem admits this host with keys.
    """

    def __init__(self, backend, nqn, traddr, trsvcid=4420, hostnqn=None, nsid=1, timeout=30.0, spdk_dd=None,
                 python=None, dhchap_key=None, dhchap_ctrlr_key=None):
        self.backend = choose_backend(backend)
        self.nqn = nqn
        self.traddr = traddr
        self.trsvcid = str(trsvcid)
        self.hostnqn = hostnqn
        self.nsid = nsid
        self.timeout = timeout
        self.spdk_dd = spdk_dd or (os.environ.get("SPDK_DD") if self.backend == "spdk_dd" else None)
        if self.backend == "spdk_dd" and not self.spdk_dd:
            raise ValueError("the spdk_dd backend needs the spdk_dd binary: pass spdk_dd= or set SPDK_DD")
        self.python = python or sys.executable
        self.dhchap_key = dhchap_key
        self.dhchap_ctrlr_key = dhchap_ctrlr_key

    def __repr__(self):
        return "HostIO(%s, %s at %s:%s as %s)" % (self.backend, self.nqn, self.traddr, self.trsvcid, self.hostnqn)

    # -- the command line -----------------------------------------------------------------------

    def argv(self, command, *args):
        """The host_io command line of ``command`` with this host's target and ``args``."""
        argv = [self.python, HOST_IO, command, "--backend", self.backend, "--nqn", self.nqn,
                "--traddr", self.traddr, "--trsvcid", self.trsvcid, "--timeout", str(self.timeout)]
        if self.nsid != 1:
            argv += ["--nsid", str(self.nsid)]
        if self.hostnqn:
            argv += ["--hostnqn", self.hostnqn]
        if self.spdk_dd:
            argv += ["--spdk-dd", self.spdk_dd]
        if self.dhchap_key:
            argv += ["--dhchap-key", self.dhchap_key]
        if self.dhchap_ctrlr_key:
            argv += ["--dhchap-ctrlr-key", self.dhchap_ctrlr_key]
        return argv + [str(arg) for arg in args]

    def run(self, command, *args, check=True, timeout=None):
        """Run host_io ``command``; with ``check``, a non-zero exit raises Mismatch, ConnectError or IOFailed."""
        argv = self.argv(command, *args)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=timeout if timeout is not None else 3 * self.timeout + 120)
        if check and proc.returncode != 0:
            raise ERRORS.get(proc.returncode, HostIOError)(argv, proc.returncode, proc.stdout, proc.stderr)
        return proc

    @staticmethod
    def _range(offset, length):
        args = ["--offset", offset]
        if length is not None:
            args += ["--length", length]
        return args

    def _source(self, data, pattern, seed, file, workdir):
        """The arguments naming the data: a file (``data`` is written to one) or a pattern and seed."""
        if data is not None:
            file = os.path.join(workdir, "data.bin")
            with open(file, "wb") as handle:
                handle.write(data)
        if file is not None:
            return ["--file", file]
        return ["--pattern", pattern, "--seed", seed]

    # -- operations -----------------------------------------------------------------------------

    def write(self, offset=0, data=None, length=None, pattern="random", seed=DEFAULT_SEED, file=None, extra=()):
        """Write ``data`` (bytes), ``file`` or the pattern at ``offset``; returns the sha256 of what was written."""
        with tempfile.TemporaryDirectory(prefix="hostio-") as workdir:
            proc = self.run("write", *(self._range(offset, length) + self._source(data, pattern, seed, file, workdir)
                                       + ["--sha256"] + list(extra)))
        return sha256_in(proc.stdout)

    def verify(self, offset=0, data=None, length=None, pattern="random", seed=DEFAULT_SEED, file=None, extra=()):
        """Raise Mismatch unless the volume holds ``data``/``file``/the pattern at ``offset``."""
        with tempfile.TemporaryDirectory(prefix="hostio-") as workdir:
            self.run("verify", *(self._range(offset, length) + self._source(data, pattern, seed, file, workdir)
                                 + list(extra)))

    def matches(self, *args, **kwargs):
        """verify() as a bool."""
        try:
            self.verify(*args, **kwargs)
        except Mismatch:
            return False
        return True

    def read(self, offset=0, length=None):
        """The bytes at [offset, offset+length) (``length`` None: to the end of the namespace)."""
        with tempfile.TemporaryDirectory(prefix="hostio-") as workdir:
            out = os.path.join(workdir, "read.bin")
            self.run("read", *(self._range(offset, length) + ["--output", out]))
            with open(out, "rb") as handle:
                return handle.read()

    def sha256(self, offset=0, length=None):
        """The sha256 (hex) of the bytes at [offset, offset+length)."""
        return sha256_in(self.run("read", *(self._range(offset, length) + ["--sha256"])).stdout)

    def start_writer(self, log, offset=0, length=None, io_size=4096, queue_depth=8, duration=0, seed=DEFAULT_SEED,
                     batch=None, extra=()):
        """A background ``writer`` appending one JSON line per completed write to ``log``; see Writer."""
        args = self._range(offset, length) + ["--io-size", io_size, "--queue-depth", queue_depth,
                                              "--duration", duration, "--seed", seed, "--log", log]
        if batch is not None:
            args += ["--batch", batch]
        argv = self.argv("writer", *(args + list(extra)))
        return Writer(argv, log)


class Writer(object):
    """A running ``host_io writer``: every block it writes carries an 8-byte sequence number, then the
    seed pattern; ``log`` gets ``{"seq", "offset", "ok"}`` per completed write (ok: on the volume)."""

    def __init__(self, argv, log):
        self.argv = argv
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout = None
        self.stderr = None

    def entries(self):
        """The log's entries so far."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle if line.endswith("\n")]

    def completed(self):
        """How many writes completed so far (ok or not)."""
        return len(self.entries())

    def wait_for(self, count, timeout=60.0):
        """Wait until at least ``count`` writes completed; False if the time ran out or the writer ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.completed() >= count:
                return True
            if self.proc.poll() is not None:
                return self.completed() >= count
            time.sleep(0.1)
        return False

    def stop(self, timeout=120.0, check=True):
        """SIGTERM, wait; returns the summary ``{"ok": n, "failed": m}`` (HostIOError if it exited non-zero)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        if check and self.proc.returncode != 0:
            error = ERRORS.get(self.proc.returncode, HostIOError)
            raise error(self.argv, self.proc.returncode, self.stdout, self.stderr)
        lines = self.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def digest(data):
    return hashlib.sha256(data).hexdigest()

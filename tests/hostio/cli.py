"""host_io: read and write a subsystem's namespace the way a host does, on the emulator or a real spdk_tgt.

    host_io write  --nqn NQN --traddr A --trsvcid P --offset BYTES --length BYTES [--pattern P | --file F]
    host_io read   ... [--output FILE] [--sha256]
    host_io verify ... [--pattern P | --file F]      exit 1 when the data differs
    host_io writer ... --duration S [--log FILE]      continuous writes until the time is up or SIGTERM

The commands, options, output and exit codes are those of the emulator's ``spdk_io`` (0 ok,
1 verify mismatch, 2 cannot connect, 3 I/O error), plus:

    --backend emulator|spdk_dd   default: SPDK_HOST_IO_BACKEND, else spdk_dd if SPDK_DD is set, else emulator
    --spdk-dd PATH               the spdk_dd binary (default: SPDK_DD)
    --batch N                    writer, spdk_dd backend: io-size blocks per spdk_dd run (default 256)

With the emulator backend host_io becomes ``tests/emulator/spdk_io`` with the same arguments
(less the three above). With the spdk_dd backend every read and write is a run of SPDK's
``spdk_dd``; tests/hostio/spdk_dd.py describes how (each write is read back before it counts;
the writer works in rounds) and ``SPDK_DD_ARGS`` (the SPDK options of every run). With
``HOST_IO_TIMES`` set, the spdk_dd backend prints how long each spdk_dd run took (stderr).
"""
import hashlib
import json
import os
import signal
import sys

from tests.emulator.spdk_emu import hostio as emulator_hostio
from tests.hostio import EXIT_CONNECT, EXIT_IO, EXIT_MISMATCH, SPDK_IO, choose_backend
from tests.hostio import spdk_dd as backend_dd

PROG = "host_io"
# host_io's own options: (name, takes a value). Everything else goes to spdk_io unchanged.
OWN_OPTIONS = {"--backend": True, "--spdk-dd": True, "--batch": True}


def build_parser():
    """spdk_io's parser (the same commands and options) plus host_io's own options."""
    parser = emulator_hostio.build_parser()
    parser.prog = PROG
    parser.description = __doc__.splitlines()[0]
    parser.allow_abbrev = False          # host_io's own options are taken out by their exact names
    parser.add_argument("--backend", choices=("emulator", "spdk_dd"),
                        help="default: SPDK_HOST_IO_BACKEND, else spdk_dd if SPDK_DD is set, else emulator")
    parser.add_argument("--spdk-dd", help="spdk_dd backend: the spdk_dd binary (default: SPDK_DD)")
    parser.add_argument("--batch", type=int, default=backend_dd.DEFAULT_BATCH,
                        help="writer, spdk_dd backend: io-size blocks written per spdk_dd run")
    return parser


def emulator_argv(argv):
    """``argv`` without host_io's own options: spdk_io's command line."""
    out = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in OWN_OPTIONS:
            skip = OWN_OPTIONS[name] and "=" not in arg
            continue
        out.append(arg)
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        backend = choose_backend(args.backend)
    except ValueError as exc:
        parser.error(str(exc))
    if backend == "emulator":
        # Delegation: this process becomes spdk_io (its signals, output and exit codes).
        os.execv(sys.executable, [sys.executable, SPDK_IO] + emulator_argv(argv))
    binary = args.spdk_dd or os.environ.get("SPDK_DD")
    if not binary:
        parser.error("the spdk_dd backend needs the spdk_dd binary: --spdk-dd PATH or SPDK_DD")
    if not os.access(binary, os.X_OK):
        parser.error("spdk_dd binary %s is not executable" % binary)
    return run_spdk_dd(args, binary)


def report(args, data):
    if args.sha256:
        print("sha256=%s" % hashlib.sha256(data).hexdigest())


def expected(args):
    if args.file:
        return emulator_hostio.expected_data(args)
    return emulator_hostio.pattern_bytes(args.pattern, args.seed, args.offset, args.length)


def run_spdk_dd(args, binary):
    """One command with the spdk_dd backend; returns the exit code."""
    stop = {"now": False}

    def on_signal(signum, _frame):
        if args.command == "writer":
            stop["now"] = True            # finish the round, then print the summary
        else:
            raise SystemExit(128 + signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    host = backend_dd.SpdkDdHost(binary, args.nqn, args.traddr, args.trsvcid, hostnqn=args.hostnqn, nsid=args.nsid,
                                 timeout=args.timeout, io_size=args.io_size, queue_depth=args.queue_depth,
                                 dhchap_key=args.dhchap_key, dhchap_ctrlr_key=args.dhchap_ctrlr_key)
    try:
        if args.length is None:
            args.length = os.path.getsize(args.file) if args.file else host.size() - args.offset
        if args.command == "write":
            report(args, host.write(args.offset, expected(args)))
        elif args.command == "read":
            data = host.read(args.offset, args.length)
            if args.output:
                with open(args.output, "wb") as handle:
                    handle.write(data)
            report(args, data)
        elif args.command == "verify":
            want = expected(args)
            got = host.read(args.offset, len(want))
            report(args, got)
            if got != want:
                print("%s: MISMATCH at byte offset %d" % (PROG, args.offset + backend_dd.first_difference(got, want)),
                      file=sys.stderr)
                return EXIT_MISMATCH
        else:
            counts = backend_dd.run_writer(host, args.offset, args.length, args.io_size, args.batch, args.seed,
                                           args.duration, args.log, lambda: stop["now"])
            print(json.dumps(counts))
    except backend_dd.SpdkDdError as exc:
        if exc.kind == "usage":
            print("%s: %s" % (PROG, exc), file=sys.stderr)
            return EXIT_MISMATCH       # spdk_io's exit code for a bad offset or length
        if exc.kind == "connect":
            print("%s: cannot connect to %s at %s:%s as %s: %s" % (PROG, args.nqn, args.traddr, args.trsvcid,
                                                                   host.hostnqn, exc), file=sys.stderr)
            return EXIT_CONNECT
        print("%s: I/O failed: %s" % (PROG, exc), file=sys.stderr)
        return EXIT_IO
    finally:
        host.close()
        if os.environ.get("HOST_IO_TIMES"):
            print("%s: spdk_dd runs: %s" % (PROG, json.dumps([[w, round(s, 3)] for w, s in host.runs])),
                  file=sys.stderr)
    return 0

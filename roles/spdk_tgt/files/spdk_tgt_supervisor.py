#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run spdk_tgt as a background process where there is no systemd (standard library only).

    spdk_tgt_supervisor.py status --pid-file P --socket S --binary B [-- ARGV...]
    spdk_tgt_supervisor.py start  --pid-file P --socket S --log-file L --timeout T
                                  [--mode 0660] [--owner U] [--group G] -- BINARY ARGS...
    spdk_tgt_supervisor.py stop   --pid-file P --socket S --binary B [--grace 30]
    spdk_tgt_supervisor.py wait   --socket S --timeout T [--pid PID] [--mode M] [--owner U] [--group G]
    spdk_tgt_supervisor.py hugetlbfs --path P [--mount] [--check]

``start`` detaches the target into its own session (setsid), sends its output to the
log file, writes the pid file (plus ``<pid file>.json`` with the process's start time and
command line, which tell a recycled pid and a changed command line) and returns once the
RPC socket answers ``spdk_get_version``.
It does nothing when the pid file names a live target whose socket answers. ``stop``
sends SIGTERM, then SIGKILL after the grace period, and removes the pid file and a socket
nobody answers on. ``wait`` is the socket wait alone (systemd's ExecStartPost uses it). ``hugetlbfs`` makes sure a
hugetlbfs of the default hugepage size is mounted before a target with hugepages starts
(DPDK exits with "... hugepages of size ... reserved, but no mounted hugetlbfs found" otherwise):
it reads /proc/mounts, mounts one at P with ``--mount`` (root only) and fails with a message
saying how to mount it otherwise; ``--check`` only tells what it would do.
Every command prints one JSON object; a failure also prints its message on stderr and
exits with status 1. It is a launcher, not a watchdog: a target that dies stays down
until the role starts it again (systemd mode restarts it on failure).
"""

import argparse
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

POLL = 0.1
PROBE_TIMEOUT = 2.0
KILL_WAIT = 10.0
LOG_TAIL_LINES = 20


class SupervisorError(Exception):
    pass


# -- the process ----------------------------------------------------------------------


def read_pid(pid_file):
    try:
        with open(pid_file) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(pid_file, pid):
    tmp = "%s.tmp.%d" % (pid_file, os.getpid())
    with open(tmp, "w") as handle:
        handle.write("%d\n" % pid)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, pid_file)


def state_path(pid_file):
    """Next to the pid file: the pid's start time (pid reuse guard) and the argv it was started with."""
    return pid_file + ".json"


def start_time(pid):
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None without /proc."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def write_state(pid_file, pid, argv):
    tmp = "%s.tmp.%d" % (state_path(pid_file), os.getpid())
    with open(tmp, "w") as handle:
        json.dump({"pid": pid, "start_time": start_time(pid), "argv": list(argv)}, handle)
    os.replace(tmp, state_path(pid_file))


def read_state(pid_file, pid):
    """The recorded state of ``pid``, or None if absent, unreadable or about another pid."""
    try:
        with open(state_path(pid_file)) as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("pid") == pid else None


def remove(path):
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def is_alive(pid):
    """True for a live process; a zombie (exited, not yet reaped by init) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return True   # no /proc (not Linux): os.kill said it exists


def cmdline(pid):
    """The process's argv, or None where /proc is not available."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def binary_index(argv, binary):
    """Where ``binary`` sits in a running argv (after an interpreter for a script), or -1."""
    for index, part in enumerate(argv or []):
        if same_file(part, binary):
            return index
    return -1


def is_our_target(pid, state, binary):
    """A live pid that is the process the pid file was written for, not a recycled pid.

    With the recorded state the start time decides; without it (a pid file written by
    something else) the process must at least run ``binary``.
    """
    if not is_alive(pid):
        return False
    if state is not None and state.get("start_time") is not None:
        return state["start_time"] == start_time(pid)
    argv = cmdline(pid)
    return argv is None or binary_index(argv, binary) >= 0


def runs_argv(pid, state, wanted):
    """True when the running process was started with exactly ``wanted`` (binary + args)."""
    if state is not None and "argv" in state:
        return state["argv"] == list(wanted)
    argv = cmdline(pid)
    if argv is None:
        return True   # cannot tell: assume it matches rather than restart blindly
    index = binary_index(argv, wanted[0])
    return index >= 0 and argv[index + 1:] == list(wanted[1:])


def live_target(pid_file, binary):
    """(pid, recorded state) of the running target, or (None, None)."""
    pid = read_pid(pid_file)
    if pid is None:
        return None, None
    state = read_state(pid_file, pid)
    if is_our_target(pid, state, binary):
        return pid, state
    return None, None


# -- the socket -------------------------------------------------------------------------


def answers(path, timeout=PROBE_TIMEOUT):
    """True when a JSON-RPC spdk_get_version on the Unix socket ``path`` gets an answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(json.dumps({"jsonrpc": "2.0", "method": "spdk_get_version", "id": 1}).encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
            try:
                reply = json.loads(data.decode("utf-8"))
            except ValueError:
                continue
            return isinstance(reply, dict) and reply.get("id") == 1
    except OSError:
        return False
    finally:
        sock.close()


def remove_stale_socket(path):
    """Remove the socket file if nothing answers on it; never touch a live one."""
    if os.path.exists(path) and not answers(path):
        return remove(path)
    return False


def set_permissions(path, mode=None, owner=None, group=None):
    """Apply mode/owner/group to the socket; return True if anything changed."""
    before = os.stat(path)
    uid = pwd.getpwnam(owner).pw_uid if owner else -1
    gid = grp.getgrnam(group).gr_gid if group else -1
    changed = False
    if (uid != -1 and uid != before.st_uid) or (gid != -1 and gid != before.st_gid):
        os.chown(path, uid, gid)
        changed = True
    if mode is not None and (before.st_mode & 0o7777) != int(mode, 8):
        os.chmod(path, int(mode, 8))
        changed = True
    return changed


def wait_until_answering(path, timeout, alive=lambda: True):
    """Poll the socket until it answers; False on timeout, SupervisorError if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if answers(path, timeout=min(PROBE_TIMEOUT, max(deadline - time.monotonic(), POLL))):
            return True
        if not alive():
            raise SupervisorError("the target exited before its RPC socket %s answered" % path)
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


# -- hugetlbfs ----------------------------------------------------------------------------

MOUNTS = "/proc/mounts"
MEMINFO = "/proc/meminfo"
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def unescape_mount_field(field):
    """/proc/mounts writes space, tab, newline and backslash in paths as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_page_size(text):
    """A hugetlbfs ``pagesize=`` value (2M, 1G, 2048K, or bytes) in bytes, None when unreadable."""
    match = re.match(r"^(\d+)([KMG]?)$", text.strip().upper())
    if not match:
        return None
    return int(match.group(1)) * SIZE_UNITS.get(match.group(2), 1)


def default_page_size(meminfo=MEMINFO):
    """The kernel's default hugepage size in bytes (what vm.nr_hugepages reserves); 2 MiB if unknown."""
    try:
        with open(meminfo) as handle:
            for line in handle:
                if line.startswith("Hugepagesize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 2 << 20


def read_mounts(text):
    """[(mount point, fs type, {option: value})] of a /proc/mounts text."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        options = {}
        for option in fields[3].split(","):
            key, _sep, value = option.partition("=")
            options[key] = value
        mounts.append((unescape_mount_field(fields[1]), fields[2], options))
    return mounts


def hugetlbfs_mounts(mounts, page_size):
    """Mount points of the hugetlbfs file systems that serve pages of ``page_size`` bytes.

    A hugetlbfs without ``pagesize=`` serves the default size, which is what ``page_size`` is.
    """
    found = []
    for point, fstype, options in mounts:
        if fstype != "hugetlbfs":
            continue
        size = parse_page_size(options["pagesize"]) if "pagesize" in options else page_size
        if size == page_size:
            found.append(point)
    return found


def human_size(size):
    for unit in ("G", "M", "K"):
        if size >= SIZE_UNITS[unit] and size % SIZE_UNITS[unit] == 0:
            return "%d %siB" % (size // SIZE_UNITS[unit], unit)
    return "%d bytes" % size


def current_mounts():
    with open(MOUNTS) as handle:
        return read_mounts(handle.read())


def mount_hugetlbfs(path):
    """``mount -t hugetlbfs nodev PATH``, creating PATH; SupervisorError with mount's message on failure."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    mount = shutil.which("mount") or "/bin/mount"
    done = subprocess.run([mount, "-t", "hugetlbfs", "nodev", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SupervisorError("mount -t hugetlbfs nodev %s failed (exit status %d): %s"
                              % (path, done.returncode, done.stdout.decode("utf-8", "replace").strip()))


def cmd_hugetlbfs(args):
    page_size = default_page_size()
    mounts = current_mounts()
    found = hugetlbfs_mounts(mounts, page_size)
    result = {"changed": False, "page_size": page_size, "mounted": found, "path": args.path}
    if found:
        return result
    how = ("mkdir -p {0} && mount -t hugetlbfs nodev {0} (and, to keep it across reboots, the /etc/fstab "
           "line 'nodev {0} hugetlbfs defaults 0 0')".format(args.path))
    reason = ("no hugetlbfs of page size %s is mounted (none in %s): spdk_tgt with hugepages would exit with "
              "'hugepages ... reserved, but no mounted hugetlbfs found'" % (human_size(page_size), MOUNTS))
    if not args.mount:
        raise SupervisorError("%s. Mount one before the target starts: %s" % (reason, how))
    taken = [fstype for point, fstype, _options in mounts if point == os.path.abspath(args.path)]
    if taken:
        raise SupervisorError("%s, and %s is already the mount point of a %s file system: mount the "
                              "hugetlbfs at another path" % (reason, args.path, taken[-1]))
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise SupervisorError("%s, and mounting one needs root. As root: %s" % (reason, how))
    result["changed"] = True
    if args.check:
        return result
    mount_hugetlbfs(args.path)
    result["mounted"] = hugetlbfs_mounts(current_mounts(), page_size)
    if not result["mounted"]:
        raise SupervisorError("%s was mounted, but no hugetlbfs of page size %s shows in %s"
                              % (args.path, human_size(page_size), MOUNTS))
    return result


# -- commands ---------------------------------------------------------------------------


def log_tail(log_file):
    try:
        with open(log_file, errors="replace") as handle:
            lines = handle.read().splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return ""
    return "\n".join(lines)


def cmd_status(args):
    pid, state = live_target(args.pid_file, args.binary)
    result = {"running": pid is not None, "pid": pid, "answering": answers(args.socket)}
    if pid is not None and args.argv:
        result["outdated"] = not runs_argv(pid, state, args.argv)
    return result


def spawn(argv, log_file):
    with open(log_file, "ab", buffering=0) as log:
        log.write(("\n==== %s start: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(argv))).encode())
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd="/", close_fds=True, start_new_session=True)


def cmd_start(args):
    if not args.argv:
        raise SupervisorError("start needs the target's command line after --")
    binary = args.argv[0]
    if not os.access(binary, os.X_OK):
        raise SupervisorError("spdk_tgt binary %s does not exist or is not executable" % binary)
    pid, state = live_target(args.pid_file, binary)
    if pid is not None:
        return already_running(args, pid, state)
    remove(args.pid_file)
    remove(state_path(args.pid_file))
    for path in (args.pid_file, args.log_file, args.socket):
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    if os.path.exists(args.socket) and answers(args.socket):
        raise SupervisorError(
            "something already answers on %s but %s names no running %s: another target uses this "
            "socket; stop it or choose another spdk_tgt_rpc_socket" % (args.socket, args.pid_file, binary))
    remove(args.socket)
    started = time.monotonic()
    process = spawn(args.argv, args.log_file)
    write_state(args.pid_file, process.pid, args.argv)
    write_pid(args.pid_file, process.pid)
    try:
        up = wait_until_answering(args.socket, args.timeout, alive=lambda: process.poll() is None)
    except SupervisorError as exc:
        remove(args.pid_file)
        remove(state_path(args.pid_file))
        raise SupervisorError("%s (exit status %s). Last lines of %s:\n%s"
                              % (exc, process.returncode, args.log_file, log_tail(args.log_file)))
    if not up:
        terminate(process.pid, grace=5.0)
        remove(args.pid_file)
        remove(state_path(args.pid_file))
        raise SupervisorError("the target's RPC socket %s did not answer within %s s; the target was stopped. "
                              "Last lines of %s:\n%s" % (args.socket, args.timeout, args.log_file, log_tail(args.log_file)))
    set_permissions(args.socket, args.mode, args.owner, args.group)
    return {"changed": True, "pid": process.pid, "started_in": round(time.monotonic() - started, 3)}


def already_running(args, pid, state):
    if not wait_until_answering(args.socket, args.timeout, alive=lambda: is_alive(pid)):
        raise SupervisorError("target pid %d runs but its RPC socket %s did not answer within %s s"
                              % (pid, args.socket, args.timeout))
    changed = set_permissions(args.socket, args.mode, args.owner, args.group)
    return {"changed": changed, "pid": pid, "outdated": not runs_argv(pid, state, args.argv)}


def signal_target(pid, signum):
    """Signal the target's whole session (it is a session leader after setsid)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def terminate(pid, grace):
    """SIGTERM, then SIGKILL after ``grace`` seconds; return the signal that ended it."""
    signal_target(pid, signal.SIGTERM)
    if wait_gone(pid, grace):
        return "SIGTERM"
    signal_target(pid, signal.SIGKILL)
    if wait_gone(pid, KILL_WAIT):
        return "SIGKILL"
    raise SupervisorError("target pid %d survived SIGKILL for %s s" % (pid, KILL_WAIT))


def cmd_stop(args):
    pid, _state = live_target(args.pid_file, args.binary)
    result = {"changed": False, "pid": pid}
    if pid is not None:
        result["signal"] = terminate(pid, args.grace)
        result["changed"] = True
    # A target killed hard leaves its socket file behind; a new start must not trip on it.
    removed = [path for path in (args.pid_file, state_path(args.pid_file)) if remove(path)]
    if remove_stale_socket(args.socket):
        removed.append(args.socket)
    result["removed"] = removed
    result["changed"] = result["changed"] or bool(removed)
    return result


def cmd_wait(args):
    alive = (lambda: is_alive(args.pid)) if args.pid else (lambda: True)
    if not wait_until_answering(args.socket, args.timeout, alive=alive):
        raise SupervisorError("the RPC socket %s did not answer within %s s" % (args.socket, args.timeout))
    return {"changed": set_permissions(args.socket, args.mode, args.owner, args.group)}


# -- command line -----------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hugetlbfs")
    p.add_argument("--path", required=True)
    p.add_argument("--mount", action="store_true")
    p.add_argument("--check", action="store_true")
    for name in ("status", "start", "stop", "wait"):
        p = sub.add_parser(name)
        p.add_argument("--socket", required=True)
        if name != "wait":
            p.add_argument("--pid-file", required=True)
        if name in ("status", "stop"):
            p.add_argument("--binary", required=True)
        if name in ("start", "wait"):
            p.add_argument("--timeout", type=float, default=60.0)
            p.add_argument("--mode")
            p.add_argument("--owner")
            p.add_argument("--group")
        if name == "start":
            p.add_argument("--log-file", required=True)
        if name == "stop":
            p.add_argument("--grace", type=float, default=30.0)
        if name == "wait":
            p.add_argument("--pid", type=int)
    own, _sep, target_argv = _split_argv(argv)
    args = parser.parse_args(own)
    args.argv = target_argv
    return args


def _split_argv(argv):
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], "--", argv[index + 1:]
    return argv, None, []


COMMANDS = {"status": cmd_status, "start": cmd_start, "stop": cmd_stop, "wait": cmd_wait,
            "hugetlbfs": cmd_hugetlbfs}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = COMMANDS[args.command](args)
    except (SupervisorError, OSError, KeyError) as exc:
        message = str(exc) if not isinstance(exc, KeyError) else "unknown user or group: %s" % exc
        print(json.dumps({"failed": True, "msg": message}))
        print(message, file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

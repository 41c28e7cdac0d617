# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The SPDK RPC relay: every node reaches every other node's spdk_tgt socket through the controller.

Runs on the Ansible controller (module spdk_rpc_relay). Per node X one OpenSSH master process:

    ssh -M -S <control_dir>/X.ctl -f -N <master options> <connection options>
        -L <control_dir>/X.sock:<X's rpc_socket>             X's target, on the controller
        -R <peer_dir>/Y.sock:<control_dir>/Y.sock            one per other node Y
        <X's ssh_host>

A connection to <peer_dir>/Y.sock on X goes X's sshd -> the controller's master of X ->
<control_dir>/Y.sock (the -L of Y's master) -> Y's sshd -> Y's spdk_tgt. On X, <peer_dir>/X.sock is
a symlink to X's own socket, so every node reaches node Y at the same path.

Nothing listens on the network: both hops are SSH sessions the controller opened.

    relay = Relay(module.params, check_mode=module.check_mode)
    result = relay.apply()          # or raises RelayError (fail_json with its details)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import DEFAULT_SOCKET
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import WaitTimeout, Waiter

DEFAULT_PEER_DIR = "/run/spdk-storage/peers"
DEFAULT_CONTROL_DIR = "~/.cache/spdk-storage/relay"
DEFAULT_TIMEOUT = 30

# sockaddr_un.sun_path holds 108 bytes with the terminating NUL; ssh refuses longer paths.
SUN_PATH_MAX = 107
# A master binds its control socket as "<ControlPath>.<16 random characters>" and links it into place.
MUX_TEMP_SUFFIX = 17

MASTER_OPTIONS = (
    "-o", "ExitOnForwardFailure=yes",
    "-o", "StreamLocalBindUnlink=yes",
    "-o", "ServerAliveInterval=10",
    "-o", "ServerAliveCountMax=3",
)

NODE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# ssh expands %-tokens and ${VAR} in control and forwarding paths, and splits forwards at ':'.
UNSAFE_PATH = re.compile(r"[%$:\s]")
MASTER_PID = re.compile(r"\(pid=(\d+)\)")

FORWARDING_HINT = (
    ": the node's sshd must allow Unix socket forwarding, both AllowStreamLocalForwarding and "
    "AllowTcpForwarding (OpenSSH applies the second to Unix socket forwards too), and no other "
    "process may hold that path")

CONTROL_SUFFIXES = (".spec", ".ctl", ".sock", ".log")
LOCK_FILE = ".lock"

NODE_OPTIONS = dict(
    name=dict(type="str", required=True),
    ssh_host=dict(type="str", required=True),
    ssh_port=dict(type="int", default=22),
    ssh_user=dict(type="str"),
    ssh_private_key_file=dict(type="path"),
    ssh_common_args=dict(type="str"),
    ssh_extra_args=dict(type="str"),
    rpc_socket=dict(type="str", default=DEFAULT_SOCKET),
)

ARGUMENT_SPEC = dict(
    nodes=dict(type="list", elements="dict", options=NODE_OPTIONS),
    peer_dir=dict(type="str", default=DEFAULT_PEER_DIR),
    control_dir=dict(type="path", default=DEFAULT_CONTROL_DIR),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    ssh_executable=dict(type="str", default="ssh"),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    allow_unreachable=dict(type="bool", default=False),
)

REQUIRED_IF = [("state", "present", ("nodes",))]


class RelayError(SpdkError):
    """A failure to report with fail_json: the message plus node, ssh argv and ssh's stderr (``details``)."""

    def __init__(self, msg, node=None, argv=None, stderr=None, unreachable=False):
        super(RelayError, self).__init__(msg, **dict((key, value) for key, value in (
            ("node", node), ("ssh_argv", argv), ("ssh_stderr", stderr)) if value is not None))
        self.unreachable = unreachable      # ssh could not connect (allow_unreachable makes it a warning)

    @property
    def details(self):
        return self.result


def last_line(text):
    """The last non-empty line of ssh's stderr (where it says why), or the whole text stripped."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def path_problem(path, what, limit=SUN_PATH_MAX):
    """Why ``path`` cannot be used as a Unix socket path by ssh, or None."""
    if not os.path.isabs(path):
        return "%s %s must be an absolute path" % (what, path)
    match = UNSAFE_PATH.search(path)
    if match:
        return "%s %s contains %r, which ssh would expand or split" % (what, path, match.group(0))
    size = len(path.encode("utf-8"))
    if size > limit:
        why = "a Unix socket path can have at most %d" % SUN_PATH_MAX
        if limit < SUN_PATH_MAX:
            why = "ssh binds it under a name %d bytes longer, and %s" % (SUN_PATH_MAX - limit, why)
        return "%s %s is %d bytes, more than %d (%s)" % (what, path, size, limit, why)
    return None


class SshRunner(object):
    """The ssh processes of one run; unit tests replace it with a double."""

    def __init__(self, timeout):
        self.timeout = timeout

    def run(self, argv):
        """(rc, stdout, stderr) of a short ssh command; rc None when it did not finish in time."""
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            return None, _text(exc.stdout), _text(exc.stderr)
        except OSError as exc:
            return 255, "", "cannot run %s: %s" % (argv[0], exc)
        return proc.returncode, _text(proc.stdout), _text(proc.stderr)

    def start(self, argv, log_path):
        """Start a master (ssh -f); returns (rc, what it wrote to its log). rc None: it did not fork in time.

        Its output goes to ``log_path``, never to a pipe: the daemonised master keeps its stdout and
        stderr open for its whole life, and nothing may wait for them to close.
        """
        with open(log_path, "ab") as log:
            log.write(("# %s %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), shlex.join(argv))).encode("utf-8"))
            log.flush()
            offset = log.tell()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)
            except OSError as exc:
                return 255, "cannot run %s: %s" % (argv[0], exc)
        try:
            rc = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        with open(log_path, "rb") as log:
            log.seek(offset)
            return rc, _text(log.read())

    @staticmethod
    def alive(pid):
        """Whether process ``pid`` still runs; a zombie does not (its parent, init, may reap it late)."""
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == errno.EPERM
        try:
            with open("/proc/%d/stat" % pid) as handle:
                return handle.read().rpartition(")")[2].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    @staticmethod
    def kill(pid, sig=signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except OSError:
            pass

    @staticmethod
    def sleep(seconds):
        time.sleep(seconds)

    @staticmethod
    def monotonic():
        return time.monotonic()


def _text(data):
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


class Node(object):
    """One node of the relay: its connection, its files on the controller and its sockets on the node."""

    def __init__(self, options, relay):
        self.name = options["name"]
        self.options = options
        self.host = options.get("ssh_host") or self.name
        self.rpc_socket = options.get("rpc_socket") or DEFAULT_SOCKET
        self.relay = relay
        base = os.path.join(relay.control_dir, self.name)
        self.control_path = base + ".ctl"
        self.controller_socket = base + ".sock"
        self.spec_file = base + ".spec"
        self.log_file = base + ".log"
        self.peer_socket = os.path.join(relay.peer_dir, self.name + ".sock")
        self.peers = []

    def connection_args(self):
        """The options of every ssh to this node, the way Ansible's ssh connection takes them."""
        opts = self.options
        args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % self.relay.timeout]
        if opts.get("ssh_port") is not None:
            args += ["-p", str(opts["ssh_port"])]
        if opts.get("ssh_user"):
            args += ["-l", opts["ssh_user"]]
        if opts.get("ssh_private_key_file"):
            args += ["-i", opts["ssh_private_key_file"]]
        for extra in (opts.get("ssh_common_args"), opts.get("ssh_extra_args")):
            if extra:
                args += shlex.split(extra)
        return args

    def control_args(self):
        # ssh expands %-tokens in a ControlPath, also one given with -S.
        return ["-S", self.control_path.replace("%", "%%")]

    def master_argv(self):
        argv = [self.relay.ssh, "-M"] + self.control_args() + ["-f", "-N"] + list(MASTER_OPTIONS)
        argv += self.connection_args()
        argv += ["-L", "%s:%s" % (self.controller_socket, self.rpc_socket)]
        for peer in self.peers:
            argv += ["-R", "%s:%s" % (peer.peer_socket, peer.controller_socket)]
        return argv + [self.host]

    def prepare_command(self):
        """The shell command that readies peer_dir on the node before its master starts.

        sshd does not replace an existing socket file (its StreamLocalBindUnlink defaults to no), so
        the sockets a previous master left behind go first.
        """
        peer_dir = shlex.quote(self.relay.peer_dir)
        return (
            "umask 077 && mkdir -p {d} && chmod 0700 {d} && "
            "for f in {d}/*.sock; do if [ -S \"$f\" ]; then rm -f \"$f\"; fi; done && "
            "ln -sfn {target} {link}".format(
                d=peer_dir, target=shlex.quote(self.rpc_socket), link=shlex.quote(self.peer_socket)))

    def prepare_argv(self):
        return [self.relay.ssh] + self.connection_args() + [self.host, self.prepare_command()]

    def spec(self):
        return {"master": self.master_argv(), "prepare": self.prepare_argv()}

    def verify_command(self):
        """Prints every socket that should be on the node and is not (nothing when all are there)."""
        checks = ["[ -S %s ] || echo %s" % (shlex.quote(p.peer_socket), shlex.quote(p.peer_socket))
                  for p in self.peers]
        checks.append("[ \"$(readlink %s)\" = %s ] || echo %s" % (
            shlex.quote(self.peer_socket), shlex.quote(self.rpc_socket), shlex.quote(self.peer_socket)))
        return "; ".join(checks) + "; true"

    def verify_argv(self):
        # Through the master (-S): no new login. Same options, so it still works if the master just died.
        return [self.relay.ssh] + self.control_args() + self.connection_args() + [self.host, self.verify_command()]

    def check_argv(self):
        return [self.relay.ssh, "-o", "BatchMode=yes"] + self.control_args() + ["-O", "check", self.host]

    def exit_argv(self):
        return [self.relay.ssh, "-o", "BatchMode=yes"] + self.control_args() + ["-O", "exit", self.host]

    def saved_spec(self):
        try:
            with open(self.spec_file) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def save_spec(self):
        temporary = self.spec_file + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(self.spec(), handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.rename(temporary, self.spec_file)

    def remove_files(self, suffixes=CONTROL_SUFFIXES):
        base = os.path.join(self.relay.control_dir, self.name)
        for suffix in suffixes:
            try:
                os.remove(base + suffix)
            except FileNotFoundError:
                pass

    def view(self, state, reason=None):
        return {
            "node": self.name,
            "peer_socket": self.peer_socket,
            "controller_socket": self.controller_socket,
            "control_path": self.control_path,
            "peers": [peer.name for peer in self.peers],
            "state": state,
            "reason": reason,
        }


class Relay(object):
    """Brings the masters of the given nodes to ``state``."""

    def __init__(self, params, check_mode=False, runner=None):
        self.params = params
        self.check_mode = check_mode
        self.ssh = params["ssh_executable"]
        self.timeout = params["timeout"]
        self.peer_dir = params["peer_dir"].rstrip("/") or "/"
        self.control_dir = os.path.abspath(os.path.expanduser(params["control_dir"]))
        self.runner = runner or SshRunner(self.timeout)
        self.relays = []
        self.warnings = []

    # -- what the run is about -------------------------------------------------------

    def validate(self, nodes):
        if self.timeout <= 0:
            raise RelayError("timeout must be more than 0 seconds, got %s" % self.timeout)
        names = [node["name"] for node in nodes]
        for name in names:
            if not NODE_NAME.match(name):
                raise RelayError("node name %r cannot name a socket file: use letters, digits, '.', '_' and '-', "
                                 "not starting with '.' or '-'" % name, node=name)
        doubles = sorted(set(name for name in names if names.count(name) > 1))
        if doubles:
            raise RelayError("node names must be unique; given more than once: %s" % ", ".join(doubles))
        seen = {}
        for node in nodes:
            if node.get("ssh_host") is None:
                continue
            where = (node["ssh_host"], node.get("ssh_port"))
            if where in seen:
                raise RelayError("nodes %s and %s are the same host (%s port %s): they would share peer_dir, "
                                 "where each needs its own socket for itself and for the other; the relay is for "
                                 "nodes on separate hosts" % ((seen[where], node["name"]) + where), node=node["name"])
            seen[where] = node["name"]
        problems = [path_problem(self.peer_dir, "peer_dir")]
        problems += [path_problem(self.control_dir, "control_dir")]
        for node in nodes:
            problems.append(path_problem(os.path.join(self.peer_dir, node["name"] + ".sock"),
                                         "the peer socket of %s," % node["name"]))
            problems.append(path_problem(os.path.join(self.control_dir, node["name"] + ".sock"),
                                         "the controller socket of %s," % node["name"]))
            problems.append(path_problem(os.path.join(self.control_dir, node["name"] + ".ctl"),
                                         "the control path of %s," % node["name"], SUN_PATH_MAX - MUX_TEMP_SUFFIX))
            problems.append(path_problem(node.get("rpc_socket") or DEFAULT_SOCKET,
                                         "the rpc_socket of %s," % node["name"]))
        problems = [problem for problem in problems if problem]
        if problems:
            if any(" bytes, " in problem and "control" in problem for problem in problems):
                problems.append("set a shorter control_dir (or node names)")
            raise RelayError("; ".join(problems))

    def nodes(self):
        """The nodes of the run, each knowing its peers (every other node)."""
        given = self.params.get("nodes")
        if given is None:
            given = [dict(name=name) for name in self.nodes_in_control_dir()]
        self.validate(given)
        nodes = [Node(options, self) for options in given]
        for node in nodes:
            node.peers = [peer for peer in nodes if peer is not node]
        return nodes

    def nodes_in_control_dir(self):
        try:
            entries = os.listdir(self.control_dir)
        except FileNotFoundError:
            return []
        names = set()
        for entry in entries:
            for suffix in CONTROL_SUFFIXES:
                if entry.endswith(suffix) and NODE_NAME.match(entry[:-len(suffix)]):
                    names.add(entry[:-len(suffix)])
        return sorted(names)

    # -- masters -------------------------------------------------------------------

    def master_pid(self, node):
        """The pid of the node's running master, 0 when it runs but did not say, None when none runs."""
        if not os.path.exists(node.control_path):
            return None
        rc, out, err = self.runner.run(node.check_argv())
        if rc != 0:
            return None
        match = MASTER_PID.search(err + out)
        return int(match.group(1)) if match else 0

    def stop_master(self, node, pid):
        """-O exit, then wait until the process is gone (SIGTERM if it lingers): an exiting master
        unlinks its control path, which must not happen to the next master's."""
        argv = node.exit_argv()
        rc, out, err = self.runner.run(argv)
        if self.wait_gone(node, pid, min(self.timeout, 10)):
            return
        if pid:
            self.runner.kill(pid)
            if self.wait_gone(node, pid, 2):
                return
        raise RelayError("the SSH relay master of %s (pid %s) did not stop: %s"
                         % (node.name, pid or "unknown", last_line(err + out) or "ssh -O exit exited with %s" % rc),
                         node=node.name, argv=argv, stderr=err)

    def waiter(self, seconds):
        return Waiter(seconds, 0.05, clock=self.runner.monotonic, sleep=self.runner.sleep)

    def wait_gone(self, node, pid, seconds):
        def gone():
            return True if ((not self.runner.alive(pid)) if pid else self.master_pid(node) is None) else None
        try:
            return self.waiter(seconds).until(gone, lambda: "still running")
        except WaitTimeout:
            return False

    def missing_on_node(self, node):
        """The sockets of the relay that are not on the node, or raises RelayError when it cannot be asked."""
        argv = node.verify_argv()
        rc, out, err = self.runner.run(argv)
        if rc != 0:
            raise RelayError("cannot check the relay's sockets on %s over SSH (%s)"
                             % (node.name, last_line(err) or "rc %s" % rc), node=node.name, argv=argv, stderr=err)
        return [line.strip() for line in out.splitlines() if line.strip()]

    def why_restart(self, node, pid):
        """Why the node's master must (re)start, or None when it runs as wanted."""
        if pid is None:
            return "not running"
        if node.saved_spec() != node.spec():
            return "its options changed"
        if not os.path.exists(node.controller_socket):
            return "its controller socket %s is missing" % node.controller_socket
        try:
            missing = self.missing_on_node(node)
        except RelayError as err:
            return err.msg
        if missing:
            return "missing on the node: %s" % ", ".join(missing)
        return None

    def prepare(self, node):
        argv = node.prepare_argv()
        rc, out, err = self.runner.run(argv)
        if rc is None:
            raise RelayError("cannot reach %s over SSH (no answer in %s s)" % (node.name, self.timeout),
                             node=node.name, argv=argv, stderr=err, unreachable=True)
        if rc == 255:
            raise RelayError("cannot reach %s over SSH (%s)" % (node.name, last_line(err) or "ssh exited with 255"),
                             node=node.name, argv=argv, stderr=err, unreachable=True)
        if rc != 0:
            raise RelayError("preparing %s on %s failed (rc %s: %s)" % (self.peer_dir, node.name, rc, last_line(err)),
                             node=node.name, argv=argv, stderr=err)

    def start(self, node):
        argv = node.master_argv()
        rc, err = self.runner.start(argv, node.log_file)
        if rc != 0:
            why = "no answer in %s s" % self.timeout if rc is None else last_line(err) or "ssh exited with %s" % rc
            hint = FORWARDING_HINT if "forwarding failed" in err else ""
            raise RelayError("cannot start the SSH relay to %s (%s)%s" % (node.name, why, hint),
                             node=node.name, argv=argv, stderr=err)
        seen = {}

        def ready():
            seen["pid"] = self.master_pid(node)
            return True if seen["pid"] is not None and os.path.exists(node.controller_socket) else None
        try:
            self.waiter(5).until(ready, lambda: "not ready")
        except WaitTimeout:
            self.give_up(node, seen["pid"])
            raise RelayError("the SSH relay to %s started but %s (log: %s)" % (
                node.name, "its controller socket %s did not appear" % node.controller_socket
                if seen["pid"] is not None else "its master is not running", node.log_file),
                node=node.name, argv=argv, stderr=err)
        pid = seen["pid"]
        try:
            missing = self.missing_on_node(node)
        except RelayError:
            self.give_up(node, pid)
            raise
        if missing:
            self.give_up(node, pid)
            raise RelayError("the SSH relay to %s started but these sockets are not on the node: %s"
                             % (node.name, ", ".join(missing)), node=node.name, argv=argv, stderr=err)
        node.save_spec()

    def give_up(self, node, pid):
        if pid is not None:
            self.runner.run(node.exit_argv())
        node.remove_files((".spec", ".ctl", ".sock"))

    # -- states --------------------------------------------------------------------

    def present(self, nodes):
        plans = []
        for node in nodes:
            pid = self.master_pid(node)
            plans.append((node, pid, self.why_restart(node, pid)))
        before = dict((node.name, self.described(node, pid)) for node, pid, why in plans)
        after = dict((node.name, shlex.join(node.master_argv())) for node in nodes)
        if self.check_mode:
            self.relays = [node.view("running" if why is None else "started", why) for node, pid, why in plans]
            return any(why is not None for node, pid, why in plans), before, after
        changed = False
        for node, pid, why in plans:
            if why is None:
                self.relays.append(node.view("running"))
                continue
            if pid is not None:
                self.stop_master(node, pid)
                changed = True
            node.remove_files((".spec", ".ctl", ".sock"))
            try:
                self.prepare(node)
            except RelayError as err:
                if not (err.unreachable and self.params.get("allow_unreachable")):
                    raise
                self.warnings.append("%s: it has no relay until a run reaches it, and the other nodes find "
                                     "its socket %s unanswered" % (err.msg, node.peer_socket))
                self.relays.append(node.view("unreachable", err.msg))
                after[node.name] = "stopped"
                continue
            self.start(node)
            changed = True
            self.relays.append(node.view("started", why))
        return changed, before, after

    def described(self, node, pid):
        if pid is None:
            return "stopped"
        saved = node.saved_spec() or {}
        return shlex.join(saved["master"]) if saved.get("master") else "running"

    def absent(self, nodes):
        changed = False
        before, after = {}, {}
        for node in nodes:
            pid = self.master_pid(node)
            before[node.name] = self.described(node, pid)
            after[node.name] = "stopped"
            if pid is not None:
                changed = True
                if not self.check_mode:
                    self.stop_master(node, pid)
            if not self.check_mode:
                node.remove_files()
            self.relays.append(node.view("stopped" if pid is not None else "absent"))
        return changed, before, after

    @contextlib.contextmanager
    def locked(self):
        """Holds ``<control_dir>/.lock`` for the run, so two runs at once do not start the same masters.

        Not in check mode, and not when there is no control_dir to stop anything in."""
        if self.check_mode or (self.params["state"] == "absent" and not os.path.isdir(self.control_dir)):
            yield
            return
        os.makedirs(self.control_dir, mode=0o700, exist_ok=True)
        # Python opens files non-inheritable: the masters started meanwhile do not keep the lock.
        with open(os.path.join(self.control_dir, LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def apply(self):
        """The module's result (with the diff, which the module drops unless asked); raises RelayError."""
        nodes = self.nodes()
        with self.locked():
            if self.params["state"] == "present":
                changed, before, after = self.present(nodes)
            else:
                changed, before, after = self.absent(nodes)
        return {
            "changed": changed,
            "relays": self.relays,
            "peer_dir": self.peer_dir,
            "control_dir": self.control_dir,
            "warnings": self.warnings,
            "diff": {"before": before, "after": after},
        }

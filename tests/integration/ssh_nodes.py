"""Throw-away SSH "nodes" on this machine for the RPC relay's tests and benchmark.

Each node is an sshd of its own (own config, host key, pid file, address 127.0.0.5N, a free port) in a
mount namespace of its own, where a private tmpfs covers ``<workdir>/node``. A relay's ``peer_dir``
below that directory is then separate on every node, as on separate hosts, while everything else
(the stand-in targets' sockets, the controller's files) is shared.

``EchoTarget`` stands in for a node's spdk_tgt: a Unix socket that answers every JSON-RPC request
with its own name and the request's params. ``in_node`` runs a command inside a node's namespace.
``relay_module`` runs spdk.storage.spdk_rpc_relay on the controller (this machine) with ``ansible``.

Needs root (mount namespaces, sshd). ``ensure_sshd`` installs openssh-server with apt-get when
/usr/sbin/sshd is missing and raises when it cannot.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SSHD = "/usr/sbin/sshd"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ensure_sshd():
    """/usr/sbin/sshd, installed from the distribution when missing; RuntimeError when that fails."""
    if not os.access(SSHD, os.X_OK):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        apt = shutil.which("apt-get")
        if apt is None:
            raise RuntimeError("%s is missing and there is no apt-get to install openssh-server" % SSHD)
        logs = []
        for argv in ([apt, "install", "-y", "-q", "openssh-server"], [apt, "update", "-q"],
                     [apt, "install", "-y", "-q", "openssh-server"]):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
            logs.append("%s: rc %s %s" % (" ".join(argv), proc.returncode, proc.stderr[-1000:]))
            if proc.returncode == 0 and os.access(SSHD, os.X_OK):
                break
        if not os.access(SSHD, os.X_OK):
            raise RuntimeError("cannot install openssh-server:\n" + "\n".join(logs))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)     # sshd's privilege separation directory
    return SSHD


def free_port(address):
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True,
                   capture_output=True, timeout=60)
    with open(path + ".pub") as handle:
        return handle.read().strip()


class SshLab(object):
    """The client key, known_hosts and the shared tmpfs mount point of a set of SshNodes."""

    def __init__(self, workdir):
        ensure_sshd()
        self.workdir = workdir
        self.node_root = os.path.join(workdir, "node")         # private to every node (a tmpfs each)
        os.makedirs(self.node_root, exist_ok=True)
        self.client_key = os.path.join(workdir, "client_key")
        self.client_pub = keygen(self.client_key)
        self.host_key = os.path.join(workdir, "host_key")
        self.host_pub = keygen(self.host_key)
        self.authorized_keys = os.path.join(workdir, "authorized_keys")
        with open(self.authorized_keys, "w") as handle:
            handle.write(self.client_pub + "\n")
        self.known_hosts = os.path.join(workdir, "known_hosts")
        self.nodes = []

    def common_args(self):
        """ssh options every connection to the lab's nodes needs (as ansible_ssh_common_args)."""
        return ("-F /dev/null -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s"
                % self.known_hosts)

    def node(self, name, address):
        node = SshNode(self, name, address).start()
        self.nodes.append(node)
        with open(self.known_hosts, "a") as handle:
            handle.write("[%s]:%d %s\n" % (address, node.port, self.host_pub))
        return node

    def stop(self):
        for node in self.nodes:
            node.stop()


class SshNode(object):
    """One sshd in its own mount namespace (a private tmpfs over the lab's node_root)."""

    def __init__(self, lab, name, address):
        self.lab = lab
        self.name = name
        self.address = address
        self.port = free_port(address)
        self.config = os.path.join(lab.workdir, "sshd-%s.conf" % name)
        self.log = os.path.join(lab.workdir, "sshd-%s.log" % name)
        self.proc = None

    def write_config(self):
        with open(self.config, "w") as handle:
            handle.write("\n".join([
                "ListenAddress %s" % self.address,
                "Port %d" % self.port,
                "HostKey %s" % self.lab.host_key,
                "PidFile %s" % os.path.join(self.lab.workdir, "sshd-%s.pid" % self.name),
                "AuthorizedKeysFile %s" % self.lab.authorized_keys,
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "AllowStreamLocalForwarding yes",
                "AllowTcpForwarding yes",       # OpenSSH grants Unix socket forwards by this one too
                "X11Forwarding no",
                "PrintMotd no",
                "MaxSessions 100",
                "MaxStartups 100",
                "LogLevel VERBOSE",
                "",
            ]))

    def start(self):
        self.write_config()
        script = "mount -t tmpfs -o mode=0755 tmpfs {root} && exec {sshd} -D -e -f {config}".format(
            root=self.lab.node_root, sshd=SSHD, config=self.config)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as conn:
                    if conn.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("sshd of %s did not start on %s:%d: %s"
                           % (self.name, self.address, self.port, self.log_tail()))

    def log_tail(self):
        try:
            with open(self.log) as handle:
                return handle.read()[-3000:]
        except OSError:
            return ""

    def in_node(self, argv, **kwargs):
        """Run ``argv`` in this node's mount namespace (it sees the node's peer_dir)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(["nsenter", "--target", str(self.proc.pid), "--mount", "--"] + list(argv),
                              check=False, **kwargs)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EchoTarget(object):
    """A stand-in for spdk_tgt: answers each JSON-RPC request on its Unix socket with its name."""

    def __init__(self, path, name):
        self.path = path
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        decoder = json.JSONDecoder()
        buf = ""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data.decode()
                while buf.strip():
                    try:
                        request, end = decoder.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    reply = {"jsonrpc": "2.0", "id": request.get("id"),
                             "result": {"node": self.name, "params": request.get("params")}}
                    conn.sendall(json.dumps(reply).encode())

    def stop(self):
        # Shut down, joined, then closed: a listening socket closed under its accept thread would hand its
        # number, and with it the next socket opened in this process, to that thread.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# A JSON-RPC client for a node's namespace: ``python -c CLIENT <socket> <calls> <fresh>`` prints one JSON
# line: the first answer and the round-trip times in seconds. fresh=1 connects anew for every call.
CLIENT = r"""
import json, socket, sys, time
path, calls, fresh = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(path)
    return sock
sock, first, times = None, None, []
decoder = json.JSONDecoder()
for i in range(calls):
    begin = time.perf_counter()
    if sock is None or fresh:
        if sock is not None:
            sock.close()
        sock = connect()
    sock.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": "spdk_get_version",
                             "params": {"i": i}}).encode())
    buf = ""
    while True:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("connection closed after %r" % buf)
        buf += data.decode()
        try:
            answer = decoder.raw_decode(buf)[0]
            break
        except ValueError:
            pass
    times.append(time.perf_counter() - begin)
    first = first or answer
print(json.dumps({"first": first, "times": times}))
"""


def rpc_from(node, path, calls=1, fresh=False, python="python3"):
    """Send ``calls`` small requests to ``path`` from inside ``node`` (None: this namespace); returns
    (first answer, round-trip times in seconds)."""
    argv = [python, "-c", CLIENT, path, str(calls), "1" if fresh else "0"]
    proc = node.in_node(argv) if node is not None else subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError("request to %s failed (rc %s): %s" % (path, proc.returncode, proc.stderr.strip()))
    out = json.loads(proc.stdout)
    return out["first"], out["times"]


def relay_module(args, workdir, check=False):
    """``ansible localhost -m spdk.storage.spdk_rpc_relay -a ARGS``: the module's result (``--tree``),
    with ``failed`` set."""
    subprocess.run([os.path.join(REPO, "scripts", "collection_link.sh")], check=True)
    tree = tempfile.mkdtemp(prefix="tree-", dir=workdir)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-m", "spdk.storage.spdk_rpc_relay",
           "-a", json.dumps(args), "--tree", tree] + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".cache", "collections"),
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-tmp"), ANSIBLE_NOCOLOR="1")
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)
        try:
            with open(os.path.join(tree, "localhost")) as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            raise AssertionError("ansible wrote no result (rc %s):\n%s\n%s"
                                 % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        result.setdefault("failed", proc.returncode != 0)       # ansible-core 2.19 leaves it out of the tree
        return result
    finally:
        shutil.rmtree(tree, ignore_errors=True)

"""The multi-host topology of scripts/multihost.sh as the tests see it (the ``multihost`` fixture's object).

``Topology`` runs the script (up, down, status) and Ansible against ``inventories/multihost``;
``Node`` is one node: its name, address, the ssh argv that runs a command there, its sshd and
mount namespace. The environment's SPDK_MULTIHOST_DIR, SPDK_MULTIHOST_NODES and
SPDK_MULTIHOST_SSH_PORT are the script's.
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "multihost.sh")
INVENTORY = os.path.join(REPO, "inventories", "multihost")
COLLECTIONS_PATH = os.path.join(REPO, ".cache", "collections")
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))


def own_mount_namespace():
    return os.readlink("/proc/self/ns/mnt")


def mount_namespace(pid):
    """The mount namespace of ``pid``, or None when it has ended."""
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def pids_in_namespace(namespace):
    """Every live process whose mount namespace is ``namespace``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and mount_namespace(int(entry)) == namespace:
            pids.append(int(entry))
    return pids


class Node(object):
    """One node: nodeN on 127.0.0.(20+N), reached by SSH as root."""

    def __init__(self, number, state_dir, port):
        self.number = number
        self.name = "node%d" % number
        self.address = "127.0.0.%d" % (20 + number)
        self.port = port
        self.dir = os.path.join(state_dir, self.name)
        # ssh argv prefix: append one shell command line (the node's login shell runs it).
        self.ssh = [
            "ssh", "-i", os.path.join(state_dir, "id_ed25519"),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR", "-p", str(port), "root@" + self.address,
        ]

    def run(self, command, check=True, timeout=60):
        """Run a shell command line on the node; returns the CompletedProcess (text)."""
        proc = subprocess.run(self.ssh + [command], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s: %r exited %d\nstdout: %s\nstderr: %s"
                                 % (self.name, command, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def sshd_pid(self):
        """The node's listening sshd (from its pid file), or None."""
        try:
            with open(os.path.join(self.dir, "sshd.pid")) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def mount_namespace(self):
        """The node's mount namespace (its sshd's), or None when it is down."""
        pid = self.sshd_pid()
        return None if pid is None else mount_namespace(pid)

    def __repr__(self):
        return "Node(%s, %s:%d)" % (self.name, self.address, self.port)


class Topology(object):
    """The nodes of scripts/multihost.sh and how to drive them."""

    def __init__(self, env=None):
        self.env = dict(os.environ if env is None else env)
        self.state_dir = self.env.get("SPDK_MULTIHOST_DIR") or "/tmp/spdk-mh"
        self.port = int(self.env.get("SPDK_MULTIHOST_SSH_PORT") or 22)
        count = int(self.env.get("SPDK_MULTIHOST_NODES") or 3)
        self.nodes = [Node(number, self.state_dir, self.port) for number in range(1, count + 1)]
        self.inventory = INVENTORY
        self.script_path = SCRIPT

    def node(self, name):
        """The node called ``name`` (KeyError when there is none)."""
        return {node.name: node for node in self.nodes}[name]

    def script(self, command, check=True, timeout=300):
        """``scripts/multihost.sh COMMAND``; returns the CompletedProcess (text)."""
        proc = subprocess.run([SCRIPT, command], env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("multihost.sh %s exited %d\nstdout: %s\nstderr: %s"
                                 % (command, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def up(self):
        return self.script("up")

    def down(self):
        return self.script("down")

    def ansible_env(self):
        """Environment for the venv's ansible / ansible-playbook against ``inventory``."""
        env = dict(self.env)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "PATH": BIN_DIR + os.pathsep + env.get("PATH", ""),
        })
        return env

    def ansible(self, pattern, module, args=None, timeout=180):
        """``ansible -i inventories/multihost PATTERN -m MODULE [-a ARGS]`` (the venv's, minimal output)."""
        cmd = [os.path.join(BIN_DIR, "ansible"), "-i", self.inventory, pattern, "-m", module]
        if args:
            cmd += ["-a", args]
        env = dict(self.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

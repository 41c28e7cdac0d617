"""A double of spdk_relay.SshRunner that plays OpenSSH's part, for the RPC relay's unit tests.

It keeps the masters it "started" (control path -> pid) and answers the commands the relay runs:
``-O check`` / ``-O exit`` on a control path, the preparing command, the check of a node's sockets
through a master, and ``start`` of a master (which creates its control path and controller socket
as files, the way ssh would bind them). Its clock only moves when the relay sleeps.
"""
import os


def option(argv, flag):
    """The value after ``flag`` in ``argv`` (None when absent)."""
    return argv[argv.index(flag) + 1] if flag in argv else None


class FakeSsh(object):
    def __init__(self):
        self.calls = []              # (kind, argv) in order
        self.masters = {}            # control path -> pid of a running master
        self.next_pid = 4000
        self.unreachable = {}        # host -> ssh's stderr
        self.start_errors = {}       # host -> ssh's stderr of a failing master
        self.missing = {}            # host -> sockets the node lacks (printed by the verify command)
        self.stubborn = set()        # pids that ignore -O exit
        self.clock = 0.0
        self.killed = []

    # -- what the tests look at ----------------------------------------------------

    def kinds(self):
        return [kind for kind, argv in self.calls]

    def of_kind(self, kind):
        return [argv for k, argv in self.calls if k == kind]

    def mutating(self):
        return [(kind, argv) for kind, argv in self.calls if kind in ("prepare", "start", "exit")]

    # -- the runner interface -------------------------------------------------------

    def run(self, argv):
        ctl = option(argv, "-S")
        host = argv[-1] if "-O" in argv else argv[-2]
        if "-O" in argv:
            kind = option(argv, "-O")
            self.calls.append((kind, argv))
            pid = self.masters.get(ctl)
            if pid is None:
                return 255, "", "Control socket connect(%s): No such file or directory\r\n" % ctl
            if kind == "check":
                return 0, "", "Master running (pid=%d)\r\n" % pid
            if pid not in self.stubborn:
                self.stop(ctl)
            return 0, "", "Exit request sent.\r\n"
        if ctl is not None:
            self.calls.append(("verify", argv))
            return 0, "".join(path + "\n" for path in self.missing.get(host, ())), ""
        self.calls.append(("prepare", argv))
        if host in self.unreachable:
            return 255, "", self.unreachable[host]
        return 0, "", ""

    def start(self, argv, log_path):
        self.calls.append(("start", argv))
        host = argv[-1]
        with open(log_path, "a") as log:
            log.write("# started\n")
        if host in self.start_errors:
            return 255, self.start_errors[host]
        ctl = option(argv, "-S")
        self.next_pid += 1
        self.masters[ctl] = self.next_pid
        for path in (ctl, option(argv, "-L").split(":")[0]):
            with open(path, "w"):
                pass
        return 0, ""

    def alive(self, pid):
        return pid in self.masters.values()

    def kill(self, pid, sig=None):
        self.killed.append(pid)
        for ctl, running in list(self.masters.items()):
            if running == pid:
                self.stop(ctl)

    def sleep(self, seconds):
        self.clock += seconds

    def monotonic(self):
        return self.clock

    # -- helpers ----------------------------------------------------------------------

    def stop(self, ctl):
        """The master of ``ctl`` ends (it unlinks its control path, and the controller socket stays)."""
        self.masters.pop(ctl, None)
        if os.path.exists(ctl):
            os.remove(ctl)

    def die(self, ctl):
        """The master of ``ctl`` dies without cleaning up (its control path stays behind)."""
        self.masters.pop(ctl, None)

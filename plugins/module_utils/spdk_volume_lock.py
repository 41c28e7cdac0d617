# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""VolumeLock: one operation per volume at a time, for every runner that reaches the engine node.

The lock is an object on the engine node's own target, so every controller, process and rulebook
that can change the volume sees it: an NVMe-oF subsystem ``nqn.2026-01.io.spdk-storage:lock:<volume>``
with no listener and no namespace (nothing can connect to it, nothing is exported).

* **Taking it** is ``nvmf_create_subsystem``: the target creates a subsystem only when none has that
  NQN, and answers -32603 "Unable to create subsystem <nqn>" otherwise, so of two runners exactly one
  gets it. Its ``serial_number`` holds the holder's random token and the lease's first end
  (``SL<token:8 hex><epoch:10>``), its ``model_number`` who holds it (host, process, operation).
* **Renewing** it adds an allowed host ``...:lease:<token>:<epoch>``; the lease ends at the latest
  such epoch (or the serial's). A long operation renews while it waits.
* **A stale lease** (ended more than ``grace`` seconds ago: its holder died or lost its network) is
  taken over in steps: add host ``...:takeover:<token>``, which the target accepts once only (a
  second add of the same host answers -32603), so one runner wins; the winner reads the lock again
  and, if it still carries the stale token, deletes it and takes the lock like anyone else (a
  runner that finds a new token there removes its takeover host and waits). A holder that renews
  and finds that host has lost the lock and stops. The one window left: a stale holder that
  releases in the same milliseconds as its lease is taken over lets a third runner's fresh lock be
  deleted; holders renew well before their lease ends, so a live holder never goes stale.
* **A holder that died on this host** (``<host> pid <pid>`` names this host and no such process exists,
  as after kill -9) is taken over the same way at once, without waiting for its lease to end. Host
  names must differ between the machines that run the modules (they name the node records too).
* **Releasing** is ``nvmf_delete_subsystem``, by the holder only.

Both answers (-32603 for a second subsystem with the same NQN and for a second add of the same
host) are in tests/emulator/fixtures/rpc_py_real.jsonl (case ``duplicate`` of the nvmf phase),
recorded from SPDK v26.05. The lease uses the runners' wall clocks: controllers must keep their
clocks in step (NTP); ``grace`` covers the difference.

The lock lives in the target's memory: a restart of the engine node's target drops it, together
with whatever operation it guarded (the operation's journal says what to finish).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import os
import re
import socket
import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    NQN_PREFIX,
    SpdkInputError,
    validate_lvol_name,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import Waiter

LOCK_NQN_PREFIX = NQN_PREFIX + "lock:"
LEASE_HOST_PREFIX = NQN_PREFIX + "lease:"
TAKEOVER_HOST_PREFIX = NQN_PREFIX + "takeover:"
DEFAULT_LEASE_TIME = 60.0
DEFAULT_GRACE = 10.0
MODEL_MAX = 40
MAX_LOCK_TIMEOUT = 24 * 3600
_SERIAL_RE = re.compile(r"^SL([0-9a-f]{8})(\d{10})$")
_HOLDER_RE = re.compile(r"^(\S+) pid (\d+)( |$)")
_LEASE_RE = re.compile(r"^" + re.escape(LEASE_HOST_PREFIX) + r"([0-9a-f]{8}):(\d{10})$")


class VolumeLocked(SpdkError):
    """Another runner holds the volume's lock and its lease has not ended."""


class PlanAgain(Exception):
    """Raised by a run before its first change when it had to wait for another run's lock: that run may have
    changed what this one read, so it reads and plans again (it holds the lock now)."""


class LockLost(SpdkError):
    """This run's lease ended and another runner took the lock over: it must stop changing the volume."""


def lock_nqn(volume):
    return LOCK_NQN_PREFIX + validate_lvol_name("engine", volume)


def is_lock_nqn(nqn):
    return str(nqn or "").startswith(LOCK_NQN_PREFIX)


def new_token():
    return binascii.hexlify(os.urandom(4)).decode("ascii")


def short_hostname():
    return socket.gethostname().split(".")[0]


def default_holder(operation):
    """``<host> pid <pid> <operation>``: what a waiting runner is told, cut to the model number's 40."""
    text = "%s pid %d %s" % (short_hostname(), os.getpid(), operation)
    return re.sub(r"[^ -~]", "?", text)[:MODEL_MAX]


class Lease:
    """A lock subsystem as the target lists it: who holds it, and until when."""

    def __init__(self, volume, token, holder, ends, taken_over):
        self.volume = volume
        self.token = token
        self.holder = holder
        self.ends = ends
        self.taken_over = taken_over     # tokens whose lease a runner is taking over

    @classmethod
    def from_subsystem(cls, volume, entry):
        match = _SERIAL_RE.match(entry.get("serial_number") or "")
        token, ends = (match.group(1), int(match.group(2))) if match else (None, 0)
        taken_over = set()
        for host in entry.get("hosts") or []:
            nqn = host.get("nqn") or ""
            lease = _LEASE_RE.match(nqn)
            if lease and lease.group(1) == token:
                ends = max(ends, int(lease.group(2)))
            elif nqn.startswith(TAKEOVER_HOST_PREFIX):
                taken_over.add(nqn[len(TAKEOVER_HOST_PREFIX):])
        return cls(volume, token, entry.get("model_number") or "unknown", ends, taken_over)

    def holder_is_gone(self, hostname=None):
        """True when the holder ran on this host and its process no longer exists (killed, crashed): its lock
        can be taken over at once instead of when its lease ends."""
        match = _HOLDER_RE.match(self.holder)
        if not match or match.group(1) != (hostname or short_hostname()):
            return False
        try:
            os.kill(int(match.group(2)), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False            # it exists (owned by another user)
        return False

    def describe(self, now):
        left = self.ends - now
        when = "its lease ends in %ds" % left if left >= 0 else "its lease ended %ds ago" % -left
        return "volume %s is locked by %s (%s)" % (self.volume, self.holder, when)


# What resumes each operation a lock names (its holder ends with "<operation> <argument>")
RESUMES = {
    "take": "spdk.storage.spdk_snapshot engine={volume} name={arg} (snapshot_volume.yml -e volume={volume} "
            "-e snapshot={arg})",
    "delete": "spdk.storage.spdk_snapshot engine={volume} name={arg} state=absent (snapshot_volume.yml "
              "-e volume={volume} -e snapshot={arg} -e snapshot_action=delete)",
    "revert": "spdk.storage.spdk_snapshot engine={volume} name={arg} state=reverted (snapshot_volume.yml "
              "-e volume={volume} -e snapshot={arg} -e snapshot_action=revert)",
    "rebuild": "spdk.storage.spdk_replica_rebuild of destination {arg} (rebuild_replica.yml; the engine node's record "
               "names its source and replaced replica)",
    "engine": "spdk.storage.spdk_engine state={arg} (create_volume.yml or recover_node.yml for present, "
              "delete_volume.yml for absent)",
}


def resume_command(volume, holder):
    """The run that resumes the operation a lock's holder names, or None (unknown, or cut at 40 characters)."""
    words = (holder or "").split()
    if len(words) < 2 or words[-2] not in RESUMES:
        return None
    return RESUMES[words[-2]].format(volume=volume, arg=words[-1])


def left_by_a_dead_run(what, volume, holder):
    """The warning for a lock whose holder is gone: its operation may be unfinished, and says what to do."""
    command = resume_command(volume, holder)
    return ("%s the lock of volume %s that a run which no longer exists left (%s); if that operation did not "
            "finish, run it again: a re-run resumes it%s" % (what, volume, holder, ": " + command if command else ""))


def lock_argument_spec(lock_timeout=60.0):
    """The ``lock_timeout`` option (documented by the doc fragment spdk.storage.spdk.lock)."""
    return dict(lock_timeout=dict(type="float", default=float(lock_timeout)))


def check_lock_timeout(lock_timeout):
    if lock_timeout is None or not 0 <= lock_timeout <= MAX_LOCK_TIMEOUT:
        raise SpdkInputError("lock_timeout must be from 0 to %d seconds, got %s" % (MAX_LOCK_TIMEOUT, lock_timeout))
    return float(lock_timeout)


class VolumeLock:
    """The lock of ``volume`` on the engine node reached by ``client``.

    ``with VolumeLock(client, "vol1", "snapshot").held(timeout=30): ...`` waits up to ``timeout``
    seconds for a runner that holds it, takes over a stale lease, and releases it at the end.
    """

    def __init__(self, client, volume, operation, lease_time=DEFAULT_LEASE_TIME, grace=DEFAULT_GRACE,
                 holder=None, token=None, clock=time.time, sleep=time.sleep, poll=1.0):
        self.client = client
        self.volume = volume
        self.nqn = lock_nqn(volume)
        self.lease_time = float(lease_time)
        self.grace = float(grace)
        self.holder = holder or default_holder(operation)
        self.token = token or new_token()
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self.owned = False
        self.renewed = None       # clock() of the last lease start or renewal
        self.waited = False       # another runner held the lock when this one asked for it
        self.warning = None

    # -- reading ----------------------------------------------------------------------------
    def lease(self):
        """The current Lease, or None when nobody holds the lock."""
        try:
            entries = self.client.call("nvmf_get_subsystems", {"nqn": self.nqn})
        except SpdkRpcError as err:
            if err.is_no_device():      # -19: no subsystem with that NQN
                return None
            raise
        return Lease.from_subsystem(self.volume, entries[0]) if entries else None

    # -- taking and giving back -------------------------------------------------------------
    def acquire(self, timeout=0.0):
        """Take the lock, waiting up to ``timeout`` seconds; VolumeLocked names the holder when it stays held."""
        if getattr(self.client, "check_mode", False):
            return self._foresee()
        seen = {}

        def attempt():
            if self._create():
                return self
            lease = self.lease()
            if lease is None:                 # released between the two calls
                return self if self._create() else None
            if lease.token == self.token:
                self.owned = True
                return self
            self.waited = True
            seen["lease"] = lease
            stale = self.clock() > lease.ends + self.grace or lease.holder_is_gone()
            if stale and self._take_over(lease):
                self.warning = left_by_a_dead_run("took over", self.volume, lease.holder)
                return self if self._create() else None
            return None

        def still_held():
            lease = seen.get("lease")
            return lease.describe(self.clock()) if lease else "volume %s is locked by another run" % self.volume

        def refusal(message):
            return VolumeLocked(message, hint=(
                "wait for that operation to finish, or give lock_timeout to wait for it; a lease that ended "
                "over %ds ago is taken over by the next run" % self.grace))

        return Waiter(max(0.0, timeout), self.poll, clock=self.clock, sleep=self.sleep).until(
            attempt, still_held, error=refusal)

    def _foresee(self):
        """Check mode takes nothing: it only says whether a real run would have to wait."""
        lease = self.lease()
        now = self.clock()
        if lease is not None and now <= lease.ends + self.grace:
            self.warning = lease.describe(now) + "; a real run would wait for it (lock_timeout) or fail"
        return self

    def renew(self):
        """Extend the lease by ``lease_time``; LockLost when another runner took it over meanwhile."""
        lease = self.lease()
        if lease is None or lease.token != self.token or self.token in lease.taken_over:
            self.owned = False
            raise LockLost("the lock of volume %s was taken over by %s after this run's lease ended; this run "
                           "stops changing the volume" % (self.volume, lease.holder if lease else "another run"))
        ends = int(self.clock() + self.lease_time)
        self.client.call("nvmf_subsystem_add_host", {"nqn": self.nqn, "host": "%s%s:%010d" % (
            LEASE_HOST_PREFIX, self.token, ends)})
        self.renewed = self.clock()

    def keep_alive(self):
        """Renew the lease once a third of it has passed (called between the polls of a long wait)."""
        if self.owned and self.renewed is not None and self.clock() - self.renewed >= self.lease_time / 3:
            self.renew()

    def release(self):
        """Give the lock back (only when this run holds it)."""
        if not self.owned:
            return
        self.owned = False
        lease = self.lease()
        if lease is not None and lease.token == self.token:
            self._delete(tolerate_gone=True)

    def clear_stale(self, entry):
        """Remove the lock ``entry`` (its subsystem as already read) when its holder died or its lease ended:
        a run that had nothing to change leaves no dead run's lock behind. True when it removed it."""
        lease = Lease.from_subsystem(self.volume, entry)
        if lease.token == self.token or not (self.clock() > lease.ends + self.grace or lease.holder_is_gone()):
            return False
        return self._take_over(lease)

    def held(self, timeout=0.0):
        return _Held(self, timeout)

    # -- steps ------------------------------------------------------------------------------
    def _create(self):
        ends = int(self.clock() + self.lease_time)
        try:
            self.client.call("nvmf_create_subsystem", {
                "nqn": self.nqn, "serial_number": "SL%s%010d" % (self.token, ends),
                "model_number": self.holder, "allow_any_host": False})
        except SpdkRpcError as err:
            if err.code == -32603:         # another runner's subsystem has that NQN
                return False
            raise
        self.owned = True
        self.renewed = self.clock()
        return True

    def _take_over(self, lease):
        """Claim a stale lease and remove that lock; True when this run did (it then takes the lock anew)."""
        if not self._claim(lease):
            return False
        now = self.lease()
        if now is None or now.token != lease.token:
            # The stale lock went and another runner's lock took its place: leave that one alone.
            if now is not None:
                self._remove_host(TAKEOVER_HOST_PREFIX + str(lease.token))
            return False
        self._delete(tolerate_gone=True)
        return True

    def _claim(self, lease):
        """Add the takeover host of ``lease``: the target accepts it once, so one runner wins."""
        try:
            self.client.call("nvmf_subsystem_add_host", {"nqn": self.nqn, "host": TAKEOVER_HOST_PREFIX + str(
                lease.token)})
        except SpdkRpcError as err:
            if err.code in (-32603, -32602):   # another runner claimed it first, or the lock is gone
                return False
            raise
        return True

    def _remove_host(self, host):
        try:
            self.client.call("nvmf_subsystem_remove_host", {"nqn": self.nqn, "host": host})
        except SpdkRpcError as err:
            if err.code not in (-32603, -32602):
                raise

    def _delete(self, tolerate_gone):
        try:
            self.client.call("nvmf_delete_subsystem", {"nqn": self.nqn})
        except SpdkRpcError as err:
            if not (tolerate_gone and err.code == -32602):
                raise


class RunLock:
    """The volume's lock as one run holds it: taken before the run's first change, kept alive through its
    waits, released at its end. ``factory(operation)`` gives the VolumeLock (None: the run is not locked).

    ``run(plan_and_apply, subsystems)`` runs ``plan_and_apply`` once more when taking the lock meant
    waiting (the run that held it may have changed what this one read and planned); a run that changed
    nothing removes the lock a dead run left, found in ``subsystems()`` (the engine node's subsystems as
    last read, or None).
    """

    def __init__(self, factory, timeout, warnings):
        self.factory = factory
        self.timeout = timeout
        self.warnings = warnings     # the run's warnings list: a wait or a cleared lock is reported there
        self.lock = None             # the VolumeLock once this run holds it

    def take(self, operation):
        """Take the lock (a no-op when held or not locked); PlanAgain when another run held it first."""
        if self.lock is not None or self.factory is None:
            return
        lock = self.factory(operation)
        lock.acquire(self.timeout)
        if lock.warning:
            self.warnings.append(lock.warning)
        self.lock = lock if lock.owned else None
        if lock.waited:
            raise PlanAgain()

    def keep_alive(self):
        if self.lock is not None:
            self.lock.keep_alive()

    def run(self, plan_and_apply, subsystems):
        try:
            try:
                result = plan_and_apply()
            except PlanAgain:
                result = plan_and_apply()
            if self.lock is None:
                self._clear_stale(subsystems())
            return result
        finally:
            if self.lock is not None:
                self.lock.release()

    def _clear_stale(self, subsystems):
        if self.factory is None or subsystems is None:
            return
        cleaner = self.factory("cleanup")
        entry = next((s for s in subsystems if s.get("nqn") == cleaner.nqn), None)
        if entry is not None and not getattr(cleaner.client, "check_mode", False) and cleaner.clear_stale(entry):
            self.warnings.append(left_by_a_dead_run("removed", cleaner.volume, entry.get("model_number")))


class _Held:
    def __init__(self, lock, timeout):
        self.lock = lock
        self.timeout = timeout

    def __enter__(self):
        return self.lock.acquire(self.timeout)

    def __exit__(self, *exc_info):
        self.lock.release()
        return False

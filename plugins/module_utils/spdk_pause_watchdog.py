# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PauseWatchdog: host I/O paused for an engine snapshot comes back even if the module dies.

An engine snapshot pauses host I/O by moving the frontend's namespaces into the inaccessible ANA
group, and moves them back when the snapshots are taken. If the module process is killed (kill -9,
an OOM kill, a lost SSH session) in between, nothing would move them back and the volume would stay
unreachable until a later run. So before the pause the module forks a small watchdog on the engine
node. The two share a pipe:

* the module writes ``done`` when it has resumed I/O itself: the watchdog exits and does nothing;
* the pipe closes without ``done`` (the module died), or ``quiesce_timeout`` passes first (the module
  hangs): the watchdog sends the pause's resume steps (every paused namespace back into its group,
  as spdk_engine_snapshot_pause.resume_steps planned them), trying a step the target does not answer
  again for up to a minute, and exits with ``RESTORED``. Given the run's volume lock (``lock``: volume
  and token), it sends a step only while that lock is still the run's: once another run took the lock
  over, the volume is that run's, which ends any pause it finds, and a late resume from here would break
  that run's own pause. A module
  that is still alive learns it from that exit status and treats the pause as broken (the snapshots
  it took then are not one point in time).

The watchdog talks to the same target socket as the module, in a new session with no inherited
file descriptors but the pipe, so it outlives the module and holds no SSH channel open.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import select
import time

RESTORED = 3
"""Exit status of a watchdog that moved the namespaces back itself."""

RESTORE_PATIENCE = 60.0
"""Seconds a watchdog keeps trying a resume step the target does not answer."""

_DONE = b"done"


class PauseWatchdog:
    """Guards one pause on the target at ``address``: ``resume`` is the list of Steps that end it."""

    def __init__(self, address, resume, timeout, rpc_timeout=5.0, patience=RESTORE_PATIENCE, lock=None):
        self.address = address
        self.resume = list(resume)
        self.timeout = float(timeout)
        self.rpc_timeout = rpc_timeout
        self.patience = patience
        self.lock = lock              # (volume, token) of the run's VolumeLock, or None: not locked
        self.pid = None
        self._pipe = None
        self.fired = False

    def start(self):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the watchdog
            os.close(write_end)
            status = 1
            try:
                status = self._watch(read_end)
            finally:
                os._exit(status)
        os.close(read_end)
        self.pid = pid
        self._pipe = write_end
        return self

    def stop(self):
        """The module resumed I/O itself; True when the watchdog had already done it (the pause broke)."""
        if self.pid is None:
            return self.fired
        try:
            os.write(self._pipe, _DONE)
        except OSError:
            pass                                      # the watchdog is gone already
        os.close(self._pipe)
        status = os.waitpid(self.pid, 0)[1]
        self.pid = None
        self.fired = os.WIFEXITED(status) and os.WEXITSTATUS(status) == RESTORED
        return self.fired

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False

    # -- in the watchdog process ------------------------------------------------------------
    def _watch(self, read_end):
        os.setsid()
        _detach_stdio()
        os.closerange(3, read_end)          # the module's connections are not the watchdog's
        os.closerange(read_end + 1, 65536)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = select.select([read_end], [], [], left)[0]
            if not ready:
                continue
            data = os.read(read_end, 16)
            if data.startswith(_DONE):
                return 0
            if not data:                               # the module died: its end of the pipe closed
                break
        self.restore()
        return RESTORED

    def restore(self):
        """Send the resume steps (what the module would have done). A step the target cannot be asked (no
        answer, the connection closed: the target busy, or the request lost with the module's connection) is
        tried again on a new connection for up to RESTORE_PATIENCE seconds, since a namespace left paused
        stays unreachable until a later run; a step the target refuses does not stop the next. Nothing is sent
        once the run's lock is another run's (``lock_is_ours``)."""
        # Imported here: the module process does not need the client to fork the watchdog.
        from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
            SpdkConnectionError,
            SpdkRpcClient,
            SpdkRpcError,
        )

        deadline = time.monotonic() + self.patience
        for step in self.resume:
            while True:
                client = SpdkRpcClient(self.address, timeout=self.rpc_timeout, connect_retries=4)
                try:
                    if not self.lock_is_ours(client):
                        return
                    client.call(step.method, step.params)
                    break
                except SpdkConnectionError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(1.0)
                except SpdkRpcError:
                    break                                  # refused: the next namespace still gets its chance
                finally:
                    client.close()

    def lock_is_ours(self, client):
        """Whether the run's volume lock is still on the target with the run's token, not being taken over
        (always, for a run without a lock)."""
        if self.lock is None:
            return True
        from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import VolumeLock

        volume, token = self.lock
        lease = VolumeLock(client, volume, "pause watchdog", token=token).lease()
        return lease is not None and lease.token == token and token not in lease.taken_over


def _detach_stdio():
    """Point stdin/stdout/stderr at /dev/null so that no pipe of the module's runner stays open."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)

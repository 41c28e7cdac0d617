# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Waiting for the target: one set of options and one poll loop.

Every module that waits takes ``wait`` (bool), ``wait_timeout`` (seconds, float) and
``wait_sleep`` (seconds between polls, float), documented once in the doc fragment
``spdk.storage.spdk.wait``; a module only changes the defaults. Every wait is a ``Waiter``::

    waiter = Waiter.from_params(module.params)
    state = waiter.until(lambda: healthy_or_none(client), lambda: "engine vol1 is degraded")

``until`` calls the probe until it returns something other than None, sleeping between polls,
and raises the given error (WaitTimeout by default) once the deadline would pass.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError

MAX_WAIT_TIMEOUT = 7 * 24 * 3600.0


class WaitTimeout(SpdkError):
    """What was waited for did not happen before the deadline."""


def wait_argument_spec(wait=False, wait_timeout=300.0, wait_sleep=1.0):
    """The three wait options with this module's defaults (a fresh dict each time)."""
    return dict(
        wait=dict(type="bool", default=wait),
        wait_timeout=dict(type="float", default=float(wait_timeout)),
        wait_sleep=dict(type="float", default=float(wait_sleep)),
    )


def check_wait_options(wait_timeout, wait_sleep):
    """Refuse values no wait can use; returns the problem as text, None when they are fine."""
    if wait_timeout is None or not 0 < wait_timeout <= MAX_WAIT_TIMEOUT:
        return "wait_timeout must be more than 0 and at most %d seconds, got %s" % (MAX_WAIT_TIMEOUT, wait_timeout)
    if wait_sleep is None or not 0 < wait_sleep <= wait_timeout:
        return "wait_sleep must be more than 0 seconds and at most wait_timeout (%s), got %s" % (
            wait_timeout, wait_sleep)
    return None


class Waiter:
    """Polls until a probe answers, or a deadline passes.

    ``backoff`` (seconds) starts polling faster: poll n sleeps min(interval, backoff * 2**n), so work
    that usually ends in milliseconds is not made to wait a whole interval.
    """

    def __init__(self, timeout, interval=1.0, backoff=None, clock=time.monotonic, sleep=time.sleep,
                 deadline=None, heartbeat=None):
        self.timeout = timeout
        self.interval = interval
        self.backoff = backoff
        self.clock = clock
        self.sleep = sleep
        self.deadline = clock() + timeout if deadline is None else deadline
        self.heartbeat = heartbeat    # called between polls: a long wait keeps its lock's lease alive
        self.polls = 0

    @classmethod
    def from_params(cls, params, **kwargs):
        return cls(params["wait_timeout"], params["wait_sleep"], **kwargs)

    def remaining(self):
        return max(0.0, self.deadline - self.clock())

    def expired(self):
        return self.clock() >= self.deadline

    def next_interval(self):
        if self.backoff is None:
            return self.interval
        return min(self.interval, self.backoff * 2 ** self.polls)

    def until(self, probe, describe, error=WaitTimeout):
        """The first answer of ``probe()`` that is not None.

        At the deadline raises ``error(describe())``: ``describe`` is called then, so its message can
        say what the last poll saw.
        """
        while True:
            answer = probe()
            if answer is not None:
                return answer
            pause = self.next_interval()
            if self.clock() + pause > self.deadline:
                raise error(describe())
            self.polls += 1
            if self.heartbeat is not None:
                self.heartbeat()
            self.sleep(pause)

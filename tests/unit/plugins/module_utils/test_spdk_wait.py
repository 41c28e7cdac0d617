# -*- coding: utf-8 -*-
"""Waiter and the wait options: one poll loop, one set of option names, types and ranges."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import (
    WaitTimeout,
    Waiter,
    check_wait_options,
    wait_argument_spec,
)


class Clock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def waiter(timeout, interval, **kwargs):
    clock = Clock()
    return Waiter(timeout, interval, clock=clock, sleep=clock.sleep, **kwargs), clock


def test_the_first_answer_that_is_not_none_ends_the_wait():
    answers = iter([None, None, "healthy"])
    wait, clock = waiter(10, 1.0)
    assert wait.until(lambda: next(answers), lambda: "never") == "healthy"
    assert clock.sleeps == [1.0, 1.0]


def test_at_the_deadline_the_error_says_what_the_last_poll_saw():
    seen = []

    def probe():
        seen.append(len(seen))
        return None

    wait, clock = waiter(3, 1.0)
    with pytest.raises(WaitTimeout) as caught:
        wait.until(probe, lambda: "still %d polls" % len(seen))
    assert str(caught.value) == "still 4 polls" and clock.now == 103.0
    assert isinstance(caught.value, SpdkError)


def test_the_caller_chooses_the_error_class():
    class Refused(SpdkError):
        pass

    wait = waiter(1, 1.0)[0]
    with pytest.raises(Refused):
        wait.until(lambda: None, lambda: "no", error=Refused)


def test_backoff_polls_fast_first_then_at_the_interval():
    answers = iter([None] * 6 + [True])
    wait, clock = waiter(60, 1.0, backoff=0.1)
    wait.until(lambda: next(answers), lambda: "never")
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_every_module_gets_the_same_names_and_types_with_its_own_defaults():
    spec = wait_argument_spec(wait=True, wait_timeout=3600, wait_sleep=1)
    assert spec == {"wait": {"type": "bool", "default": True},
                    "wait_timeout": {"type": "float", "default": 3600.0},
                    "wait_sleep": {"type": "float", "default": 1.0}}
    assert wait_argument_spec()["wait"]["default"] is False


@pytest.mark.parametrize("timeout, sleep, problem", [
    (300, 1, None),
    (0, 1, "wait_timeout must be more than 0"),
    (-1, 1, "wait_timeout must be more than 0"),
    (10 ** 9, 1, "at most 604800 seconds"),
    (300, 0, "wait_sleep must be more than 0"),
    (5, 10, "at most wait_timeout (5)"),
])
def test_wait_options_are_refused_outside_their_range(timeout, sleep, problem):
    found = check_wait_options(timeout, sleep)
    assert (found is None) if problem is None else (problem in found)

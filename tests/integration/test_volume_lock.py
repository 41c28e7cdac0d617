"""The per-volume lock on the engine node's target: one holder at a time for every runner, a stale lease
taken over once, nothing left behind (the emulator, or the real spdk_tgt named by SPDK_TGT)."""
import threading
import time

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient
from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import (
    LockLost,
    VolumeLock,
    VolumeLocked,
    lock_nqn,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def engine_node(spdk_targets):
    return spdk_targets()


def client_of(target, check_mode=False):
    return SpdkRpcClient(target.sock, timeout=10.0, check_mode=check_mode)


def lock_of(target, operation, **kwargs):
    kwargs.setdefault("poll", 0.05)
    return VolumeLock(client_of(target), "vol1", operation, **kwargs)


def thirty_seconds_later():
    return time.time() + 30


def lock_subsystems(target):
    return [s for s in target.rpc("nvmf_get_subsystems") if s["nqn"] == lock_nqn("vol1")]


def test_a_second_runner_is_refused_with_the_holder_named_until_the_first_releases(engine_node):
    first = lock_of(engine_node, "snapshot", holder="ctrl1 pid 11 snapshot")
    second = lock_of(engine_node, "rebuild", holder="ctrl2 pid 22 rebuild")
    first.acquire()
    with pytest.raises(VolumeLocked) as caught:
        second.acquire(timeout=0.2)
    assert "volume vol1 is locked by ctrl1 pid 11 snapshot (its lease ends in" in str(caught.value)
    first.release()
    second.acquire()
    assert second.owned
    second.release()
    assert lock_subsystems(engine_node) == []


def test_the_lock_exports_nothing_and_names_its_holder(engine_node):
    with lock_of(engine_node, "revert", holder="ctrl1 pid 11 revert").held():
        (entry,) = lock_subsystems(engine_node)
        assert entry["listen_addresses"] == [] and entry["namespaces"] == []
        assert entry["allow_any_host"] is False and entry["model_number"] == "ctrl1 pid 11 revert"
    assert lock_subsystems(engine_node) == []


def test_a_waiting_runner_gets_the_lock_once_the_holder_releases_it(engine_node):
    first = lock_of(engine_node, "snapshot").acquire()
    timer = threading.Timer(0.3, first.release)
    timer.start()
    started = time.monotonic()
    second = lock_of(engine_node, "rebuild").acquire(timeout=10)
    assert second.owned and 0.2 < time.monotonic() - started < 5
    second.release()


def test_a_stale_lease_is_taken_over_and_its_holder_learns_it_lost_the_lock(engine_node):
    dead = lock_of(engine_node, "rebuild", lease_time=1, holder="ctrl1 pid 11 rebuild").acquire()
    later = lock_of(engine_node, "recover", grace=0, clock=thirty_seconds_later)
    later.acquire()                      # 30 s later the lease ended long ago
    (entry,) = lock_subsystems(engine_node)
    assert entry["serial_number"].startswith("SL" + later.token)
    assert "took over the lock of volume vol1 that a run which no longer exists left (ctrl1 pid 11 rebuild); " \
           "if that operation did not finish, run it again" in later.warning
    with pytest.raises(LockLost):
        dead.renew()
    dead.release()                       # not its lock any more: nothing happens
    assert len(lock_subsystems(engine_node)) == 1
    later.release()


def test_only_one_of_two_runners_wins_the_takeover_of_the_same_stale_lease(engine_node):
    lock_of(engine_node, "rebuild", lease_time=1).acquire()
    one = lock_of(engine_node, "recover", grace=0)
    other = lock_of(engine_node, "recover", grace=0)
    stale = one.lease()
    assert [one._claim(stale), other._claim(stale)] == [True, False]


def test_a_late_taker_of_a_stale_lease_leaves_the_new_holders_lock_alone(engine_node):
    lock_of(engine_node, "rebuild", lease_time=1).acquire()
    winner = lock_of(engine_node, "recover", grace=0, clock=thirty_seconds_later)
    late = lock_of(engine_node, "delete", grace=0, clock=thirty_seconds_later)
    stale = late.lease()
    winner.acquire()
    assert late._take_over(stale) is False
    (entry,) = lock_subsystems(engine_node)
    assert entry["serial_number"].startswith("SL" + winner.token)
    assert [h["nqn"] for h in entry["hosts"]] == []
    winner.release()


def test_renewing_extends_the_lease_that_others_read(engine_node):
    holder = lock_of(engine_node, "rebuild", lease_time=5).acquire()
    before = holder.lease().ends
    holder.clock = lambda: time.time() + 100
    holder.renew()
    assert holder.lease().ends >= before + 100
    holder.release()


def test_runners_at_the_same_time_hold_the_lock_one_after_the_other(engine_node):
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def runner(number):
        try:
            with lock_of(engine_node, "op%d" % number).held(timeout=30):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.05)
                with guard:
                    inside[0] -= 1
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most[0] == 1
    assert lock_subsystems(engine_node) == []


def test_check_mode_takes_nothing_and_warns_when_another_runner_holds_it(engine_node):
    holder = lock_of(engine_node, "snapshot", holder="ctrl1 pid 11 snapshot").acquire()
    looking = VolumeLock(client_of(engine_node, check_mode=True), "vol1", "revert")
    looking.acquire()
    assert not looking.owned and "locked by ctrl1 pid 11 snapshot" in looking.warning
    holder.release()
    looking = VolumeLock(client_of(engine_node, check_mode=True), "vol1", "revert").acquire()
    assert looking.warning is None and lock_subsystems(engine_node) == []


def test_the_lock_of_a_process_that_died_on_this_host_is_taken_over_at_once(engine_node):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    from ansible_collections.spdk.storage.plugins.module_utils.spdk_volume_lock import short_hostname
    dead = lock_of(engine_node, "snapshot", holder="%s pid %s snapshot" % (short_hostname(), gone.stdout.strip()))
    dead.acquire()                       # its lease has a full minute to run
    alive = lock_of(engine_node, "snapshot", holder="%s pid 1 snapshot" % short_hostname())
    started = time.monotonic()
    alive.acquire(timeout=0)
    assert alive.owned and time.monotonic() - started < 2
    with pytest.raises(VolumeLocked, match="locked by .* pid 1 snapshot"):
        lock_of(engine_node, "rebuild").acquire(timeout=0)     # pid 1 lives: its lock holds
    alive.release()


def test_a_long_wait_keeps_its_lease_alive_once_a_third_of_it_passed(engine_node):
    now = [time.time()]
    holder = lock_of(engine_node, "rebuild", lease_time=30, clock=lambda: now[0]).acquire()
    first = holder.lease().ends
    now[0] += 5
    holder.keep_alive()                  # a sixth of the lease: nothing sent
    assert holder.lease().ends == first
    now[0] += 6
    holder.keep_alive()                  # over a third: renewed from now
    assert holder.lease().ends == int(now[0] + 30)
    holder.release()

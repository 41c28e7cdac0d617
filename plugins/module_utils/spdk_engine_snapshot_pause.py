# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pausing host I/O of an engine's nvmf frontend around its replicas' snapshots (quiesce ``ana``).

The frontend's namespace lives in ANA group 1; group 2 is kept ``inaccessible`` on every listener
(spdk_engine sets it up). Moving the namespace into group 2 with ``nvmf_subsystem_set_ns_ana_group``
pauses it: the call returns only once the writes in flight finished (19 of 19 snapshot sets
identical under a writer, 0 writes in flight; tests/unit/fixtures/transcripts/
more__ana__run15_nsgroup_pause_nodrain.json is the recording of one such pause). Moving it back
resumes I/O, and that happens in every case, also when a snapshot failed.

The planners here are pure: what to do follows from the frontend's entry in ``nvmf_get_subsystems``
and the listeners' ANA states (``nvmf_subsystem_get_listeners``, read just before the pause).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_frontend import (
    ACTIVE_ANA_GROUP,
    SPARE_ANA_GROUP,
    spare_group_step,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_snapshot_request import (
    EngineSnapshotRefusal,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_pause_watchdog import PauseWatchdog
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import Step


class PauseBroken(EngineSnapshotRefusal):
    """The watchdog resumed host I/O before the run did (quiesce_timeout passed): the snapshots taken may not
    be one point in time."""


def quiesce_mode(request, frontend):
    """(``ana`` or ``none``, warnings) for the engine's ``frontend`` (its subsystem entry, or None)."""
    warnings = []
    mode = request.quiesce or ("ana" if frontend is not None else "none")
    if mode == "none" and frontend is not None:
        warnings.append(
            "quiesce=none with the frontend %s serving: the replicas are snapshotted one after the other "
            "while host writes go on, so the snapshots are only consistent per replica, not with each other"
            % request.nqn)
    if mode == "ana" and frontend is None:
        return "none", warnings    # no frontend, no host I/O to pause
    if mode == "ana" and not any(ns.get("anagrpid") is not None for ns in frontend.get("namespaces") or []):
        raise EngineSnapshotRefusal(
            "frontend %s was created without ANA reporting, so its I/O cannot be paused for a consistent "
            "snapshot: re-create it with spdk.storage.spdk_engine (frontend none, then nvmf) in a maintenance "
            "window, or take the snapshot with quiesce=none (consistent per replica only); nothing was changed"
            % request.nqn)
    return mode, warnings


def namespaces(frontend):
    """[(nsid, ANA group)] of the frontend's namespaces."""
    return [(ns["nsid"], ns.get("anagrpid")) for ns in frontend.get("namespaces") or []]


def spare_group_steps(nqn, listeners):
    """(steps, warnings) that make group 2 inaccessible on every listener where it is not."""
    steps, warnings = [], []
    for listener in listeners or []:
        states = {s.get("ana_group"): s.get("ana_state") for s in listener.get("ana_states") or []}
        if states.get(SPARE_ANA_GROUP) == "inaccessible":
            continue
        address = {k: listener["address"][k] for k in ("trtype", "adrfam", "traddr", "trsvcid")
                   if k in listener["address"]}
        steps.append(spare_group_step(nqn, address))
        warnings.append("ANA group %d was not inaccessible on listener %s:%s of %s; set it up now"
                        % (SPARE_ANA_GROUP, address.get("traddr"), address.get("trsvcid"), nqn))
    return steps, warnings


def pause_step(nqn, nsid):
    return Step("nvmf_subsystem_set_ns_ana_group", {"nqn": nqn, "nsid": nsid, "anagrpid": SPARE_ANA_GROUP},
                "pause host I/O: move namespace %d into the inaccessible ANA group %d (returns once "
                "in-flight writes finished)" % (nsid, SPARE_ANA_GROUP))


def left_paused(frontend):
    """The namespaces of ``frontend`` (its subsystem entry, or None) that sit in the inaccessible group: a run
    that paused them died and its watchdog could not move them back."""
    return [nsid for nsid, group in namespaces(frontend or {}) if group == SPARE_ANA_GROUP]


def resume_steps(nqn, spaces, moved):
    """Move back every namespace this pause moved, and any an interrupted pause left in group 2."""
    steps = []
    for nsid, group in spaces:
        if nsid not in moved and group != SPARE_ANA_GROUP:
            continue
        back = group if group not in (None, SPARE_ANA_GROUP) else ACTIVE_ANA_GROUP
        steps.append(Step("nvmf_subsystem_set_ns_ana_group", {"nqn": nqn, "nsid": nsid, "anagrpid": back},
                          "resume host I/O: move namespace %d back into ANA group %d" % (nsid, back)))
    return steps


class Pause:
    """Runs work with the frontend's namespaces in the inaccessible group, and always moves them back.

    ``recorder`` (a StepRecorder) sends to ``node`` (the engine node); ``clock`` bounds the pause to
    the request's ``quiesce_timeout``; ``warnings`` collects what the user should know; ``seconds`` is
    how long the pause lasted; ``lock`` is the run's VolumeLock (None: not locked), which the watchdog
    checks before it resumes anything.
    """

    def __init__(self, request, node, recorder, clock, warnings, lock=None):
        self.request = request
        self.node = node
        self.recorder = recorder
        self.clock = clock
        self.warnings = warnings
        self.lock = lock
        self.seconds = None

    def run(self, frontend, work):
        """``work(deadline)`` between pause and resume; its result.

        Outside check mode a PauseWatchdog guards the pause: if this process dies, or the pause outlasts
        ``quiesce_timeout``, it moves the namespaces back by itself; PauseBroken then says the pause did not
        hold for the whole work.
        """
        nqn = self.request.nqn
        spaces = namespaces(frontend)
        listeners = self.node.client.call("nvmf_subsystem_get_listeners", {"nqn": nqn}) or []
        steps, warnings = spare_group_steps(nqn, listeners)
        self.warnings.extend(warnings)
        self.recorder.run(self.node, steps)
        client = self.node.client
        watchdog = None
        if spaces and not self.recorder.check_mode:
            resume = resume_steps(nqn, spaces, [space[0] for space in spaces])
            guard = (self.lock.volume, self.lock.token) if self.lock is not None else None
            watchdog = PauseWatchdog(client.address, resume, self.request.quiesce_timeout, lock=guard).start()
        start = self.clock()
        deadline = start + self.request.quiesce_timeout
        moved = []
        broke = False
        try:
            saved_timeout = client.timeout
            client.timeout = min(saved_timeout, self.request.quiesce_timeout)
            try:
                for nsid in [space[0] for space in spaces]:
                    moved.append(nsid)
                    self.recorder.send(self.node, pause_step(nqn, nsid))
            finally:
                client.timeout = saved_timeout
            result = work(deadline)
        finally:
            try:
                self._resume(spaces, moved)
            finally:
                broke = watchdog.stop() if watchdog is not None else False
                self.seconds = round(self.clock() - start, 3)
        if broke:
            raise PauseBroken(
                "the pause of engine %s's host I/O outlasted quiesce_timeout (%ss) and its watchdog resumed I/O "
                "before every snapshot was taken, so the snapshots are not one point in time; they were rolled "
                "back. Raise quiesce_timeout or run again when the replica nodes answer faster"
                % (self.request.engine, self.request.quiesce_timeout))
        return result

    def resume_left(self, frontend):
        """Move back what ``left_paused(frontend)`` names (the caller holds the volume's lock, so no other run
        is pausing it), with a warning."""
        paused = ", ".join(str(nsid) for nsid in left_paused(frontend))
        self.warnings.append(
            "host I/O of engine %s was still paused (namespace %s in the inaccessible ANA group %d), left so by a "
            "run that did not finish: moved back" % (self.request.engine, paused, SPARE_ANA_GROUP))
        self._resume(namespaces(frontend), [])

    def _resume(self, spaces, moved):
        errors = []
        for step in resume_steps(self.request.nqn, spaces, moved):
            try:
                self.recorder.send(self.node, step)
            except SpdkRpcError as err:
                errors.append("namespace %d: %s" % (step.params["nsid"], err))
        if errors:
            raise EngineSnapshotRefusal(
                "host I/O of engine %s is STILL PAUSED: moving the namespace back failed (%s). Run this task or "
                "spdk.storage.spdk_engine again (both move it back), or call nvmf_subsystem_set_ns_ana_group "
                "nsid 1 anagrpid 1 on %s" % (self.request.engine, "; ".join(errors), self.request.nqn))

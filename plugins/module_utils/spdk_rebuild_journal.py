# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rebuild journal: the engine node's record entry of a volume's latest rebuild (section ``rebuilds``).

spdk_replica_rebuild writes it ``running`` before its first change and ``done`` once the new replica is RW
and the replaced one is removed; spdk_engine makes it ``applied`` when it is first run with the list after
the rebuild (rebuild_replica.yml does it last), and removes it when it deletes the engine. It tells later
runs of spdk_engine (and so create_volume.yml and recover_node.yml) what the nodes alone cannot:

* while it is ``running``, which replica is being built and the command that finishes the rebuild (a
  repair of the engine over the replicas it had before is allowed, and warned about);
* that the new replica must never be taken out of the RAID by a request that still lists the set before
  the rebuild (an inventory not updated after it): that would drop a copy of the data. Until the list after
  the rebuild was given once (``done``) any other list is refused; after that (``applied``) the list that
  names the replaced replica but not the new one is, so the replica set can still change on purpose later.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal

RUNNING = "running"
DONE = "done"
APPLIED = "applied"


class RebuildEntry:
    """One volume's rebuild as the engine node's record keeps it (None-safe: ``of(None)`` is None)."""

    def __init__(self, engine, source, destination, replace=None, state=RUNNING, started=None, finished=None):
        self.engine = engine
        self.source = source
        self.destination = destination
        self.replace = replace
        self.state = state
        self.started = started
        self.finished = finished

    @classmethod
    def of(cls, engine, data):
        if not isinstance(data, dict) or not data.get("destination"):
            return None
        return cls(engine, data.get("source"), data["destination"], data.get("replace"),
                   data.get("state", RUNNING), data.get("started"), data.get("finished"))

    def to_dict(self):
        return {"source": self.source, "destination": self.destination, "replace": self.replace,
                "state": self.state, "started": self.started, "finished": self.finished}

    def same_rebuild(self, other):
        return (self.source, self.destination, self.replace) == (other.source, other.destination, other.replace)

    def describe(self):
        return "the rebuild of replica %s from %s%s (started %s)" % (
            self.destination, self.source, ", replacing %s" % self.replace if self.replace else "", self.started)

    def finish_command(self):
        """How an operator finishes it: the module, and the playbook when the names follow its convention."""
        module = "spdk.storage.spdk_replica_rebuild engine=%s source=%s destination=%s%s" % (
            self.engine, self.source, self.destination, " replace=%s" % self.replace if self.replace else "")
        nodes = [self._node_of(name) for name in (self.source, self.destination, self.replace) if name]
        if None in nodes:
            return module
        playbook = "rebuild_replica.yml -e volume=%s -e source_node=%s -e destination_node=%s%s" % (
            self.engine, nodes[0], nodes[1], " -e replaced_node=%s" % nodes[2] if self.replace else "")
        return "%s (or %s)" % (playbook, module)

    def _node_of(self, replica):
        """rebuild_replica.yml names a volume's replica ``<volume>-<node>``."""
        prefix = self.engine + "-"
        return replica[len(prefix):] if replica.startswith(prefix) and len(replica) > len(prefix) else None

    # --- what spdk_engine may do ---------------------------------------------------
    def replicas_after(self, names):
        """Whether ``names`` (a requested replica list) is a set after this rebuild: the new replica in, the
        replaced one out."""
        return self.destination in names and (self.replace is None or self.replace not in names)

    def is_stale(self, names):
        """Whether a requested replica list is the one from before the rebuild: before the list after it was
        given once, any other; after that, one naming the replaced replica without the new one."""
        if self.state == DONE:
            return not self.replicas_after(names)
        if self.state == APPLIED:
            return self.replace is not None and self.replace in names and self.destination not in names
        return False

    def check_request(self, names):
        """Before any RPC: once the rebuild is done, refuse the replica set before it."""
        if not self.is_stale(names):
            return
        raise EngineRefusal(
            "engine %s: %s finished at %s, but the replicas given (%s) are the set before it; a run with them would "
            "take the new replica out of the RAID and lose a copy of the data; nothing was changed"
            % (self.engine, self.describe(), self.finished, ", ".join(names)),
            hint="list %s among the replicas%s (set the volume's replica_nodes in the inventory)"
                 % (self.destination, " instead of %s" % self.replace if self.replace else ""))

    def check_removals(self, member_names):
        """Before a planned removal from the RAID: never the replica this rebuild put there (until the list
        after the rebuild was given once)."""
        ours = [name for name in member_names
                if name in (self.destination + "n1", self.destination) or name.endswith("/" + self.destination)]
        if self.state != APPLIED and ours:
            raise EngineRefusal(
                "engine %s: replica %s is not in the replicas given, but %s put it into the RAID (node record, %s); "
                "taking it out would lose a copy of the data; nothing was changed"
                % (self.engine, self.destination, self.describe(), self.state),
                hint="finish the rebuild first: %s; then list %s among the replicas"
                     % (self.finish_command(), self.destination) if self.state == RUNNING else
                     "list %s among the replicas (set the volume's replica_nodes in the inventory)" % self.destination)

    def check_no_engine_snapshot(self, what, snapshot):
        """While the rebuild is unfinished the new replica's chain is copied from the source's: an engine
        snapshot created, deleted or reverted before the join would leave the chains different, and the join
        cannot go on. Refused, naming the run that finishes the rebuild."""
        if self.state != RUNNING:
            return
        raise EngineRefusal(
            "engine %s: %s did not finish (the node record marks it running); an engine snapshot cannot %s %s "
            "before it does, or the new replica's snapshot chain would differ from the source's; nothing was "
            "changed" % (self.engine, self.describe(), what, snapshot),
            hint="finish the rebuild first: %s" % self.finish_command())

    def deletion_warning(self):
        """What deleting the engine during an unfinished rebuild says."""
        if self.state != RUNNING:
            return None
        return ("engine %s: %s did not finish; its replica %s may be left on its node: delete it with "
                "spdk.storage.spdk_replica state=absent" % (self.engine, self.describe(), self.destination))

    def warning(self):
        """What a repair during an unfinished rebuild says."""
        if self.state != RUNNING:
            return None
        return ("engine %s: %s did not finish (the node record marks it running); repaired over the replicas given; "
                "finish it with %s" % (self.engine, self.describe(), self.finish_command()))


class RebuildJournal:
    """Writes a rebuild's entry into the engine node's record (nothing in check mode or without a record)."""

    def __init__(self, path, node, request, check_mode=False, warn=None):
        self.path = path
        self.node = node
        self.check_mode = check_mode
        self.warn = warn or (lambda message: None)
        replace = request.replace.name if request.replace is not None else None
        self.entry = RebuildEntry(request.engine, request.source.name, request.destination.replica, replace)
        self.written = False

    def begin(self):
        """Before the rebuild's first change: ``running``. An unfinished rebuild of another replica that the
        entry named is abandoned, with a warning naming what it may have left."""
        def change(record):
            earlier = RebuildEntry.of(self.entry.engine, record.rebuild(self.entry.engine))
            if earlier is not None and earlier.same_rebuild(self.entry) and earlier.state == RUNNING:
                self.entry.started = earlier.started
            else:
                self.entry.started = rec.utc_now()
            if earlier is not None and earlier.state == RUNNING and not earlier.same_rebuild(self.entry):
                self.warn("engine %s: %s did not finish and is given up for this one; its replica %s may be left "
                          "on its node: delete it with spdk.storage.spdk_replica state=absent once this rebuild is "
                          "done" % (self.entry.engine, earlier.describe(), earlier.destination))
            self.entry.state, self.entry.finished = RUNNING, None
            return record.set_rebuild(self.entry.engine, self.entry.to_dict())
        self._update(change)

    def finish(self):
        """The new replica is RW and the replaced one removed: this rebuild's ``running`` entry becomes ``done``.
        No entry, or another rebuild's, is left as it is: a re-run after spdk_engine removed the entry changes
        nothing."""
        def change(record):
            earlier = RebuildEntry.of(self.entry.engine, record.rebuild(self.entry.engine))
            if earlier is None or not earlier.same_rebuild(self.entry) or earlier.state != RUNNING:
                return False
            self.entry.started = earlier.started
            self.entry.state, self.entry.finished = DONE, rec.utc_now()
            return record.set_rebuild(self.entry.engine, self.entry.to_dict())
        self._update(change)

    def _update(self, change):
        if self.path is None or self.check_mode:
            return
        try:
            self.written = rec.update(self.path, self.node, change)[1] or self.written
        except rec.RecordError as exc:
            self.warn(str(exc))

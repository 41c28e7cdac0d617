"""Expected-call harness for module tests (in the spirit of netapp.ontap's mock_rest_and_zapi_requests).

A test lists the RPCs the module must send, in order, each with a params matcher and
the answer a real SPDK v26.05 gave: the recorded exchanges in tests/unit/fixtures/transcripts/
(one file per recording session, keyed by the line of the session's JSON-lines log, which
fixtures/copy_transcript_lines.py copies them from). The module's
``main()`` runs with ``SpdkRpcClient._send`` (the only wire point) replaced by the script:

* a request whose method or params differ from the next expected call fails the test;
* a request after the script is exhausted fails the test;
* expected calls left over when the module exits fail the test.

Violations are recorded and re-raised after ``main()`` returns, so a module that turns
every exception into ``fail_json`` cannot hide them.

    outcome = run_module(spdk_disk, {"name": "disk1", ...}, [
        reads(("bdev_lvol_get_lvstores", None, answer("more/introspection.jsonl", 9)), ...),
        expect("bdev_aio_create", {...}, answer("more/d1_set_parent_thin_no_parent.jsonl", 56)),
    ])
    assert outcome.changed
"""
import copy
import json
import os

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import READ_ONLY_METHODS, SpdkRpcClient

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older cores read the serialized args from basic._ANSIBLE_ARGS
    import contextlib

    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "transcripts")

ANY = object()
"""Params matcher that accepts any params (use sparingly: prefer exact params)."""


class ScriptViolation(AssertionError):
    """The module's RPC traffic departed from the expected script."""


def transcript(name, line, replace=None):
    """The recorded ``{"instance", "request", "response"}`` of ``name`` line ``line``.

    ``replace`` maps strings to substitute in the record's JSON text, to normalise
    names, paths and UUIDs of a recording to a test's scenario (as the transcript
    replay tools do); every substituted string must occur, so a typo cannot pass.
    """
    path = os.path.join(FIXTURES, name.replace("/", "__").replace(".jsonl", ".json"))
    with open(path) as handle:
        records = json.load(handle)
    key = str(line)
    if key not in records:
        raise KeyError("%s line %d is not in %s; add it with fixtures/copy_transcript_lines.py"
                       % (name, line, path))
    text = json.dumps(records[key])
    for old, new in (replace or {}).items():
        if old not in text:
            raise KeyError("%r does not occur in %s line %d" % (old, name, line))
        text = text.replace(old, new)
    return json.loads(text)


def answer(name, line, replace=None):
    """The recorded response (``{"result": ...}`` or ``{"error": ...}``) of a transcript line."""
    response = transcript(name, line, replace)["response"]
    if response is None:
        raise ValueError("%s line %d has no response" % (name, line))
    return {k: v for k, v in response.items() if k in ("result", "error")}


def result(value):
    """An answer written by hand; prefer ``answer()`` with a recorded line."""
    return {"result": value}


def error(code, message):
    return {"error": {"code": code, "message": message}}


class Expected:
    """One expected RPC: method, params matcher, answer and where the answer comes from."""

    def __init__(self, method, params, response, note=""):
        self.method = method
        self.params = params
        self.response = response
        self.note = note

    def check(self, request):
        method, params = request.get("method"), request.get("params")
        if method != self.method:
            raise ScriptViolation("expected %s(%s) %s, got %s(%s)" % (
                self.method, _show(self.params), self.note, method, _show(params)))
        if self.params is ANY:
            return
        if callable(self.params):
            if not self.params(params):
                raise ScriptViolation("%s params %s rejected by matcher %s" % (method, _show(params), self.note))
            return
        if params != self.params:
            raise ScriptViolation("%s params differ %s:\n  expected %s\n  got      %s" % (
                method, self.note, _show(self.params), _show(params)))

    def reply(self, request_id):
        reply = {"jsonrpc": "2.0", "id": request_id}
        reply.update(copy.deepcopy(self.response))
        return reply

    def __repr__(self):
        return "%s(%s)" % (self.method, _show(self.params))


def _show(params):
    if params is ANY:
        return "ANY"
    return json.dumps(params, sort_keys=True)


def expect(method, params, response, note=""):
    """One expected call. ``params`` None means the request has no params."""
    return Expected(method, params, response, note)


def reads(*calls):
    """Several expected calls (``(method, params, response)`` tuples), e.g. one batch."""
    return [Expected(method, params, response) for method, params, response in calls]


def _flatten(calls):
    flat = []
    for entry in calls:
        if isinstance(entry, (list, tuple)):
            flat.extend(_flatten(entry))
        else:
            flat.append(entry)
    return flat


def locked(calls, lock):
    """``calls`` as a run under the volume lock sends them: ``lock.take()`` before the first mutating call and
    ``lock.release()`` at the end; a run that changes nothing takes no lock. ``lock``: a LockCalls
    (tests/unit/engine_snapshot_scenarios). In check mode a run only reads the lock (``lock.absent()``), where its
    first change is planned: scripts of check-mode runs say so themselves."""
    flat = _flatten(calls)
    first = next((i for i, call in enumerate(flat) if call.method not in READ_ONLY_METHODS), None)
    if first is None:
        return flat
    return flat[:first] + [lock.take()] + flat[first:] + _flatten([lock.release()])


class RpcScript:
    """Replaces SpdkRpcClient._send: checks each request against the next expected call."""

    def __init__(self, calls):
        self.pending = _flatten(calls)
        self.received = []        # (method, params) of every request, in order
        self.exchanges = []       # number of requests per _send (1 = call, >1 = batch)
        self.violation = None

    def send(self, client, requests):
        self.exchanges.append(len(requests))
        replies = []
        for request in requests:
            self.received.append((request["method"], request.get("params")))
            try:
                if not self.pending:
                    raise ScriptViolation("unexpected extra call %s(%s); all expected calls were used"
                                          % (request["method"], _show(request.get("params"))))
                expected = self.pending.pop(0)
                expected.check(request)
            except ScriptViolation as exc:
                self.violation = self.violation or exc
                raise
            replies.append(expected.reply(request["id"]))
        return replies


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result)
        self.result = result
        self.failed = failed


class Outcome:
    """What one module run did: its result and the RPCs it sent."""

    def __init__(self, result, failed, script):
        self.result = result
        self.failed = failed
        self.script = script

    @property
    def changed(self):
        return self.result.get("changed")

    @property
    def msg(self):
        return self.result.get("msg", "")

    @property
    def methods(self):
        return [method for method, _params in self.script.received]

    @property
    def mutating(self):
        """Mutating RPCs that reached the wire."""
        return [m for m in self.methods if m not in READ_ONLY_METHODS]

    @property
    def warnings(self):
        return list(self.result.get("warnings") or [])

    @property
    def rpc_count(self):
        return len(self.script.received)


def _run_main(module, script):
    try:
        module.main()
    except ModuleExit as done:
        return Outcome(done.result, done.failed, script)
    raise AssertionError("%s.main() returned without exit_json or fail_json" % module.__name__)


def run_module(module, args, calls, check_mode=False, diff=False):
    """Run ``module.main()`` with ``args`` against the scripted RPCs ``calls``.

    Returns an Outcome; raises ScriptViolation when the traffic left the script,
    including expected calls that were never made. ``calls=None`` leaves the real
    wire in place (for tests against a real socket, or an absent one).
    """
    script = RpcScript(calls or [])
    module_args = dict(args)
    module_args.setdefault("rpc_socket", "/nonexistent/spdk-unit-test.sock")
    module_args["_ansible_check_mode"] = check_mode
    module_args["_ansible_diff"] = diff

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(ansible_warnings.get_warning_messages())
        raise ModuleExit(kwargs, failed=False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        kwargs["failed"] = True
        kwargs["warnings"] = list(ansible_warnings.get_warning_messages())
        raise ModuleExit(kwargs, failed=True)

    wire = mock.patch.object(SpdkRpcClient, "_send", autospec=True, side_effect=script.send)
    if calls is None:
        wire = mock.patch.object(RpcScript, "send")  # a no-op patch: the real _send stays
    ansible_warnings._global_warnings.clear()  # warnings are global to a module run
    with patch_module_args(module_args), wire, \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        outcome = _run_main(module, script)
    if script.violation is not None:
        raise script.violation
    if script.pending:
        raise ScriptViolation("expected calls never made: %s (module %s: %s)" % (
            ", ".join(repr(c) for c in script.pending),
            "failed" if outcome.failed else "exited", outcome.msg or outcome.result))
    return outcome

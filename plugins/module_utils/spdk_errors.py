# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SpdkError: the one base of every error a module reports, and the generic hints for SPDK error codes.

Every refusal and failure the collection raises derives from SpdkError, so a module's ``main()`` ends
every expected failure the same way::

    try:
        ...
    except SpdkError as err:
        err.fail(module, actions=run.actions)    # plus whatever this module returns on failure

An error carries the message, the RPC ``method`` and JSON-RPC ``code`` when an RPC failed (reported as
``rpc_method`` and ``rpc_error_code``), a ``hint`` saying what the operator should do (appended to the
message), and extra result fields. Standard library only: spdk_rpc's SpdkRpcError derives from it.
"""

from __future__ import annotations

# RPCs that open an NVMe-oF connection: SPDK reports every failure of theirs as -5.
CONNECT_METHODS = frozenset((
    "bdev_nvme_attach_controller", "bdev_nvme_start_discovery", "bdev_nvme_set_keys",
))


def with_hint(text, hint):
    """``text`` followed by ``hint`` (what to do), as one sentence ending in a full stop."""
    if hint:
        text = "%s%s %s" % (text.rstrip("."), "" if text.endswith("?") else ":", hint)
    return text if text.endswith((".", "?", "!")) else text + "."


class SpdkError(Exception):
    """A failure a module reports with fail_json: ``msg``, the failed RPC's ``method`` and ``code``
    (None when no RPC failed), a ``hint`` for the operator and extra ``result`` fields."""

    def __init__(self, msg, method=None, code=None, hint=None, **result):
        super(SpdkError, self).__init__(msg)
        self.msg = msg
        self.method = method
        self.code = code
        self.hint = hint
        self.result = result

    def describe(self, hint=None):
        """The message for the operator; ``hint`` (else the error's own) is appended."""
        hint = hint or self.hint
        return with_hint(self.msg, hint) if hint else self.msg

    def result_fields(self):
        """The fields fail_json reports besides ``msg``."""
        fields = dict(self.result)
        if self.method is not None:
            fields.update(rpc_method=self.method, rpc_error_code=self.code)
        return fields

    def fail(self, module, hint=None, **result):
        """End the run with fail_json: ``result`` (what the module returns on failure) plus this error's
        fields; ``hint`` overrides the error's own."""
        result.update(self.result_fields())
        module.fail_json(msg=self.describe(hint), **result)


def explain_connect_failure(params=None):
    """Why an NVMe-oF attach or connect answered -5, naming what the call asked for."""
    params = params or {}
    where = "%s:%s" % (params.get("traddr", "the target address"), params.get("trsvcid", "the port"))
    subsystem = params.get("subnqn", "the subsystem")
    host = params.get("hostnqn") or "this node's default host NQN"
    return (
        "SPDK answers -5 (Input/output error) for every failed NVMe-oF connect; the likely causes are: "
        "%s does not allow the host %s (add it to the exporting replica's allowed_hosts); "
        "a wrong or missing DH-CHAP key on either side; "
        "nothing reachable listens on %s, or %s is not exported there "
        "(target down, wrong address or port, firewall)" % (subsystem, host, where, subsystem))


def default_hint(err):
    """A generic next step for an SPDK error code (an SpdkRpcError), or None when nothing useful can be said."""
    message = err.message or ""
    if err.code == -5 and err.method in CONNECT_METHODS:
        return explain_connect_failure(err.params)
    if err.code == -32601:
        return ("this spdk_tgt has no such RPC: it is older than the collection expects or was built "
                "without that module")
    if "spdk_json_decode_object failed" in message:
        return "the target refused the parameters: this SPDK version expects other parameters for %s" % err.method
    if err.is_exists():
        return "an object with that name already exists on the target"
    if err.is_no_device():
        return "the object the call names does not exist on the target (or no longer)"
    if err.code == -1 or "Operation not permitted" in message:
        return "the bdev is in use: claimed by another bdev (an lvstore or a RAID) or already holding an lvstore"
    if err.code == -16 or "busy" in message:
        return "the object is busy; retry once the operation that holds it has finished"
    if err.code == -28 or "No space left" in message:
        return "the lvstore has not enough free clusters"
    return None

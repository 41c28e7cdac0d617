# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SpdkModule: the shared connection options, the client, and how a run ends.

Every module's ``main()`` reads the same; ``run(module)`` (in the module) turns the options into a
request, lets module_utils plan and apply it, and returns the result::

    def main():
        run_module(run, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

``run_module`` builds the SpdkModule from the AnsibleModule arguments it is given, calls
``run(module)`` and ends the run with ``module.exit_with(**result)``. An SpdkError (every refusal
and RPC failure, spdk_errors) ends it with ``err.fail(module)``: its message, method, code, hint and
result fields, the actions sent before it among them (StepRecorder.reporting). Any other exception is
a bug: ``@spdk_main`` (which guards run_module) turns it into fail_json with a clear message instead
of a traceback.

``module.client`` is an SpdkRpcClient from rpc_socket / rpc_timeout with check mode wired in. A
module that talks to no target (spdk_rpc_relay) passes ``connection=False``: no connection options,
no client, no ``rpc_calls`` in its result.
"""

from __future__ import annotations

import copy
import functools
import socket
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_timeouts import (
    CONTROLLER_TIMEOUT_ARGS,
    controller_timeouts,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_nvmf import DEFAULT_PORT_RANGE
from ansible_collections.spdk.storage.plugins.module_utils.spdk_record import DEFAULT_RECORD_DIR
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    DEFAULT_SOCKET,
    DEFAULT_TIMEOUT,
    SpdkRpcClient,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_wait import check_wait_options

SPDK_COMMON_ARGS = dict(
    rpc_socket=dict(type="str", default=DEFAULT_SOCKET, fallback=(env_fallback, ["SPDK_RPC_SOCKET"])),
    rpc_timeout=dict(type="float", default=DEFAULT_TIMEOUT, fallback=(env_fallback, ["SPDK_RPC_TIMEOUT"])),
    rpc_username=dict(type="str", fallback=(env_fallback, ["SPDK_RPC_USERNAME"])),
    rpc_password=dict(type="str", no_log=True, fallback=(env_fallback, ["SPDK_RPC_PASSWORD"])),
    rpc_validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["SPDK_RPC_VALIDATE_CERTS"])),
)

# One entry of the ``replicas`` list that spdk_engine, spdk_snapshot and spdk_replica_rebuild take
# (documented once in the doc fragment spdk.storage.spdk.replicas).
REPLICA_OPTIONS = dict(
    name=dict(type="str", required=True),
    disk=dict(type="str"),
    address=dict(type="str"),
    nqn=dict(type="str"),
    rpc_socket=dict(type="str"),
)


_ACTIVE_MODULE = []  # the SpdkModule of the current run, for @spdk_main


def spdk_argument_spec(**module_options):
    """The shared connection options plus ``module_options`` (a fresh copy each time)."""
    spec = copy.deepcopy(SPDK_COMMON_ARGS)
    spec.update(module_options)
    return spec


def replicas_option(**overrides):
    """The ``replicas`` list option (a fresh copy); ``overrides`` adds ``required`` or ``default``."""
    option = dict(type="list", elements="dict", options=copy.deepcopy(REPLICA_OPTIONS))
    option.update(overrides)
    return option


def default_node_name(name=None):
    """``name``, else this machine's short host name (the node record's file name, default host NQN)."""
    return name or socket.gethostname().split(".")[0]


def engine_node_options(wait_options, **module_options):
    """The argument spec of a run on an engine node that attaches replicas (spdk_engine,
    spdk_replica_rebuild): ``module_options``, ``wait_options`` (spdk_wait.wait_argument_spec with the
    module's defaults), the controller loss policy, the host NQN and NVMe-oF address the node uses, and
    its node record (a fresh copy each time)."""
    spec = dict(
        node_name=dict(type="str"),
        host_nqn=dict(type="str"),
        listen_address=dict(type="str"),
        port_range=dict(type="str", default=DEFAULT_PORT_RANGE),
        record_dir=dict(type="path", default=DEFAULT_RECORD_DIR),
    )
    spec.update(wait_options)
    spec.update(copy.deepcopy(CONTROLLER_TIMEOUT_ARGS))
    spec.update(module_options)
    return spec


def engine_node_request(params):
    """The request arguments ``engine_node_options`` gives (node_name, host_nqn, listen_address,
    port_range, timeouts), the wait options checked first; nothing here sends an RPC."""
    problem = check_wait_options(params["wait_timeout"], params["wait_sleep"])
    if problem:
        raise SpdkInputError(problem)
    return dict(node_name=default_node_name(params["node_name"]), host_nqn=params["host_nqn"],
                listen_address=params["listen_address"], port_range=params["port_range"],
                timeouts=controller_timeouts(params))


class SpdkModule(AnsibleModule):
    """AnsibleModule with the shared SPDK connection options and an SpdkRpcClient; with
    ``connection=False`` a plain AnsibleModule that ends its runs the same way.

    ``name`` (else Ansible's name of the module) names the module in the message of a bug.
    """

    def __init__(self, argument_spec=None, connection=True, name=None, **kwargs):
        self._client = None
        self._finished = False
        self._connection = connection
        self._failure_fields = dict
        if connection:
            argument_spec = spdk_argument_spec(**(argument_spec or {}))
        super(SpdkModule, self).__init__(argument_spec=argument_spec, **kwargs)
        self.name = name or getattr(self, "_name", None) or "the module"
        # Registered only once built: a half-built module cannot report (and validate-modules'
        # argument spec introspection makes __init__ raise on purpose).
        _ACTIVE_MODULE[:] = [self]
        if connection and self.params["rpc_timeout"] <= 0:
            self.fail_json(msg="rpc_timeout must be more than 0 seconds, got %s" % self.params["rpc_timeout"])

    @property
    def client(self):
        if not self._connection:
            raise AttributeError("%s has no connection options, so no client" % self.name)
        if self._client is None:
            self._client = self.connect(self.params["rpc_socket"])
        return self._client

    def connect(self, address):
        """A new client for ``address`` (another node's target) with this run's timeout, credentials and
        check mode; the caller closes it."""
        params = self.params
        return SpdkRpcClient(
            address=address, timeout=params["rpc_timeout"], check_mode=self.check_mode,
            username=params["rpc_username"], password=params["rpc_password"],
            validate_certs=params["rpc_validate_certs"])

    @property
    def rpc_calls(self):
        """How many RPCs reached the target during this run."""
        return len(self._client.sent_calls) if self._client is not None else 0

    # -- ending a run ---------------------------------------------------------------

    def exit_with(self, changed, diff=None, **result):
        result["changed"] = changed
        if diff is not None:
            result["diff"] = diff
        self.exit_json(**result)

    def fail_rpc(self, err, hint=None, **result):
        """fail_json for an SpdkError (an SpdkRpcError: method, SPDK code and message), and what to do."""
        err.fail(self, hint=hint, **result)

    def fail_unexpected(self, exc):
        """fail_json for an exception nobody expected (a bug): a message, the traceback only in -vvv."""
        self.fail_json(
            msg="%s stopped on an unexpected error (%s: %s)%s. This is a bug in spdk.storage: please report it "
                "with the output of -vvv." % (self.name, type(exc).__name__, exc,
                                              "; no further RPC was sent" if self._connection else ""),
            exception=traceback.format_exc())

    def report_on_failure(self, fields):
        """``fields()`` (called when the run fails) gives result fields every failure reports, unless
        the failure sets them itself (spdk_rpc_relay: the relays as far as the run got)."""
        self._failure_fields = fields

    def exit_json(self, **kwargs):
        self._finish(kwargs)
        super(SpdkModule, self).exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        for key, value in self._failure_fields().items():
            kwargs.setdefault(key, value)
        self._finish(kwargs)
        super(SpdkModule, self).fail_json(msg=msg, **kwargs)

    def _finish(self, result):
        self._finished = True
        if self._connection:
            result.setdefault("rpc_calls", self.rpc_calls)
        if self._client is not None:
            self._client.close()

    # -- guarded execution ------------------------------------------------------------

    def handle_exception(self, exc):
        """End the run for ``exc``; re-raises it if this run already ended (exit in tests)."""
        if self._finished:
            raise exc
        if isinstance(exc, SpdkError):
            exc.fail(self)
        self.fail_unexpected(exc)


def spdk_main(main):
    """Decorate a function that builds an SpdkModule and runs it (run_module) so no exception escapes as
    a traceback."""
    @functools.wraps(main)
    def guarded(*args, **kwargs):
        _ACTIVE_MODULE[:] = []
        try:
            return main(*args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            if not _ACTIVE_MODULE:
                raise  # failed before SpdkModule existed: nothing can report it but Ansible itself
            _ACTIVE_MODULE[0].handle_exception(exc)
            raise
    return guarded


def run_module(run, **module_options):
    """Every module's ``main()``: an SpdkModule of ``module_options`` (AnsibleModule's arguments, plus
    ``connection``), ``result = run(module)``, and the run ended with that result or with the
    SpdkError that stopped it; anything else is a bug (spdk_main)."""
    name = run.__module__.rpartition(".")[2]

    @spdk_main
    def main():
        module = SpdkModule(name=None if name == "__main__" else name, **module_options)
        try:
            result = run(module)
        except SpdkError as err:
            err.fail(module)
        module.exit_with(**result)
    main()

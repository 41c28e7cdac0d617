# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""JSON-RPC client for spdk_tgt (standard library only).

The one place in the collection that talks to a target. It owns framing (SPDK sends
concatenated JSON objects with no delimiter), deadlines, reconnection, error objects,
secret redaction and the check-mode choke point: in check mode a mutating call is
recorded in ``skipped_calls`` and never reaches the wire.
"""

from __future__ import annotations

import codecs
import collections
import errno
import json
import re
import socket
import time

from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError, default_hint, with_hint

DEFAULT_SOCKET = "/var/tmp/spdk.sock"
DEFAULT_TIMEOUT = 60.0
REDACTED = "********"

# Methods that never change target state, taken from the full rpc_get_methods list of
# SPDK v26.05 (tests/unit/fixtures/transcripts/more__introspection.json line 2). Anything not listed
# counts as mutating, so an unknown method is never sent in check mode.
READ_ONLY_METHODS = frozenset((
    "accel_crypto_keys_get", "accel_get_module_info", "accel_get_opc_assignments",
    "accel_get_stats",
    "bdev_ftl_get_properties", "bdev_ftl_get_stats",
    "bdev_get_bdevs", "bdev_get_histogram", "bdev_get_histogram_borders", "bdev_get_iostat",
    "bdev_lvol_check_shallow_copy", "bdev_lvol_get_lvols", "bdev_lvol_get_lvstores",
    "bdev_nvme_get_controller_health_info", "bdev_nvme_get_controllers",
    "bdev_nvme_get_discovery_info", "bdev_nvme_get_io_paths",
    "bdev_nvme_get_mdns_discovery_info", "bdev_nvme_get_path_iostat",
    "bdev_nvme_get_transport_statistics",
    "bdev_opal_get_info",
    "bdev_raid_get_bdevs",
    "bdev_wait_for_examine",
    "env_dpdk_get_mem_stats",
    "framework_get_config", "framework_get_governor", "framework_get_pci_devices",
    "framework_get_reactors", "framework_get_scheduler", "framework_get_subsystems",
    "framework_wait_init",
    "iobuf_get_stats",
    "iscsi_get_auth_groups", "iscsi_get_connections", "iscsi_get_histogram",
    "iscsi_get_initiator_groups", "iscsi_get_options", "iscsi_get_portal_groups",
    "iscsi_get_stats", "iscsi_get_target_nodes",
    "keyring_get_keys",
    "log_get_flags", "log_get_level", "log_get_print_level",
    "nbd_get_disks",
    "notify_get_notifications", "notify_get_types",
    "nvmf_discovery_get_referrals", "nvmf_get_stats", "nvmf_get_subsystems",
    "nvmf_get_targets", "nvmf_get_transports",
    "nvmf_subsystem_get_controllers", "nvmf_subsystem_get_listeners",
    "nvmf_subsystem_get_qpairs",
    "rpc_get_methods",
    "scsi_get_devices",
    "sock_get_default_impl", "sock_impl_get_options",
    "spdk_get_version",
    "thread_get_io_channels", "thread_get_pollers", "thread_get_stats",
    "trace_get_info", "trace_get_tpoint_group_mask",
))

# Parameter names whose values are secrets (DH-CHAP keys, PSKs, crypto keys, passwords).
SECRET_PARAMS = (
    "dhchap_key", "dhchap_ctrlr_key", "psk", "key", "key2", "secret", "msecret",
    "password", "passphrase",
)

# Errors on which connecting again may succeed soon (the target is still starting).
_RETRY_ERRNOS = frozenset((errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN))

RpcCall = collections.namedtuple("RpcCall", ["method", "params", "mutating"])


class SpdkRpcError(SpdkError):
    """An RPC failed: the target answered an error object, or the exchange failed.

    ``params`` holds the call's parameters with secrets already redacted. Reported with
    ``rpc_method``, ``rpc_error_code`` and ``rpc_error_message``; without a ``hint`` the message
    ends with the generic one for SPDK's code (spdk_errors.default_hint).
    """

    def __init__(self, method, code=None, message="", params=None, data=None, hint=None):
        self.message = message
        super(SpdkRpcError, self).__init__(_rpc_text(method, code, message), method=method, code=code, hint=hint)
        self.params = params
        self.data = data

    def is_exists(self):
        return self.code == -17 or "File exists" in (self.message or "")

    def is_no_device(self):
        return self.code == -19 or "No such device" in (self.message or "")

    def __str__(self):
        return _rpc_text(self.method, self.code, self.message)

    def describe(self, hint=None):
        """One sentence for the user: what failed, SPDK's code and message, and what to do."""
        text = "SPDK RPC %s failed with error %s (%s)" % (self.method, self.code, self.message)
        return with_hint(text, hint or self.hint or default_hint(self))

    def result_fields(self):
        fields = super(SpdkRpcError, self).result_fields()
        fields.update(rpc_method=self.method, rpc_error_code=self.code, rpc_error_message=self.message)
        return fields


def _rpc_text(method, code, message):
    if code is None:
        return "%s: %s" % (method, message)
    return "%s failed: SPDK error %s (%s)" % (method, code, message)


class SpdkConnectionError(SpdkRpcError):
    """No usable connection: socket absent or refused, timeout, EOF, broken stream."""

    def describe(self, hint=None):
        return with_hint(str(self), hint or self.hint)


class SpdkUnreachableError(SpdkConnectionError):
    """The target could not be reached at all, so nothing of the request was sent."""


class SpdkTimeoutError(SpdkConnectionError):
    """No complete answer before the call's deadline."""


class SpdkProtocolError(SpdkConnectionError):
    """The target sent something that is not a JSON-RPC answer to our request."""


class SpdkCapabilityError(SpdkRpcError):
    """The target lacks an RPC that the requested operation needs."""

    def describe(self, hint=None):
        return with_hint(self.message, hint or self.hint)


class SpdkMissingLibraryError(SpdkConnectionError):
    """An optional transport needs a Python library that is not installed."""

    def __init__(self, method, library, import_traceback=None):
        super(SpdkMissingLibraryError, self).__init__(
            method, None, "the %s Python library is required for this rpc_socket" % library)
        self.library = library
        self.import_traceback = import_traceback

    def fail(self, module, hint=None, **result):
        """Ansible's usual message for a missing library, with the import traceback."""
        # Imported here: the client itself needs nothing beyond the standard library.
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel
        module.fail_json(msg=missing_required_lib(self.library), exception=self.import_traceback, **result)


def redact(value, secret_params=SECRET_PARAMS):
    """Return a copy of ``value`` whose secret keys (at any depth) are masked."""
    if isinstance(value, dict):
        return dict(
            (k, REDACTED if k in secret_params and v is not None else redact(v, secret_params))
            for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [redact(v, secret_params) for v in value]
    return value


def secret_values(value, secret_params=SECRET_PARAMS):
    """All secret strings inside ``value``, to scrub them from text the target sent back."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in secret_params and isinstance(v, str) and v:
                found.append(v)
            else:
                found.extend(secret_values(v, secret_params))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(secret_values(v, secret_params))
    return found


def scrub(text, secrets):
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class JsonStreamDecoder(object):
    """Splits a byte stream of concatenated JSON values into decoded values.

    A value may arrive split across reads (even inside a UTF-8 sequence) and one read
    may carry several values. A scanner tracks bracket depth outside strings to find
    where a top-level value ends; json.JSONDecoder.raw_decode then decodes exactly that
    span, so a malformed answer is reported as soon as it is complete instead of being
    mistaken for an incomplete one.
    """

    _TOKEN = re.compile(r'["{}\[\]]')
    _STRING_TAIL = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
    _SPACE = re.compile(r"\s*")

    def __init__(self):
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder()
        self._text = ""
        self._start = None  # where the value being scanned begins
        self._scan = 0      # next index to scan
        self._depth = 0

    @property
    def pending(self):
        """True while bytes of an unfinished value are buffered."""
        return bool(self._text.strip())

    def feed(self, data):
        """Add bytes; return the list of values completed by them."""
        try:
            self._text += self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise ValueError("answer is not UTF-8: %s" % exc)
        values = []
        while True:
            end = self._find_end()
            if end is None:
                return values
            values.append(self._decode(end))

    def _find_end(self):
        text = self._text
        if self._start is None:
            pos = self._SPACE.match(text, self._scan).end()
            if pos == len(text):
                self._text, self._scan = "", 0
                return None
            if text[pos] not in "{[":
                raise ValueError("answer does not start with a JSON object: %r" % text[pos:pos + 40])
            self._start, self._scan, self._depth = pos, pos, 0
        while True:
            match = self._TOKEN.search(text, self._scan)
            if match is None:
                self._scan = len(text)
                return None
            char = match.group()
            if char == '"':
                tail = self._STRING_TAIL.match(text, match.end())
                if tail is None:
                    self._scan = match.start()  # rescan the whole string once more bytes arrive
                    return None
                self._scan = tail.end()
                continue
            self._scan = match.end()
            self._depth += 1 if char in "{[" else -1
            if self._depth == 0:
                return self._scan

    def _decode(self, end):
        text, start = self._text, self._start
        try:
            value, stop = self._json.raw_decode(text, start)
        except ValueError as exc:
            raise ValueError("malformed JSON in answer: %s" % exc)
        if stop != end:
            raise ValueError("malformed JSON in answer near %r" % text[start:end][:80])
        self._text, self._scan, self._start = text[end:], 0, None
        return value


# What the methods the collection reads answer on SPDK v26.05 (tests/emulator/fixtures/rpc_py_real.jsonl):
# a list of objects, a list of strings, an object, or a string (the new object's UUID). An answer of another
# type is a protocol error naming the method, not a crash somewhere in the model.
LIST_OF_OBJECTS, LIST_OF_STRINGS, OBJECT, STRING = "a list of objects", "a list of strings", "an object", "a string"
RESULT_SHAPES = dict(
    [(method, LIST_OF_OBJECTS) for method in (
        "bdev_get_bdevs", "bdev_lvol_get_lvols", "bdev_lvol_get_lvstores", "bdev_nvme_get_controllers",
        "bdev_raid_get_bdevs", "framework_get_config", "framework_get_subsystems", "keyring_get_keys",
        "nvmf_get_subsystems", "nvmf_get_transports", "nvmf_subsystem_get_controllers",
        "nvmf_subsystem_get_listeners", "nvmf_subsystem_get_qpairs")]
    + [(method, STRING) for method in (
        "bdev_aio_create", "bdev_lvol_clone", "bdev_lvol_create", "bdev_lvol_create_lvstore", "bdev_lvol_snapshot")]
    + [("rpc_get_methods", LIST_OF_STRINGS), ("bdev_nvme_attach_controller", LIST_OF_STRINGS),
       ("spdk_get_version", OBJECT), ("bdev_lvol_check_shallow_copy", OBJECT), ("bdev_nvme_get_io_paths", OBJECT)])


def has_shape(value, shape):
    if shape == LIST_OF_OBJECTS:
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    if shape == LIST_OF_STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if shape == OBJECT:
        return isinstance(value, dict)
    return isinstance(value, str)


def _sample(value):
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return "%s %s" % (type(value).__name__, text if len(text) <= 60 else text[:57] + "...")


def split_host_port(text):
    """(host, port) of ``host:port`` or ``[v6]:port``; None for anything else (a Unix socket path)."""
    text = text.strip()
    match = re.match(r"^\[([0-9A-Fa-f:.%\w]+)\]:(\d+)$", text) or re.match(r"^([^/:\[\]]+):(\d+)$", text)
    if match:
        return match.group(1), int(match.group(2))
    return None


def parse_address(address):
    """Return (family, sockaddr) for a Unix path, ``host:port`` or ``[v6]:port``."""
    parts = split_host_port(address)
    if parts is None:
        return socket.AF_UNIX, address.strip()
    if not 0 < parts[1] < 65536:
        raise SpdkUnreachableError("connect", None, "rpc_socket %s: port %d is not a TCP port (1-65535)"
                                   % (address, parts[1]))
    return (socket.AF_INET6 if address.strip().startswith("[") else socket.AF_INET), parts


def is_http_address(address):
    return address.startswith(("http://", "https://", "http+unix://"))


class SocketTransport(object):
    """One persistent stream connection (Unix socket or TCP) to a target.

    ``exchange`` pipelines: it writes every request, then reads until each id has its
    answer. Any failure closes the connection; the next exchange connects again.
    """

    recv_size = 65536

    def __init__(self, address, connect_retries=20, retry_delay=0.25):
        self.address = address
        self.family, self.sockaddr = parse_address(address)
        self.connect_retries = connect_retries
        self.retry_delay = retry_delay
        self._sock = None
        self._decoder = None

    @property
    def connected(self):
        return self._sock is not None

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._decoder = None

    def exchange(self, requests, timeout):
        deadline = time.monotonic() + timeout
        label = requests[0]["method"] if len(requests) == 1 else "batch of %d calls" % len(requests)
        payload = b"".join(json.dumps(r).encode("utf-8") for r in requests)
        try:
            self._send(payload, deadline, label)
            return self._receive(requests, deadline, label)
        except BaseException:
            self.close()
            raise

    def _send(self, payload, deadline, label):
        reused = self._sock is not None
        if not reused:
            self._connect(deadline, label)
        try:
            self._sendall(payload, deadline, label)
        except (BrokenPipeError, ConnectionResetError):
            if not reused:
                raise self._error(SpdkConnectionError, label, "the target closed the connection")
            # A kept connection died between calls (target restarted): nothing of this
            # request was processed, so sending it on a new connection is safe.
            self.close()
            self._connect(deadline, label)
            self._sendall(payload, deadline, label)

    def _sendall(self, payload, deadline, label):
        self._sock.settimeout(self._remaining(deadline, label))
        try:
            self._sock.sendall(payload)
        except socket.timeout:
            raise self._timeout(label, deadline)

    def _connect(self, deadline, label):
        attempt = 0
        while True:
            sock = socket.socket(self.family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._remaining(deadline, label))
                sock.connect(self.sockaddr)
            except socket.timeout:
                sock.close()
                raise self._timeout(label, deadline)
            except OSError as exc:
                sock.close()
                attempt += 1
                retry = exc.errno in _RETRY_ERRNOS and attempt <= self.connect_retries
                if not retry or time.monotonic() + self.retry_delay >= deadline:
                    raise self._connect_error(label, exc, attempt)
                time.sleep(self.retry_delay)
                continue
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            self._decoder = JsonStreamDecoder()
            return

    def _receive(self, requests, deadline, label):
        wanted = dict((r["id"], r["method"]) for r in requests)
        answers = {}
        while len(answers) < len(requests):
            for value in self._read_values(deadline, label):
                self._match(value, wanted, answers, label)
        return [answers[r["id"]] for r in requests]

    def _match(self, value, wanted, answers, label):
        if not isinstance(value, dict):
            raise self._error(SpdkProtocolError, label, "answer is not a JSON object: %r" % (value,))
        answer_id = value.get("id")
        pending = [i for i in wanted if i not in answers]
        if answer_id is None and "error" in value and len(pending) == 1:
            # SPDK answers id null when it could not read the request's id.
            answer_id = pending[0]
        if answer_id not in wanted or answer_id in answers:
            raise self._error(
                SpdkProtocolError, label,
                "answer has id %r but the ids awaited were %s; the connection was reset"
                % (answer_id, sorted(pending)))
        answers[answer_id] = value

    def _read_values(self, deadline, label):
        self._sock.settimeout(self._remaining(deadline, label))
        try:
            data = self._sock.recv(self.recv_size)
        except socket.timeout:
            raise self._timeout(label, deadline)
        except OSError as exc:
            raise self._error(SpdkConnectionError, label, "reading the answer failed: %s" % exc)
        if not data:
            what = "in the middle of an answer" if self._decoder.pending else "before answering"
            raise self._error(SpdkConnectionError, label, "the target closed the connection %s" % what)
        try:
            return self._decoder.feed(data)
        except ValueError as exc:
            raise self._error(SpdkProtocolError, label, str(exc))

    def _remaining(self, deadline, label):
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timeout(label, deadline)
        return left

    def _timeout(self, label, deadline):
        return self._error(SpdkTimeoutError, label, "no answer from %s before the deadline (rpc_timeout)" % self.address)

    def _connect_error(self, label, exc, attempts):
        return self._error(
            SpdkUnreachableError, label,
            "cannot connect to %s after %d attempt(s): %s; is spdk_tgt running? is rpc_socket right?"
            % (self.address, attempts, exc.strerror or exc))

    @staticmethod
    def _error(error_class, label, message):
        return error_class(label, None, message)


def make_transport(address, connect_retries=20, username=None, password=None, validate_certs=True):
    if is_http_address(address):
        from ansible_collections.spdk.storage.plugins.module_utils.spdk_http import HttpTransport
        return HttpTransport(address, username=username, password=password, validate_certs=validate_certs)
    return SocketTransport(address, connect_retries=connect_retries)


class SpdkRpcClient(object):
    """JSON-RPC client of one spdk_tgt, one persistent connection per instance."""

    def __init__(self, address=DEFAULT_SOCKET, timeout=DEFAULT_TIMEOUT, check_mode=False,
                 connect_retries=20, secret_params=SECRET_PARAMS, transport=None,
                 username=None, password=None, validate_certs=True):
        self.address = address
        self.timeout = float(timeout)
        self.check_mode = check_mode
        self.secret_params = frozenset(secret_params)
        self._transport = transport
        self._transport_options = dict(connect_retries=connect_retries, username=username,
                                       password=password, validate_certs=validate_certs)
        self._next_id = 1
        self._methods = None
        self._version = None
        self.sent_calls = []
        self.skipped_calls = []

    # -- public calls -------------------------------------------------------------

    def is_mutating(self, method):
        return method not in READ_ONLY_METHODS

    def call(self, method, params=None, mutating=None):
        """Send one call and return its result; None for a mutating call in check mode."""
        if mutating is None:
            mutating = self.is_mutating(method)
        if mutating and self.check_mode:
            self.skipped_calls.append(RpcCall(method, redact(params, self.secret_params), True))
            return None
        return self._exchange([(method, params, mutating)], raise_errors=True)[0]

    def batch(self, calls, return_errors=False):
        """Pipeline independent calls ``[(method, params), ...]``; results in order.

        All requests are written before any answer is read. With ``return_errors`` an
        error answer becomes an SpdkRpcError in its slot, otherwise the first one (in
        call order) is raised once every answer has been read. A mutating call in check
        mode is skipped and its slot is None.
        """
        prepared = []
        for entry in calls:
            method, params = entry[0], entry[1] if len(entry) > 1 else None
            mutating = entry[2] if len(entry) > 2 and entry[2] is not None else self.is_mutating(method)
            prepared.append((method, params, mutating))
        results = [None] * len(prepared)
        to_send = []
        for index, (method, params, mutating) in enumerate(prepared):
            if mutating and self.check_mode:
                self.skipped_calls.append(RpcCall(method, redact(params, self.secret_params), True))
            else:
                to_send.append(index)
        if to_send:
            answers = self._exchange([prepared[i] for i in to_send], raise_errors=not return_errors)
            for index, answer in zip(to_send, answers):
                results[index] = answer
        return results

    def methods(self):
        """The set of RPC names the target offers (rpc_get_methods, cached)."""
        if self._methods is None:
            self._methods = frozenset(self.call("rpc_get_methods"))
        return self._methods

    def supports(self, method):
        return method in self.methods()

    def require(self, method, what):
        if not self.supports(method):
            raise SpdkCapabilityError(
                method, None, "this target (%s) has no RPC %s, needed for %s"
                % (self.version_label(), method, what))

    def version(self):
        """spdk_get_version's answer, cached: {"version": "SPDK v26.05 ...", "fields": {...}}."""
        if self._version is None:
            self._version = self.call("spdk_get_version")
        return self._version

    def version_tuple(self):
        fields = self.version().get("fields") or {}
        return (fields.get("major", 0), fields.get("minor", 0), fields.get("patch", 0))

    def version_label(self):
        """Short version text such as "SPDK v26.05" for messages; never raises."""
        try:
            text = self.version().get("version", "")
        except SpdkRpcError:
            return "SPDK of unknown version"
        return text.split(" git ")[0] or "SPDK of unknown version"

    def close(self):
        if self._transport is not None:
            self._transport.close()

    # -- the wire -----------------------------------------------------------------

    def _exchange(self, calls, raise_errors):
        requests = []
        for method, params, mutating in calls:
            request = {"jsonrpc": "2.0", "method": method, "id": self._next_id}
            self._next_id += 1
            if params is not None:
                request["params"] = params
            requests.append(request)
        handed = [RpcCall(method, redact(params, self.secret_params), mutating)
                  for method, params, mutating in calls]
        try:
            answers = self._send(requests)
        except SpdkUnreachableError:
            raise  # never reached the target: nothing to count
        except BaseException:
            self.sent_calls.extend(handed)  # may have been processed before the failure
            raise
        self.sent_calls.extend(handed)
        if len(answers) != len(requests):
            raise SpdkProtocolError(requests[0]["method"], None,
                                    "%d answers for %d requests" % (len(answers), len(requests)))
        results = [self._result(request, answer) for request, answer in zip(requests, answers)]
        if raise_errors:
            for result in results:
                if isinstance(result, SpdkRpcError):
                    raise result
        return results

    def _result(self, request, answer):
        """The answer's result, or an SpdkRpcError (returned, not raised) for an error."""
        method, params = request["method"], request.get("params")
        if answer.get("id") not in (request["id"], None):
            raise SpdkProtocolError(method, None, "answer id %r does not match request id %r"
                                    % (answer.get("id"), request["id"]))
        if "error" in answer:
            return self._error_from(method, params, answer["error"])
        if "result" not in answer:
            raise SpdkProtocolError(method, None, "answer has neither result nor error: %r" % (answer,))
        result = answer["result"]
        shape = RESULT_SHAPES.get(method)
        if shape is not None and not has_shape(result, shape):
            raise SpdkProtocolError(method, None, "%s answered %s where SPDK answers %s: this target does not speak "
                                    "SPDK's JSON-RPC as v26.05 does" % (method, _sample(result), shape))
        return result

    def _error_from(self, method, params, error):
        if not isinstance(error, dict):
            error = {"message": str(error)}
        secrets = secret_values(params, self.secret_params)
        message = scrub(str(error.get("message", "")), secrets)
        return SpdkRpcError(method, error.get("code"), message,
                            params=redact(params, self.secret_params), data=error.get("data"))

    def _get_transport(self):
        if self._transport is None:
            self._transport = make_transport(self.address, **self._transport_options)
        return self._transport

    def _send(self, requests):
        """Write ``requests`` and return their answers in the same order.

        The only method that touches the wire: module tests patch it to script the
        target. It receives the request dicts (jsonrpc, method, id, params) and returns
        the answer dicts ({"jsonrpc", "id", "result" | "error"}).
        """
        return self._get_transport().exchange(requests, self.timeout)

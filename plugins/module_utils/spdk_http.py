# -*- coding: utf-8 -*-
# Copyright (c) spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Optional transport through SPDK's rpc_http_proxy (scripts/rpc_http_proxy.py).

The proxy takes one JSON-RPC request per HTTP POST, checks HTTP basic auth and answers
with the target's JSON answer. ``http://`` and ``https://`` need the requests library,
``http+unix://`` (a proxy listening on a Unix socket) needs requests-unixsocket. Both are
imported only when such an address is used, so the storage nodes need no pip for the
default Unix-socket transport.
"""

from __future__ import annotations

import json
import time
import traceback
import warnings

from urllib.parse import quote

from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    SpdkConnectionError,
    SpdkMissingLibraryError,
    SpdkProtocolError,
    SpdkTimeoutError,
)

HTTP_UNIX_PREFIX = "http+unix://"


def _import_session(address):
    """Return a requests Session class fit for ``address``, or raise SpdkMissingLibraryError."""
    if address.startswith(HTTP_UNIX_PREFIX):
        library, module_name = "requests-unixsocket", "requests_unixsocket"
    else:
        library, module_name = "requests", "requests"
    try:
        module = __import__(module_name)
    except ImportError:
        raise SpdkMissingLibraryError("connect", library, traceback.format_exc())
    return module.Session


def normalise_url(address):
    """Percent-encode the socket path of ``http+unix:///run/proxy.sock`` as requests-unixsocket needs."""
    if address.startswith(HTTP_UNIX_PREFIX + "/"):
        return HTTP_UNIX_PREFIX + quote(address[len(HTTP_UNIX_PREFIX):], safe="") + "/"
    return address


class HttpTransport(object):
    """Sends each request as one POST to an rpc_http_proxy; a Session keeps the connection."""

    def __init__(self, address, username=None, password=None, validate_certs=True):
        self.address = address
        self.url = normalise_url(address)
        self.auth = (username, password or "") if username else None
        self.validate_certs = validate_certs
        self._session_class = _import_session(address)
        self._session = None

    @property
    def connected(self):
        return self._session is not None

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None

    def exchange(self, rpc_requests, timeout):
        deadline = time.monotonic() + timeout
        answers = []
        for request in rpc_requests:  # the proxy takes one request per POST
            answers.append(self._post(request, deadline))
        return answers

    def _post(self, request, deadline):
        import requests  # present: _import_session succeeded (requests-unixsocket needs it too)

        method = request["method"]
        left = deadline - time.monotonic()
        if left <= 0:
            raise SpdkTimeoutError(method, None, "no answer from %s before the deadline (rpc_timeout)" % self.address)
        if self._session is None:
            self._session = self._session_class()
        try:
            with warnings.catch_warnings():
                if not self.validate_certs:  # the user chose it; no warning per call
                    warnings.simplefilter("ignore")
                response = self._session.post(
                    self.url, data=json.dumps(request).encode("utf-8"), auth=self.auth, timeout=left,
                    verify=self.validate_certs, headers={"Content-Type": "application/json"})
        except requests.exceptions.Timeout:
            self.close()
            raise SpdkTimeoutError(method, None, "no answer from %s before the deadline (rpc_timeout)" % self.address)
        except requests.exceptions.SSLError as exc:
            self.close()
            raise SpdkConnectionError(
                method, None, "TLS verification of %s failed: %s; give the proxy a certificate this host "
                "trusts (rpc_validate_certs: false only for test setups)" % (self.address, exc))
        except requests.exceptions.RequestException as exc:
            self.close()
            raise SpdkConnectionError(
                method, None, "cannot reach the SPDK HTTP proxy at %s: %s; is rpc_http_proxy running? "
                "is rpc_socket right?" % (self.address, exc))
        return self._answer(method, response)

    def _answer(self, method, response):
        if response.status_code == 401:
            raise SpdkConnectionError(
                method, None, "the SPDK HTTP proxy at %s refused the credentials (HTTP 401): "
                "check rpc_username and rpc_password" % self.address)
        if response.status_code != 200:
            raise SpdkConnectionError(
                method, None, "the SPDK HTTP proxy at %s answered HTTP %d %s"
                % (self.address, response.status_code, response.reason))
        try:
            answer = json.loads(response.content.decode("utf-8"))
        except ValueError as exc:
            raise SpdkProtocolError(method, None, "malformed JSON from the HTTP proxy: %s" % exc)
        if not isinstance(answer, dict):
            raise SpdkProtocolError(method, None, "answer is not a JSON object: %r" % (answer,))
        return answer

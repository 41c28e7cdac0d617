"""The client through an rpc_http_proxy look-alike: one request per POST, basic auth."""
import base64
import json
import os
import shutil
import socketserver
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_http import normalise_url
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    SpdkConnectionError,
    SpdkMissingLibraryError,
    SpdkRpcClient,
    SpdkRpcError,
    SpdkTimeoutError,
)

VERSION = {"version": "SPDK v26.05 git sha1 d519b163cb",
           "fields": {"major": 26, "minor": 5, "patch": 0, "suffix": "", "commit": "d519b163cb"}}
USER, PASSWORD = "spdk", "s3cret"


class ProxyHandler(BaseHTTPRequestHandler):
    """Behaves like SPDK's scripts/rpc_http_proxy.py in front of a tiny target."""

    answers = {"spdk_get_version": {"result": VERSION},
               "bdev_lvol_delete": {"error": {"code": -19, "message": "No such device"}}}

    def do_POST(self):
        expected = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(request)
        answer = {"jsonrpc": "2.0", "id": request["id"]}
        answer.update(self.answers.get(request["method"], {"error": {"code": -32601, "message": "Method not found"}}))
        if request["method"] == "bdev_wait_for_examine":
            self.server.release.wait(5)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(server):
    server.seen = []
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    return server


def shut(server):
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy():
    server = serve(ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler))
    yield server
    shut(server)


def url_of(server, scheme="http"):
    return "%s://127.0.0.1:%d" % (scheme, server.server_address[1])


def test_calls_go_through_the_proxy_with_basic_auth(proxy):
    client = SpdkRpcClient(url_of(proxy), username=USER, password=PASSWORD, timeout=5)
    assert client.call("spdk_get_version") == VERSION
    assert client.batch([("spdk_get_version",), ("spdk_get_version",)]) == [VERSION, VERSION]
    assert [r["id"] for r in proxy.seen] == [1, 2, 3]


def test_error_objects_through_the_proxy_are_spdk_rpc_errors(proxy):
    client = SpdkRpcClient(url_of(proxy), username=USER, password=PASSWORD, timeout=5)
    with pytest.raises(SpdkRpcError) as info:
        client.call("bdev_lvol_delete", {"name": "lvs0/nope"})
    assert info.value.is_no_device()


def test_wrong_credentials_are_named(proxy):
    client = SpdkRpcClient(url_of(proxy), username=USER, password="wrong", timeout=5)
    with pytest.raises(SpdkConnectionError, match="refused the credentials \\(HTTP 401\\): check rpc_username"):
        client.call("spdk_get_version")


def test_a_proxy_that_is_not_running_is_a_connection_error(proxy):
    address = url_of(proxy)
    shut(proxy)
    with pytest.raises(SpdkConnectionError, match="is rpc_http_proxy running\\? is rpc_socket right\\?"):
        SpdkRpcClient(address, username=USER, password=PASSWORD, timeout=5).call("spdk_get_version")


def test_the_deadline_applies_through_the_proxy(proxy):
    client = SpdkRpcClient(url_of(proxy), username=USER, password=PASSWORD, timeout=0.3)
    with pytest.raises(SpdkTimeoutError):
        client.call("bdev_wait_for_examine")


def test_a_proxy_on_a_unix_socket(tmp_path):
    pytest.importorskip("requests_unixsocket")
    path = str(tmp_path / "proxy.sock")
    server = serve(UnixHTTPServer(path, ProxyHandler))
    try:
        client = SpdkRpcClient("http+unix://" + path, username=USER, password=PASSWORD, timeout=5)
        assert client.call("spdk_get_version") == VERSION
    finally:
        shut(server)


def test_unix_socket_paths_are_percent_encoded():
    assert normalise_url("http+unix:///run/spdk/proxy.sock") == "http+unix://%2Frun%2Fspdk%2Fproxy.sock/"
    assert normalise_url("http+unix://%2Frun%2Fproxy.sock/") == "http+unix://%2Frun%2Fproxy.sock/"
    assert normalise_url("https://10.0.0.1:9009") == "https://10.0.0.1:9009"


@pytest.fixture
def tls_proxy(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", key, "-out", cert], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve(server)
    yield server
    shut(server)


def test_tls_certificates_are_verified_unless_disabled(tls_proxy):
    address = url_of(tls_proxy, "https")
    with pytest.raises(SpdkConnectionError, match="TLS verification of .* failed"):
        SpdkRpcClient(address, username=USER, password=PASSWORD, timeout=5).call("spdk_get_version")
    client = SpdkRpcClient(address, username=USER, password=PASSWORD, timeout=5, validate_certs=False)
    assert client.call("spdk_get_version") == VERSION


@pytest.mark.parametrize("address, library, module", [
    ("https://10.0.0.1:9009", "requests", "requests"),
    ("http+unix:///run/proxy.sock", "requests-unixsocket", "requests_unixsocket"),
])
def test_a_missing_library_is_reported_by_name(monkeypatch, address, library, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    with pytest.raises(SpdkMissingLibraryError) as info:
        SpdkRpcClient(address).call("spdk_get_version")
    assert info.value.library == library
    assert "import of %s halted" % module in info.value.import_traceback


def test_the_default_transport_never_imports_requests(rpc_server, monkeypatch):
    monkeypatch.setitem(sys.modules, "requests", None)
    rpc_server.reply("spdk_get_version", result=VERSION)
    assert SpdkRpcClient(rpc_server.address, timeout=2).call("spdk_get_version") == VERSION
    assert os.path.exists(rpc_server.address)

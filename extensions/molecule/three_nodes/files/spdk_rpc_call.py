"""Send one JSON-RPC call to an spdk_tgt Unix socket and print its result as JSON (test helper).

    python3 spdk_rpc_call.py SOCKET METHOD [PARAMS_JSON]

The verify step uses it for what no module of the collection does on purpose: exporting a
snapshot lvol for a moment to read it back. Exit status 1 with the error on stderr when the
target answers with an error.
"""
import json
import socket
import sys


def call(path, method, params=None):
    request = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        request["params"] = params
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(json.dumps(request).encode())
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("%s closed the connection before answering %s" % (path, method))
            buffer += chunk
            try:
                return json.loads(buffer)
            except ValueError:
                continue        # the answer is not complete yet


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    answer = call(argv[1], argv[2], json.loads(argv[3]) if len(argv) == 4 else None)
    if "error" in answer:
        print(json.dumps(answer["error"]), file=sys.stderr)
        return 1
    print(json.dumps(answer.get("result")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

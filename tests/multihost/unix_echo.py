"""A tiny Unix-socket server and client for the topology tests (standard library only).

    python unix_echo.py serve SOCKET    answers "pong <pid> <mount namespace>" to every connection, forever
    python unix_echo.py ping SOCKET     prints the answer; exit 1 when nothing answers at SOCKET

The tests start ``serve`` through a node's SSH session, as a daemon would be, and ``ping`` it from
that node, from another node and from the machine itself.
"""
import os
import socket
import sys


def serve(path):
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    answer = ("pong %d %s\n" % (os.getpid(), os.readlink("/proc/self/ns/mnt"))).encode()
    while True:
        conn = server.accept()[0]
        try:
            conn.sendall(answer)
        finally:
            conn.close()


def ping(path):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5.0)
    try:
        client.connect(path)
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        sys.stderr.write("no answer at %s: %s\n" % (path, exc))
        return 1
    finally:
        client.close()
    sys.stdout.write(data.decode())
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("serve", "ping"):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "serve":
        serve(argv[2])
        return 0
    return ping(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

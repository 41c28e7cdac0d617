#!/usr/bin/env python3
"""Emulator speed: median RPC round trip, and 1000 lvols on one node.

Starts tests/emulator/spdk_tgt on a private socket and backing file, then measures
  1. ``bdev_get_bdevs`` round trips on one persistent connection (median, p99, per call);
  2. creating N thin lvols (total and per call) and one ``bdev_lvol_get_lvols`` listing them all;
  3. a restart that loads the lvstore with those N lvols back (time until bdev_aio_create answers).
Real SPDK v26.05 answers in ~4 ms (it polls its RPC socket every 4 ms; step7_timings.json).

Usage: benchmarks/emulator_rpc.py [--calls 1000] [--lvols 1000] [--json]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPDK_TGT = os.path.join(ROOT, "tests", "emulator", "spdk_tgt")


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.decoder = json.JSONDecoder()
        self.buf = ""
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params:
            request["params"] = params
        self.sock.sendall(json.dumps(request).encode())
        while True:
            try:
                answer, end = self.decoder.raw_decode(self.buf.lstrip())
                self.buf = self.buf.lstrip()[end:]
                break
            except ValueError:
                self.buf += self.sock.recv(1 << 22).decode()
        if "error" in answer:
            raise RuntimeError("%s: %s" % (method, answer["error"]))
        return answer["result"]


def start(sock):
    proc = subprocess.Popen([sys.executable, SPDK_TGT, "-r", sock, "--rpc-log", ""], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client = Client(sock)
            client.call("framework_wait_init")
            return proc, client
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("emulator did not start")


def stop(proc):
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def round_trips(client, calls):
    times = []
    for _call in range(calls):
        begin = time.perf_counter()
        client.call("bdev_get_bdevs")
        times.append(time.perf_counter() - begin)
    times.sort()
    return {"calls": calls, "median_ms": statistics.median(times) * 1e3,
            "p99_ms": times[int(len(times) * 0.99) - 1] * 1e3}


def many_lvols(client, disk, count):
    client.call("bdev_aio_create", name="disk0", filename=disk, block_size=4096)
    client.call("bdev_lvol_create_lvstore", bdev_name="disk0", lvs_name="lvs0", cluster_sz=1 << 20)
    begin = time.perf_counter()
    for i in range(count):
        client.call("bdev_lvol_create", lvs_name="lvs0", lvol_name="vol-%04d" % i, size_in_mib=64,
                    thin_provision=True)
    created = time.perf_counter() - begin
    begin = time.perf_counter()
    listed = client.call("bdev_lvol_get_lvols")
    listing = time.perf_counter() - begin
    assert len(listed) == count
    return {"lvols": count, "create_total_s": created, "create_per_call_ms": created / count * 1e3,
            "get_lvols_ms": listing * 1e3}


def reload_time(sock, disk, count):
    proc, client = start(sock)
    try:
        begin = time.perf_counter()
        client.call("bdev_aio_create", name="disk0", filename=disk, block_size=4096)
        loaded = time.perf_counter() - begin
        assert len(client.call("bdev_lvol_get_lvols")) == count
        return {"reload_with_lvols_s": loaded}
    finally:
        stop(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--lvols", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="emu-bench-", dir="/tmp")
    sock, disk = os.path.join(work, "b.sock"), os.path.join(work, "b.img")
    with open(disk, "wb") as handle:
        handle.truncate(4 << 30)
    try:
        proc, client = start(sock)
        try:
            results = {"rpc": round_trips(client, args.calls), "lvols": many_lvols(client, disk, args.lvols)}
        finally:
            stop(proc)
        results["reload"] = reload_time(sock, disk, args.lvols)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    rpc, lvols = results["rpc"], results["lvols"]
    print("bdev_get_bdevs round trip: median %.3f ms, p99 %.3f ms (%d calls)"
          % (rpc["median_ms"], rpc["p99_ms"], rpc["calls"]))
    print("%d thin lvols: create %.2f s (%.2f ms/call), bdev_lvol_get_lvols %.1f ms"
          % (lvols["lvols"], lvols["create_total_s"], lvols["create_per_call_ms"], lvols["get_lvols_ms"]))
    print("restart: lvstore with %d lvols loaded in %.2f s" % (lvols["lvols"], results["reload"]["reload_with_lvols_s"]))


if __name__ == "__main__":
    main()

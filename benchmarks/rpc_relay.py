"""RPC relay speed: one small JSON-RPC request through spdk_rpc_relay against the same request sent directly.

Sets up what tests/integration/test_rpc_relay.py uses (tests/integration/ssh_nodes.py): two sshd
"nodes" on 127.0.0.51 and 127.0.0.52, each with a private tmpfs for the peer_dir, and stand-in
targets on Unix sockets that answer every request. It starts the relay with
``ansible localhost -m spdk.storage.spdk_rpc_relay``, then, from inside node A, measures
  1. on one persistent connection (how the collection's client talks to a target during a module
     run), a request to node B's target socket directly and through ``<peer_dir>/nodeB.sock``;
  2. the same with a new connection per request (each one opens an SSH channel on both hops);
  3. the module run that starts both masters, and a second run that finds them running (no-op).
The path through the relay is node A's sshd -> the controller's master of A -> the controller socket of
B -> B's master -> B's sshd -> B's target: two SSH hops, here all on this machine.

Needs root (sshd, mount namespaces); installs openssh-server with apt-get when /usr/sbin/sshd is missing.

Usage: .venv/bin/python benchmarks/rpc_relay.py [--calls 200] [--json]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)     # run as a script: the repository root, for the package ``tests``

from tests.integration.ssh_nodes import EchoTarget, SshLab, relay_module, rpc_from  # noqa: E402

WARM_UP = 20


def summary(times):
    times = sorted(times)
    return {"calls": len(times), "median_ms": statistics.median(times) * 1e3,
            "p90_ms": times[int(len(times) * 0.9) - 1] * 1e3, "p99_ms": times[int(len(times) * 0.99) - 1] * 1e3}


def module_run(args, workdir):
    """Seconds one ``ansible localhost -m spdk.storage.spdk_rpc_relay`` takes, and its changed flag."""
    begin = time.perf_counter()
    result = relay_module(args, workdir)
    took = time.perf_counter() - begin
    if result.get("failed"):
        raise RuntimeError("the module failed: %s" % result.get("msg"))
    return took, result["changed"]


def measure(node, path, calls, fresh):
    times = rpc_from(node, path, calls + WARM_UP, fresh=fresh, python=sys.executable)[1]
    return summary(times[WARM_UP:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="relay-bench-", dir="/tmp")
    lab = targets = None
    relay_args = None
    results = {}
    try:
        lab = SshLab(work)
        a, b = lab.node("nodeA", "127.0.0.51"), lab.node("nodeB", "127.0.0.52")
        targets = [EchoTarget(os.path.join(work, "a.sock"), "nodeA"), EchoTarget(os.path.join(work, "b.sock"), "nodeB")]
        peer_dir = os.path.join(lab.node_root, "peers")
        relay_args = {"peer_dir": peer_dir, "control_dir": os.path.join(work, "ctl"), "nodes": [
            {"name": node.name, "ssh_host": node.address, "ssh_port": node.port, "ssh_user": "root",
             "ssh_private_key_file": lab.client_key, "ssh_common_args": lab.common_args(), "rpc_socket": target.path}
            for node, target in ((a, targets[0]), (b, targets[1]))]}
        results["module_start_s"], changed = module_run(relay_args, work)
        assert changed, "the first run started nothing"
        results["module_noop_s"], changed = module_run(relay_args, work)
        assert not changed, "the second run changed something"
        relayed = os.path.join(peer_dir, "nodeB.sock")
        assert rpc_from(a, relayed, python=sys.executable)[0]["result"]["node"] == "nodeB"
        for mode, fresh in (("persistent", False), ("connect_per_request", True)):
            results[mode] = {"direct": measure(a, targets[1].path, args.calls, fresh),
                             "relay": measure(a, relayed, args.calls, fresh)}
    finally:
        if relay_args is not None:
            relay_args.pop("nodes")
            try:
                module_run(dict(relay_args, state="absent"), work)
            except RuntimeError as exc:
                print("stopping the relay failed: %s" % exc, file=sys.stderr)
        if lab is not None:
            lab.stop()
        for target in targets or ():
            target.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for mode in ("persistent", "connect_per_request"):
        direct, relay = results[mode]["direct"], results[mode]["relay"]
        print("%-20s direct: median %.3f ms (p90 %.3f, p99 %.3f)   relay: median %.3f ms (p90 %.3f, p99 %.3f)"
              "   %d calls" % (mode, direct["median_ms"], direct["p90_ms"], direct["p99_ms"], relay["median_ms"],
                               relay["p90_ms"], relay["p99_ms"], relay["calls"]))
    print("module: start of 2 masters %.2f s, no-op run %.2f s" % (results["module_start_s"], results["module_noop_s"]))


if __name__ == "__main__":
    main()

"""Emulator-only fault injection RPCs (prefixed ``emu_``; never sent by the collection's modules).

* ``emu_bdev_fault {"name", "ops": ["read", "write", ...], "reason": "..."}`` makes those I/O
  operations of one bdev fail with BdevIOError (any bdev kind: the faulty coroutines shadow the
  bdev's own methods); with ``"delay_ms": N`` they succeed but only after N ms (a slow disk);
  ``{"name", "clear": true}`` ends it. Returns the faulted operations.
* ``emu_node_stall {"seconds": N}`` stops this node's NVMe-oF target from answering anything (new
  connections, commands, keep alives) for N seconds, like a frozen storage node; RPCs still answer.
"""
import asyncio

from .bdev import BdevIOError
from .errors import RpcError, errno_error, ENODEV
from .params import decode, REQUIRED
from .rpc import rpc
from .nvmf import nvmf_state

FAULTABLE = ("read", "write", "write_zeroes", "unmap", "flush")


def _failing(reason):
    async def fail(*_args, **_kwargs):
        raise BdevIOError(reason)
    return fail


def _slow(bdev, op, delay):
    original = getattr(type(bdev), op)

    async def slow(*args, **kwargs):
        await asyncio.sleep(delay)
        return await original(bdev, *args, **kwargs)
    return slow


def clear_fault(bdev):
    for op in getattr(bdev, "emu_faulted_ops", ()):
        bdev.__dict__.pop(op, None)
    bdev.emu_faulted_ops = ()


def inject_fault(bdev, ops, reason, delay=0.0):
    clear_fault(bdev)
    for op in ops:
        setattr(bdev, op, _slow(bdev, op, delay) if delay > 0 else _failing(reason))
    bdev.emu_faulted_ops = tuple(ops)


@rpc("emu_bdev_fault")
def emu_bdev_fault(target, params):
    p = decode(params, {"name": ("str", REQUIRED), "ops": ("list", list(FAULTABLE)),
                        "reason": ("str", "injected I/O error"), "delay_ms": ("uint", 0),
                        "clear": ("bool", False)})
    bdev = target.bdevs.find(p.name)
    if bdev is None:
        raise errno_error(ENODEV)
    if p["clear"]:           # not p.clear: that is dict.clear
        clear_fault(bdev)
        return []
    if not p.ops or any(op not in FAULTABLE for op in p.ops):
        raise RpcError(-32602, "ops must be a non-empty list of %s" % ", ".join(FAULTABLE))
    inject_fault(bdev, p.ops, p.reason, p.delay_ms / 1000.0)
    return list(p.ops)


@rpc("emu_node_stall")
def emu_node_stall(target, params):
    p = decode(params, {"seconds": ("any", REQUIRED)})
    if isinstance(p.seconds, bool) or not isinstance(p.seconds, (int, float)) or p.seconds < 0:
        raise RpcError(-32602, "seconds must be a non-negative number")
    state = nvmf_state(target)
    state.stalled_until = max(state.stalled_until, asyncio.get_running_loop().time() + p.seconds)
    return True

"""Framework and bdev-layer RPCs: version, method list, init states, config dump, bdev listing/examine.

``framework_get_config`` is built from providers: a subsystem module calls
``register_config(subsystem, provider, order)`` with ``provider(target) -> [{"method", "params"}]``.
For "bdev" the dump is ``bdev_set_options``, then the module providers by ``order`` (raid options 10,
nvme options and controllers 20, as SPDK prints them), then ``bdev.config_json()`` of every bdev in
registration order, then ``bdev_wait_for_examine``. Subsystems the emulator does not model answer
their recorded v26.05 defaults (spdk_v26_05.json).
"""
import asyncio
import json
import os

from . import rpc as rpcmod
from .errors import RpcError, errno_error, EINVAL, ENODEV
from .params import decode, no_params, REQUIRED
from .rpc import rpc

VERSION = {
    "version": "SPDK v26.05 git sha1 d519b163cb",
    "fields": {"major": 26, "minor": 5, "patch": 0, "suffix": "", "commit": "d519b163cb"},
}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "spdk_v26_05.json")) as _fh:
    RECORDED = json.load(_fh)

CONFIG_PROVIDERS = {}   # subsystem -> [(order, provider)]


def register_config(subsystem, provider, order=50):
    CONFIG_PROVIDERS.setdefault(subsystem, []).append((order, provider))
    CONFIG_PROVIDERS[subsystem].sort(key=lambda item: item[0])


class BdevOptions:
    def __init__(self):
        self.bdev_io_pool_size = 65535
        self.bdev_io_cache_size = 256
        self.iobuf_small_cache_size = 128
        self.iobuf_large_cache_size = 16

    def to_json(self, auto_examine):
        return {"bdev_io_pool_size": self.bdev_io_pool_size, "bdev_io_cache_size": self.bdev_io_cache_size,
                "bdev_auto_examine": auto_examine, "iobuf_small_cache_size": self.iobuf_small_cache_size,
                "iobuf_large_cache_size": self.iobuf_large_cache_size}


def init_waiters(target):
    return target.module_state("framework_init", list)


# ---- version, methods, init ----------------------------------------------------------------------

@rpc("spdk_get_version", mutating=False, startup=True)
def spdk_get_version(target, params):
    no_params(params)
    return VERSION


@rpc("rpc_get_methods", mutating=False, startup=True)
def rpc_get_methods(target, params):
    p = decode(params, {"current": ("bool", False), "include_aliases": ("bool", False)})
    order = {name: i for i, name in enumerate(RECORDED["methods"])}
    names = sorted(rpcmod.METHODS, key=lambda n: (order.get(n, len(order)), n))
    if p.current:
        names = [n for n in names if (rpcmod.METHODS[n].runtime if target.initialized
                                      else rpcmod.METHODS[n].startup)]
    return names


def after_init(target, coro_func):
    """Run ``await coro_func()`` when framework_start_init completes (the --json runtime part)."""
    target.module_state("framework_post_init", list).append(coro_func)


@rpc("framework_start_init", startup=True, runtime=False)
async def framework_start_init(target, params):
    no_params(params)
    target.initialized = True
    hooks = target.module_state("framework_post_init", list)
    while hooks:
        await hooks.pop(0)()
    for waiter in init_waiters(target):
        if not waiter.done():
            waiter.set_result(True)
    init_waiters(target).clear()
    return True


@rpc("framework_wait_init", mutating=False, startup=True)
async def framework_wait_init(target, params):
    no_params(params)
    if not target.initialized:
        waiter = asyncio.get_running_loop().create_future()
        init_waiters(target).append(waiter)
        await waiter
    return True


@rpc("framework_get_subsystems", mutating=False)
def framework_get_subsystems(target, params):
    no_params(params)
    return RECORDED["subsystems"]


@rpc("framework_get_config", mutating=False)
def framework_get_config(target, params):
    p = decode(params, {"name": ("str", None)})
    known = [s["subsystem"] for s in RECORDED["subsystems"]]
    if p.name not in known:
        raise RpcError(-32602, "Subsystem '%s' not found" % p.name)
    return subsystem_config(target, p.name)


def subsystem_config(target, name):
    if name == "bdev":
        return bdev_config(target)
    if name in CONFIG_PROVIDERS:
        return [entry for _order, provider in CONFIG_PROVIDERS[name] for entry in provider(target)]
    return RECORDED["static_config"].get(name, [])


def bdev_config(target):
    entries = [{"method": "bdev_set_options", "params": bdev_options(target).to_json(target.bdevs.auto_examine)}]
    for _order, provider in CONFIG_PROVIDERS.get("bdev", []):
        entries.extend(provider(target))
    for bdev in target.bdevs:
        entry = bdev.config_json()
        if entry is not None:
            entries.append(entry)
    entries.append({"method": "bdev_wait_for_examine"})
    return entries


# ---- bdev layer -----------------------------------------------------------------------------------

def bdev_options(target):
    return target.module_state("bdev_options", BdevOptions)


@rpc("bdev_set_options", startup=True, runtime=False)
def bdev_set_options(target, params):
    p = decode(params, {
        "bdev_io_pool_size": ("uint", None), "bdev_io_cache_size": ("uint", None),
        "bdev_auto_examine": ("bool", None), "iobuf_small_cache_size": ("uint", None),
        "iobuf_large_cache_size": ("uint", None)})
    options = bdev_options(target)
    for key in ("bdev_io_pool_size", "bdev_io_cache_size", "iobuf_small_cache_size", "iobuf_large_cache_size"):
        if p[key] is not None:
            setattr(options, key, p[key])
    if p.bdev_auto_examine is not None:
        target.bdevs.auto_examine = p.bdev_auto_examine
    return True


@rpc("bdev_get_bdevs", mutating=False)
async def bdev_get_bdevs(target, params):
    p = decode(params, {"name": ("str", None), "timeout_ms": ("uint", 0)})
    if p.name is None:
        return [bdev.to_json() for bdev in target.bdevs]
    bdev = target.bdevs.find(p.name)
    deadline = asyncio.get_running_loop().time() + p.timeout_ms / 1000.0
    while bdev is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
        bdev = target.bdevs.find(p.name)
    if bdev is None:
        raise errno_error(ENODEV)
    return [bdev.to_json()]


@rpc("bdev_wait_for_examine", mutating=False)
def bdev_wait_for_examine(target, params):
    # examine runs to completion inside registration, so nothing is ever pending here
    no_params(params)
    return True


@rpc("bdev_examine")
async def bdev_examine(target, params):
    p = decode(params, {"name": ("str", REQUIRED)})
    registry = target.bdevs
    if registry.auto_examine:
        raise errno_error(EINVAL)
    registry.examine_allowlist.add(p.name)
    bdev = registry.find(p.name)
    if bdev is not None:
        await registry.examine(bdev)
    return True

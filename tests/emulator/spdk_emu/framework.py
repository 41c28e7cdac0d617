"""Framework and bdev-layer RPCs: version, method list, init states, config dump, bdev listing/examine.

``framework_get_config`` is built from providers: a subsystem module calls
``register_config(subsystem, provider, order)`` with ``provider(target) -> [{"method", "params"}]``.
For "bdev" the dump is ``bdev_set_options``, one ``bdev_examine`` per name given to it, then the
module providers by ``order`` (raid options 10, nvme options and controllers 20, as SPDK prints
them), then ``bdev.config_json()`` of every bdev in registration order, then
``bdev_wait_for_examine``. A provider may return a list inside its entries: a batch, which SPDK
nests only with ``with_batches: true``. Subsystems the emulator does not model answer their
recorded v26.05 defaults (spdk_v26_05.json).
"""
import asyncio
import json
import os

from . import rpc as rpcmod
from .errors import RpcError, errno_error, EEXIST, EINVAL, ENODEV, ETIMEDOUT, INVALID_PARAMS
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
    no_params(params, RpcError(INVALID_PARAMS, "spdk_get_version method requires no parameters"))
    return VERSION


@rpc("rpc_get_methods", mutating=False, startup=True)
def rpc_get_methods(target, params):
    p = decode(params, {"current": ("bool", False), "include_aliases": ("bool", False)},
               error=RpcError(INVALID_PARAMS, "Invalid parameters"))
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
    no_params(params, RpcError(INVALID_PARAMS, "framework_start_init requires no parameters"))
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
    # takes no params and, as SPDK (lib/event/app.c), does not look at them
    if not target.initialized:
        waiter = asyncio.get_running_loop().create_future()
        init_waiters(target).append(waiter)
        await waiter
    return True


@rpc("framework_get_subsystems", mutating=False)
def framework_get_subsystems(target, params):
    no_params(params, RpcError(INVALID_PARAMS, "'framework_get_subsystems' requires no arguments"))
    return RECORDED["subsystems"]


@rpc("framework_get_config", mutating=False)
def framework_get_config(target, params):
    p = decode(params, {"name": ("str", REQUIRED), "with_batches": ("bool", False)},
               error=RpcError(INVALID_PARAMS, "Invalid arguments"))
    known = [s["subsystem"] for s in RECORDED["subsystems"]]
    if p.name not in known:
        raise RpcError(INVALID_PARAMS, "Subsystem '%s' not found" % p.name)
    return subsystem_config(target, p.name, p.with_batches)


def subsystem_config(target, name, with_batches=False):
    """The subsystem's config entries. ``with_batches``: SPDK then nests the entries a subsystem
    writes as a batch in arrays (only nvmf does, lib/nvmf/nvmf.c); otherwise they are flattened.
    A provider returns entries, and a list in its result is such a batch."""
    if name == "bdev":
        entries = bdev_config(target)
    elif name in CONFIG_PROVIDERS:
        entries = [entry for _order, provider in CONFIG_PROVIDERS[name] for entry in provider(target)]
    else:
        entries = RECORDED["static_config"].get(name, [])
    if entries is None or with_batches:
        return entries
    flat = []
    for entry in entries:
        flat.extend(entry if isinstance(entry, list) else [entry])
    return flat


def no_malloc_or_null_bdevs(target):
    """bdev_malloc and bdev_null write their bdevs as a batch each (empty here: the emulator has
    neither), between the RAID and the NVMe module's entries."""
    return [[], []]


register_config("bdev", no_malloc_or_null_bdevs, order=15)


def bdev_config(target):
    entries = [{"method": "bdev_set_options", "params": bdev_options(target).to_json(target.bdevs.auto_examine)}]
    entries.extend({"method": "bdev_examine", "params": {"name": name}} for name in target.bdevs.examine_allowlist)
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


# spdk_thread_get_count() while only startup RPCs run: the app thread (spdk_tgt -m 0x1)
STARTUP_THREADS = 1


@rpc("bdev_set_options", startup=True, runtime=False)
def bdev_set_options(target, params):
    p = decode(params, {
        "bdev_io_pool_size": ("uint32", None), "bdev_io_cache_size": ("uint32", None),
        "bdev_auto_examine": ("bool", None), "iobuf_small_cache_size": ("uint32", None),
        "iobuf_large_cache_size": ("uint32", None)}, error=RpcError(INVALID_PARAMS, "Invalid parameters"))
    options = bdev_options(target)
    pool = p.bdev_io_pool_size if p.bdev_io_pool_size is not None else options.bdev_io_pool_size
    cache = p.bdev_io_cache_size if p.bdev_io_cache_size is not None else options.bdev_io_cache_size
    if pool < cache * (STARTUP_THREADS + 1):      # spdk_bdev_set_opts
        raise RpcError(INVALID_PARAMS, "Pool size %d too small for cache size %d" % (pool, cache))
    for key in ("bdev_io_pool_size", "bdev_io_cache_size", "iobuf_small_cache_size", "iobuf_large_cache_size"):
        if p[key] is not None:
            setattr(options, key, p[key])
    if p.bdev_auto_examine is not None:
        target.bdevs.auto_examine = p.bdev_auto_examine
    return True


@rpc("bdev_get_bdevs", mutating=False)
async def bdev_get_bdevs(target, params):
    p = decode(params, {"name": ("str", None), "timeout": ("uint64", 0)})
    if p.name is None:
        return [bdev.to_json() for bdev in target.bdevs]
    bdev = target.bdevs.find(p.name)
    deadline = asyncio.get_running_loop().time() + p.timeout / 1000.0
    while bdev is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
        bdev = target.bdevs.find(p.name)
    if bdev is None:
        # spdk_bdev_open_async: -ENODEV at once without a timeout, -ETIMEDOUT when it runs out
        raise errno_error(ETIMEDOUT if p.timeout else ENODEV)
    return [bdev.to_json()]


@rpc("bdev_wait_for_examine", mutating=False)
def bdev_wait_for_examine(target, params):
    # examine runs to completion inside registration, so nothing is ever pending here
    no_params(params, RpcError(INVALID_PARAMS, "bdev_wait_for_examine requires no parameters"))
    return True


@rpc("bdev_examine")
async def bdev_examine(target, params):
    p = decode(params, {"name": ("str", REQUIRED)},
               error=RpcError(INVALID_PARAMS, "spdk_json_decode_object failed"))
    registry = target.bdevs
    if registry.auto_examine:
        raise errno_error(EINVAL)
    if p.name in registry.examine_allowlist:
        raise errno_error(EEXIST)
    registry.examine_allowlist.append(p.name)
    bdev = registry.find(p.name)
    if bdev is not None:
        await registry.examine(bdev)
    return True

"""One emulated spdk_tgt: the bdev layer plus each subsystem's state, on one event loop.

Subsystem modules (lvol, nvmf, nvme, raid, ...) keep their state in ``target.state[<module>]`` and
register RPCs with ``rpc.rpc``. They may hook in with ``target.on_start`` / ``target.on_stop``
callbacks (coroutine functions taking the target).
"""
import asyncio
import functools
import time

from .bdev import BdevRegistry, EXAMINERS


class Target:
    def __init__(self, options):
        self.options = options              # parsed command line (cli.py)
        self.bdevs = BdevRegistry()
        self.bdevs.examiners = [functools.partial(func, self) for func in EXAMINERS]
        self.state = {}                     # per subsystem module
        self.rpc_log = []                   # dicts: time, method, params, mutating, result|error
        self.rpc_log_path = getattr(options, "rpc_log", None)
        self.initialized = not getattr(options, "wait_for_rpc", False)
        self.loop = None
        self.started_at = time.time()
        self.on_start = []
        self.on_stop = []

    def module_state(self, name, factory):
        """The state object of subsystem ``name``, created with ``factory()`` the first time."""
        if name not in self.state:
            self.state[name] = factory()
        return self.state[name]

    def spawn(self, coro):
        """Run a background task on the target's loop (rebuilds, shallow copies, timers)."""
        return asyncio.get_event_loop().create_task(coro)

"""The RPC method registry.

Subsystem modules register their methods with ``@rpc("name", mutating=True)``. A handler is
``handler(target, params)`` and may be a coroutine function; it returns the JSON ``result`` or
raises ``RpcError``. ``startup=True`` marks methods allowed before ``framework_start_init``
under ``--wait-for-rpc`` (SPDK's SPDK_RPC_STARTUP).
"""

METHODS = {}


class Method:
    def __init__(self, name, handler, mutating, startup, runtime):
        self.name = name
        self.handler = handler
        self.mutating = mutating
        self.startup = startup
        self.runtime = runtime


def rpc(name, mutating=True, startup=False, runtime=True):
    def register(handler):
        if name in METHODS:
            raise RuntimeError("RPC method registered twice: %s" % name)
        METHODS[name] = Method(name, handler, mutating, startup, runtime)
        return handler
    return register

"""The keyring with its file module: keyring_file_add_key / remove_key, keyring_get_keys.

Other modules (nvmf DH-CHAP) use ``find_key(target, name)`` and hold a key with ``key.get()`` /
``key.put()``; ``key.read()`` returns the file's text at the time of use, as SPDK's keyring_file does.
A removed key that is still held stays listed with ``removed: true`` (and no path) until released.
"""
import os
import stat

from .errors import RpcError, errno_error, EEXIST, EINVAL, EPERM, INVALID_PARAMS, os_strerror
from .framework import register_config
from .params import decode, REQUIRED

ENOKEY = 126
from .rpc import rpc


class Key:
    def __init__(self, keyring, name, path):
        self.keyring = keyring
        self.name = name
        self.path = path
        self.removed = False
        self.users = 0

    def get(self):
        self.users += 1
        return self

    def put(self):
        self.users = max(0, self.users - 1)
        if self.removed and self.users == 0:
            self.keyring.keys.remove(self)

    def read(self):
        with open(self.path) as handle:
            return handle.read().strip()

    def to_json(self):
        info = {"name": self.name, "module": "keyring_file", "removed": self.removed, "probed": False,
                "refcnt": self.users + (0 if self.removed else 1)}
        if not self.removed:
            info["path"] = self.path
        return info


class Keyring:
    def __init__(self):
        self.keys = []

    def find(self, name):
        for key in self.keys:
            if key.name == name and not key.removed:
                return key
        return None


def keyring(target):
    return target.module_state("keyring", Keyring)


def find_key(target, name):
    """The usable key called ``name``, or None."""
    return keyring(target).find(name)


def check_key_file(path):
    """SPDK refuses relative paths and files readable by group or others with -EPERM."""
    if not os.path.isabs(path):
        raise errno_error(EPERM)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise errno_error(exc.errno) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise errno_error(EPERM)


@rpc("keyring_file_add_key")
def keyring_file_add_key(target, params):
    # relaxed decode (module/keyring/file/keyring_rpc.c): unknown keys are ignored
    p = decode(params, {"name": ("str", REQUIRED), "path": ("str", REQUIRED)},
               error=RpcError(INVALID_PARAMS, os_strerror(EINVAL)), relaxed=True)
    ring = keyring(target)
    if p.name.find(":") > 0:
        raise errno_error(EINVAL)    # "<keyring>:<name>": only the global keyring exists
    if ring.find(p.name) is not None:
        raise errno_error(EEXIST)
    check_key_file(p.path)
    ring.keys.append(Key(ring, p.name, p.path))
    return True


@rpc("keyring_file_remove_key")
def keyring_file_remove_key(target, params):
    p = decode(params, {"name": ("str", REQUIRED)}, error=RpcError(INVALID_PARAMS, os_strerror(EINVAL)))
    ring = keyring(target)
    key = ring.find(p.name)
    if key is None:
        raise errno_error(ENOKEY)
    key.removed = True
    if key.users == 0:
        ring.keys.remove(key)
    return True


@rpc("keyring_get_keys", mutating=False)
def keyring_get_keys(target, params):
    # SPDK (lib/keyring/keyring_rpc.c) does not look at params
    return [key.to_json() for key in keyring(target).keys]


def keyring_config(target):
    return [{"method": "keyring_file_add_key", "params": {"name": k.name, "path": k.path}}
            for k in keyring(target).keys if not k.removed]


register_config("keyring", keyring_config)

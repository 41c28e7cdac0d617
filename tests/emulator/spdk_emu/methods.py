"""Every subsystem module whose ``@rpc`` methods the emulator serves.

Importing a module registers its methods (and its examiners and config providers); ``load()``
imports them all (cli.main calls it before serving). Each engineer
adds one import line per module they own; optional modules not written yet are skipped so the
target still starts.
"""
import importlib

MODULES = (
    "framework",   # version, method list, init, config, bdev_get_bdevs / examine (emu-core)
    "keyring",     # keyring_file_* (emu-core)
    "aio",         # bdev_aio_* (emu-core)
    "lvol",        # bdev_lvol_* over blobstore.py (emu-core)
    "nvmf",        # nvmf_* (emu-net)
    "nvme",        # bdev_nvme_* (emu-net)
    "faults",      # emu_bdev_fault, emu_node_stall: emulator-only fault injection (emu-net)
    "raid",        # bdev_raid_* (emu-raid)
)


def load():
    """Import every subsystem module that exists; a second call changes nothing."""
    for name in MODULES:
        try:
            importlib.import_module("." + name, __package__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__package__, name):
                raise

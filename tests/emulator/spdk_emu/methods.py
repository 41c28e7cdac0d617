"""Every subsystem module whose ``@rpc`` methods the emulator serves.

Importing a module registers its methods (and its examiners and config providers); ``load()``
imports them all, in this order (cli.main calls it before serving; a second call changes nothing).
Each module is a plain import: one that is missing or broken stops the emulator at start-up
instead of leaving its methods out.
"""


def load():
    """Import every subsystem module, which registers its RPC methods."""
    # pylint: disable=import-outside-toplevel,unused-import
    from . import framework   # noqa: F401  version, method list, init, config, bdev_get_bdevs / examine
    from . import keyring     # noqa: F401  keyring_file_*
    from . import aio         # noqa: F401  bdev_aio_*
    from . import lvol        # noqa: F401  bdev_lvol_* over blobstore.py
    from . import nvmf        # noqa: F401  nvmf_*
    from . import nvme        # noqa: F401  bdev_nvme_*
    from . import faults      # noqa: F401  emu_bdev_fault, emu_node_stall: emulator-only fault injection
    from . import raid        # noqa: F401  bdev_raid_*

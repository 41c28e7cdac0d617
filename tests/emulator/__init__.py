"""The SPDK emulator (spdk_emu, the executables spdk_tgt and spdk_io) and its own tests."""

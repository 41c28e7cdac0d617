"""An emulator of SPDK's spdk_tgt for tests and demos (standard library only)."""

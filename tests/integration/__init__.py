"""End-to-end tests: the modules, the role and the playbooks against SPDK targets (the emulator, or SPDK_TGT)."""

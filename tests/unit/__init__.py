"""Unit tests: modules and module_utils against recorded SPDK answers, the role's supervisor and templates."""

"""The playbooks over SSH on one-host-per-node namespaces (scripts/multihost.sh)."""

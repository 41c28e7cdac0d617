#!/usr/bin/env bash
# Make the checkout visible to Ansible as the spdk.storage collection:
# .cache/collections/ansible_collections/spdk/storage -> the repository root
# (the same link tests/conftest.py makes for pytest). Use it with
# ANSIBLE_COLLECTIONS_PATH=.cache/collections.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAMESPACE_DIR="$ROOT/.cache/collections/ansible_collections/spdk"

mkdir -p "$NAMESPACE_DIR"
if [ ! -L "$NAMESPACE_DIR/storage" ]; then
    # A private link renamed into place: two runs at once cannot collide.
    link="$NAMESPACE_DIR/.storage.$$"
    ln -sfn "$ROOT" "$link"
    mv -Tf "$link" "$NAMESPACE_DIR/storage"
fi

#!/usr/bin/env bash
# Run every Molecule scenario under extensions/molecule/ (no containers): default and
# three_nodes on local hosts (inventories/emulated), three_nodes_ssh on the nodes of
# scripts/multihost.sh over SSH (inventories/multihost; needs root, so it is left out otherwise).
#
#   scripts/molecule.sh                   every scenario
#   scripts/molecule.sh -s three_nodes    one scenario (any `molecule test` arguments)
#
# Molecule is run from extensions/ as it expects for a collection; the checkout
# is the spdk.storage collection through .cache/collections.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"

shopt -s nullglob
scenarios=("$ROOT"/extensions/molecule/*/molecule.yml)
if [ "${#scenarios[@]}" -eq 0 ]; then
    echo "molecule: no scenarios in extensions/molecule yet, skipped"
    exit 0
fi

"$ROOT/scripts/collection_link.sh"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections"
cd "$ROOT/extensions"
if [ "$#" -gt 0 ]; then
    exec molecule test "$@"          # e.g. -s three_nodes
fi
exclude=()
if [ "$(id -u)" -ne 0 ]; then
    echo "molecule: three_nodes_ssh left out (scripts/multihost.sh needs root)"
    exclude=(--exclude three_nodes_ssh)
fi
exec molecule test --all "${exclude[@]}"

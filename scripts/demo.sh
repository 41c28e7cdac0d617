#!/usr/bin/env bash
# Run playbooks/demo.yml (the collection's main job on emulated SPDK nodes).
#
# The playbook owns its set-up (starting emulated targets, cleaning up); this
# script only provides the environment: the development venv's tools and the
# checkout visible as the spdk.storage collection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PLAYBOOK="$ROOT/playbooks/demo.yml"
INVENTORY="${DEMO_INVENTORY:-$ROOT/playbooks/inventory/demo.yml}"

if [ ! -f "$PLAYBOOK" ]; then
    echo "demo: playbooks/demo.yml does not exist yet; it comes with the demo playbook work (see README)." >&2
    exit 1
fi

"$ROOT/scripts/collection_link.sh"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections"
inventory_args=(-i "localhost," -c local)
if [ -f "$INVENTORY" ]; then
    inventory_args=(-i "$INVENTORY")
fi
cd "$ROOT"
exec ansible-playbook "${inventory_args[@]}" \
    -e "ansible_python_interpreter=$VENV/bin/python" "$PLAYBOOK" "$@"

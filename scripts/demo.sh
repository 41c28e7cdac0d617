#!/usr/bin/env bash
# Run playbooks/demo.yml on three emulated SPDK nodes (inventories/emulated): a replicated
# volume survives a node crash, its stale replica is rebuilt, every replica is checked.
#
# The playbook owns its set-up (starting emulated targets, cleaning up); this script only
# provides the environment: the development venv's tools and the checkout visible as the
# spdk.storage collection. Extra arguments go to ansible-playbook (e.g. -e demo_keep=true).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PLAYBOOK="$ROOT/playbooks/demo.yml"
INVENTORY="${DEMO_INVENTORY:-$ROOT/inventories/emulated/hosts.yml}"

"$ROOT/scripts/collection_link.sh"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.cache/collections"
# Each task's header line says what happens; skipped hosts would only add noise.
export ANSIBLE_DISPLAY_SKIPPED_HOSTS="${ANSIBLE_DISPLAY_SKIPPED_HOSTS:-false}"
cd "$ROOT"
start=$SECONDS
ansible-playbook -i "$INVENTORY" -e "ansible_python_interpreter=$VENV/bin/python" "$PLAYBOOK" "$@"
echo "demo: finished in $((SECONDS - start)) s"

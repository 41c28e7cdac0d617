#!/usr/bin/env bash
# Build the collection artifact, install it into a scratch path and render
# the documentation of every module and role from the installed copy.
#
# Proves that galaxy.yml builds, that build_ignore keeps the artifact clean
# and that `ansible-doc` renders what users will read.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
OUT="$ROOT/.cache/build"
INSTALL="$OUT/collections"
DOCS="$OUT/docs"
export PATH="$VENV/bin:$PATH"

rm -rf "$OUT"
mkdir -p "$OUT" "$DOCS"
cd "$ROOT"
ansible-galaxy collection build --force --output-path "$OUT" .
artifact=("$OUT"/spdk-storage-*.tar.gz)
ansible-galaxy collection install --force -p "$INSTALL" "${artifact[0]}" 2>&1 \
    | grep -v "is not part of the configured Ansible collections path" || true
installed="$INSTALL/ansible_collections/spdk/storage"
test -f "$installed/MANIFEST.json" || { echo "build: install into $INSTALL failed" >&2; exit 1; }

# Only the installed artifact may be found, never the checkout.
export ANSIBLE_COLLECTIONS_PATH="$INSTALL"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_NOCOLOR=1
rendered=0
for module in "$installed"/plugins/modules/*.py; do
    [ -e "$module" ] || continue
    name="$(basename "$module" .py)"
    [ "$name" = "__init__" ] && continue
    ansible-doc "spdk.storage.$name" >"$DOCS/$name.txt"
    rendered=$((rendered + 1))
done
for spec in "$installed"/roles/*/meta/argument_specs.yml; do
    [ -e "$spec" ] || continue
    role="$(basename "$(dirname "$(dirname "$spec")")")"
    ansible-doc -t role "spdk.storage.$role" >"$DOCS/role-$role.txt"
    rendered=$((rendered + 1))
done
echo "build: ${artifact[0]#"$ROOT"/} installed; ansible-doc rendered $rendered module/role page(s) into ${DOCS#"$ROOT"/}"

#!/usr/bin/env bash
# Build the collection artifact, install it into a scratch path and render
# the documentation of every module and role from the installed copy.
#
# Proves that galaxy.yml builds, that build_ignore keeps the artifact clean
# and that `ansible-doc` renders what users will read.
#
# Everything happens in a private temporary directory (removed on exit), so
# several builds at once do not delete each other's files; only the finished
# artifact and the rendered pages are published to .cache/build, under a lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
OUT="$ROOT/.cache/build"
mkdir -p "$ROOT/.cache"
WORK="$(mktemp -d "$ROOT/.cache/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
INSTALL="$WORK/collections"
DOCS="$WORK/docs"
export PATH="$VENV/bin:$PATH"

# Replaces the previous artifacts and pages in OUT by this build's; the
# moves are renames within .cache, so the lock is held for an instant.
publish() {
    mkdir -p "$OUT"
    (
        flock 9
        rm -rf "$OUT"/spdk-storage-*.tar.gz "$OUT/docs" "$OUT/collections"
        mv "$WORK"/spdk-storage-*.tar.gz "$DOCS" "$OUT/"
    ) 9>"$OUT/.lock"
}

mkdir -p "$DOCS"
cd "$ROOT"
ansible-galaxy collection build --force --output-path "$WORK" .
artifact=("$WORK"/spdk-storage-*.tar.gz)
# The emulator and the tests stay out of what users install.
if tar -tzf "${artifact[0]}" | grep -q "^tests/"; then
    echo "build: the artifact holds tests/ (galaxy.yml build_ignore)" >&2
    exit 1
fi
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
publish
echo "build: ${OUT#"$ROOT"/}/$(basename "${artifact[0]}") built and installed;" \
    "ansible-doc rendered $rendered module/role page(s) into ${OUT#"$ROOT"/}/docs"

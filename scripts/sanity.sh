#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection.
#
# ansible-test only works inside .../ansible_collections/<namespace>/<name>,
# and it must see a real tree (no symlinks) without the development venv or
# caches, so the files git knows about (tracked, plus untracked files that
# are not ignored) are copied to a private temporary tree,
# .cache/sanity.XXXXXX/ansible_collections/spdk/storage, removed on exit: each
# run has its own copy, so several runs at once do not delete each other's
# working directory. The copy gets its own (empty) git repository: ansible-test
# lists files with git from the nearest .git upwards, and the checkout's own
# .git ignores .cache.
#
# Usage: scripts/sanity.sh [extra ansible-test sanity arguments]
# Environment: VENV (default .venv), SANITY_PYTHON (default: the venv's Python
# version, 3.11 as the Makefile creates it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
SANITY_PYTHON="${SANITY_PYTHON:-$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}"
mkdir -p "$ROOT/.cache"
SCRATCH="$(mktemp -d "$ROOT/.cache/sanity.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
TREE="$SCRATCH/ansible_collections/spdk/storage"

# Lists the collection's files, relative to ROOT, NUL-separated.
list_files() {
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -z --cached --others --exclude-standard
    else
        (cd "$ROOT" && find . \( -name .venv -o -name .cache -o -name .git -o -name __pycache__ \
            -o -name .pytest_cache -o -path ./tests/output \) -prune -o -type f -print0)
    fi
}

# Copies the listed files that exist (a file deleted but not yet staged is skipped).
copy_tree() {
    mkdir -p "$TREE"
    list_files | (cd "$ROOT" && while IFS= read -r -d '' file; do
        [ -f "$file" ] && printf '%s\0' "$file"
    done) | tar -C "$ROOT" --null -T - -cf - | tar -C "$TREE" -xf -
    git -C "$TREE" init --quiet
}

copy_tree
"$VENV/bin/python" "$ROOT/scripts/ensure_get_pip.py"
cd "$TREE"
# ansible-test finds its sibling tools (ansible-doc, ...) through PATH.
export PATH="$VENV/bin:$PATH"
# Not exec: the EXIT trap removes the tree once ansible-test is done.
ansible-test sanity --local --python "$SANITY_PYTHON" --color=no "$@"

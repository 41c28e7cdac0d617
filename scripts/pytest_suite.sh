#!/usr/bin/env bash
# Run one pytest suite (a directory under tests/) with the development venv.
#
# A suite that does not exist yet is reported and skipped, so `make test`
# works while the collection grows; everything else is pytest's own verdict.
#
# Usage: scripts/pytest_suite.sh tests/unit [pytest arguments]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
SUITE="$1"
shift

cd "$ROOT"
if [ ! -d "$SUITE" ]; then
    echo "pytest_suite: $SUITE does not exist yet, skipped"
    exit 0
fi
status=0
"$VENV/bin/python" -m pytest "$SUITE" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected": the suite has only helpers so far.
    echo "pytest_suite: $SUITE has no tests yet, skipped"
    exit 0
fi
exit "$status"

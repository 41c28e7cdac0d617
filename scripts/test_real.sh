#!/usr/bin/env bash
# The real-target stage: the integration suites, Molecule's three_nodes scenario and the demo against
# real SPDK (SPDK_TGT / SPDK_DD, or ../shared/spdk next to the checkout; see scripts/real_spdk.sh).
#
#   scripts/test_real.sh            the whole set
#   scripts/test_real.sh ci         the CI subset (REAL_CI_TESTS below, Molecule, demo)
#
# Every real reactor spins a core, and this machine class has two: the suites run one test at a
# time (no xdist) and each test starts at most three targets.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
MODE="${1:-all}"

# The subset CI runs: every playbook and every module family once on real SPDK, within 30 minutes
# (measured here: about 19 minutes with the integration tests, Molecule three_nodes and the demo, before
# the rebuild's fault campaign sample was added: about 4.5 more, and its target-death sample: about 1.5 more), plus the
# host I/O tool on both kinds of target. The playbooks over SSH on the multi-host topology (8 minutes on
# real targets) run in the whole set only: the CI stage would pass 30 minutes with them.
REAL_CI_TESTS=(
    tests/integration/test_foundation_emulated.py
    tests/integration/test_engine_emulated.py
    tests/integration/test_engine_snapshot_emulated.py
    tests/integration/test_engine_snapshot_safety.py
    tests/integration/test_volume_lock.py
    tests/integration/test_fault_campaign.py
    tests/integration/test_fault_campaign_rebuild.py
    "tests/integration/test_recovery_emulated.py::test_a_killed_replica_never_serves_stale_blocks_and_ends_current[engine_node_first]"
    tests/integration/test_rebuild_emulated.py::test_offline_rebuild_copies_the_chain_thin_and_recreates_the_raid_without_a_copy
    tests/integration/test_rebuild_emulated.py::test_online_rebuild_keeps_serving_copies_the_snapshots_and_lets_raid1_rebuild_the_head
    tests/integration/test_rebuild_emulated.py::test_a_destination_killed_mid_copy_then_a_second_run_converges_and_leaves_nothing_behind
    tests/integration/test_rebuild_emulated.py::test_the_rebuild_journal_keeps_a_stale_replica_list_from_undoing_a_rebuild
    tests/integration/test_rebuild_emulated.py::test_an_engine_snapshot_between_the_copy_and_the_join_is_refused_so_the_join_can_finish
    tests/integration/test_rebuild_emulated.py::test_a_destination_disk_too_small_for_the_new_replica_is_refused_before_anything_changes
    tests/integration/test_rebuild_playbook_emulated.py
    tests/integration/test_delete_volume_playbook_emulated.py
    tests/integration/test_role_spdk_tgt.py::test_started_twice_changes_nothing_the_second_time_nor_in_check_mode
    tests/integration/test_role_spdk_tgt.py::test_a_killed_target_is_started_again_and_the_run_says_it_started_it
    tests/emulator/test_host_io_tool.py
)

found="$("$ROOT/scripts/real_spdk.sh")"
SPDK_TGT="$(sed -n 1p <<<"$found")"
SPDK_DD="$(sed -n 2p <<<"$found")"
export SPDK_TGT SPDK_DD
echo "test_real: SPDK_TGT=$SPDK_TGT SPDK_DD=$SPDK_DD"
cd "$ROOT"
"$ROOT/scripts/collection_link.sh"

start=$SECONDS
if [ "$MODE" = ci ]; then
    "$VENV/bin/python" -m pytest -p no:xdist "${REAL_CI_TESTS[@]}"
else
    "$VENV/bin/python" -m pytest -p no:xdist tests/integration tests/emulator/test_host_io_tool.py tests/multihost
fi
echo "test_real: integration suites in $((SECONDS - start)) s"

step=$SECONDS
"$ROOT/scripts/molecule.sh" -s three_nodes
echo "test_real: molecule three_nodes in $((SECONDS - step)) s"

step=$SECONDS
"$ROOT/scripts/demo.sh"
echo "test_real: demo in $((SECONDS - step)) s"
echo "test_real: finished in $((SECONDS - start)) s"

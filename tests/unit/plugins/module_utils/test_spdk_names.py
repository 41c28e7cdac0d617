"""Name rules and size parsing: every bad input is refused before any RPC."""
import pytest

from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import (
    MAX_LVOL_NAME,
    NQN_PREFIX,
    SpdkInputError,
    engine_nqn,
    human_size,
    parse_size,
    replica_nqn,
    round_up,
    snapshot_lvol_name,
    split_snapshot_lvol_name,
    validate_lvol_name,
)


@pytest.mark.parametrize("name", ["disk1", "vol1-r-a1b2c3d4", "a", "_x", "A.b_c-9", "x" * MAX_LVOL_NAME])
def test_valid_names_are_returned_unchanged(name):
    assert validate_lvol_name("replica", name) == name


@pytest.mark.parametrize("name, reason", [
    ("", "non-empty"),
    (None, "non-empty"),
    ("x" * (MAX_LVOL_NAME + 1), "at most 63"),
    ("disk1/with-slash", "may only contain"),
    ("-leading-dash", "must not start"),
    (".hidden", "must not start"),
    ("with space", "may only contain"),
    ("vol1-rebuild", "reserved"),
    ("vol1-tmp", "reserved"),
])
def test_invalid_names_are_refused_with_the_reason(name, reason):
    with pytest.raises(SpdkInputError, match=reason):
        validate_lvol_name("disk", name)


def test_the_message_names_the_kind_of_object():
    with pytest.raises(SpdkInputError, match="^engine name"):
        validate_lvol_name("engine", "bad/name")


def test_a_replica_name_may_not_contain_the_snapshot_infix():
    with pytest.raises(SpdkInputError, match="reserved for snapshot"):
        validate_lvol_name("replica", "vol1-snap-x")
    assert validate_lvol_name("disk", "vol1-snap-x") == "vol1-snap-x"


def test_snapshot_lvol_name_joins_replica_and_snapshot():
    assert snapshot_lvol_name("vol1", "daily") == "vol1-snap-daily"
    assert split_snapshot_lvol_name("vol1-snap-daily") == ("vol1", "daily")
    assert split_snapshot_lvol_name("vol1") is None


def test_a_snapshot_whose_lvol_name_would_exceed_the_limit_is_refused():
    replica = "r" * 50
    with pytest.raises(SpdkInputError, match="shorten the replica or snapshot name"):
        snapshot_lvol_name(replica, "s" * 8)  # 50 + 6 + 8 = 64
    assert len(snapshot_lvol_name(replica, "s" * 7)) == MAX_LVOL_NAME


def test_nqns_use_the_collection_prefix():
    assert replica_nqn("vol1-r0") == NQN_PREFIX + "vol1-r0"
    assert engine_nqn("vol1") == "nqn.2026-01.io.spdk-storage:vol1"
    with pytest.raises(SpdkInputError):
        replica_nqn("bad name")


@pytest.mark.parametrize("text, size", [
    (4096, 4096),
    ("4096", 4096),
    ("512MiB", 512 << 20),
    ("10GiB", 10 << 30),
    ("1G", 1 << 30),
    ("1g", 1 << 30),
    ("2 TiB", 2 << 40),
    ("1.5GiB", 1536 << 20),
    ("4k", 4096),
    ("100B", 100),
])
def test_sizes_accept_bytes_and_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text, reason", [
    ("0", "larger than zero"),
    (0, "larger than zero"),
    (-1, "larger than zero"),
    ("-1GiB", "not a size"),
    ("lots", "not a size"),
    ("", "not a size"),
    ("10GB", "decimal unit"),
    ("10 parsecs", "unknown unit"),
    ("1.3B", "whole number of bytes"),
    (True, "must be a size"),
    (1.5, "must be a size"),
])
def test_bad_sizes_are_refused(text, reason):
    with pytest.raises(SpdkInputError, match=reason):
        parse_size(text, "cluster_size")


def test_size_errors_name_the_option():
    with pytest.raises(SpdkInputError, match="^cluster_size 'big'"):
        parse_size("big", "cluster_size")


def test_round_up_goes_to_the_next_cluster():
    mib = 1 << 20
    assert round_up(1, mib) == mib
    assert round_up(mib, mib) == mib
    assert round_up(mib + 1, mib) == 2 * mib


def test_human_size_is_exact():
    assert human_size(1 << 30) == "1GiB"
    assert human_size(1536 << 20) == "1536MiB"
    assert human_size(4097) == "4097B"
    assert human_size(0) == "0B"

"""SpdkError: one base for every refusal and failure, reported the same way by every module."""
import pytest

from ansible_collections.spdk.storage.plugins.module_utils import spdk_engine_snapshot as es
from ansible_collections.spdk.storage.plugins.module_utils import spdk_record as rec
from ansible_collections.spdk.storage.plugins.module_utils import spdk_replica_ops as ops
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_names import SpdkInputError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_relay import RelayError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkConnectionError, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_disk_request import DiskRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_members import EngineRpcFailure
from ansible_collections.spdk.storage.plugins.module_utils.spdk_engine_request import EngineRefusal
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rebuild_names import RebuildError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_target_plan import TargetConfigError


class Failed(Exception):
    pass


class FakeModule:
    def fail_json(self, msg, **result):
        raise Failed(dict(result, msg=msg))


def failure(err, **result):
    with pytest.raises(Failed) as caught:
        err.fail(FakeModule(), **result)
    return caught.value.args[0]


@pytest.mark.parametrize("cls", [DiskRefusal, ops.SpdkRefusal, EngineRefusal, es.EngineSnapshotRefusal,
                                 RebuildError, TargetConfigError, rec.RecordError, SpdkInputError, RelayError])
def test_every_refusal_derives_from_spdkerror_and_fails_with_its_message_alone(cls):
    err = cls("refused: nothing was changed")
    assert isinstance(err, SpdkError) and str(err) == "refused: nothing was changed"
    assert failure(err, actions=[]) == {"msg": "refused: nothing was changed", "actions": []}


def test_an_input_error_is_still_a_valueerror():
    assert issubclass(SpdkInputError, ValueError)


def test_the_base_carries_method_code_hint_and_result_fields():
    err = SpdkError("the replica did not answer", method="bdev_get_bdevs", code=-19, hint="start its target",
                    node="n2")
    assert failure(err, rpc_calls=3) == {
        "msg": "the replica did not answer: start its target.", "rpc_method": "bdev_get_bdevs", "rpc_error_code": -19,
        "node": "n2", "rpc_calls": 3}
    assert failure(err, hint="another hint")["msg"] == "the replica did not answer: another hint."


def test_an_rpc_error_reports_method_code_and_message_with_the_generic_hint():
    err = SpdkRpcError("bdev_lvol_create", -17, "File exists")
    assert isinstance(err, SpdkError)
    assert failure(err) == {
        "msg": "SPDK RPC bdev_lvol_create failed with error -17 (File exists): an object with that name already "
               "exists on the target.",
        "rpc_method": "bdev_lvol_create", "rpc_error_code": -17, "rpc_error_message": "File exists"}


def test_a_connection_error_keeps_its_own_text():
    err = SpdkConnectionError("bdev_get_bdevs", None, "cannot connect to /x.sock: Connection refused")
    assert failure(err)["msg"] == "bdev_get_bdevs: cannot connect to /x.sock: Connection refused."


def test_an_engine_rpc_failure_is_reported_as_its_rpc_error_with_its_hint():
    err = EngineRpcFailure(SpdkRpcError("bdev_raid_create", -17, "File exists"), "a member carries a superblock")
    result = failure(err)
    assert result["msg"] == ("SPDK RPC bdev_raid_create failed with error -17 (File exists): a member carries a "
                             "superblock.")
    assert (result["rpc_method"], result["rpc_error_code"]) == ("bdev_raid_create", -17)


def test_a_replica_failure_carries_the_rpc_method_and_code():
    err = es.ReplicaFailed("vol-r2", SpdkRpcError("bdev_lvol_snapshot", -17, "File exists"), "snapshot")
    result = failure(err, failed_replicas=["vol-r2"])
    assert result["msg"] == "snapshot on replica vol-r2 failed: bdev_lvol_snapshot failed: SPDK error -17 (File exists)"
    assert (result["rpc_method"], result["rpc_error_code"], result["rpc_error_message"]) == (
        "bdev_lvol_snapshot", -17, "File exists")
    timeout = es.ReplicaFailed("vol-r2", "quiesce_timeout (10s) reached", "snapshot")
    assert "rpc_method" not in failure(timeout)


def test_a_relay_error_reports_its_details():
    err = RelayError("cannot start the SSH relay", node="n1", argv=["ssh", "n1"], stderr="Connection refused")
    assert err.details == {"node": "n1", "ssh_argv": ["ssh", "n1"], "ssh_stderr": "Connection refused"}
    assert failure(err, relays=[]) == dict(err.details, msg="cannot start the SSH relay", relays=[])

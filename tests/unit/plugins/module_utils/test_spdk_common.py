"""SpdkModule: shared options, the client it builds, and how every failure becomes fail_json."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.spdk.storage.plugins.doc_fragments.spdk import ModuleDocFragment
from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import (
    REPLICA_OPTIONS,
    SPDK_COMMON_ARGS,
    SpdkModule,
    default_node_name,
    engine_node_options,
    engine_node_request,
    replicas_option,
    run_module,
    spdk_main,
)
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError, explain_connect_failure
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import (
    SpdkCapabilityError,
    SpdkConnectionError,
    SpdkMissingLibraryError,
    SpdkRpcClient,
    SpdkRpcError,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "spdk_v26_05_answers.json")
with open(FIXTURES) as _handle:
    REAL = json.load(_handle)["exchanges"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


class Ended(Exception):
    def __init__(self, result):
        super(Ended, self).__init__(result)
        self.result = result


@pytest.fixture(autouse=True)
def ending(monkeypatch):
    """exit_json/fail_json raise Ended with the result instead of printing and exiting."""
    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise Ended(kwargs)

    def fail_json(self, msg, **kwargs):
        raise Ended(dict(kwargs, msg=msg, failed=True))

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    for name in ("SPDK_RPC_SOCKET", "SPDK_RPC_TIMEOUT", "SPDK_RPC_USERNAME", "SPDK_RPC_PASSWORD",
                 "SPDK_RPC_VALIDATE_CERTS"):
        monkeypatch.delenv(name, raising=False)


def make_module(args=None, check_mode=False, **kwargs):
    module_args = dict(args or {}, _ansible_check_mode=check_mode)
    with patch_module_args(module_args):
        return SpdkModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True, **kwargs)


def scripted(monkeypatch, answers):
    """Replace the wire with ``answers`` ({method: result or SpdkRpcError-like error dict})."""
    def send(self, requests):
        replies = []
        for request in requests:
            reply = answers[request["method"]]
            key = "error" if isinstance(reply, dict) and "code" in reply else "result"
            replies.append({"jsonrpc": "2.0", "id": request["id"], key: reply})
        return replies
    monkeypatch.setattr(SpdkRpcClient, "_send", send)


def failure_of(action):
    with pytest.raises(Ended) as info:
        action()
    return info.value.result


# -- options ------------------------------------------------------------------------------

def test_module_options_are_merged_with_the_connection_options():
    module = make_module({"name": "disk1"})
    assert module.params == {"name": "disk1", "rpc_socket": "/var/tmp/spdk.sock", "rpc_timeout": 60.0,
                             "rpc_username": None, "rpc_password": None, "rpc_validate_certs": True}
    assert "name" not in SPDK_COMMON_ARGS  # the shared spec is not modified


def test_environment_variables_fill_unset_connection_options(monkeypatch):
    monkeypatch.setenv("SPDK_RPC_SOCKET", "/run/spdk/node2.sock")
    monkeypatch.setenv("SPDK_RPC_TIMEOUT", "5")
    monkeypatch.setenv("SPDK_RPC_PASSWORD", "hunter2")
    module = make_module()
    assert (module.params["rpc_socket"], module.params["rpc_timeout"]) == ("/run/spdk/node2.sock", 5.0)
    assert "hunter2" in module.no_log_values
    assert make_module({"rpc_socket": "/explicit.sock"}).params["rpc_socket"] == "/explicit.sock"


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_timeout_that_is_not_positive_is_refused(timeout):
    result = failure_of(lambda: make_module({"rpc_timeout": timeout}))
    assert result["msg"] == "rpc_timeout must be more than 0 seconds, got %s" % float(timeout)


def test_the_client_is_built_once_from_the_options_with_check_mode():
    module = make_module({"rpc_socket": "10.0.0.2:5260", "rpc_timeout": 7}, check_mode=True)
    client = module.client
    assert (client.address, client.timeout, client.check_mode) == ("10.0.0.2:5260", 7.0, True)
    assert module.client is client


def test_connect_builds_a_client_for_another_node_with_the_same_timeout_and_check_mode():
    module = make_module({"rpc_socket": "/node1.sock", "rpc_timeout": 7}, check_mode=True)
    other = module.connect("192.0.2.12:5260")
    assert (other.address, other.timeout, other.check_mode) == ("192.0.2.12:5260", 7.0, True)
    assert other is not module.client


def test_the_replicas_option_is_a_fresh_list_of_replica_entries_with_the_module_s_own_requirement():
    option = replicas_option(required=True)
    assert option == {"type": "list", "elements": "dict", "required": True, "options": REPLICA_OPTIONS}
    option["options"]["name"]["required"] = False
    assert REPLICA_OPTIONS["name"]["required"] is True and "required" not in replicas_option()


def test_the_replicas_doc_fragment_documents_exactly_the_replica_entry_options():
    import yaml
    documented = yaml.safe_load(ModuleDocFragment.REPLICAS)["options"]["replicas"]["suboptions"]
    assert {name: (doc["type"], doc.get("required", False)) for name, doc in documented.items()} == {
        name: (spec["type"], spec.get("required", False)) for name, spec in REPLICA_OPTIONS.items()}


def test_the_node_name_defaults_to_the_short_host_name(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "node7.example.net")
    assert default_node_name() == "node7"
    assert default_node_name("node1") == "node1"


# -- ending a run -------------------------------------------------------------------------------

def test_exit_with_reports_changed_diff_result_and_rpc_count(monkeypatch):
    scripted(monkeypatch, {"bdev_lvol_get_lvstores": [], "bdev_lvol_create_lvstore": "7a54ac3b"})
    module = make_module()
    module.client.call("bdev_lvol_get_lvstores")
    module.client.call("bdev_lvol_create_lvstore", {"bdev_name": "disk0", "lvs_name": "lvs0"})
    result = failure_of(lambda: module.exit_with(True, diff={"before": {}, "after": {"name": "lvs0"}}, disk={"x": 1}))
    assert result == {"changed": True, "diff": {"before": {}, "after": {"name": "lvs0"}}, "disk": {"x": 1},
                      "rpc_calls": 2}


def test_check_mode_counts_only_the_calls_that_were_sent(monkeypatch):
    scripted(monkeypatch, {"bdev_lvol_get_lvstores": []})
    module = make_module(check_mode=True)
    module.client.call("bdev_lvol_get_lvstores")
    module.client.call("bdev_lvol_create_lvstore", {"bdev_name": "disk0", "lvs_name": "lvs0"})
    assert failure_of(lambda: module.exit_with(True))["rpc_calls"] == 1


def test_fail_rpc_names_method_code_message_and_what_to_do():
    exchange = REAL["lvol_exists"]
    err = SpdkRpcError("bdev_lvol_create", exchange["response"]["error"]["code"],
                       exchange["response"]["error"]["message"], params=exchange["request"]["params"])
    result = failure_of(lambda: make_module().fail_rpc(err))
    assert result["msg"] == ("SPDK RPC bdev_lvol_create failed with error -17 (File exists): "
                             "an object with that name already exists on the target.")
    assert (result["rpc_method"], result["rpc_error_code"], result["rpc_error_message"]) == (
        "bdev_lvol_create", -17, "File exists")
    assert result["rpc_calls"] == 0
    assert "Traceback" not in json.dumps(result)


def test_a_hint_from_the_module_replaces_the_generic_one():
    err = SpdkRpcError("bdev_lvol_delete_lvstore", -19, "No such device")
    result = failure_of(lambda: make_module().fail_rpc(err, hint="the disk was already detached; run spdk_disk again"))
    assert result["msg"] == ("SPDK RPC bdev_lvol_delete_lvstore failed with error -19 (No such device): "
                             "the disk was already detached; run spdk_disk again.")


def test_an_attach_answered_minus_5_lists_the_likely_causes():
    exchange = REAL["attach_closed_port"]
    error = exchange["response"]["error"]
    err = SpdkRpcError("bdev_nvme_attach_controller", error["code"], error["message"],
                       params=exchange["request"]["params"])
    msg = failure_of(lambda: make_module().fail_rpc(err))["msg"]
    assert msg.startswith("SPDK RPC bdev_nvme_attach_controller failed with error -5 (Input/output error): ")
    for cause in ("nqn.2023-01.io.spdk-lab:nope does not allow the host", "DH-CHAP key",
                  "nothing reachable listens on 127.0.0.1:4999"):
        assert cause in msg


def test_explain_connect_failure_names_the_host_nqn_when_given():
    text = explain_connect_failure({"traddr": "10.0.0.3", "trsvcid": "4421", "subnqn": "nqn.x:vol1-r1",
                                    "hostnqn": "nqn.2026-01.io.spdk-storage:host-node1"})
    assert "nqn.x:vol1-r1 does not allow the host nqn.2026-01.io.spdk-storage:host-node1" in text
    assert "10.0.0.3:4421" in text


def test_an_unreachable_target_says_what_to_check(tmp_path):
    client = SpdkRpcClient(str(tmp_path / "absent.sock"), timeout=0.3, connect_retries=1)
    with pytest.raises(SpdkConnectionError) as info:
        client.call("bdev_get_bdevs")
    msg = failure_of(lambda: make_module().fail_rpc(info.value))["msg"]
    assert msg.startswith("bdev_get_bdevs: cannot connect to %s" % (tmp_path / "absent.sock"))
    assert msg.endswith("is spdk_tgt running? is rpc_socket right?")


def test_a_missing_capability_is_reported_as_such():
    err = SpdkCapabilityError("bdev_lvol_shallow_copy", None,
                              "this target (SPDK v26.05) has no RPC bdev_lvol_shallow_copy, needed for fast rebuild")
    assert failure_of(lambda: make_module().fail_rpc(err))["msg"] == (
        "this target (SPDK v26.05) has no RPC bdev_lvol_shallow_copy, needed for fast rebuild.")


def test_a_missing_http_library_uses_ansibles_wording():
    err = SpdkMissingLibraryError("connect", "requests", "Traceback ...ImportError")
    result = failure_of(lambda: make_module().fail_rpc(err))
    assert "Failed to import the required Python library (requests)" in result["msg"]
    assert result["exception"] == "Traceback ...ImportError"


def test_secrets_stay_out_of_the_failure(monkeypatch):
    secret = "DHHC-1:00:bm90LWZvci1sb2dz:"
    scripted(monkeypatch, {"bdev_nvme_attach_controller": {"code": -5, "message": "bad key %s" % secret}})
    module = make_module()
    with pytest.raises(SpdkRpcError) as info:
        module.client.call("bdev_nvme_attach_controller", {"name": "r1", "traddr": "127.0.0.1", "trsvcid": "4421",
                                                           "subnqn": "nqn.x:r1", "dhchap_key": secret})
    result = failure_of(lambda: module.fail_rpc(info.value))
    assert secret not in json.dumps(result)


# -- guarded execution -------------------------------------------------------------------------

def test_spdk_main_turns_an_escaped_rpc_error_into_fail_rpc():
    @spdk_main
    def main():
        make_module()
        raise SpdkRpcError("bdev_lvol_resize", -19, "No such device")
    result = failure_of(main)
    assert result["msg"].startswith("SPDK RPC bdev_lvol_resize failed with error -19 (No such device)")
    assert (result["rpc_method"], result["rpc_error_code"]) == ("bdev_lvol_resize", -19)


def test_spdk_main_turns_an_escaped_refusal_into_its_message():
    @spdk_main
    def main():
        make_module()
        raise SpdkError("refused: nothing was changed", node="n1")
    assert failure_of(main) == {"msg": "refused: nothing was changed", "node": "n1", "rpc_calls": 0, "failed": True}


def test_spdk_main_turns_a_bug_into_a_clear_failure_without_traceback_in_the_message():
    @spdk_main
    def main():
        make_module()
        return {}["replicas"]
    result = failure_of(main)
    assert "stopped on an unexpected error (KeyError: 'replicas')" in result["msg"]
    assert "Traceback" not in result["msg"]
    assert "KeyError" in result["exception"]  # shown by Ansible only with -vvv


def test_spdk_main_lets_an_exit_through():
    @spdk_main
    def main():
        make_module().exit_with(False, found=True)
    assert failure_of(main) == {"changed": False, "found": True, "rpc_calls": 0}


def test_spdk_main_guards_a_whole_main_function():
    @spdk_main
    def main():
        module = make_module()
        return module.params["no-such-option"]
    assert "unexpected error (KeyError: 'no-such-option')" in failure_of(main)["msg"]


def test_spdk_main_re_raises_what_happens_before_the_module_exists():
    @spdk_main
    def main():
        raise ValueError("before SpdkModule")
    with pytest.raises(ValueError, match="before SpdkModule"):
        main()


def test_a_real_module_process_prints_json_and_no_traceback(tmp_path):
    """End to end: the module's stdout is one JSON failure, stderr is empty."""
    module_file = tmp_path / "spdk_probe.py"
    module_file.write_text(textwrap.dedent("""
        from ansible_collections.spdk.storage.plugins.module_utils.spdk_common import SpdkModule, spdk_main

        @spdk_main
        def main():
            module = SpdkModule(argument_spec={}, supports_check_mode=True)
            module.client.call("bdev_get_bdevs")

        main()
    """))
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "rpc_socket": str(tmp_path / "absent.sock"), "rpc_timeout": 0.3}}))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, ".cache", "collections"))
    done = subprocess.run([sys.executable, str(module_file), str(args)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["failed"] is True
    assert "is spdk_tgt running? is rpc_socket right?" in result["msg"]
    assert result["rpc_method"] == "bdev_get_bdevs"


def test_spdk_main_leaves_an_error_raised_while_building_the_module_alone(monkeypatch):
    # ansible-test validate-modules reads the argument spec by making AnsibleModule.__init__ raise.
    class SpecCaptured(RuntimeError):
        pass

    def capture(self, *args, **kwargs):
        raise SpecCaptured(kwargs["argument_spec"])
    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)

    @spdk_main
    def main():
        SpdkModule(argument_spec=dict(name=dict(type="str")))
    with pytest.raises(SpecCaptured) as info:
        main()
    assert set(info.value.args[0]) == set(SPDK_COMMON_ARGS) | {"name"}


# -- every module's main(): run_module ---------------------------------------------------------

def module_run(run, args=None, **options):
    """The result of ``run_module(run, ...)`` with a ``name`` option (failed ones carry ``failed``)."""
    with patch_module_args(dict(args or {})):
        return failure_of(lambda: run_module(run, argument_spec=dict(name=dict(type="str")), **options))


def test_run_module_ends_the_run_with_what_run_returns():
    assert module_run(lambda module: dict(changed=True, name=module.params["name"]), {"name": "vol1"}) == {
        "changed": True, "name": "vol1", "rpc_calls": 0}


def test_run_module_fails_an_spdkerror_with_its_fields():
    def run(module):
        raise SpdkRpcError("bdev_lvol_resize", -19, "No such device")
    result = module_run(run)
    assert (result["failed"], result["rpc_method"], result["rpc_error_code"]) == (True, "bdev_lvol_resize", -19)


def test_run_module_names_the_module_of_run_in_the_message_of_a_bug():
    def run(module):
        return {}["replicas"]
    result = module_run(run)
    assert result["msg"].startswith("test_spdk_common stopped on an unexpected error (KeyError: 'replicas'); no "
                                    "further RPC was sent. This is a bug in spdk.storage")


def test_without_connection_a_module_has_only_its_own_options_no_client_and_no_rpc_calls():
    seen = {}

    def run(module):
        seen["params"] = dict(module.params)
        with pytest.raises(AttributeError, match="no connection options"):
            assert module.client is None
        return dict(changed=False)
    assert module_run(run, {"name": "n1"}, connection=False) == {"changed": False}
    assert seen["params"] == {"name": "n1"}


def test_without_connection_a_bug_does_not_speak_of_rpcs():
    def run(module):
        return {}["nodes"]
    result = module_run(run, connection=False)
    assert result["msg"].startswith("test_spdk_common stopped on an unexpected error (KeyError: 'nodes'). This is a "
                                    "bug in spdk.storage")
    assert "rpc_calls" not in result


def test_fields_to_report_on_failure_join_every_failure_unless_it_sets_them():
    progress = []

    def run(module):
        module.report_on_failure(lambda: {"relays": list(progress), "node": "n0"})
        progress.append("n1")
        raise SpdkError("cannot reach n2", node="n2")
    result = module_run(run, connection=False)
    assert result == {"msg": "cannot reach n2", "node": "n2", "relays": ["n1"], "failed": True}


# -- the options of a run on an engine node ------------------------------------------------------

def test_engine_node_options_add_the_node_s_options_to_the_module_s():
    spec = engine_node_options({"wait": dict(type="bool", default=True)}, name=dict(type="str", required=True))
    assert set(spec) == {"name", "wait", "node_name", "host_nqn", "listen_address", "port_range", "record_dir",
                         "ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec"}
    assert spec["port_range"]["default"] == "4420-4499" and spec["record_dir"]["default"] == "/var/lib/spdk-storage"
    spec["ctrlr_loss_timeout_sec"]["default"] = 99     # Ansible fills defaults in place: each call is fresh
    assert engine_node_options({})["ctrlr_loss_timeout_sec"]["default"] == 10


def test_engine_node_request_checks_the_wait_options_first_and_fills_the_defaults():
    params = dict(wait_timeout=300.0, wait_sleep=1.0, node_name="node1", host_nqn=None, listen_address="192.0.2.11",
                  port_range="4420-4499", ctrlr_loss_timeout_sec=None, reconnect_delay_sec=None,
                  fast_io_fail_timeout_sec=None)
    assert engine_node_request(params) == dict(
        node_name="node1", host_nqn=None, listen_address="192.0.2.11", port_range="4420-4499",
        timeouts={"ctrlr_loss_timeout_sec": 10, "reconnect_delay_sec": 2, "fast_io_fail_timeout_sec": 5})
    with pytest.raises(SpdkError, match="wait_sleep"):
        engine_node_request(dict(params, wait_sleep=0.0))

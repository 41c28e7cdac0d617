# -*- coding: utf-8 -*-
"""Clearing LBA 0 (spdk_superblock): the Write Zeroes command real SPDK v26.05 ran (more/sendcmd/sendcmd.jsonl
line 45), its completion, and the loopback export a head on this node is zeroed through (lines 46-55)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import struct
from unittest import mock

import pytest
from tests.unit.expected_calls import ANY, RpcScript, answer, expect, transcript

from ansible_collections.spdk.storage.plugins.module_utils import spdk_superblock as sb
from ansible_collections.spdk.storage.plugins.module_utils.spdk_model import NodeState
from ansible_collections.spdk.storage.plugins.module_utils.spdk_rpc import SpdkRpcClient, SpdkRpcError
from ansible_collections.spdk.storage.plugins.module_utils.spdk_steps import StepRecorder

SENDCMD = "more/sendcmd/sendcmd.jsonl"
INTROSPECTION = "more/introspection.jsonl"
TMP_NQN = "nqn.2026-01.io.spdk-storage:vol-r-a-tmp"      # the names of the recording
HOST = "nqn.2026-01.io.spdk-storage:host:nodeA"


class Head:
    alias = "lvsA/vol-r-a"
    uuid = "d72e652d-77eb-493a-8df1-6edd32c09329"


def failed_completion(sct, sc):
    """A completion queue entry whose status field (DW3 bits 17-31) holds ``sct``/``sc``."""
    return base64.urlsafe_b64encode(b"\0" * 14 + struct.pack("<H", ((sct << 8) | sc) << 1)).decode()


class Sender:
    """The ``send`` the runs pass in: records the action, sends it, lets a tolerated error pass."""

    def __init__(self, client):
        self.client = client
        self.actions = []

    def __call__(self, method, params, why, tolerate=None):
        self.actions.append((method, why))
        try:
            return self.client.call(method, params)
        except SpdkRpcError as err:
            if tolerate is not None and tolerate(err):
                return None
            raise


def run(calls, work, check_mode=False):
    """``work(send, client)`` against the scripted wire; fails on a missing, unexpected or leftover call."""
    script = RpcScript(calls)
    client = SpdkRpcClient("/nonexistent/spdk-unit-test.sock", timeout=5.0, check_mode=check_mode)
    send = Sender(client)
    failure = None
    with mock.patch.object(SpdkRpcClient, "_send", autospec=True, side_effect=script.send):
        try:
            work(send, client)
        except sb.WriteZeroesFailed as exc:
            failure = exc
    if script.violation is not None:
        raise script.violation
    assert not script.pending, "expected calls never made: %s" % script.pending
    return send, failure


def loopback():
    return sb.Loopback(nqn=TMP_NQN, controller="vol-r-a-tmp", listen_address="127.0.0.1", port_range="4422-4422",
                       host_nqn=HOST)


def write_zeroes(controller, response):
    return expect("bdev_nvme_send_cmd", dict(transcript(SENDCMD, 45)["request"]["params"], name=controller), response)


def export_and_attach():
    """What exporting the head and attaching it from this node sends, with the recorded answers."""
    return [
        expect("nvmf_get_transports", None, answer(INTROSPECTION, 79)),
        expect("nvmf_create_subsystem", lambda p: p["nqn"] == TMP_NQN and p["allow_any_host"] is False,
               answer(SENDCMD, 46)),
        expect("nvmf_subsystem_add_ns", transcript(SENDCMD, 47)["request"]["params"], answer(SENDCMD, 47)),
        expect("nvmf_subsystem_add_host", {"nqn": TMP_NQN, "host": HOST}, answer(INTROSPECTION, 17)),
        expect("nvmf_subsystem_add_listener", transcript(SENDCMD, 48)["request"]["params"], answer(SENDCMD, 48)),
        expect("bdev_nvme_attach_controller",
               {"name": "vol-r-a-tmp", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4422",
                "subnqn": TMP_NQN, "hostnqn": HOST},
               answer(SENDCMD, 49)),       # [] : no bdev registers for the loopback controller
    ]


def removal():
    return [expect("bdev_nvme_detach_controller", {"name": "vol-r-a-tmp"}, answer(SENDCMD, 55)),
            expect("nvmf_delete_subsystem", {"nqn": TMP_NQN}, answer("more/d1_set_parent_thin_no_parent.jsonl", 8))]


class TestCommand:
    def test_write_zeroes_of_lba0_is_the_command_real_spdk_took(self):
        assert sb.WRITE_ZEROES_LBA0 == transcript(SENDCMD, 45)["request"]["params"]["cmdbuf"]

    def test_the_recorded_completion_is_success(self):
        assert sb.completion_status(answer(SENDCMD, 45)["result"]["cpl"]) == (0, 0)

    @pytest.mark.parametrize("sct, sc", [(0, 0x0B), (1, 0x82)])
    def test_an_error_completion_decodes_as_its_status_code_type_and_code(self, sct, sc):
        assert sb.completion_status(failed_completion(sct, sc)) == (sct, sc)


class TestWriteZeroes:
    def test_the_recorded_call_is_sent_and_its_completion_accepted(self):
        send, failure = run([write_zeroes("vol-r-b", answer(SENDCMD, 45))],
                            lambda send, _client: sb.write_zeroes_lba0(send, "vol-r-b", "LBA 0 of vol-r-b", "clear it"))
        assert failure is None and send.actions == [("bdev_nvme_send_cmd", "clear it")]

    def test_an_nvme_error_status_fails_with_what_and_the_status(self):
        _send, failure = run([write_zeroes("vol-r-b", {"result": {"cpl": failed_completion(0, 0x0B)}})],
                             lambda send, _client: sb.write_zeroes_lba0(send, "vol-r-b", "LBA 0 of vol-r-b", "why"))
        assert str(failure) == "Write Zeroes to LBA 0 of vol-r-b completed with NVMe status sct 0 sc 11"

    def test_the_caller_chooses_the_error_type(self):
        class Refusal(Exception):
            pass

        with pytest.raises(Refusal, match="sct 1 sc 130"):
            run([write_zeroes("c", {"result": {"cpl": failed_completion(1, 0x82)}})],
                lambda send, _client: sb.write_zeroes_lba0(send, "c", "LBA 0", "why", error=Refusal))

    def test_check_mode_sends_nothing(self):
        send, failure = run([], lambda send, _client: sb.write_zeroes_lba0(send, "c", "LBA 0", "why"),
                            check_mode=True)
        assert failure is None and [m for m, _why in send.actions] == ["bdev_nvme_send_cmd"]


class TestLoopback:
    def test_a_local_head_is_exported_attached_zeroed_and_both_removed(self):
        send, failure = run(export_and_attach() + [write_zeroes("vol-r-a-tmp", answer(SENDCMD, 45))] + removal(),
                            lambda send, client: loopback().zero_lba0(send, client, NodeState({}), Head(),
                                                                      "LBA 0 of vol-r-a", "clear it"))
        assert failure is None
        assert send.actions[-3][0] == "bdev_nvme_send_cmd"

    def test_a_failed_write_zeroes_still_removes_the_controller_and_the_export(self):
        failed = {"result": {"cpl": failed_completion(0, 0x0B)}}
        _send, failure = run(export_and_attach() + [write_zeroes("vol-r-a-tmp", failed)] + removal(),
                             lambda send, client: loopback().zero_lba0(send, client, NodeState({}), Head(),
                                                                       "LBA 0 of vol-r-a", "clear it"))
        assert "sct 0 sc 11" in str(failure)

    def test_what_an_interrupted_run_left_is_removed_first(self):
        state = NodeState({
            "controllers": [{"name": "vol-r-a-tmp", "ctrlrs": []}],
            "subsystems": [{"nqn": TMP_NQN, "allow_any_host": False, "hosts": [], "namespaces": [],
                            "listen_addresses": [{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
                                                  "trsvcid": "4422"}]}],
        })
        calls = removal() + export_and_attach() + [write_zeroes("vol-r-a-tmp", answer(SENDCMD, 45))] + removal()
        _send, failure = run(calls, lambda send, client: loopback().zero_lba0(send, client, state, Head(),
                                                                              "LBA 0 of vol-r-a", "clear it"))
        assert failure is None      # and the leftover's port 4422 was free again for the new export

    def test_a_controller_already_gone_at_removal_is_fine(self):
        gone = {"error": {"code": -19, "message": "No such device"}}
        calls = export_and_attach() + [write_zeroes("vol-r-a-tmp", answer(SENDCMD, 45)),
                                       expect("bdev_nvme_detach_controller", ANY, gone), removal()[1]]
        _send, failure = run(calls, lambda send, client: loopback().zero_lba0(send, client, NodeState({}), Head(),
                                                                              "LBA 0", "why"))
        assert failure is None

    def test_check_mode_reads_the_transports_and_plans_every_step(self):
        send, _failure = run([expect("nvmf_get_transports", None, answer(INTROSPECTION, 79))],
                             lambda send, client: loopback().zero_lba0(send, client, NodeState({}), Head(),
                                                                       "LBA 0", "why"), check_mode=True)
        assert [m for m, _why in send.actions] == [
            "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_host", "nvmf_subsystem_add_listener",
            "bdev_nvme_attach_controller", "bdev_nvme_send_cmd", "bdev_nvme_detach_controller", "nvmf_delete_subsystem"]


class FakeNode:
    """An spdk_node.Node stand-in: its client, the state last read, and how often it was read again."""

    def __init__(self, client):
        self.client = client
        self.label = "engine node"
        self.state = NodeState({})
        self.reloads = []

    def reload(self, check_mode=False):
        self.reloads.append(check_mode)
        return self.state


def cleared(calls, check_mode=False, **where):
    """``clear_lba0`` of ``LBA 0 of vol-r-a`` on a FakeNode through a StepRecorder: (recorder, node, failure)."""
    found = {}

    def work(_send, client):
        found["node"] = FakeNode(client)
        found["recorder"] = StepRecorder(check_mode)
        sb.clear_lba0(found["recorder"], found["node"], "LBA 0 of vol-r-a", sb.WriteZeroesFailed, **where)
    failure = run(calls, work, check_mode=check_mode)[1]
    return found["recorder"], found["node"], failure


class TestClearLba0:
    def test_a_remote_head_is_cleared_through_its_controller_and_the_node_is_not_read_again(self):
        recorder, node, failure = cleared([write_zeroes("vol-r-a", answer(SENDCMD, 45))], controller="vol-r-a")
        assert failure is None and node.reloads == []
        assert recorder.actions == [{"method": "bdev_nvme_send_cmd", "params": sb.write_zeroes_params("vol-r-a"),
                                     "why": sb.ZEROING_WHY % "LBA 0 of vol-r-a", "node": "engine node"}]

    def test_a_local_head_goes_through_the_loopback_and_the_node_is_read_again(self):
        calls = export_and_attach() + [write_zeroes("vol-r-a-tmp", answer(SENDCMD, 45))] + removal()
        recorder, node, failure = cleared(calls, loopback=loopback(), head=Head())
        assert failure is None and node.reloads == [False]
        assert [a["method"] for a in recorder.actions][-3:] == [
            "bdev_nvme_send_cmd", "bdev_nvme_detach_controller", "nvmf_delete_subsystem"]

    def test_a_failed_write_zeroes_raises_the_callers_error_and_the_node_is_read_again(self):
        failed = {"result": {"cpl": failed_completion(0, 0x0B)}}
        calls = export_and_attach() + [write_zeroes("vol-r-a-tmp", failed)] + removal()
        _recorder, node, failure = cleared(calls, loopback=loopback(), head=Head())
        assert "sct 0 sc 11" in str(failure) and node.reloads == [False]

    def test_check_mode_plans_the_steps_and_reads_nothing_again(self):
        recorder, node, _failure = cleared([expect("nvmf_get_transports", None, answer(INTROSPECTION, 79))],
                                           check_mode=True, loopback=loopback(), head=Head())
        assert node.reloads == [True] and "bdev_nvme_send_cmd" in [a["method"] for a in recorder.actions]

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, spdk.storage contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clearing the old RAID superblock in LBA 0 of a head, with Write Zeroes through bdev_nvme_send_cmd.

A clone or a copy of a RAID member carries that RAID's superblock in LBA 0, and ``bdev_raid_create``
or ``bdev_raid_add_base_bdev`` refuse such a base with -17 until LBA 0 is zeroed
(tests/unit/fixtures/transcripts/more__sendcmd__sendcmd.json line 39 refuses, line 65 accepts the
same call after the zeroing). The one RPC way is an NVMe Write Zeroes sent with ``bdev_nvme_send_cmd``
through an NVMe-oF controller attached to the head (line 45). A head on this node has no controller:
a temporary export of it, attached by this same node, works although SPDK registers no bdev for that
controller, because the head's UUID is taken (lines 46-49: the attach answers an empty list of bdevs;
line 55 detaches it). send_cmd bypasses claims, so callers aim it only at heads no RAID holds.

Both the engine revert (spdk_engine_snapshot_revert) and the rebuild join (spdk_rebuild_join) clear
a head with ``clear_lba0``: through the controller the engine node has to a remote head, or through a
Loopback for a head on the engine node. The lower-level functions take ``send(method, params, why,
tolerate=None)``, which records the action and sends it: a StepRecorder's ``call`` bound to the node
(``functools.partial(recorder.call, node)``). In check mode the client skips the mutating call and
returns None.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import functools
import struct

from ansible_collections.spdk.storage.plugins.module_utils import spdk_nvmf as nvmf
from ansible_collections.spdk.storage.plugins.module_utils.spdk_errors import SpdkError

SEND_CMD_TIMEOUT_MS = 5000
WRITE_ZEROES = 0x08
ZEROING_WHY = "Write Zeroes to %s (clears the old RAID superblock that a clone or copy of a member carries)"
"""The reason of the Write Zeroes action; ``%s`` names what is cleared (``LBA 0 of <replica>...``)."""


class WriteZeroesFailed(SpdkError):
    """The command completed with an NVMe error status."""


def nvme_io_command(opcode, nsid=1, slba=0, nlb_zero_based=0):
    """A 64-byte submission queue entry, base64url-encoded as bdev_nvme_send_cmd takes it."""
    sqe = struct.pack("<BBHI8x8x16xIIIIII", opcode, 0, 0, nsid, slba & 0xFFFFFFFF, slba >> 32,
                      nlb_zero_based, 0, 0, 0)
    return base64.urlsafe_b64encode(sqe).decode()


WRITE_ZEROES_LBA0 = nvme_io_command(WRITE_ZEROES)
"""Write Zeroes, namespace 1, LBA 0, one block: exactly the cmdbuf SPDK ran (more__sendcmd__sendcmd.json line 45)."""


def completion_status(cpl):
    """(status code type, status code) of a base64 completion queue entry (16 bytes, status in bits 17-31
    of DW3)."""
    raw = base64.urlsafe_b64decode(cpl + "=" * (-len(cpl) % 4))
    status = struct.unpack("<H", raw[14:16])[0] >> 1
    return (status >> 8) & 0x7, status & 0xFF


def write_zeroes_params(controller):
    return {"name": controller, "cmd_type": "io", "data_direction": "h2c", "cmdbuf": WRITE_ZEROES_LBA0,
            "timeout_ms": SEND_CMD_TIMEOUT_MS}


def write_zeroes_lba0(send, controller, what, why, error=WriteZeroesFailed):
    """Write Zeroes to LBA 0 of the namespace behind ``controller``; raises ``error`` on an NVMe error status.

    ``what`` names the target in the error message, ``why`` is the action's reason.
    """
    answer = send("bdev_nvme_send_cmd", write_zeroes_params(controller), why)
    if answer is None:
        return    # check mode
    status = completion_status(answer.get("cpl", ""))
    if status != (0, 0):
        raise error("Write Zeroes to %s completed with NVMe status sct %d sc %d" % ((what,) + status))


def _no_device(err):
    return err.is_no_device()


class Loopback:
    """A temporary export ``nqn`` of a head on this node, attached by this node as ``controller``."""

    def __init__(self, nqn, controller, listen_address, port_range, host_nqn, model_number=None):
        self.nqn = nqn
        self.controller = controller
        self.listen_address = listen_address
        self.port_range = nvmf.parse_port_range(port_range)
        self.host_nqn = host_nqn
        self.model_number = model_number

    def drop(self, send, state):
        """Remove what an interrupted zeroing left, as the reads in ``state`` (a NodeState) show it."""
        if any(c.name == self.controller for c in state.controllers):
            send("bdev_nvme_detach_controller", {"name": self.controller},
                 "detach the temporary controller %s" % self.controller, tolerate=_no_device)
        if state.exposure(self.nqn) is not None:
            send("nvmf_delete_subsystem", {"nqn": self.nqn}, "delete the temporary export %s" % self.nqn)

    def spec(self, head):
        return nvmf.ExposureSpec(nqn=self.nqn, bdev=head.alias, bdev_uuid=head.uuid,
                                 listen_address=self.listen_address, port_range=self.port_range,
                                 allowed_hosts=[self.host_nqn], model_number=self.model_number)

    def zero_lba0(self, send, client, state, head, what, why, error=WriteZeroesFailed):
        """Export ``head`` (an Lvol) on this node, attach that export, Write Zeroes to LBA 0, then detach and
        delete what this call made, also when a step failed. ``state`` is the node as last read."""
        self.drop(send, state)
        subsystems = dict(state.subsystems)
        subsystems.pop(self.nqn, None)     # dropped above
        spec = self.spec(head)
        port = nvmf.choose_port(spec, None, subsystems)
        made = []
        try:
            for step in nvmf.plan_exposure_with_client(client, spec, subsystems):
                send(step.method, step.params, step.why + " (temporary, to clear LBA 0 of %s)" % head.alias,
                     tolerate=step.tolerate)
                if step.method == "nvmf_create_subsystem":
                    made.append(("nvmf_delete_subsystem", {"nqn": self.nqn},
                                 "delete the temporary export %s" % self.nqn))
            send("bdev_nvme_attach_controller",
                 nvmf.attach_params(self.controller, self.listen_address, port, self.nqn, self.host_nqn,
                                    adrfam=spec.adrfam),
                 "attach this node to its own temporary export (SPDK registers no bdev for it: the head's "
                 "UUID is taken; send_cmd works on the controller)")
            made.append(("bdev_nvme_detach_controller", {"name": self.controller},
                         "detach the temporary controller %s" % self.controller))
            write_zeroes_lba0(send, self.controller, what, why, error=error)
        finally:
            for method, params, reason in reversed(made):
                send(method, params, reason, tolerate=_no_device)


def clear_lba0(recorder, node, what, error, controller=None, loopback=None, head=None):
    """Clear the old RAID superblock in LBA 0 of a head, with the steps sent to ``node`` (an spdk_node.Node,
    the engine node) through ``recorder`` (a StepRecorder).

    A remote head is reached through ``controller``, the engine node's controller to it. A head on the
    engine node (``head``, an Lvol) is reached through ``loopback`` (a Loopback), after which the node is
    read again (not in check mode). ``what`` names the head in the action's reason and in the ``error``
    raised on an NVMe error status.
    """
    send = functools.partial(recorder.call, node)
    why = ZEROING_WHY % what
    if loopback is None:
        write_zeroes_lba0(send, controller, what, why, error=error)
        return
    try:
        loopback.zero_lba0(send, node.client, node.state, head, what, why, error=error)
    finally:
        node.reload(recorder.check_mode)

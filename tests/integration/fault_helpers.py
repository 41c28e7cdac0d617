"""What the target-death fault campaigns share: a node brought back the way playbooks/recover_node.yml does.

test_fault_campaign.py (engine snapshots) and test_fault_campaign_rebuild.py (the replica rebuild) kill the
target a step goes to, then recover that node before they run the operation again.
"""
from tests.integration.volume_helpers import process_result, wait_for


def recover_node(nodes, node, export_replicas, repair_engine):
    """recover_node.yml for ``node`` (of the Nodes ``nodes``), whose target died: its target started again
    (a killed target lost every lvstore, export and controller it held in memory), its disk attached again
    (which loads the lvstore and its lvols from the file), ``export_replicas(node)`` exporting its replicas
    again (or keeping a replica on the engine node local), then ``repair_engine()``: the engine made whole
    again, waiting until every replica is RW. Returns what ``repair_engine`` returned."""
    node.start()
    nodes.disk(node)
    export_replicas(node)
    return repair_engine()


def kill_target_at(trap, set_trap, start):
    """The operation ``start()`` starts as its own process, with ``trap`` (a StepTrap that drops its step) put
    at every node's door by ``set_trap(trap)``: once the trap holds its step, the node the step goes to is
    killed (SIGKILL), so it never gets the request, and the gates are taken away (``set_trap(None)``). The
    operation then fails by itself, or finishes without that node. Returns the module's result."""
    set_trap(trap)
    run = start()
    try:
        assert wait_for(trap.reached.is_set, timeout=60), "step %d never came" % trap.step
        trap.node.kill()
    finally:
        trap.released.set()
        set_trap(None)
    return process_result(run)

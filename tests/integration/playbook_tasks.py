"""Tasks that the playbook tests put into the plays they write (tests/integration, tests/multihost).

The plays are written as JSON (JSON is YAML) and run with ansible-playbook; these build the tasks that
use the collection's own task files under playbooks/tasks.
"""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOKS = os.path.join(REPO, "playbooks")


def io_task(volume, what, **io):
    """tasks/volume_io.yml on ``volume``'s frontend (``spdk_engines`` comes from create_volume.yml).

    ``io`` is volume_io.yml's input (action, offset, length, seed, timeout, ...); the NQN and the
    address are the frontend's. The task runs wherever the play runs (the engine node).
    """
    frontend = "spdk_engines.%s.frontend" % volume
    io = dict({"what": what, "nqn": "{{ %s.nqn }}" % frontend,
               "address": "{{ %s.listen_address }}:{{ %s.port }}" % (frontend, frontend)}, **io)
    return {"name": what, "ansible.builtin.include_tasks": os.path.join(PLAYBOOKS, "tasks", "volume_io.yml"),
            "vars": {"io": io}}

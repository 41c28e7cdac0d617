"""A module's main() run in this process: its result dict, instead of JSON on stdout and an exit."""
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings

from tests.unit.expected_calls import patch_module_args


class Ended(Exception):
    """exit_json or fail_json was called: ``result`` is what the module would have printed."""

    def __init__(self, result):
        super(Ended, self).__init__(result)
        self.result = result


def run_main(main, args, check_mode=False, diff=False):
    """The result of ``main()`` given ``args`` (``failed`` set when it failed, ``warnings`` always)."""
    def exit_json(self, **kwargs):
        kwargs["warnings"] = list(ansible_warnings.get_warning_messages())
        raise Ended(kwargs)

    def fail_json(self, msg, **kwargs):
        raise Ended(dict(kwargs, msg=msg, failed=True))

    ansible_warnings._global_warnings.clear()  # warnings are global to a module run
    with patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        with pytest.raises(Ended) as ended:
            main()
    return ended.value.result

# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_policy: refuse a run whose variables contradict the inventory (controller only).

Documented in plugins/modules/crpbot_policy.py. The rules are plugins/module_utils/crpbot_policy.py's.
"""

from __future__ import annotations

import os

import ansible.module_utils
from ansible.plugins.action import ActionBase

# The project's module_utils are shipped to hosts by Ansible; on the controller they are imported
# from the same files, so a rule the modules and the action plugins share is written once.
_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_policy import LIVE_GROUP, authority, expected_mode, role_of  # noqa: E402


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if self._task.args:
            result.update(failed=True, msg=f"crpbot_policy takes no options, got {', '.join(sorted(self._task.args))}")
            return result
        host, groups, _facts, found = authority(self._task, self._loader, self._templar, task_vars or {})
        if found:
            result.update(failed=True, msg="REFUSED before anything was changed: " + " | ".join(found),
                          problems=found)
            return result
        live_approved = LIVE_GROUP in groups
        result.update(changed=False, host=host, groups=groups, role=role_of(host, groups),
                      live_approved=live_approved, runtime_mode=expected_mode(live_approved),
                      msg=f"host {host}: the run's variables agree with the inventory")
        return result

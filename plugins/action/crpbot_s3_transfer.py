# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_s3_transfer: run the module, and say clearly when its interpreter is missing.

Documented in plugins/modules/crpbot_s3_transfer.py. The module runs with the project's venv python
(``ansible_python_interpreter``: boto3 is not in the hosts' system python), which the crpbot_uv role
builds. A stat of that python before every sync was a round trip of its own; here the module is simply
run (one round trip), and only when the host's shell answers that the interpreter is not there (exit
status 126/127, no module output) is the path looked at, and the failure worded as the role's:
``host X: <python> does not exist; ... Apply the crpbot_uv role first``. In check mode, on a host whose
venv ``--check`` has not built yet, there is nothing to plan with: the task is skipped, saying so.
"""

from __future__ import annotations

import shlex

from ansible.plugins.action import ActionBase

MODULE = "crpbot_s3_transfer"
# The shell's exit status when the interpreter is missing (127) or not executable (126).
NO_INTERPRETER = (126, 127)


def interpreter_missing(result):
    """Whether a module run failed before the module started: no JSON came back and the shell exited
    with 126/127 (the interpreter is not there, or not executable)."""
    return bool(result.get("failed")) and result.get("_ansible_parsed") is False \
        and result.get("rc") in NO_INTERPRETER


def missing_message(host, python):
    return (f"host {host}: {python} does not exist; the S3 syncs run the module with the project's .venv"
            " (boto3). Apply the crpbot_uv role first (site.yml does).")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        out = self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars)
        if interpreter_missing(out):
            words = shlex.split((self._used_interpreter or "").lstrip("#!"))
            python = words[0] if words else ""
            # Only now, on the failure path, is the path looked at (one more round trip).
            if python and not self._remote_file_exists(python):
                host = task_vars.get("inventory_hostname", self._task.get_name())
                if self._play_context.check_mode:
                    result.update(changed=False, skipped=True, skip_reason=(
                        f"host {host}: {python} does not exist yet (--check on a host crpbot_uv has not built the"
                        " venv on): nothing to run the S3 syncs with"))
                    return result
                result.update(failed=True, changed=False, msg=missing_message(host, python))
                return result
        result.update(out)
        return result

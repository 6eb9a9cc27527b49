# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for the benchmarks: the wall time of every task result, per host, as JSON lines.

Enabled only by the benchmarks (ANSIBLE_CALLBACKS_ENABLED=crpbot_task_times with this directory in
ANSIBLE_CALLBACK_PLUGINS); writes to the file in CRPBOT_TASK_TIMES. Works with the linear and the free
strategy: a host's task starts when the previous result of that host came in (or the play started).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: crpbot_task_times
type: aggregate
short_description: Per-host task times for the crpbot benchmarks
description:
  - Appends one JSON line per task result (host, task name, role, action, seconds, changed, status) to the file
    named by the environment variable C(CRPBOT_TASK_TIMES).
requirements:
  - enabled with C(callbacks_enabled)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "crpbot_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.path = os.environ.get("CRPBOT_TASK_TIMES")
        self.started = {}

    def v2_runner_on_start(self, host, task):
        self.started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result, status):
        if not self.path:
            return
        task, host = result._task, result._host.get_name()
        start = self.started.pop((host, task._uuid), None)
        if start is None:
            return
        role = task._role.get_name() if task._role else ""
        line = {"host": host, "task": task.get_name(), "role": role, "action": task.action,
                "seconds": round(time.monotonic() - start, 4), "changed": bool(result._result.get("changed")),
                "status": status}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback plugin: log every host a task starts on, with the address Ansible will connect to.

The test suite sets ``CRPBOT_CONNECTION_LOG`` to a file and, at the end of the session, fails when
any logged target is outside 127.0.0.0/8: nothing the tests run may reach the user's real hosts.
Without that variable the plugin does nothing.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: crpbot_connection_log
type: aggregate
short_description: Record the connection target of every host a task starts on
description:
  - When the environment variable C(CRPBOT_CONNECTION_LOG) names a file, appends one JSON line per
    (host, task start) with the inventory host name, C(ansible_host), C(ansible_port) and
    C(ansible_connection).
  - The crpbot-ansible test suite reads that file to prove that no test connects outside 127.0.0.0/8.
  - Does nothing when the variable is unset.
requirements:
  - enabled in ansible.cfg (C(callbacks_enabled))
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "crpbot_connection_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("CRPBOT_CONNECTION_LOG")
        self._seen: set[tuple[str, str, str]] = set()

    def v2_runner_on_start(self, host, task) -> None:
        if not self._path:
            return
        hostvars = host.get_vars()
        entry = {
            "host": host.get_name(),
            "ansible_host": str(hostvars.get("ansible_host", host.get_name())),
            "ansible_port": str(hostvars.get("ansible_port", "")),
            "ansible_connection": str(hostvars.get("ansible_connection", "ssh")),
        }
        if task.delegate_to:
            entry["delegate_to"] = str(task.delegate_to)
        key = (entry["host"], entry["ansible_host"], entry.get("delegate_to", ""))
        if key in self._seen:
            return
        self._seen.add(key)
        with open(self._path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True) + "\n")

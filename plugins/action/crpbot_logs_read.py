# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_logs_read: read the shipped logs on the controller, and follow them.

Documented in plugins/modules/crpbot_logs_read.py. Runs in the controller's python (boto3 from the
project's venv) and never connects to a host; with ``follow`` it prints each new event as it arrives,
until the run is interrupted. The reading is plugins/module_utils/crpbot_logs.py's.
"""

from __future__ import annotations

import os
import time

import ansible.module_utils
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_logs import (  # noqa: E402
    LogsError, describe, follow, format_event, parse_since, read_events)

display = Display()

SPEC = {
    "sources": {"type": "list", "elements": "dict", "required": True,
                "options": {"group": {"type": "str", "required": True}, "host": {"type": "str", "required": True}}},
    "since": {"type": "str", "default": "1h"},
    "grep": {"type": "str", "default": ""},
    "limit": {"type": "int", "default": 1000},
    "region": {"type": "str", "required": True},
    "profile": {"type": "str", "default": ""},
    "endpoint_url": {"type": "str", "default": ""},
    "follow": {"type": "bool", "default": False},
    "interval": {"type": "float", "default": 5.0},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=SPEC)
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            result.update(failed=True, msg="boto3 is missing from the controller's python: run make setup")
            return result
        try:
            since = parse_since(args["since"], time.time())
            session = boto3.Session(profile_name=args["profile"] or None, region_name=args["region"])
            client = session.client("logs", endpoint_url=args["endpoint_url"] or None,
                                    config=Config(retries={"mode": "standard", "max_attempts": 5}))
            events = read_events(client, args["sources"], since, args["grep"], args["limit"])
            lines = [format_event(event) for event in events]
            result.update(changed=False, events=events, lines=lines)
            if args["follow"]:
                for line in lines or ["(no event yet; following)"]:
                    display.display(line)
                seen = {event["id"]: event["timestamp"] for event in events}
                follow(client, args["sources"], since, args["grep"], display.display, time.sleep,
                       interval=args["interval"], seen=seen)
        except LogsError as exc:
            result.update(failed=True, msg=str(exc))
        except Exception as exc:  # noqa: BLE001 - no credentials, endpoint down: say which, never a traceback
            result.update(failed=True, msg=f"reading CloudWatch Logs failed: {describe(exc)}")
        return result

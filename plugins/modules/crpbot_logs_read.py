#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_logs_read
short_description: Read the crpbot logs the hosts shipped to CloudWatch Logs
description:
  - Reads, with boto3, the events the C(crpbot_logs) shipper sent from each of O(sources) (a log group and
    an inventory host, whose streams are C(<host>/<file>)) since O(since), keeps those containing O(grep),
    and returns them oldest first with their host and file. Read-only, it never writes to CloudWatch.
  - It runs on the controller (its action plugin), with the controller's python and AWS credentials
    (boto3's usual chain, or O(profile)), and never connects to a host. C(playbooks/logs.yml) runs it.
  - With O(follow) it prints each new event as it arrives (polling every O(interval) seconds, reading again
    from a minute before the newest event seen, each event once) until the run is interrupted.
options:
  sources:
    description: Where to read, one entry per host.
    type: list
    elements: dict
    required: true
    suboptions:
      group:
        description: The host's log group (C(crpbot_logs_group)).
        type: str
        required: true
      host:
        description: The inventory host name (the first part of its stream names).
        type: str
        required: true
  since:
    description: How far back, C(30m), C(1h), C(2d), C(1w), or an ISO 8601 time.
    type: str
    default: 1h
  grep:
    description: Only events containing this text (case-sensitive, literal).
    type: str
    default: ""
  limit:
    description: At most this many events, the newest kept when more match.
    type: int
    default: 1000
  region:
    description: AWS region.
    type: str
    required: true
  profile:
    description: A profile of the controller's AWS config; boto3's default chain when empty.
    type: str
    default: ""
  endpoint_url:
    description: CloudWatch Logs endpoint URL (the sandbox's moto server); empty for AWS.
    type: str
    default: ""
  follow:
    description: Keep printing new events until the run is interrupted (Ctrl-C).
    type: bool
    default: false
  interval:
    description: Seconds between two polls with O(follow).
    type: float
    default: 5.0
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Read the builder's errors of the last hour
  crpbot_logs_read:
    sources: [{group: /crpbot/builder, host: cloud}]
    since: 1h
    grep: ERROR
    region: us-east-1
  delegate_to: localhost
  register: found
"""

RETURN = r"""
events:
  description: The matching events, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{timestamp: 1796288400000, host: cloud, file: logs/runtime_2026-12-03.log, message: "ERROR ..."}]
lines:
  description: The events as text, C(<UTC time> <host> <file> | <message>).
  returned: always
  type: list
  elements: str
  sample: ["2026-12-03T09:00:00.000Z cloud logs/runtime_2026-12-03.log | ERROR ..."]
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.crpbot_logs import LogsError, describe, format_event, parse_since, read_events


def main():
    module = AnsibleModule(
        argument_spec={
            "sources": {"type": "list", "elements": "dict", "required": True,
                        "options": {"group": {"type": "str", "required": True},
                                    "host": {"type": "str", "required": True}}},
            "since": {"type": "str", "default": "1h"},
            "grep": {"type": "str", "default": ""},
            "limit": {"type": "int", "default": 1000},
            "region": {"type": "str", "required": True},
            "profile": {"type": "str", "default": ""},
            "endpoint_url": {"type": "str", "default": ""},
            "follow": {"type": "bool", "default": False},
            "interval": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["follow"]:
        module.fail_json(msg="follow prints as events arrive: it runs only on the controller (the action plugin)")
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        since = parse_since(params["since"], time.time())
        session = boto3.Session(profile_name=params["profile"] or None, region_name=params["region"])
        client = session.client("logs", endpoint_url=params["endpoint_url"] or None,
                                config=Config(retries={"mode": "standard", "max_attempts": 5}))
        events = read_events(client, params["sources"], since, params["grep"], params["limit"])
    except LogsError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - no credentials, endpoint down: say which, never a traceback
        module.fail_json(msg=f"reading CloudWatch Logs failed: {describe(exc)}")
    module.exit_json(changed=False, events=events, lines=[format_event(event) for event in events])


if __name__ == "__main__":
    main()

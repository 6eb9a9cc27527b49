#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_checks.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_checks
short_description: Check a role's input on the controller, every check in one task
description:
  - Runs on the controller only (an action plugin) and contacts no host. Each role's C(tasks/validate.yml) is
    one C(crpbot_checks) task listing the role's input rules, the one place each rule is written; playbooks run
    the validate entry points in their first play, before any host is touched.
  - Every check is evaluated, and every failing one is reported at once (a person fixes all of a host's input in
    one go). Each message is prefixed with C(host <inventory_hostname>:) (not in a C(run_once) task, which checks
    the run rather than a host); write it to name the variable and the fix, and never to show a secret's value.
  - Expressions are templated by the plugin itself, check by check, so a message is rendered only when its check
    fails and may use C(item).
  - One task instead of one C(ansible.builtin.assert) per rule, so a run of C(site.yml) has a dozen fewer tasks
    per host.
options:
  argument_spec:
    description:
      - The entry point of the role's C(meta/argument_specs.yml) whose options are checked first, in the same task
        (types, choices, required, sub-options), with the values of the task's variables, as the
        C(validate_argument_spec) task Ansible puts before a role's entry point would.
      - A role's C(validate) entry point sets C(main) and has no spec of its own, so the one spec of the role is
        checked once per run, before any host is touched, without a second task per role.
      - Only for a task of a role.
    type: str
  checks:
    description:
      - The checks, in order.
      - C(that) is a conditional expression (no C({{ }})) or a list of them, all of which must be true.
      - C(msg) is what is reported when C(that) is false, templated then (it may use C(item)).
      - C(loop), optional, is a template giving a list; the check runs once per element, as C(item).
      - C(when), optional, is an expression or a list of them (they may use C(item)); the check is skipped
        (for that item) unless all are true.
    type: list
    elements: dict
    required: true
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Check the uv input
  crpbot_checks:
    checks:
      - that: crpbot_uv_version is match('^[0-9]+\.[0-9]+\.[0-9]+$')
        msg: crpbot_uv_version must be a release such as 0.13.9 (got {{ crpbot_uv_version | to_json }}).
      - loop: "{{ crpbot_uv_wheels | dict2items }}"
        that:
          - item.value is mapping
          - item.value.url | default('') is match('^https://')
        msg: crpbot_uv_wheels.{{ item.key }} must have an https url.
  tags: [always]
"""

RETURN = r"""
failures:
  description: The message of each failing check (per item), each starting with C(host <name>:).
  returned: failure
  type: list
  elements: str
  sample: ["host qc: crpbot_uv_version must be a release such as 0.13.9 (got \"latest\")."]
msg:
  description: The failures joined, or how many checks passed.
  returned: always
  type: str
"""

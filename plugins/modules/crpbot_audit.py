#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_audit.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_audit
short_description: Compare the crpbot hosts side by side and write the environment conflict audit
description:
  - Runs on the controller only (an action plugin, C(run_once)) and contacts no host. It reads what
    C(crpbot_audit_facts) returned for every host of the play (the registered variable O(results)),
    compares the hosts and returns the seed's summary table, one row per area (path references, git, Python
    dependencies, AWS configuration, IDE and assistant files, settings, database, model files, data files,
    log files, Amazon Q config, runtime mode), each C(ok) or C(conflict), with the evidence per host, the
    problems and the fix.
  - A host's role, live approval, database backend, RDS endpoint and region come from the inventory's Host
    objects (the C(crpbot) inventory plugin's groups and variables), never from a variable. A host that could
    not be read makes every row a conflict.
  - The approved models are read from the inventory's approvals file; C(models/promoted/) must hold exactly
    them on every host. The AWS key a host holds is compared with the one its role should use (the vault's
    C(vault_crpbot_aws_keys_by_role), else the shared key) by keyed hash.
  - "B(No secret in any output or report.) The facts hold only keyed hashes of secrets (HMAC-SHA256 with
    O(hmac_key), new per run); the rows say that a secret differs, never a value or a hash."
  - With O(report_dir), writes C(audit-<UTC time>.md) and C(.json) there (mode 0644, atomically), also in
    check mode, because they are the controller's record of the audit, not a change to a host.
options:
  results:
    description: Name of the variable every host registered C(crpbot_audit_facts)' result in.
    type: str
    default: crpbot_audit_facts_result
  hmac_key:
    description: The run's key (the one given to C(crpbot_audit_facts)), to hash the expected AWS key ids.
    type: str
    required: true
  branch:
    description: The branch every checkout should be on.
    type: str
    default: main
  report_dir:
    description: Directory of the Markdown and JSON reports on the controller; none written when unset.
    type: path
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Compare the hosts
  crpbot_audit:
    hmac_key: "{{ crpbot_audit_hmac_key }}"
    report_dir: "{{ playbook_dir | dirname }}/reports"
  run_once: true
  register: audit
"""

RETURN = r"""
rows:
  description: One row per area, in the seed's order.
  returned: success
  type: list
  elements: dict
  sample:
    - area: Git
      status: conflict
      evidence: {local: "main 3f2c1a9b0d, current", cloud: "main 8e1d2c3b4a, behind"}
      problems: ["cloud: behind origin/main 3f2c1a9b0d"]
      fix: "commit and push (or discard) the local work, then run site.yml"
table:
  description: The summary table as Markdown lines (area, status, one column per host, fix).
  returned: success
  type: list
  elements: str
problems:
  description: Every problem found, prefixed by its area.
  returned: success
  type: list
  elements: str
conflict:
  description: Whether any row is a conflict.
  returned: success
  type: bool
summary:
  description: One line, C(CLEAN ...) or C(CONFLICTS in N of 12 areas ...).
  returned: success
  type: str
reports:
  description: The report files written (Markdown, then JSON).
  returned: success
  type: list
  elements: str
notes:
  description: What could not be compared (for example an approvals file that does not verify).
  returned: success
  type: list
  elements: str
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_promotion.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_promotion
short_description: Review, approve, roll back and place model promotions (the approvals live on the controller)
description:
  - Runs on the controller (an action plugin). The approvals file is the one the C(crpbot) inventory plugin
    names for the host (C(crpbot_promotions_file), read from the inventory's Host object, so no variable can
    point a run at another file). Its records are chained by SHA-256; any edited, removed or reordered
    record makes every state fail, naming the record.
  - "O(state=check): verify the approvals file (no host is contacted). Playbooks run it in their first play."
  - "O(state=review): the review table of O(models) (registry entries) with the gate results and what is in
    force. Contacts no host."
  - "O(state=approve): for a host in group C(qc) only. Refuses a model not in the registry, a file whose
    measured SHA-256 differs from its registry entry, a model failing a gate, a confirmation that is not the
    model id, and a promotion of the same slot recorded since O(expected_head); otherwise appends a sealed
    record (model, files and SHA-256, metrics, gates, who, when), under a lock."
  - "O(state=rollback): for a host in group C(qc) only. Appends, for every slot O(selector) names, a record
    bringing back the model in force before the current one."
  - "O(state=place): runs the C(crpbot_models) module on the host with the verified approvals; on a builder
    it also marks the registry."
options:
  state:
    description: What to do.
    type: str
    required: true
    choices: [check, review, approve, rollback, place]
  models:
    description: With O(state=review), the registry's entries (from C(crpbot_models) O(state=review)).
    type: list
    elements: dict
  model_id:
    description: With O(state=approve), the model to approve.
    type: str
  candidate:
    description: With O(state=approve), the registry entry of O(model_id) with C(measured_sha256) (its file as
      hashed on the QC host), from C(crpbot_models) O(state=review).
    type: dict
  approval:
    description: With O(state=approve), what the person typed (or C(-e approve=)); must equal O(model_id).
    type: str
  expected_head:
    description: With O(state=approve), the last record's C(record_sha256) when the review was shown.
    type: str
  selector:
    description: With O(state=rollback), a symbol, a model type or C(<model_type>_<symbol>).
    type: str
  project_dir:
    description: With O(state=place), the crpbot checkout on the host.
    type: path
  min_win_rate:
    description: Promotion gate on C(win_rate).
    type: float
    default: 0.68
  max_calibration_error:
    description: Promotion gate on C(calibration_error).
    type: float
    default: 0.05
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Place exactly the approved model versions
  crpbot_promotion:
    state: place
    project_dir: /root/crpbot
"""

RETURN = r"""
table:
  description: The review table, one line per candidate (O(state=review)).
  returned: state=review
  type: list
  elements: str
head:
  description: The last record's C(record_sha256) (O(state=review)).
  returned: state=review
  type: str
records:
  description: The records appended (O(state=approve), O(state=rollback)).
  returned: state=approve or state=rollback
  type: list
  elements: dict
promoted:
  description: The approved models in force (O(state=check), O(state=place)).
  returned: state=check or state=place
  type: list
  elements: dict
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_rotation.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_rotation
short_description: The bookkeeping of a credential rotation (a state machine on the controller)
description:
  - Runs on the controller (an action plugin). playbooks/rotate/db_password.yml and aws_access_key.yml list
    the steps of a rotation (db_password - pending, stage, set, test, promote, current, verify;
    aws_access_key - pending, set, record, stage, test, promote, current, deactivate, verify, with one
    "slot" per AWS key the hosts use); each call of this action is one step, decides
    whether it may run and records what it did. The rotation's state is this action's own result, registered
    as C(crpbot_rotation), which the next call reads back. The decisions are plain functions in
    C(plugins/module_utils/crpbot_rotation.py).
  - A step that fails returns C(failed) (Ansible's normal failure flow takes the play to its C(rescue)), with
    the state naming the step, the host(s) and why. The rescue's calls (O(action=rescue), O(action=undo_set),
    O(action=undo_vault)) never fail; what they cannot undo is recorded as a step left to do by hand.
  - "O(action=plan): the plan a run would follow (names hosts, files, the database role, the vault keys)."
  - "O(action=begin): takes the pending password from O(pending) (resuming) or generates a new 40-character one,
    and records it as C(vault_crpbot_rotation_pending) in O(vault_file) before anything else changes."
  - "O(action=set) and O(action=undo_set): run C(crpbot_rotate_service) on the host the task is delegated to.
    db_password - C(set) logs in with the old password and sets the new one, C(undo_set) the reverse, only
    when C(set) was reached. aws_access_key - C(set) creates a second IAM key per slot (signed with the old
    key) and records the new keys in the vault's pending record (step C(record), also after a partial
    failure, so a rerun can resume); C(undo_set) reactivates the old keys when C(deactivate) was reached
    (signed with the new keys), then deletes the new keys (signed with the old ones)."
  - "O(action=deactivate): aws_access_key - deactivates each slot's old key (never deleted in the same run)."
  - "O(action=gate): after a step every host runs (O(step)), fails it when a host recorded a failure of it
    (O(action=host_failed) in its rescue) or is no longer in the play (unreachable)."
  - "O(action=host_failed): run per host in the rescue of a step; records why (the failing app checks among
    O(checks), or the task's message) under C(crpbot_rotation_host)."
  - "O(action=current): records the new password (C(vault_crpbot_db_password)) or the new keys (each slot's
    id and secret paths) as current and drops the pending record."
  - "O(action=rescue): the rollback plan (C(plan): restore_files, undo_service, restore_vault); a failure no
    step recorded is recorded here, naming the task."
  - "O(action=undo_vault): puts the vault back (the old password when it was recorded as current; the
    pending record dropped only when the database is back to the vault's password, so a rerun resumes)."
  - "O(action=report): the summary and the message the run fails with (C(ROLLED BACK) or the steps left to
    do by hand). Its result holds no secret."
  - Every result except O(action=plan) and O(action=report) holds the old and new password in C(state);
    run those tasks with C(no_log).
options:
  action:
    description: The step to run or record.
    type: str
    required: true
    choices: [plan, begin, set, gate, host_failed, current, deactivate, rescue, undo_set, undo_vault, report]
  credential:
    description: With O(action=begin) or O(action=plan), the credential to rotate (O(action=plan) knows
      C(db_password) only; the AWS plan is printed by playbooks/rotate/plan.yml).
    type: str
    choices: [db_password, aws_access_key]
  current:
    description: With O(action=begin), the vault's current password (db_password), or the secret access
      key of each slot, C({slot - secret}) (aws_access_key).
    type: raw
  slots:
    description: With O(action=begin) and aws_access_key, the AWS keys the hosts use, each C(name), C(hosts),
      C(key_id), C(id_path), C(secret_path) (from playbooks/rotate/aws_slots.yml).
    type: list
    elements: dict
  iam:
    description: With O(action=begin) and aws_access_key, each slot's IAM C(user) and C(keys).
    type: dict
  region:
    description: With aws_access_key, the AWS region of the IAM calls.
    type: str
  endpoint_url:
    description: With aws_access_key, an IAM/STS endpoint (the test bed's); empty for AWS.
    type: str
  pending:
    description: With O(action=begin), the vault's pending record of this credential (resume), or C({}).
    type: dict
  vault_file:
    description: The vault file that holds the credential (edited in place, still encrypted, through
      C(crpbot_vault_write)).
    type: path
  step:
    description: With O(action=gate) or O(action=host_failed), the step every host took part in
      (C(stage), C(test), C(promote), C(verify); C(restore) in the rescue).
    type: str
  result:
    description: With O(action=host_failed), C(ansible_failed_result).
    type: dict
  checks:
    description: With O(action=host_failed), the app checks the step looks at.
    type: list
    elements: str
  failed_task:
    description: With O(action=rescue), the name of the task that failed.
    type: str
  failed_msg:
    description: With O(action=rescue), its message.
    type: str
  project_dir:
    description: With O(action=set), O(action=deactivate) or O(action=undo_set), the crpbot checkout on the
      admin host (its .venv has the app's psycopg and boto3).
    type: path
  admin_host:
    description: The host that talks to the database (named in messages).
    type: str
  db:
    description: The database role to rotate (C(host), C(port), C(database), C(user), C(sslmode)).
    type: dict
  hosts:
    description: With O(action=plan), the hosts the rotation reaches.
    type: list
    elements: str
  resuming_since:
    description: With O(action=plan), when the pending rotation being resumed started (empty when none).
    type: str
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Record the new password as pending in the vault before changing anything else
  crpbot_rotation:
    action: begin
    credential: db_password
    current: "{{ vault_crpbot_db_password }}"
    pending: {}
    vault_file: inventory/group_vars/all/vault.yml
  register: crpbot_rotation
  run_once: true
  no_log: true

- name: Check that every host passed the step stage
  crpbot_rotation:
    action: gate
    step: stage
  register: crpbot_rotation
  run_once: true
  no_log: true
"""

RETURN = r"""
state:
  description: The rotation's state (steps done, the failed step, its hosts, why, steps left by hand) and,
    under C(secret), the old and new password. Never shown (no_log).
  returned: every action but plan, report and host_failed
  type: dict
plan:
  description: What the rollback undoes (O(action=rescue)).
  returned: action=rescue
  type: dict
  sample: {restore_files: true, reactivate: false, undo_service: true, restore_vault: false, drop_pending: true}
failures:
  description: The steps this host failed, each C(step) and C(why) (O(action=host_failed)).
  returned: action=host_failed
  type: list
  elements: dict
msg:
  description: The plan lines (O(action=plan)), the summary lines (O(action=report)), else what was done.
  returned: always
  type: raw
status:
  description: C(DONE), C(ROLLED BACK) or C(NOT FULLY ROLLED BACK) (O(action=report)).
  returned: action=report
  type: str
fail_msg:
  description: The message the run ends with when the rotation did not finish (O(action=report)).
  returned: action=report
  type: str
  sample: "ROLLED BACK: the db_password rotation failed at step test on sandbox-qc. Every host keeps ..."
manual:
  description: The steps left to do by hand (O(action=report)).
  returned: action=report
  type: list
  elements: str
"""

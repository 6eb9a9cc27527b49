#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_policy.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_policy
short_description: Refuse a run whose variables contradict what the inventory says a host is
description:
  - Runs on the controller only (an action plugin) and contacts no host. Every playbook of this project
    runs it as the first task of its first play (with C(any_errors_fatal)), so a refused run stops before
    any host is touched.
  - "B(The one authority.) Whether a host is QC or builder is the group the C(crpbot) inventory plugin put it
    in (C(qc) or C(builder)); whether the inventory approves live trading for it is membership of the group
    C(live_approved) (a builder entry with C(runtime_mode: live)). These are read from Ansible's inventory
    objects, which no variable can change."
  - "B(What is refused), each naming the host, the variable, where Ansible says it came from (extra vars,
    set_fact, host_vars/group_vars files, an inventory source, play/role/task vars) and the fix:
    a host in both or neither of C(qc) and C(builder), or not defined by the C(crpbot) inventory plugin;
    a QC host in C(live_approved); an approved host whose user is not root; a builder on sqlite;
    C(inventory_hostname) or C(group_names) set to anything but the host's own;
    any variable the inventory plugin derives (C(crpbot_role), C(crpbot_runtime_mode), C(crpbot_user),
    C(crpbot_project_dir), ...) set by any other source to another value;
    the role inputs of earlier versions (C(crpbot_env_role), C(crpbot_credentials_role), C(amazon_q_role),
    C(crpbot_s3_role)) or C(crpbot_env_runtime_mode) set to anything the inventory contradicts;
    and C(crpbot_env_live_confirm) set anywhere but the command line's extra vars (a confirmation in a
    vars file would confirm every run)."
  - The same rules run again on the controller before every C(.env) write (the C(crpbot_env_file) action),
    and the module on the host refuses C(live) for a user that is not root or a QC host whatever it is
    given, so skipping this task (C(--skip-tags always), C(--start-at-task)) cannot make a QC host trade.
  - The rules live in C(plugins/module_utils/crpbot_policy.py), the one place they are written.
options: {}
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Refuse a run whose variables contradict the inventory
  hosts: crpbot
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Check the run's variables against the inventory
      crpbot_policy:
      tags: [always]
"""

RETURN = r"""
host:
  description: The inventory host the task ran for.
  returned: success
  type: str
  sample: cloud
groups:
  description: The host's groups, from the inventory.
  returned: success
  type: list
  elements: str
  sample: [builder, crpbot, live_approved]
role:
  description: The host's role, C(qc) or C(builder).
  returned: success
  type: str
  sample: builder
live_approved:
  description: Whether the inventory approves live trading for the host (group C(live_approved)).
  returned: success
  type: bool
  sample: false
runtime_mode:
  description: The C(RUNTIME_MODE) the inventory names for the host (C(live) only when approved).
  returned: success
  type: str
  sample: dryrun
problems:
  description: Every contradiction found, one message each (the run fails when there is one).
  returned: failure
  type: list
  elements: str
  sample:
    - "host local: variable crpbot_role is 'builder' (from extra vars (-e)) but the inventory says 'qc'. Fix: remove it"
"""

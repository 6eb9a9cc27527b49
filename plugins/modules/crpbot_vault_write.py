#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/crpbot_vault_write.py, on the controller;
# this file only documents it (the usual way for action plugins).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_vault_write
short_description: Write variables to an Ansible Vault file on the controller
description:
  - Runs on the controller only (an action plugin).
  - With O(state=new), dumps O(data) as YAML, encrypts it with the run's
    own vault password (C(--ask-vault-pass), C(--vault-password-file) or C(ANSIBLE_VAULT_PASSWORD_FILE))
    and writes it atomically with mode C(0600)
    (a temporary file in the same directory, fsync, then a hard link to the final name).
    An existing file is never overwritten; the task fails naming it. Missing parent directories are
    created with mode C(0700).
  - With O(state=updated), decrypts the existing file, sets the keys of O(set) and removes those of
    O(remove) in a round-trip YAML edit (comments, key order and every other variable are kept),
    encrypts it again with the same vault id and swaps it in atomically (temporary file, fsync,
    rename), keeping the file's mode. C(changed) is true only when a value differs. Check mode
    reports what would change and writes nothing.
  - The result names the file and the variables, never a value; run the task with no_log set to true.
  - Used by C(playbooks/import_credentials.yml) to turn a QC host's existing credentials into a vault.
options:
  path:
    description: The vault file to create; a relative path is relative to the playbook dir.
    type: path
    required: true
  state:
    description: Create a new file (V(new)) or edit an existing one (V(updated)).
    type: str
    choices: [new, updated]
    default: new
  data:
    description: The variables to write (for example C(vault_crpbot_db_password)); required for O(state=new).
    type: dict
  set:
    description:
      - For O(state=updated), the values to set; C(key) is a variable name or a list of nested keys
        (missing mappings on the way are created).
    type: list
    elements: dict
    suboptions:
      key:
        description: The variable, or the path of nested keys, such as C([vault_crpbot_aws_keys_by_role, qc, access_key_id]).
        type: raw
        required: true
      value:
        description: The new value.
        type: raw
        required: true
  remove:
    description: For O(state=updated), the variables (or lists of nested keys) to remove; absent ones are ignored.
    type: list
    elements: raw
  vault_id:
    description: Which of the run's vault ids encrypts; the first one by default.
    type: str
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Write the imported credentials into a new vault file
  crpbot_vault_write:
    path: "{{ playbook_dir }}/../inventory/group_vars/all/vault.yml"
    data:
      vault_crpbot_db_password: "{{ imported.db_password }}"
  no_log: true

- name: Record a rotated password as current and drop the pending record
  crpbot_vault_write:
    path: "{{ inventory_dir }}/group_vars/all/vault.yml"
    state: updated
    set:
      - key: vault_crpbot_db_password
        value: "{{ new_password }}"
    remove:
      - vault_crpbot_rotation_pending
  no_log: true
"""

RETURN = r"""
path:
  description: The file written.
  returned: success
  type: str
  sample: /home/numan/crpbot-ansible/inventory/group_vars/all/vault.yml
variables:
  description: Names of the variables written, or for O(state=updated) the dotted keys changed (never their values).
  returned: success
  type: list
  elements: str
  sample: [vault_crpbot_db_password]
msg:
  description: What was (or, in check mode, would be) written.
  returned: success
  type: str
  sample: wrote the new vault file inventory/group_vars/all/vault.yml
"""

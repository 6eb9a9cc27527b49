#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_gitignore
short_description: Keep one managed block of entries in a checkout's .gitignore, in one round trip
description:
  - Keeps the lines O(entries) in C(<project_dir>/.gitignore) inside a block between
    C(# BEGIN crpbot-ansible <block>) and C(# END crpbot-ansible <block>). Every role that needs
    entries (amazon_q, crpbot_credentials, crpbot_env) has its own block, written the same way.
  - The person's own lines stay exactly as they are; an entry the person already wrote outside the
    block is not repeated; the block is removed when no entry is missing. A new file gets mode 0644,
    an existing one keeps its mode and owner. The file is written atomically (temp file + rename).
  - C(crpbot_git_checkout) recognises these blocks as this project's own edits, so they never stop a
    repo update.
  - Fails, naming the dir, when O(project_dir) does not exist (check out the repo first).
  - The modules that write a file git must never see (crpbot_amazon_q, crpbot_secret_file,
    crpbot_env_file) keep their block with the same code in their own run, through their C(gitignore)
    option; this module is for a block on its own (the crpbot_repo role's C(gitignore) entry point).
options:
  project_dir:
    description: The checkout whose C(.gitignore) to keep.
    type: path
    required: true
  block:
    description: The block's name (its marker lines end with it).
    type: str
    required: true
  entries:
    description: The lines the block keeps (those not already written outside it).
    type: list
    elements: str
    default: []
seealso:
  - module: crpbot_amazon_q
  - module: crpbot_secret_file
  - module: crpbot_env_file
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Keep the notebooks out of git
  crpbot_gitignore:
    project_dir: /home/numan/crpbot
    block: notebooks
    entries: [notebooks/, "*.ipynb_checkpoints"]
"""

RETURN = r"""
path:
  description: The .gitignore.
  returned: always
  type: str
  sample: /home/numan/crpbot/.gitignore
missing:
  description: The entries the block holds (the ones not written outside it).
  returned: success
  type: list
  elements: str
  sample: [.amazon-q/]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_files import (
    GITIGNORE_OPTIONS,
    ModuleFailure,
    apply_gitignore,
    gitignore_diff,
    gitignore_result,
    plan_gitignore,
)


def main():
    module = AnsibleModule(argument_spec=GITIGNORE_OPTIONS, supports_check_mode=True)
    params = module.params
    try:
        plan = plan_gitignore(params["project_dir"], params["block"], params["entries"])
        if not module.check_mode:
            apply_gitignore(plan)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=os.path.join(params["project_dir"], ".gitignore"))
    result = gitignore_result(plan)
    if module._diff:
        result["diff"] = gitignore_diff(plan)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

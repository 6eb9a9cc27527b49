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
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Keep the Amazon Q entries in .gitignore
  crpbot_gitignore:
    project_dir: /home/numan/crpbot
    block: amazon_q
    entries: [.amazon-q/, .amazonq/]
"""

RETURN = r"""
path:
  description: The .gitignore.
  returned: always
  type: str
missing:
  description: The entries the block holds (the ones not written outside it).
  returned: success
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_git import with_block


def main():
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "block": {"type": "str", "required": True},
            "entries": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    project, block, entries = (module.params[key] for key in ("project_dir", "block", "entries"))
    path = os.path.join(project, ".gitignore")
    if not os.path.isdir(project):
        module.fail_json(path=path, msg=f"the project dir {project} does not exist; check out the crpbot repo there "
                                        "first (the crpbot_repo role does) or fix project_dir in the inventory")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        st = os.stat(path)
    except FileNotFoundError:
        raw, st = None, None
    try:
        text = "" if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        module.fail_json(path=path, msg=f"{path} is not UTF-8 text; fix it by hand, nothing was changed")
    new, missing = with_block(text, block, entries)
    changed = new != text
    result = {"changed": changed, "path": path, "missing": missing}
    if module._diff:
        result["diff"] = {"before_header": path, "after_header": path, "before": text, "after": new}
    if changed and not module.check_mode:
        handle, temp = tempfile.mkstemp(prefix=".gitignore.", dir=project)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(new.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, st.st_mode & 0o7777 if st else 0o644)
            if st and os.geteuid() == 0:
                os.chown(temp, st.st_uid, st.st_gid)
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
    module.exit_json(**result)


if __name__ == "__main__":
    main()

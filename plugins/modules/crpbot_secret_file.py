#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_secret_file
short_description: Write a file that holds a secret, atomically, 0600, with a 0600 backup
description:
  - >-
    Writes O(content) to O(path) exactly as given (no newline is added), following the project's
    contract for files with secrets: atomic write, owned by the host user, mode C(0600), and the
    previous version kept as a C(0600) backup when the content changes.
  - >-
    B(When the file counts as changed.) The content changes when the file does not exist or its bytes
    differ from O(content) encoded as UTF-8. The result is also changed when the file's mode, or its
    owner or group (when O(owner) or O(group) is given), differ; those are fixed in place even if the
    content is unchanged.
  - >-
    B(Writing and backups.) When the content changes, the new file is written atomically, and with
    O(backup=true) the previous file is kept as a C(0600) backup; only the newest O(backup_keep) backups stay.
  - >-
    B(Secrets.) Neither O(content) nor the previous content, nor any hash or part of them, appears in the
    result, an error message or the diff. The diff shows only C((secret content, changed)) or
    C((secret content, unchanged)), the sizes in bytes, and the mode, owner and group.
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  path:
    description:
      - Absolute path of the file. It must not be a symbolic link; its parent directory must exist.
    type: path
    required: true
  content:
    description:
      - The exact text of the file, written as UTF-8. Never logged.
    type: str
    required: true
notes:
  - Supports check mode with an honest prediction (nothing is written) and diff mode (content hidden).
    In check mode a missing parent directory is not an error (an earlier task would create it);
    the file is predicted as new.
seealso:
  - module: crpbot_env_file
extends_documentation_fragment:
  - crpbot_files
"""

EXAMPLES = r"""
- name: Write the database password
  crpbot_secret_file:
    path: /home/numan/crpbot/.db_password
    content: "{{ vault_crpbot_db_password }}"
    owner: numan
  no_log: true

- name: Write the AWS credentials without keeping a backup
  crpbot_secret_file:
    path: /root/.aws/credentials
    content: "{{ lookup('ansible.builtin.template', 'credentials.j2') }}"
    backup: false
  no_log: true
"""

RETURN = r"""
path:
  description: The path of the file.
  returned: always
  type: str
  sample: /home/numan/crpbot/.db_password
content_changed:
  description: Whether the content was (or, in check mode, would be) rewritten.
  returned: always
  type: bool
  sample: true
size:
  description: Size in bytes of the new content.
  returned: always
  type: int
  sample: 33
backup_file:
  description: Path of the backup of the previous file.
  returned: when the content changed, O(backup) is true, a previous file existed and not in check mode
  type: str
  sample: /home/numan/crpbot/.db_password.20250101T120000.bak
removed_backups:
  description: The oldest backups removed (or, in check mode, to remove) so that O(backup_keep) remain.
  returned: when there were more than O(backup_keep)
  type: list
  elements: str
  sample: [/home/numan/crpbot/.db_password.20241201T090000.bak]
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_files import (
    ModuleFailure,
    apply,
    parse_mode,
    plan_changed,
    plan_write,
    read_existing,
    resolve_gid,
    resolve_uid,
)


def describe(data, mode, uid, gid, state):
    """One diff side: never the content, only its state and size, and the file's attributes."""
    if data is None:
        return ""
    label = "secret content" if state is None else f"secret content, {state}"
    return f"({label}, {len(data)} bytes)\nmode {mode:04o}\nowner {uid}\ngroup {gid}\n"


def make_plan(params, check_mode=False):
    """Everything the module would do, computed without writing anything.

    In check mode a missing parent directory is taken as one an earlier task would have created
    (e.g. ``~/.aws`` on a fresh host): the file is predicted as new instead of failing.
    """
    path = params["path"]
    if not os.path.isabs(path):
        raise ModuleFailure(f"path must be absolute, got {path}")
    content = params["content"]
    if not isinstance(content, str):
        raise ModuleFailure(f"content of {path} must be a string")
    try:
        new_bytes = content.encode("utf-8")
    except UnicodeEncodeError:
        raise ModuleFailure(f"content of {path} is not valid Unicode text") from None
    mode = parse_mode(params["mode"])
    uid = resolve_uid(params["owner"])
    gid = resolve_gid(params["group"])
    if check_mode and not os.path.isdir(os.path.dirname(path)):
        old_bytes, st = None, None
    else:
        old_bytes, st = read_existing(path)
    if params["backup_keep"] < 1:
        raise ModuleFailure("backup_keep must be 1 or more (use backup: false to keep no backup)")
    plan = plan_write(path, old_bytes, st, new_bytes, mode, uid, gid,
                      backup=params["backup"], keep=params["backup_keep"])
    new_uid = os.geteuid() if plan["uid"] is None else plan["uid"]
    new_gid = os.getegid() if plan["gid"] is None else plan["gid"]
    state = "changed" if plan["content_changed"] else "unchanged"
    plan["diff"] = {
        "before_header": path,
        "after_header": path,
        "before": describe(old_bytes, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, None) if st else "",
        "after": describe(new_bytes, mode, new_uid, new_gid, state),
    }
    return plan


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
            backup=dict(type="bool", default=True),
            backup_keep=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        plan = make_plan(module.params, module.check_mode)
        backup_file = None
        if not module.check_mode:
            backup_file = apply(plan)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=path)

    result = dict(
        changed=plan_changed(plan),
        path=path,
        content_changed=plan["content_changed"],
        size=len(plan["new_bytes"]),
    )
    if backup_file is not None:
        result["backup_file"] = backup_file
    if plan["stale_backups"]:
        result["removed_backups"] = plan["stale_backups"]
    if module._diff:
        result["diff"] = plan["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()

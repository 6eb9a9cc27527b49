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
      - Absolute path of the file. It must not be a symbolic link; its parent directory must exist (or see
        O(directory_mode)).
      - One of O(path) (with O(content)) or O(files) is required.
    type: path
  content:
    description:
      - The exact text of the file, written as UTF-8. Never logged.
    type: str
  files:
    description:
      - Several files in one module run (one round trip), instead of O(path) and O(content). Every file is
        checked and planned before the first one is written. O(owner), O(group), O(backup_keep) apply to all;
        O(mode) and O(backup) are the defaults of each entry.
    type: list
    elements: dict
    suboptions:
      path:
        description: Absolute path of the file, as O(path).
        type: path
        required: true
      content:
        description: The exact text of the file. Never logged.
        type: str
        required: true
      mode:
        description: Permissions of this file; default O(mode).
        type: raw
      backup:
        description: Whether to keep a backup of this file; default O(backup).
        type: bool
      directory_mode:
        description:
          - When given, the file's parent directory is created when it does not exist and given this mode (and
            O(owner)/O(group)), as C(ansible.builtin.file) with C(state=directory) would; when omitted, the parent
            directory must exist and is left as it is.
        type: raw
notes:
  - With O(gitignore), the C(.gitignore) block is planned with the files (a missing project dir is refused before
    anything is written) and written before the first file; the diff is then a list, the C(.gitignore) first.
  - With O(files), the result holds RV(files), one entry per file with the keys of a single-file result, and
    the diff is one per file.
  - Supports check mode with an honest prediction (nothing is written) and diff mode (content hidden).
    In check mode a missing parent directory is not an error (an earlier task would create it);
    the file is predicted as new.
seealso:
  - module: crpbot_env_file
extends_documentation_fragment:
  - crpbot_files
  - crpbot_gitignore
"""

EXAMPLES = r"""
- name: Keep .db_password out of git, write it, the AWS credentials and config, and ~/.aws, in one round trip
  crpbot_secret_file:
    owner: numan
    gitignore:
      project_dir: /home/numan/crpbot
      block: crpbot_credentials
      entries: [.db_password, .db_password.*.bak]
    files:
      - path: /home/numan/crpbot/.db_password
        content: "{{ vault_crpbot_db_password }}"
      - path: /home/numan/.aws/credentials
        content: "{{ lookup('ansible.builtin.template', 'aws_credentials.j2') }}"
        directory_mode: "0700"
      - path: /home/numan/.aws/config
        content: "{{ lookup('ansible.builtin.template', 'aws_config.j2') }}"
        directory_mode: "0700"
  no_log: true

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
gitignore:
  description: The C(.gitignore) block's part of the run (O(gitignore)); paths and entries only.
  returned: when O(gitignore) was given
  type: dict
  contains:
    path:
      description: The .gitignore.
      type: str
      sample: /home/numan/crpbot/.gitignore
    changed:
      description: Whether the .gitignore was (or, in check mode, would be) rewritten.
      type: bool
      sample: false
    missing:
      description: The entries the block holds (the ones not written outside it).
      type: list
      elements: str
      sample: [.db_password, .db_password.*.bak]
files:
  description: One result per file (C(path), C(content_changed), C(size), C(backup_file), C(removed_backups)).
  returned: when O(files) was given
  type: list
  elements: dict
  sample: [{path: /root/.aws/credentials, content_changed: false, size: 116}]
directories_changed:
  description: The parent directories created or whose mode or owner were fixed (O(files[].directory_mode)).
  returned: when O(files) was given
  type: list
  elements: str
  sample: [/root/.aws]
path:
  description: The path of the file.
  returned: when O(path) was given
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
    GITIGNORE_OPTIONS,
    ModuleFailure,
    apply,
    apply_gitignore,
    gitignore_diff,
    gitignore_result,
    parse_mode,
    plan_changed,
    plan_gitignore,
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


def plan_directories(params, check_mode):
    """The parent dirs to create or fix (files[].directory_mode); nothing is written here."""
    uid, gid = resolve_uid(params["owner"]), resolve_gid(params["group"])
    modes = {}
    for entry in params["files"]:
        if entry["directory_mode"] is not None:
            directory, mode = os.path.dirname(entry["path"]), parse_mode(entry["directory_mode"])
            if modes.setdefault(directory, mode) != mode:
                raise ModuleFailure(f"the files in {directory} ask for two different directory_mode values")
    plans = []
    for directory, mode in modes.items():
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise ModuleFailure(f"{directory} exists but is not a directory; move it away")
        wrong = st is not None and (stat.S_IMODE(st.st_mode) != mode or (uid is not None and st.st_uid != uid)
                                    or (gid is not None and st.st_gid != gid))
        if st is None or wrong:
            plans.append({"path": directory, "mode": mode, "uid": uid, "gid": gid, "exists": st is not None})
    return plans


def apply_directory(plan):
    try:
        if not plan["exists"]:
            os.makedirs(plan["path"], plan["mode"])
        if plan["uid"] is not None or plan["gid"] is not None:
            os.chown(plan["path"], -1 if plan["uid"] is None else plan["uid"], -1 if plan["gid"] is None else plan["gid"])
        os.chmod(plan["path"], plan["mode"])
    except OSError as exc:
        raise ModuleFailure(f"could not make the directory {plan['path']}: {exc.strerror}") from None


def file_result(plan, backup_file):
    result = dict(path=plan["path"], changed=plan_changed(plan), content_changed=plan["content_changed"],
                  size=len(plan["new_bytes"]))
    if backup_file is not None:
        result["backup_file"] = backup_file
    if plan["stale_backups"]:
        result["removed_backups"] = plan["stale_backups"]
    return result


def run_files(module, gitignore=None):
    """Every file planned (and every refusal raised) before the first write; the .gitignore block first."""
    params = module.params
    for entry in params["files"]:
        for key in ("mode", "backup"):
            if entry.get(key) is None:
                entry[key] = params[key]
    directories = plan_directories(params, module.check_mode)
    pending_dirs = {d["path"] for d in directories if not d["exists"]}
    plans = []
    for entry in params["files"]:
        single = {**params, **{k: v for k, v in entry.items() if k != "directory_mode"}}
        # A parent this run creates: the file is new (check mode predicts it; a real run makes the dir first).
        plans.append(make_plan(single, module.check_mode or os.path.dirname(entry["path"]) in pending_dirs))
    results = []
    if not module.check_mode:
        if gitignore is not None:
            apply_gitignore(gitignore)
        for directory in directories:
            apply_directory(directory)
    for plan in plans:
        results.append(file_result(plan, None if module.check_mode else apply(plan)))
    changed = bool(directories) or any(r["changed"] for r in results)
    for r in results:
        r.pop("changed")
    result = dict(changed=changed, files=results, directories_changed=[d["path"] for d in directories])
    if module._diff:
        result["diff"] = [plan["diff"] for plan in plans]
    return with_gitignore(result, gitignore, module._diff)


def with_gitignore(result, gitignore, diff):
    """The result with the .gitignore block's part (no secret in it: a .gitignore, paths and entries)."""
    if gitignore is None:
        return result
    result["changed"] = result["changed"] or gitignore["changed"]
    result["gitignore"] = gitignore_result(gitignore)
    if diff:
        ours = result.get("diff", [])
        result["diff"] = [gitignore_diff(gitignore), *(ours if isinstance(ours, list) else [ours])]
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            content=dict(type="str", no_log=True),
            files=dict(type="list", elements="dict", options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True, no_log=True),
                mode=dict(type="raw"),
                backup=dict(type="bool"),
                directory_mode=dict(type="raw"),
            )),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
            backup=dict(type="bool", default=True),
            backup_keep=dict(type="int", default=5),
            gitignore=dict(type="dict", options=GITIGNORE_OPTIONS),
        ),
        mutually_exclusive=[("path", "files"), ("content", "files")],
        required_one_of=[("path", "files")],
        required_together=[("path", "content")],
        supports_check_mode=True,
    )
    block = module.params["gitignore"]
    if module.params["files"] is not None:
        try:
            gitignore = plan_gitignore(block["project_dir"], block["block"], block["entries"]) if block else None
            module.exit_json(**run_files(module, gitignore))
        except ModuleFailure as exc:
            module.fail_json(msg=str(exc))
    path = module.params["path"]
    try:
        gitignore = plan_gitignore(block["project_dir"], block["block"], block["entries"]) if block else None
        plan = make_plan(module.params, module.check_mode)
        backup_file = None
        if not module.check_mode:
            if gitignore is not None:
                apply_gitignore(gitignore)
            backup_file = apply(plan)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=path)

    result = file_result(plan, backup_file)
    if module._diff:
        result["diff"] = plan["diff"]
    module.exit_json(**with_gitignore(result, gitignore, module._diff))


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_amazon_q
short_description: Keep Amazon Q's .gitignore block, config dir and config.json in one round trip
description:
  - >-
    Does what the amazon_q role needs on a host in one module run: the managed block
    C(# BEGIN crpbot-ansible amazon_q) of O(gitignore_entries) in C(<project_dir>/.gitignore) (the same code
    as the crpbot_gitignore module), the directory C(<project_dir>/<config_dir>) and C(config.json) in it
    with O(content), rendered on the controller (C(lookup('ansible.builtin.template', 'config.json.j2'))).
  - >-
    B(Order.) Everything is checked and planned before anything is written; then the C(.gitignore) block is
    written first, so git never sees the config, then the directory, then the file.
  - >-
    B(When it counts as changed.) The C(.gitignore) when its block is missing or holds other entries (see
    crpbot_gitignore); the directory when it is missing or its mode (O(directory_mode)) or owner (O(owner))
    differ; C(config.json) when it is missing, its bytes differ from O(content), or its mode (O(mode)) or owner
    differ. Mode and owner are fixed in place; the file is written atomically (temp file + rename).
  - >-
    The config is not secret: the diff shows the C(.gitignore) and C(config.json) before and after, and a
    directory or a file whose mode or owner change as C(mode) and C(owner) lines.
  - Fails, naming the dir, when O(project_dir) does not exist (check out the repo first).
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  project_dir:
    description: Absolute path of the crpbot checkout.
    type: path
    required: true
  config_dir:
    description: Directory under O(project_dir) that holds C(config.json), a single name.
    type: str
    default: .amazon-q
  content:
    description:
      - The exact text of C(config.json) (written as UTF-8, no newline added). It must be a JSON object.
    type: str
    required: true
  owner:
    description:
      - User name or numeric id that owns the directory and the file. When omitted, an existing one keeps its
        owner and a new one is owned by the user the module runs as.
    type: str
  mode:
    description: Permissions of C(config.json), as an octal string such as V("0644") or an integer.
    type: raw
    default: "0644"
  directory_mode:
    description: Permissions of the config directory, as O(mode).
    type: raw
    default: "0755"
  gitignore_entries:
    description:
      - The lines of the C(amazon_q) block in C(<project_dir>/.gitignore) (those not already written outside
        it). An empty list removes the block.
    type: list
    elements: str
    default: [.amazon-q/, .amazonq/]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: crpbot_gitignore
"""

EXAMPLES = r"""
- name: Keep the Amazon Q entries in .gitignore and write its config for this host's role
  crpbot_amazon_q:
    project_dir: /home/numan/crpbot
    owner: numan
    content: "{{ lookup('ansible.builtin.template', 'config.json.j2') }}"
    gitignore_entries: [.amazon-q/, .amazonq/]
"""

RETURN = r"""
path:
  description: The path of C(config.json).
  returned: always
  type: str
  sample: /home/numan/crpbot/.amazon-q/config.json
content_changed:
  description: Whether C(config.json) was (or, in check mode, would be) rewritten.
  returned: success
  type: bool
  sample: false
directory_changed:
  description: Whether the config directory was (or would be) created, or its mode or owner fixed.
  returned: success
  type: bool
  sample: false
gitignore:
  description: The C(.gitignore) block's part of the run.
  returned: success
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
      sample: [.amazon-q/]
"""

import json
import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_files import (
    ModuleFailure,
    apply,
    apply_gitignore,
    ensure_directory,
    gitignore_diff,
    gitignore_result,
    parse_mode,
    plan_changed,
    plan_gitignore,
    plan_write,
    read_existing,
    resolve_uid,
)

BLOCK = "amazon_q"


def attributes(st):
    return "" if st is None else f"mode {stat.S_IMODE(st.st_mode):04o}\nowner {st.st_uid}\n"


def make_plan(params):
    """Everything the module would do, checked and computed without writing anything."""
    project, config_dir, content = params["project_dir"], params["config_dir"], params["content"]
    if not os.path.isabs(project):
        raise ModuleFailure(f"project_dir must be absolute, got {project}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", config_dir) or config_dir in (".", ".."):
        raise ModuleFailure(f"config_dir must be a single directory name under {project} (got {config_dir!r}); "
                            "use e.g. .amazon-q")
    try:
        parsed = json.loads(content)
    except ValueError as exc:
        raise ModuleFailure(f"content of config.json is not JSON ({exc.msg} at line {exc.lineno}); fix the "
                            "template or amazon_q_configs") from None
    if not isinstance(parsed, dict):
        raise ModuleFailure("content of config.json must be a JSON object; fix the template or amazon_q_configs")
    file_mode, dir_mode = parse_mode(params["mode"]), parse_mode(params["directory_mode"])
    uid = resolve_uid(params["owner"])
    gitignore = plan_gitignore(project, BLOCK, params["gitignore_entries"])
    directory = os.path.join(project, config_dir)
    path = os.path.join(directory, "config.json")
    try:
        dir_st = os.lstat(directory)
    except FileNotFoundError:
        dir_st = None
    if dir_st is not None and not stat.S_ISDIR(dir_st.st_mode):
        raise ModuleFailure(f"{directory} exists and is not a directory; move it away")
    directory_changed = ensure_directory(directory, dir_mode, uid, check_mode=True)
    old_bytes, st = read_existing(path) if dir_st is not None else (None, None)
    file_plan = plan_write(path, old_bytes, st, content.encode("utf-8"), file_mode, uid, None)
    new_uid = os.geteuid() if file_plan["uid"] is None else file_plan["uid"]
    diffs = [gitignore_diff(gitignore), {
        "before_header": path, "after_header": path,
        "before": "" if old_bytes is None else old_bytes.decode("utf-8", "replace"), "after": content,
    }]
    if directory_changed:
        new_dir_uid = uid if uid is not None else dir_st.st_uid if dir_st is not None else os.geteuid()
        diffs.append({"before_header": f"{directory}/ (directory)", "after_header": f"{directory}/ (directory)",
                      "before": attributes(dir_st), "after": f"mode {dir_mode:04o}\nowner {new_dir_uid}\n"})
    if file_plan["attrs_changed"]:
        diffs.append({"before_header": f"{path} (mode, owner)", "after_header": f"{path} (mode, owner)",
                      "before": attributes(st), "after": f"mode {file_mode:04o}\nowner {new_uid}\n"})
    return {"gitignore": gitignore, "directory": directory, "dir_mode": dir_mode, "uid": uid,
            "directory_changed": directory_changed, "file": file_plan, "diff": diffs}


def apply_plan(plan):
    """The .gitignore first (git never sees the config), then the directory, then config.json."""
    apply_gitignore(plan["gitignore"])
    if plan["directory_changed"]:
        try:
            ensure_directory(plan["directory"], plan["dir_mode"], plan["uid"])
        except OSError as exc:
            raise ModuleFailure(f"could not make the directory {plan['directory']}: {exc.strerror}") from None
    apply(plan["file"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            config_dir=dict(type="str", default=".amazon-q"),
            content=dict(type="str", required=True),
            owner=dict(type="str"),
            mode=dict(type="raw", default="0644"),
            directory_mode=dict(type="raw", default="0755"),
            gitignore_entries=dict(type="list", elements="str", default=[".amazon-q/", ".amazonq/"]),
        ),
        supports_check_mode=True,
    )
    path = os.path.join(module.params["project_dir"], module.params["config_dir"], "config.json")
    try:
        plan = make_plan(module.params)
        if not module.check_mode:
            apply_plan(plan)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=path)
    result = dict(
        changed=plan["gitignore"]["changed"] or plan["directory_changed"] or plan_changed(plan["file"]),
        path=path,
        content_changed=plan["file"]["content_changed"],
        directory_changed=plan["directory_changed"],
        gitignore=gitignore_result(plan["gitignore"]),
    )
    if module._diff:
        result["diff"] = plan["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()

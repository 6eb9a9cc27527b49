#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_staged_files
short_description: Promote, restore or clear the staged copies of secret files during a credential rotation
description:
  - A credential rotation stages each new file next to the live one as C(<file>.pending) (same
    directory, so the same filesystem, mode C(0600)). This module moves those files, one path at a
    time, with renames only, so the live file is never missing or half-written.
  - V(promoted) keeps the live file as C(<file>.prev) (a hard link, so the same inode, owner and
    C(0600) mode) and renames C(<file>.pending) over the live file. A C(.prev) already there is
    kept, never overwritten, as it is the version from before the rotation began (a resumed rotation
    may promote twice). A path with no C(.pending) and a C(.prev) counts as already promoted.
  - V(restored) renames C(<file>.prev) back over the live file (the rollback) and removes
    C(<file>.pending).
  - V(absent) removes C(<file>.pending) and C(<file>.prev) (the end of a rotation that went well,
    or of one rolled back before anything was promoted).
  - V(inspected) changes nothing and returns the leftovers (C(.pending) and C(.prev) files that exist).
  - Works on names only, except with O(purge_backups_holding), and the result holds paths, never content.
options:
  paths:
    description: The live files (absolute paths), such as C(/root/crpbot/.db_password).
    type: list
    elements: path
    required: true
  state:
    description: What to do with the staged copies.
    type: str
    choices: [promoted, restored, absent, inspected]
    required: true
  purge_backups_holding:
    description:
      - With O(state=absent) (a rotation that finished well), also remove every backup of the paths
        (C(<file>.<YYYYmmddTHHMMSS>[-n].bak), as the project's writers name them) whose content holds one of
        these secrets, as written or percent-encoded (as in a C(DB_URL)), that is, the credentials the
        rotation replaced. Never logged.
    type: list
    elements: str
    default: []
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Promote the staged password files
  crpbot_staged_files:
    paths:
      - /root/crpbot/.db_password
      - /root/crpbot/.env
    state: promoted

- name: Put the previous files back
  crpbot_staged_files:
    paths: [/root/crpbot/.db_password, /root/crpbot/.env]
    state: restored
"""

RETURN = r"""
purged_backups:
  description: The backups removed (or, in check mode, to remove) because they held a replaced secret.
  returned: always
  type: list
  elements: str
  sample: [/root/crpbot/.db_password.20250101T120000.bak]
changed_paths:
  description: The live paths whose files were (or, in check mode, would be) moved or removed.
  returned: always
  type: list
  elements: str
  sample: [/root/crpbot/.db_password]
leftovers:
  description: The C(.pending) and C(.prev) files that exist (for V(inspected), before; otherwise after the change).
  returned: always
  type: list
  elements: str
  sample: [/root/crpbot/.env.prev]
"""

import os
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_files import fsync_dir, list_backups

PENDING = ".pending"
PREV = ".prev"


def plan(path, state):
    """The renames/removals one path needs for ``state``, as a list of (op, src, dst)."""
    pending, prev = path + PENDING, path + PREV
    has_pending, has_prev, has_live = (os.path.lexists(p) for p in (pending, prev, path))
    if state == "promoted":
        if not has_pending:
            if has_prev:
                return []  # promoted already
            raise ValueError(f"{path}: nothing is staged ({pending} is missing)")
        ops = [] if has_prev or not has_live else [("link", path, prev)]
        return ops + [("rename", pending, path)]
    if state == "restored":
        ops = [("rename", prev, path)] if has_prev else []
        return ops + ([("remove", pending, None)] if has_pending else [])
    if state == "absent":
        return [("remove", p, None) for p, exists in ((pending, has_pending), (prev, has_prev)) if exists]
    return []


def apply(ops):
    for op, src, dst in ops:
        if op == "link":
            os.link(src, dst)
        elif op == "rename":
            os.replace(src, dst)
        else:
            os.unlink(src)
        fsync_dir(os.path.dirname(src))


def backups_holding(paths, secrets):
    """The backups of ``paths`` whose bytes hold one of ``secrets`` (as written or percent-encoded)."""
    needles = {form.encode("utf-8") for secret in secrets if secret for form in (secret, quote(secret, safe=""))}
    found = []
    for path in paths:
        for backup in list_backups(path):
            try:
                with open(backup, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if any(needle in data for needle in needles):
                found.append(backup)
    return found


def leftovers(paths):
    return [p + suffix for p in paths for suffix in (PENDING, PREV) if os.path.lexists(p + suffix)]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            state=dict(type="str", required=True, choices=["promoted", "restored", "absent", "inspected"]),
            purge_backups_holding=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    paths, state = module.params["paths"], module.params["state"]
    bad = [p for p in paths if not os.path.isabs(p)]
    if bad:
        module.fail_json(msg=f"paths must be absolute: {', '.join(bad)}", changed_paths=[], leftovers=[])
    found = leftovers(paths)
    try:
        plans = {p: plan(p, state) for p in paths}
    except ValueError as exc:
        module.fail_json(msg=str(exc), changed_paths=[], leftovers=found)
    changed = [p for p in paths if plans[p]]
    purged = backups_holding(paths, module.params["purge_backups_holding"]) if state == "absent" else []
    if not module.check_mode:
        for backup in purged:
            try:
                os.unlink(backup)
            except FileNotFoundError:
                pass
            except OSError as exc:
                module.fail_json(msg=f"{backup}: {exc.strerror} (removing backups that hold a replaced secret)",
                                 changed_paths=changed, leftovers=found, purged_backups=[])
        for path in changed:
            try:
                apply(plans[path])
            except OSError as exc:
                module.fail_json(msg=f"{path}: {exc.strerror} ({state} stopped here)",
                                 changed_paths=changed[:changed.index(path)], leftovers=leftovers(paths))
        found = found if state == "inspected" else leftovers(paths)
    module.exit_json(changed=bool(changed or purged), changed_paths=changed, leftovers=found, purged_backups=purged)


if __name__ == "__main__":
    main()

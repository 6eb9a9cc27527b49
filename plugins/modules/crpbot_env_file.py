#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_env_file
short_description: Manage keys in crpbot's C(.env) without losing what a person added by hand
description:
  - >-
    Sets the keys given in O(values) and O(secrets) in a python-dotenv C(.env) file and leaves
    every other line (hand-added keys, comments, blank lines) exactly where and as it was.
  - >-
    The file is read the way the bot reads it, with python-dotenv's rules (pydantic-settings calls
    C(dotenv_values) with interpolation on). The module itself needs only the Python standard library
    on the target.
  - >-
    B(Keys.) A key must match C(^[A-Za-z_][A-Za-z0-9_]*$). Keys are matched case-insensitively, as
    pydantic-settings reads them by default, so a hand-written C(runtime_mode=live) is an occurrence
    of C(RUNTIME_MODE) too. A key given in both O(values) and O(secrets) is an error.
  - >-
    B(Where keys go.) A managed key already in the file keeps its position and every occurrence of it
    is updated, so the file has one meaning; its C(export) prefix, key spelling and inline comment are
    kept. Absent keys are appended at the end, in the order given, after one comment line
    C(# Managed by crpbot-ansible), which is added only if the file does not have it yet.
  - >-
    B(When the file counts as changed.) Values are compared decoded, so a hand-written C(KEY="x")
    equal to the managed value C(x) is unchanged and left as the person wrote it. The content changes
    when a managed key is absent or one of its occurrences decodes to another value (a bare C(KEY)
    line without C(=) counts as different), or when the file does not exist yet. The result is also
    changed when the file's mode, or its owner or group (when O(owner) or O(group) is given), differ;
    those are fixed in place even if the content is unchanged.
  - >-
    B(Quoting rules.) A value made only of C(A-Z a-z 0-9 _ @ % + , . / : = -) is written unquoted; the
    empty string as C(''); any other value in single quotes, with C(\) and C(') escaped as C(\\)
    and C(\') (the only escapes python-dotenv decodes in single quotes), and newlines written as they
    are, so a PEM key stays readable over several lines; a value containing a carriage return in
    double quotes with C(\\), C(\"), C(\r) and C(\n) escapes (a raw carriage return would become a
    newline when the bot reads the file in text mode).
  - >-
    B(Refused values.) python-dotenv expands C(${NAME}) and C(${NAME:-default}) in unquoted, single-
    and double-quoted values alike and has no escape for it, so a value containing such a reference
    cannot be written so that the bot reads it back, and the module fails naming the key. C($NAME)
    without braces, or a lone C(${), is not expanded and is written as it is. A NUL character or text
    that is not valid Unicode is refused too. A value is never altered silently.
  - >-
    B(Writing.) When the content changes, the new file is written atomically, a temporary file in the
    same directory (created C(0600)), fsync, chown, chmod, rename over O(path). The parent directory
    is not managed; the module fails if it does not exist.
  - >-
    B(Backups.) When the content changes, O(backup=true) and a previous file existed, the previous
    file is kept as C(<path>.<YYYYmmddTHHMMSS>.bak) (host local time; C(<path>.<YYYYmmddTHHMMSS>-<n>.bak)
    if that name is taken), mode C(0600), with the previous file's owner and group.
  - >-
    B(Secrets.) No value of O(secrets), and no value of a key the module does not manage, ever appears
    in the result, a warning, an error message or the diff; errors name keys only. In the diff those
    values, comment text (whole-line and inline) and lines python-dotenv cannot parse are shown as
    C(********); only the values of O(values) and the C(# Managed by crpbot-ansible) marker are shown.
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  path:
    description:
      - Absolute path of the C(.env) file. A missing file is treated as empty and created.
      - It must not be a symbolic link; its parent directory must exist.
    type: path
    required: true
  values:
    description:
      - Non-secret settings to set, C(KEY) to value. They are shown in diffs and their previous
        values are returned in RV(previous_values).
      - Values must be strings (integers are converted); booleans, floats, lists and null are refused
        so that, for example, a YAML C(yes) does not turn into C(True).
    type: dict
    default: {}
  secrets:
    description:
      - Secret settings to set, C(KEY) to value. Treated as O(values), but masked everywhere.
    type: dict
    default: {}
  owner:
    description:
      - User name or numeric id that should own the file. When omitted, an existing file keeps its
        owner and a new file is owned by the user the module runs as.
    type: str
  group:
    description:
      - Group name or numeric id of the file. When omitted, an existing file keeps its group.
    type: str
  mode:
    description:
      - Permissions of the file, as an octal string such as V("0600") (quote it in YAML) or an integer
        (a YAML C(0600) without quotes arrives as the integer 384 and means the same).
      - Symbolic modes are not supported.
    type: raw
    default: "0600"
  backup:
    description:
      - Keep the previous file as C(<path>.<YYYYmmddTHHMMSS>.bak) (mode C(0600)) when the content changes.
    type: bool
    default: true
notes:
  - Supports check mode with an honest prediction (the plan is computed, nothing is written) and diff
    mode (with values masked as described above).
  - The file is written as UTF-8; an existing file that is not valid UTF-8 is refused.
  - An existing file whose lines python-dotenv cannot parse is kept as it is, unless an unterminated
    quote in it would swallow the lines the module writes; then the module fails naming the line.
seealso:
  - name: python-dotenv file format
    description: The syntax the bot's C(.env) reader accepts.
    link: https://github.com/theskumar/python-dotenv#file-format
"""

EXAMPLES = r"""
- name: Write the QC host's .env
  crpbot_env_file:
    path: /home/numan/crpbot/.env
    owner: numan
    group: numan
    values:
      RUNTIME_MODE: dryrun
      DB_BACKEND: rds
      AWS_REGION: us-east-1
    secrets:
      DB_URL: "{{ crpbot_db_url }}"
      COINBASE_API_KEY_NAME: "{{ vault_coinbase_api_key_name }}"
      COINBASE_API_PRIVATE_KEY: "{{ vault_coinbase_api_private_key }}"
  register: crpbot_env_result

- name: Say so when a hand-set live mode was put back to dryrun
  ansible.builtin.debug:
    msg: "RUNTIME_MODE was live in {{ crpbot_env_result.path }}; it is dryrun now"
  when: crpbot_env_result.previous_values.RUNTIME_MODE | default('') == 'live'

- name: Write without keeping a backup, group-readable
  crpbot_env_file:
    path: /root/crpbot/.env
    values:
      LOG_LEVEL: INFO
    mode: "0640"
    backup: false
"""

RETURN = r"""
path:
  description: The path of the file.
  returned: always
  type: str
  sample: /home/numan/crpbot/.env
changed_keys:
  description: Managed keys that were present with another value and were rewritten (names only).
  returned: always
  type: list
  elements: str
  sample: [RUNTIME_MODE, DB_URL]
added_keys:
  description: Managed keys that were absent and were appended at the end (names only).
  returned: always
  type: list
  elements: str
  sample: [COINBASE_API_KEY_NAME]
kept_keys:
  description: Keys in the file the module does not manage, kept as they were (names only).
  returned: always
  type: list
  elements: str
  sample: [MY_EXPERIMENT_FLAG]
previous_values:
  description:
    - For each key of O(values) whose value changed or that was added, its previous decoded value
      (before interpolation; the last occurrence, as python-dotenv reads it), or null if it was absent
      or had no value. Keys of O(secrets) never appear here.
  returned: always
  type: dict
  sample: {RUNTIME_MODE: live, LOG_LEVEL: null}
backup_file:
  description: Path of the backup of the previous file.
  returned: when the content changed, O(backup) is true, a previous file existed and not in check mode
  type: str
  sample: /home/numan/crpbot/.env.20250101T120000.bak
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_env import (
    EnvFileError,
    EnvValueError,
    check_key,
    effective_values,
    mask_for_diff,
    merge,
    parse_env,
    render,
)
from ansible.module_utils.crpbot_files import (
    ModuleFailure,
    apply,
    parse_mode,
    plan_write,
    read_existing,
    resolve_gid,
    resolve_uid,
)


def settings(option, given):
    """Validate one of the ``values``/``secrets`` dicts; messages never contain a value."""
    result = {}
    for key, value in (given or {}).items():
        try:
            check_key(key)
        except EnvValueError as exc:
            raise ModuleFailure(f"{option}: {exc}") from None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ModuleFailure(f"{option}.{key} must be a string, got {type(value).__name__}; quote it in YAML")
        result[key] = value if isinstance(value, str) else str(value)
    return result


def managed_settings(values, secrets):
    seen = {}
    for option, given in (("values", values), ("secrets", secrets)):
        for key in given:
            if key.lower() in seen:
                other_option, other_key = seen[key.lower()]
                raise ModuleFailure(
                    f"key {key} is given in {option} and as {other_key} in {other_option};"
                    " give each key once (keys are case-insensitive for pydantic-settings)"
                )
            seen[key.lower()] = (option, key)
    return {**values, **secrets}


def make_plan(params):
    """Everything the module would do, computed without writing anything."""
    path = params["path"]
    if not os.path.isabs(path):
        raise ModuleFailure(f"path must be absolute, got {path}")
    values = settings("values", params["values"])
    secrets = settings("secrets", params["secrets"])
    managed = managed_settings(values, secrets)
    mode = parse_mode(params["mode"])
    uid = resolve_uid(params["owner"])
    gid = resolve_gid(params["group"])

    old_bytes, st = read_existing(path)
    if old_bytes is None:
        old_text = ""
    else:
        try:
            old_text = old_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ModuleFailure(f"{path} is not valid UTF-8 text (python-dotenv reads it as UTF-8)") from None
    old_lines = parse_env(old_text)
    try:
        new_lines, report = merge(old_lines, managed)
    except EnvValueError as exc:
        option = "secrets" if exc.key in secrets else "values"
        raise ModuleFailure(f"{option}.{exc}") from None
    except EnvFileError as exc:
        raise ModuleFailure(f"{path}: {exc}") from None
    new_text = render(new_lines)

    previous = effective_values(old_lines)
    touched = set(report["changed"]) | set(report["added"])
    return {
        **plan_write(path, old_bytes, st, new_text.encode("utf-8"), mode, uid, gid),
        "report": report,
        "previous_values": {key: previous.get(key.lower()) for key in values if key in touched},
        "diff": {
            "before_header": path,
            "after_header": path,
            "before": mask_for_diff(old_lines, values) if old_bytes is not None else "",
            "after": mask_for_diff(new_lines, values),
        },
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            values=dict(type="dict", default={}, no_log=False),
            secrets=dict(type="dict", default={}, no_log=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
            backup=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        plan = make_plan(module.params)
        backup_file = None
        if not module.check_mode:
            backup_file = apply(plan, module.params["backup"])
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=path)

    result = dict(
        changed=plan["content_changed"] or plan["attrs_changed"],
        path=path,
        changed_keys=plan["report"]["changed"],
        added_keys=plan["report"]["added"],
        kept_keys=plan["report"]["kept"],
        previous_values=plan["previous_values"],
    )
    if backup_file is not None:
        result["backup_file"] = backup_file
    if module._diff:
        result["diff"] = plan["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()

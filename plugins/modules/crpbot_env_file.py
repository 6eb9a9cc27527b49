#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_env_file
short_description: Manage keys in crpbot's C(.env) without losing what a person added by hand, never live on QC
description:
  - >-
    Sets C(RUNTIME_MODE) and the keys given in O(values) and O(secrets) in a python-dotenv C(.env) file and
    leaves every other line (hand-added keys, comments, blank lines) exactly where and as it was.
  - >-
    The file is read the way the bot reads it, with python-dotenv's rules (pydantic-settings calls
    C(dotenv_values) with interpolation on). The module itself needs only the Python standard library
    on the target.
  - >-
    B(RUNTIME_MODE.) Every binding the app could read as its mode (any letter case, with C(export),
    duplicated, bare) is set to one value: the action plugin of the same name decides it on the controller
    from the inventory's groups (O(runtime_mode=auto)), and the module, on the host, refuses C(live) for a
    user that is not root, for O(host_role=qc) and without O(live_approved), whatever it is given. No
    setting may name C(RUNTIME_MODE) (O(values), O(secrets)); a binding whose value was corrected is
    returned in RV(mode_corrected_from) and the action warns naming the host.
  - >-
    B(Keys.) A key must match C(^[A-Za-z_][A-Za-z0-9_]*$). Keys are matched case-insensitively, as
    pydantic-settings reads them by default, so a hand-written C(runtime_mode=live) is an occurrence
    of C(RUNTIME_MODE) too. A key given in both O(values) and O(secrets) is an error.
  - >-
    B(Where keys go.) A managed key already in the file keeps its position and every occurrence of it
    is updated, so the file has one meaning; its C(export) prefix, key spelling and inline comment are
    kept. Absent keys are appended at the end, in the order given, after the marker line
    C(# Managed by crpbot-ansible: KEY ...), which records the names of every key the module manages.
  - >-
    B(Keys no longer managed.) With O(prune=true), a key the marker records that this call no longer
    gives (a secret removed from the vault, a setting removed from the variables) is removed, every
    binding of it, and named in RV(removed_keys). A key a person added by hand is never in the record and
    is never removed. O(prune=false) (a write of a few keys, such as a rotation's C(DB_URL)) keeps them.
  - >-
    B(When the file counts as changed.) Values are compared decoded, so a hand-written C(KEY="x")
    equal to the managed value C(x) is unchanged and left as the person wrote it. The content changes
    when a managed key is absent or one of its occurrences decodes to another value (a bare C(KEY)
    line without C(=) counts as different), when a key is removed, when the record changes, or when the
    file does not exist yet. The result is also changed when the file's mode, owner or group (when given)
    differ, or when backups beyond O(backup_keep) are removed.
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
    that is not valid Unicode is refused too. A value is never altered silently. The action plugin
    checks all of this on the controller first, so a bad value stops the run before the host is touched.
  - >-
    B(Secrets.) No value of O(secrets), and no value of a key the module does not manage, ever appears
    in the result, a warning, an error message or the diff; errors name keys only. In the diff those
    values, comment text (whole-line and inline) and lines python-dotenv cannot parse are shown as
    C(********); only the values of O(values), C(RUNTIME_MODE) and the marker line (key names) are shown.
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
  prune:
    description:
      - Remove the keys the marker line records as managed that this call no longer gives (see above).
    type: bool
    default: true
  runtime_mode:
    description:
      - V(auto) (the action plugin only, its default) writes C(live) on a builder the inventory approves
        (group C(live_approved)), run as root, whose run carries O(live_confirmation); C(dryrun) everywhere
        else. An approved host without the confirmation is refused and nothing is written.
      - V(dryrun) writes C(dryrun). V(live) is V(auto) that must come out C(live), else it is refused.
      - V(preserve) keeps an existing C(live) only where live is allowed (never introduces it) and writes
        C(dryrun) everywhere else; for writes of other keys, such as a rotation's staged C(DB_URL).
      - The module itself takes V(dryrun), V(live) or V(preserve) (default V(dryrun)).
    type: str
    choices: [auto, dryrun, live, preserve]
  live_models:
    description:
      - The approved promoted model files (each C(path), C(sha256), C(model_id)). C(live) is written only when
        there is at least one and every one verifies on the host (the action plugin gives them from the
        approvals file, for live only).
    type: list
    elements: dict
    default: []
  live_confirmation:
    description:
      - Action plugin only. The run's confirmation for live trading; only the exact text C(CONFIRM) confirms.
    type: str
    default: ""
  validate_only:
    description:
      - Action plugin only. Check everything on the controller (the inventory's authority, the mode and its
        confirmation, every key and value, the C(DB_URL) fields) and stop without contacting the host.
        Playbooks run this once per host before changing anything.
    type: bool
    default: false
  host_role:
    description:
      - The host's role. Set by the action plugin from the inventory's groups; a task that gives it is refused.
      - Required by the module when it is run without the action plugin.
    type: str
    choices: [qc, builder]
  live_approved:
    description:
      - Whether the inventory approves live for the host (group C(live_approved)). Set by the action plugin
        from the inventory's groups; a task that gives it is refused.
    type: bool
    default: false
  db_url:
    description:
      - Build C(DB_URL) on the host and manage it as a secret (masked like O(secrets)).
      - C(rds) gives C(postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE), with user, password and
        database percent-encoded exactly as SQLAlchemy's C(make_url) decodes them (every reserved
        character and the space as C(%XX); C(quote_plus) would be wrong), and C(?sslmode=...) when
        O(db_url.sslmode) is not empty.
      - C(sqlite) gives C(sqlite:///<project_dir>/tradingai.db); refused on a builder, which always uses RDS.
      - C(DB_URL) may then not be given in O(values) or O(secrets) too. Errors name the field, never
        its value.
    type: dict
    suboptions:
      backend:
        description: Which database the app uses.
        type: str
        required: true
        choices: [rds, sqlite]
      user:
        description: Database user (rds).
        type: str
      password:
        description: Database password (rds). Never shown.
        type: str
      host:
        description: PostgreSQL host name or address (rds).
        type: str
      port:
        description: PostgreSQL port (rds).
        type: int
      database:
        description: Database name (rds).
        type: str
      sslmode:
        description: libpq sslmode appended to the URL; empty leaves it out.
        type: str
        default: ""
      project_dir:
        description: Absolute project dir holding C(tradingai.db) (sqlite).
        type: str
notes:
  - Supports check mode with an honest prediction (the plan is computed, nothing is written) and diff
    mode (with values masked as described above).
  - The file is written as UTF-8; an existing file that is not valid UTF-8 is refused.
  - An existing file whose lines python-dotenv cannot parse is kept as it is, unless an unterminated
    quote in it would swallow the lines the module writes; then the module fails naming the line.
  - The money-safety rules are C(plugins/module_utils/crpbot_policy.py), shared with the inventory plugin and
    the C(crpbot_policy) action.
  - With O(gitignore), the C(.gitignore) block is planned with the C(.env) (every refusal comes before anything
    is written) and written first; the diff is then a list, the C(.gitignore) first. O(validate_only) ignores it.
seealso:
  - name: python-dotenv file format
    description: The syntax the bot's C(.env) reader accepts.
    link: https://github.com/theskumar/python-dotenv#file-format
  - module: crpbot_policy
extends_documentation_fragment:
  - crpbot_files
  - crpbot_gitignore
"""

EXAMPLES = r"""
- name: Keep the .env out of git and write it (RUNTIME_MODE from the inventory, DB_URL built on the host and masked)
  crpbot_env_file:
    path: /root/crpbot/.env
    owner: root
    gitignore:
      project_dir: /root/crpbot
      block: crpbot_env
      entries: [.env, .env.*.bak]
    live_confirmation: "{{ crpbot_env_live_confirm }}"
    values:
      CRPBOT_HOST_ROLE: builder
      AWS_REGION: us-east-1
    secrets:
      TELEGRAM_BOT_TOKEN: "{{ vault_telegram_bot_token }}"
    db_url:
      backend: rds
      host: crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com
      port: 5432
      database: crpbot
      user: crpbot_admin
      password: "{{ vault_crpbot_db_password }}"
      sslmode: require
  register: crpbot_env_result
  no_log: true

- name: Say which keys changed, were added or removed (names only)
  ansible.builtin.debug:
    msg: >-
      changed {{ crpbot_env_result.changed_keys }}, added {{ crpbot_env_result.added_keys }},
      removed {{ crpbot_env_result.removed_keys }}

- name: Check every host's .env input before changing anything
  crpbot_env_file:
    path: /home/numan/crpbot/.env
    validate_only: true
    values:
      LOG_LEVEL: INFO

- name: Stage a new DB_URL in a copy of the .env, keeping everything else (a rotation)
  crpbot_env_file:
    path: /root/crpbot/.env.pending
    runtime_mode: preserve
    prune: false
    backup: false
    db_url:
      backend: rds
      host: db.example
      port: 5432
      database: crpbot
      user: crpbot_admin
      password: "{{ new_password }}"
  no_log: true
"""

RETURN = r"""
gitignore:
  description: The C(.gitignore) block's part of the run (O(gitignore)); paths and entries only.
  returned: when O(gitignore) was given, not with O(validate_only)
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
      sample: [.env, .env.*.bak]
path:
  description: The path of the file.
  returned: always
  type: str
  sample: /home/numan/crpbot/.env
runtime_mode:
  description: The C(RUNTIME_MODE) every binding of the file holds afterwards (or, with O(validate_only), would).
  returned: always
  type: str
  sample: dryrun
mode_corrected_from:
  description: The other values C(RUNTIME_MODE) bindings held before (for example a C(live) set by hand on QC).
  returned: always
  type: list
  elements: str
  sample: [live]
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
removed_keys:
  description: Keys the module managed before and no longer manages, removed (names only; O(prune=true)).
  returned: always
  type: list
  elements: str
  sample: [TELEGRAM_CHAT_ID]
kept_keys:
  description: Keys in the file the module does not manage, kept as they were (names only).
  returned: always
  type: list
  elements: str
  sample: [MY_EXPERIMENT_FLAG]
previous_values:
  description:
    - For each key of O(values) (and C(RUNTIME_MODE)) whose value changed or that was added, its previous
      decoded value (before interpolation; the last occurrence, as python-dotenv reads it), or null if it
      was absent or had no value. Keys of O(secrets) never appear here.
  returned: always
  type: dict
  sample: {RUNTIME_MODE: live, LOG_LEVEL: null}
backup_file:
  description: Path of the backup of the previous file.
  returned: when the content changed, O(backup) is true, a previous file existed and not in check mode
  type: str
  sample: /home/numan/crpbot/.env.20250101T120000.bak
removed_backups:
  description: The oldest backups removed (or, in check mode, to remove) so that O(backup_keep) remain.
  returned: when there were more than O(backup_keep)
  type: list
  elements: str
  sample: [/home/numan/crpbot/.env.20241201T090000.bak]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_env import (
    EnvFileError,
    EnvRequestError,
    EnvValueError,
    bindings,
    check_request,
    effective_values,
    mask_for_diff,
    merge,
    parse_env,
    render,
)
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
from ansible.module_utils.crpbot_models import live_models_refusal
from ansible.module_utils.crpbot_policy import LIVE, MODE_KEY, PolicyError, decide_mode


def make_plan(params, euid=None):
    """Everything the module would do, computed without writing anything.

    ``euid``: the user the module runs as (``os.geteuid()`` unless a test says otherwise); the
    RUNTIME_MODE rule reads it, never a parameter.
    """
    path = params["path"]
    if not os.path.isabs(path):
        raise ModuleFailure(f"path must be absolute, got {path}")
    role = params["host_role"]
    try:
        values, secrets = check_request(params["values"], params["secrets"], params.get("db_url"), role)
    except EnvRequestError as exc:
        raise ModuleFailure(str(exc)) from None
    managed = {**values, **secrets}
    file_mode = parse_mode(params["mode"])
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
    mode_bindings = [value for key, value in bindings(old_lines) if key.lower() == MODE_KEY.lower()]
    try:
        mode = decide_mode(params["runtime_mode"], role, params["live_approved"],
                           os.geteuid() if euid is None else euid,
                           effective_values(old_lines).get(MODE_KEY.lower()))
    except PolicyError as exc:
        raise ModuleFailure(f"{path}: {exc}") from None
    if mode == LIVE:
        refusal = live_models_refusal(params["live_models"])
        if refusal:
            raise ModuleFailure(f"{path}: RUNTIME_MODE=live refused: {refusal}")
    values = {**values, MODE_KEY: mode}
    managed = {MODE_KEY: mode, **managed}
    try:
        new_lines, report = merge(old_lines, managed, prune=params["prune"])
    except EnvValueError as exc:
        option = "secrets" if exc.key in secrets else "values"
        raise ModuleFailure(f"{option}.{exc}") from None
    except EnvFileError as exc:
        raise ModuleFailure(f"{path}: {exc}") from None
    new_text = render(new_lines)

    previous = effective_values(old_lines)
    touched = set(report["changed"]) | set(report["added"])
    return {
        **plan_write(path, old_bytes, st, new_text.encode("utf-8"), file_mode, uid, gid,
                     backup=params["backup"], keep=params["backup_keep"]),
        "report": report,
        "runtime_mode": mode,
        "mode_corrected_from": sorted({"(no value)" if value is None else value
                                       for value in mode_bindings if value != mode}),
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
            backup_keep=dict(type="int", default=5),
            prune=dict(type="bool", default=True),
            host_role=dict(type="str", required=True, choices=["qc", "builder"]),
            live_approved=dict(type="bool", default=False),
            runtime_mode=dict(type="str", default="dryrun", choices=["dryrun", "live", "preserve"]),
            live_models=dict(type="list", elements="dict", default=[]),
            gitignore=dict(type="dict", options=GITIGNORE_OPTIONS),
            db_url=dict(
                type="dict",
                options=dict(
                    backend=dict(type="str", required=True, choices=["rds", "sqlite"]),
                    user=dict(type="str"),
                    password=dict(type="str", no_log=True),
                    host=dict(type="str"),
                    port=dict(type="int"),
                    database=dict(type="str"),
                    sslmode=dict(type="str", default=""),
                    project_dir=dict(type="str"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        if module.params["backup_keep"] < 1:
            raise ModuleFailure("backup_keep must be 1 or more (use backup: false to keep no backup)")
        block = module.params["gitignore"]
        gitignore = plan_gitignore(block["project_dir"], block["block"], block["entries"]) if block else None
        plan = make_plan(module.params)
        backup_file = None
        if not module.check_mode:
            if gitignore is not None:
                apply_gitignore(gitignore)
            backup_file = apply(plan)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), path=path)

    result = dict(
        changed=plan_changed(plan) or (gitignore is not None and gitignore["changed"]),
        path=path,
        changed_keys=plan["report"]["changed"],
        added_keys=plan["report"]["added"],
        kept_keys=plan["report"]["kept"],
        removed_keys=plan["report"]["removed"],
        previous_values=plan["previous_values"],
        runtime_mode=plan["runtime_mode"],
        mode_corrected_from=plan["mode_corrected_from"],
    )
    if backup_file is not None:
        result["backup_file"] = backup_file
    if plan["stale_backups"]:
        result["removed_backups"] = plan["stale_backups"]
    if gitignore is not None:
        result["gitignore"] = gitignore_result(gitignore)
    if module._diff:
        result["diff"] = plan["diff"] if gitignore is None else [gitignore_diff(gitignore), plan["diff"]]
    module.exit_json(**result)


if __name__ == "__main__":
    main()

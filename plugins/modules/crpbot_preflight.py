#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_preflight
short_description: Run the crpbot pre-flight checklist on a host, read-only
description:
  - Turns the environment audit's "Pre-Flight Checklist" into checks and returns one row per check
    (check, ok, why). It changes nothing on the host or anywhere else, in check mode or not, and the
    module itself never fails because a check failed; C(playbooks/preflight.yml) prints the table
    and fails at the end when a row is not ok.
  - B(repo) the checkout is on O(branch); B(repo is current) HEAD is the remote head, asked with
    C(git ls-remote) (nothing is fetched), and whether it has local changes (the project's own
    managed C(.gitignore) blocks do not count).
  - B(venv) C(.venv/bin/python) exists; B(venv in sync) C(uv sync --locked --dry-run) would make no
    changes.
  - B(.env) the app's python-dotenv (from the venv) reads it; B(RUNTIME_MODE) is O(runtime_mode)
    (a QC host must be C(dryrun)).
  - B(database) C(SELECT 1) with the host's own C(DB_URL), through SQLAlchemy in the venv;
    B(.db_password) the same with the password from C(.db_password) instead.
  - B(AWS identity) STS C(GetCallerIdentity) with the host's AWS profile; B(bucket) O(bucket) is
    listable (one C(ListObjectsV2) call, at most one key), through boto3 in the venv.
  - B(secret files) C(.env), C(.db_password), C(~/.aws/credentials), C(~/.aws/config) are mode
    C(0600) and C(~/.aws) C(0700), all owned by O(owner).
  - The checks that need the app's libraries run C(.venv/bin/python) with a script on standard
    input; secrets are read there from the files, never passed on a command line, and never
    returned (a database error is returned with the password removed).
options:
  branch:
    description: The branch the checkout must be on and current with.
    type: str
    default: main
  remote:
    description: The remote whose branch head the checkout is compared with.
    type: str
    default: origin
  role:
    description: The host's role; a QC host must have C(RUNTIME_MODE=dryrun).
    type: str
    required: true
    choices: [qc, builder]
  runtime_mode:
    description: The RUNTIME_MODE the inventory expects on this host.
    type: str
    default: dryrun
    choices: [dryrun, live]
  owner:
    description: The host user who must own the secret files.
    type: str
    required: true
  uv:
    description: Path of the uv binary.
    type: path
    required: true
  region:
    description: AWS region.
    type: str
    required: true
  bucket:
    description: The S3 bucket that must be listable.
    type: str
    required: true
  env_file:
    description:
      - The C(.env) the app checks read; C(<project_dir>/.env) by default.
      - C(playbooks/rotate_credentials.yml) points it at the staged C(.env.pending) to test a new credential.
    type: path
  db_password_file:
    description: The password file of the B(.db_password) check; C(<project_dir>/.db_password) by default.
    type: path
  aws_credentials_file:
    description: The AWS shared credentials file of the AWS checks; the profile's usual C(~/.aws/credentials) by default.
    type: path
  aws_user:
    description:
      - The IAM user the AWS key must belong to; the B(AWS identity) check fails when STS names
        another identity. Any identity passes when unset.
    type: str
  promoted:
    description:
      - The approved models (C(crpbot_promotion) O(state=check)'s C(promoted)); the B(promoted models) row checks
        that each is in C(models/promoted/) with its approved SHA-256 (none approved is ok unless the host
        runs live). No row when unset.
    type: list
    elements: dict
  logs_status:
    description:
      - The C(status.json) the C(crpbot_logs) shipper writes after each run; the B(logs shipped) row fails when
        it is missing, when the last run failed (its error shown), or when the last successful run is older
        than O(logs_max_age) seconds. No row when unset.
    type: path
  logs_max_age:
    description: Seconds since the last successful shipper run beyond which the row fails; C(0) for no limit.
    type: int
    default: 900
  only:
    description:
      - Which groups of checks to run, in this order; all by default.
      - V(repo) the two repo checks, V(venv) the two venv checks, V(app) the checks run with the
        app's libraries (C(.env), RUNTIME_MODE, database, C(.db_password), AWS identity, bucket),
        V(files) the modes and owners of the secret files, V(models) the promoted models, V(logs) the log
        shipper's last run.
    type: list
    elements: str
    choices: [repo, venv, app, files, models, logs]
    default: [repo, venv, app, files, models, logs]
author:
  - crpbot-ansible contributors
extends_documentation_fragment:
  - crpbot_probes
"""

EXAMPLES = r"""
- name: Run the pre-flight checks
  crpbot_preflight:
    project_dir: /root/crpbot
    role: builder
    owner: root
    home: /root
    uv: /root/.local/bin/uv
    region: us-east-1
    bucket: crpbot-market-data-dev
  register: preflight

- name: Fail when a check failed
  ansible.builtin.assert:
    that: preflight.failed_checks == []
"""

RETURN = r"""
checks:
  description: One row per check, in the order above.
  returned: always
  type: list
  elements: dict
  sample:
    - {check: repo on main, ok: true, why: "on main"}
    - {check: RUNTIME_MODE, ok: false, why: "RUNTIME_MODE is live; a QC host must be dryrun"}
failed_checks:
  description: Names of the checks that are not ok.
  returned: always
  type: list
  elements: str
  sample: [RUNTIME_MODE]
"""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_models import promoted_files, verify_files
from ansible.module_utils.crpbot_probes import (
    VenvError, file_owner_mode, repo_facts, secret_files, venv_probe, venv_state,
)


def row(check, ok, why):
    return {"check": check, "ok": bool(ok), "why": why}


def repo_checks(module, project, branch, remote):
    facts = repo_facts(module, project, branch, remote)
    if not facts["checkout"]:
        why = f"{project} is not a git checkout"
        return [row(f"repo on {branch}", False, why), row("repo is current", False, why)]
    rows = [row(f"repo on {branch}", facts["branch"] == branch, f"on {facts['branch']}")]
    local = facts["local_changes"]
    changes = f"; local changes: {', '.join(local[:5])}" if local else "; no local changes"
    if facts["remote_error"]:
        return rows + [row("repo is current", False, facts["remote_error"])]
    remote_head = facts["remote_head"]
    if facts["relation"] == "current":
        return rows + [row("repo is current", True, f"at {remote}/{branch} {remote_head[:10]}{changes}")]
    if facts["relation"] == "ahead":
        why = f"ahead of {remote}/{branch} (local commits not pushed){changes}"
    else:
        why = f"behind {remote}/{branch} {remote_head[:10]}: run site.yml (or git pull){changes}"
    return rows + [row("repo is current", False, why)]


def venv_checks(module, params):
    state = venv_state(module, params["project_dir"], params["uv"], params["uv_native_tls"])
    if not state["exists"]:
        return [row("venv", False, state["why"]), row("venv in sync", False, "no venv")]
    return [row("venv", True, state["python"]), row("venv in sync", state["in_sync"], state["why"])]


PROBE_CHECKS = (".env readable", "RUNTIME_MODE", "database", ".db_password", "AWS identity", "bucket")


def probe_checks(module, params):
    """The checks that need the app's own libraries: run VENV_PROBE with the venv's python."""
    project = params["project_dir"]
    request = {
        "env_path": params["env_file"] or os.path.join(project, ".env"),
        "db_password_path": params["db_password_file"] or os.path.join(project, ".db_password"),
        "aws_credentials_path": params["aws_credentials_file"],
        "aws_user": params["aws_user"],
        "profile": params["aws_profile"],
        "region": params["region"],
        "bucket": params["bucket"],
        "endpoint_url": params["endpoint_url"],
    }
    try:
        result = venv_probe(module, project, ("env", "db", "aws"), request)
    except VenvError as exc:
        return [row(name, False, f"cannot run the app's libraries: {exc}") for name in PROBE_CHECKS]
    env = result["env"]
    rows = [row(".env readable", env["ok"], f"{env['keys']} keys" if env["ok"] else env["why"])]
    mode = env.get("runtime_mode") if env["ok"] else None
    expected = "dryrun" if params["role"] == "qc" else params["runtime_mode"]
    if params["role"] == "qc" and mode != "dryrun":
        why = f"RUNTIME_MODE is {mode}; a QC host must be dryrun (run site.yml to put it back)"
    else:
        why = f"RUNTIME_MODE is {mode}" + ("" if mode == expected else f"; the inventory expects {expected}")
    rows.append(row("RUNTIME_MODE", mode == expected, why))
    for name, key in (("database", "db"), (".db_password", "db_password"), ("AWS identity", "sts"), ("bucket", "bucket")):
        rows.append(row(name, result[key]["ok"], result[key]["why"]))
    return rows


def secret_file_checks(params):
    rows = []
    for path, want in secret_files(params["home"], params["project_dir"]):
        found = file_owner_mode(path)
        if found is None:
            rows.append(row(f"secret file {path}", False, "missing: run site.yml or sync_credentials.yml"))
            continue
        user, mode = found
        ok = mode == want and user == params["owner"]
        rows.append(row(f"secret file {path}", ok, f"{mode:04o} {user}" + ("" if ok else f"; want {want:04o} {params['owner']}")))
    return rows


def model_checks(params):
    """The approved models are in models/promoted/ and verify (live needs at least one)."""
    wanted = params["promoted"]
    if params["promoted"] is None:
        return []
    if not wanted:
        ok = params["runtime_mode"] != "live"
        return [row("promoted models", ok, "no model approved yet" + ("" if ok else
                    "; live runs only an approved model: approve one with playbooks/promote_model.yml"))]
    problems = verify_files(promoted_files(params["project_dir"], wanted))
    names = ", ".join(f"{item['name']} ({item['model_id']})" for item in wanted)
    return [row("promoted models", not problems, "; ".join(problems) + ": run site.yml" if problems
                else f"verified: {names}")]


def logs_checks(params, now=None):
    """The shipper's last run (its status.json): "logs shipped up to N seconds ago"."""
    path = params["logs_status"]
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            status = json.load(handle)
    except (OSError, ValueError) as exc:
        return [row("logs shipped", False, f"no shipper status ({path}: {type(exc).__name__}): run site.yml")]
    now = time.time() if now is None else now
    last = status.get("last_success")
    age = f"logs shipped up to {int(now - last)} seconds ago" if last else "logs never shipped"
    if not status.get("ok"):
        return [row("logs shipped", False, f"the last run failed: {status.get('error', '?')}; {age}")]
    limit = params["logs_max_age"]
    ok = bool(last) and (not limit or now - last <= limit)
    return [row("logs shipped", ok, age + ("" if ok else f" (more than {limit}: is the crontab entry running?)"))]


GROUPS = {
    "repo": lambda module, params: repo_checks(module, params["project_dir"], params["branch"], params["remote"]),
    "venv": venv_checks,
    "app": probe_checks,
    "files": lambda module, params: secret_file_checks(params),
    "models": lambda module, params: model_checks(params),
    "logs": lambda module, params: logs_checks(params),
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            branch=dict(type="str", default="main"),
            remote=dict(type="str", default="origin"),
            role=dict(type="str", required=True, choices=["qc", "builder"]),
            runtime_mode=dict(type="str", default="dryrun", choices=["dryrun", "live"]),
            owner=dict(type="str", required=True),
            home=dict(type="path", required=True),
            uv=dict(type="path", required=True),
            uv_native_tls=dict(type="bool", default=False),
            aws_profile=dict(type="str", default="default"),
            region=dict(type="str", required=True),
            bucket=dict(type="str", required=True),
            endpoint_url=dict(type="str", default=""),
            env_file=dict(type="path"),
            db_password_file=dict(type="path", no_log=False),
            aws_credentials_file=dict(type="path"),
            aws_user=dict(type="str"),
            only=dict(type="list", elements="str", choices=list(GROUPS), default=list(GROUPS)),
            promoted=dict(type="list", elements="dict"),
            logs_status=dict(type="path"),
            logs_max_age=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # The groups read different things (git and the remote, uv, the app's probe of the database and AWS, files):
    # they run at the same time, each mostly waiting on its own subprocess, and the rows keep the GROUPS order.
    wanted = [group for group in GROUPS if group in params["only"]]
    with ThreadPoolExecutor(max_workers=len(wanted) or 1) as pool:
        futures = [pool.submit(GROUPS[group], module, params) for group in wanted]
        checks = [check for future in futures for check in future.result()]
    module.exit_json(changed=False, checks=checks, failed_checks=[c["check"] for c in checks if not c["ok"]])


if __name__ == "__main__":
    main()

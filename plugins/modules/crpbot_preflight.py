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
  project_dir:
    description: Absolute path of the crpbot checkout.
    type: path
    required: true
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
  home:
    description: The host user's home (for C(~/.aws)).
    type: path
    required: true
  uv:
    description: Path of the uv binary.
    type: path
    required: true
  uv_native_tls:
    description: Let uv use the system CA store (C(UV_NATIVE_TLS=1)), as the converge does.
    type: bool
    default: false
  aws_profile:
    description: AWS profile of the host's C(~/.aws) files.
    type: str
    default: default
  region:
    description: AWS region.
    type: str
    required: true
  bucket:
    description: The S3 bucket that must be listable.
    type: str
    required: true
  endpoint_url:
    description: S3/STS endpoint of an S3-compatible server (the sandbox's); empty for AWS.
    type: str
    default: ""
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
import pwd
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_git import gitignore_is_ours, parse_status
from ansible.module_utils.crpbot_models import promoted_files, verify_files
from ansible.module_utils.crpbot_venv import VenvError, run_script

MARKER = "crpbot-ansible"

# Runs with the project's venv python; reads its request on stdin and prints one JSON object.
# Secrets stay in this process: DB_URL and the AWS keys are read from the host's own files.
VENV_PROBE = r"""
import json, sys
req = json.load(sys.stdin)
out = {}
try:
    from dotenv import dotenv_values
    env = dotenv_values(req["env_path"])
    out["env"] = {"ok": True, "runtime_mode": env.get("RUNTIME_MODE"), "keys": len(env),
                  "has_db_url": bool(env.get("DB_URL"))}
except Exception as exc:
    env = {}
    out["env"] = {"ok": False, "why": type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]}

def scrub(text, secret):
    text = str(text).splitlines()[0][:300] if str(text) else ""
    if secret:
        from urllib.parse import quote
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "********")
    return text

db_url = env.get("DB_URL") or ""


def select_one(url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(url)
    postgres = url.drivername.startswith("postgresql")
    engine = create_engine(url, connect_args={"connect_timeout": 10} if postgres else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    finally:
        engine.dispose()


try:
    from sqlalchemy.engine import make_url
    if not db_url:
        raise ValueError("DB_URL is not set in .env")
    url = make_url(db_url)
    select_one(db_url)
    out["db"] = {"ok": True, "why": "SELECT 1 on " + url.render_as_string(hide_password=True)}
except Exception as exc:
    pw = None
    try:
        pw = make_url(db_url).password if db_url else None
    except Exception:
        pass
    out["db"] = {"ok": False, "why": type(exc).__name__ + ": " + scrub(exc, pw)}

password = None
try:
    from sqlalchemy.engine import make_url
    with open(req["db_password_path"], encoding="utf-8") as handle:
        password = handle.read().rstrip("\n")
    if not db_url.startswith("postgresql"):
        out["db_password"] = {"ok": True, "why": "not used (DB_URL is not PostgreSQL)"}
    else:
        select_one(make_url(db_url).set(password=password))
        out["db_password"] = {"ok": True, "why": "SELECT 1 with the password in .db_password"}
except Exception as exc:
    out["db_password"] = {"ok": False, "why": type(exc).__name__ + ": " + scrub(exc, password)}

try:
    import os
    if req.get("aws_credentials_path"):
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = req["aws_credentials_path"]
    import boto3
    from botocore.config import Config
    session = boto3.session.Session(profile_name=req["profile"], region_name=req["region"])
    kw = {"endpoint_url": req["endpoint_url"]} if req["endpoint_url"] else {}
    cfg = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=20,
                 s3={"addressing_style": "path"} if req["endpoint_url"] else None)
    ident = session.client("sts", config=cfg, **kw).get_caller_identity()
    arn = ident.get("Arn", "")
    want = req.get("aws_user")
    if want and not arn.endswith(":user/" + want):
        out["sts"] = {"ok": False, "why": "signed in as " + arn + ", not as IAM user " + want}
    else:
        out["sts"] = {"ok": True, "why": arn}
    try:
        session.client("s3", config=cfg, **kw).list_objects_v2(Bucket=req["bucket"], MaxKeys=1)
        out["bucket"] = {"ok": True, "why": "s3://" + req["bucket"] + "/ is listable"}
    except Exception as exc:
        out["bucket"] = {"ok": False, "why": type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]}
except Exception as exc:
    why = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]
    out["sts"] = {"ok": False, "why": why}
    out.setdefault("bucket", {"ok": False, "why": "not checked: " + why})
print(json.dumps(out))
"""


def row(check, ok, why):
    return {"check": check, "ok": bool(ok), "why": why}


def git(module, project, *args):
    rc, out, err = module.run_command(
        ["git", "--no-optional-locks", "-C", project, *args], environ_update={"GIT_TERMINAL_PROMPT": "0"}
    )
    return rc, out, err.strip()


def repo_checks(module, project, branch, remote):
    rc, head_branch, err = git(module, project, "symbolic-ref", "--short", "-q", "HEAD")
    if rc != 0 and not os.path.isdir(os.path.join(project, ".git")):
        why = f"{project} is not a git checkout"
        return [row(f"repo on {branch}", False, why), row("repo is current", False, why)]
    head_branch = head_branch.strip() or "(detached HEAD)"
    rows = [row(f"repo on {branch}", head_branch == branch, f"on {head_branch}")]
    rc, head, _ = git(module, project, "rev-parse", "HEAD")
    rc2, listing, err2 = git(module, project, "ls-remote", remote, f"refs/heads/{branch}")
    local = local_changes(module, project)
    changes = f"; local changes: {', '.join(local[:5])}" if local else "; no local changes"
    if rc2 != 0 or not listing.split():
        return rows + [row("repo is current", False, f"cannot read {remote}/{branch}: {err2 or 'no such branch'}")]
    remote_head = listing.split()[0]
    if remote_head == head.strip():
        return rows + [row("repo is current", True, f"at {remote}/{branch} {remote_head[:10]}{changes}")]
    known = git(module, project, "cat-file", "-e", f"{remote_head}^{{commit}}")[0] == 0
    if known and git(module, project, "merge-base", "--is-ancestor", remote_head, "HEAD")[0] == 0:
        why = f"ahead of {remote}/{branch} (local commits not pushed){changes}"
    else:
        why = f"behind {remote}/{branch} {remote_head[:10]}: run site.yml (or git pull){changes}"
    return rows + [row("repo is current", False, why)]


def local_changes(module, project):
    rc, out, _ = git(module, project, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if rc != 0:
        return []
    paths = [path for _, path in parse_status(out)]
    if ".gitignore" in paths:
        committed = git(module, project, "show", "HEAD:.gitignore")[1]
        try:
            with open(os.path.join(project, ".gitignore"), encoding="utf-8") as handle:
                current = handle.read()
        except OSError:
            current = ""
        if gitignore_is_ours(current, committed, MARKER):
            paths.remove(".gitignore")
    return paths


def venv_checks(module, params):
    project = params["project_dir"]
    python = os.path.join(project, ".venv", "bin", "python")
    if not os.access(python, os.X_OK):
        return [row("venv", False, f"{python} is missing: run site.yml"), row("venv in sync", False, "no venv")]
    env = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    if params["uv_native_tls"]:
        env["UV_NATIVE_TLS"] = "1"
    rc, out, err = module.run_command(
        [params["uv"], "sync", "--locked", "--dry-run", "--python", python], cwd=project, environ_update=env
    )
    text = (out + err).strip()
    if rc != 0:
        return [row("venv", True, python), row("venv in sync", False, text.splitlines()[-1] if text else f"uv exit {rc}")]
    in_sync = "Would make no changes" in text
    return [row("venv", True, python), row("venv in sync", in_sync, "matches uv.lock" if in_sync else "uv sync would change it")]


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
        result = run_script(module, project, VENV_PROBE, request)
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
    home, project, owner = params["home"], params["project_dir"], params["owner"]
    for path, want in (
        (os.path.join(project, ".env"), 0o600),
        (os.path.join(project, ".db_password"), 0o600),
        (os.path.join(home, ".aws"), 0o700),
        (os.path.join(home, ".aws", "credentials"), 0o600),
        (os.path.join(home, ".aws", "config"), 0o600),
    ):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            rows.append(row(f"secret file {path}", False, "missing: run site.yml or sync_credentials.yml"))
            continue
        try:
            user = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            user = str(st.st_uid)
        mode = stat.S_IMODE(st.st_mode)
        ok = mode == want and user == owner
        rows.append(row(f"secret file {path}", ok, f"{mode:04o} {user}" + ("" if ok else f"; want {want:04o} {owner}")))
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
    checks = []
    for group in GROUPS:
        if group in params["only"]:
            checks += GROUPS[group](module, params)
    module.exit_json(changed=False, checks=checks, failed_checks=[c["check"] for c in checks if not c["ok"]])


if __name__ == "__main__":
    main()

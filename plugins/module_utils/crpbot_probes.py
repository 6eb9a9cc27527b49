# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only probes of a crpbot host, shared by the pre-flight checklist and the audit (host side).

Each probe returns facts (plain dicts), never a verdict: ``crpbot_preflight`` turns them into its
checklist rows, ``crpbot_audit_facts`` returns them for the controller to compare the hosts. Nothing
here writes anything, and nothing returned holds a secret: secrets stay in the files (and in the
app-library script's process); where the audit must compare one it gets a keyed hash.
"""

from __future__ import annotations

import os
import pwd
import re
import stat

from ansible.module_utils.crpbot_git import gitignore_is_ours, parse_status
from ansible.module_utils.crpbot_venv import VenvError, run_script

MARKER = "crpbot-ansible"
_USERINFO = re.compile(r"(?<=://)[^/@\s']+@")


def without_userinfo(text):
    """``text`` with the user:token@ part of every URL in it removed (a remote URL may carry a token)."""
    return _USERINFO.sub("", text) if text else text


# --- git ---------------------------------------------------------------------------------------------

def git(module, project, *args):
    """(rc, stdout, stderr stripped) of a read-only git command in ``project`` (no index lock, no prompt)."""
    rc, out, err = module.run_command(
        ["git", "--no-optional-locks", "-C", project, *args], environ_update={"GIT_TERMINAL_PROMPT": "0"}
    )
    return rc, out, err.strip()


def local_changes(module, project):
    """Paths ``git status`` lists (untracked included); the project's managed .gitignore blocks do not count."""
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


def repo_facts(module, project, branch, remote):
    """The checkout as git sees it, asking the remote with ``git ls-remote`` (nothing is fetched).

    ``relation`` to ``<remote>/<branch>``: ``current``, ``ahead`` (local commits not pushed), ``behind``,
    ``diverged``, or ``unknown`` (the remote could not be read). ``checkout`` is False when ``project``
    is not a git checkout (every other field is then empty).
    """
    facts = {"checkout": False, "branch": None, "head": None, "remote_url": None, "remote_head": None,
             "remote_error": None, "relation": "unknown", "local_commits": 0, "local_changes": []}
    rc, head_branch, _ = git(module, project, "symbolic-ref", "--short", "-q", "HEAD")
    if rc != 0 and not os.path.isdir(os.path.join(project, ".git")):
        return facts
    facts["checkout"] = True
    facts["branch"] = head_branch.strip() or "(detached HEAD)"
    facts["head"] = git(module, project, "rev-parse", "HEAD")[1].strip() or None
    facts["remote_url"] = without_userinfo(git(module, project, "remote", "get-url", remote)[1].strip()) or None
    facts["local_changes"] = local_changes(module, project)
    rc, listing, err = git(module, project, "ls-remote", remote, f"refs/heads/{branch}")
    if rc != 0 or not listing.split():
        facts["remote_error"] = f"cannot read {remote}/{branch}: {without_userinfo(err) or 'no such branch'}"
        return facts
    remote_head = listing.split()[0]
    facts["remote_head"] = remote_head
    head = facts["head"]
    if remote_head == head:
        facts["relation"] = "current"
        return facts
    known = git(module, project, "cat-file", "-e", f"{remote_head}^{{commit}}")[0] == 0
    if known and git(module, project, "merge-base", "--is-ancestor", remote_head, "HEAD")[0] == 0:
        facts["relation"] = "ahead"
    elif known and git(module, project, "merge-base", "--is-ancestor", "HEAD", remote_head)[0] == 0:
        facts["relation"] = "behind"
    else:
        facts["relation"] = "diverged" if known else "behind"
    if known:
        count = git(module, project, "rev-list", "--count", f"{remote_head}..HEAD")[1].strip()
        facts["local_commits"] = int(count) if count.isdigit() else 0
    return facts


# --- the venv --------------------------------------------------------------------------------------

def venv_state(module, project, uv, uv_native_tls=False):
    """Whether ``.venv`` exists and ``uv sync --locked --dry-run`` would leave it as it is.

    ``in_sync`` is None when there is no venv; ``why`` says what uv said otherwise.
    """
    python = os.path.join(project, ".venv", "bin", "python")
    if not os.access(python, os.X_OK):
        return {"python": python, "exists": False, "in_sync": None, "why": f"{python} is missing: run site.yml"}
    env = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    if uv_native_tls:
        env["UV_NATIVE_TLS"] = "1"
    rc, out, err = module.run_command([uv, "sync", "--locked", "--dry-run", "--python", python], cwd=project,
                                      environ_update=env)
    text = (out + err).strip()
    if rc != 0:
        return {"python": python, "exists": True, "in_sync": False,
                "why": text.splitlines()[-1] if text else f"uv exit {rc}"}
    in_sync = "Would make no changes" in text
    return {"python": python, "exists": True, "in_sync": in_sync,
            "why": "matches uv.lock" if in_sync else "uv sync would change it"}


def venv_python_version(project):
    """The venv's Python version as uv/venv recorded it in ``.venv/pyvenv.cfg`` (no process started)."""
    try:
        with open(os.path.join(project, ".venv", "pyvenv.cfg"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values.get("version_info") or values.get("version")


# --- secret files ----------------------------------------------------------------------------------

def secret_files(home, project):
    """The secret files every host has, with the mode each must have."""
    return (
        (os.path.join(project, ".env"), 0o600),
        (os.path.join(project, ".db_password"), 0o600),
        (os.path.join(home, ".aws"), 0o700),
        (os.path.join(home, ".aws", "credentials"), 0o600),
        (os.path.join(home, ".aws", "config"), 0o600),
    )


def file_owner_mode(path):
    """(user name, mode) of ``path`` (not followed if a link), or None when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    return user, stat.S_IMODE(st.st_mode)


# --- with the app's own libraries (the project's venv python) ---------------------------------------

# Runs with the project's venv python; reads its request on stdin and prints one JSON object.
# Secrets stay in this process: DB_URL and the AWS keys are read from the host's own files.
# request["parts"]: "env" (.env through python-dotenv), "db" (SELECT 1 with DB_URL, and with
# .db_password), "aws" (STS identity, the bucket listable), "s3_list" (the objects under each of
# request["s3_prefixes"], as {prefix: {relative key: [size, etag]}}).
VENV_PROBE = r"""
import json, sys
req = json.load(sys.stdin)
parts = req.get("parts") or ["env", "db", "aws"]
out = {}
env = {}
if "env" in parts or "db" in parts:
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


if "db" in parts:
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

if "aws" in parts or "s3_list" in parts:
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
        if "aws" in parts:
            ident = session.client("sts", config=cfg, **kw).get_caller_identity()
            arn = ident.get("Arn", "")
            want = req.get("aws_user")
            if want and not arn.endswith(":user/" + want):
                out["sts"] = {"ok": False, "why": "signed in as " + arn + ", not as IAM user " + want, "arn": arn}
            else:
                out["sts"] = {"ok": True, "why": arn, "arn": arn}
        s3 = session.client("s3", config=cfg, **kw)
        if "aws" in parts:
            try:
                s3.list_objects_v2(Bucket=req["bucket"], MaxKeys=1)
                out["bucket"] = {"ok": True, "why": "s3://" + req["bucket"] + "/ is listable"}
            except Exception as exc:
                out["bucket"] = {"ok": False, "why": type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]}
        if "s3_list" in parts:
            listed = {}
            try:
                for prefix in req.get("s3_prefixes") or []:
                    base = prefix.strip("/") + "/"
                    objects = {}
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=req["bucket"], Prefix=base):
                        for obj in page.get("Contents", ()):
                            if not obj["Key"].endswith("/"):
                                objects[obj["Key"][len(base):]] = [obj["Size"], obj.get("ETag", "").strip('"')]
                    listed[prefix] = objects
                out["s3_list"] = {"ok": True, "objects": listed}
            except Exception as exc:
                out["s3_list"] = {"ok": False, "why": type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]}
    except Exception as exc:
        why = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200]
        if "aws" in parts:
            out["sts"] = {"ok": False, "why": why}
            out.setdefault("bucket", {"ok": False, "why": "not checked: " + why})
        if "s3_list" in parts:
            out.setdefault("s3_list", {"ok": False, "why": why})
print(json.dumps(out))
"""


def venv_probe(module, project, parts, request):
    """Run VENV_PROBE with the project's venv python; VenvError when it cannot run.

    ``request`` holds the paths and AWS settings the parts need (see VENV_PROBE); ``parts`` which ones run.
    """
    return run_script(module, project, VENV_PROBE, {**request, "parts": list(parts)})


__all__ = ["MARKER", "VENV_PROBE", "VenvError", "file_owner_mode", "git", "local_changes", "repo_facts",
           "secret_files", "venv_probe", "venv_python_version", "venv_state", "without_userinfo"]

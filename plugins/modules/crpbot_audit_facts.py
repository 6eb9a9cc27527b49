#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_audit_facts
short_description: Read everything the environment audit compares from one crpbot host, read-only
description:
  - The host half of C(playbooks/audit.yml), in one round trip per host. It changes nothing on the host or
    in S3, in check mode or not, and never fails because of what it finds; the C(crpbot_audit) action
    compares the hosts on the controller and decides what is a conflict.
  - It shares its probes with C(crpbot_preflight) (C(plugins/module_utils/crpbot_probes.py)) and reads the
    C(.env) with the project's python-dotenv port (C(crpbot_env)), the promoted models with C(crpbot_models)
    and the S3 state with C(crpbot_s3).
  - "B(What it reads): the checkout (branch, HEAD, the remote's head by C(git ls-remote), local changes and
    commits); tracked files that hard-code a home (C(/home/<user>), C(/root)) outside docs, as file:line;
    C(uv.lock)'s SHA-256, whether the venv is in sync (C(uv sync --locked --dry-run)), the venv's and the
    host's Python versions; C(~/.aws/config)'s region and output, the STS identity; which IDE and assistant
    dirs exist and whether git ignores them; the C(.env) and C(.env.example) keys; C(DB_URL) without its
    password; a C(tradingai.db) in the project dir; the SHA-256 of every file in C(models/promoted/); the
    files of C(models/) and C(data/raw/) that are not in S3 or differ from it; C(logs/); the Amazon Q config."
  - "B(Secrets are never returned.) A C(.env) value whose key is not in O(public_keys), the password of
    C(DB_URL) and the AWS access key id are returned as an HMAC-SHA256 with O(hmac_key) (the playbook makes
    a random key per run and gives every host the same one), so the controller can tell equal from
    different and nothing else. Paths of hard-coded homes are returned as the match only, never the line."
options:
  branch:
    description: The branch the checkout should be on.
    type: str
    default: main
  remote:
    description: The git remote whose branch head the checkout is compared with.
    type: str
    default: origin
  uv:
    description: Path of the uv binary (for the venv check).
    type: path
    required: true
  region:
    description: AWS region for STS and S3.
    type: str
    required: true
  bucket:
    description: The S3 bucket the models and data are compared with.
    type: str
    required: true
  s3:
    description: Compare C(models/) and C(data/raw/) with S3 and ask STS for the identity (one venv python run).
    type: bool
    default: true
  hmac_key:
    description: The key of the keyed hash secrets are returned as. Give every host of a run the same one.
    type: str
    required: true
  public_keys:
    description:
      - C(.env) keys whose values are not secret and are returned as they are; every other key's value is
        returned only as its keyed hash. C(DB_URL) is always returned without its password.
    type: list
    elements: str
    default: [RUNTIME_MODE, CRPBOT_HOST_ROLE, AWS_REGION, S3_BUCKET]
  doc_globs:
    description: Tracked files not searched for hard-coded homes (git pathspec globs), because docs may name them.
    type: list
    elements: str
    default: ["*.md", "*.rst", "*.txt", "docs/**", "LICENSE*"]
  max_listed:
    description: At most this many paths per finding are returned (the counts are always complete).
    type: int
    default: 20
author:
  - crpbot-ansible contributors
extends_documentation_fragment:
  - crpbot_probes
"""

EXAMPLES = r"""
- name: Read the host for the audit
  crpbot_audit_facts:
    project_dir: /root/crpbot
    home: /root
    uv: /root/.local/bin/uv
    region: us-east-1
    bucket: crpbot-market-data-dev
    hmac_key: "{{ crpbot_audit_hmac_key }}"
  register: audit_facts
"""

RETURN = r"""
facts:
  description: What the host holds, one key per area (repo, paths, python, aws, ide, settings, database,
    models, data, logs, amazon_q, runtime); no secret, only keyed hashes of them.
  returned: always
  type: dict
  sample:
    repo: {checkout: true, branch: main, head: 3f2c..., relation: current, local_changes: [], local_commits: 0}
    paths: {count: 1, found: ["apps/runtime/main.py:12: /root/"]}
    settings: {present: true, values: {RUNTIME_MODE: dryrun}, hashed: {COINBASE_API_KEY: 9b1f0c2d4e5a6b7c},
               example_keys: [RUNTIME_MODE, DB_URL]}
    database: {db_url: {scheme: postgresql+psycopg, host: db.example, port: 5432, database: crpbot}}
"""

import configparser
import hashlib
import hmac
import json
import os
import platform
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_env import EnvFileError, bindings, parse_env
from ansible.module_utils.crpbot_models import MANAGED_DIRS, PROMOTED_DIR, REGISTRY_PATH, file_sha
from ansible.module_utils.crpbot_policy import mode_keys
from ansible.module_utils.crpbot_probes import VenvError, git, repo_facts, venv_probe, venv_python_version, venv_state
from ansible.module_utils.crpbot_s3 import (file_hashes, internal_name, load_state, normalize_prefix, plan_push,
                                            target_id, walk_local)

from urllib.parse import parse_qsl, unquote, urlsplit

IDE_DIRS = (".vscode", ".idea", ".cursor", ".amazon-q", ".amazonq")
# /home/<user> or /root as a path (not /rooted, not /home alone).
HOME_PATTERN = r"(/home/[A-Za-z_][A-Za-z0-9_.-]*|/root)([/\"' :;,)]|$)"
S3_SYNCS = (("models", "models", "models"), ("data", "data/raw", "data/raw"))


def keyed(key, value):
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def path_refs(module, project, doc_globs, limit):
    rc, out, _ = git(module, project, "grep", "-n", "-o", "-I", "-E", HOME_PATTERN, "--", ".",
                     *[f":(exclude,glob){glob}" for glob in doc_globs])
    found = []
    for line in out.splitlines():
        path, _, rest = line.partition(":")
        number, _, match = rest.partition(":")
        home = re.match(r"/home/[A-Za-z_][A-Za-z0-9_.-]*|/root", match)
        found.append(f"{path}:{number}: {home.group(0) if home else match[:40]}")
    return {"count": len(found), "found": found[:limit], "error": None if rc in (0, 1) else "git grep failed"}


def ignored(module, project, names):
    present = [name for name in names if os.path.lexists(os.path.join(project, name))]
    if not present:
        return {}
    _, out, _ = git(module, project, "check-ignore", "--", *present)
    hits = {line.strip().rstrip("/") for line in out.splitlines()}
    _, tracked, _ = git(module, project, "ls-files", "--", *present)
    tracked_dirs = {path.split("/")[0] for path in tracked.splitlines()}
    return {name: {"ignored": name in hits, "tracked": name in tracked_dirs} for name in present}


def python_facts(module, params):
    project = params["project_dir"]
    lock = os.path.join(project, "uv.lock")
    return {"uv_lock_sha256": file_sha(lock), **venv_state(module, project, params["uv"], params["uv_native_tls"]),
            "venv_python": venv_python_version(project), "host_python": platform.python_version()}


def aws_facts(params):
    home, profile = params["home"], params["aws_profile"]
    config = configparser.RawConfigParser()
    config.read(os.path.join(home, ".aws", "config"))
    section = "default" if profile == "default" else f"profile {profile}"
    credentials = configparser.RawConfigParser()
    credentials.read(os.path.join(home, ".aws", "credentials"))
    key_id = credentials.get(profile, "aws_access_key_id", fallback=None)
    return {"region": config.get(section, "region", fallback=None),
            "output": config.get(section, "output", fallback=None),
            "access_key_id": keyed(params["hmac_key"], key_id) if key_id else None, "arn": None, "error": None}


def db_url_facts(url, key):
    """DB_URL without its password (a keyed hash of it instead)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {"unparsed": keyed(key, url)}
    scheme = parts.scheme
    if scheme.startswith("sqlite"):
        return {"scheme": scheme, "path": parts.path[1:] if parts.path.startswith("/") else parts.path}
    query = parse_qsl(parts.query, keep_blank_values=True)
    password = unquote(parts.password) if parts.password else next(
        (value for name, value in query if name == "password"), None)
    return {"scheme": scheme, "user": unquote(parts.username) if parts.username else None, "host": parts.hostname,
            "port": port, "database": parts.path.lstrip("/"),
            "query": "&".join(f"{name}={value}" for name, value in query if name != "password"),
            "password": keyed(key, password) if password else None}


def settings_facts(params):
    project, key = params["project_dir"], params["hmac_key"]
    public = {name.upper() for name in params["public_keys"]}
    facts = {"present": False, "values": {}, "hashed": {}, "example_keys": None, "error": None,
             "runtime_modes": [], "db_url": None}
    text = read_text(os.path.join(project, ".env"))
    example = read_text(os.path.join(project, ".env.example"))
    if example is not None:
        try:
            facts["example_keys"] = sorted({name for name, _ in bindings(parse_env(example))})
        except EnvFileError:
            facts["example_keys"] = []
    if text is None:
        return facts
    facts["present"] = True
    try:
        lines = parse_env(text)
    except EnvFileError as exc:
        facts["error"] = str(exc)
        return facts
    values = {}
    for name, value in bindings(lines):  # the last binding of a key wins; the app ignores the key's case
        values.pop(next((seen for seen in values if seen.lower() == name.lower()), name), None)
        values[name] = value
    modes = set(mode_keys([name for name, _ in bindings(lines)]))  # every binding the app could read as the mode
    facts["runtime_modes"] = sorted({value or "" for name, value in bindings(lines) if name in modes})
    for name, value in values.items():
        if name.upper() == "DB_URL":
            facts["db_url"] = db_url_facts(value or "", key)
        elif name.upper() in public or name in modes:
            facts["values"][name] = value
        else:
            facts["hashed"][name] = keyed(key, value) if value is not None else None
    return facts


def database_facts(project, settings):
    db = os.path.join(project, "tradingai.db")
    stray = None
    if os.path.isfile(db):
        st = os.stat(db)
        stray = {"path": db, "bytes": st.st_size, "mtime": int(st.st_mtime)}
    return {"db_url": settings.get("db_url"), "tradingai_db": stray}


def promoted_facts(project):
    root = os.path.join(project, PROMOTED_DIR)
    if not os.path.isdir(root):
        return {}
    return {name: file_sha(os.path.join(root, name)) for name in sorted(os.listdir(root))
            if not name.startswith(".crpbot-tmp-") and os.path.isfile(os.path.join(root, name))}


def s3_compare(project, local, prefix, remote, params, limit):
    """Local files under ``local`` against the listed objects, the way crpbot_s3_transfer decides a push."""
    root = os.path.join(project, local)
    files = {}
    if os.path.isdir(root):
        files, _ = walk_local(root)
    if local == "models":  # the promotion's dirs are per host, never compared with S3
        files = {rel: v for rel, v in files.items()
                 if not any(f"models/{rel}".startswith(managed + "/") for managed in MANAGED_DIRS)}
    if local == "models":  # the registry is merged into the bucket's (every builder's entries), not mirrored
        registry = REGISTRY_PATH[len("models/"):]
        files.pop(registry, None)
        remote = {rel: value for rel, value in remote.items() if rel != registry}
    # The claims of model versions (crpbot_s3's .crpbot-versions/) are the bucket's bookkeeping, not files.
    remote = {rel: {"size": size, "etag": etag} for rel, (size, etag) in remote.items() if not internal_name(rel)}
    _, records = load_state(root, target_id(params["bucket"], normalize_prefix(prefix), params["endpoint_url"]))
    items, _ = plan_push(files, remote, records, [], False, lambda rel: file_hashes(os.path.join(root, rel)))
    missing = [f"{local}/{entry['path']}" for entry in items if entry["action"] == "copy"]
    differs = [f"{local}/{entry['path']}" for entry in items if entry["action"] == "update"]
    return {"local_files": len(files), "s3_objects": len(remote), "only_in_s3": len(set(remote) - set(files)),
            "not_in_s3": missing[:limit], "not_in_s3_count": len(missing),
            "differs": differs[:limit], "differs_count": len(differs)}


def logs_facts(project):
    root = os.path.join(project, "logs")
    if not os.path.isdir(root):
        return {"present": False, "files": 0, "bytes": 0}
    files, _ = walk_local(root)
    return {"present": True, "files": len(files), "bytes": sum(size for size, _ in files.values())}


def amazon_q_facts(project):
    text = read_text(os.path.join(project, ".amazon-q", "config.json"))
    if text is None:
        return {"config": None}
    try:
        config = json.loads(text)
    except ValueError:
        return {"config": "unreadable"}
    return {"config": config if isinstance(config, dict) else "unreadable"}


def gather(module, params):
    project, limit = params["project_dir"], params["max_listed"]
    repo = repo_facts(module, project, params["branch"], params["remote"])
    checkout = repo["checkout"]
    settings = settings_facts(params)
    ide = ignored(module, project, (*IDE_DIRS, "logs")) if checkout else {}
    facts = {
        "project_dir": project,
        "repo": repo,
        "paths": path_refs(module, project, params["doc_globs"], limit) if checkout else {"count": 0, "found": []},
        "python": python_facts(module, params),
        "aws": aws_facts(params),
        "ide": {name: state for name, state in ide.items() if name != "logs"},
        "settings": settings,
        "database": database_facts(project, settings),
        "models": {"promoted": promoted_facts(project)},
        "data": {},
        "logs": {**logs_facts(project), **({"ignored": ide["logs"]["ignored"]} if "logs" in ide else {})},
        "amazon_q": amazon_q_facts(project),
        "runtime": {"modes": settings["runtime_modes"],
                    "host_role": next((value for name, value in settings["values"].items()
                                       if name.upper() == "CRPBOT_HOST_ROLE"), None)},
    }
    if params["s3"]:
        s3_probe(module, params, facts, limit)
    return facts


def s3_probe(module, params, facts, limit):
    project = params["project_dir"]
    request = {"aws_credentials_path": None, "profile": params["aws_profile"], "region": params["region"],
               "bucket": params["bucket"], "endpoint_url": params["endpoint_url"],
               "s3_prefixes": [prefix for _, _, prefix in S3_SYNCS]}
    try:
        result = venv_probe(module, project, ("aws", "s3_list"), request)
    except VenvError as exc:
        facts["aws"]["error"] = f"cannot run the app's libraries: {exc}"
        return
    sts = result.get("sts", {})
    facts["aws"]["arn"] = sts.get("arn")
    if not sts.get("ok"):
        facts["aws"]["error"] = sts.get("why")
    listing = result.get("s3_list", {})
    for area, local, prefix in S3_SYNCS:
        target = facts["models"] if area == "models" else facts["data"]
        if not listing.get("ok"):
            target["s3"] = {"error": listing.get("why", "not listed")}
            continue
        target["s3"] = s3_compare(project, local, prefix, listing["objects"].get(prefix, {}), params, limit)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            branch=dict(type="str", default="main"),
            remote=dict(type="str", default="origin"),
            home=dict(type="path", required=True),
            uv=dict(type="path", required=True),
            uv_native_tls=dict(type="bool", default=False),
            aws_profile=dict(type="str", default="default"),
            region=dict(type="str", required=True),
            bucket=dict(type="str", required=True),
            endpoint_url=dict(type="str", default=""),
            s3=dict(type="bool", default=True),
            hmac_key=dict(type="str", required=True, no_log=True),
            public_keys=dict(type="list", elements="str", default=["RUNTIME_MODE", "CRPBOT_HOST_ROLE", "AWS_REGION", "S3_BUCKET"],
                             no_log=False),
            doc_globs=dict(type="list", elements="str", default=["*.md", "*.rst", "*.txt", "docs/**", "LICENSE*"]),
            max_listed=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False, facts=gather(module, module.params))


if __name__ == "__main__":
    main()

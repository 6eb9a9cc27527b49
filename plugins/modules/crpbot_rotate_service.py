#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_rotate_service
short_description: Change a credential in the service it opens, for a credential rotation
description:
  - The "set" (and rollback) step of C(playbooks/rotate_credentials.yml), run on a crpbot host with
    the app's own libraries from the project's C(.venv) (psycopg and boto3); the request, secrets
    included, goes to that python on standard input, never on a command line or in the environment.
  - B(postgres), O(action=password) makes O(password) the password of the database role. It first
    tries to log in with O(password) (already set, C(changed=false)), then with each of
    O(login_passwords), and runs C(ALTER ROLE ... PASSWORD) with a SCRAM-SHA-256 verifier computed on
    the client (libpq's C(PQencryptPasswordConn)), so the cleartext password is never sent in a
    statement and never reaches the server log. It then logs in with the new password to verify.
  - B(iam), authenticated with O(auth_access_key_id)/O(auth_secret_access_key). The IAM user is the
    one STS C(GetCallerIdentity) names for that key. O(action=inspect) lists the user's keys (id,
    status); O(action=create) creates a second key and refuses when the user already has two;
    O(action=activate) and O(action=deactivate) set the status of O(access_key_id);
    O(action=delete) deletes O(access_key_id) (absent already is not an error).
  - Failures name what failed (host, role or user, key id), never a secret. C(altered) in a failed
    result says whether the database password was changed before the failure.
options:
  project_dir:
    description: The crpbot checkout whose C(.venv/bin/python) runs the request.
    type: path
    required: true
  service:
    description: The service holding the credential.
    type: str
    choices: [postgres, iam]
    required: true
  action:
    description: What to do; V(password) for O(service=postgres), the others for O(service=iam).
    type: str
    choices: [password, inspect, create, activate, deactivate, delete]
    required: true
  password:
    description: For V(password), the password the role must have afterwards.
    type: str
  login_passwords:
    description: For V(password), the passwords to log in with when O(password) does not work yet, in order.
    type: list
    elements: str
    default: []
  db:
    description: For O(service=postgres), where the database is.
    type: dict
    suboptions:
      host:
        description: Host name of the server.
        type: str
        required: true
      port:
        description: Port of the server.
        type: int
        default: 5432
      database:
        description: Database to connect to.
        type: str
        required: true
      user:
        description: The role whose password changes (it logs in as itself).
        type: str
        required: true
      sslmode:
        description: libpq sslmode; empty for libpq's default.
        type: str
        default: require
  auth_access_key_id:
    description: For O(service=iam), the access key id the calls are made with.
    type: str
  auth_secret_access_key:
    description: For O(service=iam), its secret.
    type: str
  access_key_id:
    description: For V(activate), V(deactivate) and V(delete), the key to change.
    type: str
  region:
    description: AWS region.
    type: str
    default: us-east-1
  endpoint_url:
    description: Endpoint of an IAM/STS-compatible server (the sandbox's); empty for AWS.
    type: str
    default: ""
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Set the new database password
  crpbot_rotate_service:
    project_dir: /root/crpbot
    service: postgres
    action: password
    password: "{{ new_password }}"
    login_passwords: ["{{ current_password }}"]
    db: {host: crpbot.example.rds.amazonaws.com, database: crpbot, user: crpbot_admin}
  no_log: true

- name: Create the second access key
  crpbot_rotate_service:
    project_dir: /root/crpbot
    service: iam
    action: create
    auth_access_key_id: "{{ current_key_id }}"
    auth_secret_access_key: "{{ current_secret }}"
  register: new_key
  no_log: true
"""

RETURN = r"""
altered:
  description: For V(password), whether ALTER ROLE ran (also in a failed result).
  returned: service is postgres
  type: bool
user:
  description: For O(service=iam), the IAM user of the key.
  returned: service is iam
  type: str
  sample: crpbot-builder
keys:
  description: For O(service=iam), the user's keys after the action (id and status, never a secret).
  returned: service is iam
  type: list
  elements: dict
  sample: [{access_key_id: AKIAEXAMPLEOLD, status: Active}]
access_key_id:
  description: For V(create), the new key's id.
  returned: action is create
  type: str
secret_access_key:
  description: For V(create), the new key's secret; register the result with no_log.
  returned: action is create
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_venv import VenvError, run_script

# Runs with the project's venv python; the request (secrets included) comes on stdin.
POSTGRES_SCRIPT = r"""
import json, sys
req = json.load(sys.stdin)
secrets = [p for p in [req["password"], *req["login_passwords"]] if p]


def scrub(exc):
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    for secret in secrets:
        text = text.replace(secret, "********")
    return type(exc).__name__ + ": " + text


def done(**out):
    print(json.dumps(out))
    sys.exit(0)


try:
    import psycopg
    from psycopg import sql
except Exception as exc:
    done(ok=False, altered=False, why="the venv has no psycopg (psycopg 3): " + scrub(exc))
db = req["db"]


def connect(password):
    kw = {"sslmode": db["sslmode"]} if db["sslmode"] else {}
    return psycopg.connect(host=db["host"], port=db["port"], dbname=db["database"], user=db["user"],
                           password=password, connect_timeout=10, **kw)


def refused_login(exc):
    return "password authentication failed" in str(exc) or "no password supplied" in str(exc)


try:
    with connect(req["password"]) as conn:
        conn.execute("SELECT 1")
    done(ok=True, altered=False)
except psycopg.OperationalError as exc:
    if not refused_login(exc):
        done(ok=False, altered=False, why="cannot reach the database: " + scrub(exc))
for password in req["login_passwords"]:
    try:
        conn = connect(password)
    except psycopg.OperationalError as exc:
        if refused_login(exc):
            continue
        done(ok=False, altered=False, why="cannot reach the database: " + scrub(exc))
    try:
        with conn:
            verifier = conn.pgconn.encrypt_password(req["password"].encode(), db["user"].encode(), b"scram-sha-256")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(db["user"]),
                                                                      sql.Literal(verifier.decode())))
    except Exception as exc:
        done(ok=False, altered=False, why="ALTER ROLE failed: " + scrub(exc))
    try:
        with connect(req["password"]) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        done(ok=False, altered=True, why="the new password was set but logging in with it failed: " + scrub(exc))
    done(ok=True, altered=True)
done(ok=False, altered=False,
     why="the database refused every password given (the new one and " + str(len(req["login_passwords"]))
         + " other(s)): the role's password was changed outside this rotation; set it by hand and update the vault")
"""

IAM_SCRIPT = r"""
import json, sys
req = json.load(sys.stdin)


def done(**out):
    print(json.dumps(out))
    sys.exit(0)


def why(exc):
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    for secret in (req["auth_secret_access_key"],):
        text = text.replace(secret, "********")
    return type(exc).__name__ + ": " + text


try:
    import boto3
    from botocore.config import Config
    session = boto3.session.Session(aws_access_key_id=req["auth_access_key_id"],
                                    aws_secret_access_key=req["auth_secret_access_key"], region_name=req["region"])
    kw = {"endpoint_url": req["endpoint_url"]} if req["endpoint_url"] else {}
    cfg = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)
    arn = session.client("sts", config=cfg, **kw).get_caller_identity()["Arn"]
except Exception as exc:
    done(ok=False, why="STS GetCallerIdentity failed with key " + req["auth_access_key_id"] + ": " + why(exc))
if ":user/" not in arn:
    done(ok=False, why="key " + req["auth_access_key_id"] + " belongs to " + arn + ", not an IAM user; rotate it by hand")
user = arn.rsplit("/", 1)[1]
iam = session.client("iam", config=cfg, **kw)


def keys():
    meta = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return [{"access_key_id": k["AccessKeyId"], "status": k["Status"]} for k in meta]


try:
    before = keys()
    out = {"ok": True, "changed": False, "user": user}
    action, target = req["action"], req["access_key_id"]
    ids = [k["access_key_id"] for k in before]
    if action == "create":
        if len(before) >= 2:
            listed = ", ".join(k["access_key_id"] + " (" + k["status"] + ")" for k in before)
            done(ok=False, user=user, keys=before,
                 why="IAM user " + user + " already has two access keys (" + listed + "); AWS allows two, so no "
                     "new key can be made: delete the one no host uses (ansible-playbook "
                     "playbooks/rotate_credentials.yml -e rotate=aws_inactive_keys deletes inactive ones), then rerun")
        new = iam.create_access_key(UserName=user)["AccessKey"]
        out.update(changed=True, access_key_id=new["AccessKeyId"], secret_access_key=new["SecretAccessKey"])
    elif action in ("activate", "deactivate"):
        if target not in ids:
            done(ok=False, user=user, keys=before, why="IAM user " + user + " has no key " + str(target))
        status = "Active" if action == "activate" else "Inactive"
        if before[ids.index(target)]["status"] != status:
            iam.update_access_key(UserName=user, AccessKeyId=target, Status=status)
            out["changed"] = True
    elif action == "delete" and target in ids:
        iam.delete_access_key(UserName=user, AccessKeyId=target)
        out["changed"] = True
    out["keys"] = keys()
    done(**out)
except Exception as exc:
    done(ok=False, user=user, why="IAM " + req["action"] + " for user " + user + " failed: " + why(exc))
"""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            service=dict(type="str", required=True, choices=["postgres", "iam"]),
            action=dict(type="str", required=True,
                        choices=["password", "inspect", "create", "activate", "deactivate", "delete"]),
            password=dict(type="str", no_log=True),
            login_passwords=dict(type="list", elements="str", default=[], no_log=True),
            db=dict(type="dict", options=dict(
                host=dict(type="str", required=True),
                port=dict(type="int", default=5432),
                database=dict(type="str", required=True),
                user=dict(type="str", required=True),
                sslmode=dict(type="str", default="require"),
            )),
            auth_access_key_id=dict(type="str"),
            auth_secret_access_key=dict(type="str", no_log=True),
            access_key_id=dict(type="str"),
            region=dict(type="str", default="us-east-1"),
            endpoint_url=dict(type="str", default=""),
        ),
        required_if=[
            ("service", "postgres", ("password", "db")),
            ("service", "iam", ("auth_access_key_id", "auth_secret_access_key")),
            ("action", "activate", ("access_key_id",)),
            ("action", "deactivate", ("access_key_id",)),
            ("action", "delete", ("access_key_id",)),
        ],
        supports_check_mode=True,
    )
    p = module.params
    valid = ("password",) if p["service"] == "postgres" else ("inspect", "create", "activate", "deactivate", "delete")
    if p["action"] not in valid:
        module.fail_json(msg=f"action {p['action']} is not one of {', '.join(valid)} for service {p['service']}")
    if module.check_mode and p["action"] != "inspect":
        module.exit_json(changed=True, msg=f"would run {p['service']} {p['action']}")
    if p["service"] == "postgres":
        script, request = POSTGRES_SCRIPT, {k: p[k] for k in ("password", "login_passwords", "db")}
    else:
        script = IAM_SCRIPT
        request = {k: p[k] for k in ("action", "auth_access_key_id", "auth_secret_access_key", "access_key_id",
                                     "region", "endpoint_url")}
    try:
        result = run_script(module, p["project_dir"], script, request)
    except VenvError as exc:
        module.fail_json(msg=str(exc), altered=False)
    ok = result.pop("ok")
    reason = result.pop("why", "")
    if not ok:
        module.fail_json(msg=reason, **result)
    result.setdefault("changed", result.get("altered", False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

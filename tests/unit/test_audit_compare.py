# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment audit: the comparison (plugins/module_utils/crpbot_audit.py) for every area, clean and in
conflict; the host side's readers (plugins/modules/crpbot_audit_facts.py) on a real git checkout; and no
secret in any output, report or fact."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from tests.ansible_run import load_plugin

import ansible.module_utils  # noqa: F401 - tests/unit/conftest.py serves plugins/module_utils under it
from ansible.module_utils import crpbot_audit as audit

facts_module = load_plugin("plugins/modules/crpbot_audit_facts.py")
action = load_plugin("plugins/action/crpbot_audit.py", "crpbot_audit_action")

KEY = "0f" * 32
HEAD = "3f2c1a9b0d" + "0" * 30
LOCK = "60f79c8372" + "1" * 54
MODEL = "ab" * 32


def facts(role: str) -> dict:
    """What crpbot_audit_facts returns for a converged host of ``role``."""
    home = "/root" if role == "builder" else "/home/numan"
    return {
        "project_dir": f"{home}/crpbot",
        "repo": {"checkout": True, "branch": "main", "head": HEAD, "remote_url": "git://x/crpbot.git",
                 "remote_head": HEAD, "remote_error": None, "relation": "current", "local_commits": 0,
                 "local_changes": []},
        "paths": {"count": 0, "found": []},
        "python": {"uv_lock_sha256": LOCK, "python": f"{home}/crpbot/.venv/bin/python", "exists": True,
                   "in_sync": True, "why": "matches uv.lock", "venv_python": "3.11.2", "host_python": "3.11.2"},
        "aws": {"region": "us-east-1", "output": "json", "access_key_id": f"key-{role}", "arn": f"arn:...:user/{role}",
                "error": None},
        "ide": {".amazon-q": {"ignored": True, "tracked": False}},
        "settings": {"present": True, "error": None, "values": {"RUNTIME_MODE": "dryrun", "CRPBOT_HOST_ROLE": role,
                                                                 "AWS_REGION": "us-east-1"},
                     "hashed": {"COINBASE_API_KEY": "1234567890abcdef"}, "example_keys": ["DB_URL", "RUNTIME_MODE"],
                     "runtime_modes": ["dryrun"], "db_url": {}},
        "database": {"db_url": {"scheme": "postgresql+psycopg", "user": "crpbot_admin", "host": "rds.example",
                                "port": 5432, "database": "crpbot", "query": "", "password": "feedfacecafebeef"},
                     "tradingai_db": None},
        "models": {"promoted": {"lstm_BTC-USD_latest.pt": MODEL},
                   "s3": {"local_files": 2, "s3_objects": 2, "only_in_s3": 0, "not_in_s3": [], "not_in_s3_count": 0,
                          "differs": [], "differs_count": 0}},
        "data": {"s3": {"local_files": 1, "s3_objects": 3, "only_in_s3": 2, "not_in_s3": [], "not_in_s3_count": 0,
                        "differs": [], "differs_count": 0}},
        "logs": {"present": True, "files": 2, "bytes": 100, "ignored": True},
        "amazon_q": {"config": {"role": role, "aws_access": role == "builder"}},
        "runtime": {"modes": ["dryrun"], "host_role": role},
    }


def host(name: str, role: str, **changes) -> dict:
    base = {"name": name, "role": role, "live_approved": False, "db_backend": "rds", "region": "us-east-1",
            "rds": {"host": "rds.example", "port": 5432, "database": "crpbot"}, "expected_key": f"key-{role}",
            "facts": facts(role), "error": None}
    base.update(changes)
    return base


def pair():
    return [host("local", "qc"), host("cloud", "builder")]


APPROVED = [{"name": "lstm_BTC-USD_latest.pt", "sha256": MODEL, "model_id": "lstm_BTC-USD_v3"}]


def by_area(rows):
    return {row["area"]: row for row in rows}


def test_a_converged_pair_is_clean_in_every_area():
    rows = audit.compare(pair(), approved=APPROVED)
    assert [row["area"] for row in rows] == list(audit.AREAS)
    assert {row["status"] for row in rows} == {audit.OK}
    assert all(row["problems"] == [] and row["fix"] == "none" for row in rows)
    assert audit.summary(rows) == "CLEAN: no conflict in 12 areas"


def put(path: str, value):
    """A change to one host's facts: ``path`` is ``area.key.key``."""
    def change(facts_of):
        target = facts_of
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


# (id, which host (0 qc, 1 builder), change to its facts, area, evidence fragment of that host, problem fragment)
CONFLICTS = [
    ("hard-coded-home", 0, put("paths", {"count": 1, "found": ["apps/x.py:3: /root"]}),
     "Path references", "1: apps/x.py:3: /root", "local: 1 hard-coded home path(s) in tracked files"),
    ("other-branch", 1, put("repo.branch", "dev"), "Git", "dev 3f2c1a9b0d", "cloud: on dev, not main"),
    ("other-commit", 1, put("repo.head", "9" * 40), "Git", "main 9999999999", "the commits (HEAD) differ"),
    ("behind", 0, put("repo.relation", "behind"), "Git", "behind", "local: behind origin/main"),
    ("local-changes", 0, put("repo.local_changes", ["notes.txt"]), "Git", "local changes: notes.txt",
     "local: uncommitted changes: notes.txt"),
    ("local-commits", 1, put("repo.local_commits", 2), "Git", "2 local commit(s)",
     "cloud: 2 local commit(s) not on origin/main"),
    ("no-checkout", 0, put("repo.checkout", False), "Git", "no checkout", "local: the project dir is not a git"),
    ("other-lock", 0, put("python.uv_lock_sha256", "ff" * 32), "Python dependencies", "uv.lock ffffffffff",
     "the uv.lock files (SHA-256) differ"),
    ("venv-out-of-sync", 1, put("python.in_sync", False), "Python dependencies", "venv not in sync",
     "cloud: the venv is not in sync"),
    ("other-python", 1, put("python.venv_python", "3.12.1"), "Python dependencies", "Python venv 3.12.1",
     "the venvs' Python minor versions differ"),
    ("other-region", 1, put("aws.region", "eu-west-1"), "AWS configuration", "region eu-west-1",
     "cloud: region eu-west-1, the inventory says us-east-1"),
    ("other-output", 0, put("aws.output", "text"), "AWS configuration", "output text", "the output formats differ"),
    ("qc-holds-the-builders-key", 0, put("aws.access_key_id", "key-builder"), "AWS configuration",
     "identity arn", "local: holds the key of cloud, not the key its role (qc) should use"),
    ("sts-fails", 1, put("aws.error", "InvalidClientTokenId"), "AWS configuration", "InvalidClientTokenId",
     "cloud: the AWS identity cannot be read"),
    ("unignored-vscode", 1, put("ide", {".vscode": {"ignored": False, "tracked": False}}),
     "IDE and assistant files", ".vscode/ (NOT ignored)", "cloud: .vscode/ is present but not ignored"),
    ("tracked-idea", 0, put("ide", {".idea": {"ignored": True, "tracked": True}}), "IDE and assistant files",
     ".idea/ (tracked)", "local: .idea/ is tracked by git"),
    ("public-setting-differs", 0, put("settings.values.AWS_REGION", "eu-west-1"), "Settings", "keys",
     "AWS_REGION differs: local: 'eu-west-1'; cloud: 'us-east-1'"),
    ("secret-differs", 1, put("settings.hashed.COINBASE_API_KEY", "0000000000000000"), "Settings", "1 secret",
     "COINBASE_API_KEY differs between the hosts (a secret: compared by keyed hash, not shown)"),
    ("key-on-one-host", 1, put("settings.hashed.FTMO_LOGIN", "aaaaaaaaaaaaaaaa"), "Settings", "2 secret",
     "FTMO_LOGIN is set only on cloud"),
    ("example-key-missing", 0, put("settings.example_keys", ["DB_URL", "RUNTIME_MODE", "KILL_SWITCH"]), "Settings",
     "missing from .env.example: KILL_SWITCH", "local: keys of .env.example missing from .env: KILL_SWITCH"),
    ("no-env", 1, put("settings.present", False), "Settings", "no .env", "cloud: no .env"),
    ("other-db-host", 1, put("database.db_url.host", "other.example"), "Database",
     "postgresql+psycopg://crpbot_admin@other.example:5432/crpbot", "the databases (DB_URL without password) differ"),
    ("builder-on-sqlite", 1, put("database.db_url", {"scheme": "sqlite", "path": "tradingai.db"}), "Database",
     "sqlite:///tradingai.db", "cloud: a builder on sqlite"),
    ("stray-sqlite-file", 0, put("database.tradingai_db", {"path": "/x/tradingai.db", "bytes": 8192, "mtime": 1}),
     "Database", "tradingai.db present (8192 bytes)", "local: a stray tradingai.db (8192 bytes)"),
    ("db-passwords-differ", 0, put("database.db_url.password", "0123456789abcdef"), "Database",
     "crpbot_admin@rds.example", "the DB_URL passwords differ between the hosts (compared by keyed hash, not shown)"),
    ("promoted-differs", 0, put("models.promoted", {"lstm_BTC-USD_latest.pt": "cd" * 32}), "Model files",
     "lstm_BTC-USD_latest.pt cdcdcdcdcd", "the promoted models (SHA-256 per file) differ"),
    ("unsynced-model", 1, put("models.s3.not_in_s3_count", 1), "Model files", "1 not in S3",
     "cloud: 1 model file(s) not in S3 (unsynced work)"),
    ("model-differs-from-s3", 0, put("models.s3.differs_count", 1), "Model files", "1 differ from S3",
     "local: 1 model file(s) differ from S3"),
    ("stale-data", 0, put("data.s3", {"local_files": 1, "s3_objects": 1, "only_in_s3": 0, "not_in_s3": [],
                                       "not_in_s3_count": 0, "differs": ["data/raw/a.csv"], "differs_count": 1}),
     "Data files", "1 differ from S3", "local: 1 data file(s) differ from S3 (stale copies): data/raw/a.csv"),
    ("unpushed-data", 1, put("data.s3.not_in_s3_count", 4), "Data files", "4 not in S3",
     "cloud: 4 data file(s) not in S3 (unsynced work)"),
    ("s3-not-listed", 1, put("data.s3", {"error": "AccessDenied"}), "Data files", "S3 not compared: AccessDenied",
     "cloud: data/raw/ not compared with S3: AccessDenied"),
    ("logs-not-ignored", 1, put("logs.ignored", False), "Log files", "logs/: 2 files",
     "cloud: logs/ is not ignored by git"),
    ("amazon-q-wrong-role", 0, put("amazon_q.config", {"role": "builder", "aws_access": True}), "Amazon Q config",
     "role builder", "local: the Amazon Q config is for role builder, the host is qc"),
    ("amazon-q-missing", 1, put("amazon_q.config", None), "Amazon Q config", "no .amazon-q/config.json",
     "cloud: no .amazon-q/config.json"),
    ("live-on-qc", 0, put("runtime.modes", ["live"]), "Runtime mode", "live",
     "local: RUNTIME_MODE is live; a QC host must be dryrun"),
    ("two-modes", 0, put("runtime.modes", ["dryrun", "live"]), "Runtime mode", "dryrun/live",
     "local: RUNTIME_MODE is dryrun/live"),
    ("builder-live-unapproved", 1, put("runtime.modes", ["live"]), "Runtime mode", "live",
     "cloud: RUNTIME_MODE is live; the inventory says dryrun"),
    ("host-role-differs", 0, put("runtime.host_role", "builder"), "Runtime mode", "dryrun",
     "local: CRPBOT_HOST_ROLE is builder; the inventory says qc"),
]


@pytest.mark.parametrize(("index", "change", "area", "evidence", "problem"), [c[1:] for c in CONFLICTS],
                         ids=[c[0] for c in CONFLICTS])
def test_each_conflict_is_its_rows_problem(index, change, area, evidence, problem):
    hosts = pair()
    change(hosts[index]["facts"])
    rows = by_area(audit.compare(hosts, approved=APPROVED))
    row = rows[area]
    assert row["status"] == audit.CONFLICT and row["fix"] != "none"
    assert evidence in row["evidence"][hosts[index]["name"]], row["evidence"]
    assert any(problem in line for line in row["problems"]), row["problems"]
    assert [name for name, other in rows.items() if other["status"] == audit.CONFLICT] == [area]


def test_promoted_models_must_be_the_approved_ones_on_every_host():
    rows = by_area(audit.compare(pair(), approved=[{**APPROVED[0], "sha256": "ee" * 32}]))
    assert rows["Model files"]["problems"] == [
        "local: models/promoted/ is not what the approvals say: lstm_BTC-USD_latest.pt",
        "cloud: models/promoted/ is not what the approvals say: lstm_BTC-USD_latest.pt"]
    assert by_area(audit.compare(pair(), approved=None))["Model files"]["status"] == audit.OK


def test_an_approved_builder_may_run_live_and_a_sqlite_qc_host_may_differ():
    hosts = [host("local", "qc", db_backend="sqlite"), host("cloud", "builder", live_approved=True)]
    hosts[0]["facts"]["database"]["db_url"] = {"scheme": "sqlite", "path": "/home/numan/crpbot/tradingai.db"}
    hosts[0]["facts"]["database"]["tradingai_db"] = {"path": "x", "bytes": 10, "mtime": 0}
    hosts[1]["facts"]["runtime"]["modes"] = ["live"]
    rows = by_area(audit.compare(hosts, approved=APPROVED))
    assert rows["Runtime mode"]["status"] == audit.OK and rows["Runtime mode"]["evidence"]["cloud"] == "live"
    assert rows["Database"]["status"] == audit.OK, rows["Database"]["problems"]
    hosts[1]["facts"]["runtime"]["modes"] = ["dryrun"]
    assert by_area(audit.compare(hosts))["Runtime mode"]["problems"] == [
        "cloud: RUNTIME_MODE is dryrun; the inventory says live"]


def test_a_host_not_read_makes_every_row_a_conflict():
    hosts = [host("local", "qc"), host("cloud", "builder", facts=None, error="unreachable: ssh timed out")]
    rows = audit.compare(hosts)
    assert {row["status"] for row in rows} == {audit.CONFLICT}
    for row in rows:
        assert row["evidence"]["cloud"] == "not read"
        assert row["problems"] == ["cloud: not read: unreachable: ssh timed out"]  # nothing compared with nothing
        assert row["fix"].startswith("make the host reachable")


def test_reports_hold_the_table_and_the_problems():
    hosts = pair()
    hosts[0]["facts"]["paths"] = {"count": 1, "found": ["a|b.py:1: /root"]}
    rows = audit.compare(hosts)
    doc = audit.report(rows, hosts, "2026-12-03T10:00:00Z")
    assert doc["conflict"] is True and doc["summary"] == "CONFLICTS in 1 of 12 areas: Path references"
    assert doc["hosts"] == [{"name": "local", "role": "qc"}, {"name": "cloud", "role": "builder"}]
    text = audit.markdown(doc)
    assert "| area | status | local | cloud | fix |" in text
    assert "| Path references | ⚠️ | 1: a\\|b.py:1: /root | none |" in text
    assert "- Path references: local: 1 hard-coded home path(s) in tracked files: a\\|b.py:1: /root" in text
    assert json.loads(json.dumps(doc)) == doc


# --- the host side ---------------------------------------------------------------------------------

SECRETS = {"COINBASE_API_KEY": "organizations/x/apiKeys/SECRET-KEY-123", "FTMO_PASSWORD": "p@ss w0rd {{ x }}",
           "DB": "S3cr3t/P@ss:word"}


class Host:
    """Enough of AnsibleModule for the readers: run_command runs the command."""

    def run_command(self, args, cwd=None, environ_update=None, data=None):
        done = subprocess.run(args, cwd=cwd, input=data, capture_output=True, text=True, check=False)  # noqa: S603
        return done.returncode, done.stdout, done.stderr


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@invalid", *args],
                   check=True, capture_output=True)


@pytest.fixture()
def checkout(tmp_path):
    origin, work = tmp_path / "origin", tmp_path / "home" / "crpbot"
    git(tmp_path, "init", "-q", "-b", "main", str(origin))
    (origin / "app.py").write_text('import os\nBASE = "/root/crpbot"\nHOME = "/home/numan/x"\nOK = "/rooted"\n')
    (origin / "README.md").write_text("cd /home/numan/crpbot\n")
    (origin / ".gitignore").write_text(".env\n.idea/\nlogs/\nmodels/\ntradingai.db\n")
    (origin / ".env.example").write_text("RUNTIME_MODE=dryrun\nKILL_SWITCH=false\nDB_URL=\n")
    (origin / "uv.lock").write_text("version = 1\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "one")
    git(tmp_path, "clone", "-q", str(origin), str(work))
    (work / ".env").write_text(
        "RUNTIME_MODE=dryrun\nrunTime_mode=live\nAWS_REGION=us-east-1\n"
        f"COINBASE_API_KEY={SECRETS['COINBASE_API_KEY']}\nFTMO_PASSWORD='{SECRETS['FTMO_PASSWORD']}'\n"
        f"DB_URL=postgresql+psycopg://crpbot_admin:S3cr3t%2FP%40ss%3Aword@rds.example:5432/crpbot?sslmode=require\n")
    for folder in (".vscode", ".idea", "logs", "models/promoted"):
        (work / folder).mkdir(parents=True)
    (work / ".vscode" / "settings.json").write_text("{}")
    (work / "logs" / "run.log").write_text("x" * 10)
    (work / "models" / "promoted" / "lstm_BTC-USD_latest.pt").write_bytes(b"weights")
    (work / "tradingai.db").write_bytes(b"SQLite")
    aws = tmp_path / "home" / ".aws"
    aws.mkdir()
    (aws / "config").write_text("[default]\nregion = us-east-1\noutput = json\n")
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIASECRETKEYID\naws_secret_access_key = zz\n")
    return work


def gather(checkout, **changes):
    params = {"project_dir": str(checkout), "branch": "main", "remote": "origin", "home": str(checkout.parent),
              "uv": "/nonexistent/uv", "uv_native_tls": False, "aws_profile": "default", "region": "us-east-1",
              "bucket": "b", "endpoint_url": "", "s3": False, "hmac_key": KEY,
              "public_keys": ["RUNTIME_MODE", "CRPBOT_HOST_ROLE", "AWS_REGION", "S3_BUCKET"],
              "doc_globs": ["*.md", "*.rst", "*.txt", "docs/**", "LICENSE*"], "max_listed": 20, **changes}
    return facts_module.gather(Host(), params)


def test_the_reader_on_a_checkout(checkout):
    found = gather(checkout)
    assert found["repo"]["checkout"] and found["repo"]["relation"] == "current"
    assert found["repo"]["local_changes"] == [".vscode/settings.json"]
    assert found["paths"] == {"count": 2, "found": ["app.py:2: /root", "app.py:3: /home/numan"], "error": None}
    assert found["ide"] == {".vscode": {"ignored": False, "tracked": False}, ".idea": {"ignored": True, "tracked": False}}
    assert found["logs"] == {"present": True, "files": 1, "bytes": 10, "ignored": True}
    settings = found["settings"]
    assert settings["values"] == {"AWS_REGION": "us-east-1", "runTime_mode": "live"}
    assert set(settings["hashed"]) == {"COINBASE_API_KEY", "FTMO_PASSWORD"}
    assert settings["example_keys"] == ["DB_URL", "KILL_SWITCH", "RUNTIME_MODE"]
    assert found["runtime"]["modes"] == ["dryrun", "live"]
    db = found["database"]
    assert {k: v for k, v in db["db_url"].items() if k != "password"} == {
        "scheme": "postgresql+psycopg", "user": "crpbot_admin", "host": "rds.example", "port": 5432,
        "database": "crpbot", "query": "sslmode=require"}
    assert db["tradingai_db"]["bytes"] == 6
    assert list(found["models"]["promoted"]) == ["lstm_BTC-USD_latest.pt"]
    assert found["aws"]["region"] == "us-east-1" and found["aws"]["output"] == "json"
    assert found["python"]["uv_lock_sha256"] and found["python"]["exists"] is False


def test_no_secret_leaves_the_host_or_reaches_a_report(checkout):
    found = gather(checkout)
    other = gather(checkout, hmac_key="1e" * 32)
    assert found["settings"]["hashed"] != other["settings"]["hashed"]  # keyed: a new key per run, new hashes
    hosts = [host("local", "qc", facts=found), host("cloud", "builder", facts=copy.deepcopy(found))]
    hosts[1]["facts"]["settings"]["hashed"]["FTMO_PASSWORD"] = "0" * 16
    rows = audit.compare(hosts)
    doc = audit.report(rows, hosts, "now")
    outputs = [json.dumps(found), json.dumps(doc), audit.markdown(doc), "\n".join(audit.table_lines(rows, ["local", "cloud"]))]
    for secret in [*SECRETS.values(), "S3cr3t%2FP%40ss%3Aword", "AKIASECRETKEYID"]:
        assert not any(secret in text for text in outputs), secret
    for hashed in found["settings"]["hashed"].values():
        assert not any(hashed in text for text in outputs[1:])  # the reports never show a hash either
    assert "FTMO_PASSWORD differs between the hosts (a secret: compared by keyed hash, not shown)" in doc["rows"][5]["problems"]


def test_a_local_commit_is_ahead_and_counted(checkout):
    git(checkout, "commit", "-q", "--allow-empty", "-m", "mine")
    repo = gather(checkout)["repo"]
    assert (repo["relation"], repo["local_commits"]) == ("ahead", 1)


@pytest.mark.parametrize(("role", "by_role", "shared", "want"), [
    ("qc", {"qc": {"access_key_id": "AKQC"}}, "AKSHARED", "AKQC"),
    ("builder", {"qc": {"access_key_id": "AKQC"}}, "AKSHARED", "AKSHARED"),
    ("qc", None, "AKSHARED", "AKSHARED"),
    ("qc", None, None, None),
])
def test_the_key_a_role_should_hold(role, by_role, shared, want):
    assert action.expected_key_id(role, by_role, shared) == want
    assert action.keyed(KEY, "AKQC") == facts_module.keyed(KEY, "AKQC")


def test_db_url_and_remote_url_lose_their_secrets():
    from ansible.module_utils.crpbot_probes import without_userinfo

    url = facts_module.db_url_facts("postgresql://u:p%40ss@db:5432/crpbot?sslmode=require&password=qs", KEY)
    assert url["password"] == facts_module.keyed(KEY, "p@ss") and url["query"] == "sslmode=require"
    only_query = facts_module.db_url_facts("postgresql://u@db/crpbot?password=qs", KEY)
    assert only_query["password"] == facts_module.keyed(KEY, "qs") and only_query["query"] == ""
    assert without_userinfo("fatal: unable to access 'https://bob:ghp_token@github.com/x.git/'") == \
        "fatal: unable to access 'https://github.com/x.git/'"

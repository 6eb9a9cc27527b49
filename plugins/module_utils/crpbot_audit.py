# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment conflict audit's comparison (pure; stdlib only; runs on the controller).

``compare`` takes what ``crpbot_audit_facts`` read on each host (plus what the inventory says the
host is) and returns the seed's summary table: one row per area, ``ok`` or ``conflict``, the
evidence per host, the problems (each naming the host) and the fix. The facts hold no secret, only
keyed hashes (HMAC-SHA256 with a per-run key), so nothing here can print one; hashes are compared,
never shown.

A host is given as::

    {"name": "cloud", "role": "builder", "live_approved": False, "db_backend": "rds",
     "rds": {"host": ..., "port": 5432, "database": "crpbot"}, "region": "us-east-1",
     "expected_key": "<keyed hash of the AWS key id its role should use>" or None,
     "facts": {...} or None, "error": "why it could not be read" or None}

``role`` and ``live_approved`` come from the inventory's groups (the action plugin reads them from the
Host objects), never from a variable.
"""

from __future__ import annotations

import json

OK = "ok"
CONFLICT = "conflict"
SYMBOL = {OK: "✅", CONFLICT: "⚠️"}
SITE = "run site.yml"
AREAS = ("Path references", "Git", "Python dependencies", "AWS configuration", "IDE and assistant files",
         "Settings", "Database", "Model files", "Data files", "Log files", "Amazon Q config", "Runtime mode")
# .env keys with a row of their own (compared there, not as settings).
OWN_ROW_KEYS = ("DB_URL", "CRPBOT_HOST_ROLE")
LISTED = 5


def _short(sha):
    return sha[:10] if sha else "-"


def _list(items, limit=LISTED):
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _row(area, evidence, problems, fix):
    return {"area": area, "status": CONFLICT if problems else OK, "evidence": evidence,
            "problems": problems, "fix": fix if problems else "none"}


def _differ(hosts, value, what):
    """One problem when ``value(host)`` is not the same on every host (None counts as a value)."""
    seen = {}
    for host in hosts:
        seen.setdefault(json.dumps(value(host), sort_keys=True, default=str), []).append(host["name"])
    if len(seen) < 2:
        return []
    return [f"{what} differ between the hosts: " + "; ".join(
        f"{', '.join(names)}: {json.loads(key) if key != 'null' else 'none'}" for key, names in seen.items())]


def _facts(host, area):
    return (host.get("facts") or {}).get(area) or {}


# --- the areas --------------------------------------------------------------------------------------

def path_references(hosts):
    evidence, problems = {}, []
    for host in hosts:
        paths = _facts(host, "paths")
        count = paths.get("count", 0)
        evidence[host["name"]] = "none" if not count else f"{count}: {_list(paths.get('found', []))}"
        if count:
            problems.append(f"{host['name']}: {count} hard-coded home path(s) in tracked files: "
                            f"{_list(paths.get('found', []))}")
    return _row("Path references", evidence, problems,
                "replace the hard-coded home with a path relative to the project (Path(__file__)...), commit "
                "and push, then run site.yml")


def git_row(hosts, branch):
    evidence, problems = {}, []
    for host in hosts:
        name, repo = host["name"], _facts(host, "repo")
        if not repo.get("checkout"):
            evidence[name] = "no checkout"
            problems.append(f"{name}: the project dir is not a git checkout")
            continue
        parts = [f"{repo.get('branch')} {_short(repo.get('head'))}", repo.get("relation", "unknown")]
        if repo.get("local_commits"):
            parts.append(f"{repo['local_commits']} local commit(s)")
        if repo.get("local_changes"):
            parts.append(f"local changes: {_list(repo['local_changes'])}")
        evidence[name] = ", ".join(parts)
        if repo.get("branch") != branch:
            problems.append(f"{name}: on {repo.get('branch')}, not {branch}")
        relation = repo.get("relation")
        if relation != "current":
            why = repo.get("remote_error") or f"{relation} origin/{branch} {_short(repo.get('remote_head'))}"
            problems.append(f"{name}: {why}")
        if repo.get("local_changes"):
            problems.append(f"{name}: uncommitted changes: {_list(repo['local_changes'])}")
        if repo.get("local_commits"):
            problems.append(f"{name}: {repo['local_commits']} local commit(s) not on origin/{branch}")
    checkouts = [host for host in hosts if _facts(host, "repo").get("checkout")]
    problems += _differ(checkouts, lambda host: _short(_facts(host, "repo").get("head")), "the commits (HEAD)")
    return _row("Git", evidence, problems,
                f"commit and push (or discard) the local work, then run site.yml: it fast-forwards a clean "
                f"checkout to origin/{branch}")


def _minor(version):
    return ".".join(str(version).split(".")[:2]) if version else None


def python_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, py = host["name"], _facts(host, "python")
        sync = ("no venv" if not py.get("exists") else "venv in sync" if py.get("in_sync")
                else f"venv not in sync ({py.get('why')})")
        evidence[name] = (f"uv.lock {_short(py.get('uv_lock_sha256'))}, {sync}, Python venv "
                          f"{py.get('venv_python') or '-'} / host {py.get('host_python') or '-'}")
        if not py.get("uv_lock_sha256"):
            problems.append(f"{name}: no uv.lock")
        if not py.get("exists"):
            problems.append(f"{name}: no .venv")
        elif not py.get("in_sync"):
            problems.append(f"{name}: the venv is not in sync with uv.lock ({py.get('why')})")
    problems += _differ(hosts, lambda host: _short(_facts(host, "python").get("uv_lock_sha256")),
                        "the uv.lock files (SHA-256)")
    problems += _differ([host for host in hosts if _facts(host, "python").get("venv_python")],
                        lambda host: _minor(_facts(host, "python").get("venv_python")), "the venvs' Python minor versions")
    return _row("Python dependencies", evidence, problems,
                "commit uv.lock where it changed, then run site.yml (git pull, uv sync --locked on each host)")


def aws_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, aws = host["name"], _facts(host, "aws")
        evidence[name] = (f"region {aws.get('region') or '-'}, output {aws.get('output') or '-'}, identity "
                          f"{aws.get('arn') or '-'}" + (f" ({aws['error']})" if aws.get("error") else ""))
        if not aws.get("region"):
            problems.append(f"{name}: ~/.aws/config names no region")
        elif host.get("region") and aws["region"] != host["region"]:
            problems.append(f"{name}: region {aws['region']}, the inventory says {host['region']}")
        if aws.get("error"):
            problems.append(f"{name}: the AWS identity cannot be read: {aws['error']}")
        expected = host.get("expected_key")
        if expected and aws.get("access_key_id") and aws["access_key_id"] != expected:
            others = [other["name"] for other in hosts
                      if other is not host and other.get("expected_key") == aws["access_key_id"]]
            whose = f"the key of {', '.join(others)}" if others else "another key"
            problems.append(f"{name}: holds {whose}, not the key its role ({host['role']}) should use (not shown)")
        if not aws.get("access_key_id"):
            problems.append(f"{name}: no AWS access key in ~/.aws/credentials")
    problems += _differ(hosts, lambda host: _facts(host, "aws").get("region"), "the regions")
    problems += _differ(hosts, lambda host: _facts(host, "aws").get("output"), "the output formats")
    return _row("AWS configuration", evidence, problems, "run playbooks/sync_credentials.yml (or site.yml)")


def ide_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, ide = host["name"], (host.get("facts") or {}).get("ide") or {}
        shown = []
        for folder, state in sorted(ide.items()):
            label = "tracked" if state.get("tracked") else "ignored" if state.get("ignored") else "NOT ignored"
            shown.append(f"{folder}/ ({label})")
            if state.get("tracked"):
                problems.append(f"{name}: {folder}/ is tracked by git")
            elif not state.get("ignored"):
                problems.append(f"{name}: {folder}/ is present but not ignored")
        evidence[name] = ", ".join(shown) or "none"
    return _row("IDE and assistant files", evidence, problems,
                "add the dir to the repo's .gitignore and commit (.amazon-q/ and .amazonq/: run site.yml); "
                "git rm -r --cached a tracked one")


def settings_row(hosts, mode_keys=("RUNTIME_MODE",)):
    evidence, problems = {}, []
    readable = []
    skip = {key.lower() for key in (*OWN_ROW_KEYS, *mode_keys)}  # rows of their own
    for host in hosts:
        name, settings = host["name"], _facts(host, "settings")
        if not settings.get("present"):
            evidence[name] = "no .env"
            problems.append(f"{name}: no .env")
            continue
        if settings.get("error"):
            evidence[name] = f".env unreadable: {settings['error']}"
            problems.append(f"{name}: the .env does not parse: {settings['error']}")
            continue
        readable.append(host)
        keys = set(settings.get("values", {})) | set(settings.get("hashed", {})) | (
            {"DB_URL"} if settings.get("db_url") is not None else set())
        missing = sorted(set(settings.get("example_keys") or []) - keys)
        evidence[name] = f"{len(keys)} keys ({len(settings.get('hashed', {}))} secret)" + (
            f"; missing from .env.example: {_list(missing)}" if missing else "")
        if missing:
            problems.append(f"{name}: keys of .env.example missing from .env: {_list(missing, 20)}")
    names = sorted({key for host in readable for part in ("values", "hashed")
                    for key in _facts(host, "settings").get(part, {}) if key.lower() not in skip})
    for key in names:
        def public(host, key=key):
            return _facts(host, "settings").get("values", {}).get(key)

        def secret(host, key=key):
            return _facts(host, "settings").get("hashed", {}).get(key)

        having = [host["name"] for host in readable
                  if key in _facts(host, "settings").get("values", {}) or key in _facts(host, "settings").get("hashed", {})]
        if len(having) != len(readable):
            problems.append(f"{key} is set only on {', '.join(having)}")
        elif any(key in _facts(host, "settings").get("hashed", {}) for host in readable):
            if len({secret(host) for host in readable}) > 1:
                problems.append(f"{key} differs between the hosts (a secret: compared by keyed hash, not shown)")
        elif len({public(host) for host in readable}) > 1:
            problems.append(f"{key} differs: " + "; ".join(f"{host['name']}: {public(host)!r}" for host in readable))
    return _row("Settings", evidence, problems,
                "run site.yml (it writes the managed keys on every host); set a missing .env.example key in "
                "crpbot_env_settings (or the vault's app secrets) and converge")


def _url_text(url):
    if not url:
        return "no DB_URL"
    if "unparsed" in url:
        return "DB_URL does not parse (not shown)"
    if url.get("scheme", "").startswith("sqlite"):
        return f"{url['scheme']}:///{url.get('path')}"
    user = f"{url.get('user')}@" if url.get("user") else ""
    port = f":{url.get('port')}" if url.get("port") else ""
    return f"{url.get('scheme')}://{user}{url.get('host')}{port}/{url.get('database')}"


def database_row(hosts):
    evidence, problems = {}, []
    rds_hosts = []
    for host in hosts:
        name, db = host["name"], _facts(host, "database")
        url = db.get("db_url")
        stray = db.get("tradingai_db")
        evidence[name] = _url_text(url) + (f"; tradingai.db present ({stray['bytes']} bytes)" if stray else "")
        sqlite = bool(url) and str(url.get("scheme", "")).startswith("sqlite")
        if not url:
            problems.append(f"{name}: no DB_URL in .env")
        elif "unparsed" in url:
            problems.append(f"{name}: DB_URL does not parse")
        elif host["role"] == "builder" and sqlite:
            problems.append(f"{name}: a builder on sqlite; it always uses the PostgreSQL on RDS")
        elif host.get("db_backend", "rds") == "rds":
            rds_hosts.append(host)
            if sqlite:
                problems.append(f"{name}: on sqlite, but the inventory says rds")
            want = host.get("rds") or {}
            if want.get("host") and (url.get("host"), url.get("port"), url.get("database")) != (
                    want.get("host"), want.get("port"), want.get("database")):
                problems.append(f"{name}: DB_URL points at {url.get('host')}:{url.get('port')}/{url.get('database')}, "
                                f"the inventory's RDS is {want['host']}:{want.get('port')}/{want.get('database')}")
        if stray and not sqlite:
            problems.append(f"{name}: a stray tradingai.db ({stray['bytes']} bytes) beside a PostgreSQL DB_URL")
    problems += _differ(rds_hosts, lambda host: _url_text(_facts(host, "database").get("db_url")),
                        "the databases (DB_URL without password)")
    passwords = {(_facts(host, "database").get("db_url") or {}).get("password") for host in rds_hosts}
    if len(passwords) > 1:
        problems.append("the DB_URL passwords differ between the hosts (compared by keyed hash, not shown)")
    return _row("Database", evidence, problems,
                "run site.yml (both hosts get the RDS DB_URL); move a stray tradingai.db out of the project dir")


def _s3_text(s3):
    if not s3:
        return "S3 not compared"
    if s3.get("error"):
        return f"S3 not compared: {s3['error']}"
    return (f"{s3['local_files']} local files, {s3['not_in_s3_count']} not in S3, "
            f"{s3['differs_count']} differ from S3")


def models_row(hosts, approved=None):
    evidence, problems = {}, []
    for host in hosts:
        name, models = host["name"], _facts(host, "models")
        promoted = models.get("promoted") or {}
        shown = ", ".join(f"{file} {_short(sha)}" for file, sha in sorted(promoted.items())) or "none"
        evidence[name] = f"promoted: {shown}; {_s3_text(models.get('s3'))}"
        s3 = models.get("s3") or {}
        if s3.get("error"):
            problems.append(f"{name}: models/ not compared with S3: {s3['error']}")
        if s3.get("not_in_s3_count") and host["role"] == "builder":
            problems.append(f"{name}: {s3['not_in_s3_count']} model file(s) not in S3 (unsynced work): "
                            f"{_list(s3['not_in_s3'])}")
        if s3.get("differs_count"):
            problems.append(f"{name}: {s3['differs_count']} model file(s) differ from S3: {_list(s3['differs'])}")
        if approved is not None:
            want = {place["name"]: place["sha256"] for place in approved}
            wrong = sorted(file for file in set(want) | set(promoted) if promoted.get(file) != want.get(file))
            if wrong:
                problems.append(f"{name}: models/promoted/ is not what the approvals say: {_list(wrong)}")
    problems += _differ(hosts, lambda host: {file: _short(sha) for file, sha in
                                             (_facts(host, "models").get("promoted") or {}).items()},
                        "the promoted models (SHA-256 per file)")
    return _row("Model files", evidence, problems,
                "run site.yml: the builder pushes its models to S3, every host places exactly the approved "
                "versions in models/promoted/")


def data_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, s3 = host["name"], _facts(host, "data").get("s3") or {}
        evidence[name] = _s3_text(s3)
        if s3.get("error"):
            problems.append(f"{name}: data/raw/ not compared with S3: {s3['error']}")
        if s3.get("differs_count"):
            what = "stale copies" if host["role"] == "qc" else "not pushed"
            problems.append(f"{name}: {s3['differs_count']} data file(s) differ from S3 ({what}): "
                            f"{_list(s3['differs'])}")
        if s3.get("not_in_s3_count") and host["role"] == "builder":
            problems.append(f"{name}: {s3['not_in_s3_count']} data file(s) not in S3 (unsynced work): "
                            f"{_list(s3['not_in_s3'])}")
    return _row("Data files", evidence, problems,
                "run site.yml (or playbooks/sync_s3.yml --tags data): the builder pushes, QC hosts pull")


def logs_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, logs = host["name"], _facts(host, "logs")
        if not logs.get("present"):
            evidence[name] = "no logs/"
            continue
        evidence[name] = f"logs/: {logs.get('files', 0)} files, {logs.get('bytes', 0)} bytes, kept on the host"
        if logs.get("ignored") is False:
            problems.append(f"{name}: logs/ is not ignored by git")
    return _row("Log files", evidence, problems, "add logs/ to the repo's .gitignore and commit")


def amazon_q_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, config = host["name"], _facts(host, "amazon_q").get("config")
        if not isinstance(config, dict):
            evidence[name] = "no .amazon-q/config.json" if config is None else ".amazon-q/config.json unreadable"
            problems.append(f"{name}: {evidence[name]}")
            continue
        evidence[name] = f"role {config.get('role')}, aws_access {str(config.get('aws_access')).lower()}"
        if config.get("role") != host["role"]:
            problems.append(f"{name}: the Amazon Q config is for role {config.get('role')}, the host is {host['role']}")
        if host["role"] == "qc" and config.get("aws_access"):
            problems.append(f"{name}: a QC host's Amazon Q config has aws_access (review-only)")
    return _row("Amazon Q config", evidence, problems, "run site.yml (the amazon_q role writes the config per role)")


def runtime_row(hosts):
    evidence, problems = {}, []
    for host in hosts:
        name, modes = host["name"], _facts(host, "runtime").get("modes") or []
        expected = "live" if host.get("live_approved") and host["role"] == "builder" else "dryrun"
        evidence[name] = "/".join(modes) or "not set"
        if host["role"] == "qc" and modes != ["dryrun"]:
            problems.append(f"{name}: RUNTIME_MODE is {evidence[name]}; a QC host must be dryrun")
        elif host["role"] != "qc" and modes != [expected]:
            problems.append(f"{name}: RUNTIME_MODE is {evidence[name]}; the inventory says {expected}")
        said = _facts(host, "runtime").get("host_role")
        if said != host["role"]:
            problems.append(f"{name}: CRPBOT_HOST_ROLE is {said or 'not set'}; the inventory says {host['role']}")
    return _row("Runtime mode", evidence, problems,
                "run site.yml (it puts a QC host back to dryrun); live only through the builder's inventory entry")


def unreachable(hosts):
    return [f"{host['name']}: not read: {host['error']}" for host in hosts if host.get("error")]


def compare(hosts: list[dict], branch: str = "main", approved: list[dict] | None = None) -> list[dict]:
    """The summary table: one row per area (AREAS order). The hosts that were read are compared with each
    other; a host that could not be read makes every row a conflict (its evidence says so, the problem why)."""
    read = [host for host in hosts if not host.get("error")]
    rows = [path_references(read), git_row(read, branch), python_row(read), aws_row(read), ide_row(read),
            settings_row(read), database_row(read), models_row(read, approved), data_row(read), logs_row(read),
            amazon_q_row(read), runtime_row(read)]
    missing = unreachable(hosts)
    for row in rows if missing else ():
        row["evidence"] = {host["name"]: row["evidence"].get(host["name"]) or "not read" for host in hosts}
        row["fix"] = ("make the host reachable (or fix what the message names) and run the audit again"
                      + ("; " + row["fix"] if row["problems"] else ""))
        row["problems"] = missing + row["problems"]
        row["status"] = CONFLICT
    return rows


# --- reports ------------------------------------------------------------------------------------------

def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_lines(rows: list[dict], host_names: list[str]) -> list[str]:
    """The summary table as Markdown table lines (also what the playbook prints)."""
    header = ["area", "status", *host_names, "fix"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [row["area"], SYMBOL[row["status"]], *[row["evidence"].get(name, "-") for name in host_names],
                 row["fix"]]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def problem_lines(rows: list[dict]) -> list[str]:
    return [f"{row['area']}: {problem}" for row in rows for problem in row["problems"]]


def summary(rows: list[dict]) -> str:
    conflicts = [row["area"] for row in rows if row["status"] == CONFLICT]
    if not conflicts:
        return f"CLEAN: no conflict in {len(rows)} areas"
    return f"CONFLICTS in {len(conflicts)} of {len(rows)} areas: {', '.join(conflicts)}"


def markdown(report: dict) -> str:
    lines = [f"# Environment conflict audit, {report['generated_at']}", "",
             "Hosts: " + ", ".join(f"{host['name']} ({host['role']})" for host in report["hosts"]), "",
             f"**{report['summary']}**", "", *table_lines(report["rows"], [h["name"] for h in report["hosts"]])]
    problems = problem_lines(report["rows"])
    if problems:
        lines += ["", "## Conflicts", "", *[f"- {_cell(line)}" for line in problems]]
    lines += ["", "Secrets are compared by a keyed hash (HMAC-SHA256, a new random key per run) and never shown.", ""]
    return "\n".join(lines)


def report(rows: list[dict], hosts: list[dict], generated_at: str) -> dict:
    """The JSON report: the rows and the hosts' roles (never a fact holding a hash: those are per run)."""
    return {"generated_at": generated_at, "summary": summary(rows),
            "conflict": any(row["status"] == CONFLICT for row in rows),
            "hosts": [{"name": host["name"], "role": host["role"]} for host in hosts], "rows": rows}

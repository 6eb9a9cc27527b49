# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/audit.yml on the sandbox: a converged pair audits clean (also under --check, changing nothing);
each conflict made by hand on one host gives its row, its evidence and a non-zero exit; no secret is in the
output at -vvv or in the reports."""

from __future__ import annotations

import json
import re

import boto3
import pytest

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

QC, BUILDER = "sandbox-qc", "sandbox-builder"
DATA_KEY = "data/raw/BTC-USD/BTC-USD_1m.parquet"
DATA = b"open,high,low,close\n1,2,0.5,1.5\n"


def on_host(sandbox, host: str, command: str) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True).stdout


def s3(sandbox):
    return boto3.client("s3", endpoint_url=sandbox["state"]["moto"]["endpoint"], region_name=testbed.REGION,
                        aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106


def audit(sandbox, tmp_path, *args: str):
    return run(["ansible-playbook", "-i", str(sandbox["inventory"]), "playbooks/audit.yml",
                "-e", f"crpbot_audit_report_dir={tmp_path}", *args])


def rows(output: str) -> dict[str, list[str]]:
    """The printed summary table: area -> [status, evidence of sandbox-qc, evidence of sandbox-builder, fix]."""
    table = {}
    for line in re.findall(r'^\s*"\| (.*) \|",?$', output, re.M):
        cells = [cell.strip() for cell in re.split(r"(?<!\\) \| ", line)]
        if cells[0] not in ("area", "---"):
            table[cells[0]] = cells[1:]
    return table


@pytest.fixture(scope="module")
def converged(sandbox):
    # A raw data file in the bucket, so the converge pulls it onto the QC host (BTC-USD* is its subset).
    s3(sandbox).put_object(Bucket=testbed.BUCKET, Key=DATA_KEY, Body=DATA)
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "site.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert on_host(sandbox, QC, f"cat crpbot/{DATA_KEY}").encode() == DATA
    return sandbox


def test_a_converged_pair_audits_clean_and_nothing_changes(converged, tmp_path):
    for args in ((), ("--check",)):
        proc = audit(converged, tmp_path, *args)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "CLEAN: no conflict in 12 areas" in out
        recap = out[out.index("PLAY RECAP"):]
        assert recap.count("changed=0") == 2
        table = rows(out)
        assert len(table) == 12 and {row[0] for row in table.values()} == {"✅"}, table
        assert table["Data files"][1].startswith("1 local files, 0 not in S3, 0 differ"), table["Data files"]
    reports = sorted(tmp_path.glob("audit-*"))
    assert {path.suffix for path in reports} == {".md", ".json"}
    doc = json.loads(next(path for path in reports if path.suffix == ".json").read_text())
    assert doc["conflict"] is False and len(doc["rows"]) == 12
    assert [host["role"] for host in doc["hosts"]] == ["qc", "builder"]
    markdown = next(path for path in reports if path.suffix == ".md").read_text()
    assert "| Runtime mode | ✅ | dryrun | dryrun | none |" in markdown


# (id, host, make the conflict, undo it, area, evidence of that host, a problem line)
CONFLICTS = [
    ("different-commit", BUILDER,
     "cd crpbot && git -c user.name=t -c user.email=t@invalid commit -q --allow-empty -m local",
     "cd crpbot && git reset -q --hard HEAD~1",
     "Git", "ahead, 1 local commit(s)", "the commits (HEAD) differ between the hosts"),
    ("changed-lock", QC,
     "cd crpbot && cp uv.lock /tmp/uv.lock && echo '# edited by hand' >> uv.lock",
     "cd crpbot && cp /tmp/uv.lock uv.lock",
     "Python dependencies", "uv.lock ", "the uv.lock files (SHA-256) differ between the hosts"),
    ("other-db-host", BUILDER,
     "cd crpbot && cp -p .env /tmp/env && sed -i 's/@127.0.0.1:/@localhost:/' .env",
     "cd crpbot && cp -p /tmp/env .env",
     "Database", "postgresql+psycopg://crpbot_admin@localhost:", "the databases (DB_URL without password) differ"),
    ("promoted-model-differs", QC,
     "mkdir -p crpbot/models/promoted && echo by-hand > crpbot/models/promoted/lstm_BTC-USD_latest.pt",
     "rm -f crpbot/models/promoted/lstm_BTC-USD_latest.pt",
     "Model files", "promoted: lstm_BTC-USD_latest.pt ", "the promoted models (SHA-256 per file) differ"),
    ("stale-data-file", QC,
     f"echo 9,9,9,9 >> crpbot/{DATA_KEY}",
     f"printf '{DATA.decode().replace(chr(10), chr(92) + 'n')}' > crpbot/{DATA_KEY}",
     "Data files", "1 differ from S3", f"1 data file(s) differ from S3 (stale copies): {DATA_KEY}"),
    ("hard-coded-home", QC,
     "cd crpbot && echo 'LOGS = \"/root/crpbot/logs\"' >> apps/runtime/main.py",
     "cd crpbot && git checkout -q -- apps/runtime/main.py",
     "Path references", "apps/runtime/main.py:", "hard-coded home path(s) in tracked files"),
    ("unignored-vscode", BUILDER,
     "cd crpbot && cp .gitignore /tmp/gitignore && sed -i '/^.vscode.$/d' .gitignore && mkdir -p .vscode "
     "&& echo '{}' > .vscode/settings.json",
     "cd crpbot && cp /tmp/gitignore .gitignore && rm -r .vscode",
     "IDE and assistant files", ".vscode/ (NOT ignored)", ".vscode/ is present but not ignored"),
    ("live-on-qc", QC,
     "cd crpbot && cp -p .env /tmp/env && sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=live/' .env",
     "cd crpbot && cp -p /tmp/env .env",
     "Runtime mode", "live", "RUNTIME_MODE is live; a QC host must be dryrun"),
    ("unpushed-model", BUILDER,
     "mkdir -p crpbot/models/lstm/ETH-USD/v1 && echo weights > crpbot/models/lstm/ETH-USD/v1/model.pt",
     "rm -r crpbot/models/lstm/ETH-USD",
     "Model files", "1 not in S3", "1 model file(s) not in S3 (unsynced work): models/lstm/ETH-USD/v1/model.pt"),
]


@pytest.mark.parametrize(("host", "make", "undo", "area", "evidence", "problem"), [c[1:] for c in CONFLICTS],
                         ids=[c[0] for c in CONFLICTS])
def test_a_conflict_shows_in_its_row_and_fails_the_run(converged, tmp_path, host, make, undo, area, evidence,
                                                        problem):
    on_host(converged, host, make)
    try:
        proc = audit(converged, tmp_path)
    finally:
        on_host(converged, host, undo)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    table = rows(out)
    column = 1 if host == QC else 2
    assert table[area][0] == "⚠️", table[area]
    assert evidence in table[area][column], table[area]
    assert problem in out, out[-4000:]
    assert re.search(r"CONFLICTS in \d+ of 12 areas: .*" + re.escape(area), out)
    doc = json.loads(next(tmp_path.glob("audit-*.json")).read_text())
    assert doc["conflict"] is True
    assert {row["area"]: row["status"] for row in doc["rows"]}[area] == "conflict"


def test_a_secret_that_differs_is_named_never_shown(converged, tmp_path):
    """At -vvv, with a secret changed on one host, neither the output nor the reports hold any sandbox secret."""
    on_host(converged, QC, "cd crpbot && cp -p .env /tmp/env && sed -i 's/^FTMO_PASSWORD=.*/FTMO_PASSWORD=other/' .env")
    try:
        proc = audit(converged, tmp_path, "-vvv")
    finally:
        on_host(converged, QC, "cd crpbot && cp -p /tmp/env .env")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "FTMO_PASSWORD differs between the hosts (a secret: compared by keyed hash, not shown)" in out
    assert rows(out)["Settings"][0] == "⚠️"
    texts = [out] + [path.read_text() for path in tmp_path.glob("audit-*")]
    secrets = testbed.secret_values(testbed.sandbox_secrets())
    assert [secret[:4] for secret in secrets for text in texts if secret in text] == []


def test_a_qc_host_holding_the_builders_key_is_named(converged, tmp_path):
    """The sandbox vault has a QC key of its own (vault_crpbot_aws_keys_by_role): the builder's key on the QC host
    is a conflict, named by whose key it is, never shown."""
    builder_credentials = on_host(converged, BUILDER, "cat ~/.aws/credentials")
    on_host(converged, QC, "cp -p ~/.aws/credentials /tmp/credentials")
    run(testbed.ssh_argv(converged["state"], QC) + ["cat > ~/.aws/credentials"], input=builder_credentials, check=True)
    try:
        proc = audit(converged, tmp_path)
    finally:
        on_host(converged, QC, "cp -p /tmp/credentials ~/.aws/credentials")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    table = rows(out)
    assert table["AWS configuration"][0] == "⚠️" and "user/crpbot-builder" in table["AWS configuration"][1]
    assert "sandbox-qc: holds the key of sandbox-builder, not the key its role (qc) should use (not shown)" in out
    secrets = testbed.secret_values(testbed.sandbox_secrets())
    assert [secret[:4] for secret in secrets if secret in out] == []

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/preflight.yml on the converged sandbox: passes, then fails naming the check after each breakage."""

from __future__ import annotations

import subprocess

import pytest

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed


def on_host(sandbox, host: str, command: str) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True).stdout


def preflight(sandbox, *args: str):
    return run(["ansible-playbook", "-i", str(sandbox["inventory"]), "playbooks/preflight.yml", *args])


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "site.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sandbox


def test_passes_on_converged_hosts_and_changes_nothing(converged):
    for args in ((), ("--check",)):
        proc = preflight(converged, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "host sandbox-qc passed every pre-flight check" in proc.stdout
        assert "host sandbox-builder passed every pre-flight check" in proc.stdout
        recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
        assert recap.count("changed=0") == 2
    for row in ("ok   | repo is current", "ok   | venv in sync", "ok   | database", "ok   | AWS identity",
                "ok   | bucket", "ok   | RUNTIME_MODE | RUNTIME_MODE is dryrun"):
        assert row in proc.stdout, row


@pytest.mark.parametrize(
    ("host", "break_it", "mend", "check"),
    [
        ("sandbox-qc", "sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=live/' crpbot/.env",
         "sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=dryrun/' crpbot/.env", "RUNTIME_MODE"),
        ("sandbox-builder", "cp crpbot/.db_password /tmp/dbp && printf wrong > crpbot/.db_password",
         "cat /tmp/dbp > crpbot/.db_password", ".db_password"),
        ("sandbox-qc", "chmod 0644 ~/.aws/credentials", "chmod 0600 ~/.aws/credentials",
         "secret file /home/numan/.aws/credentials"),
    ],
    ids=["live-on-qc", "wrong-db-password", "secret-file-0644"],
)
def test_fails_naming_the_check(converged, host, break_it, mend, check):
    on_host(converged, host, break_it)
    try:
        proc = preflight(converged)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert f"host {host} failed the pre-flight checks" in out and check in out, out[-3000:]
        assert f"FAIL | {check}" in out
    finally:
        on_host(converged, host, mend)


def test_fails_when_the_database_is_down(converged):
    pg = converged["state"]["pg"]
    stop = ["runuser", "-u", "postgres", "--", str(testbed.PG_BIN / "pg_ctl"), "-D", f"{pg['dir']}/data",
            "-m", "fast", "-w", "stop"]
    subprocess.run(stop, check=True, capture_output=True, cwd=pg["dir"])
    proc = preflight(converged)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for host in ("sandbox-qc", "sandbox-builder"):
        assert f"host {host} failed the pre-flight checks" in out
    assert "FAIL | database" in out
    secrets = testbed.secret_values(testbed.sandbox_secrets())
    assert [s[:4] for s in secrets if s in out] == []

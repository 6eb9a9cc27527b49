# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rotate_credentials.yml against the test bed's real PostgreSQL and IAM/STS server.

Both rotations end with every host working with the new credential and the old one refused
(database) or inactive (IAM); each fault (database down during set, a host unreachable during
finish, the test step failing, a second IAM key already there, the controller killed mid-run)
ends with every host working and the vault matching the service. Every run is -vvv and its
whole output is grepped for every secret, old and new.
"""

from __future__ import annotations

import json
import subprocess
from urllib.parse import quote

import boto3
import pytest

from tests import testbed
from tests.conftest import REPO, run

pytestmark = pytest.mark.testbed

HOSTS = ("sandbox-qc", "sandbox-builder")
PROJECT = {"sandbox-qc": "/home/numan/crpbot", "sandbox-builder": "/root/crpbot"}
HOME = {"sandbox-qc": "/home/numan", "sandbox-builder": "/root"}
FAULT_ENV = {
    "ANSIBLE_CALLBACK_PLUGINS": f"{REPO / 'plugins' / 'callback'}:{REPO / 'tests' / 'fixtures' / 'callback_plugins'}",
    "ANSIBLE_CALLBACKS_ENABLED": "crpbot_connection_log,crpbot_ansiballz_cache,crpbot_fault",
}


def vault_path(sandbox):
    return sandbox["inventory"].parent / "group_vars" / "all" / "vault.yml"


def vault_text(sandbox) -> str:
    return testbed.read_vault(vault_path(sandbox))


def vault(sandbox) -> dict:
    import yaml

    return yaml.safe_load(vault_text(sandbox))


def on_host(sandbox, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=check)


def files_digest(sandbox) -> dict[str, str]:
    """sha256 of every credential file on every host, and the list of staged leftovers."""
    out = {}
    for host in HOSTS:
        paths = [f"{PROJECT[host]}/.db_password", f"{PROJECT[host]}/.env", f"{HOME[host]}/.aws/credentials"]
        listing = on_host(sandbox, host, "sha256sum " + " ".join(paths) + "; ls -a "
                          + f"{PROJECT[host]} {HOME[host]}/.aws | grep -E '[.](pending|prev)$' || true").stdout
        out[host] = listing
    return out


def secrets_of(data: dict) -> list[str]:
    """Every secret string of the vault; access key ids are not secret (the summary names them)."""
    ids = {data.get("vault_crpbot_aws_access_key_id")}
    ids |= {key.get("access_key_id") for key in (data.get("vault_crpbot_aws_keys_by_role") or {}).values()}
    ids |= {key.get("access_key_id") for key in ((data.get("vault_crpbot_rotation_pending") or {}).get("keys") or {}).values()}
    ids |= {key.get("old_access_key_id") for key in ((data.get("vault_crpbot_rotation_pending") or {}).get("keys") or {}).values()}
    # The pending record's kind and start time are not secret either.
    ids |= {(data.get("vault_crpbot_rotation_pending") or {}).get(k) for k in ("credential", "started")}
    return [value for value in testbed.secret_values(data) if value not in ids]


def rotate(sandbox, what: str, *args: str, fault: tuple[str, list[str]] | None = None):
    env = dict(FAULT_ENV, CRPBOT_FAULT_TASK=fault[0], CRPBOT_FAULT_CMD=json.dumps(fault[1])) if fault else {}
    env["ANSIBLE_STDOUT_CALLBACK"] = "default"
    before = secrets_of(vault(sandbox))
    proc = run(["ansible-playbook", "-vvv", "-i", str(sandbox["inventory"]), "playbooks/rotate_credentials.yml",
                "-e", f"rotate={what}", *args], env=env, timeout=900)
    out = proc.stdout + proc.stderr
    secrets = set(before + secrets_of(vault(sandbox)))
    leaked = [s[:4] + "…" for s in secrets if len(s) >= 6 and s in out]
    assert leaked == [], f"secrets in the -vvv output: {leaked}"
    return proc.returncode, out


def summary(out: str) -> str:
    return out[out.find("TASK [Print the summary]"):][:3000]


def db_login(sandbox, password: str) -> bool:
    return testbed.db_login(sandbox["state"], password)


def iam_keys(sandbox, user: str) -> dict[str, str]:
    iam = boto3.client("iam", endpoint_url=sandbox["state"]["moto"]["endpoint"], region_name=testbed.REGION,
                       aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106 - moto
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def pg_ctl(sandbox, action: str) -> list[str]:
    """The command that stops or starts the sandbox PostgreSQL (as the test bed's `up` does)."""
    pg = sandbox["state"]["pg"]
    cmd = [str(testbed.PG_BIN / "pg_ctl"), "-D", f"{pg['dir']}/data", "-w"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", f"{pg['dir']}/server.log", "-o",
                f"-p {pg['port']} -k {pg['dir']} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]
    return ["sh", "-c", 'cd "$0" && exec runuser -u postgres -- "$@"', pg["dir"], *cmd]


def assert_hosts_work(sandbox):
    """The pre-flight checklist passes on both hosts with their live files (app: DB, AWS, modes)."""
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "playbooks/preflight.yml"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def assert_converge_is_a_no_op(sandbox):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "playbooks/converge.yml"])
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    assert proc.returncode == 0 and recap.count("changed=0") == 2, recap


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), "site.yml"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return sandbox


def test_check_mode_prints_the_plan_and_changes_nothing(converged):
    before = (vault_path(converged).read_bytes(), files_digest(converged), iam_keys(converged, "crpbot-builder"))
    code, out = rotate(converged, "db_password", "--check")
    assert code == 0, out[-3000:]
    assert "ROTATION PLAN (db_password)" in out and "database role crpbot_admin" in out
    code, out = rotate(converged, "aws_access_key", "--check")
    assert code == 0, out[-3000:]
    assert "AWS key shared:" in out and "IAM user crpbot-builder" in out and "IAM user crpbot-qc" in out
    assert (vault_path(converged).read_bytes(), files_digest(converged), iam_keys(converged, "crpbot-builder")) == before
    assert db_login(converged, vault(converged)["vault_crpbot_db_password"])


def backups_holding(sandbox, host: str, needle: str) -> list[str]:
    return on_host(sandbox, host, f"cd {PROJECT[host]} && grep -lF -- '{needle}' .env.*.bak .db_password.*.bak "
                                  "2>/dev/null || true").stdout.split()


def test_db_password_rotation(converged):
    old = vault(converged)["vault_crpbot_db_password"]
    encoded = quote(old, safe="")[:12]  # how DB_URL holds it
    # Backups that hold the old password (a converge after hand edits), one that does not, and a QC
    # .env a person set to live by hand: the rotation must not write that into its staged .env.
    for host in HOSTS:
        on_host(converged, host, f"cd {PROJECT[host]} && printf x >> .db_password && "
                                 "sed -i 's/^TELEGRAM_CHAT_ID=.*/TELEGRAM_CHAT_ID=by-hand/' .env && "
                                 "echo A=1 > .env.20240101T000000.bak && chmod 600 .env.20240101T000000.bak")
    proc = run(["ansible-playbook", "-i", str(converged["inventory"]), "playbooks/converge.yml"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    for host in HOSTS:
        assert backups_holding(converged, host, old[:12]) and backups_holding(converged, host, encoded)
    on_host(converged, "sandbox-qc", f"cd {PROJECT['sandbox-qc']} && sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=live/' .env"
                                     " && echo 'export runtime_mode=live' >> .env")
    code, out = rotate(converged, "db_password")
    assert code == 0, out[-4000:]
    assert "ROTATION db_password: DONE" in out
    assert "host sandbox-qc had RUNTIME_MODE=live in /home/numan/crpbot/.env.pending; it is now dryrun" in out
    modes = on_host(converged, "sandbox-qc", f"grep -i '^[^#]*runtime_mode' {PROJECT['sandbox-qc']}/.env").stdout.split()
    assert modes == ["RUNTIME_MODE=dryrun", "export", "runtime_mode=dryrun"]
    for host in HOSTS:  # no backup keeps the password the rotation replaced; the others stay
        assert backups_holding(converged, host, old[:12]) == [] and backups_holding(converged, host, encoded) == []
        assert on_host(converged, host, f"cat {PROJECT[host]}/.env.20240101T000000.bak").stdout == "A=1\n"
    assert "backup(s) holding the replaced credential" in out
    new_vault = vault(converged)
    new = new_vault["vault_crpbot_db_password"]
    assert new != old and len(new) == 40 and new.isalnum()
    assert "vault_crpbot_rotation_pending" not in new_vault
    assert db_login(converged, new) and not db_login(converged, old)
    for host in HOSTS:
        assert on_host(converged, host, f"cat {PROJECT[host]}/.db_password").stdout == new
        assert on_host(converged, host, f"stat -c '%a' {PROJECT[host]}/.db_password {PROJECT[host]}/.env").stdout.split() == ["600", "600"]
    assert "pending" not in json.dumps(files_digest(converged)) and ".prev" not in json.dumps(files_digest(converged))
    assert_hosts_work(converged)
    assert_converge_is_a_no_op(converged)


def test_aws_key_rotation_then_deleting_the_inactive_keys(converged):
    old = vault(converged)
    old_ids = {"crpbot-builder": old["vault_crpbot_aws_access_key_id"],
               "crpbot-qc": old["vault_crpbot_aws_keys_by_role"]["qc"]["access_key_id"]}
    code, out = rotate(converged, "aws_access_key")
    assert code == 0, out[-4000:]
    assert "ROTATION aws_access_key: DONE" in out
    new = vault(converged)
    new_ids = {"crpbot-builder": new["vault_crpbot_aws_access_key_id"],
               "crpbot-qc": new["vault_crpbot_aws_keys_by_role"]["qc"]["access_key_id"]}
    for user in old_ids:
        assert new_ids[user] != old_ids[user]
        assert iam_keys(converged, user) == {old_ids[user]: "Inactive", new_ids[user]: "Active"}
        assert f"old {old_ids[user]}, new {new_ids[user]}" in out
    assert on_host(converged, "sandbox-qc", "grep -c " + new_ids["crpbot-qc"] + " ~/.aws/credentials").stdout.strip() == "1"
    assert on_host(converged, "sandbox-builder", "grep -c " + new_ids["crpbot-builder"] + " ~/.aws/credentials").stdout.strip() == "1"
    assert "rotate=aws_inactive_keys" in out
    assert_hosts_work(converged)
    assert_converge_is_a_no_op(converged)

    code, out = rotate(converged, "aws_inactive_keys")
    assert code == 0, out[-4000:]
    for user in old_ids:
        assert iam_keys(converged, user) == {new_ids[user]: "Active"}
    assert_hosts_work(converged)


def test_a_second_key_already_present_is_refused_before_anything_changes(converged):
    iam = boto3.client("iam", endpoint_url=converged["state"]["moto"]["endpoint"], region_name=testbed.REGION,
                       aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106 - moto
    extra = iam.create_access_key(UserName="crpbot-builder")["AccessKey"]["AccessKeyId"]
    try:
        before = (vault_path(converged).read_bytes(), files_digest(converged), iam_keys(converged, "crpbot-builder"))
        code, out = rotate(converged, "aws_access_key")
        assert code != 0
        assert "IAM user crpbot-builder already has two access keys" in out and extra in out
        assert "Nothing was changed." in out
        assert (vault_path(converged).read_bytes(), files_digest(converged),
                iam_keys(converged, "crpbot-builder")) == before
    finally:
        iam.delete_access_key(UserName="crpbot-builder", AccessKeyId=extra)
    assert_hosts_work(converged)


def assert_rolled_back(sandbox, vault_before: str, files_before, out: str):
    # Re-encrypted with a new salt after the pending record came and went, but the same text.
    assert vault_text(sandbox) == vault_before, "the vault does not match the service"
    assert files_digest(sandbox) == files_before
    assert db_login(sandbox, vault(sandbox)["vault_crpbot_db_password"])
    assert_hosts_work(sandbox)


def test_database_down_during_set_rolls_back(converged):
    vault_before, files_before = vault_text(converged), files_digest(converged)
    try:
        code, out = rotate(converged, "db_password",
                           fault=("Set the new password on the database role", pg_ctl(converged, "stop")))
    finally:
        subprocess.run(pg_ctl(converged, "start"), check=False, capture_output=True)
    assert code != 0
    assert "ROLLED BACK: the db_password rotation failed at step set" in out, out[-4000:]
    assert "cannot reach the database" in out
    assert_rolled_back(converged, vault_before, files_before, out)


def test_failing_test_step_rolls_back_the_database(converged):
    vault_before, files_before = vault_text(converged), files_digest(converged)
    corrupt = testbed.ssh_argv(converged["state"], "sandbox-qc") + [
        f"printf wrong > {PROJECT['sandbox-qc']}/.db_password.pending"]
    code, out = rotate(converged, "db_password", fault=("Set the new password on the database role", corrupt))
    assert code != 0
    assert "ROLLED BACK: the db_password rotation failed at step test on sandbox-qc" in out, out[-4000:]
    assert "database role crpbot_admin on 127.0.0.1: password set back to the current password of the vault" in out, summary(out)
    assert_rolled_back(converged, vault_before, files_before, out)


def test_host_unreachable_during_finish_rolls_back_the_others(converged):
    vault_before, files_before = vault_text(converged), files_digest(converged)
    qc = converged["state"]["hosts"]["sandbox-qc"]["container"]
    podman = ["env", f"CONTAINERS_CONF={testbed.CONTAINERS_CONF}", "podman"]
    try:
        code, out = rotate(converged, "db_password",
                           fault=("Promote the staged files", [*podman, "stop", "-t", "0", qc]))
    finally:
        subprocess.run([*podman, "start", qc], check=True, capture_output=True)
        testbed.wait_for("sshd of sandbox-qc", lambda: on_host(converged, "sandbox-qc", "true", check=False).returncode == 0)
    assert code != 0
    assert "the db_password rotation failed at step promote on sandbox-qc" in out, out[-4000:]
    assert "host sandbox-qc was unreachable" in out
    # The builder was promoted and put back; the QC host was never promoted: its live files are
    # the old ones, and the staged ones wait to be removed, as the summary says.
    staged = on_host(converged, "sandbox-qc", f"ls -a {PROJECT['sandbox-qc']} | grep -E '[.]pending$'").stdout.split()
    assert sorted(staged) == [".db_password.pending", ".env.pending"]
    on_host(converged, "sandbox-qc", f"rm {PROJECT['sandbox-qc']}/.db_password.pending {PROJECT['sandbox-qc']}/.env.pending")
    assert_rolled_back(converged, vault_before, files_before, out)


def test_an_interrupted_rotation_resumes_from_the_pending_record(converged):
    old = vault(converged)["vault_crpbot_db_password"]
    code, out = rotate(converged, "db_password", fault=("Promote the staged files", ["kill", "-9", "{pid}"]))
    assert code != 0
    pending = vault(converged)["vault_crpbot_rotation_pending"]
    assert pending["credential"] == "db_password"
    assert db_login(converged, pending["db_password"]) and not db_login(converged, old)
    # Another rotation is refused while this one is pending.
    code, out = rotate(converged, "aws_access_key")
    assert code != 0 and "resume it first with -e rotate=db_password" in out
    code, out = rotate(converged, "db_password")
    assert code == 0, out[-4000:]
    assert "resuming the rotation started" in out and "ROTATION db_password: DONE" in out
    final = vault(converged)
    assert final["vault_crpbot_db_password"] == pending["db_password"]
    assert "vault_crpbot_rotation_pending" not in final
    assert_hosts_work(converged)
    assert_converge_is_a_no_op(converged)


@pytest.mark.parametrize(
    ("step", "broken_file", "before_task"),
    [
        # The test step: new keys created and staged; they are deleted again.
        ("test", "~/.aws/credentials.pending", "Check that every host passed the step stage"),
        # The deepest rollback: files promoted, vault updated, old keys deactivated, then the last
        # check fails; the old keys are reactivated, the new ones deleted, .prev and vault put back.
        ("verify", "~/.aws/credentials", "Run the app checks for the step verify"),
    ],
    ids=["test-step", "verify-after-finish"],
)
def test_failing_aws_step_undoes_every_step_before_it(converged, step, broken_file, before_task):
    vault_before, files_before = vault_text(converged), files_digest(converged)
    keys_before = {user: iam_keys(converged, user) for user in ("crpbot-builder", "crpbot-qc")}
    corrupt = testbed.ssh_argv(converged["state"], "sandbox-qc") + [
        f"sed -i 's/^aws_access_key_id = .*/aws_access_key_id = AKIANOTAKEYOFTHEUSER/' {broken_file}"]
    code, out = rotate(converged, "aws_access_key", "-e", "crpbot_rotate_retries=1", "-e", "crpbot_rotate_delay=1",
                       fault=(before_task, corrupt))
    assert code != 0
    assert f"ROLLED BACK: the aws_access_key rotation failed at step {step} on sandbox-qc" in out, summary(out)
    assert {user: iam_keys(converged, user) for user in keys_before} == keys_before
    assert_rolled_back(converged, vault_before, files_before, out)

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credentials role, playbooks/sync_credentials.yml and the importer against a sandbox of the
suite's own: files, modes and backups, and no secret of the sandbox vault in any output
(every run at -vvv, with --diff, in check mode, and the importer)."""

from __future__ import annotations

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

SYNC = "playbooks/sync_credentials.yml"
IMPORT = "playbooks/import_credentials.yml"
WRITE_ENV = "tests/integration/playbooks/write_env.yml"
SECRETS = testbed.sandbox_secrets()
SECRET_VALUES = testbed.secret_values(SECRETS)


def host_sh(state: dict, host: str, command: str) -> str:
    return run(testbed.ssh_argv(state, host) + [command], check=True).stdout


def playbook(sandbox: dict, *args: str) -> str:
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), *args], env=sandbox["env"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    return output


def leaks(output: str) -> list[str]:
    return [value for value in SECRET_VALUES if value in output]


def recap(output: str) -> str:
    return output[output.index("PLAY RECAP"):]


@pytest.fixture(scope="module")
def synced(sandbox):
    """Prepare, then every kind of sync run; keep each run's complete -vvv output."""
    outputs = {"prepare": playbook(sandbox, "molecule/shared/prepare.yml")}
    state = sandbox["state"]
    outputs["check_fresh"] = playbook(sandbox, SYNC, "--check", "--diff", "-vvv")
    outputs["first"] = playbook(sandbox, SYNC, "--diff", "-vvv")
    outputs["second"] = playbook(sandbox, SYNC, "--diff", "-vvv")
    outputs["check"] = playbook(sandbox, SYNC, "--check", "--diff", "-vvv")
    # A person edits the files by hand: the next sync puts them back and keeps 0600 backups.
    host_sh(state, "sandbox-qc", "echo 'hand = edit' >> ~/.aws/credentials && chmod 0644 ~/.aws/credentials")
    host_sh(state, "sandbox-builder", "printf 'old-hand-password' > ~/crpbot/.db_password")
    outputs["after_edit"] = playbook(sandbox, SYNC, "--diff", "-vvv")
    return {"sandbox": sandbox, "outputs": outputs}


def test_sync_converges_idempotently_and_check_changes_nothing(synced):
    outputs = synced["outputs"]
    assert recap(outputs["check_fresh"]).count("failed=0") == 2
    assert recap(outputs["second"]).count("changed=0") == 2
    assert recap(outputs["check"]).count("changed=0") == 2
    assert recap(outputs["after_edit"]).count("changed=1") == 2


@pytest.mark.parametrize("host", ["sandbox-qc", "sandbox-builder"])
def test_files_modes_owners_and_contents(synced, host):
    state = synced["sandbox"]["state"]
    user = state["hosts"][host]["user"]
    listing = host_sh(state, host, "stat -c '%a %U %n' ~/.aws ~/.aws/credentials ~/.aws/config ~/crpbot/.db_password")
    assert [line.split()[:2] for line in listing.splitlines()] == [["700", user], ["600", user], ["600", user],
                                                                      ["600", user]]
    key = SECRETS["vault_crpbot_aws_keys_by_role"]["qc"] if host == "sandbox-qc" else {
        "access_key_id": SECRETS["vault_crpbot_aws_access_key_id"],
        "secret_access_key": SECRETS["vault_crpbot_aws_secret_access_key"],
    }
    credentials = host_sh(state, host, "cat ~/.aws/credentials")
    assert f"[default]\naws_access_key_id = {key['access_key_id']}\n" in credentials
    assert f"aws_secret_access_key = {key['secret_access_key']}\n" in credentials
    assert "hand = edit" not in credentials
    assert host_sh(state, host, "cat ~/.aws/config").endswith("[default]\nregion = us-east-1\noutput = json\n")
    assert host_sh(state, host, "cat ~/crpbot/.db_password") == SECRETS["vault_crpbot_db_password"]
    assert host_sh(state, host, "cd ~/crpbot && git status --porcelain --ignored=no -- '.db_password*'") == ""


def test_backups_are_0600_and_hold_the_previous_version(synced):
    state = synced["sandbox"]["state"]
    qc = host_sh(state, "sandbox-qc", "ls -l ~/.aws/credentials.*.bak")
    builder = host_sh(state, "sandbox-builder", "ls -l ~/crpbot/.db_password.*.bak")
    for listing in (qc, builder):
        assert len(listing.splitlines()) == 1 and listing.startswith("-rw------- "), listing
    assert host_sh(state, "sandbox-builder", "cat ~/crpbot/.db_password.*.bak") == "old-hand-password"
    assert "hand = edit" in host_sh(state, "sandbox-qc", "cat ~/.aws/credentials.*.bak")
    # The backups are not for git either.
    status = host_sh(state, "sandbox-builder", "cd ~/crpbot && git status --porcelain")
    assert ".db_password" not in status


def test_no_secret_in_any_sync_output(synced):
    for name, output in synced["outputs"].items():
        assert leaks(output) == [], name


def test_missing_vault_variable_names_host_variable_and_fix_without_values(synced):
    sandbox = synced["sandbox"]
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), SYNC, "-vvv",
                "-e", "vault_crpbot_db_password=''"], env=sandbox["env"])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in ("sandbox-qc", "vault_crpbot_db_password", "ansible-vault create inventory/group_vars/all/vault.yml"):
        assert word in output, word
    assert leaks(output) == []
    # any_errors_fatal in the validation play: no host was written.
    assert "Keep .db_password out of git, write it" not in output


def test_importer_writes_a_new_vault_with_the_hosts_credentials(synced, tmp_path):
    sandbox = synced["sandbox"]
    env_output = playbook(sandbox, WRITE_ENV, "-vvv")
    target = tmp_path / "group_vars" / "all" / "vault.yml"
    output = playbook(sandbox, IMPORT, "--limit", "sandbox-qc", "-vvv", "--diff",
                      "-e", f"crpbot_import_vault_file={target}")
    assert leaks(env_output + output) == []
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    secret = VaultSecret(testbed.VAULT_PASSWORD_FILE.read_bytes().strip())
    imported = yaml.safe_load(VaultLib([("default", secret)]).decrypt(target.read_bytes()))
    qc_key = SECRETS["vault_crpbot_aws_keys_by_role"]["qc"]
    assert imported == {
        "vault_crpbot_db_password": SECRETS["vault_crpbot_db_password"],
        # The QC host's key (its per-role key in the sandbox) becomes the shared key.
        "vault_crpbot_aws_access_key_id": qc_key["access_key_id"],
        "vault_crpbot_aws_secret_access_key": qc_key["secret_access_key"],
        "vault_crpbot_app_secrets": SECRETS["vault_crpbot_app_secrets"],
    }
    # A second run refuses to overwrite the file, naming it and the fix.
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), IMPORT, "--limit", "sandbox-qc",
                "-e", f"crpbot_import_vault_file={target}"], env=sandbox["env"])
    assert proc.returncode != 0
    assert f"{target} already exists" in proc.stdout + proc.stderr
    assert "crpbot_import_vault_file=" in proc.stdout + proc.stderr

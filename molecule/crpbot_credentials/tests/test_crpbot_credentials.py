# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_credentials role: modes, owners and contents of the credential files
(compared with the decrypted sandbox vault), ~/.aws 0700, and the 0600 backup of the changed file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The repo root, for the test bed's helpers (the verifier may run from the scenario dir).
sys.path.insert(0, os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).resolve().parents[3])))

from tests import testbed  # noqa: E402

testinfra_hosts = ["ansible://crpbot"]

SECRETS = testbed.sandbox_secrets()


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


def expected_key(role: str) -> dict:
    by_role = SECRETS["vault_crpbot_aws_keys_by_role"]
    if role in by_role:
        return by_role[role]
    return {"access_key_id": SECRETS["vault_crpbot_aws_access_key_id"],
            "secret_access_key": SECRETS["vault_crpbot_aws_secret_access_key"]}


def test_aws_dir_is_0700(host, hostvars):
    d = host.file(f"{hostvars['crpbot_home']}/.aws")
    assert d.is_directory and d.user == hostvars["crpbot_user"] and d.mode == 0o700


@pytest.mark.parametrize("name", [".aws/credentials", ".aws/config", "crpbot/.db_password"])
def test_files_are_0600_and_owned_by_the_host_user(host, hostvars, name):
    f = host.file(f"{hostvars['crpbot_home']}/{name}")
    assert f.is_file and f.user == hostvars["crpbot_user"] and f.group == hostvars["crpbot_user"]
    assert f.mode == 0o600


def test_aws_credentials_hold_the_roles_key(host, hostvars):
    key = expected_key(hostvars["crpbot_role"])
    text = host.file(f"{hostvars['crpbot_home']}/.aws/credentials").content_string
    assert text.splitlines()[1:] == [
        "[default]",
        f"aws_access_key_id = {key['access_key_id']}",
        f"aws_secret_access_key = {key['secret_access_key']}",
    ]


def test_aws_config(host, hostvars):
    text = host.file(f"{hostvars['crpbot_home']}/.aws/config").content_string
    assert text.splitlines()[1:] == ["[default]", "region = us-east-1", "output = json"]


def test_db_password_is_exact(host, hostvars):
    f = host.file(f"{hostvars['crpbot_project_dir']}/.db_password")
    assert f.content_string == SECRETS["vault_crpbot_db_password"]


def test_changed_file_has_a_0600_backup(host, hostvars):
    backups = host.run(f"ls {hostvars['crpbot_project_dir']}/.db_password.*.bak").stdout.split()
    if hostvars["crpbot_role"] == "builder":
        assert len(backups) == 1
        backup = host.file(backups[0])
        assert backup.mode == 0o600 and backup.user == hostvars["crpbot_user"]
        assert backup.content_string == "old-password-from-the-script\n"
    else:
        assert backups == []

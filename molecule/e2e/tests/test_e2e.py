# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end verifier: what site.yml leaves on each bare sandbox host, checked on the host itself."""

from __future__ import annotations

import json

import pytest

from tests import testbed

testinfra_hosts = ["ansible://crpbot"]

SECRETS = testbed.sandbox_secrets()
EXPECTED = {
    # inventory host -> (role, user, home, project dir)
    "sandbox-qc": ("qc", "numan", "/home/numan", "/home/numan/crpbot"),
    "sandbox-builder": ("builder", "root", "/root", "/root/crpbot"),
}


@pytest.fixture
def expected(host):
    return EXPECTED[host.ansible.get_variables()["inventory_hostname"]]


def test_inventory_plugin_marks_the_host(host, expected):
    role, user, _, project = expected
    hostvars = host.ansible.get_variables()
    assert hostvars["crpbot_role"] == role
    assert role in hostvars["group_names"] and "crpbot" in hostvars["group_names"]
    assert hostvars["crpbot_project_dir"] == project
    assert host.user().name == user


def test_checkout_is_cloned_and_only_our_gitignore_blocks_differ(host, expected):
    _, user, _, project = expected
    assert host.file(project).user == user
    assert host.run(f"git -C {project} symbolic-ref --short HEAD").stdout.strip() == "main"
    assert host.run(f"git -C {project} status --porcelain").stdout == " M .gitignore\n"
    gitignore = host.file(f"{project}/.gitignore").content_string
    for block in ("amazon_q", "crpbot_credentials", "crpbot_env"):
        assert f"# BEGIN crpbot-ansible {block}" in gitignore, block


def test_uv_and_the_venv(host, expected):
    _, user, home, project = expected
    uv = host.file(f"{home}/.local/bin/uv")
    assert uv.user == user and uv.mode == 0o755
    assert host.run(f"{home}/.local/bin/uv --version").stdout.startswith("uv 0.13.9")
    imports = host.run(f"{project}/.venv/bin/python -c 'import dotenv, sqlalchemy, psycopg'")
    assert imports.rc == 0, imports.stderr
    assert host.file(f"{project}/.venv").user == user


def test_the_app_runs_dry_and_reaches_the_database(host, expected):
    _, _, _, project = expected
    result = host.run(f"cd {project} && .venv/bin/python -m apps.runtime.main --check-db")
    assert result.rc == 0, result.stderr
    assert result.stdout.splitlines() == ["RUNTIME_MODE=dryrun", "DB=ok"]


def test_secret_files_are_private_to_the_host_user(host, expected):
    _, user, home, project = expected
    for path, mode in (
        (f"{project}/.env", 0o600),
        (f"{project}/.db_password", 0o600),
        (f"{home}/.aws", 0o700),
        (f"{home}/.aws/credentials", 0o600),
        (f"{home}/.aws/config", 0o600),
    ):
        f = host.file(path)
        assert (f.user, f.mode) == (user, mode), path
    assert host.file(f"{project}/.db_password").content_string == SECRETS["vault_crpbot_db_password"]


def test_amazon_q_config_for_the_role(host, expected):
    role, user, _, project = expected
    config = host.file(f"{project}/.amazon-q/config.json")
    assert config.user == user and config.mode == 0o644
    data = json.loads(config.content_string)
    assert data["role"] == role
    assert data["aws_access"] is (role == "builder")
    assert host.run(f"git -C {project} check-ignore -q .amazon-q/config.json").rc == 0

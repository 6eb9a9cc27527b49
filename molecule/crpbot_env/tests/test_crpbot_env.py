# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of crpbot_env: the .env each host's app reads, read back with python-dotenv."""

from __future__ import annotations

import io

import pytest
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from sqlalchemy.engine import make_url

from tests import testbed

testinfra_hosts = ["ansible://crpbot"]

SECRETS = testbed.sandbox_secrets()


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture
def env_file(host, hostvars):
    return host.file(f"{hostvars['crpbot_project_dir']}/.env")


@pytest.fixture
def env(env_file):
    return dotenv_values(stream=io.StringIO(env_file.content_string), interpolate=True)


def test_env_file_is_private_to_the_host_user(env_file, hostvars):
    assert env_file.user == hostvars["crpbot_user"]
    assert env_file.mode == 0o600


def test_every_binding_the_app_could_read_as_the_mode_is_dryrun(env_file):
    modes = [b.value for b in parse_stream(io.StringIO(env_file.content_string))
             if b.key and b.key.lower() == "runtime_mode"]
    assert modes and set(modes) == {"dryrun"}


def test_managed_values(env, hostvars):
    assert env["RUNTIME_MODE"] == "dryrun"
    assert env["CRPBOT_HOST_ROLE"] == hostvars["crpbot_role"]
    assert env["AWS_REGION"] == "us-east-1"
    assert env["S3_BUCKET"] == "crpbot-market-data-dev"
    for key, value in SECRETS["vault_crpbot_app_secrets"].items():
        assert env[key] == value, key


def test_db_url_points_at_the_sandbox_postgres(env, hostvars):
    url = make_url(env["DB_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password) == ("crpbot_admin", SECRETS["vault_crpbot_db_password"])
    assert (url.host, url.port, url.database) == ("127.0.0.1", hostvars["crpbot_rds_port"], "crpbot")
    assert "sslmode" not in url.query  # the sandbox turns TLS off; real hosts get sslmode=require


def test_hand_added_keys_stay_where_they_were(host, env, env_file, hostvars):
    if hostvars["crpbot_role"] != "qc":
        pytest.skip("only the QC host's .env was edited by hand")
    lines = env_file.content_string.splitlines()
    assert lines[0] == "# numan's notes: keep this comment"
    assert lines[1] == 'MY_NOTE="keep me, # not a comment"'
    assert lines[2] == "RUNTIME_MODE=dryrun"  # put back from live, in place
    assert lines[3] == "export EDITOR_THEME=dark"
    assert lines[4] == "export runtime_mode=dryrun"  # the same key for the app (pydantic-settings ignores case)
    assert lines[5].startswith("# Managed by crpbot-ansible: ")  # the record of the managed keys
    assert env["MY_NOTE"] == "keep me, # not a comment"
    backups = host.run(f"stat -c '%a %U' {hostvars['crpbot_project_dir']}/.env.*.bak").stdout.split("\n")
    assert backups[0] == f"600 {hostvars['crpbot_user']}"

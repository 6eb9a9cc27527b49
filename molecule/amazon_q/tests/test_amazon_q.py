# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the amazon_q role: the .gitignore block, config.json per role, and git ignoring it."""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["ansible://crpbot"]

BEGIN = "# BEGIN crpbot-ansible amazon_q"
END = "# END crpbot-ansible amazon_q"

EXPECTED = {
    "qc": {"role": "qc", "tasks": ["review", "validate", "document"], "aws_access": False, "s3_access": "read-only"},
    "builder": {
        "role": "builder",
        "tasks": ["infrastructure", "deployment", "aws"],
        "aws_access": True,
        "s3_access": "read-write",
    },
}


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


def managed_block(lines: list[str]) -> list[str]:
    start, end = lines.index(BEGIN), lines.index(END)
    return lines[start + 1 : end]


def test_config_matches_the_host_role(host, hostvars):
    role = hostvars["crpbot_role"]
    config = host.file(f"{hostvars['crpbot_project_dir']}/.amazon-q/config.json")
    assert config.is_file
    assert config.user == hostvars["crpbot_user"]
    assert config.mode == 0o644
    assert json.loads(config.content_string) == EXPECTED[role]


def test_config_dir_owned_by_host_user(host, hostvars):
    d = host.file(f"{hostvars['crpbot_project_dir']}/.amazon-q")
    assert d.is_directory
    assert d.user == hostvars["crpbot_user"]
    assert d.mode == 0o755


def test_gitignore_has_each_entry_exactly_once(host, hostvars):
    lines = host.file(f"{hostvars['crpbot_project_dir']}/.gitignore").content_string.splitlines()
    assert lines.count(BEGIN) == 1 and lines.count(END) == 1
    for entry in (".amazon-q/", ".amazonq/"):
        assert lines.count(entry) == 1, entry


def test_gitignore_keeps_the_persons_lines(host, hostvars):
    lines = host.file(f"{hostvars['crpbot_project_dir']}/.gitignore").content_string.splitlines()
    # The fixture repo's own entries stay where they were, above the block.
    assert lines.index(".venv/") < lines.index(BEGIN)
    assert ".env" in lines and "models/" in lines
    if hostvars["crpbot_role"] == "qc":
        # prepare.yml added these by hand on the QC host: they stay, and the
        # hand-written .amazonq/ is not written again inside the block.
        assert "# numan's own" in lines and "scratch/" in lines
        assert managed_block(lines) == [".amazon-q/"]
    else:
        assert managed_block(lines) == [".amazon-q/", ".amazonq/"]


def test_git_ignores_the_amazon_q_config(host, hostvars):
    project = hostvars["crpbot_project_dir"]
    result = host.run(f"git -C {project} check-ignore -v .amazon-q/config.json")
    assert result.rc == 0, result.stderr
    assert ".amazon-q/" in result.stdout
    status = host.run(f"git -C {project} status --porcelain")
    assert ".amazon-q" not in status.stdout

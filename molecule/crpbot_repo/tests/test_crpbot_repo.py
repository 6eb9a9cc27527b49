# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of crpbot_repo: each host has a checkout of the fixture repo, owned by its user, on main."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://crpbot"]


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


def test_checkout_is_on_main_and_matches_the_remote(host, hostvars):
    project = hostvars["crpbot_project_dir"]
    assert host.run(f"git -C {project} symbolic-ref --short HEAD").stdout.strip() == "main"
    head = host.run(f"git -C {project} rev-parse HEAD").stdout.strip()
    remote = host.run(f"git -C {project} ls-remote origin refs/heads/main").stdout.split()[0]
    assert head == remote
    assert host.run(f"git -C {project} remote get-url origin").stdout.strip() == hostvars["crpbot_repo_url"]


def test_checkout_belongs_to_the_host_user_and_is_clean(host, hostvars):
    project = hostvars["crpbot_project_dir"]
    for path in (project, f"{project}/uv.lock", f"{project}/.git"):
        assert host.file(path).user == hostvars["crpbot_user"], path
    assert host.run(f"git -C {project} status --porcelain").stdout == ""
    assert host.file(f"{project}/apps/runtime/main.py").contains("RUNTIME_MODE")

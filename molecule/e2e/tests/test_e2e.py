"""End-to-end verifier: what site.yml leaves on each sandbox host, checked on the host itself."""

from __future__ import annotations

import json

import pytest

testinfra_hosts = ["ansible://crpbot"]

EXPECTED = {
    # inventory host -> (role, user, project dir)
    "sandbox-qc": ("qc", "numan", "/home/numan/crpbot"),
    "sandbox-builder": ("builder", "root", "/root/crpbot"),
}


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


def test_inventory_plugin_marks_the_host(host, hostvars):
    role, user, project = EXPECTED[hostvars["inventory_hostname"]]
    assert hostvars["crpbot_role"] == role
    assert role in hostvars["group_names"] and "crpbot" in hostvars["group_names"]
    assert hostvars["crpbot_project_dir"] == project
    assert host.user().name == user


def test_project_checkout_belongs_to_host_user(host, hostvars):
    _, user, project = EXPECTED[hostvars["inventory_hostname"]]
    assert host.file(f"{project}/.git").is_directory
    assert host.file(project).user == user


def test_amazon_q_config_for_the_role(host, hostvars):
    role, user, project = EXPECTED[hostvars["inventory_hostname"]]
    config = host.file(f"{project}/.amazon-q/config.json")
    assert config.user == user and config.mode == 0o644
    data = json.loads(config.content_string)
    assert data["role"] == role
    assert data["aws_access"] is (role == "builder")
    assert host.run(f"git -C {project} check-ignore -q .amazon-q/config.json").rc == 0
    assert host.run(f"git -C {project} check-ignore -q .amazonq/x").rc == 0

# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crpbot_group_vars vars plugin: the stage is fixed to task, and the group_vars of the directory the
inventory plugin recorded on the hosts (crpbot_inventory_dir) are found when the hosts arrive through an
export of that inventory (the AWX job's inventory script), with inventory precedence only."""

from __future__ import annotations

import json
import subprocess

import pytest
from ansible.inventory.group import Group
from ansible.inventory.host import Host

from tests.ansible_run import REPO, ansible_env, bin_path, load_plugin

plugin = load_plugin("plugins/vars/crpbot_group_vars.py")


@pytest.fixture
def layout(tmp_path):
    """project/inventory (a crpbot config's dir, its group_vars), job/inventory (the AWX script's dir)."""
    dirs = {name: tmp_path / name for name in ("project", "project/inventory", "job/inventory", "elsewhere")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return {name: str(path) for name, path in dirs.items()}


def crpbot_group(recorded: list[str | None]) -> Group:
    group = Group("crpbot")
    for index, directory in enumerate(recorded):
        host = Host(f"h{index}")
        if directory is not None:
            host.vars["crpbot_inventory_dir"] = directory
        group.add_host(host)
    return group


def test_an_exported_inventory_finds_the_recorded_dir(layout):
    group = crpbot_group([layout["project/inventory"], layout["project/inventory"]])
    assert plugin.recorded_dirs(layout["job/inventory"], [group], layout["project"]) == [layout["project/inventory"]]
    host = group.get_hosts()[0]
    assert plugin.recorded_dirs(layout["job/inventory"], [host], layout["project"]) == [layout["project/inventory"]]


@pytest.mark.parametrize(
    ("path", "recorded", "why"),
    [
        ("project/inventory", ["project/inventory"], "the source's own dir: Ansible loads it already"),
        ("project", ["project/inventory"], "the playbook's dir: the recorded dir keeps inventory precedence"),
        ("job/inventory", [None], "a host of another inventory plugin records nothing"),
        ("job/inventory", ["relative/inventory"], "only an absolute path, as the plugin records it"),
    ],
    ids=["same-dir", "playbook-dir", "no-record", "relative"],
)
def test_nothing_more_is_loaded(layout, path, recorded, why):
    dirs = [layout.get(item, item) if item else None for item in recorded]
    assert plugin.recorded_dirs(layout[path], [crpbot_group(dirs)], layout["project"]) == [], why


def test_two_configs_give_two_dirs_once_each(layout):
    group = crpbot_group([layout["project/inventory"], layout["elsewhere"], layout["project/inventory"]])
    assert plugin.recorded_dirs(layout["job/inventory"], [group], layout["project"]) == [
        layout["project/inventory"], layout["elsewhere"]]


def test_the_stage_is_fixed_to_task():
    result = subprocess.run([bin_path("ansible-doc"), "-t", "vars", "crpbot_group_vars", "--json"], cwd=REPO,
                            env=ansible_env(REPO / ".testbed"), capture_output=True, text=True, check=True)
    stage = json.loads(result.stdout)["crpbot_group_vars"]["doc"]["options"]["stage"]
    assert stage["default"] == "task" and stage["choices"] == ["task"]
    assert "env" not in stage and "ini" not in stage  # no setting can make an inventory export decrypt the vault

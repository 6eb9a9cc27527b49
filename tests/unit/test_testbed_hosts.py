# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test bed's host list for ``up --qc N --builders M``, and the inventory it writes for it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests import testbed


def test_one_of_each_keeps_the_two_host_names():
    assert testbed.fleet_hosts() == list(testbed.HOSTS)


def test_extra_hosts_are_numbered_from_two_with_their_role_user():
    hosts = testbed.fleet_hosts(qc=3, builders=2)
    assert [(h["name"], h["user"], h["role"]) for h in hosts] == [
        ("sandbox-qc", "numan", "qc"), ("sandbox-qc-2", "numan", "qc"), ("sandbox-qc-3", "numan", "qc"),
        ("sandbox-builder", "root", "builder"), ("sandbox-builder-2", "root", "builder")]


@pytest.mark.parametrize(("qc", "builders"), [(0, 1), (1, 0), (-1, 2)])
def test_a_test_bed_needs_a_host_of_each_role(qc, builders):
    with pytest.raises(testbed.TestbedError, match=f"--qc {qc} --builders {builders}"):
        testbed.fleet_hosts(qc, builders)


def test_the_inventory_lists_every_host_with_its_role(tmp_path, monkeypatch):
    monkeypatch.setenv("CRPBOT_TESTBED_DIR", str(tmp_path))
    hosts = {h["name"]: {**h, "port": 2200 + i, "container": testbed.container_name(h["name"])}
             for i, h in enumerate(testbed.fleet_hosts(qc=2, builders=2))}
    state = {"hosts": hosts, "ssh": {"private_key": "/k", "known_hosts": "/kh"}, "pg": {"port": 5432},
             "git": {"url": "git://127.0.0.1:9418/crpbot.git"}, "moto": {"endpoint": "http://127.0.0.1:5000"}}
    config = yaml.safe_load(testbed.render_inventory(state))
    assert [(h["name"], h["role"], h["user"], h["port"]) for h in config["hosts"]] == [
        ("sandbox-qc", "qc", "numan", 2200), ("sandbox-qc-2", "qc", "numan", 2201),
        ("sandbox-builder", "builder", "root", 2202), ("sandbox-builder-2", "builder", "root", 2203)]
    # Every container of the state dir shares one prefix, which `down` looks for after a crash.
    assert {h["container"] for h in hosts.values()} == {testbed.container_prefix() + name for name in hosts}


def test_the_command_line_takes_the_host_counts():
    done = subprocess.run([sys.executable, "-m", "tests.testbed", "up", "--help"], cwd=testbed.REPO, capture_output=True,
                          text=True, check=True)
    assert "--qc N" in done.stdout and "--builders M" in done.stdout

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The loopback guard: the callback logs connection targets, the suite rejects any outside 127.0.0.0/8."""

from __future__ import annotations

import json

import pytest

from tests.conftest import logs_to_check, loopback_violations, run


@pytest.mark.parametrize(
    ("entry", "bad"),
    [
        ({"host": "sandbox-qc", "ansible_host": "127.0.0.1", "ansible_connection": "ssh"}, False),
        ({"host": "x", "ansible_host": "127.0.0.53", "ansible_connection": "ssh"}, False),
        ({"host": "local", "ansible_host": "local", "ansible_connection": "local"}, False),
        ({"host": "cloud", "ansible_host": "178.156.136.185", "ansible_connection": "ssh"}, True),
        ({"host": "lan", "ansible_host": "192.168.1.10", "ansible_connection": "ssh"}, True),
        ({"host": "name", "ansible_host": "example.com", "ansible_connection": "ssh"}, True),
    ],
)
def test_violations(tmp_path, entry, bad):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(entry) + "\n")
    assert (loopback_violations(log) == [entry]) is bad


def test_callback_logs_every_host_a_task_starts_on(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hi}\n"
    )
    inventory = tmp_path / "hosts.yml"
    # ansible_connection local: nothing is contacted, but the logged target is what ssh would use.
    inventory.write_text(
        "all:\n  hosts:\n    faraway:\n      ansible_host: 203.0.113.7\n      ansible_connection: local\n"
    )
    log = tmp_path / "connections.jsonl"
    proc = run(["ansible-playbook", "-i", str(inventory), str(play)], env={"CRPBOT_CONNECTION_LOG": str(log)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [
        {"host": "faraway", "ansible_host": "203.0.113.7", "ansible_port": "", "ansible_connection": "local"}
    ]


def test_the_controller_of_a_parallel_run_checks_every_workers_log(tmp_path):
    own = tmp_path / "connections.jsonl"
    workers = [tmp_path / "connections-gw0.jsonl", tmp_path / "connections-gw1.jsonl"]
    bad = {"host": "cloud", "ansible_host": "178.156.136.185", "ansible_connection": "ssh"}
    workers[1].write_text(json.dumps(bad) + "\n")
    workers[0].write_text("")
    assert logs_to_check(own, None) == [own, *workers]
    assert [e for log in logs_to_check(own, None) for e in loopback_violations(log)] == [bad]
    assert logs_to_check(workers[0], "gw0") == [workers[0]]

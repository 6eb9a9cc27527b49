# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crpbot_rotation action plugin in a real play with five hosts (local connection).

The same failure flow as playbooks/rotate/*.yml: one host failing a per-host step, or a step one
host runs for all failing, sends EVERY host to the block's rescue (each one restores its files),
the vault is put back as it was, and the outcome names the failing host. No test bed needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.ansible_run import ansible_env, bin_path, host_python, REPO

HOSTS = ["qc-1", "qc-2", "qc-3", "builder-1", "builder-2"]
VAULT_TEXT = "---\nvault_crpbot_db_password: 'Old pass w0rd'\n"


def play(vault_file: str, markers: Path, fail_host: str) -> list[dict]:
    gate = {"crpbot_rotation": {"action": "gate"}, "register": "crpbot_rotation", "no_log": True}
    return [{
        "name": "A rotation over five hosts", "hosts": "all", "gather_facts": False,
        "tasks": [
            {"name": "Rotate", "block": [
                {"name": "Begin", "crpbot_rotation": {"action": "begin", "credential": "db_password",
                                                      "current": "{{ vault_crpbot_db_password }}", "pending": {},
                                                      "vault_file": vault_file},
                 "register": "crpbot_rotation", "run_once": True, "no_log": True},
                {"name": "Stop every host when the step pending failed", **gate},
                {"name": "Stage", "block": [
                    {"name": "Write the staged file",
                     "ansible.builtin.copy": {"content": "staged", "dest": f"{markers}/{{{{ inventory_hostname }}}}.pending",
                                              "mode": "0600"}},
                    {"name": "Break one host", "ansible.builtin.fail": {"msg": "disk full"},
                     "when": f"inventory_hostname == '{fail_host}'"},
                ], "rescue": [
                    {"name": "Record", "crpbot_rotation": {"action": "host_failed", "step": "stage",
                                                           "result": "{{ ansible_failed_result }}"},
                     "register": "crpbot_rotation_host", "no_log": True},
                ]},
                {"name": "Check that every host passed the step stage",
                 **{**gate, "crpbot_rotation": {"action": "gate", "step": "stage"}}},
            ], "rescue": [
                {"name": "Plan", "crpbot_rotation": {"action": "rescue", "failed_task": "{{ ansible_failed_task.name }}"},
                 "register": "crpbot_rotation", "run_once": True, "no_log": True},
                {"name": "Restore", "ansible.builtin.file": {"path": f"{markers}/{{{{ inventory_hostname }}}}.pending",
                                                             "state": "absent"},
                 "when": "crpbot_rotation.plan.restore_files"},
                {"name": "Undo the set", "crpbot_rotation": {"action": "undo_set", "db": {"user": "u", "host": "h"}},
                 "register": "crpbot_rotation", "run_once": True, "no_log": True},
                {"name": "Undo the vault", "crpbot_rotation": {"action": "undo_vault", "vault_file": vault_file},
                 "register": "crpbot_rotation", "run_once": True, "no_log": True},
            ], "always": [
                {"name": "Report", "crpbot_rotation": {"action": "report", "db": {"user": "u", "host": "h"}},
                 "register": "crpbot_rotation_report", "run_once": True},
            ]},
            {"name": "Print the summary", "ansible.builtin.debug": {"msg": "{{ crpbot_rotation_report.msg }}"},
             "run_once": True},
            {"name": "End", "ansible.builtin.fail": {"msg": "{{ crpbot_rotation_report.fail_msg }}"},
             "when": "crpbot_rotation_report.status != 'DONE'", "run_once": True},
        ],
    }]


def run(tmp_path: Path, vault_name: str, fail_host: str):
    secret = b"unit-test-vault-password"
    (tmp_path / "vault-pass").write_bytes(secret + b"\n")
    vault = VaultLib([("default", VaultSecret(secret))])
    group_vars = tmp_path / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    vault_file = group_vars / "vault.yml"
    vault_file.write_bytes(vault.encrypt(VAULT_TEXT))
    markers = tmp_path / "markers"
    markers.mkdir()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {h: {"ansible_connection": "local",
                                                           "ansible_python_interpreter": host_python()}
                                                       for h in HOSTS}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play(str(tmp_path / vault_name), markers, fail_host)))
    done = subprocess.run(  # noqa: S603
        [bin_path("ansible-playbook"), "-i", str(inventory), str(playbook)], cwd=REPO, text=True,
        capture_output=True, timeout=300, check=False,
        env={**ansible_env(tmp_path), "ANSIBLE_VAULT_PASSWORD_FILE": str(tmp_path / "vault-pass")})
    return done.returncode, done.stdout + done.stderr, vault.decrypt(vault_file.read_bytes()).decode(), markers


def test_one_host_failing_a_step_rolls_back_every_host(tmp_path):
    code, out, vault_text, markers = run(tmp_path, "group_vars/all/vault.yml", "qc-2")
    assert code != 0
    assert "ROLLED BACK: the db_password rotation failed at step stage on qc-2." in out, out[-3000:]
    assert "qc-2: disk full" in out
    assert sorted(p.name for p in markers.iterdir()) == []  # every host restored, not only qc-2
    assert vault_text == VAULT_TEXT  # the pending record came and went
    restored = out[out.index("TASK [Restore]"):out.index("TASK [Undo the set]")]
    assert all(f"changed: [{host}]" in restored for host in HOSTS), restored
    assert "Old pass w0rd" not in out


def test_a_step_one_host_runs_for_all_failing_sends_every_host_to_the_rescue(tmp_path):
    code, out, vault_text, markers = run(tmp_path, "group_vars/all/missing.yml", "nobody")
    assert code != 0
    assert "failed at step pending" in out and "cannot read the vault file" in out, out[-3000:]
    rescued = out[out.index("TASK [Plan]"):]
    assert all(f"[{host}]" in rescued[rescued.index("TASK [Restore]"):] for host in HOSTS)
    assert vault_text == VAULT_TEXT
    recap = out[out.index("PLAY RECAP"):]
    assert recap.count("rescued=1") == len(HOSTS), recap

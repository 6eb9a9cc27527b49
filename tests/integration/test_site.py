# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml against a sandbox of the suite's own: bad input stops the run before any host is touched."""

from __future__ import annotations

import json

import pytest
import yaml

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

PREPARE = "molecule/shared/prepare.yml"


def host_sh(state: dict, host: str, command: str) -> str:
    proc = run(testbed.ssh_argv(state, host) + [command], check=True)
    return proc.stdout


def snapshot(state: dict) -> dict[str, str]:
    """What the converge would change on each host: .gitignore and the .amazon-q dir."""
    return {
        host: host_sh(state, host, "cd crpbot && cat .gitignore && ls -la .amazon-q 2>&1 || true")
        for host in state["hosts"]
    }


@pytest.fixture(scope="module")
def prepared(sandbox):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), PREPARE], env=sandbox["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sandbox


def test_sandbox_targets_are_loopback_only(sandbox):
    proc = run(["ansible-inventory", "-i", str(sandbox["inventory"]), "--list"], check=True)
    hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
    assert sorted(hostvars) == ["sandbox-builder", "sandbox-qc"]
    testbed.assert_loopback_only(hostvars)


def test_loopback_guard_refuses_a_real_address():
    with pytest.raises(testbed.TestbedError, match="outside 127.0.0.0/8"):
        testbed.assert_loopback_only({"cloud": {"ansible_host": "178.156.136.185"}})


def write_inventory(tmp_path, sandbox, mutate) -> str:
    config = yaml.safe_load(sandbox["inventory"].read_text())
    mutate(config)
    path = tmp_path / "bad.crpbot.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["hosts"][0].update(runtime_mode="live"), ["sandbox-qc", "runtime_mode", "builder"]),
        (lambda c: c["hosts"][1].update(role="bilder"), ["sandbox-builder", "role", "builder"]),
        (lambda c: c["hosts"][1].update(rol="builder"), ["sandbox-builder", "rol", "did you mean"]),
        (lambda c: c["rds"].update(host=""), ["sandbox-builder", "rds"]),
    ],
    ids=["live-on-qc", "unknown-role", "typo-key", "builder-without-rds"],
)
def test_bad_inventory_touches_no_host(prepared, tmp_path, mutate, expected):
    before = snapshot(prepared["state"])
    inventory = write_inventory(tmp_path, prepared, mutate)
    proc = run(["ansible-playbook", "-i", inventory, "site.yml"])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    for word in expected:
        assert word in output, (word, output)
    assert snapshot(prepared["state"]) == before


def test_bad_role_variable_touches_no_host(prepared):
    before = snapshot(prepared["state"])
    bad = json.dumps({"amazon_q_configs": {"qc": {"role": "qc", "tasks": ["review"], "aws_access": True,
                                                   "s3_access": "read-only"},
                                           "builder": {"role": "builder", "tasks": ["aws"], "aws_access": True,
                                                       "s3_access": "read-write"}}})
    proc = run(["ansible-playbook", "-i", str(prepared["inventory"]), "site.yml", "-e", bad])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "amazon_q_configs.qc" in output and "sandbox-qc" in output
    # any_errors_fatal in the validation play: the builder, whose input was fine, is not touched either.
    assert snapshot(prepared["state"]) == before


def test_wrong_variable_type_is_refused_before_any_change(prepared):
    before = snapshot(prepared["state"])
    proc = run(["ansible-playbook", "-i", str(prepared["inventory"]), "site.yml",
                "-e", '{"amazon_q_configs": ["qc"]}'])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "amazon_q_configs" in output and "dict" in output
    assert snapshot(prepared["state"]) == before


def test_site_converges_then_reports_no_change(prepared):
    inventory = str(prepared["inventory"])
    first = run(["ansible-playbook", "-i", inventory, "site.yml"])
    assert first.returncode == 0, first.stdout + first.stderr
    second = run(["ansible-playbook", "-i", inventory, "site.yml"])
    assert second.returncode == 0, second.stdout + second.stderr
    recap = second.stdout[second.stdout.index("PLAY RECAP"):]
    assert recap.count("changed=0") == 2, recap
    # Each role's input is checked once, in the first play (crpbot_checks with its main spec): no second
    # argument-spec task before a role's main entry point.
    assert "Validating arguments against arg spec 'main'" not in second.stdout
    assert second.stdout.count("Check the uv input") == 1
    check = run(["ansible-playbook", "-i", inventory, "site.yml", "--check", "--diff"])
    assert check.returncode == 0 and check.stdout[check.stdout.index("PLAY RECAP"):].count("changed=0") == 2

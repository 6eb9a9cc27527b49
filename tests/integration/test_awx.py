# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml the way AWX / AAP runs it: ansible-runner on a private data dir that holds only what AWX gives it.

The private data dir is built as AWX builds it for a job:

- ``project/``: the project checkout (the working tree's tracked files), with the sandbox inventory config
  committed as ``inventory/sandbox.crpbot.yml`` and the sandbox vault beside it
  (``inventory/group_vars/all/vault.yml``), as a person would commit the real ones;
- ``inventory/hosts``: the job's inventory, the script AWX writes from its database, whose content is the
  output of the inventory update: ``ansible-inventory --list --export -i project/inventory/sandbox.crpbot.yml``
  run in the project (its ansible.cfg) with AWX's environment and no vault password;
- ``env/``: the Vault credential (``passwords`` answering ``--ask-vault-pass``), the Machine credential
  (``ssh_key``, fed to ssh-agent; the inventory names no key file), the extra vars, the command line AWX adds,
  the runner settings.

It proves the export carries no secret and needs no vault password, that the job still gets the vault from
the project at run time (the hosts' database password works), that the role authority (the groups) holds
when the inventory arrives as exported JSON, and that no secret is in any artifact of any run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import testbed
from tests.conftest import REPO, run

pytestmark = pytest.mark.testbed

QC, BUILDER = "sandbox-qc", "sandbox-builder"
VENV_BIN = Path(sys.executable).parent
INVENTORY_SOURCE = "inventory/sandbox.crpbot.yml"  # the AWX inventory source's "Inventory file"
# What AWX sets for every inventory update (awx/main/constants.py STANDARD_INVENTORY_UPDATE_ENV).
AWX_INVENTORY_UPDATE_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_EXPORT": "True",
    "ANSIBLE_VERBOSE_TO_STDERR": "True",
    "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
}
# The prompt AWX answers with the Vault credential's password (RunJob.get_password_prompts).
VAULT_PROMPT = r"Vault password:\s*?$"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def awx_environment() -> dict[str, str]:
    """The environment of an AWX job: none of the suite's ANSIBLE_* settings (AWX gives no ANSIBLE_CONFIG,
    inventory or vault password file; the project's own ansible.cfg is found in the working directory)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("ANSIBLE_") and key != "CRPBOT_TESTBED_DIR"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def secrets() -> list[str]:
    """Every secret of the sandbox: the vault's values, the vault password, the machine credential's key."""
    values = testbed.secret_values(testbed.sandbox_secrets())
    values.append(testbed.VAULT_PASSWORD_FILE.read_text().strip())
    return values


def leaks(root: Path, values: list[str], key_text: str) -> list[str]:
    """Which secrets appear in which regular files under root (every artifact, the inventory)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        text = path.read_bytes().decode(errors="replace")
        found += [f"{path.relative_to(root)}: {value[:6]}..." for value in values if value in text]
        found += [f"{path.relative_to(root)}: the SSH private key"
                  for line in key_text.splitlines()[1:-1] if line and line in text][:1]
    return found


def host_sh(state: dict, host: str, command: str) -> str:
    return run(testbed.ssh_argv(state, host) + [command], check=True).stdout


def env_file(state: dict, host: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in host_sh(state, host, "cat crpbot/.env").splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def build_private_data_dir(pdd: Path, sandbox: dict) -> dict:
    """project/ and env/ of an AWX job (inventory/ comes from the inventory update)."""
    project = pdd / "project"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not in the checkout
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    assert not (project / ".venv").exists() and not (project / ".testbed").exists()
    # The inventory config as a person commits it: no private key path, the Machine credential gives the key.
    config = yaml.safe_load(sandbox["inventory"].read_text())
    key_file = config["vars"].pop("ansible_ssh_private_key_file")
    (project / INVENTORY_SOURCE).write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(testbed.SANDBOX_VARS / "group_vars", project / "inventory" / "group_vars")

    env = pdd / "env"
    env.mkdir()
    (env / "passwords").write_text(json.dumps({VAULT_PROMPT: testbed.VAULT_PASSWORD_FILE.read_text().strip()}))
    key_text = Path(key_file).read_text()
    (env / "ssh_key").write_text(key_text)
    # What AWX's RunJob.build_args puts on the command line: the Machine credential's user (root when
    # empty; the inventory's ansible_user wins), --ask-vault-pass for the Vault credential, the forks.
    (env / "cmdline").write_text("-u root --ask-vault-pass --forks=5")
    (env / "settings").write_text(json.dumps({"job_timeout": 900, "idle_timeout": 600, "pexpect_timeout": 10}))
    # ansible-runner puts its own callback dir in ANSIBLE_CALLBACK_PLUGINS, which hides the project's ini
    # callback_plugins; the suite's loopback guard (crpbot_connection_log) must still record every target.
    (env / "envvars").write_text(json.dumps({"ANSIBLE_CALLBACK_PLUGINS": str(project / "plugins" / "callback")}))
    for name in ("passwords", "ssh_key"):
        os.chmod(env / name, 0o600)
    return {"project": project, "key_text": key_text}


def inventory_update(project: Path, output: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The inventory update of an AWX "Sourced from a Project" inventory source (RunInventoryUpdate.build_args)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    args = ["ansible-inventory", "--list", "--export", "-i", str(project / INVENTORY_SOURCE),
            "--output", str(output), "--playbook-dir", str((project / INVENTORY_SOURCE).parent)]
    return subprocess.run(args, cwd=project, env={**awx_environment(), **AWX_INVENTORY_UPDATE_ENV, **(env or {})},  # noqa: S603
                          capture_output=True, text=True, check=False)


def write_job_inventory(pdd: Path, exported: dict) -> Path:
    """The job's inventory as AWX writes it (BaseTask.write_inventory_file): a script printing the JSON."""
    path = pdd / "inventory" / "hosts"
    path.parent.mkdir(exist_ok=True)
    path.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(exported))
    os.chmod(path, 0o700)
    return path


def runner(pdd: Path, ident: str, extravars: dict, playbook: str = "site.yml") -> dict:
    """`ansible-runner run` of one job; returns its rc, status, stdout and the recap's per-host counts."""
    # AWX writes the job's extra vars (survey answers and its own awx_* meta vars) for every job.
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    proc = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "ansible-runner"), "run", str(pdd), "-p", playbook, "--ident", ident],
        env=awx_environment(), capture_output=True, text=True, timeout=900, check=False,
    )
    artifacts = pdd / "artifacts" / ident
    stdout = ANSI.sub("", (artifacts / "stdout").read_text()) if (artifacts / "stdout").exists() else proc.stdout
    stats, plays = {}, []
    for event_file in (artifacts / "job_events").glob("*.json"):
        event = json.loads(event_file.read_text())
        if event.get("event") == "playbook_on_stats":
            stats = event["event_data"]
        elif event.get("event") == "playbook_on_play_start":
            plays.append((event["counter"], event["event_data"]["play"]))
    status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else "missing"
    return {"rc": proc.returncode, "status": status, "stdout": stdout + proc.stderr, "stats": stats,
            "plays": [name for _counter, name in sorted(plays)]}


AWX_META = {"awx_job_id": 7, "awx_job_template_name": "crpbot converge", "awx_user_name": "admin"}


@pytest.fixture(scope="module")
def awx(sandbox, tmp_path_factory):
    pdd = tmp_path_factory.mktemp("awx-job")
    built = build_private_data_dir(pdd, sandbox)
    export = pdd / "artifacts" / "inventory_update" / "output.json"
    proc = inventory_update(built["project"], export)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exported = json.loads(export.read_text())
    write_job_inventory(pdd, exported)
    return {**sandbox, **built, "pdd": pdd, "exported": exported}


def test_the_export_needs_no_vault_password_and_carries_no_secret(awx):
    exported = awx["exported"]
    text = json.dumps(exported)
    assert "vault_" not in text and "$ANSIBLE_VAULT" not in text
    assert leaks(awx["pdd"] / "artifacts" / "inventory_update", secrets(), awx["key_text"]) == []
    # The role authority travels as groups, with the facts of the inventory plugin and where its vault is.
    assert exported["qc"]["hosts"] == [QC] and exported["builder"]["hosts"] == [BUILDER]
    assert sorted(exported["crpbot"]["children"]) == ["builder", "qc"]
    assert "live_approved" in exported["all"]["children"] and not exported.get("live_approved", {}).get("hosts")
    hostvars = exported["_meta"]["hostvars"]
    assert hostvars[QC]["crpbot_role"] == "qc" and hostvars[BUILDER]["crpbot_role"] == "builder"
    assert {hostvars[h]["crpbot_inventory_dir"] for h in hostvars} == {str(awx["project"] / "inventory")}
    assert all("ansible_ssh_private_key_file" not in v for v in hostvars.values())
    testbed.assert_loopback_only(hostvars)


def test_no_setting_makes_the_export_decrypt_the_vault(awx, tmp_path):
    """Even given the vault password (a Vault credential on the inventory source) and the global vars-plugin
    stage set to run at inventory time, the export holds no secret: the plugin's stage is fixed to task."""
    output = tmp_path / "output.json"
    proc = inventory_update(awx["project"], output, env={
        "ANSIBLE_VAULT_PASSWORD_FILE": str(testbed.VAULT_PASSWORD_FILE), "ANSIBLE_VARS_PLUGIN_STAGE": "all",
        "ANSIBLE_RUN_VARS_PLUGINS": "start"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leaks(tmp_path, secrets(), awx["key_text"]) == []
    assert "vault_" not in output.read_text()


@pytest.fixture(scope="module")
def converged(awx):
    first = runner(awx["pdd"], "converge-1", AWX_META)
    assert first["rc"] == 0 and first["status"] == "successful", first["stdout"][-6000:]
    second = runner(awx["pdd"], "converge-2", AWX_META)
    assert second["rc"] == 0 and second["status"] == "successful", second["stdout"][-6000:]
    return {**awx, "first": first, "second": second}


def test_the_job_converges_both_hosts_with_the_vault_from_the_project(converged):
    state = converged["state"]
    assert sorted(converged["first"]["stats"]["changed"]) == [BUILDER, QC], converged["first"]["stats"]
    qc, builder = env_file(state, QC), env_file(state, BUILDER)
    assert qc["RUNTIME_MODE"] == "dryrun" and qc["CRPBOT_HOST_ROLE"] == "qc"
    assert builder["RUNTIME_MODE"] == "dryrun" and builder["CRPBOT_HOST_ROLE"] == "builder"
    # The vault reached the hosts although the inventory carried none of it: the database password
    # works, read by the app itself.
    db_password = testbed.sandbox_secrets()["vault_crpbot_db_password"]
    for host in (QC, BUILDER):
        assert host_sh(state, host, "cat crpbot/.db_password") == db_password
        app = host_sh(state, host, "cd crpbot && .venv/bin/python -m apps.runtime.main --check-db")
        assert "RUNTIME_MODE=dryrun" in app and "DB=ok" in app, (host, app)


def test_a_second_job_changes_nothing(converged):
    stats = converged["second"]["stats"]
    assert sorted(stats["ok"]) == [BUILDER, QC], stats
    assert not stats.get("changed") and not stats.get("failures") and not stats.get("dark"), stats


@pytest.mark.parametrize(
    ("extravars", "expected"),
    [
        ({"crpbot_role": "builder"}, ["variable crpbot_role is 'builder'", "extra vars", "says 'qc'"]),
        ({"crpbot_runtime_mode": "live", "crpbot_env_live_confirm": "CONFIRM"},
         ["variable crpbot_runtime_mode is 'live'", "extra vars", "says 'dryrun'"]),
    ],
    ids=["role", "live"],
)
def test_an_extra_var_that_would_make_qc_trade_is_refused(converged, extravars, expected):
    state = converged["state"]
    before = {host: host_sh(state, host, "sha256sum crpbot/.env") for host in (QC, BUILDER)}
    ident = "tampered-" + "-".join(sorted(extravars))
    job = runner(converged["pdd"], ident, {**AWX_META, **extravars})
    assert job["rc"] != 0 and job["status"] == "failed", job["stdout"][-4000:]
    assert "REFUSED before anything was changed" in job["stdout"]
    assert "sandbox-qc" in job["stdout"]
    for fragment in expected:
        assert fragment in job["stdout"], (fragment, job["stdout"][-4000:])
    # Stopped in the first play, which only checks, before any play that changes something started.
    assert job["plays"] == ["Check every role's input on every host before changing anything"], job["plays"]
    assert {host: host_sh(state, host, "sha256sum crpbot/.env") for host in (QC, BUILDER)} == before
    assert env_file(state, QC)["RUNTIME_MODE"] == "dryrun"


def test_a_rotation_job_records_nothing_in_a_throwaway_checkout(converged):
    """A job's checkout is discarded when it ends, so a rotation there would leave the new credential live on
    the hosts and the old one in git. The rotation looks for the vault beside the job's inventory, where AWX
    has none, and stops before anything changes; with the vault named (the README's plan template, --check)
    it prints the plan and changes nothing."""
    state, pdd = converged["state"], converged["pdd"]
    vault = converged["project"] / "inventory" / "group_vars" / "all" / "vault.yml"

    def snapshot():
        files = "sha256sum crpbot/.env crpbot/.db_password .aws/credentials"
        return vault.read_bytes(), {host: host_sh(state, host, files) for host in (QC, BUILDER)}

    before = snapshot()
    job = runner(pdd, "rotate-run", {**AWX_META, "rotate": "db_password"}, playbook="playbooks/rotate_credentials.yml")
    assert job["rc"] != 0 and job["status"] == "failed", job["stdout"][-4000:]
    assert f"{pdd / 'inventory'}/group_vars/all/vault.yml does not exist" in job["stdout"], job["stdout"][-4000:]
    assert job["plays"] == ["Check the rotation before changing anything"], job["plays"]
    assert snapshot() == before

    (pdd / "env" / "cmdline").write_text("-u root --ask-vault-pass --forks=5 --check")
    try:
        plan = runner(pdd, "rotate-plan", {**AWX_META, "rotate": "db_password", "crpbot_rotate_vault_file": str(vault)},
                      playbook="playbooks/rotate_credentials.yml")
    finally:
        (pdd / "env" / "cmdline").write_text("-u root --ask-vault-pass --forks=5")
    assert plan["rc"] == 0 and plan["status"] == "successful", plan["stdout"][-4000:]
    assert "vault_crpbot_db_password" in plan["stdout"] and not plan["stats"].get("changed"), plan["stats"]
    assert snapshot() == before


def test_no_secret_in_any_artifact_or_inventory(converged):
    """Last: every job of this module (converges and refusals) and the job's inventory script."""
    pdd = converged["pdd"]
    idents = sorted(p.name for p in (pdd / "artifacts").iterdir())
    assert {"inventory_update", "converge-1", "converge-2", "rotate-run", "rotate-plan"} <= set(idents), idents
    assert leaks(pdd / "artifacts", secrets(), converged["key_text"]) == []
    assert leaks(pdd / "inventory", secrets(), converged["key_text"]) == []

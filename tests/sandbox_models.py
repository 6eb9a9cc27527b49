# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model workflow on the sandbox, as a person runs it: train on the builder (the fixture app's
trainer), publish (the S3 push), approve on the QC host (playbooks/promote_model.yml)."""

from __future__ import annotations

from tests import testbed
from tests.conftest import run

BUILDER = "sandbox-builder"


def train(sandbox, model_type: str, symbol: str, version: str, win_rate: float = 0.71,
          calibration_error: float = 0.03, seed: int = 0) -> str:
    """Train (write and register) a model on the builder; returns its model_id."""
    command = (f"cd crpbot && .venv/bin/python -m apps.trainer.train --model-type {model_type} --symbol {symbol} "
               f"--version {version} --win-rate {win_rate} --calibration-error {calibration_error} --seed {seed}")
    return run(testbed.ssh_argv(sandbox["state"], BUILDER) + [command], check=True).stdout.strip()


def playbook(sandbox, play: str, *args: str, inventory: str | None = None):
    return run(["ansible-playbook", "-i", inventory or str(sandbox["inventory"]), play, *args],
               env=sandbox.get("env"))


def publish(sandbox, inventory: str | None = None):
    """The builder's models push alone (what a converge does first)."""
    proc = playbook(sandbox, "playbooks/sync_s3.yml", "--limit", BUILDER, "--tags", "models", inventory=inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def promote(sandbox, *args: str, inventory: str | None = None):
    return playbook(sandbox, "playbooks/promote_model.yml", *args, inventory=inventory)


def approve(sandbox, model_id: str, inventory: str | None = None):
    """Approve on the QC host without the prompt (-e approve=<model_id>)."""
    proc = promote(sandbox, "-e", f"model={model_id}", "-e", f"approve={model_id}", inventory=inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc

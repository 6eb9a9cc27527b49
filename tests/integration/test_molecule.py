# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every molecule scenario end to end (create, prepare, check, converge, idempotence, verify, destroy)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))

pytestmark = pytest.mark.testbed


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert set(roles) <= set(SCENARIOS), f"roles without a molecule scenario: {set(roles) - set(SCENARIOS)}"
    assert "e2e" in SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str):
    # Molecule scenarios use the default test bed dir (.testbed); drop the session sandbox's.
    env = {k: v for k, v in os.environ.items() if k not in {"CRPBOT_TESTBED_DIR", "ANSIBLE_INVENTORY"}}
    proc = subprocess.run(  # noqa: S603
        ["molecule", "test", "-s", scenario], cwd=REPO, env=env, text=True, capture_output=True, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    # The idempotence step ran and passed (molecule fails the run otherwise, but say it plainly).
    assert "Idempotence completed successfully" in output or "idempotence: Executed: Successful" in output, output[-4000:]

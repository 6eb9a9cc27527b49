# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The molecule scenarios share one base config (.config/molecule/config.yml); each molecule.yml holds
only what differs, and every scenario still gets the test bed, the sandbox inventory and its playbooks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from molecule.util import find_vcs_root, merge_dicts

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / ".config" / "molecule" / "config.yml"
SCENARIOS = sorted(p.parent for p in (REPO / "molecule").glob("*/molecule.yml"))
INVENTORY = "${MOLECULE_PROJECT_DIRECTORY}/.testbed/inventory/sandbox.crpbot.yml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def merged(scenario: Path) -> dict:
    """The config molecule builds: the base, then the scenario's molecule.yml over it (its merge_dicts)."""
    return merge_dicts(load(BASE), load(scenario / "molecule.yml"))


def test_molecule_finds_the_base_config():
    # molecule's default --base-config is <repo root>/.config/molecule/config.yml (molecule/shell.py).
    assert Path(find_vcs_root(REPO)) / ".config" / "molecule" / "config.yml" == BASE
    assert BASE.is_file()


def test_every_scenario_is_there():
    names = {s.name for s in SCENARIOS}
    roles = {p.name for p in (REPO / "roles").iterdir() if p.is_dir()}
    assert roles | {"e2e"} <= names


def _leaves(data: object, path: tuple = ()) -> dict[tuple, object]:
    if isinstance(data, dict):
        out: dict[tuple, object] = {}
        for key, value in data.items():
            out.update(_leaves(value, (*path, key)))
        return out
    return {path: data}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_scenario_repeats_nothing_of_the_base(scenario):
    base = _leaves(load(BASE))
    own = _leaves(load(scenario / "molecule.yml"))
    repeated = sorted(".".join(map(str, k)) for k, v in own.items() if k in base and base[k] == v)
    assert repeated == [], f"{scenario.name}/molecule.yml repeats the base config: {repeated}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_scenario_runs_against_the_sandbox(scenario):
    config = merged(scenario)
    assert config["dependency"] == {"name": "shell", "command": "python -m tests.testbed init"}
    assert config["driver"] == {"name": "default", "options": {"managed": True}}
    assert [p["name"] for p in config["platforms"]] == ["sandbox-qc", "sandbox-builder"]
    assert f"--inventory={INVENTORY}" in config["ansible"]["executor"]["args"]["ansible_playbook"]
    assert config["ansible"]["env"]["ANSIBLE_CONFIG"] == "${MOLECULE_PROJECT_DIRECTORY}/ansible.cfg"
    assert config["verifier"] == {"name": "testinfra", "options": {"ansible-inventory": INVENTORY}}
    # molecule moves a legacy provisioner.playbooks over ansible.playbooks whole: the base's would be lost.
    assert "playbooks" not in load(scenario / "molecule.yml").get("provisioner", {}), "use ansible.playbooks"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_playbook_and_step_is_there(scenario):
    config = merged(scenario)
    playbooks = config["ansible"]["playbooks"]
    for step in ("create", "destroy", "converge"):
        assert (scenario / playbooks[step]).resolve().is_file(), f"{scenario.name}: {step} {playbooks[step]}"
    # Its own converge.yml is the one it runs.
    if (scenario / "converge.yml").exists():
        assert playbooks["converge"] == "converge.yml"
    # prepare (molecule's default prepare.yml) is in the sequence exactly when the scenario has one:
    # a missing prepare playbook is reported as missing, not skipped.
    sequence = config["scenario"]["test_sequence"]
    assert ("prepare" in sequence) == (scenario / "prepare.yml").exists(), sequence
    for step in ("dependency", "syntax", "create", "check", "converge", "idempotence", "verify", "destroy"):
        assert step in sequence, f"{scenario.name}: no {step} step"
    assert (scenario / "tests").is_dir(), f"{scenario.name}: no testinfra tests"

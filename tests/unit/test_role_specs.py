# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's meta/argument_specs.yml and defaults/main.yml agree (STYLE.md: dev-sec lets them drift)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def load(role: Path):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return defaults, specs


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_default_is_specified_and_every_spec_default_matches(role):
    defaults, specs = load(role)
    options = specs["main"]["options"]
    assert sorted(set(defaults) - set(options)) == [], "defaults/main.yml has variables the spec does not type"
    for name, spec in options.items():
        assert name.startswith(role.name + "_"), f"{name} is not prefixed with the role name"
        if "default" in spec:
            assert name in defaults, f"{name} has a spec default but is missing from defaults/main.yml"
            assert spec["default"] == defaults[name], f"{name}: spec default {spec['default']!r} != {defaults[name]!r}"
        elif name in defaults:
            # Derived from the inventory (a template): the spec must not pretend to have a literal default.
            assert "{{" in str(defaults[name]) or spec.get("type") in {"dict", "list"}, name


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_validate_entry_point_checks_the_main_spec_once(role):
    # One spec per role (main): the validate entry point has none of its own (Ansible would add a second
    # argument-spec task per role), its crpbot_checks task checks main's options in the same task.
    _, specs = load(role)
    assert "validate" not in specs
    tasks = yaml.safe_load((role / "tasks" / "validate.yml").read_text())
    if role.name == "crpbot_env":
        tasks = yaml.safe_load((role / "tasks" / "checks.yml").read_text())
    checks = [task for task in tasks if "crpbot_checks" in task]
    assert len(checks) == 1 and checks[0]["crpbot_checks"]["argument_spec"] == "main"

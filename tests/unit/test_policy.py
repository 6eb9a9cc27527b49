# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The money-safety rules (plugins/module_utils/crpbot_policy.py) and the crpbot_policy action.

The rules are called directly with tables; the action runs end to end through ansible-playbook on
localhost defined by the project's own inventory plugin, with the variables a person could pass.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.ansible_run import crpbot_localhost, run_module_play

import ansible.module_utils  # noqa: F401 - tests/unit/conftest.py serves plugins/module_utils under it
from ansible.module_utils import crpbot_policy as policy

QC_GROUPS = ["crpbot", "qc"]
BUILDER_GROUPS = ["builder", "crpbot"]
LIVE_GROUPS = ["builder", "crpbot", "live_approved"]


@pytest.mark.parametrize(
    ("groups", "role"),
    [(QC_GROUPS, "qc"), (BUILDER_GROUPS, "builder"), (LIVE_GROUPS, "builder"), (["qc"], "qc")],
)
def test_role_of_the_one_group(groups, role):
    assert policy.role_of("h", groups) == role


@pytest.mark.parametrize("groups", [["crpbot", "qc", "builder"], ["crpbot"], [], ["live_approved"]])
def test_role_of_refuses_both_or_neither(groups):
    with pytest.raises(policy.PolicyError, match="exactly one"):
        policy.role_of("h", groups)


@pytest.mark.parametrize(
    ("role", "approved", "root", "allowed"),
    [
        ("qc", True, True, False),
        ("qc", False, True, False),
        ("qc", True, False, False),
        ("builder", False, True, False),
        ("builder", True, False, False),
        ("builder", True, True, True),
    ],
)
def test_live_refusal(role, approved, root, allowed):
    assert (policy.live_refusal(role, approved, root) is None) is allowed


@pytest.mark.parametrize(
    ("role", "approved", "user", "confirmation", "outcome"),
    [
        ("qc", False, "numan", "CONFIRM", "dryrun"),
        ("qc", True, "root", "CONFIRM", "dryrun"),  # a QC host in live_approved: never live
        ("builder", False, "root", "CONFIRM", "dryrun"),
        ("builder", True, "root", "CONFIRM", "live"),
        ("builder", True, "root", "", "not confirmed"),
        ("builder", True, "root", "confirm", "not confirmed"),
        ("builder", True, "root", " CONFIRM", "not confirmed"),
        ("builder", True, "root", "yes", "not confirmed"),
        ("builder", True, "ubuntu", "CONFIRM", "only allowed for the root user"),
    ],
)
def test_runtime_mode(role, approved, user, confirmation, outcome):
    if outcome in ("live", "dryrun"):
        assert policy.runtime_mode("h", role, approved, user, confirmation) == outcome
    else:
        with pytest.raises(policy.PolicyError, match=outcome):
            policy.runtime_mode("h", role, approved, user, confirmation)


def test_decide_mode_never_introduces_live_and_refuses_it_where_not_allowed():
    assert policy.decide_mode("preserve", "builder", True, 0, "live") == "live"
    assert policy.decide_mode("preserve", "builder", True, 0, None) == "dryrun"
    assert policy.decide_mode("preserve", "qc", True, 0, "live") == "dryrun"
    assert policy.decide_mode("dryrun", "builder", True, 0, "live") == "dryrun"
    for role, approved, euid in (("qc", True, 0), ("builder", False, 0), ("builder", True, 1000)):
        with pytest.raises(policy.PolicyError):
            policy.decide_mode("live", role, approved, euid, "dryrun")
    with pytest.raises(policy.PolicyError, match="must be one of"):
        policy.decide_mode("LIVE", "builder", True, 0, "dryrun")


def test_mode_keys_in_any_case():
    assert policy.mode_keys(["RUNTIME_MODE", "runtime_mode", "Runtime_Mode", "RUNTIME_MODES", "MODE"]) == [
        "RUNTIME_MODE", "runtime_mode", "Runtime_Mode"]


QC_FACTS = {"crpbot_role": "qc", "crpbot_user": "numan", "crpbot_runtime_mode": "dryrun", "crpbot_db_backend": "rds",
            "crpbot_project_dir": "/home/numan/crpbot"}
BUILDER_FACTS = {"crpbot_role": "builder", "crpbot_user": "root", "crpbot_runtime_mode": "live",
                 "crpbot_db_backend": "rds", "crpbot_project_dir": "/root/crpbot"}


def found(groups, facts, variables, source="extra vars (-e)"):
    return policy.problems("h", groups, facts, variables, lambda _name: source)


def test_problems_none_when_the_variables_agree():
    agreeing = {**QC_FACTS, "inventory_hostname": "h", "group_names": ["crpbot", "qc"], "crpbot_env_role": "qc",
                "crpbot_env_live_confirm": ""}
    assert found(QC_GROUPS + ["all"], QC_FACTS, agreeing) == []
    assert found(LIVE_GROUPS, BUILDER_FACTS, {"crpbot_env_live_confirm": "CONFIRM"}) == []


# (id, variables, a fragment of the refusal): every way a variable could claim the QC host is a builder or live.
QC_CLAIMS = [
    ("role", {"crpbot_role": "builder"}, "variable crpbot_role is 'builder' (from extra vars (-e))"),
    ("mode", {"crpbot_runtime_mode": "live"}, "variable crpbot_runtime_mode is 'live'"),
    ("env-role", {"crpbot_env_role": "builder"}, "variable crpbot_env_role is 'builder'"),
    ("env-mode", {"crpbot_env_runtime_mode": "live"}, "variable crpbot_env_runtime_mode is 'live'"),
    ("credentials-role", {"crpbot_credentials_role": "builder"}, "crpbot_credentials_role"),
    ("amazon-q-role", {"amazon_q_role": "builder"}, "amazon_q_role"),
    ("s3-role", {"crpbot_s3_role": "builder"}, "crpbot_s3_role"),
    ("group-names", {"group_names": ["builder", "crpbot", "live_approved"]}, "variable group_names is [builder"),
    ("hostname", {"inventory_hostname": "cloud"}, "variable inventory_hostname is 'cloud'"),
    ("user", {"crpbot_user": "root"}, "variable crpbot_user is 'root'"),
    ("project-dir", {"crpbot_project_dir": "/root/crpbot"}, "variable crpbot_project_dir is '/root/crpbot'"),
    ("role-case", {"crpbot_role": "Builder"}, "variable crpbot_role is 'Builder'"),
]


@pytest.mark.parametrize(("variables", "fragment"), [c[1:] for c in QC_CLAIMS], ids=[c[0] for c in QC_CLAIMS])
def test_problems_refuse_every_claim_against_the_inventory(variables, fragment):
    problems = found(QC_GROUPS, QC_FACTS, variables)
    assert len(problems) == 1 and fragment in problems[0], problems
    assert problems[0].startswith("host h: ") and "Fix: " in problems[0]


@pytest.mark.parametrize(
    ("groups", "facts", "fragment"),
    [
        (["crpbot", "qc", "builder"], QC_FACTS, "is in qc and builder"),
        (["crpbot", "qc", "live_approved"], QC_FACTS, "is a QC host in group live_approved"),
        (["crpbot", "builder"], QC_FACTS, "the inventory entry says role 'qc' but the host is in group builder"),
        (LIVE_GROUPS, {**BUILDER_FACTS, "crpbot_user": "ubuntu"}, "only allowed for root"),
        (BUILDER_GROUPS, {**BUILDER_FACTS, "crpbot_db_backend": "sqlite"}, "always uses the PostgreSQL on RDS"),
        (["builder"], {}, "is not one of the crpbot inventory plugin's hosts"),
    ],
)
def test_problems_refuse_groups_the_plugin_would_never_make(groups, facts, fragment):
    assert any(fragment in problem for problem in found(groups, facts, {})), found(groups, facts, {})


@pytest.mark.parametrize("source", ["host_vars/group_vars files beside the inventory", "an inventory source",
                                    "play, role, task or include vars", "set_fact or register in this run"])
def test_a_confirmation_must_come_from_the_command_line(source):
    problems = found(LIVE_GROUPS, BUILDER_FACTS, {"crpbot_env_live_confirm": "CONFIRM"}, source)
    assert len(problems) == 1 and f"crpbot_env_live_confirm is set in {source}" in problems[0]


# --- the action end to end -------------------------------------------------------------------------


def policy_play(tmp_path, extra_args=(), role="qc", runtime_mode="dryrun", user="root", inventory=None, env=None):
    tasks = [{"name": "Check the run's variables", "crpbot_policy": None, "register": "verdict",
              "ignore_errors": True}]
    return run_module_play(tmp_path, tasks, extra_args=extra_args, env=env,
                           inventory=inventory or crpbot_localhost(role=role, runtime_mode=runtime_mode, user=user))


def test_action_reports_the_inventory_facts(tmp_path):
    play = policy_play(tmp_path, role="builder", runtime_mode="live")
    assert play.returncode == 0, play.output
    verdict = play.results["verdict"]
    assert (verdict["role"], verdict["live_approved"], verdict["runtime_mode"]) == ("builder", True, "live")
    assert verdict["groups"] == ["builder", "crpbot", "live_approved"] and verdict["changed"] is False


EXTRA_VARS = [
    ("crpbot_role=builder", "variable crpbot_role is 'builder' (from extra vars (-e))"),
    ("crpbot_runtime_mode=live", "variable crpbot_runtime_mode is 'live' (from extra vars (-e))"),
    ('{"group_names": ["builder", "crpbot", "live_approved"]}', "variable group_names is [builder, crpbot"),
    ("inventory_hostname=cloud", "variable inventory_hostname is 'cloud' (from extra vars (-e))"),
    ("crpbot_env_runtime_mode=live", "variable crpbot_env_runtime_mode is 'live' (from extra vars (-e))"),
]


@pytest.mark.parametrize(("extra", "fragment"), EXTRA_VARS, ids=[e[0].split("=")[0].strip('{"') for e in EXTRA_VARS])
def test_action_refuses_extra_vars_that_contradict_the_inventory(tmp_path, extra, fragment):
    play = policy_play(tmp_path, extra_args=("-e", extra, "-e", "crpbot_env_live_confirm=CONFIRM"))
    verdict = play.results["verdict"]
    assert verdict["failed"] is True and verdict["msg"].startswith("REFUSED before anything was changed: ")
    assert fragment in verdict["msg"], verdict["msg"]


def test_action_names_a_host_vars_file_as_the_source(tmp_path):
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "localhost.yml").write_text("crpbot_role: builder\n")
    play = policy_play(tmp_path)
    assert "variable crpbot_role is 'builder' (from host_vars/group_vars files beside the inventory)" in (
        play.results["verdict"]["msg"])


def test_action_refuses_a_confirmation_kept_in_a_vars_file(tmp_path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("crpbot_env_live_confirm: CONFIRM\n")
    play = policy_play(tmp_path, role="builder", runtime_mode="live")
    assert "crpbot_env_live_confirm is set in host_vars/group_vars files beside the inventory" in (
        play.results["verdict"]["msg"])


def test_action_refuses_a_second_inventory_source_making_a_qc_host_a_builder(tmp_path):
    config = tmp_path / "localhost.crpbot.yml"
    config.write_text(json.dumps({**crpbot_localhost(role="qc"), "vars": {"ansible_python_interpreter": "/usr/bin/python3"}}))
    extra = tmp_path / "extra.ini"
    extra.write_text("[builder]\nlocalhost\n[live_approved]\nlocalhost\n")
    tasks = [{"name": "Check", "crpbot_policy": None, "register": "verdict", "ignore_errors": True}]
    play = run_module_play(tmp_path, tasks, extra_args=("-i", str(extra)), inventory=crpbot_localhost(role="qc"))
    assert "host localhost is in qc and builder" in play.results["verdict"]["msg"], play.output


def test_action_takes_no_options(tmp_path):
    tasks = [{"name": "Check", "crpbot_policy": {"role": "builder"}, "register": "verdict", "ignore_errors": True}]
    play = run_module_play(tmp_path, tasks, inventory=crpbot_localhost())
    assert play.results["verdict"]["msg"] == "crpbot_policy takes no options, got role"


def test_only_stdlib_is_imported_at_module_level():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(policy.__file__).read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [getattr(node, "module", None) for node in top] == ["__future__"], "shipped to hosts: stdlib only"
    assert os.path.basename(policy.__file__) == "crpbot_policy.py"


@pytest.mark.parametrize("name", ["crpbot_role", "crpbot_runtime_mode"])
def test_action_names_play_or_task_vars_overriding_the_inventory_as_the_source(tmp_path, name):
    # The inventory plugin sets these as host variables itself; a different value the run sees came from
    # something of higher precedence, not from the inventory.
    value = "builder" if name == "crpbot_role" else "live"
    tasks = [{"name": "Check", "crpbot_policy": None, "vars": {name: value}, "register": "verdict",
              "ignore_errors": True}]
    play = run_module_play(tmp_path, tasks, inventory=crpbot_localhost(role="qc"))
    assert f"variable {name} is '{value}' (from play, role, task or include vars)" in (
        play.results["verdict"]["msg"]), play.output

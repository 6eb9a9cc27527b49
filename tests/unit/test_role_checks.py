# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's input rules (tasks/validate.yml, one crpbot_checks task each) and the crpbot_checks action.

The validate entry points run end to end through ansible-playbook on localhost defined by the project's
own inventory plugin: with good input every role passes; with bad input every rule reports its own
message, naming the host, the variable and the fix, and no secret value.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.ansible_run import crpbot_localhost, run_module_play

REPO = Path(__file__).resolve().parents[2]
ROLES = ["crpbot_repo", "amazon_q", "crpbot_uv", "crpbot_credentials", "crpbot_s3", "crpbot_models", "crpbot_logs",
         "crpbot_env"]
DB_PASSWORD = "Db-pass-never-shown-7"  # noqa: S105 - a test value that must never be printed
AWS_SECRET = "aws+secret/never-shown-9"  # noqa: S105
AMAZON_Q_CONFIGS = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "roles" / "amazon_q" / "defaults" / "main.yml").read_text())["amazon_q_configs"]


def amazon_q_qc(**qc):
    configs = copy.deepcopy(AMAZON_Q_CONFIGS)
    configs["qc"].update(qc)
    return configs


GOOD_VARS = {
    "vault_crpbot_db_password": DB_PASSWORD,
    "vault_crpbot_aws_access_key_id": "AKIATESTTESTTEST",
    "vault_crpbot_aws_secret_access_key": AWS_SECRET,
    "crpbot_repo_url": "https://git.invalid/crpbot.git",
}


def validate_all(tmp_path, role="builder", extra=None, ignore=False):
    """Run every role's validate entry point on one localhost of the given role; the checks' output."""
    tasks = [{"name": f"Validate {name}", "ansible.builtin.import_role": {"name": name, "tasks_from": "validate"},
              **({"ignore_errors": True} if ignore else {})} for name in ROLES]
    play = [{**task, "vars": {**GOOD_VARS, **(extra or {})}} for task in tasks]
    return run_module_play(tmp_path, play, inventory=crpbot_localhost(role=role))


@pytest.mark.parametrize("role", ["qc", "builder"])
def test_good_input_passes_every_role(tmp_path, role):
    play = validate_all(tmp_path, role=role)
    assert play.returncode == 0, play.output[-4000:]
    assert "failed=0" in play.output


# Every rule of every role, broken two ways (two runs, each breaking every rule at once), with what its
# message must say. Each role's checks task reports all its failures at once, so one run shows them all.
BAD_INPUT = [
    {
        "crpbot_repo_dest": "relative/path",
        "crpbot_repo_branch": "main; rm -rf /",
        "amazon_q_configs": amazon_q_qc(aws_access=True),
        "amazon_q_config_dir": "..",
        "amazon_q_project_dir": "relative",
        "crpbot_uv_version": "latest",
        "crpbot_uv_wheels": {"x86_64": {"url": "http://example.invalid/uv.whl", "sha256": "0" * 64}},
        "crpbot_uv_cache_dir": "cache",
        "crpbot_credentials_home": "home",
        "vault_crpbot_db_password": "",
        "vault_crpbot_aws_keys_by_role": {"builder": {"access_key_id": "AKIAONLYID"}},
        "crpbot_credentials_aws_profile": "bad profile",
        "crpbot_s3_bucket": "",
        "crpbot_s3_builder_syncs": [{"kind": "logs", "direction": "push", "local": "models", "prefix": "models/"}],
        "crpbot_models_min_win_rate": 1.5,
        "crpbot_models_project_dir": "rel",
        "crpbot_logs_group": "aws/reserved",
        "crpbot_logs_globs": ["../outside/*.log"],
        "crpbot_env_path": "relative/.env",
    },
    {
        "crpbot_repo_url": " ",
        "amazon_q_configs": amazon_q_qc(s3_access="read-write"),
        "amazon_q_config_dir": "a/b",
        "crpbot_uv_wheels": {"aarch64": {"url": "https://example.invalid/uv-9.9.9-x.whl", "sha256": "ABC"}},
        "crpbot_uv_python": "python3.11",
        "crpbot_credentials_project_dir": "project",
        "vault_crpbot_db_password": "two\nlines",
        "vault_crpbot_aws_access_key_id": "AKIA WITH SPACE",
        "crpbot_credentials_aws_region": "US_EAST",
        "crpbot_s3_project_dir": "project",
        "crpbot_s3_builder_syncs": [{"kind": "data", "direction": "push", "local": "/abs", "prefix": "data/raw/"}],
        "crpbot_models_max_calibration_error": -0.1,
        "crpbot_logs_group": "",
        "crpbot_logs_globs": ["/var/log/*.log"],
    },
]
MESSAGES = [
    ["crpbot_repo_dest must be an absolute path", "crpbot_repo_branch a branch name",
     "amazon_q_configs.qc must keep aws_access false", "amazon_q_config_dir must be a single directory name",
     "amazon_q_project_dir must be an absolute path", "crpbot_uv_version must be a release such as",
     "crpbot_uv_wheels.x86_64 must have an https url", "crpbot_uv_cache_dir must be an absolute path",
     "crpbot_credentials_home must be absolute paths", "vault_crpbot_db_password is missing",
     "vault_crpbot_aws_keys_by_role must be a mapping", "crpbot_credentials_aws_profile must be a plain name",
     "crpbot_s3_bucket must be set", 'the sync {"kind": "logs"',
     "must be fractions between 0 and 1", "crpbot_models_project_dir must be an absolute path",
     "crpbot_logs_group must be a name CloudWatch Logs accepts", "crpbot_logs_globs must be paths inside",
     "crpbot_env_path must be absolute"],
    ["crpbot_repo_url must be a repository URL", "amazon_q_configs.qc must keep", "amazon_q_config_dir must be a",
     "crpbot_uv_wheels.aarch64 must have an https url", "crpbot_uv_python must be an absolute path",
     "crpbot_credentials_project_dir and crpbot_credentials_home", "vault_crpbot_db_password is missing",
     "the AWS key for role builder is missing or malformed", "crpbot_credentials_aws_region an AWS region",
     "crpbot_s3_project_dir absolute", 'the sync {"kind": "data"', "must be fractions between 0 and 1",
     "crpbot_logs_group must be a name", "crpbot_logs_globs must be paths inside"],
]


@pytest.mark.parametrize("case", [0, 1])
def test_every_rule_names_the_host_the_variable_and_the_fix(tmp_path, case):
    play = validate_all(tmp_path, extra=BAD_INPUT[case], ignore=True)
    failures = [json.loads(line.split("=> ", 1)[1]) for line in play.output.splitlines()
                if line.startswith("fatal: [localhost]")]
    assert failures, play.output[-4000:]
    messages = [text for failure in failures for text in failure.get("failures", [])]
    assert all(text.startswith("host localhost: ") for text in messages), messages
    for text in MESSAGES[case]:
        assert any(text in message for message in messages), text
    for secret in (DB_PASSWORD, AWS_SECRET, "AKIATESTTESTTEST"):
        assert secret not in play.output


def test_a_qc_host_may_only_pull_models_and_raw_data(tmp_path):
    syncs = [{"kind": "models", "direction": "push", "local": "models", "prefix": "models/"},
             {"kind": "data", "direction": "pull", "local": "data/features", "prefix": "data/features/"},
             {"kind": "data", "direction": "pull", "local": "data/raw", "prefix": "data/raw/"}]
    play = validate_all(tmp_path, role="qc", extra={"crpbot_s3_qc_syncs": syncs}, ignore=True)
    output = play.output.replace('\\"', '"')
    assert 'host localhost: this is a QC host: its sync models must be a pull' in output
    assert 'got direction "push", prefix "models/"' in output
    assert 'got direction "pull", prefix "data/features/"' in output
    assert 'prefix "data/raw/"' not in output, "the allowed pull was refused"


def test_rds_settings_are_checked_only_for_rds(tmp_path):
    play = validate_all(tmp_path, role="builder", extra={"crpbot_env_db_host": ""}, ignore=True)
    assert "host localhost: the host uses the PostgreSQL on RDS but crpbot_env_db_host" in play.output
    play = validate_all(tmp_path, role="qc", extra={"crpbot_env_db_host": "", "crpbot_env_db_backend": "sqlite"})
    assert play.returncode == 0, play.output[-3000:]


def checks_play(tmp_path, checks, **task):
    tasks = [{"name": "Check", "crpbot_checks": {"checks": checks}, "register": "verdict", "ignore_errors": True,
              **task}]
    return run_module_play(tmp_path, tasks, inventory=crpbot_localhost())


def test_every_failure_is_reported_and_a_message_is_rendered_only_when_its_check_fails(tmp_path):
    checks = [
        {"that": "1 == 1", "msg": "{{ not_defined_anywhere }} is never rendered"},
        {"that": ["true", "numbers | length == 4"], "msg": "first"},
        {"loop": "{{ numbers }}", "that": "item is even", "msg": "{{ item }} is odd"},
        {"loop": "{{ numbers }}", "when": "item > 2", "that": "item < 3", "msg": "{{ item }} is big"},
    ]
    play = checks_play(tmp_path, checks, vars={"numbers": [1, 2, 3, 4]})
    verdict = play.results["verdict"]
    assert verdict["failed"] is True and verdict["changed"] is False
    assert verdict["failures"] == ["host localhost: 1 is odd", "host localhost: 3 is odd",
                                   "host localhost: 3 is big", "host localhost: 4 is big"]
    assert verdict["msg"] == " ".join(verdict["failures"])


def test_passing_checks_report_how_many(tmp_path):
    play = checks_play(tmp_path, [{"that": "true", "msg": "x"}, {"loop": [], "that": "false", "msg": "y"}])
    assert play.results["verdict"]["msg"] == "host localhost: all 2 checks passed", play.output
    assert not play.results["verdict"].get("failed")


@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        ([], "checks must be a non-empty list"),
        ([{"that": "true"}], "check 1 must be a mapping with that and msg"),
        ([{"that": "true", "msg": "m", "fail_msg": "x"}], "check 1 must be a mapping with that and msg"),
        ([{"that": "true", "msg": "m"}, {"that": [1], "msg": "m"}], "check 2: that must be an expression"),
    ],
)
def test_a_malformed_check_is_refused(tmp_path, checks, problem):
    play = checks_play(tmp_path, checks)
    assert problem in play.results["verdict"]["msg"], play.output[-2000:]


def test_a_check_that_cannot_be_evaluated_does_not_hide_the_others(tmp_path):
    checks = [{"that": "false", "msg": "first fails"},
              {"that": "no_such_variable.attribute == 1", "msg": "needs {{ no_such_variable }}"},
              {"that": "false", "msg": "third fails"}]
    verdict = checks_play(tmp_path, checks).results["verdict"]
    assert verdict["failures"][0] == "host localhost: first fails"
    assert verdict["failures"][1].startswith("host localhost: a check could not be evaluated (")
    assert "no_such_variable" in verdict["failures"][1] and verdict["failures"][1].endswith("needs {{ no_such_variable }}")
    assert verdict["failures"][2] == "host localhost: third fails"


def test_a_run_once_check_is_about_the_run_not_a_host(tmp_path):
    play = checks_play(tmp_path, [{"that": "false", "msg": "say which credential"}], run_once=True)
    assert play.results["verdict"]["failures"] == ["say which credential"], play.output[-2000:]


def test_the_rotation_request_is_checked_whole_before_anything(tmp_path):
    play = run_module_play(
        tmp_path, [{"name": "Validate", "ansible.builtin.import_tasks": str(REPO / "playbooks" / "rotate" / "validate.yml")}],
        inventory=crpbot_localhost(role="builder"),
        # vars.yml first: a later -e wins.
        extra_args=("-e", f"@{REPO / 'playbooks' / 'rotate' / 'vars.yml'}", "-e", "rotate=bogus",
                    "-e", f"crpbot_rotate_vault_file={tmp_path}/none.yml", "-e", "crpbot_rotate_admin_host=elsewhere"))
    assert play.returncode != 0
    output = play.output.replace('\\"', '"')
    for text in ['say which credential to rotate: -e rotate=db_password', 'got "bogus"',
                 f"{tmp_path}/none.yml does not exist", 'crpbot_rotate_admin_host is "elsewhere"']:
        assert text in output, text
    assert "host localhost: say which" not in output


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("amazon_q_configs", ["qc"], "amazon_q_configs"),
        ("crpbot_uv_wheels", "x86_64", "crpbot_uv_wheels"),
        ("crpbot_s3_workers", "many", "crpbot_s3_workers"),
        ("crpbot_logs_retention_days", 4, "crpbot_logs_retention_days"),
        ("crpbot_env_backup_keep", {"a": 1}, "crpbot_env_backup_keep"),
    ],
)
def test_the_main_argument_spec_is_checked_in_the_validate_task(tmp_path, variable, value, says):
    play = validate_all(tmp_path, extra={variable: value}, ignore=True)
    failures = [json.loads(line.split("=> ", 1)[1]) for line in play.output.splitlines()
                if line.startswith("fatal: [localhost]")]
    messages = [text for failure in failures for text in failure.get("failures", [])]
    spec_errors = [text for text in messages if "(meta/argument_specs.yml, entry point main)" in text]
    assert spec_errors and all(text.startswith("host localhost: ") for text in spec_errors), play.output[-3000:]
    assert any(says in text for text in spec_errors), spec_errors
    assert "Validating arguments against arg spec" not in play.output, "a second argument-spec task ran"


def test_a_loop_that_cannot_be_built_is_reported_with_the_others(tmp_path):
    checks = [{"loop": "{{ 'text' | dict2items }}", "that": "true", "msg": "wheels must be a mapping"},
              {"that": "false", "msg": "second fails"}]
    verdict = checks_play(tmp_path, checks).results["verdict"]
    assert verdict["failures"][0].startswith("host localhost: a check could not be evaluated (")
    assert verdict["failures"][0].endswith("wheels must be a mapping")
    assert verdict["failures"][1] == "host localhost: second fails"

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crpbot_amazon_q module (plugins/modules/crpbot_amazon_q.py): the .gitignore block, the config dir and
config.json in one run. Its .gitignore part is tests/unit/test_gitignore.py's (every writer of a block)."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from tests.ansible_run import load_plugin, run_module_play

QC = json.dumps({"role": "qc", "tasks": ["review"], "aws_access": False, "s3_access": "read-only"}, indent=2) + "\n"
BUILDER = QC.replace('"qc"', '"builder"')
B, E = "# BEGIN crpbot-ansible amazon_q", "# END crpbot-ansible amazon_q"
USER = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def module():
    return load_plugin("plugins/modules/crpbot_amazon_q.py", "crpbot_amazon_q_under_test")


def params(project, **changes):
    result = dict(project_dir=str(project), config_dir=".amazon-q", content=QC, owner=None, mode="0644",
                  directory_mode="0755", gitignore_entries=[".amazon-q/", ".amazonq/"])
    result.update(changes)
    return result


def test_plan_of_a_fresh_checkout_writes_nothing(module, tmp_path):
    plan = module.make_plan(params(tmp_path))
    assert plan["gitignore"]["changed"] and plan["directory_changed"] and plan["file"]["content_changed"]
    assert os.listdir(tmp_path) == []
    gitignore, config, directory = plan["diff"]
    assert config == {"before_header": f"{tmp_path}/.amazon-q/config.json",
                      "after_header": f"{tmp_path}/.amazon-q/config.json", "before": "", "after": QC}
    assert directory["before"] == "" and directory["after"].startswith("mode 0755\n")
    assert gitignore["after"] == f"{B}\n.amazon-q/\n.amazonq/\n{E}\n"


@pytest.mark.parametrize(("changes", "named"), [
    ({"config_dir": "../elsewhere"}, "config_dir must be a single directory name"),
    ({"config_dir": ".."}, "config_dir must be a single directory name"),
    ({"content": "{'role': 'qc'}"}, "content of config.json is not JSON"),
    ({"content": "[1, 2]"}, "content of config.json must be a JSON object"),
    ({"mode": "rw-r--r--"}, "mode must be an octal string"),
    ({"owner": "no-such-user-crpbot"}, "owner no-such-user-crpbot does not exist"),
    ({"project_dir": "relative/crpbot"}, "project_dir must be absolute"),
], ids=["dir-escapes", "dir-dotdot", "not-json", "not-an-object", "symbolic-mode", "unknown-owner", "relative"])
def test_plan_refuses_bad_input_naming_it(module, tmp_path, changes, named):
    with pytest.raises(module.ModuleFailure, match=named):
        module.make_plan(params(tmp_path, **changes))
    assert os.listdir(tmp_path) == []


def test_plan_refuses_a_file_where_the_dir_goes(module, tmp_path):
    (tmp_path / ".amazon-q").write_text("not a dir")
    with pytest.raises(module.ModuleFailure, match=r"\.amazon-q exists and is not a directory"):
        module.make_plan(params(tmp_path))


def task(project, register, **changes):
    args = {"project_dir": str(project), "owner": USER, "content": QC, **changes}
    return {"name": f"Amazon Q ({register})", "crpbot_amazon_q": args, "register": register}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("amazon_q")
    project = tmp_path / "crpbot"
    project.mkdir()
    config = project / ".amazon-q" / "config.json"
    tasks = [
        {**task(project, "predicted"), "check_mode": True},
        {"name": "Stat after the prediction", "ansible.builtin.stat": {"path": str(project / ".amazon-q")},
         "register": "after_check"},
        task(project, "first"),
        task(project, "second"),
        {"name": "Loosen the dir and the file by hand", "ansible.builtin.shell":
            f"chmod 0700 {project / '.amazon-q'} && chmod 0600 {config}", "changed_when": True},
        {**task(project, "attrs_predicted"), "check_mode": True},
        task(project, "attrs_fixed"),
        {**task(project, "builder_predicted", content=BUILDER), "check_mode": True},
        task(project, "builder", content=BUILDER),
        task(project, "builder_again", content=BUILDER),
        {**task(project, "not_json", content="{'role': 'qc'}"), "ignore_errors": True},
    ]
    play = run_module_play(tmp_path, tasks, extra_args=("--diff",))
    assert play.returncode == 0, play.output[-5000:]
    return {"project": project, "config": config, "output": play.output, **play.results}


def test_e2e_check_mode_predicts_and_writes_nothing(e2e):
    predicted = e2e["predicted"]
    assert predicted["changed"] and predicted["content_changed"] and predicted["directory_changed"]
    assert predicted["gitignore"] == {"path": str(e2e["project"] / ".gitignore"), "changed": True,
                                      "missing": [".amazon-q/", ".amazonq/"]}
    assert not e2e["after_check"]["stat"]["exists"]


def test_e2e_writes_the_block_the_dir_and_the_file(e2e):
    assert e2e["first"]["changed"] and e2e["first"]["path"] == str(e2e["config"])
    assert (e2e["project"] / ".gitignore").read_text() == f"{B}\n.amazon-q/\n.amazonq/\n{E}\n"
    assert (e2e["project"] / ".gitignore").stat().st_mode & 0o7777 == 0o644
    assert (e2e["project"] / ".amazon-q").stat().st_mode & 0o7777 == 0o755
    assert e2e["second"]["changed"] is False
    assert e2e["second"]["gitignore"]["changed"] is False


def test_e2e_fixes_mode_in_place_and_says_so_in_the_diff(e2e):
    assert e2e["attrs_predicted"]["changed"] and not e2e["attrs_predicted"]["content_changed"]
    assert e2e["attrs_fixed"]["changed"] and e2e["attrs_fixed"]["directory_changed"]
    assert "-mode 0700\n+mode 0755" in e2e["output"] and "-mode 0600\n+mode 0644" in e2e["output"]
    assert e2e["builder_again"]["changed"] is False


def test_e2e_rewrites_the_content_with_its_diff(e2e):
    assert e2e["builder_predicted"]["content_changed"] and e2e["builder"]["content_changed"]
    assert e2e["config"].read_text() == BUILDER
    assert e2e["config"].stat().st_mode & 0o7777 == 0o644
    assert e2e["config"].stat().st_uid == os.geteuid()
    assert '-  "role": "qc",\n+  "role": "builder",' in e2e["output"]


def test_e2e_refuses_content_that_is_not_json_naming_it(e2e):
    assert e2e["not_json"]["failed"] and "content of config.json is not JSON" in e2e["not_json"]["msg"]
    assert e2e["config"].read_text() == BUILDER

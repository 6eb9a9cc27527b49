# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the crpbot_secret_file module (plugins/modules/crpbot_secret_file.py) and its shared
writer (plugins/module_utils/crpbot_files.py): pure planning, then end to end through
ansible-playbook on the local connection with a one-host YAML inventory, at -vvv with --diff."""

from __future__ import annotations

import ast
import json
import stat
import sys
from pathlib import Path

import pytest

from tests.ansible_run import load_plugin, run_module_play

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "plugins" / "modules" / "crpbot_secret_file.py"
FILES = REPO / "plugins" / "module_utils" / "crpbot_files.py"

SECRET = "Sf7 s3cret p@ss:w/rd#?%&'\"$HOME\\"
SECRET2 = "Sf8-second-secret-value-0099\n"
OLD = "Of3-old-secret-on-disk\n"


@pytest.fixture
def module():
    return load_plugin(str(MODULE.relative_to(REPO)), "crpbot_secret_file_under_test")


def params(path, **changes):
    result = dict(path=str(path), content=SECRET, owner=None, group=None, mode="0600", backup=True, backup_keep=5)
    result.update(changes)
    return result


@pytest.mark.parametrize("path", [MODULE, FILES], ids=["module", "module_utils"])
def test_only_stdlib_and_ansible_module_utils_are_imported(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    for name in imported:
        assert name.split(".")[0] in sys.stdlib_module_names or name.startswith("ansible.module_utils."), name


def test_plan_of_a_new_file(module, tmp_path):
    plan = module.make_plan(params(tmp_path / "pw"))
    assert plan["content_changed"] and not plan["attrs_changed"]
    assert plan["new_bytes"] == SECRET.encode()
    assert plan["diff"]["before"] == ""
    assert plan["diff"]["after"].startswith(f"(secret content, changed, {len(SECRET.encode())} bytes)\nmode 0600\n")
    assert not (tmp_path / "pw").exists()


def test_check_mode_predicts_a_file_in_a_missing_dir(module, tmp_path):
    with pytest.raises(module.ModuleFailure, match="does not exist"):
        module.make_plan(params(tmp_path / "nodir" / "pw"))
    plan = module.make_plan(params(tmp_path / "nodir" / "pw"), check_mode=True)
    assert plan["content_changed"] and plan["old_bytes"] is None


def test_plan_of_an_unchanged_file_with_a_loose_mode(module, tmp_path):
    path = tmp_path / "pw"
    path.write_text(SECRET)
    path.chmod(0o644)
    plan = module.make_plan(params(path))
    assert not plan["content_changed"] and plan["attrs_changed"]
    assert plan["diff"]["before"].startswith(f"(secret content, {len(SECRET.encode())} bytes)\nmode 0644\n")
    assert plan["diff"]["after"].startswith("(secret content, unchanged,")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_plan_diff_never_holds_content_or_a_hash(module, tmp_path):
    import hashlib

    path = tmp_path / "pw"
    path.write_text(OLD)
    plan = module.make_plan(params(path, content=SECRET2))
    text = plan["diff"]["before"] + plan["diff"]["after"]
    for value in (OLD, SECRET2, OLD.strip(), SECRET2.strip()):
        assert value not in text
        for algo in ("md5", "sha1", "sha256"):
            assert hashlib.new(algo, value.encode()).hexdigest()[:6] not in text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"path": "relative/pw"}, "path must be absolute"),
        ({"mode": "u=rw"}, "mode must be"),
        ({"owner": "no-such-user-crpbot"}, "owner no-such-user-crpbot does not exist"),
        ({"group": "no-such-group-crpbot"}, "group no-such-group-crpbot does not exist"),
        ({"content": "bad\ud800"}, "is not valid Unicode"),
    ],
)
def test_plan_refuses_bad_input_without_naming_content(module, tmp_path, changes, reason):
    with pytest.raises(module.ModuleFailure, match=reason) as caught:
        module.make_plan({**params(tmp_path / "pw"), **changes})
    assert SECRET not in str(caught.value)


def test_plan_refuses_links_dirs_and_missing_parents(module, tmp_path):
    (tmp_path / "real").write_text(OLD)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "dir").mkdir()
    cases = {"link": "is a symbolic link", "dir": "is not a regular file", "nodir/pw": "does not exist; create it"}
    for name, reason in cases.items():
        with pytest.raises(module.ModuleFailure, match=reason):
            module.make_plan(params(tmp_path / name))


# --------------------------------------------------------------------------------------------
# End to end: ansible-playbook, local connection, the host's system python3
# --------------------------------------------------------------------------------------------


def many(tmp_path: Path, second: str | None = None, content: str = SECRET) -> dict:
    return {"files": [
        {"path": str(tmp_path / "many" / "credentials"), "content": content, "directory_mode": "0700"},
        {"path": second or str(tmp_path / "many" / "config"), "content": "[default]\nregion = us-east-1\n",
         "mode": "0644", "backup": False},
    ]}


def play_tasks(tmp_path: Path, path: Path) -> list[dict]:
    write = {"path": str(path), "content": SECRET}
    # The tasks carry no no_log on purpose: the module's own no_log on content must be enough.
    return [
        {"name": "Predict the first write", "crpbot_secret_file": write, "check_mode": True, "register": "predicted"},
        {"name": "Stat after the prediction", "ansible.builtin.stat": {"path": str(path)}, "register": "after_check"},
        {"name": "Write", "crpbot_secret_file": write, "register": "first"},
        {"name": "Write again", "crpbot_secret_file": write, "register": "second"},
        {"name": "Loosen the mode by hand", "ansible.builtin.file": {"path": str(path), "mode": "0644"}},
        {"name": "Fix the mode only", "crpbot_secret_file": write, "register": "mode_fix"},
        {
            "name": "Predict a change of content",
            "crpbot_secret_file": {**write, "content": SECRET2},
            "check_mode": True,
            "register": "predicted_change",
        },
        {"name": "Change the content", "crpbot_secret_file": {**write, "content": SECRET2}, "register": "changed"},
        {
            "name": "Change it back without a backup",
            "crpbot_secret_file": {**write, "backup": False},
            "register": "no_backup",
        },
        {
            "name": "Write seven versions, keeping two backups",
            "crpbot_secret_file": {"path": str(tmp_path / "bounded" / "pw"), "content": "{{ item }}", "backup_keep": 2},
            "loop": [f"version-{n}" for n in range(7)],
            "loop_control": {"label": "a version"},
            "register": "bounded",
        },
        {"name": "Predict several files and their dir", "crpbot_secret_file": many(tmp_path), "check_mode": True,
         "register": "many_predicted"},
        {"name": "Stat the dir after the prediction", "ansible.builtin.stat": {"path": str(tmp_path / "many")},
         "register": "many_dir_after_check"},
        {"name": "Write several files and their dir", "crpbot_secret_file": many(tmp_path), "register": "many_first"},
        {"name": "Write them again", "crpbot_secret_file": many(tmp_path), "register": "many_second"},
        {"name": "Loosen the dir by hand", "ansible.builtin.file": {"path": str(tmp_path / "many"), "mode": "0755"}},
        {"name": "Fix the dir only", "crpbot_secret_file": many(tmp_path), "register": "many_dir_fix"},
        {"name": "Change one file, refuse another: nothing written",
         "crpbot_secret_file": many(tmp_path, second=str(tmp_path / "home"), content=SECRET2),
         "register": "many_refused", "ignore_errors": True},
        {
            "name": "Refuse a missing parent directory",
            "crpbot_secret_file": {"path": str(tmp_path / "missing" / "pw"), "content": SECRET},
            "register": "no_parent",
            "ignore_errors": True,
        },
    ]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("e2e")
    workdir = tmp_path / "home"
    workdir.mkdir()
    (tmp_path / "bounded").mkdir()
    path = workdir / "pw"
    play = run_module_play(
        tmp_path, play_tasks(tmp_path, path), name="Exercise crpbot_secret_file", extra_args=("--diff", "-vvv")
    )
    assert play.returncode == 0, play.output[-5000:]
    return {"output": play.output, "results": play.results, "path": path, "workdir": workdir}


def test_e2e_check_mode_predicts_and_writes_nothing(e2e):
    results = e2e["results"]
    assert results["predicted"]["changed"] and results["predicted"]["content_changed"]
    assert not results["after_check"]["stat"]["exists"]
    assert results["predicted_change"]["changed"] and "backup_file" not in results["predicted_change"]


def test_e2e_writes_exact_content_0600(e2e):
    results = e2e["results"]
    assert results["first"]["changed"] and "backup_file" not in results["first"]
    assert results["first"]["size"] == len(SECRET.encode())
    assert not results["second"]["changed"]
    assert results["mode_fix"]["changed"] and not results["mode_fix"]["content_changed"]
    assert e2e["path"].read_text() == SECRET  # the last task put it back, byte for byte
    assert stat.S_IMODE(e2e["path"].stat().st_mode) == 0o600


def test_e2e_backup_is_0600_and_holds_the_previous_content(e2e):
    backup = Path(e2e["results"]["changed"]["backup_file"])
    assert backup.parent == e2e["workdir"] and backup.name.startswith("pw.") and backup.name.endswith(".bak")
    assert backup.read_text() == SECRET
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "backup_file" not in e2e["results"]["no_backup"]
    assert sorted(p.name for p in e2e["workdir"].iterdir()) == sorted(["pw", backup.name])  # no temp files left


def test_e2e_keeps_only_the_newest_backups(e2e, tmp_path_factory):
    results = e2e["results"]["bounded"]["results"]
    bounded = Path(results[0]["path"]).parent
    backups = sorted(p for p in bounded.iterdir() if p.name.startswith("pw.") and p.name.endswith(".bak"))
    assert len(backups) == 2
    assert {p.read_text() for p in backups} == {"version-4", "version-5"}  # the two before the last
    assert (bounded / "pw").read_text() == "version-6"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in backups)
    assert [bool(r.get("removed_backups")) for r in results] == [False, False, False, True, True, True, True]


def test_e2e_several_files_in_one_run(e2e):
    results = e2e["results"]
    predicted = results["many_predicted"]
    assert predicted["changed"] and [f["content_changed"] for f in predicted["files"]] == [True, True]
    assert predicted["directories_changed"] and not results["many_dir_after_check"]["stat"]["exists"]
    first, second = results["many_first"], results["many_second"]
    assert first["changed"] and [f["content_changed"] for f in first["files"]] == [True, True]
    assert not second["changed"] and second["directories_changed"] == []
    fixed = results["many_dir_fix"]
    assert fixed["changed"] and fixed["directories_changed"] and not any(f["content_changed"] for f in fixed["files"])
    credentials = Path(first["files"][0]["path"])
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600 and credentials.read_text() == SECRET
    config = Path(first["files"][1]["path"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o644


def test_e2e_several_files_are_all_checked_before_the_first_write(e2e):
    refused = e2e["results"]["many_refused"]
    assert refused["failed"] and "home" in refused["msg"] and "is not a regular file" in refused["msg"]
    credentials = Path(e2e["results"]["many_first"]["files"][0]["path"])
    assert credentials.read_text() == SECRET  # the first file of the refused run was not written
    assert sorted(p.name for p in credentials.parent.iterdir()) == ["config", "credentials"]


def test_e2e_failure_names_the_path(e2e):
    failed = e2e["results"]["no_parent"]
    assert failed["failed"] and "missing" in failed["msg"] and "does not exist" in failed["msg"]


def test_e2e_diff_hides_the_content(e2e):
    output = e2e["output"]
    assert "(secret content, changed," in output and "(secret content, unchanged," in output


def test_e2e_output_never_contains_a_secret(e2e):
    output = e2e["output"] + json.dumps(e2e["results"])
    for value in (SECRET, SECRET2, SECRET2.strip(), "Sf7 s3cret", "Sf8-second"):
        assert value not in output, value

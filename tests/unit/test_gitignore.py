# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The managed .gitignore blocks: crpbot_git.with_block and the crpbot_gitignore module."""

from __future__ import annotations

import os

import pytest

from tests.ansible_run import run_module_play

import ansible.module_utils  # noqa: F401 - tests/unit/conftest.py serves plugins/module_utils under it
from ansible.module_utils import crpbot_git

B, E = "# BEGIN crpbot-ansible amazon_q", "# END crpbot-ansible amazon_q"
ENTRIES = [".amazon-q/", ".amazonq/"]


@pytest.mark.parametrize(("before", "entries", "after"), [
    ("", ENTRIES, f"{B}\n.amazon-q/\n.amazonq/\n{E}\n"),
    ("*.pyc\n", ENTRIES, f"*.pyc\n{B}\n.amazon-q/\n.amazonq/\n{E}\n"),
    ("*.pyc", ENTRIES, f"*.pyc\n{B}\n.amazon-q/\n.amazonq/\n{E}\n"),  # a last line without newline
    ("*.pyc\n.amazonq/\n", ENTRIES, f"*.pyc\n.amazonq/\n{B}\n.amazon-q/\n{E}\n"),  # the person's own line
    ("  .amazon-q/  \n.amazonq/\n", ENTRIES, "  .amazon-q/  \n.amazonq/\n"),  # all written: no block
    (f"a\n{B}\n.amazon-q/\n.amazonq/\n{E}\nb\n", ENTRIES, f"a\n{B}\n.amazon-q/\n.amazonq/\n{E}\nb\n"),
    (f"a\n{B}\nold/\n{E}\nb\n", ENTRIES, f"a\n{B}\n.amazon-q/\n.amazonq/\n{E}\nb\n"),  # replaced in place
    (f"a\n{B}\n.amazon-q/\n{E}\n.amazon-q/\n.amazonq/\n", ENTRIES, "a\n.amazon-q/\n.amazonq/\n"),  # removed
    (f"{B}\nmine\n", ENTRIES, f"{B}\nmine\n{B}\n.amazon-q/\n.amazonq/\n{E}\n"),  # BEGIN without END: theirs
    ("# BEGIN crpbot-ansible crpbot_env\n.env\n# END crpbot-ansible crpbot_env\n", [".env", "x"],
     "# BEGIN crpbot-ansible crpbot_env\n.env\n# END crpbot-ansible crpbot_env\n"
     f"{B}\nx\n{E}\n"),  # another block's entries count as written; it is untouched
    ("", [".env", ".env", ".env.*.bak"], f"{B}\n.env\n.env.*.bak\n{E}\n"),  # each once
    ("", [], ""),
], ids=["new", "append", "no-newline", "person-wrote-one", "person-wrote-all", "same", "replace", "remove",
        "begin-without-end", "other-block", "unique", "nothing"])
def test_with_block(before, entries, after):
    text, missing = crpbot_git.with_block(before, "amazon_q", entries)
    assert text == after
    assert crpbot_git.with_block(text, "amazon_q", entries)[0] == text  # idempotent
    assert missing == [line for line in dict.fromkeys(entries) if f"\n{line}\n" in f"\n{after.split(B)[-1]}"] \
        if B in after else missing == []


def test_with_block_is_recognised_by_the_checkout_as_ours():
    committed = "*.pyc\nlogs"
    text, _ = crpbot_git.with_block(committed, "amazon_q", ENTRIES)
    assert crpbot_git.gitignore_is_ours(text, committed, "crpbot-ansible")


def task(project_dir, entries=ENTRIES, register="result"):
    return {"name": "Keep the block", "crpbot_gitignore": {"project_dir": str(project_dir), "block": "amazon_q",
                                                           "entries": entries},
            "register": register, "ignore_errors": True}


def test_module_writes_keeps_the_mode_and_is_idempotent(tmp_path):
    project = tmp_path / "crpbot"
    project.mkdir()
    gitignore = project / ".gitignore"
    gitignore.write_text("*.pyc\n")
    os.chmod(gitignore, 0o640)
    play = run_module_play(tmp_path, [task(project, register="first"), task(project, register="second")],
                           extra_args=("--diff",))
    assert play.returncode == 0, play.output
    assert play.results["first"]["changed"] is True and play.results["second"]["changed"] is False
    assert play.results["first"]["missing"] == ENTRIES
    assert gitignore.read_text() == f"*.pyc\n{B}\n.amazon-q/\n.amazonq/\n{E}\n"
    assert gitignore.stat().st_mode & 0o7777 == 0o640
    assert f"+{B}" in play.output  # the diff


def test_module_creates_0644_and_changes_nothing_in_check_mode(tmp_path):
    project = tmp_path / "crpbot"
    project.mkdir()
    play = run_module_play(tmp_path, [task(project)], check=True)
    assert play.results["result"]["changed"] is True and not (project / ".gitignore").exists()
    play = run_module_play(tmp_path, [task(project)])
    assert (project / ".gitignore").stat().st_mode & 0o7777 == 0o644
    assert play.results["result"]["changed"] is True


def test_module_refuses_a_missing_project_dir(tmp_path):
    play = run_module_play(tmp_path, [task(tmp_path / "nowhere")])
    assert play.results["result"]["failed"] is True
    assert f"the project dir {tmp_path / 'nowhere'} does not exist" in play.results["result"]["msg"]


# Every module that keeps a block runs the same code (crpbot_files.plan_gitignore/apply_gitignore): the
# crpbot_gitignore module, crpbot_amazon_q, and the `gitignore` option of crpbot_secret_file and crpbot_env_file,
# each in the same run as its own write.
PERSON = "*.pyc\n.amazonq/\n# my notes"  # the person's own lines, one entry among them, no last newline
SECRET = "Pw7-secret-never-shown"
WRITERS = ["crpbot_gitignore", "crpbot_amazon_q", "crpbot_secret_file", "crpbot_env_file"]


def writer(name, project, gitignore_dir=None):
    """(block, task args) of module `name` keeping a block in project's .gitignore (or gitignore_dir's)."""
    where = str(gitignore_dir or project)
    if name == "crpbot_gitignore":
        return "amazon_q", {"project_dir": where, "block": "amazon_q", "entries": ENTRIES}
    if name == "crpbot_amazon_q":
        return "amazon_q", {"project_dir": where, "content": '{"role": "qc"}\n', "gitignore_entries": ENTRIES}
    block = {"project_dir": where, "block": name, "entries": [".amazon-q/", ".amazonq/", ".amazon-q/"]}
    if name == "crpbot_secret_file":
        return name, {"files": [{"path": str(project / ".db_password"), "content": SECRET}], "gitignore": block}
    return name, {"path": str(project / ".env"), "secrets": {"API_TOKEN": SECRET}, "gitignore": block}


@pytest.fixture(scope="module", params=WRITERS)
def kept(request, tmp_path_factory):
    from tests.ansible_run import crpbot_localhost

    tmp_path = tmp_path_factory.mktemp(request.param)
    project = tmp_path / "crpbot"
    project.mkdir()
    (project / ".gitignore").write_text(PERSON)
    os.chmod(project / ".gitignore", 0o640)
    block, args = writer(request.param, project)
    _, refused = writer(request.param, tmp_path / "other", gitignore_dir=tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    read = {"ansible.builtin.slurp": {"src": str(project / ".gitignore")}}
    tasks = [
        {"name": "Predict", request.param: args, "check_mode": True, "register": "predicted"},
        {"name": "Read after the prediction", **read, "register": "after_check"},
        {"name": "Write", request.param: args, "register": "first"},
        {"name": "Write again", request.param: args, "register": "second"},
        {"name": "Refuse a missing project dir", request.param: refused, "register": "refused",
         "ignore_errors": True},
    ]
    play = run_module_play(tmp_path, tasks, extra_args=("--diff",), inventory=crpbot_localhost(role="qc"))
    assert play.returncode == 0, play.output[-5000:]
    return {"name": request.param, "block": block, "project": project, "tmp_path": tmp_path, **play.results,
            "output": play.output}


def block_of(result):
    return result if "missing" in result else result["gitignore"]


def test_every_writer_predicts_without_writing(kept):
    import base64

    assert kept["predicted"]["changed"] is True and block_of(kept["predicted"])["changed"] is True
    assert base64.b64decode(kept["after_check"]["content"]).decode() == PERSON


def test_every_writer_keeps_the_persons_lines_and_mode_and_repeats_no_entry(kept):
    text = (kept["project"] / ".gitignore").read_text()
    b, e = f"# BEGIN crpbot-ansible {kept['block']}", f"# END crpbot-ansible {kept['block']}"
    assert text == f"{PERSON}\n{b}\n.amazon-q/\n{e}\n"
    assert (kept["project"] / ".gitignore").stat().st_mode & 0o7777 == 0o640
    assert crpbot_git.gitignore_is_ours(text, PERSON, "crpbot-ansible")
    assert kept["first"]["changed"] is True and block_of(kept["first"])["missing"] == [".amazon-q/"]
    assert f"+{b}" in kept["output"]  # the .gitignore's diff


def test_every_writer_is_idempotent(kept):
    assert kept["second"]["changed"] is False and block_of(kept["second"])["changed"] is False


def test_every_writer_refuses_a_missing_project_dir_before_writing(kept):
    refused = kept["refused"]
    assert refused["failed"] is True
    assert f"the project dir {kept['tmp_path'] / 'nowhere'} does not exist" in refused["msg"]
    assert list((kept["tmp_path"] / "other").iterdir()) == []  # the module's own file was not written either


def test_no_writer_shows_a_secret_with_its_gitignore(kept):
    assert SECRET not in kept["output"]

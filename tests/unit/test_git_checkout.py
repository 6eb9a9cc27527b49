# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the crpbot_git_checkout module and its pure helpers (plugins/module_utils/crpbot_git.py).

The helpers are called directly with parametrized tables; the module runs end to end through one
ansible-playbook (local connection, the host's python3) against local git repositories in
tmp_path. No remote host is contacted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible_run import run_module_play

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import crpbot_git  # noqa: E402

BLOCK = "# BEGIN crpbot-ansible amazon_q\n.amazonq/\n# END crpbot-ansible amazon_q\n"
GIT_VARS = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
GIT_ENV = {**os.environ, **GIT_VARS}


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("*.pyc\n", "*.pyc\n"),
        ("*.pyc\n" + BLOCK, "*.pyc\n"),
        (BLOCK + "*.pyc\n", "*.pyc\n"),
        ("a\n" + BLOCK + "b\n", "a\nb\n"),
        ("a\n# BEGIN crpbot-ansible\nx\n# END crpbot-ansible\nb\n", "a\nb\n"),
        ("a\n" + BLOCK + BLOCK.replace("amazon_q", "other"), "a\n"),
        # END of another block name does not close it: unterminated, so kept
        (
            "a\n# BEGIN crpbot-ansible one\nx\n# END crpbot-ansible two\n",
            "a\n# BEGIN crpbot-ansible one\nx\n# END crpbot-ansible two\n",
        ),
        ("# BEGIN crpbot-ansible amazon_q\nx\n", "# BEGIN crpbot-ansible amazon_q\nx\n"),
        ("# BEGIN crpbot-ansiblex\nx\n# END crpbot-ansiblex\n", "# BEGIN crpbot-ansiblex\nx\n# END crpbot-ansiblex\n"),
        ("# BEGIN someone-else\nx\n# END someone-else\n", "# BEGIN someone-else\nx\n# END someone-else\n"),
        ("a\r\n# BEGIN crpbot-ansible q\r\nx\r\n# END crpbot-ansible q\r\n", "a\r\n"),
        ("a\n# BEGIN crpbot-ansible q\nx\n# END crpbot-ansible q", "a\n"),
    ],
)
def test_strip_managed_blocks(text, expected):
    assert crpbot_git.strip_managed_blocks(text, "crpbot-ansible") == expected


@pytest.mark.parametrize(
    ("current", "committed", "ours"),
    [
        ("*.pyc\n" + BLOCK, "*.pyc\n", True),
        ("*.pyc\n", "*.pyc\n", True),
        (BLOCK, "", True),  # created by blockinfile, untracked
        ("*.pyc\n" + BLOCK, "*.pyc", True),  # blockinfile added the missing final newline
        ("*.pyc\n" + BLOCK, "*.pyc\n" + BLOCK.replace(".amazonq/", "old/"), True),
        ("*.pyc\nmy.log\n" + BLOCK, "*.pyc\n", False),
        ("*.pyc\n" + BLOCK + "my.log\n", "*.pyc\n", False),
        ("*.pyc\n\n" + BLOCK, "*.pyc\n", False),
        ("" + BLOCK, "*.pyc\n", False),  # the person deleted a line
        ("my.log\n" + BLOCK, "", False),
        ("*.pyc\n# BEGIN crpbot-ansible amazon_q\n.amazonq/\n", "*.pyc\n", False),
    ],
)
def test_gitignore_is_ours(current, committed, ours):
    assert crpbot_git.gitignore_is_ours(current, committed, "crpbot-ansible") is ours


@pytest.mark.parametrize(
    ("output", "entries"),
    [
        ("", []),
        (" M a.py\0?? notes.txt\0", [(" M", "a.py"), ("??", "notes.txt")]),
        ("R  new.py\0old.py\0 D gone.py\0", [("R ", "new.py"), (" D", "gone.py")]),
        ("?? with space.txt\0?? -> arrow\0", [("??", "with space.txt"), ("??", "-> arrow")]),
        ("MM .gitignore\0", [("MM", ".gitignore")]),
    ],
)
def test_parse_status(output, entries):
    assert crpbot_git.parse_status(output) == entries


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://github.com/x/crpbot.git", "https://github.com/x/crpbot", True),
        ("https://github.com/x/crpbot/", "https://github.com/x/crpbot.git", True),
        ("/srv/up", "/srv/up", True),
        ("https://github.com/x/crpbot", "https://github.com/y/crpbot", False),
        ("git@github.com:x/crpbot.git", "https://github.com/x/crpbot.git", False),
    ],
)
def test_same_url(a, b, same):
    assert crpbot_git.same_url(a, b) is same


@pytest.mark.parametrize(
    ("dirty", "ahead", "reason"),
    [
        ([], 0, ""),
        (["a.py"], 0, "1 uncommitted change: a.py"),
        (["a.py", "notes.txt"], 0, "2 uncommitted changes: a.py, notes.txt"),
        ([], 3, "3 local commits not on origin/main"),
        (["a.py"], 1, "1 uncommitted change: a.py; 1 local commit not on origin/main"),
        (
            [f"f{i}" for i in range(12)],
            0,
            "12 uncommitted changes: " + ", ".join(f"f{i}" for i in range(10)) + " and 2 more",
        ),
    ],
)
def test_describe_work(dirty, ahead, reason):
    assert crpbot_git.describe_work(dirty, ahead, "origin/main") == reason


A, B = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("kwargs", "action", "current", "blocked", "reason_start"),
    [
        ({"head": A, "remote_head": A, "dirty": [], "ahead": 0}, "none", True, False, "up to date"),
        ({"head": A, "remote_head": A, "dirty": ["x"], "ahead": 0}, "none", True, False, "up to date; left as"),
        ({"head": A, "remote_head": B, "dirty": [], "ahead": 0}, "fast-forward", True, False, "fast-forwarded"),
        ({"head": A, "remote_head": B, "dirty": ["x"], "ahead": 0}, "none", False, True, "1 uncommitted change: x"),
        ({"head": A, "remote_head": B, "dirty": [], "ahead": 2}, "none", False, True, "2 local commits"),
        (
            {"head": A, "remote_head": B, "dirty": [], "ahead": 0, "overwritten": [".env"]},
            "none",
            False,
            True,
            "incoming commits would overwrite ignored files: .env",
        ),
    ],
)
def test_decide(kwargs, action, current, blocked, reason_start):
    plan = crpbot_git.decide(tracking="origin/main", **kwargs)
    assert (plan["action"], plan["current"], plan["blocked"]) == (action, current, blocked)
    assert plan["reason"].startswith(reason_start)


# --------------------------------------------------------------------------------------------
# End to end: one ansible-playbook over many prepared checkouts
# --------------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def upstream(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, {"app.py": "v1\n", ".gitignore": "*.pyc\n", "README.md": "crpbot\n"}, "c1")
    return path


def clone(up: Path, dest: Path) -> Path:
    git(up.parent, "clone", "-q", str(up), str(dest))
    return dest


def head(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", rev)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gitco")
    up = upstream(tmp / "up")
    up_gi = upstream(tmp / "up_gi")
    c = {}  # name -> checkout path prepared while upstream is at c1
    for name in (
        "behind",
        "dirty",
        "untracked",
        "local",
        "block",
        "person_gi",
        "branch",
        "detached",
        "check",
        "url",
        "ignored",
    ):
        c[name] = clone(up, tmp / name)
    c["block_gi"] = clone(up_gi, tmp / "block_gi")

    (c["dirty"] / "app.py").write_text("my edit\n")
    (c["untracked"] / "notes.txt").write_text("my notes\n")
    local_commit = commit(c["local"], {"local.txt": "mine\n"}, "local work")
    (c["block"] / ".gitignore").write_text("*.pyc\n" + BLOCK)
    (c["block_gi"] / ".gitignore").write_text("*.pyc\n" + BLOCK)
    (c["person_gi"] / ".gitignore").write_text("*.pyc\nmy.log\n" + BLOCK)
    git(c["branch"], "checkout", "-q", "-b", "feature")
    git(c["detached"], "checkout", "-q", "--detach")
    git(c["url"], "remote", "set-url", "origin", str(tmp / "elsewhere"))
    (c["ignored"] / ".git" / "info" / "exclude").write_text("config/\n")
    (c["ignored"] / "config").mkdir()
    (c["ignored"] / "config" / "settings.toml").write_text("my secret settings\n")

    c2 = commit(up, {"app.py": "v2\n", "config/settings.toml": "upstream default\n"}, "c2")
    c2_gi = commit(up_gi, {"app.py": "v2\n", ".gitignore": "*.pyc\n*.log\n"}, "c2")
    c["uptodate_dirty"] = clone(up, tmp / "uptodate_dirty")
    (c["uptodate_dirty"] / "app.py").write_text("my edit on a current checkout\n")
    notgit = tmp / "notgit"
    notgit.mkdir()
    (notgit / "precious.txt").write_text("do not touch\n")
    (tmp / "empty").mkdir()

    before = {name: head(path) for name, path in c.items()}
    check_tracking = head(c["check"], "origin/main")

    def task(name, dest, repo=up, check=False, diff=False, ignore_errors=False, **extra):
        entry = {
            "name": f"Run {name}",
            "crpbot_git_checkout": {"repo": str(repo), "dest": str(dest), **extra},
            "register": f"r_{name}",
        }
        if check:
            entry["check_mode"] = True
        if diff:
            entry["diff"] = True
        if ignore_errors:
            entry["ignore_errors"] = True
        return entry

    tasks = [
        task("check_clone", tmp / "check_fresh", check=True),
        task("fresh", tmp / "fresh", diff=True),
        task("fresh_again", tmp / "fresh"),
        task("empty", tmp / "empty"),
        task("check", c["check"], check=True),
        task("behind", c["behind"], diff=True),
        task("behind_again", c["behind"]),
        task("dirty", c["dirty"]),
        task("untracked", c["untracked"]),
        task("local", c["local"]),
        task("block", c["block"]),
        task("block_gi", c["block_gi"], repo=up_gi),
        task("person_gi", c["person_gi"]),
        task("branch", c["branch"]),
        task("detached", c["detached"]),
        task("url", c["url"]),
        task("ignored", c["ignored"]),
        task("uptodate_dirty", c["uptodate_dirty"]),
        task("notgit", notgit, ignore_errors=True),
    ]
    # GIT_VARS reach the module's git commands: no global or system git config, no prompt.
    play = run_module_play(tmp, tasks, name="Exercise crpbot_git_checkout", env=GIT_VARS)
    assert play.returncode == 0, play.output[-5000:]
    return {
        "r": {name.removeprefix("r_"): result for name, result in play.results.items()},
        "output": play.output,
        "tmp": tmp,
        "c": c,
        "before": before,
        "c2": c2,
        "c2_gi": c2_gi,
        "local_commit": local_commit,
        "check_tracking": check_tracking,
        "notgit": notgit,
    }


FIELDS = {
    "changed",
    "dest",
    "branch",
    "before",
    "after",
    "remote_head",
    "updated",
    "current",
    "blocked",
    "reason",
    "dirty_paths",
    "ahead",
    "action",
}


def test_fresh_clone(e2e):
    r = e2e["r"]["fresh"]
    assert FIELDS <= set(r)
    assert (r["changed"], r["updated"], r["current"], r["blocked"], r["action"]) == (True, True, True, False, "cloned")
    assert r["before"] is None and r["after"] == r["remote_head"] == e2e["c2"]
    assert r["diff"] == {"before": "", "after": e2e["c2"] + "\n"}
    fresh = e2e["tmp"] / "fresh"
    assert head(fresh) == e2e["c2"] and (fresh / "app.py").read_text() == "v2\n"
    empty = e2e["r"]["empty"]
    assert empty["action"] == "cloned" and head(e2e["tmp"] / "empty") == e2e["c2"]


def test_second_run_is_unchanged(e2e):
    r = e2e["r"]["fresh_again"]
    assert (r["changed"], r["updated"], r["current"], r["blocked"], r["action"]) == (False, False, True, False, "none")
    assert r["reason"] == "up to date" and r["before"] == r["after"] == e2e["c2"]
    assert "diff" not in r


def test_check_mode_clone_writes_nothing(e2e):
    r = e2e["r"]["check_clone"]
    assert (r["changed"], r["action"], r["after"]) == (True, "cloned", e2e["c2"])
    assert not (e2e["tmp"] / "check_fresh").exists()


def test_behind_is_fast_forwarded(e2e):
    r = e2e["r"]["behind"]
    path = e2e["c"]["behind"]
    assert (r["changed"], r["updated"], r["current"], r["blocked"], r["action"]) == (
        True,
        True,
        True,
        False,
        "fast-forwarded",
    )
    assert r["before"] == e2e["before"]["behind"] and r["after"] == r["remote_head"] == e2e["c2"]
    assert r["diff"] == {"before": e2e["before"]["behind"] + "\n", "after": e2e["c2"] + "\n"}
    assert head(path) == e2e["c2"] and (path / "app.py").read_text() == "v2\n"
    again = e2e["r"]["behind_again"]
    assert (again["changed"], again["updated"], again["current"]) == (False, False, True)


def assert_blocked(e2e, name):
    r = e2e["r"][name]
    assert (r["changed"], r["updated"], r["current"], r["blocked"], r["action"]) == (False, False, False, True, "none")
    assert head(e2e["c"][name]) == e2e["before"][name]
    assert r["warnings"] == [f"{e2e['c'][name]} was not updated: {r['reason']}"]
    return r


def test_modified_tracked_file_blocks(e2e):
    r = assert_blocked(e2e, "dirty")
    assert r["reason"] == "1 uncommitted change: app.py" and r["dirty_paths"] == ["app.py"] and r["ahead"] == 0
    assert r["remote_head"] == e2e["c2"]
    assert (e2e["c"]["dirty"] / "app.py").read_text() == "my edit\n"


def test_untracked_file_blocks(e2e):
    r = assert_blocked(e2e, "untracked")
    assert r["dirty_paths"] == ["notes.txt"]
    assert (e2e["c"]["untracked"] / "notes.txt").read_text() == "my notes\n"


def test_local_commit_blocks(e2e):
    r = assert_blocked(e2e, "local")
    assert r["ahead"] == 1 and r["dirty_paths"] == []
    assert r["reason"] == "1 local commit not on origin/main"
    assert head(e2e["c"]["local"]) == e2e["local_commit"]


def test_our_gitignore_block_does_not_block(e2e):
    r = e2e["r"]["block"]
    path = e2e["c"]["block"]
    assert (r["changed"], r["updated"], r["blocked"], r["dirty_paths"]) == (True, True, False, [])
    assert head(path) == e2e["c2"]
    assert (path / ".gitignore").read_text() == "*.pyc\n" + BLOCK  # upstream did not touch it: kept


def test_our_gitignore_block_and_upstream_gitignore_change(e2e):
    r = e2e["r"]["block_gi"]
    path = e2e["c"]["block_gi"]
    assert (r["changed"], r["updated"], r["blocked"], r["action"]) == (True, True, False, "fast-forwarded")
    assert head(path) == e2e["c2_gi"]
    assert (path / ".gitignore").read_text() == "*.pyc\n*.log\n"  # as upstream; amazon_q adds its block again
    assert git(path, "status", "--porcelain") == ""


def test_person_line_in_gitignore_blocks(e2e):
    r = assert_blocked(e2e, "person_gi")
    assert r["dirty_paths"] == [".gitignore"]
    assert (e2e["c"]["person_gi"] / ".gitignore").read_text() == "*.pyc\nmy.log\n" + BLOCK


def test_wrong_branch_blocks(e2e):
    r = assert_blocked(e2e, "branch")
    assert r["reason"] == "the checkout is on branch feature, not on main"
    assert git(e2e["c"]["branch"], "symbolic-ref", "--short", "HEAD") == "feature"
    detached = assert_blocked(e2e, "detached")
    assert "detached HEAD" in detached["reason"]


def test_other_remote_url_blocks(e2e):
    r = assert_blocked(e2e, "url")
    assert str(e2e["tmp"] / "elsewhere") in r["reason"] and str(e2e["tmp"] / "up") in r["reason"]
    assert r["remote_head"] is None


def test_ignored_file_the_update_would_overwrite_blocks(e2e):
    r = assert_blocked(e2e, "ignored")
    assert r["reason"] == "incoming commits would overwrite ignored files: config/settings.toml"
    assert (e2e["c"]["ignored"] / "config" / "settings.toml").read_text() == "my secret settings\n"


def test_current_checkout_with_changes_is_not_blocked(e2e):
    r = e2e["r"]["uptodate_dirty"]
    assert (r["changed"], r["current"], r["blocked"], r["dirty_paths"]) == (False, True, False, ["app.py"])
    assert r["reason"] == "up to date; left as they are: 1 uncommitted change: app.py"


def test_non_git_dest_fails_and_is_untouched(e2e):
    r = e2e["r"]["notgit"]
    assert r["failed"] is True
    assert str(e2e["notgit"]) in r["msg"] and "not a git checkout" in r["msg"]
    assert [p.name for p in e2e["notgit"].iterdir()] == ["precious.txt"]
    assert (e2e["notgit"] / "precious.txt").read_text() == "do not touch\n"


def test_check_mode_predicts_without_writing(e2e):
    r = e2e["r"]["check"]
    path = e2e["c"]["check"]
    assert (r["changed"], r["updated"], r["action"]) == (True, True, "fast-forwarded")
    assert r["reason"].startswith("would fast-forward from ")
    assert r["before"] == e2e["before"]["check"] and r["after"] == r["remote_head"] == e2e["c2"]
    assert head(path) == e2e["before"]["check"]
    assert head(path, "origin/main") == e2e["check_tracking"]
    assert (path / "app.py").read_text() == "v1\n"



# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""crpbot_repo on real sandbox hosts: clone, fast-forward, and never touch a person's work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

IDENT = ["-c", "user.name=upstream", "-c", "user.email=upstream@crpbot.invalid"]


def play(tmp_path: Path, roles: list[str]) -> str:
    path = tmp_path / "play.yml"
    path.write_text(
        "- name: Converge\n  hosts: crpbot\n  gather_facts: false\n  roles:\n"
        + "".join(f"    - role: {role}\n" for role in roles)
    )
    return str(path)


def converge(sandbox, playbook: str) -> subprocess.CompletedProcess[str]:
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), playbook])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def recap(proc) -> str:
    return proc.stdout[proc.stdout.index("PLAY RECAP"):]


def push_upstream(sandbox, path: str, content: str, message: str) -> str:
    """Commit a change to the fixture repo and push it to the git daemon's bare repo; return the sha."""
    root = Path(sandbox["state"]["git"]["root"])
    work = root / "work"
    target = work / path
    target.write_text(content)
    subprocess.run(["git", "-C", str(work), "add", path], check=True)
    subprocess.run(["git", "-C", str(work), *IDENT, "commit", "-q", "-m", message], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(root / "crpbot.git"), "main"], check=True)
    return subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def on_host(sandbox, host: str, command: str) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True).stdout


def head(sandbox, host: str) -> str:
    return on_host(sandbox, host, "git -C crpbot rev-parse HEAD").strip()


def test_clone_then_nothing_to_do(sandbox, tmp_path):
    playbook = play(tmp_path, ["crpbot_repo"])
    first = converge(sandbox, playbook)
    assert recap(first).count("changed=1") == 2
    assert on_host(sandbox, "sandbox-qc", "stat -c %U crpbot/uv.lock").strip() == "numan"
    assert on_host(sandbox, "sandbox-builder", "stat -c %U crpbot/uv.lock").strip() == "root"
    second = converge(sandbox, playbook)
    assert recap(second).count("changed=0") == 2


def test_clean_checkouts_fast_forward(sandbox, tmp_path):
    sha = push_upstream(sandbox, "NEWS.md", "release 1\n", "news")
    proc = converge(sandbox, play(tmp_path, ["crpbot_repo"]))
    assert recap(proc).count("changed=1") == 2
    assert head(sandbox, "sandbox-qc") == head(sandbox, "sandbox-builder") == sha


def test_a_persons_work_is_never_touched(sandbox, tmp_path):
    # QC: an uncommitted edit. Builder: a local commit. Then upstream moves on.
    on_host(sandbox, "sandbox-qc", "echo 'my notes' >> crpbot/README.md")
    on_host(sandbox, "sandbox-builder",
            "cd crpbot && echo wip > wip.txt && git add wip.txt && "
            "git -c user.name=r -c user.email=r@x commit -qm 'local work'")
    builder_head = head(sandbox, "sandbox-builder")
    qc_head = head(sandbox, "sandbox-qc")
    upstream = push_upstream(sandbox, "NEWS.md", "release 2\n", "news 2")

    proc = converge(sandbox, play(tmp_path, ["crpbot_repo"]))
    out = proc.stdout
    assert "NOT UPDATED: host sandbox-qc" in out and "uncommitted change" in out and "README.md" in out
    assert "NOT UPDATED: host sandbox-builder" in out and "local commit" in out
    assert recap(proc).count("changed=0") == 2
    assert on_host(sandbox, "sandbox-qc", "tail -1 crpbot/README.md").strip() == "my notes"
    assert head(sandbox, "sandbox-qc") == qc_head != upstream
    assert head(sandbox, "sandbox-builder") == builder_head
    assert on_host(sandbox, "sandbox-builder", "git -C crpbot log -1 --format=%s").strip() == "local work"

    # Once the person has dealt with it, the next run catches up.
    on_host(sandbox, "sandbox-qc", "git -C crpbot checkout -- README.md")
    converge(sandbox, play(tmp_path, ["crpbot_repo"]))
    assert head(sandbox, "sandbox-qc") == upstream


def test_our_gitignore_block_does_not_block_updates(sandbox, tmp_path):
    playbook = play(tmp_path, ["crpbot_repo", "amazon_q"])
    on_host(sandbox, "sandbox-builder", "cd crpbot && git reset -q --hard HEAD~1")  # drop the local commit
    converge(sandbox, playbook)
    # Upstream changes .gitignore itself: our block is put back by amazon_q after the fast-forward.
    gitignore = (Path(sandbox["state"]["git"]["root"]) / "work" / ".gitignore").read_text() + "notebooks/\n"
    upstream = push_upstream(sandbox, ".gitignore", gitignore, "ignore notebooks")
    converge(sandbox, playbook)
    for host in ("sandbox-qc", "sandbox-builder"):
        assert head(sandbox, host) == upstream
        text = on_host(sandbox, host, "cat crpbot/.gitignore")
        assert "notebooks/" in text and "# BEGIN crpbot-ansible amazon_q" in text
    again = converge(sandbox, playbook)
    assert recap(again).count("changed=0") == 2

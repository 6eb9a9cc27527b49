#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_git_checkout
short_description: Clone or fast-forward a git checkout without ever losing a person's work
description:
  - >-
    Keeps the git checkout at O(dest) on branch O(branch) of O(repo). A missing checkout is cloned;
    an existing one is fast-forwarded to the remote branch only when nothing a person did there
    would be lost. Otherwise it is left exactly as it is, the result says why (RV(blocked), RV(reason),
    RV(dirty_paths), RV(ahead)) and a warning repeats the reason. The module never resets, stashes,
    checks out another branch, merges or rebases a person's work.
  - >-
    It runs on the target host as the connecting user, needs only the Python standard library and
    the C(git) command line, and calls git with argument lists, never through a shell, with
    C(GIT_TERMINAL_PROMPT=0) so a missing credential fails instead of waiting for a password.
  - >-
    B(A missing or empty dest.) C(git clone --branch BRANCH REPO DEST); RV(action=cloned).
    In check mode the branch is looked up with C(git ls-remote) and nothing is written.
  - >-
    B(A dest with files but no .git.) The module fails naming O(dest) and touches nothing.
  - >-
    B(A dest that is a checkout.) The checks run in this order; the first that applies decides.
    (1) The URL of O(remote) must be O(repo) (a trailing C(/) or C(.git) is ignored); a checkout of
    another repository, or one without O(remote), is blocked. (2) The checkout must be on branch
    O(branch); another branch or a detached HEAD is blocked. (3) The remote branch is fetched with
    C(git fetch --quiet REMOTE +refs/heads/BRANCH:refs/remotes/REMOTE/BRANCH) (in check mode
    C(git ls-remote REMOTE refs/heads/BRANCH) is asked instead, and nothing is written, not even the
    remote-tracking ref). (4) If HEAD already is the remote head the checkout is current and nothing
    happens, whatever else the work tree holds. (5) Otherwise the update is blocked by any
    uncommitted change (C(git status --porcelain=v1 --untracked-files=all): modified, staged,
    deleted and untracked files alike), by any local commit not on the remote branch
    (C(git rev-list --count REMOTE/BRANCH..HEAD)), or by an ignored file (such as C(.env)) at a path
    the incoming commits add, which git would silently overwrite. (6) Otherwise the checkout is
    fast-forwarded with C(git merge --ff-only REMOTE/BRANCH); RV(action=fast-forwarded). If git
    still refuses, the module fails with git's message; a fast-forward-only merge never overwrites
    anything, so nothing is lost.
  - >-
    B(Our own .gitignore edits.) Other roles of this project (amazon_q) add blocks to the checkout's
    top-level C(.gitignore) between C(# BEGIN <marker> ...) and C(# END <marker> ...) lines (see
    O(managed_gitignore_marker)). A C(.gitignore) that is modified (not staged) or untracked, and
    whose content with every such block removed equals C(git show HEAD:.gitignore) with the same
    blocks removed (an empty file when HEAD has none), is this project's edit, not the person's, and
    does not block the update. If the incoming commits change C(.gitignore) too, the module first
    puts it back as committed (C(git checkout -- .gitignore), or removes it when it is untracked and
    holds only our blocks) so the fast-forward can proceed; this is safe because the file differed
    only by our blocks, which the amazon_q role writes again later in the same run. A person's own
    line anywhere outside the blocks makes the whole file the person's change.
  - >-
    B(Check mode) predicts honestly: the remote head is read with C(git ls-remote) (this contacts
    the remote), local commits are counted against it when its commit is already known locally and
    otherwise against the last fetched C(REMOTE/BRANCH), and the result describes what a real run
    would do (RV(changed), RV(updated), RV(action) and RV(after) as predicted); the work tree, the
    index and the refs are left untouched.
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  repo:
    description:
      - URL of the repository, as given to C(git clone) and as the URL of O(remote) in an existing
        checkout must be.
    type: str
    required: true
  dest:
    description:
      - Absolute path of the checkout. Its parent directories are created when it is cloned.
    type: path
    required: true
  branch:
    description:
      - The branch to clone and to keep up to date. An existing checkout on another branch is left
        alone.
    type: str
    default: main
  remote:
    description:
      - Name of the remote of an existing checkout that must point at O(repo) and is fetched from.
      - A fresh clone always names it C(origin), git's default.
    type: str
    default: origin
  managed_gitignore_marker:
    description:
      - Marker of this project's own blocks in C(.gitignore), C(# BEGIN <marker>[ NAME]) to
        C(# END <marker>[ NAME]) with the same NAME, as the crpbot_gitignore module writes them.
    type: str
    default: crpbot-ansible
notes:
  - Supports check mode (see above) and diff mode (the commit before and after).
  - Only the top-level C(.gitignore) is recognised as this project's edit; any other change counts
    as the person's.
  - O(dest) must be owned by the user the module runs as, or git refuses it as a dubious ownership
    and the module fails with git's message.
seealso:
  - module: ansible.builtin.git
    description: The general git module; its O(ansible.builtin.git#module:force=true) discards local changes.
"""

EXAMPLES = r"""
- name: Keep the crpbot checkout up to date
  crpbot_git_checkout:
    repo: https://github.com/example/crpbot.git
    dest: /home/numan/crpbot
  register: crpbot_repo_checkout

- name: Say why the checkout was left alone
  ansible.builtin.debug:
    msg: >-
      {{ crpbot_repo_checkout.dest }} was not updated ({{ crpbot_repo_checkout.reason }});
      commit or push your work and run the playbook again.
  when: crpbot_repo_checkout.blocked

- name: Restart the bot only when its code moved
  ansible.builtin.systemd_service:
    name: crpbot
    state: restarted
  when: crpbot_repo_checkout.updated and not ansible_check_mode

- name: Follow a release branch of a fork, fetched from the remote called upstream
  crpbot_git_checkout:
    repo: git@github.com:numan/crpbot.git
    dest: /root/crpbot
    branch: release
    remote: upstream
"""

RETURN = r"""
dest:
  description: The path of the checkout.
  returned: always
  type: str
  sample: /home/numan/crpbot
branch:
  description: The branch asked for (O(branch)); RV(reason) names the branch a blocked checkout is on.
  returned: always
  type: str
  sample: main
before:
  description: The commit of HEAD before the run; null when O(dest) was cloned.
  returned: always
  type: str
  sample: 3f1c2a9d0b7e4c5a8e6f1d2b3c4a5e6f7a8b9c0d
after:
  description:
    - The commit of HEAD after the run (in check mode, the commit a real run would leave).
    - Equal to RV(before) when nothing moved.
  returned: always
  type: str
  sample: 9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b
remote_head:
  description:
    - The commit of the remote branch (after the fetch; in check mode, from C(git ls-remote)).
    - Null when the checkout was blocked before the remote was asked (another repository or branch).
  returned: always
  type: str
  sample: 9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b
updated:
  description: True when the work tree was cloned or fast-forwarded (in check mode, would be).
  returned: always
  type: bool
  sample: true
current:
  description: True when the checkout is now (in check mode, would be) at the remote head.
  returned: always
  type: bool
  sample: true
blocked:
  description:
    - True when the checkout is behind the remote (or on another repository or branch) and the
      person's work stopped the update; a warning then repeats RV(reason).
    - A checkout already at the remote head is never blocked, even with uncommitted changes.
  returned: always
  type: bool
  sample: false
reason:
  description:
    - Why the module did what it did, in words. Paths only (at most ten listed), never file content.
  returned: always
  type: str
  sample: "2 uncommitted changes: apps/runtime/main.py, notes.txt; 1 local commit not on origin/main"
dirty_paths:
  description:
    - The paths with uncommitted changes, as C(git status) shows them relative to O(dest) (at most
      50), without this project's own C(.gitignore) edit. Empty when the checkout was not inspected
      (cloned, or another repository or branch).
  returned: always
  type: list
  elements: str
  sample: [apps/runtime/main.py, notes.txt]
ahead:
  description: The number of local commits not on the remote branch (0 when not inspected).
  returned: always
  type: int
  sample: 0
action:
  description: What was done (in check mode, would be done).
  returned: always
  type: str
  choices: [cloned, fast-forwarded, none]
  sample: fast-forwarded
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_git import (
    LISTED_IN_RESULT,
    decide,
    gitignore_is_ours,
    parse_null_list,
    parse_status,
    same_url,
)

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANG": "C"}


class ModuleFailure(Exception):
    """A failure whose message names the path, the command and git's own words."""


class Git:
    """The git CLI in one directory; argv lists only."""

    def __init__(self, module, cwd=None):
        self.module = module
        self.cwd = cwd

    def run(self, *args, check=True):
        argv = ["git", *args]
        rc, out, err = self.module.run_command(argv, cwd=self.cwd, environ_update=GIT_ENV)
        if check and rc != 0:
            where = f" in {self.cwd}" if self.cwd else ""
            raise ModuleFailure(f"{' '.join(argv)} failed{where}: {(err or out).strip()}")
        return rc, out

    def out(self, *args):
        return self.run(*args)[1]

    def ok(self, *args):
        return self.run(*args, check=False)[0] == 0

    def sha(self, rev):
        rc, out = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return out.strip() if rc == 0 else None

    def ls_remote(self, where, branch):
        out = self.out("ls-remote", "--", where, f"refs/heads/{branch}")
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        raise ModuleFailure(f"the remote {where} has no branch {branch}")


def result_for(dest, branch, **fields):
    result = dict(
        changed=False,
        dest=dest,
        branch=branch,
        before=None,
        after=None,
        remote_head=None,
        updated=False,
        current=False,
        blocked=False,
        reason="",
        dirty_paths=[],
        ahead=0,
        action="none",
    )
    result.update(fields)
    return result


def clone(module, params):
    dest, branch, repo = params["dest"], params["branch"], params["repo"]
    if module.check_mode:
        head = Git(module).ls_remote(repo, branch)
        reason = f"would clone {repo} branch {branch}"
    else:
        Git(module).run("clone", "--quiet", "--branch", branch, "--", repo, dest)
        head = Git(module, dest).sha("HEAD")
        reason = f"cloned {repo} branch {branch}"
    return result_for(
        dest,
        branch,
        changed=True,
        after=head,
        remote_head=head,
        updated=True,
        current=True,
        reason=reason,
        action="cloned",
    )


def person_changes(git, dest, entries, marker):
    """(paths the person changed, whether .gitignore holds only our edit, and how it is tracked)."""
    dirty = []
    ours = None
    for xy, path in entries:
        if path == ".gitignore" and xy in (" M", "??"):
            try:
                with open(os.path.join(dest, ".gitignore"), "rb") as handle:
                    current = handle.read().decode("utf-8", "surrogateescape")
            except OSError:
                current = None
            committed = "" if xy == "??" else git.out("show", "HEAD:.gitignore")
            if current is not None and gitignore_is_ours(current, committed, marker):
                ours = "untracked" if xy == "??" else "modified"
                continue
        dirty.append(path)
    return dirty, ours


def ignored_in_the_way(git, dest, base):
    """Paths the incoming commits add that exist in the work tree (ignored files, which git overwrites)."""
    added = parse_null_list(git.out("diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", "HEAD", base))
    found = []
    for path in added:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            here = os.path.join(dest, *parts[:depth])
            if os.path.lexists(here) and (depth == len(parts) or not os.path.isdir(here)):
                found.append("/".join(parts[:depth]))
                break
    return found


def update(module, params):
    dest, branch, remote, repo = params["dest"], params["branch"], params["remote"], params["repo"]
    git = Git(module, dest)
    head = git.sha("HEAD")
    if head is None:
        raise ModuleFailure(f"{dest} is a git checkout without any commit; clone it again or commit first")
    base_fields = dict(before=head, after=head)

    rc, url = git.run("remote", "get-url", "--", remote, check=False)
    url = url.strip()
    if rc != 0:
        reason = f"the checkout has no remote {remote}; expected {remote} to be {repo}"
        return result_for(dest, branch, blocked=True, reason=reason, **base_fields)
    if not same_url(url, repo):
        reason = f"remote {remote} is {url}, not {repo}"
        return result_for(dest, branch, blocked=True, reason=reason, **base_fields)
    rc, on = git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    on = on.strip()
    if rc != 0 or on != branch:
        where = f"on branch {on}" if rc == 0 else f"on a detached HEAD at {head[:12]}"
        reason = f"the checkout is {where}, not on {branch}"
        return result_for(dest, branch, blocked=True, reason=reason, **base_fields)

    tracking = f"refs/remotes/{remote}/{branch}"
    if module.check_mode:
        remote_head = git.ls_remote(remote, branch)
        base = remote_head if git.sha(remote_head) else (tracking if git.sha(tracking) else None)
    else:
        git.run("fetch", "--quiet", "--", remote, f"+refs/heads/{branch}:{tracking}")
        remote_head = git.sha(tracking)
        base = tracking

    status = git.out("--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all")
    dirty, gitignore_ours = person_changes(git, dest, parse_status(status), params["managed_gitignore_marker"])
    ahead = int(git.out("rev-list", "--count", f"{base}..HEAD").strip()) if base else 0
    overwritten = ignored_in_the_way(git, dest, base) if base and head != remote_head else []
    plan = decide(
        head=head,
        remote_head=remote_head,
        dirty=dirty,
        ahead=ahead,
        tracking=f"{remote}/{branch}",
        overwritten=overwritten,
    )
    fields = dict(
        base_fields,
        remote_head=remote_head,
        current=plan["current"],
        blocked=plan["blocked"],
        reason=plan["reason"],
        dirty_paths=dirty[:LISTED_IN_RESULT],
        ahead=ahead,
    )
    if plan["action"] != "fast-forward":
        return result_for(dest, branch, **fields)

    if not module.check_mode:
        incoming = parse_null_list(git.out("diff", "--name-only", "-z", "HEAD", base))
        if gitignore_ours and ".gitignore" in incoming:
            if gitignore_ours == "modified":
                git.run("checkout", "--", ".gitignore")
            else:
                os.remove(os.path.join(dest, ".gitignore"))
        git.run("merge", "--ff-only", "--quiet", tracking)
        fields["after"] = git.sha("HEAD")
    else:
        fields["after"] = remote_head
        fields["reason"] = f"would fast-forward from {head[:12]} to {remote_head[:12]}"
    return result_for(dest, branch, changed=True, updated=True, action="fast-forwarded", **fields)


def run(module):
    params = module.params
    dest = params["dest"]
    if not os.path.isabs(dest):
        raise ModuleFailure(f"dest must be an absolute path, got {dest}")
    if not os.path.lexists(dest) or (os.path.isdir(dest) and not os.listdir(dest)):
        return clone(module, params)
    if not os.path.isdir(dest):
        raise ModuleFailure(f"{dest} exists and is not a directory; move it away or choose another dest")
    if not os.path.lexists(os.path.join(dest, ".git")):
        raise ModuleFailure(
            f"{dest} holds files that are not a git checkout (no .git); nothing was touched."
            " Move them away or choose another dest"
        )
    return update(module, params)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repo=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            branch=dict(type="str", default="main"),
            remote=dict(type="str", default="origin"),
            managed_gitignore_marker=dict(type="str", default="crpbot-ansible"),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), dest=module.params["dest"])
    if result["blocked"]:
        module.warn(f"{result['dest']} was not updated: {result['reason']}")
    if module._diff and result["before"] != result["after"]:
        result["diff"] = dict(
            before="" if result["before"] is None else result["before"] + "\n",
            after="" if result["after"] is None else result["after"] + "\n",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

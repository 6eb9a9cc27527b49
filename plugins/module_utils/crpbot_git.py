# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the crpbot_git_checkout module: no git, no files, no Ansible.

The module gathers facts with the git CLI; these functions read git's output and decide what
may be done to a checkout without losing a person's work.
"""

from __future__ import annotations

LISTED_IN_REASON = 10
LISTED_IN_RESULT = 50


def _marker_suffix(line: str, word: str, marker: str) -> str | None:
    """For ``# BEGIN <marker> amazon_q`` return ``amazon_q`` (or ``""``); None if not a marker line."""
    head = f"# {word} {marker}"
    text = line.rstrip("\r\n")
    if text == head:
        return ""
    if text.startswith(head + " "):
        return text[len(head) + 1 :]
    return None


def strip_managed_blocks(text: str, marker: str) -> str:
    """Remove every managed block: a ``# BEGIN <marker>[ NAME]`` line, the lines after it and the
    matching ``# END <marker>[ NAME]`` line (same NAME).  A BEGIN line without its END is kept as
    it is, with the lines after it (it is not a block this project wrote, so it stays the
    person's)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    index = 0
    while index < len(lines):
        suffix = _marker_suffix(lines[index], "BEGIN", marker)
        if suffix is not None:
            for end in range(index + 1, len(lines)):
                if _marker_suffix(lines[end], "END", marker) == suffix:
                    index = end + 1
                    break
            else:
                out.append(lines[index])
                index += 1
            continue
        out.append(lines[index])
        index += 1
    return "".join(out)


def gitignore_is_ours(current: str, committed: str, marker: str) -> bool:
    """True when ``current`` (the work tree's .gitignore) differs from ``committed`` (HEAD's, ``""``
    when HEAD has none) only by managed blocks.  ansible.builtin.blockinfile adds a newline to a
    last line that has none before appending its block, so that one newline is ours too."""
    mine = strip_managed_blocks(current, marker)
    theirs = strip_managed_blocks(committed, marker)
    if mine == theirs:
        return True
    return bool(theirs) and not theirs.endswith("\n") and mine == theirs + "\n"


def parse_status(output: str) -> list[tuple[str, str]]:
    """Parse ``git status --porcelain=v1 -z`` into ``(XY, path)`` pairs.  A rename or copy
    (``R``/``C``) is one entry with its new path; the original path that follows it is skipped."""
    entries: list[tuple[str, str]] = []
    fields = output.split("\0")
    index = 0
    while index < len(fields):
        field = fields[index]
        index += 1
        if len(field) < 4:
            continue
        xy, path = field[:2], field[3:]
        entries.append((xy, path))
        if "R" in xy or "C" in xy:
            index += 1
    return entries


def parse_null_list(output: str) -> list[str]:
    """Split the output of a ``-z`` name listing (``git diff --name-only -z``)."""
    return [name for name in output.split("\0") if name]


def same_url(a: str, b: str) -> bool:
    """URLs equal apart from a trailing slash or ``.git`` suffix."""

    def norm(url: str) -> str:
        url = url.strip().rstrip("/")
        return url[: -len(".git")] if url.endswith(".git") else url

    return norm(a) == norm(b)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def list_paths(paths: list[str], limit: int = LISTED_IN_REASON) -> str:
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


def describe_work(dirty: list[str], ahead: int, tracking: str) -> str:
    """The person's work in words: ``2 uncommitted changes: a.py, notes.txt; 1 local commit not on
    origin/main`` (paths only, at most ten listed)."""
    parts = []
    if dirty:
        parts.append(f"{_plural(len(dirty), 'uncommitted change')}: {list_paths(dirty)}")
    if ahead:
        parts.append(f"{_plural(ahead, 'local commit')} not on {tracking}")
    return "; ".join(parts)


def decide(
    *,
    head: str,
    remote_head: str,
    dirty: list[str],
    ahead: int,
    tracking: str,
    overwritten: list[str] | None = None,
) -> dict:
    """What to do with a checkout on the right branch and remote.

    Returns ``{"action": "none" | "fast-forward", "current": bool, "blocked": bool, "reason": str}``.
    A checkout at the remote head is current whatever the work tree holds (nothing to update, so
    nothing is blocked; the reason still names the person's changes).  Otherwise uncommitted
    changes, local commits, or ignored files the incoming commits would overwrite block the
    update; with none of those the checkout can be fast-forwarded.
    """
    work = describe_work(dirty, ahead, tracking)
    if head == remote_head:
        reason = "up to date" if not work else f"up to date; left as they are: {work}"
        return {"action": "none", "current": True, "blocked": False, "reason": reason}
    if overwritten:
        clobbered = f"incoming commits would overwrite ignored files: {list_paths(overwritten)}"
        work = f"{work}; {clobbered}" if work else clobbered
    if work:
        return {"action": "none", "current": False, "blocked": True, "reason": work}
    return {
        "action": "fast-forward",
        "current": True,
        "blocked": False,
        "reason": f"fast-forwarded from {head[:12]} to {remote_head[:12]}",
    }


def with_block(text: str, block: str, entries: list[str], marker: str = "crpbot-ansible") -> tuple[str, list[str]]:
    """(``text`` (a .gitignore) with its managed block ``block`` holding the ``entries`` the person has
    not already written outside it, in order, each once: replaced in place, appended at the end when
    new (after a newline the last line lacked), removed when no entry is missing. Unchanged lines give
    ``text`` back exactly. Lines outside the block are never touched; the block's entries)."""
    begin, end = f"# BEGIN {marker} {block}", f"# END {marker} {block}"
    lines = text.splitlines()
    # The block is an END and the nearest BEGIN before it; a BEGIN without its END is not a block of
    # ours: it stays the person's.
    start = stop = None
    for index, line in enumerate(lines):
        if line == begin:
            start = index
        elif line == end and start is not None:
            stop = index
            break
    if stop is None:
        start = None
    outside = lines if start is None else lines[:start] + lines[stop + 1:]
    written = {line.strip() for line in outside}
    missing = [entry for entry in dict.fromkeys(entries) if entry not in written]
    new = list(lines)
    if missing:
        managed = [begin, *missing, end]
        if start is None:
            new += managed
        else:
            new[start:stop + 1] = managed
    elif start is not None:
        del new[start:stop + 1]
    if new == lines:
        return text, missing
    return ("\n".join(new) + "\n" if new else ""), missing

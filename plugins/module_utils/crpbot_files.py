# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing files that hold secrets, and the managed .gitignore blocks (stdlib only; runs on the target's python3).

The DESIGN contract for files with secrets: written atomically (a temporary file in the same
directory, created ``0600``, fsync, chown, chmod, rename), owned by the host user, with the
previous version kept as a ``0600`` backup when the content changes.  Backups are bounded: only
the newest ``keep`` of ``<path>.<YYYYmmddTHHMMSS>[-n].bak`` stay (each one holds every secret of
the file).  Every message produced here names paths, owners and modes only, never file content.

The managed blocks of a checkout's ``.gitignore`` (``plan_gitignore``/``apply_gitignore``, on
``crpbot_git.with_block``) are kept here too: the crpbot_gitignore module and the ``gitignore`` option
of every module that writes a file git must never see (crpbot_amazon_q, crpbot_secret_file,
crpbot_env_file) run this one code path, in the same round trip as their write.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import tempfile
import time

from ansible.module_utils.crpbot_git import with_block


class ModuleFailure(Exception):
    """A failure whose message is safe to show (names paths, options and keys only)."""


def parse_mode(mode):
    if isinstance(mode, bool):
        mode = None
    elif isinstance(mode, int):
        pass
    elif isinstance(mode, str) and re.fullmatch(r"(?:0o)?[0-7]{3,4}", mode):
        mode = int(mode.removeprefix("0o"), 8)
    else:
        mode = None
    if mode is None or not 0 <= mode <= 0o7777:
        raise ModuleFailure('mode must be an octal string such as "0600" (quoted in YAML) or an integer')
    return mode


def resolve_uid(owner):
    if owner is None:
        return None
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ModuleFailure(f"owner {owner} does not exist on this host") from None


def resolve_gid(group):
    if group is None:
        return None
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ModuleFailure(f"group {group} does not exist on this host") from None


def read_existing(path):
    """Return (bytes, stat) of the existing file, or (None, None) when it does not exist."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ModuleFailure(
            f"the directory {parent} of {path} does not exist; create it first (this module does not manage it)"
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        raise ModuleFailure(f"{path} is a symbolic link; point path at the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise ModuleFailure(f"{path} exists but is not a regular file")
    try:
        with open(path, "rb") as handle:
            return handle.read(), st
    except OSError as exc:
        raise ModuleFailure(f"could not read {path}: {exc.strerror}") from None


_BACKUP_SUFFIX = re.compile(r"\.(\d{8}T\d{6})(?:-(\d+))?\.bak\Z")


def list_backups(path):
    """The backups of ``path`` this module wrote (``<path>.<YYYYmmddTHHMMSS>[-n].bak``), oldest first."""
    directory, name = os.path.split(path)
    found = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    for entry in entries:
        if not entry.startswith(name + "."):
            continue
        match = _BACKUP_SUFFIX.fullmatch(entry[len(name):])
        if match and not os.path.islink(os.path.join(directory, entry)):
            found.append(((match.group(1), int(match.group(2) or 0)), os.path.join(directory, entry)))
    return [full for _order, full in sorted(found)]


def stale_backups(path, keep, adding):
    """The oldest backups to remove so that at most ``keep`` remain, counting one about to be added."""
    if keep is None:
        return []
    backups = list_backups(path)
    room = max(0, keep - (1 if adding else 0))
    return backups[: max(0, len(backups) - room)]


def plan_write(path, old_bytes, st, new_bytes, mode, uid, gid, backup=False, keep=None):
    """What writing ``new_bytes`` to ``path`` would change, computed without writing anything.

    ``old_bytes``/``st`` come from :func:`read_existing`.  An owner or group not given (None)
    is kept from the existing file.  The content changes when the file is missing or its bytes
    differ; the attributes change when an existing file's mode, owner or group differ.  With
    ``backup`` a changed file's previous content is kept as a backup; with ``keep`` the oldest
    backups beyond that many are removed (``stale_backups``), which is a change of its own.
    """
    if st is not None:
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
    content_changed = old_bytes is None or new_bytes != old_bytes
    attrs_changed = st is not None and (stat.S_IMODE(st.st_mode) != mode or st.st_uid != uid or st.st_gid != gid)
    adding_backup = bool(backup) and content_changed and old_bytes is not None
    return {
        "path": path,
        "old_bytes": old_bytes,
        "old_stat": st,
        "new_bytes": new_bytes,
        "content_changed": content_changed,
        "attrs_changed": attrs_changed,
        "mode": mode,
        "uid": uid,
        "gid": gid,
        "backup": adding_backup,
        "stale_backups": stale_backups(path, keep, adding_backup),
    }


def plan_changed(plan):
    """Whether carrying out the plan changes anything on the host."""
    return plan["content_changed"] or plan["attrs_changed"] or bool(plan["stale_backups"])


def ensure_directory(path, mode, uid=None, check_mode=False):
    """Make ``path`` a directory with ``mode`` and, when given, owner ``uid`` (missing parents are made the
    same way), as ansible.builtin.file with state=directory does; True when anything changed (in check mode:
    would change)."""
    if os.path.isdir(path):
        st = os.stat(path)
        wrong = stat.S_IMODE(st.st_mode) != mode or (uid is not None and st.st_uid != uid)
        if wrong and not check_mode:
            if uid is not None:
                os.chown(path, uid, -1)
            os.chmod(path, mode)
        return wrong
    if os.path.lexists(path):
        raise ModuleFailure(f"{path} exists and is not a directory; move it away")
    if not check_mode:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            ensure_directory(parent, mode, uid)
        os.mkdir(path, mode)
        if uid is not None:
            os.chown(path, uid, -1)
        os.chmod(path, mode)
    return True


def fsync_dir(directory):
    """fsync a directory, so a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_backup(path, data, st):
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
    # After the oldest backups of this second were removed, a free lower number must not be reused:
    # the number orders the backups of one second.
    taken = [int(m.group(2) or 0) for m in (_BACKUP_SUFFIX.fullmatch(b[len(path):]) for b in list_backups(path))
             if m and m.group(1) == stamp]
    number = max(taken) + 1 if taken else 0
    while True:
        candidate = f"{path}.{stamp}.bak" if number == 0 else f"{path}.{stamp}-{number}.bak"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            break
        except FileExistsError:
            number += 1
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), st.st_uid, st.st_gid)
            os.fchmod(handle.fileno(), 0o600)
    except BaseException:
        os.unlink(candidate)
        raise
    return candidate


def write_atomically(path, data, mode, uid, gid):
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if uid is not None or gid is not None:
                os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(handle.fileno(), mode)  # after chown, which may clear set-id bits
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def fix_attributes(path, mode, uid, gid, st):
    if st.st_uid != uid or st.st_gid != gid:
        os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)


def apply(plan):
    """Carry out a plan of :func:`plan_write`; return the backup path (or None).

    The new file is in place before the oldest backups are removed, so a failure never leaves
    fewer copies than before.
    """
    path = plan["path"]
    backup_file = None
    try:
        if plan["content_changed"]:
            if plan["backup"]:
                backup_file = write_backup(path, plan["old_bytes"], plan["old_stat"])
            write_atomically(path, plan["new_bytes"], plan["mode"], plan["uid"], plan["gid"])
        elif plan["attrs_changed"]:
            fix_attributes(path, plan["mode"], plan["uid"], plan["gid"], plan["old_stat"])
        for stale in plan["stale_backups"]:
            os.unlink(stale)
    except OSError as exc:
        raise ModuleFailure(f"could not write {exc.filename or path}: {exc.strerror}") from None
    return backup_file


# The ``gitignore`` option of the modules that write a file git must never see, and the crpbot_gitignore
# module's own options (plugins/doc_fragments/crpbot_gitignore.py documents them).
GITIGNORE_OPTIONS = {
    "project_dir": {"type": "path", "required": True},
    "block": {"type": "str", "required": True},
    "entries": {"type": "list", "elements": "str", "default": []},
}


def plan_gitignore(project_dir, block, entries):
    """What keeping the managed block ``block`` with ``entries`` in ``<project_dir>/.gitignore`` changes
    (``crpbot_git.with_block``), computed without writing anything."""
    path = os.path.join(project_dir, ".gitignore")
    if not os.path.isdir(project_dir):
        raise ModuleFailure(f"the project dir {project_dir} does not exist; check out the crpbot repo there first "
                            "(the crpbot_repo role does) or fix project_dir in the inventory")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        st = os.stat(path)
    except FileNotFoundError:
        raw, st = None, None
    except OSError as exc:
        raise ModuleFailure(f"could not read {path}: {exc.strerror}") from None
    try:
        text = "" if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleFailure(f"{path} is not UTF-8 text; fix it by hand, nothing was changed") from None
    new, missing = with_block(text, block, entries)
    return {"path": path, "before": text, "after": new, "missing": missing, "changed": new != text, "stat": st}


def apply_gitignore(plan):
    """Write a plan of :func:`plan_gitignore` when it changes the file: atomically, a new file ``0644``, an
    existing one keeping its mode (and, run as root, its owner and group)."""
    if not plan["changed"]:
        return
    st = plan["stat"]
    keep_owner = st is not None and os.geteuid() == 0
    try:
        write_atomically(plan["path"], plan["after"].encode("utf-8"), stat.S_IMODE(st.st_mode) if st else 0o644,
                         st.st_uid if keep_owner else None, st.st_gid if keep_owner else None)
    except OSError as exc:
        raise ModuleFailure(f"could not write {exc.filename or plan['path']}: {exc.strerror}") from None


def gitignore_result(plan):
    """The result of a plan of :func:`plan_gitignore` (paths and entries only: a .gitignore holds no secret)."""
    return {"path": plan["path"], "changed": plan["changed"], "missing": plan["missing"]}


def gitignore_diff(plan):
    return {"before_header": plan["path"], "after_header": plan["path"], "before": plan["before"],
            "after": plan["after"]}

# -*- coding: utf-8 -*-
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing one member of a Python wheel (a zip archive) as a file, atomically (stdlib only).

Shared by the crpbot_wheel_script module and the crpbot_uv module (which installs the uv binary
from the uv wheel). The member's SHA-256 (the zip's CRC checked while reading) decides whether
anything is written; the write goes to a temp file beside the destination, is checked against that
SHA-256, then renamed over it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
import zlib


CHUNK = 1024 * 1024


class ModuleFailure(Exception):
    """A failure whose message names the wheel, the member or the path."""


def parse_mode(text: str) -> int:
    """'0755' / '755' -> 0o755; anything that is not 3-4 octal digits is refused."""
    value = str(text).strip()
    if not value or len(value) > 4 or any(c not in "01234567" for c in value):
        raise ModuleFailure(f"mode must be an octal string such as '0755' (got {text!r})")
    return int(value, 8)


def format_mode(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def sha256_of_file(path: str) -> str | None:
    """SHA-256 of a regular file, or None when there is none."""
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256()
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
            return digest.hexdigest()
    except FileNotFoundError:
        return None


def member_info(archive: zipfile.ZipFile, wheel: str, member: str) -> zipfile.ZipInfo:
    """The zip entry of member, or a failure listing the scripts the wheel does carry."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        scripts = sorted(n for n in archive.namelist() if ".data/scripts/" in n)
        hint = f"; its scripts: {', '.join(scripts)}" if scripts else ""
        raise ModuleFailure(f"{wheel} has no member {member}{hint}") from None
    if info.is_dir():
        raise ModuleFailure(f"{member} in {wheel} is a directory, not a file")
    return info


def sha256_of_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with archive.open(info) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def plan(wanted_sha: str, wanted_mode: int, current_sha: str | None, current_mode: int | None) -> str:
    """What a run does: installed, replaced, mode or none."""
    if current_sha is None:
        return "installed"
    if current_sha != wanted_sha:
        return "replaced"
    if current_mode is None or stat.S_IMODE(current_mode) != wanted_mode:
        return "mode"
    return "none"


def write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: str, mode: int, expected_sha: str) -> None:
    """Write the member to a temp file beside dest, check it, then rename it over dest."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".tmp", dir=os.path.dirname(dest))
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, archive.open(info) as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha:
            raise ModuleFailure(f"{info.filename} in {archive.filename} changed while it was read; run again")
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def run(params: dict, check_mode: bool) -> dict:
    wheel, member, dest = params["wheel"], params["member"], params["dest"]
    mode = parse_mode(params["mode"])
    if not os.path.isfile(wheel):
        raise ModuleFailure(f"the wheel {wheel} does not exist (download it first)")
    if os.path.isdir(dest):
        raise ModuleFailure(f"dest {dest} is a directory; give the path of the file to install")
    dest_dir = os.path.dirname(dest) or "."
    if not os.path.isdir(dest_dir):
        raise ModuleFailure(f"the directory of dest, {dest_dir}, does not exist; create it first")
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModuleFailure(f"{wheel} is not a readable wheel (zip archive): {exc}") from None
    with archive:
        info = member_info(archive, wheel, member)
        try:
            wanted_sha = sha256_of_member(archive, info)
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            raise ModuleFailure(f"cannot read {member} from {wheel} (a damaged download?): {exc}") from None
        current_sha = sha256_of_file(dest)
        current_mode = os.stat(dest).st_mode if current_sha is not None else None
        action = plan(wanted_sha, mode, current_sha, current_mode)
        if not check_mode:
            if action in ("installed", "replaced"):
                write_member(archive, info, dest, mode, wanted_sha)
            elif action == "mode":
                os.chmod(dest, mode)
    return dict(
        changed=action != "none",
        dest=dest,
        member=member,
        sha256=wanted_sha,
        size=info.file_size,
        previous_sha256=current_sha,
        mode=format_mode(mode),
        action=action,
        previous_mode=None if current_mode is None else format_mode(current_mode),
    )

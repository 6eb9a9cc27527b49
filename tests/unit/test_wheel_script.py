# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of installing a wheel member: plugins/module_utils/crpbot_wheel.py (shared by the
crpbot_wheel_script and crpbot_uv modules) and the crpbot_wheel_script module.

The logic is called directly on wheel-like zips built in tmp_path; the module also runs once end
to end through ansible-playbook (local connection) for its argument spec, check mode and diff.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from ansible.module_utils import crpbot_wheel as ws
from tests.ansible_run import run_module_play

MEMBER = "uv-0.13.9.data/scripts/uv"
BINARY = b"\x7fELF" + os.urandom(3 * ws.CHUNK + 17)


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("uv/__init__.py", b"")
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("uv-0.13.9.dist-info/RECORD", b"")
    return path


@pytest.fixture
def wheel(tmp_path) -> Path:
    return make_wheel(tmp_path / "uv.whl", {MEMBER: BINARY, "uv-0.13.9.data/scripts/uvx": b"uvx"})


def params(wheel: Path, dest: Path, **extra) -> dict:
    return {"wheel": str(wheel), "member": MEMBER, "dest": str(dest), "mode": "0755", **extra}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("text", "value"), [("0755", 0o755), ("755", 0o755), ("0600", 0o600), ("4755", 0o4755)])
def test_parse_mode(text, value):
    assert ws.parse_mode(text) == value


@pytest.mark.parametrize("text", ["", "rwx", "0789", "07555", "u+x", "-1"])
def test_parse_mode_refuses(text):
    with pytest.raises(ws.ModuleFailure, match="octal"):
        ws.parse_mode(text)


@pytest.mark.parametrize(
    ("current_sha", "current_mode", "action"),
    [
        (None, None, "installed"),
        ("other", 0o100755, "replaced"),
        ("want", 0o100644, "mode"),
        ("want", 0o100755, "none"),
    ],
)
def test_plan(current_sha, current_mode, action):
    assert ws.plan("want", 0o755, current_sha, current_mode) == action


def test_installs_then_is_unchanged(wheel, tmp_path):
    dest = tmp_path / "bin" / "uv"
    dest.parent.mkdir()
    first = ws.run(params(wheel, dest), check_mode=False)
    assert first["changed"] and first["action"] == "installed"
    assert dest.read_bytes() == BINARY and mode_of(dest) == 0o755
    assert first["sha256"] == sha(BINARY) and first["size"] == len(BINARY)
    assert first["previous_sha256"] is None
    inode = dest.stat().st_ino
    second = ws.run(params(wheel, dest), check_mode=False)
    assert not second["changed"] and second["action"] == "none"
    assert second["previous_sha256"] == sha(BINARY)
    assert dest.stat().st_ino == inode  # not rewritten
    assert sorted(p.name for p in dest.parent.iterdir()) == ["uv"]  # no temp file left


def test_replaces_other_content_atomically(wheel, tmp_path):
    dest = tmp_path / "uv"
    dest.write_bytes(b"old uv")
    dest.chmod(0o700)
    old_inode = dest.stat().st_ino
    result = ws.run(params(wheel, dest), check_mode=False)
    assert result["changed"] and result["action"] == "replaced"
    assert result["previous_sha256"] == sha(b"old uv")
    assert dest.read_bytes() == BINARY and mode_of(dest) == 0o755
    assert dest.stat().st_ino != old_inode  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uv", "uv.whl"]


def test_only_the_mode_is_fixed(wheel, tmp_path):
    dest = tmp_path / "uv"
    dest.write_bytes(BINARY)
    dest.chmod(0o644)
    inode = dest.stat().st_ino
    result = ws.run(params(wheel, dest, mode="0750"), check_mode=False)
    assert result["changed"] and result["action"] == "mode" and result["mode"] == "0750"
    assert mode_of(dest) == 0o750 and dest.stat().st_ino == inode


@pytest.mark.parametrize("existing", [None, b"old uv"])
def test_check_mode_writes_nothing(wheel, tmp_path, existing):
    dest = tmp_path / "uv"
    if existing is not None:
        dest.write_bytes(existing)
    result = ws.run(params(wheel, dest), check_mode=True)
    assert result["changed"]
    assert result["action"] == ("installed" if existing is None else "replaced")
    assert dest.exists() == (existing is not None)
    if existing is not None:
        assert dest.read_bytes() == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["uv.whl"] + (["uv"] if existing else []))


def test_check_mode_on_current_file_is_unchanged(wheel, tmp_path):
    dest = tmp_path / "uv"
    dest.write_bytes(BINARY)
    dest.chmod(0o755)
    assert ws.run(params(wheel, dest), check_mode=True)["changed"] is False


def test_missing_member_names_the_scripts(wheel, tmp_path):
    with pytest.raises(ws.ModuleFailure, match=r"no member uv-0.14.0.data/scripts/uv.*scripts/uvx"):
        ws.run(params(wheel, tmp_path / "uv", member="uv-0.14.0.data/scripts/uv"), check_mode=False)
    assert not (tmp_path / "uv").exists()


def test_missing_wheel(tmp_path):
    with pytest.raises(ws.ModuleFailure, match="does not exist"):
        ws.run(params(tmp_path / "nope.whl", tmp_path / "uv"), check_mode=False)


def test_not_a_zip(tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(ws.ModuleFailure, match="not a readable wheel"):
        ws.run(params(bad, tmp_path / "uv"), check_mode=False)


def test_missing_dest_dir(wheel, tmp_path):
    with pytest.raises(ws.ModuleFailure, match="does not exist; create it first"):
        ws.run(params(wheel, tmp_path / "no" / "uv"), check_mode=False)


def test_dest_is_a_directory(wheel, tmp_path):
    (tmp_path / "uv").mkdir()
    with pytest.raises(ws.ModuleFailure, match="is a directory"):
        ws.run(params(wheel, tmp_path / "uv"), check_mode=False)


def test_corrupt_member_leaves_dest_and_no_temp_file(tmp_path):
    wheel = make_wheel(tmp_path / "uv.whl", {MEMBER: BINARY})
    data = bytearray(wheel.read_bytes())
    start = data.index(b"uv-0.13.9.data/scripts/uv") + 200  # inside the compressed member
    data[start : start + 64] = bytes(64)
    wheel.write_bytes(bytes(data))
    dest = tmp_path / "uv"
    dest.write_bytes(b"old uv")
    with pytest.raises(ws.ModuleFailure, match="damaged"):
        ws.run(params(wheel, dest), check_mode=False)
    assert dest.read_bytes() == b"old uv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uv", "uv.whl"]


def test_failed_write_leaves_no_temp_file(wheel, tmp_path, monkeypatch):
    dest = tmp_path / "uv"
    dest.write_bytes(b"old uv")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ws.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        ws.run(params(wheel, dest), check_mode=False)
    assert dest.read_bytes() == b"old uv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uv", "uv.whl"]


# --------------------------------------------------------------------------------------------
# End to end through ansible-playbook
# --------------------------------------------------------------------------------------------


def test_module_end_to_end(wheel, tmp_path):
    dest = tmp_path / "bin" / "uv"
    dest.parent.mkdir()
    args = {"wheel": str(wheel), "member": MEMBER, "dest": str(dest)}
    tasks = [
        {"name": "Check", "crpbot_wheel_script": args, "check_mode": True, "diff": True, "register": "r_check"},
        {"name": "Install", "crpbot_wheel_script": args, "diff": True, "register": "r_install"},
        {"name": "Again", "crpbot_wheel_script": args, "register": "r_again"},
        {"name": "Bad mode", "crpbot_wheel_script": {**args, "mode": "rwx"}, "register": "r_bad",
         "ignore_errors": True},
    ]
    play = run_module_play(tmp_path, tasks, name="Exercise crpbot_wheel_script", timeout=300)
    assert play.returncode == 0, play.output[-5000:]
    r = {name.removeprefix("r_"): result for name, result in play.results.items()}
    assert r["check"]["changed"] and r["check"]["action"] == "installed"
    assert r["check"]["diff"]["before"] == "" and sha(BINARY) in r["check"]["diff"]["after"]
    assert r["install"]["changed"] and r["install"]["mode"] == "0755"
    assert not r["again"]["changed"] and r["again"]["action"] == "none"
    assert r["bad"]["failed"] and "octal" in r["bad"]["msg"]
    assert dest.read_bytes() == BINARY and mode_of(dest) == 0o755



# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the crpbot_uv module (plugins/modules/crpbot_uv.py): the one round trip that installs the pinned
uv and syncs .venv. The "uv" in the test wheels is a shell script that answers --version and prints what a
real uv sync prints on stderr, so the module's decisions (download, install, version, changed, check mode,
failures) run for real; the download is served from the test's bytes instead of PyPI."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.ansible_run import load_plugin, run_module_play

uvmod = load_plugin("plugins/modules/crpbot_uv.py")

VERSION = "0.13.9"
ARCH = os.uname().machine
URL = f"https://files.example.invalid/uv-{VERSION}-py3-none-manylinux_2_17_{ARCH}.whl"

SYNC_CURRENT = "Resolved 12 packages in 3ms\nChecked 11 packages in 1ms\n"
SYNC_INSTALL = "Resolved 12 packages in 3ms\nInstalled 1 package in 4ms\n + tabulate==0.9.0\n"
DRY_CURRENT = "Resolved 12 packages in 3ms\nWould make no changes\n"
DRY_INSTALL = "Resolved 12 packages in 3ms\nWould install 1 package\n + tabulate==0.9.0\n"
LOCK_ERROR = "error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided.\n"


def fake_uv(version: str = VERSION) -> bytes:
    """A uv stand-in: --version, and `sync` printing what the test put in $SYNC_STDERR_FILE (rc from $SYNC_RC)."""
    return (
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "uv {version} (abc 2025-01-01)"; exit 0; fi\n'
        'echo "$@" >> "$UVLOG"\n'
        'case "$*" in *--dry-run*) f="$DRY_FILE";; *) f="$SYNC_FILE";; esac\n'
        'cat "$f" >&2\n'
        'exit "$(cat "$f.rc" 2>/dev/null || echo 0)"\n'
    ).encode()


def make_wheel(version: str = VERSION, member_version: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("uv/__init__.py", b"")
        archive.writestr(f"uv-{member_version or version}.data/scripts/uv", fake_uv(version))
    return buf.getvalue()


class FakeModule:
    """What crpbot_uv uses of AnsibleModule: params, check_mode and run_command."""

    def __init__(self, params: dict, check_mode: bool = False):
        self.params = params
        self.check_mode = check_mode
        self.commands: list[list[str]] = []

    def run_command(self, argv, cwd=None, environ_update=None):
        self.commands.append(list(argv))
        proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **(environ_update or {})},  # noqa: S603
                              capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def bed(tmp_path, monkeypatch):
    """A home with a project (pyproject.toml, uv.lock), a served wheel and the fake uv's outputs."""
    home = tmp_path / "home"
    project = home / "crpbot"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname='x'\n")
    (project / "uv.lock").write_text("version = 1\n")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    monkeypatch.setenv("UVLOG", str(tmp_path / "uv.log"))
    monkeypatch.setenv("SYNC_FILE", str(outputs / "sync"))
    monkeypatch.setenv("DRY_FILE", str(outputs / "dry"))
    (outputs / "sync").write_text(SYNC_CURRENT)
    (outputs / "dry").write_text(DRY_CURRENT)
    served = {"body": make_wheel(), "calls": 0}

    def fake_open_url(url, **_kwargs):
        served["calls"] += 1
        assert url == URL
        return io.BytesIO(served["body"])

    monkeypatch.setattr(uvmod, "open_url", fake_open_url)

    def params(**overrides):
        base = {
            "version": VERSION,
            "wheels": {ARCH: {"url": URL, "sha256": hashlib.sha256(served["body"]).hexdigest()}},
            "cache_dir": str(home / ".cache" / "crpbot-ansible"),
            "bin_dir": str(home / ".local" / "bin"),
            "owner": str(os.getuid()),
            "project_dir": str(project),
            "python": "/usr/bin/python3",
            "native_tls": False,
            "host": "qc-1",
            "timeout": 5,
        }
        return {**base, **overrides}

    def run(check: bool = False, **overrides):
        module = FakeModule(params(**overrides), check_mode=check)
        return uvmod.Uv(module).run(), module

    return {"home": home, "project": project, "outputs": outputs, "served": served, "params": params, "run": run,
            "log": tmp_path / "uv.log"}


def uv_path(bed) -> Path:
    return bed["home"] / ".local" / "bin" / "uv"


def test_first_run_downloads_installs_checks_and_syncs(bed):
    (bed["outputs"] / "sync").write_text(SYNC_INSTALL)
    result, module = bed["run"]()
    assert result["changed"] is True
    assert result["wheel"]["action"] == "downloaded"
    assert result["binary"]["action"] == "installed"
    assert result["uv_version"].startswith(f"uv {VERSION}")
    assert result["venv"] == {"action": "synced", "changes": [" + tabulate==0.9.0"]}
    assert oct(uv_path(bed).stat().st_mode & 0o7777) == "0o755"
    assert (bed["home"] / ".cache" / "crpbot-ansible").is_dir()
    sync = [argv for argv in module.commands if "sync" in argv]
    assert sync == [[str(uv_path(bed)), "sync", "--locked", "--python", "/usr/bin/python3"]]


def test_second_run_is_unchanged_and_downloads_nothing(bed):
    bed["run"]()
    calls = bed["served"]["calls"]
    result, _ = bed["run"]()
    assert result["changed"] is False
    assert bed["served"]["calls"] == calls
    assert result["wheel"]["action"] == "cached"
    assert result["binary"]["action"] == "none"
    assert result["venv"]["action"] == "current"


def test_a_changed_binary_is_replaced_and_a_wrong_mode_fixed(bed):
    bed["run"]()
    uv_path(bed).write_bytes(b"#!/bin/sh\necho uv 0.1.0\n")
    result, _ = bed["run"]()
    assert result["binary"]["action"] == "replaced" and result["changed"]
    uv_path(bed).chmod(0o700)
    result, _ = bed["run"]()
    assert result["binary"]["action"] == "mode" and result["changed"]
    assert oct(uv_path(bed).stat().st_mode & 0o7777) == "0o755"


def test_a_cached_wheel_with_another_sha256_is_downloaded_again(bed):
    bed["run"]()
    wheel = next((bed["home"] / ".cache" / "crpbot-ansible").glob("*.whl"))
    wheel.write_bytes(b"truncated")
    result, _ = bed["run"]()
    assert result["wheel"]["action"] == "downloaded"
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == hashlib.sha256(bed["served"]["body"]).hexdigest()


def test_a_download_with_the_wrong_sha256_fails_and_leaves_nothing(bed):
    with pytest.raises(uvmod.Failure) as err:
        bed["run"](wheels={ARCH: {"url": URL, "sha256": "0" * 64}})
    assert str(err.value).startswith("host qc-1: the download of ")
    assert "not the pinned" in str(err.value)
    assert list((bed["home"] / ".cache" / "crpbot-ansible").iterdir()) == []
    assert not uv_path(bed).exists()


def test_an_architecture_without_a_wheel_fails_naming_it(bed):
    with pytest.raises(uvmod.Failure) as err:
        bed["run"](wheels={"riscv64": {"url": URL, "sha256": "0" * 64}})
    text = str(err.value)
    assert text.startswith(f"host qc-1: no uv wheel is pinned for its architecture {ARCH}")
    assert f"crpbot_uv_wheels.{ARCH}" in text and "riscv64" in text
    assert not (bed["home"] / ".cache").exists()


@pytest.mark.parametrize("wheel", [
    {"url": "http://files.example.invalid/uv.whl", "sha256": "0" * 64},
    {"url": URL, "sha256": "ABC"},
    {"url": URL.replace(".whl", ".tar.gz"), "sha256": "0" * 64},
    None,
])
def test_a_malformed_wheel_entry_fails_before_anything_is_touched(bed, wheel):
    with pytest.raises(uvmod.Failure, match=f"crpbot_uv_wheels.{ARCH} must have an https url"):
        bed["run"](wheels={ARCH: wheel})
    assert not (bed["home"] / ".cache").exists()


def test_a_wheel_of_another_version_fails_naming_the_scripts(bed):
    bed["served"]["body"] = make_wheel(member_version="0.12.0")
    with pytest.raises(uvmod.Failure) as err:
        bed["run"]()
    assert f"has no member uv-{VERSION}.data/scripts/uv" in str(err.value)
    assert "uv-0.12.0.data/scripts/uv" in str(err.value)


def test_a_binary_that_reports_another_version_fails(bed):
    bed["served"]["body"] = make_wheel(version="0.12.0", member_version=VERSION)
    with pytest.raises(uvmod.Failure) as err:
        bed["run"]()
    assert f"--version says 'uv 0.12.0 (abc 2025-01-01)', expected uv {VERSION}" in str(err.value)


@pytest.mark.parametrize("missing", [["uv.lock"], ["pyproject.toml"], ["pyproject.toml", "uv.lock"]])
def test_a_project_without_its_files_fails_naming_host_and_path(bed, missing):
    for name in missing:
        (bed["project"] / name).unlink()
    with pytest.raises(uvmod.Failure) as err:
        bed["run"]()
    assert str(err.value).startswith(f"host qc-1: {bed['project']} has no {' and no '.join(missing)};")


def test_a_refused_sync_fails_with_uvs_message(bed):
    (bed["outputs"] / "sync").write_text(LOCK_ERROR)
    (bed["outputs"] / "sync.rc").write_text("2")
    with pytest.raises(uvmod.Failure) as err:
        bed["run"]()
    text = str(err.value)
    assert "`uv sync --locked`" in text and "needs to be updated" in text and "run `uv lock`" in text
    assert text.startswith("host qc-1: ")


def test_check_mode_on_a_bare_host_writes_nothing_and_reports_pending(bed):
    result, module = bed["run"](check=True)
    assert result["changed"] is True
    assert result["venv"]["action"] == "pending"
    assert bed["served"]["calls"] == 0
    assert not (bed["home"] / ".cache").exists() and not (bed["home"] / ".local").exists()
    assert module.commands == []


def test_check_mode_on_an_installed_host_predicts_with_a_dry_run(bed):
    bed["run"]()
    result, module = bed["run"](check=True)
    assert result["changed"] is False and result["venv"]["action"] == "current"
    assert module.commands[-1][-1] == "--dry-run"
    (bed["outputs"] / "dry").write_text(DRY_INSTALL)
    result, _ = bed["run"](check=True)
    assert result["changed"] is True
    assert result["venv"] == {"action": "would_change", "changes": [" + tabulate==0.9.0"]}
    (bed["outputs"] / "dry").write_text(LOCK_ERROR)
    (bed["outputs"] / "dry.rc").write_text("2")
    with pytest.raises(uvmod.Failure, match="needs to be updated"):
        bed["run"](check=True)


def test_check_mode_with_an_outdated_binary_does_not_run_it(bed):
    bed["run"]()
    uv_path(bed).write_bytes(b"#!/bin/sh\nexit 1\n")
    before = uv_path(bed).read_bytes()
    result, module = bed["run"](check=True)
    assert result["binary"]["action"] == "replaced"
    assert result["venv"]["action"] == "pending" and result["changed"]
    assert module.commands == []
    assert uv_path(bed).read_bytes() == before


def test_native_tls_and_no_python_downloads_reach_uv(bed, monkeypatch):
    (bed["outputs"] / "sync").write_text(SYNC_CURRENT)
    seen = {}
    original = FakeModule.run_command

    def spy(self, argv, cwd=None, environ_update=None):
        if "sync" in argv:
            seen.update(environ_update or {})
            seen["cwd"] = cwd
        return original(self, argv, cwd=cwd, environ_update=environ_update)

    monkeypatch.setattr(FakeModule, "run_command", spy)
    bed["run"](native_tls=True)
    assert seen == {"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1", "UV_NATIVE_TLS": "1", "cwd": str(bed["project"])}


def test_the_module_runs_through_ansible_with_its_argument_spec(tmp_path):
    """End to end through ansible-playbook: an unknown option and a missing one are refused by the spec."""
    tasks = [
        {"name": "Unknown option", "crpbot_uv": {"version": VERSION, "wheels": {}, "cache_dir": "/x", "bin_dir": "/y",
                                                  "owner": "root", "project_dir": "/z", "bogus": 1},
         "register": "r_unknown", "ignore_errors": True},
        {"name": "Architecture without a wheel", "crpbot_uv": {
            "version": VERSION, "wheels": {}, "cache_dir": str(tmp_path / "c"), "bin_dir": str(tmp_path / "b"),
            "owner": str(os.getuid()), "project_dir": str(tmp_path), "host": "localhost"},
         "register": "r_arch", "ignore_errors": True},
    ]
    play = run_module_play(tmp_path, tasks, name="Exercise crpbot_uv")
    assert play.results["r_unknown"]["failed"] and "bogus" in play.results["r_unknown"]["msg"]
    assert play.results["r_arch"]["msg"].startswith(f"host localhost: no uv wheel is pinned for its architecture {ARCH}")
    assert not (tmp_path / "c").exists()

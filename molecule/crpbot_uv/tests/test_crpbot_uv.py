# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_uv role: the pinned uv binary and the project's .venv on both hosts."""

from __future__ import annotations

import pytest

testinfra_hosts = ["ansible://crpbot"]

UV_VERSION = "0.13.9"


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


def test_uv_is_the_pinned_version(host, hostvars):
    uv = f"{hostvars['crpbot_home']}/.local/bin/uv"
    out = host.check_output(f"{uv} --version")
    assert out.split()[:2] == ["uv", UV_VERSION], out


def test_uv_binary_owned_by_host_user(host, hostvars):
    uv = host.file(f"{hostvars['crpbot_home']}/.local/bin/uv")
    assert uv.is_file
    assert uv.user == hostvars["crpbot_user"]
    assert uv.mode == 0o755


def test_wheel_kept_in_the_user_cache(host, hostvars):
    cache = host.file(f"{hostvars['crpbot_home']}/.cache/crpbot-ansible")
    assert cache.is_directory and cache.user == hostvars["crpbot_user"]
    wheels = host.check_output(f"ls {cache.path}").split()
    assert [w for w in wheels if w.startswith(f"uv-{UV_VERSION}-") and w.endswith(".whl")], wheels


def test_venv_owned_by_host_user(host, hostvars):
    venv = host.file(f"{hostvars['crpbot_project_dir']}/.venv")
    assert venv.is_directory
    assert venv.user == hostvars["crpbot_user"]
    assert host.file(f"{venv.path}/pyvenv.cfg").user == hostvars["crpbot_user"]


def test_venv_imports_the_locked_dependencies(host, hostvars):
    python = f"{hostvars['crpbot_project_dir']}/.venv/bin/python"
    out = host.check_output(
        f"{python} -c 'import dotenv, sqlalchemy, psycopg; "
        "print(sqlalchemy.__version__, psycopg.__version__)'"
    )
    assert out.split() == ["2.0.44", "3.2.12"]


def test_venv_uses_the_host_python(host, hostvars):
    python = f"{hostvars['crpbot_project_dir']}/.venv/bin/python"
    venv_version = host.check_output(f"{python} -c 'import sys; print(sys.version)'")
    host_version = host.check_output("/usr/bin/python3 -c 'import sys; print(sys.version)'")
    assert venv_version == host_version
    assert venv_version.startswith("3.11.")
    cfg = host.file(f"{hostvars['crpbot_project_dir']}/.venv/pyvenv.cfg").content_string
    assert "home = /usr/bin" in cfg, cfg


def test_no_python_was_downloaded(host, hostvars):
    assert not host.file(f"{hostvars['crpbot_home']}/.local/share/uv/python").exists


def test_venv_is_in_sync_with_the_lock(host, hostvars):
    uv = f"{hostvars['crpbot_home']}/.local/bin/uv"
    cmd = host.run(
        f"cd {hostvars['crpbot_project_dir']} && UV_PYTHON_DOWNLOADS=never UV_NATIVE_TLS=1 "
        f"{uv} sync --locked --dry-run --python /usr/bin/python3"
    )
    assert cmd.rc == 0, cmd.stderr
    assert "Would make no changes" in cmd.stderr, cmd.stderr

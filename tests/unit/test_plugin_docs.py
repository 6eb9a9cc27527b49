# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every plugin of the project documents itself: `ansible-doc` renders it, with what a user needs."""

from __future__ import annotations

import subprocess

import pytest

from tests.ansible_run import REPO, ansible_env, bin_path

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("crpbot_*.py"))
CALLBACKS = sorted(p.stem for p in (REPO / "plugins" / "callback").glob("crpbot_*.py"))


@pytest.mark.parametrize(
    ("kind", "name"),
    [("module", m) for m in MODULES]
    + [("callback", c) for c in CALLBACKS]
    + [("inventory", "crpbot"), ("vars", "crpbot_group_vars")],
)
def test_ansible_doc_renders(tmp_path, kind, name):
    done = subprocess.run(  # noqa: S603
        [bin_path("ansible-doc"), "-t", kind, name],
        cwd=REPO, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert name in done.stdout
    assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    if kind == "module":
        assert "RETURN VALUES" in done.stdout and "EXAMPLES" in done.stdout


def test_every_module_is_covered():
    assert {"crpbot_env_file", "crpbot_git_checkout", "crpbot_secret_file", "crpbot_wheel_script"} <= set(MODULES)

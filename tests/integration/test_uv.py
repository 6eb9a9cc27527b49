# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""crpbot_uv against a sandbox of the suite's own: a uv.lock that does not match pyproject.toml
fails the run with uv's message and leaves .venv exactly as it was."""

from __future__ import annotations

import pytest

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

PREPARE = "molecule/shared/prepare.yml"
CONVERGE = "molecule/shared/converge.yml"  # the role named by MOLECULE_SCENARIO_NAME, as molecule runs it
LOCK_ERROR = "The lockfile at `uv.lock` needs to be updated, but `--locked` was provided."


def host_sh(state: dict, host: str, command: str, check: bool = True):
    return run(testbed.ssh_argv(state, host) + [command], check=check)


def converge(sandbox: dict, *extra: str):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), CONVERGE, *extra],
               env={**sandbox["env"], "MOLECULE_SCENARIO_NAME": "crpbot_uv"})
    return proc, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = run(["ansible-playbook", "-i", str(sandbox["inventory"]), PREPARE], env=sandbox["env"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, output = converge(sandbox)
    assert proc.returncode == 0, output
    return sandbox


def venv_state(state: dict, host: str) -> str:
    """Inode and mtime of pyvenv.cfg and the installed distributions: what a rebuild would change."""
    return host_sh(state, host, "cd crpbot && stat -c '%i %Y' .venv/pyvenv.cfg .venv/bin/python "
                                "&& ls -d .venv/lib/python3.11/site-packages/*.dist-info").stdout


def test_lock_mismatch_fails_with_uvs_message_and_keeps_the_venv(converged):
    state, host = converged["state"], "sandbox-qc"
    before = venv_state(state, host)
    host_sh(state, host, "cd crpbot && sed -i 's/\"python-dotenv==1.2.4\",/\"python-dotenv==1.2.4\", \"tabulate==0.9.0\",/' "
                         "pyproject.toml && grep -q tabulate pyproject.toml")
    try:
        for extra in ((), ("--check",)):
            proc, output = converge(converged, "--limit", host, *extra)
            assert proc.returncode != 0, output
            assert LOCK_ERROR in output, output[-4000:]
            assert host in output and "uv lock" in output
            assert venv_state(state, host) == before
        imports = host_sh(state, host, "crpbot/.venv/bin/python -c 'import dotenv, sqlalchemy, psycopg; print(\"ok\")'")
        assert imports.stdout.strip() == "ok"
        assert host_sh(state, host, "crpbot/.venv/bin/python -c 'import tabulate'", check=False).returncode != 0
    finally:
        host_sh(state, host, "cd crpbot && git checkout -- pyproject.toml")
    proc, output = converge(converged, "--limit", host)
    assert proc.returncode == 0, output
    recap = output[output.index("PLAY RECAP"):]
    assert "changed=0" in recap, recap
    assert venv_state(state, host) == before


def test_missing_lock_fails_naming_host_and_path(converged):
    state, host = converged["state"], "sandbox-builder"
    host_sh(state, host, "cd crpbot && mv uv.lock uv.lock.away")
    try:
        proc, output = converge(converged, "--limit", host)
        assert proc.returncode != 0, output
        assert f"host {host}: /root/crpbot has no uv.lock" in " ".join(output.split()), output[-4000:]
    finally:
        host_sh(state, host, "cd crpbot && mv uv.lock.away uv.lock")

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures and the loopback guard of the crpbot-ansible test suite.

The guard: every ansible command the suite runs (directly, through molecule, or through the
demo) logs its connection targets through the ``crpbot_connection_log`` callback into one file;
at the end of the session, any target outside 127.0.0.0/8 fails the run. And ANSIBLE_INVENTORY
points at the sandbox inventory, so a command that forgot ``-i`` still cannot reach the user's
real hosts in ``inventory/crpbot.yml``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import testbed

REPO = testbed.REPO
VENV_BIN = Path(sys.executable).parent


def write_file(root, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``root/rel``, creating the directories on the way; returns the path."""
    path = Path(root, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def loopback_violations(log_path: Path) -> list[dict[str, str]]:
    """Entries of a connection log whose target is outside 127.0.0.0/8 (local connections excepted)."""
    if not log_path.exists():
        return []
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    bad = []
    for entry in entries:
        hostvars = {"ansible_host": entry["ansible_host"], "ansible_connection": entry["ansible_connection"]}
        try:
            testbed.assert_loopback_only({entry["host"]: hostvars})
        except testbed.TestbedError:
            bad.append(entry)
    return bad


def connection_log() -> Path:
    """This process's connection log: one per pytest-xdist worker (``-n``), so no worker loses another's entries."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        return REPO / ".testbed" / f"connections-{worker}.jsonl"
    return Path(os.environ.get("CRPBOT_CONNECTION_LOG") or REPO / ".testbed" / "connections.jsonl")


def logs_to_check(own: Path, worker: str | None) -> list[Path]:
    """The connection logs a process checks at the end: its own, and in the controller of a -n run (which
    finishes after its workers, and where the exit status is decided: a worker's session status does not
    reach it) every worker's too."""
    return [own] if worker else [own, *sorted(own.parent.glob("connections-gw*.jsonl"))]


def pytest_configure(config: pytest.Config) -> None:
    log = connection_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller (or a plain run): no worker's old log counts
        for old in log.parent.glob("connections-gw*.jsonl"):
            old.unlink(missing_ok=True)
    os.environ["CRPBOT_CONNECTION_LOG"] = str(log)
    os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    os.environ["ANSIBLE_INVENTORY"] = str(testbed.inventory_file())
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(testbed.VAULT_PASSWORD_FILE)
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("ANSIBLE_FORCE_COLOR", "0")
    os.environ["ANSIBLE_NOCOLOR"] = "1"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logs = logs_to_check(Path(os.environ["CRPBOT_CONNECTION_LOG"]), os.environ.get("PYTEST_XDIST_WORKER"))
    bad = [entry for log in logs for entry in loopback_violations(log)]
    if bad:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "LOOPBACK GUARD: the test run targeted hosts outside 127.0.0.0/8: " + json.dumps(bad)
        if reporter:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def run(cmd: list[str], *, env: dict[str, str] | None = None, check: bool = False, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command from the repo root, capturing text output."""
    return subprocess.run(  # noqa: S603
        cmd, cwd=REPO, env={**os.environ, **(env or {})}, text=True, capture_output=True, check=check, **kwargs
    )


def _testbed(tmp_path_factory: pytest.TempPathFactory, qc: int = 1, builders: int = 1):
    state_dir = tmp_path_factory.mktemp("testbed")
    old = os.environ.get("CRPBOT_TESTBED_DIR")
    os.environ["CRPBOT_TESTBED_DIR"] = str(state_dir)
    try:
        state = testbed.up(log=lambda *_: None, qc=qc, builders=builders)
        yield {"state": state, "inventory": testbed.inventory_file(), "env": {"CRPBOT_TESTBED_DIR": str(state_dir)},
               "qc": [name for name, host in state["hosts"].items() if host["role"] == "qc"],
               "builders": [name for name, host in state["hosts"].items() if host["role"] == "builder"]}
    finally:
        testbed.down(quiet=True)
        if old is None:
            os.environ.pop("CRPBOT_TESTBED_DIR", None)
        else:
            os.environ["CRPBOT_TESTBED_DIR"] = old


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    """A fresh test bed for one test module (own state dir, ports and containers; ~8 s up and down)."""
    yield from _testbed(tmp_path_factory)


@pytest.fixture(scope="module")
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A fresh test bed with several hosts per role for one test module: the module's
    ``pytestmark = pytest.mark.fleet(qc=2, builders=2)`` gives the counts (default 2 and 2). Besides
    the ``sandbox`` keys it holds ``qc`` and ``builders``, the host names of each role in order
    (sandbox-qc, sandbox-qc-2, ...)."""
    marker = request.node.get_closest_marker("fleet")
    counts = {"qc": 2, "builders": 2, **(marker.kwargs if marker else {})}
    yield from _testbed(tmp_path_factory, qc=counts["qc"], builders=counts["builders"])

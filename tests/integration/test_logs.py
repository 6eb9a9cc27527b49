# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logs end to end on the sandbox: site.yml installs the shipper on both hosts, the fixture app writes log
lines there, the shipper runs (once, by hand: no cron daemon runs in the sandbox), and playbooks/logs.yml on
the controller shows the builder's lines, oldest first, with host and file; no secret in any output."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

QC, BUILDER = "sandbox-qc", "sandbox-builder"
SECRET_VALUES = testbed.secret_values(testbed.sandbox_secrets())
# The controller reads with its own AWS credentials; the sandbox's moto accepts any.
READER_ENV = {"AWS_ACCESS_KEY_ID": "controller", "AWS_SECRET_ACCESS_KEY": "controller"}  # noqa: S105
SHIP = ".venv/bin/python ~/.crpbot-logs/crpbot_logs.py --config ~/.crpbot-logs/config.json"


def on_host(sandbox, host: str, command: str, check: bool = True):
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=check)


def out(proc) -> str:
    return proc.stdout + proc.stderr


def playbook(sandbox, play: str, *args: str, env: dict | None = None):
    return run(["ansible-playbook", "-i", str(sandbox["inventory"]), play, *args],
               env={**(sandbox.get("env") or {}), **(env or {})})


def app_log(sandbox, host: str, level: str, message: str) -> None:
    on_host(sandbox, host, f"cd crpbot && .venv/bin/python -m apps.runtime.main --log {level} {shlex.quote(message)}")


def ship(sandbox, host: str):
    proc = on_host(sandbox, host, f"cd crpbot && {SHIP}", check=False)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def shown(proc) -> list[str]:
    """The event lines playbooks/logs.yml printed (``<time> <host> <file> | <message>``)."""
    lines = [line.strip().strip(",") for line in proc.stdout.splitlines() if " | " in line and "Z sandbox-" in line]
    return [json.loads(line) for line in lines]  # the debug task prints them as JSON strings


def assert_no_secret(text: str) -> None:
    leaked = [value for value in SECRET_VALUES if value in text]
    assert leaked == [], "a vault value is in the output"


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = playbook(sandbox, "site.yml", "--diff", "-vvv")
    assert proc.returncode == 0, out(proc)[-5000:]
    assert_no_secret(out(proc))
    for host in (QC, BUILDER):
        assert f"logs shipper on {host}: installed" in proc.stdout
    return sandbox


def test_a_second_converge_reports_both_shippers_current(converged):
    proc = playbook(converged, "site.yml")
    assert proc.returncode == 0, out(proc)[-3000:]
    for host in (QC, BUILDER):
        assert f"logs shipper on {host}: current" in proc.stdout


def test_the_builders_lines_are_read_from_the_controller(converged):
    app_log(converged, BUILDER, "INFO", "builder started")
    app_log(converged, BUILDER, "ERROR", "builder order rejected")
    app_log(converged, QC, "ERROR", "qc backtest failed")
    on_host(converged, BUILDER,
            "cd crpbot && printf 'ERROR from a script\\nERROR half a li' >> logs/signal_tracking.log")
    for host in (QC, BUILDER):
        code, status = ship(converged, host)
        assert code == 0 and status["ok"], status
    assert ship(converged, BUILDER)[1]["report"]["events"] == 0  # nothing new: nothing sent twice

    verbose = playbook(converged, "playbooks/logs.yml", "-e", f"host={BUILDER}", "-e", "grep=ERROR", "-vvv",
                       env=READER_ENV)
    assert verbose.returncode == 0, out(verbose)[-3000:]
    assert_no_secret(out(verbose))
    proc = playbook(converged, "playbooks/logs.yml", "-e", f"host={BUILDER}", "-e", "since=1h", "-e", "grep=ERROR",
                    env=READER_ENV)
    assert proc.returncode == 0, out(proc)[-3000:]
    lines = shown(proc)
    assert len(lines) == 2, lines
    assert " sandbox-builder logs/runtime_" in lines[0] and '"message": "builder order rejected"' in lines[0]
    assert lines[1].endswith(" sandbox-builder logs/signal_tracking.log | ERROR from a script")
    assert not any("qc backtest" in line or "half a li" in line or "builder started" in line for line in lines)

    # Every host, everything: oldest first, with host and file.
    proc = playbook(converged, "playbooks/logs.yml", "-e", "since=1h", env=READER_ENV)
    assert proc.returncode == 0, out(proc)[-3000:]
    lines = shown(proc)
    assert [line.split(" ", 1)[0] for line in lines] == sorted(line.split(" ", 1)[0] for line in lines)
    assert any(" sandbox-qc logs/runtime_" in line and "qc backtest failed" in line for line in lines)
    assert sum(" sandbox-builder " in line for line in lines) == 3

    # The partial line ends: the next run ships it.
    on_host(converged, BUILDER, "cd crpbot && printf 'ne\\n' >> logs/signal_tracking.log")
    assert ship(converged, BUILDER)[1]["report"]["events"] == 1
    proc = playbook(converged, "playbooks/logs.yml", "-e", f"host={BUILDER}", "-e", "grep=half", env=READER_ENV)
    assert [line.rsplit(" | ", 1)[1] for line in shown(proc)] == ["ERROR half a line"]


def test_an_endpoint_that_is_down_fails_no_converge_the_preflight_reports_it_and_nothing_is_lost(converged):
    app_log(converged, BUILDER, "ERROR", "while the endpoint was down")
    down = {"crpbot_logs_endpoint_url": f"http://127.0.0.1:{testbed.free_port()}", "crpbot_logs_retries": 1}
    proc = playbook(converged, "site.yml", "--limit", BUILDER, "-e", json.dumps(down))
    text = out(proc)
    assert "logs shipper on sandbox-builder: updated" in text and "NOT SHIPPED: " in text, text[-3000:]
    assert "Could not connect to the endpoint URL" in text
    # The converge went through; the pre-flight it ends with fails on the shipper's last run.
    assert proc.returncode != 0 and "FAIL | logs shipped | the last run failed: " in text, text[-3000:]
    assert "host sandbox-builder failed the pre-flight checks: logs shipped" in text

    proc = playbook(converged, "site.yml", "--limit", BUILDER)
    assert proc.returncode == 0, out(proc)[-3000:]
    assert "logs shipper on sandbox-builder: updated" in proc.stdout and "shipped 1 events" in proc.stdout
    assert "ok   | logs shipped | logs shipped up to " in proc.stdout
    proc = playbook(converged, "playbooks/logs.yml", "-e", f"host={BUILDER}", "-e", "grep=endpoint was down",
                    env=READER_ENV)
    assert len(shown(proc)) == 1, out(proc)


def test_follow_prints_new_lines_as_they_are_shipped_until_interrupted(converged):
    import signal
    import subprocess
    import threading
    import time

    cmd = ["ansible-playbook", "-i", str(converged["inventory"]), "playbooks/logs.yml", "-e", f"host={BUILDER}",
           "-e", "grep=followed", "-e", "follow=true"]
    env = {**os.environ, **(converged.get("env") or {}), **READER_ENV, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=testbed.REPO, env=env, text=True,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[str] = []

    def read_lines():
        for line in proc.stdout:
            seen.append(line)

    threading.Thread(target=read_lines, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        shipped = False
        while time.monotonic() < deadline and not any("followed line" in line for line in list(seen)):
            if not shipped and any("no event yet; following" in line for line in list(seen)):
                app_log(converged, BUILDER, "WARNING", "followed line")
                assert ship(converged, BUILDER)[0] == 0
                shipped = True
            time.sleep(0.5)
        assert shipped, seen
        assert any(" sandbox-builder logs/runtime_" in line and "followed line" in line for line in seen), seen
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_bad_log_group_is_refused_before_any_host_is_touched(converged):
    proc = playbook(converged, "site.yml", "-e", json.dumps({"crpbot_logs_group": "/crpbot/has space"}))
    assert proc.returncode != 0
    assert "crpbot_logs_group must be a name CloudWatch Logs accepts" in out(proc), out(proc)[-3000:]

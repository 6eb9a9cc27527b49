# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the crpbot_logs_shipper module (plugins/modules/crpbot_logs_shipper.py): install, schedule and run
the log shipper in one round trip. End to end through ansible-playbook on localhost, with a `crontab` stand-in
on PATH (the machine's own crontab is never touched) and a stand-in "python" that prints what the shipper
prints."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.ansible_run import load_plugin, run_module_play

shipper = load_plugin("plugins/modules/crpbot_logs_shipper.py")
SOURCE = (Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "crpbot_logs.py").read_bytes()
NAME = "crpbot logs shipper"


@pytest.mark.parametrize(("current", "expected"), [
    ("", "#Ansible: crpbot logs shipper\nLINE\n"),
    ("MAILTO=me\n0 5 * * * backup.sh\n", "MAILTO=me\n0 5 * * * backup.sh\n#Ansible: crpbot logs shipper\nLINE\n"),
    # the line ansible.builtin.cron wrote: replaced in place, the user's lines around it kept
    ("0 5 * * * a\n#Ansible: crpbot logs shipper\n* * * * * old\n1 6 * * * b\n",
     "0 5 * * * a\n#Ansible: crpbot logs shipper\nLINE\n1 6 * * * b\n"),
    # two copies (an edit by hand): one left
    ("#Ansible: crpbot logs shipper\n* * * * * x\n#Ansible: crpbot logs shipper\n* * * * * y\n",
     "#Ansible: crpbot logs shipper\nLINE\n"),
    ("#Ansible: other job\n* * * * * z\n", "#Ansible: other job\n* * * * * z\n#Ansible: crpbot logs shipper\nLINE\n"),
])
def test_merge_crontab_keeps_exactly_one_entry_and_every_other_line(current, expected):
    assert shipper.merge_crontab(current, NAME, "LINE") == expected
    assert shipper.merge_crontab(expected, NAME, "LINE") == expected


def test_cron_line_quotes_paths():
    line = shipper.cron_line("*", "/opt/my venv/bin/python", "/home/u/.crpbot-logs")
    assert line == ("* * * * * '/opt/my venv/bin/python' /home/u/.crpbot-logs/crpbot_logs.py --config "
                    "/home/u/.crpbot-logs/config.json > /home/u/.crpbot-logs/last-run.log 2>&1")


@pytest.fixture
def bed(tmp_path):
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    crontab_file = tmp_path / "crontab.txt"
    (fakebin / "crontab").write_text(
        "#!/bin/sh\n"
        f'F="{crontab_file}"\n'
        'if [ -e "$F.fail" ]; then echo "crontab: cannot connect" >&2; exit 1; fi\n'
        'if [ "$1" = "-l" ]; then [ -e "$F" ] || { echo "no crontab for $(id -un)" >&2; exit 1; }; cat "$F"; exit 0; fi\n'
        'if [ "$1" = "-" ]; then cat > "$F"; exit 0; fi\n'
        "exit 2\n"
    )
    python = tmp_path / "fakepython"
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/runs.txt"\ncat "$(dirname "$0")/answer.txt"\n')
    (tmp_path / "answer.txt").write_text(json.dumps({"ok": True, "report": {"events": 7}}) + "\n")
    for path in (fakebin / "crontab", python):
        path.chmod(0o755)
    directory = tmp_path / "home" / ".crpbot-logs"
    (tmp_path / "home").mkdir()
    config = {"host": "qc-1", "globs": ["logs/*.log"], "log_group": "/crpbot/qc", "retries": 6,
              "state_file": f"{directory}/state.json", "status_file": f"{directory}/status.json"}

    def play(check=False, diff=False, **overrides):
        args = {"dir": str(directory), "python": str(python), "config": config, **overrides}
        tasks = [{"name": "Shipper", "crpbot_logs_shipper": args, "register": "r", "ignore_errors": True}]
        return run_module_play(tmp_path, tasks, check=check, extra_args=["--diff"] if diff else [],
                               env={"PATH": f"{fakebin}{os.pathsep}{os.environ['PATH']}"})

    return {"tmp": tmp_path, "dir": directory, "crontab": crontab_file, "play": play, "python": python,
            "config": config}


def test_install_then_current_then_updated(bed):
    bed["crontab"].write_text("0 5 * * * backup.sh\n")
    first = bed["play"]().results["r"]
    assert first["changed"] and first["state"] == "installed"
    assert first["changes"] == ["dir", "script", "config", "crontab"]
    assert first["last_run"] == {"ran": True, "ok": True, "events": 7, "error": "", "skipped": ""}
    assert stat.S_IMODE(bed["dir"].stat().st_mode) == 0o700
    assert (bed["dir"] / "crpbot_logs.py").read_bytes() == SOURCE
    config = bed["dir"] / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and json.loads(config.read_text()) == bed["config"]
    crontab = bed["crontab"].read_text().splitlines()
    assert crontab[0] == "0 5 * * * backup.sh" and crontab[1] == f"#Ansible: {NAME}"
    assert crontab[2] == shipper.cron_line("*", str(bed["python"]), str(bed["dir"]))
    runs = (bed["tmp"] / "runs.txt").read_text().split()
    assert runs == [f"{bed['dir']}/crpbot_logs.py", "--config", f"{bed['dir']}/config.json"]

    again = bed["play"]().results["r"]
    assert not again["changed"] and again["state"] == "current" and again["changes"] == []

    changed = bed["play"](cron_minute="7", config={**bed["config"], "retries": 2}).results["r"]
    assert changed["state"] == "updated" and changed["changes"] == ["config", "crontab"]
    assert bed["crontab"].read_text().splitlines()[2].startswith("7 * * * * ")


def test_check_mode_writes_and_runs_nothing(bed):
    result = bed["play"](check=True, diff=True).results["r"]
    assert result["changed"] and result["state"] == "installed"
    assert result["last_run"]["ran"] is False
    assert not bed["dir"].exists() and not bed["crontab"].exists()
    assert not (bed["tmp"] / "runs.txt").exists()


def test_the_diff_shows_only_this_entry_of_the_users_crontab(bed):
    bed["crontab"].write_text("0 5 * * * curl -u admin:hunter2 https://backup.invalid\n")
    play = bed["play"](diff=True)
    assert "hunter2" not in play.output
    assert f"#Ansible: {NAME}" in play.output


def test_a_failed_shipment_is_reported_not_failed(bed):
    (bed["tmp"] / "answer.txt").write_text(json.dumps({"ok": False, "error": "no credentials for profile default"}))
    result = bed["play"]().results["r"]
    assert not result.get("failed")
    assert result["last_run"] == {"ran": True, "ok": False, "events": 0, "error": "no credentials for profile default",
                                  "skipped": ""}
    (bed["tmp"] / "answer.txt").write_text(json.dumps({"skipped": "another run is shipping"}))
    assert bed["play"]().results["r"]["last_run"]["skipped"] == "another run is shipping"
    (bed["tmp"] / "answer.txt").write_text("Traceback: boom\n")
    bed["python"].write_text('#!/bin/sh\necho "ImportError: No module named boto3" >&2\nexit 1\n')
    assert bed["play"]().results["r"]["last_run"]["error"] == "ImportError: No module named boto3"


def test_a_broken_crontab_fails_naming_the_fix(bed):
    bed["crontab"].with_name("crontab.txt.fail").write_text("")
    result = bed["play"]().results["r"]
    assert result["failed"]
    assert "`crontab -l` failed (crontab: cannot connect); is the cron package installed" in result["msg"]
    assert str(bed["dir"]) in result["msg"]


def test_run_false_installs_without_running(bed):
    result = bed["play"](run=False).results["r"]
    assert result["changed"] and result["last_run"]["ran"] is False
    assert not (bed["tmp"] / "runs.txt").exists()

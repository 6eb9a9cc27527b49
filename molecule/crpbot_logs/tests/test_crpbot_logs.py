# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_logs role: the shipper is installed for the host user, runs from its crontab
with the app's venv, and ships the app's lines (a partial last line held) to /crpbot/<role>."""

from __future__ import annotations

import json

import boto3

from tests import testbed

testinfra_hosts = ["ansible://crpbot"]


def facts(host):
    variables = host.ansible.get_variables()
    return variables


def test_the_shipper_belongs_to_the_host_user(host):
    v = facts(host)
    base = f"{v['crpbot_home']}/.crpbot-logs"
    directory = host.file(base)
    assert directory.is_directory and directory.user == v["crpbot_user"] and directory.mode == 0o700
    config = host.file(f"{base}/config.json")
    assert config.user == v["crpbot_user"] and config.mode == 0o600
    settings = json.loads(config.content_string)
    assert settings["host"] == v["inventory_hostname"]
    assert settings["log_group"] == f"/crpbot/{v['crpbot_role']}"
    assert settings["globs"] == ["logs/*.log"] and settings["project_dir"] == v["crpbot_project_dir"]
    for secret in testbed.secret_values(testbed.sandbox_secrets()):
        assert secret not in config.content_string


def test_the_host_users_crontab_runs_it_every_minute_with_the_app_venv(host):
    v = facts(host)
    crontab = host.check_output("crontab -l")
    (line,) = [entry for entry in crontab.splitlines() if "crpbot_logs.py" in entry]
    assert line.startswith("* * * * * ")
    assert f"{v['crpbot_project_dir']}/.venv/bin/python {v['crpbot_home']}/.crpbot-logs/crpbot_logs.py" in line


def test_a_run_ships_the_complete_lines_to_the_role_group(host):
    v = facts(host)
    base = f"{v['crpbot_home']}/.crpbot-logs"
    run = host.run(f"{v['crpbot_project_dir']}/.venv/bin/python {base}/crpbot_logs.py --config {base}/config.json")
    assert run.rc == 0, run.stdout + run.stderr
    status = json.loads(host.file(f"{base}/status.json").content_string)
    assert status["ok"] is True and status["report"]["held_bytes"] == len("signal ETH-USD sh")
    client = boto3.client("logs", endpoint_url=v["crpbot_logs_endpoint_url"], region_name=testbed.REGION,
                          aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106
    name = v["inventory_hostname"]
    group = f"/crpbot/{v['crpbot_role']}"
    streams = {s["logStreamName"] for s in client.describe_log_streams(logGroupName=group)["logStreams"]}
    assert f"{name}/logs/signal_tracking.log" in streams
    events = client.get_log_events(logGroupName=group, logStreamName=f"{name}/logs/signal_tracking.log")["events"]
    assert [e["message"] for e in events] == ["signal BTC-USD long"]
    (runtime,) = [s for s in streams if s.startswith(f"{name}/logs/runtime_")]
    messages = [json.loads(e["message"])["record"]["message"]
                for e in client.get_log_events(logGroupName=group, logStreamName=runtime)["events"]]
    assert messages == [f"started on {name}", f"order rejected on {name}"]
    assert client.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 30

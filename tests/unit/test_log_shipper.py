# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log shipper (plugins/module_utils/crpbot_logs.py): checkpoints, rotation, truncation, partial lines,
PutLogEvents' limits, retries and a kill mid-batch, against a fake client that enforces what CloudWatch
enforces (moto does not) and against moto in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible.module_utils import crpbot_logs as logs

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15)
NOW_MS = int(NOW * 1000)
DAY_MS = 24 * 3600 * 1000


def client_error(code, operation="PutLogEvents"):
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, operation)


class Killed(BaseException):
    """The process dies: nothing after it runs (not an Exception: no handler of the shipper catches it)."""


class FakeLogs:
    """A CloudWatch Logs client that refuses what AWS refuses in PutLogEvents."""

    def __init__(self, groups=("/crpbot/builder",)):
        self.groups = {name: {} for name in groups}
        self.retention = {}
        self.puts = []
        self.fail = []  # exceptions raised by the next put_log_events calls, in order
        self.kill_after_accepting = None  # put number (1-based) after which the process dies
        self.create_group_error = None

    def create_log_group(self, logGroupName):
        if self.create_group_error:
            raise self.create_group_error
        if logGroupName in self.groups:
            raise client_error("ResourceAlreadyExistsException", "CreateLogGroup")
        self.groups[logGroupName] = {}

    def put_retention_policy(self, logGroupName, retentionInDays):
        self.retention[logGroupName] = retentionInDays

    def create_log_stream(self, logGroupName, logStreamName):
        if logGroupName not in self.groups:
            raise client_error("ResourceNotFoundException", "CreateLogStream")
        if logStreamName in self.groups[logGroupName]:
            raise client_error("ResourceAlreadyExistsException", "CreateLogStream")
        self.groups[logGroupName][logStreamName] = []

    def put_log_events(self, logGroupName, logStreamName, logEvents):
        if self.fail:
            raise self.fail.pop(0)
        if logStreamName not in self.groups.get(logGroupName, {}):
            raise client_error("ResourceNotFoundException")
        assert 1 <= len(logEvents) <= logs.MAX_BATCH_EVENTS
        size = sum(len(e["message"].encode("utf-8")) + 26 for e in logEvents)
        assert size <= 1_048_576, size
        stamps = [e["timestamp"] for e in logEvents]
        assert stamps == sorted(stamps), "not in chronological order"
        assert stamps[-1] - stamps[0] <= DAY_MS, "a batch spans more than 24 h"
        assert stamps[0] >= NOW_MS - 14 * DAY_MS, "an event older than 14 days"
        assert all(0 < len(e["message"].encode("utf-8")) <= 262_144 - 26 for e in logEvents)
        self.groups[logGroupName][logStreamName].extend(e["message"] for e in logEvents)
        self.puts.append((logStreamName, logEvents))
        if self.kill_after_accepting == len(self.puts):
            raise Killed
        return {}

    def messages(self, stream, group="/crpbot/builder"):
        return self.groups[group].get(stream, [])


@pytest.fixture
def project(tmp_path):
    (tmp_path / "crpbot" / "logs").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    return tmp_path


def config(project, **extra):
    return {"host": "cloud", "project_dir": str(project / "crpbot"), "globs": ["logs/*.log"],
            "log_group": "/crpbot/builder", "retention_days": 30, "state_file": str(project / "state" / "state.json"),
            "status_file": str(project / "state" / "status.json"), **extra}


def ship(client, project, sleeps=None, limits=None, **extra):
    shipper = logs.Shipper(client, config(project, **extra), now=lambda: NOW,
                           sleep=(sleeps.append if sleeps is not None else lambda _s: None), limits=limits)
    return shipper.run()


def append(project, name, text):
    path = project / "crpbot" / "logs" / name
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)
    return path


def checkpoint(project):
    return json.loads((project / "state" / "state.json").read_text())["files"]


STREAM = "cloud/logs/runtime.log"


# ----------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(("line", "expected"), [
    ('{"text": "x", "record": {"time": {"repr": "2026-12-03 09:00:00+00:00", "timestamp": 1796288400.25}}}',
     1796288400250),
    ('{"timestamp": "2026-12-03T09:00:00Z", "msg": "x"}', 1796288400000),
    ('{"time": "2026-12-03T10:00:00+01:00"}', 1796288400000),
    ('{"ts": 1796288400}', 1796288400000),
    ('{"@timestamp": 1796288400123}', 1796288400123),
    ('{"timestamp": "yesterday"}', 42),
    ('{"level": "INFO"}', 42),
    ("2026-12-03 09:00:00 | INFO | text line", 42),
    ("{not json", 42),
    ("[1, 2]", 42),
])
def test_a_json_line_is_timestamped_with_its_own_time(line, expected):
    assert logs.line_timestamp(line, 42) == expected


@pytest.mark.parametrize(("name", "ok"), [
    ("/crpbot/builder", True), ("/crpbot/qc", True), ("a.b-c_d#e", True), ("", False), ("/crpbot/bad name", False),
    ("/crpbot/x:y", False), ("x" * 513, False), ("aws/lambda", False),
])
def test_log_group_names(name, ok):
    assert logs.valid_group_name(name) is ok


def test_stream_names_have_no_characters_cloudwatch_refuses():
    assert logs.stream_name("cloud", "logs/a:b*.log") == "cloud/logs/a_b_.log"


@pytest.mark.parametrize("text", ["a" * 600_000, "é" * 300_000, "€" * 200_001, "x" + "😀" * 100_000])
def test_split_message_cuts_at_character_boundaries_within_an_event(text):
    pieces = logs.split_message(text)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= logs.MAX_EVENT_BYTES for p in pieces)


def test_iter_lines_holds_a_partial_line_and_splits_a_long_one(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"one\ntwo\n" + b"z" * 25 + b"\npart")
    with open(path, "rb") as fh:
        got = list(logs.iter_lines(fh, 0, block=7, max_line=10))
        assert got == [(4, b"one"), (8, b"two"), (18, b"z" * 10), (28, b"z" * 10), (34, b"z" * 5)]
        assert list(logs.iter_lines(fh, 34, final=True, block=3)) == [(38, b"part")]


def test_reading_a_big_file_keeps_memory_bounded(tmp_path):
    path = tmp_path / "big.log"
    line = b'{"record": {"time": {"timestamp": 1799990000.5}}, "text": "' + b"x" * 180 + b'"}\n'
    with open(path, "wb") as fh:
        for _ in range(100):
            fh.write(line * 1000)  # ~21 MB
    tracemalloc.start()
    try:
        count = 0
        with open(path, "rb") as fh:
            for batch in logs.batches(logs.iter_events(logs.iter_lines(fh, 0), NOW_MS), NOW_MS):
                count += len(batch.events)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a 21 MB file"


# ----------------------------------------------------------------------------- PutLogEvents' limits


def test_batches_hold_at_most_10000_events(project):
    fake = FakeLogs()
    append(project, "runtime.log", "".join(f"l{i}\n" for i in range(25_000)))
    report = ship(fake, project)
    assert [len(events) for _, events in fake.puts] == [10_000, 10_000, 5_000]
    assert fake.messages(STREAM) == [f"l{i}" for i in range(25_000)]
    assert report["requests"] == 3 + 1  # the first put found no stream and was sent again after creating it


def test_batches_hold_at_most_a_mebibyte_counting_26_bytes_per_event(project):
    fake = FakeLogs()
    append(project, "runtime.log", "".join(f"{i:06d}" + "y" * 994 + "\n" for i in range(3_000)))  # 1,000 bytes each
    ship(fake, project)
    sizes = [sum(len(e["message"]) + 26 for e in events) for _, events in fake.puts]
    assert all(s <= 1_048_576 for s in sizes)
    assert [len(events) for _, events in fake.puts] == [1_022, 1_022, 956]  # 1_048_576 // 1_026 = 1_022
    assert len(fake.messages(STREAM)) == 3_000


def test_events_are_sent_in_chronological_order_and_a_batch_spans_at_most_24_hours(project):
    fake = FakeLogs()
    base = NOW - 5 * 86400
    # Out of order within a day, then a jump of 2 days, then back by 30 h: three batches at least.
    stamps = [base + 60, base, base + 3600, base + 2 * 86400, base + 2 * 86400 + 10, base + 86400 - 3600 * 6]
    append(project, "runtime.log", "".join(json.dumps({"timestamp": s, "n": n}) + "\n" for n, s in enumerate(stamps)))
    ship(fake, project)
    for _, events in fake.puts:
        ts = [e["timestamp"] for e in events]
        assert ts == sorted(ts) and ts[-1] - ts[0] <= DAY_MS
    assert sorted(json.loads(m)["n"] for m in fake.messages(STREAM)) == list(range(6))
    assert [[json.loads(e["message"])["n"] for e in events] for _, events in fake.puts] == [[1, 0, 2], [3, 4], [5]]


def test_events_older_than_14_days_are_skipped_and_reported(project):
    fake = FakeLogs()
    old, recent = NOW - 15 * 86400, NOW - 13 * 86400
    append(project, "runtime.log", json.dumps({"timestamp": old, "m": "old"}) + "\n"
           + json.dumps({"timestamp": recent, "m": "recent"}) + "\n" + json.dumps({"timestamp": old}) + "\n")
    report = ship(fake, project)
    assert report["too_old"] == 2
    assert [json.loads(m).get("m") for m in fake.messages(STREAM)] == ["recent"]
    assert checkpoint(project)[next(iter(checkpoint(project)))]["offset"] == os.path.getsize(
        project / "crpbot" / "logs" / "runtime.log")
    # Only skipped lines left: the checkpoint still moves past them, nothing is sent.
    append(project, "runtime.log", json.dumps({"timestamp": old}) + "\n")
    assert ship(fake, project)["too_old"] == 1 and len(fake.puts) == 1


def test_a_line_longer_than_an_event_is_split_and_nothing_is_lost(project):
    fake = FakeLogs()
    long_line = "€" * 300_000  # 900,000 bytes
    append(project, "runtime.log", "short\n" + long_line + "\nafter\n")
    ship(fake, project)
    got = fake.messages(STREAM)
    assert got[0] == "short" and got[-1] == "after" and "".join(got[1:-1]) == long_line
    assert all(len(m.encode()) <= 262_144 - 26 for m in got)


def test_an_event_time_far_ahead_is_clamped(project):
    fake = FakeLogs()
    append(project, "runtime.log", json.dumps({"timestamp": NOW + 10 * 86400}) + "\n")
    ship(fake, project)
    assert fake.puts[0][1][0]["timestamp"] == NOW_MS + logs.MAX_AHEAD_MS


def test_empty_lines_are_not_sent(project):
    fake = FakeLogs()
    append(project, "runtime.log", "a\n\n\r\nb\n")
    ship(fake, project)
    assert fake.messages(STREAM) == ["a", "b"]


# ----------------------------------------------------------------------------- checkpoints and files


def test_each_line_is_shipped_once_across_runs(project):
    fake = FakeLogs()
    append(project, "runtime.log", "1\n2\n")
    ship(fake, project)
    assert ship(fake, project)["requests"] == 0  # nothing new: no request at all
    append(project, "runtime.log", "3\n")
    append(project, "signal_tracking.log", "s1\n")
    ship(fake, project)
    assert fake.messages(STREAM) == ["1", "2", "3"]
    assert fake.messages("cloud/logs/signal_tracking.log") == ["s1"]
    (entry,) = [e for e in checkpoint(project).values() if e["path"].endswith("runtime.log")]
    st = os.stat(project / "crpbot" / "logs" / "runtime.log")
    assert (entry["id"], entry["offset"]) == (f"{st.st_dev}:{st.st_ino}", 6)


def test_a_partial_last_line_is_held_until_it_ends(project):
    fake = FakeLogs()
    append(project, "runtime.log", "done\nhalf of a li")
    report = ship(fake, project)
    assert fake.messages(STREAM) == ["done"] and report["held_bytes"] == len("half of a li")
    append(project, "runtime.log", "ne\n")
    ship(fake, project)
    assert fake.messages(STREAM) == ["done", "half of a line"]


def test_a_truncated_file_is_read_again_from_the_start(project):
    fake = FakeLogs()
    path = append(project, "runtime.log", "first run line one\nfirst run line two\n")
    ship(fake, project)
    path.write_bytes(b"new\n")  # truncated (shorter than the checkpoint), same inode
    report = ship(fake, project)
    assert report["truncated"] == [str(path)]
    assert fake.messages(STREAM)[-1] == "new"


def test_a_file_truncated_and_rewritten_past_its_checkpoint_is_read_again(project):
    fake = FakeLogs()
    path = append(project, "runtime.log", "aaaa\n")
    ship(fake, project)
    path.write_bytes(b"bbbb\ncccc\n")  # copytruncate, then more written than before: the head differs
    ship(fake, project)
    assert fake.messages(STREAM) == ["aaaa", "bbbb", "cccc"]


def test_a_rotated_file_is_finished_before_it_is_forgotten(project):
    fake = FakeLogs()
    path = append(project, "runtime.log", "before\n")
    ship(fake, project)
    append(project, "runtime.log", "written before the rotation\nand a last line without its newline")
    path.rename(project / "crpbot" / "logs" / "runtime.log.1")  # out of the glob
    append(project, "runtime.log", "new file\n")
    report = ship(fake, project)
    assert fake.messages(STREAM) == ["before", "written before the rotation", "and a last line without its newline",
                                     "new file"]
    assert len(report["rotated"]) == 1 and report["vanished"] == []
    assert [e["path"] for e in checkpoint(project).values()] == [str(path)]


def test_a_file_renamed_within_the_globs_keeps_its_stream_and_offset(project):
    fake = FakeLogs()
    path = append(project, "runtime.log", "one\n")
    ship(fake, project)
    append(project, "runtime.log", "two\n")
    path.rename(project / "crpbot" / "logs" / "runtime.1.log")
    ship(fake, project)
    assert fake.messages(STREAM) == ["one", "two"]
    assert "cloud/logs/runtime.1.log" not in fake.groups["/crpbot/builder"]


def test_a_deleted_file_is_reported_and_forgotten(project):
    fake = FakeLogs()
    path = append(project, "runtime.log", "one\n")
    ship(fake, project)
    path.unlink()
    report = ship(fake, project)
    assert report["vanished"] == [str(path)] and checkpoint(project) == {}


def test_a_file_open_while_it_is_deleted_is_read_to_its_end(project, monkeypatch):
    fake = FakeLogs()
    path = append(project, "runtime.log", "a\nb\n")
    real_open = open

    def open_then_delete(name, *args, **kwargs):
        fh = real_open(name, *args, **kwargs)
        if str(name) == str(path):
            os.unlink(name)  # loguru's retention deletes it while the shipper reads
        return fh

    monkeypatch.setattr("builtins.open", open_then_delete)
    ship(fake, project)
    assert fake.messages(STREAM) == ["a", "b"]


def test_a_glob_outside_the_project_dir_is_refused(project):
    for pattern in ("/var/log/*.log", "../other/*.log", "logs/../../x.log"):
        with pytest.raises(logs.LogsError, match="outside the project dir"):
            ship(FakeLogs(), project, globs=[pattern])


def test_a_symlink_out_of_the_project_dir_is_not_followed(project, tmp_path):
    outside = tmp_path / "secret.log"
    outside.write_text("not ours\n")
    (project / "crpbot" / "logs" / "link.log").symlink_to(outside)
    fake = FakeLogs()
    ship(fake, project)
    assert fake.puts == []


def test_the_checkpoint_is_replaced_atomically(project, monkeypatch):
    fake = FakeLogs()
    append(project, "runtime.log", "one\n")
    ship(fake, project)
    before = (project / "state" / "state.json").read_text()
    append(project, "runtime.log", "two\n")

    def crash(*_args):
        raise Killed

    monkeypatch.setattr(logs.os, "replace", crash)
    with pytest.raises(Killed):
        ship(fake, project)
    assert (project / "state" / "state.json").read_text() == before
    assert [p.name for p in (project / "state").iterdir()] == ["state.json"]  # no temp file left


# ----------------------------------------------------------------------------- at least once: a kill mid-batch


def test_a_kill_after_a_batch_was_accepted_sends_that_one_batch_again_and_loses_nothing(project):
    lines = [f"line {i}" for i in range(25)]
    append(project, "runtime.log", "".join(line + "\n" for line in lines))
    fake = FakeLogs()
    fake.kill_after_accepting = 2  # CloudWatch accepted batch 2, the process died before its checkpoint
    with pytest.raises(Killed):
        ship(fake, project, limits={"max_events": 10})
    assert fake.messages(STREAM) == lines[:20]
    fake.kill_after_accepting = None
    ship(fake, project, limits={"max_events": 10})
    # At least once: batch 2 (lines 10-19) is there twice, nothing else is, nothing is missing.
    assert fake.messages(STREAM) == lines[:20] + lines[10:25]


def test_a_kill_before_a_batch_was_accepted_duplicates_nothing(project):
    lines = [f"line {i}" for i in range(25)]
    append(project, "runtime.log", "".join(line + "\n" for line in lines))
    fake = FakeLogs()
    fake.create_log_stream("/crpbot/builder", STREAM)
    fake.fail = [Killed()]  # the process dies while the first batch is on its way, before CloudWatch has it
    with pytest.raises(Killed):
        ship(fake, project, limits={"max_events": 10})
    ship(fake, project, limits={"max_events": 10})
    assert fake.messages(STREAM) == lines


# ----------------------------------------------------------------------------- retries and faults


def test_throttling_and_network_errors_are_retried_with_backoff(project):
    fake = FakeLogs()
    fake.create_log_stream("/crpbot/builder", STREAM)
    fake.fail = [client_error("ThrottlingException"), EndpointConnectionError(endpoint_url="http://x"),
                 client_error("ServiceUnavailableException")]
    append(project, "runtime.log", "x\n")
    sleeps = []
    ship(fake, project, sleeps=sleeps)
    assert fake.messages(STREAM) == ["x"]
    assert len(sleeps) == 3 and sleeps[0] <= 1.0 and sleeps[2] <= 4.0


def test_an_error_that_persists_stops_the_run_and_the_next_run_ships_it(project):
    fake = FakeLogs()
    fake.create_log_stream("/crpbot/builder", STREAM)
    fake.fail = [client_error("ThrottlingException")] * 7
    append(project, "runtime.log", "x\n")
    with pytest.raises(logs.LogsError, match="still failing after 6 retries: ThrottlingException"):
        ship(fake, project)
    assert fake.messages(STREAM) == [] and not (project / "state" / "state.json").exists()
    ship(fake, project)
    assert fake.messages(STREAM) == ["x"]


def test_an_error_that_is_not_transient_is_not_retried(project):
    fake = FakeLogs()
    fake.create_log_stream("/crpbot/builder", STREAM)
    fake.fail = [client_error("AccessDeniedException")]
    append(project, "runtime.log", "x\n")
    with pytest.raises(logs.LogsError, match="PutLogEvents to /crpbot/builder cloud/logs/runtime.log failed: "
                                             "AccessDeniedException"):
        ship(fake, project)


def test_a_missing_group_is_created_with_the_retention(project):
    fake = FakeLogs(groups=())
    append(project, "runtime.log", "x\n")
    ship(fake, project)
    assert fake.retention == {"/crpbot/builder": 30} and fake.messages(STREAM) == ["x"]


def test_a_missing_group_this_host_cannot_create_is_named(project):
    fake = FakeLogs(groups=())
    fake.create_group_error = client_error("AccessDeniedException", "CreateLogGroup")
    append(project, "runtime.log", "x\n")
    with pytest.raises(logs.LogsError, match="log group /crpbot/builder does not exist and this host cannot create"):
        ship(fake, project)


def test_a_bad_group_name_is_refused(project):
    with pytest.raises(logs.LogsError, match="is not a name CloudWatch Logs accepts"):
        ship(FakeLogs(), project, log_group="/crpbot/has space")


def test_main_writes_a_status_and_exits_non_zero_on_a_fault(project, capsys):
    append(project, "runtime.log", "x\n")
    path = project / "config.json"
    path.write_text(json.dumps(config(project)))
    fake = FakeLogs()
    assert logs.main(["--config", str(path)], client=fake, now=lambda: NOW) == 0
    status = json.loads((project / "state" / "status.json").read_text())
    assert status["ok"] is True and status["report"]["events"] == 1 and status["last_success"] == status["last_run"]
    fake.fail = [client_error("AccessDeniedException")]
    append(project, "runtime.log", "y\n")
    assert logs.main(["--config", str(path)], client=fake, now=lambda: NOW) == 1
    failed = json.loads((project / "state" / "status.json").read_text())
    assert failed["ok"] is False and "AccessDeniedException" in failed["error"]
    assert failed["last_success"] == status["last_success"]
    assert '"ok": false' in capsys.readouterr().out


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize(("value", "expected"), [
    ("1h", NOW_MS - 3600_000), ("30m", NOW_MS - 1800_000), ("2d", NOW_MS - 2 * DAY_MS),
    ("2026-12-03T09:00:00Z", 1796288400000),
])
def test_parse_since(value, expected):
    assert logs.parse_since(value, NOW) == expected


def test_parse_since_refuses_garbage():
    with pytest.raises(logs.LogsError, match="give a duration such as 30m"):
        logs.parse_since("an hour", NOW)


# ----------------------------------------------------------------------------- against moto


def test_ship_and_read_back_through_moto(project, moto_endpoint):
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106
    group = f"/crpbot/unit-{time.time_ns()}"
    now = time.time()
    append(project, "runtime.log", "".join(json.dumps({"timestamp": now - 60 + i, "text": f"INFO {i}"}) + "\n"
                                           for i in range(5)) + json.dumps({"timestamp": now, "text": "ERROR boom"})
           + "\n")
    append(project, "signal_tracking.log", "ERROR a text line\n")
    shipper = logs.Shipper(client, config(project, log_group=group))
    report = shipper.run()
    assert report["events"] == 7 and report["requests"] == 4  # two streams, each created after a first refusal
    assert client.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 30
    streams = {s["logStreamName"] for s in client.describe_log_streams(logGroupName=group)["logStreams"]}
    assert streams == {"cloud/logs/runtime.log", "cloud/logs/signal_tracking.log"}
    events = logs.read_events(client, [{"group": group, "host": "cloud"}], int((now - 3600) * 1000))
    assert [e["message"] for e in events][:5] == [json.dumps({"timestamp": now - 60 + i, "text": f"INFO {i}"})
                                                  for i in range(5)]
    errors = logs.read_events(client, [{"group": group, "host": "cloud"}], int((now - 3600) * 1000), grep="ERROR")
    assert {(e["file"], e["message"]) for e in errors} == {
        ("logs/runtime.log", json.dumps({"timestamp": now, "text": "ERROR boom"})),
        ("logs/signal_tracking.log", "ERROR a text line")}
    assert logs.read_events(client, [{"group": group, "host": "local"}], 0) == []
    assert logs.read_events(client, [{"group": "/crpbot/none", "host": "cloud"}], 0) == []
    line = logs.format_event(errors[0])
    assert line.endswith("Z cloud logs/runtime.log | " + json.dumps({"timestamp": now, "text": "ERROR boom"}))


# ----------------------------------------------------------------------------- the pre-flight row


@pytest.mark.parametrize(("status", "max_age", "ok", "why"), [
    ({"ok": True, "last_success": NOW - 42}, 900, True, "logs shipped up to 42 seconds ago"),
    ({"ok": True, "last_success": NOW - 1000}, 900, False, "logs shipped up to 1000 seconds ago (more than 900"),
    ({"ok": True, "last_success": NOW - 100_000}, 0, True, "logs shipped up to 100000 seconds ago"),
    ({"ok": False, "last_success": NOW - 70, "error": "EndpointConnectionError: Could not connect"}, 900, False,
     "the last run failed: EndpointConnectionError: Could not connect; logs shipped up to 70 seconds ago"),
    ({"ok": False, "last_success": None, "error": "NoCredentialsError"}, 900, False,
     "the last run failed: NoCredentialsError; logs never shipped"),
    (None, 900, False, "no shipper status"),
])
def test_the_preflight_row_says_how_long_ago_logs_were_shipped(tmp_path, status, max_age, ok, why):
    from tests.ansible_run import load_plugin

    preflight = load_plugin("plugins/modules/crpbot_preflight.py")
    path = tmp_path / "status.json"
    if status is not None:
        path.write_text(json.dumps(status))
    (found,) = preflight.logs_checks({"logs_status": str(path), "logs_max_age": max_age}, now=NOW)
    assert (found["check"], found["ok"]) == ("logs shipped", ok) and why in found["why"], found
    assert preflight.logs_checks({"logs_status": None, "logs_max_age": 900}) == []


KILLER = r"""
import json, os, signal, sys
import boto3
sys.path.insert(0, sys.argv[1])
import crpbot_logs
config = json.load(open(sys.argv[2]))
client = boto3.client("logs", endpoint_url=config["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testbed", aws_secret_access_key="testbed")
put, calls = client.put_log_events, []

def put_then_die(**kwargs):
    answer = put(**kwargs)  # CloudWatch has the batch ...
    calls.append(1)
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before its checkpoint
    return answer

client.put_log_events = put_then_die
sys.exit(crpbot_logs.main(["--config", sys.argv[2]], client=client))
"""


def test_kill_9_after_an_accepted_batch_duplicates_that_batch_only(project, moto_endpoint):
    """A real SIGKILL (no handler, no cleanup) right after moto accepted the second batch: the next run
    sends that batch again; every line is in the stream, the second batch twice, nothing else twice."""
    group = f"/crpbot/kill-{time.time_ns()}"
    now = time.time()
    # ~4,600 events of ~200 bytes fill a 1 MiB batch: 12,000 lines make three batches.
    lines = [json.dumps({"timestamp": now - 100 + i / 1000, "n": i, "pad": "p" * 160}) for i in range(12_000)]
    append(project, "runtime.log", "".join(line + "\n" for line in lines))
    path = project / "config.json"
    path.write_text(json.dumps(config(project, log_group=group, endpoint_url=moto_endpoint, region="us-east-1")))
    module_utils = str(Path(logs.__file__).parent)
    killed = subprocess.run([sys.executable, "-c", KILLER, module_utils, str(path), "2"], check=False)
    assert killed.returncode == -9
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106
    again = subprocess.run([sys.executable, "-c", KILLER, module_utils, str(path), "0"], check=False)  # no kill
    assert again.returncode == 0
    events = client.get_log_events(logGroupName=group, logStreamName=STREAM, startFromHead=True, limit=10_000)
    got = [json.loads(e["message"])["n"] for e in events["events"]]
    token = events["nextForwardToken"]
    while True:
        page = client.get_log_events(logGroupName=group, logStreamName=STREAM, nextToken=token, startFromHead=True)
        if not page["events"]:
            break
        got += [json.loads(e["message"])["n"] for e in page["events"]]
        token = page["nextForwardToken"]
    # (moto returns them by timestamp, so a resent line sits beside its first copy: count them.)
    counts = Counter(got)
    assert set(counts) == set(range(12_000)), "a line was lost"
    twice = sorted(n for n, c in counts.items() if c == 2)
    assert max(counts.values()) == 2 and twice, counts.most_common(1)
    # Exactly one batch twice: the one in flight, a contiguous run after batch 1, before batch 3.
    assert twice == list(range(twice[0], twice[-1] + 1)) and 0 < twice[0] and twice[-1] < 11_999
    assert 1_000 < len(twice) <= 10_000


def test_follow_prints_each_new_event_once_as_it_arrives(moto_endpoint):
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106
    group = f"/crpbot/follow-{time.time_ns()}"
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="cloud/logs/runtime.log")
    now_ms = int(time.time() * 1000)
    arriving = [[{"timestamp": now_ms - 5000, "message": "ERROR first"},
                 {"timestamp": now_ms - 4000, "message": "INFO"}],
                [],
                [{"timestamp": now_ms - 4500, "message": "ERROR late, older than the newest"},
                 {"timestamp": now_ms - 1000, "message": "ERROR third"}]]

    def sleep(_seconds):
        batch = arriving.pop(0)
        if batch:
            client.put_log_events(logGroupName=group, logStreamName="cloud/logs/runtime.log", logEvents=batch)

    shown = []
    count = logs.follow(client, [{"group": group, "host": "cloud"}], now_ms - 60_000, "ERROR", shown.append, sleep,
                        rounds=3)
    assert count == 3
    assert [line.rsplit(" | ", 1)[1] for line in shown] == ["ERROR first", "ERROR late, older than the newest",
                                                           "ERROR third"]
    assert all(" cloud logs/runtime.log | " in line for line in shown)

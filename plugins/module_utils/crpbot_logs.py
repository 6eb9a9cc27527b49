# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ship the crpbot logs to CloudWatch Logs, and read them back (stdlib only; boto3 passed in).

This one file is both the shared code of the project's log modules and the shipper itself: the
``crpbot_logs`` role copies it to each host (``~/.crpbot-logs/crpbot_logs.py``) and the host user's
crontab runs it every minute with the app's own venv python (boto3) and the host's AWS profile::

    <project>/.venv/bin/python ~/.crpbot-logs/crpbot_logs.py --config ~/.crpbot-logs/config.json

One run is one pass over the configured globs (one run at a time: an flock). Per file it keeps a
checkpoint, keyed by the file's identity (device, inode), holding the byte offset of the first line not
yet accepted by CloudWatch; the checkpoint file is replaced atomically (temp file, fsync, rename) after
every batch PutLogEvents accepts. So the delivery is **at least once**: a run killed after CloudWatch
accepted a batch and before its checkpoint was written sends that one batch again on the next run, and
nothing else is sent twice or lost.

* A line is shipped once it ends (``\\n``); a partial last line is held until it does, except in a file
  that rotated out of the globs (renamed: nobody writes it any more), which is finished to its end.
* A file renamed (rotation) is found again by its identity, in the globs or beside its old path, and
  read to its end before it is forgotten; a file gone with bytes never read is reported.
* A file shorter than its checkpoint, or whose first bytes changed (truncated and rewritten), is read
  again from the start.
* Batches keep PutLogEvents' limits: at most 1,048,576 bytes counting 26 bytes per event, 10,000 events,
  chronological order, a span of at most 24 h; a line longer than an event (256 KiB) is split. Events
  older than 14 days (CloudWatch refuses them) are skipped and counted.
* A line that is a JSON object is timestamped with its own time (loguru's ``record.time.timestamp``,
  or ``timestamp``/``time``/``ts``/``@timestamp``); any other line with the time it is read.
* Throttling and network errors are retried with exponential backoff and jitter; when they persist the
  run stops with its checkpoints as they are, and the next run starts there.
* Memory is bounded: a file is read in blocks and at most one batch is held.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import glob
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time

# PutLogEvents' limits (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html)
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BATCH_EVENTS = 10_000
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
# An event more than 2 h ahead is refused too; a clock that runs ahead is clamped to now.
MAX_AHEAD_MS = 2 * 3600 * 1000

READ_BLOCK = 1 << 20
HEAD_BYTES = 256
STATE_VERSION = 1
GROUP_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
STREAM_BAD_CHARS = re.compile(r"[:*]")

RETRY_CODES = frozenset({
    "ThrottlingException", "Throttling", "ServiceUnavailableException", "ServiceUnavailable",
    "InternalFailure", "InternalServerError", "RequestLimitExceeded", "LimitExceededException",
    "RequestTimeout", "RequestTimeoutException", "OperationAbortedException",
})
NETWORK_ERRORS = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ConnectionError", "ProxyConnectionError", "HTTPClientError", "ConnectionRefusedError",
    "ConnectionResetError", "TimeoutError", "BrokenPipeError",
})
TIME_KEYS = ("timestamp", "time", "ts", "@timestamp")


class LogsError(Exception):
    """A fault the run reports and stops on; the message names what and the fix, never a secret."""


# --------------------------------------------------------------------------- small pure helpers


def valid_group_name(name):
    return isinstance(name, str) and bool(GROUP_RE.match(name)) and not name.startswith("aws/")


def stream_name(host, rel_path):
    """The stream of one file of one host: ``<host>/<path relative to the project dir>``."""
    return STREAM_BAD_CHARS.sub("_", f"{host}/{rel_path}")[:512]


def _to_ms(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        # Seconds (loguru, time.time()) or already milliseconds.
        return int(value * 1000) if value < 1e11 else int(value)
    if isinstance(value, str) and value[:4].isdigit():
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return int(parsed.timestamp() * 1000)
    return None


def line_timestamp(text, fallback_ms):
    """The event time of one line, in ms: a JSON object's own time when it has one, else ``fallback_ms``."""
    if not text.startswith("{"):
        return fallback_ms
    try:
        obj = json.loads(text)
    except ValueError:
        return fallback_ms
    if not isinstance(obj, dict):
        return fallback_ms
    record = obj.get("record")
    if isinstance(record, dict):  # loguru's serialize=True
        moment = record.get("time")
        if isinstance(moment, dict):
            found = _to_ms(moment.get("timestamp"))
            if found is not None:
                return found
    for key in TIME_KEYS:
        if key in obj:
            found = _to_ms(obj[key])
            if found is not None:
                return found
    return fallback_ms


def split_message(text, limit=MAX_EVENT_BYTES):
    """Cut ``text`` into pieces whose UTF-8 encoding is at most ``limit`` bytes (never inside a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return [text]
    pieces = []
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces


def iter_lines(fh, offset, final=False, block=READ_BLOCK, max_line=MAX_EVENT_BYTES):
    """Yield ``(end_offset, line_bytes)`` for each complete line of ``fh`` from ``offset`` on.

    The newline is not part of the line. A line longer than ``max_line`` comes in pieces of at most
    ``max_line`` bytes (cut at a UTF-8 character boundary), so memory stays bounded. A partial last
    line is not yielded (the caller's checkpoint stays before it) unless ``final``.
    """
    fh.seek(offset)
    buf = b""
    start = offset  # file offset of buf[0]
    while True:
        chunk = fh.read(block)
        if not chunk:
            break
        buf += chunk
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line = buf[pos:nl]
            while len(line) > max_line:
                cut = _char_cut(line, max_line)
                yield start + pos + cut, line[:cut]
                pos += cut
                line = line[cut:]
            pos = nl + 1
            yield start + pos, line
        buf = buf[pos:]
        start += pos
        while len(buf) > max_line:
            cut = _char_cut(buf, max_line)
            start += cut
            yield start, buf[:cut]
            buf = buf[cut:]
    if final and buf:
        yield start + len(buf), buf


def _char_cut(data, limit):
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 else limit


def iter_events(lines, now_ms):
    """``(end_offset, timestamp_ms, message)`` per non-empty line piece; the message is valid UTF-8."""
    for end, raw in lines:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text:
            yield end, None, None  # an empty line: nothing to send, but the offset moves on
            continue
        stamp = min(line_timestamp(text, now_ms), now_ms + MAX_AHEAD_MS)
        pieces = split_message(text)
        for piece in pieces[:-1]:
            yield None, stamp, piece
        yield end, stamp, pieces[-1]


class Batch:
    """One PutLogEvents request's events (sorted when sent) and the file offset it ends at."""

    def __init__(self):
        self.events = []
        self.size = 0
        self.first = None
        self.last = None
        self.end = None
        self.too_old = 0

    def fits(self, stamp, size, max_bytes, max_events, max_span):
        if not self.events:
            return True
        low, high = min(self.first, stamp), max(self.last, stamp)
        return (len(self.events) < max_events and self.size + size <= max_bytes and high - low <= max_span)

    def add(self, stamp, message, size):
        self.events.append({"timestamp": stamp, "message": message})
        self.size += size
        self.first = stamp if self.first is None else min(self.first, stamp)
        self.last = stamp if self.last is None else max(self.last, stamp)

    def sorted_events(self):
        return sorted(self.events, key=lambda event: event["timestamp"])  # stable: file order per time


def batches(events, now_ms, max_bytes=MAX_BATCH_BYTES, max_events=MAX_BATCH_EVENTS, max_span=MAX_SPAN_MS,
            max_age=MAX_AGE_MS):
    """Group ``iter_events`` output into batches within PutLogEvents' limits.

    A batch's ``end`` is the file offset just after its last complete line: the checkpoint once it is
    accepted. Events older than ``max_age`` are counted in ``too_old`` and left out; a batch may hold
    only such skipped lines (no events): its checkpoint still moves on. The last batch is yielded only
    when it has an end (a line split across batches ends in the next one).
    """
    batch = Batch()
    oldest = now_ms - max_age
    for end, stamp, message in events:
        if message is not None:
            if stamp < oldest:
                batch.too_old += 1
            else:
                size = len(message.encode("utf-8")) + EVENT_OVERHEAD
                if not batch.fits(stamp, size, max_bytes, max_events, max_span):
                    yield batch
                    batch = Batch()
                batch.add(stamp, message, size)
        if end is not None:
            batch.end = end
    if batch.events or batch.too_old or batch.end is not None:
        yield batch


# --------------------------------------------------------------------------- checkpoints


def load_state(path):
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except FileNotFoundError:
        return {"version": STATE_VERSION, "files": {}}
    except ValueError as exc:
        raise LogsError(f"{path} does not parse as JSON ({exc}); move it aside to ship every file again") from None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise LogsError(f"{path} is not a checkpoint file; move it aside to ship every file again")
    return state


def save_json(path, data):
    """Replace ``path`` atomically: a temp file beside it, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".crpbot-logs-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def identity(st):
    return f"{st.st_dev}:{st.st_ino}"


def head_digest(fh, length):
    """SHA-256 of the file's first ``length`` bytes (pread: the reader's position stays where it is)."""
    return hashlib.sha256(os.pread(fh.fileno(), length, 0)).hexdigest()


# --------------------------------------------------------------------------- CloudWatch calls


def error_code(exc):
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code", "")
    return ""


def retryable(exc):
    if error_code(exc) in RETRY_CODES:
        return True
    return any(cls.__name__ in NETWORK_ERRORS for cls in type(exc).__mro__)


def call(fn, retries, sleep, what, **kwargs):
    """``fn(**kwargs)``, retried with exponential backoff and full jitter on throttling/network errors."""
    attempt = 0
    while True:
        try:
            return fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised when not retryable
            if not retryable(exc):
                raise
            attempt += 1
            if attempt > retries:
                raise LogsError(f"{what}: still failing after {retries} retries: {describe(exc)}") from None
            sleep(random.uniform(0, min(20.0, 0.5 * 2 ** attempt)))  # noqa: S311 - jitter, not crypto


def describe(exc):
    """``Code: message`` of an AWS error, else the exception's first line."""
    code = error_code(exc)
    if code:
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{code}: {message}" if message else code
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Shipper:
    """One pass of the shipper over a host's log files (``client``: a boto3 ``logs`` client or a fake)."""

    def __init__(self, client, config, now=time.time, sleep=time.sleep, limits=None):
        self.client = client
        self.host = config["host"]
        self.project_dir = os.path.realpath(config["project_dir"])
        self.globs = config.get("globs", ["logs/*.log"])
        self.group = config["log_group"]
        self.retention = int(config.get("retention_days", 30))
        self.state_path = config["state_file"]
        self.retries = int(config.get("retries", 6))
        self.now = now
        self.sleep = sleep
        self.limits = limits or {}
        self.known_streams = set()
        self.group_ready = False
        self.report = {"files": 0, "events": 0, "batches": 0, "requests": 0, "bytes": 0, "too_old": 0,
                       "rejected": 0, "truncated": [], "rotated": [], "vanished": [], "held_bytes": 0}
        if not valid_group_name(self.group):
            raise LogsError(f"log group {self.group!r} is not a name CloudWatch Logs accepts "
                            "(1-512 of letters, digits, _ - / . #, not starting with aws/)")

    # -- files

    def matches(self):
        """The regular files the globs select, inside the project dir, by path."""
        found = {}
        for pattern in self.globs:
            if os.path.isabs(pattern) or ".." in pattern.split("/"):
                raise LogsError(f"glob {pattern!r} is outside the project dir {self.project_dir}: use a relative "
                                "path without ..")
            for path in sorted(glob.glob(os.path.join(self.project_dir, pattern))):
                real = os.path.realpath(path)
                if not real.startswith(self.project_dir + os.sep):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(real)
                    if os.path.isfile(real):
                        found[real] = st
        return found

    def find_renamed(self, entry):
        """The path a known file moved to beside its old path (rotation renames it), or None."""
        directory = os.path.dirname(entry["path"])
        try:
            names = os.listdir(directory)
        except OSError:
            return None
        for name in names:
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if identity(st) == entry["id"] and os.path.isfile(path):
                    return path
        return None

    # -- the pass

    def run(self):
        state = load_state(self.state_path)
        files = state["files"]
        current = self.matches()
        by_id = {}
        for path, st in current.items():
            by_id.setdefault(identity(st), path)
        # Known files no glob selects any more: rotated away (renamed) or deleted. Finish, then forget.
        for key in [k for k in files if k not in by_id]:
            entry = files[key]
            moved = self.find_renamed(entry)
            if moved is None:
                self.report["vanished"].append(entry["path"])
                del files[key]
                save_json(self.state_path, state)
                continue
            self.ship_file(state, key, moved, final=True)
            self.report["rotated"].append(f"{entry['path']} -> {moved}")
            del files[key]
            save_json(self.state_path, state)
        for key, path in sorted(by_id.items(), key=lambda item: item[1]):
            if key not in files:
                rel = os.path.relpath(path, self.project_dir)
                files[key] = {"id": key, "path": path, "stream": stream_name(self.host, rel), "offset": 0,
                              "head": "", "head_len": 0}
            files[key]["path"] = path
            self.ship_file(state, key, path, final=False)
        return self.report

    def ship_file(self, state, key, path, final):
        entry = state["files"][key]
        self.report["files"] += 1
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with fh:
            st = os.fstat(fh.fileno())
            if identity(st) != key:
                return  # replaced between the listing and the open: the next run sees the new file
            offset = entry["offset"]
            if st.st_size < offset or (entry["head_len"] and head_digest(fh, entry["head_len"]) != entry["head"]):
                self.report["truncated"].append(path)
                offset = entry["offset"] = 0
                entry["head"], entry["head_len"] = "", 0
            if st.st_size == offset:
                return
            now_ms = int(self.now() * 1000)
            lines = iter_lines(fh, offset, final=final)
            for batch in batches(iter_events(lines, now_ms), now_ms, **self.limits):
                if batch.events:
                    self.put(entry["stream"], batch)
                self.report["too_old"] += batch.too_old
                if batch.end is not None:
                    entry["offset"] = batch.end
                    if entry["head_len"] < HEAD_BYTES:
                        entry["head_len"] = min(HEAD_BYTES, batch.end)
                        entry["head"] = head_digest(fh, entry["head_len"])
                    save_json(self.state_path, state)
            self.report["held_bytes"] += max(0, os.fstat(fh.fileno()).st_size - entry["offset"])

    # -- CloudWatch

    def put(self, stream, batch):
        events = batch.sorted_events()
        request = {"logGroupName": self.group, "logStreamName": stream, "logEvents": events}
        for _ in range(3):
            try:
                self.report["requests"] += 1
                response = call(self.client.put_log_events, self.retries, self.sleep,
                                f"PutLogEvents to {self.group} {stream}", **request)
                break
            except LogsError:
                raise
            except Exception as exc:  # noqa: BLE001 - the missing group/stream is created, the rest reported
                code = error_code(exc)
                if code == "ResourceNotFoundException":
                    self.create_stream(stream)
                    continue
                if code == "DataAlreadyAcceptedException":
                    response = {}
                    break
                raise LogsError(f"PutLogEvents to {self.group} {stream} failed: {describe(exc)}") from None
        else:
            raise LogsError(f"PutLogEvents to {self.group} {stream}: the stream is still missing after creating it")
        rejected = (response or {}).get("rejectedLogEventsInfo") or {}
        if rejected:
            self.report["rejected"] += _rejected_count(rejected, len(events))
        self.report["batches"] += 1
        self.report["events"] += len(events)
        self.report["bytes"] += batch.size

    def create_stream(self, stream):
        try:
            call(self.client.create_log_stream, self.retries, self.sleep, f"CreateLogStream {stream}",
                 logGroupName=self.group, logStreamName=stream)
            return
        except LogsError:
            raise
        except Exception as exc:  # noqa: BLE001
            code = error_code(exc)
            if code == "ResourceAlreadyExistsException":
                return
            if code != "ResourceNotFoundException":
                raise LogsError(f"CreateLogStream {stream} in {self.group} failed: {describe(exc)}") from None
        self.create_group()
        with contextlib.suppress(Exception):
            call(self.client.create_log_stream, self.retries, self.sleep, f"CreateLogStream {stream}",
                 logGroupName=self.group, logStreamName=stream)

    def create_group(self):
        try:
            call(self.client.create_log_group, self.retries, self.sleep, f"CreateLogGroup {self.group}",
                 logGroupName=self.group)
        except LogsError:
            raise
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise LogsError(
                    f"log group {self.group} does not exist and this host cannot create it ({describe(exc)}): "
                    "create it (with its retention) from the builder or the console, or grant "
                    "logs:CreateLogGroup and logs:PutRetentionPolicy") from None
            return
        try:
            call(self.client.put_retention_policy, self.retries, self.sleep, f"PutRetentionPolicy {self.group}",
                 logGroupName=self.group, retentionInDays=self.retention)
        except LogsError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise LogsError(f"log group {self.group} created, but its retention of {self.retention} days could "
                            f"not be set ({describe(exc)}); grant logs:PutRetentionPolicy") from None


def _rejected_count(info, total):
    count = 0
    if "tooOldLogEventEndIndex" in info:
        count = max(count, info["tooOldLogEventEndIndex"])
    if "expiredLogEventEndIndex" in info:
        count = max(count, info["expiredLogEventEndIndex"])
    if "tooNewLogEventStartIndex" in info:
        count += total - info["tooNewLogEventStartIndex"]
    return count


# --------------------------------------------------------------------------- reading (controller)

SINCE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value, now):
    """``1h``, ``30m``, ``2d`` (ago), or an ISO time; returns epoch ms."""
    match = SINCE_RE.match(str(value))
    if match:
        return int((now - int(match.group(1)) * UNITS[match.group(2)]) * 1000)
    found = _to_ms(str(value))
    if found is None:
        raise LogsError(f"since={value!r}: give a duration such as 30m, 1h, 2d, or an ISO time such as "
                        "2026-12-03T09:00:00Z")
    return found


def read_events(client, sources, since_ms, grep="", limit=1000, until_ms=None):
    """The events of ``sources`` (``[{"group", "host"}]``) since ``since_ms`` matching ``grep``, oldest first.

    ``grep`` is a literal substring (case-sensitive). At most ``limit`` events, the newest kept when more
    match. Each result: ``{timestamp, host, file, message}``.
    """
    found = []
    for source in sources:
        kwargs = {"logGroupName": source["group"], "logStreamNamePrefix": source["host"] + "/",
                  "startTime": since_ms}
        if until_ms is not None:
            kwargs["endTime"] = until_ms
        if grep:
            kwargs["filterPattern"] = json.dumps(grep)
        while True:
            try:
                page = client.filter_log_events(**kwargs)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) == "ResourceNotFoundException":
                    break  # nothing shipped to that group yet
                raise LogsError(f"FilterLogEvents on {source['group']}: {describe(exc)}") from None
            for event in page.get("events", []):
                # Both again here: a server that ignores the prefix or the pattern (moto) must not widen the answer.
                if grep and grep not in event["message"]:
                    continue
                if not event["logStreamName"].startswith(source["host"] + "/"):
                    continue
                host, _, rel = event["logStreamName"].partition("/")
                found.append({"timestamp": event["timestamp"], "host": host, "file": rel,
                              "message": event["message"], "id": event.get("eventId", "")})
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                break
            kwargs["nextToken"] = token
    found.sort(key=lambda event: (event["timestamp"], event["host"], event["file"]))
    return found[-limit:] if limit else found


FOLLOW_LATE_MS = 60_000


def follow(client, sources, start_ms, grep, emit, sleep, interval=5.0, rounds=None, seen=None):
    """Emit each new event as it arrives, oldest first, until interrupted (or after ``rounds`` polls).

    Each poll reads again from a minute before the newest event seen (an event can reach CloudWatch late)
    and skips the ids already emitted; ids older than that window are forgotten, so memory stays bounded.
    Returns how many events were emitted.
    """
    seen = dict(seen or {})  # event id -> timestamp
    cursor = max(seen.values(), default=start_ms)
    emitted = done = 0
    while rounds is None or done < rounds:
        sleep(interval)
        done += 1
        for event in read_events(client, sources, max(start_ms, cursor - FOLLOW_LATE_MS), grep, limit=0):
            if event["id"] in seen:
                continue
            seen[event["id"]] = event["timestamp"]
            cursor = max(cursor, event["timestamp"])
            emit(format_event(event))
            emitted += 1
        seen = {key: stamp for key, stamp in seen.items() if stamp >= cursor - FOLLOW_LATE_MS}
    return emitted


def format_event(event):
    moment = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, tz=datetime.timezone.utc)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {event['host']} {event['file']} | {event['message']}"


# --------------------------------------------------------------------------- the shipper's command line


def make_client(config):
    import boto3  # the app's venv has it
    from botocore.config import Config

    session = boto3.Session(profile_name=config.get("profile") or None, region_name=config["region"])
    return session.client("logs", endpoint_url=config.get("endpoint_url") or None,
                          config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30))


def main(argv=None, client=None, now=time.time):
    parser = argparse.ArgumentParser(description="Ship the crpbot logs to CloudWatch Logs (one pass).")
    parser.add_argument("--config", required=True, help="the JSON config the crpbot_logs role writes")
    opts = parser.parse_args(argv)
    with open(opts.config, encoding="utf-8") as fh:
        config = json.load(fh)
    status_path = config["status_file"]
    try:
        import fcntl

        lock = open(config["state_file"] + ".lock", "a")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                print(json.dumps({"skipped": "another run is shipping"}))
                return 0
            raise
    except OSError as exc:
        print(f"crpbot_logs: cannot lock {config['state_file']}.lock: {exc}", file=sys.stderr)
        return 1
    started = now()
    try:
        previous = json.load(open(status_path, encoding="utf-8"))  # noqa: SIM115
    except (OSError, ValueError):
        previous = {}
    status = {"last_run": started, "last_success": previous.get("last_success"), "host": config.get("host")}
    try:
        shipper = Shipper(client or make_client(config), config, now=now)
        report = shipper.run()
        status.update(ok=True, error="", last_success=started, report=report)
        code = 0
    except LogsError as exc:
        status.update(ok=False, error=str(exc))
        code = 1
    except Exception as exc:  # noqa: BLE001 - a boto3 error without its own message (no credentials, ...)
        status.update(ok=False, error=describe(exc))
        code = 1
    save_json(status_path, status)
    print(json.dumps(status, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())

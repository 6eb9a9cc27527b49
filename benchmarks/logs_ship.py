#!/usr/bin/env python3
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the crpbot_logs shipper shipping a big log file to CloudWatch Logs (the test bed's moto).

Writes ``--lines`` loguru-style JSON lines (default 1,000,000, about 200 MB) into one
``logs/runtime_<date>.log`` under benchmarks/.work/, serves moto (tests/testbed/moto_server.py) from a
thread of this process, and runs the shipper (plugins/module_utils/crpbot_logs.py, as the hosts run it)
in a child process, once. Prints lines/s, MB/s, the child's peak RSS (getrusage of the children), and the
PutLogEvents requests against the floor: ``ceil((bytes + 26 * events) / 1,048,576)`` (and never fewer than
``events / 10,000``). Then checks that moto holds every line exactly once. Run from the repo root:

  .venv/bin/python benchmarks/logs_ship.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = REPO / "benchmarks" / ".work" / "logs"
SHIPPER = REPO / "plugins" / "module_utils" / "crpbot_logs.py"


def write_log(path: Path, lines: int) -> tuple[int, int]:
    """loguru serialize=True-like lines, ~200 bytes each, timestamps spread over the last 30 minutes."""
    start = time.time() - 1800
    payload = 0
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(lines):
            stamp = start + i * 1800 / lines
            line = json.dumps({"text": f"INFO | signal {i} BTC-USD long conf=0.71", "record": {
                "level": {"name": "INFO"}, "message": f"signal {i} BTC-USD long conf=0.71 {'x' * 40}",
                "time": {"timestamp": round(stamp, 6)}}})
            fh.write(line + "\n")
            payload += len(line.encode())
    return payload, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    opts = parser.parse_args()

    import boto3

    from tests.testbed import free_port, moto_server

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "crpbot" / "logs").mkdir(parents=True)
    log = WORK / "crpbot" / "logs" / "runtime_bench.log"
    t0 = time.perf_counter()
    payload, events = write_log(log, opts.lines)
    print(f"wrote {events:,} lines, {log.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")

    port = free_port()
    shutdown = moto_server.serve_in_thread(port, "waitress")
    endpoint = f"http://127.0.0.1:{port}"
    config = {"host": "bench", "project_dir": str(WORK / "crpbot"), "globs": ["logs/*.log"],
              "log_group": "/crpbot/bench", "retention_days": 30, "region": "us-east-1", "profile": "",
              "endpoint_url": endpoint, "state_file": str(WORK / "state.json"),
              "status_file": str(WORK / "status.json")}
    (WORK / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(SHIPPER), "--config", str(WORK / "config.json")],  # noqa: S603
                              env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            sys.exit(f"the shipper failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])["report"]
        floor = max(math.ceil((payload + 26 * events) / 1_048_576), math.ceil(events / 10_000))
        print(f"shipped {report['events']:,} events in {elapsed:.1f} s: {report['events'] / elapsed:,.0f} lines/s, "
              f"{payload / elapsed / 1e6:.1f} MB/s")
        print(f"shipper CPU {cpu:.1f} s of {elapsed:.1f} s (the rest is moto answering in this process)")
        print(f"shipper peak RSS {peak_kib / 1024:.0f} MiB (file {log.stat().st_size / 2**20:.0f} MiB)")
        # The requests include one refused put (no stream yet) before the stream is created.
        print(f"PutLogEvents requests {report['requests']} (batches {report['batches']}), floor {floor}: "
              f"{report['batches'] / floor:.3f}x")

        client = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")  # noqa: S106
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.logs.models import logs_backends

        stored = logs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].groups["/crpbot/bench"].streams
        (stream,) = stored.values()
        assert len(stream.events) == events, (len(stream.events), events)
        seen = [json.loads(event.message)["record"]["message"].split()[1] for event in stream.events]
        assert seen == [str(i) for i in range(events)], "lines lost, duplicated or out of order"
        print("moto holds every line exactly once, in order")
        assert client.describe_log_groups(logGroupNamePrefix="/crpbot/bench")["logGroups"][0]["retentionInDays"] == 30
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        shutdown()
    # waitress's closed server thread may still write to its trigger pipe: leave without waiting for it.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

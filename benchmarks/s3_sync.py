#!/usr/bin/env python3
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the crpbot_s3_transfer module (through ansible-playbook) against ``aws s3 sync``.

Builds a data set like ``data/raw/<SYMBOL>/<SYMBOL>_1m_NNNNN.parquet`` (2,000 files, mostly 20 KB
with one in ~105 at 2 MB, ~77 MB; ``--files 20000`` for the large variant), starts its own moto
server on a free loopback port (the test bed's, ``tests/testbed/moto_server.py``: moto served by
waitress, or ``--server werkzeug`` as ``moto_server`` serves it) and times, side by side, on
separate buckets:

  cold push, no-op push, cold filtered pull (BTC-USD*), no-op pull, pull after one same-size rebuild,
  and each tool's fixed cost (a pull of an empty prefix; for the module also ansible-playbook with
  one ping task)

Prints the median of ``--repeat`` runs per case, the ratio module/awscli, the peak RSS of the
module process itself (the playbook runs it through a small interpreter wrapper that records it),
of the largest process of the playbook run (ansible-playbook, its worker or the module) and of aws.
``--files 2000,20000`` runs both sizes (each with its own data set and moto server) and then prints
the no-op time at the larger size over the smaller one. Run from the repo root after ``uv sync``:

  .venv/bin/python benchmarks/s3_sync.py [--files 2000,20000] [--repeat 3,1] [--server werkzeug]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from tests import testbed  # noqa: E402 - the test bed's S3 server, started the same way
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOGE-USD", "AVAX-USD", "DOT-USD",
           "LINK-USD", "LTC-USD"]
SMALL, LARGE = 20 * 1024, 2 * 1024 * 1024
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


def build_dataset(root: Path, count: int) -> int:
    rng = random.Random(42)
    total = 0
    for index in range(count):
        symbol = SYMBOLS[index % len(SYMBOLS)]
        size = LARGE if index % 105 == 52 else SMALL
        path = root / symbol / f"{symbol}_1m_{index:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


MODULE_PYTHON = """#!{python} -S
# Runs the module with the benchmark's python and appends the module process's peak RSS (KB) to a log.
import resource, subprocess, sys
code = subprocess.run([{python!r}, *sys.argv[1:]]).returncode
with open({log!r}, "a") as log:
    log.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + chr(10))
sys.exit(code)
"""


def timed(args, env) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of the largest process the command ran."""
    wrapper = ("import resource,subprocess,sys,time;t=time.monotonic();"
               "r=subprocess.run(sys.argv[1:]);d=time.monotonic()-t;"
               "print(d, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    out = subprocess.run([sys.executable, "-c", wrapper, *args], env=env, capture_output=True, text=True,
                         check=False)
    seconds, rss_kb, code = out.stdout.split()[-3:]
    if code != "0":
        raise SystemExit(f"command failed: {' '.join(args)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return float(seconds), int(rss_kb) // 1024


class Module:
    name = "module"

    def __init__(self, work: Path, endpoint: str, env):
        self.work, self.endpoint, self.env = work, endpoint, env
        self.rss_log = work / "module-rss.log"
        wrapper = work / "module-python"
        wrapper.write_text(MODULE_PYTHON.format(python=sys.executable, log=str(self.rss_log)))
        wrapper.chmod(0o755)
        (work / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": str(wrapper)}}}}))
        play = [{"name": "Benchmark", "hosts": "localhost", "gather_facts": False, "tasks": [{
            "name": "Sync", "crpbot_s3_transfer": {
                "direction": "{{ direction }}", "bucket": "{{ bucket }}", "prefix": "{{ prefix }}",
                "local_dir": "{{ local_dir }}", "filters": "{{ filters | default([]) }}",
                "endpoint_url": endpoint, "path_style": True, "region": "us-east-1"}}]}]
        (work / "play.yml").write_text(json.dumps(play))
        ping = [{"name": "Benchmark floor", "hosts": "localhost", "gather_facts": False,
                 "tasks": [{"name": "Ping", "ansible.builtin.ping": {}}]}]
        (work / "ping.yml").write_text(json.dumps(ping))

    def ping(self):
        """ansible-playbook running one ping task on the same host: what any module costs."""
        return timed([str(VENV_BIN / "ansible-playbook"), "-i", str(self.work / "hosts.yml"),
                      str(self.work / "ping.yml")], self.env)

    def run(self, direction, bucket, local, filtered=False, prefix="data/raw"):
        extra = {"direction": direction, "bucket": bucket, "local_dir": str(local), "prefix": prefix,
                 "filters": ["+ BTC-USD*"] if filtered else []}
        self.rss_log.unlink(missing_ok=True)
        seconds, largest = timed([str(VENV_BIN / "ansible-playbook"), "-i", str(self.work / "hosts.yml"),
                                  str(self.work / "play.yml"), "-e", json.dumps(extra)], self.env)
        module = max(int(line) for line in self.rss_log.read_text().split()) // 1024
        return seconds, largest, module


class AwsCli:
    name = "awscli"

    def __init__(self, endpoint: str, env):
        self.endpoint, self.env = endpoint, env

    def run(self, direction, bucket, local, filtered=False, prefix="data/raw"):
        remote = f"s3://{bucket}/{prefix}"
        src, dst = (str(local), remote) if direction == "push" else (remote, str(local))
        args = [str(VENV_BIN / "aws"), "s3", "sync", src, dst, "--endpoint-url", self.endpoint,
                "--only-show-errors"]
        if filtered:
            args += ["--exclude", "*", "--include", "BTC-USD*", "--include", "*/BTC-USD*"]
        seconds, largest = timed(args, self.env)
        return seconds, largest, largest


def empty_bucket(client, bucket):
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        objs = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if objs:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})


CASES = ["cold push", "no-op push", "cold filtered pull", "no-op pull", "pull after same-size rebuild"]
# Not a sync case: a pull of a prefix that holds nothing, i.e. what each tool costs before any work
# (process start, imports, client, one listing call). The module's also holds ansible-playbook's.
FLOOR = "pull of an empty prefix (fixed cost)"
PING = "ansible-playbook, one ping task"


def run_size(work: Path, files: int, repeat: int, client_factory, server: str) -> dict:
    """Every case for both tools, ``repeat`` times, alternating the tools; ``{(case, tool): [(s, MB, MB)]}``."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    total = build_dataset(src, files)
    print(f"data set: {files} files, {total / 1e6:.1f} MB in {src}", flush=True)
    moto_pid, endpoint = testbed.spawn_moto(work / "moto.log", server)
    env = dict(os.environ, **CREDS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    client = client_factory(endpoint)
    tools = [Module(work, endpoint, env), AwsCli(endpoint, env)]
    results = {(case, tool.name): [] for case in CASES for tool in tools}
    rebuilt = src / "BTC-USD" / "BTC-USD_1m_00000.parquet"
    try:
        for tool in tools:
            client.create_bucket(Bucket=f"bench-{tool.name}")
        for rep in range(repeat):
            for tool in tools:
                bucket, local = f"bench-{tool.name}", work / f"dst-{tool.name}"
                tool_src = work / f"src-{tool.name}"
                empty_bucket(client, bucket)
                shutil.rmtree(local, ignore_errors=True)
                shutil.rmtree(tool_src, ignore_errors=True)
                shutil.copytree(src, tool_src, copy_function=os.link)  # hard links: same data, own state file
                results["cold push", tool.name].append(tool.run("push", bucket, tool_src))
                results["no-op push", tool.name].append(tool.run("push", bucket, tool_src))
                results["cold filtered pull", tool.name].append(tool.run("pull", bucket, local, True))
                results["no-op pull", tool.name].append(tool.run("pull", bucket, local, True))
                # One model rebuilt with the same size; pushed (untimed), then the timed pull.
                target = tool_src / rebuilt.relative_to(src)
                target.unlink()
                target.write_bytes(random.Random(rep).randbytes(SMALL))
                tool.run("push", bucket, tool_src)
                results["pull after same-size rebuild", tool.name].append(tool.run("pull", bucket, local, True))
                fetched = (local / rebuilt.relative_to(src)).read_bytes() == target.read_bytes()
                results.setdefault(("fetched", tool.name), []).append(fetched)
                empty = work / f"empty-{tool.name}"
                shutil.rmtree(empty, ignore_errors=True)
                results.setdefault((FLOOR, tool.name), []).append(tool.run("pull", bucket, empty, prefix="nothing-here"))
                if isinstance(tool, Module):
                    results.setdefault((PING, tool.name), []).append(tool.ping())
                print(f"{files} files: run {rep + 1}/{repeat} {tool.name} done", flush=True)
    finally:
        testbed.stop_moto(moto_pid)
    return results


def median(runs, index=0):
    return statistics.median(run[index] for run in runs)


def print_table(files: int, repeat: int, results: dict):
    runs = f"median of {repeat}" if repeat > 1 else "1 run"
    floor_m, floor_a = median(results[FLOOR, "module"]), median(results[FLOOR, "awscli"])
    print(f"\n| case ({files} files, {runs}) | module s | awscli s | module/awscli |"
          " module/awscli beyond each one's fixed cost |"
          " module process peak MB | playbook largest process peak MB | awscli peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case in CASES + [FLOOR]:
        mod, cli = results[case, "module"], results[case, "awscli"]
        m, a = median(mod), median(cli)
        beyond = f"{(m - floor_m) / (a - floor_a):.2f}" if case != FLOOR and a > floor_a else "-"
        print(f"| {case} | {m:.2f} | {a:.2f} | {m / a:.2f} | {beyond} | {max(r[2] for r in mod)} |"
              f" {max(r[1] for r in mod)} | {max(r[1] for r in cli)} |")
    print(f"\n{PING}: {median(results[PING, 'module']):.2f} s (median)")
    print(f"\nsame-size rebuild fetched: module {all(results['fetched', 'module'])},"
          f" awscli {all(results['fetched', 'awscli'])}")


def print_scaling(sizes, by_size):
    small, large = min(sizes), max(sizes)
    print(f"\n| no-op time, {large} files over {small} files | module | awscli |")
    print("|---|---:|---:|")
    for case in ("no-op push", "no-op pull"):
        cells = [median(by_size[large][case, tool]) / median(by_size[small][case, tool])
                 for tool in ("module", "awscli")]
        print(f"| {case} | {cells[0]:.1f}x | {cells[1]:.1f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default="2000", help="comma-separated sizes, e.g. 2000 (default), 20000 or 2000,20000")
    parser.add_argument("--repeat", default="3",
                        help="runs per case (the median is shown); one value, or one per --files size, e.g. 3,1")
    parser.add_argument("--workdir", type=Path, help="keep the data sets and logs here")
    parser.add_argument("--server", choices=["waitress", "werkzeug"], default="waitress",
                        help="how moto is served: waitress (keeps connections open, the default) or werkzeug"
                             " (moto_server's dev server: a new connection and thread per request)")
    opts = parser.parse_args()
    sizes = [int(value) for value in opts.files.split(",")]
    repeats = [int(value) for value in opts.repeat.split(",")]
    if len(repeats) == 1:
        repeats *= len(sizes)
    if len(repeats) != len(sizes):
        parser.error("--repeat takes one value or one per --files size")

    import boto3

    def client_factory(endpoint):
        return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench")

    work = opts.workdir or Path(tempfile.mkdtemp(prefix="crpbot-s3-bench-"))
    by_size = {}
    for files, repeat in zip(sizes, repeats):
        print(f"S3 API server: moto served by {opts.server}", flush=True)
        by_size[files] = run_size(work / str(files), files, repeat, client_factory, opts.server)
        print_table(files, repeat, by_size[files])
    if len(by_size) > 1:
        print_scaling(sizes, by_size)
    print("\n(module process: the module's own python; playbook largest process: the largest single process"
          " of the ansible-playbook run, usually ansible-playbook itself; awscli: the aws process."
          f" This process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()

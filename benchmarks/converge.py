#!/usr/bin/env python3
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: time to a converged pair (issue 12), this checkout side by side with another one.

Brings up a test bed of its own (own state dir, ports and containers), converges it once with
``site.yml``, then for each checkout (``--before PATH``: an older checkout of this repo, e.g. made with
``git worktree add /tmp/before <commit>``; it runs with this venv and the same sandbox) times:

* ``no-op``: ``site.yml`` on the converged pair (pre-flight included);
* ``one .env setting``: ``site.yml`` with one app setting changed since the run before;
* ``--check --diff``: ``site.yml --check --diff`` on the converged pair;
* then, with 2,000 files in the builder's ``data/raw`` (pushed and pulled once), the S3 tasks' own time
  inside a no-op converge (push of models and data on the builder, pull on QC, from a per-task timing
  callback) against ``aws s3 sync`` of the same four syncs, no-op, run standalone from the controller.

Prints the median (and min-max) of ``--repeat`` runs per case, the tasks each host ran, and the ratios
against the targets (no-op <= 10 s, change <= 12 s, check <= 10 s, S3 <= 0.7x awscli). Run from the
repo root; it takes a few minutes:

  .venv/bin/python benchmarks/converge.py [--repeat 3] [--before /tmp/before] [--s3-files 2000]
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from s3_sync import build_dataset  # noqa: E402 - the S3 benchmark's data set (parquet-like files per symbol)
from tests import testbed  # noqa: E402 - the test bed the integration tests use

CALLBACKS = REPO / "benchmarks" / "callback"
TARGETS = {"no-op": 10.0, "one .env setting": 12.0, "--check --diff": 10.0}
S3_TARGET = 0.7


class Checkout:
    """A checkout whose site.yml runs against the benchmark's sandbox, with this venv."""

    def __init__(self, root: Path, label: str):
        self.root, self.label = root, label

    def env(self, times: Path) -> dict[str, str]:
        # The checkout's own callbacks (crpbot_ansiballz_cache where it has it) plus the timing one.
        config = configparser.ConfigParser()
        config.read(self.root / "ansible.cfg")
        enabled = [name.strip() for name in config.get("defaults", "callbacks_enabled", fallback="").split(",")]
        return {**os.environ, "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_VAULT_PASSWORD_FILE": str(testbed.VAULT_PASSWORD_FILE),
                "ANSIBLE_CALLBACK_PLUGINS": f"{self.root / 'plugins' / 'callback'}{os.pathsep}{CALLBACKS}",
                "ANSIBLE_CALLBACKS_ENABLED": ",".join([*filter(None, enabled), "crpbot_task_times"]), "CRPBOT_TASK_TIMES": str(times),
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def site(self, inventory: str, *args: str) -> tuple[float, list[dict]]:
        with tempfile.NamedTemporaryFile(prefix="crpbot-times-", suffix=".jsonl", delete=False) as handle:
            times = Path(handle.name)
        start = time.monotonic()
        done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", inventory, "site.yml", *args],  # noqa: S603
                              cwd=self.root, env=self.env(times), capture_output=True, text=True, check=False)
        seconds = time.monotonic() - start
        records = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
        times.unlink()
        if done.returncode != 0:
            sys.exit(f"{self.label}: site.yml {' '.join(args)} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
        return seconds, records


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):6.1f} s ({min(times):.1f}-{max(times):.1f})"


def tasks_per_host(records: list[dict]) -> int:
    hosts = {r["host"] for r in records}
    return max(sum(1 for r in records if r["host"] == h and r["status"] != "skipped") for h in hosts) if hosts else 0


def round_trips(checkout: Checkout, inventory: str, state: dict) -> int:
    """Remote commands of a no-op converge on the busiest host: the `SSH: EXEC` lines of -vvv, by port."""
    with tempfile.NamedTemporaryFile(prefix="crpbot-times-", suffix=".jsonl", delete=False) as handle:
        times = Path(handle.name)
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", inventory, "site.yml", "-vvv"],  # noqa: S603
                          cwd=checkout.root, env=checkout.env(times), capture_output=True, text=True, check=False)
    times.unlink()
    ports = {str(h["port"]): name for name, h in state["hosts"].items()}
    counts = dict.fromkeys(ports.values(), 0)
    for line in done.stdout.splitlines():
        if "SSH: EXEC ssh" in line:
            for port, name in ports.items():
                if f"Port={port} " in line or f"-p {port} " in line:
                    counts[name] += 1
    return max(counts.values())


def measure_cases(checkout: Checkout, inventory: str, repeat: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    cases = {
        "no-op": lambda n: (),
        # One app setting changed since the run before (alternating values): the .env of both hosts changes.
        "one .env setting": lambda n: ("-e", json.dumps({"crpbot_env_settings": {"CRPBOT_BENCH": f"run-{n}"}})),
        "--check --diff": lambda n: ("--check", "--diff"),
    }
    checkout.site(inventory, *cases["one .env setting"](-1))  # the settings' key exists; the change case differs
    checkout.site(inventory)
    for name, extra in cases.items():
        times, tasks = [], 0
        for n in range(repeat):
            seconds, records = checkout.site(inventory, *extra(n))
            times.append(seconds)
            tasks = tasks_per_host(records)
            if name == "no-op" and any(r["changed"] for r in records):
                changed = sorted({f"{r['host']}: {r['task']}" for r in records if r["changed"]})
                sys.exit(f"{checkout.label}: the no-op converge changed {changed}")
        if name == "one .env setting":
            checkout.site(inventory)  # back to the converged state
        results[name] = {"times": times, "tasks": tasks}
    return results


def s3_task_seconds(records: list[dict]) -> float:
    """The S3 syncs' own time in a converge: the transfer tasks of every host, summed."""
    return sum(r["seconds"] for r in records if r["action"].endswith("crpbot_s3_transfer"))


def awscli_seconds(state: dict, work: Path, repeat: int) -> list[float]:
    """Four no-op `aws s3 sync` runs (push models and data, pull models and the QC's data), summed, per repeat."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testbed", "AWS_SECRET_ACCESS_KEY": "testbed",
           "AWS_DEFAULT_REGION": testbed.REGION, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    endpoint = state["moto"]["endpoint"]
    bucket = f"s3://{testbed.BUCKET}"
    syncs = [
        [str(work / "builder" / "models"), f"{bucket}/models/"],
        [str(work / "builder" / "data" / "raw"), f"{bucket}/data/raw/"],
        [f"{bucket}/models/", str(work / "qc" / "models")],
        [f"{bucket}/data/raw/", str(work / "qc" / "data" / "raw"), "--exclude", "*", "--include", "BTC-USD*"],
    ]
    for sync in syncs:  # first run copies; the timed ones are no-ops
        subprocess.run([str(VENV_BIN / "aws"), "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors", *sync],  # noqa: S603
                       env=env, check=True, capture_output=True)
    totals = []
    for _ in range(repeat):
        start = time.monotonic()
        for sync in syncs:
            subprocess.run([str(VENV_BIN / "aws"), "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors",  # noqa: S603
                            *sync], env=env, check=True, capture_output=True)
        totals.append(time.monotonic() - start)
    return totals


def load_s3_files(state: dict, files: int, work: Path) -> None:
    """2,000 files into the builder's data/raw (and a local copy for awscli's push), through ssh + tar."""
    local = work / "builder" / "data" / "raw"
    local.mkdir(parents=True)
    build_dataset(local, files)
    (work / "builder" / "models").mkdir(parents=True)
    tar = subprocess.Popen(["tar", "-C", str(local), "-cf", "-", "."], stdout=subprocess.PIPE)  # noqa: S603, S607
    home = "/root" if state["hosts"]["sandbox-builder"]["user"] == "root" else "~"
    subprocess.run(testbed.ssh_argv(state, "sandbox-builder") + [f"mkdir -p {home}/crpbot/data/raw && "  # noqa: S603
                   f"tar -C {home}/crpbot/data/raw -xf -"], stdin=tar.stdout, check=True)
    tar.wait()
    with open(work / "models.tar", "wb") as models:
        subprocess.run(testbed.ssh_argv(state, "sandbox-builder") + [f"tar -C {home}/crpbot/models -cf - ."],  # noqa: S603
                       stdout=models, check=True)
    subprocess.run(["tar", "-C", str(work / "builder" / "models"), "-xf", str(work / "models.tar")], check=True)  # noqa: S603, S607


def row(name: str, results: dict[str, dict], labels: list[str]) -> str:
    cells = [f"{summary(results[label][name]['times'])} {results[label][name]['tasks']:4d}" for label in labels]
    now = statistics.median(results[labels[-1]][name]["times"])
    ratio = ""
    if len(labels) >= 2:
        ratio = f" {now / statistics.median(results[labels[0]][name]['times']):5.2f}x"
    target = TARGETS[name]
    verdict = "ok" if now <= target else "OVER"
    return f"| {name:<17} | " + " | ".join(cells) + f" |{ratio} | <= {target:.0f} s {verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, action="append", default=[],
                        help="another checkout of this repo to time side by side (the 'before'); may be repeated, "
                             "oldest first (e.g. one worktree per lever's commit)")
    parser.add_argument("--s3-files", type=int, default=2000, help="files in data/raw for the S3 case (0: skip it)")
    args = parser.parse_args()
    checkouts = [Checkout(path.resolve(), path.name if len(args.before) > 1 else "before") for path in args.before]
    checkouts.append(Checkout(REPO, "now"))
    labels = [c.label for c in checkouts]
    os.environ["CRPBOT_TESTBED_DIR"] = tempfile.mkdtemp(prefix="crpbot-converge-bench-tb-")
    work = Path(tempfile.mkdtemp(prefix="crpbot-converge-bench-"))
    load = os.getloadavg()[0]
    try:
        state = testbed.up(log=lambda *_: None)
        inventory = str(testbed.inventory_file())
        first, _ = checkouts[-1].site(inventory)
        print(f"test bed up; first converge from bare (this checkout): {first:.1f} s; "
              f"load average before: {load:.2f} on {os.cpu_count()} CPUs\n", flush=True)
        results = {c.label: measure_cases(c, inventory, args.repeat) for c in checkouts}
        trips = {c.label: round_trips(c, inventory, state) for c in checkouts}
        print("| case              | " + " | ".join(f"{label:<19} tasks" for label in labels)
              + (f" | now/{labels[0]}" if len(labels) >= 2 else "") + " | target |")
        print("|---|" + "---|" * len(labels) + ("---|" if len(labels) >= 2 else "") + "---|")
        for name in TARGETS:
            print(row(name, results, labels))
        print("| remote round trips, no-op | " + " | ".join(f"{trips[label]:>24d}" for label in labels)
              + (f" | {trips[labels[-1]] / trips[labels[0]]:5.2f}x" if len(labels) >= 2 else "") + " | |")
        print("\n(median of --repeat runs, min-max in brackets; tasks: task results on the busiest host, skips "
              "excluded; round trips: remote commands (-vvv `SSH: EXEC`) on the busiest host)", flush=True)
        if args.s3_files:
            load_s3_files(state, args.s3_files, work)
            checkouts[-1].site(inventory)  # push the files, pull the QC's symbols
            print(f"\nS3 steps of a no-op converge, {args.s3_files} files in data/raw (task time, every host):")
            aws = awscli_seconds(state, work, args.repeat)
            lines = []
            for checkout in checkouts:
                checkout.site(inventory)
                s3 = [s3_task_seconds(checkout.site(inventory)[1]) for _ in range(args.repeat)]
                ratio = statistics.median(s3) / statistics.median(aws)
                lines.append(f"| {checkout.label:<6} | {summary(s3)} | {summary(aws)} | {ratio:5.2f}x | "
                             f"<= {S3_TARGET}x {'ok' if ratio <= S3_TARGET else 'OVER'} |")
            print("| code   | crpbot_s3 tasks     | aws s3 sync x4      | ratio  | target |")
            print("|---|---|---|---|---|")
            print("\n".join(lines))
    finally:
        testbed.down(quiet=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: converge time against the number of hosts (issue 14: no-op at 8 hosts <= 2x at 2 hosts).

For each host count (default 2, 4 and 8) it brings up a test bed of its own (own state dir, ports and
containers) with half of the hosts QC and half builders (``--qc N --builders N``), gives each host the
checkout a real host has before crpbot-ansible first runs (``molecule/shared/prepare.yml``), then times:

* ``from bare``: the first ``site.yml`` (clone present; uv, venv, credentials, .env, S3 all to do);
* ``no-op``: ``site.yml`` on the converged hosts, ``--repeat`` times (median, min-max); every no-op run
  must report changed=0 on every host, or the benchmark stops.

Each builder trains one model of its own before the first converge, so the builders' pushes and the QC
hosts' pulls carry real work. Besides the wall times it prints the CPU seconds of a no-op: the controller's
(``ansible-playbook``, its workers and ssh clients) and the whole machine's, whose difference is the hosts'
work: on this test bed the hosts run on the controller's CPUs, on a real fleet on their own. The test bed goes down before the next host count. Prints one table row per host count and
the ratio no-op(max)/no-op(min) against the 2x target, with the load average before each row: the
machine may be shared with other work, which inflates every number (compare rows of one run only).
Run from the repo root; it takes a while (the 8-host from-bare converge alone is minutes):

  .venv/bin/python benchmarks/scale.py [--hosts 2 4 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from tests import testbed  # noqa: E402 - the test bed the integration tests use

TARGET = 2.0
PREPARE = "molecule/shared/prepare.yml"


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (every process: the controller, the test bed's
    hosts, sshd, the services), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def playbook(inventory: str, play: str, *args: str) -> tuple[float, str]:
    """Run a playbook against the benchmark's sandbox; (seconds, output), exiting on failure."""
    seconds, output, _cpu = timed_playbook(inventory, play, *args)
    return seconds, output


def timed_playbook(inventory: str, play: str, *args: str) -> tuple[float, str, dict[str, float]]:
    """Like playbook(), plus the CPU seconds of the run: ``controller`` (ansible-playbook with its workers and
    ssh clients) and ``machine`` (everything on this machine meanwhile, the hosts' module runs included)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_VAULT_PASSWORD_FILE": str(testbed.VAULT_PASSWORD_FILE),
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = machine_cpu_seconds()
    start = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", inventory, play, *args], cwd=REPO,  # noqa: S603
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {"controller": (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime),
           "machine": machine_cpu_seconds() - machine}
    if done.returncode != 0:
        sys.exit(f"{play} failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout, cpu


def changed_hosts(output: str) -> list[str]:
    """Hosts of the last PLAY RECAP whose changed count is not 0."""
    recap = output[output.rindex("PLAY RECAP"):]
    return [match.group(1) for match in re.finditer(r"^(\S+)\s+:.*changed=(\d+)", recap, re.M) if match.group(2) != "0"]


def train_on_builders(state: dict) -> None:
    """One model per builder (its own symbol), so every push and pull has something to carry."""
    builders = [name for name, host in state["hosts"].items() if host["role"] == "builder"]
    for index, name in enumerate(builders):
        command = (f"cd crpbot && python3 -m apps.trainer.train --model-type lstm --symbol BENCH{index}-USD "
                   "--version v1 --win-rate 0.71 --calibration-error 0.03")
        subprocess.run(testbed.ssh_argv(state, name) + [command], check=True, capture_output=True)  # noqa: S603


def measure(hosts: int, repeat: int) -> dict:
    qc = hosts // 2
    builders = hosts - qc
    os.environ["CRPBOT_TESTBED_DIR"] = tempfile.mkdtemp(prefix=f"crpbot-scale-bench-{hosts}-")
    load = os.getloadavg()[0]
    try:
        state = testbed.up(log=lambda *_: None, qc=qc, builders=builders)
        inventory = str(testbed.inventory_file())
        playbook(inventory, PREPARE)
        train_on_builders(state)  # the fixture's trainer is stdlib only: it runs before .venv exists
        bare, _ = playbook(inventory, "site.yml")
        noop, controller, machine = [], [], []
        for _ in range(repeat):
            seconds, output, cpu = timed_playbook(inventory, "site.yml")
            changed = changed_hosts(output)
            if changed:
                sys.exit(f"{hosts} hosts: the no-op converge changed something on {', '.join(changed)}")
            noop.append(seconds)
            controller.append(cpu["controller"])
            machine.append(cpu["machine"])
    finally:
        testbed.down(quiet=True)
    return {"hosts": hosts, "qc": qc, "builders": builders, "bare": bare, "noop": noop, "load": load,
            "controller": statistics.median(controller), "machine": statistics.median(machine)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[2, 4, 8], help="host counts (each >= 2)")
    parser.add_argument("--repeat", type=int, default=3, help="no-op runs per host count (the median is shown)")
    args = parser.parse_args()
    if any(count < 2 for count in args.hosts):
        parser.error("every host count must be at least 2 (one QC host and one builder)")
    print(f"scale benchmark: site.yml on half QC / half builder test beds; {os.cpu_count()} CPUs, shared with "
          "whatever else runs on this machine (see the load column)\n")
    print("| hosts | QC | builders | from bare | no-op median (min-max), n | no-op per host | no-op CPU: controller "
          "| no-op CPU: machine (hosts' share) | load before |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for count in sorted(args.hosts):
        row = measure(count, args.repeat)
        rows.append(row)
        median = statistics.median(row["noop"])
        print(f"| {count} | {row['qc']} | {row['builders']} | {row['bare']:.1f} s | {median:.1f} s "
              f"({min(row['noop']):.1f}-{max(row['noop']):.1f}), {len(row['noop'])} | {median / count:.2f} s "
              f"| {row['controller']:.1f} s | {row['machine']:.1f} s ({1 - row['controller'] / row['machine']:.0%}) "
              f"| {row['load']:.2f} |", flush=True)
    if len(rows) > 1:
        low, high = rows[0], rows[-1]
        ratio = statistics.median(high["noop"]) / statistics.median(low["noop"])
        verdict = "ok" if ratio <= TARGET else "OVER"
        print(f"\nno-op({high['hosts']}) / no-op({low['hosts']}) = {ratio:.2f}x (target <= {TARGET:.0f}x: {verdict})")
        # The test bed's hosts share this machine's CPUs with the controller; a real fleet's hosts have their own.
        print(f"controller CPU only: {high['controller']:.1f} s / {low['controller']:.1f} s = "
              f"{high['controller'] / low['controller']:.2f}x (the no-op's floor when the hosts have CPUs of their own "
              f"and the controller has {os.cpu_count()})")


if __name__ == "__main__":
    main()

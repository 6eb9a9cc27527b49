#!/usr/bin/env python3
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: ``ansible-playbook playbooks/audit.yml`` on the two sandbox hosts (issue 15: <= 10 s).

Brings up a test bed of its own (its own state dir, ports and containers), converges it once with
``site.yml``, then times ``--repeat`` audits of the converged pair and, for scale, the fixed cost of
``ansible-playbook`` itself (a play with only the ``crpbot_policy`` task on the same hosts). Prints
the median, min and max of each and tears the test bed down. ``--inventory PATH`` times an
already converged sandbox instead (nothing is brought up or converged). Run from the repo root:

  .venv/bin/python benchmarks/audit.py [--repeat 5] [--inventory .testbed/inventory/sandbox.crpbot.yml]
"""

from __future__ import annotations

import argparse
import json
import os
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


def playbook(inventory: str, play: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_VAULT_PASSWORD_FILE": str(testbed.VAULT_PASSWORD_FILE),
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", inventory, play, *args], cwd=REPO, env=env,  # noqa: S603
                          capture_output=True, text=True, check=False)
    return time.monotonic() - start, done


def stats(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"


def measure(inventory: str, repeat: int) -> None:
    reports = tempfile.mkdtemp(prefix="crpbot-audit-bench-")
    policy_only = Path(reports) / "policy.yml"
    policy_only.write_text(json.dumps([{"name": "Fixed cost", "hosts": "crpbot", "gather_facts": False,
                                        "tasks": [{"name": "Policy", "crpbot_policy": None}]}]))
    audits, fixed = [], []
    for _ in range(repeat):
        seconds, done = playbook(inventory, "playbooks/audit.yml", "-e", f"crpbot_audit_report_dir={reports}")
        if done.returncode != 0:
            sys.exit(f"the audit did not pass on the converged sandbox:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        audits.append(seconds)
        seconds, done = playbook(inventory, str(policy_only))
        fixed.append(seconds)
    print(f"audit.yml, two sandbox hosts, converged: {stats(audits)}")
    print(f"ansible-playbook fixed cost (crpbot_policy only): {stats(fixed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inventory", help="an already converged sandbox inventory (nothing brought up)")
    args = parser.parse_args()
    if args.inventory:
        measure(args.inventory, args.repeat)
        return
    os.environ["CRPBOT_TESTBED_DIR"] = tempfile.mkdtemp(prefix="crpbot-audit-bench-tb-")
    try:
        testbed.up(log=lambda *_: None)
        inventory = str(testbed.inventory_file())
        seconds, done = playbook(inventory, "site.yml")
        if done.returncode != 0:
            sys.exit(f"site.yml failed:\n{done.stdout[-3000:]}")
        print(f"site.yml (first converge, for reference): {seconds:.1f} s")
        measure(inventory, args.repeat)
    finally:
        testbed.down(quiet=True)


if __name__ == "__main__":
    main()

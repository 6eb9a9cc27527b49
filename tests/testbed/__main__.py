# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command line of the test bed: ``python -m tests.testbed {up,down,status,inventory,ssh HOST [CMD...]}``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tests import testbed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=testbed.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring up the sandbox hosts and the services (reuses the cached image)")
    up.add_argument("--qc", type=int, default=1, metavar="N",
                    help="QC hosts (default 1: sandbox-qc; more: sandbox-qc-2, ...)")
    up.add_argument("--builders", type=int, default=1, metavar="M",
                    help="builder hosts (default 1: sandbox-builder; more: sandbox-builder-2, ...)")
    sub.add_parser("down", help="remove everything `up` started")
    sub.add_parser("init", help="write an empty sandbox inventory if there is none (molecule runs this first)")
    sub.add_parser("status", help="print the state file")
    sub.add_parser("inventory", help="print the path of the sandbox inventory")
    ssh = sub.add_parser("ssh", help="open a shell (or run a command) on a sandbox host")
    ssh.add_argument("host", help="a host of the test bed (sandbox-qc, sandbox-builder, sandbox-qc-2, ...)")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            testbed.up(qc=args.qc, builders=args.builders)
        elif args.command == "down":
            testbed.down()
        elif args.command == "init":
            testbed.init()
        elif args.command == "status":
            print(json.dumps(testbed.load_state(), indent=2, sort_keys=True))
        elif args.command == "inventory":
            print(testbed.inventory_file())
        elif args.command == "ssh":
            state = testbed.load_state()
            if not state.get("ready"):
                raise testbed.TestbedError("the test bed is not up: run `python -m tests.testbed up`")
            if args.host not in state["hosts"]:
                raise testbed.TestbedError(f"no host {args.host!r} in the test bed; it has "
                                           f"{', '.join(state['hosts'])}")
            argv_ = testbed.ssh_argv(state, args.host) + args.cmd
            os.execvp(argv_[0], argv_)
    except testbed.TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

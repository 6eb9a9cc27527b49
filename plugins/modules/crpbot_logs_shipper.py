#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_logs_shipper
short_description: Install the crpbot log shipper for the host user, schedule it and run it once, in one round trip
description:
  - >-
    Installs the CloudWatch Logs shipper (the project's C(plugins/module_utils/crpbot_logs.py), which this module
    carries with it) as O(dir)/crpbot_logs.py, writes its O(config) as O(dir)/config.json (mode C(0600)), keeps one
    line in the connecting user's crontab that runs it with O(python) every minute (or at O(cron_minute)), then, unless
    in check mode, runs it once so the logs of this converge are shipped before the pre-flight looks.
  - >-
    B(Changed) when the directory, the script, the config or the crontab line had to change. Shipping is not a change
    of the host's configuration and never fails the module: RV(last_run) says what happened, the next cron run
    retries from the shipper's checkpoints, and the pre-flight's "logs shipped" row fails until one succeeds.
  - >-
    Runs as the connecting user (the host user); no root. Files are written atomically (temp file, fsync, rename).
    The crontab line is marked C(#Ansible: <cron_name>), as M(ansible.builtin.cron) marks its jobs, so a line written
    by that module is found and updated; lines of the user's own are kept as they are.
  - The config holds no secret (the shipper uses the host's own AWS profile in C(~/.aws)).
version_added: "0.2.0"
author:
  - crpbot-ansible contributors
options:
  dir:
    description: The shipper's directory (script, config, checkpoints, status); created with mode C(0700).
    type: path
    required: true
  config:
    description: The shipper's settings, written as JSON to O(dir)/config.json (see the crpbot_logs role).
    type: dict
    required: true
  python:
    description: The interpreter the shipper runs with (the app's venv python, which has boto3).
    type: path
    required: true
  cron_minute:
    description: The minute field of the crontab line (C(*) is every minute).
    type: str
    default: "*"
  cron_name:
    description: The name in the crontab line's C(#Ansible:) marker.
    type: str
    default: crpbot logs shipper
  run:
    description: Run the shipper once after installing it (never in check mode).
    type: bool
    default: true
  timeout:
    description: Seconds the one run may take before it is stopped (its checkpoints stay consistent).
    type: int
    default: 300
notes:
  - Supports check mode (nothing written, nothing run) and diff mode (the config and the crontab line; the script's
    source is never shown).
seealso:
  - module: ansible.builtin.cron
"""

EXAMPLES = r"""
- name: Install, schedule and run the log shipper
  crpbot_logs_shipper:
    dir: /home/numan/.crpbot-logs
    python: /home/numan/crpbot/.venv/bin/python
    config:
      host: "{{ inventory_hostname }}"
      project_dir: /home/numan/crpbot
      globs: [logs/*.log]
      log_group: /crpbot/qc
      retention_days: 30
      region: us-east-1
      profile: default
      endpoint_url: ""
      retries: 6
      state_file: /home/numan/.crpbot-logs/state.json
      status_file: /home/numan/.crpbot-logs/status.json
"""

RETURN = r"""
state:
  description: C(installed) (script and config were both new), C(updated) (something changed) or C(current).
  returned: success
  type: str
  sample: current
changes:
  description: What changed (or would), among C(dir), C(script), C(config), C(crontab).
  returned: success
  type: list
  elements: str
  sample: []
cron_line:
  description: The crontab line that runs the shipper.
  returned: success
  type: str
  sample: "* * * * * /home/numan/crpbot/.venv/bin/python /home/numan/.crpbot-logs/crpbot_logs.py --config ..."
last_run:
  description:
    - The one run's outcome; C(ran=false) in check mode or with O(run=false). C(ok), C(events) (shipped), C(error)
      (when it failed), C(skipped) (another run held the lock).
  returned: success
  type: dict
  sample: {ran: true, ok: true, events: 12, error: "", skipped: ""}
"""

import json
import os
import pkgutil
import shlex

from ansible.module_utils import crpbot_logs  # noqa: F401  (imported so the module carries the shipper's source)
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_files import (
    ModuleFailure,
    apply,
    ensure_directory,
    plan_changed,
    plan_write,
    read_existing,
)

MARKER = "#Ansible: "


def shipper_source() -> bytes:
    data = pkgutil.get_data("ansible.module_utils", "crpbot_logs.py")
    if not data:
        raise ModuleFailure("the module was built without the shipper's source (module_utils/crpbot_logs.py)")
    return data


def config_text(config: dict) -> bytes:
    return (json.dumps(config, indent=4, sort_keys=True, separators=(",", ": ")) + "\n").encode()


def cron_line(minute: str, python: str, directory: str) -> str:
    script, config, log = (os.path.join(directory, name) for name in ("crpbot_logs.py", "config.json", "last-run.log"))
    job = f"{shlex.quote(python)} {shlex.quote(script)} --config {shlex.quote(config)} > {shlex.quote(log)} 2>&1"
    return f"{minute} * * * * {job}"


def merge_crontab(current: str, name: str, line: str) -> str:
    """The crontab with exactly one marked entry `name` holding `line`; every other line kept in its place."""
    lines = current.splitlines()
    out, placed, skip_next = [], False, False
    for entry in lines:
        if skip_next:
            skip_next = False
            continue
        if entry == MARKER + name:
            skip_next = True  # the job line that follows the marker
            if not placed:
                out += [entry, line]
                placed = True
            continue
        out.append(entry)
    if not placed:
        out += [MARKER + name, line]
    return "\n".join(out) + "\n"


def entry_of(crontab: str, name: str) -> str:
    """The marked entry `name` (marker and job line) of a crontab, or empty."""
    lines = crontab.splitlines()
    for at, entry in enumerate(lines):
        if entry == MARKER + name:
            return "\n".join(lines[at:at + 2]) + "\n"
    return ""


def read_crontab(module: AnsibleModule) -> str:
    rc, out, err = module.run_command(["crontab", "-l"])
    if rc == 0:
        return out
    if "no crontab for" in err:
        return ""
    raise ModuleFailure(f"`crontab -l` failed ({err.strip() or rc}); is the cron package installed on the host?")


def write_crontab(module: AnsibleModule, text: str) -> None:
    rc, _out, err = module.run_command(["crontab", "-"], data=text, binary_data=True)
    if rc != 0:
        raise ModuleFailure(f"`crontab -` refused the new crontab: {err.strip() or rc}")


def write_file(path: str, data: bytes, mode: int, check: bool, dir_pending: bool) -> tuple[bool, bytes | None]:
    """Write data to path when it differs; (changed, previous bytes)."""
    if dir_pending:  # check mode, the directory is still to be made: every file is new
        return True, None
    old, st = read_existing(path)
    plan = plan_write(path, old, st, data, mode, os.getuid(), os.getgid())
    if plan_changed(plan) and not check:
        apply(plan)
    return plan_changed(plan), old


def ship_once(module: AnsibleModule, python: str, directory: str, timeout: int) -> dict:
    argv = ["timeout", str(timeout), python, os.path.join(directory, "crpbot_logs.py"), "--config",
            os.path.join(directory, "config.json")]
    rc, out, err = module.run_command(argv)
    results = [line for line in out.splitlines() if line.startswith("{")]
    try:
        result = json.loads(results[-1]) if results else {}
    except ValueError:
        result = {}
    if result.get("skipped"):
        return {"ran": True, "ok": True, "events": 0, "error": "", "skipped": result["skipped"]}
    if result.get("ok"):
        return {"ran": True, "ok": True, "events": result.get("report", {}).get("events", 0), "error": "", "skipped": ""}
    error = result.get("error") or (err.strip().splitlines() or [f"exit {rc}, no output"])[-1]
    return {"ran": True, "ok": False, "events": 0, "error": error, "skipped": ""}


def run(module: AnsibleModule) -> dict:
    p, check = module.params, module.check_mode
    directory = p["dir"]
    changes = []
    if ensure_directory(directory, 0o700, check_mode=check):
        changes.append("dir")
    dir_pending = check and not os.path.isdir(directory)
    script_changed, _ = write_file(os.path.join(directory, "crpbot_logs.py"), shipper_source(), 0o644, check, dir_pending)
    new_config = config_text(p["config"])
    config_changed, old_config = write_file(os.path.join(directory, "config.json"), new_config, 0o600, check,
                                            dir_pending)
    changes += [name for name, changed in (("script", script_changed), ("config", config_changed)) if changed]
    line = cron_line(p["cron_minute"], p["python"], directory)
    crontab = read_crontab(module)
    wanted = merge_crontab(crontab, p["cron_name"], line)
    if wanted != crontab:
        changes.append("crontab")
        if not check:
            write_crontab(module, wanted)
    if script_changed and config_changed and old_config is None:
        state = "installed"
    else:
        state = "updated" if changes else "current"
    last_run = {"ran": False, "ok": False, "events": 0, "error": "", "skipped": ""}
    if p["run"] and not check:
        last_run = ship_once(module, p["python"], directory, p["timeout"])
    result = {"changed": bool(changes), "state": state, "changes": changes, "cron_line": line, "last_run": last_run}
    if module._diff and ("config" in changes or "crontab" in changes):
        result["diff"] = [
            {"before_header": f"{directory}/config.json", "after_header": f"{directory}/config.json",
             "before": (old_config or b"").decode(errors="replace"), "after": new_config.decode()},
            # Only this entry: the user's other crontab lines are theirs and may hold anything.
            {"before_header": "crontab", "after_header": "crontab", "before": entry_of(crontab, p["cron_name"]),
             "after": entry_of(wanted, p["cron_name"])},
        ]
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            config=dict(type="dict", required=True),
            python=dict(type="path", required=True),
            cron_minute=dict(type="str", default="*"),
            cron_name=dict(type="str", default="crpbot logs shipper"),
            run=dict(type="bool", default=True),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except ModuleFailure as exc:
        module.fail_json(msg=f"{exc} (shipper dir {module.params['dir']})")
    except OSError as exc:
        module.fail_json(msg=f"cannot install the log shipper in {module.params['dir']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

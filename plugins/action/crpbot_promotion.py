# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_promotion: review, approve, roll back and place model promotions.

Documented in plugins/modules/crpbot_promotion.py. The approvals file is read and written here, on the
controller, from the path the inventory plugin set on the host (crpbot_promotions_file, read from the
inventory's Host object: no variable can point a run at another file). Only a run for a host in group
``qc`` appends to it; placing runs the crpbot_models module on the host with the verified approvals.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import time

import ansible.module_utils
from ansible.plugins.action import ActionBase

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_files import write_atomically  # noqa: E402
from ansible.module_utils.crpbot_models import (  # noqa: E402
    ModelError, current, dump_promotions, gate_results, gates_from, load_placements, load_records,
    rollback_target, seal, slot,
)
from ansible.module_utils.crpbot_policy import BUILDER, QC, authority, role_of  # noqa: E402

STATES = ("check", "review", "approve", "rollback", "place")


def head_of(records: list[dict]) -> str | None:
    return records[-1]["record_sha256"] if records else None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return "-" if value is None else str(value)


def review_table(models: list[dict], records: list[dict], gates: dict) -> tuple[list[str], list[dict]]:
    in_force = {record["model_id"] for record in current(records).values()}
    rows = []
    for entry in models:
        results = gate_results(entry["metrics"], gates)
        rows.append({"model_id": entry["model_id"], "model_type": entry["model_type"], "symbol": entry["symbol"],
                     "version": entry["version"], "created_at": entry["created_at"], "gates": results,
                     "passes_gates": all(row["passed"] for row in results),
                     "approved": entry["model_id"] in in_force})
    header = ["model_id", "type", "symbol", "version", "created_at",
              *[f"{name} {op} {_fmt(threshold)}" for name, (op, threshold) in sorted(gates.items())],
              "gates", "in force"]
    body = [[row["model_id"], row["model_type"], row["symbol"], row["version"], row["created_at"],
             *[_fmt(result["value"]) for result in row["gates"]],
             "PASS" if row["passes_gates"] else "FAIL", "yes" if row["approved"] else ""] for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body)]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"

    table = [line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, body)]
    return table, rows


def write_records(path: str, records: list[dict]) -> None:
    write_atomically(path, dump_promotions(records).encode("utf-8"), 0o644, None, None)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        state = args.pop("state", None)
        host, groups, facts, problems = authority(self._task, self._loader, self._templar, task_vars)
        if state not in STATES:
            problems.append(f"state must be one of {', '.join(STATES)}, got {state!r}")
        if problems:
            result.update(failed=True, changed=False, msg="REFUSED before anything was changed: " + " | ".join(problems))
            return result
        path = facts.get("crpbot_promotions_file")
        role = role_of(host, groups)
        gates = gates_from(args.pop("min_win_rate", 0.68), args.pop("max_calibration_error", 0.05))
        try:
            if not path:
                raise ModelError(f"host {host} has no crpbot_promotions_file: the crpbot inventory plugin sets it. "
                                 "Fix: run with the project's inventory (inventory/crpbot.yml)")
            if state == "check":
                wanted = load_placements(path)
                result.update(changed=False, promotions_file=path, promoted=wanted,
                              msg=f"{path}: {len(wanted)} approved model(s), the record chain verifies")
                return result
            if state == "place":
                return self._place(result, host, role, path, args, task_vars)
            if state == "review":
                records = load_records(path)
                table, rows = review_table(args.get("models") or [], records, gates)
                result.update(changed=False, table=table, rows=rows, head=head_of(records),
                              promotions_file=path, in_force={name: record["model_id"]
                                                              for name, record in current(records).items()})
                return result
            if role != QC:
                raise ModelError(f"host {host} is a {role} host: only a QC host approves or rolls back a promotion "
                                 "(the builder proposes, QC approves). Fix: run playbooks/promote_model.yml, which "
                                 "runs on the qc group")
            return self._append(result, host, facts, path, state, args, gates)
        except ModelError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result

    def _place(self, result, host, role, path, args, task_vars):
        wanted = load_placements(path)
        module_args = {"state": "place", "project_dir": args["project_dir"], "placements": wanted,
                       "mark_registry": role == BUILDER}
        result.update(self._execute_module(module_name="crpbot_models", module_args=module_args, task_vars=task_vars))
        result["promoted"] = [{"name": item["name"], "model_id": item["model_id"]} for item in wanted]
        return result

    def _append(self, result, host, facts, path, state, args, gates):
        approved_by = {"host": host, "host_user": facts.get("crpbot_user"), "controller_user": getpass.getuser()}
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        lock_path = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.lock")
        with open(lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two promotions racing: the second sees the first's record
            records = load_records(path)
            if state == "approve":
                bodies = [self._approval(records, args, gates)]
            else:
                selector = str(args.get("selector") or "")
                bodies = rollback_target(records, selector)
                for body in bodies:
                    body["rolled_back_from"] = current(records)[slot(body)]["model_id"]
            if self._play_context.check_mode:
                result.update(changed=True, records=bodies, msg=f"would record {state} of "
                              f"{', '.join(body['model_id'] for body in bodies)} in {path}")
                return result
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for body in bodies:
                records.append(seal({**body, "action": state, "approved_by": approved_by, "approved_at": stamp},
                                    head_of(records)))
            write_records(path, records)
        added = records[-len(bodies):]
        result.update(changed=True, records=added, promotions_file=path,
                      msg=f"recorded {state} of {', '.join(record['model_id'] for record in added)} in {path} "
                          f"(by {approved_by['controller_user']} on {host}); commit it to git, then converge "
                          "(site.yml) to place it on every host")
        return result

    @staticmethod
    def _approval(records, args, gates):
        candidate = args.get("candidate") or {}
        model_id = str(args.get("model_id") or "")
        if not candidate or candidate.get("model_id") != model_id:
            raise ModelError(f"model {model_id!r} is not in the registry. Fix: list the candidates with "
                             "ansible-playbook playbooks/promote_model.yml and pass one of their model_id values")
        expected_head = args.get("expected_head") or None
        if head_of(records) != expected_head:
            newer = records[[record["record_sha256"] for record in records].index(expected_head) + 1:] \
                if expected_head in [record["record_sha256"] for record in records] else records
            clash = [record for record in newer if slot(record) == slot(candidate)]
            if clash:
                raise ModelError(
                    f"model {model_id}: another promotion of {slot(candidate)} ({clash[-1]['action']} of "
                    f"{clash[-1]['model_id']} by {clash[-1]['approved_by'].get('controller_user')}) was recorded while "
                    "this one was being reviewed; nothing was recorded. Fix: run the playbook again to review "
                    "against it")
        measured = candidate.get("measured_sha256")
        if measured is None:
            raise ModelError(f"model {model_id}: its file {candidate['model_path']} is not on the QC host after the "
                             "pull, so it cannot be verified. Fix: check that the builder pushed it (site.yml on the "
                             "builder) and run again")
        if measured != candidate["file_hash"]:
            raise ModelError(f"model {model_id}: {candidate['model_path']} does not match its registry entry's "
                             "file_hash (SHA-256); it is refused and never promoted. Fix: the builder must push the "
                             "file it registered (or register the file it has as a new version)")
        results = gate_results(candidate["metrics"], gates)
        failed = [row for row in results if not row["passed"]]
        if failed:
            shown = ", ".join(f"{row['metric']} {_fmt(row['value'])} (needs {row['op']} {_fmt(row['threshold'])})"
                              for row in failed)
            raise ModelError(f"model {model_id} fails the promotion gates: {shown}; it cannot be approved. Fix: "
                             "train a better model; the gates are the bot's (crpbot_models_min_win_rate, "
                             "crpbot_models_max_calibration_error)")
        approval = str(args.get("approval") or "").strip()
        if approval != model_id:
            raise ModelError(f"model {model_id} was not approved: the confirmation typed was {approval!r}, not the "
                             "model id. Nothing was recorded")
        return {"model_id": model_id, "model_type": candidate["model_type"], "symbol": candidate["symbol"],
                "version": candidate["version"], "metrics": candidate["metrics"], "gates": results,
                "files": [{"path": candidate["model_path"], "sha256": measured}],
                "created_at": candidate["created_at"]}

# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_audit: compare what crpbot_audit_facts read on every host, on the controller.

Documented in plugins/modules/crpbot_audit.py. Run once per play (run_once); contacts no host. Each
host's role, live approval, database backend, RDS endpoint and region come from the inventory's Host
objects (the crpbot inventory plugin's groups and variables), never from a variable. The comparison
is plugins/module_utils/crpbot_audit.py's (pure); this file only collects its input and writes the
reports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import ansible.module_utils
from ansible.plugins.action import ActionBase

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_audit import (  # noqa: E402
    compare, markdown, problem_lines, report, summary, table_lines,
)
from ansible.module_utils.crpbot_files import write_atomically  # noqa: E402
from ansible.module_utils.crpbot_models import ModelError, load_placements  # noqa: E402
from ansible.module_utils.crpbot_policy import LIVE_GROUP, PolicyError, role_of  # noqa: E402


def keyed(key: str, value: str) -> str:
    """The same keyed hash crpbot_audit_facts returns (HMAC-SHA256, 16 hex digits)."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def expected_key_id(role: str, keys_by_role, shared) -> str | None:
    """The AWS access key id a host of ``role`` should hold (crpbot_credentials' rule), or None."""
    if isinstance(keys_by_role, dict) and isinstance(keys_by_role.get(role), dict):
        return keys_by_role[role].get("access_key_id") or None
    return shared if isinstance(shared, str) and shared else None


def write_atomic(path: str, text: str) -> None:
    write_atomically(path, text.encode("utf-8"), 0o644, None, None)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        results_var = args.get("results", "crpbot_audit_facts_result")
        branch = args.get("branch") or "main"
        report_dir = args.get("report_dir")
        key = args.get("hmac_key") or ""
        inventory = getattr(getattr(self._task, "_variable_manager", None), "_inventory", None)
        if inventory is None or not key:
            result.update(failed=True, msg="crpbot_audit needs the run's inventory and hmac_key; run it through "
                                           "ansible-playbook playbooks/audit.yml")
            return result
        hostvars = task_vars.get("hostvars", {})
        hosts, approved, notes = [], None, []
        try:
            for name in task_vars.get("ansible_play_hosts_all") or []:
                hosts.append(self._host(inventory.get_host(name), hostvars.get(name, {}), results_var, key))
        except PolicyError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        files = {host.vars.get("crpbot_promotions_file") for host in map(inventory.get_host, [h["name"] for h in hosts])}
        files.discard(None)
        if len(files) == 1:
            try:
                approved = load_placements(files.pop())
            except ModelError as exc:
                notes.append(f"the approvals were not compared: {exc}")
        rows = compare(hosts, branch=branch, approved=approved)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc = report(rows, hosts, stamp)
        written = []
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
            base = os.path.join(report_dir, "audit-" + stamp.replace(":", "").replace("-", ""))
            write_atomic(base + ".json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
            write_atomic(base + ".md", markdown(doc))
            written = [base + ".md", base + ".json"]
        names = [host["name"] for host in hosts]
        result.update(changed=False, rows=rows, conflict=doc["conflict"], summary=summary(rows), notes=notes,
                      table=table_lines(rows, names), problems=problem_lines(rows), reports=written,
                      msg=summary(rows))
        return result

    def _host(self, host, hostvar, results_var, key):
        """One host's input to compare(): the inventory's word on it, and what its gather task returned."""
        groups = [group.name for group in host.get_groups() if group.name != "all"]
        role = role_of(host.name, groups)
        facts, error = None, None
        gathered = hostvar.get(results_var) if hasattr(hostvar, "get") else None
        if not isinstance(gathered, dict) or not gathered:
            error = "the host was not read (unreachable, or the gather task did not run)"
        elif gathered.get("unreachable"):
            error = f"unreachable: {str(gathered.get('msg', ''))[:200]}"
        elif gathered.get("failed") or "facts" not in gathered:
            error = f"the gather task failed: {str(gathered.get('msg', ''))[:300]}"
        else:
            facts = gathered["facts"]
        expected = None
        try:
            key_id = expected_key_id(role, self._templar.template(hostvar.get("vault_crpbot_aws_keys_by_role")),
                                     self._templar.template(hostvar.get("vault_crpbot_aws_access_key_id")))
            expected = keyed(key, key_id) if key_id else None
        except Exception:  # noqa: BLE001 - no vault in this run: the key check is left out
            expected = None
        variables = host.vars
        return {"name": host.name, "role": role, "live_approved": LIVE_GROUP in groups,
                "db_backend": variables.get("crpbot_db_backend", "rds"), "region": variables.get("crpbot_region"),
                "rds": {"host": variables.get("crpbot_rds_host"), "port": variables.get("crpbot_rds_port"),
                        "database": variables.get("crpbot_rds_database")},
                "expected_key": expected, "facts": facts, "error": error}

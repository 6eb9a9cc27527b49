# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_rotation: the bookkeeping of a credential rotation, on the controller.

Documented in plugins/modules/crpbot_rotation.py; the decisions are plugins/module_utils/crpbot_rotation.py.
Each call is one step of the playbook's list. The rotation's state is this plugin's own result,
registered as ``crpbot_rotation`` and read back from the task's variables by the next call, so the
state survives between tasks without a single ``set_fact``. A step that fails returns
``failed`` (Ansible's normal failure flow takes the play to its rescue) with the state recording
why; the rescue's calls never fail, they record what could not be undone.
"""

from __future__ import annotations

import os
import time

import ansible.module_utils
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils import crpbot_rotation as rot  # noqa: E402

ACTIONS = ("plan", "begin", "set", "gate", "host_failed", "current", "rescue", "undo_set", "undo_vault", "report")
REGISTER = "crpbot_rotation"
HOST_REGISTER = "crpbot_rotation_host"


def plain(value):
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def probe_why(result: dict, checks: list[str]) -> str:
    """Why a host's app checks failed (the failing checks among ``checks``), or the task's message."""
    rows = [row for row in result.get("checks") or [] if row.get("check") in checks and not row.get("ok")]
    if rows:
        return "; ".join(f"{row.get('check')}: {row.get('why', '')}" for row in rows)
    if result.get("unreachable"):
        return "unreachable"
    return str(result.get("msg") or "failed")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = plain(dict(self._task.args))
        action = args.get("action")
        if action not in ACTIONS:
            result.update(failed=True, msg=f"crpbot_rotation: action must be one of {', '.join(ACTIONS)}, got {action!r}")
            return result
        if action == "host_failed":
            return self._host_failed(result, args, task_vars)
        if action == "plan":
            result.update(changed=False, msg=rot.plan(args["credential"], args.get("resuming_since") or "", args["db"],
                                                        args["admin_host"], args["hosts"], args["vault_file"]))
            return result
        if action == "begin":
            return self._begin(result, args, task_vars)
        state = plain((task_vars.get(REGISTER) or {}).get("state") or {})
        if not state:
            result.update(failed=True, msg=f"crpbot_rotation: action {action} needs the state of action begin, "
                                            f"registered as {REGISTER}")
            return result
        try:
            return getattr(self, "_" + action)(result, state, args, task_vars)
        except rot.RotationError as exc:
            result.update(failed=True, msg=str(exc), state=state)
            return result

    # ------------------------------------------------------------------ helpers
    def _done(self, result, state, msg="", failed=None):
        failed = bool(state["failed"]) if failed is None else failed
        result.update(state=state, failed=failed, changed=False,
                      msg=msg or (f"step {state['failed']} failed" if failed else f"done: {', '.join(state['done'])}"))
        return result

    @staticmethod
    def _hosts(task_vars):
        return list(task_vars.get("ansible_play_hosts_all") or []), list(task_vars.get("ansible_play_hosts") or [])

    @staticmethod
    def _records(task_vars, hosts):
        hostvars = task_vars.get("hostvars") or {}
        records = {}
        for host in hosts:
            try:
                registered = hostvars[host].get(HOST_REGISTER) or {}
            except (KeyError, AttributeError):
                registered = {}
            records[host] = plain(registered.get("failures") or [])
        return records

    def _vault(self, task_vars, path, set_items, remove):
        """Run the crpbot_vault_write action (state=updated): (ok, message)."""
        task = self._task.copy()
        task.args = {"path": path, "state": "updated", "set": set_items, "remove": remove}
        writer = self._shared_loader_obj.action_loader.get(
            "crpbot_vault_write", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        try:
            out = writer.run(task_vars=task_vars)
        except AnsibleError as exc:
            return False, str(exc.message if hasattr(exc, "message") else exc)
        return not out.get("failed"), str(out.get("msg", ""))

    def _service(self, task_vars, args, password, login):
        """Run crpbot_rotate_service on the host this task is delegated to: (ok, altered, message)."""
        module_args = {"project_dir": args["project_dir"], "service": "postgres", "action": "password",
                       "password": password, "login_passwords": [login], "db": args["db"]}
        try:
            out = self._execute_module(module_name="crpbot_rotate_service", module_args=module_args,
                                       task_vars=task_vars)
        except AnsibleError as exc:  # the admin host unreachable: the database may have changed
            return False, True, f"unreachable: {args.get('admin_host', '?')} ({type(exc).__name__})"
        if out.get("unreachable"):
            return False, True, f"unreachable: {args.get('admin_host', '?')}"
        if out.get("failed"):
            return False, bool(out.get("altered", True)), str(out.get("msg", "failed"))
        return True, bool(out.get("altered", True)), ""

    # ------------------------------------------------------------------ steps
    def _begin(self, result, args, task_vars):
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            state = rot.begin(args.get("credential"), args.get("current"), args.get("pending") or None, started)
        except rot.RotationError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        record = rot.pending_record(state)
        if self._task.check_mode:
            return self._done(result, state, msg="would record the rotation as pending", failed=False)
        ok, msg = True, "resuming from the vault's pending record"
        if record is not None:
            ok, msg = self._vault(task_vars, args["vault_file"], [{"key": "vault_crpbot_rotation_pending", "value": record}], [])
        state = rot.service_step(state, "pending", ok, msg, may_have_changed=ok)
        result["changed"] = ok and record is not None
        return self._done(result, state, msg=msg)

    def _set(self, result, state, args, task_vars):
        rot.expect(state, "set")
        ok, altered, msg = self._service(task_vars, args, state["secret"]["new"], state["secret"]["old"])
        state = rot.service_step(state, "set", ok, msg, may_have_changed=state["resuming"] or altered)
        return self._done(result, state, msg=msg)

    def _gate(self, result, state, args, task_vars):
        hosts_all, alive = self._hosts(task_vars)
        step = args.get("step")
        state = rot.gate(state, step, hosts_all, alive, self._records(task_vars, hosts_all))
        return self._done(result, state)

    def _current(self, result, state, args, task_vars):
        rot.expect(state, "current")
        ok, msg = self._vault(task_vars, args["vault_file"],
                              [{"key": "vault_crpbot_db_password", "value": state["secret"]["new"]}],
                              ["vault_crpbot_rotation_pending"])
        state = rot.service_step(state, "current", ok, msg, may_have_changed=ok)
        return self._done(result, state, msg=msg)

    def _rescue(self, result, state, args, task_vars):
        state = rot.failure_seen(state, str(args.get("failed_task") or "?"), str(args.get("failed_msg") or ""))
        result.update(plan=rot.rollback_plan(state))
        return self._done(result, state, failed=False, msg="rolling back: " + ", ".join(
            k for k, v in rot.rollback_plan(state).items() if v))

    def _undo_set(self, result, state, args, task_vars):
        if not rot.rollback_plan(state)["undo_service"]:
            state = rot.service_undone(state, None, "", args["db"]["user"], args.get("admin_host", "?"))
            return self._done(result, state, failed=False, msg="the database role was not changed")
        ok, _altered, msg = self._service(task_vars, args, state["secret"]["old"], state["secret"]["new"])
        state = rot.service_undone(state, ok, msg, args["db"]["user"], args.get("admin_host", "?"))
        result["changed"] = ok
        return self._done(result, state, failed=False, msg=state["service_outcome"])

    def _undo_vault(self, result, state, args, task_vars):
        set_items, remove = rot.vault_restore(state)
        ok, msg = self._vault(task_vars, args["vault_file"], set_items, remove)
        state = rot.vault_undone(state, ok, msg, args["vault_file"])
        return self._done(result, state, failed=False, msg=msg)

    def _report(self, result, state, args, task_vars):
        hosts_all, alive = self._hosts(task_vars)
        out = rot.report(state, hosts_all, alive, self._records(task_vars, hosts_all), args["db"]["user"],
                         args["db"]["host"])
        # No state here: what this returns is shown.
        result.update(changed=False, failed=False, msg=out["summary"], status=out["status"],
                      fail_msg=out["fail_msg"], manual=out["manual"], done=state["done"])
        return result

    def _host_failed(self, result, args, task_vars):
        failure = args.get("result") or {}
        why = probe_why(failure, list(args.get("checks") or []))
        previous = plain((task_vars.get(HOST_REGISTER) or {}).get("failures") or [])
        result.update(changed=False, failures=previous + [{"step": str(args.get("step")), "why": why}],
                      msg=f"step {args.get('step')} failed on this host: {why}")
        return result

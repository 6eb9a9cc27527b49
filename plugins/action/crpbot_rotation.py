# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_rotation: the bookkeeping of a credential rotation, on the controller.

Documented in plugins/modules/crpbot_rotation.py; the decisions are plugins/module_utils/crpbot_rotation.py.
Each call is one step of the playbook's list. The rotation's state is this plugin's own result,
registered as ``crpbot_rotation`` and read back from the task's variables by the next call, so the
state survives between tasks without a single ``set_fact``. A step one host runs for
all (run_once) records its failure in the state; the gate after it, run on every host, fails
every host (Ansible's normal failure flow takes each host to the block's rescue: a failing
run_once task would send only its own host there). The rescue's calls never fail, they record
what could not be undone.
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
from ansible.module_utils.crpbot_data import plain  # noqa: E402

ACTIONS = ("plan", "begin", "set", "gate", "host_failed", "current", "deactivate", "rescue", "undo_set", "undo_vault",
           "report")
REGISTER = "crpbot_rotation"
HOST_REGISTER = "crpbot_rotation_host"


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
        self._state_secret = state.get("secret") or {}
        self._state_slots = state.get("slots") or {}
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

    def _module(self, task_vars, args, module_args):
        """Run crpbot_rotate_service on the host this task is delegated to: (ok, result, message)."""
        module_args = {"project_dir": args["project_dir"], **module_args}
        try:
            out = self._execute_module(module_name="crpbot_rotate_service", module_args=module_args,
                                       task_vars=task_vars)
        except AnsibleError as exc:  # the admin host unreachable: the service may have changed
            return False, {}, f"unreachable: {args.get('admin_host', '?')} ({type(exc).__name__})"
        if out.get("unreachable"):
            return False, out, f"unreachable: {args.get('admin_host', '?')}"
        if out.get("failed"):
            return False, out, str(out.get("msg", "failed"))
        return True, out, ""

    def _service(self, task_vars, args, password, login):
        """Set the database role's password: (ok, altered, message)."""
        ok, out, msg = self._module(task_vars, args, {"service": "postgres", "action": "password", "password": password,
                                                       "login_passwords": [login], "db": args["db"]})
        return ok, bool(out.get("altered", True)), msg

    def _iam(self, task_vars, args, action, auth_name, auth_new, key_id=None):
        """One IAM call for the slot ``auth_name``, signed with its old key or (auth_new) its new one."""
        state_secret = self._state_secret
        if auth_new:
            auth = state_secret["new_keys"][auth_name]
            auth_id, auth_secret = auth["access_key_id"], auth["secret_access_key"]
        else:
            auth_id, auth_secret = self._state_slots[auth_name]["key_id"], state_secret["old"][auth_name]
        module_args = {"service": "iam", "action": action, "auth_access_key_id": auth_id,
                       "auth_secret_access_key": auth_secret, "region": args.get("region") or "us-east-1",
                       "endpoint_url": args.get("endpoint_url") or ""}
        if key_id:
            module_args["access_key_id"] = key_id
        return self._module(task_vars, args, module_args)

    # ------------------------------------------------------------------ steps
    def _begin(self, result, args, task_vars):
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            state = rot.begin(args.get("credential"), args.get("current"), args.get("pending") or None, started,
                              slots=args.get("slots"), iam=args.get("iam"))
        except rot.RotationError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        record = rot.pending_record(state)
        if self._task.check_mode:
            return self._done(result, state, msg="would record the rotation as pending", failed=False)
        ok, msg = True, "resuming from the vault's pending record"
        if record is not None:
            ok, msg = self._vault(task_vars, args["vault_file"], [{"key": rot.PENDING, "value": record}], [])
        state = rot.service_step(state, "pending", ok, msg, may_have_changed=ok)
        result["changed"] = ok and record is not None
        return self._done(result, state, msg=msg, failed=False)

    def _set(self, result, state, args, task_vars):
        rot.expect(state, "set")
        if state["credential"] == "db_password":
            ok, altered, msg = self._service(task_vars, args, state["secret"]["new"], state["secret"]["old"])
            state = rot.service_step(state, "set", ok, msg, may_have_changed=state["resuming"] or altered)
            return self._done(result, state, msg=msg, failed=False)
        ok, msg, created = True, "", []
        for name in rot.keys_to_create(state):
            ok, out, msg = self._iam(task_vars, args, "create", name, auth_new=False)
            if not ok or not out.get("access_key_id") or not out.get("secret_access_key"):
                ok, msg = False, f"AWS key {name}: {msg or 'IAM returned no new key'}"
                break
            state = rot.key_created(state, name, out["access_key_id"], out["secret_access_key"])
            created.append(name)
        state = rot.service_step(state, "set", ok, msg, may_have_changed=bool(state["secret"]["new_keys"]))
        # The new keys go into the vault's pending record even when a later one failed: if the
        # rollback cannot delete them, a rerun resumes with them.
        recorded, vmsg = True, ""
        if created:
            recorded, vmsg = self._vault(task_vars, args["vault_file"],
                                         [{"key": [rot.PENDING, "keys"], "value": state["secret"]["new_keys"]}], [])
        if ok:
            state = rot.service_step(state, "record", recorded, vmsg, may_have_changed=recorded)
        elif not recorded:
            state["why"].append(f"record: {vmsg}")
        return self._done(result, state, msg=msg or vmsg or f"new keys for {', '.join(state['slots'])}", failed=False)

    def _deactivate(self, result, state, args, task_vars):
        rot.expect(state, "deactivate")
        ok, msg = True, ""
        for name, slot in state["slots"].items():
            ok, _out, msg = self._iam(task_vars, args, "deactivate", name, auth_new=True, key_id=slot["key_id"])
            if not ok:
                msg = f"AWS key {name}: {msg}"
                break
        state = rot.service_step(state, "deactivate", ok, msg, may_have_changed=True)
        return self._done(result, state, msg=msg, failed=False)

    def _gate(self, result, state, args, task_vars):
        """Run on every host (not run_once: a run_once failure sends only its own host to the rescue):
        after a step every host took part in (``step``), or after a step one host ran for all (no
        ``step``), every host fails when the step failed, so every host goes to the rescue."""
        step = args.get("step")
        if step:
            hosts_all, alive = self._hosts(task_vars)
            state = rot.gate(state, step, hosts_all, alive, self._records(task_vars, hosts_all))
        return self._done(result, state)

    def _current(self, result, state, args, task_vars):
        rot.expect(state, "current")
        set_items, remove = rot.vault_current(state)
        ok, msg = self._vault(task_vars, args["vault_file"], set_items, remove)
        state = rot.service_step(state, "current", ok, msg, may_have_changed=ok)
        return self._done(result, state, msg=msg, failed=False)

    def _rescue(self, result, state, args, task_vars):
        state = rot.failure_seen(state, str(args.get("failed_task") or "?"), str(args.get("failed_msg") or ""))
        result.update(plan=rot.rollback_plan(state))
        return self._done(result, state, failed=False, msg="rolling back: " + ", ".join(
            k for k, v in rot.rollback_plan(state).items() if v))

    def _undo_set(self, result, state, args, task_vars):
        plan = rot.rollback_plan(state)
        db_user = (args.get("db") or {}).get("user", "?")
        if not plan["undo_service"] and not plan["reactivate"]:
            state = rot.service_undone(state, None, "", db_user, args.get("admin_host", "?"))
            return self._done(result, state, failed=False, msg="the service was not changed")
        if state["credential"] == "db_password":
            ok, _altered, msg = self._service(task_vars, args, state["secret"]["old"], state["secret"]["new"])
        else:
            ok, msg, whys = True, "", []
            names = list(state["secret"]["new_keys"])
            if plan["reactivate"]:  # the old keys first, signed with the new ones
                for name in names:
                    done, _out, why = self._iam(task_vars, args, "activate", name, auth_new=True,
                                                key_id=state["slots"][name]["key_id"])
                    if not done:
                        ok = False
                        whys.append(f"AWS key {name}: {why}")
            if ok:  # then the new keys, signed with the old ones
                for name in names:
                    done, _out, why = self._iam(task_vars, args, "delete", name, auth_new=False,
                                                key_id=state["secret"]["new_keys"][name]["access_key_id"])
                    if not done:
                        ok = False
                        whys.append(f"AWS key {name}: {why}")
            msg = "; ".join(whys)
        state = rot.service_undone(state, ok, msg, db_user, args.get("admin_host", "?"))
        result["changed"] = ok
        return self._done(result, state, failed=False, msg=state["service_outcome"])

    def _undo_vault(self, result, state, args, task_vars):
        set_items, remove = rot.vault_restore(state)
        ok, msg = self._vault(task_vars, args["vault_file"], set_items, remove)
        state = rot.vault_undone(state, ok, msg, args["vault_file"])
        return self._done(result, state, failed=False, msg=msg)

    def _report(self, result, state, args, task_vars):
        hosts_all, alive = self._hosts(task_vars)
        db = args.get("db") or {}
        out = rot.report(state, hosts_all, alive, self._records(task_vars, hosts_all), db.get("user", "?"),
                         db.get("host", "?"))
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

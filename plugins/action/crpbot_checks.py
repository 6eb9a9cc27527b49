# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_checks: a role's input checks, all of them in one controller-side task.

Documented in plugins/modules/crpbot_checks.py. Each role's ``tasks/validate.yml`` lists its checks here
(the one place each rule is written); the task evaluates every check on the controller, contacts no host,
and reports every failing check of the host at once, each message prefixed with the host's name (not in a
``run_once`` task: that one checks the run, not a host).
"""

from __future__ import annotations

import os
import typing as t
from collections import ChainMap

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

CHECK_KEYS = {"that", "msg", "loop", "when"}


def _as_list(value):
    return value if isinstance(value, list) else [value]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: t.Any, templar: t.Any, context: t.Any) -> t.Any:
        # The checks are templated here, check by check and item by item (a message only when its check
        # fails, so it may name `item`), not by the task executor before the run. Same hook as
        # ansible.builtin.assert's `that` (ansible-core 2.19, pinned in uv.lock).
        if name == "checks":
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        host = (task_vars or {}).get("inventory_hostname", "?")
        problem = self._shape_problem(self._task.args)
        if problem:
            result.update(failed=True, msg=f"crpbot_checks: {problem}")
            return result
        failures = self._argument_spec_failures(task_vars or {})
        for check in self._task.args["checks"]:
            failures.extend(self._failures(check))
        result["changed"] = False
        if failures:
            # A run_once task checks the run (the request, the vault file), not the host it happens to run on.
            prefix = "" if self._task.run_once else f"host {host}: "
            failures = [prefix + text for text in failures]
            result.update(failed=True, failures=failures, msg=" ".join(failures))
        else:
            result["msg"] = f"{'the run' if self._task.run_once else 'host ' + host}: all {len(self._task.args['checks'])} checks passed"
        return result

    @staticmethod
    def _shape_problem(args):
        unknown = sorted(set(args) - {"checks", "argument_spec"})
        if unknown:
            return f"unknown option(s) {', '.join(unknown)}; the options are checks and argument_spec"
        if not isinstance(args.get("argument_spec", ""), str):
            return "argument_spec must be the name of an entry point of the role's meta/argument_specs.yml"
        checks = args.get("checks")
        if not isinstance(checks, list) or not checks:
            return "checks must be a non-empty list of {that, msg[, loop][, when]}"
        for number, check in enumerate(checks, 1):
            if not isinstance(check, dict) or not {"that", "msg"} <= set(check) or set(check) - CHECK_KEYS:
                return (f"check {number} must be a mapping with that and msg (and optionally loop and when), "
                        f"got {sorted(check) if isinstance(check, dict) else type(check).__name__}")
            if not all(isinstance(expr, str) for expr in _as_list(check["that"])):
                return f"check {number}: that must be an expression or a list of expressions"
        return ""

    def _argument_spec_failures(self, task_vars):
        """The role's variables against the entry point ``argument_spec`` of its meta/argument_specs.yml.

        What the validate_argument_spec task Ansible puts before a role's entry point does (the values from
        the task's variables, templated), in this same task: the validate entry point has no spec of its own,
        so the one spec of the role (``main``) is checked once per run, before any host is touched.
        """
        entry = self._task.args.get("argument_spec")
        if not entry:
            return []
        role = self._task._role
        if role is None:
            raise AnsibleError("crpbot_checks: argument_spec is for a task of a role (its meta/argument_specs.yml)")
        path = os.path.join(role.get_role_path(), "meta", "argument_specs.yml")
        specs = (self._loader.load_from_file(path) or {}).get("argument_specs") or {}
        if entry not in specs:
            raise AnsibleError(f"crpbot_checks: {path} has no entry point {entry!r}")
        options = specs[entry].get("options") or {}
        provided = self._templar.template({name: task_vars[name] for name in options if name in task_vars})
        errors = ArgumentSpecValidator(options).validate(provided, validate_role_argument_spec=True).error_messages
        return [f"{' '.join(str(error).split())} (meta/argument_specs.yml, entry point {entry})" for error in errors]

    def _failures(self, check):
        """The messages of this check's failures: one per failing item (one in all without a loop)."""
        items = [None]
        if "loop" in check:
            try:
                items = self._templar.template(check["loop"])
            except AnsibleError as exc:
                # A value of the wrong type (the argument spec says which) makes the loop itself fail.
                return [f"a check could not be evaluated ({' '.join(exc.message.split())}): "
                        + " ".join(str(check["msg"]).split())]
            if not isinstance(items, list):
                raise AnsibleError(f"crpbot_checks: the loop of the check {check['msg'][:60]!r}... must give a list")
        found = []
        for item in items:
            templar = self._templar
            if "loop" in check:
                templar = self._templar.copy_with_new_env(
                    available_variables=ChainMap({"item": item}, self._templar.available_variables))
            try:
                if not all(templar.evaluate_conditional(expr) for expr in _as_list(check.get("when", []))):
                    continue
                if all(templar.evaluate_conditional(expr) for expr in _as_list(check["that"])):
                    continue
            except AnsibleError as exc:
                # Reported with the other failures, so one broken value does not hide the rest (the error names
                # the variable or the test, as ansible.builtin.assert's would).
                found.append(f"a check could not be evaluated ({' '.join(exc.message.split())}): "
                             + self._render(templar, check["msg"]))
                continue
            found.append(self._render(templar, check["msg"]))
        return found

    @staticmethod
    def _render(templar, msg):
        try:
            text = str(templar.template(msg))
        except AnsibleError:
            text = str(msg)  # the message as written, when what it names is itself broken
        return " ".join(text.split())

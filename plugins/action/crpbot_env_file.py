# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_env_file: decide RUNTIME_MODE from the inventory, check the request, then write.

Every task that writes a ``.env`` goes through here (Ansible runs an action plugin of a module's name
instead of the module). On the controller, before the host is touched:

1. the run's variables are checked against the inventory (crpbot_policy.authority: the worker's own
   Host and its groups, which no variable can change);
2. the host's role and live approval are taken from those groups (a task that passes ``host_role`` or
   ``live_approved`` is refused), and RUNTIME_MODE is decided (crpbot_policy.runtime_mode);
3. every key and value is checked as the module will (crpbot_env.check_request).

With ``validate_only`` it stops there; otherwise it runs the module with the decided values, and warns
naming the host when a RUNTIME_MODE binding was corrected (for example a QC ``.env`` set to live by hand).
The module checks the mode rule again on the host, against the user it runs as.
"""

from __future__ import annotations

import os

import ansible.module_utils
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_env import EnvRequestError, check_request  # noqa: E402
from ansible.module_utils.crpbot_models import (  # noqa: E402
    ModelError, live_models_refusal, load_placements, promoted_files,
)
from ansible.module_utils.crpbot_policy import (  # noqa: E402
    LIVE, LIVE_GROUP, PRESERVE, DRYRUN, PolicyError, authority, role_of, runtime_mode,
)

ACTION_ONLY = ("live_confirmation", "validate_only")
FROM_THE_INVENTORY = ("host_role", "live_approved", "live_models")
REQUESTS = ("auto", DRYRUN, LIVE, PRESERVE)


def mode_change_warning(host, role, before, path, now):
    """What the run says when a .env's RUNTIME_MODE bindings held another value than the one written."""
    if role != "builder":
        why = "A QC host never trades."
    elif now == LIVE:
        why = "The inventory approves live for it and this run confirmed it: it trades from now on."
    else:
        why = "The inventory and this run do not make it live."
    return f"host {host} had RUNTIME_MODE={', '.join(before)} in {path}; it is now {now}. {why}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        host, groups, facts, problems = authority(self._task, self._loader, self._templar, task_vars)
        path = args.get("path", "")
        given = [name for name in FROM_THE_INVENTORY if name in args]
        if given:
            problems.append(f"host {host}: {', '.join(given)} is set from the inventory's groups; remove it from the "
                            "task (a host's role and live approval come from inventory/crpbot.yml alone)")
        if problems:
            return self._refuse(result, path, problems)

        validate_only = boolean(args.pop("validate_only", False), strict=True)
        confirmation = args.pop("live_confirmation", "") or ""
        requested = args.pop("runtime_mode", None) or "auto"
        role = role_of(host, groups)
        live_approved = LIVE_GROUP in groups
        try:
            if requested not in REQUESTS:
                raise PolicyError(f"runtime_mode must be one of {', '.join(REQUESTS)}, got {requested!r}")
            if requested in ("auto", LIVE):
                mode = runtime_mode(host, role, live_approved, facts.get("crpbot_user"), str(confirmation))
                if requested == LIVE and mode != LIVE:
                    raise PolicyError(f"host {host}: runtime_mode: live refused: the inventory does not approve "
                                      "live for it (runtime_mode: live on a builder's entry)")
            else:
                mode = requested
            check_request(args.get("values"), args.get("secrets"), args.get("db_url"), role)
            live_models = []
            if live_approved and role == "builder":
                # Live runs only an approved model: the approvals are read (and their chain verified) here;
                # the module verifies the files on the host before it writes live.
                live_models = promoted_files(facts.get("crpbot_project_dir", ""),
                                             load_placements(facts.get("crpbot_promotions_file", "")))
                if mode == LIVE and not live_models:
                    raise PolicyError(f"host {host}: RUNTIME_MODE=live refused: {live_models_refusal([])}")
        except (PolicyError, EnvRequestError, ModelError) as exc:
            message = str(exc) if str(exc).startswith("host ") else f"host {host}: {exc}"
            return self._refuse(result, path, [message])

        if validate_only:
            result.update(changed=False, path=path, host_role=role, live_approved=live_approved, runtime_mode=mode,
                          msg=f"host {host}: the .env request is valid; RUNTIME_MODE will be {mode}")
            return result

        module_args = {**args, "host_role": role, "live_approved": live_approved, "runtime_mode": mode,
                       "live_models": live_models}
        result.update(self._execute_module(module_name="crpbot_env_file", module_args=module_args,
                                           task_vars=task_vars))
        corrected = result.get("mode_corrected_from") or []
        if corrected and not result.get("failed"):
            result.setdefault("warnings", []).append(
                mode_change_warning(host, role, corrected, result.get("path", path), result.get("runtime_mode", mode)))
        return result

    @staticmethod
    def _refuse(result, path, problems):
        result.update(failed=True, changed=False, path=path, problems=problems,
                      msg="REFUSED, nothing was written: " + " | ".join(problems))
        return result

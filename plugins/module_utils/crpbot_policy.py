# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The money-safety rules of crpbot-ansible, written once (stdlib only).

One authority decides what a host is: the groups the ``crpbot`` inventory plugin puts it in.
``qc`` or ``builder`` is its role; ``live_approved`` holds the builders whose inventory entry says
``runtime_mode: live``. No variable at any precedence can change that: extra vars, host/group vars,
``set_fact`` and role params all sit below Ansible's inventory, so every rule here reads the
inventory's own objects, never a variable.

Every path that decides or writes a runtime mode calls these functions:

* the inventory plugin, when it reads an entry (``live_refusal`` for ``runtime_mode: live``);
* the ``crpbot_policy`` action plugin, the first task of every playbook: ``problems`` refuses a run
  whose variables contradict the inventory, before any host is touched;
* the ``crpbot_env_file`` action plugin, on the controller before every ``.env`` write: ``problems``
  again and ``runtime_mode`` (live only on an approved, confirmed builder run as root);
* the ``crpbot_env_file`` module, on the host, whatever parameters it is given: ``decide_mode``
  refuses ``live`` for a user that is not root and for a host the run marks QC.

Messages name the host, the variable, where it came from and the fix; they never hold a secret
(only the names and values of the role and mode variables, which are not secret).
"""

from __future__ import annotations

QC = "qc"
BUILDER = "builder"
ROLE_GROUPS = (QC, BUILDER)
ALL_GROUP = "crpbot"
LIVE_GROUP = "live_approved"
DRYRUN = "dryrun"
LIVE = "live"
PRESERVE = "preserve"
RUNTIME_MODES = (DRYRUN, LIVE)
MODE_KEY = "RUNTIME_MODE"
CONFIRM = "CONFIRM"
CONFIRM_VAR = "crpbot_env_live_confirm"
ROOT = "root"

# The variables the inventory plugin sets on every host (the one authority for each of these facts),
# with the inventory key that sets each of them. Nothing else may set them: the plugin refuses them in
# vars:/compose:, and ``problems`` refuses a run where any other source does.
INVENTORY_FACTS = {
    "crpbot_role": "role:",
    "crpbot_user": "user:",
    "crpbot_home": "home:",
    "crpbot_project_dir": "project_dir:",
    "crpbot_project_name": "project_name: (top level)",
    "crpbot_runtime_mode": "runtime_mode:",
    "crpbot_db_backend": "db_backend:",
    "crpbot_bucket": "bucket: (top level)",
    "crpbot_region": "region: (top level)",
    "crpbot_rds_host": "rds.host (top level)",
    "crpbot_rds_port": "rds.port (top level)",
    "crpbot_rds_database": "rds.database (top level)",
    "crpbot_rds_user": "rds.user (top level)",
    "crpbot_promotions_file": "promotions_file: (top level)",
    # The file's own directory: where its group_vars/ and host_vars/ are (the vault among them).
    "crpbot_inventory_dir": "(where the inventory file is: move the file instead)",
}

# Variables earlier versions of the roles read as the host's role or mode. They decide nothing now; a
# run that still sets one to something the inventory contradicts is refused rather than ignored.
ROLE_CLAIMS = ("crpbot_env_role", "crpbot_credentials_role", "amazon_q_role", "crpbot_s3_role")
MODE_CLAIMS = ("crpbot_env_runtime_mode",)


class PolicyError(ValueError):
    """A refusal; the message says which host, what, and how to fix it."""


# --- the rules -------------------------------------------------------------------------------------


def role_of(host: str, groups) -> str:
    """The host's role: the one of ``qc``/``builder`` it is in. In both or neither is refused."""
    roles = [group for group in ROLE_GROUPS if group in groups]
    if len(roles) != 1:
        found = " and ".join(roles) if roles else "neither"
        raise PolicyError(
            f"host {host} is in {found} of the groups qc and builder; the crpbot inventory plugin puts "
            "every host in exactly one. Fix: define the host only in inventory/crpbot.yml (role: builder "
            "for a builder, nothing for QC) and remove it from any other inventory source's qc/builder group"
        )
    return roles[0]


def live_refusal(role: str, live_approved: bool, user_is_root: bool) -> str | None:
    """Why a host may not run live, or None when it may (confirmation is asked separately)."""
    if role != BUILDER:
        return "it is a QC host (role qc), and a QC host never trades"
    if not live_approved:
        return ("its inventory entry does not approve live (runtime_mode: live on a builder entry puts it in "
                f"group {LIVE_GROUP})")
    if not user_is_root:
        return "live mode is only allowed for the root user (the bot's own safeguard)"
    return None


def expected_mode(live_approved: bool) -> str:
    """The RUNTIME_MODE the inventory names for a host: live only for the hosts it approves."""
    return LIVE if live_approved else DRYRUN


def runtime_mode(host: str, role: str, live_approved: bool, user: str, confirmation: str) -> str:
    """The RUNTIME_MODE a converge writes: ``live`` only on an approved builder run as root whose run is
    confirmed; an approved host without the confirmation is refused (nothing is written)."""
    if not live_approved or role != BUILDER:
        return DRYRUN
    refusal = live_refusal(role, live_approved, user == ROOT)
    if refusal:
        raise PolicyError(f"host {host}: RUNTIME_MODE=live refused: {refusal}. Fix: run it as root or set "
                          "runtime_mode: dryrun in its inventory entry")
    if confirmation != CONFIRM:
        raise PolicyError(
            f"host {host}: the inventory approves RUNTIME_MODE=live but this run was not confirmed, so nothing "
            "was written and the host stays dryrun. To go live, run interactively and type CONFIRM at the "
            f"prompt, or pass -e {CONFIRM_VAR}=CONFIRM"
        )
    return LIVE


def decide_mode(requested: str, role: str, live_approved: bool, euid: int, current: str | None) -> str:
    """The RUNTIME_MODE the .env writer puts in every binding, on the host.

    ``requested`` is ``dryrun``, ``live`` or ``preserve`` (a write of other keys, such as a rotation's
    DB_URL: an existing ``live`` is kept only where live is allowed, never introduced). ``live`` for a
    QC host, an unapproved host or a user that is not root is refused, whatever asked for it.
    """
    refusal = live_refusal(role, live_approved, euid == 0)
    if requested == LIVE:
        if refusal:
            raise PolicyError(f"RUNTIME_MODE=live refused on this host: {refusal}")
        return LIVE
    if requested == PRESERVE:
        return LIVE if current == LIVE and refusal is None else DRYRUN
    if requested == DRYRUN:
        return DRYRUN
    raise PolicyError(f"runtime_mode must be one of dryrun, live, preserve, got {requested!r}")


def mode_keys(keys) -> list[str]:
    """The keys that the app would read as its RUNTIME_MODE (pydantic-settings ignores case)."""
    return [key for key in keys if isinstance(key, str) and key.lower() == MODE_KEY.lower()]


def db_backend_refusal(role: str, backend: str) -> str | None:
    if role == BUILDER and backend != "rds":
        return f"a builder always uses the PostgreSQL on RDS, not {backend}"
    return None


# --- the run's variables against the inventory ---------------------------------------------------


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value)


def problems(host: str, groups, facts, variables, source_of) -> list[str]:
    """Every way the run's variables contradict what the inventory says about ``host``.

    ``groups``: the inventory's groups of the host (without ``all``); ``facts``: the variables the
    crpbot inventory plugin set on it; ``variables``: the variables a task of this run sees;
    ``source_of(name)``: where Ansible says a variable came from (text), for the message.
    """
    groups = sorted(group for group in groups if group != "all")
    found: list[str] = []
    try:
        role = role_of(host, groups)
    except PolicyError as exc:
        return [str(exc)]
    live_approved = LIVE_GROUP in groups
    if ALL_GROUP not in groups or "crpbot_role" not in facts:
        found.append(f"host {host} is not one of the crpbot inventory plugin's hosts. Fix: list it under hosts: "
                     "in inventory/crpbot.yml")
    if facts.get("crpbot_role", role) != role:
        found.append(f"host {host}: the inventory entry says role {facts.get('crpbot_role')!r} but the host is in "
                     f"group {role}. Fix: remove it from the other inventory source's {role} group")
    if live_approved and role != BUILDER:
        found.append(f"host {host} is a QC host in group {LIVE_GROUP}: a QC host never trades. Fix: remove it "
                     f"from {LIVE_GROUP} (only runtime_mode: live on a builder entry puts a host there)")
    if live_approved and facts.get("crpbot_user") != ROOT:
        found.append(f"host {host} is approved for live but its user is {facts.get('crpbot_user')!r}: live "
                     "mode is only allowed for root. Fix: set user: root or runtime_mode: dryrun")
    backend = db_backend_refusal(role, facts.get("crpbot_db_backend", "rds"))
    if backend:
        found.append(f"host {host}: {backend}. Fix: set db_backend: rds or remove it")

    def contradiction(name, value, expected, fix):
        found.append(f"host {host}: variable {name} is {_shown(value)} (from {source_of(name)}) but the inventory "
                     f"says {_shown(expected)}. Fix: {fix}")

    identity = {"inventory_hostname": host, "group_names": groups}
    for name, expected in identity.items():
        if name in variables and variables[name] != expected:
            contradiction(name, variables[name], expected,
                          f"remove {name}: it is Ansible's own name for the host and its groups")
    for name, key in INVENTORY_FACTS.items():
        if name in variables and name in facts and variables[name] != facts[name]:
            contradiction(name, variables[name], facts[name],
                          f"remove it; the inventory plugin sets it from {key} in inventory/crpbot.yml")
    for name in ROLE_CLAIMS:
        if name in variables and variables[name] != role:
            contradiction(name, variables[name], role,
                          "remove it: a host's role comes from its inventory entry (role:) alone")
    for name in MODE_CLAIMS:
        if name in variables and variables[name] != expected_mode(live_approved):
            contradiction(name, variables[name], expected_mode(live_approved),
                          "remove it: only runtime_mode: live on a builder's inventory entry approves live")
    if CONFIRM_VAR in variables and variables[CONFIRM_VAR] not in ("", None):
        source = source_of(CONFIRM_VAR)
        if not source.startswith("extra vars"):
            found.append(f"host {host}: {CONFIRM_VAR} is set in {source}, so every run would be confirmed. Fix: "
                         f"remove it there; confirm one run at a time with -e {CONFIRM_VAR}=CONFIRM or at the prompt")
    return found


# --- controller side (action plugins only; never imported on a host) -------------------------------


def current_host():
    """The inventory Host object the running task is for.

    Ansible runs each task of each host in a worker process that holds the Host; the variables a task
    sees (inventory_hostname included) can be overridden, the worker's Host cannot. Returns None when
    not in a worker (then nothing can be trusted and callers refuse).
    """
    try:
        from ansible.executor.process import worker  # controller only
    except ImportError:  # pragma: no cover - not on a controller
        return None
    current = getattr(worker, "current_worker", None)
    return getattr(current, "_host", None)


_ANY = object()


def variable_source(name: str, host, variable_manager, loader, value=_ANY) -> str:
    """Where a variable of this run comes from, as far as Ansible can tell (for messages).

    ``value``: the value the run sees; an inventory host variable with another value was overridden
    by something of higher precedence (play, role, task or include vars).
    """
    try:
        from ansible.utils.vars import load_extra_vars  # controller only

        if name in load_extra_vars(loader):
            return "extra vars (-e)"
    except Exception:  # noqa: BLE001 - a message helper must never be the failure
        pass
    caches = (("_nonpersistent_fact_cache", "set_fact or register in this run"),
              ("_vars_cache", "include_vars in this run"), ("_fact_cache", "facts"))
    for attribute, label in caches:
        try:
            if name in (getattr(variable_manager, attribute, {}).get(host.name) or {}):
                return label
        except Exception:  # noqa: BLE001
            pass
    try:
        from ansible.vars.plugins import get_vars_from_inventory_sources

        inventory = variable_manager._inventory
        entities = [*host.get_groups(), host]
        if name in get_vars_from_inventory_sources(loader, inventory._sources, entities, "task"):
            return "host_vars/group_vars files beside the inventory"
    except Exception:  # noqa: BLE001
        pass
    if name in getattr(host, "vars", {}) and (value is _ANY or host.vars[name] == value):
        return "an inventory source"
    return "play, role, task or include vars"


WATCHED = ("inventory_hostname", "group_names", *INVENTORY_FACTS, *ROLE_CLAIMS, *MODE_CLAIMS, CONFIRM_VAR)


def authority(task, loader, templar, task_vars):
    """(host name, its groups, the crpbot plugin's facts, problems) for the task's host.

    Every problem the run's variables have with the inventory (see ``problems``) is listed; an empty
    list means the variables agree with it. Only the watched variables are templated and compared.
    """
    host = current_host()
    if host is None:
        return None, [], {}, ["cannot tell which inventory host this task runs for, so nothing can be trusted; "
                              "run it through ansible-playbook"]
    groups = sorted(group.name for group in host.get_groups() if group.name != "all")
    facts = {name: host.vars[name] for name in INVENTORY_FACTS if name in host.vars}
    variable_manager = getattr(task, "_variable_manager", None)
    variables = {name: templar.template(task_vars[name]) for name in WATCHED if name in task_vars}

    def source_of(name):
        return variable_source(name, host, variable_manager, loader, variables.get(name, _ANY))

    return host.name, groups, facts, problems(host.name, groups, facts, variables, source_of)

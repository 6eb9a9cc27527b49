# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bookkeeping of a credential rotation (stdlib only; runs on the controller).

The playbook lists the steps; the ``crpbot_rotation`` action plugin calls these functions to
decide and record. A rotation's state is a plain dict threaded from step to step (the plugin's
registered result): which steps were reached (and so may have changed something), which step
failed, on which hosts and why, what the rollback could not undo. Nothing here talks to a host.

Steps of ``db_password``, in order:

=========  ==========================================================  =====================
step       what it does                                                undone by
=========  ==========================================================  =====================
pending    the new secret recorded as pending in the vault             dropping the record
stage      every host: <file>.pending written                           restore (per host)
set        the service takes the new secret (one host for all)          setting the old one
test       every host: the app's checks with the staged files           -
promote    every host: <file>.pending -> <file>, <file> -> <file>.prev  restore (per host)
current    the vault records the new secret as current                  restoring the vault
verify     every host: the app's checks with the live files             -
=========  ==========================================================  =====================

``aws_access_key`` has one "slot" per AWS key the hosts use (the shared key, a key per role) and
the steps pending, set (a second IAM key per slot), record (the new keys in the vault's pending
record), stage, test, promote, current, deactivate (the old keys; never deleted in the same run),
verify; its service rollback reactivates the old keys, then deletes the new ones.

The state holds the old and new secret under ``secret``; every task that carries it is
``no_log`` and :func:`public` strips it from whatever is shown.
"""

from __future__ import annotations

import secrets
import string

STEPS = {
    "db_password": ("pending", "stage", "set", "test", "promote", "current", "verify"),
    "aws_access_key": ("pending", "set", "record", "stage", "test", "promote", "current", "deactivate", "verify"),
}
PENDING = "vault_crpbot_rotation_pending"
# Steps every host takes part in (a gate after each); the others run once for all.
HOST_STEPS = ("stage", "test", "promote", "verify")
PASSWORD_LENGTH = 40
PASSWORD_CHARS = string.ascii_letters + string.digits


class RotationError(Exception):
    """A refusal whose message is safe to show: names steps, hosts and keys, never a secret."""


def new_password(length: int = PASSWORD_LENGTH) -> str:
    return "".join(secrets.choice(PASSWORD_CHARS) for _ in range(length))


def begin(credential: str, current, pending: dict | None, started: str, make_secret=new_password,
          slots: list[dict] | None = None, iam: dict | None = None) -> dict:
    """The state of a rotation about to start, resuming from the vault's pending record when it is
    one of the same credential. Refuses a pending record of another credential and a missing current
    secret before anything is changed.

    db_password: ``current`` is the vault's password. aws_access_key: ``current`` is {slot: secret
    access key}, ``slots`` the slots ({name, hosts, key_id, id_path, secret_path}) and ``iam``
    {slot: {user, keys: [{access_key_id, status}]}}; a resumed rotation keeps only the new keys IAM
    still has."""
    if credential not in STEPS:
        raise RotationError(f"credential must be one of {', '.join(STEPS)}, got {credential!r}")
    pending = pending or {}
    if pending and pending.get("credential") != credential:
        raise RotationError(
            f"the vault records a pending {pending.get('credential', '?')} rotation (started "
            f"{pending.get('started', '?')}) that did not finish: resume it first with "
            f"-e rotate={pending.get('credential', '?')}")
    resuming = bool(pending)
    state = {
        "credential": credential,
        "started": pending.get("started", started) if resuming else started,
        "resuming": resuming,
        "done": [],
        "failed": "",
        "failed_hosts": [],
        "lost_hosts": [],
        "why": [],
        "host_why": {},
        "manual": [],
        "service_undone": True,
        "service_outcome": "unchanged",
    }
    if credential == "db_password":
        if not isinstance(current, str) or not current:
            raise RotationError("the vault holds no current db_password (vault_crpbot_db_password): a rotation "
                                "starts from it; add it with ansible-vault edit")
        if resuming:
            new = pending.get("db_password")
            if not isinstance(new, str) or not new:
                raise RotationError("the vault's pending db_password record holds no password; remove "
                                    f"{PENDING} with ansible-vault edit after checking which password the "
                                    "database has, then rerun")
        else:
            new = make_secret()
        state["secret"] = {"old": current, "new": new}
        return state
    slots = slots or []
    iam = iam or {}
    if not slots:
        raise RotationError("no AWS key to rotate: no host uses vault_crpbot_aws_access_key_id or a key of "
                            "vault_crpbot_aws_keys_by_role")
    missing = [slot["name"] for slot in slots if not (current or {}).get(slot["name"])]
    if missing:
        raise RotationError(f"the vault holds no secret access key for the AWS key(s) {', '.join(missing)}; "
                            "add it with ansible-vault edit")
    new_keys = {}
    for name, key in ((pending.get("keys") or {}) if resuming else {}).items():
        ids = [k.get("access_key_id") for k in (iam.get(name) or {}).get("keys") or []]
        if isinstance(key, dict) and key.get("access_key_id") in ids:
            new_keys[name] = key
    state["slots"] = {slot["name"]: {k: slot[k] for k in ("hosts", "key_id", "id_path", "secret_path")}
                      | {"user": (iam.get(slot["name"]) or {}).get("user", "?")} for slot in slots}
    state["secret"] = {"old": {name: current[name] for name in state["slots"]}, "new_keys": new_keys}
    return state


def keys_to_create(state: dict) -> list[str]:
    """The slots that still need a new IAM key (a resumed rotation may have some already)."""
    return [name for name in state["slots"] if name not in state["secret"]["new_keys"]]


def key_created(state: dict, name: str, access_key_id: str, secret_access_key: str) -> dict:
    state["secret"]["new_keys"][name] = {"access_key_id": access_key_id, "secret_access_key": secret_access_key,
                                         "old_access_key_id": state["slots"][name]["key_id"]}
    return state


def pending_record(state: dict) -> dict | None:
    """The vault record to write before anything else changes (None when resuming: it is there)."""
    if state["resuming"]:
        return None
    record = {"credential": state["credential"], "started": state["started"]}
    if state["credential"] == "db_password":
        record["db_password"] = state["secret"]["new"]
    else:
        record["keys"] = {}
    return record


def vault_current(state: dict) -> tuple[list[dict], list[str]]:
    """The vault edit of the step current: the new value(s) as current, the pending record dropped."""
    if state["credential"] == "db_password":
        return [{"key": "vault_crpbot_db_password", "value": state["secret"]["new"]}], [PENDING]
    items = []
    for name, slot in state["slots"].items():
        new = state["secret"]["new_keys"][name]
        items += [{"key": slot["id_path"], "value": new["access_key_id"]},
                  {"key": slot["secret_path"], "value": new["secret_access_key"]}]
    return items, [PENDING]


def next_step(state: dict) -> str | None:
    """The step to run now: None once a step failed or every step was done."""
    if state["failed"]:
        return None
    for step in STEPS[state["credential"]]:
        if step not in state["done"]:
            return step
    return None


def expect(state: dict, step: str) -> None:
    """Refuse to run ``step`` out of order (a playbook bug, never a host's fault)."""
    wanted = next_step(state)
    if wanted != step:
        raise RotationError(f"the {state['credential']} rotation cannot run step {step} now: "
                            + (f"the next step is {wanted}" if wanted else
                               f"step {state['failed']} failed" if state["failed"] else "every step is done"))


def _fail(state: dict, step: str, hosts: list[str] | None = None, why: str = "") -> None:
    if not state["failed"]:
        state["failed"] = step
        state["failed_hosts"] = list(hosts or [])
    if why:
        state["why"].append(f"{step}: {why}")


def service_step(state: dict, step: str, ok: bool, msg: str = "", may_have_changed: bool = True) -> dict:
    """Record a step one host runs for all (pending, set, current). ``may_have_changed``: whether the
    service may now hold the new value (a failed module says when it surely does not)."""
    expect(state, step)
    if ok or may_have_changed:
        state["done"].append(step)
    if not ok:
        _fail(state, step, why=msg or "failed")
    return state


def host_failures(records: dict[str, list[dict]], step: str) -> dict[str, str]:
    """{host: why} of the hosts whose records say they failed ``step``."""
    out = {}
    for host, failures in sorted(records.items()):
        whys = [f.get("why") or "failed" for f in failures or [] if f.get("step") == step]
        if whys:
            out[host] = "; ".join(whys)
    return out


def gate(state: dict, step: str, hosts_all: list[str], hosts_alive: list[str], records: dict[str, list[dict]]) -> dict:
    """After a step every host takes part in: it failed when a host failed it (its rescue recorded
    it) or dropped out of the play (unreachable). The step counts as reached either way: a host
    that failed may have changed something, and the rollback restores every host."""
    expect(state, step)
    state["done"].append(step)
    lost = [host for host in hosts_all if host not in hosts_alive]
    failing = host_failures({h: r for h, r in records.items() if h in hosts_alive}, step)
    state["host_why"].update(failing)
    bad = [host for host in hosts_all if host in lost or host in failing]
    if bad:
        state["lost_hosts"] = sorted(set(state["lost_hosts"]) | set(lost))
        _fail(state, step, hosts=bad)
    return state


def failure_seen(state: dict, task_name: str, msg: str) -> dict:
    """The rescue's first look: a failure the steps did not record (a task outside the steps
    failed) still fails the rotation, naming the task."""
    if not state.get("failed"):
        state["failed"] = next_step(state) or "finish"
        state["why"].append(f"task {task_name!r}: {msg or 'failed'}")
    return state


def rollback_plan(state: dict) -> dict[str, bool]:
    """What the rollback undoes, in this order (the reverse of the steps)."""
    done = set(state["done"])
    return {
        "restore_files": bool(done & {"stage", "promote"}),
        "reactivate": "deactivate" in done,
        "undo_service": "set" in done,
        "restore_vault": "current" in done,
        "drop_pending": True,
    }


def service_undone(state: dict, ok: bool | None, msg: str, db_user: str = "?", admin_host: str = "?") -> dict:
    """Record the service's rollback (``ok`` None: nothing to undo)."""
    if ok is None:
        state["service_outcome"] = "unchanged"
        return state
    state["service_undone"] = bool(ok)
    aws = state["credential"] == "aws_access_key"
    if ok:
        state["service_outcome"] = ("new keys deleted, old keys active" if aws
                                    else "set back to the current password of the vault")
    elif aws:
        state["service_outcome"] = "NOT undone"
        ids = ", ".join(key["access_key_id"] for key in state["secret"]["new_keys"].values())
        state["manual"].append(
            f"IAM: the new key(s) {ids} could not be removed or the old key(s) reactivated ({msg or '?'}); the "
            f"vault keeps them as {PENDING}: rerun -e rotate=aws_access_key to resume")
    else:
        state["service_outcome"] = "NOT set back"
        state["manual"].append(
            f"the database role {db_user} may still have the new password ({msg or 'unreachable: ' + admin_host}); "
            f"the vault keeps it as {PENDING}: rerun -e rotate=db_password to resume, once the database is back")
    return state


def vault_restore(state: dict) -> tuple[list[dict], list[str]]:
    """The vault edit that puts it back: the old value(s) when the new ones were recorded as current,
    and the pending record dropped only when the service is back to the vault's current value
    (otherwise a rerun resumes from it)."""
    set_items = []
    if rollback_plan(state)["restore_vault"]:
        if state["credential"] == "db_password":
            set_items = [{"key": "vault_crpbot_db_password", "value": state["secret"]["old"]}]
        else:
            for name, slot in state["slots"].items():
                set_items += [{"key": slot["id_path"], "value": slot["key_id"]},
                              {"key": slot["secret_path"], "value": state["secret"]["old"][name]}]
    remove = [PENDING] if state["service_undone"] else []
    return set_items, remove


def vault_undone(state: dict, ok: bool, msg: str, vault_file: str) -> dict:
    if not ok:
        state["manual"].append(f"the vault {vault_file} could not be put back ({msg or '?'}): fix it with "
                               "ansible-vault edit")
    return state


def credential_lines(state: dict, db_user: str, db_host: str) -> list[str]:
    """What the summary says per credential (names and key ids, never a secret)."""
    failed = state["failed"]
    if state["credential"] == "db_password":
        return [f"database role {db_user} on {db_host}: "
                + ("new password set and recorded in the vault" if not failed else f"password {state['service_outcome']}")]
    lines = []
    for name, slot in state["slots"].items():
        new = state["secret"]["new_keys"].get(name)
        lines.append(f"AWS key {name} (IAM user {slot['user']}, hosts {', '.join(slot['hosts'])}): old {slot['key_id']}"
                     + (f", new {new['access_key_id']}" if new else ", no new key")
                     + ("; old key inactive, new key in use" if not failed else ""))
    return lines


def report(state: dict, hosts_all: list[str], hosts_alive: list[str], records: dict[str, list[dict]],
           db_user: str = "?", db_host: str = "?") -> dict:
    """The summary lines and, for a rotation that did not finish, the message the run fails with."""
    lost = sorted(set(state["lost_hosts"]) | {h for h in hosts_all if h not in hosts_alive})
    manual = list(state["manual"])
    failed = state["failed"]
    if failed:
        manual += [f"host {h} was unreachable: when it is back, check it with playbooks/preflight.yml; its live files "
                   f"are the old ones unless it was promoted (then {h} holds the old ones as <file>.prev: move them "
                   f"back); remove its <file>.pending files" for h in lost]
        manual += [f"host {h}: the previous files could not be put back; move each <file>.prev over <file>"
                   for h in host_failures(records, "restore")]
    where = f" on {', '.join(state['failed_hosts'])}" if state["failed_hosts"] else ""
    if not failed:
        status = "DONE"
        head = f"ROTATION {state['credential']}: DONE"
    else:
        status = "ROLLED BACK" if not manual else "NOT FULLY ROLLED BACK"
        head = (f"ROTATION {state['credential']}: "
                + ("ROLLED BACK" if not manual else "FAILED, NOT FULLY ROLLED BACK") + f" (step {failed} failed{where})")
    lines = [head, *credential_lines(state, db_user, db_host)]
    if state["why"]:
        lines.append("why: " + "; ".join(state["why"]))
    lines += [f"{host}: {why}" for host, why in sorted(state["host_why"].items())]
    if not failed:
        lines.append("verified with the new credential: " + ", ".join(hosts_alive))
    if manual:
        lines.append("left to do: " + "; ".join(manual))
    if not failed and state["credential"] == "aws_access_key":
        lines.append("left to do: delete the deactivated key(s) "
                     + ", ".join(slot["key_id"] for slot in state["slots"].values())
                     + " once nothing else uses them: ansible-playbook playbooks/rotate_credentials.yml"
                       " -e rotate=aws_inactive_keys")
    fail_msg = ""
    if failed:
        fail_msg = (f"{status}: the {state['credential']} rotation failed at step {failed}{where}. "
                    + ("Every host keeps the credential it had and the vault matches the service."
                       if not manual else "Left to do by hand: " + "; ".join(manual))
                    + " See the summary above.")
    return {"status": status, "summary": lines, "fail_msg": fail_msg, "manual": manual}


def plan(credential: str, resuming_since: str, db: dict, admin_host: str, hosts: list[str], vault_file: str) -> list[str]:
    """What a run would do (``--check``): hosts, files, the role, the vault keys; never a secret."""
    return [
        f"ROTATION PLAN ({credential})" + (f", resuming the rotation started {resuming_since}" if resuming_since else ""),
        f"database role {db['user']} on {db['host']}:{db['port']}: a new {PASSWORD_LENGTH}-character password, set "
        f"with ALTER ROLE from {admin_host} (SCRAM-SHA-256 verifier computed on the client)",
        f"hosts {', '.join(hosts)}: .db_password (and the .env DB_URL on rds hosts) staged as .pending, tested, "
        "promoted; the live files kept as .prev until the run ends well",
        f"vault {vault_file}: vault_crpbot_db_password (pending record: vault_crpbot_rotation_pending)",
        "steps: " + " -> ".join(STEPS[credential]) + "; any failure rolls back, in reverse, what was done",
    ]


def public(state: dict) -> dict:
    """The state without its secrets (what may be shown)."""
    return {k: v for k, v in state.items() if k != "secret"}

# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation's state machine (plugins/module_utils/crpbot_rotation.py) for N hosts.

A whole db_password rotation is driven through the same functions the crpbot_rotation action
plugin calls, with 3 QC hosts and 2 builders; a failure is injected on one host (or on the
service) at each step, and the rollback plan, the vault edit and the outcome are checked.
"""

from __future__ import annotations

import pytest

from tests.ansible_run import load_plugin

rot = load_plugin("plugins/module_utils/crpbot_rotation.py", "crpbot_rotation_utils")

HOSTS = ["qc-1", "qc-2", "qc-3", "builder-1", "builder-2"]
DB = {"user": "crpbot_admin", "host": "db.example", "port": 5432}
OLD, NEW = "OldPassw0rdOldPassw0rd", "NewPassw0rdNewPassw0rd"


def start(pending=None):
    return rot.begin("db_password", OLD, pending, "2026-12-03T12:00:00Z", make_secret=lambda: NEW)


def drive(fail_step=None, fail_host=None, lost=False, service_ok=True, undo_ok=True, vault_ok=True):
    """Run every step; at ``fail_step`` the host ``fail_host`` fails (or is lost), or the service step
    fails. Returns (state, the vault edit of the rollback or None, the report)."""
    state = start()
    alive = list(HOSTS)
    records: dict[str, list[dict]] = {}
    for step in rot.STEPS["db_password"]:
        assert rot.next_step(state) == step
        if step in rot.HOST_STEPS:
            if step == fail_step:
                if lost:
                    alive.remove(fail_host)
                else:
                    records[fail_host] = [{"step": step, "why": f"{step} broke"}]
            state = rot.gate(state, step, HOSTS, alive, records)
        else:
            ok = not (step == fail_step and not service_ok)
            state = rot.service_step(state, step, ok, "cannot reach the database" if not ok else "",
                                     may_have_changed=ok)
        if state["failed"]:
            break
    vault_edit = None
    if state["failed"]:
        plan = rot.rollback_plan(state)
        if plan["undo_service"]:
            state = rot.service_undone(state, undo_ok, "" if undo_ok else "down", DB["user"], "builder-1")
        else:
            state = rot.service_undone(state, None, "", DB["user"], "builder-1")
        vault_edit = rot.vault_restore(state)
        state = rot.vault_undone(state, vault_ok, "" if vault_ok else "disk full", "vault.yml")
    return state, vault_edit, rot.report(state, HOSTS, alive, records, DB["user"], DB["host"])


def test_a_rotation_that_goes_well_reaches_every_step_and_every_host():
    state, vault_edit, out = drive()
    assert state["done"] == list(rot.STEPS["db_password"]) and rot.next_step(state) is None
    assert vault_edit is None
    assert out["status"] == "DONE" and out["fail_msg"] == ""
    assert out["summary"][0] == "ROTATION db_password: DONE"
    assert out["summary"][-1] == "verified with the new credential: " + ", ".join(HOSTS)


# For every step every host takes part in, on each kind of host: what is undone.
@pytest.mark.parametrize("fail_host", ["qc-2", "builder-2", "qc-1"])
@pytest.mark.parametrize(("fail_step", "undo_service", "restore_vault"), [
    ("stage", False, False),
    ("test", True, False),
    ("promote", True, False),
    ("verify", True, True),
])
def test_one_host_failing_a_step_rolls_back_every_host(fail_step, fail_host, undo_service, restore_vault):
    state, (set_items, remove), out = drive(fail_step, fail_host)
    plan = rot.rollback_plan(state)
    assert state["failed"] == fail_step and state["failed_hosts"] == [fail_host]
    # The files are restored on every host (the rollback runs on all of them), not only the failing one.
    assert plan["restore_files"] and plan["undo_service"] is undo_service and plan["restore_vault"] is restore_vault
    assert set_items == ([{"key": "vault_crpbot_db_password", "value": OLD}] if restore_vault else [])
    assert remove == ["vault_crpbot_rotation_pending"]
    assert out["status"] == "ROLLED BACK"
    assert out["fail_msg"].startswith(f"ROLLED BACK: the db_password rotation failed at step {fail_step} on {fail_host}.")
    assert f"{fail_host}: {fail_step} broke" in out["summary"]
    assert ("password set back to the current password of the vault" if undo_service else "password unchanged") \
        in out["summary"][1]


@pytest.mark.parametrize("fail_step", ["stage", "test", "promote", "verify"])
def test_a_host_lost_at_a_step_is_named_and_left_to_do_by_hand(fail_step):
    state, _edit, out = drive(fail_step, "qc-3", lost=True)
    assert state["failed"] == fail_step and state["failed_hosts"] == ["qc-3"] and state["lost_hosts"] == ["qc-3"]
    assert out["status"] == "NOT FULLY ROLLED BACK"
    assert out["fail_msg"].startswith(f"NOT FULLY ROLLED BACK: the db_password rotation failed at step {fail_step} on qc-3.")
    assert "host qc-3 was unreachable" in out["fail_msg"]


def test_several_hosts_failing_one_step_are_all_named():
    state = start()
    state = rot.service_step(state, "pending", True)
    state = rot.gate(state, "stage", HOSTS, [h for h in HOSTS if h != "builder-1"],
                     {"qc-1": [{"step": "stage", "why": "disk full"}], "qc-3": [{"step": "stage", "why": "no venv"}]})
    assert state["failed_hosts"] == ["qc-1", "qc-3", "builder-1"]
    out = rot.report(state, HOSTS, [h for h in HOSTS if h != "builder-1"], {}, DB["user"], DB["host"])
    assert "failed at step stage on qc-1, qc-3, builder-1" in out["fail_msg"]
    assert "qc-1: disk full" in out["summary"] and "qc-3: no venv" in out["summary"]


def test_a_failure_recorded_at_an_earlier_step_does_not_fail_a_later_gate():
    state = start()
    for step in ("pending",):
        state = rot.service_step(state, step, True)
    records = {"qc-2": [{"step": "restore", "why": "old"}]}
    state = rot.gate(state, "stage", HOSTS, HOSTS, records)
    assert not state["failed"]


@pytest.mark.parametrize(("fail_step", "undo_service", "pending_dropped"), [
    ("pending", False, True),
    ("set", False, True),      # the module says the role was not altered: nothing to undo
    ("current", True, True),
])
def test_a_service_step_failing_rolls_back_what_came_before(fail_step, undo_service, pending_dropped):
    state, (set_items, remove), out = drive(fail_step, service_ok=False)
    assert state["failed"] == fail_step and state["failed_hosts"] == []
    assert rot.rollback_plan(state)["undo_service"] is undo_service
    assert set_items == [] and (remove == ["vault_crpbot_rotation_pending"]) is pending_dropped
    assert out["fail_msg"].startswith(f"ROLLED BACK: the db_password rotation failed at step {fail_step}.")
    assert f"why: {fail_step}: cannot reach the database" in out["summary"]


def test_a_set_that_may_have_changed_the_role_is_undone():
    state = start()
    state = rot.service_step(state, "pending", True)
    state = rot.gate(state, "stage", HOSTS, HOSTS, {})
    state = rot.service_step(state, "set", False, "unreachable: builder-1", may_have_changed=True)
    assert state["failed"] == "set" and rot.rollback_plan(state)["undo_service"]


def test_a_database_that_cannot_be_set_back_keeps_the_pending_record_and_says_how_to_resume():
    state, (set_items, remove), out = drive("verify", "qc-1", undo_ok=False)
    assert remove == [] and set_items == [{"key": "vault_crpbot_db_password", "value": OLD}]
    assert out["status"] == "NOT FULLY ROLLED BACK"
    assert "rerun -e rotate=db_password to resume" in out["fail_msg"]
    assert "password NOT set back" in out["summary"][1]


def test_a_vault_that_cannot_be_put_back_is_a_step_left_by_hand():
    _state, _edit, out = drive("test", "builder-2", vault_ok=False)
    assert "the vault vault.yml could not be put back (disk full): fix it with ansible-vault edit" in out["fail_msg"]


def test_files_that_could_not_be_restored_are_named_per_host():
    state, _edit, _out = drive("test", "qc-1")
    records = {"qc-2": [{"step": "restore", "why": "permission denied"}], "qc-1": [{"step": "test", "why": "x"}]}
    out = rot.report(state, HOSTS, HOSTS, records, DB["user"], DB["host"])
    assert out["status"] == "NOT FULLY ROLLED BACK"
    assert "host qc-2: the previous files could not be put back" in out["fail_msg"]
    assert "host qc-1: the previous" not in out["fail_msg"]


def test_resuming_takes_the_pending_password_and_its_start_time():
    state = start({"credential": "db_password", "started": "2026-12-01T00:00:00Z", "db_password": "P" * 40})
    assert state["resuming"] and state["secret"] == {"old": OLD, "new": "P" * 40}
    assert state["started"] == "2026-12-01T00:00:00Z" and rot.pending_record(state) is None
    fresh = start()
    assert rot.pending_record(fresh) == {"credential": "db_password", "started": "2026-12-03T12:00:00Z",
                                         "db_password": NEW}


@pytest.mark.parametrize(("pending", "current", "message"), [
    ({"credential": "aws_access_key", "started": "x"}, OLD, "resume it first with -e rotate=aws_access_key"),
    ({"credential": "db_password", "started": "x"}, OLD, "pending db_password record holds no password"),
    (None, "", "holds no current db_password"),
])
def test_begin_refuses_before_anything_changes(pending, current, message):
    with pytest.raises(rot.RotationError, match=message):
        rot.begin("db_password", current, pending, "now")


def test_steps_run_only_in_order():
    state = start()
    with pytest.raises(rot.RotationError, match="the next step is pending"):
        rot.service_step(state, "set", True)
    state = rot.service_step(state, "pending", False, "vault locked", may_have_changed=False)
    with pytest.raises(rot.RotationError, match="step pending failed"):
        rot.gate(state, "stage", HOSTS, HOSTS, {})


def test_a_failure_no_step_recorded_fails_the_rotation_naming_the_task():
    state = rot.service_step(start(), "pending", True)
    state = rot.failure_seen(state, "Copy the live .env to .env.pending", "boom")
    assert state["failed"] == "stage" and "task 'Copy the live .env to .env.pending': boom" in state["why"]


def test_generated_passwords_are_40_alphanumerics_and_never_shown():
    password = rot.new_password()
    assert len(password) == 40 and password.isalnum()
    state = rot.begin("db_password", OLD, None, "now")
    assert "secret" not in rot.public(state)
    assert OLD not in repr(rot.report(state, HOSTS, HOSTS, {}, "u", "h"))
    assert OLD not in repr(rot.plan("db_password", "", DB, "builder-1", HOSTS, "vault.yml"))


# ---------------------------------------------------------------- aws_access_key, N hosts, 2 keys

SLOTS = [
    {"name": "shared", "hosts": ["builder-1", "builder-2"], "key_id": "AKIAOLDSHARED",
     "id_path": ["vault_crpbot_aws_access_key_id"], "secret_path": ["vault_crpbot_aws_secret_access_key"]},
    {"name": "qc", "hosts": ["qc-1", "qc-2", "qc-3"], "key_id": "AKIAOLDQC",
     "id_path": ["vault_crpbot_aws_keys_by_role", "qc", "access_key_id"],
     "secret_path": ["vault_crpbot_aws_keys_by_role", "qc", "secret_access_key"]},
]
IAM = {"shared": {"user": "crpbot-builder", "keys": [{"access_key_id": "AKIAOLDSHARED", "status": "Active"}]},
       "qc": {"user": "crpbot-qc", "keys": [{"access_key_id": "AKIAOLDQC", "status": "Active"}]}}
OLD_SECRETS = {"shared": "old/shared+secret", "qc": "old/qc+secret"}


def aws_start(pending=None, iam=IAM):
    return rot.begin("aws_access_key", OLD_SECRETS, pending, "2026-12-03T12:00:00Z", slots=SLOTS, iam=iam)


def aws_drive(fail_step=None, fail_host=None, create_fails_on=None):
    state = aws_start()
    records: dict[str, list[dict]] = {}
    for step in rot.STEPS["aws_access_key"]:
        if step in rot.HOST_STEPS:
            if step == fail_step:
                records[fail_host] = [{"step": step, "why": f"{step} broke"}]
            state = rot.gate(state, step, HOSTS, HOSTS, records)
        elif step == "set":
            ok = True
            for name in rot.keys_to_create(state):
                if name == create_fails_on:
                    ok = False
                    break
                state = rot.key_created(state, name, f"AKIANEW{name.upper()}", f"new/{name}+secret")
            state = rot.service_step(state, "set", ok, "" if ok else "IAM create failed",
                                     may_have_changed=bool(state["secret"]["new_keys"]))
        else:
            state = rot.service_step(state, step, step != fail_step, "broke" if step == fail_step else "")
        if state["failed"]:
            break
    return state, records


def test_an_aws_rotation_that_goes_well_names_old_and_new_keys_and_the_next_step():
    state, records = aws_drive()
    assert state["done"] == list(rot.STEPS["aws_access_key"])
    set_items, remove = rot.vault_current(state)
    assert {tuple(i["key"]): i["value"] for i in set_items} == {
        ("vault_crpbot_aws_access_key_id",): "AKIANEWSHARED", ("vault_crpbot_aws_secret_access_key",): "new/shared+secret",
        ("vault_crpbot_aws_keys_by_role", "qc", "access_key_id"): "AKIANEWQC",
        ("vault_crpbot_aws_keys_by_role", "qc", "secret_access_key"): "new/qc+secret"}
    assert remove == ["vault_crpbot_rotation_pending"]
    out = rot.report(state, HOSTS, HOSTS, records)
    assert out["status"] == "DONE"
    assert ("AWS key qc (IAM user crpbot-qc, hosts qc-1, qc-2, qc-3): old AKIAOLDQC, new AKIANEWQC; "
            "old key inactive, new key in use") in out["summary"]
    assert out["summary"][-1].startswith("left to do: delete the deactivated key(s) AKIAOLDSHARED, AKIAOLDQC")
    assert "rotate=aws_inactive_keys" in out["summary"][-1]
    for secret in ("old/qc+secret", "new/qc+secret", "old/shared+secret", "new/shared+secret"):
        assert secret not in repr(out) and secret not in repr(rot.public(state))


@pytest.mark.parametrize("fail_host", ["qc-3", "builder-2"])
@pytest.mark.parametrize(("fail_step", "reactivate", "restore_vault"), [
    ("stage", False, False),
    ("test", False, False),
    ("promote", False, False),
    ("verify", True, True),
])
def test_one_host_failing_an_aws_step_undoes_every_step_before_it(fail_step, fail_host, reactivate, restore_vault):
    state, records = aws_drive(fail_step, fail_host)
    plan = rot.rollback_plan(state)
    assert state["failed"] == fail_step and state["failed_hosts"] == [fail_host]
    assert plan["restore_files"] and plan["undo_service"] and plan["reactivate"] is reactivate
    assert plan["restore_vault"] is restore_vault
    state = rot.service_undone(state, True, "")
    set_items, remove = rot.vault_restore(state)
    assert remove == ["vault_crpbot_rotation_pending"]
    assert {tuple(i["key"]): i["value"] for i in set_items} == ({
        ("vault_crpbot_aws_access_key_id",): "AKIAOLDSHARED", ("vault_crpbot_aws_secret_access_key",): "old/shared+secret",
        ("vault_crpbot_aws_keys_by_role", "qc", "access_key_id"): "AKIAOLDQC",
        ("vault_crpbot_aws_keys_by_role", "qc", "secret_access_key"): "old/qc+secret"} if restore_vault else {})
    out = rot.report(state, HOSTS, HOSTS, records)
    assert out["fail_msg"].startswith(f"ROLLED BACK: the aws_access_key rotation failed at step {fail_step} on {fail_host}.")


def test_a_key_creation_failing_for_the_second_user_deletes_the_first_new_key():
    state, _records = aws_drive(create_fails_on="qc")
    assert state["failed"] == "set" and list(state["secret"]["new_keys"]) == ["shared"]
    assert rot.rollback_plan(state)["undo_service"] and not rot.rollback_plan(state)["restore_files"]


def test_iam_keys_that_cannot_be_removed_keep_the_pending_record_for_a_resume():
    state, records = aws_drive("test", "qc-1")
    state = rot.service_undone(state, False, "AWS key qc: unreachable")
    _set, remove = rot.vault_restore(state)
    assert remove == []
    out = rot.report(state, HOSTS, HOSTS, records)
    assert out["status"] == "NOT FULLY ROLLED BACK"
    assert "IAM: the new key(s) AKIANEWSHARED, AKIANEWQC could not be removed" in out["fail_msg"]
    assert "rerun -e rotate=aws_access_key to resume" in out["fail_msg"]


def test_a_resumed_aws_rotation_keeps_only_the_new_keys_iam_still_has():
    pending = {"credential": "aws_access_key", "started": "2026-12-01T00:00:00Z", "keys": {
        "shared": {"access_key_id": "AKIANEWSHARED", "secret_access_key": "s1", "old_access_key_id": "AKIAOLDSHARED"},
        "qc": {"access_key_id": "AKIAGONE", "secret_access_key": "s2", "old_access_key_id": "AKIAOLDQC"}}}
    iam = {**IAM, "shared": {"user": "crpbot-builder", "keys": IAM["shared"]["keys"]
                             + [{"access_key_id": "AKIANEWSHARED", "status": "Active"}]}}
    state = aws_start(pending, iam)
    assert state["resuming"] and list(state["secret"]["new_keys"]) == ["shared"]
    assert rot.keys_to_create(state) == ["qc"] and rot.pending_record(state) is None
    assert rot.pending_record(aws_start()) == {"credential": "aws_access_key", "started": "2026-12-03T12:00:00Z",
                                               "keys": {}}


def test_an_aws_rotation_refuses_a_slot_without_its_secret():
    with pytest.raises(rot.RotationError, match="no secret access key for the AWS key.s. qc"):
        rot.begin("aws_access_key", {"shared": "x"}, None, "now", slots=SLOTS, iam=IAM)

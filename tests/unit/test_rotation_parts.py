# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pieces of playbooks/rotate_credentials.yml that need no test bed.

- crpbot_vault_write state=updated: a round-trip edit of an encrypted vault (comments, order
  and other variables kept; nested keys; removal; no change -> no write; check mode; mode kept).
- crpbot_staged_files: promote keeps the pre-rotation file as .prev and never overwrites it,
  restore puts it back, absent cleans up, a missing stage is refused.
- crpbot_rotate_service: refuses an action of the other service before running anything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from plugins.action.crpbot_vault_write import update_text
from tests.ansible_run import load_plugin, run_module_play

REPO = Path(__file__).resolve().parents[2]
VAULT_TEXT = """---
# Hand-written comment that must survive.
vault_crpbot_db_password: 'Old pass w0rd'  # inline comment
vault_crpbot_aws_keys_by_role:
  qc:
    access_key_id: AKIAOLDQC
    secret_access_key: old/qc+secret
vault_crpbot_app_secrets:
  COINBASE_API_SECRET: |
    line one
    line two
"""


def load_module(name):
    return load_plugin(f"plugins/modules/{name}.py")


# ---------------------------------------------------------------- update_text


def test_update_keeps_comments_order_and_other_values():
    new, changed = update_text(VAULT_TEXT, [(["vault_crpbot_db_password"], "N3wPassw0rd")], [])
    assert changed == ["vault_crpbot_db_password"]
    assert "# Hand-written comment that must survive." in new and "# inline comment" in new
    data = yaml.safe_load(new)
    assert data["vault_crpbot_db_password"] == "N3wPassw0rd"
    assert data["vault_crpbot_app_secrets"]["COINBASE_API_SECRET"] == "line one\nline two\n"
    assert list(data) == ["vault_crpbot_db_password", "vault_crpbot_aws_keys_by_role", "vault_crpbot_app_secrets"]


def test_update_sets_nested_keys_creating_mappings_and_removes():
    record = {"credential": "aws_access_key", "keys": {"qc": {"access_key_id": "AKIANEW", "secret_access_key": "s"}}}
    new, changed = update_text(VAULT_TEXT, [
        (["vault_crpbot_aws_keys_by_role", "qc", "access_key_id"], "AKIANEWQC"),
        (["vault_crpbot_rotation_pending"], record),
    ], [])
    data = yaml.safe_load(new)
    assert data["vault_crpbot_aws_keys_by_role"]["qc"] == {"access_key_id": "AKIANEWQC", "secret_access_key": "old/qc+secret"}
    assert data["vault_crpbot_rotation_pending"] == record
    assert changed == ["vault_crpbot_aws_keys_by_role.qc.access_key_id", "vault_crpbot_rotation_pending"]
    back, changed = update_text(new, [], [["vault_crpbot_rotation_pending"], ["absent_variable"]])
    assert changed == ["vault_crpbot_rotation_pending"]
    assert "vault_crpbot_rotation_pending" not in yaml.safe_load(back)


def test_update_without_a_difference_returns_the_text_unchanged():
    new, changed = update_text(VAULT_TEXT, [(["vault_crpbot_db_password"], "Old pass w0rd")], [["absent"]])
    assert (new, changed) == (VAULT_TEXT, [])


def test_update_refuses_to_descend_into_a_value():
    with pytest.raises(ValueError, match="vault_crpbot_db_password is not a mapping"):
        update_text(VAULT_TEXT, [(["vault_crpbot_db_password", "x"], "y")], [])


# ---------------------------------------------------------------- crpbot_vault_write on a real vault


@pytest.fixture
def vault_file(tmp_path):
    password = tmp_path / "vault-pass"
    password.write_text("unit-test-vault-password\n")
    vault = VaultLib([("default", VaultSecret(b"unit-test-vault-password"))])
    path = tmp_path / "group_vars" / "all" / "vault.yml"
    path.parent.mkdir(parents=True)
    path.write_bytes(vault.encrypt(VAULT_TEXT))
    os.chmod(path, 0o640)
    return {"path": path, "vault": vault, "env": {"ANSIBLE_VAULT_PASSWORD_FILE": str(password)}}


def vault_task(path, **args):
    return {"name": "Update the vault", "crpbot_vault_write": {"path": str(path), "state": "updated", **args},
            "register": "r", "no_log": True, "ignore_errors": True}


def test_vault_update_end_to_end(tmp_path, vault_file):
    path, vault = vault_file["path"], vault_file["vault"]
    before = path.read_bytes()
    task = vault_task(path, set=[{"key": "vault_crpbot_db_password", "value": "R0tatedPassw0rd"}],
                      remove=["vault_crpbot_rotation_pending"])
    checked = run_module_play(tmp_path, [task], check=True, env=vault_file["env"])
    assert checked.returncode == 0, checked.output[-3000:]
    assert checked.results["r"]["changed"] is True and path.read_bytes() == before
    done = run_module_play(tmp_path, [task], env=vault_file["env"])
    assert done.returncode == 0, done.output[-3000:]
    assert done.results["r"]["variables"] == ["vault_crpbot_db_password"]
    text = vault.decrypt(path.read_bytes()).decode()
    assert yaml.safe_load(text)["vault_crpbot_db_password"] == "R0tatedPassw0rd"
    assert "# Hand-written comment that must survive." in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["vault.yml"]  # no temp file left
    again = run_module_play(tmp_path, [task], env=vault_file["env"])
    assert again.results["r"]["changed"] is False
    assert "R0tatedPassw0rd" not in done.output + checked.output + again.output


def test_vault_update_names_the_fix_for_a_plain_file_and_a_wrong_password(tmp_path, vault_file):
    plain = tmp_path / "plain.yml"
    plain.write_text(VAULT_TEXT)
    task = vault_task(plain, set=[{"key": "x", "value": "y"}])
    task["no_log"] = False
    res = run_module_play(tmp_path, [task], env=vault_file["env"])
    assert "is not vault-encrypted; encrypt it first with ansible-vault encrypt" in res.results["r"]["msg"]
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("not the password\n")
    task = vault_task(vault_file["path"], set=[{"key": "x", "value": "y"}])
    task["no_log"] = False
    res = run_module_play(tmp_path, [task], env={"ANSIBLE_VAULT_PASSWORD_FILE": str(wrong)})
    assert res.returncode != 0 or res.results["r"]["failed"]
    assert "cannot decrypt" in res.output or "Decryption failed" in res.output


# ---------------------------------------------------------------- crpbot_staged_files


@pytest.fixture
def staged(tmp_path):
    live = tmp_path / ".db_password"
    live.write_text("old")
    live.chmod(0o600)
    pending = tmp_path / ".db_password.pending"
    pending.write_text("new")
    pending.chmod(0o600)
    return live


def test_promote_keeps_the_old_file_as_prev_and_restore_puts_it_back(staged):
    mod = load_module("crpbot_staged_files")
    path = str(staged)
    mod.apply(mod.plan(path, "promoted"))
    assert staged.read_text() == "new" and Path(path + ".prev").read_text() == "old"
    assert not Path(path + ".pending").exists()
    assert stat.S_IMODE(os.stat(path + ".prev").st_mode) == 0o600
    assert mod.plan(path, "promoted") == []  # promoted already
    mod.apply(mod.plan(path, "restored"))
    assert staged.read_text() == "old" and mod.leftovers([path]) == []


def test_a_second_promote_never_overwrites_the_pre_rotation_file(staged):
    mod = load_module("crpbot_staged_files")
    path = str(staged)
    mod.apply(mod.plan(path, "promoted"))
    Path(path + ".pending").write_text("new")  # a resumed rotation stages again
    mod.apply(mod.plan(path, "promoted"))
    assert Path(path + ".prev").read_text() == "old" and staged.read_text() == "new"
    mod.apply(mod.plan(path, "absent"))
    assert mod.leftovers([path]) == [] and staged.read_text() == "new"


def test_promote_refuses_a_path_with_nothing_staged(tmp_path):
    mod = load_module("crpbot_staged_files")
    with pytest.raises(ValueError, match=r"nothing is staged \(.*\.pending is missing\)"):
        mod.plan(str(tmp_path / ".env"), "promoted")


def test_staged_files_module_in_check_mode_moves_nothing(tmp_path, staged):
    task = {"name": "Promote", "crpbot_staged_files": {"paths": [str(staged)], "state": "promoted"}, "register": "r"}
    res = run_module_play(tmp_path, [task], check=True)
    assert res.returncode == 0, res.output[-3000:]
    assert res.results["r"]["changed_paths"] == [str(staged)]
    assert staged.read_text() == "old" and Path(str(staged) + ".pending").exists()
    res = run_module_play(tmp_path, [task])
    assert res.results["r"]["changed"] is True and staged.read_text() == "new"
    assert res.results["r"]["leftovers"] == [str(staged) + ".prev"]


def test_a_finished_rotation_removes_the_backups_holding_the_replaced_secret(tmp_path):
    old = "Rp1 old p@ss/word"
    env, pw = tmp_path / ".env", tmp_path / ".db_password"
    env.write_text("DB_URL=postgresql+psycopg://u:new@h/db\n")
    pw.write_text("new")
    backups = {
        ".env.20250101T000000.bak": f"DB_URL=postgresql+psycopg://u:{quote(old, safe='')}@h/db\n",  # encoded
        ".env.20250102T000000.bak": "DB_URL=postgresql+psycopg://u:other@h/db\n",
        ".db_password.20250101T000000.bak": old,
        ".db_password.20250101T000000-1.bak": old + "x",
        ".db_password.notes.bak": old,  # not a backup the project wrote: never touched
    }
    for name, text in backups.items():
        (tmp_path / name).write_text(text)
    task = {"name": "Drop", "crpbot_staged_files": {"paths": [str(env), str(pw)], "state": "absent",
                                                    "purge_backups_holding": [old]}, "register": "r"}
    checked = run_module_play(tmp_path, [task], check=True, extra_args=("-vvv",))
    assert checked.results["r"]["changed"] is True and len(checked.results["r"]["purged_backups"]) == 3
    assert all((tmp_path / name).exists() for name in backups)
    done = run_module_play(tmp_path, [task], extra_args=("-vvv",))
    assert sorted(Path(p).name for p in done.results["r"]["purged_backups"]) == [
        ".db_password.20250101T000000-1.bak", ".db_password.20250101T000000.bak", ".env.20250101T000000.bak"]
    assert sorted(p.name for p in tmp_path.glob(".*.bak")) == [".db_password.notes.bak", ".env.20250102T000000.bak"]
    assert old not in done.output and quote(old, safe="") not in done.output


def test_rotate_service_refuses_an_action_of_the_other_service(tmp_path):
    task = {"name": "Wrong pairing", "crpbot_rotate_service": {
        "project_dir": str(tmp_path), "service": "postgres", "action": "create", "password": "x",
        "db": {"host": "127.0.0.1", "database": "d", "user": "u"}}, "register": "r", "ignore_errors": True,
        "no_log": True}
    res = run_module_play(tmp_path, [task])
    assert res.results["r"]["failed"] is True
    assert res.results["r"]["msg"] == "action create is not one of password for service postgres"

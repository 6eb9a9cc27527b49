# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_vault_write: write variables to a NEW Ansible Vault file on the controller.

Runs on the controller only. The variables are dumped as YAML and encrypted with the run's own
vault password (``--ask-vault-pass`` / ``--vault-password-file`` / ``ANSIBLE_VAULT_PASSWORD_FILE``),
then written atomically, mode 0600: a temporary file in the same directory, fsync, then a hard
link to the final name, which fails if the name exists, so an existing file is never overwritten.
The result names the file and the variables, never a value; run the task with ``no_log: true``.

Options: ``path`` (required; relative paths are relative to the playbook dir), ``data`` (dict of
variables, required), ``vault_id`` (optional: which of the run's vault ids encrypts).
"""

from __future__ import annotations

import os
import tempfile

import yaml
from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultLib, match_encrypt_secret
from ansible.plugins.action import ActionBase


def plain(value):
    """Plain Python data (Ansible's tagged strings and dicts become str and dict)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, value):
    style = "|" if "\n" in value and "\r" not in value and not value[:1].isspace() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def render(data, header):
    return header + yaml.dump(plain(data), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                              allow_unicode=True, explicit_start=True)


def write_new(path, data):
    """Write bytes to a new file 0600 atomically; refuse (FileExistsError) if it exists."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        path = args.get("path")
        data = args.get("data")
        if not isinstance(path, str) or not path:
            raise AnsibleActionFail("crpbot_vault_write: path (the new vault file) is required")
        if not isinstance(data, dict):
            raise AnsibleActionFail("crpbot_vault_write: data must be a dict of variables")
        if not os.path.isabs(path):
            path = os.path.join(self._loader.get_basedir(), path)
        path = os.path.normpath(path)
        if os.path.lexists(path):
            raise AnsibleActionFail(
                f"{path} already exists and is not overwritten; move it away, or write elsewhere with "
                "-e crpbot_import_vault_file=<new path>, then merge with ansible-vault edit"
            )
        secrets = self._loader._vault.secrets or []
        try:
            vault_id, secret = match_encrypt_secret(secrets, args.get("vault_id"))
        except Exception:  # noqa: BLE001 - AnsibleVaultError and friends: the message is the fix
            raise AnsibleActionFail(
                "no vault password for this run: give one with --ask-vault-pass or --vault-password-file "
                "(the new vault file is encrypted with it)"
            ) from None
        header = "# Written by playbooks/import_credentials.yml (crpbot-ansible); edit with ansible-vault edit.\n"
        text = render(data, header)
        encrypted = VaultLib(secrets).encrypt(text, secret, vault_id=None if vault_id == "default" else vault_id)
        result.update(changed=True, path=path, variables=sorted(str(k) for k in data))
        if self._task.check_mode:
            result["msg"] = f"would write the new vault file {path}"
            return result
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            write_new(path, encrypted)
        except FileExistsError:
            raise AnsibleActionFail(f"{path} appeared while writing; it was not overwritten") from None
        except OSError as exc:
            raise AnsibleActionFail(f"could not write {path}: {exc.strerror}") from None
        result["msg"] = f"wrote the new vault file {path}"
        return result

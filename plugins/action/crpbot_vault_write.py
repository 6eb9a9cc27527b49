# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin crpbot_vault_write: write variables to an Ansible Vault file on the controller.

Runs on the controller only. Two modes:

* ``state: new`` (default): the variables in ``data`` are dumped as YAML and encrypted with the
  run's own vault password, then written atomically, mode 0600: a temporary file in the same
  directory, fsync, then a hard link to the final name, which fails if the name exists, so an
  existing file is never overwritten.
* ``state: updated``: the existing vault file is decrypted, the variables (or nested keys) in
  ``set`` are set and those in ``remove`` removed in a round-trip YAML edit (comments, order and
  every other variable kept), and the result is encrypted again with the same vault id and
  swapped in atomically (temp file + fsync + rename), keeping the file's mode.

The result names the file and the variables, never a value; run the task with ``no_log: true``.
"""

from __future__ import annotations

import io
import os
import tempfile

import yaml
from ruamel.yaml import YAML
from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultLib, match_encrypt_secret
from ansible.plugins.action import ActionBase

import ansible.module_utils

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_UTILS)

from ansible.module_utils.crpbot_data import plain  # noqa: E402


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, value):
    style = "|" if "\n" in value and "\r" not in value and not value[:1].isspace() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def render(data, header):
    return header + yaml.dump(plain(data), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                              allow_unicode=True, explicit_start=True)


def _temp_beside(path, data):
    """Write bytes to a new 0600 temporary file in path's directory, fsynced; return its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_new(path, data):
    """Write bytes to a new file 0600 atomically; refuse (FileExistsError) if it exists."""
    tmp = _temp_beside(path, data)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def replace_file(path, data):
    """Swap bytes in for an existing file atomically, keeping its mode (temp + fsync + rename)."""
    mode = os.stat(path).st_mode & 0o7777
    tmp = _temp_beside(path, data)
    try:
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _key_path(entry, what):
    """The list of nested keys of one item of ``set`` ({key, value}) or ``remove`` (the key itself)."""
    if what == "remove":
        key = entry
    else:
        key = entry.get("key") if isinstance(entry, dict) else None
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, (list, tuple)) or not key or not all(isinstance(k, str) and k for k in key):
        raise AnsibleActionFail(
            f"crpbot_vault_write: each item of {what} must be "
            + ("a variable name or a list of nested keys" if what == "remove" else "{key: <name or list of keys>, value: ...}")
        )
    return [str(k) for k in key]


def update_text(text, set_items, remove_items):
    """Apply sets and removals to the YAML text of a vault; return (new text, names of what changed).

    A round-trip edit: comments, key order and untouched values stay as they were. Nested keys are
    given as a list (``[vault_crpbot_aws_keys_by_role, qc, access_key_id]``); missing mappings on the
    way are created. Raises ValueError naming the key when a parent is not a mapping.
    """
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    doc = rt.load(text)
    if doc is None:
        doc = rt.load("{}")
    if not isinstance(doc, dict):
        raise ValueError("the vault file does not hold a mapping of variables")
    changed = []
    for keys, value in set_items:
        node = doc
        for depth, key in enumerate(keys[:-1]):
            if key not in node or node[key] is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ValueError(f"{'.'.join(keys[:depth + 1])} is not a mapping")
        if node.get(keys[-1], object()) != value:
            node[keys[-1]] = value
            changed.append(".".join(keys))
    for keys in remove_items:
        node = doc
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and keys[-1] in node:
            del node[keys[-1]]
            changed.append(".".join(keys))
    if not changed:
        return text, []
    out = io.StringIO()
    rt.dump(doc, out)
    new = out.getvalue()
    if text.startswith("---") and not new.startswith("---"):
        new = "---\n" + new
    return new, changed


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
        if not os.path.isabs(path):
            path = os.path.join(self._loader.get_basedir(), path)
        path = os.path.normpath(path)
        state = args.get("state", "new")
        if state == "updated":
            return self._update(result, path, args)
        if state != "new":
            raise AnsibleActionFail("crpbot_vault_write: state must be new or updated")
        if not isinstance(data, dict):
            raise AnsibleActionFail("crpbot_vault_write: data must be a dict of variables")
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

    def _update(self, result, path, args):
        set_items = [(_key_path(item, "set"), plain(item.get("value"))) for item in args.get("set") or []]
        remove_items = [_key_path(item, "remove") for item in args.get("remove") or []]
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise AnsibleActionFail(
                f"cannot read the vault file {path}: {exc.strerror}; point crpbot_rotate_vault_file at your "
                "vault (default inventory/group_vars/all/vault.yml)"
            ) from None
        vault = VaultLib(self._loader._vault.secrets or [])
        if not vault.is_encrypted(raw):
            raise AnsibleActionFail(f"{path} is not vault-encrypted; encrypt it first with ansible-vault encrypt {path}")
        try:
            text, vault_id, _secret = vault.decrypt_and_get_vault_id(raw)
        except Exception:  # noqa: BLE001 - AnsibleVaultError and friends: the message is the fix
            raise AnsibleActionFail(
                f"cannot decrypt {path} with this run's vault password; give the right one with "
                "--ask-vault-pass or --vault-password-file"
            ) from None
        try:
            new_text, changed = update_text(text.decode("utf-8"), set_items, remove_items)
        except ValueError as exc:
            raise AnsibleActionFail(f"cannot update {path}: {exc}") from None
        result.update(changed=bool(changed), path=path, variables=changed)
        if not changed:
            result["msg"] = f"{path} already holds these values"
            return result
        if self._task.check_mode:
            result["msg"] = f"would update {', '.join(changed)} in {path}"
            return result
        try:
            _vid, secret = match_encrypt_secret(self._loader._vault.secrets, vault_id)
        except Exception:  # noqa: BLE001
            raise AnsibleActionFail(f"no vault password for vault id {vault_id} of {path}") from None
        encrypted = vault.encrypt(new_text, secret, vault_id=None if vault_id == "default" else vault_id)
        try:
            replace_file(path, encrypted)
        except OSError as exc:
            raise AnsibleActionFail(f"could not write {path}: {exc.strerror}; it was left as it was") from None
        result["msg"] = f"updated {', '.join(changed)} in {path}"
        return result

# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vars plugin crpbot_group_vars: host_group_vars, except that vault-encrypted files hold data, never templates."""

from __future__ import annotations

DOCUMENTATION = r"""
name: crpbot_group_vars
short_description: Load group_vars and host_vars; values from vault-encrypted files are data, never templates
description:
  - Does what C(ansible.builtin.host_group_vars) does (this project enables it instead of that plugin in
    C(ansible.cfg)) - loads the YAML files under C(group_vars/) and C(host_vars/) next to the inventory and
    the playbook - with one difference that keeps secrets exact.
  - ansible-core 2.19 treats every string of a C(group_vars) file as a trusted template, a whole-file vault
    included, so a secret that happens to contain C({{ ... }}) or C({% ... %}) would be rendered on the
    controller (a lookup in it would run there) and the host would get the result instead of the secret.
  - Here every value of a vault-encrypted file (C($ANSIBLE_VAULT;...)) is loaded as data, never as a
    template, so any text a person or the project (the credential importer and rotation) stores in the
    vault reaches C(.env), C(.db_password) and C(~/.aws/credentials) byte for byte. Files that are not
    encrypted keep the usual behaviour, templates included. Inline C(!vault) values are data already.
  - "Only when a task needs them (stage V(task)), never while an inventory is only listed or exported: so
    C(ansible-inventory --list --export) - what an AWX or AAP inventory update runs on this project's
    C(inventory/crpbot.yml) - neither needs the vault password nor carries a decrypted secret (nor any other
    C(group_vars) value) into the imported inventory. The stage is fixed; no setting changes it."
  - "At run time the files are found next to each inventory source, next to the playbook, and in the
    directory the crpbot inventory plugin recorded on the hosts (C(crpbot_inventory_dir), read from the
    inventory's Host objects, never from a variable). That last one is how a job of AWX, whose inventory
    is an export of C(inventory/crpbot.yml) given as a script, still gets the vault (decrypted with the
    job's Vault credential) from the project checkout, with the precedence of inventory group_vars."
requirements:
  - Enabled in configuration (C(vars_plugins_enabled = crpbot_group_vars) in this project's C(ansible.cfg)).
options:
  stage:
    description:
      - When the plugin runs. Fixed to V(task) (only when a task needs the variables) - listing or exporting
        the inventory must not decrypt the vault.
    type: str
    default: task
    choices: [task]
  _valid_extensions:
    default: [".yml", ".yaml", ".json"]
    description:
      - "Check all of these extensions when looking for 'variable' files which should be YAML or JSON or vaulted
        versions of these."
    env:
      - name: ANSIBLE_YAML_FILENAME_EXT
    ini:
      - key: yaml_valid_extensions
        section: defaults
    type: list
    elements: string
"""

import functools
import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.group import InventoryObjectType
from ansible.parsing.vault import is_encrypted_file
from ansible.plugins.vars.host_group_vars import VarsModule as HostGroupVars
from ansible.utils.path import basedir
from ansible.utils.vars import combine_vars


def is_vault_file(path: str) -> bool:
    """Whether the file is a whole-file Ansible Vault (its first line is $ANSIBLE_VAULT;...)."""
    try:
        with open(path, "rb") as handle:
            return is_encrypted_file(handle)
    except OSError:
        return False


INVENTORY_DIR_VAR = "crpbot_inventory_dir"


# Called for every host of every task: realpath and isdir once per path.
real_path = functools.lru_cache(maxsize=256)(os.path.realpath)


@functools.lru_cache(maxsize=256)
def directory_of(path: str) -> str:
    """The real directory an inventory source or playbook path stands for (as host_group_vars finds it)."""
    return real_path(basedir(path))


def recorded_dirs(path: str, entities, playbook_dir: str | None) -> list[str]:
    """The directories recorded by the crpbot inventory plugin on the entities' hosts whose group_vars and
    host_vars are loaded besides those next to ``path`` (an inventory source's directory).

    None when ``path`` is the playbook's directory (its own group_vars have playbook precedence; the
    recorded ones keep the precedence of inventory group_vars) or when the recorded directory is ``path``
    itself (Ansible loads it already). Only the Host objects' own variables count: the inventory.
    """
    here = directory_of(path)
    if playbook_dir and here == directory_of(playbook_dir):
        return []
    found: list[str] = []
    for entity in entities:
        hosts = entity.get_hosts() if entity.base_type is InventoryObjectType.GROUP else [entity]
        for host in hosts:
            recorded = host.vars.get(INVENTORY_DIR_VAR)
            if not isinstance(recorded, str) or not os.path.isabs(recorded):
                continue
            recorded = real_path(str(recorded))
            if recorded != here and recorded not in found:
                found.append(recorded)
    return found


class VarsModule(HostGroupVars):

    REQUIRES_ENABLED = True
    is_stateless = True

    def load_found_files(self, loader, data, found_files):
        for found in found_files:
            # Everything of an encrypted file is a value a person typed (or the project wrote) as it is.
            trusted = not is_vault_file(found)
            new_data = loader.load_from_file(found, cache="all", unsafe=True, trusted_as_template=trusted)
            if new_data:  # ignore empty files
                try:
                    data = combine_vars(data, new_data)
                except AnsibleError as e:
                    raise AnsibleParserError(f"Could not process {found!r}.") from e
        return data

    def get_vars(self, loader, path, entities, cache=True):
        if not isinstance(entities, list):
            entities = [entities]
        data = super().get_vars(loader, path, entities, cache=cache)
        for directory in recorded_dirs(path, entities, loader.get_basedir()):
            data = combine_vars(data, super().get_vars(loader, directory, entities, cache=cache))
        return data

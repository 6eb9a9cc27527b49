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
requirements:
  - Enabled in configuration (C(vars_plugins_enabled = crpbot_group_vars) in this project's C(ansible.cfg)).
options:
  stage:
    ini:
      - key: stage
        section: vars_host_group_vars
    env:
      - name: ANSIBLE_VARS_PLUGIN_STAGE
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
extends_documentation_fragment:
  - vars_plugin_staging
"""

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.parsing.vault import is_encrypted_file
from ansible.plugins.vars.host_group_vars import VarsModule as HostGroupVars
from ansible.utils.vars import combine_vars


def is_vault_file(path: str) -> bool:
    """Whether the file is a whole-file Ansible Vault (its first line is $ANSIBLE_VAULT;...)."""
    try:
        with open(path, "rb") as handle:
            return is_encrypted_file(handle)
    except OSError:
        return False


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

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_credentials_read
short_description: Read the crpbot credentials a host has today (.env secrets, .db_password, AWS key)
description:
  - >-
    Reads, without changing anything, the secrets the old C(scripts/sync_credentials.sh) kept on a
    host: the keys O(env_keys) of the C(.env) (read with python-dotenv's rules, keys matched
    case-insensitively, the last occurrence wins, before interpolation), the C(.db_password) file
    (one trailing newline removed) and one profile of C(~/.aws/credentials).
  - >-
    B(The result holds secret values.) Always run it with C(no_log: true) on the task; the
    playbook C(playbooks/import_credentials.yml) passes the result straight to C(crpbot_vault_write).
  - A missing file or key is not an error; it is reported by name in RV(missing).
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  env_path:
    description: Absolute path of the C(.env) file.
    type: path
    required: true
  env_keys:
    description: The C(.env) keys to read.
    type: list
    elements: str
    default: []
    no_log: false
  db_password_path:
    description: Absolute path of the C(.db_password) file.
    type: path
    required: true
  aws_credentials_path:
    description: Absolute path of the AWS shared credentials file.
    type: path
    required: true
  aws_profile:
    description: Profile section to read from O(aws_credentials_path).
    type: str
    default: default
"""

EXAMPLES = r"""
- name: Read today's credentials from the QC host
  crpbot_credentials_read:
    env_path: /home/numan/crpbot/.env
    env_keys: [COINBASE_API_KEY, COINBASE_API_SECRET]
    db_password_path: /home/numan/crpbot/.db_password
    aws_credentials_path: /home/numan/.aws/credentials
  register: crpbot_import_read
  no_log: true
"""

RETURN = r"""
env:
  description: The O(env_keys) found in the C(.env), spelled as given in O(env_keys). Secret.
  returned: always
  type: dict
db_password:
  description: The password in C(.db_password) without its trailing newline, or null. Secret.
  returned: always
  type: str
aws_access_key_id:
  description: C(aws_access_key_id) of the profile, or null. Secret.
  returned: always
  type: str
aws_secret_access_key:
  description: C(aws_secret_access_key) of the profile, or null. Secret.
  returned: always
  type: str
missing:
  description: Names (never values) of what was not found.
  returned: always
  type: list
  elements: str
  sample: [".env key FTMO_SERVER", "/home/numan/crpbot/.db_password"]
"""

import configparser
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_env import effective_values, parse_env
from ansible.module_utils.crpbot_files import ModuleFailure


def read_text(path):
    """The file's text, or None when it does not exist; errors name the path only."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModuleFailure(f"could not read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleFailure(f"{path} is not valid UTF-8 text") from None


def env_secrets(text, keys):
    """(found, missing): the wanted keys' values as python-dotenv reads them, case-insensitively."""
    values = effective_values(parse_env(text or ""))
    found = {key: values[key.lower()] for key in keys if values.get(key.lower()) is not None}
    return found, [key for key in keys if key not in found]


def db_password(text):
    """The password: the file without one trailing newline (``echo pw > .db_password`` adds one)."""
    if text is None:
        return None
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def aws_key(text, profile, path):
    """(access_key_id, secret_access_key) of the profile, None for what is absent."""
    if text is None:
        return None, None
    parser = configparser.RawConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.Error:
        raise ModuleFailure(f"{path} is not a valid INI file (AWS shared credentials format)") from None
    if not parser.has_section(profile):
        return None, None
    section = parser[profile]
    return section.get("aws_access_key_id") or None, section.get("aws_secret_access_key") or None


def read_all(params):
    env_found, env_missing = env_secrets(read_text(params["env_path"]), params["env_keys"])
    password = db_password(read_text(params["db_password_path"]))
    key_id, secret = aws_key(
        read_text(params["aws_credentials_path"]), params["aws_profile"], params["aws_credentials_path"]
    )
    missing = [f".env key {key}" for key in env_missing]
    if password is None:
        missing.append(params["db_password_path"])
    if key_id is None or secret is None:
        missing.append(f"{params['aws_credentials_path']} [{params['aws_profile']}]")
    return dict(env=env_found, db_password=password, aws_access_key_id=key_id, aws_secret_access_key=secret,
                missing=missing)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            env_path=dict(type="path", required=True),
            env_keys=dict(type="list", elements="str", default=[], no_log=False),
            db_password_path=dict(type="path", required=True),
            aws_credentials_path=dict(type="path", required=True),
            aws_profile=dict(type="str", default="default"),
        ),
        supports_check_mode=True,
    )
    try:
        result = read_all(module.params)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

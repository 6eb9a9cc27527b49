"""Unit tests load the project's modules as files: serve their ``ansible.module_utils.crpbot_*``
imports from plugins/module_utils, as Ansible does on a target."""

from __future__ import annotations

from pathlib import Path

import ansible.module_utils

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"

if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))

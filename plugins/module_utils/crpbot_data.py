# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain Python data from Ansible's values (stdlib only), for the controller-side action plugins.

Task arguments and registered results reach an action plugin as Ansible's tagged types (ansible-core 2.19
data tagging); YAML dumpers and JSON state files want plain ``dict``/``list``/``str``.
"""

from __future__ import annotations


def plain(value):
    """Plain Python data (Ansible's tagged strings and dicts become str and dict; tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value

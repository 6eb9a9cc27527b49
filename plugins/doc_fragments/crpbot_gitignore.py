# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``gitignore`` option of the modules that write a file git must never see (plugins/module_utils/crpbot_files.py
plan_gitignore, the code of the crpbot_gitignore module)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  gitignore:
    description:
      - Keep a managed block in C(<project_dir>/.gitignore) in the same module run (one round trip), as the
        crpbot_gitignore module does it, with the same code; written before the module's own file, so git never
        sees that file.
      - The block is C(# BEGIN crpbot-ansible <block>) ... C(# END crpbot-ansible <block>); the person's own lines
        stay as they are, an entry they already wrote outside the block is not repeated, the block is removed when
        no entry is missing; a new file is C(0644), an existing one keeps its mode and owner.
      - Fails, naming the dir, when O(gitignore.project_dir) does not exist, before anything is written.
      - The C(.gitignore) holds no secret, so its diff and RV(gitignore) show it as it is.
    type: dict
    suboptions:
      project_dir:
        description: The checkout whose C(.gitignore) to keep.
        type: path
        required: true
      block:
        description: The block's name (its marker lines end with it).
        type: str
        required: true
      entries:
        description: The lines the block keeps (those not already written outside it).
        type: list
        elements: str
        default: []
"""


# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the project's modules that write files holding secrets (plugins/module_utils/crpbot_files.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  owner:
    description:
      - User name or numeric id that should own the file. When omitted, an existing file keeps its
        owner and a new file is owned by the user the module runs as.
    type: str
  group:
    description:
      - Group name or numeric id of the file. When omitted, an existing file keeps its group.
    type: str
  mode:
    description:
      - Permissions of the file, as an octal string such as V("0600") (quote it in YAML) or an integer
        (a YAML C(0600) without quotes arrives as the integer 384 and means the same).
      - Symbolic modes are not supported.
    type: raw
    default: "0600"
  backup:
    description:
      - When the content changes and a previous file existed, keep it as C(<path>.<YYYYmmddTHHMMSS>.bak)
        (host local time; C(<path>.<YYYYmmddTHHMMSS>-<n>.bak) if that name is taken), mode C(0600), with the
        previous file's owner and group.
    type: bool
    default: true
  backup_keep:
    description:
      - How many of those backups to keep. Each one holds every secret of the file, so the oldest beyond
        this number are removed (also when O(backup=false), and also when the content does not change,
        which then counts as a change). At least 1.
    type: int
    default: 5
notes:
  - The file is written atomically, a temporary file in the same directory (created C(0600)), fsync, chown,
    chmod, rename over the path; the parent directory is not managed and must exist. The path must not be a
    symbolic link.
"""

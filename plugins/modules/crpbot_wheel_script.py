#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_wheel_script
short_description: Install one file (a script or binary) from a Python wheel, atomically
description:
  - >-
    Copies the member O(member) of the wheel (a zip archive) at O(wheel) to O(dest) with mode
    O(mode). Used to install the static C(uv) binary that the uv wheel on PyPI carries as
    C(uv-<version>.data/scripts/uv), with no pip, no venv and no root on the host.
  - >-
    B(When is it changed.) The SHA-256 of the member is computed from the wheel (the zip's own CRC
    is checked while reading) and compared with the SHA-256 of the file at O(dest). Equal content
    and equal mode: nothing happens. Equal content but another mode: only the mode is set
    (RV(action=mode)). Another content or no file: the member is written (RV(action=installed) or
    RV(action=replaced)).
  - >-
    B(Atomic.) The member is written to a temporary file in the directory of O(dest), checked
    against the SHA-256 read before, given O(mode), flushed to disk and renamed over O(dest) with
    C(os.replace). A failed run leaves the old O(dest) (or none) and no temporary file behind; a
    running process that has the old file open keeps it.
  - >-
    It runs as the connecting user and needs only the Python standard library. The wheel itself
    is not verified here; download it with M(ansible.builtin.get_url) and its C(checksum) option.
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  wheel:
    description:
      - Path of the wheel (or any zip archive) on the host.
    type: path
    required: true
  member:
    description:
      - Name of the file inside the archive, as the zip lists it (C(/) separated, no leading C(/)).
    type: str
    required: true
  dest:
    description:
      - Path the file is installed to. Its directory must exist; an existing directory at O(dest)
        is refused.
    type: path
    required: true
  mode:
    description:
      - Permissions of O(dest), an octal string.
    type: str
    default: "0755"
notes:
  - Supports check mode (the same comparison, nothing written) and diff mode (SHA-256 and mode
    before and after; the content is binary and never shown).
seealso:
  - module: ansible.builtin.unarchive
    description: Unpacks whole archives; it needs C(unzip) on the host and compares by size and
      time, not by content.
"""

EXAMPLES = r"""
- name: Download the uv wheel
  ansible.builtin.get_url:
    url: "https://files.pythonhosted.org/packages/3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/\
      uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    checksum: sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19
    dest: ~/.cache/crpbot-ansible/uv-0.13.9-x86_64.whl
    mode: "0644"

- name: Install the uv binary from the wheel
  crpbot_wheel_script:
    wheel: ~/.cache/crpbot-ansible/uv-0.13.9-x86_64.whl
    member: uv-0.13.9.data/scripts/uv
    dest: ~/.local/bin/uv
"""

RETURN = r"""
dest:
  description: The path installed to.
  returned: always
  type: str
  sample: /home/numan/.local/bin/uv
member:
  description: The member of the archive that was installed.
  returned: always
  type: str
  sample: uv-0.13.9.data/scripts/uv
sha256:
  description: The SHA-256 of the member, which O(dest) has after the run (in check mode, would have).
  returned: always
  type: str
  sample: 4f1c0e0c9f7ad5b6a1e2d3c4b5a6978877665544332211ffeeddccbbaa998877
size:
  description: The size of the member in bytes.
  returned: always
  type: int
  sample: 38409000
previous_sha256:
  description: The SHA-256 of the file at O(dest) before the run; null when there was none.
  returned: always
  type: str
  sample: null
mode:
  description: The mode of O(dest) after the run (in check mode, would have), as an octal string.
  returned: always
  type: str
  sample: "0755"
action:
  description: What was done (in check mode, would be done).
  returned: always
  type: str
  choices: [installed, replaced, mode, none]
  sample: installed
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_wheel import (  # noqa: F401  (plan & co. are the module's tested API)
    ModuleFailure,
    format_mode,
    member_info,
    parse_mode,
    plan,
    run,
    sha256_of_file,
    sha256_of_member,
    write_member,
)


def describe(sha: str | None, mode: str | None) -> str:
    return "" if sha is None else f"sha256: {sha}\nmode: {mode}\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            wheel=dict(type="path", required=True),
            member=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="str", default="0755"),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module.params, module.check_mode)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), dest=module.params["dest"], member=module.params["member"])
    previous_mode = result.pop("previous_mode")
    if module._diff and result["changed"]:
        result["diff"] = dict(
            before_header=result["dest"],
            after_header=result["dest"],
            before=describe(result["previous_sha256"], previous_mode),
            after=describe(result["sha256"], result["mode"]),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

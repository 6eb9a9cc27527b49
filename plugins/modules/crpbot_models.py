#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_models
short_description: Read a host's model registry, or place exactly the approved models in models/promoted/
description:
  - Runs on the host, as the host user. Do not call it directly in a converge; the C(crpbot_promotion)
    action plugin calls it with the approvals it read and verified on the controller.
  - "O(state=review): reads C(models/registry.json) (the bot's registry), checks its shape, and returns its
    entries; with O(model_id), also the SHA-256 of that model's file as it is on this host."
  - "O(state=place): for every approved slot (one C(<model_type>_<symbol>_latest.pt) per model type and
    symbol), makes C(models/promoted/<name>) the approved file: found on this host at the model's path (or
    the kept previous copy) with the SHA-256 recorded at approval, copied to a temporary file in the same
    directory, verified again, and renamed over the name, so the runtime never sees a half-written model.
    The file it replaces is kept in C(models/.crpbot-promotion/previous/). Every approved file is checked
    before anything changes: one that is missing or differs fails the task with nothing changed."
  - A file in C(models/promoted/) that no approval names is moved to C(models/unapproved/<name>.<time>) and
    reported; it is never loaded and never deleted.
  - With O(mark_registry) (builders) the registry's C(promoted) and C(deployed_at) follow the approvals.
options:
  state:
    description: What to do.
    type: str
    choices: [review, place]
    required: true
  project_dir:
    description: Absolute path of the crpbot checkout.
    type: path
    required: true
  model_id:
    description: With O(state=review), the model whose file to hash.
    type: str
  placements:
    description:
      - With O(state=place), the approved models, each C(name), C(source) (path relative to O(project_dir)),
        C(sha256), C(model_id), C(approved_at).
    type: list
    elements: dict
    default: []
  mark_registry:
    description: With O(state=place), set C(promoted)/C(deployed_at) in C(models/registry.json).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - crpbot-ansible contributors
"""

EXAMPLES = r"""
- name: Read the registry and hash one candidate
  crpbot_models:
    state: review
    project_dir: /home/numan/crpbot
    model_id: lstm_BTC-USD_v3
"""

RETURN = r"""
models:
  description: The registry's entries (O(state=review)).
  returned: state=review
  type: list
  elements: dict
candidate:
  description: The entry of O(model_id) with C(measured_sha256) (null when its file is not on this host).
  returned: state=review and the model is registered
  type: dict
placed:
  description: The promoted file names that were (or in check mode would be) replaced.
  returned: state=place
  type: list
  elements: str
moved_aside:
  description: Where files of models/promoted/ that no approval names were moved.
  returned: state=place
  type: list
  elements: str
registry_marked:
  description: Whether models/registry.json was rewritten.
  returned: state=place
  type: bool
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_models import (
    ModelError, apply_placement, file_sha, mark_registry, plan_placement, read_registry,
)


def review(params):
    models = read_registry(params["project_dir"])
    result = {"changed": False, "models": models}
    entry = next((item for item in models if item["model_id"] == params.get("model_id")), None)
    if entry is not None:
        result["candidate"] = dict(entry, measured_sha256=file_sha(f"{params['project_dir']}/{entry['model_path']}"))
    return result


def place(params, check_mode):
    project, wanted = params["project_dir"], params["placements"]
    plan, strays = plan_placement(project, wanted)
    moved = []
    if not check_mode:
        moved = apply_placement(project, plan, strays, time.strftime("%Y%m%dT%H%M%S"))
    marked = False
    # The registry is the trainer's; a builder that has none yet has nothing to mark.
    if params["mark_registry"] and not check_mode and os.path.exists(f"{project}/models/registry.json"):
        marked = mark_registry(project, wanted)
    result = {"changed": bool(plan or strays or marked), "placed": [item["name"] for item in plan],
              "moved_aside": moved or [f"{project}/models/promoted/{name}" for name in strays],
              "registry_marked": marked}
    if strays:
        result["warnings"] = [f"{project}/models/promoted/{name} is named by no approval: "
                              f"{'it would be' if check_mode else 'it was'} moved to models/unapproved/ and is "
                              "never loaded. Approve a model with playbooks/promote_model.yml"
                              for name in strays]
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["review", "place"], "required": True},
            "project_dir": {"type": "path", "required": True},
            "model_id": {"type": "str"},
            "placements": {"type": "list", "elements": "dict", "default": []},
            "mark_registry": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "review":
            result = review(module.params)
        else:
            result = place(module.params, module.check_mode)
    except ModelError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

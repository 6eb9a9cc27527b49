# -*- coding: utf-8 -*-
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that probe a host with the project's checks (plugins/module_utils/crpbot_probes.py):
crpbot_preflight and crpbot_audit_facts."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project_dir:
    description: Absolute path of the crpbot checkout.
    type: path
    required: true
  home:
    description: The host user's home (for C(~/.aws)).
    type: path
    required: true
  uv_native_tls:
    description: Let uv use the system CA store (C(UV_NATIVE_TLS=1)), as the converge does.
    type: bool
    default: false
  aws_profile:
    description: AWS profile of the host's C(~/.aws) files.
    type: str
    default: default
  endpoint_url:
    description: S3/STS endpoint of an S3-compatible server (the sandbox's); empty for AWS.
    type: str
    default: ""
"""

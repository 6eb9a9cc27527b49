# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a short script with the crpbot project's own venv python (stdlib only).

The host's system python (the one Ansible runs modules with) has neither boto3 nor a
PostgreSQL driver; the project's ``.venv`` has both, because the app uses them. Modules that
need the app's libraries run a script with ``<project>/.venv/bin/python -c SCRIPT``: the script
holds no secret and may be on the command line; the request, secrets included, goes in on
standard input as JSON, and the script prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import os


class VenvError(Exception):
    """The script could not run or printed no result; the message is safe to show."""


def venv_python(project_dir):
    return os.path.join(project_dir, ".venv", "bin", "python")


def run_script(module, project_dir, script, request):
    """Run ``script`` with the venv python, ``request`` as JSON on stdin; return its JSON result."""
    python = venv_python(project_dir)
    if not os.access(python, os.X_OK):
        raise VenvError(f"{python} is missing: converge the host first (site.yml)")
    rc, out, err = module.run_command([python, "-c", script], data=json.dumps(request), cwd=project_dir)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = err.strip().splitlines()[-1] if err.strip() else "no output"
        raise VenvError(f"the script failed (exit {rc}): {last[:300]}") from None

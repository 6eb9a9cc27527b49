# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests load the project's modules as files: serve their ``ansible.module_utils.crpbot_*``
imports from plugins/module_utils, as Ansible does on a target."""

from __future__ import annotations

from pathlib import Path

import ansible.module_utils
import pytest

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"

if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))


@pytest.fixture(scope="session")
def moto_endpoint():
    """The test bed's S3/STS/IAM server (tests/testbed/moto_server.py) in this process, on a free port."""
    from tests.testbed import free_port, moto_server

    port = free_port()
    shutdown = moto_server.serve_in_thread(port, "waitress")
    yield f"http://127.0.0.1:{port}"
    shutdown()

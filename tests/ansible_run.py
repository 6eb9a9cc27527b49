"""Helpers for tests that run the project's ansible commands from the repo root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bin_path(name: str) -> str:
    """An executable of the project's venv (ansible-playbook, ansible-doc, ...)."""
    return str(Path(sys.executable).parent / name)


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """The environment for an ansible command: the project's ansible.cfg, temp dirs under tmp_path."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }

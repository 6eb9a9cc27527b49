# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_models role: exactly the approved version is in models/promoted/ on both hosts."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://crpbot"]


def project(host):
    variables = host.ansible.get_variables()
    return variables["crpbot_project_dir"], variables["crpbot_user"], variables["crpbot_role"]


def test_the_runtime_loads_exactly_the_approved_version(host):
    project_dir, _user, _role = project(host)
    approved = host.check_output(f"sha256sum {project_dir}/models/lstm/BTC-USD/v1/model.pt").split()[0]
    loaded = host.check_output(f"cd {project_dir} && .venv/bin/python -m apps.runtime.main --models")
    assert [line for line in loaded.splitlines() if line.startswith("MODEL=")] == [
        f"MODEL=lstm_BTC-USD_latest.pt {approved}"]


def test_the_promoted_file_belongs_to_the_host_user(host):
    project_dir, user, _role = project(host)
    promoted = host.file(f"{project_dir}/models/promoted/lstm_BTC-USD_latest.pt")
    assert promoted.user == user and promoted.mode == 0o644
    assert host.check_output(f"ls -A {project_dir}/models/promoted") == "lstm_BTC-USD_latest.pt"


def test_an_unapproved_file_was_moved_aside_not_deleted(host):
    project_dir, _user, role = project(host)
    aside = host.check_output(f"ls -A {project_dir}/models/unapproved 2>/dev/null || true").split()
    if role == "qc":
        assert len(aside) == 1 and aside[0].startswith("gru_ETH-USD_latest.pt.")
        assert host.file(f"{project_dir}/models/unapproved/{aside[0]}").content_string == "dropped here by hand\n"
    else:
        assert aside == []


def test_the_builder_registry_marks_the_promotion(host):
    project_dir, _user, role = project(host)
    if role != "builder":
        return
    registry = json.loads(host.file(f"{project_dir}/models/registry.json").content_string)
    marks = {entry["model_id"]: entry["promoted"] for entry in registry["models"]}
    assert marks == {"lstm_BTC-USD_v1": True, "lstm_BTC-USD_v2": False}

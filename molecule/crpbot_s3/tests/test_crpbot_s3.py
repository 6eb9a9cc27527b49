# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_s3 role: the builder pushed, QC pulled only the filtered subset; the
promotion's local dir (models/promoted/) stayed out of both."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://crpbot"]

PROMOTED = "models/promoted/lstm_BTC-USD_latest.pt"
BUILDER_FILES = {
    "models/lstm/BTC-USD/v1/model.pt",
    "models/lstm/ETH-USD/v1/model.pt",
    "models/registry.json",
    PROMOTED,
    "data/raw/BTC-USD/BTC-USD_1m_00001.parquet",
    "data/raw/BTC-USD/BTC-USD_1m_00002.parquet",
    "data/raw/BTC-USD_1m.parquet",
    "data/raw/ETH-USD/ETH-USD_1m_00001.parquet",
    "data/raw/SOL-USD/SOL-USD_1m_00001.parquet",
}
# QC: every model with the registry, its own promoted file (same name as the builder's, which is
# never pushed), and of data/raw only BTC-USD* (default crpbot_s3_symbols).
QC_FILES = {
    path for path in BUILDER_FILES if path.startswith("models/") or "/BTC-USD" in path
}


def files_under(host, project_dir, sub):
    out = host.check_output(f"cd {project_dir} && find {sub} -type f ! -name '.crpbot-s3-*' | sort")
    return set(out.split())


def test_files_match_the_role(host):
    hostvars = host.ansible.get_variables()
    project_dir = hostvars["crpbot_project_dir"]
    found = files_under(host, project_dir, "models") | files_under(host, project_dir, "data/raw")
    expected = BUILDER_FILES if hostvars["crpbot_role"] == "builder" else QC_FILES
    assert found == expected


def test_pulled_files_have_the_builder_content(host):
    hostvars = host.ansible.get_variables()
    if hostvars["crpbot_role"] == "builder":
        return
    content = host.file(f"{hostvars['crpbot_project_dir']}/data/raw/BTC-USD_1m.parquet").content_string
    assert content.startswith("data/raw/BTC-USD_1m.parquet 0,1,2")


def test_state_file_records_the_bucket(host):
    hostvars = host.ansible.get_variables()
    state = json.loads(host.file(f"{hostvars['crpbot_project_dir']}/data/raw/.crpbot-s3-state.json").content_string)
    [target] = state["targets"]
    assert target.endswith(f"s3://{hostvars['crpbot_bucket']}/data/raw/")
    assert "data/raw/BTC-USD_1m.parquet".removeprefix("data/raw/") in state["targets"][target]


def test_promotion_dir_is_neither_pushed_nor_pulled(host):
    hostvars = host.ansible.get_variables()
    content = host.file(f"{hostvars['crpbot_project_dir']}/{PROMOTED}").content_string
    if hostvars["crpbot_role"] == "builder":
        assert content.startswith(PROMOTED + " 0,1,2")
    else:
        assert content == "qc's own promoted model\n"


def test_qc_pulled_the_registry_naming_the_pulled_models(host):
    hostvars = host.ansible.get_variables()
    project_dir = hostvars["crpbot_project_dir"]
    registry = json.loads(host.file(f"{project_dir}/models/registry.json").content_string)
    assert sorted(entry["model_id"] for entry in registry["models"]) == ["lstm_BTC-USD_v1", "lstm_ETH-USD_v1"]
    for entry in registry["models"]:
        assert host.file(f"{project_dir}/{entry['model_path']}").sha256sum == entry["file_hash"]

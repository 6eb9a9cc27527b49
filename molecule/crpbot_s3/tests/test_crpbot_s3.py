# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the crpbot_s3 role: the builder pushed, QC pulled only the filtered subset."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://crpbot"]

BUILDER_FILES = {
    "models/promoted/lstm_BTC-USD_1m_v1.pt",
    "models/promoted/lstm_ETH-USD_1m_v1.pt",
    "data/raw/BTC-USD/BTC-USD_1m_00001.parquet",
    "data/raw/BTC-USD/BTC-USD_1m_00002.parquet",
    "data/raw/BTC-USD_1m.parquet",
    "data/raw/ETH-USD/ETH-USD_1m_00001.parquet",
    "data/raw/SOL-USD/SOL-USD_1m_00001.parquet",
}
# QC: every model, and of data/raw only BTC-USD* (default crpbot_s3_symbols).
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

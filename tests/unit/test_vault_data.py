# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets in the vault are data, never templates (plugins/vars/crpbot_group_vars.py).

ansible-core 2.19 renders every string of a group_vars file as a trusted template, a whole-file vault
included: a secret holding ``{{ ... }}`` would run on the controller. Through the project's vars plugin
the hostile values below reach a secret file and a .env byte for byte, and the lookup in one of them
never runs; a plain group_vars file still templates as before.
"""

from __future__ import annotations

import subprocess

import dotenv
import pytest
import yaml

from tests.ansible_run import ansible_env, bin_path, crpbot_localhost, run_module_play, REPO

# Each must reach the host exactly. The lookup would create the marker file if it were ever rendered.
HOSTILE = {
    "LOOKUP": "Vt1-{{ lookup('ansible.builtin.pipe', 'touch MARKER') }}-end",
    "JINJA_BLOCK": "Vt2-{% for x in [1] %}{{ x }}{% endfor %}",
    "RAW": "Vt3-{% raw %}{{ not rendered }}{% endraw %}",
    "COMMENT": "Vt4-{# a jinja comment #}",
    "VAR": "Vt5-{{ inventory_hostname }}",
    "UNSAFE_LOOKING": "Vt6-!unsafe {{ x }}",
    "DOLLAR": "Vt7-$HOME $(id) `id`",
    "BACKSLASH_END": "Vt8-ends with\\",
    "CRLF": "Vt9-a\r\nb",
    "SPACES": "  Vt10 padded  ",
    "HASH": "Vt11 #not a comment",
    "QUOTES": "Vt12-'single' \"double\"",
    "UNICODE": "Vt13-pässwörd-日本-😀",
    "EMPTY": "",
}


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("vault")
    marker = tmp_path / "MARKER"
    values = {key: value.replace("MARKER", str(marker)) for key, value in HOSTILE.items()}
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    plain = tmp_path / "vault.plain.yml"
    plain.write_text(yaml.safe_dump({"vault_test_secrets": values, "vault_test_password": values["LOOKUP"]}))
    password = tmp_path / "vault-password"
    password.write_text("Vp0-test-vault-password\n")
    env = {**ansible_env(tmp_path), "ANSIBLE_VAULT_PASSWORD_FILE": str(password)}
    subprocess.run([bin_path("ansible-vault"), "encrypt", "--output", str(tmp_path / "group_vars" / "all" / "vault.yml"),
                    str(plain)], cwd=REPO, env=env, check=True, capture_output=True)
    plain.unlink()
    # An unencrypted group_vars file keeps Ansible's behaviour: its templates are rendered.
    (tmp_path / "group_vars" / "all" / "settings.yml").write_text('templated_setting: "{{ 20 + 22 }}"\n')
    work = tmp_path / "work"
    work.mkdir()
    tasks = [
        {"name": "Write the password file", "crpbot_secret_file": {
            "path": str(work / ".db_password"), "content": "{{ vault_test_password }}"}, "no_log": True},
        {"name": "Write the .env", "crpbot_env_file": {
            "path": str(work / ".env"), "secrets": "{{ vault_test_secrets }}",
            "values": {"TEMPLATED": "{{ templated_setting }}"}}, "no_log": True},
    ]
    play = run_module_play(tmp_path, tasks, inventory=crpbot_localhost(role="qc"), env=env, extra_args=("-vvv",))
    assert play.returncode == 0, play.output[-3000:]
    return {"work": work, "marker": marker, "output": play.output, "values": values}


def test_no_template_in_a_vault_value_ever_runs(converged):
    assert not converged["marker"].exists()


def test_a_vault_value_reaches_a_secret_file_byte_for_byte(converged):
    assert (converged["work"] / ".db_password").read_bytes() == converged["values"]["LOOKUP"].encode()


def test_every_vault_value_reaches_the_env_exactly_as_the_app_reads_it(converged):
    read = dotenv.dotenv_values(converged["work"] / ".env", interpolate=True)
    for key, value in converged["values"].items():
        assert read[key] == value, key


def test_an_unencrypted_group_vars_file_still_templates(converged):
    assert dotenv.dotenv_values(converged["work"] / ".env")["TEMPLATED"] == "42"


def test_no_vault_value_in_the_output(converged):
    for key, value in converged["values"].items():
        if len(value.strip()) >= 6:
            assert value not in converged["output"], key

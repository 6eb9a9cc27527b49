# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the crpbot inventory plugin (plugins/inventory/crpbot.py).

Two layers:
- the pure helpers, called directly with parametrized tables of good and bad entries;
- ansible-inventory / ansible-doc run end to end from the repo root (so ansible.cfg applies),
  asserting on the JSON and on the error text. No host is ever contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError

from tests.ansible_run import load_plugin

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ANSIBLE_INVENTORY = str(VENV_BIN / "ansible-inventory")
ANSIBLE_DOC = str(VENV_BIN / "ansible-doc")
RDS = "crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com"


crpbot = load_plugin("plugins/inventory/crpbot.py", "crpbot_inventory_plugin")


# --- fixtures and helpers ------------------------------------------------------------------------


def settings(**overrides) -> dict:
    """validate_settings() output for the documented defaults plus an RDS endpoint."""
    options = {"project_name": "crpbot", "bucket": "crpbot-market-data-dev", "region": "us-east-1",
               "rds": {"host": RDS}, "vars": {}}
    options.update(overrides)
    return crpbot.validate_settings(options)


NO_RDS = {"rds": {}}


def ansible_env() -> dict:
    """The suite's environment (tests/conftest.py may add guards), pinned to the repo's ansible.cfg."""
    return os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=120,
                          check=False)


def write_config(tmp_path: Path, name: str, config: dict) -> Path:
    path = tmp_path / f"{name}.crpbot.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def inventory_list(path: Path | str) -> dict:
    result = run(ANSIBLE_INVENTORY, "-i", str(path), "--list")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def groups_of(data: dict) -> dict:
    """{group: sorted direct hosts} and {group: sorted children}, from ansible-inventory --list JSON."""
    return {name: {"hosts": sorted(group.get("hosts", [])), "children": sorted(group.get("children", []))}
            for name, group in data.items() if name != "_meta"}


def assert_mentions(text: str, fragments: list[str]) -> None:
    missing = [f for f in fragments if f not in text]
    assert not missing, f"missing {missing} in:\n{text}"


# --- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "home"), [
    ("root", "/root"),
    ("numan", "/home/numan"),
    ("crpbot", "/home/crpbot"),
])
def test_derive_home(user, home):
    assert crpbot.derive_home(user) == home


@pytest.mark.parametrize(("key", "valid", "hint"), [
    ("rol", crpbot.HOST_KEYS, " (did you mean 'role'?)"),
    ("Role", crpbot.HOST_KEYS, " (did you mean 'role'?)"),
    ("projectdir", crpbot.HOST_KEYS, " (did you mean 'project_dir'?)"),
    ("bilder", crpbot.ROLES, " (did you mean 'builder'?)"),
    ("sqllite", crpbot.DB_BACKENDS, " (did you mean 'sqlite'?)"),
    ("bukcet", ("bucket", "region", "rds"), " (did you mean 'bucket'?)"),
    ("zzzz", crpbot.HOST_KEYS, ""),
    (5, crpbot.ROLES, ""),
])
def test_suggest(key, valid, hint):
    assert crpbot.suggest(key, valid) == hint


@pytest.mark.parametrize(("entry", "index", "label"), [
    ({"name": "cloud"}, 1, "host 'cloud' (hosts[1])"),
    ({"user": "root"}, 2, "hosts[2]"),
    ({"name": ""}, 0, "hosts[0]"),
    (["cloud"], 3, "hosts[3]"),
])
def test_host_label(entry, index, label):
    assert crpbot.host_label(entry, index) == label


GOOD_HOSTS = [
    pytest.param(
        {"name": "local", "user": "numan", "connection": "local"}, settings(),
        {"crpbot_role": "qc", "crpbot_user": "numan", "crpbot_home": "/home/numan",
         "crpbot_project_dir": "/home/numan/crpbot", "crpbot_project_name": "crpbot",
         "crpbot_runtime_mode": "dryrun", "crpbot_db_backend": "rds", "crpbot_bucket": "crpbot-market-data-dev",
         "crpbot_region": "us-east-1", "crpbot_rds_host": RDS, "crpbot_rds_port": 5432,
         "crpbot_rds_database": "crpbot", "crpbot_rds_user": "crpbot_admin",
         "ansible_user": "numan", "ansible_connection": "local"},
        id="qc-local-all-defaults"),
    pytest.param(
        {"name": "cloud", "address": "178.156.136.185", "user": "root", "role": "builder"}, settings(),
        {"crpbot_role": "builder", "crpbot_user": "root", "crpbot_home": "/root", "crpbot_project_dir": "/root/crpbot",
         "crpbot_project_name": "crpbot", "crpbot_runtime_mode": "dryrun", "crpbot_db_backend": "rds",
         "crpbot_bucket": "crpbot-market-data-dev", "crpbot_region": "us-east-1", "crpbot_rds_host": RDS,
         "crpbot_rds_port": 5432, "crpbot_rds_database": "crpbot", "crpbot_rds_user": "crpbot_admin",
         "ansible_user": "root", "ansible_connection": "ssh", "ansible_host": "178.156.136.185",
         "ansible_port": 22},
        id="builder-ssh"),
    pytest.param(
        {"name": "qc2", "user": "alice", "port": 2222}, settings(),
        {"crpbot_role": "qc", "ansible_host": "qc2", "ansible_port": 2222, "ansible_connection": "ssh",
         "crpbot_home": "/home/alice", "crpbot_project_dir": "/home/alice/crpbot"},
        id="ssh-address-defaults-to-name"),
    pytest.param(
        {"name": "cloud", "user": "root", "role": "builder", "runtime_mode": "live"}, settings(),
        {"crpbot_runtime_mode": "live", "crpbot_role": "builder"},
        id="builder-may-run-live"),
    pytest.param(
        {"name": "laptop", "user": "numan", "connection": "local", "db_backend": "sqlite"}, settings(**NO_RDS),
        {"crpbot_db_backend": "sqlite", "crpbot_rds_host": "", "crpbot_rds_port": 5432},
        id="qc-sqlite-without-rds"),
    pytest.param(
        {"name": "ws", "user": "bob", "home": "/srv/bob/", "project_dir": "/opt/crpbot//bot"},
        settings(project_name="tradingai"),
        {"crpbot_home": "/srv/bob", "crpbot_project_dir": "/opt/crpbot/bot", "crpbot_project_name": "tradingai"},
        id="explicit-paths-normalised"),
    pytest.param(
        {"name": "ws", "user": "bob", "home": "/srv/bob"}, settings(project_name="tradingai"),
        {"crpbot_home": "/srv/bob", "crpbot_project_dir": "/srv/bob/tradingai"},
        id="project-dir-from-home-and-project-name"),
    pytest.param(
        {"name": "ws", "user": "bob", "vars": {"shared": "host", "only_here": 1}},
        settings(vars={"shared": "top", "ansible_ssh_private_key_file": "~/.ssh/k"}),
        {"shared": "host", "only_here": 1, "ansible_ssh_private_key_file": "~/.ssh/k"},
        id="host-vars-override-top-vars"),
    pytest.param(
        {"name": "ws", "user": "bob", "vars": None}, settings(rds={"host": "db", "port": 6543, "user": "u"}),
        {"crpbot_rds_host": "db", "crpbot_rds_port": 6543, "crpbot_rds_user": "u", "crpbot_rds_database": "crpbot"},
        id="empty-vars-and-partial-rds"),
]


@pytest.mark.parametrize(("entry", "config", "expected"), GOOD_HOSTS)
def test_validate_host_good(entry, config, expected):
    host = crpbot.validate_host(entry, 0, config)
    assert host["name"] == entry["name"]
    assert host["role"] == host["hostvars"]["crpbot_role"]
    assert {k: host["hostvars"].get(k) for k in expected} == expected


def test_validate_host_local_has_no_ssh_vars():
    host = crpbot.validate_host({"name": "local", "user": "numan", "connection": "local", "address": "x"}, 0,
                                settings())
    assert "ansible_host" not in host["hostvars"]
    assert "ansible_port" not in host["hostvars"]


# (entry, settings, index, [fragments the message must contain: where, key, found, fix])
BAD_HOSTS = [
    pytest.param({"name": "cloud", "user": "root", "role": "bilder"}, settings(), 1,
                 ["host 'cloud' (hosts[1])", "key 'role'", "'bilder'", "'qc', 'builder'",
                  "did you mean 'builder'?", "Fix: set role: qc or role: builder"], id="unknown-role"),
    pytest.param({"name": "cloud", "user": "root", "role": ["builder"]}, settings(), 0,
                 ["host 'cloud'", "key 'role'", "['builder'] (list)", "choose one"], id="role-list"),
    pytest.param({"name": "local", "user": "numan", "runtime_mode": "live"}, settings(), 0,
                 ["host 'local' (hosts[0])", "key 'runtime_mode'", "'live' on a QC host",
                  "only a builder host run as root may run live; set role: builder and user: root, or runtime_mode: dryrun"], id="live-on-qc"),
    pytest.param({"name": "cloud", "user": "ubuntu", "role": "builder", "runtime_mode": "live"}, settings(), 0,
                 ["host 'cloud' (hosts[0])", "key 'runtime_mode'", "found 'live' for user 'ubuntu'",
                  "only allowed for the root user", "set role: builder and user: root"], id="live-not-root"),
    pytest.param({"name": "cloud", "user": "root", "role": "builder", "runtime_mode": "production"}, settings(), 0,
                 ["host 'cloud'", "key 'runtime_mode'", "'production'", "'dryrun', 'live'", "Fix: set runtime_mode"],
                 id="unknown-runtime-mode"),
    pytest.param({"name": "cloud", "user": "root", "role": "builder"}, settings(**NO_RDS), 0,
                 ["host 'cloud'", "key 'rds.host'", "empty", "set rds.host to the RDS endpoint"],
                 id="builder-without-rds"),
    pytest.param({"name": "local", "user": "numan"}, settings(**NO_RDS), 0,
                 ["host 'local'", "key 'rds.host'", "db_backend: rds", "set rds.host to the RDS endpoint",
                  "db_backend: sqlite"], id="qc-rds-without-rds"),
    pytest.param({"name": "local", "user": "numan", "db_backend": ["sqlite", "rds"]}, settings(), 0,
                 ["host 'local'", "key 'db_backend'", "['sqlite', 'rds']", "asking for more than one",
                  "choose one: db_backend: rds or db_backend: sqlite"], id="db-backend-both"),
    pytest.param({"name": "local", "user": "numan", "db_backend": "mysql"}, settings(), 0,
                 ["host 'local'", "key 'db_backend'", "'mysql'", "'rds', 'sqlite'"], id="db-backend-unknown"),
    pytest.param({"name": "cloud", "user": "root", "role": "builder", "db_backend": "sqlite"}, settings(), 0,
                 ["host 'cloud'", "key 'db_backend'", "'sqlite' on a builder host", "set db_backend: rds"],
                 id="sqlite-on-builder"),
    pytest.param({"name": "cloud", "user": "root", "rol": "builder"}, settings(), 1,
                 ["host 'cloud' (hosts[1])", "key 'rol'", "unknown key", "did you mean 'role'?",
                  "Fix: rename or remove 'rol'"], id="unknown-key-typo"),
    pytest.param({"nme": "cloud", "user": "root"}, settings(), 2,
                 ["hosts[2]", "key 'nme'", "did you mean 'name'?"], id="name-typo"),
    pytest.param({"name": "ws", "user": "bob", "project_dir": "crpbot"}, settings(), 0,
                 ["host 'ws'", "key 'project_dir'", "relative path 'crpbot'", "project_dir: /home/bob/crpbot"],
                 id="relative-project-dir"),
    pytest.param({"name": "ws", "user": "bob", "home": "home/bob"}, settings(), 0,
                 ["host 'ws'", "key 'home'", "relative path 'home/bob'", "home: /home/bob"], id="relative-home"),
    pytest.param({"name": "ws", "user": "bob", "home": None}, settings(), 0,
                 ["host 'ws'", "key 'home'", "None (null)"], id="home-null"),
    pytest.param({"name": "cloud", "user": "root", "address": "{{ lookup('env', 'IP') }}"}, settings(), 0,
                 ["host 'cloud'", "key 'address'", "found a template", "must be literal",
                  "write the actual value in address:"], id="address-template"),
    pytest.param({"name": "ws", "user": "bob", "project_dir": "/srv/{{ x }}"}, settings(), 0,
                 ["host 'ws'", "key 'project_dir'", "found a template"], id="project-dir-template"),
    pytest.param({"name": "cloud", "user": "root", "port": "22"}, settings(), 0,
                 ["host 'cloud'", "key 'port'", "expected an integer", "'22' (string)", "without quotes",
                  "port: 22"], id="port-string"),
    pytest.param({"name": "cloud", "user": "root", "port": True}, settings(), 0,
                 ["host 'cloud'", "key 'port'", "True (boolean)"], id="port-bool"),
    pytest.param({"name": "cloud", "user": "root", "port": 70000}, settings(), 0,
                 ["host 'cloud'", "key 'port'", "from 1 to 65535", "70000"], id="port-range"),
    pytest.param({"user": "root", "role": "builder"}, settings(), 3,
                 ["hosts[3]", "key 'name'", "missing", "give every host a name:"], id="name-missing"),
    pytest.param({"name": 42, "user": "root"}, settings(), 0,
                 ["hosts[0]", "key 'name'", "42 (integer)"], id="name-not-string"),
    pytest.param({"name": "builder", "user": "root"}, settings(), 0,
                 ["hosts[0]", "key 'name'", "also a group name"], id="name-is-a-group"),
    pytest.param({"name": "cloud", "role": "builder"}, settings(), 0,
                 ["host 'cloud'", "key 'user'", "missing", "set user:"], id="user-missing"),
    pytest.param({"name": "cloud", "user": ["root"]}, settings(), 0,
                 ["host 'cloud'", "key 'user'", "(list)"], id="user-not-string"),
    pytest.param({"name": "cloud", "user": "root", "connection": "winrm"}, settings(), 0,
                 ["host 'cloud'", "key 'connection'", "'winrm'", "'ssh', 'local'"], id="unknown-connection"),
    pytest.param(["cloud", "root"], settings(), 4,
                 ["hosts[4]", "expected a mapping", "(list)", "'- name: ...'"], id="entry-not-a-dict"),
    pytest.param("cloud", settings(), 0,
                 ["hosts[0]", "expected a mapping", "'cloud' (string)"], id="entry-a-string"),
    pytest.param({"name": "local", "user": "numan", "vars": {"crpbot_role": "builder"}}, settings(), 0,
                 ["host 'local'", "key 'vars.crpbot_role'", "'builder'",
                  "use 'role:' instead of vars.crpbot_role"], id="vars-sets-role"),
    pytest.param({"name": "cloud", "user": "root", "vars": {"ansible_host": "10.0.0.1"}}, settings(), 0,
                 ["host 'cloud'", "key 'vars.ansible_host'", "use 'address:' instead of vars.ansible_host"],
                 id="vars-sets-ansible-host"),
    pytest.param({"name": "cloud", "user": "root", "vars": {"crpbot_bucket": "b"}}, settings(), 0,
                 ["key 'vars.crpbot_bucket'", "use 'bucket:' at the top level instead of vars.crpbot_bucket"],
                 id="vars-sets-bucket"),
    pytest.param({"name": "cloud", "user": "root", "vars": ["a=1"]}, settings(), 0,
                 ["host 'cloud'", "key 'vars'", "expected a mapping", "(list)"], id="vars-not-a-dict"),
    pytest.param({"name": "cloud", "user": "root", "vars": {"bad-name": 1}}, settings(), 0,
                 ["host 'cloud'", "key 'vars.bad-name'", "not a valid variable name"], id="vars-bad-name"),
]


@pytest.mark.parametrize(("entry", "config", "index", "fragments"), BAD_HOSTS)
def test_validate_host_bad(entry, config, index, fragments):
    with pytest.raises(crpbot.ConfigProblem) as caught:
        crpbot.validate_host(entry, index, config)
    assert_mentions(str(caught.value), fragments + ["Fix: "])


@pytest.mark.parametrize(("overrides", "fragments"), [
    ({"project_name": "a/b"}, ["top level", "key 'project_name'", "'a/b'", "without '/'"]),
    ({"project_name": ""}, ["key 'project_name'", "non-empty string"]),
    ({"bucket": ""}, ["key 'bucket'", "set bucket:"]),
    ({"rds": {"hots": "db"}}, ["key 'rds.hots'", "did you mean 'host'?"]),
    ({"rds": {"host": "db", "port": "5432"}}, ["key 'rds.port'", "'5432' (string)"]),
    ({"rds": {"host": ["a", "b"]}}, ["key 'rds.host'", "(list)", "set rds.host to the RDS endpoint"]),
    ({"vars": {"crpbot_bucket": "x"}}, ["top level", "key 'vars.crpbot_bucket'",
                                        "use 'bucket:' at the top level instead of vars.crpbot_bucket"]),
    ({"vars": {"ansible_connection": "local"}}, ["key 'vars.ansible_connection'", "use 'connection:'"]),
])
def test_validate_settings_bad(overrides, fragments):
    with pytest.raises(crpbot.ConfigProblem) as caught:
        settings(**overrides)
    assert_mentions(str(caught.value), fragments + ["Fix: "])


def test_validate_settings_fills_rds_defaults():
    assert settings(rds={"host": "db"})["rds"] == {"host": "db", "port": 5432, "database": "crpbot",
                                                   "user": "crpbot_admin"}
    assert settings(rds=None)["rds"]["host"] == ""


def _host(name, address=None, port=22, connection="ssh"):
    return {"name": name, "connection": connection, "address": address or name, "port": port}


@pytest.mark.parametrize(("hosts", "fragments"), [
    ([_host("a"), _host("b")], []),
    ([_host("a", "10.0.0.1"), _host("b", "10.0.0.1", port=2222)], []),
    ([_host("a", "x", connection="local"), _host("b", "x", connection="local")], []),
    ([_host("a"), _host("b"), _host("a", "10.0.0.9")],
     ["host 'a' (hosts[0] and hosts[2])", "key 'name'", "twice", "unique name"]),
    ([_host("a", "10.0.0.1"), _host("b", "10.0.0.1")],
     ["host 'b' (hosts[1])", "key 'address'", "10.0.0.1:22", "already used by host 'a' (hosts[0])"]),
])
def test_check_unique(hosts, fragments):
    problems = crpbot.check_unique(list(enumerate(hosts)))
    if not fragments:
        assert problems == []
    else:
        assert len(problems) == 1
        assert_mentions(str(problems[0]), fragments)


@pytest.mark.parametrize(("compose", "groups", "fragments"), [
    ({"env_file": "x"}, {"remote": "true"}, []),
    ({"crpbot_runtime_mode": "'live'"}, {}, ["key 'compose.crpbot_runtime_mode'", "use 'runtime_mode:'"]),
    ({}, {"builder": "true"}, ["key 'groups.builder'", "set role: builder on the host entries"]),
    ({}, {"qc": "true"}, ["key 'groups.qc'", "set role: qc on the host entries"]),
    ({}, {"crpbot": "true"}, ["key 'groups.crpbot'", "already in crpbot", "another name"]),
])
def test_check_constructed(compose, groups, fragments):
    problems = crpbot.check_constructed(compose, groups)
    assert len(problems) == (1 if fragments else 0)
    if fragments:
        assert_mentions(str(problems[0]), fragments)


def test_check_role_groups():
    expected = {"qc": {"local"}, "builder": {"cloud"}}
    assert crpbot.check_role_groups(expected, {"qc": {"local"}, "builder": {"cloud"}}) == []
    problems = crpbot.check_role_groups(expected, {"qc": {"local"}, "builder": {"cloud", "local"}})
    assert_mentions(str(problems[0]), ["group 'builder'", "local", "do not say role: builder"])


VALID_KEYS = ("plugin", "project_name", "bucket", "region", "rds", "vars", "hosts",
              "strict", "compose", "groups", "keyed_groups", "use_extra_vars", "leading_separator")


def _options(hosts, **overrides):
    options = {"project_name": "crpbot", "bucket": "b", "region": "r", "rds": {"host": RDS}, "vars": {},
               "compose": {}, "groups": {}, "hosts": hosts}
    options.update(overrides)
    return options


def test_validate_config_good():
    hosts = crpbot.validate_config("/x/crpbot.yml", ["plugin", "hosts"], VALID_KEYS, _options([
        {"name": "local", "user": "numan", "connection": "local"},
        {"name": "cloud", "user": "root", "role": "builder", "address": "178.156.136.185"},
    ]))
    assert [(h["name"], h["role"]) for h in hosts] == [("local", "qc"), ("cloud", "builder")]


@pytest.mark.parametrize(("keys", "options", "fragments"), [
    (["plugin", "bukcet", "hosts"], _options([{"name": "a", "user": "u"}]),
     ["(1 problem)", "top level, key 'bukcet'", "did you mean 'bucket'?"]),
    (["plugin", "hosts"], _options("cloud"), ["key 'hosts'", "'cloud' (string)"]),
    (["plugin", "hosts"], _options([{"name": "a", "user": "u"}], project_name="x/y"), ["key 'project_name'"]),
    (["plugin", "hosts"], _options([
        {"name": "local", "user": "numan", "runtime_mode": "live"},
        {"name": "cloud", "user": "root", "role": "bilder"},
        {"name": "local", "user": "numan"},
    ], groups={"qc": "true"}),
     ["(4 problems)", "host 'local' (hosts[0]), key 'runtime_mode'", "host 'cloud' (hosts[1]), key 'role'",
      "host 'local' (hosts[0] and hosts[2]), key 'name'", "key 'groups.qc'"]),
])
def test_validate_config_bad(keys, options, fragments):
    with pytest.raises(AnsibleParserError) as caught:
        crpbot.validate_config("/x/sandbox.crpbot.yml", keys, VALID_KEYS, options)
    assert_mentions(str(caught.value), ["crpbot inventory /x/sandbox.crpbot.yml is invalid", "no host was added"]
                    + fragments)


@pytest.mark.parametrize(("name", "ok"), [
    ("crpbot.yml", True),
    ("crpbot.yaml", True),
    ("sandbox.crpbot.yml", True),
    ("hosts.yml", False),
    ("crpbot.yml.bak", False),
    ("crpbot.json", False),
])
def test_verify_file(tmp_path, name, ok):
    path = tmp_path / name
    path.write_text("plugin: crpbot\n")
    assert crpbot.InventoryModule().verify_file(str(path)) is ok


def test_verify_file_missing(tmp_path):
    assert crpbot.InventoryModule().verify_file(str(tmp_path / "gone.crpbot.yml")) is False


def test_documentation_matches_code():
    """DOCUMENTATION is the interface: its keys, choices and defaults must be what the code enforces."""
    options = yaml.safe_load(crpbot.DOCUMENTATION)["options"]
    host_options = options["hosts"]["suboptions"]
    assert tuple(host_options) == crpbot.HOST_KEYS
    assert {k: v.get("default", "") for k, v in options["rds"]["suboptions"].items()} == crpbot.RDS_DEFAULTS
    assert tuple(host_options["role"]["choices"]) == crpbot.ROLES
    assert tuple(host_options["connection"]["choices"]) == crpbot.CONNECTIONS
    assert tuple(host_options["runtime_mode"]["choices"]) == crpbot.RUNTIME_MODES
    assert tuple(host_options["db_backend"]["choices"]) == crpbot.DB_BACKENDS
    defaults = {k: v["default"] for k, v in host_options.items() if "default" in v}
    assert defaults == {"port": 22, "connection": "ssh", "role": "qc", "runtime_mode": "dryrun",
                        "db_backend": "rds", "vars": {}}
    assert [k for k, v in host_options.items() if v.get("required")] == ["name", "user"]
    for name, option in {**options, **host_options}.items():
        assert option.get("description") and option.get("type"), name


# --- end to end: ansible-inventory and ansible-doc from the repo root ---------------------------


def test_examples_are_valid_inventories(tmp_path, moto_endpoint):
    """Every example works as written; the EC2 one asks the test's moto server instead of AWS."""
    import boto3

    examples = list(yaml.safe_load_all(crpbot.EXAMPLES))
    assert len(examples) >= 4
    fake = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "example"}  # moto takes any key
    boto3.client("ec2", endpoint_url=moto_endpoint, region_name="eu-west-1", **fake).run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "example-trainer"}, {"Key": "Project", "Value": "crpbot"},
            {"Key": "crpbot:role", "Value": "builder"}, {"Key": "crpbot:user", "Value": "root"}]}])
    sources = []
    for number, example in enumerate(examples):
        if "ec2" in example:
            example["ec2"]["endpoint_url"] = moto_endpoint
            example["cache_connection"] = str(tmp_path / "cache")
        sources += ["-i", str(write_config(tmp_path, f"example{number}", example))]
    env = ansible_env() | {"AWS_ACCESS_KEY_ID": fake["aws_access_key_id"],
                           "AWS_SECRET_ACCESS_KEY": fake["aws_secret_access_key"],
                           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    result = subprocess.run([ANSIBLE_INVENTORY, *sources, "--list"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    groups = groups_of(data)
    assert groups["qc"]["hosts"] == ["laptop", "local", "workstation"]
    assert groups["builder"]["hosts"] == ["cloud", "example-trainer"]
    assert data["_meta"]["hostvars"]["example-trainer"]["ec2_region"] == "eu-west-1"
    assert list((tmp_path / "cache").iterdir()), "the EC2 example caches what it found"
    assert groups["mode_dryrun"]["hosts"] == ["cloud", "local"]
    assert groups["db_rds"]["hosts"] == ["cloud", "local"]



def test_real_inventory_graph():
    result = run(ANSIBLE_INVENTORY, "-i", "inventory/crpbot.yml", "--graph")
    assert result.returncode == 0, result.stderr
    lines = [line.strip(" |-") for line in result.stdout.splitlines()]
    assert lines[lines.index("@qc:") + 1] == "local"
    assert lines[lines.index("@builder:") + 1] == "cloud"
    assert "@crpbot:" in lines


def test_real_inventory_list():
    data = inventory_list(ROOT / "inventory/crpbot.yml")
    groups = groups_of(data)
    assert groups["crpbot"] == {"hosts": [], "children": ["builder", "qc"]}
    assert groups["qc"]["hosts"] == ["local"]
    assert groups["builder"]["hosts"] == ["cloud"]
    shared = {"crpbot_project_name": "crpbot", "crpbot_bucket": "crpbot-market-data-dev",
              "crpbot_region": "us-east-1", "crpbot_rds_host": RDS, "crpbot_rds_port": 5432,
              "crpbot_rds_database": "crpbot", "crpbot_rds_user": "crpbot_admin",
              "crpbot_runtime_mode": "dryrun", "crpbot_db_backend": "rds",
              "crpbot_promotions_file": str(ROOT / "inventory/promotions.json"),
              "crpbot_inventory_dir": str(ROOT / "inventory")}
    assert data["_meta"]["hostvars"]["local"] == shared | {
        "crpbot_role": "qc", "crpbot_user": "numan", "crpbot_home": "/home/numan",
        "crpbot_project_dir": "/home/numan/crpbot", "ansible_user": "numan", "ansible_connection": "local"}
    assert data["_meta"]["hostvars"]["cloud"] == shared | {
        "crpbot_role": "builder", "crpbot_user": "root", "crpbot_home": "/root", "crpbot_project_dir": "/root/crpbot",
        "ansible_user": "root", "ansible_connection": "ssh", "ansible_host": "178.156.136.185", "ansible_port": 22}


def test_ansible_doc_renders():
    result = run(ANSIBLE_DOC, "-t", "inventory", "crpbot")
    assert result.returncode == 0, result.stderr
    for option in VALID_KEYS:
        assert option in result.stdout, option
    for example in ("keyed_groups:", "prefix: mode", "role: builder"):
        assert example in result.stdout


def test_minimal_config_defaults(tmp_path):
    path = write_config(tmp_path, "minimal", {
        "plugin": "crpbot",
        "hosts": [{"name": "ws", "user": "alice", "db_backend": "sqlite"}],
    })
    data = inventory_list(path)
    groups = groups_of(data)
    assert groups["crpbot"]["children"] == ["builder", "qc"]
    assert groups["qc"]["hosts"] == ["ws"]
    assert groups.get("builder", {"hosts": []})["hosts"] == []
    assert data["_meta"]["hostvars"]["ws"] == {
        "crpbot_role": "qc", "crpbot_user": "alice", "crpbot_home": "/home/alice",
        "crpbot_project_dir": "/home/alice/crpbot", "crpbot_project_name": "crpbot",
        "crpbot_runtime_mode": "dryrun", "crpbot_db_backend": "sqlite", "crpbot_bucket": "crpbot-market-data-dev",
        "crpbot_region": "us-east-1", "crpbot_rds_host": "", "crpbot_rds_port": 5432,
        "crpbot_rds_database": "crpbot", "crpbot_rds_user": "crpbot_admin",
        "crpbot_promotions_file": str(tmp_path / "promotions.json"), "crpbot_inventory_dir": str(tmp_path),
        "ansible_user": "alice", "ansible_connection": "ssh", "ansible_host": "ws", "ansible_port": 22,
    }


def test_full_config_with_constructed(tmp_path):
    path = write_config(tmp_path, "sandbox", {
        "plugin": "crpbot",
        "project_name": "bot",
        "bucket": "test-bucket",
        "region": "eu-west-1",
        "rds": {"host": "127.0.0.1", "port": 15432, "database": "crpbot_test", "user": "tester"},
        "vars": {"ansible_ssh_private_key_file": "/keys/id", "shared": "top"},
        "hosts": [
            {"name": "qc1", "address": "127.0.0.1", "port": 2201, "user": "numan", "vars": {"shared": "qc1"}},
            {"name": "builder1", "address": "127.0.0.1", "port": 2202, "user": "root", "role": "builder",
             "runtime_mode": "live", "project_dir": "/srv/bot"},
        ],
        "strict": True,
        "compose": {"crpbot_env_file": "crpbot_project_dir ~ '/.env'"},
        "groups": {"remote": "ansible_connection == 'ssh'", "uploads": "crpbot_role == 'builder'"},
        "keyed_groups": [{"key": "crpbot_runtime_mode", "prefix": "mode"},
                         {"key": "crpbot_db_backend", "prefix": "db"}],
    })
    data = inventory_list(path)
    groups = groups_of(data)
    assert groups["qc"]["hosts"] == ["qc1"]
    assert groups["builder"]["hosts"] == ["builder1"]
    assert groups["mode_dryrun"]["hosts"] == ["qc1"]
    assert groups["mode_live"]["hosts"] == ["builder1"]
    assert groups["db_rds"]["hosts"] == ["builder1", "qc1"]
    assert groups["remote"]["hosts"] == ["builder1", "qc1"]
    assert groups["uploads"]["hosts"] == ["builder1"]
    qc1 = data["_meta"]["hostvars"]["qc1"]
    builder1 = data["_meta"]["hostvars"]["builder1"]
    assert qc1["crpbot_env_file"] == "/home/numan/bot/.env"
    assert builder1["crpbot_env_file"] == "/srv/bot/.env"
    assert (qc1["shared"], builder1["shared"]) == ("qc1", "top")
    assert builder1["ansible_ssh_private_key_file"] == "/keys/id"
    assert (qc1["ansible_port"], builder1["ansible_port"]) == (2201, 2202)
    assert (builder1["crpbot_rds_host"], builder1["crpbot_rds_port"]) == ("127.0.0.1", 15432)
    assert (builder1["crpbot_bucket"], builder1["crpbot_region"]) == ("test-bucket", "eu-west-1")
    assert builder1["crpbot_runtime_mode"] == "live"
    # The live approval is a group of its own, like the role: no variable can put a host in it.
    assert groups["live_approved"]["hosts"] == ["builder1"]


def test_strict_compose_error(tmp_path):
    base = {"plugin": "crpbot", "hosts": [{"name": "ws", "user": "u", "db_backend": "sqlite"}],
            "compose": {"x": "undefined_var + 1"}}
    lenient = inventory_list(write_config(tmp_path, "lenient", base))
    assert "x" not in lenient["_meta"]["hostvars"]["ws"]
    result = run(ANSIBLE_INVENTORY, "-i", str(write_config(tmp_path, "strict", base | {"strict": True})), "--list")
    assert result.returncode != 0
    assert "Could not set x for host ws" in result.stderr


GOOD_ENTRY = {"name": "ws", "user": "u", "db_backend": "sqlite"}

# (name, config, fragments stderr must contain)
BAD_CONFIGS = [
    ("role", {"rds": {"host": "db"}, "hosts": [{"name": "cloud", "user": "root", "role": "bilder"}]},
     ["host 'cloud' (hosts[0])", "key 'role'", "'bilder'", "did you mean 'builder'?", "Fix:"]),
    ("live", {"rds": {"host": "db"}, "hosts": [{"name": "local", "user": "numan", "runtime_mode": "live"}]},
     ["host 'local'", "key 'runtime_mode'",
      "only a builder host run as root may run live; set role: builder and user: root, or runtime_mode: dryrun"]),
    ("nords", {"hosts": [{"name": "cloud", "user": "root", "role": "builder"}]},
     ["host 'cloud'", "key 'rds.host'", "set rds.host to the RDS endpoint"]),
    ("both", {"rds": {"host": "db"}, "hosts": [{"name": "local", "user": "numan", "db_backend": ["sqlite", "rds"]}]},
     ["host 'local'", "key 'db_backend'", "choose one"]),
    ("typo", {"rds": {"host": "db"}, "hosts": [{"name": "cloud", "user": "root", "rol": "builder"}]},
     ["host 'cloud'", "key 'rol'", "did you mean 'role'?"]),
    ("reldir", {"hosts": [GOOD_ENTRY | {"project_dir": "crpbot"}]},
     ["host 'ws'", "key 'project_dir'", "relative path", "absolute"]),
    ("dupname", {"hosts": [GOOD_ENTRY, GOOD_ENTRY | {"address": "10.1.1.1"}]},
     ["host 'ws' (hosts[0] and hosts[1])", "key 'name'", "unique name"]),
    ("dupaddr", {"hosts": [GOOD_ENTRY | {"address": "10.1.1.1"}, GOOD_ENTRY | {"name": "ws2", "address": "10.1.1.1"}]},
     ["host 'ws2' (hosts[1])", "key 'address'", "10.1.1.1:22", "already used by host 'ws'"]),
    ("port", {"hosts": [GOOD_ENTRY | {"port": "ssh"}]}, ["host 'ws'", "key 'port'", "expected an integer"]),
    ("topkey", {"bukcet": "x", "hosts": [GOOD_ENTRY]}, ["top level, key 'bukcet'", "did you mean 'bucket'?"]),
    ("nohosts", {}, ["Required config 'hosts'", "Fix: add a hosts: list"]),
    ("rdstype", {"rds": "db", "hosts": [GOOD_ENTRY]}, ["Config 'rds'", "invalid value", "Fix:"]),
    ("varsrole", {"hosts": [GOOD_ENTRY | {"vars": {"crpbot_role": "builder"}}]},
     ["host 'ws'", "key 'vars.crpbot_role'", "use 'role:' instead of vars.crpbot_role"]),
    ("keyedlive", {"hosts": [GOOD_ENTRY], "keyed_groups": [{"key": "'approved'", "prefix": "live"}]},
     ["group 'live_approved'", "key 'keyed_groups'", "do not say runtime_mode: live", "the inventory is refused"]),
    ("composedlive", {"hosts": [GOOD_ENTRY], "groups": {"live_approved": "true"}},
     ["key 'groups.live_approved'", "managed by the crpbot inventory plugin",
      "set runtime_mode: live on a builder entry instead"]),
    ("keyedbuilder", {"hosts": [GOOD_ENTRY],
                      "keyed_groups": [{"key": "crpbot_runtime_mode", "parent_group": "builder"}]},
     ["group 'builder'", "key 'keyed_groups'", "do not say role: builder", "the inventory is refused"]),
]


@pytest.mark.parametrize(("name", "config", "fragments"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_fails_ansible_inventory(tmp_path, name, config, fragments):
    path = write_config(tmp_path, name, {"plugin": "crpbot"} | config)
    result = run(ANSIBLE_INVENTORY, "-i", str(path), "--list")
    assert result.returncode != 0
    assert_mentions(result.stderr, [f"crpbot inventory {path} is invalid"] + fragments)


def test_validate_config_allows_an_empty_host_list():
    # The test bed writes `hosts: []` when it is down: a valid inventory with empty groups.
    assert crpbot.validate_config("/x/crpbot.yml", ["plugin", "hosts"], VALID_KEYS, _options([])) == []


@pytest.mark.parametrize("value, expected", [
    (None, "{dir}/promotions.json"),
    ("approvals/models.json", "{dir}/approvals/models.json"),
    ("/srv/crpbot/promotions.json", "/srv/crpbot/promotions.json"),
])
def test_promotions_file_is_absolute_on_every_host(tmp_path, value, expected):
    config = {"plugin": "crpbot", "hosts": [{"name": "qc1", "user": "numan", "connection": "local", "db_backend": "sqlite"}]}
    if value is not None:
        config["promotions_file"] = value
    data = inventory_list(write_config(tmp_path, "promotions", config))
    assert data["_meta"]["hostvars"]["qc1"]["crpbot_promotions_file"] == expected.format(dir=tmp_path)


def test_promotions_file_cannot_be_set_by_vars(tmp_path):
    config = {"plugin": "crpbot", "vars": {"crpbot_promotions_file": "/tmp/forged.json"},
              "hosts": [{"name": "qc1", "user": "numan", "connection": "local", "db_backend": "sqlite"}]}
    result = run(ANSIBLE_INVENTORY, "-i", str(write_config(tmp_path, "forged", config)), "--list")
    assert "crpbot_promotions_file" in result.stderr and "/tmp/forged.json" not in result.stdout


def test_inventory_dir_is_the_files_own_and_cannot_be_set_by_vars(tmp_path):
    """crpbot_inventory_dir says where the vault of the hosts is (see plugins/vars/crpbot_group_vars.py)."""
    host = {"name": "qc1", "user": "numan", "connection": "local", "db_backend": "sqlite"}
    data = inventory_list(write_config(tmp_path, "located", {"plugin": "crpbot", "hosts": [host]}))
    assert data["_meta"]["hostvars"]["qc1"]["crpbot_inventory_dir"] == str(tmp_path)
    config = {"plugin": "crpbot", "vars": {"crpbot_inventory_dir": "/etc/forged"}, "hosts": [host]}
    result = run(ANSIBLE_INVENTORY, "-i", str(write_config(tmp_path, "forged", config)), "--list")
    assert result.returncode != 0 and "/etc/forged" not in result.stdout
    assert "vars.crpbot_inventory_dir" in result.stderr and "move the file instead" in result.stderr

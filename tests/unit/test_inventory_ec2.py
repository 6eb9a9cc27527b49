# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EC2 discovery of the crpbot inventory plugin (plugins/inventory/crpbot.py, the ec2: option).

The plugin is loaded through Ansible's own plugin loader and parsed against moto's EC2 (``mock_aws``, in
this process), so its options come from the real DOCUMENTATION and its requests go through boto3. One test
runs the real ``ansible-inventory`` against the test bed's moto server to prove the CLI and the cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.client
import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from tests.ansible_run import REPO, ansible_env, bin_path, load_plugin

RDS = "crpbot-rds-postgres-db.cyjcoys82evx.us-east-1.rds.amazonaws.com"
AMI = "ami-12c6146b"  # one of moto's built-in images
SECRET = "s3cr3t-Secret-Key-never-printed"  # noqa: S105 - the fake secret the tests look for in messages

crpbot = load_plugin("plugins/inventory/crpbot.py", "crpbot_inventory_plugin_ec2")
inventory_loader.add_directory(str(REPO / "plugins" / "inventory"))


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials only: no real profile, config file, endpoint override or instance metadata."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "ANSIBLE_INVENTORY_CACHE", "ANSIBLE_CACHE_PLUGIN", "ANSIBLE_INVENTORY_CACHE_PLUGIN",
                 "ANSIBLE_CACHE_PLUGIN_CONNECTION", "ANSIBLE_INVENTORY_CACHE_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[crpbot]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # moto would load its catalogue of images into every region it touches; run_instances needs none.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def aws(aws_env):
    with mock_aws():
        yield


@pytest.fixture
def ec2_calls(monkeypatch):
    """How many DescribeInstances requests (pages) boto3 sent, per region."""
    calls: dict[str, int] = {}
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        if operation_name == "DescribeInstances":
            region = self.meta.region_name
            calls[region] = calls.get(region, 0) + 1
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def launch(region: str = "us-east-1", count: int = 1, **tags: str) -> list[str]:
    """Start count instances with tags (a tag name with ':' is written with '__': crpbot__role)."""
    client = boto3.client("ec2", region_name=region)
    spec = {}
    if tags:
        spec["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
            {"Key": key.replace("__", ":"), "Value": value} for key, value in tags.items()]}]
    done = client.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, **spec)
    return [instance["InstanceId"] for instance in done["Instances"]]


def describe(instance_id: str, region: str = "us-east-1") -> dict:
    client = boto3.client("ec2", region_name=region)
    return client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def write(tmp_path: Path, ec2: dict, hosts: list | None = None, name: str = "cloud", **top) -> Path:
    config = {"plugin": "crpbot", "rds": {"host": RDS}, "hosts": hosts or [], "ec2": ec2, **top}
    path = tmp_path / f"{name}.crpbot.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def parse(path: Path, cache: bool = True) -> InventoryData:
    """What ansible-inventory does with one source: parse (cache=False under --flush-cache), then save the cache."""
    plugin = inventory_loader.get("crpbot")
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()
    return inventory


def members(inventory: InventoryData, group: str) -> list[str]:
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def hostvars(inventory: InventoryData, name: str) -> dict:
    return inventory.get_host(name).vars


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(AnsibleParserError) as caught:
        parse(path)
    message = str(caught.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"missing {missing} in:\n{message}"
    assert SECRET not in message
    return message


BASE = {"regions": ["us-east-1"], "default_user": "ubuntu"}


# --- the pure helpers ----------------------------------------------------------------------------


def test_documentation_matches_ec2_defaults():
    options = yaml.safe_load(crpbot.DOCUMENTATION)["options"]["ec2"]["suboptions"]
    assert {k: v["default"] for k, v in options.items()} == crpbot.EC2_DEFAULTS
    assert {k: v["default"] for k, v in options["tags"]["suboptions"].items()} == crpbot.EC2_TAG_DEFAULTS
    assert tuple(options["hostnames"]["choices"]) == crpbot.EC2_HOSTNAMES
    for name, option in {**options, **options["tags"]["suboptions"]}.items():
        assert option.get("description") and option.get("type"), name


@pytest.mark.parametrize("raw", [None, {}, {"regions": []}, {"regions": ["us-east-1"], "enabled": False}])
def test_validate_ec2_off(raw):
    assert crpbot.validate_ec2(raw) is None


def test_validate_ec2_fills_defaults_and_the_running_filter():
    ec2 = crpbot.validate_ec2({"regions": "eu-west-1", "filters": {"tag:Project": "crpbot", "vpc-id": ["a", "b"]},
                               "tags": {"user": "owner"}})
    assert ec2["regions"] == ["eu-west-1"]
    assert ec2["filters"] == [{"Name": "instance-state-name", "Values": ["running"]},
                              {"Name": "tag:Project", "Values": ["crpbot"]},
                              {"Name": "vpc-id", "Values": ["a", "b"]}]
    assert ec2["tags"] == {**crpbot.EC2_TAG_DEFAULTS, "user": "owner"}
    assert ec2["hostnames"] == list(crpbot.EC2_HOSTNAMES)
    assert ec2["port"] == 22 and ec2["endpoint_url"] == "" and ec2["profile"] == ""


@pytest.mark.parametrize(("raw", "fragments"), [
    ("us-east-1", ["key 'ec2'", "expected a mapping"]),
    ({"region": ["us-east-1"]}, ["key 'ec2.region'", "did you mean 'regions'"]),
    ({"regions": ["us-east"]}, ["key 'ec2.regions'", "'us-east'", "not an AWS region name"]),
    ({"regions": ["us-east-1", "us-east-1"]}, ["key 'ec2.regions'", "twice"]),
    ({"regions": ["us-east-1"], "filters": {"instance-state-name": "stopped"}},
     ["key 'ec2.filters.instance-state-name'", "only running instances"]),
    ({"regions": ["us-east-1"], "filters": {"tag:Project": {"a": 1}}}, ["key 'ec2.filters.tag:Project'"]),
    ({"regions": ["us-east-1"], "filters": {"tag:Project": "{{ lookup('env', 'X') }}"}},
     ["key 'ec2.filters.tag:Project'", "template"]),
    ({"regions": ["us-east-1"], "hostnames": ["public-ip"]},
     ["key 'ec2.hostnames'", "did you mean 'public-ip-address'"]),
    ({"regions": ["us-east-1"], "hostnames": []}, ["key 'ec2.hostnames'", "non-empty list"]),
    ({"regions": ["us-east-1"], "tags": {"rol": "x"}}, ["key 'ec2.tags.rol'", "did you mean 'role'"]),
    ({"regions": ["us-east-1"], "tags": {"role": ""}}, ["key 'ec2.tags.role'", "non-empty string"]),
    ({"regions": ["us-east-1"], "endpoint_url": "127.0.0.1:5000"}, ["key 'ec2.endpoint_url'", "http(s) URL"]),
    ({"regions": ["us-east-1"], "port": "22"}, ["key 'ec2.port'", "without quotes"]),
    ({"regions": ["us-east-1"], "enabled": "yes"}, ["key 'ec2.enabled'", "true or false"]),
])
def test_validate_ec2_bad(raw, fragments):
    with pytest.raises(crpbot.ConfigProblem) as caught:
        crpbot.validate_ec2(raw)
    text = str(caught.value)
    assert text.startswith("top level")
    assert all(f in text for f in fragments), text


def _record(tags=None, **addresses):
    return {"id": "i-0abc", "region": "us-east-1", "tags": tags or {},
            **{k.replace("_", "-"): v for k, v in addresses.items()}}


@pytest.mark.parametrize(("tags", "role", "warned"), [
    ({"crpbot:role": "builder"}, "builder", False),
    ({"crpbot:role": "qc"}, "qc", False),
    ({}, "qc", False),
    ({"crpbot:role": "bilder"}, "qc", True),
    ({"crpbot:role": "Builder"}, "qc", True),
])
def test_discovered_role_from_tag(tags, role, warned):
    item = crpbot.discovered_entry(_record(tags, private_ip_address="10.0.0.5"), crpbot.validate_ec2(BASE))
    assert item.entry["role"] == role
    assert bool(item.warning) is warned
    if warned:
        assert "i-0abc" in item.warning and "qc, the safe default" in item.warning


def test_discovered_entry_is_a_hosts_entry():
    item = crpbot.discovered_entry(
        _record({"Name": "trainer", "crpbot:user": "root", "crpbot:role": "builder", "crpbot:runtime_mode": "live"},
                private_ip_address="10.0.0.5", public_ip_address="54.1.2.3"),
        crpbot.validate_ec2({**BASE, "port": 2222}))
    assert item.problem is None
    assert item.entry == {"name": "trainer", "user": "root", "role": "builder", "runtime_mode": "live",
                          "address": "10.0.0.5", "port": 2222,
                          "vars": {"ec2_instance_id": "i-0abc", "ec2_region": "us-east-1"}}
    assert set(item.entry) <= set(crpbot.HOST_KEYS)


# --- against moto's EC2 --------------------------------------------------------------------------


def test_role_from_tag(aws, tmp_path, capsys):
    builder = launch(Name="trainer", crpbot__role="builder", crpbot__user="root")[0]
    launch(Name="review", crpbot__role="qc")
    launch(Name="untagged")
    typo = launch(Name="typo", crpbot__role="bilder")[0]
    inventory = parse(write(tmp_path, BASE))
    warned = " ".join(capsys.readouterr().err.split())
    assert f"EC2 instance {typo} (region us-east-1): tag crpbot:role is 'bilder'" in warned
    assert "did you mean 'builder'?" in warned and "treating it as qc, the safe default" in warned
    assert members(inventory, "builder") == ["trainer"]
    assert members(inventory, "qc") == ["review", "typo", "untagged"]
    assert sorted(h.name for h in inventory.groups["crpbot"].get_hosts()) == ["review", "trainer", "typo", "untagged"]
    assert members(inventory, "live_approved") == []
    trainer = hostvars(inventory, "trainer")
    assert trainer["crpbot_role"] == "builder" and trainer["crpbot_user"] == "root"
    assert trainer["crpbot_home"] == "/root" and trainer["crpbot_project_dir"] == "/root/crpbot"
    assert trainer["crpbot_runtime_mode"] == "dryrun" and trainer["crpbot_rds_host"] == RDS
    assert trainer["ec2_instance_id"] == builder and trainer["ec2_region"] == "us-east-1"
    assert trainer["ansible_host"] == describe(builder)["PrivateIpAddress"] and trainer["ansible_port"] == 22
    assert hostvars(inventory, "review")["crpbot_user"] == "ubuntu"


def test_host_named_by_instance_id_without_a_name_tag(aws, tmp_path):
    unnamed = launch(crpbot__role="qc")[0]
    named = launch(Name="review")[0]
    assert members(parse(write(tmp_path, BASE)), "qc") == sorted([unnamed, "review"])
    by_id = parse(write(tmp_path, {**BASE, "tags": {"name": ""}}, name="byid"))
    assert members(by_id, "qc") == sorted([unnamed, named])


def test_live_builder_as_root_is_approved(aws, tmp_path):
    launch(Name="trainer", crpbot__role="builder", crpbot__user="root", crpbot__runtime_mode="live")
    inventory = parse(write(tmp_path, BASE))
    assert members(inventory, "live_approved") == ["trainer"]
    assert hostvars(inventory, "trainer")["crpbot_runtime_mode"] == "live"


def test_live_tag_on_a_qc_instance_is_refused(aws, tmp_path):
    instance = launch(Name="review", crpbot__runtime_mode="live")[0]
    refused(write(tmp_path, BASE), f"EC2 instance {instance} (region us-east-1, tag crpbot:runtime_mode)",
            "key 'runtime_mode'", "found 'live' on a QC host", "runtime_mode comes from tag crpbot:runtime_mode",
            "no host was added")


def test_live_for_a_user_other_than_root_is_refused(aws, tmp_path):
    instance = launch(Name="trainer", crpbot__role="builder", crpbot__runtime_mode="live")[0]
    refused(write(tmp_path, BASE), f"EC2 instance {instance} (region us-east-1, tag crpbot:runtime_mode)",
            "found 'live' for user 'ubuntu'")


@pytest.mark.parametrize(("tags", "fragments"), [
    ({"crpbot__runtime_mode": "LIVE"}, ["tag crpbot:runtime_mode", "key 'runtime_mode'", "'LIVE'"]),
    ({"crpbot__user": "{{ lookup('pipe', 'id') }}"}, ["tag crpbot:user", "key 'user'", "template"]),
    ({"crpbot__user": "a b"}, ["tag crpbot:user", "not an account name"]),
    ({"Name": "qc"}, ["tag Name", "key 'name'", "also a group name"]),
    ({"Name": "my host"}, ["tag Name", "not a valid inventory host name", "ec2.tags.name: ''"]),
    ({"crpbot__address": "ipv6"}, ["tag crpbot:address", "key 'address'", "'ipv6'"]),
])
def test_bad_tags_are_refused_naming_the_instance(aws, tmp_path, tags, fragments):
    instance = launch(**tags)[0]
    refused(write(tmp_path, BASE), f"EC2 instance {instance} (region us-east-1", *fragments)


def test_builder_without_rds_is_refused_like_a_listed_one(aws, tmp_path):
    instance = launch(Name="trainer", crpbot__role="builder", crpbot__user="root")[0]
    path = write(tmp_path, BASE, rds={})
    refused(path, f"EC2 instance {instance} (region us-east-1)", "key 'rds.host'", "builder host always uses")


def test_user_from_tag_or_option(aws, tmp_path):
    launch(Name="tagged", crpbot__user="numan")
    launch(Name="plain")
    inventory = parse(write(tmp_path, BASE))
    assert hostvars(inventory, "tagged")["ansible_user"] == "numan"
    assert hostvars(inventory, "tagged")["crpbot_home"] == "/home/numan"
    assert hostvars(inventory, "plain")["ansible_user"] == "ubuntu"
    only_option = parse(write(tmp_path, {**BASE, "tags": {"user": ""}}, name="option"))
    assert hostvars(only_option, "tagged")["ansible_user"] == "ubuntu"


def test_user_missing_everywhere_is_refused(aws, tmp_path):
    instance = launch(Name="plain")[0]
    refused(write(tmp_path, {"regions": ["us-east-1"]}),
            f"EC2 instance {instance} (region us-east-1, tag crpbot:user or option ec2.default_user)",
            "key 'user': missing")


def test_address_preference(aws, tmp_path):
    instance = launch(Name="one")[0]
    launch(Name="two", crpbot__address="dns-name")
    facts = describe(instance)
    default = parse(write(tmp_path, BASE))
    assert hostvars(default, "one")["ansible_host"] == facts["PrivateIpAddress"]
    public = parse(write(tmp_path, {**BASE, "hostnames": ["public-ip-address", "private-ip-address"]}, name="pub"))
    assert hostvars(public, "one")["ansible_host"] == facts["PublicIpAddress"]
    names = parse(write(tmp_path, {**BASE, "hostnames": ["private-dns-name"]}, name="dns"))
    assert hostvars(names, "one")["ansible_host"] == facts["PrivateDnsName"]
    two = describe(next(i for i in describe_all() if tag_of(i, "Name") == "two")["InstanceId"])
    assert hostvars(default, "two")["ansible_host"] == two["PublicDnsName"]


def describe_all(region: str = "us-east-1") -> list[dict]:
    client = boto3.client("ec2", region_name=region)
    return [i for r in client.describe_instances()["Reservations"] for i in r["Instances"]]


def tag_of(instance: dict, key: str) -> str | None:
    return next((t["Value"] for t in instance.get("Tags", ()) if t["Key"] == key), None)


def test_merge_with_listed_hosts(aws, tmp_path):
    launch(Name="trainer", crpbot__role="builder", crpbot__user="root")
    listed = [{"name": "local", "user": "numan", "connection": "local"}]
    inventory = parse(write(tmp_path, BASE, hosts=listed, compose={"crpbot_env_file": "crpbot_project_dir ~ '/.env'"},
                            keyed_groups=[{"key": "crpbot_runtime_mode", "prefix": "mode"}]))
    assert members(inventory, "qc") == ["local"]
    assert members(inventory, "builder") == ["trainer"]
    assert members(inventory, "mode_dryrun") == ["local", "trainer"]
    assert hostvars(inventory, "trainer")["crpbot_env_file"] == "/root/crpbot/.env"


def test_name_clash_with_a_listed_host_names_both(aws, tmp_path):
    instance = launch(Name="cloud", crpbot__role="builder", crpbot__user="root")[0]
    listed = [{"name": "local", "user": "numan", "connection": "local"},
              {"name": "cloud", "user": "root", "role": "builder", "address": "178.156.136.185"}]
    refused(write(tmp_path, BASE, hosts=listed),
            f"host 'cloud' (hosts[1] and EC2 instance {instance} (region us-east-1))", "key 'name'", "twice")


def test_address_clash_with_a_listed_host_names_both(aws, tmp_path):
    instance = launch(Name="trainer")[0]
    address = describe(instance)["PrivateIpAddress"]
    listed = [{"name": "box", "user": "numan", "address": address}]
    refused(write(tmp_path, BASE, hosts=listed),
            f"host 'trainer' (EC2 instance {instance} (region us-east-1))", "key 'address'",
            f"already used by host 'box' (hosts[0])")


def test_filters(aws, tmp_path):
    launch(Name="ours", Project="crpbot")
    launch(Name="theirs", Project="other")
    launch(Name="none")
    inventory = parse(write(tmp_path, {**BASE, "filters": {"tag:Project": "crpbot"}}))
    assert members(inventory, "qc") == ["ours"]
    both = parse(write(tmp_path, {**BASE, "filters": {"tag:Project": ["crpbot", "other"]}}, name="both"))
    assert members(both, "qc") == ["ours", "theirs"]


def test_stopped_and_terminated_instances_are_ignored(aws, tmp_path):
    stopped = launch(Name="stopped")[0]
    gone = launch(Name="gone")[0]
    launch(Name="up")
    client = boto3.client("ec2", region_name="us-east-1")
    client.stop_instances(InstanceIds=[stopped])
    client.terminate_instances(InstanceIds=[gone])
    assert members(parse(write(tmp_path, BASE)), "qc") == ["up"]


def test_a_region_with_no_instances(aws, tmp_path, ec2_calls):
    inventory = parse(write(tmp_path, {**BASE, "regions": ["eu-west-1"]}))
    assert ec2_calls == {"eu-west-1": 1}
    assert members(inventory, "qc") == members(inventory, "builder") == []
    assert set(inventory.groups) >= {"crpbot", "qc", "builder", "live_approved"}


def test_several_regions(aws, tmp_path, ec2_calls):
    east = launch("us-east-1", Name="east")[0]
    west = launch("eu-west-1", Name="west", crpbot__role="builder", crpbot__user="root")[0]
    inventory = parse(write(tmp_path, {**BASE, "regions": ["us-east-1", "eu-west-1", "ap-southeast-2"]}))
    assert ec2_calls == {"us-east-1": 1, "eu-west-1": 1, "ap-southeast-2": 1}
    assert members(inventory, "qc") == ["east"] and members(inventory, "builder") == ["west"]
    assert hostvars(inventory, "west")["ec2_region"] == "eu-west-1"
    assert hostvars(inventory, "east")["ec2_instance_id"] == east
    launch("eu-west-1", Name="east")
    message = refused(write(tmp_path, {**BASE, "regions": ["us-east-1", "eu-west-1"]}, name="clash"),
                      f"host 'east' (EC2 instance {east} (region us-east-1) and EC2 instance ")
    assert "(region eu-west-1))" in message and west not in message


def test_paging_over_a_thousand_instances(aws, tmp_path, ec2_calls):
    """moto pages DescribeInstances by reservation: 1,001 single-instance launches make two pages of 1,000.

    The instances are started through moto's backend (1,001 API calls would take a minute on a busy machine);
    the plugin reads them through the API as always.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for number in range(1002):
        # Each its own private IP: moto draws them at random, and 1,002 random ones collide now and then (a
        # clash of addresses the plugin rightly refuses).
        reservation = backend.run_instances(image_id=AMI, count=1, user_data=None, security_group_names=[],
                                            instance_type="m1.small", is_instance_type_default=True,
                                            private_ip=f"10.200.{number // 256}.{number % 256}")
        reservation.instances[0].add_tag("Project", "crpbot" if number else "other")
    inventory = parse(write(tmp_path, {**BASE, "filters": {"tag:Project": "crpbot"}}))
    assert ec2_calls == {"us-east-1": 2}
    assert len(members(inventory, "qc")) == 1001


# --- the cache -----------------------------------------------------------------------------------


def _cached(tmp_path: Path, ec2: dict, name: str = "cached", **top) -> Path:
    # (In this process the plugin loader knows no collections: the short name of ansible.builtin.jsonfile.)
    return write(tmp_path, ec2, name=name, cache=True, cache_plugin="jsonfile",
                 cache_connection=str(tmp_path / "cache"), **top)


def test_cache_hit_miss_and_flush(aws, tmp_path, ec2_calls):
    launch(Name="first")
    path = _cached(tmp_path, BASE)
    assert members(parse(path), "qc") == ["first"]
    assert ec2_calls == {"us-east-1": 1}
    assert list((tmp_path / "cache").iterdir()), "the jsonfile cache was not written"

    launch(Name="second")
    assert members(parse(path), "qc") == ["first"], "a cache hit must not ask EC2"
    assert ec2_calls == {"us-east-1": 1}

    assert members(parse(path, cache=False), "qc") == ["first", "second"], "--flush-cache asks EC2 again"
    assert ec2_calls == {"us-east-1": 2}
    assert members(parse(path), "qc") == ["first", "second"], "and rewrites the cache"
    assert ec2_calls == {"us-east-1": 2}


def test_cache_is_only_used_for_the_same_query(aws, tmp_path, ec2_calls):
    launch(Name="tagged", Project="crpbot")
    launch(Name="other")
    assert members(parse(_cached(tmp_path, BASE)), "qc") == ["other", "tagged"]
    narrowed = _cached(tmp_path, {**BASE, "filters": {"tag:Project": "crpbot"}})
    assert members(parse(narrowed), "qc") == ["tagged"]
    assert ec2_calls == {"us-east-1": 2}


def test_cached_instances_are_checked_again(aws, tmp_path, ec2_calls):
    """The checks run on every parse: a change of the options applies to cached instances too."""
    launch(Name="trainer", crpbot__role="builder", crpbot__user="root", crpbot__runtime_mode="live")
    assert members(parse(_cached(tmp_path, BASE)), "live_approved") == ["trainer"]
    with pytest.raises(AnsibleParserError, match="key 'rds.host'"):
        parse(_cached(tmp_path, BASE, rds={}))
    assert ec2_calls == {"us-east-1": 1}


def test_without_cache_every_parse_asks_ec2(aws, tmp_path, ec2_calls):
    launch(Name="first")
    path = write(tmp_path, BASE)
    parse(path)
    parse(path)
    assert ec2_calls == {"us-east-1": 2}


# --- AWS errors ----------------------------------------------------------------------------------


def test_no_credentials(aws_env, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    from tests.testbed import free_port

    path = write(tmp_path, {**BASE, "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    refused(path, "EC2 discovery in region us-east-1", "no usable AWS credentials", "AWS_PROFILE",
            "no host was added")


def test_unknown_profile(aws_env, tmp_path):
    refused(write(tmp_path, {**BASE, "profile": "nosuch"}), "EC2 discovery in region us-east-1",
            "the AWS profile 'nosuch' does not exist", "ec2.profile")


def test_named_profile_is_used(aws, tmp_path, monkeypatch):
    launch(Name="first")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert members(parse(write(tmp_path, {**BASE, "profile": "crpbot"})), "qc") == ["first"]


def test_unreachable_endpoint(aws_env, tmp_path):
    from tests.testbed import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    refused(write(tmp_path, {**BASE, "regions": ["eu-west-1"], "endpoint_url": endpoint}),
            "EC2 discovery in region eu-west-1", f"cannot reach {endpoint}", "ec2.endpoint_url")


def test_access_denied(aws, tmp_path, monkeypatch):
    @set_initial_no_auth_action_count(2)
    def scenario():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        message = refused(write(tmp_path, BASE), "EC2 discovery in region us-east-1",
                          "may not call ec2:DescribeInstances", "grant it the IAM permission ec2:DescribeInstances")
        assert key["SecretAccessKey"] not in message

    scenario()


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"])
def test_endpoint_overrides_from_the_environment_are_ignored(aws, tmp_path, monkeypatch, variable):
    """Without ec2.endpoint_url only AWS's own HTTPS endpoint is asked (which moto answers here), whatever
    AWS_ENDPOINT_URL* says: honouring it would send the request to a closed plain-http port and fail."""
    from tests.testbed import free_port

    launch(Name="first")
    monkeypatch.setenv(variable, f"http://127.0.0.1:{free_port()}")
    assert members(parse(write(tmp_path, BASE)), "qc") == ["first"]


# --- end to end: ansible-inventory against the test bed's moto server ---------------------------


def test_ansible_inventory_discovers_and_caches(tmp_path):
    from tests.testbed import spawn_moto, stop_moto

    env = ansible_env(tmp_path) | {
        "AWS_ACCESS_KEY_ID": "AKIATESTING", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2",
                 "ANSIBLE_INVENTORY_CACHE", "ANSIBLE_CACHE_PLUGIN", "ANSIBLE_CACHE_PLUGIN_CONNECTION"):
        env.pop(name, None)
    pid, endpoint = spawn_moto(tmp_path / "moto.log")
    try:
        client = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="AKIATESTING", aws_secret_access_key=SECRET)  # noqa: S106
        for name, role in (("trainer", "builder"), ("review", "qc")):
            client.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=[{
                "ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}, {"Key": "crpbot:role", "Value": role},
                                                     {"Key": "crpbot:user", "Value": "root"}]}])
        path = write(tmp_path, {"regions": ["us-east-1"], "endpoint_url": endpoint}, name="e2e",
                     hosts=[{"name": "local", "user": "numan", "connection": "local"}],
                     cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))

        def inventory(*extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([bin_path("ansible-inventory"), "-i", str(path), "--list", *extra],  # noqa: S603
                                  cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)

        first = inventory()
        assert first.returncode == 0, first.stderr
        data = json.loads(first.stdout)
        assert sorted(data["qc"]["hosts"]) == ["local", "review"]
        assert data["builder"]["hosts"] == ["trainer"]
        assert data["_meta"]["hostvars"]["trainer"]["crpbot_project_dir"] == "/root/crpbot"
    finally:
        stop_moto(pid)

    # The server is gone: only the cache can answer.
    second = inventory()
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == data
    flushed = inventory("--flush-cache")
    assert flushed.returncode != 0
    assert "EC2 discovery in region us-east-1: cannot reach " + endpoint in flushed.stderr
    assert SECRET not in flushed.stderr + flushed.stdout

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the S3 transfer module: plugins/module_utils/crpbot_s3.py and crpbot_s3_transfer.

The logic runs against moto's in-process ``mock_aws`` (and a stub client that refuses every write
call for the pull path); the module end to end through ansible-playbook against the test bed's moto
server on a loopback port.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import crpbot_s3 as s3  # noqa: E402

from tests.conftest import write_file  # noqa: E402

BUCKET = "crpbot-test"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        cli = boto3.client("s3", region_name="us-east-1", config=Config(max_pool_connections=32))
        cli.create_bucket(Bucket=BUCKET)
        yield cli


def params(local_dir, direction, **extra):
    return {"bucket": BUCKET, "prefix": "data/raw", "local_dir": str(local_dir), "direction": direction,
            "workers": 4, "multipart_threshold": 8 * 1024 * 1024, **extra}


def sync(cli, local_dir, direction, check=False, **extra):
    return s3.Sync(cli, params(local_dir, direction, **extra)).run(check)


def keys(cli, prefix=""):
    response = cli.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in response.get("Contents", []))


# --- filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("rel", "expected"), [
    ("BTC-USD/BTC-USD_1m_00001.parquet", True),
    ("BTC-USD_1m.parquet", True),
    ("deep/er/BTC-USD_1m.parquet", True),
    ("ETH-USD/ETH-USD_1m.parquet", False),
    ("xBTC-USD.parquet", False),
])
def test_symbol_glob_selects_dirs_and_files_at_any_depth(rel, expected):
    assert s3.selected(s3.compile_rules([{"include": "BTC-USD*"}]), rel) is expected


def test_first_matching_rule_wins_and_no_include_means_everything():
    rules = s3.compile_rules([{"exclude": "*.tmp"}, {"include": "BTC-USD*"}])
    assert s3.selected(rules, "BTC-USD/a.parquet")
    assert not s3.selected(rules, "BTC-USD/a.tmp")
    assert not s3.selected(rules, "ETH-USD/a.parquet")
    only_exclude = s3.compile_rules([{"exclude": "*.tmp"}])
    assert s3.selected(only_exclude, "ETH-USD/a.parquet")
    assert s3.selected([], "anything/at/all")
    short = s3.compile_rules(["- *.tmp", "+ BTC-USD*"])
    assert s3.selected(short, "BTC-USD/a") and not s3.selected(short, "BTC-USD/a.tmp")


def test_anchored_glob_and_double_star():
    rules = s3.compile_rules([{"include": "promoted/v1"}])
    assert s3.selected(rules, "promoted/v1/model.pt")
    assert not s3.selected(rules, "x/promoted/v1/model.pt")
    star = s3.compile_rules([{"include": "a/*.pt"}])
    assert s3.selected(star, "a/m.pt") and not s3.selected(star, "a/b/m.pt")
    deep = s3.compile_rules([{"include": "a/**.pt"}])
    assert s3.selected(deep, "a/b/m.pt")


@pytest.mark.parametrize("bad", [[{"include": ""}], [{"keep": "x"}], ["x"], [{"include": "a", "exclude": "b"}]])
def test_bad_filters_fail_naming_the_rule(bad):
    with pytest.raises(s3.ModuleFailure, match=r"filters\[0\]"):
        s3.compile_rules(bad)


def test_prefixes_are_slash_bounded():
    assert s3.normalize_prefix("models") == "models/"
    assert s3.normalize_prefix("/data//raw/") == "data/raw/"
    assert s3.normalize_prefix("") == ""
    with pytest.raises(s3.ModuleFailure):
        s3.normalize_prefix("models/../x")


def test_push_and_pull_never_touch_a_sibling_prefix(client, tmp_path):
    client.put_object(Bucket=BUCKET, Key="data/raw-old/keep.parquet", Body=b"old")
    client.put_object(Bucket=BUCKET, Key="data/raw/gone.parquet", Body=b"g")
    write_file(tmp_path / "src", "BTC-USD/a.parquet", b"a")
    result = sync(client, tmp_path / "src", "push", delete=True, max_deletes=5)
    assert result["counts"] == {"copy": 1, "update": 0, "delete": 1}
    assert keys(client) == ["data/raw-old/keep.parquet", "data/raw/BTC-USD/a.parquet"]
    sync(client, tmp_path / "dst", "pull")
    assert not (tmp_path / "dst" / "keep.parquet").exists()


# --- key safety -------------------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["../etc/passwd", "a/../../b", "/abs", "a//b", "./a"])
def test_unsafe_keys_are_named(rel):
    assert s3.unsafe_reason(rel)


def test_pull_refuses_unsafe_key_before_writing(tmp_path):
    remote = {"a/../../evil": {"size": 1, "etag": "x", "mtime": 0}}
    with pytest.raises(s3.ModuleFailure, match=r"a/\.\./\.\./evil"):
        s3.plan_pull(remote, {}, {}, [], False, None)


def test_pull_refuses_case_collisions(client, tmp_path):
    client.put_object(Bucket=BUCKET, Key="data/raw/BTC/a.parquet", Body=b"1")
    client.put_object(Bucket=BUCKET, Key="data/raw/btc/A.parquet", Body=b"2")
    with pytest.raises(s3.ModuleFailure, match="differ only by case.*BTC/a.parquet"):
        sync(client, tmp_path / "dst", "pull")
    assert not (tmp_path / "dst").exists()


# --- round trip, change detection, check mode ---------------------------------------------------

def test_push_pull_round_trip_is_idempotent(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_file(src, "BTC-USD/BTC-USD_1m_00001.parquet", b"x" * 1000)
    write_file(src, "ETH-USD/ETH-USD_1m_00001.parquet", b"y" * 10)
    write_file(src, "BTC-USD_1m.parquet", b"z")
    first = sync(client, src, "push")
    assert first["changed"] and first["counts"]["copy"] == 3 and first["bytes_transferred"] == 1011
    head = client.head_object(Bucket=BUCKET, Key="data/raw/BTC-USD_1m.parquet")
    assert len(head["Metadata"]["crpbot-sha256"]) == 64
    assert not sync(client, src, "push")["changed"]
    assert (src / s3.STATE_NAME).exists()
    assert s3.STATE_NAME not in " ".join(keys(client))

    pulled = sync(client, dst, "pull", filters=[{"include": "BTC-USD*"}])
    assert pulled["counts"]["copy"] == 2
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file()) == [
        ".crpbot-s3-state.json", "BTC-USD/BTC-USD_1m_00001.parquet", "BTC-USD_1m.parquet"]
    assert (dst / "BTC-USD_1m.parquet").read_bytes() == b"z"
    assert not sync(client, dst, "pull", filters=[{"include": "BTC-USD*"}])["changed"]


def test_pull_fetches_a_same_size_rebuild_with_older_mtime(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    model = write_file(src, "promoted/model.pt", b"A" * 100)
    sync(client, src, "push")
    sync(client, dst, "pull")
    model.write_bytes(b"B" * 100)
    os.utime(model, (1_000_000, 1_000_000))
    pushed = sync(client, src, "push")
    assert pushed["counts"]["update"] == 1
    pulled = sync(client, dst, "pull")
    assert pulled["counts"]["update"] == 1 and pulled["items"][0]["reason"] == "ETag differs from the last pull"
    assert (dst / "promoted/model.pt").read_bytes() == b"B" * 100


def test_local_edit_is_restored_on_pull_and_touch_is_not_a_change(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_file(src, "a.parquet", b"abc")
    sync(client, src, "push")
    sync(client, dst, "pull")
    os.utime(dst / "a.parquet", (5, 5))
    assert not sync(client, dst, "pull")["changed"]
    (dst / "a.parquet").write_bytes(b"xyz")
    result = sync(client, dst, "pull")
    assert result["counts"]["update"] == 1
    assert (dst / "a.parquet").read_bytes() == b"abc"


def test_pull_without_state_skips_identical_files(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, "a.parquet", b"abc")
    sync(client, src, "push")
    (src / s3.STATE_NAME).unlink()
    assert not sync(client, src, "pull")["changed"]
    assert not sync(client, src, "push")["changed"]


def test_check_mode_plans_everything_and_writes_nothing(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_file(src, "a.parquet", b"abc")
    planned = sync(client, src, "push", check=True)
    assert planned["changed"] and planned["counts"]["copy"] == 1 and planned["bytes_transferred"] == 0
    assert keys(client) == [] and not (src / s3.STATE_NAME).exists()
    sync(client, src, "push")
    planned = sync(client, dst, "pull", check=True)
    assert planned["changed"] and planned["plan"][0] == {
        "action": "copy", "path": "a.parquet", "bytes": 3, "reason": "missing locally"}
    assert not dst.exists()


def test_create_makes_a_missing_dir_for_either_direction_and_reports_it(client, tmp_path):
    push_dir, pull_dir = tmp_path / "models", tmp_path / "raw"
    with pytest.raises(s3.ModuleFailure, match="does not exist or is not a directory; nothing to push"):
        sync(client, push_dir, "push")
    planned = sync(client, push_dir, "push", check=True, create=True)
    assert planned["changed"] and planned["created_local_dir"] and planned["plan"] == []
    assert not push_dir.exists()
    made = sync(client, push_dir, "push", create=True)
    assert made["changed"] and made["created_local_dir"] and made["counts"]["copy"] == 0
    assert push_dir.is_dir() and stat.S_IMODE(push_dir.stat().st_mode) == 0o755 and keys(client) == []
    again = sync(client, push_dir, "push", create=True)
    assert not again["changed"] and not again["created_local_dir"]
    planned = sync(client, pull_dir, "pull", check=True, create=True)
    assert planned["changed"] and planned["created_local_dir"] and not pull_dir.exists()
    made = sync(client, pull_dir, "pull", create=True)
    assert made["changed"] and pull_dir.is_dir()
    assert not sync(client, pull_dir, "pull", create=True)["changed"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(s3.ModuleFailure, match="is not a directory"):
        sync(client, tmp_path / "afile", "push", create=True)
    with pytest.raises(s3.ModuleFailure, match="exists and is not a directory"):
        sync(client, tmp_path / "afile", "pull", create=True)


def test_multipart_objects_round_trip(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    big = os.urandom(6 * 1024 * 1024)
    write_file(src, "big.parquet", big)
    extra = {"multipart_threshold": 5 * 1024 * 1024}
    cfg = __import__("boto3.s3.transfer", fromlist=["TransferConfig"]).TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.Sync(client, params(src, "push", **extra), cfg).run(False)
    assert "-" in client.head_object(Bucket=BUCKET, Key="data/raw/big.parquet")["ETag"]
    s3.Sync(client, params(dst, "pull", **extra), cfg).run(False)
    assert (dst / "big.parquet").read_bytes() == big
    assert not s3.Sync(client, params(dst, "pull", **extra), cfg).run(False)["changed"]
    (dst / s3.STATE_NAME).unlink()
    # without a record a multipart object cannot be checked by its ETag: pushing asks its metadata
    (src / s3.STATE_NAME).unlink()
    assert not s3.Sync(client, params(src, "push", **extra), cfg).run(False)["changed"]


# --- deletes and caps ---------------------------------------------------------------------------

def test_pull_deletes_local_only_when_asked_and_within_cap(client, tmp_path):
    dst = tmp_path / "dst"
    client.put_object(Bucket=BUCKET, Key="data/raw/a.parquet", Body=b"a")
    write_file(dst, "extra1", b"1")
    write_file(dst, "extra2", b"2")
    assert sync(client, dst, "pull")["counts"]["delete"] == 0
    with pytest.raises(s3.ModuleFailure, match="deletes 2 local files, more than max_deletes=1"):
        sync(client, dst, "pull", delete=True, max_deletes=1)
    assert (dst / "extra1").exists()
    result = sync(client, dst, "pull", delete=True, max_deletes=2)
    assert result["counts"]["delete"] == 2 and not (dst / "extra1").exists()
    assert (dst / s3.STATE_NAME).exists()


def test_push_delete_spares_filtered_out_keys_and_respects_cap(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, "BTC-USD/a", b"a")
    for key in ("BTC-USD/old", "ETH-USD/keep", "BTC-USD/old2"):
        client.put_object(Bucket=BUCKET, Key="data/raw/" + key, Body=b"o")
    rules = [{"include": "BTC-USD*"}]
    with pytest.raises(s3.ModuleFailure, match="deletes 2 remote"):
        sync(client, src, "push", delete=True, max_deletes=1, filters=rules)
    assert len(keys(client)) == 3
    sync(client, src, "push", delete=True, max_deletes=2, filters=rules)
    assert keys(client) == ["data/raw/BTC-USD/a", "data/raw/ETH-USD/keep"]


# --- pull never writes ------------------------------------------------------------------------

class ReadOnlyClient:
    """Passes list/get calls to a real client; any other call fails the test."""

    def __init__(self, real):
        self.real = real
        self.calls = []

    def __getattr__(self, name):
        self.calls.append(name)
        if name not in s3.READ_CALLS:
            raise AssertionError(f"pull called {name}")
        return getattr(self.real, name)


def test_pull_makes_no_write_call(client, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_file(src, "a.parquet", b"a")
    write_file(src, "big.parquet", os.urandom(64 * 1024))
    sync(client, src, "push")
    stub = ReadOnlyClient(client)
    write_file(dst, "extra", b"e")
    s3.Sync(stub, params(dst, "pull", delete=True, max_deletes=5, multipart_threshold=32 * 1024)).run(False)
    s3.Sync(stub, params(dst, "pull")).run(False)
    assert set(stub.calls) <= s3.READ_CALLS and "get_object" in stub.calls
    assert not any(name.startswith(("put", "delete", "copy", "create_multipart", "upload")) for name in stub.calls)


# --- temp files ---------------------------------------------------------------------------------

def test_stale_temp_files_are_removed_and_never_pushed(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, "a.parquet", b"a")
    write_file(src, f"sub/{s3.TMP_PREFIX}abc", b"partial")
    planned = sync(client, src, "push", check=True)
    assert planned["stale_temp_files"] == 1 and (src / "sub" / f"{s3.TMP_PREFIX}abc").exists()
    result = sync(client, src, "push")
    assert result["stale_temp_files"] == 1
    assert keys(client) == ["data/raw/a.parquet"]
    assert not (src / "sub" / f"{s3.TMP_PREFIX}abc").exists()


def test_failed_download_leaves_no_partial_file(client, tmp_path):
    client.put_object(Bucket=BUCKET, Key="data/raw/a.parquet", Body=b"abc")
    dst = tmp_path / "dst"

    class Corrupting(ReadOnlyClient):
        def __getattr__(self, name):
            attr = super().__getattr__(name)
            if name != "get_object":
                return attr

            def get_object(**kwargs):
                response = attr(**kwargs)
                response["Body"] = type("B", (), {"iter_chunks": lambda self, n: iter([b"abd"])})()
                return response
            return get_object

    with pytest.raises(s3.ModuleFailure, match="MD5 of the download"):
        s3.Sync(Corrupting(client), params(dst, "pull")).run(False)
    assert [p.name for p in dst.rglob("*") if p.is_file()] == [s3.STATE_NAME]


# --- immutable versions and the model registry ---------------------------------------------------

MODEL = "lstm/BTC-USD/v1/model.pt"
WRITE_ONCE = ["- registry.json"]


def publish(cli, root, check=False, **extra):
    """The builder's models sync: everything but the registry is written once."""
    options = {"prefix": "models", "immutable": WRITE_ONCE, "registry": "registry.json", "publisher": "builder-a",
               **extra}
    return sync(cli, root, "push", check, **options)


def entry(model_id, rel, data, **extra):
    return {"model_id": model_id, "version": "v1", "model_type": "lstm", "symbol": "BTC-USD",
            "model_path": f"models/{rel}", "file_hash": hashlib.sha256(data).hexdigest(),
            "metrics": {"win_rate": 0.71, "calibration_error": 0.03}, "created_at": "2026-12-01T10:00:00Z",
            "promoted": False, "deployed_at": None, **extra}


def write_registry(root, *entries):
    return write_file(root, "registry.json", json.dumps({"models": list(entries)}).encode())


def body(cli, key):
    return cli.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_immutable_violations_are_updates_and_deletes_the_rules_select():
    items = [s3.item("copy", "new.pt", 1, "missing in bucket"), s3.item("update", "a/old.pt", 1, "content differs"),
             s3.item("delete", "gone.pt", 1, "not in local dir"),
             s3.item("update", "registry.json", 1, "size differs")]
    rules = s3.compile_rules(WRITE_ONCE, "immutable")
    assert [e["path"] for e in s3.immutable_violations(items, rules)] == ["a/old.pt", "gone.pt"]
    assert s3.immutable_violations(items, []) == []
    only_a = s3.compile_rules(["+ a/**"], "immutable")
    assert [e["path"] for e in s3.immutable_violations(items, only_a)] == ["a/old.pt"]
    with pytest.raises(s3.ModuleFailure, match=r"immutable\[0\]"):
        s3.compile_rules(["registry.json"], "immutable")


def test_push_refuses_to_overwrite_an_immutable_key_before_any_transfer(client, tmp_path):
    src = tmp_path / "src"
    model = write_file(src, MODEL, b"v1")
    assert publish(client, src)["counts"]["copy"] == 1
    model.write_bytes(b"v1 retrained")
    write_file(src, "lstm/BTC-USD/v2/model.pt", b"v2")
    for check in (True, False):
        with pytest.raises(s3.ModuleFailure) as failed:
            publish(client, src, check)
        message = str(failed.value)
        assert f"s3://{BUCKET}/models/{MODEL} (update: size differs)" in message
        assert "a model version is immutable: register the retrained model as a new version (new model_id and" \
               f" model_path) instead of overwriting {src / MODEL}" in message
        assert "to discard a local change restore the file from S3" in message
    assert keys(client) == [f"models/{MODEL}"] and body(client, f"models/{MODEL}") == b"v1"
    # Without immutable rules the same push overwrites it.
    assert sync(client, src, "push", prefix="models")["counts"] == {"copy": 1, "update": 1, "delete": 0}


def test_immutable_key_with_the_same_content_is_no_rewrite(client, tmp_path):
    src = tmp_path / "src"
    model = write_file(src, MODEL, b"v1")
    publish(client, src)
    (src / s3.STATE_NAME).unlink()
    os.utime(model, (1_000_000, 1_000_000))
    assert not publish(client, src)["changed"]


def test_push_refuses_to_delete_immutable_keys_and_names_ten_of_them(client, tmp_path):
    src = tmp_path / "src"
    for index in range(12):
        client.put_object(Bucket=BUCKET, Key=f"models/old/m{index:02d}.pt", Body=b"o")
    client.put_object(Bucket=BUCKET, Key="models/scratch.tmp", Body=b"t")
    write_file(src, MODEL, b"v1")
    expected = r"13 immutable key\(s\).*m09\.pt \(delete: not in local dir\) and 3 more"
    with pytest.raises(s3.ModuleFailure, match=expected):
        publish(client, src, delete=True, max_deletes=20)
    assert len(keys(client)) == 13
    # Keys the immutable rules leave out may still go.
    result = publish(client, src, delete=True, max_deletes=20, filters=["- old/**"], immutable=["- *.tmp"])
    assert result["counts"]["delete"] == 1 and "models/scratch.tmp" not in keys(client)


def test_multipart_object_of_another_tool_is_hashed_from_s3(client, tmp_path):
    src = tmp_path / "src"
    data = os.urandom(6 * 1024 * 1024)
    write_file(src, MODEL, data)
    cfg = __import__("boto3.s3.transfer", fromlist=["TransferConfig"]).TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    client.upload_fileobj(__import__("io").BytesIO(data), BUCKET, f"models/{MODEL}", Config=cfg)
    assert "-" in client.head_object(Bucket=BUCKET, Key=f"models/{MODEL}")["ETag"]
    assert not publish(client, src)["changed"]
    assert json.loads((src / s3.STATE_NAME).read_text())["targets"]  # recorded: the next run hashes nothing
    other = bytearray(data)
    other[0] ^= 1
    client.upload_fileobj(__import__("io").BytesIO(bytes(other)), BUCKET, f"models/{MODEL}", Config=cfg)
    (src / s3.STATE_NAME).unlink()
    with pytest.raises(s3.ModuleFailure, match=f"models/{MODEL} \\(update: content differs\\)"):
        publish(client, src)


def test_registry_may_add_versions_and_mark_promotion_but_not_rewrite_one(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1")
    first = entry("lstm_BTC-USD_v1", MODEL, b"v1")
    write_registry(src, first)
    assert publish(client, src)["counts"]["copy"] == 2
    write_file(src, "lstm/BTC-USD/v2/model.pt", b"v2")
    second = entry("lstm_BTC-USD_v2", "lstm/BTC-USD/v2/model.pt", b"v2", version="v2")
    write_registry(src, dict(first, promoted=True, deployed_at="2026-12-02T10:00:00Z"), second)
    assert publish(client, src)["counts"] == {"copy": 1, "update": 1, "delete": 0}
    published = json.loads(body(client, "models/registry.json"))["models"]
    assert [m["model_id"] for m in published] == ["lstm_BTC-USD_v1", "lstm_BTC-USD_v2"] and published[0]["promoted"]

    assert {m["published_by"] for m in published} == {"builder-a"}

    write_registry(src, dict(first, metrics={"win_rate": 0.9}, symbol="ETH-USD"), second)
    for check in (True, False):
        with pytest.raises(s3.ModuleFailure) as failed:
            publish(client, src, check)
        message = str(failed.value)
        assert "model lstm_BTC-USD_v1 (published by builder-a) would change its published metrics, symbol (" in message
        assert f"restore the entry from s3://{BUCKET}/models/registry.json" in message
    # A local registry without a published version (another builder's, or one the trainer dropped) never
    # drops it from the bucket's.
    write_registry(src, second)
    assert not publish(client, src)["changed"]
    assert json.loads(body(client, "models/registry.json"))["models"] == published


def test_registry_is_never_deleted_by_a_push(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1")
    write_registry(src, entry("lstm_BTC-USD_v1", MODEL, b"v1"))
    publish(client, src)
    published = body(client, "models/registry.json")
    (src / "registry.json").unlink()
    assert not publish(client, src, delete=True, max_deletes=1)["changed"]
    assert body(client, "models/registry.json") == published


def builder(root, model_id, rel, data, **extra):
    write_file(root, rel, data)
    write_registry(root, entry(model_id, rel, data, **extra))


def test_builders_publishing_different_versions_share_the_registry(client, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    builder(one, "lstm_BTC-USD_v1", MODEL, b"one")
    builder(two, "lstm_ETH-USD_v1", "lstm/ETH-USD/v1/model.pt", b"two", symbol="ETH-USD")
    assert publish(client, one)["counts"]["copy"] == 2
    assert publish(client, two, publisher="builder-b")["counts"] == {"copy": 1, "update": 1, "delete": 0}
    published = json.loads(body(client, "models/registry.json"))["models"]
    assert [(m["model_id"], m["published_by"]) for m in published] == [
        ("lstm_BTC-USD_v1", "builder-a"), ("lstm_ETH-USD_v1", "builder-b")]
    # Each builder's next push is a no-op: the bucket's registry already holds its entries as they are.
    assert not publish(client, one)["changed"]
    assert not publish(client, two, publisher="builder-b")["changed"]
    assert not publish(client, one)["changed"]
    assert json.loads(body(client, "models/registry.json"))["models"] == published
    assert keys(client, "models/.crpbot-versions/") == [
        "models/.crpbot-versions/lstm_BTC-USD_v1.json", "models/.crpbot-versions/lstm_ETH-USD_v1.json"]
    # A pull of models/ gets the registry and both files, never the claims.
    dst = tmp_path / "qc"
    sync(client, dst, "pull", prefix="models")
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file() and p.name != s3.STATE_NAME) == [
        "lstm/BTC-USD/v1/model.pt", "lstm/ETH-USD/v1/model.pt", "registry.json"]


@pytest.mark.parametrize("check", [False, True])
def test_a_second_builder_publishing_the_same_version_is_refused_naming_both(client, tmp_path, check):
    one, two = tmp_path / "one", tmp_path / "two"
    builder(one, "lstm_BTC-USD_v1", MODEL, b"one")
    builder(two, "lstm_BTC-USD_v1", MODEL, b"two, other seed")
    publish(client, one)
    before = {key: body(client, key) for key in keys(client)}
    with pytest.raises(s3.ModuleFailure) as failed:
        publish(client, two, check, publisher="builder-b")
    message = str(failed.value)
    assert "refusing to push from host builder-b" in message
    assert "model lstm_BTC-USD_v1 (models/lstm/BTC-USD/v1/model.pt) is already published by builder-a" in message
    assert "host builder-b may not publish the same model version" in message
    assert {key: body(client, key) for key in keys(client)} == before


def test_a_claim_without_a_registry_entry_refuses_another_builder(client, tmp_path):
    """The first builder claimed the version and died before its registry went up: the claim alone
    refuses the second, and the first one's rerun completes."""
    one, two = tmp_path / "one", tmp_path / "two"
    builder(one, "lstm_BTC-USD_v1", MODEL, b"one")
    builder(two, "lstm_BTC-USD_v1", MODEL, b"one")  # even with the same bytes
    first = entry("lstm_BTC-USD_v1", MODEL, b"one")
    client.put_object(Bucket=BUCKET, Key="models/.crpbot-versions/lstm_BTC-USD_v1.json",
                      Body=s3.claim_body(first, "builder-a"))
    with pytest.raises(s3.ModuleFailure, match="is already published by builder-a"):
        publish(client, two, publisher="builder-b")
    assert keys(client) == ["models/.crpbot-versions/lstm_BTC-USD_v1.json"]
    assert publish(client, one)["counts"]["copy"] == 2


def test_two_builders_publishing_the_same_version_at_once_let_exactly_one_through(client, tmp_path):
    """Both plan against an empty bucket and claim in the same moment: the conditional put of the claim
    lets one through; the other is refused before uploading anything."""
    import threading

    barrier = threading.Barrier(2)
    real_put = client.put_object

    def put_object(**kwargs):
        if "/.crpbot-versions/" in kwargs["Key"]:
            barrier.wait(timeout=10)  # both claim only once both have planned
        return real_put(**kwargs)

    client.put_object = put_object
    outcomes = {}

    def push(name):
        root = tmp_path / name
        builder(root, "lstm_BTC-USD_v1", MODEL, name.encode())
        try:
            outcomes[name] = publish(client, root, publisher=name)
        except s3.ModuleFailure as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=push, args=(name,)) for name in ("builder-a", "builder-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    refused = [name for name, outcome in outcomes.items() if isinstance(outcome, s3.ModuleFailure)]
    assert len(refused) == 1, outcomes
    winner = ({"builder-a", "builder-b"} - set(refused)).pop()
    assert f"is already published by {winner}" in str(outcomes[refused[0]])
    assert f"refusing to push from host {refused[0]}" in str(outcomes[refused[0]])
    assert body(client, f"models/{MODEL}") == winner.encode()
    assert [m["published_by"] for m in json.loads(body(client, "models/registry.json"))["models"]] == [winner]


def test_registry_merge_retries_when_another_builder_wrote_in_between(client, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    builder(one, "lstm_BTC-USD_v1", MODEL, b"one")
    builder(two, "lstm_ETH-USD_v1", "lstm/ETH-USD/v1/model.pt", b"two", symbol="ETH-USD")
    real_put = client.put_object
    raced = []

    def put_object(**kwargs):
        if kwargs["Key"] == "models/registry.json" and not raced:
            raced.append(True)  # builder-b's whole push lands between builder-a's read and write
            publish(client, two, publisher="builder-b")
        return real_put(**kwargs)

    client.put_object = put_object
    publish(client, one)
    assert raced
    published = json.loads(body(client, "models/registry.json"))["models"]
    assert sorted((m["model_id"], m["published_by"]) for m in published) == [
        ("lstm_BTC-USD_v1", "builder-a"), ("lstm_ETH-USD_v1", "builder-b")]


def test_registry_push_needs_a_publisher(tmp_path):
    with pytest.raises(s3.ModuleFailure, match="registry is set but publisher is empty"):
        s3.Sync(None, params(tmp_path, "push", registry="registry.json"))


def test_merge_registry_keeps_every_published_entry_and_credits_new_ones():
    a = entry("a", "a.pt", b"a", published_by="builder-a")
    b = entry("b", "b.pt", b"b")
    merged, conflicts = s3.merge_registry([a], [b, dict(a, promoted=True, published_by=None)], "builder-b")
    assert conflicts == []
    assert merged == [dict(a, promoted=True), dict(b, published_by="builder-b")]
    _merged, conflicts = s3.merge_registry([a], [dict(a, file_hash="0" * 64)], "builder-b")
    assert conflicts == ["model a (published by builder-a) would change its published file_hash (models/a.pt)"]


@pytest.mark.parametrize("published", [False, True])
def test_a_registry_that_does_not_parse_is_refused(client, tmp_path, published):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1")
    write_registry(src, entry("lstm_BTC-USD_v1", MODEL, b"v1"))
    if published:
        client.put_object(Bucket=BUCKET, Key="models/registry.json", Body=b'{"models": [{"model_id": "x"}]}')
        expected = (f"the published registry s3://{BUCKET}/models/registry.json entry 'x': field version"
                    ".*Fix: restore the last good version")
    else:
        write_file(src, "registry.json", b"{not json")
        expected = f"{src / 'registry.json'} does not parse as JSON"
    with pytest.raises(s3.ModuleFailure, match=expected):
        publish(client, src, True)
    assert keys(client) == (["models/registry.json"] if published else [])


def test_registry_must_name_the_registered_files(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1 changed after registration")
    registered = entry("lstm_BTC-USD_v1", MODEL, b"v1")
    write_registry(src, registered)
    with pytest.raises(s3.ModuleFailure) as failed:
        publish(client, src, True)
    actual = hashlib.sha256(b"v1 changed after registration").hexdigest()
    assert (f"model lstm_BTC-USD_v1: models/{MODEL} has SHA-256 {actual}, the registry says"
            f" {registered['file_hash']}") in str(failed.value)
    assert keys(client) == []

    (src / MODEL).unlink()
    with pytest.raises(s3.ModuleFailure, match=f"model lstm_BTC-USD_v1: models/{MODEL} is registered but not on this"
                                               " host and not in S3"):
        publish(client, src)
    assert keys(client) == []
    # A registered file that is in the bucket but no longer on the builder is fine.
    client.put_object(Bucket=BUCKET, Key=f"models/{MODEL}", Body=b"v1")
    assert publish(client, src)["counts"]["copy"] == 1


def test_registry_files_are_checked_from_the_state_not_rehashed(client, tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1")
    write_registry(src, entry("lstm_BTC-USD_v1", MODEL, b"v1"))
    publish(client, src)
    hashed = []
    real = s3.file_hashes
    monkeypatch.setattr(s3, "file_hashes", lambda path, *a: hashed.append(path) or real(path, *a))
    assert not publish(client, src)["changed"] and hashed == []
    (src / MODEL).write_bytes(b"v2")  # same size, other content: hashed, and refused (even were it not write-once)
    with pytest.raises(s3.ModuleFailure, match="has SHA-256"):
        publish(client, src, immutable=[])
    assert hashed == [str(src / MODEL)]


def test_registry_goes_up_after_the_files_it_names(client, tmp_path):
    src = tmp_path / "src"
    write_file(src, MODEL, b"v1")
    write_file(src, "z/last.pt", b"z")
    write_registry(src, entry("lstm_BTC-USD_v1", MODEL, b"v1"), entry("z", "z/last.pt", b"z"))

    class Recording:
        def __init__(self, real):
            self.real = real
            self.puts = []

        def __getattr__(self, name):
            attr = getattr(self.real, name)
            if name != "put_object":
                return attr

            def put_object(**kwargs):
                self.puts.append(kwargs["Key"])
                return attr(**kwargs)
            return put_object

    recording = Recording(client)
    s3.Sync(recording, params(src, "push", prefix="models", registry="registry.json", publisher="builder-a",
                              workers=1)).run(False)
    # The claims of both versions first, then the files, the registry last.
    assert recording.puts == ["models/.crpbot-versions/lstm_BTC-USD_v1.json", "models/.crpbot-versions/z.json",
                              f"models/{MODEL}", "models/z/last.pt", "models/registry.json"]


def test_registry_path_must_be_relative(tmp_path):
    with pytest.raises(s3.ModuleFailure, match="registry '../registry.json' must be a file's path relative"):
        s3.Sync(None, params(tmp_path, "push", registry="../registry.json", publisher="builder-a"))


# --- bad input ----------------------------------------------------------------------------------

def test_push_of_missing_dir_fails_naming_it(client, tmp_path):
    with pytest.raises(s3.ModuleFailure, match="does not exist"):
        sync(client, tmp_path / "nope", "push")


# --- the module end to end ----------------------------------------------------------------------

def playbook(tmp_path, task, check=False, credentials=True):
    results = tmp_path / "result.json"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        dict(task, register="crpbot_s3_result", ignore_errors=True),
        {"ansible.builtin.copy": {"content": "{{ crpbot_s3_result | to_json }}", "dest": str(results)},
         "check_mode": False, "diff": False}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    if not credentials:
        env = {key: value for key, value in env.items() if not key.startswith("AWS_ACCESS") and "SECRET" not in key}
        env["AWS_EC2_METADATA_DISABLED"] = "true"
    args = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")]
    if check:
        args += ["--check", "--diff"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(results.read_text())


def test_module_end_to_end(moto_endpoint, tmp_path):
    cli = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cli.create_bucket(Bucket="e2e")
    write_file(tmp_path / "src", "BTC-USD/a.parquet", b"a" * 50)
    write_file(tmp_path / "src", "ETH-USD/b.parquet", b"b" * 50)
    task = {"crpbot_s3_transfer": {"direction": "push", "bucket": "e2e", "prefix": "data/raw",
                                   "local_dir": str(tmp_path / "src"), "endpoint_url": moto_endpoint,
                                   "path_style": True, "region": "us-east-1"}}
    checked = playbook(tmp_path, task, check=True)
    assert checked["changed"] and checked["counts"]["copy"] == 2, checked
    assert "copy BTC-USD/a.parquet 50 (missing in bucket)" in checked["diff"]["after"]
    assert playbook(tmp_path, task)["changed"]
    again = playbook(tmp_path, task)
    assert not again["changed"] and again["counts"] == {"copy": 0, "update": 0, "delete": 0}
    write_file(tmp_path / "src", "BTC-USD/a.parquet", b"c" * 50)
    write_once = {"crpbot_s3_transfer": dict(task["crpbot_s3_transfer"], immutable=["+ BTC-USD*"])}
    refused = playbook(tmp_path, write_once, check=True)
    assert refused["failed"] and "s3://e2e/data/raw/BTC-USD/a.parquet (update: content differs)" in refused["msg"]
    pull = {"crpbot_s3_transfer": dict(task["crpbot_s3_transfer"], direction="pull",
                                       local_dir=str(tmp_path / "dst"), filters=[{"include": "BTC-USD*"}])}
    assert playbook(tmp_path, pull)["counts"]["copy"] == 1
    assert not playbook(tmp_path, pull)["changed"]
    missing = {"crpbot_s3_transfer": dict(task["crpbot_s3_transfer"], bucket="nope")}
    failed = playbook(tmp_path, missing)
    assert failed["failed"] and "bucket nope does not exist" in failed["msg"]
    nocreds = playbook(tmp_path, task, credentials=False)
    assert nocreds["failed"] and "no AWS credentials found" in nocreds["msg"]
    nodir = {"crpbot_s3_transfer": dict(task["crpbot_s3_transfer"], local_dir=str(tmp_path / "absent"))}
    failed = playbook(tmp_path, nodir)
    assert failed["failed"] and "absent does not exist" in failed["msg"]


# --- the role's guard -----------------------------------------------------------------------------

@pytest.mark.parametrize("syncs", [
    [{"kind": "models", "direction": "push", "local": "models", "prefix": "models"}],
    [{"kind": "data", "direction": "pull", "local": "x", "prefix": "secrets"}],
])
def test_qc_host_given_a_push_or_other_prefix_fails_before_any_request(tmp_path, syncs):
    inventory = {"plugin": "crpbot", "bucket": "crpbot-test", "region": "us-east-1",
                 "hosts": [{"name": "qc-local", "user": "root", "connection": "local", "db_backend": "sqlite",
                            "project_dir": str(tmp_path)}],
                 # Nothing listens here: a request would fail with another message.
                 "vars": {"ansible_python_interpreter": sys.executable, "crpbot_s3_endpoint_url": "http://127.0.0.1:9"}}
    (tmp_path / "local.crpbot.yml").write_text(json.dumps(inventory))
    proc = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "local.crpbot.yml"), "playbooks/sync_s3.yml",
         "-e", json.dumps({"crpbot_s3_qc_syncs": syncs})],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode != 0
    assert "is a QC host" in proc.stdout and "QC never pushes or deletes in S3" in proc.stdout
    assert "Sync the" not in proc.stdout and not (tmp_path / "models").exists()


def test_role_models_syncs_leave_the_promotion_dirs_alone_and_publish_write_once():
    import yaml
    # Not ``import crpbot_models``: another test puts plugins/modules (the crpbot_models module) first on sys.path.
    from ansible.module_utils import crpbot_models

    defaults = yaml.safe_load((REPO / "roles/crpbot_s3/defaults/main.yml").read_text())
    [builder] = [item for item in defaults["crpbot_s3_builder_syncs"] if item["kind"] == "models"]
    [qc] = [item for item in defaults["crpbot_s3_qc_syncs"] if item["kind"] == "models"]
    assert builder["local"] == qc["local"] == "models"
    managed = [path.split("/", 1)[1] for path in crpbot_models.MANAGED_DIRS]
    for models_sync in (builder, qc):
        rules = s3.compile_rules(models_sync["filters"])
        for name in managed:
            assert not s3.selected(rules, f"{name}/lstm_BTC-USD_latest.pt"), (models_sync["direction"], name)
            assert not s3.selected(rules, f"{name}/deep/er.pt"), (models_sync["direction"], name)
        assert s3.selected(rules, "lstm/BTC-USD/v1/model.pt") and s3.selected(rules, "registry.json")
        for temp in (f"{crpbot_models.TMP_PREFIX}x1", f"promoted/{crpbot_models.TMP_PREFIX}x2"):
            assert not s3.selected(rules, temp), (models_sync["direction"], temp)
    immutable = s3.compile_rules(builder["immutable"], "immutable")
    assert s3.selected(immutable, "lstm/BTC-USD/v1/model.pt") and not s3.selected(immutable, "registry.json")
    assert "models/" + builder["registry"] == crpbot_models.REGISTRY_PATH


def test_documentation_matches_the_argument_spec(monkeypatch):
    import yaml

    from tests.ansible_run import load_plugin

    monkeypatch.setitem(sys.modules, "ansible.module_utils.crpbot_s3", s3)
    module = load_plugin("plugins/modules/crpbot_s3_transfer.py")
    captured = {}

    class Stop(Exception):
        pass

    def fake(argument_spec, **_kwargs):
        captured.update(argument_spec)
        raise Stop

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(Stop):
        module.main()
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert sorted(documented) == sorted(captured)
    assert sorted(documented["syncs"]["suboptions"]) == sorted(captured["syncs"]["options"])
    for name, spec in captured["syncs"]["options"].items():
        doc = documented["syncs"]["suboptions"][name]
        assert (doc["type"], doc.get("default"), doc.get("required", False)) == (
            spec["type"], spec.get("default"), spec.get("required", False)), name
    for name, option in captured.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert documented[name].get("required", False) == option.get("required", False), name
        assert documented[name].get("choices") == option.get("choices"), name
    for text in (module.EXAMPLES, module.RETURN):
        yaml.safe_load(text)


def test_missing_only_pull_fetches_absent_files_and_keeps_local_ones(client, tmp_path):
    client.put_object(Bucket=BUCKET, Key="models/a/model.pt", Body=b"published a")
    client.put_object(Bucket=BUCKET, Key="models/b/model.pt", Body=b"published b")
    dst = tmp_path / "builder"
    write_file(dst, "b/model.pt", b"this builder's own b")
    result = sync(client, dst, "pull", prefix="models", missing_only=True, filters=["+ a/model.pt", "+ b/model.pt"])
    assert result["counts"] == {"copy": 1, "update": 0, "delete": 0}
    assert (dst / "a/model.pt").read_bytes() == b"published a"
    assert (dst / "b/model.pt").read_bytes() == b"this builder's own b"
    assert not sync(client, dst, "pull", prefix="models", missing_only=True, filters=["+ a/model.pt"])["changed"]


# --- several syncs in one run ---------------------------------------------------------------------

SHARED = {"bucket": BUCKET, "workers": 4, "multipart_threshold": 8 * 1024 * 1024}


def builder_syncs(models, data, **data_extra):
    """The builder's two pushes, as the role passes them."""
    return [{"name": "models", "direction": "push", "prefix": "models", "local_dir": str(models),
             "immutable": WRITE_ONCE, "registry": "registry.json", "publisher": "builder-a"},
            {"name": "data", "direction": "push", "prefix": "data/raw", "local_dir": str(data), "create": True,
             **data_extra}]


def test_syncs_run_in_one_call_with_a_result_each(client, tmp_path):
    models, data = tmp_path / "models", tmp_path / "data"
    builder(models, "lstm_BTC-USD_v1", MODEL, b"v1")
    write_file(data, "BTC-USD/a.parquet", b"a")
    checked = s3.run_syncs(client, SHARED, builder_syncs(models, data), True)
    assert [(r["name"], r["counts"]["copy"], r["changed"]) for r in checked] == [("models", 2, True), ("data", 1, True)]
    assert keys(client) == []  # check mode: not even a claim
    done = s3.run_syncs(client, SHARED, builder_syncs(models, data), False)
    assert [(r["name"], r["prefix"], r["bytes_transferred"] > 0) for r in done] == [
        ("models", "models/", True), ("data", "data/raw/", True)]
    assert keys(client) == ["data/raw/BTC-USD/a.parquet", "models/.crpbot-versions/lstm_BTC-USD_v1.json",
                            f"models/{MODEL}", "models/registry.json"]
    assert not any(r["changed"] for r in s3.run_syncs(client, SHARED, builder_syncs(models, data), False))
    # A QC host's two pulls, one of them into a dir to be made.
    pulled = s3.run_syncs(client, SHARED, [
        {"name": "models", "direction": "pull", "prefix": "models", "local_dir": str(tmp_path / "qc/models")},
        {"name": "data", "direction": "pull", "prefix": "data/raw", "local_dir": str(tmp_path / "qc/raw"),
         "filters": ["+ BTC-USD*"]}], False)
    assert [r["counts"]["copy"] for r in pulled] == [2, 1]
    assert (tmp_path / "qc/raw/BTC-USD/a.parquet").read_bytes() == b"a"


def test_a_refusal_of_any_sync_comes_before_any_sync_changes_anything(client, tmp_path):
    """The data push would delete a key above max_deletes: the models push, listed first, has not
    claimed, uploaded or merged anything when the run fails, and the failure names the sync."""
    models, data = tmp_path / "models", tmp_path / "data"
    builder(models, "lstm_BTC-USD_v1", MODEL, b"v1")
    write_file(data, "BTC-USD/a.parquet", b"a")
    client.put_object(Bucket=BUCKET, Key="data/raw/old.parquet", Body=b"old")
    for check in (True, False):
        with pytest.raises(s3.SyncsFailure) as failed:
            s3.run_syncs(client, SHARED, builder_syncs(models, data, delete=True, max_deletes=0), check)
        assert str(failed.value).startswith("sync data: the plan deletes 1 remote files, more than max_deletes=0")
        assert failed.value.results == []
        assert keys(client) == ["data/raw/old.parquet"]
    # An immutable rewrite in the models push refuses the data push too.
    s3.run_syncs(client, SHARED, builder_syncs(models, data), False)
    write_file(models, MODEL, b"v2")
    write_file(data, "BTC-USD/b.parquet", b"b")
    with pytest.raises(s3.SyncsFailure, match="^sync models: refusing to push to s3://crpbot-test/models/"):
        s3.run_syncs(client, SHARED, builder_syncs(models, data), False)
    assert "data/raw/BTC-USD/b.parquet" not in keys(client)


def test_a_sync_failing_while_applied_returns_the_results_of_those_before_it(client, tmp_path):
    write_file(tmp_path / "src", "x.bin", b"x")
    client.put_object(Bucket=BUCKET, Key="other/x.bin", Body=b"x")
    (tmp_path / "dst" / "x.bin").mkdir(parents=True)  # a directory in the way of the pulled file
    syncs = [{"direction": "push", "prefix": "data/raw", "local_dir": str(tmp_path / "src")},
             {"direction": "pull", "prefix": "other", "local_dir": str(tmp_path / "dst")}]
    with pytest.raises(s3.SyncsFailure, match="^sync pull other/: 1 transfer.*a directory is in the way") as failed:
        s3.run_syncs(client, SHARED, syncs, False)
    assert [(r["name"], r["direction"], r["changed"]) for r in failed.value.results] == [("", "push", True)]
    assert "data/raw/x.bin" in keys(client)


def test_client_errors_of_a_sync_are_explained_and_named(client, tmp_path):
    syncs = [{"name": "data", "direction": "pull", "prefix": "data/raw", "local_dir": str(tmp_path / "dst")}]

    def explain(exc):
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        return s3.ModuleFailure("bucket nope does not exist") if code == "NoSuchBucket" else None

    with pytest.raises(s3.SyncsFailure, match="^sync data: bucket nope does not exist$"):
        s3.run_syncs(client, dict(SHARED, bucket="nope"), syncs, False, explain=explain)
    with pytest.raises(Exception, match="NoSuchBucket") as failed:  # noqa: PT011 - botocore's ClientError as it is
        s3.run_syncs(client, dict(SHARED, bucket="nope"), syncs, False)
    assert not isinstance(failed.value, s3.ModuleFailure)


def test_module_runs_several_syncs_in_one_task(moto_endpoint, tmp_path):
    cli = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cli.create_bucket(Bucket="e2e-syncs")
    write_file(tmp_path / "models", "lstm/a.pt", b"a" * 10)
    options = {"bucket": "e2e-syncs", "endpoint_url": moto_endpoint, "path_style": True, "region": "us-east-1"}
    syncs = [{"name": "models", "direction": "push", "prefix": "models", "local_dir": str(tmp_path / "models")},
             {"name": "data", "direction": "push", "prefix": "data/raw", "local_dir": str(tmp_path / "raw"),
              "create": True}]
    task = {"crpbot_s3_transfer": dict(options, syncs=syncs)}
    checked = playbook(tmp_path, task, check=True)
    assert checked["changed"] and [(s["name"], s["changed"]) for s in checked["syncs"]] == [
        ("models", True), ("data", True)], checked
    assert checked["syncs"][0]["counts"]["copy"] == 1 and checked["syncs"][1]["created_local_dir"]
    assert [d["after"] for d in checked["diff"]] == ["copy lstm/a.pt 10 (missing in bucket)\n", ""]
    assert not (tmp_path / "raw").exists()
    assert playbook(tmp_path, task)["changed"]
    again = playbook(tmp_path, task)
    assert not again["changed"] and [s["counts"]["copy"] for s in again["syncs"]] == [0, 0]
    both = playbook(tmp_path, {"crpbot_s3_transfer": dict(options, syncs=syncs, direction="pull")})
    assert both["failed"] and "mutually exclusive: syncs|direction" in both["msg"]


def test_a_missing_interpreter_is_named_with_the_fix_and_skipped_in_check_mode(tmp_path):
    python = tmp_path / "crpbot/.venv/bin/python"
    task = {"crpbot_s3_transfer": {"bucket": "b", "direction": "pull", "local_dir": str(tmp_path / "dst")},
            "vars": {"ansible_python_interpreter": str(python)}}
    failed = playbook(tmp_path, task)
    assert failed["failed"] and failed["msg"] == (
        f"host localhost: {python} does not exist; the S3 syncs run the module with the project's .venv (boto3)."
        " Apply the crpbot_uv role first (site.yml does).")
    skipped = playbook(tmp_path, task, check=True)
    assert skipped["skipped"] and not skipped.get("failed") and f"{python} does not exist yet" in skipped["skip_reason"]
    # An interpreter that is there but fails otherwise keeps Ansible's own failure.
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 127\n")
    python.chmod(0o755)
    other = playbook(tmp_path, task)
    assert other["failed"] and "Apply the crpbot_uv role" not in other["msg"]


@pytest.mark.parametrize(("args", "expected"), [
    ([], ["models", "data"]),
    (["--tags", "models"], ["models"]),
    (["--tags", "data"], ["data"]),
    (["--skip-tags", "data"], ["models"]),
    (["--skip-tags", "models,data"], []),
    (["-e", '{"crpbot_s3_kinds": ["data"]}'], ["data"]),
    (["--tags", "data", "-e", '{"crpbot_s3_kinds": ["models"]}'], []),
])
def test_role_runs_the_kinds_tags_and_crpbot_s3_kinds_select_in_one_task(moto_endpoint, tmp_path, args, expected):
    cli = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    cli.create_bucket(Bucket="crpbot-tags")
    inventory = {"plugin": "crpbot", "bucket": "crpbot-tags", "region": "us-east-1",
                 "hosts": [{"name": "qc-local", "user": "root", "connection": "local", "db_backend": "sqlite",
                            "project_dir": str(tmp_path)}],
                 "vars": {"crpbot_s3_python": sys.executable, "crpbot_s3_endpoint_url": moto_endpoint,
                          "crpbot_s3_profile": ""}}
    (tmp_path / "local.crpbot.yml").write_text(json.dumps(inventory))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    proc = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "local.crpbot.yml"), "playbooks/sync_s3.yml",
         "--check", "-v", *args], env=env, cwd=REPO, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("TASK [crpbot_s3 : Sync the models and the raw data]") <= 1
    ran = re.findall(r'"local_dir": "[^"]*", "name": "(models|data)"', proc.stdout)
    assert ran == expected, proc.stdout[-3000:]

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the S3 module's cheaper paths: the plain botocore client the module builds, listed times
kept as text, puts without a 100-continue round trip, Content-MD5, streamed puts, multipart through
s3transfer without boto3, and the bounded window of pending transfers.

Everything runs against moto's in-process ``mock_aws``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import crpbot_s3 as s3  # noqa: E402

from tests.ansible_run import load_plugin  # noqa: E402
from tests.conftest import write_file  # noqa: E402

BUCKET = "crpbot-perf"


@pytest.fixture
def module(monkeypatch):
    """plugins/modules/crpbot_s3_transfer.py, importing its module_utils from the source tree."""
    monkeypatch.setitem(sys.modules, "ansible.module_utils.crpbot_s3", s3)
    return load_plugin("plugins/modules/crpbot_s3_transfer.py")


def client_params(**extra):
    return {"profile": "", "region": "us-east-1", "endpoint_url": "", "workers": 4, "path_style": False, **extra}


@pytest.fixture
def client(module, monkeypatch, tmp_path):
    """The client the module itself builds (botocore only), against moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with mock_aws():
        cli = module.make_client(client_params())
        cli.create_bucket(Bucket=BUCKET)
        yield cli


def sync(cli, local_dir, direction, **extra):
    params = {"bucket": BUCKET, "prefix": "data/raw", "local_dir": str(local_dir), "direction": direction,
              "workers": 4, **extra}
    return s3.Sync(cli, params).run(False)


def test_module_client_is_botocore_only_and_keeps_listed_times_as_text(client):
    assert not s3.has_fileobj_methods(client)
    client.put_object(Bucket=BUCKET, Key="data/raw/a", Body=b"a")
    listed = s3.list_remote(client, BUCKET, "data/raw/")
    assert isinstance(listed["a"]["mtime"], str)
    assert abs(s3.to_epoch(listed["a"]["mtime"]) - datetime.now(timezone.utc).timestamp()) < 120


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-27T09:47:01.000Z", 1795772821.0),
    ("2026-11-27T09:47:01Z", 1795772821.0),
    ("2026-11-27T10:47:01.000+01:00", 1795772821.0),
    ("2026-11-27T09:47:01", 1795772821.0),
    ("Fri, 27 Nov 2026 09:47:01 GMT", 1795772821.0),
    (datetime(2026, 11, 27, 10, 47, 1, tzinfo=timezone(timedelta(hours=1))), 1795772821.0),
    (1795772821, 1795772821.0),
])
def test_to_epoch_reads_every_listed_spelling(value, expected):
    assert s3.to_epoch(value) == expected


def test_pulled_file_gets_the_listed_time(client, tmp_path):
    client.put_object(Bucket=BUCKET, Key="data/raw/a.parquet", Body=b"abc")
    sync(client, tmp_path / "dst", "pull")
    listed = s3.list_remote(client, BUCKET, "data/raw/")["a.parquet"]["mtime"]
    assert os.stat(tmp_path / "dst" / "a.parquet").st_mtime == s3.to_epoch(listed)


def test_missing_profile_is_named(module, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with pytest.raises(s3.ModuleFailure, match="AWS profile nope is not in"):
        module.make_client(client_params(profile="nope"))


def sent_headers(cli):
    """Headers of every PutObject request, as built before signing and sending."""
    seen = []
    cli.meta.events.register("request-created.s3.PutObject",
                             lambda request, **_kw: seen.append({"key": request.url.rsplit("/", 1)[-1],
                                                                 **request.headers}))
    return seen


def test_small_puts_skip_the_100_continue_round_trip(client, tmp_path):
    seen = sent_headers(client)
    write_file(tmp_path / "src", "small", b"s" * 1000)
    write_file(tmp_path / "src", "medium", os.urandom(s3.STREAM_PUT_SIZE + 1))
    write_file(tmp_path / "src", "large", os.urandom(s3.EXPECT_CONTINUE_SIZE))
    sync(client, tmp_path / "src", "push")
    assert {h["key"]: h.get("Expect") for h in seen} == {"small": None, "medium": None, "large": "100-continue"}


def test_puts_carry_content_md5_and_no_crc(client, tmp_path):
    seen = sent_headers(client)
    data = b"payload" * 100
    write_file(tmp_path / "src", "a", data)
    sync(client, tmp_path / "src", "push")
    assert seen[0]["Content-MD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    assert not any(name.lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum")) for name in seen[0])


def test_streamed_put_round_trips_with_its_hash(client, tmp_path):
    data = os.urandom(s3.STREAM_PUT_SIZE * 3 + 7)
    write_file(tmp_path / "src", "streamed.parquet", data)
    assert sync(client, tmp_path / "src", "push")["bytes_transferred"] == len(data)
    head = client.head_object(Bucket=BUCKET, Key="data/raw/streamed.parquet")
    assert head["Metadata"][s3.SHA_META] == hashlib.sha256(data).hexdigest()
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()  # noqa: S324
    sync(client, tmp_path / "dst", "pull")
    assert (tmp_path / "dst" / "streamed.parquet").read_bytes() == data


def test_multipart_round_trip_through_s3transfer_without_boto3(client, tmp_path):
    big = os.urandom(6 * 1024 * 1024)
    write_file(tmp_path / "src", "big.parquet", big)
    extra = {"multipart_threshold": 5 * 1024 * 1024, "multipart_chunksize": 5 * 1024 * 1024}
    sync(client, tmp_path / "src", "push", **extra)
    head = client.head_object(Bucket=BUCKET, Key="data/raw/big.parquet")
    assert "-" in head["ETag"] and head["Metadata"][s3.SHA_META] == hashlib.sha256(big).hexdigest()
    sync(client, tmp_path / "dst", "pull", **extra)
    assert (tmp_path / "dst" / "big.parquet").read_bytes() == big
    assert not sync(client, tmp_path / "dst", "pull", **extra)["changed"]


def test_transfers_are_submitted_through_a_bounded_window(client, tmp_path, monkeypatch):
    for number in range(30):
        write_file(tmp_path / "src", f"f{number:02d}", b"x")
    outstanding = {"now": 0, "peak": 0}
    real_submit = ThreadPoolExecutor.submit

    def submit(self, fn, *args, **kwargs):
        future = real_submit(self, fn, *args, **kwargs)
        if getattr(fn, "__name__", "") in ("upload", "download"):
            outstanding["now"] += 1
            outstanding["peak"] = max(outstanding["peak"], outstanding["now"])
            real_result = future.result

            def result(timeout=None):
                outstanding["now"] -= 1
                return real_result(timeout)
            future.result = result
        return future

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    assert sync(client, tmp_path / "src", "push", workers=2)["counts"]["copy"] == 30
    assert outstanding == {"now": 0, "peak": 2 * s3.PENDING_PER_WORKER}
    outstanding["peak"] = 0
    assert sync(client, tmp_path / "dst", "pull", workers=1)["counts"]["copy"] == 30
    assert outstanding == {"now": 0, "peak": s3.PENDING_PER_WORKER}
    assert len(list((tmp_path / "dst").glob("f*"))) == 30


@pytest.mark.parametrize("name", ["crpbot-sha256", "Crpbot-Sha256", "CRPBOT-SHA256"])
def test_the_stored_sha256_is_checked_whatever_the_case_of_its_header(client, tmp_path, name):
    """A proxy or S3-compatible server may change the case of x-amz-meta-* names (waitress, which
    serves the test bed's moto, capitalizes them): a wrong SHA-256 must fail the pull all the same."""
    client.put_object(Bucket=BUCKET, Key="data/raw/a.parquet", Body=b"abc", Metadata={s3.SHA_META: "0" * 64})

    def rename(parsed, **_kwargs):
        parsed["Metadata"] = {name if key.lower() == s3.SHA_META else key: value
                              for key, value in (parsed.get("Metadata") or {}).items()}

    client.meta.events.register("after-call.s3.GetObject", rename)
    with pytest.raises(s3.ModuleFailure, match="SHA-256 of the download differs"):
        sync(client, tmp_path / "dst", "pull")
    assert not (tmp_path / "dst" / "a.parquet").exists()
    assert s3.stored_sha({"Metadata": {name: "x"}}) == "x"
    assert s3.stored_sha({}) is None

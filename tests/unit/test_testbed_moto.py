# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test bed's S3/STS/IAM server (tests/testbed/moto_server.py), in process.

The integration tests and the S3 benchmark rely on it: every service answers through the cached
dispatcher, and HTTP connections stay open between requests (the benchmark's numbers depend on it).
"""

from __future__ import annotations

import http.client
import json

import boto3


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106 - moto


def test_s3_sts_and_iam_are_served(moto_endpoint):
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket="server-test")
    s3.put_object(Bucket="server-test", Key="models/a.bin", Body=b"x" * 3000, Metadata={"crpbot-sha256": "abc"})
    head = s3.head_object(Bucket="server-test", Key="models/a.bin")
    assert head["ContentLength"] == 3000
    # waitress writes header names capitalized; the module reads its metadata in any case.
    assert {name.lower(): value for name, value in head["Metadata"].items()} == {"crpbot-sha256": "abc"}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="server-test")["Contents"]] == ["models/a.bin"]
    assert client("sts", moto_endpoint).get_caller_identity()["Account"]
    client("iam", moto_endpoint).create_user(UserName="server-test")
    assert "server-test" in [u["UserName"] for u in client("iam", moto_endpoint).list_users()["Users"]]


def test_a_large_put_with_expect_continue_is_stored_whole(moto_endpoint):
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket="server-large")
    body = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # botocore sends Expect: 100-continue
    s3.put_object(Bucket="server-large", Key="big", Body=body)
    assert s3.get_object(Bucket="server-large", Key="big")["Body"].read() == body


def test_connections_stay_open_between_requests(moto_endpoint):
    host, port = moto_endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        sockets = []
        for _ in range(3):
            conn.request("GET", "/moto-api/data.json")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            json.loads(response.read())
            sockets.append(conn.sock)
        assert sockets[0] is not None and all(sock is sockets[0] for sock in sockets)
    finally:
        conn.close()


def test_conditional_puts_are_atomic_as_on_s3(moto_endpoint):
    """Many writers putting the same key with If-None-Match: * at once: exactly one gets through (the
    builders' claims of a model version rely on it)."""
    from concurrent.futures import ThreadPoolExecutor

    import botocore.exceptions

    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket="claims")

    def claim(index):
        try:
            s3.put_object(Bucket="claims", Key="models/.crpbot-versions/m.json", Body=str(index).encode(),
                          IfNoneMatch="*")
            return index
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return None

    for _round in range(5):
        s3.delete_object(Bucket="claims", Key="models/.crpbot-versions/m.json")
        with ThreadPoolExecutor(8) as pool:
            winners = [index for index in pool.map(claim, range(8)) if index is not None]
        assert len(winners) == 1
        assert s3.get_object(Bucket="claims", Key="models/.crpbot-versions/m.json")["Body"].read() == \
            str(winners[0]).encode()

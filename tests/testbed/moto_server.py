"""The test bed's S3/STS/IAM API server: moto, with the IAM users of the sandbox vault.

``python -m tests.testbed.moto_server --port N --seed FILE`` starts moto's threaded server on
127.0.0.1:N after creating, in the same process, one IAM user per AWS key of the sandbox
vault, each holding that very key (moto would otherwise invent key ids the vault does not
know). The seed file (JSON, 0600, written by ``up``) is deleted as soon as it is read:

    {"users": [{"name": "crpbot-builder", "access_key_id": "...", "secret_access_key": "..."}]}

The rotation playbook then finds each key's user with STS GetCallerIdentity, and creates,
deactivates and deletes keys through the IAM API as it would on AWS (moto keeps AWS's limit
of two keys per user).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def seed_iam(users: list[dict[str, str]]) -> None:
    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for entry in users:
        backend.create_user(region_name="us-east-1", user_name=entry["name"])
        key = backend.create_access_key(entry["name"])
        # The backend also indexes keys by id: move the entry to the vault's id.
        del backend.access_keys[key.physical_resource_id]
        key.access_key_id = entry["access_key_id"]
        key.secret_access_key = entry["secret_access_key"]
        backend.access_keys[key.physical_resource_id] = key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=Path, required=True)
    opts = parser.parse_args()
    seed = json.loads(opts.seed.read_text())
    opts.seed.unlink()
    seed_iam(seed["users"])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=opts.port, verbose=True)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()
    os._exit(0)


if __name__ == "__main__":
    main()

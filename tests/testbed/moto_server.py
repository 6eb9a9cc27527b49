# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test bed's S3/STS/IAM API server: moto, with the IAM users of the sandbox vault.

``python -m tests.testbed.moto_server --port N --seed FILE`` starts moto's threaded server on
127.0.0.1:N after creating, in the same process, one IAM user per AWS key of the sandbox
vault, each holding that very key (moto would otherwise invent key ids the vault does not
know). The seed file (JSON, 0600, written by ``up``) is deleted as soon as it is read:

    {"users": [{"name": "crpbot-builder", "access_key_id": "...", "secret_access_key": "..."}]}

The rotation playbook then finds each key's user with STS GetCallerIdentity, and creates,
deactivates and deletes keys through the IAM API as it would on AWS (moto keeps AWS's limit
of two keys per user).

It serves moto's own WSGI application with waitress, which keeps HTTP connections open (moto's
werkzeug dev server closes every connection and starts a thread per request), and it remembers
which moto backend answers a host: moto's dispatcher finds it anew for every request, under one
lock, by listing moto's package directory. Both change only how requests reach moto, not what moto
answers. ``--server werkzeug`` serves it the way ``moto_server`` does (the benchmark compares
both). Conditional writes (a PUT with ``If-Match`` or ``If-None-Match``) are served one at a time: moto
checks the condition and stores the object in two steps, which S3 does atomically, and the builders'
claims of model versions rely on that atomicity when two of them publish at once. Without ``--seed`` no IAM user is created (the benchmark's server).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

# Requests waitress runs at once; moto works under the GIL, so more threads only add switching.
THREADS = 8


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering the backend of each host (the answer depends on the host only)."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        # Called under the dispatcher's own lock.
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class AtomicConditionalWrites:
    """WSGI middleware: one conditional PUT at a time, so moto's check-then-store is atomic among them
    as S3's is (unconditional requests are not held)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        conditional = environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")
        if environ.get("REQUEST_METHOD") == "PUT" and conditional:
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


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


def serve_in_thread(port: int, server: str) -> Callable[[], None]:
    """Serve moto on 127.0.0.1:port from a daemon thread; returns the function that stops it."""
    if server == "werkzeug":
        from werkzeug.serving import make_server

        httpd = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=True,
                            request_handler=MotoRequestHandler)
        serve, stop = httpd.serve_forever, httpd.shutdown
    else:
        import waitress

        httpd = waitress.create_server(AtomicConditionalWrites(CachedDispatcher(create_backend_app)),
                                       host="127.0.0.1", port=port,
                                       threads=THREADS, asyncore_use_poll=True, ident="moto")
        serve, stop = httpd.run, httpd.close
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def shutdown() -> None:
        stop()
        thread.join(timeout=10)

    return shutdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=Path, help="JSON file of IAM users to create (deleted once read)")
    parser.add_argument("--server", choices=["waitress", "werkzeug"], default="waitress")
    opts = parser.parse_args()
    if opts.seed:
        seed = json.loads(opts.seed.read_text())
        opts.seed.unlink()
        seed_iam(seed["users"])
    shutdown = serve_in_thread(opts.port, opts.server)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()

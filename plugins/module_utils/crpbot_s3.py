# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the crpbot S3 transfer module: filters, plans and the transfer executor.

The pure part (filters, prefixes, key safety, case collisions, plans, caps) needs only the standard
library; the executor takes an already built boto3 S3 client, so tests can hand it a moto client or
a stub.

Change detection without a HEAD per object: a small state file next to the data
(``<local dir>/.crpbot-s3-state.json``) records, per ``s3://bucket/prefix`` target and relative path,
the local file's size and mtime_ns and the object's ETag, size and SHA-256 as of the last transfer.
A file is in sync when its local stat and the listed ETag/size both still match that record. Only
when they do not is the local file hashed; an object whose ETag changed is fetched even if its size
and mtime look the same. Push stores the SHA-256 in the object metadata ``crpbot-sha256``.

Model versions are immutable: a push refuses, before any transfer, to overwrite with other content or
delete a key its ``immutable`` rules select, to publish a registry (``crpbot_models``) that rewrites a
published version, or one that names a model file other than the registered one.

Several builders publish into one registry. The bucket's registry is the union of what every builder
published: a push merges its local entries into it (never dropping one another builder published) and
writes it with a conditional put (``IfMatch`` the ETag it read, ``IfNoneMatch='*'`` when there was none),
read-merge-write again when another builder wrote in between. Each version is claimed first by its
publishing host: a claim object ``<prefix>/.crpbot-versions/<model_id>.json`` written with
``IfNoneMatch='*'`` before any of its files goes up, so when two builders publish the same version, even
in the same second, S3 lets exactly one claim through and the other push is refused naming both hosts.
The registry entry records the host as ``published_by``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ansible.module_utils.crpbot_models import MUTABLE, ModelError, parse_registry

STATE_NAME = ".crpbot-s3-state.json"
TMP_PREFIX = ".crpbot-s3-tmp-"
SHA_META = "crpbot-sha256"
STATE_SAVE_INTERVAL = 2.0
# Files at least this big are hashed and sent from the open file, not read into memory first.
STREAM_PUT_SIZE = 256 * 1024
# Puts of bodies at least this big ask the server first (Expect: 100-continue); smaller ones skip
# that round trip. The same threshold as the AWS SDK for Go's ContinueHeaderThresholdBytes.
EXPECT_CONTINUE_SIZE = 2 * 1024 * 1024
# Transfers submitted ahead of the one being collected, per worker: bounds the futures held.
PENDING_PER_WORKER = 4

# model_path in the registry is relative to the project dir; the models sync root is its models/.
MODELS_DIR = "models/"
# Keys shown in a refusal; the rest are counted.
SHOW_KEYS = 10

# Where each published model version's claim lives, under the models prefix (never pulled or pushed
# as a file: internal_name), and the registry field naming the publishing host.
CLAIMS_DIR = ".crpbot-versions"
PUBLISHED_BY = "published_by"
# Read-merge-write rounds of the registry before a push gives up (each lost round means another
# builder wrote the registry in between).
REGISTRY_ROUNDS = 10
# S3's answers to a conditional put that lost: 412 (the ETag moved on, or the key exists) and 409 (a
# concurrent conditional write of the same key).
CONDITION_LOST = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

# Calls a pull may make; anything else (put/delete/copy/multipart) is a write.
READ_CALLS = frozenset({"list_objects_v2", "get_object", "head_object", "get_paginator", "download_fileobj"})


class ModuleFailure(Exception):
    """A failure whose message is safe to show."""


# --- filters -----------------------------------------------------------------------------------

def glob_to_regex(pattern):
    """Translate a glob: ``**`` crosses ``/``, ``*`` and ``?`` do not, ``[...]`` is a class."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z")


def compile_rules(rules, name="filters"):
    """Ordered rules from ``[{'include': glob} | {'exclude': glob} | '+ glob' | '- glob', ...]``.

    Returns a list of ``(include: bool, anchored: bool, regex, glob)``; ``name`` is the option the
    rules come from, named in errors.
    """
    compiled = []
    for index, rule in enumerate(rules or []):
        if isinstance(rule, str) and rule[:2] in ("+ ", "- "):
            rule = {"include" if rule[0] == "+" else "exclude": rule[2:].strip()}
        if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in ("include", "exclude"):
            raise ModuleFailure(f"{name}[{index}] must be a dict with exactly one key, include or exclude, or a string '+ GLOB' / '- GLOB'")
        kind, glob = next(iter(rule.items()))
        if not isinstance(glob, str) or not glob.strip("/"):
            raise ModuleFailure(f"{name}[{index}].{kind} must be a non-empty glob string")
        anchored = "/" in glob.strip("/")
        compiled.append((kind == "include", anchored, glob_to_regex(glob.strip("/")), glob))
    return compiled


def rule_matches(anchored, regex, rel):
    parts = rel.split("/")
    if anchored:
        return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))
    return any(regex.match(part) for part in parts)


def selected(rules, rel):
    """Whether ``rel`` (relative to the sync root) is selected by the ordered rules.

    The first rule that matches decides. A path no rule matches is selected when the rules hold no
    include rule, and left out otherwise. A glob without ``/`` matches any one path component (a
    directory or the file name) at any depth; a glob with ``/`` is anchored at the sync root and
    matches the path or any of its leading directories.
    """
    for include, anchored, regex, _glob in rules:
        if rule_matches(anchored, regex, rel):
            return include
    return not any(rule[0] for rule in rules)


def internal_name(rel):
    name = rel.rsplit("/", 1)[-1]
    return name == STATE_NAME or name.startswith(TMP_PREFIX) or rel.startswith(CLAIMS_DIR + "/")


# --- prefixes and keys ------------------------------------------------------------------------

def normalize_prefix(prefix):
    """Slash-bounded prefix: ``models`` -> ``models/``; ``''`` or ``/`` -> the whole bucket."""
    prefix = (prefix or "").strip()
    if "\\" in prefix or any(part in ("..", ".") for part in prefix.strip("/").split("/") if part):
        raise ModuleFailure(f"prefix {prefix!r} must not contain '.', '..' or backslashes")
    prefix = re.sub("/+", "/", prefix).strip("/")
    return prefix + "/" if prefix else ""


def unsafe_reason(rel):
    """Why a relative path cannot be written under the local dir, or None when it can."""
    if not rel:
        return "empty relative path"
    if rel.startswith("/"):
        return "absolute path"
    if "\x00" in rel or "\\" in rel:
        return "NUL or backslash"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return f"path component {part!r}"
    return None


def case_collisions(rels):
    """Groups of relative paths that differ only by case (they would clash on a case-insensitive disk)."""
    groups = {}
    for rel in rels:
        groups.setdefault(rel.lower(), []).append(rel)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)


def strip_etag(etag):
    return (etag or "").strip('"')


def simple_md5_etag(etag):
    etag = strip_etag(etag)
    return etag if re.fullmatch(r"[0-9a-f]{32}", etag) else None


def stored_sha(response):
    """The ``crpbot-sha256`` metadata of a get/head response, or None.

    Metadata names come from HTTP header names, whose case means nothing: AWS answers in lower
    case, but a proxy or an S3-compatible server may not (botocore keeps the case it receives).
    """
    for name, value in (response.get("Metadata") or {}).items():
        if name.lower() == SHA_META:
            return value
    return None


def to_epoch(value):
    """Seconds since the epoch of a listed LastModified: a datetime, or its ISO 8601 text as listed."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        from botocore.utils import parse_timestamp  # other spellings some S3-compatible servers use

        parsed = parse_timestamp(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


# --- local side ------------------------------------------------------------------------------

def walk_local(root):
    """``({rel: (size, mtime_ns)}, [stale temp file paths])``; internal files are left out."""
    files = {}
    stale = []
    stack = [""]
    while stack:
        sub = stack.pop()
        with os.scandir(os.path.join(root, sub) if sub else root) as entries:
            for entry in entries:
                rel = f"{sub}/{entry.name}" if sub else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file():
                    if entry.name.startswith(TMP_PREFIX):
                        stale.append(entry.path)
                    elif entry.name != STATE_NAME:
                        st = entry.stat()
                        files[rel] = (st.st_size, st.st_mtime_ns)
    return files, stale


def file_hashes(path, chunk=1024 * 1024):
    sha = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 - the S3 ETag of a single-part object is its MD5
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


# --- state file -------------------------------------------------------------------------------

def target_id(bucket, prefix, endpoint_url):
    return f"{endpoint_url or 'aws'} s3://{bucket}/{prefix}"


def load_state(root, target):
    try:
        with open(os.path.join(root, STATE_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
        return data, dict(data.get("targets", {}).get(target, {}))
    except (OSError, ValueError, AttributeError):
        return {"version": 1, "targets": {}}, {}


def save_state(root, data, target, records):
    data = dict(data)
    data.setdefault("version", 1)
    data["targets"] = {**data.get("targets", {}), target: records}
    fd, tmp = tempfile.mkstemp(dir=root, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True, separators=(",", ":"))
        os.replace(tmp, os.path.join(root, STATE_NAME))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- plans ------------------------------------------------------------------------------------

def item(action, rel, size, reason):
    return {"action": action, "path": rel, "bytes": size, "reason": reason}


def plan_push(local, remote, records, rules, delete, hasher, head_sha=None):
    """Plan of a push.

    ``local``: ``{rel: (size, mtime_ns)}``; ``remote``: ``{rel: {'size', 'etag'}}`` (already
    limited to the prefix); ``records``: the state of the last transfer. ``hasher(rel)`` returns
    ``(sha256, md5)`` of a local file and is called only for files whose record does not prove them
    in sync; ``head_sha(rel)`` returns the object's ``crpbot-sha256`` metadata (multipart ETags only).
    Returns ``(items, new_records)``; new_records holds records refreshed without a transfer.
    """
    items = []
    refreshed = {}
    for rel in sorted(local):
        if internal_name(rel) or not selected(rules, rel):
            continue
        size, mtime_ns = local[rel]
        obj = remote.get(rel)
        if obj is None:
            items.append(item("copy", rel, size, "missing in bucket"))
            continue
        rec = records.get(rel)
        if rec and rec.get("size") == size == obj["size"] and rec.get("mtime_ns") == mtime_ns \
                and rec.get("etag") == strip_etag(obj["etag"]):
            continue
        if obj["size"] != size:
            items.append(item("update", rel, size, "size differs"))
            continue
        sha, md5 = hasher(rel)
        etag = strip_etag(obj["etag"])
        same = simple_md5_etag(etag) == md5 or (rec and rec.get("etag") == etag and rec.get("sha256") == sha)
        if not same and simple_md5_etag(etag) is None and head_sha is not None:
            same = head_sha(rel) == sha
        if same:
            refreshed[rel] = {"size": size, "mtime_ns": mtime_ns, "etag": etag, "sha256": sha}
        else:
            items.append(item("update", rel, size, "content differs"))
    if delete:
        for rel in sorted(set(remote) - set(local)):
            if not internal_name(rel) and selected(rules, rel):
                items.append(item("delete", rel, remote[rel]["size"], "not in local dir"))
    return items, refreshed


def plan_pull(remote, local, records, rules, delete, hasher):
    """Plan of a pull; same shapes as :func:`plan_push`. Fails on unsafe keys and case collisions."""
    wanted = {rel: obj for rel, obj in remote.items() if not internal_name(rel) and selected(rules, rel)}
    for rel in sorted(wanted):
        reason = unsafe_reason(rel)
        if reason:
            raise ModuleFailure(f"refusing to pull key {rel!r}: {reason} would escape or break the local dir")
    collisions = case_collisions(wanted)
    if collisions:
        raise ModuleFailure("keys that differ only by case would collide on disk: "
                            + "; ".join(", ".join(group) for group in collisions[:5]))
    items = []
    refreshed = {}
    for rel in sorted(wanted):
        obj = wanted[rel]
        etag = strip_etag(obj["etag"])
        have = local.get(rel)
        if have is None:
            items.append(item("copy", rel, obj["size"], "missing locally"))
            continue
        size, mtime_ns = have
        rec = records.get(rel)
        remote_same = bool(rec) and rec.get("etag") == etag and rec.get("size") == obj["size"]
        if remote_same and size == rec["size"] and mtime_ns == rec.get("mtime_ns"):
            continue
        if size != obj["size"]:
            items.append(item("update", rel, obj["size"], "size differs"))
            continue
        if rec and not remote_same:
            items.append(item("update", rel, obj["size"], "ETag differs from the last pull"))
            continue
        sha, md5 = hasher(rel)
        if (remote_same and sha == rec.get("sha256")) or simple_md5_etag(etag) == md5:
            refreshed[rel] = {"size": size, "mtime_ns": mtime_ns, "etag": etag, "sha256": sha}
        else:
            items.append(item("update", rel, obj["size"], "local content differs"))
    if delete:
        for rel in sorted(set(local) - set(wanted)):
            if not internal_name(rel) and selected(rules, rel):
                items.append(item("delete", rel, local[rel][0], "not in bucket"))
    return items, refreshed


def check_cap(items, cap, where):
    deletes = sum(1 for entry in items if entry["action"] == "delete")
    if deletes > cap:
        raise ModuleFailure(f"the plan deletes {deletes} {where} files, more than max_deletes={cap};"
                            " check the source and filters, or raise max_deletes")
    return deletes


# --- immutable versions and the model registry -------------------------------------------------

def immutable_violations(items, rules):
    """Planned items of a push that rewrite a key the ``immutable`` rules select: an update (the key
    exists with other content) or a delete. Without rules nothing is immutable."""
    if not rules:
        return []
    return [entry for entry in items if entry["action"] in ("update", "delete") and selected(rules, entry["path"])]


def name_some(names, limit=SHOW_KEYS):
    """``a, b, c`` or ``a, b and 3 more``."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def registry_file_problems(entries, local, remote, sha_of):
    """Registry entries whose model file is not the registered one: a local file (``local``: rels of
    the sync root) whose SHA-256 (``sha_of(rel)``) differs from file_hash, or a file neither here
    nor in the bucket (``remote``). ``model_path`` is relative to the project dir (``models/...``)."""
    problems = []
    for entry in entries:
        rel = entry["model_path"][len(MODELS_DIR):] if entry["model_path"].startswith(MODELS_DIR) else None
        if rel is None:
            problems.append(f"model {entry['model_id']}: model_path {entry['model_path']} is not under {MODELS_DIR}")
        elif rel in local:
            sha = sha_of(rel)
            if sha != entry["file_hash"]:
                problems.append(f"model {entry['model_id']}: {entry['model_path']} has SHA-256 {sha}, the registry"
                                f" says {entry['file_hash']}")
        elif rel not in remote:
            problems.append(f"model {entry['model_id']}: {entry['model_path']} is registered but not on this host"
                            " and not in S3")
    return problems


def immutable_fields_differ(published, local):
    """The fields of a published entry a local entry would change (``promoted``/``deployed_at`` may
    change; ``published_by`` is the bucket's, never in a local registry)."""
    return sorted(field for field in set(published) | set(local)
                  if field not in MUTABLE and field != PUBLISHED_BY and published.get(field) != local.get(field))


def merge_registry(published, local, host):
    """The bucket's registry after ``host`` publishes its ``local`` entries: every published entry kept
    (in order; the promotion marks of those in ``local`` taken from it), then ``local``'s new entries,
    each with ``published_by: host``. Returns ``(merged, conflicts)``: conflicts name each published
    version ``local`` would rewrite, and the host that published it."""
    mine = {entry["model_id"]: entry for entry in local}
    merged, conflicts = [], []
    for entry in published:
        ours = mine.pop(entry["model_id"], None)
        if ours is None:
            merged.append(entry)
            continue
        changed = immutable_fields_differ(entry, ours)
        if changed:
            owner = entry.get(PUBLISHED_BY) or "an unknown host"
            conflicts.append(f"model {entry['model_id']} (published by {owner}) would change its published"
                             f" {', '.join(changed)} ({entry.get('model_path', 'no model_path')})")
            merged.append(entry)
            continue
        merged.append({**entry, **{field: ours.get(field) for field in MUTABLE if field in ours}})
    for entry in local:
        if entry["model_id"] in mine:
            merged.append({**entry, PUBLISHED_BY: host})
    return merged, conflicts


def claim_key(prefix, model_id):
    return f"{prefix}{CLAIMS_DIR}/{model_id}.json"


def claim_body(entry, host):
    """The claim of a model version: who published it, and what (the immutable identity)."""
    return json.dumps({"model_id": entry["model_id"], "model_path": entry["model_path"],
                       "file_hash": entry["file_hash"], "host": host}, sort_keys=True).encode()


def condition_lost(exc):
    """Whether a botocore ClientError is S3 refusing a conditional write (someone else wrote first)."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return error.get("Code") in CONDITION_LOST or status in ("412", "409")


def summarize(items, limit):
    counts = {"copy": 0, "update": 0, "delete": 0}
    planned = 0
    for entry in items:
        counts[entry["action"]] += 1
        if entry["action"] != "delete":
            planned += entry["bytes"]
    return {"counts": counts, "bytes_planned": planned, "items": items[:limit]}


def diff_text(items):
    return "".join(f"{e['action']} {e['path']} {e['bytes']} ({e['reason']})\n" for e in items)


# --- remote listing ---------------------------------------------------------------------------

def _objects(page, prefix, remote):
    start = len(prefix)
    for obj in page.get("Contents", ()):
        key = obj["Key"]
        if not key.startswith(prefix) or key.endswith("/"):
            continue
        # "mtime" stays as listed (see to_epoch): only downloaded objects need it as a number.
        remote[key[start:]] = {"size": obj["Size"], "etag": strip_etag(obj.get("ETag")), "mtime": obj["LastModified"]}


def _list_under(client, bucket, list_prefix, prefix):
    remote = {}
    kwargs = {"Bucket": bucket}
    if list_prefix:
        kwargs["Prefix"] = list_prefix
    for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
        _objects(page, prefix, remote)
    return remote


def list_remote(client, bucket, prefix, pool=None):
    """``{rel: {'size', 'etag', 'mtime'}}`` of the objects under the slash-bounded prefix.

    With a thread pool, one delimited listing finds the first-level sub-prefixes (e.g. one per
    symbol) and those are listed in parallel; otherwise one paginated listing.
    """
    if pool is None:
        return _list_under(client, bucket, prefix, prefix)
    remote = {}
    subprefixes = []
    kwargs = {"Bucket": bucket, "Delimiter": "/"}
    if prefix:
        kwargs["Prefix"] = prefix
    for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
        _objects(page, prefix, remote)
        subprefixes.extend(common["Prefix"] for common in page.get("CommonPrefixes", []))
    for part in pool.map(lambda sub: _list_under(client, bucket, sub, prefix), subprefixes):
        remote.update(part)
    return remote


# --- client tuning ---------------------------------------------------------------------------

def _drop_small_expect(model=None, params=None, **_kwargs):
    if model is None or model.name != "PutObject" or "Expect" not in params.get("headers", {}):
        return
    from botocore.utils import determine_content_length  # a botocore client is calling

    size = determine_content_length(params.get("body"))
    if size is not None and size < EXPECT_CONTINUE_SIZE:
        del params["headers"]["Expect"]


def expect_continue_only_for_large_puts(client):
    """botocore sends every PutObject body with ``Expect: 100-continue``, a round trip to the server
    before the body; keep it only for bodies of at least ``EXPECT_CONTINUE_SIZE`` bytes."""
    client.meta.events.register_last("before-call.s3", _drop_small_expect)


def transfer_config(params, boto3_client=False):
    """Multipart settings: boto3's TransferConfig for a boto3 client's ``*_fileobj`` methods, else
    s3transfer's (imported only when an object is large enough for multipart)."""
    size = dict(multipart_threshold=params.get("multipart_threshold", 8 * 1024 * 1024),
                multipart_chunksize=params.get("multipart_chunksize", 8 * 1024 * 1024))
    if boto3_client:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(max_concurrency=2, use_threads=True, **size)
    from s3transfer.manager import TransferConfig

    return TransferConfig(max_request_concurrency=2, **size)


def has_fileobj_methods(client):
    """Whether the client is a boto3 one, with boto3's ``upload_fileobj``/``download_fileobj``."""
    return getattr(client, "download_fileobj", None) is not None


def multipart_transfer(client, config, method, bucket, key, handle, extra_args=None):
    """``upload_fileobj``/``download_fileobj``: boto3's on a boto3 client, else s3transfer's manager
    (what boto3's methods run) on a plain botocore client."""
    if has_fileobj_methods(client):
        bound = getattr(client, method + "_fileobj")
        extra = {"ExtraArgs": extra_args} if extra_args else {}
        return bound(Bucket=bucket, Key=key, Fileobj=handle, Config=config, **extra)
    from s3transfer.manager import TransferManager

    with TransferManager(client, config) as manager:
        if method == "upload":
            manager.upload(handle, bucket, key, extra_args=extra_args).result()
        else:
            manager.download(bucket, key, handle, extra_args=extra_args).result()
    return None


# --- several syncs in one run -------------------------------------------------------------------

# The options of one sync; the others (bucket, client, workers, multipart sizes, report_items) are shared.
SYNC_OPTIONS = ("name", "direction", "prefix", "local_dir", "create", "filters", "immutable", "missing_only",
                "publisher", "registry", "delete", "max_deletes")


class SyncsFailure(ModuleFailure):
    """A failure of one sync of :func:`run_syncs`: its message names the sync; ``results`` holds the syncs
    applied before it (empty when it failed while planning: nothing changed)."""

    def __init__(self, message, results):
        super().__init__(message)
        self.results = results


def sync_label(params):
    """How a sync is named in a failure: its ``name``, else ``direction prefix``."""
    return params.get("name") or f"{params['direction']} {normalize_prefix(params.get('prefix', '')) or '/'}"


def run_syncs(client, shared, syncs, check_mode, transfer_config=None, explain=None):
    """Run several syncs on one client and one thread pool: every sync is planned first (its listing,
    walk and every refusal: max_deletes, immutable keys, the registry, claims), then they are applied in
    order, so a refusal of any sync comes before anything of any sync changed. Returns the results, in
    order; raises :class:`SyncsFailure` naming the sync that failed. ``explain(exc)`` turns a client
    error into a ModuleFailure (or None: the error is raised as it is)."""

    def failure(params, exc, results):
        reason = exc if isinstance(exc, ModuleFailure) else (explain(exc) if explain else None)
        if reason is None:
            return exc
        return SyncsFailure(f"sync {sync_label(params)}: {reason}", results)

    runs = []
    for params in syncs:
        try:
            runs.append(Sync(client, {**shared, **params}, transfer_config))
        except ModuleFailure as exc:
            raise failure(params, exc, []) from None
    results = []
    with ThreadPoolExecutor(max_workers=shared.get("workers", 16)) as pool:
        plans = []
        for run in runs:
            try:
                plans.append(run.plan(pool, check_mode))
            except Exception as exc:  # noqa: BLE001 - re-raised, named after its sync when it is known
                raise failure(run.p, exc, []) from None
        for run, plan in zip(runs, plans):
            try:
                result = run.apply(pool, plan, check_mode)
            except Exception as exc:  # noqa: BLE001 - as above
                raise failure(run.p, exc, results) from None
            results.append(dict(result, name=run.p.get("name") or ""))
    return results


# --- executor ---------------------------------------------------------------------------------

class Sync:
    """One push or pull, against an already built client."""

    def __init__(self, client, params, transfer_config=None):
        self.client = client
        self.p = params
        self._config = transfer_config
        self.threshold = params.get("multipart_threshold", 8 * 1024 * 1024)
        self.bucket = params["bucket"]
        self.prefix = normalize_prefix(params.get("prefix", ""))
        self.root = os.path.abspath(params["local_dir"])
        self.rules = compile_rules(params.get("filters"))
        self.immutable = compile_rules(params.get("immutable"), "immutable")
        self.registry = (params.get("registry") or "").strip("/")
        if self.registry and (unsafe_reason(self.registry) or internal_name(self.registry)):
            raise ModuleFailure(f"registry {self.registry!r} must be a file's path relative to local_dir"
                                " (no '.', '..' or empty components)")
        self.publisher = (params.get("publisher") or "").strip()
        if self.registry and not self.publisher:
            raise ModuleFailure("registry is set but publisher is empty: set publisher to the inventory name of"
                                " the publishing host (the roles pass inventory_hostname)")
        self.registry_entries = []
        self.registry_record = None
        self.claims = None
        self.target = target_id(self.bucket, self.prefix, params.get("endpoint_url"))
        self.lock = threading.Lock()
        self.transferred = 0
        self._hashes = {}

    @property
    def config(self):
        if self._config is None:
            self._config = transfer_config(self.p, has_fileobj_methods(self.client))
        return self._config

    def path(self, rel):
        return os.path.join(self.root, *rel.split("/"))

    def url(self, rel):
        return f"s3://{self.bucket}/{self.prefix}{rel}"

    def hasher(self, rel):
        if rel not in self._hashes:
            self._hashes[rel] = file_hashes(self.path(rel))
        return self._hashes[rel]

    def head_sha(self, rel):
        head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + rel)
        return stored_sha(head)

    def run(self, check_mode):
        """Plan this sync (every refusal), then apply it."""
        with ThreadPoolExecutor(max_workers=self.p.get("workers", 16)) as pool:
            return self.apply(pool, self.plan(pool, check_mode), check_mode)

    def plan(self, pool, check_mode):
        """Everything before the first change: list, walk, plan, and every refusal (max_deletes,
        immutable keys, the registry, another host's claim; claims are only read here). Changes nothing,
        in check mode or not; :meth:`apply` carries the plan out."""
        started = time.monotonic()
        direction = self.p["direction"]
        # A dir to create (made by apply; in check mode: would be) has nothing to push.
        created = bool(self.p.get("create")) and not os.path.lexists(self.root)
        if created and check_mode and direction == "push":
            return {"items": [], "created": True, "seconds": time.monotonic() - started, "noop": True}
        if direction == "push" and not created and not os.path.isdir(self.root):
            raise ModuleFailure(f"local_dir {self.root} does not exist or is not a directory; nothing to push")
        if direction == "pull" and os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ModuleFailure(f"local_dir {self.root} exists and is not a directory")
        remote = list_remote(self.client, self.bucket, self.prefix, pool)
        if os.path.isdir(self.root):
            local, stale = walk_local(self.root)
        else:
            local, stale = {}, []
        state, records = load_state(self.root, self.target)
        if direction == "push":
            # The registry is merged into the bucket's, never uploaded or deleted as a file.
            files = {rel: v for rel, v in local.items() if rel != self.registry}
            objects = {rel: v for rel, v in remote.items() if rel != self.registry}
            items, refreshed = plan_push(files, objects, records, self.rules, self.p.get("delete", False),
                                         self.hasher, self.head_sha)
            where = "remote"
        else:
            items, refreshed = plan_pull(remote, local, records, self.rules, self.p.get("delete", False),
                                         self.hasher)
            if self.p.get("missing_only"):
                # Fetch what this host lacks; a local file that differs is the host's own, never replaced.
                items = [entry for entry in items if entry["action"] == "copy"]
            where = "local"
        if direction == "push":
            items = self.check_push(items, local, remote, records, refreshed)
        deletes = check_cap(items, self.p.get("max_deletes", 0), where)
        if deletes and not self.p.get("delete", False):
            raise ModuleFailure("internal error: deletes planned without delete=true")
        return {"items": items, "created": created, "remote": remote, "local": local, "stale": stale,
                "state": state, "records": records, "refreshed": refreshed,
                "seconds": time.monotonic() - started, "noop": False}

    def apply(self, pool, plan, check_mode):
        """Carry out a :meth:`plan` (nothing in check mode) and return the sync's result."""
        started = time.monotonic()
        direction = self.p["direction"]
        items, created = plan["items"], plan["created"]
        removed = 0
        if not check_mode and not plan["noop"]:
            if created:
                os.makedirs(self.root, 0o755, exist_ok=True)
            local, remote, state, records = plan["local"], plan["remote"], plan["state"], plan["records"]
            for path in plan["stale"]:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
            records.update(plan["refreshed"])
            # Each version this push publishes is claimed before any of its files goes up.
            if self.claims:
                self.claim_versions(*self.claims, check_mode=False)
            # The registry goes up after the files it names, and only when they all went up.
            merge = [e for e in items if direction == "push" and e["path"] == self.registry]
            self.execute(pool, [e for e in items if e not in merge], local, remote, state, records)
            if merge:
                records[self.registry] = self.publish_registry(local, records)
            elif self.registry_record:
                records[self.registry] = self.registry_record
            records = {rel: rec for rel, rec in records.items()
                       if rel in remote or os.path.isfile(self.path(rel))}
            if direction == "pull":
                os.makedirs(self.root, exist_ok=True)
            # state still holds the records as loaded (records is a copy, its values are replaced).
            if items or plan["refreshed"] or removed or records != state.get("targets", {}).get(self.target, {}):
                save_state(self.root, state, self.target, records)
        result = summarize(items, self.p.get("report_items", 20))
        stale = len(plan.get("stale", ()))
        result.update(direction=direction, bucket=self.bucket, prefix=self.prefix, local_dir=self.root,
                      changed=bool(items) or created, created_local_dir=created,
                      stale_temp_files=stale if check_mode else removed,
                      bytes_transferred=0 if check_mode else self.transferred,
                      seconds=round(plan["seconds"] + time.monotonic() - started, 3), plan=items)
        return result

    # --- refusals of a push, before any transfer (check mode too) ----------------------------------

    def check_push(self, items, local, remote, records, refreshed):
        """The plan, minus immutable keys proven to hold the local content already; ModuleFailure
        when it rewrites an immutable key, or when the registry rewrites a published version or
        names a file that is not the registered one."""
        same = self.same_content(immutable_violations(items, self.immutable), local)
        refreshed.update(same)
        items = [entry for entry in items if entry["path"] not in same]
        rewrites = immutable_violations(items, self.immutable)
        if rewrites and self.registry:
            # A rewrite of another builder's version: say whose (read-only: nothing is claimed).
            self.check_registry(items, local, remote, {**records, **refreshed})
        if rewrites:
            first = rewrites[0]["path"]
            keys = [f"{self.url(e['path'])} ({e['action']}: {e['reason']})" for e in rewrites]
            raise ModuleFailure(
                f"refusing to push to s3://{self.bucket}/{self.prefix}: {len(rewrites)} immutable key(s) would be"
                f" overwritten with other content or deleted: {name_some(keys)}. Fix: a model version is immutable:"
                " register the retrained model as a new version (new model_id and model_path) instead of"
                f" overwriting {self.path(first)}; to discard a local change restore the file from S3"
                f" (aws s3 cp {self.url(first)} {self.path(first)})")
        if self.registry:
            planned = self.check_registry(items, local, remote, {**records, **refreshed})
            if planned:
                items.append(planned)
        return items

    def same_content(self, rewrites, local):
        """Records of the planned updates whose object holds the local content after all: objects
        with a multipart ETag and no crpbot-sha256 (uploaded by another tool), hashed from S3."""
        found = {}
        for entry in rewrites:
            rel = entry["path"]
            if entry["action"] != "update" or entry["reason"] != "content differs":
                continue
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + rel)
            etag = strip_etag(head.get("ETag"))
            if simple_md5_etag(etag) or stored_sha(head):
                continue  # the plan compared the MD5 or the stored SHA-256: the content differs
            sha = hashlib.sha256()
            for block in self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel,
                                                IfMatch=f'"{etag}"')["Body"].iter_chunks(1024 * 1024):
                sha.update(block)
            if sha.hexdigest() == self.hasher(rel)[0]:
                size, mtime_ns = local[rel]
                found[rel] = {"size": size, "mtime_ns": mtime_ns, "etag": etag, "sha256": sha.hexdigest()}
        return found

    def local_sha(self, rel, local, records):
        rec = records.get(rel)
        size, mtime_ns = local[rel]
        if rec and rec.get("sha256") and rec.get("size") == size and rec.get("mtime_ns") == mtime_ns:
            return rec["sha256"]
        return self.hasher(rel)[0]

    def read_registry(self, rel, local, remote):
        """``(local entries or None, published entries or None)``; ModuleFailure when one does not parse."""
        entries = published = None
        if rel in local:
            with open(self.path(rel), "rb") as handle:
                text = handle.read()
            try:
                entries = parse_registry(text, self.path(rel))
            except ModelError as exc:
                raise ModuleFailure(f"refusing to push to s3://{self.bucket}/{self.prefix}: {exc}") from None
        if rel in remote:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"].read()
            published = self.parse_published(body, rel)
        return entries, published

    def parse_published(self, body, rel):
        """The entries of the bucket's registry at ``rel``; a registry that does not parse refuses the push."""
        try:
            return parse_registry(body, f"the published registry {self.url(rel)}")
        except ModelError as exc:
            reason = str(exc).rpartition(" Fix: ")[0] or str(exc)
            raise ModuleFailure(
                f"refusing to push to s3://{self.bucket}/{self.prefix}: {reason}. Fix: restore the last good"
                f" version of {self.url(rel)} in the bucket (S3 object versions or a backup), then push"
                " again; the push will not replace a registry whose published versions it cannot read") from None

    def check_registry(self, items, local, remote, records):
        """Plan the registry's publication (a merge into the bucket's, see the module doc): refuse a
        registry naming files that are not the registered ones, or rewriting a published version, or a version
        another host claimed (claims are only read here: :meth:`apply` claims them, outside check mode, before
        any file goes up). Returns the plan item of the registry, or None when the bucket's already holds every
        local entry as it is."""
        rel = self.registry
        if rel not in local:
            return None
        entries, _none = self.read_registry(rel, local, {})
        problems = registry_file_problems(entries or [], local, remote,
                                          lambda path: self.local_sha(path, local, records))
        if problems:
            raise ModuleFailure(
                f"refusing to push to s3://{self.bucket}/{self.prefix}: the registry {self.path(rel)} names model"
                f" files that are not the registered ones: {name_some(problems)}. Fix: restore a changed file of a"
                " published version from S3 (a model version is immutable), register a retrained model as a new"
                " version (new model_id and model_path) with the file's SHA-256 as file_hash, or remove the entry"
                " of a model that is on no host and not in S3")
        size, mtime_ns = local[rel]
        obj, rec = remote.get(rel), records.get(rel)
        if obj and rec and rec.get("size") == size and rec.get("mtime_ns") == mtime_ns \
                and rec.get("etag") == strip_etag(obj["etag"]):
            return None  # merged into this very object already, and the local registry has not changed since
        published, etag = self.published_registry()
        merged, conflicts = merge_registry(published or [], entries, self.publisher)
        # Another host's version first (named with both hosts), read-only; then this host's own rewrites;
        # only then are the new versions claimed.
        self.claim_versions(entries, published or [], check_mode=True)
        self.refuse_conflicts(conflicts)
        # Claimed for real by apply (outside check mode), before any file goes up.
        self.claims = (entries, published or [])
        self.registry_entries = entries
        if published is not None and merged == published:
            self.registry_record = {"size": size, "mtime_ns": mtime_ns, "etag": etag,
                                    "sha256": self.local_sha(rel, local, records)}
            return None
        new = [entry["model_id"] for entry in merged[len(published or []):]]
        reason = f"merge: new versions {', '.join(new)}" if new else "merge: promotion marks"
        return item("update" if published is not None else "copy", rel, size, reason)

    def refuse_conflicts(self, conflicts):
        if conflicts:
            rel = self.registry
            raise ModuleFailure(
                f"refusing to push {self.path(rel)} from host {self.publisher} into {self.url(rel)}:"
                f" {name_some(conflicts)}. Fix: a model version is immutable: register the retrained model as a"
                " new version (new model_id and model_path) and keep every published entry as it is (only"
                f" promoted and deployed_at may change); to discard a local change restore the entry from"
                f" {self.url(rel)}")

    def published_registry(self):
        """``(entries or None, ETag or None)`` of the bucket's registry, read once."""
        key = self.prefix + self.registry
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # botocore's NoSuchKey: no registry published yet
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        entries = self.parse_published(response["Body"].read(), self.registry)
        return entries, strip_etag(response.get("ETag"))

    def claim_versions(self, entries, published, check_mode):
        """Claim each local version the bucket's registry does not credit to this host yet: a put of its
        claim object with IfNoneMatch='*' (S3 lets one writer through). A claim held by another host, or
        a registry entry it published, refuses the push naming both hosts; in check mode the claims are
        only read."""
        credited = {entry["model_id"]: entry.get(PUBLISHED_BY) for entry in published}
        taken = []
        for entry in entries:
            owner = credited.get(entry["model_id"])
            if owner == self.publisher:
                continue
            if owner:
                taken.append((entry, owner))
                continue
            key = claim_key(self.prefix, entry["model_id"])
            claim = None
            if check_mode:
                claim = self.read_claim(key)
            else:
                try:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=claim_body(entry, self.publisher),
                                           IfNoneMatch="*", ContentType="application/json")
                except Exception as exc:
                    if not condition_lost(exc):
                        raise
                    claim = self.read_claim(key)
            if claim is None:
                continue
            if claim.get("host") != self.publisher:
                taken.append((entry, claim.get("host") or "an unknown host"))
            elif claim.get("file_hash") != entry["file_hash"] or claim.get("model_path") != entry["model_path"]:
                taken.append((entry, f"{self.publisher} itself, with other content"))
        if taken:
            lines = [f"model {entry['model_id']} ({entry['model_path']}) is already published by {owner}"
                     for entry, owner in taken]
            first = taken[0][0]
            raise ModuleFailure(
                f"refusing to push from host {self.publisher} to s3://{self.bucket}/{self.prefix}: {name_some(lines)};"
                f" host {self.publisher} may not publish the same model version. Nothing was uploaded. Fix: a model"
                " version is published by one builder only: register this host's model as a new version (e.g."
                f" a new version name than {first['version']}, so a new model_id and model_path), or remove the"
                f" entry from {self.path(self.registry)} and the file {first['model_path']} on {self.publisher}")

    def read_claim(self, key):
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        try:
            claim = json.loads(body)
        except ValueError:
            claim = None
        return claim if isinstance(claim, dict) else {"host": None}

    def publish_registry(self, local, records):
        """Merge this host's entries into the bucket's registry and write it conditionally, again from a
        fresh read when another builder wrote in between. Returns the registry's new state record."""
        rel = self.registry
        key = self.prefix + rel
        size, mtime_ns = local[rel]
        for _round in range(REGISTRY_ROUNDS):
            published, etag = self.published_registry()
            merged, conflicts = merge_registry(published or [], self.registry_entries, self.publisher)
            self.refuse_conflicts(conflicts)
            if published is not None and merged == published:
                new_etag = etag
            else:
                data = (json.dumps({"models": merged}, indent=2) + "\n").encode()
                condition = {"IfMatch": f'"{etag}"'} if etag else {"IfNoneMatch": "*"}
                try:
                    response = self.client.put_object(
                        Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                        Metadata={SHA_META: hashlib.sha256(data).hexdigest()},
                        ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324
                        **condition)
                except Exception as exc:
                    if condition_lost(exc):
                        continue  # another builder wrote the registry since it was read: merge again
                    raise
                new_etag = strip_etag(response.get("ETag"))
                with self.lock:
                    self.transferred += len(data)
            return {"size": size, "mtime_ns": mtime_ns, "etag": new_etag,
                    "sha256": self.local_sha(rel, local, records)}
        raise ModuleFailure(f"{self.url(rel)}: other builders wrote the registry {REGISTRY_ROUNDS} times while this"
                            f" push from {self.publisher} merged into it; run the push again")

    def execute(self, pool, items, local, remote, state, records):
        direction = self.p["direction"]
        if direction == "pull":
            os.makedirs(self.root, exist_ok=True)
        work = (e["path"] for e in items if e["action"] != "delete")
        # A window of pending transfers, collected in order: memory stays bounded by the window
        # (not one future per file of the plan) while the pool always has work queued.
        window = max(1, self.p.get("workers", 16)) * PENDING_PER_WORKER
        pending = deque()
        last_save = time.monotonic()
        errors = []
        while True:
            for rel in work:
                pending.append((rel, self.submit(pool, rel, remote)))
                if len(pending) >= window:
                    break
            if not pending:
                break
            rel, future = pending.popleft()
            try:
                records[rel] = future.result()
            except ModuleFailure as exc:
                errors.append(str(exc))
            except Exception as exc:  # a botocore/OS error on one file; the others go on
                errors.append(f"{rel}: {exc}")
            if not errors and time.monotonic() - last_save > STATE_SAVE_INTERVAL:
                save_state(self.root, state, self.target, records)
                last_save = time.monotonic()
        if errors:
            save_state(self.root, state, self.target, records)
            raise ModuleFailure(f"{len(errors)} transfer(s) failed; first: {errors[0]}")
        deletes = [e["path"] for e in items if e["action"] == "delete"]
        if direction == "push":
            for start in range(0, len(deletes), 1000):
                batch = deletes[start:start + 1000]
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + rel} for rel in batch], "Quiet": True})
                if response.get("Errors"):
                    raise ModuleFailure(f"deleting {response['Errors'][0].get('Key')} failed:"
                                        f" {response['Errors'][0].get('Message')}")
        else:
            for rel in deletes:
                os.unlink(self.path(rel))
        for rel in deletes:
            records.pop(rel, None)

    def submit(self, pool, rel, remote):
        if self.p["direction"] == "push":
            return pool.submit(self.upload, rel)
        return pool.submit(self.download, rel, remote[rel])

    def upload(self, rel):
        path = self.path(rel)
        key = self.prefix + rel
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_size < self.threshold:
                etag, sha = self._put(rel, key, handle, st.st_size)
            else:
                sha, _md5 = file_hashes(path)
                multipart_transfer(self.client, self.config, "upload", self.bucket, key, handle,
                                   {"Metadata": {SHA_META: sha}})
                head = self.client.head_object(Bucket=self.bucket, Key=key)
                etag = strip_etag(head.get("ETag"))
                if head.get("ContentLength") != st.st_size:
                    raise ModuleFailure(f"{rel}: size in the bucket differs from the uploaded file")
        with self.lock:
            self.transferred += st.st_size
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "etag": etag, "sha256": sha}

    def _put(self, rel, key, handle, size):
        """One put_object with Content-MD5 (the server refuses a body damaged on the way).

        A small file is read into memory once; a bigger one is hashed from disk and sent from the
        open file, so the workers never hold more than a small file each. Returns ``(etag, sha256)``.
        """
        if size < STREAM_PUT_SIZE:
            body = handle.read()
            sha = hashlib.sha256(body).hexdigest()
            md5 = hashlib.md5(body)  # noqa: S324 - the single-part ETag
        else:
            sha, md5 = _stream_hashes(handle)
            handle.seek(0)
            body = handle
        response = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata={SHA_META: sha},
                                          ContentMD5=base64.b64encode(md5.digest()).decode("ascii"))
        etag = strip_etag(response.get("ETag"))
        if simple_md5_etag(etag) and etag != md5.hexdigest():
            raise ModuleFailure(f"{rel}: the bucket's ETag does not match the uploaded content")
        return etag, sha

    def download(self, rel, obj):
        final = self.path(rel)
        directory = os.path.dirname(final)
        os.makedirs(directory, exist_ok=True)
        if os.path.isdir(final):
            raise ModuleFailure(f"{rel}: a directory is in the way of the file")
        key = self.prefix + rel
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                if obj["size"] < self.threshold:
                    response = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch='"%s"' % obj["etag"])
                    meta_sha = stored_sha(response)
                    sha = hashlib.sha256()
                    md5 = hashlib.md5()  # noqa: S324 - compared with the ETag
                    for block in response["Body"].iter_chunks(1024 * 1024):
                        handle.write(block)
                        sha.update(block)
                        md5.update(block)
                    sha, md5 = sha.hexdigest(), md5.hexdigest()
                else:
                    head = self.client.head_object(Bucket=self.bucket, Key=key)
                    if strip_etag(head.get("ETag")) != obj["etag"]:
                        raise ModuleFailure(f"{rel}: the object changed during the pull; run it again")
                    meta_sha = stored_sha(head)
                    multipart_transfer(self.client, self.config, "download", self.bucket, key, handle)
                    handle.flush()
                    sha = md5 = None
                # No fsync: the rename is atomic against a killed run; after a power loss a short
                # file has another size than its record and is fetched again.
            if sha is None:
                sha, md5 = file_hashes(tmp)
            size = os.path.getsize(tmp)
            if size != obj["size"]:
                raise ModuleFailure(f"{rel}: downloaded {size} bytes, the listing said {obj['size']}")
            if meta_sha and meta_sha != sha:
                raise ModuleFailure(f"{rel}: SHA-256 of the download differs from the object's {SHA_META}")
            if simple_md5_etag(obj["etag"]) and md5 != obj["etag"]:
                raise ModuleFailure(f"{rel}: MD5 of the download differs from the object's ETag")
            mtime = to_epoch(obj["mtime"])
            os.utime(tmp, (mtime, mtime))
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        st = os.stat(final)
        with self.lock:
            self.transferred += size
        return {"size": size, "mtime_ns": st.st_mtime_ns, "etag": obj["etag"], "sha256": sha}


def _stream_hashes(handle, chunk=256 * 1024):
    """``(sha256 hexdigest, md5 hash object)`` of an open file read from its current position."""
    sha = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 - the S3 ETag of a single-part object is its MD5
    for block in iter(lambda: handle.read(chunk), b""):
        sha.update(block)
        md5.update(block)
    return sha.hexdigest(), md5


_UMASK = None


def _umask():
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK

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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

STATE_NAME = ".crpbot-s3-state.json"
TMP_PREFIX = ".crpbot-s3-tmp-"
SHA_META = "crpbot-sha256"
STATE_SAVE_INTERVAL = 2.0

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


def compile_rules(rules):
    """Ordered rules from ``[{'include': glob} | {'exclude': glob} | '+ glob' | '- glob', ...]``.

    Returns a list of ``(include: bool, anchored: bool, regex, glob)``.
    """
    compiled = []
    for index, rule in enumerate(rules or []):
        if isinstance(rule, str) and rule[:2] in ("+ ", "- "):
            rule = {"include" if rule[0] == "+" else "exclude": rule[2:].strip()}
        if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in ("include", "exclude"):
            raise ModuleFailure(f"filters[{index}] must be a dict with exactly one key, include or exclude, or a string '+ GLOB' / '- GLOB'")
        kind, glob = next(iter(rule.items()))
        if not isinstance(glob, str) or not glob.strip("/"):
            raise ModuleFailure(f"filters[{index}].{kind} must be a non-empty glob string")
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
    return name == STATE_NAME or name.startswith(TMP_PREFIX)


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
    for obj in page.get("Contents", []):
        key = obj["Key"]
        if not key.startswith(prefix) or key.endswith("/"):
            continue
        remote[key[len(prefix):]] = {
            "size": obj["Size"],
            "etag": strip_etag(obj.get("ETag")),
            "mtime": obj["LastModified"].timestamp(),
        }


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


# --- executor ---------------------------------------------------------------------------------

class Sync:
    """One push or pull, against an already built client."""

    def __init__(self, client, params, transfer_config=None):
        self.client = client
        self.p = params
        self.config = transfer_config
        self.threshold = params.get("multipart_threshold", 8 * 1024 * 1024)
        self.bucket = params["bucket"]
        self.prefix = normalize_prefix(params.get("prefix", ""))
        self.root = os.path.abspath(params["local_dir"])
        self.rules = compile_rules(params.get("filters"))
        self.target = target_id(self.bucket, self.prefix, params.get("endpoint_url"))
        self.lock = threading.Lock()
        self.transferred = 0

    def path(self, rel):
        return os.path.join(self.root, *rel.split("/"))

    def hasher(self, rel):
        return file_hashes(self.path(rel))

    def head_sha(self, rel):
        head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + rel)
        return head.get("Metadata", {}).get(SHA_META)

    def hash_many(self, pool, rels):
        return dict(zip(rels, pool.map(self.hasher, rels)))

    def run(self, check_mode):
        started = time.monotonic()
        direction = self.p["direction"]
        if direction == "push" and not os.path.isdir(self.root):
            raise ModuleFailure(f"local_dir {self.root} does not exist or is not a directory; nothing to push")
        if direction == "pull" and os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ModuleFailure(f"local_dir {self.root} exists and is not a directory")
        with ThreadPoolExecutor(max_workers=self.p.get("workers", 16)) as pool:
            remote = list_remote(self.client, self.bucket, self.prefix, pool)
            if os.path.isdir(self.root):
                local, stale = walk_local(self.root)
            else:
                local, stale = {}, []
            state, records = load_state(self.root, self.target)
            if direction == "push":
                items, refreshed = plan_push(local, remote, records, self.rules, self.p.get("delete", False),
                                             self.hasher, self.head_sha)
                where = "remote"
            else:
                items, refreshed = plan_pull(remote, local, records, self.rules, self.p.get("delete", False),
                                             self.hasher)
                where = "local"
            deletes = check_cap(items, self.p.get("max_deletes", 0), where)
            if deletes and not self.p.get("delete", False):
                raise ModuleFailure("internal error: deletes planned without delete=true")
            removed = 0
            if not check_mode:
                for path in stale:
                    try:
                        os.unlink(path)
                        removed += 1
                    except FileNotFoundError:
                        pass
                records.update(refreshed)
                self.execute(pool, items, local, remote, state, records)
                records = {rel: rec for rel, rec in records.items()
                           if rel in remote or os.path.isfile(self.path(rel))}
                if direction == "pull":
                    os.makedirs(self.root, exist_ok=True)
                if items or refreshed or removed or records != load_state(self.root, self.target)[1]:
                    save_state(self.root, state, self.target, records)
        result = summarize(items, self.p.get("report_items", 20))
        result.update(direction=direction, bucket=self.bucket, prefix=self.prefix, local_dir=self.root,
                      changed=bool(items), stale_temp_files=len(stale) if check_mode else removed,
                      bytes_transferred=0 if check_mode else self.transferred,
                      seconds=round(time.monotonic() - started, 3), plan=items)
        return result

    def execute(self, pool, items, local, remote, state, records):
        direction = self.p["direction"]
        if direction == "pull":
            os.makedirs(self.root, exist_ok=True)
        work = [e for e in items if e["action"] != "delete"]
        if direction == "push":
            futures = [(e, pool.submit(self.upload, e["path"])) for e in work]
        else:
            futures = [(e, pool.submit(self.download, e["path"], remote[e["path"]])) for e in work]
        last_save = time.monotonic()
        errors = []
        for entry, future in futures:
            try:
                records[entry["path"]] = future.result()
            except ModuleFailure as exc:
                errors.append(str(exc))
            except Exception as exc:  # a botocore/OS error on one file; the others go on
                errors.append(f"{entry['path']}: {exc}")
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

    def upload(self, rel):
        path = self.path(rel)
        key = self.prefix + rel
        st = os.stat(path)
        if st.st_size < self.threshold:
            with open(path, "rb") as handle:
                body = handle.read()
            sha = hashlib.sha256(body).hexdigest()
            md5 = hashlib.md5(body).hexdigest()  # noqa: S324 - compared with the ETag
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata={SHA_META: sha})
            etag = strip_etag(response.get("ETag"))
            if simple_md5_etag(etag) and etag != md5:
                raise ModuleFailure(f"{rel}: the bucket's ETag does not match the uploaded content")
        else:
            sha, _md5 = file_hashes(path)
            with open(path, "rb") as handle:
                self.client.upload_fileobj(handle, self.bucket, key, ExtraArgs={"Metadata": {SHA_META: sha}},
                                           Config=self.config)
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            etag = strip_etag(head.get("ETag"))
            if head.get("ContentLength") != st.st_size:
                raise ModuleFailure(f"{rel}: size in the bucket differs from the uploaded file")
        with self.lock:
            self.transferred += st.st_size
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "etag": etag, "sha256": sha}

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
                    meta_sha = response.get("Metadata", {}).get(SHA_META)
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
                    meta_sha = head.get("Metadata", {}).get(SHA_META)
                    self.client.download_fileobj(self.bucket, key, handle, Config=self.config)
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
            os.utime(tmp, (obj["mtime"], obj["mtime"]))
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


_UMASK = None


def _umask():
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return _UMASK

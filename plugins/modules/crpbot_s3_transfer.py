#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_s3_transfer
short_description: Push local dirs to S3 prefixes or pull prefixes into local dirs, exactly and safely
description:
  - >-
    One-way sync between O(local_dir) and C(s3://<bucket>/<prefix>/), in the O(direction) given,
    on boto3 on the target host (run it with an interpreter that has boto3, e.g. the project's venv).
  - >-
    B(Several syncs in one run.) O(syncs) lists syncs, each with the options of one sync (O(syncs[].direction),
    O(syncs[].local_dir), ...), run with one client on the bucket in one module run (one round trip to the
    host). Every sync is planned first, with every refusal below (max_deletes, immutable keys, the registry,
    another host's claim), and only then are they carried out in their order: a refusal of any sync comes
    before anything of any sync changed. A failure names the sync (O(syncs[].name), else its direction and
    prefix) and returns RV(syncs) of those already carried out. The result holds one entry per sync in
    RV(syncs); the diff one per sync.
  - >-
    B(The interpreter.) An action plugin of the same name runs the module; when the host lacks the
    interpreter it is run with (C(ansible_python_interpreter), the project's venv python), it fails naming
    the host and that path (C(Apply the crpbot_uv role first)) instead of Ansible's generic error, and in
    check mode it skips (a venv C(--check) has not built yet has nothing to plan with). No request is made
    for this while the interpreter exists.
  - >-
    B(Prefixes are slash-bounded.) O(prefix=models) means C(models/); C(models-old/) is never listed,
    copied or deleted.
  - >-
    B(Filters.) O(filters) is an ordered list of C({include: GLOB}) / C({exclude: GLOB}) rules applied
    to the path relative to the sync root, the same way to local files and to keys. The first rule that
    matches decides; a path no rule matches is selected when there is no include rule and left out
    otherwise. In a glob C(*) and C(?) do not cross C(/), C(**) does, C([...]) is a class. A glob
    without C(/) matches any single path component at any depth (so C(BTC-USD*) selects
    C(BTC-USD/x.parquet) and C(a/BTC-USD_1m.parquet)); a glob with C(/) is anchored at the sync root
    and matches the path or any of its leading directories (C(promoted/v1) selects everything below).
  - >-
    B(Change detection.) A state file C(<local_dir>/.crpbot-s3-state.json) records, per bucket and
    prefix, each file's local size and mtime and the object's ETag, size and SHA-256 after the last
    transfer. A no-op is one paginated listing plus one stat walk. A local file whose stat differs from
    the record is hashed; an object whose ETag differs from the record is fetched, even when its size and
    time look the same. Push stores the SHA-256 in the object metadata C(crpbot-sha256) (read back in
    any case: proxies and S3-compatible servers may change the case of header names).
  - >-
    B(Pull never writes to S3.) It only lists and gets. It fails before writing anything when a key
    the filters select is not a safe relative path (C(..), C(.), an empty component, absolute) or when
    two selected keys differ only by case. Extra local files are deleted only with
    O(delete=true) and at most O(max_deletes) of them, else the module fails before changing anything.
  - >-
    B(Puts are checked.) Each single-part put carries C(Content-MD5), so the server refuses a body
    damaged on the way, and the returned ETag is compared with the local MD5; multipart uploads are
    checked by size. Only bodies of at least 2 MiB wait for C(100 Continue) before they are sent.
  - >-
    B(Push deletes) keys under the prefix that have no local file only with O(delete=true), never keys
    the filters leave out, and fails when more than O(max_deletes) would go.
  - >-
    B(Immutable keys.) On a push, O(immutable) rules (same syntax and first-match semantics as
    O(filters)) select keys that are written once: when the plan would overwrite one with other content
    or delete it, the module fails before any transfer (in check mode too), naming every such key. A key
    that already holds the local content is no rewrite (an object with a multipart ETag and no
    C(crpbot-sha256), e.g. uploaded by another tool, is hashed from S3 to find out).
  - >-
    B(The model registry.) With O(registry) set, a push reads that file (relative to O(local_dir)) as the
    model registry (C(models/registry.json)) and fails before any transfer when it does not parse, when a
    registered model's file is in O(local_dir) with a SHA-256 other than its C(file_hash) or is neither in
    O(local_dir) nor in the bucket, or when it would change a published version (any field but
    C(promoted) and C(deployed_at)). The registry is never uploaded or deleted as a file: it is merged into
    the bucket's (the union of what every builder published; an entry published by another builder is
    kept even though this host's registry lacks it), after every other file went up, with a conditional
    put (C(If-Match) the ETag it read, C(If-None-Match) when there is none), merged again from a fresh read
    when another builder wrote in between. The bucket's entry records its publishing host as
    C(published_by).
  - >-
    B(One publisher per model version.) Before any file goes up, each version this push publishes is
    claimed with a put of C(<prefix>/.crpbot-versions/<model_id>.json) (its host, path and SHA-256) with
    C(If-None-Match: *): of two builders publishing the same version, even at the same moment, S3 lets one
    claim through and the other push fails naming both hosts, having uploaded nothing. A rerun by the
    publishing host finds its own claim. Claims are never pulled. In check mode claims are only read.
  - >-
    B(Atomic downloads.) Each object is written to a C(.crpbot-s3-tmp-*) file in its target dir, its
    size, MD5 (single-part ETag) and C(crpbot-sha256) are verified, its mtime set to the object's, and
    it is renamed over the final name. Temp files left by an interrupted run are removed and never
    pushed; the state file and temp files are never pushed or deleted.
version_added: "0.1.0"
author:
  - crpbot-ansible contributors
options:
  syncs:
    description:
      - >-
        Several syncs of O(bucket) in one run (see the description), each a dict of the options of one sync;
        O(bucket), the client options (O(profile), O(region), O(endpoint_url), O(path_style)), O(workers),
        the multipart sizes and O(report_items) are shared. Mutually exclusive with the options of a single
        sync (O(direction), O(local_dir), ...).
    type: list
    elements: dict
    suboptions:
      name:
        description: What the sync is called in a failure and in RV(syncs) (the role passes C(models) or C(data)).
        type: str
        default: ""
      direction:
        description: As O(direction).
        type: str
        required: true
        choices: [push, pull]
      prefix:
        description: As O(prefix).
        type: str
        default: ""
      local_dir:
        description: As O(local_dir).
        type: path
        required: true
      create:
        description: As O(create).
        type: bool
        default: false
      filters:
        description: As O(filters).
        type: list
        elements: raw
        default: []
      immutable:
        description: As O(immutable).
        type: list
        elements: raw
        default: []
      missing_only:
        description: As O(missing_only).
        type: bool
        default: false
      publisher:
        description: As O(publisher).
        type: str
        default: ""
      registry:
        description: As O(registry).
        type: str
        default: ""
      delete:
        description: As O(delete).
        type: bool
        default: false
      max_deletes:
        description: As O(max_deletes).
        type: int
        default: 0
  direction:
    description:
      - C(push) copies local to bucket, C(pull) bucket to local.
      - Required unless O(syncs) is given.
    type: str
    choices: [push, pull]
  bucket:
    description: Bucket name.
    type: str
    required: true
  prefix:
    description: Key prefix of the sync root, slash-bounded; empty means the whole bucket.
    type: str
    default: ""
  local_dir:
    description:
      - Local sync root. Must exist for a push (see O(create)); created for a pull.
      - Required with O(direction).
    type: path
  create:
    description:
      - Create O(local_dir) (mode C(0755)) when it does not exist, for a push as well as a pull; that alone makes
        the result changed. A push from a directory just made has nothing to send (in check mode, nothing is
        created and nothing is asked of S3 for it).
    type: bool
    default: false
  filters:
    description:
      - >-
        Ordered include/exclude glob rules (see the description), each C({include: GLOB}),
        C({exclude: GLOB}), or the short strings C(+ GLOB) / C(- GLOB).
    type: list
    elements: raw
    default: []
  immutable:
    description:
      - >-
        Push only. Ordered include/exclude glob rules, as O(filters), selecting the keys a push must
        never overwrite with other content or delete (e.g. C(["- registry.json"]): every model file is
        write-once, the registry is not). Empty: nothing is immutable. Ignored by a pull.
    type: list
    elements: raw
    default: []
  missing_only:
    description:
      - >-
        Pull only: fetch only the selected keys that have no local file; a local file whose content
        differs is left as it is (a builder fetching the approved versions another builder published
        keeps its own files).
    type: bool
    default: false
  publisher:
    description:
      - >-
        Push only, required with O(registry): the inventory name of the publishing host (the roles pass
        C(inventory_hostname)), recorded in each version's claim and registry entry and named in refusals.
    type: str
    default: ""
  registry:
    description:
      - >-
        Push only. Path of the model registry relative to O(local_dir) (C(registry.json) when
        O(local_dir) is the project's C(models/)); empty: no registry checks. See the description.
    type: str
    default: ""
  delete:
    description: Delete files (pull, local) or keys (push, under the prefix) that the other side lacks.
    type: bool
    default: false
  max_deletes:
    description: Fail when the plan deletes more than this many files or keys.
    type: int
    default: 0
  workers:
    description: Size of the transfer thread pool; the client's connection pool is sized to match.
    type: int
    default: 16
  multipart_threshold:
    description: Objects of at least this many bytes go through s3transfer's (boto3's) multipart transfer manager.
    type: int
    default: 8388608
  multipart_chunksize:
    description: Part size for multipart transfers.
    type: int
    default: 8388608
  profile:
    description: AWS profile from C(~/.aws); empty uses boto3's default chain.
    type: str
    default: ""
  region:
    description: AWS region; empty uses the profile's.
    type: str
    default: ""
  endpoint_url:
    description: Endpoint of an S3-compatible server; empty for AWS.
    type: str
    default: ""
  path_style:
    description: Use path-style addressing (needed by most S3-compatible servers).
    type: bool
    default: false
  report_items:
    description: How many planned items RV(items) returns (per sync).
    type: int
    default: 20
requirements:
  - boto3 on the target's Python interpreter (the module imports its botocore, and s3transfer only for multipart)
notes:
  - Supports check mode (the full plan, nothing written) and diff mode (one line per planned item; with
    O(syncs) one diff per sync).
  - C(changed) is true exactly when the plan is not empty (with O(syncs), when one of theirs is not).
"""

EXAMPLES = r"""
- name: Push the builder's models and raw data in one run
  crpbot_s3_transfer:
    bucket: crpbot-market-data-dev
    syncs:
      - name: models
        direction: push
        prefix: models
        local_dir: /root/crpbot/models
        filters: ["- promoted/**", "- .crpbot-promotion/**", "- unapproved/**"]
        immutable: ["- registry.json"]
        registry: registry.json
        publisher: "{{ inventory_hostname }}"
      - name: data
        direction: push
        prefix: data/raw
        local_dir: /root/crpbot/data/raw
        create: true
  vars:
    ansible_python_interpreter: /root/crpbot/.venv/bin/python

- name: Push the builder's models
  crpbot_s3_transfer:
    direction: push
    bucket: crpbot-market-data-dev
    prefix: models
    local_dir: /root/crpbot/models
  vars:
    ansible_python_interpreter: /root/crpbot/.venv/bin/python

- name: Push the builder's models as immutable versions, checking the registry
  crpbot_s3_transfer:
    direction: push
    bucket: crpbot-market-data-dev
    prefix: models
    local_dir: /root/crpbot/models
    filters: ["- promoted/**", "- .crpbot-promotion/**", "- unapproved/**"]
    immutable: ["- registry.json"]
    registry: registry.json
    publisher: "{{ inventory_hostname }}"
  vars:
    ansible_python_interpreter: /root/crpbot/.venv/bin/python

- name: Pull only BTC-USD data on QC
  crpbot_s3_transfer:
    direction: pull
    bucket: crpbot-market-data-dev
    prefix: data/raw
    local_dir: /home/numan/crpbot/data/raw
    filters:
      - include: "BTC-USD*"
"""

RETURN = r"""
syncs:
  description:
    - One result per entry of O(syncs), in order, each with the fields below (RV(counts), RV(items), ...) and
      C(name), C(direction), C(bucket), C(prefix), C(local_dir), C(changed).
    - On a failure, the results of the syncs carried out before it.
  returned: when O(syncs) is given
  type: list
  elements: dict
  sample: [{name: models, direction: push, changed: false, counts: {copy: 0, update: 0, delete: 0}}]
counts:
  description: Planned items by action.
  returned: without O(syncs)
  type: dict
  sample: {copy: 3, update: 1, delete: 0}
bytes_planned:
  description: Bytes of the planned copies and updates.
  returned: without O(syncs)
  type: int
bytes_transferred:
  description: Bytes actually transferred (0 in check mode).
  returned: without O(syncs)
  type: int
seconds:
  description: Wall time of the module's work (with O(syncs), of all of them; each entry has its own).
  returned: always
  type: float
items:
  description: The first O(report_items) planned items (action, path, bytes, reason).
  returned: without O(syncs)
  type: list
  elements: dict
created_local_dir:
  description: Whether O(local_dir) was (in check mode, would be) created, see O(create).
  returned: success, without O(syncs)
  type: bool
  sample: false
stale_temp_files:
  description: Temp files of an interrupted run that were removed (or would be, in check mode).
  returned: without O(syncs)
  type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.crpbot_s3 import (
    ModuleFailure, Sync, SyncsFailure, diff_text, expect_continue_only_for_large_puts, run_syncs,
)

# botocore alone: boto3's import (resources, docs, s3transfer) costs ~0.1 s more on every run, and
# s3transfer is imported by the executor only when an object is large enough for multipart.
try:
    import botocore.exceptions
    import botocore.session
    from botocore.config import Config
    HAS_BOTOCORE = True
except ImportError:
    HAS_BOTOCORE = False


def client_config(params):
    """Client options: a connection per worker and then some, standard retries, path-style for
    S3-compatible servers; no CRC checksum computed per request (integrity is checked with
    Content-MD5 on puts and with MD5/SHA-256 of every download, see module_utils/crpbot_s3)."""
    options = dict(
        max_pool_connections=params["workers"] * 2,
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path" if params["path_style"] else "auto"},
    )
    try:
        return Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      **options)
    except TypeError:  # botocore < 1.36 has neither option and computes no CRC anyway
        return Config(**options)


def make_client(params):
    session = botocore.session.Session(profile=params["profile"] or None)
    # Keep LastModified as the listed text: parsing 1,000 timestamps a page with dateutil is most of
    # the client's CPU in a listing; only downloaded objects need their time (crpbot_s3.to_epoch).
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    try:
        credentials = session.get_credentials()
        client = session.create_client("s3", region_name=params["region"] or None,
                                       endpoint_url=params["endpoint_url"] or None, config=client_config(params))
    except botocore.exceptions.ProfileNotFound:
        raise ModuleFailure(f"AWS profile {params['profile']} is not in ~/.aws/config or ~/.aws/credentials") from None
    if credentials is None:
        raise ModuleFailure(f"no AWS credentials found (profile {params['profile'] or 'default chain'});"
                            " write ~/.aws/credentials (role crpbot_credentials)")
    expect_continue_only_for_large_puts(client)
    return client


def explain(exc, bucket):
    """A botocore error as a ModuleFailure naming the bucket, or None for any other exception."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return ModuleFailure(f"bucket {bucket} does not exist")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ModuleFailure(f"S3 refused the credentials for bucket {bucket}: {code}")
        return ModuleFailure(f"S3 error on bucket {bucket}: {exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ModuleFailure("no AWS credentials found; write ~/.aws/credentials (role crpbot_credentials)")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return ModuleFailure(f"cannot reach the S3 endpoint: {exc}")
    return None


def run(client, params, check_mode):
    """One sync (the single-sync form), its botocore errors explained."""
    try:
        return Sync(client, params).run(check_mode)
    except ModuleFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a known botocore error
        reason = explain(exc, params["bucket"])
        if reason is None:
            raise
        raise reason from None


SYNC_SPEC = dict(
    prefix=dict(type="str", default=""),
    create=dict(type="bool", default=False),
    filters=dict(type="list", elements="raw", default=[]),
    immutable=dict(type="list", elements="raw", default=[]),
    registry=dict(type="str", default=""),
    publisher=dict(type="str", default=""),
    missing_only=dict(type="bool", default=False),
    delete=dict(type="bool", default=False),
    max_deletes=dict(type="int", default=0),
)
SHARED_SPEC = dict(
    bucket=dict(type="str", required=True),
    workers=dict(type="int", default=16),
    multipart_threshold=dict(type="int", default=8 * 1024 * 1024),
    multipart_chunksize=dict(type="int", default=8 * 1024 * 1024),
    profile=dict(type="str", default=""),
    region=dict(type="str", default=""),
    endpoint_url=dict(type="str", default=""),
    path_style=dict(type="bool", default=False),
    report_items=dict(type="int", default=20),
)


def argument_spec():
    syncs = dict(name=dict(type="str", default=""),
                 direction=dict(type="str", required=True, choices=["push", "pull"]),
                 local_dir=dict(type="path", required=True), **SYNC_SPEC)
    return dict(direction=dict(type="str", choices=["push", "pull"]), local_dir=dict(type="path"),
                syncs=dict(type="list", elements="dict", options=syncs), **SYNC_SPEC, **SHARED_SPEC)


def diff_of(result, plan):
    return {"before_header": f"s3://{result['bucket']}/{result['prefix']} <-> {result['local_dir']}",
            "before": "", "after": diff_text(plan)}


def main():
    single = ["direction", "local_dir", *SYNC_SPEC]
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[["direction", "syncs"]],
        mutually_exclusive=[["syncs", name] for name in single],
        required_together=[["direction", "local_dir"]],
        supports_check_mode=True,
    )
    if not HAS_BOTOCORE:
        module.fail_json(msg=missing_required_lib("boto3"))
    params = module.params
    try:
        if not params["bucket"].strip():
            raise ModuleFailure("bucket is empty; set the bucket name")
        if params["workers"] < 1:
            raise ModuleFailure("workers must be at least 1")
        client = make_client(params)
        if params["syncs"] is None:
            result = run(client, params, module.check_mode)
        else:
            shared = {name: params[name] for name in SHARED_SPEC}
            started = time.monotonic()
            results = run_syncs(client, shared, params["syncs"], module.check_mode,
                                explain=lambda exc: explain(exc, params["bucket"]))
    except SyncsFailure as exc:
        module.fail_json(msg=str(exc), bucket=params["bucket"], syncs=[{key: value for key, value in entry.items() if key != "plan"}
                                                                  for entry in exc.results])
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), bucket=params["bucket"], local_dir=params["local_dir"])
    if params["syncs"] is None:
        plan = result.pop("plan")
        if module._diff:
            result["diff"] = diff_of(result, plan)
        module.exit_json(**result)
    plans = [entry.pop("plan") for entry in results]
    outcome = {"changed": any(entry["changed"] for entry in results), "bucket": params["bucket"],
               "syncs": results, "seconds": round(time.monotonic() - started, 3)}
    if module._diff:
        outcome["diff"] = [diff_of(entry, plan) for entry, plan in zip(results, plans)]
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model registry, promotion gates and approval records (stdlib only; host and controller).

The bot registers every trained model in ``models/registry.json``::

    {"models": [{"model_id": "lstm_BTC-USD_v3", "version": "v3", "model_type": "lstm",
                 "symbol": "BTC-USD", "model_path": "models/lstm/BTC-USD/v3/model.pt",
                 "file_hash": "<sha256 hex>", "metrics": {"win_rate": 0.71, "calibration_error": 0.03},
                 "created_at": "2026-12-01T10:00:00Z", "promoted": false, "deployed_at": null}]}

``model_path`` is relative to the project dir and lies under ``models/`` (never under the
directories the promotion manages). A model version is immutable: every field but ``promoted`` and
``deployed_at`` is fixed once the entry is published.

Approvals live on the controller, in a JSON file of the project's inventory (``promotions.json``),
appended to only by ``playbooks/promote_model.yml`` run against a QC host. Each record holds the
model, the SHA-256 of every file, the metrics and gate results at approval, who approved and when, and
is chained: ``record_sha256`` is the SHA-256 of the record's canonical JSON including the previous
record's ``record_sha256`` (``previous_sha256``). An edited, removed or reordered record breaks the
chain and every consumer refuses the file, naming the record.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile

REGISTRY_PATH = "models/registry.json"
PROMOTED_DIR = "models/promoted"
# Where the previous promoted file of each slot is kept (for rollback without S3) and where files in
# models/promoted/ that no approval names are moved to. Neither is synced with S3.
STATE_DIR = "models/.crpbot-promotion"
ASIDE_DIR = "models/unapproved"
MANAGED_DIRS = (PROMOTED_DIR, STATE_DIR, ASIDE_DIR)
# Temporary files of a copy or a registry rewrite in progress: never loaded, never synced.
TMP_PREFIX = ".crpbot-tmp-"

REQUIRED = {
    "model_id": str,
    "version": str,
    "model_type": str,
    "symbol": str,
    "model_path": str,
    "file_hash": str,
    "metrics": dict,
    "created_at": str,
}
# Fields a published version may change: the promotion marks them.
MUTABLE = ("promoted", "deployed_at")
FORMAT = 1
SHA_RE = re.compile(r"[0-9a-f]{64}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# The bot's promotion gates (apps/trainer/eval): metric, comparison, default threshold.
DEFAULT_GATES = {"win_rate": (">=", 0.68), "calibration_error": ("<=", 0.05)}


class ModelError(ValueError):
    """A refusal; the message names the model, the file or the record, and the fix."""


# --- the registry ----------------------------------------------------------------------------------


def safe_model_path(path: str) -> str | None:
    """Why ``path`` cannot be a model file's path, or None."""
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "it must be a relative path without '.', '..' or empty components"
    if parts[0] != "models" or len(parts) < 2:
        return "it must lie under models/"
    if path == REGISTRY_PATH:
        return "it is the registry itself"
    for managed in MANAGED_DIRS:
        if path == managed or path.startswith(managed + "/"):
            return f"{managed}/ is managed by the promotion, not a place for model versions"
    return None


def parse_registry(text: str | bytes, where: str = REGISTRY_PATH) -> list[dict]:
    """The registry's entries, checked; ModelError naming the entry and field otherwise."""
    fix = f"Fix: correct {where} on the builder (the trainer writes it) and push again"
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where} does not parse as JSON ({exc}). {fix}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise ModelError(f'{where} must be a JSON object with a "models" list. {fix}')
    seen = {}
    for index, entry in enumerate(doc["models"]):
        label = f"{where} entry {index}"
        if not isinstance(entry, dict):
            raise ModelError(f"{label} is not an object. {fix}")
        if isinstance(entry.get("model_id"), str):
            label = f"{where} entry {entry['model_id']!r}"
        for field, kind in REQUIRED.items():
            if not isinstance(entry.get(field), kind) or (kind is str and not entry[field]):
                raise ModelError(f"{label}: field {field} must be a non-empty {kind.__name__}. {fix}")
        if not NAME_RE.fullmatch(entry["model_type"]) or not NAME_RE.fullmatch(entry["symbol"]):
            raise ModelError(f"{label}: model_type and symbol must be names (letters, digits, . _ -). {fix}")
        if not SHA_RE.fullmatch(entry["file_hash"]):
            raise ModelError(f"{label}: file_hash must be a lowercase SHA-256 hex digest. {fix}")
        reason = safe_model_path(entry["model_path"])
        if reason:
            raise ModelError(f"{label}: model_path {entry['model_path']!r} is refused: {reason}. {fix}")
        if entry["model_id"] in seen:
            raise ModelError(f"{where}: model_id {entry['model_id']!r} is registered twice. {fix}")
        seen[entry["model_id"]] = entry
    return doc["models"]


def registry_conflicts(published: list[dict], local: list[dict]) -> list[str]:
    """How ``local`` (about to be pushed) would rewrite or drop published versions (``published``)."""
    mine = {entry["model_id"]: entry for entry in local}
    found = []
    for entry in published:
        ours = mine.get(entry["model_id"])
        if ours is None:
            found.append(f"model {entry['model_id']} is published but missing from the local registry")
            continue
        changed = sorted(field for field in set(entry) | set(ours)
                         if field not in MUTABLE and entry.get(field) != ours.get(field))
        if changed:
            found.append(f"model {entry['model_id']} would change its published {', '.join(changed)}")
    return found


def promoted_name(entry: dict) -> str:
    """The file name the runtime loads for the entry's model type and symbol."""
    return f"{entry['model_type']}_{entry['symbol']}_latest.pt"


def slot(entry: dict) -> str:
    return f"{entry['model_type']}_{entry['symbol']}"


# --- gates -----------------------------------------------------------------------------------------


def gate_results(metrics: dict, gates: dict) -> list[dict]:
    """One row per gate: metric, op, threshold, value, passed (a missing or non-number metric fails)."""
    rows = []
    for metric in sorted(gates):
        op, threshold = gates[metric]
        value = metrics.get(metric)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        passed = number and (value >= threshold if op == ">=" else value <= threshold)
        rows.append({"metric": metric, "op": op, "threshold": threshold,
                     "value": value if number else None, "passed": bool(passed)})
    return rows


def gates_from(win_rate: float, calibration_error: float) -> dict:
    return {"win_rate": (">=", float(win_rate)), "calibration_error": ("<=", float(calibration_error))}


# --- approval records ------------------------------------------------------------------------------


def canonical(record: dict) -> bytes:
    body = {key: value for key, value in record.items() if key != "record_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(record: dict, previous_sha256: str | None) -> dict:
    record = dict(record, previous_sha256=previous_sha256)
    record["record_sha256"] = hashlib.sha256(canonical(record)).hexdigest()
    return record


RECORD_FIELDS = {"action": str, "model_id": str, "model_type": str, "symbol": str, "version": str,
                 "files": list, "metrics": dict, "gates": list, "approved_by": dict, "approved_at": str}


def parse_promotions(text: str | None, where: str) -> list[dict]:
    """The chained approval records of ``where``, each verified; ModelError on any tampering."""
    if text is None or not text.strip():
        return []
    fix = (f"Fix: restore {where} from git (git checkout -- {where}, or git log -p to see the change); it is "
           "written only by playbooks/promote_model.yml")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{where} does not parse as JSON ({exc}). {fix}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("promotions"), list):
        raise ModelError(f'{where} must be {{"format": {FORMAT}, "promotions": [...]}}. {fix}')
    previous = None
    for index, record in enumerate(doc["promotions"]):
        label = f"{where} record {index + 1}"
        if not isinstance(record, dict):
            raise ModelError(f"{label} is not an object. {fix}")
        for field, kind in RECORD_FIELDS.items():
            if not isinstance(record.get(field), kind):
                raise ModelError(f"{label}: field {field} is missing or not a {kind.__name__}. {fix}")
        label = f"{label} ({record['action']} {record['model_id']})"
        if record.get("previous_sha256") != previous:
            raise ModelError(f"{label} does not follow the record before it (previous_sha256 differs): a record "
                             f"was removed, reordered or edited. {fix}")
        if record.get("record_sha256") != hashlib.sha256(canonical(record)).hexdigest():
            raise ModelError(f"{label} was changed after it was approved (its record_sha256 no longer matches "
                             f"its content). {fix}")
        for item in record["files"]:
            if not (isinstance(item, dict) and isinstance(item.get("path"), str) and not safe_model_path(item["path"])
                    and isinstance(item.get("sha256"), str) and SHA_RE.fullmatch(item["sha256"])):
                raise ModelError(f"{label}: a file entry is not a safe models/ path with a SHA-256. {fix}")
        if record["action"] not in ("approve", "rollback") or not record["files"]:
            raise ModelError(f"{label}: action must be approve or rollback, with files. {fix}")
        previous = record["record_sha256"]
    return doc["promotions"]


def dump_promotions(records: list[dict]) -> str:
    return json.dumps({"format": FORMAT, "promotions": records}, indent=2, sort_keys=True) + "\n"


def current(records: list[dict]) -> dict[str, dict]:
    """The record in force per slot (model type + symbol): the last one of each."""
    now = {}
    for record in records:
        now[slot(record)] = record
    return now


def rollback_target(records: list[dict], selector: str) -> list[dict]:
    """For each slot ``selector`` names (a symbol, a model type or a slot), the record in force before
    the current one, as a new rollback record body (unsealed). ModelError when there is none."""
    now = current(records)
    slots = sorted(name for name, record in now.items()
                   if selector in (record["symbol"], record["model_type"], name))
    if not slots:
        known = ", ".join(sorted(now)) or "none"
        raise ModelError(f"no promoted model matches {selector!r} (promoted slots: {known}). Fix: pass a symbol, "
                         "model type or <model_type>_<symbol> that has a promotion")
    bodies = []
    for name in slots:
        history = [record for record in records if slot(record) == name]
        distinct = [record for record in history if record["model_id"] != now[name]["model_id"]]
        if not distinct:
            raise ModelError(f"{name}: {now[name]['model_id']} is the only model ever promoted there, so there is "
                             "nothing to roll back to. Fix: approve another model with -e model=<model_id>")
        target = distinct[-1]
        bodies.append({key: target[key] for key in RECORD_FIELDS if key not in ("action", "approved_by",
                                                                                    "approved_at")})
    return bodies


def placements(records: list[dict]) -> list[dict]:
    """What every host places: one file per slot, from the approved version's file."""
    out = []
    for name, record in sorted(current(records).items()):
        item = record["files"][0]
        out.append({"name": promoted_name(record), "source": item["path"], "sha256": item["sha256"],
                    "model_id": record["model_id"], "approved_at": record["approved_at"]})
    return out


def load_records(path: str) -> list[dict]:
    """The verified records of the approvals file (controller); none when it does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    return parse_promotions(text, path)


def load_placements(path: str) -> list[dict]:
    """What every host places (and what live needs), from the verified approvals file (controller)."""
    return placements(load_records(path))


def sha256_file(path: str, chunk: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


# --- on the host: review, verify, place ------------------------------------------------------------


def read_registry(project_dir: str) -> list[dict]:
    path = f"{project_dir}/{REGISTRY_PATH}"
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist. Fix: pull the models first (playbooks/sync_s3.yml, or site.yml); "
                         "the builder's trainer writes the registry and the converge pushes it") from None
    return parse_registry(text, path)


def file_sha(path: str) -> str | None:
    try:
        return sha256_file(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def verify_files(files: list[dict]) -> list[str]:
    """Why these model files (each ``path``, ``sha256``, ``model_id``) are not as approved (empty: all are)."""
    found = []
    for item in files:
        sha = file_sha(item["path"])
        if sha is None:
            found.append(f"{item['path']} (model {item['model_id']}) is missing")
        elif sha != item["sha256"]:
            found.append(f"{item['path']} does not match the approved SHA-256 of model {item['model_id']}")
    return found


def promoted_files(project_dir: str, wanted: list[dict]) -> list[dict]:
    """The approved models as the files a host's models/promoted/ must hold."""
    return [{"path": f"{project_dir}/{PROMOTED_DIR}/{place['name']}", "sha256": place["sha256"],
             "model_id": place["model_id"]} for place in wanted]


def live_models_refusal(files: list[dict]) -> str | None:
    """Why live trading may not start on a host with these promoted files (the money rule: live runs only
    an approved model whose files verify on the host), or None."""
    if not files:
        return ("no model promotion is approved, and live trading runs only an approved model. Fix: approve one "
                "on a QC host (ansible-playbook playbooks/promote_model.yml -e model=<model_id>), then converge")
    problems = verify_files(files)
    if problems:
        return ("the approved models do not verify on this host: " + "; ".join(problems) + ". Fix: converge "
                "without live first (it places the approved models), then go live")
    return None


def plan_placement(project_dir: str, wanted: list[dict]) -> tuple[list[dict], list[str]]:
    """(what to place, files of models/promoted/ no approval names); ModelError before any change when an
    approved file cannot be found on this host with its approved SHA-256."""
    plan = []
    for place in wanted:
        target = f"{project_dir}/{PROMOTED_DIR}/{place['name']}"
        if file_sha(target) == place["sha256"]:
            continue
        candidates = (f"{project_dir}/{place['source']}", f"{project_dir}/{STATE_DIR}/previous/{place['name']}")
        source = next((path for path in candidates if file_sha(path) == place["sha256"]), None)
        if source is None:
            present = file_sha(candidates[0])
            why = ("is not on this host" if present is None else
                   "on this host does not match the SHA-256 recorded at approval (the file changed after it was "
                   "approved; it is never promoted)")
            raise ModelError(
                f"model {place['model_id']} is approved for {place['name']} but {place['source']} {why}. Nothing in "
                f"{PROMOTED_DIR}/ was changed. Fix: pull the approved version from S3 (site.yml or "
                "playbooks/sync_s3.yml; on a builder, restore the file from S3), or approve another model")
        plan.append({**place, "from": source, "replaces": os.path.exists(target)})
    promoted = f"{project_dir}/{PROMOTED_DIR}"
    names = {place["name"] for place in wanted}
    strays = sorted(name for name in (os.listdir(promoted) if os.path.isdir(promoted) else [])
                    if name not in names and not name.startswith(TMP_PREFIX))
    return plan, strays


def _stage(source: str, directory: str, sha: str) -> str:
    """A verified copy of ``source`` as a temporary file in ``directory`` (renamed into place by the caller)."""
    os.makedirs(directory, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        if sha256_file(temp) != sha:
            raise ModelError(f"the copy of {source} does not match its SHA-256; nothing was replaced")
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def _commit(temp: str, target: str) -> None:
    try:
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    _fsync_dir(os.path.dirname(target))


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def apply_placement(project_dir: str, plan: list[dict], strays: list[str], stamp: str) -> list[str]:
    """Place each planned file (the one it replaces kept as the previous), move strays aside; returns the
    paths the strays were moved to."""
    promoted = f"{project_dir}/{PROMOTED_DIR}"
    for name in (os.listdir(promoted) if os.path.isdir(promoted) else []):
        if name.startswith(TMP_PREFIX):  # left by an interrupted run: never loaded, never kept
            os.unlink(f"{promoted}/{name}")
    for place in plan:
        target = f"{promoted}/{place['name']}"
        staged = _stage(place["from"], promoted, place["sha256"])  # before the previous copy is replaced
        try:
            if place["replaces"] and os.path.isfile(target):
                keep = f"{project_dir}/{STATE_DIR}/previous"
                _commit(_stage(target, keep, sha256_file(target)), f"{keep}/{place['name']}")
        except BaseException:
            os.unlink(staged)
            raise
        _commit(staged, target)
    moved = []
    for name in strays:
        os.makedirs(f"{project_dir}/{ASIDE_DIR}", exist_ok=True)
        destination = f"{project_dir}/{ASIDE_DIR}/{name}.{stamp}"
        os.replace(f"{promoted}/{name}", destination)
        moved.append(destination)
    return moved


def mark_registry(project_dir: str, wanted: list[dict]) -> bool:
    """Set promoted/deployed_at in the host's registry from the approvals; True when it was rewritten."""
    path = f"{project_dir}/{REGISTRY_PATH}"
    with open(path, "rb") as handle:
        text = handle.read()
    parse_registry(text, path)
    doc = json.loads(text)
    placed = {place["model_id"]: place["approved_at"] for place in wanted}
    changed = False
    for entry in doc["models"]:
        promoted = entry["model_id"] in placed
        deployed = placed.get(entry["model_id"], entry.get("deployed_at"))
        if entry.get("promoted") is not promoted or entry.get("deployed_at") != deployed:
            entry["promoted"], entry["deployed_at"] = promoted, deployed
            changed = True
    if changed:
        data = (json.dumps(doc, indent=2) + "\n").encode()
        handle, temp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=os.path.dirname(path))
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, os.stat(path).st_mode & 0o7777)
        os.replace(temp, path)
    return changed

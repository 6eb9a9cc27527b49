# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model promotion: the registry, the gates, the chained approvals (plugins/module_utils/crpbot_models.py),
placing on a host, and the crpbot_promotion action end to end on localhost (approve only on QC, racing
promotions, tampered records, the live gate's inputs)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.ansible_run import crpbot_localhost, run_module_play

import ansible.module_utils  # noqa: F401 - tests/unit/conftest.py serves plugins/module_utils under it
from ansible.module_utils import crpbot_models as models
from ansible.module_utils.crpbot_models import ModelError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(model_id="lstm_BTC-USD_v3", data=b"weights-v3", **changes):
    model_type, symbol, version = model_id.split("_")
    base = {"model_id": model_id, "version": version, "model_type": model_type, "symbol": symbol,
            "model_path": f"models/{model_type}/{symbol}/{version}/model.pt", "file_hash": sha(data),
            "metrics": {"win_rate": 0.71, "calibration_error": 0.03}, "created_at": "2026-12-01T10:00:00Z",
            "promoted": False, "deployed_at": None}
    base.update(changes)
    return base


def registry(*entries) -> str:
    return json.dumps({"models": list(entries)})


# --- the registry ----------------------------------------------------------------------------------


def test_parse_registry_accepts_the_bots_shape():
    parsed = models.parse_registry(registry(entry(), entry("gru_ETH-USD_v1", b"x")))
    assert [item["model_id"] for item in parsed] == ["lstm_BTC-USD_v3", "gru_ETH-USD_v1"]


BAD_REGISTRIES = [
    ("not-json", "{models: [", "does not parse as JSON"),
    ("a-list", "[]", 'must be a JSON object with a "models" list'),
    ("models-not-list", '{"models": {}}', 'must be a JSON object with a "models" list'),
    ("entry-not-object", '{"models": [1]}', "entry 0 is not an object"),
    ("missing-hash", registry({k: v for k, v in entry().items() if k != "file_hash"}), "field file_hash must be"),
    ("metrics-not-object", registry(entry(metrics=[0.7])), "field metrics must be a non-empty dict"),
    ("empty-id", registry({**entry(), "model_id": ""}), "field model_id must be a non-empty str"),
    ("upper-hash", registry(entry(file_hash="A" * 64)), "file_hash must be a lowercase SHA-256"),
    ("short-hash", registry(entry(file_hash="ab")), "file_hash must be a lowercase SHA-256"),
    ("dotdot-path", registry(entry(model_path="models/../.env")), "without '.', '..'"),
    ("absolute-path", registry(entry(model_path="/root/model.pt")), "without '.', '..'"),
    ("outside-models", registry(entry(model_path="data/model.pt")), "must lie under models/"),
    ("into-promoted", registry(entry(model_path="models/promoted/lstm_BTC-USD_latest.pt")), "managed by the promotion"),
    ("the-registry", registry(entry(model_path="models/registry.json")), "the registry itself"),
    ("slash-in-symbol", registry(entry(symbol="BTC/USD")), "must be names"),
    ("twice", registry(entry(), entry()), "registered twice"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in BAD_REGISTRIES], ids=[c[0] for c in BAD_REGISTRIES])
def test_parse_registry_refuses_with_the_entry_and_the_fix(text, fragment):
    with pytest.raises(ModelError) as refused:
        models.parse_registry(text, "/root/crpbot/models/registry.json")
    assert fragment in str(refused.value)
    assert "/root/crpbot/models/registry.json" in str(refused.value) and "Fix:" in str(refused.value)


def test_registry_conflicts_allow_only_the_promotion_marks_to_change():
    published = [entry(), entry("gru_ETH-USD_v1", b"x")]
    marked = [entry(promoted=True, deployed_at="2026-12-02T00:00:00Z"), entry("gru_ETH-USD_v1", b"x"),
              entry("lstm_BTC-USD_v4", b"new")]
    assert models.registry_conflicts(published, marked) == []
    rewritten = [entry(data=b"retrained"), entry("gru_ETH-USD_v1", b"x", metrics={"win_rate": 0.9})]
    assert models.registry_conflicts(published, rewritten) == [
        "model lstm_BTC-USD_v3 would change its published file_hash",
        "model gru_ETH-USD_v1 would change its published metrics"]
    assert models.registry_conflicts(published, [entry()]) == [
        "model gru_ETH-USD_v1 is published but missing from the local registry"]


# --- gates -----------------------------------------------------------------------------------------

GATES = models.gates_from(0.68, 0.05)


@pytest.mark.parametrize(("metrics", "passed"), [
    ({"win_rate": 0.71, "calibration_error": 0.03}, {"calibration_error": True, "win_rate": True}),
    ({"win_rate": 0.68, "calibration_error": 0.05}, {"calibration_error": True, "win_rate": True}),  # boundaries
    ({"win_rate": 0.6799, "calibration_error": 0.05}, {"calibration_error": True, "win_rate": False}),
    ({"win_rate": 0.9, "calibration_error": 0.0501}, {"calibration_error": False, "win_rate": True}),
    ({"win_rate": 0.9}, {"calibration_error": False, "win_rate": True}),  # missing metric fails
    ({"win_rate": "0.9", "calibration_error": 0.01}, {"calibration_error": True, "win_rate": False}),
    ({"win_rate": True, "calibration_error": 0.01}, {"calibration_error": True, "win_rate": False}),
    ({"win_rate": float("nan"), "calibration_error": float("-inf")}, {"calibration_error": False, "win_rate": False}),
], ids=["pass", "boundaries", "win-rate-low", "calibration-high", "missing", "string", "bool", "nan-inf"])
def test_gate_results(metrics, passed):
    assert {row["metric"]: row["passed"] for row in models.gate_results(metrics, GATES)} == passed


# --- approval records ------------------------------------------------------------------------------


def record(model_id="lstm_BTC-USD_v3", data=b"weights-v3", action="approve", at="2026-12-02T10:00:00Z"):
    item = entry(model_id, data)
    return {"action": action, "model_id": model_id, "model_type": item["model_type"], "symbol": item["symbol"],
            "version": item["version"], "files": [{"path": item["model_path"], "sha256": item["file_hash"]}],
            "metrics": item["metrics"], "gates": models.gate_results(item["metrics"], GATES),
            "approved_by": {"host": "qc1", "host_user": "numan", "controller_user": "numan"}, "approved_at": at}


def chain(*bodies):
    records = []
    for body in bodies:
        records.append(models.seal(body, records[-1]["record_sha256"] if records else None))
    return records


def dumped(records):
    return models.dump_promotions(records)


def test_a_chain_parses_and_the_last_record_of_a_slot_is_in_force():
    records = chain(record(), record("gru_ETH-USD_v1", b"g"), record("lstm_BTC-USD_v4", b"weights-v4"))
    parsed = models.parse_promotions(dumped(records), "promotions.json")
    assert {name: r["model_id"] for name, r in models.current(parsed).items()} == {
        "lstm_BTC-USD": "lstm_BTC-USD_v4", "gru_ETH-USD": "gru_ETH-USD_v1"}
    assert models.placements(parsed) == [
        {"name": "gru_ETH-USD_latest.pt", "source": "models/gru/ETH-USD/v1/model.pt", "sha256": sha(b"g"),
         "model_id": "gru_ETH-USD_v1", "approved_at": "2026-12-02T10:00:00Z"},
        {"name": "lstm_BTC-USD_latest.pt", "source": "models/lstm/BTC-USD/v4/model.pt", "sha256": sha(b"weights-v4"),
         "model_id": "lstm_BTC-USD_v4", "approved_at": "2026-12-02T10:00:00Z"}]


def tamper_hash(records):
    records[0]["files"][0]["sha256"] = sha(b"forged")


def tamper_resealed_middle(records):
    records[0] = models.seal(dict(records[0], metrics={"win_rate": 0.99}), None)


TAMPERING = [
    ("edited-hash", tamper_hash, "record 1 (approve lstm_BTC-USD_v3) was changed after it was approved"),
    ("edited-approver", lambda r: r[1]["approved_by"].update(host="cloud"), "record 2 (approve gru_ETH-USD_v1) was changed"),
    ("removed-first", lambda r: r.pop(0), "does not follow the record before it"),
    ("reordered", lambda r: r.reverse(), "does not follow the record before it"),
    ("resealed-first", tamper_resealed_middle, "record 2 (approve gru_ETH-USD_v1) does not follow"),
    ("forged-appended", lambda r: r.append(models.seal(record("lstm_BTC-USD_v9", b"evil"), None)),
     "record 3 (approve lstm_BTC-USD_v9) does not follow"),
    ("missing-field", lambda r: r[0].pop("files"), "field files is missing"),
    ("unsafe-file", lambda r: r.__setitem__(0, models.seal(dict(r[0], files=[{"path": "../x", "sha256": "0" * 64}]),
                                                              None)), "not a safe models/ path"),
]


@pytest.mark.parametrize(("tamper", "fragment"), [c[1:] for c in TAMPERING], ids=[c[0] for c in TAMPERING])
def test_a_tampered_approvals_file_is_refused_naming_the_record(tamper, fragment):
    records = chain(record(), record("gru_ETH-USD_v1", b"g"))
    tamper(records)
    with pytest.raises(ModelError) as refused:
        models.parse_promotions(dumped(records), "inventory/promotions.json")
    assert fragment in str(refused.value) and "git checkout -- inventory/promotions.json" in str(refused.value)


@pytest.mark.parametrize("text", ["{", '{"format": 2, "promotions": []}', '{"promotions": []}', "[]"])
def test_an_approvals_file_of_another_shape_is_refused(text):
    with pytest.raises(ModelError, match="promotions.json"):
        models.parse_promotions(text, "promotions.json")


def test_an_empty_or_missing_approvals_file_has_no_records(tmp_path):
    assert models.parse_promotions("", "p.json") == [] and models.load_records(str(tmp_path / "none.json")) == []


def test_rollback_selects_the_model_in_force_before_for_each_matching_slot():
    records = chain(record(), record("gru_BTC-USD_v1", b"g"), record("lstm_BTC-USD_v4", b"w4"),
                    record("gru_BTC-USD_v2", b"g2"), record("lstm_ETH-USD_v1", b"e"))
    by_symbol = models.rollback_target(records, "BTC-USD")
    assert [body["model_id"] for body in by_symbol] == ["gru_BTC-USD_v1", "lstm_BTC-USD_v3"]
    assert [body["model_id"] for body in models.rollback_target(records, "lstm_BTC-USD")] == ["lstm_BTC-USD_v3"]
    assert [body["model_id"] for body in models.rollback_target(records, "gru")] == ["gru_BTC-USD_v1"]
    # After a rollback, rolling back again returns to the newer one (the one in force before).
    rolled = chain(*[{k: v for k, v in r.items() if k not in ("record_sha256", "previous_sha256")} for r in records],
                   dict(record("lstm_BTC-USD_v3", b"weights-v3"), action="rollback"))
    assert [body["model_id"] for body in models.rollback_target(rolled, "lstm_BTC-USD")] == ["lstm_BTC-USD_v4"]
    with pytest.raises(ModelError, match="no promoted model matches 'SOL-USD'"):
        models.rollback_target(records, "SOL-USD")
    with pytest.raises(ModelError, match="the only model ever promoted there"):
        models.rollback_target(records, "ETH-USD")


# --- on the host -----------------------------------------------------------------------------------


def project(tmp_path, files: dict[str, bytes]):
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(tmp_path)


def wanted(*pairs):
    return [{"name": f"{model_id.rsplit('_', 1)[0]}_latest.pt", "source": entry(model_id, data)["model_path"],
             "sha256": sha(data), "model_id": model_id, "approved_at": "2026-12-02T10:00:00Z"}
            for model_id, data in pairs]


def tree(root):
    found = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            found[os.path.relpath(path, root)] = open(path, "rb").read()
    return found


def place(root, want):
    plan, strays = models.plan_placement(root, want)
    return models.apply_placement(root, plan, strays, "20261202T100000"), plan


def test_placing_puts_the_approved_file_keeps_the_previous_and_moves_strays_aside(tmp_path):
    root = project(tmp_path, {"models/lstm/BTC-USD/v3/model.pt": b"weights-v3",
                              "models/lstm/BTC-USD/v4/model.pt": b"weights-v4",
                              "models/promoted/hand_made_latest.pt": b"who knows"})
    moved, plan = place(root, wanted(("lstm_BTC-USD_v3", b"weights-v3")))
    assert [item["name"] for item in plan] == ["lstm_BTC-USD_latest.pt"]
    assert moved == [f"{root}/models/unapproved/hand_made_latest.pt.20261202T100000"]
    assert tree(f"{root}/models/promoted") == {"lstm_BTC-USD_latest.pt": b"weights-v3"}
    assert models.verify_files(models.promoted_files(root, wanted(("lstm_BTC-USD_v3", b"weights-v3")))) == []
    # Again: nothing to do.
    assert models.plan_placement(root, wanted(("lstm_BTC-USD_v3", b"weights-v3"))) == ([], [])
    # A newer approval: placed, and the replaced file kept as the previous one.
    place(root, wanted(("lstm_BTC-USD_v4", b"weights-v4")))
    assert tree(f"{root}/models/promoted") == {"lstm_BTC-USD_latest.pt": b"weights-v4"}
    assert tree(f"{root}/models/.crpbot-promotion/previous") == {"lstm_BTC-USD_latest.pt": b"weights-v3"}
    # Rolled back with the version's own file gone: the kept previous copy serves.
    os.unlink(f"{root}/models/lstm/BTC-USD/v3/model.pt")
    place(root, wanted(("lstm_BTC-USD_v3", b"weights-v3")))
    assert tree(f"{root}/models/promoted") == {"lstm_BTC-USD_latest.pt": b"weights-v3"}


@pytest.mark.parametrize(("files", "fragment"), [
    ({}, "models/lstm/BTC-USD/v4/model.pt is not on this host"),
    ({"models/lstm/BTC-USD/v4/model.pt": b"changed after approval"}, "does not match the SHA-256 recorded at approval"),
], ids=["missing", "changed"])
def test_placing_refuses_before_any_change_when_an_approved_file_does_not_verify(tmp_path, files, fragment):
    root = project(tmp_path, {"models/gru/ETH-USD/v1/model.pt": b"g", "models/promoted/lstm_BTC-USD_latest.pt": b"v3",
                              "models/promoted/stray.pt": b"s", **files})
    before = tree(root)
    with pytest.raises(ModelError) as refused:
        models.plan_placement(root, wanted(("gru_ETH-USD_v1", b"g"), ("lstm_BTC-USD_v4", b"weights-v4")))
    assert fragment in str(refused.value) and "model lstm_BTC-USD_v4" in str(refused.value)
    assert tree(root) == before


def test_an_interrupted_copy_never_leaves_a_loadable_file(tmp_path, monkeypatch):
    root = project(tmp_path, {"models/lstm/BTC-USD/v4/model.pt": b"weights-v4",
                              "models/promoted/lstm_BTC-USD_latest.pt": b"weights-v3"})
    plan, strays = models.plan_placement(root, wanted(("lstm_BTC-USD_v4", b"weights-v4")))

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(models.os, "replace", crash)
    with pytest.raises(OSError):
        models.apply_placement(root, plan, strays, "t")
    monkeypatch.undo()
    assert tree(f"{root}/models/promoted") == {"lstm_BTC-USD_latest.pt": b"weights-v3"}


def test_mark_registry_follows_the_approvals_and_is_idempotent(tmp_path):
    root = project(tmp_path, {"models/registry.json": registry(entry(promoted=True, deployed_at="old"),
                                                              entry("lstm_BTC-USD_v4", b"w4")).encode()})
    want = wanted(("lstm_BTC-USD_v4", b"w4"))
    assert models.mark_registry(root, want) is True
    marks = {e["model_id"]: (e["promoted"], e["deployed_at"]) for e in models.read_registry(root)}
    assert marks == {"lstm_BTC-USD_v3": (False, "old"), "lstm_BTC-USD_v4": (True, "2026-12-02T10:00:00Z")}
    assert models.mark_registry(root, want) is False


def test_live_needs_approved_models_that_verify(tmp_path):
    root = project(tmp_path, {"models/promoted/lstm_BTC-USD_latest.pt": b"w4"})
    assert "no model promotion is approved" in models.live_models_refusal([])
    assert models.live_models_refusal(models.promoted_files(root, wanted(("lstm_BTC-USD_v4", b"w4")))) is None
    assert "does not match" in models.live_models_refusal(models.promoted_files(root, wanted(("lstm_BTC-USD_v4", b"x"))))


def test_module_utils_import_only_the_stdlib():
    import ast

    tree_ = ast.parse(open(models.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree_) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree_) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "hashlib", "json", "math", "os", "re", "shutil", "tempfile"}


# --- the action end to end on localhost ------------------------------------------------------------


def candidate(model_id="lstm_BTC-USD_v3", data=b"weights-v3", measured=None, **changes):
    item = entry(model_id, data, **changes)
    return dict(item, measured_sha256=item["file_hash"] if measured is None else measured)


def approve_task(cand, approval=None, expected_head=None, register="verdict"):
    return {"name": "Approve", "crpbot_promotion": {
        "state": "approve", "model_id": cand["model_id"], "candidate": cand,
        "approval": cand["model_id"] if approval is None else approval, "expected_head": expected_head},
        "register": register, "ignore_errors": True}


def promotions(tmp_path):
    return models.load_records(str(tmp_path / "promotions.json"))


def test_a_qc_host_records_an_approval_with_who_and_what(tmp_path):
    play = run_module_play(tmp_path, [approve_task(candidate())], inventory=crpbot_localhost(role="qc", user="numan"))
    assert play.returncode == 0, play.output
    verdict = play.results["verdict"]
    assert verdict["changed"] is True and "recorded approve of lstm_BTC-USD_v3" in verdict["msg"]
    (saved,) = promotions(tmp_path)
    assert saved["files"] == [{"path": "models/lstm/BTC-USD/v3/model.pt", "sha256": sha(b"weights-v3")}]
    assert saved["approved_by"]["host"] == "localhost" and saved["approved_by"]["host_user"] == "numan"
    assert saved["metrics"] == {"win_rate": 0.71, "calibration_error": 0.03}
    assert all(row["passed"] for row in saved["gates"]) and saved["previous_sha256"] is None


REFUSED_APPROVALS = [
    ("unknown-model", {"name": "Approve", "crpbot_promotion": {"state": "approve", "model_id": "nope", "candidate": {},
                                                              "approval": "nope"}, "register": "verdict",
                       "ignore_errors": True}, "model 'nope' is not in the registry"),
    ("hash-differs", approve_task(candidate(measured=sha(b"other"))), "does not match its registry entry's file_hash"),
    ("file-missing", approve_task(dict(candidate(), measured_sha256=None)), "is not on the QC host after the pull"),
    ("gate-fails", approve_task(candidate(metrics={"win_rate": 0.6, "calibration_error": 0.03})),
     "fails the promotion gates: win_rate 0.6 (needs >= 0.68)"),
    ("typed-something-else", approve_task(candidate(), approval="yes"), "the confirmation typed was 'yes'"),
]


@pytest.mark.parametrize(("task", "fragment"), [c[1:] for c in REFUSED_APPROVALS], ids=[c[0] for c in REFUSED_APPROVALS])
def test_an_approval_is_refused_and_nothing_recorded(tmp_path, task, fragment):
    play = run_module_play(tmp_path, [task], inventory=crpbot_localhost(role="qc", user="numan"))
    assert play.results["verdict"]["failed"] is True and fragment in play.results["verdict"]["msg"], play.output
    assert not (tmp_path / "promotions.json").exists()


def test_a_builder_cannot_approve_even_when_told_it_is_qc(tmp_path):
    play = run_module_play(tmp_path, [approve_task(candidate())], extra_args=("-e", "crpbot_role=qc"),
                           inventory=crpbot_localhost(role="builder"))
    assert "REFUSED" in play.results["verdict"]["msg"]
    play = run_module_play(tmp_path, [approve_task(candidate())], inventory=crpbot_localhost(role="builder"))
    assert "is a builder host: only a QC host approves" in play.results["verdict"]["msg"]
    assert not (tmp_path / "promotions.json").exists()


def test_racing_promotions_of_one_slot_record_only_the_first(tmp_path):
    inventory = crpbot_localhost(role="qc", user="numan")
    first = run_module_play(tmp_path, [approve_task(candidate())], inventory=inventory)
    assert first.returncode == 0, first.output
    # The second was reviewed before the first landed (its expected head is the empty file's).
    late = run_module_play(tmp_path, [approve_task(candidate("lstm_BTC-USD_v4", b"w4"))], inventory=inventory)
    assert "another promotion of lstm_BTC-USD (approve of lstm_BTC-USD_v3" in late.results["verdict"]["msg"]
    # Another slot reviewed at the same time is chained after it.
    other = run_module_play(tmp_path, [approve_task(candidate("gru_ETH-USD_v1", b"g"))], inventory=inventory)
    assert other.returncode == 0, other.output
    assert [r["model_id"] for r in promotions(tmp_path)] == ["lstm_BTC-USD_v3", "gru_ETH-USD_v1"]


def test_rollback_and_place_through_the_action(tmp_path):
    inventory = crpbot_localhost(role="qc", user="root")
    records = chain(record(), record("lstm_BTC-USD_v4", b"weights-v4"))
    (tmp_path / "promotions.json").write_text(dumped(records))
    project_dir = tmp_path / "project"
    project(project_dir, {"models/lstm/BTC-USD/v3/model.pt": b"weights-v3",
                          "models/lstm/BTC-USD/v4/model.pt": b"weights-v4"})
    tasks = [{"name": "Roll back", "crpbot_promotion": {"state": "rollback", "selector": "BTC-USD"},
              "register": "rolled"},
             {"name": "Place", "crpbot_promotion": {"state": "place", "project_dir": str(project_dir)},
              "register": "placed"}]
    play = run_module_play(tmp_path, tasks, inventory=inventory)
    assert play.returncode == 0, play.output
    assert play.results["rolled"]["records"][0]["rolled_back_from"] == "lstm_BTC-USD_v4"
    assert play.results["placed"]["promoted"] == [{"name": "lstm_BTC-USD_latest.pt", "model_id": "lstm_BTC-USD_v3"}]
    assert tree(project_dir / "models/promoted") == {"lstm_BTC-USD_latest.pt": b"weights-v3"}
    assert [r["action"] for r in promotions(tmp_path)] == ["approve", "approve", "rollback"]


def test_place_refuses_a_tampered_approvals_file_and_changes_nothing(tmp_path):
    records = chain(record())
    records[0]["files"][0]["sha256"] = sha(b"forged")
    (tmp_path / "promotions.json").write_text(dumped(records))
    project_dir = tmp_path / "project"
    project(project_dir, {"models/promoted/lstm_BTC-USD_latest.pt": b"weights-v3"})
    tasks = [{"name": "Place", "crpbot_promotion": {"state": "place", "project_dir": str(project_dir)},
              "register": "placed", "ignore_errors": True}]
    play = run_module_play(tmp_path, tasks, inventory=crpbot_localhost(role="builder"))
    assert "was changed after it was approved" in play.results["placed"]["msg"]
    assert tree(project_dir / "models") == {"promoted/lstm_BTC-USD_latest.pt": b"weights-v3"}


def test_review_table_lists_gates_and_what_is_in_force():
    from tests.ansible_run import load_plugin

    action = load_plugin("plugins/action/crpbot_promotion.py", "crpbot_promotion_action")
    table, rows = action.review_table([entry(), entry("lstm_BTC-USD_v4", b"w4", metrics={"win_rate": 0.5})],
                                      chain(record()), GATES)
    assert table[0].split("|")[1:-1] == [" model_id        ", " type ", " symbol  ", " version ",
                                          " created_at           ", " calibration_error <= 0.05 ",
                                          " win_rate >= 0.68 ", " gates ", " in force "]
    assert "| PASS  | yes " in table[2] and "| FAIL  |" in table[3] and "| -  " in table[3]
    assert [row["passes_gates"] for row in rows] == [True, False]

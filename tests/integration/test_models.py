# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model promotion end to end on the sandbox: train → push → list → approve on QC → the converge places it
on both hosts → live on the builder only with it → a newer approval → rollback; and every refusal records
nothing and leaves what is promoted as it was."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
import yaml

from tests import sandbox_models, testbed
from tests.ansible_run import at_a_terminal
from tests.conftest import run
from tests.sandbox_models import approve, promote, train

pytestmark = pytest.mark.testbed

QC, BUILDER = "sandbox-qc", "sandbox-builder"
CONFIRM = "crpbot_env_live_confirm=CONFIRM"
V3, V4, GRU = "lstm_BTC-USD_v3", "lstm_BTC-USD_v4", "gru_BTC-USD_v1"


def on_host(sandbox, host: str, command: str) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True).stdout


def out(proc) -> str:
    return proc.stdout + proc.stderr


def site(sandbox, *args, inventory=None):
    return sandbox_models.playbook(sandbox, "site.yml", *args, inventory=inventory)


def s3(sandbox):
    return boto3.client("s3", endpoint_url=sandbox["state"]["moto"]["endpoint"], region_name=testbed.REGION,
                        aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106


def promotions_file(sandbox):
    return sandbox["inventory"].with_name("promotions.json")


def records(sandbox) -> list[dict]:
    path = promotions_file(sandbox)
    return json.loads(path.read_text())["promotions"] if path.exists() else []


def loaded(sandbox, host) -> list[str]:
    """What the app's runtime loads on the host: MODEL=<name> <sha256> lines."""
    text = on_host(sandbox, host, "cd crpbot && .venv/bin/python -m apps.runtime.main --models")
    return [line for line in text.splitlines() if line.startswith("MODEL=")]


def model_sha(sandbox, model_id: str) -> str:
    model_type, symbol, version = model_id.split("_")
    return on_host(sandbox, BUILDER, f"sha256sum crpbot/models/{model_type}/{symbol}/{version}/model.pt").split()[0]


def promoted_state(sandbox) -> dict[str, str]:
    return {host: on_host(sandbox, host, "cd crpbot/models && find promoted unapproved .crpbot-promotion -type f "
                                         "-exec sha256sum {} + 2>/dev/null | sort || true")
            for host in (QC, BUILDER)}


def env_sums(sandbox) -> dict[str, str]:
    return {host: on_host(sandbox, host, "sha256sum crpbot/.env") for host in (QC, BUILDER)}


def runtime_mode(sandbox, host) -> str:
    return on_host(sandbox, host, "cd crpbot && .venv/bin/python -m apps.runtime.main").strip()


def write_inventory(sandbox, name: str, **changes) -> str:
    """A copy of the sandbox inventory beside it (its group_vars apply), the builder's entry changed."""
    config = yaml.safe_load(sandbox["inventory"].read_text())
    for host in config["hosts"]:
        if host["role"] == "builder":
            host.update(changes.pop("builder", {}))
    config.update(changes)
    path = sandbox["inventory"].with_name(name)
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def published(sandbox):
    proc = site(sandbox)
    assert proc.returncode == 0, out(proc)
    train(sandbox, "lstm", "BTC-USD", "v3", 0.71, 0.03)
    train(sandbox, "lstm", "BTC-USD", "v4", 0.74, 0.02)
    train(sandbox, "gru", "BTC-USD", "v1", 0.60, 0.03)
    sandbox_models.publish(sandbox)
    return sandbox


def test_list_shows_every_candidate_with_its_gates_and_records_nothing(published):
    proc = promote(published)
    assert proc.returncode == 0, out(proc)
    rows = {line.split("|")[1].strip(): line for line in out(proc).splitlines() if "_BTC-USD_v" in line and "|" in line}
    assert set(rows) == {V3, V4, GRU}
    assert "| PASS " in rows[V3] and "| PASS " in rows[V4] and "| FAIL " in rows[GRU] and "| 0.6 " in rows[GRU]
    assert records(published) == []


REFUSALS = [
    ("unknown-model", ["-e", "model=lstm_BTC-USD_v9", "-e", "approve=lstm_BTC-USD_v9"],
     "model 'lstm_BTC-USD_v9' is not in the registry"),
    ("fails-a-gate", ["-e", f"model={GRU}", "-e", f"approve={GRU}"],
     f"model {GRU} fails the promotion gates: win_rate 0.6 (needs >= 0.68)"),
    ("typed-something-else", ["-e", f"model={V3}", "-e", "approve=yes"], "the confirmation typed was 'yes'"),
    ("model-and-rollback", ["-e", f"model={V3}", "-e", "rollback=BTC-USD"], "not both"),
    ("nothing-to-roll-back", ["-e", "rollback=BTC-USD"], "no promoted model matches 'BTC-USD'"),
    ("s3-unreachable", ["-e", f"model={V3}", "-e", f"approve={V3}", "-e",
                        f"crpbot_s3_endpoint_url=http://127.0.0.1:{testbed.free_port()}"], "Could not connect"),
]


@pytest.mark.parametrize(("args", "fragment"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_a_refused_promotion_records_nothing_and_changes_nothing(published, args, fragment):
    before = promoted_state(published)
    proc = promote(published, *args)
    assert proc.returncode != 0 and fragment in out(proc), out(proc)
    assert records(published) == [] and promoted_state(published) == before


def test_live_without_an_approved_model_is_refused_before_any_write(published):
    inventory = write_inventory(published, "live-unapproved.crpbot.yml", builder={"runtime_mode": "live"},
                                promotions_file="no-approvals.json")
    before = env_sums(published)
    proc = site(published, "-e", CONFIRM, inventory=inventory)
    assert proc.returncode != 0
    assert "host sandbox-builder: RUNTIME_MODE=live refused: no model promotion is approved" in out(proc), out(proc)
    assert env_sums(published) == before and runtime_mode(published, BUILDER) == "RUNTIME_MODE=dryrun"


def test_a_file_whose_hash_differs_from_its_registry_entry_is_never_approved(published):
    client = s3(published)
    key = "models/lstm/BTC-USD/v4/model.pt"
    original = client.get_object(Bucket=testbed.BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=testbed.BUCKET, Key=key, Body=b"replaced in the bucket behind the builder's back")
    try:
        proc = promote(published, "-e", f"model={V4}", "-e", f"approve={V4}")
        assert proc.returncode != 0
        assert f"model {V4}: models/lstm/BTC-USD/v4/model.pt does not match its registry entry's file_hash" in out(proc)
        assert records(published) == []
    finally:
        client.put_object(Bucket=testbed.BUCKET, Key=key, Body=original)


def test_a_registry_that_does_not_parse_is_refused_by_name(published):
    client = s3(published)
    original = client.get_object(Bucket=testbed.BUCKET, Key="models/registry.json")["Body"].read()
    client.put_object(Bucket=testbed.BUCKET, Key="models/registry.json", Body=b'{"models": [')
    try:
        proc = promote(published)
        assert proc.returncode != 0
        assert "/home/numan/crpbot/models/registry.json does not parse as JSON" in out(proc), out(proc)
    finally:
        client.put_object(Bucket=testbed.BUCKET, Key="models/registry.json", Body=original)
    assert promote(published).returncode == 0  # the next pull takes the good registry again


def test_a_published_version_is_never_overwritten_by_a_retrain(published):
    key, rel = "models/lstm/BTC-USD/v4/model.pt", "crpbot/models/lstm/BTC-USD/v4/model.pt"
    client = s3(published)
    before = client.get_object(Bucket=testbed.BUCKET, Key=key)["Body"].read()
    on_host(published, BUILDER, f"cp -p {rel} /tmp/v4.pt && cp -p crpbot/models/registry.json /tmp/registry.json")
    try:
        train(published, "lstm", "BTC-USD", "v4", 0.74, 0.02, seed=7)  # same id and size, other content
        proc = sandbox_models.playbook(published, "playbooks/sync_s3.yml", "--limit", BUILDER, "--tags", "models")
        assert proc.returncode != 0
        # Refused before any transfer, naming the version, its file and the builder that published it.
        text = " ".join(out(proc).split())
        assert ("model lstm_BTC-USD_v4 (published by sandbox-builder) would change its published created_at, "
                f"file_hash ({key})") in text, text[-4000:]
        assert "register the retrained model as a new version (new model_id and model_path)" in text
        assert client.get_object(Bucket=testbed.BUCKET, Key=key)["Body"].read() == before
    finally:
        on_host(published, BUILDER, f"cp -p /tmp/v4.pt {rel} && cp -p /tmp/registry.json crpbot/models/registry.json")
    sandbox_models.publish(published)  # restored: nothing to refuse


def test_the_whole_story(published):
    # Approve at the prompt, typing the model id, as a person does on the QC workstation.
    code, shown = at_a_terminal(["ansible-playbook", "-i", str(published["inventory"]), "playbooks/promote_model.yml",
                                 "-e", f"model={V3}"], b"Type the model id to approve", V3)
    assert code == 0, shown[-3000:]
    (record,) = records(published)
    assert (record["action"], record["model_id"]) == ("approve", V3)
    assert record["files"] == [{"path": "models/lstm/BTC-USD/v3/model.pt", "sha256": model_sha(published, V3)}]
    assert record["approved_by"]["host"] == QC and record["approved_by"]["host_user"] == "numan"
    assert record["metrics"] == {"win_rate": 0.71, "calibration_error": 0.03}
    assert all(gate["passed"] for gate in record["gates"])

    # A file nobody approved, dropped into QC's promoted/: moved aside, never loaded.
    on_host(published, QC, "mkdir -p crpbot/models/promoted && echo by-hand > crpbot/models/promoted/gru_BTC-USD_latest.pt")
    proc = site(published)
    assert proc.returncode == 0, out(proc)
    assert "gru_BTC-USD_latest.pt is named by no approval" in out(proc)
    for host in (QC, BUILDER):
        assert loaded(published, host) == [f"MODEL=lstm_BTC-USD_latest.pt {model_sha(published, V3)}"], host
    assert "gru_BTC-USD_latest.pt." in on_host(published, QC, "ls crpbot/models/unapproved")
    registry = json.loads(on_host(published, BUILDER, "cat crpbot/models/registry.json"))
    assert {e["model_id"]: e["promoted"] for e in registry["models"]} == {V3: True, V4: False, GRU: False}
    checklist = out(sandbox_models.playbook(published, "playbooks/preflight.yml"))
    assert f"ok   | promoted models | verified: lstm_BTC-USD_latest.pt ({V3})" in checklist, checklist

    # Live on the builder now that an approved model verifies there; QC stays dryrun.
    live = write_inventory(published, "live.crpbot.yml", builder={"runtime_mode": "live"})
    proc = site(published, "-e", CONFIRM, inventory=live)
    assert proc.returncode == 0, out(proc)
    assert runtime_mode(published, BUILDER) == "RUNTIME_MODE=live"
    assert runtime_mode(published, QC) == "RUNTIME_MODE=dryrun"

    # A newer approval; under the normal inventory the builder is back to dryrun.
    approve(published, V4)
    proc = site(published)
    assert proc.returncode == 0, out(proc)
    for host in (QC, BUILDER):
        assert loaded(published, host) == [f"MODEL=lstm_BTC-USD_latest.pt {model_sha(published, V4)}"], host
        kept = on_host(published, host, "sha256sum crpbot/models/.crpbot-promotion/previous/lstm_BTC-USD_latest.pt")
        assert kept.split()[0] == model_sha(published, V3)
    assert runtime_mode(published, BUILDER) == "RUNTIME_MODE=dryrun"

    # One command rolls back, the next converge places the earlier version everywhere.
    proc = promote(published, "-e", "rollback=BTC-USD")
    assert proc.returncode == 0, out(proc)
    assert [(r["action"], r["model_id"]) for r in records(published)][-1] == ("rollback", V3)
    proc = site(published)
    assert proc.returncode == 0, out(proc)
    for host in (QC, BUILDER):
        assert loaded(published, host) == [f"MODEL=lstm_BTC-USD_latest.pt {model_sha(published, V3)}"], host

    # A tampered approval record stops the run in its first play: nothing promoted changes.
    path = promotions_file(published)
    good = path.read_text()
    doc = json.loads(good)
    doc["promotions"][-1]["files"][0]["sha256"] = hashlib.sha256(b"forged").hexdigest()
    path.write_text(json.dumps(doc))
    before = promoted_state(published)
    try:
        proc = site(published)
        assert proc.returncode != 0
        assert f"record 3 (rollback {V3}) was changed after it was approved" in out(proc), out(proc)
        assert promoted_state(published) == before
    finally:
        path.write_text(good)

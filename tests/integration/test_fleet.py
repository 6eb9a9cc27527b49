# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every playbook with several hosts per role: a test bed of 2 QC hosts and 2 builders.

- site.yml converges all four; each QC host pulls what both builders pushed, and the builders' pushes
  (different models, different data files) do not clobber each other; a second run changes nothing.
- Two builders publishing the same model version in the same task: exactly one gets through, the
  other is refused naming both hosts, and the bucket holds the winner's file.
- The live gate asks once, naming both builders; CONFIRM takes both live (each places the approved
  version, also the one the other builder published), QC stays dryrun.
- The database password rotation covers every host; with one QC host gone mid-rotation, it rolls back
  every host. Rotation is checked only by what it leaves: the playbook's exit code, the files on each
  host, the password the database accepts and the vault.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time

import pytest
import yaml

from tests import testbed
from tests.ansible_run import at_a_terminal
from tests.conftest import run

pytestmark = [pytest.mark.testbed, pytest.mark.fleet(qc=2, builders=2)]

QC = ("sandbox-qc", "sandbox-qc-2")
BUILDERS = ("sandbox-builder", "sandbox-builder-2")
PROJECT = {**{host: "/home/numan/crpbot" for host in QC}, **{host: "/root/crpbot" for host in BUILDERS}}
PROMPT = b"Type CONFIRM to go live"


def on_host(fleet, host: str, command: str, check: bool = True) -> str:
    return run(testbed.ssh_argv(fleet["state"], host) + [command], check=check).stdout


def playbook(fleet, play: str, *args: str, inventory: str | None = None):
    return run(["ansible-playbook", "-i", inventory or str(fleet["inventory"]), play, *args], env=fleet["env"])


def output(proc) -> str:
    return proc.stdout + proc.stderr


def recap(text: str) -> dict[str, str]:
    """host -> its PLAY RECAP line."""
    lines = text[text.rindex("PLAY RECAP"):].splitlines()[1:]
    return {line.split()[0]: line for line in lines if ":" in line and "ok=" in line}


def train(fleet, host: str, symbol: str, version: str, seed: int = 0) -> str:
    """The fixture app's trainer (stdlib only: it runs before the converge builds .venv)."""
    command = (f"cd crpbot && python3 -m apps.trainer.train --model-type lstm --symbol {symbol} "
               f"--version {version} --win-rate 0.71 --calibration-error 0.03 --seed {seed}")
    return on_host(fleet, host, command).strip()


def sha(fleet, host: str, rel: str) -> str:
    return on_host(fleet, host, f"sha256sum {PROJECT[host]}/{rel} 2>/dev/null || echo missing").split()[0]


def s3(fleet):
    import boto3

    return boto3.client("s3", endpoint_url=fleet["state"]["moto"]["endpoint"], region_name=testbed.REGION,
                        aws_access_key_id="testbed", aws_secret_access_key="testbed")  # noqa: S106 - moto


def bucket_registry(fleet) -> dict[str, str]:
    body = s3(fleet).get_object(Bucket=testbed.BUCKET, Key="models/registry.json")["Body"].read()
    return {entry["model_id"]: entry.get("published_by") for entry in json.loads(body)["models"]}


def runtime_modes(fleet, host: str) -> list[str]:
    text = on_host(fleet, host, "cat crpbot/.env")
    return [line.split("=", 1)[1] for line in text.splitlines() if line.split("=", 1)[0].lower() == "runtime_mode"]


def vault(fleet) -> dict:
    return yaml.safe_load(testbed.read_vault(fleet["inventory"].parent / "group_vars" / "all" / "vault.yml"))


def db_login(fleet, password: str) -> bool:
    return testbed.db_login(fleet["state"], password)


# Each builder trains its own model and writes its own raw data file; QC pulls BTC-USD* data.
MODELS = {"sandbox-builder": "BTC-USD", "sandbox-builder-2": "ETH-USD"}
DATA = {host: f"data/raw/BTC-USD/BTC-USD_1m_{host}.parquet" for host in BUILDERS}


@pytest.fixture(scope="module")
def converged(fleet):
    assert fleet["qc"] == list(QC) and fleet["builders"] == list(BUILDERS)
    proc = run(["ansible-playbook", "-i", str(fleet["inventory"]), "molecule/shared/prepare.yml"], env=fleet["env"])
    assert proc.returncode == 0, output(proc)
    # Each builder trains before the first converge, which publishes on every builder, then pulls on QC.
    for host, symbol in MODELS.items():
        train(fleet, host, symbol, "v1")
        on_host(fleet, host, f"mkdir -p crpbot/data/raw/BTC-USD && echo {host} > crpbot/{DATA[host]}")
    proc = playbook(fleet, "site.yml")
    assert proc.returncode == 0, output(proc)[-4000:]
    fleet["site"] = output(proc)
    return fleet


def test_site_converges_every_host(converged):
    lines = recap(converged["site"])
    assert sorted(lines) == sorted(QC + BUILDERS)
    assert all("failed=0" in line and "unreachable=0" in line for line in lines.values()), lines
    for host in QC + BUILDERS:
        assert runtime_modes(converged, host) == ["dryrun"]
        text = on_host(converged, host, "cat crpbot/.env")
        assert f"DB_URL=postgresql+psycopg://{testbed.DB_USER}:" in text  # every host on the shared database
        assert on_host(converged, host, "stat -c '%a' crpbot/.env").strip() == "600"


def test_every_qc_host_pulled_what_every_builder_pushed(converged):
    for builder, symbol in MODELS.items():
        model = f"models/lstm/{symbol}/v1/model.pt"
        published = sha(converged, builder, model)
        assert published != "missing"
        for qc in QC:
            assert sha(converged, qc, model) == published, (qc, model)
            assert sha(converged, qc, DATA[builder]) == sha(converged, builder, DATA[builder])
    for qc in QC:
        registry = json.loads(on_host(converged, qc, "cat crpbot/models/registry.json"))
        assert {m["model_id"]: m["published_by"] for m in registry["models"]} == {
            "lstm_BTC-USD_v1": "sandbox-builder", "lstm_ETH-USD_v1": "sandbox-builder-2"}


def test_builders_pushing_different_files_do_not_clobber_each_other(converged):
    assert bucket_registry(converged) == {"lstm_BTC-USD_v1": "sandbox-builder", "lstm_ETH-USD_v1": "sandbox-builder-2"}
    client = s3(converged)
    for builder, symbol in MODELS.items():
        for rel in (f"models/lstm/{symbol}/v1/model.pt", DATA[builder]):
            body = client.get_object(Bucket=testbed.BUCKET, Key=rel)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sha(converged, builder, rel), rel
    # Each builder's local registry still holds only its own model: the bucket's is the union.
    for builder, symbol in MODELS.items():
        local = json.loads(on_host(converged, builder, "cat crpbot/models/registry.json"))
        assert [m["model_id"] for m in local["models"]] == [f"lstm_{symbol}_v1"]


def test_a_second_converge_changes_nothing_on_any_host(converged):
    proc = playbook(converged, "playbooks/converge.yml")
    lines = recap(output(proc))
    assert proc.returncode == 0 and len(lines) == 4, output(proc)[-3000:]
    assert all("changed=0" in line for line in lines.values()), lines


def test_two_builders_publishing_the_same_version_at_once_refuses_the_second(converged):
    for seed, builder in enumerate(BUILDERS):
        train(converged, builder, "SOL-USD", "v1", seed=seed + 10)
    local = {builder: sha(converged, builder, "models/lstm/SOL-USD/v1/model.pt") for builder in BUILDERS}
    assert local["sandbox-builder"] != local["sandbox-builder-2"]
    # Both builders push in the same task (forks), as a converge does.
    proc = playbook(converged, "playbooks/sync_s3.yml", "--limit", "builder", "--tags", "models")
    text = output(proc)
    assert proc.returncode != 0, text[-3000:]
    winner = bucket_registry(converged).get("lstm_SOL-USD_v1")
    assert winner in BUILDERS
    loser = next(builder for builder in BUILDERS if builder != winner)
    assert (f"refusing to push from host {loser} to s3://{testbed.BUCKET}/models/: model lstm_SOL-USD_v1"
            f" (models/lstm/SOL-USD/v1/model.pt) is already published by {winner}") in text
    assert f"host {loser} may not publish the same model version" in text
    lines = recap(text)
    assert "failed=0" in lines[winner] and "failed=1" in lines[loser], lines
    body = s3(converged).get_object(Bucket=testbed.BUCKET, Key="models/lstm/SOL-USD/v1/model.pt")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == local[winner]
    # The loser follows the fix: its model becomes a new version; then both push cleanly.
    on_host(converged, loser, "cd crpbot && rm -r models/lstm/SOL-USD/v1 && python3 -c \"import json; p='models/"
                              "registry.json'; d=json.load(open(p)); d['models']=[m for m in d['models'] if m['model_id']"
                              "!='lstm_SOL-USD_v1']; json.dump(d, open(p, 'w'))\"")
    train(converged, loser, "SOL-USD", "v2", seed=99)
    proc = playbook(converged, "playbooks/sync_s3.yml", "--limit", "builder", "--tags", "models")
    assert proc.returncode == 0, output(proc)[-3000:]
    assert bucket_registry(converged) == {"lstm_BTC-USD_v1": "sandbox-builder", "lstm_ETH-USD_v1": "sandbox-builder-2",
                                          "lstm_SOL-USD_v1": winner, "lstm_SOL-USD_v2": loser}


def test_db_password_rotation_covers_every_host(converged):
    old = vault(converged)["vault_crpbot_db_password"]
    proc = playbook(converged, "playbooks/rotate_credentials.yml", "-e", "rotate=db_password")
    assert proc.returncode == 0, output(proc)[-4000:]
    new = vault(converged)["vault_crpbot_db_password"]
    assert new != old and "vault_crpbot_rotation_pending" not in vault(converged)
    assert db_login(converged, new) and not db_login(converged, old)
    for host in QC + BUILDERS:
        assert on_host(converged, host, f"cat {PROJECT[host]}/.db_password") == new, host


def test_a_rotation_that_loses_one_host_rolls_back_every_host(converged):
    """sandbox-qc-2 goes away (its container killed) as soon as the database has the new password:
    the rotation must put the old one back and leave every host on it."""
    old = vault(converged)["vault_crpbot_db_password"]
    victim = "sandbox-qc-2"
    container = converged["state"]["hosts"][victim]["container"]
    killed = threading.Event()
    done = threading.Event()

    def kill_when_the_password_changes():
        while not done.is_set():
            if not db_login(converged, old):
                run(["podman", "kill", container], env={"CONTAINERS_CONF": str(testbed.CONTAINERS_CONF)})
                killed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_the_password_changes, daemon=True)
    watcher.start()
    try:
        proc = playbook(converged, "playbooks/rotate_credentials.yml", "-e", "rotate=db_password")
    finally:
        done.set()
        watcher.join(10)
        run(["podman", "start", container], env={"CONTAINERS_CONF": str(testbed.CONTAINERS_CONF)})
    text = output(proc)
    assert killed.is_set(), "the database password never changed: " + text[-3000:]
    assert proc.returncode != 0, text[-3000:]
    assert "ROLLED BACK" in text, text[-4000:]
    argv = testbed.ssh_argv(converged["state"], victim) + ["true"]
    testbed.wait_for(f"sshd of {victim}", lambda: run(argv).returncode == 0)
    data = vault(converged)
    assert data["vault_crpbot_db_password"] == old and "vault_crpbot_rotation_pending" not in data
    assert db_login(converged, old)
    for host in QC + BUILDERS:
        assert on_host(converged, host, f"cat {PROJECT[host]}/.db_password") == old, host
        assert f"{testbed.DB_USER}:" in on_host(converged, host, "cat crpbot/.env")


def test_the_live_gate_asks_once_naming_every_builder(converged):
    config = yaml.safe_load(converged["inventory"].read_text())
    for host in config["hosts"]:
        if host["role"] == "builder":
            host["runtime_mode"] = "live"
    live = converged["inventory"].with_name("live.crpbot.yml")
    live.write_text(yaml.safe_dump(config))
    # Approve the version sandbox-builder published: sandbox-builder-2 must fetch it to go live.
    proc = playbook(converged, "playbooks/promote_model.yml", "-e", "model=lstm_BTC-USD_v1",
                    "-e", "approve=lstm_BTC-USD_v1")
    assert proc.returncode == 0, output(proc)[-3000:]
    code, shown = at_a_terminal(["ansible-playbook", "-i", str(live), "playbooks/converge.yml"], PROMPT, "CONFIRM")
    assert code == 0, shown[-4000:]
    assert shown.count("Type CONFIRM to go live") == 1, shown
    # Compared without white space (the terminal wraps the prompt's long line), in either order.
    named = re.search(r"LIVETRADING:RUNTIME_MODE=livewillbewrittenon([^.]*)\.", "".join(shown.split()))
    assert named and sorted(named.group(1).split(",")) == list(BUILDERS), shown
    approved = sha(converged, "sandbox-builder", "models/lstm/BTC-USD/v1/model.pt")
    for builder in BUILDERS:
        assert runtime_modes(converged, builder) == ["live"]
        assert sha(converged, builder, "models/promoted/lstm_BTC-USD_latest.pt") == approved
    for qc in QC:
        assert runtime_modes(converged, qc) == ["dryrun"]
        assert sha(converged, qc, "models/promoted/lstm_BTC-USD_latest.pt") == approved
    # sandbox-builder-2's own files are untouched: it fetched only what it lacked.
    assert sha(converged, "sandbox-builder-2", "models/lstm/ETH-USD/v1/model.pt") != "missing"
    back = playbook(converged, "playbooks/converge.yml")
    assert back.returncode == 0, output(back)[-3000:]
    for builder in BUILDERS:
        assert runtime_modes(converged, builder) == ["dryrun"]


def test_down_removes_every_container_even_after_the_state_was_lost(tmp_path, monkeypatch):
    """A test bed of its own (3 hosts) whose state lost its hosts, as by a crash: `down` still removes every
    container (found by name; the services' records are kept so none of them is left running)."""
    monkeypatch.setenv("CRPBOT_TESTBED_DIR", str(tmp_path / "crashed"))
    try:
        state = testbed.up(log=lambda *_: None, qc=2, builders=1)
        assert sorted(testbed.leftover_containers()) == sorted(h["container"] for h in state["hosts"].values())
        testbed.save_state({key: value for key, value in testbed.load_state().items() if key != "hosts"})
    finally:
        testbed.down(quiet=True)
    assert testbed.leftover_containers() == []

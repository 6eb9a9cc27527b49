"""crpbot_env on the sandbox: the live-trading gate each way, the QC reset, and no secret in any output."""

from __future__ import annotations


import pytest
import yaml

from tests import testbed
from tests.conftest import run

pytestmark = pytest.mark.testbed

CONFIRM_HINT = "crpbot_env_live_confirm=CONFIRM"


def on_host(sandbox, host: str, command: str) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True).stdout


def runtime_mode(sandbox, host: str) -> str:
    return on_host(sandbox, host, "grep -i '^RUNTIME_MODE=' crpbot/.env").strip().split("=", 1)[1]


def env_sums(sandbox) -> dict[str, str]:
    return {h: on_host(sandbox, h, "sha256sum crpbot/.env 2>/dev/null || echo none") for h in sandbox["state"]["hosts"]}


def playbook(sandbox, *args: str, inventory: str | None = None):
    return run(["ansible-playbook", "-i", inventory or str(sandbox["inventory"]), "site.yml", *args])


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = playbook(sandbox)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sandbox


@pytest.fixture(scope="module")
def live_inventory(converged) -> str:
    """The sandbox inventory with the builder approved for live (next to it, so its group_vars apply)."""
    config = yaml.safe_load(converged["inventory"].read_text())
    for host in config["hosts"]:
        if host["role"] == "builder":
            host["runtime_mode"] = "live"
    path = converged["inventory"].with_name("live.crpbot.yml")
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_live_without_confirmation_writes_nothing(converged, live_inventory):
    before = env_sums(converged)
    proc = playbook(converged, inventory=live_inventory)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "sandbox-builder" in out and CONFIRM_HINT in out and "nothing was written" in out
    assert env_sums(converged) == before  # neither host was touched (any_errors_fatal)
    assert runtime_mode(converged, "sandbox-builder") == "dryrun"


def test_live_with_the_extra_variable_goes_live_on_the_builder_only(converged, live_inventory):
    proc = playbook(converged, "-e", CONFIRM_HINT, inventory=live_inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert runtime_mode(converged, "sandbox-builder") == "live"
    assert runtime_mode(converged, "sandbox-qc") == "dryrun"
    # Back under the normal inventory, the builder returns to dryrun and the run says so.
    back = playbook(converged)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "WARNING: host sandbox-builder had RUNTIME_MODE=live" in back.stdout
    assert runtime_mode(converged, "sandbox-builder") == "dryrun"


def test_qc_host_is_never_live(converged):
    before = env_sums(converged)
    proc = playbook(converged, "-e", "crpbot_env_runtime_mode=live", "-e", CONFIRM_HINT)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "host sandbox-qc is a QC host" in out
    assert env_sums(converged) == before


def test_qc_set_live_by_hand_is_put_back(converged):
    on_host(converged, "sandbox-qc", "sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=live/' crpbot/.env")
    proc = playbook(converged)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING: host sandbox-qc had RUNTIME_MODE=live" in proc.stdout
    assert "A QC host never trades" in proc.stdout
    assert runtime_mode(converged, "sandbox-qc") == "dryrun"


def test_no_secret_in_any_output(converged):
    secrets = testbed.secret_values(testbed.sandbox_secrets())
    # A change on each host so the diff has something to show, then a converge, a check and a rerun.
    for host in converged["state"]["hosts"]:
        on_host(converged, host, "sed -i 's/^TELEGRAM_CHAT_ID=.*/TELEGRAM_CHAT_ID=changed-by-hand/' crpbot/.env")
    outputs = [
        playbook(converged, "-vvv", "--diff", "--check"),
        playbook(converged, "-vvv", "--diff"),
        playbook(converged, "-vvv", "--diff"),
    ]
    assert all(p.returncode == 0 for p in outputs), [p.stdout[-3000:] for p in outputs]
    text = "".join(p.stdout + p.stderr for p in outputs)
    assert "TELEGRAM_CHAT_ID" in text  # the key name is reported, its value never
    leaked = [s[:4] + "…" for s in secrets if s in text]
    assert leaked == [], f"secret values found in -vvv output: {leaked}"

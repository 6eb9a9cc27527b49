"""crpbot_env on the sandbox: the live-trading gate each way (the extra variable, and an operator
typing at the prompt on a terminal), the QC reset, and no secret in any output."""

from __future__ import annotations

import os
import pty
import select
import termios
import time

import pytest
import yaml

from tests import testbed
from tests.conftest import REPO, run

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


PROMPT = b"Type CONFIRM to go live"


def playbook_at_a_terminal(inventory: str, answer: str, timeout: float = 900) -> tuple[int, str]:
    """site.yml with a pseudo-terminal as its controlling terminal (as an operator runs it); types
    ``answer`` and Enter at the live prompt. Returns ``(exit code, everything the terminal showed)``.

    The pause action flushes input typed before it reads (it switches the terminal out of canonical
    mode first), so the answer is typed only once the prompt is shown and the mode has switched.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        try:
            os.chdir(REPO)
            os.execvp("ansible-playbook", ["ansible-playbook", "-i", inventory, "site.yml"])
        finally:
            os._exit(127)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the playbook ended and closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and PROMPT in output and not termios.tcgetattr(fd)[3] & termios.ICANON:
                time.sleep(0.5)  # the flush follows the mode switch at once
                os.write(fd, answer.encode() + b"\r")
                answered = True
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert answered, f"the live prompt never showed:\n{text[-3000:]}"
    return os.waitstatus_to_exitcode(status), text


def test_typing_anything_but_confirm_at_the_prompt_writes_nothing(converged, live_inventory):
    before = env_sums(converged)
    code, out = playbook_at_a_terminal(live_inventory, "yes")
    assert code != 0, out
    assert "LIVE TRADING: RUNTIME_MODE=live will be written on sandbox-builder." in out
    assert "nothing was written" in out
    assert env_sums(converged) == before
    assert runtime_mode(converged, "sandbox-builder") == "dryrun"


def test_typing_confirm_at_the_prompt_goes_live_on_the_builder_only(converged, live_inventory):
    code, out = playbook_at_a_terminal(live_inventory, "CONFIRM")
    assert code == 0, out
    assert runtime_mode(converged, "sandbox-builder") == "live"
    assert runtime_mode(converged, "sandbox-qc") == "dryrun"
    back = playbook(converged)
    assert back.returncode == 0, back.stdout + back.stderr
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

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Money safety and secrets on the sandbox, through the real playbooks.

- The live gate on the builder, each way: the extra variable, and an operator typing at the prompt.
- Every way a run could ask for live on the QC host (variables at every precedence, other inventory
  sources, the user's own playbooks, the module called directly, a .env edited by hand): each is
  refused before anything is written, or corrected, and the QC .env reads dryrun through the app's
  own python-dotenv afterwards.
- Hostile vault values reach .env and .db_password byte for byte and are never templated; a value that
  cannot be written exactly is refused by name; a secret removed from the vault leaves the .env;
  backups are bounded; no secret in any -vvvv output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests import sandbox_models, testbed
from tests.ansible_run import at_a_terminal
from tests.conftest import run

pytestmark = pytest.mark.testbed

CONFIRM_HINT = "crpbot_env_live_confirm=CONFIRM"
QC, BUILDER = "sandbox-qc", "sandbox-builder"

# Run on a host with the app's own venv: every binding python-dotenv reads, and the DB_URL as SQLAlchemy
# parses it (what the bot sees).
READ_BACK = """
import json
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from sqlalchemy.engine import make_url
values = dotenv_values(".env")
with open(".env", encoding="utf-8") as handle:
    bindings = [[b.key, b.value] for b in parse_stream(handle) if b.key is not None]
url = make_url(values["DB_URL"]) if values.get("DB_URL") else None
print(json.dumps({"values": values, "bindings": bindings, "db_password": url.password if url else None,
                  "db_password_file": open(".db_password", encoding="utf-8", newline="").read()}))
"""


def on_host(sandbox, host: str, command: str, **kwargs) -> str:
    return run(testbed.ssh_argv(sandbox["state"], host) + [command], check=True, **kwargs).stdout


def read_back(sandbox, host: str) -> dict:
    return json.loads(on_host(sandbox, host, "cd crpbot && .venv/bin/python -", input=READ_BACK))


def modes(sandbox, host: str) -> list[str]:
    """Every value the app could read as its mode: each binding of RUNTIME_MODE in any case."""
    return [value for key, value in read_back(sandbox, host)["bindings"] if key.lower() == "runtime_mode"]


def runtime_mode(sandbox, host: str) -> str:
    found = modes(sandbox, host)
    assert len(set(found)) == 1, found
    return found[0]


def env_sums(sandbox) -> dict[str, str]:
    return {h: on_host(sandbox, h, "sha256sum crpbot/.env 2>/dev/null || echo none") for h in sandbox["state"]["hosts"]}


def playbook(sandbox, *args: str, inventory: str | None = None, play: str = "site.yml", env=None):
    return run(["ansible-playbook", "-i", inventory or str(sandbox["inventory"]), play, *args], env=env)


def output(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def converged(sandbox):
    proc = playbook(sandbox)
    assert proc.returncode == 0, output(proc)
    return sandbox


@pytest.fixture(scope="module")
def live_inventory(converged) -> str:
    """The sandbox inventory with the builder approved for live (next to it, so its group_vars and its
    approvals apply), and a model trained, published and approved on the QC host: live runs only one."""
    config = yaml.safe_load(converged["inventory"].read_text())
    for host in config["hosts"]:
        if host["role"] == "builder":
            host["runtime_mode"] = "live"
    path = converged["inventory"].with_name("live.crpbot.yml")
    path.write_text(yaml.safe_dump(config))
    model_id = sandbox_models.train(converged, "lstm", "BTC-USD", "v1")
    sandbox_models.publish(converged)
    sandbox_models.approve(converged, model_id)
    return str(path)


# --------------------------------------------------------------------------- the live gate on the builder


def test_live_without_confirmation_writes_nothing(converged, live_inventory):
    before = env_sums(converged)
    proc = playbook(converged, inventory=live_inventory)
    assert proc.returncode != 0, output(proc)
    assert BUILDER in output(proc) and CONFIRM_HINT in output(proc) and "nothing was written" in output(proc)
    assert env_sums(converged) == before  # neither host was touched (any_errors_fatal)
    assert runtime_mode(converged, BUILDER) == "dryrun"


PROMPT = b"Type CONFIRM to go live"


def playbook_at_a_terminal(inventory: str, answer: str, timeout: float = 900) -> tuple[int, str]:
    """site.yml at a terminal, typing ``answer`` at the live prompt (tests.ansible_run.at_a_terminal)."""
    return at_a_terminal(["ansible-playbook", "-i", inventory, "site.yml"], PROMPT, answer, timeout)


def test_typing_anything_but_confirm_at_the_prompt_writes_nothing(converged, live_inventory):
    before = env_sums(converged)
    code, shown = playbook_at_a_terminal(live_inventory, "yes")
    assert code != 0, shown
    assert "LIVE TRADING: RUNTIME_MODE=live will be written on sandbox-builder." in shown
    assert "nothing was written" in shown
    assert env_sums(converged) == before
    assert runtime_mode(converged, BUILDER) == "dryrun"


def test_typing_confirm_at_the_prompt_goes_live_on_the_builder_only(converged, live_inventory):
    code, shown = playbook_at_a_terminal(live_inventory, "CONFIRM")
    assert code == 0, shown
    assert runtime_mode(converged, BUILDER) == "live"
    assert runtime_mode(converged, QC) == "dryrun"
    back = playbook(converged)
    assert back.returncode == 0, output(back)
    assert runtime_mode(converged, BUILDER) == "dryrun"


def test_live_with_the_extra_variable_goes_live_on_the_builder_only(converged, live_inventory):
    proc = playbook(converged, "-e", CONFIRM_HINT, inventory=live_inventory)
    assert proc.returncode == 0, output(proc)
    assert runtime_mode(converged, BUILDER) == "live"
    assert ("host sandbox-builder had RUNTIME_MODE=dryrun in /root/crpbot/.env; it is now live. The inventory approves "
            "live for it and this run confirmed it") in output(proc)
    assert "do not make it live" not in output(proc)
    assert runtime_mode(converged, QC) == "dryrun"
    # Back under the normal inventory, the builder returns to dryrun and the run says so, naming it.
    back = playbook(converged)
    assert back.returncode == 0, output(back)
    assert "host sandbox-builder had RUNTIME_MODE=live in /root/crpbot/.env; it is now dryrun" in output(back)
    assert runtime_mode(converged, BUILDER) == "dryrun"


# --------------------------------------------------------------------------- every way to ask for live on QC


def inventory_dir(sandbox) -> Path:
    return sandbox["inventory"].parent


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


OWN_PLAYBOOK_ROLE_PARAMS = """
- name: A person's own playbook that passes the role a role of its own
  hosts: sandbox-qc
  gather_facts: false
  roles:
    - role: crpbot_env
      crpbot_role: builder
"""

OWN_PLAYBOOK_PLAY_VARS = """
- name: A person's own playbook whose play vars give the host a role of their own
  hosts: sandbox-qc
  gather_facts: false
  vars:
    crpbot_role: builder
  roles:
    - role: crpbot_env
"""

OWN_PLAYBOOK_SET_FACT = """
- name: A person's own playbook that sets facts before writing the .env
  hosts: sandbox-qc
  gather_facts: false
  tasks:
    - name: Claim to be a live builder
      ansible.builtin.set_fact:
        crpbot_role: builder
        crpbot_runtime_mode: live
    - name: Write the .env
      ansible.builtin.include_role:
        name: crpbot_env
"""

OWN_PLAYBOOK_DIRECT = """
- name: A person's own playbook that calls the .env writer with hostile parameters
  hosts: sandbox-qc
  gather_facts: false
  tasks:
    - name: Write live
      crpbot_env_file:
        path: /home/numan/crpbot/.env
        runtime_mode: live
        live_confirmation: CONFIRM
"""


# (id, files to create {path relative to the inventory dir or "tmp:<name>": text}, args, fragments the refusal
# must name). Each run also carries the confirmation on the command line, as an attacker would, except the
# one that keeps it in a file.
REFUSED = [
    ("extra-vars-role-and-mode", {}, ["-e", "crpbot_role=builder", "-e", "crpbot_runtime_mode=live"],
     ["host sandbox-qc: variable crpbot_role is 'builder' (from extra vars (-e))"]),
    ("extra-vars-env-role-input", {}, ["-e", "crpbot_env_role=builder", "-e", "crpbot_env_runtime_mode=live"],
     ["variable crpbot_env_role is 'builder' (from extra vars (-e))",
      "variable crpbot_env_runtime_mode is 'live' (from extra vars (-e))"]),
    ("extra-vars-env-mode-input", {}, ["-e", "crpbot_env_runtime_mode=live"],
     ["host sandbox-qc: variable crpbot_env_runtime_mode is 'live'"]),
    ("extra-vars-group-names", {}, ["-e", '{"group_names": ["builder", "crpbot", "live_approved"]}'],
     ["variable group_names is [builder, crpbot, live_approved] (from extra vars (-e))"]),
    ("extra-vars-hostname", {}, ["-e", "inventory_hostname=sandbox-builder"],
     ["variable inventory_hostname is 'sandbox-builder' (from extra vars (-e))"]),
    ("extra-vars-other-role-inputs", {}, ["-e", "amazon_q_role=builder", "-e", "crpbot_credentials_role=builder"],
     ["variable amazon_q_role is 'builder'", "variable crpbot_credentials_role is 'builder'"]),
    ("setting-upper", {}, ["-e", '{"crpbot_env_settings": {"RUNTIME_MODE": "live"}}'],
     ["host sandbox-qc: values.RUNTIME_MODE: RUNTIME_MODE is written only from runtime_mode"]),
    ("setting-lower", {}, ["-e", '{"crpbot_env_settings": {"runtime_mode": "live"}}'],
     ["values.runtime_mode: RUNTIME_MODE is written only from runtime_mode"]),
    ("vault-app-secret", {}, ["-e", '{"vault_crpbot_app_secrets": {"Runtime_Mode": "live"}}'],
     ["secrets.Runtime_Mode: RUNTIME_MODE is written only from runtime_mode"]),
    ("host-vars-file", {"host_vars/sandbox-qc.yml": "crpbot_role: builder\ncrpbot_runtime_mode: live\n"}, [],
     ["variable crpbot_role is 'builder' (from host_vars/group_vars files beside the inventory)"]),
    # (crpbot_runtime_mode in a group_vars file loses to the inventory's own host variable anyway)
    ("group-vars-file", {"group_vars/qc/live.yml": "crpbot_runtime_mode: live\ncrpbot_env_runtime_mode: live\n"}, [],
     ["variable crpbot_env_runtime_mode is 'live' (from host_vars/group_vars files beside the inventory)"]),
    ("confirmation-in-a-file", {"group_vars/all/confirm.yml": "crpbot_env_live_confirm: CONFIRM\n"}, [],
     ["crpbot_env_live_confirm is set in host_vars/group_vars files beside the inventory"]),
    ("second-inventory-source", {"tmp:extra.ini": "[builder]\nsandbox-qc\n[live_approved]\nsandbox-qc\n"},
     ["-i", "tmp:extra.ini"], ["host sandbox-qc is in qc and builder"]),
    ("policy-task-skipped", {}, ["--skip-tags", "always", "-e", "crpbot_role=builder"],
     ["REFUSED, nothing was written: host sandbox-qc: variable crpbot_role is 'builder'"]),
    # A role parameter the role does not declare: its argument spec refuses it before any task runs.
    ("own-playbook-role-params", {"tmp:own.yml": OWN_PLAYBOOK_ROLE_PARAMS}, ["play:tmp:own.yml"],
     ["crpbot_role. Supported parameters include"]),
    ("own-playbook-play-vars", {"tmp:own.yml": OWN_PLAYBOOK_PLAY_VARS}, ["play:tmp:own.yml"],
     ["variable crpbot_role is 'builder' (from play, role, task or include vars)"]),
    ("own-playbook-set-fact", {"tmp:own.yml": OWN_PLAYBOOK_SET_FACT}, ["play:tmp:own.yml"],
     ["variable crpbot_role is 'builder' (from set_fact or register in this run)"]),
    ("own-playbook-direct-module", {"tmp:own.yml": OWN_PLAYBOOK_DIRECT}, ["play:tmp:own.yml"],
     ["runtime_mode: live refused: the inventory does not approve live for it"]),
]


@pytest.mark.parametrize(("files", "args", "fragments"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_every_way_to_ask_for_live_on_the_qc_host_is_refused_before_any_write(converged, tmp_path, files, args,
                                                                            fragments):
    before = env_sums(converged)
    created = []
    for where, text in files.items():
        path = tmp_path / where[4:] if where.startswith("tmp:") else inventory_dir(converged) / where
        created.append(put(path, text))
    play = "site.yml"
    resolved = []
    for arg in args:
        if arg.startswith("play:tmp:"):
            play = str(tmp_path / arg[9:])
        else:
            resolved.append(str(tmp_path / arg[4:]) if arg.startswith("tmp:") else arg)
    try:
        confirm = [] if any("crpbot_env_live_confirm" in text for text in files.values()) else ["-e", CONFIRM_HINT]
        proc = playbook(converged, *resolved, *confirm, play=play)
    finally:
        for path in created:
            path.unlink()
    assert proc.returncode != 0, output(proc)
    for fragment in fragments:
        assert fragment in output(proc), (fragment, output(proc)[-4000:])
    assert env_sums(converged) == before
    assert set(modes(converged, QC)) == {"dryrun"}


def test_the_module_refuses_live_on_qc_whatever_it_is_given(converged, tmp_path):
    before = env_sums(converged)
    hostile = "path=/home/numan/crpbot/.env host_role=builder live_approved=true runtime_mode=live"
    inventory = str(converged["inventory"])
    through_action = run(["ansible", "-i", inventory, QC, "-m", "crpbot_env_file", "-a", hostile])
    assert through_action.returncode != 0
    assert "host_role, live_approved is set from the inventory's groups" in output(through_action)
    # Without the action plugin the module runs with exactly these parameters, on the host, as numan.
    bypass = run(["ansible", "-i", inventory, QC, "-m", "crpbot_env_file", "-a", hostile],
                 env={"ANSIBLE_ACTION_PLUGINS": str(tmp_path)})
    assert bypass.returncode != 0
    assert "RUNTIME_MODE=live refused on this host: live mode is only allowed for the root user" in output(bypass)
    assert env_sums(converged) == before
    assert set(modes(converged, QC)) == {"dryrun"}


def test_a_hand_set_live_in_any_form_is_put_back_with_a_warning(converged):
    on_host(converged, QC, "cd crpbot && sed -i 's/^RUNTIME_MODE=.*/RUNTIME_MODE=live/' .env && printf '%s\\n' "
                           "'export runtime_mode=live' '  Runtime_Mode = \"live\"  # mine' 'RUNTIME_MODE' >> .env")
    assert "live" in modes(converged, QC)
    proc = playbook(converged)
    assert proc.returncode == 0, output(proc)
    assert "host sandbox-qc had RUNTIME_MODE=(no value), live in /home/numan/crpbot/.env; it is now dryrun. " \
           "A QC host never trades." in output(proc)
    assert modes(converged, QC) == ["dryrun", "dryrun", "dryrun", "dryrun"]
    text = on_host(converged, QC, "cat crpbot/.env")
    assert "export runtime_mode=dryrun\n" in text and '  Runtime_Mode =dryrun  # mine\n' in text
    again = playbook(converged)
    assert again.returncode == 0 and again.stdout[again.stdout.index("PLAY RECAP"):].count("changed=0") == 2


# --------------------------------------------------------------------------- secrets

def test_a_secret_that_cannot_be_written_exactly_is_refused_by_name_before_any_write(converged):
    before = env_sums(converged)
    proc = playbook(converged, "-e", json.dumps({"vault_crpbot_app_secrets": {"GOOD": "x", "INTERPOLATED": "Hq1-${HOME}"}}))
    assert proc.returncode != 0
    assert "secrets.INTERPOLATED: the value contains a ${...} reference" in output(proc)
    assert "Hq1" not in output(proc)
    assert env_sums(converged) == before


def test_backups_are_bounded_and_private(converged):
    # Backups an earlier version left, older than any the converge makes.
    old = " ".join(f"crpbot/.env.2024010{n}T000000.bak" for n in range(1, 8))
    for host in (QC, BUILDER):
        on_host(converged, host, f"for f in {old}; do cp crpbot/.env $f; done; "
                                 "sed -i 's/^TELEGRAM_CHAT_ID=.*/TELEGRAM_CHAT_ID=bounded-test/' crpbot/.env")
    proc = playbook(converged)
    assert proc.returncode == 0, output(proc)
    for host, user in ((QC, "numan"), (BUILDER, "root")):
        listing = on_host(converged, host, "stat -c '%a %U %n' crpbot/.env.*.bak").splitlines()
        assert len(listing) == 5, listing
        assert all(line.startswith(f"600 {user} ") for line in listing), listing
        # The oldest went first: of 7 planted + the new one + any earlier, the 3 oldest are gone at least.
        assert not any(f"2024010{n}T" in line for n in (1, 2, 3) for line in listing), listing


def test_no_secret_in_any_output(converged):
    secrets = testbed.secret_values(testbed.sandbox_secrets())
    # A change on each host so the diff has something to show, then a converge, a check and a rerun.
    for host in converged["state"]["hosts"]:
        on_host(converged, host, "sed -i 's/^TELEGRAM_CHAT_ID=.*/TELEGRAM_CHAT_ID=changed-by-hand/' crpbot/.env")
    outputs = [
        playbook(converged, "-vvvv", "--diff", "--check"),
        playbook(converged, "-vvvv", "--diff"),
        playbook(converged, "-vvvv", "--diff"),
    ]
    assert all(p.returncode == 0 for p in outputs), [p.stdout[-3000:] for p in outputs]
    text = "".join(output(p) for p in outputs)
    assert "TELEGRAM_CHAT_ID" in text  # the key name is reported, its value never
    leaked = [s[:4] + "…" for s in secrets if s in text]
    assert leaked == [], f"secret values found in -vvvv output: {leaked}"


HOSTILE_APP_SECRETS = {
    "TEMPLATE": "Hs1-{{ lookup('ansible.builtin.pipe', 'touch /tmp/crpbot-hostile-ran') }}",
    "BLOCK": "Hs2-{% if true %}yes{% endif %}",
    "RAW_TAGS": "Hs3-{% raw %}{{ x }}{% endraw %}",
    "BACKSLASH_END": "Hs4-trailing\\",
    "CRLF": "Hs5-line1\r\nline2",
    "LF": "Hs6-line1\nline2\n",
    "SPACES": "  Hs7 spaced  ",
    "HASH": "Hs8 #after-a-space",
    "QUOTES": "Hs9-'single' \"double\" `back`",
    "UNICODE": "Hs10-pässwörd-日本語-😀",
    "DOLLAR": "Hs11-$HOME-$(id)-%(x)s-$",
    "EMPTY": "",
}
HOSTILE_DB_PASSWORD = "Hd1 {{ lookup('ansible.builtin.pipe', 'touch /tmp/crpbot-hostile-ran') }} ${HOME} \\'\"#%@:/?&=+ é "
RAN = Path("/tmp/crpbot-hostile-ran")


def write_vault(path: Path, data: dict) -> Path:
    plain = path.with_suffix(".plain")
    plain.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        run(["ansible-vault", "encrypt", "--output", str(path), str(plain)], check=True)
    finally:
        plain.unlink()
    return path


@pytest.fixture(scope="module")
def hostile(converged):
    """The sandbox's vault overridden by hostile values (a second vault file, as a person would add
    one), the database role given the hostile password; everything put back afterwards."""
    RAN.unlink(missing_ok=True)
    override = write_vault(inventory_dir(converged) / "group_vars" / "all" / "zz_hostile.yml", {
        "vault_crpbot_db_password": HOSTILE_DB_PASSWORD,
        "vault_crpbot_app_secrets": HOSTILE_APP_SECRETS,
    })
    testbed.set_db_password(converged["state"], HOSTILE_DB_PASSWORD)
    on_host(converged, QC, "echo 'HAND_ADDED=kept by hand' >> crpbot/.env")
    runs = [playbook(converged, "-vvvv", "--diff", *extra) for extra in ((), ())]
    before_check = env_sums(converged)
    runs.append(playbook(converged, "-vvvv", "--diff", "--check"))
    yield {"runs": runs, "check_changed_bytes": env_sums(converged) != before_check}
    override.unlink()
    testbed.set_db_password(converged["state"], testbed.sandbox_secrets()["vault_crpbot_db_password"])
    back = playbook(converged)
    assert back.returncode == 0, output(back)


def test_hostile_secrets_converge_then_report_no_change(hostile):
    first, second, check = hostile["runs"]
    assert first.returncode == 0, output(first)[-5000:]
    for proc in (second, check):
        assert proc.returncode == 0, output(proc)[-5000:]
        assert proc.stdout[proc.stdout.index("PLAY RECAP"):].count("changed=0") == 2
    assert not hostile["check_changed_bytes"]


def test_no_vault_value_is_ever_templated(hostile):
    assert not RAN.exists()


@pytest.mark.parametrize("host", [QC, BUILDER])
def test_hostile_secrets_reach_the_app_byte_for_byte(converged, hostile, host):
    seen = read_back(converged, host)
    for key, value in HOSTILE_APP_SECRETS.items():
        assert seen["values"][key] == value, key
    assert seen["db_password"] == HOSTILE_DB_PASSWORD  # SQLAlchemy's make_url of DB_URL
    assert seen["db_password_file"] == HOSTILE_DB_PASSWORD  # .db_password, exactly, no newline
    check = on_host(converged, host, "cd crpbot && .venv/bin/python -m apps.runtime.main --check-db")
    assert check.splitlines() == ["RUNTIME_MODE=dryrun", "DB=ok"]  # a real login with the hostile password


def test_a_secret_removed_from_the_vault_leaves_the_env_and_hand_added_keys_stay(converged, hostile):
    first = output(hostile["runs"][0])
    for key in testbed.sandbox_secrets()["vault_crpbot_app_secrets"]:
        assert key in first.split("removed [", 1)[1].split("]", 1)[0], key
    for host in (QC, BUILDER):
        values = read_back(converged, host)["values"]
        assert not set(testbed.sandbox_secrets()["vault_crpbot_app_secrets"]) & set(values)
    assert read_back(converged, QC)["values"]["HAND_ADDED"] == "kept by hand"


def test_no_hostile_secret_in_any_output(hostile):
    text = "".join(output(proc) for proc in hostile["runs"])
    assert "TEMPLATE" in text  # the run reported the key, by name
    values = [*HOSTILE_APP_SECRETS.values(), HOSTILE_DB_PASSWORD, HOSTILE_DB_PASSWORD.strip()]
    leaked = [value[:4] + "…" for value in values if len(value.strip()) >= 6 and value.strip() in text]
    leaked += [line[:4] + "…" for value in values for line in value.splitlines() if len(line) >= 6 and line in text]
    assert leaked == [], f"secret values found in -vvvv output: {leaked}"



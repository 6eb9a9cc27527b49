# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for tests that run the project's ansible commands from the repo root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_plugin(path: str, name: str | None = None):
    """Load a plugin file of the project (``plugins/modules/x.py``, relative to the repo) as a Python
    module, under `name` (default: the file's stem). Its ``ansible.module_utils.crpbot_*`` imports
    resolve to plugins/module_utils (tests/unit/conftest.py serves them, as Ansible does)."""
    import importlib.util

    file = REPO / path
    spec = importlib.util.spec_from_file_location(name or file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bin_path(name: str) -> str:
    """An executable of the project's venv (ansible-playbook, ansible-doc, ...)."""
    return str(Path(sys.executable).parent / name)


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """The environment for an ansible command: the project's ansible.cfg, temp dirs under tmp_path."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def host_python() -> str:
    """The interpreter a module runs under on a real host: the system python3, else this venv's."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


@dataclass(frozen=True)
class PlayResult:
    """What one run_module_play run gave: the whole console output (stdout then stderr), the
    registered results by register name (None when the play stopped before saving them) and
    ansible-playbook's exit code."""

    output: str
    results: dict | None
    returncode: int


def save_results_task(names: Sequence[str], dest: Path) -> dict:
    """A last task that writes the registered variables `names` to dest as one JSON object.

    It runs even under --check and shows no diff of its own: the file is the test's, not the
    module's, and the module's diffs stay the only ones in the output."""
    pairs = ", ".join(f"'{name}': {name}" for name in names)
    return {
        "name": "Save the results",
        "ansible.builtin.copy": {"content": "{{ {" + pairs + "} | to_nice_json }}", "dest": str(dest), "mode": "0600"},
        "check_mode": False,
        "diff": False,
    }


def crpbot_localhost(role: str = "qc", runtime_mode: str = "dryrun", user: str = "root") -> dict:
    """A config of the project's own inventory plugin with one host, ``localhost`` on the local
    connection (for modules whose action plugin takes the host's role from the inventory's groups)."""
    return {
        "plugin": "crpbot",
        "rds": {"host": "db.invalid"},
        "hosts": [{"name": "localhost", "user": user, "connection": "local", "role": role,
                   "runtime_mode": runtime_mode}],
    }


def run_module_play(
    tmp_path: Path,
    tasks: Sequence[Mapping],
    *,
    name: str = "Exercise the project's modules",
    extra_args: Sequence[str] = (),
    check: bool = False,
    env: Mapping[str, str] | None = None,
    interpreter: str | None = None,
    timeout: int = 600,
    inventory: Mapping | None = None,
) -> PlayResult:
    """Run `tasks` as one play against localhost (local connection) and return what they registered.

    Writes tmp_path/hosts.yml (localhost only, `interpreter` or the host's python3),
    tmp_path/play.yml (JSON, which is YAML) with the tasks plus a last task that saves every
    registered variable to tmp_path/results.json (`inventory`: a crpbot inventory plugin config such as
    crpbot_localhost() instead of the plain localhost one), runs the venv's ansible-playbook from the repo
    root with ansible_env(tmp_path) updated by `env`, `--check` when `check`, then `extra_args`
    (e.g. "--diff", "-vvv"), and reads results.json back. A task that may fail must carry
    ignore_errors for its result to be saved. The caller asserts on returncode: tmp_path may be
    reused for several runs, each overwrites these three files.
    """
    names = list(dict.fromkeys(task["register"] for task in tasks if "register" in task))
    results = tmp_path / "results.json"
    results.unlink(missing_ok=True)  # a failed run must not read an earlier run's results
    # ansible.cfg enables only the crpbot, yaml and ini inventory plugins, so no "-i localhost,".
    localhost = {"ansible_connection": "local", "ansible_python_interpreter": interpreter or host_python()}
    if inventory is None:
        inventory_file = tmp_path / "hosts.yml"
        inventory_file.write_text(json.dumps({"all": {"hosts": {"localhost": localhost}}}))
    else:
        inventory_file = tmp_path / "localhost.crpbot.yml"
        config = {**inventory, "vars": {**inventory.get("vars", {}),
                                        "ansible_python_interpreter": localhost["ansible_python_interpreter"]}}
        inventory_file.write_text(json.dumps(config))
    play = tmp_path / "play.yml"
    all_tasks = [*tasks, save_results_task(names, results)]
    play.write_text(json.dumps([{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": all_tasks}]))
    args = [bin_path("ansible-playbook"), "-i", str(inventory_file), *(["--check"] if check else []), *extra_args,
            str(play)]
    done = subprocess.run(  # noqa: S603
        args,
        cwd=REPO,
        env={**ansible_env(tmp_path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlayResult(
        output=done.stdout + done.stderr,
        results=json.loads(results.read_text()) if results.exists() else None,
        returncode=done.returncode,
    )


def at_a_terminal(argv: Sequence[str], prompt: bytes, answer: str, timeout: float = 900) -> tuple[int, str]:
    """Run ``argv`` from the repo root with a pseudo-terminal as its controlling terminal (as a person runs
    it) and type ``answer`` and Enter at ``prompt``. Returns ``(exit code, everything the terminal showed)``.

    Ansible's pause action flushes input typed before it reads (it switches the terminal out of canonical
    mode first), so the answer is typed only once the prompt is shown and the mode has switched.
    """
    import pty
    import select
    import termios
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        try:
            os.chdir(REPO)
            os.execvp(argv[0], list(argv))
        finally:
            os._exit(127)
    text = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the command ended and closed the terminal
                    break
                if not chunk:
                    break
                text += chunk
            if not answered and prompt in text and not termios.tcgetattr(fd)[3] & termios.ICANON:
                time.sleep(0.5)  # the flush follows the mode switch at once
                os.write(fd, answer.encode() + b"\r")
                answered = True
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    shown = text.decode(errors="replace")
    assert answered, f"the prompt never showed:\n{shown[-3000:]}"
    return os.waitstatus_to_exitcode(status), shown

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crpbot_ansiballz_cache callback: module payloads kept between runs, never one built from older code."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.ansible_run import REPO, ansible_env, bin_path, host_python, load_plugin

cache = load_plugin("plugins/callback/crpbot_ansiballz_cache.py")

DAY = 24 * 3600


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {
        "library": tree(tmp_path / "library", {"hello.py": "print('v1')\n"}),
        "utils": tree(tmp_path / "module_utils", {"util.py": "VALUE = 1\n", "__pycache__/util.cpython.pyc": "x"}),
        "roles": tree(tmp_path / "roles", {"r/library/mod.py": "A = 1\n", "r/tasks/main.yml": "---\n"}),
        "collections": tree(tmp_path / "coll", {"ansible_collections/ns/c/plugins/modules/m.py": "B = 1\n"}),
    }


def key_of(dirs: dict[str, Path]) -> str:
    return cache.source_key([str(dirs["library"]), str(dirs["utils"])], [str(dirs["roles"])], [str(dirs["collections"])])


def test_same_code_same_key_and_pycache_does_not_count(dirs):
    before = key_of(dirs)
    (dirs["utils"] / "__pycache__" / "util.cpython.pyc").write_text("changed")
    assert key_of(dirs) == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: (d["library"] / "hello.py").write_text("print('v2')\n"), id="module-same-size"),
        pytest.param(lambda d: (d["utils"] / "util.py").write_text("VALUE = 2\n"), id="module_utils-same-size"),
        pytest.param(lambda d: (d["utils"] / "new.py").write_text(""), id="module_utils-added"),
        pytest.param(lambda d: (d["utils"] / "util.py").unlink(), id="module_utils-removed"),
        pytest.param(lambda d: (d["utils"] / "util.py").rename(d["utils"] / "other.py"), id="module_utils-renamed"),
        pytest.param(lambda d: (d["roles"] / "r" / "library" / "mod.py").write_text("A = 2\n"), id="role-library"),
        pytest.param(lambda d: tree(d["roles"], {"s/module_utils/x.py": ""}), id="role-module_utils-added"),
        pytest.param(
            lambda d: os.utime(d["collections"] / "ansible_collections/ns/c/plugins/modules/m.py", (1, 1)),
            id="collection-module-touched",
        ),
    ],
)
def test_every_change_to_payload_code_gives_a_new_key(dirs, change):
    before = key_of(dirs)
    change(dirs)
    assert key_of(dirs) != before


def test_a_role_file_outside_library_does_not_change_the_key(dirs):
    before = key_of(dirs)
    (dirs["roles"] / "r" / "tasks" / "main.yml").write_text("---\n- name: x\n")
    assert key_of(dirs) == before


def test_prepare_makes_a_private_dir_and_prunes_only_old_unused_keys(tmp_path):
    base = tmp_path / "crpbot-ansiballz"
    now = time.time()
    old, recent = base / "old", base / "recent"
    for path, age in ((old, 8 * DAY), (recent, 6 * DAY)):
        path.mkdir(parents=True)
        (path / "payload").write_text("x")
        os.utime(path, (now - age, now - age))
    base.chmod(0o700)
    got = cache.prepare(str(base), "k1", now=now)
    assert got == str(base / "k1")
    assert (base / "k1").stat().st_mode & 0o777 == 0o700
    assert not old.exists()
    assert (recent / "payload").exists()


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o755 | 0o002])
def test_prepare_refuses_a_base_others_can_write(tmp_path, mode):
    base = tmp_path / "crpbot-ansiballz"
    base.mkdir()
    base.chmod(mode)
    assert cache.prepare(str(base), "k1") is None
    assert not (base / "k1").exists()


def test_prepare_refuses_a_base_that_is_a_link(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "crpbot-ansiballz").symlink_to(real)
    assert cache.prepare(str(tmp_path / "crpbot-ansiballz"), "k1") is None


def test_point_links_and_repoints_but_leaves_a_run_own_cache(tmp_path):
    run_tmp, first, second = tmp_path / "run", tmp_path / "c1", tmp_path / "c2"
    for path in (run_tmp, first, second):
        path.mkdir()
    assert cache.point(str(run_tmp), str(first))
    assert os.readlink(run_tmp / "ansiballz_cache") == str(first)
    assert cache.point(str(run_tmp), str(second))
    assert os.readlink(run_tmp / "ansiballz_cache") == str(second)
    assert sorted(p.name for p in run_tmp.iterdir()) == ["ansiballz_cache"]

    other = tmp_path / "run2"
    (other / "ansiballz_cache").mkdir(parents=True)
    assert not cache.point(str(other), str(first))
    assert not (other / "ansiballz_cache").is_symlink()


# --- through ansible-playbook: a changed module or module_utils file is never served from the cache ---------

MODULE = """#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.crpbot_cache_probe import VALUE
AnsibleModule(argument_spec={{}}).exit_json(changed=False, module="{module}", util=VALUE)
"""


def run_probe(project: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run(  # noqa: S603
        [bin_path("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={host_python()}",
         str(project / "play.yml")],
        cwd=project, env=env, text=True, capture_output=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((project / "result.json").read_text())
    return {key: result[key] for key in ("changed", "module", "util")}


def test_playbook_runs_reuse_payloads_and_never_run_older_code(tmp_path):
    project = tree(tmp_path / "project", {
        "library/crpbot_cache_probe.py": MODULE.format(module="m1"),
        "module_utils/crpbot_cache_probe.py": "VALUE = 'u1'\n",
        "play.yml": (
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - crpbot_cache_probe:\n      register: out\n"
            "    - ansible.builtin.copy: {content: '{{ out | to_json }}', dest: '{{ playbook_dir }}/result.json',"
            " mode: '0600'}\n"
        ),
        "ansible.cfg": (
            "[defaults]\nlibrary = library\nmodule_utils = module_utils\n"
            f"callback_plugins = {REPO / 'plugins' / 'callback'}\ncallbacks_enabled = crpbot_ansiballz_cache\n"
        ),
    })
    env = {**ansible_env(tmp_path), "ANSIBLE_CONFIG": str(project / "ansible.cfg")}
    base = tmp_path / "ansible-local" / "crpbot-ansiballz"

    assert run_probe(project, env) == {"changed": False, "module": "m1", "util": "u1"}
    (key1,) = base.iterdir()
    payload = key1 / "ansible.legacy.crpbot_cache_probe-ZIP_DEFLATED-none"
    built = payload.stat().st_mtime_ns

    # Unchanged code: the payload is served from the cache, not built again.
    assert run_probe(project, env) == {"changed": False, "module": "m1", "util": "u1"}
    assert [p.name for p in base.iterdir()] == [key1.name]
    assert payload.stat().st_mtime_ns == built

    # The module changes (same size): the run gets the new code.
    (project / "library" / "crpbot_cache_probe.py").write_text(MODULE.format(module="m2"))
    assert run_probe(project, env) == {"changed": False, "module": "m2", "util": "u1"}
    # A module_utils file it imports changes (same size): the run gets the new code.
    (project / "module_utils" / "crpbot_cache_probe.py").write_text("VALUE = 'u2'\n")
    assert run_probe(project, env) == {"changed": False, "module": "m2", "util": "u2"}
    assert len(list(base.iterdir())) == 3
    # Back to the first code: its payload is still the one built for it.
    (project / "library" / "crpbot_cache_probe.py").write_text(MODULE.format(module="m1"))
    (project / "module_utils" / "crpbot_cache_probe.py").write_text("VALUE = 'u1'\n")
    assert run_probe(project, env) == {"changed": False, "module": "m1", "util": "u1"}
    assert payload.stat().st_mtime_ns == built

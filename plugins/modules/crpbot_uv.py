#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crpbot_uv
short_description: A pinned uv for the host user and the project's .venv synced from uv.lock, in one round trip
description:
  - >-
    Does on the host, in one module run, what the crpbot_uv role needs: picks the uv wheel of the host's CPU
    architecture from O(wheels), downloads it into O(cache_dir) (checked against its SHA-256; a cached wheel with
    the right SHA-256 is not downloaded again), installs the C(uv) binary the wheel carries as
    C(uv-<version>.data/scripts/uv) into O(bin_dir) atomically, checks that C(uv --version) is O(version), then
    runs C(uv sync --locked) in O(project_dir) with O(python), so the project's C(.venv) matches C(uv.lock).
  - >-
    B(When is it changed.) When a directory is created, the wheel downloaded, the binary written or its mode
    fixed, or when uv's own report of the sync names a change (creating or replacing the environment, one
    C(+)/C(-)/C(~) line per package). An up-to-date host reports nothing changed.
  - >-
    B(Check mode.) Nothing is written. When uv is already installed and pinned, C(uv sync --locked --dry-run)
    predicts the sync; otherwise the sync is reported as pending. A lockfile that does not match
    C(pyproject.toml) fails in check mode too, with uv's message.
  - >-
    B(Failures) name the host (O(host)), the path and the fix, and leave C(.venv) as it was: C(--locked) makes uv
    refuse to touch the environment when the lockfile needs an update. A wheel whose download does not match its
    SHA-256 is deleted and the run fails.
  - >-
    The host's Python standard library is all it needs; uv never downloads a Python (C(UV_PYTHON_DOWNLOADS=never)).
version_added: "0.2.0"
author:
  - crpbot-ansible contributors
options:
  version:
    description: The pinned uv release, for example C(0.13.9); the wheels must be of this version.
    type: str
    required: true
  wheels:
    description:
      - The uv wheel per CPU architecture (the keys, as C(uname -m) names them), each a mapping of C(url) (https)
        and C(sha256) (64 lowercase hex digits).
    type: dict
    required: true
  cache_dir:
    description: Where the wheel is kept, so a second run downloads nothing. Created (mode C(0755)) when missing.
    type: path
    required: true
  bin_dir:
    description: Where the C(uv) binary goes. Created (mode C(0755)) when missing.
    type: path
    required: true
  owner:
    description: The host user who owns the directories, the wheel and the binary.
    type: str
    required: true
  project_dir:
    description: The checkout holding C(pyproject.toml) and C(uv.lock); C(.venv) is created in it.
    type: path
    required: true
  python:
    description: The interpreter of the project's C(.venv) (the host's own python3).
    type: path
    default: /usr/bin/python3
  native_tls:
    description: Let uv trust the system's CA store (C(UV_NATIVE_TLS=1)) instead of its bundled roots.
    type: bool
    default: false
  host:
    description: The inventory name of the host, used in messages.
    type: str
    default: ""
  timeout:
    description: Seconds the wheel download may take.
    type: int
    default: 120
notes:
  - Supports check mode and diff mode (the binary's SHA-256 before and after, the packages uv would change).
seealso:
  - module: crpbot_wheel_script
    description: Installs one member of a wheel (the same code installs the uv binary here).
"""

EXAMPLES = r"""
- name: Install the pinned uv and sync .venv with uv.lock
  crpbot_uv:
    version: "0.13.9"
    wheels:
      x86_64:
        url: "https://files.pythonhosted.org/packages/3d/aa/\
          26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/\
          uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        sha256: d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19
    cache_dir: /home/numan/.cache/crpbot-ansible
    bin_dir: /home/numan/.local/bin
    owner: numan
    project_dir: /home/numan/crpbot
    host: "{{ inventory_hostname }}"
"""

RETURN = r"""
architecture:
  description: The host's CPU architecture, the key of O(wheels) used.
  returned: success
  type: str
  sample: x86_64
uv:
  description: Path of the uv binary.
  returned: success
  type: str
  sample: /home/numan/.local/bin/uv
uv_version:
  description: What C(uv --version) printed; null in check mode while uv is not installed yet.
  returned: success
  type: str
  sample: uv 0.13.9
wheel:
  description: The wheel's path and what was done with it (C(downloaded), C(cached)).
  returned: success
  type: dict
  sample: {path: /home/numan/.cache/crpbot-ansible/uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl, action: cached}
binary:
  description: What was done to the binary (C(installed), C(replaced), C(mode), C(none)), and its SHA-256.
  returned: success
  type: dict
  sample: {action: none, sha256: 4f1c0e0c9f7ad5b6a1e2d3c4b5a6978877665544332211ffeeddccbbaa998877}
venv:
  description:
    - C(synced) (uv changed the environment), C(current) (nothing to do), C(would_change) (check mode) or
      C(pending) (check mode, uv not installed yet), and uv's change lines.
  returned: success
  type: dict
  sample: {action: current, changes: []}
"""

import hashlib
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.crpbot_files import ModuleFailure as FilesFailure
from ansible.module_utils.crpbot_files import ensure_directory, resolve_uid
from ansible.module_utils.crpbot_wheel import ModuleFailure as WheelFailure
from ansible.module_utils.crpbot_wheel import CHUNK, run as install_member, sha256_of_file
from ansible.module_utils.urls import open_url

# uv's own words decide "changed" (uv 0.13.9, on stderr). A real sync: "Creating virtual environment at: .venv",
# "Removed virtual environment ...", "Installed N packages in ...", "Uninstalled N packages in ...", and one
# " + pkg==v" / " - pkg==v" line per package; an up-to-date sync says only "Resolved N packages" and "Checked N
# packages". A dry run: "Would create|replace project environment", "Would install|uninstall N packages"; an
# up-to-date one says "Would make no changes".
CHANGE = re.compile(r"(?m)^(Creat|Remov|Install|Uninstall|Replac)[a-z]* |^ [-+~] ")
DRY_RUN_CHANGE = re.compile(r"(?m)^Would (create|replace|remove|install|uninstall|update) |^ [-+~] ")
PACKAGE_LINE = re.compile(r"(?m)^ [-+~] .*$")
VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Failure(Exception):
    """A failure whose message names the host, the path and the fix."""


class Uv:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.changed = False
        self.prefix = f"host {self.p['host']}: " if self.p["host"] else ""
        try:
            self.uid = resolve_uid(self.p["owner"])
        except FilesFailure as exc:
            raise Failure(f"{self.prefix}{exc}; set crpbot_uv_owner to the host user") from None

    def fail(self, text: str) -> Failure:
        return Failure(self.prefix + text)

    # ------------------------------------------------------------------ the pieces

    def wheel(self) -> tuple[str, dict]:
        arch = os.uname().machine
        wheels = self.p["wheels"]
        if arch not in wheels:
            raise self.fail(
                f"no uv wheel is pinned for its architecture {arch} (crpbot_uv_wheels has "
                f"{', '.join(sorted(wheels)) or 'none'}); add crpbot_uv_wheels.{arch} with the url and sha256 of the "
                f"manylinux wheel of uv {self.p['version']} from https://pypi.org/pypi/uv/json."
            )
        wheel = wheels[arch]
        url, sha = (wheel or {}).get("url", ""), str((wheel or {}).get("sha256", ""))
        if not (isinstance(url, str) and url.startswith("https://") and url.endswith(".whl") and SHA256.match(sha)):
            raise self.fail(
                f"crpbot_uv_wheels.{arch} must have an https url of a .whl and its sha256 (64 lowercase hex digits); "
                "copy both from https://pypi.org/pypi/uv/json."
            )
        return arch, {"url": url, "sha256": sha}

    def directory(self, path: str) -> bool:
        """path a directory (0755, owned by the owner); True when it had to change (or would)."""
        try:
            changed = ensure_directory(path, 0o755, self.uid, self.check)
        except FilesFailure as exc:
            raise self.fail(str(exc)) from None
        self.changed |= changed
        return changed

    def download(self, url: str, sha: str, dest: str) -> str:
        """The wheel at dest with the pinned SHA-256: 'cached' when it already was, else 'downloaded'."""
        if sha256_of_file(dest) == sha:
            return "cached"
        self.changed = True
        if self.check:
            return "downloaded"
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".tmp", dir=os.path.dirname(dest))
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                try:
                    response = open_url(url, timeout=self.p["timeout"], http_agent="crpbot-ansible")
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
                except Exception as exc:  # urllib, TLS and socket errors all land here
                    raise self.fail(f"cannot download {url}: {to_native(exc)}; check the host's network and proxy")
                os.fchmod(out.fileno(), 0o644)
                os.fsync(out.fileno())
            if digest.hexdigest() != sha:
                raise self.fail(
                    f"the download of {url} has SHA-256 {digest.hexdigest()}, not the pinned {sha}; it was deleted. "
                    "Check crpbot_uv_wheels against https://pypi.org/pypi/uv/json."
                )
            os.chown(tmp, self.uid, -1)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return "downloaded"

    def binary(self, wheel_path: str, dest: str, wheel_pending: bool) -> dict:
        if wheel_pending:  # check mode with no wheel on the host yet: installing is pending
            self.changed = True
            return {"action": "installed", "sha256": None, "previous_sha256": sha256_of_file(dest)}
        params = {"wheel": wheel_path, "member": f"uv-{self.p['version']}.data/scripts/uv", "dest": dest, "mode": "0755"}
        try:
            result = install_member(params, self.check)
        except WheelFailure as exc:
            raise self.fail(f"{exc}; delete {wheel_path} and run again") from None
        if result["changed"]:
            self.changed = True
            if not self.check:
                os.chown(dest, self.uid, -1)
        return {"action": result["action"], "sha256": result["sha256"], "previous_sha256": result["previous_sha256"]}

    def uv_version(self, uv: str) -> str:
        rc, out, err = self.module.run_command([uv, "--version"])
        text = (out or err).strip()
        if rc != 0 or not re.match(rf"^uv {re.escape(self.p['version'])}( |$)", text):
            raise self.fail(
                f"{uv} --version says {text!r}, expected uv {self.p['version']}; check that crpbot_uv_wheels holds "
                "the wheels of that version."
            )
        return text

    def project_files(self) -> None:
        project = self.p["project_dir"]
        missing = [name for name in ("pyproject.toml", "uv.lock") if not os.path.isfile(os.path.join(project, name))]
        if missing:
            raise self.fail(
                f"{project} has no {' and no '.join(missing)}; check out the crpbot repo there first (the repo role "
                "does), or fix project_dir in the inventory; a missing uv.lock is made with `uv lock` in the repo and "
                "committed."
            )

    def sync(self, uv: str) -> dict:
        argv = [uv, "sync", "--locked", "--python", self.p["python"]]
        if self.check:
            argv.append("--dry-run")
        env = {"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
        if self.p["native_tls"]:
            env["UV_NATIVE_TLS"] = "1"
        rc, _out, err = self.module.run_command(argv, cwd=self.p["project_dir"], environ_update=env)
        if rc != 0:
            project = self.p["project_dir"]
            raise self.fail(
                f"`uv sync --locked` in {project} failed ({project}/.venv was left as it was). uv said: {err.strip()} "
                "Fix: if uv says the lockfile needs to be updated, run `uv lock` in the repo and commit uv.lock (or "
                "undo the change to pyproject.toml); otherwise fix what uv names and run again."
            )
        pattern = DRY_RUN_CHANGE if self.check else CHANGE
        changed = bool(pattern.search(err))
        self.changed |= changed
        action = ("would_change" if self.check else "synced") if changed else "current"
        return {"action": action, "changes": PACKAGE_LINE.findall(err)}

    # ------------------------------------------------------------------ the whole run

    def run(self) -> dict:
        if not VERSION.match(self.p["version"]):
            raise self.fail(f"crpbot_uv_version must be a release such as 0.13.9 (got {self.p['version']!r})")
        arch, wheel = self.wheel()
        cache_missing = not os.path.isdir(self.p["cache_dir"])
        for path in (self.p["cache_dir"], self.p["bin_dir"]):
            self.directory(path)
        wheel_path = os.path.join(self.p["cache_dir"], wheel["url"].rsplit("/", 1)[1])
        uv = os.path.join(self.p["bin_dir"], "uv")
        if self.check and cache_missing:
            wheel_action = "downloaded"
            self.changed = True
        else:
            wheel_action = self.download(wheel["url"], wheel["sha256"], wheel_path)
        wheel_pending = self.check and wheel_action == "downloaded"
        binary = self.binary(wheel_path, uv, wheel_pending)
        self.project_files()
        uv_ready = not (self.check and binary["action"] in ("installed", "replaced"))
        if uv_ready:
            version = self.uv_version(uv)
            venv = self.sync(uv)
        else:
            version, venv = None, {"action": "pending", "changes": []}
            self.changed = True
        return {
            "changed": self.changed,
            "architecture": arch,
            "uv": uv,
            "uv_version": version,
            "wheel": {"path": wheel_path, "action": wheel_action},
            "binary": binary,
            "venv": venv,
        }


def diff(result: dict) -> dict:
    binary = result["binary"]
    before = f"uv sha256: {binary['previous_sha256']}\n" if binary["previous_sha256"] else ""
    after = f"uv sha256: {binary['sha256'] or '(from the wheel)'}\n"
    if result["venv"]["changes"] or result["venv"]["action"] != "current":
        after += f".venv: {result['venv']['action']}\n" + "".join(f"{line}\n" for line in result["venv"]["changes"])
    return {"before_header": result["uv"], "after_header": result["uv"], "before": before, "after": after}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type="str", required=True),
            wheels=dict(type="dict", required=True),
            cache_dir=dict(type="path", required=True),
            bin_dir=dict(type="path", required=True),
            owner=dict(type="str", required=True),
            project_dir=dict(type="path", required=True),
            python=dict(type="path", default="/usr/bin/python3"),
            native_tls=dict(type="bool", default=False),
            host=dict(type="str", default=""),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    try:
        result = Uv(module).run()
    except Failure as exc:
        module.fail_json(msg=str(exc))
    if module._diff and result["changed"]:
        result["diff"] = diff(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

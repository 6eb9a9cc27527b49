# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One license, said the same way everywhere: LICENSE (GPL-3.0), the roles' meta, pyproject and every
Python file's header. The plugins import ansible-core's GPL-3.0+ code, so the project is GPL-3.0-or-later."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPDX = "GPL-3.0-or-later"
HEADER = "# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)"
# sha256 of the FSF's GPL-3.0 text (the same bytes as Debian's /usr/share/common-licenses/GPL-3
# and ansible-core's COPYING).
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
# The stand-in of the crpbot app (another project, served to the sandbox hosts) is not ours to license.
NOT_OURS = REPO / "tests" / "fixtures" / "crpbot"
PY_FILES = sorted(
    p for top in ("plugins", "tests", "benchmarks", "molecule")
    for p in (REPO / top).rglob("*.py")
    if NOT_OURS not in p.parents
)
ROLE_METAS = sorted((REPO / "roles").glob("*/meta/main.yml"))


def test_license_file_is_the_gpl3_text():
    data = (REPO / "LICENSE").read_bytes()
    assert data.lstrip().startswith(b"GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007")
    assert hashlib.sha256(data).hexdigest() == GPL3_SHA256, "LICENSE is not the unmodified GPL-3.0 text"


def test_pyproject_says_the_same():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == SPDX
    assert project["license-files"] == ["LICENSE"]


@pytest.mark.parametrize("meta", ROLE_METAS, ids=[m.parents[1].name for m in ROLE_METAS])
def test_every_role_meta_says_the_same(meta):
    assert yaml.safe_load(meta.read_text())["galaxy_info"]["license"] == SPDX


def test_every_role_has_a_meta():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == [m.parents[1].name for m in ROLE_METAS]


@pytest.mark.parametrize("path", PY_FILES, ids=[str(p.relative_to(REPO)) for p in PY_FILES])
def test_every_python_file_carries_the_header(path):
    head = path.read_text(encoding="utf-8").splitlines()[:5]
    assert HEADER in head, f"{path.relative_to(REPO)}: no GPL-3.0+ header in its first lines ({HEADER})"
    comments = " ".join(line for line in head if line.startswith("#")).lower()
    for other in ("mit license", "apache", "bsd", "gpl-2", "v2.0"):
        assert other not in comments, f"{path.relative_to(REPO)}: header names another license ({other})"


def test_the_files_were_found():
    names = {p.relative_to(REPO).as_posix() for p in PY_FILES}
    assert {"plugins/inventory/crpbot.py", "tests/roledocs.py", "benchmarks/s3_sync.py"} <= names
    assert not any(n.startswith("tests/fixtures/crpbot/") for n in names)


def test_readme_names_the_license():
    assert f"[{SPDX}](LICENSE)" in (REPO / "README.md").read_text()

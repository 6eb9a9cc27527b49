# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One list of Debian packages (tests/testbed/debian-packages.txt): `make deps` and `.ci/run` install it,
`make demo`/`make test` run `make deps` first, and the test bed's check names packages from it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import testbed

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "testbed" / "install-debian-packages"
LIST = REPO / "tests" / "testbed" / "debian-packages.txt"


def test_the_list_has_what_the_test_bed_runs():
    packages = testbed.debian_packages()
    assert len(packages) == len(set(packages)), "a package is listed twice"
    assert set(testbed.REQUIRED_TOOLS.values()) | {"postgresql-15", "make", "python3-venv"} <= set(packages)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p) for p in packages), packages


def test_the_list_is_the_only_place():
    makefile = (REPO / "Makefile").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    for text in (makefile, ci):
        assert "tests/testbed/install-debian-packages" in text
        assert "debootstrap" not in text and "apt-get" not in text, "a second list of packages"
    # make demo, make test and make molecule install the packages first.
    for target in ("demo", "test", "molecule"):
        prerequisites = re.search(rf"^{target}:([^#\n]*)", makefile, re.M).group(1).split()
        assert prerequisites[0] == "deps", f"make {target} does not run make deps first"
    assert re.search(r"^deps:.*\n\t@?bash tests/testbed/install-debian-packages$", makefile, re.M)


def test_the_test_bed_check_names_packages_of_the_list(tmp_path, monkeypatch):
    listed = tmp_path / "debian-packages.txt"
    listed.write_text("# comment\npodman  # containers\n\nzz-missing-one\nzz-missing-two\n")
    monkeypatch.setattr(testbed, "DEBIAN_PACKAGES", listed)
    asked = []
    monkeypatch.setattr(testbed, "missing_debian_packages", lambda pkgs: asked.append(pkgs) or pkgs[1:])
    with pytest.raises(testbed.TestbedError) as error:
        testbed.check_prerequisites()
    assert asked == [["podman", "zz-missing-one", "zz-missing-two"]]
    message = str(error.value)
    assert message.startswith("the test bed needs these Debian packages: zz-missing-one zz-missing-two\n")
    assert "fix: make deps" in message


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_missing_packages_asks_dpkg():
    assert testbed.missing_debian_packages(["bash", "zz-no-such-package"]) == ["zz-no-such-package"]


# --- the installer, with stub dpkg-query / id / apt-get / sudo ------------------------------------
def _bin(tmp_path: Path, *, installed: set[str], uid: int, sudo: bool) -> tuple[Path, Path]:
    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    bindir.mkdir()
    for tool in ("bash", "sed", "grep", "env", "dirname"):
        (bindir / tool).symlink_to(shutil.which(tool))
    stubs = {
        "dpkg-query": 'pkg="${@: -1}"; case " $INSTALLED " in *" $pkg "*) printf installed;; '
                      '*) echo "dpkg-query: no packages found matching $pkg" >&2; exit 1;; esac',
        "id": f'[ "$1" = -u ] && echo {uid}',
        "apt-get": f'echo "apt-get DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {log}',
    }
    if sudo:
        stubs["sudo"] = f'echo "sudo $1" >> {log}; exec "$@"'
    for name, body in stubs.items():
        (bindir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bindir / name).chmod(0o755)
    return bindir, log


def _install(tmp_path: Path, **kwargs) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    installed = kwargs["installed"]
    bindir, log = _bin(tmp_path, **kwargs)
    done = subprocess.run(  # noqa: S603
        [str(bindir / "bash"), str(SCRIPT)],
        env={"PATH": str(bindir), "INSTALLED": " ".join(sorted(installed))},
        capture_output=True, text=True, timeout=60, check=False,
    )
    return done, log.read_text().splitlines() if log.exists() else []


def test_installer_does_nothing_when_all_are_installed(tmp_path):
    done, calls = _install(tmp_path, installed=set(testbed.debian_packages()), uid=1000, sudo=False)
    assert done.returncode == 0, done.stderr
    assert calls == []
    assert f"all {len(testbed.debian_packages())} Debian packages" in done.stdout


def test_installer_as_root_installs_only_the_missing_ones(tmp_path):
    packages = testbed.debian_packages()
    done, calls = _install(tmp_path, installed=set(packages) - {"debootstrap", "runc"}, uid=0, sudo=False)
    assert done.returncode == 0, done.stderr
    missing = " ".join(p for p in packages if p in {"debootstrap", "runc"})
    assert calls == [
        "apt-get DEBIAN_FRONTEND=noninteractive update -qq",
        f"apt-get DEBIAN_FRONTEND=noninteractive install -y -qq {missing}",
    ]


def test_installer_not_root_goes_through_sudo(tmp_path):
    packages = testbed.debian_packages()
    done, calls = _install(tmp_path, installed=set(packages) - {"podman"}, uid=1000, sudo=True)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "sudo env", "apt-get DEBIAN_FRONTEND=noninteractive update -qq",
        "sudo env", "apt-get DEBIAN_FRONTEND=noninteractive install -y -qq podman",
    ]


def test_installer_not_root_without_sudo_says_what_to_do(tmp_path):
    packages = testbed.debian_packages()
    done, calls = _install(tmp_path, installed=set(packages) - {"podman", "git"}, uid=1000, sudo=False)
    assert done.returncode == 1
    assert calls == []
    names = " ".join(p for p in packages if p in {"podman", "git"})
    assert f"missing Debian packages: {names}" in done.stderr
    assert f"apt-get install -y {names}" in done.stderr


def test_the_installer_reads_the_list_the_test_bed_reads():
    assert testbed.DEBIAN_PACKAGES == LIST
    assert 'debian-packages.txt"' in SCRIPT.read_text()

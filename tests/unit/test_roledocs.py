# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The READMEs' role tables are generated from meta/argument_specs.yml and CI fails when they drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import roledocs

REPO = Path(__file__).resolve().parents[2]


def test_every_readme_matches_the_specs():
    """Fails when a spec changed without `python -m tests.roledocs` (or a table was edited by hand)."""
    assert roledocs.problems(REPO) == [], "run: python -m tests.roledocs"


def test_every_role_with_a_spec_has_its_table_in_its_readme():
    roles = sorted(p.parents[1].name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))
    assert roles, "no role found"
    for role in roles:
        text = (REPO / "roles" / role / "README.md").read_text()
        assert f"<!-- BEGIN GENERATED: {role} main -->" in text
        assert f"[`{role}`](roles/{role}/README.md)" in (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("Writes C(.env) in place.", "Writes `.env` in place."),
        ("Set O(crpbot_env_path) or O(x=y).", "Set `crpbot_env_path` or `x=y`."),
        ("Default V(dryrun); V(a\\)b) escaped.", "Default `dryrun`; `a)b` escaped."),
        ("I(never) and B(always).", "*never* and **always**."),
        ("See M(ansible.builtin.copy), U(https://x.test/a) and L(the docs, https://x.test/d).",
         "See `ansible.builtin.copy`, <https://x.test/a> and [the docs](https://x.test/d)."),
        ("E(UV_NATIVE_TLS) and RV(changed).", "`UV_NATIVE_TLS` and `changed`."),
        ("C(a `tick`)", "`` a `tick` ``"),
        ("no markup: ABC(d) stays", "no markup: ABC(d) stays"),
    ],
)
def test_markup_to_markdown(markup, markdown):
    assert roledocs.markup_to_markdown(markup) == markdown


def test_a_list_description_is_joined_and_a_secret_is_marked():
    spec = {"type": "str", "no_log": True, "description": ["First C(a).", "Second   line\n wrapped."]}
    (row,) = roledocs._rows("x_password", spec, (True, "{{ vault_x | default('') }}"), "link")
    assert row == (
        "| `x_password` | str | `{{ vault_x \\| default('') }}` |  |  | First `a`. Second line wrapped. "
        "Secret: never logged (`no_log`). |\n"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", '`""`'),
        ("{{ vault_crpbot_db_password }}", "`{{ vault_crpbot_db_password }}`"),
        (">-\n  {{ a\n     if b else c }}", "`>- {{ a if b else c }}`"),
        (False, "`false`"),
        (5, "`5`"),
        ({}, "`{}`"),
        (["models", "data/raw"], "`[models, data/raw]`"),
        ([{"kind": "models", "local": "models", "prefix": "models", "delete": False, "max_deletes": 0}] * 2,
         "see LINK"),
    ],
)
def test_defaults_are_shown_as_written(value, shown):
    assert roledocs.render_value(value, "see LINK".removeprefix("see ")) == shown


def test_a_tagged_default_is_its_text_never_a_value(tmp_path):
    path = tmp_path / "main.yml"
    path.write_text("x_secret: !unsafe '{{ not_templated }}'\nx_list: [a]\n")
    assert roledocs.load_yaml(path) == {"x_secret": "{{ not_templated }}", "x_list": ["a"]}


def test_the_spec_default_wins_and_defaults_main_fills_in(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Demo.\n    options:\n"
        "      demo_a: {type: int, default: 1, description: A.}\n"
        "      demo_b: {type: list, elements: str, required: true, choices: [x, y], description: B.}\n"
        "      demo_c: {type: str, description: C.}\n"
        "  validate:\n    options:\n      demo_other: {type: str, description: not documented}\n"
    )
    (role / "defaults" / "main.yml").write_text("demo_a: 2\ndemo_b: [x]\n")
    assert roledocs.role_table(role).splitlines()[2:] == [
        "| `demo_a` | int | `1` |  |  | A. |",
        "| `demo_b` | list of str | `[x]` | yes | `x`, `y` | B. |",
        "| `demo_c` | str |  |  |  | C. |",
    ]


def _copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "roles", root / "roles")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "tests.roledocs", "--root", str(root), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )


def test_check_exits_1_naming_file_and_role_and_the_generator_fixes_it(tmp_path):
    root = _copy_project(tmp_path)
    assert _run(root, "--check").returncode == 0

    spec = root / "roles" / "crpbot_s3" / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("Transfer threads per sync.", "Transfer threads per S3 sync."))
    readme = root / "roles" / "crpbot_repo" / "README.md"
    readme.write_text(readme.read_text().replace("| `main` |", "| `master` |"))
    done = _run(root, "--check")
    assert done.returncode == 1
    assert "roles/crpbot_s3/README.md: the variables table of role crpbot_s3 differs" in done.stderr
    assert "roles/crpbot_repo/README.md: the variables table of role crpbot_repo differs" in done.stderr
    assert "amazon_q" not in done.stderr
    assert "per S3 sync" not in (root / "roles" / "crpbot_s3" / "README.md").read_text(), "--check changed a file"

    done = _run(root)
    assert done.returncode == 0, done.stderr
    assert "rewrote roles/crpbot_s3/README.md" in done.stdout
    assert "Transfer threads per S3 sync." in (root / "roles" / "crpbot_s3" / "README.md").read_text()
    assert _run(root, "--check").returncode == 0
    # Everything outside the markers is kept as it was.
    assert (root / "roles" / "crpbot_s3" / "README.md").read_text().replace(
        "Transfer threads per S3 sync.", "Transfer threads per sync."
    ) == (REPO / "roles" / "crpbot_s3" / "README.md").read_text()
    assert _run(root).stdout == ""


def test_a_new_role_and_a_readme_without_markers_are_reported_then_appended(tmp_path):
    root = _copy_project(tmp_path)
    new = root / "roles" / "crpbot_new"
    (new / "meta").mkdir(parents=True)
    (new / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: A new C(role).\n    options:\n"
        "      crpbot_new_path: {type: str, required: true, description: Where.}\n"
    )
    (new / "README.md").write_text("# crpbot_new\n\nWhat it does.\n")

    done = _run(root, "--check")
    assert done.returncode == 1
    assert "roles/crpbot_new/README.md: the variables table of role crpbot_new is missing" in done.stderr
    assert "README.md: the index of the roles differs" in done.stderr

    assert _run(root).returncode == 0
    text = (new / "README.md").read_text()
    assert text.startswith("# crpbot_new\n\nWhat it does.\n\n## Variables\n\n<!-- BEGIN GENERATED: crpbot_new main -->\n")
    assert "| `crpbot_new_path` | str |  | yes |  | Where. |" in text
    assert "| [`crpbot_new`](roles/crpbot_new/README.md) | A new `role`. |" in (root / "README.md").read_text()
    assert _run(root, "--check").returncode == 0


def test_a_duplicated_block_is_reported(tmp_path):
    root = _copy_project(tmp_path)
    readme = root / "roles" / "crpbot_uv" / "README.md"
    text = readme.read_text()
    start = text.index("<!-- BEGIN GENERATED: crpbot_uv main -->")
    end = text.index(roledocs.END) + len(roledocs.END)
    readme.write_text(text + "\n" + text[start:end] + "\n")
    done = _run(root, "--check")
    assert done.returncode == 1
    assert "roles/crpbot_uv/README.md: the variables table of role crpbot_uv is there 2 times" in done.stderr

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' variable tables, generated from their ``meta/argument_specs.yml`` (one source for the docs).

    python -m tests.roledocs           rewrite every generated table in place
    python -m tests.roledocs --check   exit 1, naming the file and the role, when a table differs

Each role's README.md holds its table between ``<!-- BEGIN GENERATED: <role> main -->`` and
``<!-- END GENERATED -->``; README.md holds the index of the roles between
``<!-- BEGIN GENERATED: roles -->`` and ``<!-- END GENERATED -->``. A role is every
``roles/*/meta/argument_specs.yml``; a README without its markers gets them appended (or, with
``--check``, is reported). Only the ``main`` entry point is documented (the ``validate`` entry point
checks it, it has no spec of its own).
Defaults come from the spec's ``default:``, else from the role's ``defaults/main.yml``, shown as the
text written there (a vault-derived default is its expression, never a value).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
END = "<!-- END GENERATED -->"
BLOCK = re.compile(r"<!-- BEGIN GENERATED: (?P<key>[^>]*?) -->\n(?P<body>.*?)" + re.escape(END), re.DOTALL)
# A collection default longer than this is shown as a link to defaults/main.yml.
MAX_INLINE = 80
REGENERATE = "python -m tests.roledocs"


class _TextLoader(yaml.SafeLoader):
    """SafeLoader that reads any tagged node (``!vault``, ``!unsafe``) as its plain text."""


def _tagged_as_text(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_TextLoader.add_multi_constructor("!", _tagged_as_text)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TextLoader)  # noqa: S506 - a SafeLoader


# --- Ansible doc markup -> Markdown ---------------------------------------------------------------
# The same patterns as ansible-doc (ansible/cli/doc.py DocCLI).
_SEM = r"\(((?:[^\\)]+|\\.)+)\)"
_UNESCAPE = re.compile(r"\\(.)")
_MARKUP = [
    (re.compile(r"\bI\(([^)]+)\)"), lambda m: f"*{m.group(1)}*"),
    (re.compile(r"\bB\(([^)]+)\)"), lambda m: f"**{m.group(1)}**"),
    (re.compile(r"\bM\(([^)]+)\)"), lambda m: code(m.group(1))),
    (re.compile(r"\bP\(([^#)]+)#([a-z]+)\)"), lambda m: code(m.group(1))),
    (re.compile(r"\bL\(([^)]+), *([^)]+)\)"), lambda m: f"[{m.group(1)}]({m.group(2)})"),
    (re.compile(r"\bU\(([^)]+)\)"), lambda m: f"<{m.group(1)}>"),
    (re.compile(r"\bR\(([^)]+), *([^)]+)\)"), lambda m: m.group(1)),
    (re.compile(r"\bC\(([^)]+)\)"), lambda m: code(m.group(1))),
    (re.compile(r"\bO" + _SEM), lambda m: code(_UNESCAPE.sub(r"\1", m.group(1)).removeprefix("ignore:"))),
    (re.compile(r"\bV" + _SEM), lambda m: code(_UNESCAPE.sub(r"\1", m.group(1)))),
    (re.compile(r"\bE" + _SEM), lambda m: code(_UNESCAPE.sub(r"\1", m.group(1)))),
    (re.compile(r"\bRV" + _SEM), lambda m: code(_UNESCAPE.sub(r"\1", m.group(1)))),
    (re.compile(r"\bHORIZONTALLINE\b"), lambda m: "—"),
]


def code(text: str) -> str:
    """``text`` as a Markdown code span (longer fences when it holds backticks)."""
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall(r"`+", text)) + 1)
    return f"{fence} {text} {fence}"


def markup_to_markdown(text: str) -> str:
    """Ansible doc markup (C(), O(), V(), I(), B(), M(), L(), U(), …) as Markdown."""
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    return text


def _cell(text: str) -> str:
    """One table cell: a single line, pipes escaped (also inside code spans, as GFM tables need)."""
    return " ".join(text.split()).replace("|", r"\|")


def describe(description: str | list[str] | None) -> str:
    if description is None:
        return ""
    parts = [description] if isinstance(description, str) else list(description)
    return markup_to_markdown(" ".join(" ".join(str(p).split()) for p in parts))


def render_value(value: Any, defaults_link: str) -> str:
    """A default as inline code: strings as written (templates unresolved), collections as flow YAML."""
    if isinstance(value, str):
        text = " ".join(value.split())
        return code(text) if text else code('""')
    if isinstance(value, bool):
        return code("true" if value else "false")
    if value is None:
        return code("null")
    if isinstance(value, (int, float)):
        return code(str(value))
    flow = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False).strip()
    flow = flow.removesuffix("...").strip()
    if len(flow) > MAX_INLINE:
        return f"see {defaults_link}"
    return code(flow)


def type_of(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if "elements" in spec:
        return f"{kind} of {spec['elements']}"
    return kind


# --- Tables ------------------------------------------------------------------------------------------
HEADER = "| variable | type | default | required | choices | description |\n|---|---|---|---|---|---|\n"


def role_specs(root: Path) -> list[Path]:
    """Every role with an argument spec, by name."""
    return sorted(p.parents[1] for p in (root / "roles").glob("*/meta/argument_specs.yml"))


def _rows(name: str, spec: dict[str, Any], default: tuple[bool, Any], link: str) -> list[str]:
    has_default, value = default
    if "default" in spec:
        has_default, value = True, spec["default"]
    description = describe(spec.get("description"))
    if spec.get("no_log"):
        description = (description + " Secret: never logged (`no_log`).").strip()
    row = [
        code(name),
        type_of(spec),
        render_value(value, link) if has_default else "",
        "yes" if spec.get("required") else "",
        ", ".join(code(str(c)) for c in spec.get("choices", [])),
        description,
    ]
    rows = ["| " + " | ".join(_cell(c) for c in row) + " |\n"]
    for sub, sub_spec in (spec.get("options") or {}).items():
        rows += _rows(f"{name}.{sub}", sub_spec, (False, None), link)
    return rows


def role_table(role: Path) -> str:
    """The Markdown table of the role's ``main`` entry point."""
    main = (load_yaml(role / "meta" / "argument_specs.yml") or {})["argument_specs"]["main"]
    defaults_file = role / "defaults" / "main.yml"
    defaults = (load_yaml(defaults_file) or {}) if defaults_file.exists() else {}
    link = "[`defaults/main.yml`](defaults/main.yml)"
    rows = [HEADER]
    for name, spec in (main.get("options") or {}).items():
        rows += _rows(name, spec or {}, (name in defaults, defaults.get(name)), link)
    return "".join(rows)


def roles_index(root: Path) -> str:
    """README.md's index of the roles: what each does and where its variables are."""
    rows = ["| role | what it does | variables |\n|---|---|---|\n"]
    for role in role_specs(root):
        main = (load_yaml(role / "meta" / "argument_specs.yml") or {})["argument_specs"]["main"]
        readme = f"roles/{role.name}/README.md"
        count = len(main.get("options") or {})
        row = [f"[{code(role.name)}]({readme})", describe(main.get("short_description")),
               f"[{count}]({readme}#variables)"]
        rows.append("| " + " | ".join(_cell(c) for c in row) + " |\n")
    return "".join(rows)


def expected(root: Path) -> dict[Path, list[tuple[str, str]]]:
    """Per README, the generated blocks it must hold: (marker key, content)."""
    files: dict[Path, list[tuple[str, str]]] = {root / "README.md": [("roles", roles_index(root))]}
    for role in role_specs(root):
        files[role / "README.md"] = [(f"{role.name} main", role_table(role))]
    return files


# --- Rewriting and checking -------------------------------------------------------------------------
def _block(key: str, content: str) -> str:
    return f"<!-- BEGIN GENERATED: {key} -->\n{content}{END}"


def apply(text: str, key: str, content: str) -> str:
    """``text`` with the block ``key`` holding ``content``; appended under "## Variables" if missing."""
    found = [m for m in BLOCK.finditer(text) if m.group("key") == key]
    if len(found) > 1:
        raise ValueError(f"the block {key!r} is there {len(found)} times")
    if found:
        m = found[0]
        return text[: m.start()] + _block(key, content) + text[m.end():]
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text else "") + "## Variables\n\n" + _block(key, content) + "\n"


def problems(root: Path) -> list[str]:
    """What --check reports: every README whose generated block is missing or differs."""
    found = []
    for path, blocks in expected(root).items():
        rel = path.relative_to(root)
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for key, content in blocks:
            what = "the index of the roles" if key == "roles" else f"the variables table of role {key.split()[0]}"
            matches = [m for m in BLOCK.finditer(text) if m.group("key") == key]
            if not matches:
                found.append(f"{rel}: {what} is missing (no <!-- BEGIN GENERATED: {key} --> block); "
                             f"run: {REGENERATE}")
            elif len(matches) > 1:
                found.append(f"{rel}: {what} is there {len(matches)} times; keep one block")
            elif matches[0].group("body") != content:
                source = "roles/*/meta/argument_specs.yml" if key == "roles" else \
                    f"roles/{key.split()[0]}/meta/argument_specs.yml"
                found.append(f"{rel}: {what} differs from {source}; run: {REGENERATE}")
    return found


def generate(root: Path) -> list[Path]:
    """Rewrite every generated block in place; returns the files that changed."""
    changed = []
    for path, blocks in expected(root).items():
        before = path.read_text(encoding="utf-8") if path.exists() else f"# {path.parent.name}\n"
        text = before
        for key, content in blocks:
            text = apply(text, key, content)
        if text != before or not path.exists():
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table differs")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project dir (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.check:
        found = problems(root)
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    for path in generate(root):
        print(f"rewrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

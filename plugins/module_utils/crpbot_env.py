# -*- coding: utf-8 -*-
# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the crpbot ``.env`` writer (stdlib only; runs on the target's python3).

The crpbot bot reads its ``.env`` through pydantic-settings, which calls
``dotenv.dotenv_values(path, encoding=...)`` -- python-dotenv's default ``interpolate=True``.
Everything here is written against python-dotenv 1.2.4 (``dotenv/parser.py``,
``dotenv/variables.py``, ``dotenv/main.py``):

* The parser below is a port of ``dotenv/parser.py`` (same regular expressions, same order of
  reads, same error recovery), so it binds exactly the keys python-dotenv binds and decodes
  the same values.  It additionally keeps every character, so rendering is lossless.
* Interpolation (``dotenv/variables.py``) runs on the *decoded* value of every binding,
  whatever its quoting; only ``${NAME}`` / ``${NAME:-default}`` is expanded, never ``$NAME``,
  and there is no escape for it.  A value that contains such a reference cannot be written so
  that it reads back unchanged, and is refused (:class:`EnvValueError`).

No message produced here ever contains a value: errors name the key and the reason.
"""

from __future__ import annotations

import codecs
import ipaddress
import posixpath
import re
from dataclasses import dataclass, replace
from urllib.parse import quote

from ansible.module_utils.crpbot_policy import MODE_KEY, db_backend_refusal, mode_keys

MANAGED_COMMENT = "# Managed by crpbot-ansible"
# The marker line also records the keys the writer manages, so a key it stops managing can be
# removed while a key a person added by hand is never touched: "# Managed by crpbot-ansible: A B".
_MARKER = re.compile(r"# Managed by crpbot-ansible(?:: *(?P<keys>[A-Za-z0-9_ ]*?))? *(?:\r\n|\n|\r)?\Z")
MASK = "********"
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# --- python-dotenv 1.2.4 dotenv/parser.py, copied verbatim -----------------------------------
_newline = re.compile(r"(\r\n|\n|\r)", re.UNICODE)
_multiline_whitespace = re.compile(r"\s*", re.UNICODE | re.MULTILINE)
_whitespace = re.compile(r"[^\S\r\n]*", re.UNICODE)
_export = re.compile(r"(?:export[^\S\r\n]+)?", re.UNICODE)
_single_quoted_key = re.compile(r"'([^']+)'", re.UNICODE)
_unquoted_key = re.compile(r"([^=\#\s]+)", re.UNICODE)
_equal_sign = re.compile(r"(=[^\S\r\n]*)", re.UNICODE)
_single_quoted_value = re.compile(r"'((?:\\.|[^'\\])*)'", re.UNICODE | re.DOTALL)
_double_quoted_value = re.compile(r'"((?:\\.|[^"\\])*)"', re.UNICODE | re.DOTALL)
_unquoted_value = re.compile(r"([^\r\n]*)", re.UNICODE)
_comment = re.compile(r"(?:[^\S\r\n]*#[^\r\n]*)?", re.UNICODE)
_end_of_line = re.compile(r"[^\S\r\n]*(?:\r\n|\n|\r|$)", re.UNICODE)
_rest_of_line = re.compile(r"[^\r\n]*(?:\r|\n|\r\n)?", re.UNICODE)
_double_quote_escapes = re.compile(r"\\[\\'\"abfnrtv]", re.UNICODE)
_single_quote_escapes = re.compile(r"\\[\\']", re.UNICODE)
_unquoted_comment = re.compile(r"\s+#.*")
# --- python-dotenv 1.2.4 dotenv/variables.py ---------------------------------------------------
_posix_variable = re.compile(
    r"""
    \$\{
        (?P<name>[^\}:]*)
        (?::-
            (?P<default>[^\}]*)
        )?
    \}
    """,
    re.VERBOSE,
)

# Values made only of these characters are written unquoted (KEY=value).
_SAFE_UNQUOTED = re.compile(r"[A-Za-z0-9_@%+,./:=-]+\Z")
_COMMENT_BODY = re.compile(r"([^\S\r\n]*#)([^\r\n]*)((?:\r\n|\n|\r)?)\Z")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class EnvValueError(ValueError):
    """A managed value that cannot be written exactly.  The message names the key, never the value."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class EnvFileError(ValueError):
    """The existing file cannot be merged safely (the message names line numbers, never content)."""


@dataclass(frozen=True)
class Line:
    """One statement of a .env file.

    ``raw`` is the exact source text (including its line ending; a quoted value may span several
    physical lines).  For ``binding`` lines ``raw == prefix + value_text + tail`` where ``prefix``
    runs up to and including ``=`` (up to the end of the key when there is no ``=``),
    ``value_text`` is the value as written (with the blanks after ``=``) and ``tail`` the inline
    comment, trailing blanks and the line ending.  ``value`` is the decoded value before
    interpolation (``None`` for a bare ``KEY``).
    """

    kind: str  # "bom", "blank", "comment", "binding", "invalid"
    raw: str
    key: str | None = None
    value: str | None = None
    prefix: str = ""
    value_text: str = ""
    tail: str = ""


class _Fail(Exception):
    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.at = at


def _decode(regex: re.Pattern[str], string: str) -> str:
    return regex.sub(lambda m: codecs.decode(m.group(0), "unicode-escape"), string)


def _read(regex: re.Pattern[str], text: str, at: int) -> re.Match[str]:
    match = regex.match(text, at)
    if match is None:
        raise _Fail(at)
    return match


def _parse_statement(text: str, start: int, pos: int) -> tuple[Line, int]:
    """Mirror of ``dotenv.parser.parse_binding`` from ``pos`` (first non-blank character).

    ``start`` is where the physical line begins (indentation is kept in the line's text).
    """
    try:
        p = _read(_export, text, pos).end()
        char = text[p : p + 1]
        if char == "#":
            key = None
        elif char == "'":
            m = _read(_single_quoted_key, text, p)
            key, p = m.group(1), m.end()
        else:
            m = _read(_unquoted_key, text, p)
            key, p = m.group(1), m.end()
        key_end = p
        p = _read(_whitespace, text, p).end()
        value: str | None = None
        eq_end = value_end = key_end
        if text[p : p + 1] == "=":
            m = _read(_equal_sign, text, p)
            eq_end = p + 1
            p = m.end()
            char = text[p : p + 1]
            if len(m.group(1)) > 1 and char == "#":
                value = ""
            elif char == "'":
                m = _read(_single_quoted_value, text, p)
                value = _decode(_single_quote_escapes, m.group(1))
                p = m.end()
            elif char == '"':
                m = _read(_double_quoted_value, text, p)
                value = _decode(_double_quote_escapes, m.group(1))
                p = m.end()
            elif char in ("", "\n", "\r"):
                value = ""
            else:
                m = _read(_unquoted_value, text, p)
                value = _unquoted_comment.sub("", m.group(1)).rstrip()
                # the value is a prefix of the text read; the rest is an inline comment/blanks
                value_end = m.start() + len(value)
                p = m.end()
            if value_end == key_end:  # every branch but the unquoted one ends the value at p
                value_end = p
        p = _read(_comment, text, p).end()
        end = _read(_end_of_line, text, p).end()
    except _Fail as fail:
        end = _read(_rest_of_line, text, fail.at).end()
        return Line("invalid", text[start:end]), end
    raw = text[start:end]
    if key is None:
        return Line("comment", raw), end
    if value is None:
        prefix_end = key_end
    else:
        prefix_end = eq_end
    return (
        Line(
            "binding",
            raw,
            key=key,
            value=value,
            prefix=text[start:prefix_end],
            value_text=text[prefix_end:value_end],
            tail=text[value_end:end],
        ),
        end,
    )


def parse_env(text: str) -> list[Line]:
    """Parse .env text into :class:`Line` objects; ``render(parse_env(t)) == t`` for every ``t``."""
    if not isinstance(text, str):
        raise TypeError("parse_env expects str")
    lines: list[Line] = []
    pos = 0
    if text.startswith("\ufeff"):  # python-dotenv strips one leading BOM before parsing
        lines.append(Line("bom", "\ufeff"))
        pos = 1
    length = len(text)
    while pos < length:
        blank_end = _multiline_whitespace.match(text, pos).end()
        cursor = pos
        for newline in _newline.finditer(text, pos, blank_end):
            lines.append(Line("blank", text[cursor : newline.end()]))
            cursor = newline.end()
        if blank_end >= length:
            if cursor < length:
                lines.append(Line("blank", text[cursor:]))
            break
        line, pos = _parse_statement(text, cursor, blank_end)
        lines.append(line)
    return lines


def render(lines: list[Line]) -> str:
    return "".join(line.raw for line in lines)


def bindings(lines: list[Line]) -> list[tuple[str, str | None]]:
    """The (key, value) pairs python-dotenv reads from ``lines``, in order, before interpolation."""
    return [(line.key, line.value) for line in lines if line.kind == "binding"]  # type: ignore[misc]


def effective_values(lines: list[Line]) -> dict[str, str | None]:
    """Value each key ends up with, keys lower-cased (pydantic-settings' default
    ``case_sensitive=False``); the last occurrence wins, as in python-dotenv."""
    result: dict[str, str | None] = {}
    for key, value in bindings(lines):
        result[key.lower()] = value
    return result


def check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise EnvValueError(repr(key), f"not a valid variable name (it must match {KEY_PATTERN})")
    return key


def quote_value(key: str, value: str) -> str:
    """Return the text to write after ``KEY=`` so that python-dotenv reads back exactly ``value``.

    Rules (python-dotenv 1.2.4):
      * only ``[A-Za-z0-9_@%+,./:=-]`` -> unquoted;
      * the empty string -> ``''``;
      * no carriage return -> single quotes; the single-quote parser decodes ``\\\\`` and ``\\'``
        only, so ``\\`` and ``'`` are escaped and everything else (newlines, tabs, ``"``, ``#``,
        ``$``, non-ASCII) is written as it is -- multi-line PEM keys stay readable;
      * a carriage return -> double quotes with ``\\\\ \\" \\r \\n`` escapes (a raw CR would be
        turned into LF when the bot opens the file in text mode).
    Refused with :class:`EnvValueError`: non-strings, NUL, text that is not valid UTF-8
    (lone surrogates), and ``${...}`` references, which python-dotenv interpolates whatever the
    quoting.
    """
    if not isinstance(value, str):
        raise EnvValueError(key, f"the value must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise EnvValueError(key, "the value contains a NUL character, which no environment variable can hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvValueError(key, "the value is not valid Unicode text (it cannot be written as UTF-8)") from None
    if _posix_variable.search(value):
        raise EnvValueError(
            key,
            "the value contains a ${...} reference; python-dotenv (as used by pydantic-settings) "
            "interpolates ${NAME} and ${NAME:-default} inside unquoted, single- and double-quoted "
            "values alike and has no escape for it, so the bot would read a different value",
        )
    if value == "":
        quoted = "''"
    elif _SAFE_UNQUOTED.match(value):
        quoted = value
    elif "\r" not in value:
        quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
        quoted = '"' + body + '"'
    parsed = parse_env(f"{key}={quoted}\n")
    if len(parsed) != 1 or parsed[0].kind != "binding" or parsed[0].value != value:
        raise EnvValueError(key, "the value cannot be quoted so that python-dotenv reads it back unchanged")
    return quoted


def _eol_of(lines: list[Line]) -> str:
    for line in lines:
        if line.raw.endswith("\r\n"):
            return "\r\n"
        if line.raw.endswith(("\n", "\r")):
            return "\n"
    return "\n"


def _line_ending(text: str) -> str:
    match = re.search(r"(\r\n|\n|\r)\Z", text)
    return match.group(1) if match else ""


def _spaced_tail(tail: str) -> str:
    """An inline comment must follow a blank, or an unquoted value would swallow it."""
    if tail.startswith("#"):
        return " " + tail
    return tail


def _rewrite(line: Line, quoted: str, value: str) -> Line:
    prefix = line.prefix if line.value is not None else line.prefix + "="
    for tail in (_spaced_tail(line.tail), _line_ending(line.tail)):
        candidate = parse_env(prefix + quoted + tail)
        if (
            len(candidate) == 1
            and candidate[0].kind == "binding"
            and candidate[0].key == line.key
            and candidate[0].value == value
        ):
            return candidate[0]
    raise EnvValueError(line.key or "?", "the existing line for this key cannot be rewritten in place")


def is_marker(line: Line) -> bool:
    return line.kind == "comment" and _MARKER.match(line.raw) is not None


def recorded_keys(lines: list[Line]) -> list[str]:
    """The keys the marker line(s) record as managed by this project, in their order."""
    keys: list[str] = []
    for line in lines:
        if is_marker(line):
            for key in (_MARKER.match(line.raw).group("keys") or "").split():
                if key not in keys:
                    keys.append(key)
    return keys


def marker_text(keys) -> str:
    """The marker line (without its line ending) recording ``keys``, sorted."""
    names = sorted(set(keys), key=lambda key: (key.upper(), key))
    return MANAGED_COMMENT + (": " + " ".join(names) if names else "")


def merge(
    lines: list[Line], managed: dict[str, str], *, prune: bool = False
) -> tuple[list[Line], dict[str, list[str]]]:
    """Set every managed key; keep every line a person wrote exactly as it is.

    Keys are matched case-insensitively (pydantic-settings lower-cases keys by default, so
    ``runtime_mode=live`` would override ``RUNTIME_MODE=dryrun``).  Every occurrence of a managed
    key whose decoded value differs is rewritten in place (its ``export``, key spelling and inline
    comment are kept); occurrences that already decode to the value are left as written.  Absent
    keys are appended, in the given order, after the ``# Managed by crpbot-ansible`` marker line.

    The marker records every key this writer manages (``# Managed by crpbot-ansible: A B``); it
    is kept in place, or appended at the end when the file has none.  With ``prune``, keys the
    record names that ``managed`` no longer has are removed (every binding of them, any case) and
    the record becomes ``managed``; without it the record keeps them.  A key a person added is
    never in the record, so it is never removed.
    """
    by_lower: dict[str, str] = {}
    quoted: dict[str, str] = {}
    for key, value in managed.items():
        check_key(key)
        if key.lower() in by_lower:
            raise EnvValueError(
                key, f"given twice (also as {by_lower[key.lower()]}); pydantic-settings reads keys case-insensitively"
            )
        by_lower[key.lower()] = key
        quoted[key] = quote_value(key, value)

    old_record = recorded_keys(lines)
    dropped = [key for key in old_record if key.lower() not in by_lower] if prune else []
    dropped_lower = {key.lower() for key in dropped}
    record = list(managed) + ([] if prune else [key for key in old_record if key.lower() not in by_lower])
    eol = _eol_of(lines)

    new_lines: list[Line] = []
    changed: list[str] = []
    present: set[str] = set()
    kept: list[str] = []
    removed: list[str] = []
    marker_at: int | None = None
    for line in lines:
        if is_marker(line):
            if marker_at is None:  # the first marker holds the record; later ones are dropped
                marker_at = len(new_lines)
                new_lines.append(Line("comment", marker_text(record) + (_line_ending(line.raw) or eol)))
            continue
        name = by_lower.get(line.key.lower()) if line.kind == "binding" and line.key else None
        if name is None:
            if line.kind == "binding" and line.key.lower() in dropped_lower:  # type: ignore[union-attr]
                spelled = next(key for key in dropped if key.lower() == line.key.lower())  # type: ignore[union-attr]
                if spelled not in removed:
                    removed.append(spelled)
                continue
            if line.kind == "binding" and line.key not in kept:
                kept.append(line.key)  # type: ignore[arg-type]
            new_lines.append(line)
            continue
        present.add(name)
        if line.value == managed[name]:
            new_lines.append(line)
            continue
        new_lines.append(_rewrite(line, quoted[name], managed[name]))
        if name not in changed:
            changed.append(name)

    added = [key for key in managed if key not in present]
    if added or (marker_at is None and record):
        if new_lines and new_lines[-1].kind != "bom" and not _line_ending(new_lines[-1].raw):
            last = new_lines[-1]
            new_lines[-1] = replace(last, raw=last.raw + eol, tail=last.tail + eol if last.kind == "binding" else "")
        if marker_at is None:
            new_lines.append(Line("comment", marker_text(record) + eol))
        for key in added:
            new_lines.extend(parse_env(f"{key}={quoted[key]}{eol}"))

    _verify(lines, new_lines, managed, by_lower, added, dropped_lower)
    return new_lines, {"changed": changed, "added": added, "kept": kept, "removed": removed}


def _verify(
    old: list[Line],
    new: list[Line],
    managed: dict[str, str],
    by_lower: dict[str, str],
    added: list[str],
    dropped_lower: set[str],
) -> None:
    """Re-parse the result: every binding must read as planned (guards against an unterminated
    quote in the existing file swallowing the lines written after it)."""
    expected = [
        (key, managed[by_lower[key.lower()]] if key.lower() in by_lower else value)
        for key, value in bindings(old)
        if key.lower() not in dropped_lower
    ]
    expected += [(key, managed[key]) for key in added]
    if bindings(parse_env(render(new))) != expected:
        numbers = []
        number = 1
        for line in old:
            if line.kind == "invalid":
                numbers.append(str(number))
            number += len(_newline.findall(line.raw))
        where = f" (python-dotenv cannot parse line(s) {', '.join(numbers)})" if numbers else ""
        raise EnvFileError(
            "the existing file cannot be merged without changing how python-dotenv reads it"
            f"{where}; fix the file by hand (an unterminated quote is the usual cause)"
        )


def mask_for_diff(lines: list[Line], visible_keys) -> str:
    """Render ``lines`` for an Ansible diff: the value of every key not in ``visible_keys``
    (exact names) becomes ``********`` (a multi-line value collapses to it), lines python-dotenv
    cannot parse become ``********``, and comment text, whole-line or inline, becomes
    ``# ********`` (people park old secrets in comments) except the ``# Managed by
    crpbot-ansible`` marker, which holds key names only."""
    visible = set(visible_keys)
    out: list[str] = []
    for line in lines:
        if line.kind == "binding":
            if line.key in visible or line.value is None:
                out.append(line.prefix + line.value_text + _mask_tail(line.tail))
            else:
                out.append(line.prefix + MASK + _mask_tail(line.tail))
        elif line.kind == "comment":
            if is_marker(line):  # key names only
                out.append(line.raw)
            else:
                out.append(_mask_comment(line.raw))
        elif line.kind == "invalid":
            out.append(MASK + _line_ending(line.raw))
        else:
            out.append(line.raw)
    return "".join(out)


def _mask_comment(raw: str) -> str:
    match = _COMMENT_BODY.match(raw)
    if match is None:  # e.g. "export # note"
        return MASK + _line_ending(raw)
    return match.group(1) + (" " + MASK if match.group(2).strip() else "") + match.group(3)


def _mask_tail(tail: str) -> str:
    stripped = tail.lstrip(" \t")
    if stripped.startswith("#"):
        return " # " + MASK + _line_ending(tail)
    return _line_ending(tail)


def _text_param(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if not value and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be valid Unicode text") from None
    return value


def _host_part(host: object) -> str:
    host = _text_param("host", host)
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        if _HOSTNAME.match(host):
            return host
        raise ValueError("host must be a DNS name, an IPv4 address or an IPv6 address") from None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def _port(port: object) -> int:
    if isinstance(port, bool):
        raise ValueError("port must be an integer between 1 and 65535")
    if isinstance(port, str) and port.isdigit() and port.isascii():
        port = int(port)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer between 1 and 65535")
    return port


def build_db_url(
    backend: str,
    *,
    user: str | None = None,
    password: str | None = None,
    host: str | None = None,
    port: int | str | None = None,
    database: str | None = None,
    sslmode: str | None = None,
    project_dir: str | None = None,
) -> str:
    """The DB_URL crpbot gives SQLAlchemy.

    ``rds``: ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB[?sslmode=MODE]``; user, password
    and database are percent-encoded with nothing left as "safe" (space becomes ``%20``, not
    ``+``), which is what ``sqlalchemy.engine.make_url`` unquotes.  ``sqlite``:
    ``sqlite:///<project_dir>/tradingai.db`` (``project_dir`` absolute, so four slashes; the
    path is percent-encoded the same way, keeping ``/``).  Errors name the parameter, never its
    value.
    """
    if backend == "rds":
        user = _text_param("user", user)
        password = _text_param("password", password)
        database = _text_param("database", database)
        host_part = _host_part(host)
        port_number = _port(port)
        url = (
            f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{host_part}:{port_number}/{quote(database, safe='')}"
        )
        if sslmode is None or sslmode == "":
            return url
        if sslmode not in SSLMODES:
            raise ValueError(f"sslmode must be empty or one of {', '.join(SSLMODES)}")
        return f"{url}?sslmode={sslmode}"
    if backend == "sqlite":
        project_dir = _text_param("project_dir", project_dir)
        if not posixpath.isabs(project_dir):
            raise ValueError("project_dir must be an absolute path")
        if any(c in project_dir for c in "\r\n"):
            raise ValueError("project_dir must not contain a line break")
        directory = project_dir.rstrip("/") or ""
        return "sqlite:///" + quote(f"{directory}/tradingai.db", safe="/")
    raise ValueError(f"backend must be 'rds' or 'sqlite', got {backend!r}")


# --- the request: what a caller asks to set, checked the same way on the controller and the host ---


class EnvRequestError(ValueError):
    """A request that cannot be carried out. The message names options and keys, never a value."""


def check_settings(option: str, given) -> dict[str, str]:
    """Validate one of the ``values``/``secrets`` mappings (integers become strings)."""
    result: dict[str, str] = {}
    for key, value in (given or {}).items():
        try:
            check_key(key)
        except EnvValueError as exc:
            raise EnvRequestError(f"{option}: {exc}") from None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise EnvRequestError(f"{option}.{key} must be a string, got {type(value).__name__}; quote it in YAML")
        result[str(key)] = str(value) if not isinstance(value, str) else value
    found = mode_keys(result)
    if found:
        raise EnvRequestError(
            f"{option}.{found[0]}: {MODE_KEY} is written only from runtime_mode, which follows the inventory "
            "(runtime_mode: on a builder's entry); remove it from the settings"
        )
    return result


def combine_settings(values: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """values and secrets as one mapping; a key given twice (in any case) is refused."""
    seen: dict[str, tuple[str, str]] = {}
    for option, given in (("values", values), ("secrets", secrets)):
        for key in given:
            if key.lower() in seen:
                other_option, other_key = seen[key.lower()]
                raise EnvRequestError(
                    f"key {key} is given in {option} and as {other_key} in {other_option};"
                    " give each key once (keys are case-insensitive for pydantic-settings)"
                )
            seen[key.lower()] = (option, key)
    return {**values, **secrets}


def db_url_setting(db, role: str) -> dict[str, str]:
    """``{'DB_URL': url}`` built from the ``db_url`` option, or ``{}`` when it is not given."""
    if not db:
        return {}
    refusal = db_backend_refusal(role, db.get("backend"))
    if refusal:
        raise EnvRequestError(f"db_url.backend is refused on this {role} host: {refusal}")
    fields = {key: db.get(key) for key in ("user", "password", "host", "port", "database", "sslmode", "project_dir")}
    try:
        return {"DB_URL": build_db_url(db.get("backend"), **fields)}
    except ValueError as exc:  # names the parameter, never its value
        raise EnvRequestError(f"db_url: {exc}") from None


def check_request(values, secrets, db_url, role: str) -> tuple[dict[str, str], dict[str, str]]:
    """Check a whole request and return ``(values, secrets)``, DB_URL among the secrets.

    Every key must be valid, given once, not RUNTIME_MODE; every value must be writable so that
    python-dotenv reads it back unchanged (``quote_value``); DB_URL must be buildable and, on a
    builder, the PostgreSQL on RDS.
    """
    values = check_settings("values", values)
    secrets = check_settings("secrets", secrets)
    db_secret = db_url_setting(db_url, role)
    if db_secret and any(key.lower() == "db_url" for key in [*values, *secrets]):
        raise EnvRequestError("DB_URL is given in values or secrets and through db_url; give it once")
    secrets = {**secrets, **db_secret}
    for option, given in (("values", values), ("secrets", secrets)):
        for key, value in given.items():
            try:
                quote_value(key, value)
            except EnvValueError as exc:
                raise EnvRequestError(f"{option}.{exc}") from None
    combine_settings(values, secrets)
    return values, secrets

# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the crpbot .env writer: plugins/module_utils/crpbot_env.py and the crpbot_env_file module.

The pure logic is checked against the real python-dotenv (what the bot reads with), SQLAlchemy's
make_url and pydantic-settings; the module end to end through ansible-playbook on the local
connection, run with the host's system python3 (stdlib only, as on the target hosts).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import random
import stat
import string
import sys
from pathlib import Path

import dotenv
import pytest

from tests.ansible_run import crpbot_localhost, load_plugin, run_module_play
from dotenv.parser import parse_stream
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
MODULE_UTILS = REPO / "plugins" / "module_utils"
MODULE = REPO / "plugins" / "modules" / "crpbot_env_file.py"
sys.path.insert(0, str(MODULE_UTILS))

import crpbot_env as env  # noqa: E402

PEM = (
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oc/PExAMPLEkEyoAoGCCqGSM49\n"
    "AwEHoUQDQgAEs5Yq+DwGcVEJ5QHlDZpUQ9Dq9uq2kTaoDqWhLzNotAREALKEYvX8h9\n"
    "q+Wz0gQ1n0iVwJpVx7cXhY2e6p1DkqzZ/A==\n"
    "-----END EC PRIVATE KEY-----\n"
)

# (id, value): every value must come back from python-dotenv exactly.
ROUND_TRIP = [
    ("plain", "dryrun"),
    ("empty", ""),
    ("space", "hello world"),
    ("space_only", " "),
    ("padded", "  padded  "),
    ("hash", "abc#def"),
    ("space_hash", "abc #def"),
    ("leading_hash", "#starts"),
    ("single_quote", "it's"),
    ("only_single_quote", "'"),
    ("double_quote", 'say "hi"'),
    ("only_double_quote", '"'),
    ("both_quotes", "'\"mixed\"' and 'x'"),
    ("backslash", "C:\\path\\to"),
    ("trailing_backslash", "ends with\\"),
    ("two_trailing_backslashes", "ends\\\\"),
    ("backslash_quote", "\\'"),
    ("backslash_double_quote", '\\"'),
    ("literal_backslash_n", "line1\\nline2"),
    ("literal_escapes", "\\t\\r\\a\\b\\f\\v\\u00e9\\x41\\0"),
    ("dollar", "$"),
    ("dollar_home", "$HOME"),
    ("dollar_home_path", "$HOME/x"),
    ("dollar_brace_alone", "${"),
    ("dollar_brace_unclosed", "${HOME"),
    ("dollar_brace_colon", "${a:b}"),
    ("close_then_open", "}${"),
    ("dollar_space_brace", "$ {HOME}"),
    ("escaped_dollar", "\\$HOME"),
    ("equals", "a=b=c"),
    ("leading_equals", "=x"),
    ("unicode", "pässwörd-日本語-😀"),
    ("tab", "a\tb"),
    ("tab_only", "\t"),
    ("newline", "a\nb"),
    ("trailing_newline", "x\n"),
    ("crlf", "a\r\nb"),
    ("cr", "a\rb"),
    ("cr_and_quotes", "a\r'b\"\\"),
    ("pem", PEM),
    ("pem_crlf", PEM.replace("\n", "\r\n")),
    ("url", "postgresql+psycopg://u%40x:p%23w@host:5432/db?sslmode=require"),
    ("shell_specials", "a;b|c&d<e>f`g`(h)[i]{j}*?~!"),
    ("odd_whitespace", "\x0b\x0c\x1c\x85\u2028"),
    ("export_like", "export X=1"),
    ("comment_like", "# not a comment"),
    ("everything", "a b#c'd\"e\\f$g=h\ti\nj😀\\"),
]

# (id, value): cannot be read back exactly; must be refused.
REFUSED = [
    ("braced", "${HOME}"),
    ("embedded", "pre${CRPBOT_TEST_VAR}post"),
    ("with_default", "${CRPBOT_TEST_UNSET:-fallback}"),
    ("empty_name", "x${}y"),
    ("default_trick", "a${:-$}{b}"),
    ("multi_line_reference", "line\n${CRPBOT\nTEST}"),
    ("nul", "a\x00b"),
    ("lone_surrogate", "bad\ud800"),
]

SECRET_KEY = "SOME_SECRET"


def naive_single_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_back(text: str) -> dict:
    return dict(dotenv.dotenv_values(stream=io.StringIO(text), interpolate=True))


# --------------------------------------------------------------------------------------------
# quote_value
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [v for _, v in ROUND_TRIP], ids=[i for i, _ in ROUND_TRIP])
def test_quote_value_round_trips_through_dotenv(value, tmp_path):
    quoted = env.quote_value("KEY", value)
    assert read_back(f"KEY={quoted}\n") == {"KEY": value}
    # The bot opens the file in text mode (universal newlines): read a real file too.
    path = tmp_path / ".env"
    path.write_bytes(f"BEFORE=1\nKEY={quoted}\nAFTER=2\n".encode())
    assert dotenv.dotenv_values(path, encoding="utf-8") == {"BEFORE": "1", "KEY": value, "AFTER": "2"}


def test_quote_value_round_trips_through_pydantic_settings(tmp_path, monkeypatch):
    from pydantic import create_model
    from pydantic_settings import BaseSettings, SettingsConfigDict

    path = tmp_path / ".env"
    keys = {f"CRPBOT_RT_{n}": value for n, (_, value) in enumerate(ROUND_TRIP)}
    for key in keys:
        monkeypatch.delenv(key, raising=False)
    path.write_bytes("".join(f"{k}={env.quote_value(k, v)}\n" for k, v in keys.items()).encode())

    class Base(BaseSettings):
        model_config = SettingsConfigDict(env_file=path)

    settings_cls = create_model("CrpbotLike", __base__=Base, **{k.lower(): (str, ...) for k in keys})
    assert settings_cls().model_dump() == {k.lower(): v for k, v in keys.items()}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dryrun", "dryrun"),
        ("", "''"),
        ("a b", "'a b'"),
        ("it's", "'it\\'s'"),
        ("C:\\x", "'C:\\\\x'"),
        ("a\nb", "'a\nb'"),
        ("a\r\nb", '"a\\r\\nb"'),
        ('q"\\\r', '"q\\"\\\\\\r"'),
        ("$HOME", "'$HOME'"),
        ("postgresql+psycopg://u:p%20w@h:5432/db", "postgresql+psycopg://u:p%20w@h:5432/db"),
    ],
)
def test_quote_value_chooses_quoting(value, expected):
    assert env.quote_value("KEY", value) == expected


@pytest.mark.parametrize("value", [v for _, v in REFUSED], ids=[i for i, _ in REFUSED])
def test_quote_value_refuses_values_that_would_not_read_back(value, monkeypatch):
    monkeypatch.setenv("CRPBOT_TEST_VAR", "expanded")
    monkeypatch.setenv("HOME", "/home/somebody")
    with pytest.raises(env.EnvValueError) as caught:
        env.quote_value(SECRET_KEY, value)
    message = str(caught.value)
    assert SECRET_KEY in message
    assert caught.value.key == SECRET_KEY
    assert value not in message
    if "${" in value:
        # The refusal is real: python-dotenv interpolates inside single and double quotes alike.
        assert read_back(f"K={naive_single_quoted(value)}\n")["K"] != value
        doubled = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        assert read_back(f"K={doubled}\n")["K"] != value


def test_quote_value_refuses_non_strings():
    with pytest.raises(env.EnvValueError, match=f"{SECRET_KEY}: the value must be a string, got int"):
        env.quote_value(SECRET_KEY, 12345)


def test_quote_value_random_values_round_trip_or_are_refused():
    pieces = ["a", " ", "\t", "#", "'", '"', "\\", "\n", "\r", "$", "{", "}", ":-", "=", "é", "😀", "\x85"]
    rnd = random.Random(20240601)
    for _ in range(3000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        try:
            quoted = env.quote_value("KEY", value)
        except env.EnvValueError:
            assert env._posix_variable.search(value), repr(value)
            continue
        assert read_back(f"KEY={quoted}\n") == {"KEY": value}, repr(value)


# --------------------------------------------------------------------------------------------
# parse_env
# --------------------------------------------------------------------------------------------

PARSE_CASES = [
    "",
    "\n",
    "A=1",
    "A=1\n",
    "A=1\r\nB=2\r\n",
    "A=1\rB=2\r",
    "\n\n  \nA=1\n\n",
    "# comment\nA=1 # inline\n#B=2\n",
    "export A=1\nexport  B='2'\nexportC=3\nexport =4\n",
    "'QUOTED KEY'=1\n'A\nB'=2\n",
    "A='single'\nB=\"double\"\nC=unquoted words  \n",
    "A='multi\nline'\nB=\"multi\nline\"\nC=after\n",
    "PEM='" + PEM + "'\nNEXT=1\n",
    "A\nB # only a key\nC=\n",
    "A= #comment\nB=#not-a-comment\nC=x#y\nD=x #y\n",
    "A = 1\nB\t=\t2\n  C=3\n",
    "A='it\\'s'\nB=\"say \\\"hi\\\"\"\nC='back\\\\slash'\n",
    'A="unterminated\nB=2\n',
    "A='unterminated\nB=2\n",
    "A B=1\nC=2\n",
    "A='x' junk\nB=2\n",
    "=novalue\nB=2\n",
    "\ufeffA=1\n",
    "A=1\n\x0c\nB=2\x0b\n",
    "A=${HOME}\nB=$HOME\n",
    "A=1\nA=2\n",
    "   ",
    "A='x'   # c   \r\n",
    "export # not a key\n",
]


def dotenv_pairs(text: str) -> list[tuple[str, str | None]]:
    return [(b.key, b.value) for b in parse_stream(io.StringIO(text)) if b.key is not None]


@pytest.mark.parametrize("text", PARSE_CASES)
def test_parse_env_is_lossless_and_binds_what_dotenv_binds(text):
    lines = env.parse_env(text)
    assert env.render(lines) == text
    assert env.bindings(lines) == dotenv_pairs(text)
    assert {k: v for k, v in env.bindings(lines)} == dotenv.dotenv_values(stream=io.StringIO(text), interpolate=False)
    for line in lines:
        if line.kind == "binding":
            assert line.prefix + line.value_text + line.tail == line.raw


def test_parse_env_line_kinds():
    lines = env.parse_env("# c\n\nA=1\nB 'x\nexport C='a\nb'\n")
    assert [(line.kind, line.key) for line in lines] == [
        ("comment", None),
        ("blank", None),
        ("binding", "A"),
        ("invalid", None),
        ("binding", "C"),
    ]
    assert lines[-1].value == "a\nb"


def test_parse_env_random_texts_agree_with_dotenv():
    pieces = ["A", "b", "=", " ", "\t", "#", "'", '"', "\\", "\n", "\r", "\r\n", "export ", "$", "{", "x", "é"]
    rnd = random.Random(1234)
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 16)))
        lines = env.parse_env(text)
        assert env.render(lines) == text, repr(text)
        assert env.bindings(lines) == dotenv_pairs(text), repr(text)


# --------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------


def merged(text: str, managed: dict, prune: bool = False) -> tuple[str, dict]:
    lines, report = env.merge(env.parse_env(text), managed, prune=prune)
    return env.render(lines), report


def marker(*keys: str) -> str:
    """The marker line recording keys (sorted, as the writer writes it)."""
    return "# Managed by crpbot-ansible" + (": " + " ".join(sorted(keys, key=str.upper)) if keys else "")


def test_merge_keeps_hand_added_lines_in_place():
    before = (
        "# crpbot\n"
        "RUNTIME_MODE=live\n"
        "\n"
        "HAND_KEY='hand value'  # mine\n"
        "# DB section\n"
        "DB_URL=old\n"
        "ANOTHER=1\n"
    )
    after, report = merged(before, {"RUNTIME_MODE": "dryrun", "DB_URL": "new url", "LOG_LEVEL": "INFO"})
    assert after == (
        "# crpbot\n"
        "RUNTIME_MODE=dryrun\n"
        "\n"
        "HAND_KEY='hand value'  # mine\n"
        "# DB section\n"
        "DB_URL='new url'\n"
        "ANOTHER=1\n"
        f"{marker('DB_URL', 'LOG_LEVEL', 'RUNTIME_MODE')}\n"
        "LOG_LEVEL=INFO\n"
    )
    assert report == {"changed": ["RUNTIME_MODE", "DB_URL"], "added": ["LOG_LEVEL"], "kept": ["HAND_KEY", "ANOTHER"],
                      "removed": []}


def test_merge_updates_every_occurrence_keeping_export_and_comment():
    after, report = merged("K=a\nX=1\nexport K='b' # note\nK=c\n", {"K": "new value", "L": "1", "M": "2"})
    assert after == (
        f"K='new value'\nX=1\nexport K='new value' # note\nK='new value'\n{marker('K', 'L', 'M')}\nL=1\nM=2\n"
    )
    assert report == {"changed": ["K"], "added": ["L", "M"], "kept": ["X"], "removed": []}
    assert read_back(after) == {"K": "new value", "X": "1", "L": "1", "M": "2"}


def test_merge_leaves_equal_decoded_values_as_written():
    text = f"A=\"x\"\nexport B='y z'\nC=w # comment\n{marker('A', 'B', 'C')}\n"
    after, report = merged(text, {"A": "x", "B": "y z", "C": "w"})
    assert after == text
    assert report == {"changed": [], "added": [], "kept": [], "removed": []}


def test_merge_records_the_keys_of_a_file_written_before_the_record_existed():
    # A file from an earlier version: the marker without the record gets it, nothing else moves.
    text = "A=1\n# Managed by crpbot-ansible\nB=2\n"
    after, report = merged(text, {"B": "2"}, prune=True)
    assert after == f"A=1\n{marker('B')}\nB=2\n"
    assert report == {"changed": [], "added": [], "kept": ["A"], "removed": []}


def test_merge_only_rewrites_differing_occurrences():
    after, report = merged(f'A="x"\nA=y\n{marker("A")}\n', {"A": "x"})
    assert after == f'A="x"\nA=x\n{marker("A")}\n'
    assert report["changed"] == ["A"]


@pytest.mark.parametrize(
    "before",
    [
        "runtime_mode=live\nRUNTIME_MODE=dryrun\n",
        "RUNTIME_MODE=live\n",
        "export RUNTIME_MODE=live\n",
        "Runtime_Mode = 'live'  # set by hand\n",
        "RUNTIME_MODE\n",
        "RUNTIME_MODE=\n",
        "  RUNTIME_MODE=\"live\"\nRUNTIME_MODE=live\nruntime_MODE=LIVE\n",
        "'RUNTIME_MODE'=live\n",
        "RUNTIME_MODE=live\r\nX=1\r\n",
    ],
)
def test_merge_sets_every_binding_of_a_key_in_any_case(before):
    after, report = merged(before, {"RUNTIME_MODE": "dryrun"})
    assert report["changed"] == ["RUNTIME_MODE"]
    modes = [value for key, value in env.bindings(env.parse_env(after)) if key.lower() == "runtime_mode"]
    assert modes and set(modes) == {"dryrun"}
    # as the bot reads it (pydantic-settings lower-cases keys; the last binding wins)
    assert {k.lower(): v for k, v in read_back(after).items()}["runtime_mode"] == "dryrun"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("K\n", "K=v\n"),
        ("K # note\n", "K=v # note\n"),
        ("K= # note\n", "K=v # note\n"),
        ("K=old # note\n", "K=v # note\n"),
        ("  K = 'old'\t# note\r\n", "  K =v\t# note\r\n"),
        ("K=old", "K=v\n"),
    ],
)
def test_merge_rewrites_a_line_in_place(before, after):
    eol = "\r\n" if "\r\n" in before else "\n"
    assert merged(before, {"K": "v"})[0] == after + marker("K") + eol


def test_merge_adds_the_marker_once():
    first, _ = merged("A=1\n", {"B": "2"})
    second, report = merged(first, {"B": "2", "C": "3"})
    assert second == f"A=1\n{marker('B', 'C')}\nB=2\nC=3\n"
    assert second.count("# Managed by crpbot-ansible") == 1
    assert report == {"changed": [], "added": ["C"], "kept": ["A"], "removed": []}


def test_merge_keeps_one_marker_holding_every_recorded_key():
    text = f"{marker('A')}\nA=1\n{marker('B')}\nB=2\n"
    after, report = merged(text, {"A": "1"})
    assert after == f"{marker('A', 'B')}\nA=1\nB=2\n"
    assert report["removed"] == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", f"{marker('B')}\nB=2\n"),
        ("A=1", f"A=1\n{marker('B')}\nB=2\n"),
        ("# last comment", f"# last comment\n{marker('B')}\nB=2\n"),
        ("A=1\r\n", f"A=1\r\n{marker('B')}\r\nB=2\r\n"),
        ("\ufeff", f"\ufeff{marker('B')}\nB=2\n"),
    ],
)
def test_merge_appends_after_the_last_line(before, after):
    assert merged(before, {"B": "2"})[0] == after


def test_merge_is_idempotent():
    managed = {k.upper(): v for k, v in ROUND_TRIP}
    once, _ = merged("HAND=1\n", managed, prune=True)
    twice, report = merged(once, managed, prune=True)
    assert twice == once
    assert report == {"changed": [], "added": [], "kept": ["HAND"], "removed": []}
    assert read_back(once) == {"HAND": "1", **managed}


def test_merge_prune_removes_keys_it_no_longer_manages_and_never_a_hand_added_one():
    first, _ = merged("HAND=mine\n", {"RUNTIME_MODE": "dryrun", "TOKEN": "Tq1-old-token", "CHAT": "42"}, prune=True)
    # A person edits a managed key, adds one of their own, and duplicates a managed one in another case.
    edited = first + "HAND_TWO=also mine\nexport token=Tq1-other\n"
    after, report = merged(edited, {"RUNTIME_MODE": "dryrun", "CHAT": "42"}, prune=True)
    assert after == f"HAND=mine\n{marker('CHAT', 'RUNTIME_MODE')}\nRUNTIME_MODE=dryrun\nCHAT=42\nHAND_TWO=also mine\n"
    assert report == {"changed": [], "added": [], "kept": ["HAND", "HAND_TWO"], "removed": ["TOKEN"]}
    assert "Tq1" not in after


def test_merge_without_prune_keeps_recorded_keys_and_their_record():
    first, _ = merged("", {"DB_URL": "old", "TOKEN": "t"}, prune=True)
    after, report = merged(first, {"DB_URL": "new"}, prune=False)
    assert after == f"{marker('DB_URL', 'TOKEN')}\nDB_URL=new\nTOKEN=t\n"
    assert report["removed"] == [] and report["changed"] == ["DB_URL"]


def test_merge_prune_with_nothing_recorded_removes_nothing():
    after, report = merged("A=1\nB=2\n", {"A": "1"}, prune=True)
    assert after == f"A=1\nB=2\n{marker('A')}\n"
    assert report["removed"] == [] and report["kept"] == ["B"]


@pytest.mark.parametrize(
    "line",
    ["# Managed by crpbot-ansible: A B and my notes!", "# managed by crpbot-ansible: A", "#Managed by crpbot-ansible: A"],
)
def test_merge_treats_a_hand_edited_marker_as_a_comment(line):
    after, report = merged(f"{line}\nA=1\n", {"B": "2"}, prune=True)
    assert after == f"{line}\nA=1\n{marker('B')}\nB=2\n"
    assert report["removed"] == [] and report["kept"] == ["A"]


def test_merge_refuses_an_unterminated_quote_that_would_swallow_new_lines():
    with pytest.raises(env.EnvFileError) as caught:
        merged("OK=1\nBROKEN='hand secret value\n", {"NEW": "a b"})
    assert "line(s) 2" in str(caught.value)
    assert "hand secret value" not in str(caught.value)


@pytest.mark.parametrize(
    ("managed", "named"),
    [
        ({"1BAD": "x"}, "'1BAD'"),
        ({"BAD-KEY": "x"}, "'BAD-KEY'"),
        ({"A": "x", "a": "y"}, "a"),
        ({"GOOD": "x", SECRET_KEY: "${TOKEN}"}, SECRET_KEY),
    ],
)
def test_merge_refuses_bad_keys_and_values(managed, named):
    with pytest.raises(env.EnvValueError) as caught:
        merged("A=1\n", managed)
    assert str(caught.value).startswith(f"{named}: ")
    assert "${TOKEN}" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# mask_for_diff
# --------------------------------------------------------------------------------------------


def test_mask_for_diff_hides_secrets_hand_values_and_comments():
    text = (
        "VISIBLE=shown value  # visible-comment\n"
        "SECRET='multi\nline secret'\n"
        "# parked: OLD_SECRET=hunter2\n"
        "HAND=hand-token # note hand-comment\n"
        "BARE # bare-comment\n"
        "\n"
        "# Managed by crpbot-ansible\n"
        "BROKEN 'unparsable-secret\n"
    )
    masked = env.mask_for_diff(env.parse_env(text), ["VISIBLE"])
    assert masked == (
        "VISIBLE=shown value # ********\n"
        "SECRET=********\n"
        "# ********\n"
        "HAND=******** # ********\n"
        "BARE # ********\n"
        "\n"
        "# Managed by crpbot-ansible\n"
        "********\n"
    )
    for leak in ("line secret", "hunter2", "hand-token", "hand-comment", "unparsable-secret", "-comment"):
        assert leak not in masked


# --------------------------------------------------------------------------------------------
# build_db_url
# --------------------------------------------------------------------------------------------

RDS = dict(host="db.example.invalid", port=5432, database="crpbot", sslmode="require")


def test_build_db_url_exact_form():
    url = env.build_db_url("rds", user="crpbot", password="p w+x", **RDS)
    assert url == "postgresql+psycopg://crpbot:p%20w%2Bx@db.example.invalid:5432/crpbot?sslmode=require"


@pytest.mark.parametrize("char", list(string.punctuation + " "))
def test_build_db_url_round_trips_each_special_character(char):
    user, password = f"u{char}v", f"p{char}{char}w"
    url = make_url(env.build_db_url("rds", user=user, password=password, **RDS))
    assert (url.username, url.password) == (user, password)
    assert (url.host, url.port, url.database, dict(url.query)) == (
        "db.example.invalid",
        5432,
        "crpbot",
        {"sslmode": "require"},
    )


def test_build_db_url_round_trips_everything_at_once():
    user = "us er" + string.punctuation + "ü"
    password = string.punctuation + " pässwörd 日本 😀 " + string.punctuation
    url = env.build_db_url(
        "rds", user=user, password=password, host="10.0.0.5", port="6543", database="trading ai", sslmode=""
    )
    parsed = make_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        user,
        password,
        "10.0.0.5",
        6543,
        "trading ai",
    )
    assert "?" not in url and "+" not in url.split("://", 1)[1]
    assert env.quote_value("DB_URL", url)  # writable to .env unchanged (no ${...})


@pytest.mark.parametrize("sslmode", [None, ""])
def test_build_db_url_omits_empty_sslmode(sslmode):
    url = env.build_db_url("rds", user="u", password="p", host="h", port=5432, database="d", sslmode=sslmode)
    assert url == "postgresql+psycopg://u:p@h:5432/d"


def test_build_db_url_ipv6_host():
    url = env.build_db_url("rds", user="u", password="p", host="::1", port=5432, database="d", sslmode=None)
    assert url == "postgresql+psycopg://u:p@[::1]:5432/d"
    assert make_url(url).host == "::1"


@pytest.mark.parametrize("project_dir", ["/root/crpbot", "/home/numan/crpbot/", "/srv/crp bot%x"])
def test_build_db_url_sqlite(project_dir):
    url = env.build_db_url("sqlite", project_dir=project_dir)
    assert make_url(url).database == project_dir.rstrip("/") + "/tradingai.db"
    if project_dir == "/root/crpbot":
        assert url == "sqlite:////root/crpbot/tradingai.db"


@pytest.mark.parametrize(
    ("backend", "changes", "named"),
    [
        ("mysql", {}, "backend"),
        ("rds", {"user": ""}, "user"),
        ("rds", {"user": None}, "user"),
        ("rds", {"password": ""}, "password"),
        ("rds", {"password": 5}, "password"),
        ("rds", {"host": "db host"}, "host"),
        ("rds", {"host": "h/x"}, "host"),
        ("rds", {"host": ""}, "host"),
        ("rds", {"port": 0}, "port"),
        ("rds", {"port": 70000}, "port"),
        ("rds", {"port": True}, "port"),
        ("rds", {"port": "54x"}, "port"),
        ("rds", {"database": ""}, "database"),
        ("rds", {"sslmode": "required"}, "sslmode"),
        ("sqlite", {"project_dir": "crpbot"}, "project_dir"),
        ("sqlite", {"project_dir": None}, "project_dir"),
    ],
)
def test_build_db_url_bad_input_names_the_parameter(backend, changes, named):
    kwargs = dict(user="crpbot", password="Sekr1t-Pw", project_dir="/root/crpbot", **RDS)
    kwargs.update(changes)
    with pytest.raises(ValueError, match=rf"^{named} ") as caught:
        env.build_db_url(backend, **kwargs)
    assert "Sekr1t-Pw" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# Target-side constraints and documentation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [MODULE_UTILS / "crpbot_env.py", MODULE], ids=["module_utils", "module"])
def test_only_stdlib_and_ansible_module_utils_are_imported(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    for name in imported:
        assert name.split(".")[0] in sys.stdlib_module_names or name.startswith("ansible.module_utils."), name


@pytest.fixture
def module(monkeypatch):
    """The module file itself, with its module_utils import served from plugins/module_utils."""
    monkeypatch.setitem(sys.modules, "ansible.module_utils.crpbot_env", env)
    return load_plugin(str(MODULE.relative_to(REPO)), "crpbot_env_file_under_test")


@pytest.mark.parametrize(("given", "expected"), [("0600", 0o600), ("640", 0o640), ("0o600", 0o600), (384, 0o600)])
def test_module_parses_modes(module, given, expected):
    assert module.parse_mode(given) == expected


@pytest.mark.parametrize("given", ["u=rw", "0999", "", True, 0o17777, None, 6.0])
def test_module_refuses_bad_modes(module, given):
    with pytest.raises(module.ModuleFailure, match="^mode must be"):
        module.parse_mode(given)


@pytest.mark.parametrize("bad", [True, None, 1.5, ["Lx3-list-secret"], {"k": "Dx3-dict-secret"}])
def test_request_refuses_non_string_settings_naming_the_key(bad):
    with pytest.raises(env.EnvRequestError) as caught:
        env.check_settings("secrets", {"API_TOKEN": bad})
    assert str(caught.value).startswith("secrets.API_TOKEN must be a string, got ")
    assert "secret" not in str(caught.value).split("got ")[1]


def test_request_converts_integers_and_checks_keys():
    assert env.check_settings("values", {"DB_PORT": 5432}) == {"DB_PORT": "5432"}
    with pytest.raises(env.EnvRequestError, match=r"^values: 'BAD-KEY': not a valid variable name"):
        env.check_settings("values", {"BAD-KEY": "x"})


def test_request_refuses_a_key_in_values_and_secrets():
    with pytest.raises(env.EnvRequestError, match="key Db_Url is given in secrets and as DB_URL in values"):
        env.combine_settings({"DB_URL": "a"}, {"Db_Url": "Vx1-hidden"})


@pytest.mark.parametrize("option", ["values", "secrets"])
@pytest.mark.parametrize("key", ["RUNTIME_MODE", "runtime_mode", "Runtime_Mode", "rUNTIME_mODE"])
def test_request_refuses_runtime_mode_in_the_settings_in_any_case(option, key):
    with pytest.raises(env.EnvRequestError) as caught:
        env.check_request(**{"values": {}, "secrets": {}, option: {key: "live"}}, db_url=None, role="qc")
    assert str(caught.value).startswith(f"{option}.{key}: RUNTIME_MODE is written only from runtime_mode")


def test_request_checks_every_value_before_anything_is_written():
    with pytest.raises(env.EnvRequestError) as caught:
        env.check_request({}, {"GOOD": "x", "BAD": "Zq9-${HOME}"}, None, "qc")
    assert str(caught.value).startswith("secrets.BAD: the value contains a ${...} reference")
    assert "Zq9" not in str(caught.value)


def test_request_refuses_sqlite_on_a_builder():
    db = {"backend": "sqlite", "project_dir": "/root/crpbot", "sslmode": ""}
    assert env.check_request({}, {}, db, "qc")[1] == {"DB_URL": "sqlite:////root/crpbot/tradingai.db"}
    with pytest.raises(env.EnvRequestError, match="db_url.backend is refused on this builder host: a builder always"):
        env.check_request({}, {}, db, "builder")


def plan_params(path, **changes):
    params = dict(path=str(path), values={}, secrets={}, owner=None, group=None, mode="0600", backup=True,
                  backup_keep=5, prune=True, host_role="qc", live_approved=False, runtime_mode="dryrun",
                  live_models=[])
    params.update(changes)
    return params


def test_module_plan_refuses_unsafe_paths(module, tmp_path):
    (tmp_path / "real.env").write_text("A=1\n")
    (tmp_path / "link.env").symlink_to(tmp_path / "real.env")
    (tmp_path / "dir.env").mkdir()
    (tmp_path / "latin1.env").write_bytes(b"A='\xe9'\n")
    cases = {
        "link.env": "is a symbolic link",
        "dir.env": "is not a regular file",
        "latin1.env": "is not valid UTF-8",
        "nodir/x.env": "does not exist; create it first",
    }
    for name, reason in cases.items():
        with pytest.raises(module.ModuleFailure, match=reason):
            module.make_plan(plan_params(tmp_path / name))
    with pytest.raises(module.ModuleFailure, match="path must be absolute"):
        module.make_plan(plan_params("relative/.env"))
    with pytest.raises(module.ModuleFailure, match="owner no-such-user-crpbot does not exist"):
        module.make_plan(plan_params(tmp_path / "real.env", owner="no-such-user-crpbot"))


def test_module_plan_predicts_without_writing(module, tmp_path):
    path = tmp_path / ".env"
    path.write_text("RUNTIME_MODE=live\nHAND=Hx2-hand\n")
    path.chmod(0o600)
    plan = module.make_plan(plan_params(path, secrets={"TOKEN": "Tx2-token"}))
    assert plan["content_changed"] and not plan["attrs_changed"]
    assert plan["report"] == {"changed": ["RUNTIME_MODE"], "added": ["TOKEN"], "kept": ["HAND"], "removed": []}
    assert plan["previous_values"] == {"RUNTIME_MODE": "live"}
    assert (plan["runtime_mode"], plan["mode_corrected_from"]) == ("dryrun", ["live"])
    assert "Tx2-token" not in plan["diff"]["after"] and "Hx2-hand" not in plan["diff"]["after"]
    assert path.read_text() == "RUNTIME_MODE=live\nHAND=Hx2-hand\n"


ROOT, NUMAN = 0, 1000
# (id, host_role, live_approved, runtime_mode asked, euid, what the file had, mode written or None = refused).
# The module decides on the host whatever it is given: live only for root on an approved builder.
MODE_CASES = [
    ("qc-live-as-root", "qc", True, "live", ROOT, "dryrun", None),
    ("qc-live-as-user", "qc", True, "live", NUMAN, "dryrun", None),
    ("qc-live-unapproved", "qc", False, "live", ROOT, "dryrun", None),
    ("builder-live-as-user", "builder", True, "live", NUMAN, "dryrun", None),
    ("builder-live-unapproved", "builder", False, "live", ROOT, "dryrun", None),
    ("builder-live-approved-root", "builder", True, "live", ROOT, "dryrun", "live"),
    ("qc-dryrun-over-hand-live", "qc", False, "dryrun", NUMAN, "live", "dryrun"),
    ("qc-preserve-hand-live", "qc", True, "preserve", ROOT, "live", "dryrun"),
    ("qc-preserve-hand-live-user", "qc", False, "preserve", NUMAN, "live", "dryrun"),
    ("builder-preserve-unapproved", "builder", False, "preserve", ROOT, "live", "dryrun"),
    ("builder-preserve-as-user", "builder", True, "preserve", NUMAN, "live", "dryrun"),
    ("builder-preserve-approved", "builder", True, "preserve", ROOT, "live", "live"),
    ("builder-preserve-never-introduces", "builder", True, "preserve", ROOT, "dryrun", "dryrun"),
    ("builder-preserve-other-case", "builder", True, "preserve", ROOT, "LIVE", "dryrun"),
    ("builder-dryrun-over-live", "builder", True, "dryrun", ROOT, "live", "dryrun"),
]


@pytest.mark.parametrize(("role", "approved", "asked", "euid", "had", "written"),
                         [c[1:] for c in MODE_CASES], ids=[c[0] for c in MODE_CASES])
def test_module_decides_the_mode_on_the_host_whatever_it_is_given(module, tmp_path, role, approved, asked, euid, had,
                                                                   written):
    path = tmp_path / ".env"
    original = f"RUNTIME_MODE={had}\nexport runtime_mode={had}\nHAND=1\n"
    path.write_text(original)
    params = plan_params(path, host_role=role, live_approved=approved, runtime_mode=asked,
                         live_models=promoted_model(tmp_path))
    if written is None:
        with pytest.raises(module.ModuleFailure, match="RUNTIME_MODE=live refused on this host"):
            module.make_plan(params, euid=euid)
        assert path.read_text() == original
        return
    plan = module.make_plan(params, euid=euid)
    module.apply(plan)
    values = [v for k, v in env.bindings(env.parse_env(path.read_text())) if k.lower() == "runtime_mode"]
    assert values == [written, written]
    assert plan["runtime_mode"] == written


def promoted_model(root, data=b"weights"):
    path = root / "models" / "promoted" / "lstm_BTC-USD_latest.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return [{"path": str(path), "sha256": hashlib.sha256(b"weights").hexdigest(), "model_id": "lstm_BTC-USD_v3"}]


# Live runs only an approved model whose file verifies on the host, however live is asked for.
@pytest.mark.parametrize("asked, had", [("live", "dryrun"), ("preserve", "live")])
@pytest.mark.parametrize("models, why", [
    (lambda root: [], "no model promotion is approved"),
    (lambda root: promoted_model(root, b"tampered"), "does not match the approved SHA-256 of model lstm_BTC-USD_v3"),
    (lambda root: [dict(promoted_model(root)[0], path=str(root / "nowhere.pt"))], "(model lstm_BTC-USD_v3) is missing"),
    (lambda root: promoted_model(root) + [dict(promoted_model(root)[0], sha256="0" * 64, model_id="gru_ETH-USD_v1")],
     "approved SHA-256 of model gru_ETH-USD_v1"),
], ids=["no-approval", "tampered-file", "missing-file", "one-of-two-differs"])
def test_module_refuses_live_without_verified_approved_models(module, tmp_path, asked, had, models, why):
    path = tmp_path / ".env"
    original = f"RUNTIME_MODE={had}\nHAND=1\n"
    path.write_text(original)
    params = plan_params(path, host_role="builder", live_approved=True, runtime_mode=asked, live_models=models(tmp_path))
    with pytest.raises(module.ModuleFailure, match="RUNTIME_MODE=live refused") as refused:
        module.make_plan(params, euid=ROOT)
    assert why in str(refused.value)
    assert path.read_text() == original


def test_module_plan_refuses_runtime_mode_among_the_settings(module, tmp_path):
    with pytest.raises(module.ModuleFailure, match="values.Runtime_Mode: RUNTIME_MODE is written only"):
        module.make_plan(plan_params(tmp_path / ".env", values={"Runtime_Mode": "live"}))


def test_module_keeps_only_the_newest_backups(module, tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=0\n")
    # Backups of an earlier version, one with the -n suffix of a name taken in the same second.
    old = ["20240101T000000", "20240101T000001", "20240101T000001-1", "20240102T000000", "20240103T000000",
           "20240104T000000", "20240105T000000"]
    for stamp in old:
        (tmp_path / f".env.{stamp}.bak").write_text("A=old\n")
    (tmp_path / ".env.notes.bak").write_text("mine\n")  # not one of ours: kept
    for number in range(1, 4):
        plan = module.make_plan(plan_params(path, values={"A": str(number)}, backup_keep=3))
        module.apply(plan)
    kept = sorted(p.name for p in tmp_path.glob(".env.*.bak"))
    assert len([name for name in kept if name != ".env.notes.bak"]) == 3
    assert ".env.notes.bak" in kept and not any("2024" in name for name in kept)
    # A converge with nothing to write still trims backups beyond the bound, and says so.
    for stamp in old[:2]:
        (tmp_path / f".env.{stamp}.bak").write_text("A=old\n")
    plan = module.make_plan(plan_params(path, values={"A": "3"}, backup_keep=3))
    assert not plan["content_changed"] and module.plan_changed(plan)
    assert [Path(p).name for p in plan["stale_backups"]] == [f".env.{stamp}.bak" for stamp in old[:2]]


# --------------------------------------------------------------------------------------------
# End to end: ansible-playbook, local connection, the host's system python3
# --------------------------------------------------------------------------------------------

DB_PASSWORD = "Sx9 p@ss:w/rd#?%&'\"$HOME\\"
API_TOKEN = "Tk5-secret 'quoted' \"token\" \\ #hash"
HAND_TOKEN = "Hx7-handmade-token-0042"
PARKED_SECRET = "Pq1-commented-out-secret"
OLD_DB_URL = "postgresql://olduser:Old-Db-Pass-77@old"
ORIGINAL = (
    "# crpbot settings (hand-written)\n"
    "RUNTIME_MODE=live\n"
    'export DB_BACKEND="rds"   # chosen by hand\n'
    f"HAND_TOKEN='{HAND_TOKEN}'\n"
    "\n"
    "# old key, parked\n"
    f"#OLD_PASSWORD={PARKED_SECRET}\n"
    f"DB_URL={OLD_DB_URL}\n"
)


def play_tasks(tmp_path: Path, env_path: Path, db_url: str) -> list[dict]:
    values = {"DB_BACKEND": "rds", "LOG_LEVEL": "INFO"}
    secrets = {"DB_URL": db_url, "API_PRIVATE_KEY": PEM, "API_TOKEN": API_TOKEN}
    converge = {"path": str(env_path), "values": values, "secrets": secrets}
    return [
        {
            "name": "Predict the first converge",
            "crpbot_env_file": converge,
            "check_mode": True,
            "register": "predicted",
        },
        {
            "name": "Stat after the prediction",
            "ansible.builtin.stat": {"path": str(env_path), "checksum_algorithm": "sha1"},
            "register": "after_check",
        },
        {"name": "Converge", "crpbot_env_file": converge, "register": "first"},
        {"name": "Converge again", "crpbot_env_file": converge, "register": "second"},
        {"name": "Loosen the mode by hand", "ansible.builtin.file": {"path": str(env_path), "mode": "0644"}},
        {"name": "Fix the mode only", "crpbot_env_file": converge, "register": "mode_fix"},
        {
            "name": "Fix the owner only",
            "crpbot_env_file": {**converge, "owner": "root", "group": "0"},
            "register": "owner_fix",
        },
        {
            "name": "Predict creating a new file",
            "crpbot_env_file": {"path": str(tmp_path / "new.env"), "secrets": {"API_TOKEN": API_TOKEN}},
            "check_mode": True,
            "register": "predicted_new",
        },
        {
            "name": "Refuse a secret python-dotenv would interpolate",
            "crpbot_env_file": {"path": str(env_path), "secrets": {"BAD_SECRET": "Zr8-${HOME}-bad"}},
            "register": "refused",
            "ignore_errors": True,
        },
        {
            "name": "Refuse a missing parent directory",
            "crpbot_env_file": {"path": str(tmp_path / "missing" / ".env"), "values": {"A": "1"}},
            "register": "no_parent",
            "ignore_errors": True,
        },
        {
            "name": "Converge a second file",
            "crpbot_env_file": {**converge, "path": str(tmp_path / "second.env")},
        },
        {
            "name": "Stop managing a secret",
            "crpbot_env_file": {**converge, "path": str(tmp_path / "second.env"),
                                "secrets": {k: v for k, v in secrets.items() if k != "API_TOKEN"}},
            "register": "pruned",
        },
        {
            "name": "Refuse a task that names the host's role itself",
            "crpbot_env_file": {**converge, "host_role": "builder", "live_approved": True, "runtime_mode": "live"},
            "register": "hostile",
            "ignore_errors": True,
        },
        {
            "name": "Refuse live on a QC host",
            "crpbot_env_file": {**converge, "runtime_mode": "live", "live_confirmation": "CONFIRM"},
            "register": "qc_live",
            "ignore_errors": True,
        },
        {
            "name": "Refuse a key in values and secrets",
            "crpbot_env_file": {
                "path": str(env_path),
                "values": {"API_TOKEN": "x"},
                "secrets": {"api_token": API_TOKEN},
            },
            "register": "duplicate",
            "ignore_errors": True,
        },
    ]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("e2e")
    workdir = tmp_path / "crpbot"
    workdir.mkdir()
    env_path = workdir / ".env"
    env_path.write_bytes(ORIGINAL.encode())
    env_path.chmod(0o644)
    owner = None
    if os.geteuid() == 0:
        owner = (65534, 65534)
        os.chown(env_path, *owner)
    db_url = env.build_db_url("rds", user="crpbot", password=DB_PASSWORD, **RDS)
    play = run_module_play(
        tmp_path,
        play_tasks(tmp_path, env_path, db_url),
        name="Exercise crpbot_env_file",
        extra_args=("--diff", "-vvv"),
        inventory=crpbot_localhost(role="qc"),
    )
    assert play.returncode == 0, play.output[-5000:]
    return {
        "output": play.output,
        "results": play.results,
        "env_path": env_path,
        "workdir": workdir,
        "db_url": db_url,
        "owner": owner,
        "tmp_path": tmp_path,
    }


def test_e2e_writes_the_expected_bytes(e2e):
    db_url = e2e["db_url"]
    expected = (
        "# crpbot settings (hand-written)\n"
        "RUNTIME_MODE=dryrun\n"
        'export DB_BACKEND="rds"   # chosen by hand\n'
        f"HAND_TOKEN='{HAND_TOKEN}'\n"
        "\n"
        "# old key, parked\n"
        f"#OLD_PASSWORD={PARKED_SECRET}\n"
        f"DB_URL={env.quote_value('DB_URL', db_url)}\n"
        "# Managed by crpbot-ansible: API_PRIVATE_KEY API_TOKEN DB_BACKEND DB_URL LOG_LEVEL RUNTIME_MODE\n"
        "LOG_LEVEL=INFO\n"
        f"API_PRIVATE_KEY='{PEM}'\n"
        "API_TOKEN='Tk5-secret \\'quoted\\' \"token\" \\\\ #hash'\n"
    )
    assert e2e["env_path"].read_bytes() == expected.encode()
    assert dotenv.dotenv_values(e2e["env_path"]) == {
        "RUNTIME_MODE": "dryrun",
        "DB_BACKEND": "rds",
        "HAND_TOKEN": HAND_TOKEN,
        "DB_URL": db_url,
        "LOG_LEVEL": "INFO",
        "API_PRIVATE_KEY": PEM,
        "API_TOKEN": API_TOKEN,
    }
    assert make_url(dotenv.dotenv_values(e2e["env_path"])["DB_URL"]).password == DB_PASSWORD
    st = e2e["env_path"].stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    if e2e["owner"]:  # kept by the converge (no owner given), then set to root:0 by "Fix the owner only"
        first = e2e["results"]["first"]
        assert (first["uid"], first["gid"]) == e2e["owner"]
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_e2e_first_run_reports_names_backup_and_previous_values(e2e):
    first = e2e["results"]["first"]
    assert first["changed"] is True
    assert first["changed_keys"] == ["RUNTIME_MODE", "DB_URL"]
    assert first["added_keys"] == ["LOG_LEVEL", "API_PRIVATE_KEY", "API_TOKEN"]
    assert first["kept_keys"] == ["HAND_TOKEN"]
    assert first["previous_values"] == {"RUNTIME_MODE": "live", "LOG_LEVEL": None}
    assert (first["runtime_mode"], first["mode_corrected_from"]) == ("dryrun", ["live"])
    backup = Path(first["backup_file"])
    assert backup.parent == e2e["workdir"]
    assert backup.name.startswith(".env.") and backup.name.endswith(".bak")
    assert backup.read_bytes() == ORIGINAL.encode()
    st = backup.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    if e2e["owner"]:
        assert (st.st_uid, st.st_gid) == e2e["owner"]
    # no temporary file left behind, and every backup is a 0600 one of ours
    names = sorted(p.name for p in e2e["workdir"].iterdir())
    assert ".env" in names and backup.name in names
    assert all(name == ".env" or (name.startswith(".env.") and name.endswith(".bak")) for name in names), names


def test_e2e_second_run_and_mode_fix(e2e):
    second = e2e["results"]["second"]
    assert second["changed"] is False
    assert (second["changed_keys"], second["added_keys"], second["previous_values"]) == ([], [], {})
    assert "backup_file" not in second
    mode_fix = e2e["results"]["mode_fix"]
    assert mode_fix["changed"] is True
    assert (mode_fix["changed_keys"], mode_fix["added_keys"]) == ([], [])
    assert "backup_file" not in mode_fix
    owner_fix = e2e["results"]["owner_fix"]
    assert owner_fix["changed"] is (e2e["owner"] is not None)
    assert "backup_file" not in owner_fix


def test_e2e_check_mode_predicts_and_writes_nothing(e2e):
    predicted = e2e["results"]["predicted"]
    assert predicted["changed"] is True
    assert predicted["changed_keys"] == ["RUNTIME_MODE", "DB_URL"]
    assert predicted["previous_values"] == {"RUNTIME_MODE": "live", "LOG_LEVEL": None}
    assert "backup_file" not in predicted
    assert e2e["results"]["after_check"]["stat"]["checksum"] == hashlib.sha1(ORIGINAL.encode()).hexdigest()
    assert e2e["results"]["after_check"]["stat"]["mode"] == "0644"
    predicted_new = e2e["results"]["predicted_new"]
    assert predicted_new["changed"] is True and predicted_new["added_keys"] == ["RUNTIME_MODE", "API_TOKEN"]
    assert not (e2e["tmp_path"] / "new.env").exists()


def test_e2e_failures_name_keys_and_paths_only(e2e):
    refused = e2e["results"]["refused"]
    assert refused["failed"] is True
    assert refused["msg"].startswith("REFUSED, nothing was written: host localhost: secrets.BAD_SECRET: the value "
                                     "contains a ${...} reference")
    assert "Zr8" not in json.dumps(refused)
    no_parent = e2e["results"]["no_parent"]
    assert no_parent["failed"] is True
    assert str(e2e["tmp_path"] / "missing") in no_parent["msg"] and "does not exist" in no_parent["msg"]
    duplicate = e2e["results"]["duplicate"]
    assert duplicate["failed"] is True
    assert "api_token" in duplicate["msg"] and "API_TOKEN" in duplicate["msg"]
    hostile = e2e["results"]["hostile"]
    assert hostile["failed"] is True and "host_role, live_approved is set from the inventory's groups" in hostile["msg"]
    qc_live = e2e["results"]["qc_live"]
    assert qc_live["failed"] is True
    assert "runtime_mode: live refused: the inventory does not approve live" in qc_live["msg"]


def test_e2e_a_secret_no_longer_managed_is_removed_and_the_rest_stays(e2e):
    pruned = e2e["results"]["pruned"]
    assert pruned["changed"] is True and pruned["removed_keys"] == ["API_TOKEN"]
    text = (e2e["tmp_path"] / "second.env").read_text()
    assert "API_TOKEN" not in text and "LOG_LEVEL=INFO" in text and "API_PRIVATE_KEY=" in text
    assert "# Managed by crpbot-ansible: API_PRIVATE_KEY DB_BACKEND DB_URL LOG_LEVEL RUNTIME_MODE\n" in text


def test_e2e_warns_naming_the_host_when_it_corrects_a_hand_set_live(e2e):
    assert "host localhost had RUNTIME_MODE=live in " in e2e["output"]
    assert "it is now dryrun. A QC host never trades." in e2e["output"]


def test_e2e_diff_shows_values_and_masks_everything_else(e2e):
    diff = e2e["results"]["first"]["diff"]
    assert "RUNTIME_MODE=live" in diff["before"] and "RUNTIME_MODE=dryrun" in diff["after"]
    assert "LOG_LEVEL=INFO" in diff["after"]
    assert "DB_URL=********" in diff["after"] and "API_PRIVATE_KEY=********\n" in diff["after"]
    assert "HAND_TOKEN=********" in diff["after"]


def test_e2e_output_never_contains_a_secret(e2e):
    output = e2e["output"] + json.dumps(e2e["results"])
    assert "Converge again" in output  # the run's output was captured at all
    leaks = [
        DB_PASSWORD,
        e2e["db_url"],
        e2e["db_url"].split("@")[0].split(":")[-1],  # the percent-encoded password
        API_TOKEN,
        HAND_TOKEN,
        PARKED_SECRET,
        OLD_DB_URL,
        "Old-Db-Pass-77",
        "Zr8-",
    ]
    leaks += [line for line in PEM.splitlines() if "-----" not in line]
    for leak in leaks:
        assert leak not in output, f"secret {leaks.index(leak)} leaked"


# --------------------------------------------------------------------------- db_url option

DB_PASSWORD = "Sbx p@ss:w/rd#?&%+=! 'q\"é"


def test_db_url_option_builds_a_url_sqlalchemy_reads_back():
    from sqlalchemy.engine import make_url

    built = env.db_url_setting(
        {"backend": "rds", "user": "crpbot admin", "password": DB_PASSWORD, "host": "127.0.0.1", "port": 5432,
         "database": "crpbot", "sslmode": "require", "project_dir": None}, "builder"
    )
    url = make_url(built["DB_URL"])
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg", "crpbot admin", DB_PASSWORD, "127.0.0.1", 5432, "crpbot")
    assert url.query == {"sslmode": "require"}


def test_db_url_option_sqlite_and_absent():
    assert env.db_url_setting(None, "qc") == {}
    built = env.db_url_setting({"backend": "sqlite", "project_dir": "/home/numan/crpbot", "sslmode": ""}, "qc")
    assert built == {"DB_URL": "sqlite:////home/numan/crpbot/tradingai.db"}


def test_db_url_option_errors_name_the_field_not_the_password():
    with pytest.raises(env.EnvRequestError) as caught:
        env.db_url_setting({"backend": "rds", "user": "u", "password": DB_PASSWORD, "host": "", "port": 5432,
                            "database": "crpbot", "sslmode": "", "project_dir": None}, "qc")
    assert str(caught.value).startswith("db_url: ") and "host" in str(caught.value)
    assert DB_PASSWORD not in str(caught.value)


def test_db_url_option_refuses_a_second_db_url(module, tmp_path):
    params = plan_params(tmp_path / ".env", secrets={"db_url": "x"},
                         db_url={"backend": "sqlite", "project_dir": str(tmp_path), "sslmode": ""})
    with pytest.raises(module.ModuleFailure, match="DB_URL is given"):
        module.make_plan(params)


@pytest.mark.parametrize(
    ("role", "before", "now", "says", "never"),
    [
        ("qc", ["live"], "dryrun", "it is now dryrun. A QC host never trades.", "trades from now on"),
        ("qc", ["(no value)", "live"], "dryrun", "had RUNTIME_MODE=(no value), live in /p/.env", "confirmed"),
        ("builder", ["live"], "dryrun", "it is now dryrun. The inventory and this run do not make it live.",
         "confirmed"),
        # Going live is what the person confirmed: the run says so, and not that nothing makes it live.
        ("builder", ["dryrun"], "live", "it is now live. The inventory approves live for it and this run confirmed it",
         "do not make it live"),
    ],
)
def test_the_mode_change_warning_says_what_happened(role, before, now, says, never):
    action = load_plugin("plugins/action/crpbot_env_file.py", "crpbot_env_file_action_under_test")
    text = action.mode_change_warning("h1", role, before, "/p/.env", now)
    assert text.startswith("host h1 had RUNTIME_MODE=") and says in text and never not in text

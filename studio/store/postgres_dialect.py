"""The store's queries in PostgreSQL's spelling.

Queries are written once, in SQLite's spelling; these are the only differences they use, each
rewritten exactly (anything else must already be portable SQL):

- ``?`` placeholders become ``$1, $2, …`` (never inside a quoted string);
- ``x IS ?`` (SQLite's null-safe equality) becomes ``x IS NOT DISTINCT FROM $n``;
- ``MAX(column, ?)`` (or a number), SQLite's two-argument max, becomes ``GREATEST(…)``;
- ``json_extract(column, '$.key')`` becomes ``(column::jsonb ->> 'key')`` (text, as compared);
- ``json_array_length(column, '$.key')`` becomes the length of that array (NULL if it is none).

Migrations (DDL) also widen SQLite's types: ``REAL`` is single precision in Postgres (unix times
would lose minutes), and ``INTEGER`` is 32 bits (seeds and sizes need 64).
"""

from __future__ import annotations

import functools
import re

_IS_PARAM = re.compile(r"\bIS \?")
_MAX_OF_TWO = re.compile(r"\bMAX\((\w+), (\?|\d+)\)")
_JSON_EXTRACT = re.compile(r"json_extract\(([\w.]+), '\$\.(\w+)'\)")
_JSON_ARRAY_LENGTH = re.compile(r"json_array_length\(([\w.]+), '\$\.(\w+)'\)")
_REAL = re.compile(r"\bREAL\b")
_INTEGER = re.compile(r"\bINTEGER\b")


@functools.lru_cache(maxsize=1024)
def query(sql: str) -> str:
    sql = _IS_PARAM.sub("IS NOT DISTINCT FROM ?", sql)
    sql = _MAX_OF_TWO.sub(r"GREATEST(\1, \2)", sql)
    sql = _JSON_EXTRACT.sub(r"(\1::jsonb ->> '\2')", sql)
    array = r"\1::jsonb -> '\2'"
    sql = _JSON_ARRAY_LENGTH.sub(
        f"(CASE WHEN jsonb_typeof({array}) = 'array' THEN jsonb_array_length({array}) END)", sql
    )
    return numbered_placeholders(sql)


def numbered_placeholders(sql: str) -> str:
    out: list[str] = []
    number = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted  # a doubled '' inside a string toggles twice: still quoted
        if char == "?" and not quoted:
            number += 1
            out.append(f"${number}")
        else:
            out.append(char)
    return "".join(out)


def schema(sql: str) -> str:
    """A migration script with Postgres' types for SQLite's REAL and INTEGER."""
    return _INTEGER.sub("BIGINT", _REAL.sub("DOUBLE PRECISION", sql))

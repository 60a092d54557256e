"""Batch templates: `{variable}` placeholders filled from rows (JSON objects or CSV lines).

Rendering is plain concatenation of checked parts, never ``str.format`` (whose `{a.b}` and
`{a[0]}` reach into objects). Values are prompt text like any other: inline flags in them work.
"""

from __future__ import annotations

import csv
import io
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from studio.errors import InvalidRecipe

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Template:
    parts: tuple[tuple[str, str | None], ...]  # (literal text, variable after it or None)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, name in self.parts if name is not None))

    def fill(self, row: Mapping[str, Cell], number: int) -> str:
        """The prompt for row ``number`` (from 1); InvalidRecipe names the row and the variable."""
        out = []
        for literal, name in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = row.get(name)
            if value is None or value == "":
                raise InvalidRecipe("rows", f"Row {number} has no value for `{name}`.")
            out.append(_text(value))
        return "".join(out)


def parse_template(text: str) -> Template:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise InvalidRecipe(
            "template", "The template has an unmatched `{` or `}`; write `{{` or `}}` for a literal brace."
        ) from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (spec or conversion or not _VARIABLE.match(name)):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise InvalidRecipe(
                "template",
                f"`{shown[:70]}` is not a variable: write `{{name}}` (letters, digits and _).",
            )
        parts.append((literal, name))
    return Template(tuple(parts))


def rows_from_csv(text: str) -> list[dict[str, Cell]]:
    """CSV text with a header row; extra columns are fine, a short line leaves its cells empty."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    rows: list[dict[str, Cell]] = []
    try:
        if not reader.fieldnames:
            raise InvalidRecipe("csv", "The CSV needs a header row naming its columns.")
        for row in reader:
            rows.append({key.strip(): value for key, value in row.items() if isinstance(key, str)})
    except csv.Error as error:
        raise InvalidRecipe("csv", f"The CSV could not be read at line {reader.line_num}: {error}.") from None
    if not rows:
        raise InvalidRecipe("csv", "The CSV has a header but no rows.")
    return rows


def _text(value: Cell) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

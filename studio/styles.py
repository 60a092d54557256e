"""Style presets (config/styles.toml): prompt and negative fragments with suggested model and aspect."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studio.errors import StudioError
from studio.families import ASPECTS
from studio.tomlfile import entry, read_toml, table

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
PLACEHOLDER = "{prompt}"


class UnknownStyle(StudioError):
    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none configured"
        super().__init__(f"Unknown style `{name}`. Available styles: {listed}.")
        self.name = name


class Style(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = Field(min_length=1, max_length=100)
    prompt: str = Field(min_length=1, max_length=500)
    negative: str = Field(default="", max_length=500)
    model: str | None = None
    aspect: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-32 lowercase letters, digits, '_' or '-'")
        return value

    @field_validator("aspect")
    @classmethod
    def _aspect(cls, value: str | None) -> str | None:
        if value is not None and value not in ASPECTS:
            raise ValueError(f"must be one of {', '.join(ASPECTS)}")
        return value

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        """The user's prompt and negative with this style's fragments worked in."""
        if PLACEHOLDER in self.prompt:
            styled = self.prompt.replace(PLACEHOLDER, prompt)  # not str.format: prompts may hold braces
        else:
            styled = f"{prompt}, {self.prompt}"
        styled_negative = ", ".join(part for part in (negative, self.negative) if part)
        return styled, styled_negative


class StyleBook:
    def __init__(self, styles: dict[str, Style]) -> None:
        self.styles = styles

    def get(self, name: str) -> Style:
        try:
            return self.styles[name.strip().lower()]
        except KeyError:
            raise UnknownStyle(name, sorted(self.styles)) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.styles.values())


def load_styles(path: str | Path) -> StyleBook:
    """The presets in ``path``; a missing file means no presets, a broken one a clear error."""
    file = Path(path)
    where = str(file)
    if not file.exists():
        return StyleBook({})
    styles: dict[str, Style] = {}
    for name, found in (read_toml(file).get("styles") or {}).items():
        styles[name] = entry(Style, table(found, where, name, "style"), where, name, "style", name=name)
    return StyleBook(styles)

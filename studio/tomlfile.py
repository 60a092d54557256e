"""Reading the studio's TOML files (models, styles, vocabulary): one way, with the same errors.

Every error is a CatalogueError that names the file and, where it can, the entry, the field
and (for a syntax error) the line and column.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from studio.errors import CatalogueError

Entry = TypeVar("Entry", bound=BaseModel)


def read_toml(path: str | Path) -> dict[str, Any]:
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(str(file), "file not found") from None
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise CatalogueError(str(file), f"not valid TOML ({exc})") from None


def table(raw: object, where: str, name: str, kind: str) -> dict[str, Any]:
    """``raw``, a ``[<kind>s.<name>]`` table of the file ``where``."""
    if not isinstance(raw, dict):
        raise CatalogueError(where, "must be a table", name, kind=kind)
    return raw


def entry(
    model: type[Entry], raw: dict[str, Any], where: str, name: str, kind: str, /, **given: Any
) -> Entry:
    """The table ``raw`` as a ``model``, with the ``given`` fields (its name) besides."""
    try:
        return model(**given, **raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise CatalogueError(where, first["msg"], name, field, kind=kind) from None
    except TypeError as exc:
        raise CatalogueError(where, str(exc), name, kind=kind) from None


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # a Hugging Face repo id: owner/name


def transformers_source(found: dict[str, Any], base: Path, where: str, section: str) -> dict[str, Any]:
    """A table whose ``source`` is a transformers model: a hub id stays as it is; a local folder
    (relative to the catalogue file) is made absolute and must hold a config.json."""
    source = found.get("source")
    if isinstance(source, str) and source:
        path = Path(source).expanduser()
        path = path if path.is_absolute() else base / path
        if source.startswith((".", "/", "~")) or path.exists() or not HUB_ID.match(source):
            if not (path / "config.json").is_file():
                why = f"source '{source}' is not a transformers model folder (no config.json at {path})"
                raise CatalogueError(where, why, section, "source", section)
            return {**found, "source": str(path.resolve())}
    return found

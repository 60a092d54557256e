from __future__ import annotations

from pathlib import Path

import pytest

from studio.catalogue import Catalogue, ModelEntry
from studio.errors import CatalogueError
from studio.recipe import Draft, parse_prompt, resolve
from studio.styles import UnknownStyle, load_styles

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = Catalogue(
    {
        "sd15": ModelEntry(id="sd15", family="sd15", source="org/sd15", description="sd"),
        "sdxl": ModelEntry(id="sdxl", family="sdxl", source="org/sdxl", description="xl"),
    },
    default="sd15",
)


def test_shipped_presets_load() -> None:
    book = load_styles(ROOT / "config" / "styles.toml")
    names = [s.name for s in book]
    assert {"cinematic", "photoreal", "watercolour", "anime", "noir"} <= set(names)
    assert all(s.description for s in book)


def test_a_style_works_its_fragments_in_and_suggests_model_and_aspect(tmp_path: Path) -> None:
    path = tmp_path / "styles.toml"
    path.write_text(
        '[styles.ink]\ndescription = "Ink"\nprompt = "ink drawing of {prompt}, {braces} kept"\n'
        'negative = "colour"\nmodel = "sdxl"\naspect = "16:9"\n'
        '[styles.plain]\ndescription = "Plain"\nprompt = "high detail"\n'
    )
    book = load_styles(path)
    recipe = resolve(parse_prompt("a {weird} cat --no dogs --style ink"), CATALOGUE, 1, styles=book)
    assert recipe.prompt == "ink drawing of a {weird} cat, {braces} kept"
    assert recipe.negative_prompt == "dogs, colour"
    assert (recipe.model, recipe.aspect, recipe.width, recipe.height) == ("sdxl", "16:9", 1344, 768)
    assert recipe.style == "ink"
    # What the user said beats what the style suggests.
    mine = resolve(
        parse_prompt("a cat --style ink --ar 1:1").merged(Draft(model="sd15")), CATALOGUE, 1, styles=book
    )
    assert (mine.model, mine.aspect) == ("sd15", "1:1")
    plain = resolve(parse_prompt("a cat --style plain"), CATALOGUE, 1, styles=book)
    assert plain.prompt == "a cat, high detail" and plain.negative_prompt == ""


def test_unknown_and_broken_styles(tmp_path: Path) -> None:
    book = load_styles(ROOT / "config" / "styles.toml")
    with pytest.raises(UnknownStyle, match=r"Unknown style `vaporwave`\. Available styles: anime, cinematic"):
        resolve(parse_prompt("a cat --style vaporwave"), CATALOGUE, 1, styles=book)
    path = tmp_path / "styles.toml"
    path.write_text('[styles.bad]\ndescription = "x"\nprompt = "y"\naspect = "5:4"\n')
    with pytest.raises(CatalogueError, match="style `bad`, field `aspect`"):
        load_styles(path)
    assert list(load_styles(tmp_path / "absent.toml")) == []

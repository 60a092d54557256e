"""/describe's prompts and its [describe] catalogue table (no model, no worker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from studio.describe import FRAMINGS, NO_MODEL, Describer, clean_caption, describe_config, prompts_from
from studio.errors import CatalogueError, StudioError
from studio.settings import Settings
from studio.training import TrainingImage


def test_captions_become_clean_distinct_prompts() -> None:
    assert (
        clean_caption("arafed man --ar 16:9 **bold** <@123> on a bike.") == "man ar 16 9 bold 123 on a bike"
    )
    prompts = prompts_from(["a red fox", "A red fox.", "", "a fox in snow", "a red fox --no x"])
    assert prompts[:3] == ["a red fox", "a fox in snow", "a red fox no x"]
    assert len(prompts) == 4 and prompts[3] == FRAMINGS[0].format("a red fox")


def test_one_caption_still_gives_four_prompts_and_none_is_refused() -> None:
    assert len(set(prompts_from(["a cat"]))) == 4
    with pytest.raises(StudioError, match="found no words"):
        prompts_from(["", "--", "**"])


def test_the_describe_table(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text('[models.m]\nfamily = "sd15"\nsource = "a/b"\n', encoding="utf-8")
    assert describe_config(models) is None
    folder = tmp_path / "blip"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    models.write_text('[describe]\nsource = "blip"\nprefix = "a picture of"\n', encoding="utf-8")
    config = describe_config(models)
    assert config is not None and config.source == str(folder.resolve()) and config.kind == "blip"
    models.write_text('[describe]\nsource = "./nowhere"\n', encoding="utf-8")
    with pytest.raises(CatalogueError, match="not a transformers model folder"):
        describe_config(models)
    models.write_text(
        '[describe]\nsource = "Salesforce/blip-image-captioning-large"\nkind = "gpt"\n', encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="describe"):
        describe_config(models)


def test_without_a_describe_model_nothing_is_queued(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text('[models.m]\nfamily = "sd15"\nsource = "a/b"\n', encoding="utf-8")
    queue = cast(Any, object())  # never reached: any use of it would fail the test
    describer = Describer(Settings(), str(models), queue)
    with pytest.raises(StudioError) as refused:
        asyncio.run(describer.describe(b"\x89PNG"))
    assert str(refused.value) == NO_MODEL
    captioned = [TrainingImage(b"x", "on a chair")]
    assert asyncio.run(describer.fill_captions(captioned)) == captioned  # nothing to fill: no model needed
    with pytest.raises(StudioError, match="caption:auto needs a describe model"):
        asyncio.run(describer.fill_captions([TrainingImage(b"x")]))

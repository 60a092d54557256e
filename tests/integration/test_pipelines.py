"""The worker's pipeline code on the tiny models, in process: cache, from_pipe, seeds, cancel."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.generate import Cancelled, run
from gpu_worker.pipelines import ModelLoadError, PipelineCache
from gpu_worker.prompting import needs_compel
from studio.jobs import ModelRef
from studio.recipe import Recipe


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache("cpu", torch.float32, size=2)


def recipe(**changes: object) -> Recipe:
    base = Recipe(
        model="tiny-sd15",
        family="sd15",
        prompt="a lighthouse",
        seed=42,
        steps=3,
        guidance=6.0,
        width=64,
        height=64,
        batch=2,
    )
    return base.model_copy(update=changes)


def test_warm_model_is_not_reloaded_and_img2img_shares_weights(
    cache: PipelineCache, tiny_models: dict[str, Path]
) -> None:
    ref = ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"]))
    model, first = cache.get(ref)
    again, second = cache.get(ref)
    assert again is model and first > 0 and second == 0.0 and cache.loads == 1
    img2img = model.pipeline("img2img")
    assert img2img.unet is model.text2img.unet and img2img.vae is model.text2img.vae


def test_seeds_are_per_image_and_reproducible(cache: PipelineCache, tiny_models: dict[str, Path]) -> None:
    model, _ = cache.get(ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"])))
    never = threading.Event()
    batch = run(model, recipe(), None, lambda s, t: None, never).images
    again = run(model, recipe(), None, lambda s, t: None, never).images
    assert [np.asarray(i).tobytes() for i in batch] == [np.asarray(i).tobytes() for i in again]
    assert np.asarray(batch[0]).tobytes() != np.asarray(batch[1]).tobytes()
    single = run(model, recipe(seed=43, batch=1), None, lambda s, t: None, never).images[0]
    # Image 2 of the batch is the seed-43 image (batched maths differs only in rounding).
    assert np.abs(np.asarray(single, dtype=int) - np.asarray(batch[1], dtype=int)).max() <= 2


def test_cancel_from_the_step_callback(cache: PipelineCache, tiny_models: dict[str, Path]) -> None:
    model, _ = cache.get(ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"])))
    flag = threading.Event()
    steps: list[int] = []

    def on_step(step: int, total: int) -> None:
        steps.append(step)
        flag.set()

    with pytest.raises(Cancelled):
        run(model, recipe(steps=50), None, on_step, flag)
    assert steps == [1]


def test_a_model_that_will_not_load_is_a_clear_error(cache: PipelineCache, tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="could not load model broken"):
        cache.get(ModelRef(id="broken", family="sd15", source=str(tmp_path)))


def pixels(images: list[Any]) -> list[bytes]:
    return [np.asarray(image).tobytes() for image in images]


def test_prompt_weighting_and_long_prompts(cache: PipelineCache, tiny_models: dict[str, Path]) -> None:
    model, _ = cache.get(ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"])))
    never = threading.Event()

    def draw(prompt: str, negative: str = "", **changes: Any) -> list[bytes]:
        return pixels(
            run(model, recipe(prompt=prompt, negative_prompt=negative, **changes), None, quiet, never).images
        )

    assert not needs_compel(model, recipe(prompt="a red cat, twenty-one boats"))
    assert needs_compel(model, recipe(prompt="a (red:1.5) cat")) and needs_compel(
        model, recipe(prompt="a cat++")
    )
    assert needs_compel(model, recipe(prompt="a cat", negative_prompt="dogs--"))
    plain = draw("a red cat")
    assert draw("a red cat") == plain  # plain prompts keep the exact text path
    assert draw("a (red:1.8) cat") != plain
    assert draw("a (red:1.8) cat") == draw("a (red)1.8 cat")  # A1111's spelling means the same
    assert draw("a red cat++") != plain
    assert draw("a red cat", "blurry--") != draw("a red cat", "blurry")
    # Past 77 tokens every word still counts: two prompts that differ only at the end differ.
    head = " ".join(["cat"] * 90)
    assert needs_compel(model, recipe(prompt=head))
    assert draw(head + " red sea sun") != draw(head + " blue fog moon")


def test_weighting_on_sdxl_and_img2img(cache: PipelineCache, tiny_models: dict[str, Path]) -> None:
    xl, _ = cache.get(ModelRef(id="tiny-sdxl", family="sdxl", source=str(tiny_models["tiny-sdxl"])))
    never = threading.Event()
    base = recipe(model="tiny-sdxl", family="sdxl", prompt="a (city:1.4) at night", negative_prompt="fog--")
    out = run(xl, base, None, quiet, never).images
    assert len(out) == 2 and out[0].size == (64, 64)
    sd, _ = cache.get(ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"])))
    remix = recipe(prompt="a (gold:1.5) sea", init_image="0" * 64, strength=0.5)
    init = Image.new("RGB", (64, 64), (200, 150, 0))
    plain = remix.model_copy(update={"prompt": "a gold sea"})
    assert pixels(run(sd, remix, init, quiet, never).images) != pixels(
        run(sd, plain, init, quiet, never).images
    )


def quiet(step: int, total: int) -> None:
    return None


def test_the_prompt_reaches_the_model(cache: PipelineCache, tiny_models: dict[str, Path]) -> None:
    """Guards the tiny tokenizer: a tokenizer that lost its vocabulary maps every prompt alike."""
    model, _ = cache.get(ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"])))
    tokenizer = model.text2img.tokenizer
    assert tokenizer("a red cat").input_ids != tokenizer("a blue dog").input_ids
    never = threading.Event()
    red = run(model, recipe(prompt="a red cat"), None, quiet, never).images
    blue = run(model, recipe(prompt="a blue dog"), None, quiet, never).images
    assert pixels(red) != pixels(blue)

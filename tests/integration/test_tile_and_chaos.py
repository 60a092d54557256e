"""`--tile` and `--chaos` in the worker's own generate code, on the tiny SD 1.5 and SDXL models."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gpu_worker.generate import Cancelled, run
from gpu_worker.pipelines import LoadedModel, PipelineCache
from gpu_worker.tiling import convolutions, seamless
from studio.jobs import ModelRef
from studio.recipe import Recipe

NEVER = threading.Event()


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache("cpu", torch.float32, size=2)


def loaded(cache: PipelineCache, tiny_models: dict[str, Path], family: str) -> LoadedModel:
    name = f"tiny-{family}"
    return cache.get(ModelRef(id=name, family=family, source=str(tiny_models[name])))[0]


def recipe(family: str, **changes: object) -> Recipe:
    base = Recipe(
        model=f"tiny-{family}",
        family=family,
        prompt="a lighthouse, stormy sea, oil painting, dusk, gulls",
        seed=42,
        steps=4,
        guidance=6.0,
        width=64,
        height=64,
        batch=4,
    )
    return Recipe.model_validate({**base.model_dump(), **changes})


def quiet(step: int, total: int) -> None:
    pass


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=float)


def seam_ratio(image: np.ndarray) -> float:
    """How far apart the opposite edges are, against neighbouring pixels inside the image."""
    seams = np.abs(image[:, 0] - image[:, -1]).mean() + np.abs(image[0] - image[-1]).mean()
    inside = np.abs(np.diff(image, axis=1)).mean() + np.abs(np.diff(image, axis=0)).mean()
    return float(seams / inside)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tiled_images_wrap_around_and_the_shared_pipeline_is_put_back(
    cache: PipelineCache, tiny_models: dict[str, Path], family: str
) -> None:
    model = loaded(cache, tiny_models, family)
    pipe = model.text2img
    layers = convolutions(pipe)
    assert layers and {layer.padding_mode for layer in layers} == {"zeros"}

    # What tiling means: the picture has no edge. Starting from the same noise shifted by half
    # the canvas, the model paints the same picture shifted by half: the pixels that met across
    # the left/right and top/bottom edges now meet in the middle, as neighbours like any other.
    noise = torch.randn((1, pipe.unet.config.in_channels, 8, 8), generator=torch.Generator().manual_seed(5))
    shifted: dict[bool, float] = {}
    for tile in (False, True):
        with torch.inference_mode(), seamless(pipe, tile):
            one, two = (
                pixels(pipe(prompt="x", latents=start, num_inference_steps=3, width=64, height=64).images[0])
                for start in (noise, torch.roll(noise, (4, 4), (2, 3)))
            )
        shifted[tile] = float(np.abs(np.roll(one, (32, 32), (0, 1)) - two).mean())
    assert shifted[True] < 0.05 and shifted[False] > 5  # the control has edges (zero padding)

    # Through the worker's own generate code: every image's opposite edges match as closely as
    # neighbouring pixels do inside it.
    tiled = run(model, recipe(family, tile=True), None, quiet, NEVER).images
    plain = run(model, recipe(family), None, quiet, NEVER).images
    assert all(seam_ratio(pixels(image)) < 1.15 for image in tiled), [seam_ratio(pixels(i)) for i in tiled]
    assert np.mean([seam_ratio(pixels(i)) for i in tiled]) < np.mean([seam_ratio(pixels(i)) for i in plain])
    assert {layer.padding_mode for layer in layers} == {"zeros"}  # the next job gets it as it was

    cancel = threading.Event()

    def stop(step: int, total: int) -> None:
        assert {layer.padding_mode for layer in layers} == {"circular"}
        cancel.set()

    with pytest.raises(Cancelled):
        run(model, recipe(family, tile=True), None, stop, cancel)
    assert {layer.padding_mode for layer in layers} == {"zeros"}  # put back after a cancel too


def low(image: np.ndarray, block: int = 8) -> np.ndarray:
    """The image at the latent's resolution: its layout and colour, not its fine noise."""
    height, width, channels = image.shape
    blocks: np.ndarray = image.reshape(height // block, block, width // block, block, channels).mean(
        axis=(1, 3)
    )
    return blocks


def spread(images: list[Any]) -> float:
    """Mean distance between the batch's images, at the latent's resolution."""
    lows = [low(pixels(image)) for image in images]
    return float(np.mean([np.abs(a - b).mean() for i, a in enumerate(lows) for b in lows[i + 1 :]]))


def test_chaos_spreads_the_batch_and_each_image_is_reproduced_by_its_own_recipe(
    cache: PipelineCache, tiny_models: dict[str, Path]
) -> None:
    model = loaded(cache, tiny_models, "sd15")
    steps: list[tuple[int, int]] = []
    calm = run(model, recipe("sd15"), None, quiet, NEVER).images
    wild = run(model, recipe("sd15", chaos=100), None, lambda s, t: steps.append((s, t)), NEVER).images
    assert len(wild) == 4
    assert spread(wild) > 1.1 * spread(calm), (spread(calm), spread(wild))  # same seeds
    assert steps == [(n, 16) for n in range(1, 17)]  # progress over the whole batch, once each

    again = run(model, recipe("sd15", chaos=100), None, quiet, NEVER).images
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(wild, again, strict=True))
    for index in (0, 2):
        alone = run(model, recipe("sd15", chaos=100).for_image(index), None, quiet, NEVER).images[0]
        assert np.array_equal(pixels(alone), pixels(wild[index]))  # Recipe.for_image(i) is image i

"""The worker's pipeline code on the tiny models, in process: cache, from_pipe, seeds, cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from gpu_worker.generate import Cancelled, run
from gpu_worker.pipelines import ModelLoadError, PipelineCache
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

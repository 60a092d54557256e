"""Live previews on the real tiny pipelines of every family: the latents at a step's end become a
small WebP at the image's aspect, at most once per interval, and a generation with previews is
the same generation."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.generate import run
from gpu_worker.pipelines import load_model
from gpu_worker.preview import PREVIEW_SIDE, LivePreview, latents_to_rgb, live_preview, spatial
from studio import jobs
from studio.catalogue import load_catalogue
from studio.recipe import parse_prompt, resolve

FAMILIES = {"tiny-sd15": "sd15", "tiny-sdxl": "sdxl", "tiny-flux": "flux", "tiny-sd3": "sd3"}


def test_flux_packed_latents_unpack_to_the_image_grid() -> None:
    # (batch, h/2 * w/2, channels * 4) for a 3:2 grid of 6x4 patches: diffusers' _unpack_latents order.
    channels, rows, cols = 16, 4, 6
    grid = torch.randn(channels, rows * 2, cols * 2)
    packed = (
        grid.view(channels, rows, 2, cols, 2).permute(1, 3, 0, 2, 4).reshape(1, rows * cols, channels * 4)
    )
    assert np.array_equal(spatial(packed, width=96, height=64), grid.numpy())


def test_every_family_has_its_factors_and_unknown_layouts_still_preview() -> None:
    for family, channels in (("sd15", 4), ("sdxl", 4), ("sd3", 16), ("flux", 16)):
        image = latents_to_rgb(family, torch.randn(1, channels, 8, 12), 96, 64)
        assert image.size == (12, 8) and image.mode == "RGB"
    odd = latents_to_rgb("sd15", torch.randn(1, 7, 5, 5), 40, 40)  # not SD 1.5's four channels
    assert odd.size == (5, 5)


def test_a_preview_is_made_at_most_once_per_interval() -> None:
    now = [0.0]
    live = LivePreview("sd15", 64, 64, every_s=3.0, clock=lambda: now[0])
    latents = torch.randn(1, 4, 8, 8)
    live.offer(latents)
    assert live.take() is None  # the first comes after one interval: a short job needs none
    now[0] = 3.0
    live.offer(latents)
    first = live.take()
    assert first is not None and live.take() is None  # taken once
    now[0] = 4.0
    live.offer(latents)
    assert live.take() is None
    live.offer("not a tensor")
    assert live.take() is None


def test_no_previewer_unless_the_job_asks() -> None:
    recipe = {"family": "sd15", "width": 64, "height": 64}
    model = jobs.ModelRef(id="m", family="sd15", source="/x")
    assert live_preview(jobs.GenerateJob(generation_id="g", recipe=recipe, model=model)) is None
    asked = jobs.GenerateJob(generation_id="g", recipe=recipe, model=model, preview_every_s=2.0)
    assert isinstance(live_preview(asked), LivePreview)


@pytest.mark.parametrize("model_id", list(FAMILIES))
def test_previews_of_a_real_tiny_pipeline(model_id: str, tiny_catalogue: Path) -> None:
    catalogue = load_catalogue(tiny_catalogue)
    entry = catalogue.get(model_id)
    model = load_model(entry.ref(), "cpu", torch.float32)
    recipe = resolve(
        parse_prompt(f"a lighthouse --seed 7 --size 96x64 --steps 3 --model {model_id}"), catalogue, 1
    )
    live = LivePreview(FAMILIES[model_id], recipe.width, recipe.height, every_s=0.0)
    previews: list[bytes] = []

    def on_step(step: int, total: int) -> None:
        shown = live.take()
        if shown is not None:
            previews.append(shown)

    with_previews = run(model, recipe, None, on_step, threading.Event(), None, live.offer)
    assert len(previews) == recipe.steps  # every step, with no interval
    for data in previews:
        image = Image.open(io.BytesIO(data))
        assert image.format == "WEBP" and image.size == (PREVIEW_SIDE, PREVIEW_SIDE * 2 // 3)
        assert len(data) < 16_000
    plain = run(model, recipe, None, lambda step, total: None, threading.Event())
    assert np.array_equal(np.asarray(with_previews.images[0]), np.asarray(plain.images[0]))

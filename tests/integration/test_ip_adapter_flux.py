"""Flux style references in process: the tiny Flux with its tiny XLabs-layout IP-Adapter, loaded
from the tests' catalogue through the worker's own code (gpu_worker.ip_adapter)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker import ip_adapter
from gpu_worker.generate import run
from gpu_worker.pipelines import PipelineCache
from gpu_worker.trusted import WorkerCatalogue
from studio import jobs
from studio.recipe import Recipe


def test_a_flux_style_reference_changes_the_image_and_a_plain_job_is_plain_again(
    tiny_catalogue: Path,
) -> None:
    catalogue = WorkerCatalogue(tiny_catalogue)
    config = catalogue.ip_adapter("flux")
    assert config is not None and config.character is None  # style only
    cache = PipelineCache("cpu", torch.float32, size=1)
    model, _ = cache.get(catalogue.model(jobs.ModelRef(id="tiny-flux", family="flux", source="")))
    plain = Recipe(
        model="tiny-flux",
        family="flux",
        prompt="a fox",
        sampler="euler",
        seed=3,
        steps=3,
        guidance=3.5,
        width=64,
        height=64,
    )
    never = threading.Event()
    red, blue = Image.new("RGB", (80, 64), (220, 40, 40)), Image.new("RGB", (64, 64), (30, 40, 200))

    def image(references: list[tuple[str, float, Image.Image]], init: Image.Image | None = None) -> Any:
        recipe = plain
        if init is not None:
            recipe = plain.model_copy(update={"strength": 0.7})
        extra = ip_adapter.prepare(model, config, references)
        out = run(model, recipe, init, lambda s, t: None, never, extra=extra).images[0]
        return np.asarray(out, dtype=int)

    none = image([])
    styled = image([("style", 1.0, red)])
    assert ip_adapter.attached(model)
    assert np.abs(styled - none).mean() > 1.0  # the reference steers the transformer
    assert np.array_equal(image([("style", 1.0, red)]), styled)  # reproducible
    assert not np.array_equal(image([("style", 1.0, blue)]), styled)  # the image matters
    assert not np.array_equal(image([("style", 0.5, red), ("style", 0.5, blue)]), styled)  # two images
    assert np.array_equal(image([]), none)  # detached: exactly the plain model again
    assert not ip_adapter.attached(model) and model.text2img.image_encoder is None
    # A variation (img2img) of a styled image keeps taking the reference.
    start = Image.fromarray(styled.astype(np.uint8))
    varied_plain, varied = image([], start), image([("style", 1.0, red)], start)
    assert not np.array_equal(varied, varied_plain)
    assert np.array_equal(image([]), none)
    with pytest.raises(ip_adapter.ReferencesRefused, match="no character adapter"):
        ip_adapter.prepare(model, config, [("character", 1.0, red)])

"""ControlNet on the tiny models: the worker's pipeline in process, then through the real queue,
post worker (the canny map) and inference worker."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gpu_worker.controlnet import prepare_control
from gpu_worker.generate import run
from gpu_worker.pipelines import PipelineCache
from gpu_worker.trusted import WorkerCatalogue
from studio import jobs
from studio.app import Studio
from studio.artifacts import digest
from studio.control import ControlAsk
from studio.entities import Requester
from studio.errors import InvalidRecipe
from studio.recipe import Control, Recipe

ALICE = Requester(id="cli:alice", name="alice")


def drawing(size: tuple[int, int] = (64, 64)) -> bytes:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((16, 12, 46, 50), fill=(20, 40, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_control_changes_the_image_and_strength_zero_is_the_plain_model(
    tiny_catalogue: Path, tiny_models: dict[str, Path], family: str
) -> None:
    from gpu_worker.control_map import control_map

    catalogue = WorkerCatalogue(tiny_catalogue)
    cache = PipelineCache("cpu", torch.float32, size=1)
    model, _ = cache.get(catalogue.model(jobs.ModelRef(id=f"tiny-{family}", family=family, source="")))
    edges = control_map(drawing(), "canny", 64, 64, 10**6, 10**7)
    plain = Recipe(
        model=f"tiny-{family}",
        family=family,
        prompt="a house",
        seed=7,
        steps=3,
        guidance=5,
        width=64,
        height=64,
    )
    never = threading.Event()

    def image(recipe: Recipe) -> np.ndarray:
        pipe, args = (None, None)
        if recipe.control is not None:
            pipe, args = prepare_control(catalogue, model, recipe, edges, "cpu", 10**6, 10**7)
        out = run(model, recipe, None, lambda s, t: None, never, extra=args, control_pipe=pipe).images[0]
        return np.asarray(out, dtype=int)

    def controlled(strength: float) -> Recipe:
        control = Control(mode="canny", image="a" * 64, strength=strength, map=digest(edges))
        return plain.model_copy(update={"control": control})

    none, with_control, at_zero = image(plain), image(controlled(1.0)), image(controlled(0.0))
    assert np.abs(with_control - none).mean() > 2.0  # the map steers the denoiser
    assert np.array_equal(at_zero, none)  # no say: exactly the plain model's image
    assert np.array_equal(image(controlled(1.0)), with_control)  # reproducible
    pipe = next(p for key, p in model.controls.items() if key.startswith("text2img:"))
    assert pipe.unet is model.text2img.unet and pipe.vae is model.text2img.vae  # from_pipe: shared weights


async def test_canny_control_through_the_queue_and_a_reroll(studio: Studio) -> None:
    source = drawing((80, 64))
    plan = await studio.generations.prepare(
        ALICE, "a house --steps 3 --seed 5", control=ControlAsk(source, "canny", strength=1.5, end=0.8)
    )
    control = plan.recipe.control
    assert control is not None and control.mode == "canny" and control.image == digest(source)
    assert (control.strength, control.start, control.end) == (1.5, 0.0, 0.8)
    assert plan.control_map is not None and control.map == digest(plan.control_map)
    edges = rgb(plan.control_map)
    assert edges.shape[:2] == (plan.recipe.height, plan.recipe.width)  # the recipe's size
    generation = await studio.generations.start(plan, project=await studio.projects.open(ALICE, "control"))
    finished = await asyncio.wait_for(studio.results.follow(generation.id), 120)
    assert len(finished.images) == 1
    assert await studio.artifacts.read(control.map) == plan.control_map  # stored with the generation
    assert await studio.artifacts.read(control.image, ".img") == source
    again = await studio.generations.start(await studio.refine.prepare_reroll(ALICE, generation.id))
    rerolled = await asyncio.wait_for(studio.results.follow(again.id), 120)  # the map read back
    assert rerolled.generation.recipe.control == control
    varied = await studio.generations.start(await studio.refine.prepare_vary(ALICE, generation.id, 0))
    variation = await asyncio.wait_for(studio.results.follow(varied.id), 120)  # img2img with control
    assert variation.generation.status == "done" and variation.generation.recipe.control == control
    assert variation.generation.recipe.init_image is not None


@pytest.mark.parametrize(
    ("text", "ask", "words"),
    [
        ("a cat --model tiny-sdxl", ControlAsk(b"", "depth"), "No depth ControlNet is configured for SDXL"),
        ("a cat --model tiny-flux", ControlAsk(b"", "canny"), "No canny ControlNet is configured for Flux.1"),
        ("a cat", ControlAsk(b"", "canny", strength=2.5), "Control strength must be between 0 and 2"),
        ("a cat", ControlAsk(b"", "canny", start=0.6, end=0.4), "Control start and end are fractions"),
        ("a cat", ControlAsk(b"", "sketch"), "Control mode must be one of canny"),
    ],
)
async def test_refusals_are_one_sentence_and_queue_nothing(
    studio: Studio, text: str, ask: ControlAsk, words: str
) -> None:
    before = await studio.queue.depth(jobs.POST)
    with pytest.raises(InvalidRecipe, match=words) as refused:
        await studio.generations.prepare(ALICE, text, control=ask)
    assert str(refused.value).count(". ") == 0 and str(refused.value).endswith(".")
    assert await studio.queue.depth(jobs.POST) == before

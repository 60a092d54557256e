"""Inpainting through the real queue and worker: only the mask's white pixels may change."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from studio.app import Studio
from studio.entities import Requester
from studio.errors import InvalidRecipe
from studio.mask_levels import mask_level
from studio.recipe import Draft

ALICE = Requester(id="cli:alice", name="alice")


def picture(size: tuple[int, int] = (64, 64), seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def mask_png(size: tuple[int, int], box: tuple[int, int, int, int] | None = None, colour: int = 255) -> bytes:
    mask = Image.new("L", size, 0)
    if box:
        mask.paste(colour, box)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


async def repaint(studio: Studio, image: bytes, **kw: object) -> np.ndarray:
    plan = await studio.finishing.prepare_inpaint(ALICE, "a red door --seed 4 --steps 3", image, **kw)  # type: ignore[arg-type]
    project = await studio.projects.open(ALICE, "inpaint")
    generation = await studio.generations.start(plan, project=project)
    finished = await asyncio.wait_for(studio.results.follow(generation.id), 120)
    return rgb(await studio.artifacts.read(finished.images[0].artifact))


@pytest.mark.parametrize("size", [(64, 64), (70, 50)], ids=["multiple-of-8", "odd-size"])
async def test_a_box_repaints_inside_and_keeps_every_pixel_outside(
    studio: Studio, size: tuple[int, int]
) -> None:
    source = picture(size)
    out = await repaint(studio, source, box="25,25,50,50")
    original = rgb(source)
    assert out.shape == original.shape
    w, h = size
    inside = np.zeros((h, w), dtype=bool)
    inside[round(h * 0.25) : round(h * 0.75), round(w * 0.25) : round(w * 0.75)] = True
    assert np.array_equal(out[~inside], original[~inside])  # exactly as they were
    assert not np.array_equal(out[inside], original[inside])


async def test_an_uploaded_mask_and_a_reroll_keep_the_rest(studio: Studio) -> None:
    source = picture(seed=2)
    plan = await studio.finishing.prepare_inpaint(
        ALICE, "a window --steps 3", source, mask=mask_png((64, 64), (0, 0, 32, 64), colour=200)
    )
    assert plan.recipe.mask is not None and plan.recipe.strength == 0.95
    project = await studio.projects.open(ALICE, "inpaint")
    first = await studio.generations.start(plan, project=project)
    await asyncio.wait_for(studio.results.follow(first.id), 120)
    again = await studio.generations.start(await studio.refine.prepare_reroll(ALICE, first.id))
    rerolled = await asyncio.wait_for(studio.results.follow(again.id), 120)
    out, original = rgb(await studio.artifacts.read(rerolled.images[0].artifact)), rgb(source)
    assert np.array_equal(out[:, 32:], original[:, 32:]) and not np.array_equal(out[:, :32], original[:, :32])


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"mask": mask_png((32, 32), (0, 0, 8, 8))}, "mask is 32x32 but the image is 64x64"),
        ({"mask": mask_png((64, 64))}, "all black"),
        ({"mask": b"not a png"}, "mask was refused"),
        ({"box": "0,0,0,50"}, "above 0"),
        ({"box": "0,0,100000,10"}, "above 0 and at most 100"),
        ({"box": "90,90,20,20"}, "runs outside the image"),
        ({"box": "-5,0,10,10"}, "start inside"),
        ({"box": "a,b,c,d"}, "x,y,w,h"),
        ({"box": "1,2,3"}, "x,y,w,h"),
        ({}, "Give a mask image"),
        ({"box": "0,0,50,50", "mask": mask_png((64, 64), (0, 0, 8, 8))}, "Give a mask image"),
    ],
    ids=[
        "wrong-size",
        "all-black",
        "not-image",
        "zero",
        "huge",
        "outside",
        "negative",
        "words",
        "three",
        "none",
        "both",
    ],
)
async def test_bad_masks_and_boxes_are_refused_before_anything_is_queued(
    studio: Studio, kw: dict[str, object], words: str
) -> None:
    before = len(await studio.store.list_generations(ALICE.id, 200))
    with pytest.raises(InvalidRecipe, match=words):
        await studio.finishing.prepare_inpaint(ALICE, "a door", picture(), options=Draft(), **kw)  # type: ignore[arg-type]
    assert len(await studio.store.list_generations(ALICE.id, 200)) == before


async def test_a_feathered_mask_blends_its_edge_and_keeps_black_exact(studio: Studio) -> None:
    """A soft mask: the pipeline repaints where it is at least half white (as a hard mask at 128
    would), and the result is composited with the mask's grey levels, so the edge blends."""
    source = picture(seed=3)
    ramp = np.zeros((64, 64), dtype=np.uint8)
    ramp[:, 16:48] = np.linspace(0, 255, 32).astype(np.uint8)  # a 32 px feathered edge
    ramp[:, 48:] = 255
    soft = io.BytesIO()
    Image.fromarray(ramp, "L").save(soft, format="PNG")
    hard = io.BytesIO()
    Image.fromarray(np.where(ramp >= 128, 255, 0).astype(np.uint8), "L").save(hard, format="PNG")
    blended = await repaint(studio, source, mask=soft.getvalue())
    painted = await repaint(studio, source, mask=hard.getvalue())  # same seed, same repaint
    original = rgb(source)
    level = np.vectorize(mask_level)(ramp)
    black, grey = level == 0, (level >= 128) & (level < 255)
    assert np.array_equal(blended[black], original[black])  # exactly as they were
    alpha = (level[grey] / 255.0)[:, None]
    expected = painted[grey] * alpha + original[grey] * (1 - alpha)
    assert np.abs(blended[grey] - expected).max() <= 1  # the edge is a blend of the two
    assert not np.array_equal(blended[grey], painted[grey])

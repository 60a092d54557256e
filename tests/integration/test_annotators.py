"""Depth and pose annotators on the tiny random DPT and ViTPose: in process through the worker's own
entry point, then a depth-controlled generation through the real queue and inference worker."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gpu_worker.annotators import AnnotatorRefused, run_annotate
from gpu_worker.pipelines import PipelineCache
from gpu_worker.trusted import WorkerCatalogue
from studio import jobs
from studio.app import Studio
from studio.artifacts import digest
from studio.control import ControlAsk
from studio.entities import Requester
from studio.settings import Settings

ALICE = Requester(id="cli:alice", name="alice")


def scene(size: tuple[int, int] = (96, 72)) -> bytes:
    image = Image.new("RGB", size, (200, 210, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size[1] // 2, size[0], size[1]), fill=(90, 120, 60))  # ground
    draw.ellipse((30, 10, 60, 60), fill=(180, 60, 40))  # something in front
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def cache(tiny_catalogue: Path) -> PipelineCache:
    found = PipelineCache("cpu", torch.float32, size=1)
    found.catalogue = WorkerCatalogue(tiny_catalogue)
    return found


def annotate(cache: PipelineCache, mode: str, width: int, height: int, family: str = "sd15") -> Image.Image:
    job = jobs.ControlMapJob(image=scene(), mode=mode, width=width, height=height, family=family)
    png = run_annotate(job, Settings(), cache).png
    return Image.open(io.BytesIO(png))


def test_depth_map_is_greyscale_at_the_recipe_size(cache: PipelineCache) -> None:
    depth = annotate(cache, "depth", 80, 48)
    assert depth.mode == "L" and depth.size == (80, 48)
    pixels = np.asarray(depth)
    assert pixels.min() == 0 and pixels.max() == 255  # normalised over the picture
    assert np.array_equal(np.asarray(annotate(cache, "depth", 80, 48)), pixels)  # the same, kept model


def test_pose_map_is_a_drawn_skeleton_at_the_recipe_size(cache: PipelineCache) -> None:
    pose = annotate(cache, "pose", 64, 96)
    assert pose.mode == "RGB" and pose.size == (64, 96)
    pixels = np.asarray(pose).astype(int)
    assert (pixels.sum(axis=2) > 0).sum() > 20  # random keypoints, but drawn limbs and points


def test_the_worker_refuses_a_mode_it_has_no_annotator_for(cache: PipelineCache) -> None:
    with pytest.raises(AnnotatorRefused, match="no depth annotator for sdxl models"):
        annotate(cache, "depth", 64, 64, family="sdxl")
    with pytest.raises(AnnotatorRefused, match="made without an annotator"):
        annotate(cache, "canny", 64, 64)


async def test_depth_control_through_the_queue(studio: Studio) -> None:
    source = scene()
    plan = await studio.generations.prepare(
        ALICE, "a house --steps 3 --seed 4", control=ControlAsk(source, "depth")
    )
    control = plan.recipe.control
    assert control is not None and control.mode == "depth" and plan.control_map is not None
    assert control.map == digest(plan.control_map)
    depth = Image.open(io.BytesIO(plan.control_map))
    assert depth.mode == "L" and depth.size == (plan.recipe.width, plan.recipe.height)
    generation = await studio.generations.start(plan, project=await studio.projects.open(ALICE, "depth"))
    finished = await asyncio.wait_for(studio.results.follow(generation.id), 120)
    assert finished.generation.status == "done" and len(finished.images) == 1
    assert await studio.artifacts.read(control.map) == plan.control_map

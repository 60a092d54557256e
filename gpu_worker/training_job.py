"""The blocking half of a training job, run in a worker thread: load, train, export, compare."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import torch
from PIL import Image

from gpu_worker.generate import Cancelled
from gpu_worker.grid import compose_grid
from gpu_worker.inference import UserFacingError
from gpu_worker.pipelines import ModelLoadError, load_model
from gpu_worker.train import FAMILIES, train_lora
from gpu_worker.trusted import open_image, own_catalogue
from studio import jobs
from studio.recipe import Recipe

__all__ = ["Cancelled", "UserFacingError", "run_training"]


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def _dataset(job: jobs.TrainJob) -> list[Image.Image]:
    """The prepared images (the caller cropped them); anything else is refused, not trained on."""
    side = job.params.resolution
    images = []
    for number, data in enumerate(job.images, start=1):
        try:  # the studio sends PNGs: no other decoder parses a payload, nothing larger is decoded
            source = open_image(data, len(data), side * side, f"dataset image {number}")
        except ValueError as exc:
            raise UserFacingError(str(exc)) from exc
        with source:
            if source.size != (side, side):
                raise UserFacingError(f"dataset image {number} is {source.size}, not {side}x{side}")
            images.append(source.convert("RGB"))
    if len(images) != len(job.captions):
        raise UserFacingError("the dataset has a different number of images and captions")
    return images


def run_training(
    device: str,
    job: jobs.TrainJob,
    on_progress: Callable[[int, int, float], None],
    on_sample: Callable[[int, bytes], None],
    cancel: threading.Event,
    attempt: int,
) -> jobs.TrainResult:
    # A fresh copy of the base model that belongs to this run alone, in fp32 (mixed precision,
    # when asked for, is autocast during training; the LoRA weights themselves always stay fp32).
    # Flux on a GPU loads in bf16, as diffusers' own script: in fp32 its transformer and T5
    # alone would take some 65 GB.
    if job.model.family not in FAMILIES:  # the studio refuses these before queueing
        raise UserFacingError("the Forge trains SD 1.5, SDXL and Flux LoRAs, not this model's family")
    dtype = torch.bfloat16 if job.model.family == "flux" and device.startswith("cuda") else torch.float32
    try:  # the payload names the base model; this worker's catalogue says where it is
        model = load_model(own_catalogue().model(job.model), device, dtype)
    except (ModelLoadError, ValueError) as exc:
        raise UserFacingError(str(exc)) from exc
    images = _dataset(job)
    recipe = Recipe.model_validate(job.sample_recipe)
    try:
        trained = train_lora(
            model,
            job.params,
            images,
            job.captions,
            recipe,
            on_progress,
            lambda step, image: on_sample(step, _png(image)),
            cancel,
            device,
        )
    except torch.OutOfMemoryError as exc:
        raise UserFacingError(
            "the GPU ran out of memory; try a lower resolution or rank, or mixed precision"
        ) from exc
    base = [_png(image) for image in trained.base_images]
    lora = [_png(image) for image in trained.lora_images]
    return jobs.TrainResult(
        training_id=job.training_id,
        status="done",
        attempt=attempt,
        weights=trained.weights,
        kohya=trained.kohya,
        losses=trained.losses,
        base_images=base,
        lora_images=lora,
        # Base row above LoRA row, one column per seed.
        comparison=compose_grid(base + lora, labels=False) if len(base) + len(lora) <= 8 else None,
        seconds=trained.seconds,
        steps_per_second=trained.steps_per_second,
        device=device,
    )

"""txt2img, img2img and inpaint for one recipe, any family: one seed per image, progress per step,
cooperative cancel."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, ImageOps

from gpu_worker.chaos import run_each
from gpu_worker.model_settings import clip_skip_arguments
from gpu_worker.pipelines import LoadedModel
from gpu_worker.prompting import prompt_arguments
from gpu_worker.tiling import seamless
from gpu_worker.trusted import open_image
from studio.families import FAMILIES
from studio.mask_levels import mask_level
from studio.recipe import Recipe

StepCallback = Callable[[int, int], None]


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Generated:
    images: list[Image.Image]
    seconds: float


def decode_image(data: bytes, max_pixels: int, max_bytes: int, what: str = "the init image") -> Image.Image:
    """Decode a PNG, JPEG or WebP as RGB at its own size; bytes, format and pixel count are
    checked from the header before any pixel is decoded (the payload may come from anyone)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        source = open_image(data, max_bytes, max_pixels, what)
        try:
            return ImageOps.exif_transpose(source).convert("RGB")
        except (OSError, SyntaxError) as exc:  # truncated or corrupt past its header
            raise ValueError(f"{what} is damaged ({exc})") from None


def decode_init_image(data: bytes, width: int, height: int, max_pixels: int, max_bytes: int) -> Image.Image:
    """Decode an init image (checked as in ``decode_image``) and crop it to the target size."""
    return ImageOps.fit(decode_image(data, max_pixels, max_bytes), (width, height), Image.Resampling.LANCZOS)


def decode_mask(data: bytes, size: tuple[int, int], max_pixels: int, max_bytes: int) -> Image.Image:
    """An inpainting mask the init image's size, greyscale (white = repaint; studio.mask_levels):
    the pipeline repaints where it is at least half white, and the result is composited with it,
    so a feathered edge blends in and black pixels stay exactly as they were."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        source = open_image(data, max_bytes, max_pixels, "the mask")
        if source.size != size:
            raise ValueError(f"the mask is {source.width}x{source.height}, the image {size[0]}x{size[1]}")
        try:
            grey = source.convert("L")
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"the mask is damaged ({exc})") from None
    return grey.point(mask_level)


def run(
    model: LoadedModel,
    recipe: Recipe,
    init_image: Image.Image | None,
    on_step: StepCallback,
    cancel: threading.Event,
    mask: Image.Image | None = None,
    on_latents: Callable[[Any], None] | None = None,
    extra: dict[str, Any] | None = None,
    control_pipe: Any = None,
) -> Generated:
    """Run the pipeline (blocking: call it in a thread). Raises Cancelled when asked to stop.

    With a ``mask`` (and the init image at its own size), the recipe's size is the working size;
    the result is brought back to the image's size and only the mask's white pixels change.
    """
    mode = "img2img" if init_image is not None else "text2img"
    if mask is not None and init_image is not None:
        mode = "inpaint"
    pipe = control_pipe or model.pipeline(mode)  # control_pipe: gpu_worker.controlnet (text2img)
    model.use_sampler(pipe, recipe.sampler)
    # One CPU generator per image: the same seed gives the same image on any device.
    generators = [torch.Generator("cpu").manual_seed(recipe.seed_for(i)) for i in range(recipe.batch)]

    def step_end(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_latents is not None:  # live previews (gpu_worker.preview), before the step's event
            on_latents(kwargs.get("latents"))
        on_step(step + 1, int(getattr(pipeline, "num_timesteps", recipe.steps)))
        if cancel.is_set():
            pipeline._interrupt = True  # diffusers skips the remaining steps
        return kwargs

    args: dict[str, Any] = {
        **prompt_arguments(model, recipe),
        **clip_skip_arguments(model.ref),  # the entry's CLIP skip (A1111's "Clip skip 2")
        "num_inference_steps": recipe.steps,
        "guidance_scale": recipe.guidance,
        "generator": generators,
        "callback_on_step_end": step_end,
        "output_type": "pil",
        **(extra or {}),  # e.g. the IP-Adapter's reference images (gpu_worker.ip_adapter)
    }
    if init_image is None:
        args.update(width=recipe.width, height=recipe.height)
    elif mode == "inpaint" and mask is not None:
        work = (recipe.width, recipe.height)
        args.update(
            image=init_image.resize(work, Image.Resampling.LANCZOS),
            mask_image=mask.resize(work, Image.Resampling.NEAREST),
            strength=recipe.strength,
            width=recipe.width,
            height=recipe.height,
        )
    else:
        # SD3's img2img encodes image i of the batch with generator i before it repeats a single
        # image for the batch (diffusers 0.42): give it one copy per image.
        batched = [init_image] * recipe.batch if recipe.family == "sd3" else init_image
        args.update(image=batched, strength=recipe.strength)
        if FAMILIES[recipe.family].flow:  # else Flux works at 1024 px and SD3 at the image's own size
            args.update(width=recipe.width, height=recipe.height)
    if cancel.is_set():
        raise Cancelled
    started = time.perf_counter()
    with torch.inference_mode(), seamless(pipe, recipe.tile):  # --tile: wrapping convolutions
        # --chaos: each image its own guidance and prompt order (studio.chaos), one call each
        images = run_each(pipe, model, recipe, args) if recipe.chaos else list(pipe(**args).images)
    if cancel.is_set():
        raise Cancelled
    if mode == "inpaint" and mask is not None and init_image is not None:
        images = [_keep_unmasked(init_image, image, mask) for image in images]
    return Generated(images=images, seconds=time.perf_counter() - started)


def _keep_unmasked(original: Image.Image, painted: Image.Image, mask: Image.Image) -> Image.Image:
    """The original wherever the mask is black: exactly its pixels, at its size."""
    return Image.composite(painted.resize(original.size, Image.Resampling.LANCZOS), original, mask)

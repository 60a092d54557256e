"""A chaotic batch (``--chaos``), image by image: each with its own guidance and prompt order
(studio.chaos), so each call of the pipeline makes one image."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from gpu_worker.pipelines import LoadedModel
from gpu_worker.prompting import prompt_arguments
from studio import chaos
from studio.recipe import Recipe


def run_each(pipe: Any, model: LoadedModel, recipe: Recipe, args: dict[str, Any]) -> list[Image.Image]:
    """The batch's images, one pipeline call each, from ``args`` (the whole batch's call).

    Each image keeps its own generator; its prompt arguments and guidance are its jittered
    recipe's. The batch's step callback sees the steps counted over the whole batch (image 2 of
    4 steps each: steps 5..8 of 8), so progress, previews and cancel work as for one call; a
    cancelled batch stops early, with fewer images.
    """
    shared = {k: v for k, v in args.items() if "prompt" not in k}  # the batch's prompts go
    callback = args.get("callback_on_step_end")
    images: list[Image.Image] = []
    for index in range(recipe.batch):
        if getattr(pipe, "_interrupt", False):
            break
        drawn = chaos.for_image(recipe, index)
        one = drawn.recipe

        def step_end(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any], n: int = index) -> Any:
            total = int(getattr(pipeline, "num_timesteps", recipe.steps))
            whole = _WholeBatch(pipeline, recipe.batch * total)
            return callback(whole, n * total + step, timestep, kwargs) if callback else kwargs

        call = {
            **shared,
            **prompt_arguments(model, one),
            "guidance_scale": one.guidance,
            "generator": [args["generator"][index]],
            "callback_on_step_end": step_end,
        }
        if isinstance(call.get("image"), list):  # one copy per image (SD3's img2img)
            call["image"] = call["image"][:1]
        if drawn.offset and "strength" not in call and recipe.family in UNET_FAMILIES:  # starts from noise
            call["latents"] = shifted_noise(pipe, recipe, args["generator"][index], drawn)
        images += list(pipe(**call).images)
    return images


class _WholeBatch:
    """The pipeline as the batch's step callback sees it: ``num_timesteps`` over the whole batch;
    everything else (``_interrupt`` included) is the pipeline's own."""

    def __init__(self, pipeline: Any, total: int) -> None:
        object.__setattr__(self, "_pipeline", pipeline)
        object.__setattr__(self, "num_timesteps", total)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pipeline, name, value)


UNET_FAMILIES = ("sd15", "sdxl")  # their starting noise is a plain latent image to shift


def shifted_noise(pipe: Any, recipe: Recipe, generator: torch.Generator, drawn: chaos.Jitter) -> torch.Tensor:
    """The image's starting noise as the pipeline would draw it from ``generator``, plus chaos's
    broad shift: a constant per channel and a coarse 2x2 field, from the shift's own seed."""
    scale = int(pipe.vae_scale_factor)
    channels = int(pipe.unet.config.in_channels)
    shape = (1, channels, recipe.height // scale, recipe.width // scale)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    own = torch.Generator("cpu").manual_seed(drawn.offset_seed)
    constant = torch.randn((1, channels, 1, 1), generator=own)
    coarse = torch.randn((1, channels, 2, 2), generator=own)
    field = torch.nn.functional.interpolate(coarse, size=shape[2:], mode="bilinear", align_corners=False)
    latents = noise + drawn.offset * (constant + field)
    return latents.to(device=pipe.unet.device, dtype=pipe.unet.dtype)

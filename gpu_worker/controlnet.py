"""ControlNet on the inference worker: the family's ControlNet pipeline built from the warm base one.

The ControlNet for a recipe's family and mode comes from the worker's own catalogue
(``[controlnets.<family>.<mode>]``), never from the payload. It is loaded once per base model
and mode and kept with the base model (``LoadedModel.controls``, evicted with it); its pipeline is
``from_pipe`` of the base text-to-image pipeline, so the base weights are shared, not copied.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    ControlNetModel,
    DiffusionPipeline,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetInpaintPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetImg2ImgPipeline,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image

from gpu_worker.generate import decode_image
from gpu_worker.pipelines import LoadedModel, ModelLoadError
from gpu_worker.trusted import WorkerCatalogue
from studio.controlnets import ControlNetEntry
from studio.recipe import Recipe

# (family, the job's mode) -> its ControlNet pipeline: a variation or an inpaint of a controlled
# image keeps its control (the map is the image's own size and framing).
_CONTROL_PIPELINES: dict[tuple[str, str], type[DiffusionPipeline]] = {
    ("sd15", "text2img"): StableDiffusionControlNetPipeline,
    ("sd15", "img2img"): StableDiffusionControlNetImg2ImgPipeline,
    ("sd15", "inpaint"): StableDiffusionControlNetInpaintPipeline,
    ("sdxl", "text2img"): StableDiffusionXLControlNetPipeline,
    ("sdxl", "img2img"): StableDiffusionXLControlNetImg2ImgPipeline,
    ("sdxl", "inpaint"): StableDiffusionXLControlNetInpaintPipeline,
}


def load_controlnet(entry: ControlNetEntry, device: str, dtype: torch.dtype) -> ControlNetModel:
    """A ControlNet from its folder or cached hub id, on ``device``: the one loading path."""
    try:
        controlnet = ControlNetModel.from_pretrained(entry.source, torch_dtype=dtype, variant=entry.variant)
    except Exception as exc:  # broken weights raise anything: report it as a load failure
        raise ModelLoadError(
            f"could not load the {entry.mode} ControlNet from {entry.source}: {exc}"
        ) from exc
    return controlnet.to(device)  # type: ignore[no-any-return]


def control_pipeline(
    model: LoadedModel, entry: ControlNetEntry, device: str, mode: str = "text2img"
) -> DiffusionPipeline:
    """The base model's ControlNet pipeline for ``entry`` and the job's ``mode`` (text2img, img2img,
    inpaint), made on first use and kept with the model; the modes share one loaded ControlNet."""
    key = f"{mode}:{entry.mode}:{entry.source}"
    pipe = model.controls.get(key)
    if pipe is None:
        cls = _CONTROL_PIPELINES.get((model.ref.family, mode))
        if cls is None:
            raise ValueError(f"{model.ref.family} models take no ControlNet here")
        net_key = f"net:{entry.mode}:{entry.source}"
        controlnet = model.controls.get(net_key) or load_controlnet(entry, device, model.text2img.dtype)
        model.controls[net_key] = controlnet
        pipe = cls.from_pipe(model.text2img, controlnet=controlnet)
        pipe.set_progress_bar_config(disable=True)
        model.controls[key] = pipe
    return pipe


def control_arguments(recipe: Recipe, control_map: Image.Image, mode: str = "text2img") -> dict[str, Any]:
    """The ControlNet pipeline's own arguments for the recipe's control and its decoded map (text to
    image takes the map as ``image``; img2img and inpaint, whose ``image`` is the start, as
    ``control_image``)."""
    control = recipe.control
    assert control is not None
    return {
        "image" if mode == "text2img" else "control_image": control_map.resize(
            (recipe.width, recipe.height), Image.Resampling.LANCZOS
        ),
        "controlnet_conditioning_scale": control.strength,
        "control_guidance_start": control.start,
        "control_guidance_end": control.end,
    }


def prepare_control(
    catalogue: WorkerCatalogue | None,
    model: LoadedModel,
    recipe: Recipe,
    control_map: bytes | None,
    device: str,
    max_pixels: int,
    max_bytes: int,
    mode: str = "text2img",
) -> tuple[DiffusionPipeline, dict[str, Any]]:
    """The pipeline and arguments for a recipe with control. ValueError in words when this worker
    has no ControlNet for it, or the map is missing or not an image."""
    control = recipe.control
    assert control is not None
    entry = catalogue.controlnet(recipe.family, control.mode) if catalogue is not None else None
    if entry is None:
        raise ValueError(
            f"this worker has no {control.mode} ControlNet for {recipe.family} models; the operator must "
            "add it to the models file the workers read"
        )
    if control_map is None:
        raise ValueError("the job came without its control map")
    image = decode_image(control_map, max_pixels, max_bytes, "the control map")
    return control_pipeline(model, entry, device, mode), control_arguments(recipe, image, mode)

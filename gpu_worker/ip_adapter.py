"""Style and character references through the family's IP-Adapter, on a cached, shared pipeline.

The adapters (``[ip_adapter.<family>]`` of the worker's own catalogue) are loaded onto a model's
denoiser (the UNet of SD 1.5/SDXL, the transformer of Flux) the first time a job brings
references, with diffusers' ``load_ip_adapter``; what that made (the image-attention processors,
the image projection, the CLIP image encoder) is kept. A job without references gets the
denoiser's own attention processors back and no image encoder, so its output is exactly the plain
model's; the next job with references puts the kept adapter parts back without reading a file. A
kind a job does not use (a style but no character reference) runs at scale 0 on a stand-in image.

Flux (diffusers' ``FluxIPAdapterMixin``, XLabs-AI/flux-ip-adapter's layout): the adapter goes to
the double-stream blocks; with true CFG (a negative prompt on an entry with ``true_cfg``) the
negative pass sees the pipeline's own negative reference, a black image.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gpu_worker.generate import decode_image
from gpu_worker.pipelines import LoadedModel
from studio.ip_adapters import IPAdapterConfig, hub_parts, is_hub_path
from studio.recipe import Recipe

log = logging.getLogger(__name__)
KINDS = ("style", "character")


class ReferencesRefused(Exception):
    """The job's references cannot be used here (no adapter for the family or the kind)."""


@dataclass
class _Kept:
    """One denoiser's adapters: what loading them made, and what they replaced."""

    config: IPAdapterConfig
    kinds: tuple[str, ...]  # the adapters in load order
    encoder: Any
    processors: dict[str, Any]  # with the adapters
    projection: Any
    plain_processors: dict[str, Any]  # the denoiser's own
    plain_projection: Any
    plain_hid_type: Any
    attached: bool = True


_kept: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()  # by denoiser
_lock = threading.Lock()


def _file(source: str) -> Path:
    if is_hub_path(source):
        from huggingface_hub import hf_hub_download

        repo, name = hub_parts(source)
        return Path(hf_hub_download(repo, name, local_files_only=True))
    return Path(source)


def _state_dict(source: str) -> dict[str, dict[str, torch.Tensor]]:
    """An IP-Adapter .safetensors file split as diffusers' converters take it."""
    from safetensors import safe_open

    found: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    with safe_open(str(_file(source)), framework="pt", device="cpu") as weights:
        for key in weights.keys():  # noqa: SIM118 (safe_open is no mapping)
            part, _, rest = key.partition(".")
            if part in found:
                found[part][rest] = weights.get_tensor(key)
    if not found["image_proj"] or not found["ip_adapter"]:
        raise ValueError(f"{source} is not an IP-Adapter file (no image_proj / ip_adapter weights)")
    return found


def _encoder(source: str, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import CLIPVisionModelWithProjection

    if is_hub_path(source):
        repo, folder = hub_parts(source)
        model = CLIPVisionModelWithProjection.from_pretrained(repo, subfolder=folder, local_files_only=True)
    else:
        model = CLIPVisionModelWithProjection.from_pretrained(source, local_files_only=True)
    return model.to(device=device, dtype=dtype).eval()


def _denoiser(model: LoadedModel) -> Any:
    """The model's UNet (SD 1.5, SDXL) or transformer (Flux): where the adapters attach."""
    pipe = model.text2img
    unet = getattr(pipe, "unet", None)
    return unet if unet is not None else pipe.transformer


def _pipes(model: LoadedModel) -> list[Any]:
    """Every pipeline of the model that shares its denoiser: the three modes and any ControlNet one
    (``LoadedModel.controls`` also holds the ControlNet models themselves: not pipelines)."""
    from diffusers import DiffusionPipeline

    found = [pipe for pipe in (model.text2img, model.img2img, model.inpaint) if pipe is not None]
    controls = getattr(model, "controls", {})
    return found + [pipe for pipe in controls.values() if isinstance(pipe, DiffusionPipeline)]


def _load(model: LoadedModel, config: IPAdapterConfig) -> _Kept:
    pipe = model.text2img
    unet = _denoiser(model)
    kinds = tuple(kind for kind in KINDS if config.source(kind))
    plain_type = getattr(unet.config, "encoder_hid_dim_type", None)
    plain = (dict(unet.attn_processors), getattr(unet, "encoder_hid_proj", None), plain_type)
    encoder = _encoder(config.image_encoder, pipe.device, pipe.dtype)
    pipe.register_modules(image_encoder=encoder)  # so load_ip_adapter loads no encoder of its own
    if config.family == "flux":  # the file as diffusers reads XLabs' layout (double_blocks.N...)
        files = [_file(str(config.source(kind))) for kind in kinds]
        pipe.load_ip_adapter(
            [str(file.parent) for file in files],
            weight_name=[file.name for file in files],
            subfolder=[""] * len(kinds),
            local_files_only=True,
        )
    else:
        state_dicts = [_state_dict(str(config.source(kind))) for kind in kinds]
        pipe.load_ip_adapter(state_dicts, subfolder=[""] * len(kinds), weight_name=list(kinds))
    log.info("loaded the %s IP-Adapter (%s) onto %s", config.family, ", ".join(kinds), model.ref.id)
    return _Kept(
        config, kinds, encoder, dict(unet.attn_processors), unet.encoder_hid_proj, *plain, attached=True
    )


def _attach(model: LoadedModel, kept: _Kept) -> None:
    unet = _denoiser(model)
    if not kept.attached:
        unet.set_attn_processor(dict(kept.processors))
        unet.encoder_hid_proj = kept.projection
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        kept.attached = True
    size = int(kept.encoder.config.image_size)
    for pipe in _pipes(model):
        if getattr(pipe, "image_encoder", None) is not kept.encoder:
            pipe.register_modules(image_encoder=kept.encoder)
        if getattr(pipe, "feature_extractor", None) is None:
            from transformers import CLIPImageProcessor

            pipe.register_modules(feature_extractor=CLIPImageProcessor(size=size, crop_size=size))


def detach(model: LoadedModel) -> None:
    """The plain model again: the denoiser's own attention, no image encoder on any of its pipelines."""
    unet = _denoiser(model)
    kept = _kept.get(unet)
    if kept is None or not kept.attached:
        return
    unet.set_attn_processor(dict(kept.plain_processors))
    unet.encoder_hid_proj = kept.plain_projection
    unet.config.encoder_hid_dim_type = kept.plain_hid_type
    for pipe in _pipes(model):
        if getattr(pipe, "image_encoder", None) is not None:
            pipe.register_modules(image_encoder=None)
    kept.attached = False


def prepare(
    model: LoadedModel,
    config: IPAdapterConfig | None,
    references: Sequence[tuple[str, float, Image.Image]],
) -> dict[str, Any]:
    """Make ``model`` ready for a job's ``references`` (kind, weight, image; in recipe order) and
    return the pipeline arguments that carry them; no references: the plain model, no arguments.

    Blocking (may load weights): call it in the job's thread, as the pipeline runs there.
    """
    with _lock:
        if not references:
            detach(model)
            return {}
        if config is None:
            raise ReferencesRefused(
                f"{model.ref.id} takes no reference images: this worker has no IP-Adapter for "
                f"{model.ref.family} models"
            )
        unet = _denoiser(model)
        kept = _kept.get(unet)
        if kept is not None and kept.config != config:  # the catalogue changed: load afresh
            detach(model)
            _kept.pop(unet, None)
            kept = None
        for kind, _, _ in references:
            if config.source(kind) is None:
                raise ReferencesRefused(
                    f"this worker's {model.ref.family} IP-Adapter has no {kind} adapter (for --cref)"
                )
        if kept is None:
            kept = _kept[unet] = _load(model, config)
        _attach(model, kept)
        images: list[list[Image.Image]] = []
        scales: list[float] = []
        for kind in kept.kinds:
            mine = [(weight, image) for found, weight, image in references if found == kind]
            if mine:
                images.append([image for _, image in mine])
                scales.append(sum(weight for weight, _ in mine) / len(mine))
            else:  # this adapter is not wanted: a stand-in image it does not see (scale 0)
                images.append([references[0][2]])
                scales.append(0.0)
        # Flux reads a one-adapter list as per-block scales: give it the number itself.
        one = config.family == "flux" and len(scales) == 1
        model.text2img.set_ip_adapter_scale(scales[0] if one else scales)
        return {"ip_adapter_image": images}


def attached(model: LoadedModel) -> bool:
    kept = _kept.get(_denoiser(model))
    return kept is not None and kept.attached


def for_job(
    model: LoadedModel,
    config: IPAdapterConfig | None,
    recipe: Recipe,
    images: list[bytes],
    max_pixels: int,
    max_bytes: int,
) -> dict[str, Any]:
    """``prepare`` for a job: its recipe's references with the images the job ships, decoded
    (bytes, format and pixels checked from the header first). Raises ReferencesRefused or
    ValueError with a sentence for the requester."""
    if len(images) != len(recipe.references):
        raise ValueError(f"the job carries {len(images)} reference images for {len(recipe.references)}")
    decoded = [
        (reference.kind, reference.weight, decode_image(data, max_pixels, max_bytes, f"reference image {n}"))
        for n, (reference, data) in enumerate(zip(recipe.references, images, strict=True), start=1)
    ]
    return prepare(model, config, decoded)

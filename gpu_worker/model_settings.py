"""A catalogue entry's loading switches applied to a freshly loaded pipeline: a VAE override, the
device it runs on, and the memory switches for big models (CPU offload, VAE tiling, attention
backend); and the CLIP skip its generations use."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from diffusers import AutoencoderKL

from studio.jobs import ModelRef

log = logging.getLogger(__name__)

# Families whose pipelines take diffusers' `clip_skip` (CLIP text encoders, A1111's "Clip skip").
CLIP_SKIP_FAMILIES = frozenset({"sd15", "sdxl"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _error(message: str) -> Exception:
    from gpu_worker.pipelines import ModelLoadError  # here: pipelines imports this module

    return ModelLoadError(message)


def place(pipe: Any, ref: ModelRef, device: str) -> Any:
    """The pipeline on ``device`` with the entry's switches applied."""
    if ref.vae:
        pipe.vae = load_vae(ref, pipe.vae)  # before moving: the new VAE travels with the rest
    if ref.attention:
        set_attention(pipe, ref)
    if a1111_clip_skip(ref):
        _alias_text_model(pipe)
    if ref.vae_tiling:
        pipe.vae.enable_tiling()  # decode (and encode) in overlapping tiles: big images, little memory
    if ref.cpu_offload:
        if device == "cuda":
            # accelerate hooks move each component to the GPU only while it runs: never .to(device).
            pipe.enable_model_cpu_offload(device=device)
            return pipe
        log.info("model %s: cpu_offload only applies on GPU workers; this one runs on %s", ref.id, device)
    if device != "cpu":
        pipe = pipe.to(device)
    return pipe


def load_vae(ref: ModelRef, current: Any) -> Any:
    """The entry's VAE override, in the dtype of the VAE it replaces: a diffusers VAE folder, one
    .safetensors file (A1111/Civitai or diffusers layout) read with the replaced VAE's config, or a
    hub id already in the local Hugging Face cache; nothing is looked up on the network."""
    source = Path(ref.vae or "")
    dtype = current.dtype
    snapshot = None
    if not source.is_absolute() and _HUB_ID.match(str(ref.vae)):
        snapshot = _cached_hub_vae(ref)
    try:
        if snapshot is not None or source.is_dir():
            return AutoencoderKL.from_pretrained(snapshot or source, torch_dtype=dtype)
        if source.is_file() and source.suffix == ".safetensors":
            with tempfile.TemporaryDirectory(prefix="atelier-vae-") as config:
                current.save_config(config)
                return AutoencoderKL.from_single_file(
                    str(source), config=config, torch_dtype=dtype, local_files_only=True
                )
    except Exception as exc:  # a damaged or mismatched VAE raises anything: say which and why
        raise _error(f"model {ref.id}: the VAE override {ref.vae} could not be loaded: {exc}") from exc
    raise _error(
        f"model {ref.id}: the VAE override {ref.vae} is neither a diffusers VAE folder nor a "
        ".safetensors file on this worker."
    )


def _cached_hub_vae(ref: ModelRef) -> Path:
    """A hub VAE's snapshot folder in the local cache, read as a plain folder (no hub calls)."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(str(ref.vae), "config.json")
    if not isinstance(config, str):
        raise _error(
            f"model {ref.id}: its VAE override {ref.vae} is not in this machine's Hugging Face cache and "
            f"is never downloaded at run time; run `hf download {ref.vae}` once, or point `vae` at a file."
        )
    return Path(config).parent


def set_attention(pipe: Any, ref: ModelRef) -> None:
    """The entry's attention backend on the denoiser (diffusers' ``set_attention_backend``).

    diffusers also makes it the process's active backend, so models without a setting that are
    loaded later use it too: serve models that need different backends from different workers.
    """
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    if denoiser is None or not hasattr(denoiser, "set_attention_backend"):
        raise _error(f"model {ref.id}: this diffusers version cannot choose its attention backend.")
    try:
        denoiser.set_attention_backend(ref.attention)
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        # Unknown names, and backends whose kernels are not installed here (flash, sage, xformers).
        raise _error(f"model {ref.id}: attention backend `{ref.attention}` cannot be used: {exc}") from exc


def _alias_text_model(pipe: Any) -> None:
    """diffusers 0.42's SD 1.5 ``clip_skip`` applies ``text_encoder.text_model.final_layer_norm``,
    a module transformers 5 moved onto the CLIP text model itself: point the old name at it (a
    plain attribute, not a registered submodule, so weights and state dicts are untouched)."""
    encoder = getattr(pipe, "text_encoder", None)
    if encoder is not None and "text_model" not in encoder.__dict__ and not hasattr(encoder, "text_model"):
        object.__setattr__(encoder, "text_model", encoder)


def a1111_clip_skip(ref: ModelRef) -> int:
    """The model's CLIP skip as A1111 counts it (2: CLIP's last layer skipped); 0 when none applies."""
    return ref.clip_skip if ref.family in CLIP_SKIP_FAMILIES and ref.clip_skip > 1 else 0


def clip_skip_arguments(ref: ModelRef) -> dict[str, int]:
    """The pipeline argument for it: diffusers counts the layers skipped after the last one."""
    skip = a1111_clip_skip(ref)
    return {"clip_skip": skip - 1} if skip else {}

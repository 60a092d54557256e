"""The blocking half of an inference job, run in a worker thread: load, decode, generate, encode."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gpu_worker import ip_adapter
from gpu_worker.device import pick_device
from gpu_worker.generate import Cancelled, StepCallback, decode_image, decode_init_image, decode_mask, run
from gpu_worker.model_settings import a1111_clip_skip
from gpu_worker.pipelines import ModelLoadError, PipelineCache, pick_dtype
from gpu_worker.pngmeta import WeightsUsed, encode_png
from gpu_worker.prompting import PromptRefused
from gpu_worker.safety import classify
from gpu_worker.trusted import WorkerCatalogue
from studio import jobs
from studio.model_hashes import shared_cache
from studio.recipe import Recipe
from studio.settings import Settings

__all__ = ["Cancelled", "UserFacingError", "generate_images", "make_cache"]

log = logging.getLogger(__name__)


class UserFacingError(Exception):
    """A failure to report to the requester in words (bad model, bad init image, out of memory)."""


def make_cache(settings: Settings) -> PipelineCache:
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = pick_device(settings.device)
    cache = PipelineCache(device, pick_dtype(settings.dtype, device), settings.cache_size)
    cache.catalogue = WorkerCatalogue(settings.models_file)  # model ids resolve here, not in payloads
    return cache


def generate_images(
    cache: PipelineCache,
    job: jobs.GenerateJob,
    recipe: Recipe,
    on_step: StepCallback,
    cancel: threading.Event,
    settings: Settings,
    attempt: int,
    adapter_file: Callable[[str], Path],
    on_latents: Callable[[Any], None] | None = None,
) -> jobs.GenerateResult:
    try:
        # The payload names the model; where its weights are is this worker's own business.
        ref = cache.catalogue.model(job.model) if cache.catalogue is not None else job.model
        model, load_seconds = cache.get(ref)
    except (ModelLoadError, ValueError) as exc:
        raise UserFacingError(str(exc)) from exc
    try:
        model.apply_adapters(job.adapters, adapter_file, settings.adapters_per_model)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # a damaged or mismatched file
        names = ", ".join(ref.name for ref in job.adapters)
        raise UserFacingError(f"the LoRA weights ({names}) could not be loaded: {exc}") from exc
    init = mask = None
    if job.init_image is not None:
        try:
            limits = (settings.max_upload_pixels, settings.max_upload_bytes)
            if job.mask is not None:  # inpainting keeps the image's own size
                init = decode_image(job.init_image, *limits)
                mask = decode_mask(job.mask, init.size, *limits)
            else:
                init = decode_init_image(job.init_image, recipe.width, recipe.height, *limits)
        except (OSError, ValueError) as exc:
            raise UserFacingError(f"the init image or mask could not be used: {exc}") from exc
    try:  # style and character references (or none: the plain model), gpu_worker.ip_adapter
        config = cache.catalogue.ip_adapter(ref.family) if cache.catalogue is not None else None
        limits = (settings.max_upload_pixels, settings.max_upload_bytes)
        extra = ip_adapter.for_job(model, config, recipe, job.references, *limits)
    except (ip_adapter.ReferencesRefused, OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserFacingError(f"the reference images could not be used: {exc}") from exc
    control_pipe = None
    if recipe.control is not None:  # structure control: the ControlNet pipeline and its map
        from gpu_worker.controlnet import prepare_control

        try:
            limits = (settings.max_upload_pixels, settings.max_upload_bytes)
            mode = "text2img" if init is None else "inpaint" if mask is not None else "img2img"
            control_pipe, control_args = prepare_control(
                cache.catalogue, model, recipe, job.control_map, cache.device, *limits, mode
            )
        except (ModelLoadError, OSError, ValueError) as exc:
            raise UserFacingError(f"the control could not be used: {exc}") from exc
        extra = {**(extra or {}), **control_args}
    try:
        generated = run(model, recipe, init, on_step, cancel, mask, on_latents, extra, control_pipe)
    except torch.OutOfMemoryError as exc:
        raise UserFacingError("the GPU ran out of memory; try a smaller batch or size") from exc
    except PromptRefused as exc:  # too long for T5, a negative or weights the model cannot take
        raise UserFacingError(str(exc)) from exc
    except RuntimeError as exc:  # a pipeline's internal failure: its raw text means nothing to users
        log.exception("generation %s failed inside the %s pipeline", job.generation_id, ref.id)
        raise UserFacingError(
            f"the {ref.id} pipeline failed on this recipe ({type(exc).__name__}); try other settings, "
            "or ask the operator to look at the worker log"
        ) from exc
    weights = weights_used(ref, job.adapters, adapter_file)
    safety = cache.catalogue.safety() if cache.catalogue is not None else None
    verdicts = classify(safety, generated.images, cache.device)  # content policy, on every image
    images = [
        jobs.ImageOut(
            index=i,
            seed=recipe.seed_for(i),
            png=encode_png(image, recipe, i, weights),
            flagged=verdict.flagged,
            safety_label=verdict.label,
            safety_score=verdict.score,
        )
        for i, (image, verdict) in enumerate(zip(generated.images, verdicts, strict=True))
    ]
    return jobs.GenerateResult(
        generation_id=job.generation_id,
        status="done",
        attempt=attempt,
        images=images,
        load_seconds=load_seconds,
        pipeline_seconds=generated.seconds,
        device=f"{cache.device}/{str(model.text2img.dtype).removeprefix('torch.')}",  # Flux/SD3: bf16
    )


def weights_used(
    ref: jobs.ModelRef, adapters: list[jobs.AdapterRef], adapter_file: Callable[[str], Path]
) -> WeightsUsed:
    """The hashes Civitai links an image's model and LoRAs by, each computed once per file (a big
    checkpoint's first job pays for reading it). A hash that cannot be had is left out, never fatal."""
    hashes = shared_cache()

    def attempt(what: str, compute: Callable[[], str | None]) -> str | None:
        try:
            return compute()
        except (OSError, ValueError) as exc:  # unreadable or changed under us: the image goes without
            log.warning("model %s: no hash for %s: %s", ref.id, what, exc)
            return None

    model_hash = attempt("its weights", lambda: hashes.model_hash(ref.source, ref.kind, ref.variant))
    vae = ref.vae
    vae_hash = attempt("its VAE", lambda: hashes.vae_hash(vae)) if vae else None
    lora_hashes: dict[str, str] = {}
    for adapter in adapters:
        found = attempt(f"LoRA {adapter.name}", partial(hashes.lora_hash_of_blob, adapter.sha, adapter_file))
        if found:
            lora_hashes[adapter.name] = found
    return WeightsUsed(model_hash, lora_hashes, vae_hash, a1111_clip_skip(ref))

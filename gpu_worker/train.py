"""LoRA training on a loaded base model (blocking: run it in a worker thread).

The model belongs to the training job alone: adapters are added to its denoiser (the UNet of
SD 1.5/SDXL, Flux's transformer) and, when asked, to its text encoders (SD 1.5/SDXL), and it is
not cleaned up afterwards. Each family trains on its own objective: noise (or v) prediction for
the UNets, flow matching for Flux (gpu_worker.flux_training). Samples go through
``gpu_worker.generate.run``, the code inference uses, so the final LoRA images are exactly what a
generation with the saved weights gives in a fresh process (see ``load_adapter``).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image

from gpu_worker.flux_training import FLUX_TARGETS, FluxObjective
from gpu_worker.generate import Cancelled, run
from gpu_worker.kohya import stable_bytes, to_kohya
from gpu_worker.latents import encode_images
from gpu_worker.pipelines import LoadedModel
from studio.jobs import TrainingParams
from studio.recipe import Recipe

__all__ = [
    "FAMILIES",
    "UNET_TARGETS",
    "WEIGHT_NAME",
    "Cancelled",
    "Trained",
    "load_adapter",
    "text_encoder_lora_supported",
    "train_lora",
]

# Attention, the transformer blocks' projections and feed-forward, and the ResNet convolutions:
# attention alone learns slowly on small data sets; every one of these names also survives
# diffusers' kohya loader (gpu_worker.kohya), so the two exports stay the same adapter.
UNET_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "time_emb_proj",
)
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
FAMILIES = ("sd15", "sdxl", "flux")  # what train_lora trains
WEIGHT_NAME = "pytorch_lora_weights.safetensors"
MAX_GRAD_NORM = 1.0
_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}

ProgressCallback = Callable[[int, int, float], None]  # (step, total, mean loss since the last call)
SampleCallback = Callable[[int, Image.Image], None]


@dataclass(frozen=True)
class Trained:
    weights: bytes  # diffusers/peft safetensors: load_adapter / load_lora_weights restore it exactly
    kohya: bytes  # the same adapter in kohya's naming
    losses: list[float]  # mean loss per progress window
    base_images: list[Image.Image]  # the sample recipe with the adapter disabled
    lora_images: list[Image.Image]  # ... and enabled at weight 1
    seconds: float  # the training loop itself (not encoding, samples or saving)
    steps_per_second: float


@dataclass(frozen=True)
class _Conditioning:
    embeds: torch.Tensor  # (n, tokens, dim)
    pooled: torch.Tensor | None  # SDXL: text_encoder_2's projection, (n, dim)

    def pick(self, index: torch.Tensor) -> _Conditioning:
        return _Conditioning(self.embeds[index], None if self.pooled is None else self.pooled[index])


def train_lora(
    model: LoadedModel,
    params: TrainingParams,
    images: list[Image.Image],
    captions: list[str],
    sample_recipe: Recipe,
    on_progress: ProgressCallback,
    on_sample: SampleCallback,
    cancel: threading.Event,
    device: str,
) -> Trained:
    """Train a LoRA on ``images``/``captions``; raises Cancelled when ``cancel`` is set."""
    if not images or len(images) != len(captions):
        raise ValueError(f"need one caption per image (got {len(images)} images, {len(captions)} captions)")
    family = model.ref.family
    if family not in FAMILIES:
        raise ValueError(f"LoRA training covers SD 1.5, SDXL and Flux base models, not {family!r}")
    flux = family == "flux"
    if params.train_text_encoder and flux:
        raise ValueError("Flux LoRAs train the transformer only, not the text encoders")
    if params.train_text_encoder and not text_encoder_lora_supported():
        raise ValueError(f"text-encoder LoRA needs {_text_encoder_requirement()}; train the UNet only")
    pipe = model.text2img
    encoders = _text_encoders(pipe) if params.train_text_encoder else []
    trainable = _add_adapters(pipe, encoders, params, device)
    generator = torch.Generator("cpu").manual_seed(params.seed)
    if flux:
        # The guidance a Flux dev LoRA trains under: the model's own, which its samples use too.
        flow = FluxObjective(
            pipe,
            images,
            captions,
            params.resolution,
            sample_recipe.guidance,
            model.ref.max_tokens,
            generator,
            device,
        )
        loop = _Loop(model, params, flow.latents, captions, None, trainable, generator, device, flow)
    else:
        latents = encode_images(pipe, images, params.resolution, generator, device)
        fixed = None if encoders else _encode_captions(pipe, captions, device, grad=False)
        loop = _Loop(model, params, latents, captions, fixed, trainable, generator, device)
    seconds = loop.run(sample_recipe, on_progress, on_sample, cancel)
    weights = _save(pipe, encoders)
    base, lora = _final_samples(model, encoders, sample_recipe)
    return Trained(
        weights=weights,
        kohya=to_kohya(weights),
        losses=loop.losses,
        base_images=base,
        lora_images=lora,
        seconds=seconds,
        steps_per_second=params.steps / seconds if seconds > 0 else 0.0,
    )


def load_adapter(pipe: Any, weights: bytes, adapter_name: str, weight_name: str = WEIGHT_NAME) -> None:
    """Load adapter bytes (either export) into ``pipe`` as ``adapter_name``.

    Through a file, not a state dict: the adapter's alpha travels in the file's metadata, and a
    state dict loses it (the adapter would load at the wrong scale when alpha != rank).
    """
    with tempfile.TemporaryDirectory(prefix="atelier-lora-") as folder:
        (Path(folder) / weight_name).write_bytes(weights)
        pipe.load_lora_weights(folder, weight_name=weight_name, adapter_name=adapter_name)


def text_encoder_lora_supported() -> bool:
    """Whether transformers accepts the installed peft: text-encoder adapters go through it (add, load)."""
    from transformers.integrations.peft import MIN_PEFT_VERSION
    from transformers.utils.peft_utils import check_peft_version

    try:
        check_peft_version(min_version=MIN_PEFT_VERSION)
    except ValueError:
        return False
    return True


def _text_encoder_requirement() -> str:
    from importlib.metadata import version

    from transformers.integrations.peft import MIN_PEFT_VERSION

    return (
        f"peft >= {MIN_PEFT_VERSION} with transformers {version('transformers')} "
        f"(peft {version('peft')} is installed)"
    )


# Set-up


def _text_encoders(pipe: Any) -> list[Any]:
    return [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]


def _denoiser(pipe: Any) -> Any:
    """The network the adapter trains: Flux's transformer, or the SD UNet."""
    transformer = getattr(pipe, "transformer", None)
    return transformer if transformer is not None else pipe.unet


def _add_adapters(pipe: Any, encoders: list[Any], params: TrainingParams, device: str) -> list[torch.Tensor]:
    """Freeze the model, add LoRA adapters; returns the trainable (fp32) parameters."""
    denoiser = _denoiser(pipe)
    for part in (pipe.vae, denoiser, *_text_encoders(pipe)):
        part.requires_grad_(False)
        part.eval()
    flux = getattr(pipe, "transformer", None) is not None
    unet_config = LoraConfig(
        r=params.rank,
        lora_alpha=params.alpha,
        init_lora_weights="gaussian",
        target_modules=FLUX_TARGETS if flux else list(UNET_TARGETS),  # Flux: a regex (see there)
    )
    # The gaussian init draws from torch's global RNG: seed it here, without disturbing anyone else's.
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(params.seed)
        denoiser.add_adapter(unet_config)
        for encoder in encoders:
            encoder.add_adapter(
                LoraConfig(
                    r=params.rank,
                    lora_alpha=params.alpha,
                    init_lora_weights="gaussian",
                    target_modules=list(TEXT_TARGETS),
                )
            )
    for part in (denoiser, *encoders):
        part.train()
    trainable = [p for part in (denoiser, *encoders) for p in part.parameters() if p.requires_grad]
    for parameter in trainable:  # the optimiser state and updates stay in fp32 under autocast
        parameter.data = parameter.data.float()
    return trainable


def _encode_captions(pipe: Any, captions: list[str], device: str, grad: bool) -> _Conditioning:
    """Captions through the pipeline's own prompt encoding (SDXL: both encoders, pooled projection)."""
    with torch.set_grad_enabled(grad):
        encoded = pipe.encode_prompt(
            prompt=captions, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
    if len(encoded) == 4:  # SDXL: (embeds, negative, pooled, negative pooled)
        return _Conditioning(encoded[0], encoded[2])
    return _Conditioning(encoded[0], None)


# The loop


class _Loop:
    def __init__(
        self,
        model: LoadedModel,
        params: TrainingParams,
        latents: torch.Tensor,
        captions: list[str],
        fixed: _Conditioning | None,
        trainable: list[torch.Tensor],
        generator: torch.Generator,
        device: str,
        flow: FluxObjective | None = None,
    ) -> None:
        self.model = model
        self.flow = flow  # Flux: its flow-matching loss replaces the noise-prediction one
        self.pipe = model.text2img
        self.params = params
        self.latents = latents
        self.captions = captions
        self.fixed = fixed  # None: captions are encoded every step (the text encoders train)
        self.trainable = trainable
        self.generator = generator
        self.device = device
        self.device_type = torch.device(device).type
        self.noise_scheduler = None if flow else DDPMScheduler.from_config(self.pipe.scheduler.config)
        self.optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
        use_scaler = params.mixed_precision == "fp16" and self.device_type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.losses: list[float] = []

    def run(
        self,
        sample_recipe: Recipe,
        on_progress: ProgressCallback,
        on_sample: SampleCallback,
        cancel: threading.Event,
    ) -> float:
        """The optimiser steps; returns the seconds they took, sampling excluded."""
        total = self.params.steps
        window: list[float] = []
        seconds = 0.0
        for step in range(1, total + 1):
            started = time.perf_counter()
            window.append(self._optimizer_step(cancel))
            seconds += time.perf_counter() - started
            if step % self.params.progress_every == 0 or step == total:
                mean = sum(window) / len(window)
                self.losses.append(mean)
                window = []
                on_progress(step, total, mean)
            every = self.params.sample_every
            if every and step % every == 0 and step != total:
                with _sampling(self.pipe):  # ``cancel`` here too: a long sample must not delay a cancel
                    image = run(self.model, sample_recipe.for_image(0), None, _quiet, cancel).images[0]
                on_sample(step, image)
        return seconds

    def _optimizer_step(self, cancel: threading.Event) -> float:
        """One optimiser step over ``gradient_accumulation`` micro-batches; returns their mean loss."""
        accumulation = self.params.gradient_accumulation
        total = 0.0
        for _ in range(accumulation):
            if cancel.is_set():
                raise Cancelled
            loss = self._loss()
            self.scaler.scale(loss / accumulation).backward()
            total += float(loss.detach())
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.trainable, MAX_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return total / accumulation

    def _loss(self) -> torch.Tensor:
        """The family's loss on one random micro-batch (SD: noise-prediction MSE)."""
        batch = self.params.batch_size
        index = torch.randint(len(self.latents), (batch,), generator=self.generator)
        dtype = _AUTOCAST.get(self.params.mixed_precision)
        if self.flow is not None:
            return self.flow.loss(index, self.generator, dtype)
        assert self.noise_scheduler is not None
        latents = self.latents[index.to(self.latents.device)]
        noise = torch.randn(latents.shape, generator=self.generator).to(self.device)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (batch,), generator=self.generator).to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        prediction_type = self.noise_scheduler.config.prediction_type
        if prediction_type == "epsilon":
            target = noise
        elif prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise ValueError(f"cannot train a model that predicts {prediction_type!r}")
        with torch.autocast(self.device_type, dtype=dtype, enabled=dtype is not None):
            if self.fixed is None:
                cond = _encode_captions(self.pipe, [self.captions[i] for i in index], self.device, grad=True)
            else:
                cond = self.fixed.pick(index.to(self.fixed.embeds.device))
            prediction = self.pipe.unet(
                noisy.to(self.pipe.unet.dtype),
                timesteps,
                encoder_hidden_states=cond.embeds,
                added_cond_kwargs=self._added_conditions(cond, batch),
            ).sample
        return F.mse_loss(prediction.float(), target.float())

    def _added_conditions(self, cond: _Conditioning, batch: int) -> dict[str, torch.Tensor] | None:
        """SDXL's extra conditioning: pooled text and (size, crop, target size), as inference passes them."""
        if cond.pooled is None:
            return None
        size = self.params.resolution
        time_ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=cond.pooled.dtype, device=self.device)
        return {"text_embeds": cond.pooled, "time_ids": time_ids.repeat(batch, 1)}


_NEVER = threading.Event()


def _quiet(step: int, total: int) -> None:
    return None


@contextmanager
def _sampling(pipe: Any) -> Iterator[None]:
    """Eval mode while sampling (``run`` itself is in inference mode), back to training after."""
    parts = [_denoiser(pipe), *_text_encoders(pipe)]
    modes = [part.training for part in parts]
    for part in parts:
        part.eval()
    try:
        yield
    finally:
        for part, mode in zip(parts, modes, strict=True):
            part.train(mode)


# Results


def _save(pipe: Any, encoders: list[Any]) -> bytes:
    """The diffusers/peft file: peft state dicts saved as they are (see the notes on the save traps)."""
    denoiser = _denoiser(pipe)
    part = "unet" if denoiser is getattr(pipe, "unet", None) else "transformer"
    layers: dict[str, Any] = {
        f"{part}_lora_layers": get_peft_model_state_dict(denoiser),
        f"{part}_lora_adapter_metadata": _metadata(denoiser),
    }
    for encoder, name in zip(encoders, ("text_encoder", "text_encoder_2"), strict=False):
        layers[f"{name}_lora_layers"] = _canonical_text_keys(get_peft_model_state_dict(encoder))
        layers[f"{name}_lora_adapter_metadata"] = _metadata(encoder)
    with tempfile.TemporaryDirectory(prefix="atelier-train-") as folder:
        type(pipe).save_lora_weights(folder, weight_name=WEIGHT_NAME, **layers)
        return stable_bytes((Path(folder) / WEIGHT_NAME).read_bytes())


def _canonical_text_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP's checkpoint paths (``text_model.encoder...``): transformers 5 flattens CLIPTextModel to
    ``encoder...`` in memory, but other tools (and its own loader) expect the checkpoint's names."""
    return {
        key if key.startswith("text_model.") else f"text_model.{key}": value for key, value in state.items()
    }


def _metadata(module: Any) -> dict[str, Any]:
    """The adapter's LoraConfig, sets sorted: the bytes must not depend on the process's hash seed."""
    config = module.peft_config["default"].to_dict()
    return {key: sorted(value) if isinstance(value, set) else value for key, value in config.items()}


def _final_samples(
    model: LoadedModel, encoders: list[Any], recipe: Recipe
) -> tuple[list[Image.Image], list[Image.Image]]:
    pipe = model.text2img
    adapted = [_denoiser(pipe), *encoders]
    with _sampling(pipe):
        for part in adapted:
            part.disable_adapters()
        base = run(model, recipe, None, _quiet, _NEVER).images
        for part in adapted:
            part.enable_adapters()
        lora = run(model, recipe, None, _quiet, _NEVER).images
    return base, lora

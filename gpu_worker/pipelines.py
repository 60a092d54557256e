"""Loading base models and keeping them warm: one pipeline cache per worker process."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxPipeline,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusion3InpaintPipeline,
    StableDiffusion3Pipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

from gpu_worker.device import pick_device as pick_device  # re-exported: the worker startup uses it
from gpu_worker.model_settings import place
from gpu_worker.single_file import load_single_file
from gpu_worker.trusted import WorkerCatalogue
from studio import metrics
from studio.jobs import AdapterRef, ModelRef

log = logging.getLogger(__name__)

_TEXT2IMG: dict[str, type[DiffusionPipeline]] = {
    "sd15": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
    "flux": FluxPipeline,
    "sd3": StableDiffusion3Pipeline,
}
_IMG2IMG: dict[str, type[DiffusionPipeline]] = {
    "sd15": StableDiffusionImg2ImgPipeline,
    "sdxl": StableDiffusionXLImg2ImgPipeline,
    "flux": FluxImg2ImgPipeline,
    "sd3": StableDiffusion3Img2ImgPipeline,
}
_INPAINT: dict[str, type[DiffusionPipeline]] = {
    "sd15": StableDiffusionInpaintPipeline,
    "sdxl": StableDiffusionXLInpaintPipeline,
    "flux": FluxInpaintPipeline,
    "sd3": StableDiffusion3InpaintPipeline,
}
_SAMPLERS: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {"clip_sample": False}),
}
# Flow-matching families (Flux, SD3) sample with their own scheduler, configured by the model.
_FLOW_SAMPLERS: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "euler": (FlowMatchEulerDiscreteScheduler, {}),
}
_FLOW_FAMILIES = frozenset({"flux", "sd3"})
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class ModelLoadError(Exception):
    pass


def pick_dtype(setting: str, device: str) -> torch.dtype:
    if setting != "auto":
        return _DTYPES[setting]
    return torch.float16 if device == "cuda" else torch.float32


@dataclass
class LoadedModel:
    ref: ModelRef
    text2img: DiffusionPipeline
    img2img: DiffusionPipeline | None = None
    inpaint: DiffusionPipeline | None = None
    schedulers: dict[str, Any] = field(default_factory=dict)
    compel: Any = None  # prompt-weighting encoder, made on first use (gpu_worker.prompting)
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)  # LoRA digest -> adapter name
    active: tuple[tuple[str, float], ...] = ()  # (digest, weight) of the LoRAs now active: for metrics
    controls: dict[str, Any] = field(default_factory=dict)  # ControlNet pipelines (gpu_worker.controlnet)

    def pipeline(self, mode: str) -> DiffusionPipeline:
        """text2img, img2img or inpaint; the last two share every component of the first."""
        if mode == "text2img":
            return self.text2img
        if mode == "inpaint":
            if self.inpaint is None:
                self.inpaint = _INPAINT[self.ref.family].from_pipe(self.text2img)
                self.inpaint.set_progress_bar_config(disable=True)
            return self.inpaint
        if self.img2img is None:
            # Shares every component (no second copy of the weights in memory).
            self.img2img = _IMG2IMG[self.ref.family].from_pipe(self.text2img)
            self.img2img.set_progress_bar_config(disable=True)
        return self.img2img

    def apply_adapters(self, wanted: list[AdapterRef], file_for: Callable[[str], Path], keep: int) -> None:
        """Make exactly ``wanted`` active at their weights; the base weights are never reloaded.

        Each LoRA is loaded once (by digest) and stays loaded, up to ``keep`` of them; switching
        between loaded ones is a ``set_adapters`` call. No LoRA wanted: they are all disabled,
        which gives the base model's output exactly.
        """
        pipe = self.text2img
        for ref in wanted:
            if ref.sha not in self.adapters:
                path = file_for(ref.sha)
                pipe.load_lora_weights(
                    str(path.parent), weight_name=path.name, adapter_name=_adapter_name(ref)
                )
                self.adapters[ref.sha] = _adapter_name(ref)
                metrics.LORA_LOADS.labels(self.ref.id).inc()
            self.adapters.move_to_end(ref.sha)
        if wanted:
            pipe.enable_lora()
            pipe.set_adapters([self.adapters[ref.sha] for ref in wanted], [ref.weight for ref in wanted])
        elif self.adapters:
            pipe.disable_lora()
        active = tuple((ref.sha, ref.weight) for ref in wanted)
        if active != self.active:
            metrics.LORA_SWITCHES.labels(self.ref.id).inc()
            self.active = active
        # Evicted only once the wanted ones are active: deleting an active adapter makes peft warn.
        in_use = {ref.sha for ref in wanted}
        for sha in [sha for sha in self.adapters if sha not in in_use][: max(0, len(self.adapters) - keep)]:
            pipe.delete_adapters(self.adapters.pop(sha))

    def use_sampler(self, pipe: DiffusionPipeline, sampler: str) -> None:
        if sampler not in self.schedulers:
            table = _FLOW_SAMPLERS if self.ref.family in _FLOW_FAMILIES else _SAMPLERS
            if sampler not in table:
                raise ValueError(
                    f"model {self.ref.id} cannot sample with `{sampler}`; use {', '.join(table)}"
                )
            cls, extra = table[sampler]
            self.schedulers[sampler] = cls.from_config(self.text2img.scheduler.config, **extra)
        pipe.scheduler = self.schedulers[sampler]


class PipelineCache:
    """Pipelines keyed by model id, least recently used evicted past ``size``. Thread-safe."""

    def __init__(self, device: str, dtype: torch.dtype, size: int = 2) -> None:
        self.device = device
        self.dtype = dtype
        self.size = size
        self.loads = 0
        # The worker's own catalogue (inference.make_cache): job model ids are resolved there.
        self.catalogue: WorkerCatalogue | None = None
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def warm(self) -> list[str]:
        """The model ids held now, least recently used first. No lock: a load holds it for seconds."""
        while True:
            try:
                return list(self._models)
            except RuntimeError:  # the job thread changed it while we read: read again
                continue

    def get(self, ref: ModelRef) -> tuple[LoadedModel, float]:
        """The warm model, or a freshly loaded one; also returns the seconds spent loading (0 if warm)."""
        with self._lock:
            cached = self._models.get(ref.id)
            if cached is not None and cached.ref == ref:
                self._models.move_to_end(ref.id)
                return cached, 0.0
            started = time.perf_counter()
            loaded = self._load(ref)
            self._models[ref.id] = loaded
            self._models.move_to_end(ref.id)
            while len(self._models) > self.size:
                evicted, _ = self._models.popitem(last=False)
                log.info("evicted model %s from the cache", evicted)
                if self.device == "cuda":
                    torch.cuda.empty_cache()
            self.loads += 1
            seconds = time.perf_counter() - started
            metrics.MODEL_LOADS.labels(ref.id).inc()
            metrics.MODEL_LOAD_TIME.labels(ref.id).observe(seconds)
            return loaded, seconds

    def _load(self, ref: ModelRef) -> LoadedModel:
        return load_model(ref, self.device, self.dtype)


def load_model(ref: ModelRef, device: str, dtype: torch.dtype) -> LoadedModel:
    """A base model's pipeline from its folder, single file or hub id, on ``device``: the one loading path."""
    cls = _TEXT2IMG.get(ref.family)
    if cls is None:
        raise ModelLoadError(f"model {ref.id}: unknown family {ref.family}")
    dtype = family_dtype(ref.family, dtype, device == "cuda" and torch.cuda.is_bf16_supported())
    try:
        if ref.kind == "file":
            pipe = load_single_file(cls, ref, dtype)
        else:
            pipe = cls.from_pretrained(ref.source, dtype=dtype, variant=ref.variant)
    except ModelLoadError:
        raise
    except Exception as exc:  # broken weights raise anything: report it as a load failure
        raise ModelLoadError(f"could not load model {ref.id} from {ref.source}: {exc}") from exc
    pipe = place(pipe, ref, device)
    pipe.set_progress_bar_config(disable=True)
    log.info("loaded model %s (%s, %s) on %s/%s", ref.id, ref.family, ref.kind, device, dtype)
    return LoadedModel(ref=ref, text2img=pipe)


def family_dtype(family: str, dtype: torch.dtype, bf16_ok: bool) -> torch.dtype:
    """The dtype a family runs in: Flux and SD3 in bf16 where the worker would use fp16 (their T5
    encoder and Flux's transformer overflow fp16: black or noisy images), if the GPU has bf16."""
    if family in _FLOW_FAMILIES and dtype == torch.float16 and bf16_ok:
        return torch.bfloat16
    return dtype


def _adapter_name(ref: AdapterRef) -> str:
    return f"lora_{ref.sha[:16]}"  # by digest: two versions of one name never collide

"""The queue contract between callers and workers: job names, payloads, channels, the serializer.

Everything on the queue is msgpack — never pickle, which would let anyone who can write to
Redis run code in a worker. Payloads and results are plain dicts validated by the pydantic
models below; JOBS binds each job name to its queue, its payload type and its result type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import msgpack
from pydantic import BaseModel, ConfigDict, Field

# Queues (prefixed with Settings.queue_prefix), then the jobs (JOBS says which queue runs each).
INFERENCE = "inference"
POST = "post"
TRAINING = "training"
QUEUES: tuple[str, ...] = (INFERENCE, POST, TRAINING)

GENERATE = "generate"  # txt2img, or img2img when an init image is given
COMPOSE_GRID = "compose_grid"  # a numbered grid of a batch
BOARD_SHEET = "board_sheet"  # a mood board as a numbered sheet of thumbnails
COLLAGE = "collage"  # a mood board tiled to a size, the start of a board: generation
TRAIN_LORA = "train_lora"  # a LoRA adapter on a base model from a prepared dataset
UPSCALE = "upscale"  # 2x/4x with the configured upscale model, or resampling without one
GRADE = "grade"  # colour grading and effects (studio.finishing.Grade)
EXPORT = "export"  # a destination's size, crop, format and file-size limit
DESCRIBE = "describe"  # captions of an image by the [describe] model (/describe, caption:auto)
CONTROL_MAP = "control_map"  # a ControlNet's map (canny edges, scribble, line art) of an image
ANNOTATE = "annotate"  # a depth or pose map of an image, by the mode's annotator model

# arq's own key for a running job; the worker refreshes it as a lease (see gpu_worker.lease).
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"
ARQ_RESULT_PREFIX = "arq:result:"
ARQ_JOB_PREFIX = "arq:job:"


def progress_channel(prefix: str, job_id: str) -> str:
    return f"{prefix}:progress:{job_id}"


def cancel_key(prefix: str, job_id: str) -> str:
    return f"{prefix}:cancel:{job_id}"


def health_check_key(queue_name: str, worker_id: str) -> str:
    return f"{queue_name}:health-check:{worker_id}"


def grid_job_id(generation_id: str) -> str:
    return f"grid:{generation_id}"


def safe_grid_job_id(generation_id: str) -> str:
    """The grid with flagged tiles blurred, for channels that are not age-restricted."""
    return f"grid:{generation_id}:safe"


def blob_key(prefix: str, sha: str) -> str:
    """Large inputs several jobs share (LoRA weights), fetched by digest; they expire when unused."""
    return f"{prefix}:blob:{sha}"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRef(_Payload):
    """A base model to load. Workers build their own from their catalogue (``ModelEntry.ref``)."""

    id: str
    family: str
    source: str
    variant: str | None = None
    kind: str = "folder"  # folder, file (one .safetensors checkpoint) or hub
    config: str | None = None  # a single file's configs/tokenizers: a local folder or cached hub id
    vae: str | None = None
    clip_skip: int = 0
    true_cfg: float = 0.0
    max_tokens: int = 0
    cpu_offload: bool = False
    vae_tiling: bool = False
    attention: str | None = None


class AdapterRef(_Payload):
    """A LoRA to apply: its weights are the blob ``sha`` (diffusers/peft safetensors) in Redis."""

    name: str
    sha: str
    weight: float


class GenerateJob(_Payload):
    generation_id: str
    recipe: dict[str, Any]  # Recipe.model_dump(mode="json")
    model: ModelRef
    init_image: bytes | None = None
    mask: bytes | None = None  # inpainting: a PNG the init image's size, white = repaint
    adapters: list[AdapterRef] = Field(default_factory=list)
    references: list[bytes] = Field(default_factory=list)  # recipe.references' images, in order
    control_map: bytes | None = None  # recipe.control's derived map (a PNG), ready for the ControlNet
    preview_every_s: float = 0.0  # live previews: a small image of the current step this often (0: none)


class ImageOut(_Payload):
    index: int
    seed: int
    png: bytes  # carries the recipe in its `parameters` and `atelier` text chunks
    # The worker's image safety classifier ([safety] in models.toml): a flagged image is only shown
    # in channels Discord marks age-restricted. label/score: the flagged label that scored highest.
    flagged: bool = False
    safety_label: str | None = None
    safety_score: float | None = None


class GenerateResult(_Payload):
    generation_id: str
    status: Literal["done", "cancelled", "failed"]
    attempt: int
    images: list[ImageOut] = Field(default_factory=list)
    error: str | None = None
    load_seconds: float = 0.0  # 0 when the pipeline was already warm
    pipeline_seconds: float = 0.0  # the diffusion itself, all images
    device: str = ""


class ComposeGridJob(_Payload):
    images: list[bytes]
    labels: bool = True
    blur: list[int] = Field(default_factory=list)  # tiles (0-based) the safety classifier flagged


class PngResult(_Payload):
    """What a job that makes one image replies; each such job has its own subclass."""

    png: bytes


class GridResult(PngResult):
    pass


class ControlMapJob(_Payload):
    image: bytes  # the control source as the worker takes it (PNG, JPEG, WebP)
    mode: str  # gpu_worker.control_map.WEIGHTLESS_MODES (annotate: depth, pose)
    width: int = Field(ge=8, le=4096)  # the recipe's size: the map is the source cropped to it
    height: int = Field(ge=8, le=4096)
    family: str = ""  # annotate: whose [controlnets.<family>.<mode>] annotator the worker runs


class ControlMapResult(PngResult):
    pass


class AnnotateResult(PngResult):
    pass


class BoardSheetJob(_Payload):
    images: list[bytes]


class BoardSheetResult(PngResult):
    pass


class CollageJob(_Payload):
    images: list[bytes]
    width: int
    height: int


class CollageResult(PngResult):
    pass


class TrainingParams(_Payload):
    """How to train: chosen per run from the family's defaults and the user's options."""

    steps: int = Field(ge=1, le=20000)
    rank: int = Field(ge=1, le=256)
    alpha: float = Field(gt=0, le=1024)
    learning_rate: float = Field(gt=0, le=1)
    resolution: int = Field(ge=64, le=2048)
    batch_size: int = Field(default=1, ge=1, le=16)
    gradient_accumulation: int = Field(default=1, ge=1, le=64)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    train_text_encoder: bool = False
    seed: int = Field(ge=0, lt=2**32)
    progress_every: int = Field(default=5, ge=1)  # a progress event every N steps
    sample_every: int = Field(default=0, ge=0)  # a sample image every N steps (0: none)


class TrainJob(_Payload):
    training_id: str
    model: ModelRef
    params: TrainingParams
    images: list[bytes]  # PNGs, already cropped to resolution x resolution
    captions: list[str]  # one per image; each starts with the trigger word
    # Samples and the final base-vs-LoRA comparison: a Recipe (JSON) whose batch is the number of
    # seeds; its LoRA side is what a generation with this adapter at weight 1 gives.
    sample_recipe: dict[str, Any]


class TrainResult(_Payload):
    training_id: str
    status: Literal["done", "cancelled", "failed"]
    attempt: int
    error: str | None = None
    weights: bytes | None = None  # diffusers/peft format: load_lora_weights restores it exactly
    kohya: bytes | None = None  # the same adapter in kohya's naming (A1111, ComfyUI)
    losses: list[float] = Field(default_factory=list)  # mean loss per progress window
    base_images: list[bytes] = Field(default_factory=list)  # PNGs: the sample recipe without the LoRA
    lora_images: list[bytes] = Field(default_factory=list)  # ... and with it
    comparison: bytes | None = None  # PNG grid: base row above LoRA row
    seconds: float = 0.0  # the training loop itself
    steps_per_second: float = 0.0
    device: str = ""


class UpscalerRef(_Payload):
    """An upscale model: a diffusers upscale pipeline folder/hub id, or an ESRGAN-family file."""

    id: str
    kind: Literal["diffusers", "spandrel"]
    source: str
    scale: int = 4  # the model's native factor (spandrel models are fixed-scale)


class UpscaleJob(_Payload):
    image: bytes
    factor: int
    model: UpscalerRef | None = None  # None: high-quality resampling and sharpening
    tile: int = 512  # processed in tiles of this side (input pixels), so memory stays bounded
    prompt: str = ""  # for diffusion upscalers


class UpscaleResult(_Payload):
    png: bytes
    width: int
    height: int
    method: str  # the model's id, or "resampling" (said in the result)
    seconds: float = 0.0  # worker time, model load included: charged to the daily quota


class GradeJob(_Payload):
    image: bytes
    grade: dict[str, Any]  # studio.finishing.Grade.model_dump()
    preview: bool = False  # a before/after side-by-side instead of the graded image alone


class GradeResult(PngResult):
    pass


class ExportJob(_Payload):
    image: bytes
    spec: dict[str, Any]  # studio.finishing.ExportSpec.model_dump()
    parameters: str | None = None  # A1111 text to embed when metadata is kept


class ExportResult(_Payload):
    data: bytes
    format: str
    width: int
    height: int
    quality: int | None = None  # the quality the size limit led to (lossy formats)


class ProgressEvent(_Payload):
    """Published on progress_channel: 'started' (attempt), 'step' (step/total, training: loss),
    'sample' (a training checkpoint's image), 'finished'."""

    type: Literal["started", "step", "sample", "finished"]
    attempt: int = 0
    step: int = 0
    total: int = 0
    loss: float | None = None
    png: bytes | None = None
    preview: bytes | None = None  # 'step': a small WebP of the current step (gpu_worker.preview)


class DescribeJob(_Payload):
    image: bytes  # PNG, JPEG or WebP (the studio converts other uploads)
    count: int = Field(default=4, ge=1, le=16)  # captions wanted: one beam-searched, the rest sampled
    seed: int = Field(default=0, ge=0, lt=2**32)  # the sampled captions' seeds start here


class DescribeResult(_Payload):
    captions: list[str]  # distinct, the beam-searched one first
    model: str = ""  # the [describe] source, for the log
    seconds: float = 0.0


_PayloadT_co = TypeVar("_PayloadT_co", bound=_Payload, covariant=True)
_ResultT_co = TypeVar("_ResultT_co", bound=_Payload, covariant=True)
# For functions that take a job and its payload, and return its result.
PayloadT = TypeVar("PayloadT", bound=_Payload)
ResultT = TypeVar("ResultT", bound=_Payload)


@dataclass(frozen=True)
class JobSpec(Generic[_PayloadT_co, _ResultT_co]):
    """One job of the contract: the name workers register it under, its queue, what goes in and out."""

    name: str
    queue: str
    payload: type[_PayloadT_co]
    result: type[_ResultT_co]

    def payload_of(self, value: object) -> _PayloadT_co:
        return self.payload.model_validate(value)

    def result_of(self, value: object) -> _ResultT_co:
        return self.result.model_validate(value)


GENERATE_SPEC = JobSpec(GENERATE, INFERENCE, GenerateJob, GenerateResult)
UPSCALE_SPEC = JobSpec(UPSCALE, INFERENCE, UpscaleJob, UpscaleResult)
TRAIN_LORA_SPEC = JobSpec(TRAIN_LORA, TRAINING, TrainJob, TrainResult)
COMPOSE_GRID_SPEC = JobSpec(COMPOSE_GRID, POST, ComposeGridJob, GridResult)
BOARD_SHEET_SPEC = JobSpec(BOARD_SHEET, POST, BoardSheetJob, BoardSheetResult)
COLLAGE_SPEC = JobSpec(COLLAGE, POST, CollageJob, CollageResult)
GRADE_SPEC = JobSpec(GRADE, POST, GradeJob, GradeResult)
EXPORT_SPEC = JobSpec(EXPORT, POST, ExportJob, ExportResult)
# On the inference queue: a captioning model wants the GPU the generations use (post workers stay light).
DESCRIBE_SPEC = JobSpec(DESCRIBE, INFERENCE, DescribeJob, DescribeResult)
CONTROL_MAP_SPEC = JobSpec(CONTROL_MAP, POST, ControlMapJob, ControlMapResult)
# Depth and pose maps need torch and an annotator's weights: where the models live.
ANNOTATE_SPEC = JobSpec(ANNOTATE, INFERENCE, ControlMapJob, AnnotateResult)

# Every job by name: callers enqueue and read results through it, workers register from it.
JOBS: dict[str, JobSpec[_Payload, _Payload]] = {
    spec.name: spec
    for spec in (
        GENERATE_SPEC,
        UPSCALE_SPEC,
        TRAIN_LORA_SPEC,
        COMPOSE_GRID_SPEC,
        BOARD_SHEET_SPEC,
        COLLAGE_SPEC,
        GRADE_SPEC,
        EXPORT_SPEC,
        DESCRIBE_SPEC,
        CONTROL_MAP_SPEC,
        ANNOTATE_SPEC,
    )
}


def _default(obj: object) -> object:
    # A failed job's result is its exception: keep the words, never the object.
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot put {type(obj).__name__} on the queue")


def serialize(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)  # type: ignore[no-any-return]


def deserialize(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)

"""The queue contract between callers and workers: job names, payloads, channels, the serializer.

Everything on the queue is msgpack — never pickle, which would let anyone who can write to
Redis run code in a worker. Payloads are plain dicts validated by the pydantic models below.
"""

from __future__ import annotations

from typing import Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field

# Queues (prefixed with Settings.queue_prefix) and the jobs each one runs.
INFERENCE = "inference"
POST = "post"
QUEUES: tuple[str, ...] = (INFERENCE, POST)

GENERATE = "generate"  # inference: txt2img, or img2img when an init image is given
COMPOSE_GRID = "compose_grid"  # post: a numbered grid of a batch
BOARD_SHEET = "board_sheet"  # post: a mood board as a numbered sheet of thumbnails
COLLAGE = "collage"  # post: a mood board tiled to a size, the start of a board: generation

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


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRef(_Payload):
    id: str
    family: str
    source: str
    variant: str | None = None


class GenerateJob(_Payload):
    generation_id: str
    recipe: dict[str, Any]  # Recipe.model_dump(mode="json")
    model: ModelRef
    init_image: bytes | None = None


class ImageOut(_Payload):
    index: int
    seed: int
    png: bytes  # carries the recipe in its `parameters` and `atelier` text chunks


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


class ComposeGridResult(_Payload):
    png: bytes


class BoardSheetJob(_Payload):
    images: list[bytes]


class CollageJob(_Payload):
    images: list[bytes]
    width: int
    height: int


class ProgressEvent(_Payload):
    """Published on progress_channel: 'started' (attempt), 'step' (step/total), 'finished'."""

    type: Literal["started", "step", "finished"]
    attempt: int = 0
    step: int = 0
    total: int = 0


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

"""The blocking halves of the finishing jobs, run in a worker thread: decode, work, encode."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from gpu_worker.export import decode_image, export_image
from gpu_worker.grade import apply_grade, before_after
from gpu_worker.trusted import open_image
from studio import jobs
from studio.finishing import ExportSpec, Grade
from studio.settings import Settings
from studio.uploads import ACCEPTED_FORMATS

if TYPE_CHECKING:
    from gpu_worker.pipelines import PipelineCache

FINISH_FORMATS = tuple(sorted(ACCEPTED_FORMATS))  # finishing takes uploads as they came
PREVIEW_SIDE = 1024  # a before/after is for looking at: each half at most this wide


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def run_upscale(
    job: jobs.UpscaleJob, settings: Settings, pipelines: PipelineCache, cache: dict[str, Any]
) -> jobs.UpscaleResult:
    from gpu_worker.upscale import upscale  # torch: inference workers only, never the post worker

    if pipelines.catalogue is not None:  # the payload names the upscaler; its file is ours to know
        job = job.model_copy(update={"model": pipelines.catalogue.upscaler(job.model)})
    image = decode_image(
        _checked(job.image, settings.max_upload_pixels, settings.max_upload_bytes), settings.max_upload_pixels
    ).convert("RGB")
    started = time.perf_counter()
    upscaled, method = upscale(image, job, pipelines.device, cache)
    seconds = time.perf_counter() - started
    return jobs.UpscaleResult(
        png=_png(upscaled), width=upscaled.width, height=upscaled.height, method=method, seconds=seconds
    )


def _checked(data: bytes, max_pixels: int, max_bytes: int | None = None) -> bytes:
    """The bytes, once they proved an image the studio sends (PNG, JPEG, WebP, or an upload's
    GIF or BMP) within the limits; no other Pillow decoder ever parses a payload."""
    open_image(data, max_bytes or len(data), max_pixels, formats=FINISH_FORMATS).close()
    return data


def run_grade(job: jobs.GradeJob, max_pixels: int) -> jobs.GradeResult:
    image = decode_image(_checked(job.image, max_pixels), max_pixels).convert("RGB")  # ICC: to sRGB
    grade = Grade.model_validate(job.grade)
    if job.preview:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        return jobs.GradeResult(png=_png(before_after(image, apply_grade(image, grade))))
    return jobs.GradeResult(png=_png(apply_grade(image, grade)))


def run_export(job: jobs.ExportJob, max_pixels: int) -> jobs.ExportResult:
    image = _checked(job.image, max_pixels)
    return export_image(image, ExportSpec.model_validate(job.spec), job.parameters, max_pixels)

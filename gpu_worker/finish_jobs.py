"""The blocking halves of the finishing jobs, run in a worker thread: decode, work, encode."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from gpu_worker.export import decode_image, export_image
from gpu_worker.grade import apply_grade, before_after
from studio import jobs
from studio.finishing import ExportSpec, Grade

PREVIEW_SIDE = 1024  # a before/after is for looking at: each half at most this wide


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def run_upscale(
    job: jobs.UpscaleJob, max_pixels: int, device: str, cache: dict[str, Any]
) -> jobs.UpscaleResult:
    from gpu_worker.upscale import upscale  # torch: inference workers only, never the post worker

    image = decode_image(job.image, max_pixels).convert("RGB")
    upscaled, method = upscale(image, job, device, cache)
    return jobs.UpscaleResult(png=_png(upscaled), width=upscaled.width, height=upscaled.height, method=method)


def run_grade(job: jobs.GradeJob, max_pixels: int) -> jobs.ComposeGridResult:
    image = decode_image(job.image, max_pixels).convert("RGB")  # ICC profiles become sRGB
    grade = Grade.model_validate(job.grade)
    if job.preview:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        return jobs.ComposeGridResult(png=_png(before_after(image, apply_grade(image, grade))))
    return jobs.ComposeGridResult(png=_png(apply_grade(image, grade)))


def run_export(job: jobs.ExportJob, max_pixels: int) -> jobs.ExportResult:
    return export_image(job.image, ExportSpec.model_validate(job.spec), job.parameters, max_pixels)

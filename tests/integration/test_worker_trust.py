"""Payloads written straight into Redis (as anyone who can reach it could): a real inference
worker refuses what its own catalogue and limits do not allow, as a failed job with a reason,
and stays up for the next job."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gpu_worker.adapters import AdapterFiles, AdapterMissing
from studio import jobs
from studio.app import Studio, open_studio
from studio.artifacts import digest
from studio.entities import Requester
from studio.queue import JobQueue
from studio.recipe import Draft
from tests.integration.workers import Deployment

MAX_BYTES = 1_048_576
MAX_PIXELS = 1_000_000
WAIT_S = 90.0


@pytest.fixture(scope="module")
def trust_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(
        data_dir=tmp_path_factory.mktemp("trust"),
        models_file=tiny_catalogue,
        extra_env={"ATELIER_MAX_UPLOAD_BYTES": str(MAX_BYTES), "ATELIER_MAX_UPLOAD_PIXELS": str(MAX_PIXELS)},
    )
    dep.start_worker("inference")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def studio(trust_deployment: Deployment) -> AsyncIterator[Studio]:
    await trust_deployment.wait_ready(kinds=("inference",))
    async with open_studio(trust_deployment.settings()) as opened:
        yield opened


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _noise(side: int) -> Image.Image:
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


async def _run(studio: Studio, function: str, payload: dict[str, Any]) -> tuple[bool, Any]:
    queue: JobQueue = studio.queue
    job_id = f"trust-{uuid.uuid4().hex}"
    assert await queue.enqueue(function, job_id, payload)
    return await queue.wait(job_id, timeout=WAIT_S)


def _generate(
    studio: Studio,
    model: jobs.ModelRef | None = None,
    init: bytes | None = None,
    mask: bytes | None = None,
    adapters: list[jobs.AdapterRef] | None = None,
) -> dict[str, Any]:
    if init is None:
        recipe = studio.generations.recipe("a lighthouse --steps 2 --seed 3")
    else:
        recipe = studio.generations.recipe("a lighthouse --steps 2 --seed 3", Draft(strength=0.5), "0" * 64)
    entry = studio.catalogue.get("tiny-sd15")
    return jobs.GenerateJob(
        generation_id=uuid.uuid4().hex,
        recipe=recipe.model_dump(mode="json"),
        model=model or jobs.ModelRef(id=entry.id, family=entry.family, source=entry.source),
        init_image=init,
        mask=mask,
        adapters=adapters or [],
    ).model_dump()


async def _failed(studio: Studio, payload: dict[str, Any]) -> str:
    success, value = await _run(studio, jobs.GENERATE, payload)
    assert success and value["status"] == "failed", value
    return str(value["error"])


async def _still_serving(studio: Studio, deployment: Deployment) -> None:
    assert all(process.poll() is None for process in deployment.processes), deployment.logs()
    success, value = await _run(studio, jobs.GENERATE, _generate(studio))
    assert success and value["status"] == "done" and len(value["images"]) == 1, value


async def test_models_come_from_the_workers_own_catalogue(
    studio: Studio, trust_deployment: Deployment
) -> None:
    tiny = studio.catalogue.get("tiny-sd15")
    unknown = jobs.ModelRef(id="evil", family="sd15", source=tiny.source)
    assert "model `evil` is not in this worker's catalogue" in await _failed(
        studio, _generate(studio, unknown)
    )
    # A known id with a forged path: the worker loads its own folder for that id, never the path.
    forged = jobs.ModelRef(id="tiny-sd15", family="sd15", source="/definitely/not/here")
    success, value = await _run(studio, jobs.GENERATE, _generate(studio, forged))
    assert success and value["status"] == "done", value
    await _still_serving(studio, trust_deployment)


async def test_lora_blobs_must_match_their_digest(studio: Studio, trust_deployment: Deployment) -> None:
    real = b"these bytes are what the digest names"
    sha = hashlib.sha256(real).hexdigest()
    await studio.queue.redis.set(jobs.blob_key(studio.settings.queue_prefix, sha), b"something else entirely")
    wrong = [jobs.AdapterRef(name="swapped", sha=sha, weight=1.0)]
    assert "LoRA swapped arrived damaged" in await _failed(studio, _generate(studio, adapters=wrong))
    for bad in ("../../../../tmp/evil", "A" * 64, sha[:-1]):
        odd = [jobs.AdapterRef(name="odd", sha=bad, weight=1.0)]
        assert "not a sha256 digest" in await _failed(studio, _generate(studio, adapters=odd)), bad
    await _still_serving(studio, trust_deployment)


async def test_init_images_and_masks_are_png_jpeg_or_webp_within_limits(
    studio: Studio, trust_deployment: Deployment
) -> None:
    small = Image.new("RGB", (64, 64), (20, 120, 200))
    for fmt in ("GIF", "BMP", "TIFF", "ICO"):
        reason = await _failed(studio, _generate(studio, init=_encode(small, fmt)))
        assert "the init image is not a PNG, JPEG or WebP image" in reason, (fmt, reason)
    heavy = _encode(_noise(800), "PNG")  # ~1.9 MB of noise: the byte cap, before decoding
    assert len(heavy) > MAX_BYTES
    assert "above the 1 MiB limit" in await _failed(studio, _generate(studio, init=heavy))
    wide = _encode(Image.new("RGB", (1200, 1000)), "PNG")  # tiny file, 1.2 megapixels: the pixel cap
    assert len(wide) < MAX_BYTES
    assert "1200x1000, above the limit of 1.0 megapixels" in await _failed(
        studio, _generate(studio, init=wide)
    )
    gif_mask = _encode(Image.new("L", (64, 64), 255), "GIF")
    reason = await _failed(studio, _generate(studio, init=_encode(small, "PNG"), mask=gif_mask))
    assert "the mask is not a PNG, JPEG or WebP image" in reason
    for fmt in ("PNG", "JPEG", "WEBP"):  # what the studio sends still works
        success, value = await _run(studio, jobs.GENERATE, _generate(studio, init=_encode(small, fmt)))
        assert success and value["status"] == "done", (fmt, value)
    await _still_serving(studio, trust_deployment)


async def test_upscale_payloads_are_checked_too(studio: Studio, trust_deployment: Deployment) -> None:
    small = Image.new("RGB", (48, 48), (200, 40, 40))
    planted = jobs.UpscalerRef(id="planted", kind="spandrel", source="/tmp/planted.safetensors", scale=4)
    job = jobs.UpscaleJob(image=_encode(small, "PNG"), factor=2, model=planted).model_dump()
    success, value = await _run(studio, jobs.UPSCALE, job)
    assert not success and "upscale model `planted` is not this worker's configured upscaler" in str(value)
    job = jobs.UpscaleJob(image=_encode(small, "TIFF"), factor=2).model_dump()
    success, value = await _run(studio, jobs.UPSCALE, job)
    assert not success and "is not a BMP, GIF, JPEG, PNG or WebP image" in str(value), value
    job = jobs.UpscaleJob(image=_encode(small, "GIF"), factor=2).model_dump()  # uploads may be GIFs
    success, value = await _run(studio, jobs.UPSCALE, job)
    assert success and (value["width"], value["height"]) == (96, 96), value
    await _still_serving(studio, trust_deployment)


async def test_a_gif_or_bmp_upload_still_remixes(studio: Studio, trust_deployment: Deployment) -> None:
    """The studio accepts GIF and BMP uploads and hands the worker a PNG of them; the recipe keeps
    the digest of the upload as it came."""
    for fmt in ("GIF", "BMP"):
        upload = _encode(Image.new("RGB", (64, 64), (10, 200, 10)), fmt)
        generation = await studio.generations.imagine(
            Requester(id="cli:trust", name="trust"),
            "a frog --steps 2",
            Draft(strength=0.5),
            init_image=upload,
        )
        assert generation.recipe.init_image == digest(upload)
        success, value = await studio.queue.wait(generation.id, timeout=WAIT_S)
        assert success and value["status"] == "done", (fmt, value)


async def test_lora_files_are_checked_again_just_before_loading(tmp_path: Path) -> None:
    """The worker's own copy is hashed again when diffusers is about to load it."""
    files = AdapterFiles(tmp_path)
    data = b"weights as fetched"
    sha = hashlib.sha256(data).hexdigest()

    class Blobs:
        async def get(self, key: str) -> bytes:
            return data

    await files.fetch(Blobs(), "p", [jobs.AdapterRef(name="mine", sha=sha, weight=1.0)])
    assert files.path(sha).read_bytes() == data
    (tmp_path / f"{sha}.safetensors").write_bytes(b"changed on disk")
    with pytest.raises(AdapterMissing, match="damaged"):
        files.path(sha)
    assert not (tmp_path / f"{sha}.safetensors").exists()  # fetched afresh by the next job
    with pytest.raises(AdapterMissing, match="not a sha256 digest"):
        files.path("../" + sha[3:])


async def test_training_payloads_name_a_catalogue_model_and_send_pngs(
    studio: Studio, trust_deployment: Deployment
) -> None:
    worker = trust_deployment.start_worker("training")
    await trust_deployment.wait_ready(kinds=("training",))
    tiny = studio.catalogue.get("tiny-sd15")
    sample = studio.generations.recipe("zq cat --steps 1 --seed 1")

    async def train(model: jobs.ModelRef, image_format: str) -> dict[str, Any]:
        picture = _encode(Image.new("RGB", (64, 64), (90, 30, 160)), image_format)
        job = jobs.TrainJob(
            training_id=uuid.uuid4().hex,
            model=model,
            params=jobs.TrainingParams(steps=1, rank=2, alpha=2, learning_rate=1e-3, resolution=64, seed=1),
            images=[picture] * 3,
            captions=["zq cat"] * 3,
            sample_recipe=sample.model_dump(mode="json"),
        )
        job_id = f"trust-train-{uuid.uuid4().hex}"
        assert await studio.queue.enqueue(jobs.TRAIN_LORA, job_id, job.model_dump())
        success, value = await studio.queue.wait(job_id, timeout=WAIT_S)
        assert success, value
        return dict(value)

    evil = jobs.ModelRef(id="evil", family="sd15", source=tiny.source)
    refused = await train(evil, "PNG")
    assert (
        refused["status"] == "failed" and "model `evil` is not in this worker's catalogue" in refused["error"]
    )
    forged = jobs.ModelRef(id="tiny-sd15", family="sd15", source="/not/a/model")
    refused = await train(forged, "GIF")  # the worker's own path loads; the GIF dataset is refused
    assert (
        refused["status"] == "failed"
        and "dataset image 1 is not a PNG, JPEG or WebP image" in refused["error"]
    )
    assert worker.poll() is None, trust_deployment.logs()

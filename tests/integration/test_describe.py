"""The worker's captioner on the tiny BLIP model, loaded as a real one is: several distinct
captions, the same ones for the same seed; bad input and a missing model refused in words."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gpu_worker.describe import DescribeRefused, run_describe
from studio import jobs
from studio.settings import Settings


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(out, "PNG")
    return out.getvalue()


def test_captions_are_distinct_and_seeded(tiny_catalogue: Path) -> None:
    settings = Settings(models_file=tiny_catalogue)
    job = jobs.DescribeJob(image=png((200, 40, 40)), count=6, seed=11)
    first = run_describe(job, settings, "cpu")
    assert len(first.captions) == 6 and len(set(first.captions)) == 6 and all(first.captions)
    assert run_describe(job, settings, "cpu").captions == first.captions  # same image, same seed
    other = run_describe(job.model_copy(update={"seed": 12}), settings, "cpu").captions
    assert other[0] == first.captions[0] and other != first.captions  # the beam search is seedless


def test_bad_image_and_no_model_are_refused_in_words(tiny_catalogue: Path, tmp_path: Path) -> None:
    settings = Settings(models_file=tiny_catalogue)
    with pytest.raises(DescribeRefused, match="the image could not be read"):
        run_describe(jobs.DescribeJob(image=b"not an image"), settings, "cpu")
    bare = tmp_path / "models.toml"
    bare.write_text(tiny_catalogue.read_text().split("[describe]")[0], encoding="utf-8")
    with pytest.raises(DescribeRefused, match="no \\[describe\\] model"):
        run_describe(jobs.DescribeJob(image=png((1, 2, 3))), Settings(models_file=bare), "cpu")

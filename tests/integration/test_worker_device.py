"""A worker asked for a device this machine lacks ends at once with one clear line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.integration.workers import Deployment


@pytest.mark.parametrize(
    ("device", "available", "words"),
    [
        ("cuda", torch.cuda.is_available(), "ATELIER_DEVICE is cuda, but no CUDA GPU is usable here"),
        (
            "mps",
            torch.backends.mps.is_available(),
            "ATELIER_DEVICE is mps, but Apple's Metal (MPS) is not usable",
        ),
    ],
)
@pytest.mark.parametrize("queue", ["inference", "training"])
def test_a_missing_device_stops_the_worker_with_one_line(
    device: str, available: bool, words: str, queue: str, tiny_catalogue: Path, tmp_path: Path
) -> None:
    if available:
        pytest.skip(f"this machine has {device}")
    deployment = Deployment(
        data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_DEVICE": device}
    )
    done = deployment.cli("worker", "--queue", queue, timeout=90)
    assert done.returncode == 2, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "ready" not in done.stderr + done.stdout


async def test_the_post_worker_needs_no_device(tiny_catalogue: Path, tmp_path: Path) -> None:
    """It never imports torch, so ATELIER_DEVICE=cuda does not stop it: it starts and serves."""
    if torch.cuda.is_available():
        pytest.skip("this machine has cuda")
    deployment = Deployment(
        data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_DEVICE": "cuda"}
    )
    process = deployment.start_worker("post")
    try:
        await deployment.wait_ready(kinds=("post",))
        assert process.poll() is None
    finally:
        deployment.stop()

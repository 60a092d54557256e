"""Bad input through the command line: one clear error line each, and nothing enqueued."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from studio.store import Store
from tests.integration.workers import TEST_REDIS_URL, Deployment

CASES = [
    (["a cat", "--batch", "0"], "Batch must be between 1 and 8 images (got 0)."),
    (["a cat", "--batch", "99"], "Batch must be between 1 and 8 images (got 99)."),
    (["a cat --size 500x512"], "The width must be a multiple of 8 (got 500)."),
    (
        ["a cat", "--model", "nope"],
        "Unknown model `nope`. Available models: tiny-flux, tiny-sd15, tiny-sd3, tiny-sdxl.",
    ),
    (["a cat --steps 10000"], "Steps must be between 1 and 150 (got 10000)."),
    (["x" * 10_000], "The prompt is 10000 characters long; the limit is 2000."),
    (["a cat", "--seed", "-1"], "Seed must be between 0 and 4294967295 (got -1)."),
    (["a cat --wat 3"], "Unknown flag `--wat`."),
    (["a cat", "--init", "/nonexistent.png"], "Cannot read the init image /nonexistent.png"),
    (["a cat", "--init", __file__], "not an image I can read"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[c[1][:40] for c in CASES])
async def test_bad_input_gives_one_line_and_enqueues_nothing(
    idle: Deployment, args: list[str], message: str
) -> None:
    result = await asyncio.to_thread(idle.cli, "imagine", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    await assert_nothing_enqueued(idle)


async def test_catalogue_entry_pointing_nowhere(idle: Deployment, tmp_path: Path) -> None:
    catalogue = tmp_path / "models.toml"
    catalogue.write_text('[models.ghost]\nfamily = "sd15"\nsource = "./weights/ghost"\ndescription = "d"\n')
    idle.models_file = catalogue
    result = await asyncio.to_thread(idle.cli, "imagine", "a cat")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {catalogue}: model `ghost`, field `source`: source './weights/ghost' points nowhere "
        f"({tmp_path}/weights/ghost is not a folder)"
    )
    await assert_nothing_enqueued(idle)


async def assert_nothing_enqueued(deployment: Deployment) -> None:
    redis = aioredis.from_url(TEST_REDIS_URL)
    try:
        assert await redis.zcard(deployment.settings().queue_name("inference")) == 0
    finally:
        await redis.aclose()
    if deployment.settings().database_path.exists():
        async with Store(deployment.settings().database_path) as store:
            assert await store.list_generations() == []

"""Model-aware routing through the real bot: a model too big for every worker is refused in one
ephemeral sentence with nothing started, and /status lists each worker with what it holds warm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from gpu_worker.advertise import model_bytes
from studio.catalogue import load_catalogue
from studio.routing import about
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, generation_count, imagine
from tests.fake_discord import FakeDiscord
from tests.integration.workers import TEST_REDIS_URL, Deployment


@pytest.fixture
async def small_workers(
    tiny_catalogue: Path, tmp_path: Path
) -> AsyncIterator[tuple[FakeDiscord, Deployment]]:
    """A Discord, a bot and an inference worker of their own, whose memory holds tiny-sd15 only."""
    catalogue = load_catalogue(tiny_catalogue)
    small, big = (model_bytes(catalogue.get(m).ref(), 4) or 0 for m in ("tiny-sd15", "tiny-sdxl"))
    dep = Deployment(
        data_dir=tmp_path / "studio",
        models_file=tiny_catalogue,
        extra_env={
            "ATELIER_WORKER_MEMORY_GB": str((small + big) / 2 / 1e9),
            "ATELIER_ADVERTISE_INTERVAL_S": "0.5",
        },
    )
    dep.data_dir.mkdir()
    dep.start_worker("inference")
    dep.start_worker("post")
    fake = FakeDiscord()
    await fake.start()
    bot = BotProcess(fake, dep, tmp_path)
    try:
        await dep.wait_ready()
        with redis.Redis.from_url(TEST_REDIS_URL) as client:  # its advertisement follows its first poll
            await fake.wait_for(lambda: client.keys(f"{dep.prefix}:inference:advert:*") or None, timeout=60)
        bot.start()
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, dep
    finally:
        bot.stop()
        await fake.stop()
        dep.stop()


async def test_too_big_a_model_is_refused_and_status_shows_the_workers(
    small_workers: tuple[FakeDiscord, Deployment],
) -> None:
    fake, dep = small_workers
    catalogue = load_catalogue(dep.models_file)
    need = model_bytes(catalogue.get("tiny-sdxl").ref(), 4) or 0
    budget = int(dep.settings().worker_memory_gb * 1e9)
    threads = set(fake.threads)
    answer = await ephemeral_answer(await fake.slash("imagine", {"prompt": "a castle", "model": "tiny-sdxl"}))
    assert answer.startswith(
        f"No worker here can run `tiny-sdxl` (it needs about {about(need)}; "
        f"the largest worker has {about(budget)})."
    )
    assert set(fake.threads) == threads and generation_count(dep) == 0, "nothing was started"

    status, _ = await imagine(fake, {"prompt": "a boat", "model": "tiny-sd15", "batch": 1})
    assert (await finished(fake, status.id)).content.startswith("✅")
    report = await ephemeral_answer(await fake.slash("status"))
    assert f"• cpu/float32, {about(budget)}: idle · warm: `tiny-sd15`" in report
    fake.assert_clean()

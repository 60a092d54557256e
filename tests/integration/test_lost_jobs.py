"""Jobs that vanish from Redis are queued again from SQLite, under the same id, a few times at most.

Redis restarted from its append-only file (``appendfsync everysec``) loses up to its last second
of writes: a job enqueued just before a SIGKILL has neither a job record nor a result afterwards.
These tests remove the job's record and queue entry directly, which is what that loss leaves.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import GenerationCancelled, GenerationFailed
from studio.forge import TrainingRequest
from studio.results import MAX_REQUEUES
from studio.training import TrainingImage, TrainingOptions
from tests.integration.workers import Deployment

BOB = Requester("cli:bob", "bob", server="guild-1")


def picture(seed: int, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


async def queued_job(studio: Studio, job_id: str) -> dict[str, Any] | None:
    """The arq job record (function, args, ...) as a worker would read it; None if there is none."""
    raw = await studio.queue.redis.get(jobs.ARQ_JOB_PREFIX + job_id)
    return None if raw is None else jobs.deserialize(raw)  # type: ignore[no-any-return]


async def lose(studio: Studio, kind: str, job_id: str) -> None:
    """What a Redis restart that lost the job's last writes leaves: no record, no queue entry."""
    await studio.queue.redis.delete(jobs.ARQ_JOB_PREFIX + job_id)
    await studio.queue.redis.zrem(studio.settings.queue_name(kind), job_id)


async def reappears(studio: Studio, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await queued_job(studio, job_id)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} was not queued again within {timeout}s")


async def requeues(studio: Studio, table: str, row_id: str) -> int:
    rows = await studio.store._all(f"SELECT requeues FROM {table} WHERE id = ?", (row_id,))
    return int(rows[0]["requeues"])


async def test_a_lost_generation_is_queued_again_and_completes_once(idle: Deployment) -> None:
    try:
        async with open_studio(idle.settings()) as one, open_studio(idle.settings()) as other:
            upload = picture(1)
            generation = await one.generations.imagine(
                BOB, "a harbour at dawn --batch 2 --seed 5", init_image=upload
            )
            original = await queued_job(one, generation.id)
            assert original is not None and original["a"][0]["init_image"] is not None
            await lose(one, jobs.INFERENCE, generation.id)

            # Two front ends follow it at once (the bot and the API): it is queued again once.
            following = [
                asyncio.create_task(one.results.follow(generation.id)),
                asyncio.create_task(other.results.follow(generation.id)),
            ]
            again = await reappears(one, generation.id)
            assert again["f"] == jobs.GENERATE
            assert again["a"] == original["a"]  # the same payload, rebuilt from the store
            assert await one.queue.depth(jobs.INFERENCE) == 1
            assert 1 <= await requeues(one, "generations", generation.id) <= 2

            idle.start_worker("inference")
            idle.start_worker("post")
            finished = await asyncio.wait_for(asyncio.gather(*following), 180)
            assert all(f.generation.status == "done" for f in finished), idle.logs()
            rows = await one.store._all(
                "SELECT idx FROM images WHERE generation_id = ? ORDER BY idx", (generation.id,)
            )
            assert [r["idx"] for r in rows] == [0, 1]  # recorded once
            assert (await one.store.get_generation(generation.id)).attempts == 1  # and run once
        assert idle.logs().count(f"{generation.id}:generate") <= 2, idle.logs()  # arq: start + end
    finally:
        idle.stop()


async def test_a_job_that_keeps_vanishing_fails_with_a_reason(idle: Deployment) -> None:
    async with open_studio(idle.settings()) as studio:
        generation = await studio.generations.imagine(BOB, "a lighthouse --seed 3")
        for count in range(1, MAX_REQUEUES + 1):
            await lose(studio, jobs.INFERENCE, generation.id)
            await studio.results.collect()  # a front end's restart pass finds it gone: queued again
            assert await queued_job(studio, generation.id) is not None
            assert await requeues(studio, "generations", generation.id) == count
        await lose(studio, jobs.INFERENCE, generation.id)
        with pytest.raises(GenerationFailed, match="lost its job"):
            await asyncio.wait_for(studio.results.follow(generation.id), 30)
        stored = await studio.store.get_generation(generation.id)
        assert stored.status == "failed" and "lost its job 4 times" in (stored.error or "")
        assert await queued_job(studio, generation.id) is None
        assert await studio.queue.depth(jobs.INFERENCE) == 0


async def test_a_cancelled_generation_whose_job_vanished_is_not_queued_again(idle: Deployment) -> None:
    async with open_studio(idle.settings()) as studio:
        generation = await studio.generations.imagine(BOB, "a windmill --seed 4")
        await studio.generations.cancel(BOB, generation.id)
        await lose(studio, jobs.INFERENCE, generation.id)
        with pytest.raises(GenerationCancelled):
            await asyncio.wait_for(studio.results.follow(generation.id), 30)
        assert (await studio.store.get_generation(generation.id)).status == "cancelled"
        assert await queued_job(studio, generation.id) is None
        assert await requeues(studio, "generations", generation.id) == 0


async def test_a_lost_training_run_is_queued_again_with_its_dataset(idle: Deployment) -> None:
    options = TrainingOptions(steps=20, rank=2, resolution=64)
    async with open_studio(idle.settings()) as studio:
        images = [TrainingImage(picture(seed, 96)) for seed in range(3)]
        lora, _ = await studio.forge.train(BOB, TrainingRequest("harbour", "zqx", options=options), images)
        original = await queued_job(studio, lora.id)
        assert original is not None
        await lose(studio, jobs.TRAINING, lora.id)

        follow = asyncio.create_task(studio.forge.follow(lora.id))
        again = await reappears(studio, lora.id)
        assert again["f"] == jobs.TRAIN_LORA
        assert again["a"] == original["a"]  # images, captions, params and sample recipe alike
        assert await requeues(studio, "loras", lora.id) == 1

        # Cancelled, then lost again: it ends cancelled instead of being queued a second time.
        await studio.forge.cancel(BOB, lora.id)
        await lose(studio, jobs.TRAINING, lora.id)
        ended = await asyncio.wait_for(follow, 30)
        assert ended.status == "cancelled"
        assert await queued_job(studio, lora.id) is None
        assert await requeues(studio, "loras", lora.id) == 1
